//! `ffprobe` on a source: what the asset record keeps (`ProbeInfo`) plus the details the engine
//! needs to turn FFmpeg timestamps into frames (time bases, start time, exact frame rate).
//!
//! ffprobe's JSON mixes strings and numbers (`duration`, `sample_rate`, `nb_frames`,
//! `start_time` are strings; `index`, `width`, `channels` numbers) and omits fields freely (MKV
//! keeps stream durations only in `tags.DURATION`), so every field is read leniently.

use std::ffi::OsStr;
use std::path::Path;

use async_trait::async_trait;
use cuepoint_core::asset::{AudioTrackInfo, ProbeInfo, VideoStreamInfo};
use cuepoint_runtime::ports::{PortError, ProbeError, Prober};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EngineError;
use crate::tools::{run_ffprobe, summarize_stderr};

/// An exact rational number (frame rates, time bases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rational {
    pub num: u64,
    pub den: u64,
}

impl Rational {
    pub const fn new(num: u64, den: u64) -> Self {
        Rational { num, den }
    }

    /// Parse `30000/1001`, `25/1` or `25`; `None` for `0/0` and other non-positive values.
    pub fn parse(s: &str) -> Option<Self> {
        let (n, d) = match s.trim().split_once('/') {
            Some((n, d)) => (n.trim().parse::<u64>().ok()?, d.trim().parse::<u64>().ok()?),
            None => (s.trim().parse::<u64>().ok()?, 1),
        };
        (n > 0 && d > 0).then_some(Rational { num: n, den: d })
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

impl std::fmt::Display for Rational {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// The video stream the engine analyses (the first one that is not cover art).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoDetail {
    pub stream_index: u32,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub frame_rate: Rational,
    pub time_base: Option<Rational>,
    /// ffprobe `color_range`: `tv` (limited), `pc` (full) or absent.
    pub color_range: Option<String>,
    pub pix_fmt: Option<String>,
    pub duration: Option<f64>,
    pub frames: Option<u64>,
}

/// One audio track (an audio stream), numbered from 1 in stream order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioDetail {
    pub track: u32,
    pub stream_index: u32,
    pub codec: String,
    pub channels: u32,
    pub sample_rate: u32,
    pub duration: Option<f64>,
}

/// Everything ffprobe said that the engine uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    pub location: String,
    /// What the asset record keeps.
    pub probe: ProbeInfo,
    /// ffprobe `format_name`, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format_name: String,
    /// ffprobe `format_long_name`, e.g. `QuickTime / MOV` (Rekognition's `Format`).
    pub format_long_name: String,
    /// `format.start_time` (1.4 s for MPEG-TS, non-zero with edit lists). FFmpeg shifts its
    /// inputs by it unless `-copyts`, so filter timestamps already start at 0; subtract it only
    /// from raw stream timestamps (ffprobe packets, `-copyts` runs).
    pub start_time: f64,
    pub video: Option<VideoDetail>,
    pub audio: Vec<AudioDetail>,
}

/// Probe a source (local path or URL) for the asset record.
///
/// A zero-byte, corrupt or stream-less file gives `ProbeError::Unusable` carrying ffprobe's
/// message; a missing local file gives `PortError::NotFound`; a missing ffprobe a permanent
/// port error naming the tool.
pub async fn probe(location: &str) -> Result<ProbeInfo, ProbeError> {
    if !looks_like_url(location) && !Path::new(location).exists() {
        return Err(ProbeError::Port(PortError::NotFound(format!(
            "no such file: {location}"
        ))));
    }
    Ok(probe_media(location).await?.probe)
}

/// Probe with the details the engine needs (time bases, start time, exact rates).
pub async fn probe_media(location: &str) -> Result<MediaInfo, EngineError> {
    let args: [&OsStr; 8] = [
        "-v".as_ref(),
        "error".as_ref(),
        "-show_format".as_ref(),
        "-show_streams".as_ref(),
        "-of".as_ref(),
        "json".as_ref(),
        "-i".as_ref(),
        location.as_ref(),
    ];
    match run_ffprobe(&args).await? {
        Ok(stdout) => parse_ffprobe_json(location, &stdout),
        Err((_status, stderr)) => Err(EngineError::Unusable {
            input: location.to_string(),
            message: summarize_stderr(&strip_location(&stderr, location)),
        }),
    }
}

/// Whether the stream's display matrix turns it by 90° either way (ffprobe's
/// `side_data_list[].rotation`, or the older `tags.rotate`).
fn quarter_turn(stream: &Value) -> bool {
    let from_side_data = stream
        .get("side_data_list")
        .and_then(Value::as_array)
        .and_then(|list| list.iter().find_map(|d| number(d, "rotation")));
    let rotation = from_side_data.or_else(|| {
        stream
            .pointer("/tags/rotate")
            .and_then(Value::as_str)
            .and_then(|r| r.trim().parse::<f64>().ok())
    });
    rotation.is_some_and(|r| (r.round() as i64).rem_euclid(180) == 90)
}

