//! Transcoding as MediaConvert does it for cuepoint, in ONE FFmpeg run:
//!
//! - an HLS rendition with 1-second segments (key frames forced every second, so every
//!   segment really is 1 s) plus a master playlist;
//! - a low-resolution H.264 proxy MP4 (what the video analyses look at);
//! - one loudness log per requested audio track, written as MediaConvert-layout CSV.
//!
//! ```text
//! [0:V]split=2[hv][pv]; [hv]scale=W:H[hlsv]; [pv]scale=640:360[proxyv]
//! [0:A1]asplit=3[a1_0][a1_1][a1_2]            (one output per consumer of the track)
//! [a1_2]ebur128@t1=metadata=1:peak=true,ametadata=print:file=track_1.txt,anullsink
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use cuepoint_core::asset::ProbeInfo;
use cuepoint_core::loudness::LoudnessLog;
use serde::{Deserialize, Serialize};

use crate::analyze::{path_str, read_loudness, scratch_dir};
use crate::error::EngineError;
use crate::probe::{probe_media, MediaInfo};
use crate::tools::{escape_filter_value, run_ffmpeg, summarize_stderr, ProgressFn};

/// The HLS output group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HlsSpec {
    /// Directory receiving the playlists and segments (created if missing).
    pub dir: PathBuf,
    /// Master playlist file name.
    pub master_name: String,
    /// Media (variant) playlist file name; segments are named after it: `<stem>_00001.ts`.
    pub media_name: String,
    /// Target segment duration in whole seconds.
    pub segment_seconds: u32,
    /// Scale down to this height when the source is taller (keeps aspect).
    pub max_height: Option<u32>,
    /// The audio track muxed into the rendition (1-based); `None` for video only.
    pub audio_track: Option<u32>,
    pub x264_preset: String,
    pub crf: u32,
}

impl HlsSpec {
    /// `index.m3u8` + `index_720p.m3u8` + `index_720p_00001.ts`..., 1 s segments, at most 720p,
    /// track 1 as its audio.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        HlsSpec {
            dir: dir.into(),
            master_name: "index.m3u8".into(),
            media_name: "index_720p.m3u8".into(),
            segment_seconds: 1,
            max_height: Some(720),
            audio_track: Some(1),
            x264_preset: "veryfast".into(),
            crf: 23,
        }
    }
}

/// The proxy output group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxySpec {
    pub path: PathBuf,
    pub width: u32,
    /// `None`: keep the source aspect ratio.
    pub height: Option<u32>,
    pub audio_track: Option<u32>,
    pub x264_preset: String,
    pub crf: u32,
}

impl ProxySpec {
    /// 640 wide, source aspect, track 1 as audio.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ProxySpec {
            path: path.into(),
            width: 640,
            height: None,
            audio_track: Some(1),
            x264_preset: "veryfast".into(),
            crf: 26,
        }
    }
}

/// MediaConvert's loudness vehicle: a small video plus one AAC track per measured source
/// track (MediaConvert logs loudness per audio description of an output). Audio is kept mono
/// here: encoding cost grows with channels and nothing listens to this file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioOutputSpec {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Source tracks (1-based), one output audio stream each, in this order.
    pub tracks: Vec<u32>,
}

/// Where one track's loudness log goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoudnessLogSpec {
    /// 1-based audio track.
    pub track: u32,
    pub path: PathBuf,
}

/// A transcode job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscodeSpec {
    pub input: PathBuf,
    pub hls: Option<HlsSpec>,
    pub proxy: Option<ProxySpec>,
    /// The file carrying the measured tracks (MediaConvert's `Audio` output group).
    pub audio_output: Option<AudioOutputSpec>,
    pub loudness_logs: Vec<LoudnessLogSpec>,
    /// Seconds between loudness rows (a multiple of 0.1).
    pub loudness_row_interval: f64,
    /// True peak in the loudness logs' peak column (MediaConvert `PeakCalculation: TRUE_PEAK`);
    /// otherwise the sample peak (cheap; the reference job asks for `NONE`).
    pub true_peak: bool,
    /// Where intermediate files go (the system temp dir when `None`). The local engine points
    /// it into the job's scratch in the data directory, so a killed run leaves nothing in /tmp.
    pub scratch_dir: Option<PathBuf>,
}

impl TranscodeSpec {
    /// Nothing but the input: add outputs with the fields.
    pub fn new(input: impl Into<PathBuf>) -> Self {
        TranscodeSpec {
            input: input.into(),
            hls: None,
            proxy: None,
            audio_output: None,
            loudness_logs: Vec::new(),
            loudness_row_interval: 0.1,
            true_peak: false,
            scratch_dir: None,
        }
    }
}

