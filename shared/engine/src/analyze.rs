//! One-pass analysis: a single FFmpeg decode measures every audio track's loudness and finds
//! black frames, shot changes and end credits in the video.
//!
//! The graph (video branch only when there is video, one audio branch per track):
//!
//! ```text
//! [0:V]scale=160:90:flags=fast_bilinear,format=yuv420p,blackdetect=d=0:...,scdet=t=5,
//!      split=3[vh][vm][vraw]
//! [vm]metadata=print:file=video.txt[vout]                      <- mapped to the null muxer
//! [vraw]                                                       <- raw frames to pipe:3
//! [vh]select='not(mod(n,5))',scale=32:18:flags=area,format=rgb24[hout] <- histogram.rgb
//! [0:A]ebur128@tN=metadata=1:peak=true,ametadata=print:file=track_N.txt,anullsink
//! ```
//!
//! Video filters run on a 160x90 copy: decoding dominates the cost, and at that size the
//! filters add little (see the benchmark). The picture levels (FFmpeg's `signalstats` values)
//! are measured here on the raw copy FFmpeg pipes out (`levels`): the filter would also work out
//! every pixel's hue, which nobody reads. Every filter instance writes its own metadata file;
//! stderr lines could not be attributed to a track.
//!
//! Loudness rows: ebur128 with `metadata=1` emits one reading per 100 ms block. A row's
//! `seconds` is the *end* of its block (the instant the meter shows that reading), relative
//! to the start of the file (FFmpeg shifts inputs by their start time). Rows are kept every `loudness_row_interval` (default 0.1 s: every
//! block). The summary's Input Max Loudness is the maximum **short-term** (3 s) loudness once
//! the 3 s window has filled (the first 2.9 s read -120.7 while it fills); clips shorter than
//! 3 s fall back to the maximum momentary loudness. The peak column is the running maximum
//! over all channels so far (dBTP or dBFS): true peak when `true_peak` is set, else the sample
//! peak; digital silence reads `SILENCE_DBTP`. A `nan`/`-inf`
//! momentary or short-term reading (FFmpeg 5.1 gives `nan` once a window turns digitally
//! silent after sound) is written as -120.691, ebur128's own empty-window value.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use cuepoint_core::asset::ProbeInfo;
use cuepoint_core::loudness::{LoudnessLog, LoudnessRow, LoudnessSummary};
use cuepoint_core::rekognition::SegmentDetection;
use cuepoint_core::transitions::{self, FrameStat, TransitionOptions};
use cuepoint_vision::decode::{sample_filter, SAMPLE_OUTPUT};
use cuepoint_vision::{
    FrameLevels, FrameSampler, LevelMeter, SampleOptions, TimedFrame, VisionError,
};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::metadata::{for_each_frame, MetaFrame};
use crate::probe::{probe_media, MediaInfo};
use crate::segments::{segment_detection, Cut, FrameSpan, VideoFindings};
use crate::timecode::FrameClock;
use crate::tools::{
    escape_filter_value, inherit_as_fd3, locate_tool, output_pipe, run_ffmpeg_piped,
    summarize_stderr, ProgressFn, FFMPEG_ENV,
};

/// True peak reported for a track that never left digital silence (20·log10(0) has no value).
pub const SILENCE_DBTP: f64 = -144.0;
/// ebur128's reading for an empty window (momentary / short-term while the window fills).
pub const EMPTY_WINDOW_LUFS: f64 = -120.691;
/// ebur128's integrated loudness when no block passed the -70 LUFS gate.
pub const UNGATED_LUFS: f64 = -70.0;

/// What to measure and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalyzeOptions {
    /// Measure loudness on every audio track.
    pub loudness: bool,
    /// Run the video detectors (black frames, shots, end credits).
    pub video: bool,
    /// Seconds between loudness rows; a multiple of 0.1 (ebur128's block).
    pub loudness_row_interval: f64,
    /// Peak column: true peak (4x oversampled, ~15 % of a 1080p decode for 8 tracks) when set;
    /// otherwise the sample peak (a lower bound of the true peak, nearly free). Off by default:
    /// the reference MediaConvert job measures with `PeakCalculation: NONE`.
    pub true_peak: bool,
    /// Size of the copy the video detectors see.
    pub analysis_width: u32,
    pub analysis_height: u32,
    /// Skip H.264/HEVC deblocking while decoding: ~10-15 % less decode work, invisible at 160x90.
    pub skip_loop_filter: bool,
    /// Decoder threads (0: FFmpeg's choice, one per core). One by default: the analyses read the
    /// 640x360 proxy, which one thread decodes many times faster than real time, and frame
    /// threads cost a third to a half more CPU for the same frames.
    pub decode_threads: u32,
    pub black: BlackOptions,
    pub shots: ShotOptions,
    /// Look for rolling end credits.
    pub end_credits: bool,
    /// Look for fades to and from black and cross-dissolves.
    pub transitions: bool,
    pub transition: TransitionOptions,
    pub credits: CreditsOptions,
    /// Where intermediate files go (the system temp dir when `None`); not configuration.
    #[serde(skip)]
    pub scratch_dir: Option<std::path::PathBuf>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            loudness: true,
            video: true,
            loudness_row_interval: 0.1,
            true_peak: false,
            analysis_width: 160,
            analysis_height: 90,
            skip_loop_filter: true,
            decode_threads: 1,
            black: BlackOptions::default(),
            shots: ShotOptions::default(),
            end_credits: true,
            transitions: true,
            transition: TransitionOptions::default(),
            credits: CreditsOptions::default(),
            scratch_dir: None,
        }
    }
}

