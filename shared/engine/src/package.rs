//! Packaging as MediaConvert does it for cuepoint's second job, in ONE FFmpeg run: the HLS
//! ladder (one libx264 encode per rung, audio muxed into every rendition), each rendition with
//! a key frame and a segment boundary exactly at every break, cue markers at the breaks in
//! every media playlist, and a master playlist whose bandwidths come from the segments written.
//!
//! ```text
//! [0:V]split=3[v0][v1][v2]; [v0]scale=1920:1080[o0]; ...      (rotation applied by the decoder)
//! -map [o0] -map 0:A -c:v libx264 -force_key_frames T -f segment -segment_times T ... x3
//! ```
//!
//! The segment muxer starts a new segment at the first key frame at or after each time of
//! `-segment_times`, and `-force_key_frames` makes the frame at each of those times a key frame;
//! both get the same list (the breaks and the cadence, from `cuepoint_core::packaging`), half a
//! frame early so no time base rounding can move a cut one frame late.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use cuepoint_core::packaging::{
    add_cue_markers, bandwidths, h264_codecs, h264_level, master_playlist, times_arg,
    with_durations, FrameRate, SegmentPlan, Variant,
};
use serde::{Deserialize, Serialize};

use crate::analyze::path_str;
use crate::error::EngineError;
use crate::probe::probe_media;
use crate::tools::{run_ffmpeg, run_ffprobe, summarize_stderr, ProgressFn};
use crate::transcode::read_media_playlist;

/// One rendition of the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenditionSpec {
    /// Media playlist file name (`index_720p.m3u8`); segments are `<stem>_00001.ts`...
    pub playlist_name: String,
    pub width: u32,
    pub height: u32,
    /// Peak bit rate cap (bits/s); `None`: quality only.
    pub max_bitrate: Option<u32>,
}

/// A packaging job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageSpec {
    pub input: PathBuf,
    /// Directory receiving every playlist and segment (created if missing).
    pub dir: PathBuf,
    pub master_name: String,
    pub renditions: Vec<RenditionSpec>,
    /// Source track muxed into every rendition (1-based); `None`: video only.
    pub audio_track: Option<u32>,
    /// Segment cadence, whole seconds (restarted at each break).
    pub segment_seconds: u32,
    /// Break times, seconds: each becomes a key frame, a segment start and a cue marker.
    pub breaks: Vec<f64>,
    pub x264_preset: String,
    pub crf: u32,
}

impl PackageSpec {
    pub fn new(input: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        PackageSpec {
            input: input.into(),
            dir: dir.into(),
            master_name: "index.m3u8".into(),
            renditions: Vec::new(),
            audio_track: Some(1),
            segment_seconds: 6,
            breaks: Vec::new(),
            x264_preset: "veryfast".into(),
            crf: 23,
        }
    }
}

/// One rendition as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionOutput {
    pub playlist: PathBuf,
    pub segments: Vec<PathBuf>,
    /// Segment starts (from `#EXTINF`), seconds: 0, ..., and the end of the last segment.
    pub boundaries: Vec<f64>,
    pub width: u32,
    pub height: u32,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
}

/// What a packaging run wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageOutput {
    pub master: PathBuf,
    pub renditions: Vec<RenditionOutput>,
    /// The breaks as packaged (on the frame grid), seconds.
    pub breaks: Vec<f64>,
    pub frame_rate: f64,
    pub duration_seconds: f64,
}

impl PackageOutput {
    /// Every file written: segments first, media playlists, the master last (a reader that
    /// finds a playlist finds what it names).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        for r in &self.renditions {
            v.extend(r.segments.iter().cloned());
        }
        v.extend(self.renditions.iter().map(|r| r.playlist.clone()));
        v.push(self.master.clone());
        v
    }
}

fn invalid(field: &'static str, detail: impl Into<String>) -> EngineError {
    EngineError::InvalidSpec {
        field,
        detail: detail.into(),
    }
}

