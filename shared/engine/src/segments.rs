//! Assembling a Rekognition `GetSegmentDetection` response from frame-level findings.
//!
//! Conventions (documented because Rekognition's reference leaves some open):
//! - `StartFrameNumber`/`EndFrameNumber` are inclusive frame indices from 0;
//!   `DurationFrames = End - Start + 1`. Shots tile the video: each ends one frame before the
//!   next starts, the last ends on the last frame.
//! - Timestamps and timecodes are *instants*: `Start*` is the start of the first frame,
//!   `End*` the end of the last frame (= the start of the next segment), so
//!   `DurationMillis = EndTimestampMillis - StartTimestampMillis` and `DurationSMPTE` is the
//!   duration in frames as a timecode. Milliseconds are rounded down, as Rekognition does.
//! - Segments are ordered as Rekognition orders them: technical cues first, then shots, each by
//!   start time.

use cuepoint_core::rekognition::{
    AudioMetadata, Segment, SegmentDetection, ShotSegment, TechnicalCueSegment, VideoMetadata,
    CUE_BLACK_FRAMES, CUE_DISSOLVE, CUE_END_CREDITS, CUE_FADE_IN, CUE_FADE_OUT, SEGMENT_SHOT,
    SEGMENT_TECHNICAL_CUE,
};
use cuepoint_core::transitions::{Transition, TransitionKind};
use serde_json::{json, Map, Value};

use crate::probe::MediaInfo;
use crate::timecode::FrameClock;

/// `ModelVersion` reported in `SelectedSegmentTypes`.
pub const MODEL_VERSION: &str = "cuepoint-ffmpeg-1";

/// A span of frames `[start, end]`, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpan {
    pub start: u64,
    pub end: u64,
}

/// A shot boundary: the first frame of a new shot and the detector's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cut {
    pub frame: u64,
    pub score: f64,
}

/// What the video pass found, in frames.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoFindings {
    /// Frames decoded (the last frame index + 1).
    pub total_frames: u64,
    pub black: Vec<FrameSpan>,
    pub end_credits: Vec<FrameSpan>,
    /// Shot boundaries after merging repeat hits, frame 0 excluded, ascending.
    pub cuts: Vec<Cut>,
    /// Fades and dissolves, each over its frames.
    pub transitions: Vec<Transition>,
    /// Per-frame picture signatures (ascending frames), averaged per shot into the shot's
    /// `CuepointKeyFrame.Signature`.
    pub signatures: Vec<(u64, Vec<f64>)>,
    /// Colour histograms of sampled frames (ascending frames), averaged per shot into the
    /// shot's `CuepointKeyFrame.Histogram`.
    pub histograms: Vec<(u64, Vec<f64>)>,
}