/// blackdetect settings (its thresholds are relative to limited-range luma).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlackOptions {
    /// A pixel is black below this fraction of the luma range.
    pub pixel_threshold: f64,
    /// A frame is black when this fraction of its pixels is (Rekognition's MinCoveragePercentage 99).
    pub picture_ratio: f64,
    /// Shorter black runs are not reported.
    pub min_duration: f64,
}

impl Default for BlackOptions {
    fn default() -> Self {
        BlackOptions {
            pixel_threshold: 0.10,
            picture_ratio: 0.99,
            min_duration: 0.25,
        }
    }
}

/// scdet settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShotOptions {
    /// scdet threshold; its score scale depends on the analysis size: 5 finds hard cuts at 160x90.
    pub threshold: f64,
    /// Shortest shot, in frames: a detection fewer frames than this after the previous one is
    /// a repeat hit of the same cut (scdet scores the frame after a cut high too). 2 keeps a
    /// two-frame flash; raising it drops short shots with their closing cut.
    pub min_shot_frames: u64,
}

impl Default for ShotOptions {
    fn default() -> Self {
        ShotOptions {
            threshold: 5.0,
            min_shot_frames: 2,
        }
    }
}

/// The end-credits rule, on the levels (`levels`) of the 160x90 copy (8-bit limited-range luma): a dark
/// frame (`YAVG < dark_avg`) with sparse bright text (`YMAX >= text_min`, and the 90th
/// percentile `YHIGH < sparse_high`: under 10 % of pixels are bright) that moves
/// (`YDIF >= motion_min`). Runs of such frames (gaps up to `max_gap` s bridged) lasting at
/// least `min_duration` s that start in the second half of the video are end credits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreditsOptions {
    pub dark_avg: f64,
    pub text_min: f64,
    pub sparse_high: f64,
    pub motion_min: f64,
    pub max_gap: f64,
    pub min_duration: f64,
    /// Earliest start, as a fraction of the duration.
    pub earliest_start: f64,
}

impl Default for CreditsOptions {
    fn default() -> Self {
        CreditsOptions {
            dark_avg: 48.0,
            text_min: 120.0,
            sparse_high: 64.0,
            motion_min: 0.4,
            max_gap: 1.0,
            min_duration: 3.0,
            earliest_start: 0.5,
        }
    }
}

/// The result of one analysis pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub probe: ProbeInfo,
    /// One log per audio track, track 1 first (empty when loudness was not measured).
    pub loudness: Vec<LoudnessLog>,
    /// A GetSegmentDetection response (JobStatus SUCCEEDED, pages merged).
    pub segments: SegmentDetection,
}