/// What a transcode wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscodeOutput {
    pub probe: ProbeInfo,
    pub hls_master: Option<PathBuf>,
    pub hls_media_playlist: Option<PathBuf>,
    pub hls_segments: Vec<PathBuf>,
    /// Segment boundaries in seconds: 0, then the end of every segment (from `#EXTINF`).
    pub segment_boundaries: Vec<f64>,
    pub proxy: Option<PathBuf>,
    pub audio_output: Option<PathBuf>,
    /// (track, CSV path) in the order requested.
    pub loudness_logs: Vec<(u32, PathBuf)>,
    /// The logs as written, same order.
    pub loudness: Vec<(u32, LoudnessLog)>,
    /// Longest output duration, seconds (`durationInMs` of the job).
    pub duration_seconds: f64,
}

impl TranscodeOutput {
    /// Every file written, playlists first.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        v.extend(self.hls_master.iter().cloned());
        v.extend(self.hls_media_playlist.iter().cloned());
        v.extend(self.hls_segments.iter().cloned());
        v.extend(self.proxy.iter().cloned());
        v.extend(self.audio_output.iter().cloned());
        v.extend(self.loudness_logs.iter().map(|(_, p)| p.clone()));
        v
    }
}

/// Run `spec` in one FFmpeg pass. A corrupt input gives `EngineError::Unusable` (or
/// `Truncated`) with FFmpeg's message.
pub async fn transcode(
    spec: &TranscodeSpec,
    progress: Option<ProgressFn<'_>>,
) -> Result<TranscodeOutput, EngineError> {
    let location = path_str(&spec.input)?;
    let info = probe_media(location).await?;
    validate(spec, &info)?;
    let scratch = scratch_dir("cuepoint-transcode-", spec.scratch_dir.as_deref())?;
    let plan = plan(spec, &info, scratch.path())?;

    for dir in plan.dirs.iter() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io("creating", dir, e))?;
    }
    if let Some(h) = &spec.hls {
        remove_old_segments(h)?;
    }
    let mut args: Vec<OsString> = vec!["-y".into(), "-i".into(), spec.input.as_os_str().to_owned()];
    args.extend(["-filter_complex".into(), plan.graph.clone().into()]);
    args.extend(plan.output_args.iter().cloned());
    let outcome = run_ffmpeg(&args, info.probe.duration_seconds, location, progress).await?;

    let expected = info.probe.duration_seconds;
    let done = outcome.out_time.unwrap_or(0.0);
    // Slack for container/stream duration rounding and trailing priming: 1 % or 1 s. Wider,
    // a short clip cut in half (or minutes of a long master) would pass as whole.
    if done + (0.01 * expected).max(1.0) < expected {
        return Err(EngineError::Truncated {
            input: location.to_string(),
            decoded: done,
            expected,
            message: if outcome.stderr.trim().is_empty() {
                String::new()
            } else {
                summarize_stderr(&outcome.stderr)
            },
        });
    }

    let mut out = TranscodeOutput {
        probe: info.probe.clone(),
        hls_master: None,
        hls_media_playlist: None,
        hls_segments: Vec::new(),
        segment_boundaries: Vec::new(),
        proxy: spec.proxy.as_ref().map(|p| p.path.clone()),
        audio_output: spec.audio_output.as_ref().map(|a| a.path.clone()),
        loudness_logs: Vec::new(),
        loudness: Vec::new(),
        duration_seconds: done.max(0.0),
    };
    if let Some(h) = &spec.hls {
        let media = h.dir.join(&h.media_name);
        let (segments, boundaries) = read_media_playlist(&media)?;
        let master = h.dir.join(&h.master_name);
        complete_master_playlist(&master, &h.media_name, &segments, &boundaries)?;
        out.hls_master = Some(master);
        out.hls_media_playlist = Some(media);
        out.hls_segments = segments;
        out.segment_boundaries = boundaries;
        if let Some(end) = out.segment_boundaries.last() {
            out.duration_seconds = out.duration_seconds.max(*end);
        }
    }
    for (log_spec, file) in spec.loudness_logs.iter().zip(&plan.loudness_files) {
        let log = read_loudness(file, spec.loudness_row_interval, spec.true_peak)?;
        std::fs::write(&log_spec.path, log.to_csv())
            .map_err(|e| EngineError::io("writing", &log_spec.path, e))?;
        out.loudness_logs
            .push((log_spec.track, log_spec.path.clone()));
        out.loudness.push((log_spec.track, log));
    }
    Ok(out)
}