/// ffprobe prefixes messages with the input name; the error already names it.
fn strip_location(stderr: &str, location: &str) -> String {
    stderr
        .lines()
        .map(|l| {
            l.strip_prefix(location)
                .and_then(|r| r.strip_prefix(": "))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn looks_like_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// Parse `ffprobe -show_format -show_streams -of json` output.
pub fn parse_ffprobe_json(location: &str, json: &[u8]) -> Result<MediaInfo, EngineError> {
    let unusable = |message: String| EngineError::Unusable {
        input: location.to_string(),
        message,
    };
    let root: Value = serde_json::from_slice(json)
        .map_err(|e| unusable(format!("ffprobe output is not JSON: {e}")))?;
    let format = root.get("format").cloned().unwrap_or(Value::Null);
    let streams = root
        .get("streams")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let format_name = text(&format, "format_name").unwrap_or_default();
    let format_long_name = text(&format, "format_long_name").unwrap_or_else(|| format_name.clone());
    let start_time = number(&format, "start_time").unwrap_or(0.0);

    let mut video: Option<VideoDetail> = None;
    let mut audio: Vec<AudioDetail> = Vec::new();
    for s in &streams {
        let index = number(s, "index").unwrap_or(0.0) as u32;
        match text(s, "codec_type").as_deref() {
            Some("video") if video.is_none() => {
                let cover_art = s
                    .pointer("/disposition/attached_pic")
                    .and_then(Value::as_i64)
                    == Some(1);
                if cover_art {
                    continue;
                }
                let frame_rate = text(s, "r_frame_rate")
                    .and_then(|r| Rational::parse(&r))
                    .or_else(|| text(s, "avg_frame_rate").and_then(|r| Rational::parse(&r)))
                    .unwrap_or(Rational::new(25, 1));
                // FFmpeg applies a display matrix when it decodes (autorotate), so every
                // graph sees the picture upright: a phone's portrait video shot sideways is
                // portrait from here on.
                let (coded_w, coded_h) = (
                    number(s, "width").unwrap_or(0.0) as u32,
                    number(s, "height").unwrap_or(0.0) as u32,
                );
                let (width, height) = if quarter_turn(s) {
                    (coded_h, coded_w)
                } else {
                    (coded_w, coded_h)
                };
                video = Some(VideoDetail {
                    stream_index: index,
                    codec: text(s, "codec_name").unwrap_or_default(),
                    width,
                    height,
                    frame_rate,
                    time_base: text(s, "time_base").and_then(|r| Rational::parse(&r)),
                    color_range: text(s, "color_range"),
                    pix_fmt: text(s, "pix_fmt"),
                    duration: stream_duration(s),
                    frames: number(s, "nb_frames").map(|n| n as u64),
                });
            }
            Some("audio") => audio.push(AudioDetail {
                track: audio.len() as u32 + 1,
                stream_index: index,
                codec: text(s, "codec_name").unwrap_or_default(),
                channels: number(s, "channels").unwrap_or(0.0) as u32,
                sample_rate: number(s, "sample_rate").unwrap_or(0.0) as u32,
                duration: stream_duration(s),
            }),
            _ => {}
        }
    }
    if video.is_none() && audio.is_empty() {
        return Err(unusable("no audio or video stream".into()));
    }
    let duration = number(&format, "duration")
        .filter(|d| *d > 0.0)
        .or_else(|| {
            video
                .iter()
                .filter_map(|v| v.duration)
                .chain(audio.iter().filter_map(|a| a.duration))
                .reduce(f64::max)
        })
        .ok_or_else(|| unusable("no duration in the container or its streams".into()))?;

    let probe = ProbeInfo {
        container: format_name.clone(),
        duration_seconds: duration,
        video: video.as_ref().map(|v| VideoStreamInfo {
            codec: v.codec.clone(),
            width: v.width,
            height: v.height,
            frame_rate: v.frame_rate.as_f64(),
            frame_rate_ratio: v.frame_rate.to_string(),
            frames: v.frames,
        }),
        audio_tracks: audio
            .iter()
            .map(|a| AudioTrackInfo {
                track: a.track,
                stream_index: a.stream_index,
                codec: a.codec.clone(),
                channels: a.channels,
                sample_rate: a.sample_rate,
            })
            .collect(),
    };
    Ok(MediaInfo {
        location: location.to_string(),
        probe,
        format_name,
        format_long_name,
        start_time,
        video,
        audio,
    })
}

/// A field as text, whether ffprobe wrote a string or a number.
fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A field as a number, whether ffprobe wrote a string or a number; `N/A` is `None`.
fn number(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

fn stream_duration(s: &Value) -> Option<f64> {
    number(s, "duration").filter(|d| *d > 0.0).or_else(|| {
        let tags = s.get("tags")?.as_object()?;
        // MKV: tags.DURATION = "00:00:20.000000000" (key case varies by muxer).
        let raw = tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("duration"))?
            .1
            .as_str()?;
        parse_clock(raw)
    })
}

/// `HH:MM:SS.fraction` to seconds.
fn parse_clock(s: &str) -> Option<f64> {
    let mut parts = s.trim().split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some(h * 3600.0 + m * 60.0 + sec)
}

/// The `Prober` port on top of ffprobe.
#[derive(Debug, Clone, Copy, Default)]
pub struct FfprobeProber;

#[async_trait]
impl Prober for FfprobeProber {
    async fn probe(&self, location: &str) -> Result<ProbeInfo, ProbeError> {
        probe(location).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MKV: &str = r#"{"streams":[
        {"index":0,"codec_name":"h264","codec_type":"video","width":320,"height":180,"r_frame_rate":"30000/1001",
         "avg_frame_rate":"30000/1001","time_base":"1/1000","start_time":"0.000000","color_range":"tv",
         "disposition":{"attached_pic":0},"tags":{"DURATION":"00:00:12.012000000"}},
        {"index":1,"codec_name":"aac","codec_type":"audio","sample_rate":"48000","channels":1,"time_base":"1/1000",
         "tags":{"DURATION":"00:00:12.021000000"}},
        {"index":2,"codec_name":"png","codec_type":"video","width":10,"height":10,"disposition":{"attached_pic":1}},
        {"index":3,"codec_name":"pcm_s24le","codec_type":"audio","sample_rate":"48000","channels":1}],
      "format":{"format_name":"matroska,webm","format_long_name":"Matroska / WebM","start_time":"0.000000","duration":"12.021000"}}"#;

    #[test]
    fn a_quarter_turn_display_matrix_swaps_the_picture_size() {
        let json = |side: &str| {
            format!(
                r#"{{"streams":[{{"index":0,"codec_name":"h264","codec_type":"video","width":1920,"height":1080,
                "r_frame_rate":"30/1"{side}}}],"format":{{"format_name":"mov","duration":"2.0"}}}}"#
            )
        };
        let size = |side: &str| {
            let info = parse_ffprobe_json("x.mov", json(side).as_bytes()).unwrap();
            let v = info.probe.video.unwrap();
            (v.width, v.height)
        };
        assert_eq!(size(""), (1920, 1080));
        assert_eq!(
            size(r#","side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]"#),
            (1080, 1920)
        );
        assert_eq!(
            size(r#","side_data_list":[{"side_data_type":"Display Matrix","rotation":90}]"#),
            (1080, 1920)
        );
        assert_eq!(
            size(r#","side_data_list":[{"side_data_type":"Display Matrix","rotation":180}]"#),
            (1920, 1080)
        );
        assert_eq!(size(r#","tags":{"rotate":"270"}"#), (1080, 1920));
    }

    #[test]
    fn reads_strings_and_numbers_and_numbers_tracks_from_one() {
        let info = parse_ffprobe_json("x.mkv", MKV.as_bytes()).unwrap();
        assert_eq!(info.probe.container, "matroska,webm");
        assert_eq!(info.format_long_name, "Matroska / WebM");
        assert!((info.probe.duration_seconds - 12.021).abs() < 1e-9);
        let v = info.video.unwrap();
        assert_eq!(v.frame_rate, Rational::new(30000, 1001));
        assert_eq!(v.duration, Some(12.012));
        assert_eq!(info.probe.video.unwrap().frame_rate_ratio, "30000/1001");
        let tracks: Vec<(u32, u32)> = info
            .probe
            .audio_tracks
            .iter()
            .map(|a| (a.track, a.stream_index))
            .collect();
        assert_eq!(tracks, vec![(1, 1), (2, 3)]);
        assert_eq!(info.probe.audio_tracks[0].sample_rate, 48000);
    }

    #[test]
    fn no_streams_is_unusable() {
        let e =
            parse_ffprobe_json("x", br#"{"streams":[],"format":{"duration":"1.0"}}"#).unwrap_err();
        assert!(matches!(e, EngineError::Unusable { .. }), "{e}");
        assert!(e.to_string().contains("no audio or video stream"));
    }

    #[test]
    fn rational_parsing() {
        assert_eq!(Rational::parse("0/0"), None);
        assert_eq!(Rational::parse("25"), Some(Rational::new(25, 1)));
        assert!((Rational::new(60000, 1001).as_f64() - 59.94).abs() < 0.001);
    }
}