/// Analyse `input` in one FFmpeg decode. `progress` receives the fraction decoded.
pub async fn analyze(
    input: &Path,
    opts: &AnalyzeOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<Analysis, EngineError> {
    let location = path_str(input)?;
    validate(opts)?;
    let info = probe_media(location).await?;
    let scratch = scratch_dir("cuepoint-analyze-", opts.scratch_dir.as_deref())?;
    let plan = AnalysisGraph::new(&info, opts, scratch.path(), None);

    if !plan.is_empty() {
        let args = plan.ffmpeg_args(input, opts);
        let mut fd3 = None;
        let mut levels = None;
        if plan.video_file.is_some() {
            let pipe = output_pipe()?;
            fd3 = Some(pipe.writer);
            let meter =
                LevelMeter::new(opts.analysis_width as usize, opts.analysis_height as usize);
            let reader = pipe.reader;
            levels = Some(tokio::task::spawn_blocking(move || {
                measure_frames(reader, meter)
            }));
        }
        let run =
            run_ffmpeg_piped(&args, info.probe.duration_seconds, location, progress, fd3).await;
        // FFmpeg has exited (or been killed), so the pipe ends: the reader finishes too.
        let levels = match levels {
            Some(task) => task.await.map_err(|e| EngineError::InvalidSpec {
                field: "analysis",
                detail: format!("measuring the frames panicked: {e}"),
            })?,
            None => Ok(Vec::new()),
        };
        let outcome = run?;
        let levels = levels?;

        let findings = match &plan.video_file {
            Some(vf) => Some(read_video(
                &info,
                opts,
                vf,
                &levels,
                plan.histogram_file.as_deref(),
            )?),
            None => None,
        };
        let mut loudness = Vec::new();
        for (_, file) in &plan.audio_files {
            loudness.push(read_loudness(
                file,
                opts.loudness_row_interval,
                opts.true_peak,
            )?);
        }
        check_complete(&info, findings.as_ref(), &plan, &outcome.stderr)?;
        let findings = findings.unwrap_or_default();
        let segments = segment_detection(&info, &findings, opts.shots.threshold);
        return Ok(Analysis {
            probe: info.probe.clone(),
            loudness,
            segments,
        });
    }
    let segments = segment_detection(&info, &VideoFindings::default(), opts.shots.threshold);
    Ok(Analysis {
        probe: info.probe,
        loudness: Vec::new(),
        segments,
    })
}

/// Segment detection over `input` (probed as `info`) in one FFmpeg decode that also hands the
/// frames `sampling` selects to `consume` (the vision models) while they are decoded, so the
/// local analyses of a video decode it once. Blocking: run it on a blocking thread.
///
/// `consume` may stop reading early (every model ended); the decode still runs to the end for
/// the segments. A decode that fails fails the whole pass, whatever `consume` made of it.
pub fn segments_with_samples<R>(
    input: &Path,
    info: &MediaInfo,
    opts: &AnalyzeOptions,
    sampling: Option<&SampleOptions>,
    consume: impl FnOnce(&mut dyn Iterator<Item = Result<TimedFrame, VisionError>>) -> R,
) -> Result<(SegmentDetection, R), EngineError> {
    let location = path_str(input)?;
    validate(opts)?;
    let opts = AnalyzeOptions {
        loudness: false,
        video: true,
        ..opts.clone()
    };
    let scratch = scratch_dir("cuepoint-analyze-", opts.scratch_dir.as_deref())?;
    let samples = sampling.map(sample_filter);
    let plan = AnalysisGraph::new(info, &opts, scratch.path(), samples.as_deref());
    if plan.is_empty() {
        // No video stream: nothing to decode, nothing to see.
        let consumed = consume(&mut std::iter::empty());
        let segments = segment_detection(info, &VideoFindings::default(), opts.shots.threshold);
        return Ok((segments, consumed));
    }
    let ffmpeg = locate_tool("ffmpeg", FFMPEG_ENV)?;
    let mut cmd = std::process::Command::new(&ffmpeg);
    // The samples' times and sizes come from `showinfo`, logged at the info level.
    let level = if samples.is_some() { "info" } else { "error" };
    cmd.args(["-nostdin", "-hide_banner", "-nostats", "-loglevel", level]);
    cmd.args(plan.ffmpeg_args(input, &opts));
    if samples.is_some() {
        cmd.args(["-map", "[vsample]"]).args(SAMPLE_OUTPUT);
    }
    tracing::debug!(?cmd, "running ffmpeg");
    let pipe = output_pipe()?;
    inherit_as_fd3(&mut cmd, &pipe.writer);
    let meter = LevelMeter::new(opts.analysis_width as usize, opts.analysis_height as usize);
    let reader = pipe.reader;
    let levels = std::thread::spawn(move || measure_frames(reader, meter));
    let sampler = FrameSampler::spawn(cmd, input);
    // The child has its copy; FFmpeg's exit must be the reader's end of file.
    drop(pipe.writer);
    let failed = |message: String| EngineError::ToolFailed {
        tool: "ffmpeg",
        input: location.to_string(),
        status: "failed".into(),
        message,
    };
    let mut sampler = match sampler {
        Ok(s) => s,
        Err(e) => {
            let _ = levels.join();
            return Err(failed(e.to_string()));
        }
    };
    let mut watched = Watched {
        frames: &mut sampler,
        error: None,
    };
    let consumed = consume(&mut watched);
    // Decode the rest for the segments (the samples are dropped unread).
    for frame in watched.by_ref() {
        if frame.is_err() {
            break;
        }
    }
    let error = watched.error.take();
    drop(sampler);
    let levels = levels
        .join()
        .map_err(|_| failed("measuring the frames panicked".into()))?;
    if let Some(message) = error {
        return Err(failed(message));
    }
    let levels = levels?;
    let video_file = plan
        .video_file
        .as_deref()
        .expect("a video graph has a video file");
    let findings = read_video(
        info,
        &opts,
        video_file,
        &levels,
        plan.histogram_file.as_deref(),
    )?;
    check_complete(info, Some(&findings), &plan, "")?;
    Ok((
        segment_detection(info, &findings, opts.shots.threshold),
        consumed,
    ))
}

/// The sampled frames, remembering the first error (the decode's failure).
struct Watched<'a> {
    frames: &'a mut FrameSampler,
    error: Option<String>,
}

impl Iterator for Watched<'_> {
    type Item = Result<TimedFrame, VisionError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.error.is_some() {
            return None;
        }
        let next = self.frames.next();
        if let Some(Err(e)) = &next {
            self.error = Some(e.to_string());
        }
        next
    }
}