fn invalid(field: &'static str, detail: impl Into<String>) -> EngineError {
    EngineError::InvalidSpec {
        field,
        detail: detail.into(),
    }
}

fn validate(spec: &TranscodeSpec, info: &MediaInfo) -> Result<(), EngineError> {
    if spec.hls.is_none()
        && spec.proxy.is_none()
        && spec.audio_output.is_none()
        && spec.loudness_logs.is_empty()
    {
        return Err(invalid("outputs", "the job has no outputs"));
    }
    let blocks = spec.loudness_row_interval / 0.1;
    if !(blocks >= 0.999 && (blocks - blocks.round()).abs() < 1e-6) {
        return Err(invalid(
            "loudness_row_interval",
            format!(
                "{} s is not a multiple of 0.1 s",
                spec.loudness_row_interval
            ),
        ));
    }
    let tracks = info.audio.len() as u32;
    let check_track = |field: &'static str, t: u32| {
        if t == 0 || t > tracks {
            Err(EngineError::Unusable {
                input: info.location.clone(),
                message: format!(
                    "{field}: audio track {t} requested but the input has {tracks} audio track(s)"
                ),
            })
        } else {
            Ok(())
        }
    };
    for l in &spec.loudness_logs {
        check_track("loudness log", l.track)?;
    }
    if let Some(h) = &spec.hls {
        if h.segment_seconds == 0 {
            return Err(invalid("hls.segment_seconds", "must be at least 1"));
        }
        if !h.media_name.ends_with(".m3u8")
            || !h.master_name.ends_with(".m3u8")
            || h.media_name == h.master_name
        {
            return Err(invalid(
                "hls playlist names",
                "two different *.m3u8 names are needed",
            ));
        }
        if let Some(t) = h.audio_track {
            check_track("hls audio", t)?;
        }
    }
    if let Some(p) = &spec.proxy {
        if p.width < 16 || p.width % 2 == 1 || p.height.is_some_and(|h| h < 16 || h % 2 == 1) {
            return Err(invalid(
                "proxy size",
                "width/height must be even and at least 16",
            ));
        }
        if let Some(t) = p.audio_track {
            check_track("proxy audio", t)?;
        }
    }
    if let Some(a) = &spec.audio_output {
        if a.width < 16 || a.width % 2 == 1 || a.height < 16 || a.height % 2 == 1 {
            return Err(invalid(
                "audio output size",
                "width/height must be even and at least 16",
            ));
        }
        for t in &a.tracks {
            check_track("audio output", *t)?;
        }
    }
    if (spec.hls.is_some() || spec.proxy.is_some() || spec.audio_output.is_some())
        && info.video.is_none()
    {
        return Err(EngineError::Unusable {
            input: info.location.clone(),
            message: "no video stream to transcode".into(),
        });
    }
    Ok(())
}