/// Build the response for `info`'s video with `findings`. Without a video stream the response
/// has no `VideoMetadata` and no segments.
pub fn segment_detection(
    info: &MediaInfo,
    findings: &VideoFindings,
    shot_threshold: f64,
) -> SegmentDetection {
    let mut out = SegmentDetection {
        job_status: Some("SUCCEEDED".into()),
        audio_metadata: info
            .audio
            .iter()
            .map(|a| AudioMetadata {
                codec: Some(a.codec.clone()),
                duration_millis: Some(seconds_to_millis(
                    a.duration.unwrap_or(info.probe.duration_seconds),
                )),
                sample_rate: Some(a.sample_rate as u64),
                number_of_channels: Some(a.channels as u64),
                extra: Map::new(),
            })
            .collect(),
        selected_segment_types: Some(json!([
            {"Type": SEGMENT_TECHNICAL_CUE, "ModelVersion": MODEL_VERSION},
            {"Type": SEGMENT_SHOT, "ModelVersion": MODEL_VERSION}
        ])),
        ..Default::default()
    };
    let Some(video) = &info.video else { return out };
    let clock = FrameClock::new(video.frame_rate);
    out.video_metadata.push(VideoMetadata {
        codec: Some(video.codec.clone()),
        duration_millis: Some(seconds_to_millis(
            video.duration.unwrap_or(info.probe.duration_seconds),
        )),
        format: Some(info.format_long_name.clone()),
        frame_rate: Some(clock.fps()),
        frame_height: Some(video.height),
        frame_width: Some(video.width),
        color_range: Some(
            if video.color_range.as_deref() == Some("pc") {
                "FULL"
            } else {
                "LIMITED"
            }
            .into(),
        ),
        extra: Map::new(),
    });
    if findings.total_frames == 0 {
        return out;
    }
    let last = findings.total_frames - 1;

    let mut cues: Vec<(FrameSpan, &str, f64)> = Vec::new();
    cues.extend(findings.black.iter().map(|s| (*s, CUE_BLACK_FRAMES, 99.0)));
    cues.extend(
        findings
            .end_credits
            .iter()
            .map(|s| (*s, CUE_END_CREDITS, 80.0)),
    );
    cues.extend(findings.transitions.iter().map(|t| {
        let cue = match t.kind {
            TransitionKind::FadeOut => CUE_FADE_OUT,
            TransitionKind::FadeIn => CUE_FADE_IN,
            TransitionKind::Dissolve => CUE_DISSOLVE,
        };
        (
            FrameSpan {
                start: t.start,
                end: t.end,
            },
            cue,
            80.0,
        )
    }));
    cues.sort_by_key(|(s, _, _)| (s.start, s.end));
    for (span, cue, confidence) in cues {
        let mut seg = segment(&clock, SEGMENT_TECHNICAL_CUE, clamp(span, last));
        seg.technical_cue_segment = Some(TechnicalCueSegment {
            cue_type: cue.into(),
            confidence: Some(confidence),
        });
        out.segments.push(seg);
    }

    let mut starts: Vec<(u64, Option<f64>)> = vec![(0, None)];
    starts.extend(
        findings
            .cuts
            .iter()
            .filter(|c| c.frame > 0 && c.frame <= last)
            .map(|c| (c.frame, Some(c.score))),
    );
    starts.dedup_by_key(|(f, _)| *f);
    for (i, (start, score)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map(|(next, _)| next - 1).unwrap_or(last);
        let mut seg = segment(&clock, SEGMENT_SHOT, FrameSpan { start: *start, end });
        let mut key_frame = Map::new();
        if let Some(sig) = shot_signature(&findings.signatures, *start, end, 10.0) {
            key_frame.insert("Signature".into(), json!(sig));
        }
        if let Some(h) = shot_signature(&findings.histograms, *start, end, 1000.0) {
            key_frame.insert("Histogram".into(), json!(h));
        }
        if !key_frame.is_empty() {
            seg.extra.insert(
                cuepoint_core::scenes::KEY_FRAME_FIELD.into(),
                Value::Object(key_frame),
            );
        }
        seg.shot_segment = Some(ShotSegment {
            index: Some(i as u64),
            confidence: Some(shot_confidence(*score, shot_threshold)),
        });
        out.segments.push(seg);
    }
    out
}

/// The mean signature of a shot's frames, leaving out a frame at each end when the shot is
/// long enough (a cut's neighbours may blend in the encode); rounded to 1/`scale`.
fn shot_signature(
    frames: &[(u64, Vec<f64>)],
    start: u64,
    end: u64,
    scale: f64,
) -> Option<Vec<f64>> {
    let (lo, hi) = if end >= start + 4 {
        (start + 1, end - 1)
    } else {
        (start, end)
    };
    let a = frames.partition_point(|(f, _)| *f < lo);
    let b = frames.partition_point(|(f, _)| *f <= hi);
    let picked = &frames[a..b];
    let first = picked.first()?;
    let mut sum = vec![0.0; first.1.len()];
    for (_, sig) in picked {
        for (s, v) in sum.iter_mut().zip(sig) {
            *s += v;
        }
    }
    Some(
        sum.into_iter()
            .map(|s| (s / picked.len() as f64 * scale).round() / scale)
            .collect(),
    )
}

/// Confidence of a shot boundary from the scene-change score: 50 at the threshold, towards 100
/// for clear cuts. The first shot (no boundary) is certain.
fn shot_confidence(score: Option<f64>, threshold: f64) -> f64 {
    match score {
        None => 100.0,
        Some(s) if s + threshold > 0.0 => (100.0 * s / (s + threshold) * 1000.0).round() / 1000.0,
        Some(_) => 50.0,
    }
}

fn clamp(span: FrameSpan, last: u64) -> FrameSpan {
    let end = span.end.min(last);
    FrameSpan {
        start: span.start.min(end),
        end,
    }
}

fn segment(clock: &FrameClock, segment_type: &str, span: FrameSpan) -> Segment {
    let start_ms = clock.millis(span.start);
    let end_ms = clock.millis(span.end + 1);
    let frames = span.end - span.start + 1;
    Segment {
        segment_type: segment_type.into(),
        start_timestamp_millis: start_ms,
        end_timestamp_millis: end_ms,
        duration_millis: end_ms - start_ms,
        start_timecode_smpte: Some(clock.smpte(span.start)),
        end_timecode_smpte: Some(clock.smpte(span.end + 1)),
        duration_smpte: Some(clock.smpte(frames)),
        technical_cue_segment: None,
        shot_segment: None,
        start_frame_number: Some(span.start),
        end_frame_number: Some(span.end),
        duration_frames: Some(frames),
        extra: Map::<String, Value>::new(),
    }
}