pub(crate) fn path_str(p: &Path) -> Result<&str, EngineError> {
    p.to_str().ok_or_else(|| EngineError::InvalidSpec {
        field: "input",
        detail: format!("path {} is not UTF-8", p.display()),
    })
}

/// A temporary directory under `parent` (the system temp dir when `None`).
pub(crate) fn scratch_dir(
    prefix: &str,
    parent: Option<&Path>,
) -> Result<tempfile::TempDir, EngineError> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    match parent {
        Some(p) => b
            .tempdir_in(p)
            .map_err(|e| EngineError::io("creating scratch directory in", p, e)),
        None => b
            .tempdir()
            .map_err(|e| EngineError::io("creating scratch directory in", std::env::temp_dir(), e)),
    }
}

fn validate(opts: &AnalyzeOptions) -> Result<(), EngineError> {
    let blocks = opts.loudness_row_interval / 0.1;
    if !(blocks >= 0.999 && (blocks - blocks.round()).abs() < 1e-6) {
        return Err(EngineError::InvalidSpec {
            field: "loudness_row_interval",
            detail: format!(
                "{} s is not a positive multiple of 0.1 s",
                opts.loudness_row_interval
            ),
        });
    }
    if opts.analysis_width < 16 || opts.analysis_height < 16 {
        return Err(EngineError::InvalidSpec {
            field: "analysis size",
            detail: "at least 16x16".into(),
        });
    }
    Ok(())
}

/// The filter graph for one analysis run and the files it writes.
struct AnalysisGraph {
    graph: String,
    mapped: String,
    video_file: Option<PathBuf>,
    /// Tiny RGB copies of every `HISTOGRAM_EVERY`th frame, for the shots' colour histograms.
    histogram_file: Option<PathBuf>,
    /// (track, metadata file) in track order.
    audio_files: Vec<(u32, PathBuf)>,
}

impl AnalysisGraph {
    /// `samples`: a filter chain that picks frames for the vision models from the same decode
    /// (its output pad is `[vsample]`).
    fn new(info: &MediaInfo, opts: &AnalyzeOptions, dir: &Path, samples: Option<&str>) -> Self {
        let mut chains: Vec<String> = Vec::new();
        let mut mapped = String::new();
        let mut video_file = None;
        let mut histogram_file = None;
        if let (true, Some(v)) = (opts.video, &info.video) {
            let vf = dir.join("video.txt");
            let b = &opts.black;
            let source = match samples {
                Some(chain) => {
                    chains.push(format!(
                        "[0:{idx}]split=2[vsrc][vpick];[vpick]{chain}[vsample]",
                        idx = v.stream_index
                    ));
                    "[vsrc]".to_string()
                }
                None => format!("[0:{}]", v.stream_index),
            };
            let chain = format!(
                "{source}scale={w}:{h}:flags=fast_bilinear,format=yuv420p,\
                 blackdetect=d=0:pix_th={pix}:pic_th={pic},scdet=t={t},\
                 split=3[vh][vmain][vraw]",
                w = opts.analysis_width,
                h = opts.analysis_height,
                pix = b.pixel_threshold,
                pic = b.picture_ratio,
                t = opts.shots.threshold,
            );
            // The colour histograms come from the same decode: a 32x18 RGB copy of every
            // HISTOGRAM_EVERY-th frame, written raw.
            chains.push(chain);
            chains.push(format!(
                "[vh]select='not(mod(n\\,{HISTOGRAM_EVERY}))',\
                 scale={HISTOGRAM_W}:{HISTOGRAM_H}:flags=area,format=rgb24[hout]"
            ));
            histogram_file = Some(dir.join("histogram.rgb"));
            chains.push(format!(
                "[vmain]metadata=print:file={}[vout]",
                escape_filter_value(&vf.to_string_lossy())
            ));
            mapped = "[vout]".into();
            video_file = Some(vf);
        }
        let mut audio_files = Vec::new();
        if opts.loudness {
            for a in &info.audio {
                let af = dir.join(format!("track_{}.txt", a.track));
                let peak = if opts.true_peak { "true" } else { "sample" };
                let sink = if mapped.is_empty() {
                    mapped = format!("[aout{}]", a.track);
                    mapped.clone()
                } else {
                    ",anullsink".to_string()
                };
                chains.push(format!(
                    "[0:{idx}]ebur128@t{track}=metadata=1:peak={peak},ametadata=print:file={file}{sink}",
                    idx = a.stream_index,
                    track = a.track,
                    file = escape_filter_value(&af.to_string_lossy()),
                ));
                audio_files.push((a.track, af));
            }
        }
        AnalysisGraph {
            graph: chains.join(";"),
            mapped,
            video_file,
            histogram_file,
            audio_files,
        }
    }

    fn is_empty(&self) -> bool {
        self.mapped.is_empty()
    }

