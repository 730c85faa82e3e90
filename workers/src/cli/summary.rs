//! A readable summary of an asset (and the same as JSON), with an ASCII timeline.

use cuepoint_core::asset::{Asset, AssetState};
use cuepoint_core::domain::S3Uri;
use cuepoint_core::loudness::AudioLayout;
use cuepoint_core::rekognition::{SegmentDetection, CUE_BLACK_FRAMES, CUE_END_CREDITS};
use cuepoint_core::results;
use cuepoint_runtime::ports::BlobStore;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AssetSummary {
    pub asset_id: String,
    pub source: String,
    pub state: AssetState,
    pub duration_seconds: Option<f64>,
    pub failure: Option<String>,
    pub audio_tracks: usize,
    pub silent_tracks: Vec<usize>,
    pub layout: Option<AudioLayout>,
    pub max_loudness: Vec<f64>,
    pub black_frames: Vec<(f64, f64)>,
    pub shots: usize,
    pub end_credits: Vec<(f64, f64)>,
    pub silence_intervals: usize,
    pub breaks: Vec<BreakLine>,
    pub hls: Option<String>,
    pub vmap: Option<String>,
    pub results: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakLine {
    pub timestamp: f64,
    pub score: f64,
    pub reasons: Vec<String>,
}

/// A printable location for a blob: the local path when blobs are files.
pub fn location(blobs: &dyn BlobStore, uri: &S3Uri) -> String {
    if let Some(p) = blobs.local_path(uri) {
        return p.display().to_string();
    }
    // A prefix (`.../`) has no file of its own: show the directory its files live in.
    if uri.key.as_str().ends_with('/') {
        if let Some(dir) = uri
            .join("x")
            .ok()
            .and_then(|f| blobs.local_path(&f))
            .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        {
            return format!("{}/", dir.display());
        }
    }
    uri.to_string()
}

pub async fn summarize(blobs: &dyn BlobStore, asset: &Asset) -> AssetSummary {
    let segments: Option<SegmentDetection> = match blobs
        .get(&asset.results.prefix.join(results::SEGMENTS).expect("valid"))
        .await
    {
        Ok(Some(b)) => serde_json::from_slice(&b).ok(),
        _ => None,
    };
    let span = |s: &cuepoint_core::rekognition::Segment| {
        (
            s.start_timestamp_millis as f64 / 1000.0,
            s.end_timestamp_millis as f64 / 1000.0,
        )
    };
    let (mut black, mut credits, mut shots) = (vec![], vec![], 0);
    if let Some(seg) = &segments {
        for s in &seg.segments {
            match s.cue_type() {
                Some(CUE_BLACK_FRAMES) => black.push(span(s)),
                Some(CUE_END_CREDITS) => credits.push(span(s)),
                _ if s.is_shot() => shots += 1,
                _ => {}
            }
        }
    }
    let audio = asset.audio.as_ref();
    AssetSummary {
        asset_id: asset.id.to_string(),
        source: asset.source.uri().to_string(),
        state: asset.state,
        duration_seconds: asset
            .probe
            .as_ref()
            .map(|p| p.duration_seconds)
            .filter(|d| *d > 0.0),
        failure: asset
            .failure
            .as_ref()
            .map(|f| format!("{}: {}", f.stage, f.reason)),
        audio_tracks: audio.map(|a| a.audiocount).unwrap_or_else(|| {
            asset
                .probe
                .as_ref()
                .map(|p| p.audio_tracks.len())
                .unwrap_or(0)
        }),
        silent_tracks: audio
            .map(|a| {
                a.loudnessmap
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v == 0)
                    .map(|(i, _)| i + 1)
                    .collect()
            })
            .unwrap_or_default(),
        layout: audio.map(|a| a.layout),
        max_loudness: audio.map(|a| a.maxloudness.clone()).unwrap_or_default(),
        black_frames: black,
        shots,
        end_credits: credits,
        silence_intervals: audio
            .map(|a| a.silences.iter().map(Vec::len).sum())
            .unwrap_or(0),
        breaks: asset
            .breaks
            .iter()
            .map(|b| BreakLine {
                timestamp: b.timestamp,
                score: b.score,
                reasons: b.reasons.clone(),
            })
            .collect(),
        hls: asset
            .results
            .hls_master
            .as_ref()
            .map(|u| location(blobs, u)),
        vmap: asset.results.vmap.as_ref().map(|u| location(blobs, u)),
        results: location(blobs, &asset.results.prefix),
    }
}