struct Plan {
    graph: String,
    output_args: Vec<OsString>,
    loudness_files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

fn plan(spec: &TranscodeSpec, info: &MediaInfo, scratch: &Path) -> Result<Plan, EngineError> {
    let mut chains: Vec<String> = Vec::new();
    let mut output_args: Vec<OsString> = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();

    // Who reads each audio track: labels handed out in this order.
    let mut consumers: Vec<(u32, usize)> = Vec::new();
    let mut want = |track: u32| -> String {
        let n = match consumers.iter_mut().find(|(t, _)| *t == track) {
            Some((_, n)) => {
                *n += 1;
                *n - 1
            }
            None => {
                consumers.push((track, 1));
                0
            }
        };
        format!("[a{track}_{n}]")
    };
    let hls_audio = spec.hls.as_ref().and_then(|h| h.audio_track).map(&mut want);
    let proxy_audio = spec
        .proxy
        .as_ref()
        .and_then(|p| p.audio_track)
        .map(&mut want);
    let vehicle_audio: Vec<String> = spec
        .audio_output
        .iter()
        .flat_map(|a| a.tracks.iter())
        .map(|t| want(*t))
        .collect();
    let loud_labels: Vec<String> = spec.loudness_logs.iter().map(|l| want(l.track)).collect();
    for (track, n) in &consumers {
        let idx = info.audio[(*track - 1) as usize].stream_index;
        if *n == 1 {
            chains.push(format!("[0:{idx}]anull[a{track}_0]"));
        } else {
            let outs: String = (0..*n).map(|i| format!("[a{track}_{i}]")).collect();
            chains.push(format!("[0:{idx}]asplit={n}{outs}"));
        }
    }

    if let Some(v) = &info.video {
        let mut video_outs = Vec::new();
        if spec.hls.is_some() {
            video_outs.push("[hv]");
        }
        if spec.proxy.is_some() {
            video_outs.push("[pv]");
        }
        if spec.audio_output.is_some() {
            video_outs.push("[av]");
        }
        match video_outs.len() {
            0 => {}
            1 => chains.push(format!("[0:{}]null{}", v.stream_index, video_outs[0])),
            n => chains.push(format!(
                "[0:{}]split={n}{}",
                v.stream_index,
                video_outs.concat()
            )),
        }
        if let Some(h) = &spec.hls {
            let (w, ht) = match h.max_height {
                Some(max) if v.height > max && v.height > 0 => (
                    even(v.width as f64 * max as f64 / v.height as f64),
                    max - max % 2,
                ),
                _ => (even(v.width as f64), even(v.height as f64)),
            };
            chains.push(format!("[hv]scale={w}:{ht},format=yuv420p[hlsv]"));
            let stem = h.media_name.trim_end_matches(".m3u8");
            let seg = h.dir.join(format!("{stem}_%05d.ts"));
            output_args.extend(["-map".into(), "[hlsv]".into()]);
            if let Some(a) = &hls_audio {
                output_args.extend(["-map".into(), a.into()]);
            }
            output_args.extend(
                [
                    "-c:v",
                    "libx264",
                    "-preset",
                    &h.x264_preset,
                    "-crf",
                    &h.crf.to_string(),
                    "-profile:v",
                    "high",
                    "-force_key_frames",
                    &format!("expr:gte(t,n_forced*{})", h.segment_seconds),
                    "-sc_threshold",
                    "0",
                    "-c:a",
                    "aac",
                    "-b:a",
                    "96k",
                    "-ac",
                    "2",
                    "-ar",
                    "48000",
                    "-f",
                    "hls",
                    "-hls_time",
                    &h.segment_seconds.to_string(),
                    "-hls_playlist_type",
                    "vod",
                    "-hls_flags",
                    "independent_segments",
                    "-hls_segment_type",
                    "mpegts",
                    "-start_number",
                    "1",
                    "-master_pl_name",
                    &h.master_name,
                ]
                .map(OsString::from),
            );
            output_args.extend(["-hls_segment_filename".into(), seg.into_os_string()]);
            output_args.push(h.dir.join(&h.media_name).into_os_string());
            dirs.push(h.dir.clone());
        }
        if let Some(p) = &spec.proxy {
            let h = p.height.unwrap_or_else(|| {
                if v.width > 0 {
                    even(p.width as f64 * v.height as f64 / v.width as f64)
                } else {
                    even(p.width as f64 * 9.0 / 16.0)
                }
            });
            chains.push(format!("[pv]scale={}:{h},format=yuv420p[proxyv]", p.width));
            output_args.extend(["-map".into(), "[proxyv]".into()]);
            if let Some(a) = &proxy_audio {
                output_args.extend(["-map".into(), a.into()]);
            }
            output_args.extend(
                [
                    "-c:v",
                    "libx264",
                    "-preset",
                    &p.x264_preset,
                    "-crf",
                    &p.crf.to_string(),
                    "-c:a",
                    "aac",
                    "-b:a",
                    "96k",
                    "-movflags",
                    "+faststart",
                    "-f",
                    "mp4",
                ]
                .map(OsString::from),
            );
            output_args.push(p.path.clone().into_os_string());
            if let Some(parent) = p.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                dirs.push(parent.to_path_buf());
            }
        }
    }