    /// FFmpeg's arguments for this graph on `input`: the mapped outputs, the histograms into
    /// their file and the raw analysis copy into `pipe:3` (the sampled frames, when there are
    /// any, are the caller's to map).
    fn ffmpeg_args(&self, input: &Path, opts: &AnalyzeOptions) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if opts.skip_loop_filter && self.video_file.is_some() {
            args.extend(["-skip_loop_filter:v".into(), "all".into()]);
        }
        if opts.decode_threads > 0 {
            args.extend(["-threads".into(), opts.decode_threads.to_string().into()]);
        }
        args.extend(["-i".into(), input.as_os_str().to_owned()]);
        // Filter slice threads cost more than they save on 160x90 frames and audio meters.
        args.extend(["-filter_complex_threads".into(), "1".into()]);
        args.extend(["-filter_complex".into(), self.graph.clone().into()]);
        args.extend([
            "-map".into(),
            self.mapped.clone().into(),
            "-f".into(),
            "null".into(),
            "-".into(),
        ]);
        if let Some(hf) = &self.histogram_file {
            args.extend([
                "-map".into(),
                "[hout]".into(),
                "-fps_mode".into(),
                "passthrough".into(),
                "-f".into(),
                "rawvideo".into(),
                hf.as_os_str().to_owned(),
            ]);
        }
        if self.video_file.is_some() {
            args.extend(
                [
                    "-map",
                    "[vraw]",
                    "-fps_mode",
                    "passthrough",
                    "-f",
                    "rawvideo",
                    "pipe:3",
                ]
                .map(OsString::from),
            );
        }
        args
    }
}

/// Measure every raw frame read from `pipe` until it ends. Always reads to the end, so FFmpeg
/// never blocks on a full pipe.
fn measure_frames(
    mut pipe: std::fs::File,
    mut meter: LevelMeter,
) -> Result<Vec<FrameLevels>, EngineError> {
    use std::io::Read;
    let mut frame = vec![0u8; meter.frame_len()];
    let mut out = Vec::new();
    loop {
        let mut filled = 0;
        while filled < frame.len() {
            match pipe.read(&mut frame[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(EngineError::io(
                        "reading the analysis frames from",
                        "ffmpeg",
                        e,
                    ))
                }
            }
        }
        if filled < frame.len() {
            // A torn last frame (FFmpeg stopped mid-frame) is left out; the frame count check
            // against the metadata then reports it.
            return Ok(out);
        }
        out.extend(meter.measure(&frame));
    }
}

/// Seconds since the start of the file for a metadata frame. FFmpeg (without `-copyts`)
/// already shifts every input by `-format.start_time`, so filter timestamps start at 0 even
/// for MPEG-TS (1.4 s) or edit lists; subtracting the start time again would be wrong.
fn frame_seconds(f: &MetaFrame, time_base: Option<crate::probe::Rational>) -> Option<f64> {
    match (f.pts, time_base) {
        (Some(pts), Some(tb)) => Some(pts as f64 * tb.num as f64 / tb.den as f64),
        _ => f.pts_time,
    }
}