/// `HH:MM:SS.mmm`.
pub fn clock(t: f64) -> String {
    let ms = (t * 1000.0).round().max(0.0) as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000
    )
}

fn layout_name(l: AudioLayout) -> &'static str {
    match l {
        AudioLayout::NoAudio => "no audio",
        AudioLayout::Silent => "all silent",
        AudioLayout::Mono => "mono",
        AudioLayout::Stereo => "2.0",
        AudioLayout::Surround51 => "5.1",
        AudioLayout::Other => "other",
    }
}

/// One line, `width` characters: `#` black, `E` end credits, `|` shot change, `V` chosen break.
pub fn timeline(s: &AssetSummary, width: usize) -> Option<String> {
    let d = s.duration_seconds?;
    let mut line = vec!['-'; width];
    let col = |t: f64| (((t / d) * width as f64) as usize).min(width - 1);
    for &(a, b) in &s.black_frames {
        for c in line.iter_mut().take(col(b) + 1).skip(col(a)) {
            *c = '#';
        }
    }
    for &(a, b) in &s.end_credits {
        for c in line.iter_mut().take(col(b) + 1).skip(col(a)) {
            *c = 'E';
        }
    }
    for b in &s.breaks {
        line[col(b.timestamp)] = 'V';
    }
    Some(line.into_iter().collect())
}

pub fn render(s: &AssetSummary) -> String {
    let mut out = String::new();
    let dur = s
        .duration_seconds
        .map(|d| format!(", {d:.1} s"))
        .unwrap_or_default();
    out.push_str(&format!(
        "asset {}  {}  ({}{})\n",
        s.asset_id, s.state, s.source, dur
    ));
    if let Some(f) = &s.failure {
        out.push_str(&format!("  failed    {f}\n"));
    }
    if let Some(layout) = s.layout {
        let silent = if s.silent_tracks.is_empty() {
            "none".to_string()
        } else {
            s.silent_tracks
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let loud: Vec<String> = s.max_loudness.iter().map(|l| format!("{l:.1}")).collect();
        out.push_str(&format!(
            "  audio     {} track(s), layout {}; silent tracks: {}; max loudness [{}]\n",
            s.audio_tracks,
            layout_name(layout),
            silent,
            loud.join(", ")
        ));
    }
    if s.state.at_or_after(AssetState::Analysed) || s.shots > 0 {
        out.push_str(&format!(
            "  video     {} black segment(s), {} shot(s), {} end-credit segment(s); {} silence interval(s)\n",
            s.black_frames.len(),
            s.shots,
            s.end_credits.len(),
            s.silence_intervals
        ));
    }
    for (i, b) in s.breaks.iter().enumerate() {
        let head = if i == 0 { "  breaks   " } else { "           " };
        out.push_str(&format!(
            "{head} {}  score {:.3}  {}\n",
            clock(b.timestamp),
            b.score,
            b.reasons.join("+")
        ));
    }
    if let Some(t) = timeline(s, 60) {
        out.push_str(&format!(
            "  timeline  [{t}]  (# black, E credits, V break)\n"
        ));
    }
    if let Some(h) = &s.hls {
        out.push_str(&format!("  hls       {h}\n"));
    }
    if let Some(v) = &s.vmap {
        out.push_str(&format!("  vmap      {v}\n"));
    }
    out.push_str(&format!("  results   {}\n", s.results));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_timeline() {
        assert_eq!(clock(3723.0456), "01:02:03.046");
        let s = AssetSummary {
            asset_id: "a".into(),
            source: "s3://b/k".into(),
            state: AssetState::Complete,
            duration_seconds: Some(10.0),
            failure: None,
            audio_tracks: 0,
            silent_tracks: vec![],
            layout: None,
            max_loudness: vec![],
            black_frames: vec![(2.0, 3.0)],
            shots: 2,
            end_credits: vec![],
            silence_intervals: 0,
            breaks: vec![BreakLine {
                timestamp: 5.0,
                score: 0.9,
                reasons: vec!["ShotChange".into()],
            }],
            hls: None,
            vmap: None,
            results: "r".into(),
        };
        assert_eq!(timeline(&s, 10).unwrap(), "--##-V----");
        assert!(render(&s).contains("00:00:05.000  score 0.900  ShotChange"));
    }
}