/// Run `spec` in one FFmpeg pass.
pub async fn package(
    spec: &PackageSpec,
    progress: Option<ProgressFn<'_>>,
) -> Result<PackageOutput, EngineError> {
    let location = path_str(&spec.input)?;
    let info = probe_media(location).await?;
    let Some(video) = info.video.clone() else {
        return Err(EngineError::Unusable {
            input: location.to_string(),
            message: "no video stream to package".into(),
        });
    };
    if spec.renditions.is_empty() {
        return Err(invalid("renditions", "the ladder has no rung"));
    }
    if spec.segment_seconds == 0 {
        return Err(invalid("segment_seconds", "must be at least 1"));
    }
    for r in &spec.renditions {
        if r.width < 16 || r.height < 16 || r.width % 2 == 1 || r.height % 2 == 1 {
            return Err(invalid(
                "rendition size",
                "width/height must be even and at least 16",
            ));
        }
        if !r.playlist_name.ends_with(".m3u8") || r.playlist_name == spec.master_name {
            return Err(invalid(
                "rendition playlist",
                format!("{:?} is not a distinct *.m3u8 name", r.playlist_name),
            ));
        }
    }
    let audio = match spec.audio_track {
        None => None,
        Some(t) => Some(
            info.audio
                .iter()
                .find(|a| a.track == t)
                .ok_or_else(|| EngineError::Unusable {
                    input: location.to_string(),
                    message: format!(
                        "audio track {t} requested but the input has {} audio track(s)",
                        info.audio.len()
                    ),
                })?
                .stream_index,
        ),
    };
    let rate = FrameRate {
        num: video.frame_rate.num,
        den: video.frame_rate.den,
    };
    let plan = SegmentPlan::new(
        info.probe.duration_seconds,
        rate,
        spec.segment_seconds as f64,
        &spec.breaks,
    );
    let cuts = times_arg(&plan.cut_times());
    let fps = rate.as_f64();

    std::fs::create_dir_all(&spec.dir).map_err(|e| EngineError::io("creating", &spec.dir, e))?;
    remove_old_outputs(spec)?;

    let n = spec.renditions.len();
    let mut chains = Vec::new();
    let labels: String = (0..n).map(|i| format!("[v{i}]")).collect();
    chains.push(if n == 1 {
        format!("[0:{}]null[v0]", video.stream_index)
    } else {
        format!("[0:{}]split={n}{labels}", video.stream_index)
    });
    let mut args: Vec<OsString> = vec!["-y".into(), "-i".into(), spec.input.as_os_str().into()];
    let mut out_args: Vec<OsString> = Vec::new();
    let mut levels = Vec::with_capacity(n);
    for (i, r) in spec.renditions.iter().enumerate() {
        chains.push(format!(
            "[v{i}]scale={}:{},setsar=1,format=yuv420p[o{i}]",
            r.width, r.height
        ));
        let level = h264_level(r.width, r.height, fps);
        levels.push(level);
        out_args.extend(["-map".into(), format!("[o{i}]").into()]);
        if let Some(a) = audio {
            out_args.extend(["-map".into(), format!("0:{a}").into()]);
        }
        let level_s = format!("{}.{}", level / 10, level % 10);
        let crf = spec.crf.to_string();
        out_args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                &spec.x264_preset,
                "-crf",
                &crf,
                "-profile:v",
                "high",
                "-level:v",
                &level_s,
            ]
            .map(OsString::from),
        );
        if let Some(max) = r.max_bitrate {
            out_args.extend([
                "-maxrate".into(),
                max.to_string().into(),
                "-bufsize".into(),
                (max as u64 * 2).to_string().into(),
            ]);
        }
        if !cuts.is_empty() {
            out_args.extend(["-force_key_frames".into(), cuts.clone().into()]);
        }
        if audio.is_some() {
            out_args.extend(
                ["-c:a", "aac", "-b:a", "96k", "-ac", "2", "-ar", "48000"].map(OsString::from),
            );
        }
        let stem = r.playlist_name.trim_end_matches(".m3u8");
        out_args.extend(
            [
                "-f",
                "segment",
                "-segment_format",
                "mpegts",
                "-segment_list_type",
                "m3u8",
                "-segment_start_number",
                "1",
            ]
            .map(OsString::from),
        );
        if !cuts.is_empty() {
            out_args.extend(["-segment_times".into(), cuts.clone().into()]);
        } else {
            // No cut inside the programme: one segment.
            out_args.extend([
                "-segment_time".into(),
                format!("{}", info.probe.duration_seconds + 1.0).into(),
            ]);
        }
        out_args.extend([
            "-segment_list".into(),
            spec.dir.join(&r.playlist_name).into_os_string(),
            spec.dir.join(format!("{stem}_%05d.ts")).into_os_string(),
        ]);
    }
    args.extend(["-filter_complex".into(), chains.join(";").into()]);
    args.extend(out_args);
    let outcome = run_ffmpeg(&args, info.probe.duration_seconds, location, progress).await?;
    let expected = info.probe.duration_seconds;
    let done = outcome.out_time.unwrap_or(0.0);
    if done + (0.01 * expected).max(1.0) < expected {
        return Err(EngineError::Truncated {
            input: location.to_string(),
            decoded: done,
            expected,
            message: summarize_stderr(&outcome.stderr),
        });
    }

    let breaks = plan.break_times();
    let half_frame = 0.5 / fps;
    let planned = plan.boundary_times();
    let mut renditions = Vec::with_capacity(n);
    let mut variants = Vec::with_capacity(n);
    for (r, level) in spec.renditions.iter().zip(levels) {
        let path = spec.dir.join(&r.playlist_name);
        let (segments, written) = read_media_playlist(&path)?;
        // Check what was written against the plan: one segment per planned boundary, each
        // starting with a key frame at its boundary (ffprobe on the segments as a player reads
        // them, one after the other).
        let keys = key_frame_times_of(&segments).await?;
        let origin = keys.first().copied().unwrap_or(0.0);
        let missing: Vec<f64> = planned
            .iter()
            .copied()
            .filter(|b| !keys.iter().any(|k| (k - origin - b).abs() < half_frame))
            .collect();
        if segments.len() != planned.len() || !missing.is_empty() {
            return Err(EngineError::Parse {
                path: path.clone(),
                line: 0,
                detail: format!(
                    "{} segments for {} planned boundaries; no key frame at {missing:?}",
                    segments.len(),
                    planned.len()
                ),
            });
        }
        // The first segment's audio starts before its first picture (encoder priming); the
        // programme's clock is the picture's.
        let lead_in = match (written.get(1), planned.get(1)) {
            (Some(w), Some(p)) => (w - p).max(0.0),
            _ => 0.0,
        };
        let end = written.last().copied().unwrap_or(0.0) - lead_in;
        let mut boundaries = planned.clone();
        boundaries.push(end.max(*planned.last().unwrap_or(&0.0)));
        let durations: Vec<f64> = boundaries.windows(2).map(|w| w[1] - w[0]).collect();
        let mut sized = Vec::with_capacity(segments.len());
        for (seg, w) in segments.iter().zip(boundaries.windows(2)) {
            let bytes = std::fs::metadata(seg)
                .map_err(|e| EngineError::io("reading", seg, e))?
                .len();
            sized.push((bytes, w[1] - w[0]));
        }
        let (bandwidth, average_bandwidth) = bandwidths(&sized);
        let text =
            std::fs::read_to_string(&path).map_err(|e| EngineError::io("reading", &path, e))?;
        let conditioned = with_durations(&vod_playlist(&text), &durations)
            .and_then(|t| add_cue_markers(&t, &breaks, half_frame))
            .map_err(|e| EngineError::Parse {
                path: path.clone(),
                line: 0,
                detail: format!("conditioning for the breaks: {e}"),
            })?;
        std::fs::write(&path, conditioned).map_err(|e| EngineError::io("writing", &path, e))?;
        let codecs = h264_codecs(level, audio.is_some());
        variants.push(Variant {
            uri: r.playlist_name.clone(),
            width: r.width,
            height: r.height,
            bandwidth,
            average_bandwidth,
            codecs: codecs.clone(),
            frame_rate: fps,
        });
        renditions.push(RenditionOutput {
            playlist: path,
            segments,
            boundaries,
            width: r.width,
            height: r.height,
            bandwidth,
            average_bandwidth,
            codecs,
        });
    }
    let master = spec.dir.join(&spec.master_name);
    std::fs::write(&master, master_playlist(&variants))
        .map_err(|e| EngineError::io("writing", &master, e))?;
    let duration_seconds = renditions
        .iter()
        .filter_map(|r| r.boundaries.last().copied())
        .fold(done.max(0.0), f64::max);
    Ok(PackageOutput {
        master,
        renditions,
        breaks,
        frame_rate: fps,
        duration_seconds,
    })
}