fn read_video(
    info: &MediaInfo,
    opts: &AnalyzeOptions,
    video_file: &Path,
    levels: &[FrameLevels],
    histogram_file: Option<&Path>,
) -> Result<VideoFindings, EngineError> {
    let Some(video) = &info.video else {
        return Ok(VideoFindings::default());
    };
    let clock = FrameClock::new(video.frame_rate);
    let mut seen_any = false;
    let mut last_frame = 0u64;
    let mut black_open: Option<u64> = None;
    let mut black_runs: Vec<(u64, u64)> = Vec::new();
    let mut hits: Vec<Cut> = Vec::new();
    let mut stats: Vec<FrameStat> = Vec::new();
    let mut signatures: Vec<(u64, Vec<f64>)> = Vec::new();
    let mut dark: Vec<DarkFrame> = Vec::new();
    // The k-th metadata frame is the k-th raw frame the levels were measured on.
    let mut index = 0usize;
    for_each_frame(video_file, |f| {
        let level = levels.get(index).copied();
        index += 1;
        let Some(t) = frame_seconds(f, video.time_base) else {
            return;
        };
        let frame = clock.frame_at(t);
        seen_any = true;
        last_frame = last_frame.max(frame);
        // blackdetect (d=0) tags the first black frame with black_start and the first frame
        // after the run with black_end; runs are paired here so the minimum duration is ours.
        if f.get("lavfi.black_end").is_some() {
            if let Some(start) = black_open.take() {
                black_runs.push((start, frame));
            }
        }
        if f.get("lavfi.black_start").is_some() {
            black_open = Some(frame);
        }
        if let Some(l) = level {
            signatures.push((frame, l.signature()));
            if let Some(diff) = f.get_f64("lavfi.scd.mafd") {
                stats.push(FrameStat {
                    frame,
                    luma: l.y_avg,
                    diff,
                });
            }
            if l.y_avg < opts.credits.dark_avg {
                dark.push(DarkFrame {
                    frame,
                    avg: l.y_avg,
                    max: l.y_max,
                    high: l.y_high,
                    dif: l.y_dif,
                });
            }
        }
        if f.get("lavfi.scd.time").is_some() {
            hits.push(Cut {
                frame,
                score: f.get_f64("lavfi.scd.score").unwrap_or(opts.shots.threshold),
            });
        }
    })?;
    if index != levels.len() {
        return Err(EngineError::Parse {
            path: video_file.to_path_buf(),
            line: 0,
            detail: format!(
                "{index} frames in the metadata but {} measured frames",
                levels.len()
            ),
        });
    }
    if !seen_any {
        return Ok(VideoFindings::default());
    }
    let total_frames = last_frame + 1;
    if let Some(start) = black_open {
        // A run reaching the end of the file has no black_end: it ends with the last frame.
        black_runs.push((start, total_frames));
    }

    let fps = clock.fps();
    let end_credits = if opts.end_credits {
        credit_runs(&dark, &opts.credits, fps, total_frames)
    } else {
        Vec::new()
    };
    let min_black = (opts.black.min_duration * fps).round().max(1.0) as u64;
    let black = subtract(&black_runs, &end_credits)
        .into_iter()
        .filter(|(s, e)| e - s >= min_black)
        .map(|(s, e)| FrameSpan {
            start: s,
            end: e - 1,
        })
        .collect();
    let mut cuts = merge_cuts(hits, opts.shots.min_shot_frames);
    let found = if opts.transitions {
        stats.sort_by_key(|s| s.frame);
        transitions::detect(&stats, &black_runs, &opts.transition)
    } else {
        Vec::new()
    };
    // A gradual transition ends a shot as a cut does, where scdet saw none.
    let frames: Vec<u64> = cuts.iter().map(|c| c.frame).collect();
    for frame in transitions::boundaries(&found, &black_runs, &frames) {
        if frame > 0 && frame < total_frames {
            cuts.push(Cut {
                frame,
                score: opts.shots.threshold,
            });
        }
    }
    cuts.sort_by_key(|c| c.frame);
    signatures.sort_by_key(|(f, _)| *f);
    let histograms = match histogram_file {
        Some(hf) => {
            let bytes = std::fs::read(hf).map_err(|e| EngineError::io("reading", hf, e))?;
            frame_histograms(&bytes)
        }
        None => Vec::new(),
    };
    Ok(VideoFindings {
        transitions: found,
        signatures,
        histograms,
        total_frames,
        black,
        end_credits: end_credits
            .into_iter()
            .map(|(s, e)| FrameSpan {
                start: s,
                end: e - 1,
            })
            .collect(),
        cuts,
    })
}

/// Every this many frames one goes to the colour histograms.
const HISTOGRAM_EVERY: u64 = 5;
const HISTOGRAM_W: usize = 32;
const HISTOGRAM_H: usize = 18;
/// Levels per colour channel: 4 x 4 x 4 = 64 bins.
const HISTOGRAM_LEVELS: usize = 4;

/// The colour histogram (64 RGB bins, fractions of the pixels) of each frame in the raw file:
/// frame `k` of the file is decoded frame `k * HISTOGRAM_EVERY`.
pub(crate) fn frame_histograms(raw: &[u8]) -> Vec<(u64, Vec<f64>)> {
    let size = HISTOGRAM_W * HISTOGRAM_H * 3;
    let pixels = (HISTOGRAM_W * HISTOGRAM_H) as f64;
    raw.chunks_exact(size)
        .enumerate()
        .map(|(k, frame)| {
            let mut bins = vec![0.0; HISTOGRAM_LEVELS.pow(3)];
            for px in frame.chunks_exact(3) {
                let q = |v: u8| v as usize * HISTOGRAM_LEVELS / 256;
                bins[(q(px[0]) * HISTOGRAM_LEVELS + q(px[1])) * HISTOGRAM_LEVELS + q(px[2])] +=
                    1.0 / pixels;
            }
            (k as u64 * HISTOGRAM_EVERY, bins)
        })
        .collect()
}