fn seconds_to_millis(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1000.0 + 1e-6).floor() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{AudioDetail, Rational, VideoDetail};
    use cuepoint_core::asset::ProbeInfo;

    fn info() -> MediaInfo {
        MediaInfo {
            location: "x.mov".into(),
            probe: ProbeInfo {
                container: "mov".into(),
                duration_seconds: 20.0,
                ..Default::default()
            },
            format_name: "mov,mp4".into(),
            format_long_name: "QuickTime / MOV".into(),
            start_time: 0.0,
            video: Some(VideoDetail {
                stream_index: 0,
                codec: "h264".into(),
                width: 320,
                height: 180,
                frame_rate: Rational::new(25, 1),
                time_base: Some(Rational::new(1, 12800)),
                color_range: None,
                pix_fmt: None,
                duration: Some(20.0),
                frames: Some(500),
            }),
            audio: vec![AudioDetail {
                track: 1,
                stream_index: 1,
                codec: "pcm_s24le".into(),
                channels: 1,
                sample_rate: 48000,
                duration: Some(20.0),
            }],
        }
    }

    #[test]
    fn shots_tile_the_timeline_and_cues_come_first() {
        let findings = VideoFindings {
            total_frames: 500,
            black: vec![FrameSpan {
                start: 175,
                end: 224,
            }],
            end_credits: vec![],
            cuts: vec![
                Cut {
                    frame: 75,
                    score: 20.0,
                },
                Cut {
                    frame: 175,
                    score: 30.0,
                },
            ],
            transitions: vec![Transition {
                kind: TransitionKind::Dissolve,
                start: 300,
                end: 324,
            }],
            // Frames 0-74 (shot 0): a signature on frames 10 and 11 only.
            signatures: vec![(10, vec![10.0, 20.0]), (11, vec![11.0, 21.0])],
            histograms: vec![(10, vec![0.25, 0.75])],
        };
        let d = segment_detection(&info(), &findings, 5.0);
        let first_shot = d.segments.iter().find(|s| s.is_shot()).unwrap();
        assert_eq!(
            first_shot.extra[cuepoint_core::scenes::KEY_FRAME_FIELD]["Signature"],
            json!([10.5, 20.5])
        );
        assert_eq!(
            first_shot.extra[cuepoint_core::scenes::KEY_FRAME_FIELD]["Histogram"],
            json!([0.25, 0.75])
        );
        let dissolve = &d.segments[1];
        assert_eq!(dissolve.cue_type(), Some(CUE_DISSOLVE));
        assert_eq!(
            (
                dissolve.start_timestamp_millis,
                dissolve.end_timestamp_millis
            ),
            (12000, 13000)
        );
        assert_eq!(d.video_metadata[0].duration_millis, Some(20000));
        assert_eq!(d.video_metadata[0].color_range.as_deref(), Some("LIMITED"));
        assert_eq!(d.audio_metadata[0].sample_rate, Some(48000));
        let black = &d.segments[0];
        assert_eq!(black.cue_type(), Some(CUE_BLACK_FRAMES));
        assert_eq!(
            (
                black.start_timestamp_millis,
                black.end_timestamp_millis,
                black.duration_millis
            ),
            (7000, 9000, 2000)
        );
        assert_eq!(
            (
                black.start_frame_number,
                black.end_frame_number,
                black.duration_frames
            ),
            (Some(175), Some(224), Some(50))
        );
        assert_eq!(black.start_timecode_smpte.as_deref(), Some("00:00:07:00"));
        assert_eq!(black.end_timecode_smpte.as_deref(), Some("00:00:09:00"));
        assert_eq!(black.duration_smpte.as_deref(), Some("00:00:02:00"));
        let shots: Vec<_> = d.segments.iter().filter(|s| s.is_shot()).collect();
        assert_eq!(shots.len(), 3);
        assert_eq!(shots[0].end_frame_number, Some(74));
        assert_eq!(shots[1].start_frame_number, Some(75));
        assert_eq!(shots[2].end_frame_number, Some(499));
        assert_eq!(shots[2].end_timestamp_millis, 20000);
        assert_eq!(shots[2].shot_segment.as_ref().unwrap().index, Some(2));
        assert_eq!(
            shots[1].shot_segment.as_ref().unwrap().confidence,
            Some(80.0)
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["SelectedSegmentTypes"][1]["Type"], "SHOT");
        assert_eq!(
            json["Segments"][0]["TechnicalCueSegment"]["Type"],
            "BlackFrames"
        );
    }
}