    if let (Some(a), Some(_)) = (&spec.audio_output, &info.video) {
        chains.push(format!(
            "[av]scale={}:{},format=yuv420p[vehiclev]",
            a.width, a.height
        ));
        output_args.extend(["-map".into(), "[vehiclev]".into()]);
        for label in &vehicle_audio {
            output_args.extend(["-map".into(), label.into()]);
        }
        output_args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                "200k",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
                "-f",
                "mp4",
            ]
            .map(OsString::from),
        );
        output_args.push(a.path.clone().into_os_string());
        if let Some(parent) = a.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            dirs.push(parent.to_path_buf());
        }
    }

    let mut loudness_files = Vec::new();
    let peak = if spec.true_peak { "true" } else { "sample" };
    let mut null_output: Option<String> = None;
    for (l, label) in spec.loudness_logs.iter().zip(&loud_labels) {
        let file = scratch.join(format!("track_{}_{}.txt", l.track, loudness_files.len()));
        let sink = if output_args.is_empty() && null_output.is_none() {
            // No media output: the first meter feeds the null muxer so the run has an output.
            let out = format!("[meter{}]", l.track);
            null_output = Some(out.clone());
            out
        } else {
            ",anullsink".into()
        };
        chains.push(format!(
            "{label}ebur128@t{track}=metadata=1:peak={peak},ametadata=print:file={file}{sink}",
            track = l.track,
            file = escape_filter_value(&file.to_string_lossy()),
        ));
        loudness_files.push(file);
        if let Some(parent) = l.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            dirs.push(parent.to_path_buf());
        }
    }
    if let Some(out) = null_output {
        output_args.extend([
            "-map".into(),
            out.into(),
            "-f".into(),
            "null".into(),
            "-".into(),
        ]);
    }
    Ok(Plan {
        graph: chains.join(";"),
        output_args,
        loudness_files,
        dirs,
    })
}

fn even(x: f64) -> u32 {
    let v = x.round().max(2.0) as u32;
    v - v % 2
}

/// Segments of an earlier run would otherwise linger next to the new playlist.
fn remove_old_segments(h: &HlsSpec) -> Result<(), EngineError> {
    let stem = h.media_name.trim_end_matches(".m3u8");
    let Ok(entries) = std::fs::read_dir(&h.dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{stem}_")) && name.ends_with(".ts") {
            std::fs::remove_file(entry.path())
                .map_err(|e| EngineError::io("removing", entry.path(), e))?;
        }
    }
    Ok(())
}

/// FFmpeg 5.1 writes a master playlist with no variant when the rendition has no audio
/// (`#EXTM3U` and a version line only), which no player can open. Write the one variant
/// ourselves then, with its peak bandwidth from the segment sizes.
fn complete_master_playlist(
    master: &Path,
    media_name: &str,
    segments: &[PathBuf],
    boundaries: &[f64],
) -> Result<(), EngineError> {
    let text =
        std::fs::read_to_string(master).map_err(|e| EngineError::io("reading", master, e))?;
    if text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        return Ok(());
    }
    let mut peak_bps = 1.0f64;
    for (seg, w) in segments.iter().zip(boundaries.windows(2)) {
        let bytes = std::fs::metadata(seg).map(|m| m.len()).unwrap_or(0) as f64;
        let secs = (w[1] - w[0]).max(0.001);
        peak_bps = peak_bps.max(bytes * 8.0 / secs);
    }
    // RESOLUTION is optional and the rendition may be scaled down: leave it out rather than guess.
    let fixed = format!(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:BANDWIDTH={}\n{media_name}\n",
        peak_bps.ceil() as u64
    );
    std::fs::write(master, fixed).map_err(|e| EngineError::io("writing", master, e))
}

/// Segment files and boundaries (0, then each segment's end) from a media playlist.
pub fn read_media_playlist(path: &Path) -> Result<(Vec<PathBuf>, Vec<f64>), EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io("reading", path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut segments = Vec::new();
    let mut boundaries = vec![0.0];
    let mut pending: Option<f64> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let d = rest
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .parse::<f64>()
                .map_err(|_| EngineError::Parse {
                    path: path.to_path_buf(),
                    line: n + 1,
                    detail: format!("bad #EXTINF duration in {line:?}"),
                })?;
            pending = Some(d);
        } else if !line.is_empty() && !line.starts_with('#') {
            let d = pending.take().ok_or_else(|| EngineError::Parse {
                path: path.to_path_buf(),
                line: n + 1,
                detail: "segment without #EXTINF".into(),
            })?;
            segments.push(dir.join(line));
            let end = boundaries.last().copied().unwrap_or(0.0) + d;
            boundaries.push((end * 1e6).round() / 1e6);
        }
    }
    if segments.is_empty() {
        return Err(EngineError::Parse {
            path: path.to_path_buf(),
            line: 0,
            detail: "the playlist lists no segments".into(),
        });
    }
    Ok((segments, boundaries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_extinf_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.m3u8");
        std::fs::write(
            &p,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.000000,\nm_00001.ts\n#EXTINF:1.000000,\nm_00002.ts\n#EXTINF:0.480000,\nm_00003.ts\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        let (segs, b) = read_media_playlist(&p).unwrap();
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[2], dir.path().join("m_00003.ts"));
        assert_eq!(b, vec![0.0, 1.0, 2.0, 2.48]);
    }
}