/// Keep the first hit of every burst: a hit fewer than `min_shot` frames after the previous
/// hit is a repeat of the same cut (bursts chain: each hit extends the burst). Frame 0 is
/// never a cut (the first shot starts there anyway).
pub(crate) fn merge_cuts(mut hits: Vec<Cut>, min_shot: u64) -> Vec<Cut> {
    hits.sort_by_key(|c| c.frame);
    let mut kept: Vec<Cut> = Vec::new();
    let mut previous: Option<u64> = None;
    for h in hits.into_iter().filter(|c| c.frame > 0) {
        let repeat = previous.is_some_and(|p| h.frame - p < min_shot.max(1));
        previous = Some(h.frame);
        match kept.last_mut() {
            Some(last) if repeat => last.score = last.score.max(h.score),
            _ => kept.push(h),
        }
    }
    kept
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct DarkFrame {
    pub frame: u64,
    pub avg: f64,
    pub max: f64,
    pub high: f64,
    pub dif: f64,
}

/// Frame runs `[start, end)` that satisfy the end-credits rule.
pub(crate) fn credit_runs(
    dark: &[DarkFrame],
    o: &CreditsOptions,
    fps: f64,
    total_frames: u64,
) -> Vec<(u64, u64)> {
    let max_gap = (o.max_gap * fps).round() as u64;
    let min_len = (o.min_duration * fps).round() as u64;
    let earliest = (o.earliest_start * total_frames as f64) as u64;
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for d in dark.iter().filter(|d| {
        d.avg < o.dark_avg && d.max >= o.text_min && d.high < o.sparse_high && d.dif >= o.motion_min
    }) {
        match runs.last_mut() {
            Some((_, end)) if d.frame <= *end + max_gap => *end = d.frame + 1,
            _ => runs.push((d.frame, d.frame + 1)),
        }
    }
    runs.retain(|(s, e)| e - s >= min_len && *s >= earliest);
    runs
}

/// `a` minus the union of `b` (both lists of `[start, end)`).
pub(crate) fn subtract(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(s, e) in a {
        let mut pieces = vec![(s, e)];
        for &(bs, be) in b {
            pieces = pieces
                .into_iter()
                .flat_map(|(ps, pe)| {
                    if be <= ps || bs >= pe {
                        vec![(ps, pe)]
                    } else {
                        let mut v = Vec::new();
                        if bs > ps {
                            v.push((ps, bs));
                        }
                        if be < pe {
                            v.push((be, pe));
                        }
                        v
                    }
                })
                .collect();
        }
        out.extend(pieces);
    }
    out
}

/// Build a track's loudness log from its ebur128 metadata file.
// `%` rather than `is_multiple_of`: the workspace's rust-version is 1.85.
#[allow(clippy::manual_is_multiple_of)]
pub(crate) fn read_loudness(
    file: &Path,
    row_interval: f64,
    true_peak: bool,
) -> Result<LoudnessLog, EngineError> {
    let step = (row_interval / 0.1).round().max(1.0) as u64;
    let mut rows = Vec::new();
    let mut max_short: Option<f64> = None;
    let mut max_momentary: Option<f64> = None;
    let mut integrated = UNGATED_LUFS;
    let mut peak = SILENCE_DBTP;
    let mut index = 0u64;
    let peak_prefix = if true_peak {
        "lavfi.r128.true_peaks_ch"
    } else {
        "lavfi.r128.sample_peaks_ch"
    };
    for_each_frame(file, |f| {
        // Relative to the file start already (see `frame_seconds`).
        let Some(t0) = f.pts_time else {
            return;
        };
        // The reading refers to the window ending with this 100 ms block.
        let seconds = ((t0 + 0.1) * 1000.0).round() / 1000.0;
        let m = lufs(f.get_f64("lavfi.r128.M"));
        let s = lufs(f.get_f64("lavfi.r128.S"));
        integrated = f
            .get_f64("lavfi.r128.I")
            .filter(|v| v.is_finite())
            .unwrap_or(integrated);
        let linear = f
            .values
            .iter()
            .filter(|(k, _)| k.starts_with(peak_prefix))
            .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
            .fold(0.0_f64, f64::max);
        let row_peak = to_dbtp(linear);
        peak = peak.max(row_peak);
        // Skip the window-fill readings: short-term needs 3 s, momentary 0.4 s.
        if seconds >= 3.0 - 1e-9 {
            max_short = Some(max_short.map_or(s, |x: f64| x.max(s)));
        }
        if seconds >= 0.4 - 1e-9 {
            max_momentary = Some(max_momentary.map_or(m, |x: f64| x.max(m)));
        }
        index += 1;
        if index % step == 0 {
            rows.push(LoudnessRow {
                seconds,
                momentary: m,
                integrated,
                short_term: s,
                true_peak: row_peak,
            });
        }
    })?;
    let input_max_loudness = max_short.or(max_momentary).unwrap_or(EMPTY_WINDOW_LUFS);
    Ok(LoudnessLog {
        rows,
        summary: LoudnessSummary {
            input_integrated: integrated,
            input_max_loudness,
            input_true_peak: peak,
        },
    })
}

/// A momentary/short-term reading as a number. FFmpeg 5.1's ebur128 reads `nan` when a window
/// turns digitally silent after sound (its running energy sum rounds to slightly below zero)
/// and `-inf` for zero energy: both are silence, reported as the empty-window value.
fn lufs(reading: Option<f64>) -> f64 {
    match reading {
        Some(v) if v.is_finite() => v,
        _ => EMPTY_WINDOW_LUFS,
    }
}

fn to_dbtp(linear: f64) -> f64 {
    if linear > 0.0 {
        let db = 20.0 * linear.log10();
        (db * 1000.0).round() / 1000.0
    } else {
        SILENCE_DBTP
    }
}

/// Fail when the decode stopped well before the announced duration (a truncated file decodes
/// "successfully" up to where the data ends).
fn check_complete(
    info: &MediaInfo,
    findings: Option<&VideoFindings>,
    plan: &AnalysisGraph,
    stderr: &str,
) -> Result<(), EngineError> {
    let expected = info.probe.duration_seconds;
    let decoded = match (findings, &info.video) {
        (Some(f), Some(v)) if f.total_frames > 0 => {
            Some(FrameClock::new(v.frame_rate).seconds(f.total_frames))
        }
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    let decoded = match decoded {
        Some(d) => d,
        None => {
            // Audio only: the last loudness block.
            let mut end = 0.0_f64;
            if let Some((_, file)) = plan.audio_files.first() {
                for_each_frame(file, |f| {
                    if let Some(t) = f.pts_time {
                        end = end.max(t + 0.1);
                    }
                })?;
            } else {
                return Ok(());
            }
            end
        }
    };
    let tolerance = (0.05 * expected).max(2.0);
    if decoded + tolerance < expected {
        return Err(EngineError::Truncated {
            input: info.location.clone(),
            decoded,
            expected,
            message: if stderr.trim().is_empty() {
                String::new()
            } else {
                summarize_stderr(stderr)
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_histograms_count_pixels_per_colour_bin() {
        let size = HISTOGRAM_W * HISTOGRAM_H;
        // Frame 0: all pure red; frame 1: half black, half white.
        let mut raw = Vec::new();
        for _ in 0..size {
            raw.extend([255u8, 0, 0]);
        }
        for i in 0..size {
            let v = if i < size / 2 { 0 } else { 255 };
            raw.extend([v, v, v]);
        }
        raw.extend([1, 2]); // a torn last frame is ignored
        let h = frame_histograms(&raw);
        assert_eq!(h.len(), 2);
        assert_eq!(h[1].0, HISTOGRAM_EVERY);
        let red = (3 * HISTOGRAM_LEVELS) * HISTOGRAM_LEVELS;
        assert!((h[0].1[red] - 1.0).abs() < 1e-9);
        assert!((h[1].1[0] - 0.5).abs() < 1e-9);
        assert!((h[1].1[HISTOGRAM_LEVELS.pow(3) - 1] - 0.5).abs() < 1e-9);
        assert!((h[1].1.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn repeat_hits_merge_into_the_first() {
        let hits = vec![
            Cut {
                frame: 76,
                score: 12.0,
            },
            Cut {
                frame: 75,
                score: 30.0,
            },
            Cut {
                frame: 0,
                score: 50.0,
            },
            Cut {
                frame: 200,
                score: 8.0,
            },
            Cut {
                frame: 212,
                score: 9.0,
            },
            Cut {
                frame: 213,
                score: 9.0,
            },
        ];
        let kept = merge_cuts(hits.clone(), 2);
        let frames: Vec<u64> = kept.iter().map(|c| c.frame).collect();
        // 75/76 is one cut; 200 and 212 end and start shots of 12 frames; 213 repeats 212.
        assert_eq!(frames, vec![75, 200, 212]);
        assert_eq!(kept[0].score, 30.0);
        assert_eq!(kept[2].score, 9.0);
        let frames: Vec<u64> = merge_cuts(hits, 13).iter().map(|c| c.frame).collect();
        assert_eq!(frames, vec![75, 200]);
    }

    #[test]
    fn subtracting_intervals() {
        assert_eq!(
            subtract(&[(0, 10), (20, 30)], &[(5, 25)]),
            vec![(0, 5), (25, 30)]
        );
        assert_eq!(subtract(&[(0, 10)], &[(0, 10)]), vec![]);
        assert_eq!(
            subtract(&[(0, 10)], &[(2, 3), (5, 6)]),
            vec![(0, 2), (3, 5), (6, 10)]
        );
    }

    #[test]
    fn credits_need_dark_sparse_bright_moving_frames_late_enough() {
        let o = CreditsOptions::default();
        let credit = |frame| DarkFrame {
            frame,
            avg: 20.0,
            max: 200.0,
            high: 17.0,
            dif: 2.0,
        };
        let still = |frame| DarkFrame {
            frame,
            avg: 20.0,
            max: 200.0,
            high: 17.0,
            dif: 0.0,
        };
        let mut frames: Vec<DarkFrame> = (400..500).map(credit).collect();
        frames.retain(|d| d.frame != 450); // one missed frame is bridged
        assert_eq!(credit_runs(&frames, &o, 25.0, 500), vec![(400, 500)]);
        let early: Vec<DarkFrame> = (100..200).map(credit).collect();
        assert!(credit_runs(&early, &o, 25.0, 500).is_empty());
        let title_card: Vec<DarkFrame> = (400..500).map(still).collect();
        assert!(credit_runs(&title_card, &o, 25.0, 500).is_empty());
    }

    #[test]
    fn row_interval_must_be_a_multiple_of_a_block() {
        let mut o = AnalyzeOptions::default();
        assert!(validate(&o).is_ok());
        o.loudness_row_interval = 1.0;
        assert!(validate(&o).is_ok());
        o.loudness_row_interval = 0.15;
        assert!(validate(&o).is_err());
        o.loudness_row_interval = 0.0;
        assert!(validate(&o).is_err());
    }
}