/// The segment muxer's playlist as a VOD playlist: `#EXT-X-PLAYLIST-TYPE:VOD` and
/// `#EXT-X-INDEPENDENT-SEGMENTS` (every segment starts with a key frame), no caching hint.
fn vod_playlist(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.starts_with("#EXT-X-ALLOW-CACHE") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("#EXT-X-VERSION") {
            out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
    }
    out
}

/// Segments and playlists of an earlier run would linger next to the new ones.
fn remove_old_outputs(spec: &PackageSpec) -> Result<(), EngineError> {
    let Ok(entries) = std::fs::read_dir(&spec.dir) else {
        return Ok(());
    };
    let stems: Vec<String> = spec
        .renditions
        .iter()
        .map(|r| format!("{}_", r.playlist_name.trim_end_matches(".m3u8")))
        .collect();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".ts") && stems.iter().any(|s| name.starts_with(s)) {
            std::fs::remove_file(entry.path())
                .map_err(|e| EngineError::io("removing", entry.path(), e))?;
        }
    }
    Ok(())
}

/// Key frame times of the video in `segments` (TS files) played one after the other, seconds
/// on the stream's own clock (`pts_time`), in order.
pub async fn key_frame_times_of(segments: &[PathBuf]) -> Result<Vec<f64>, EngineError> {
    let mut joined = OsString::from("concat:");
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            joined.push("|");
        }
        joined.push(s.as_os_str());
    }
    key_frame_times(Path::new(&joined)).await
}

/// Key frame times of the video in `segment` (a TS file), seconds on its own clock
/// (`pts_time`), in order: what a player seeking into the segment can start from.
pub async fn key_frame_times(segment: &Path) -> Result<Vec<f64>, EngineError> {
    let args: Vec<OsString> = vec![
        "-v".into(),
        "error".into(),
        "-select_streams".into(),
        "v:0".into(),
        "-skip_frame".into(),
        "nokey".into(),
        "-show_entries".into(),
        "frame=pts_time".into(),
        "-of".into(),
        "csv=p=0".into(),
        segment.as_os_str().into(),
    ];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    let out = run_ffprobe(&refs)
        .await?
        .map_err(|(status, message)| EngineError::ToolFailed {
            tool: "ffprobe",
            input: segment.display().to_string(),
            status,
            message,
        })?;
    let text = String::from_utf8_lossy(&out);
    Ok(text
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .collect())
}
