//! A readable summary of an asset (and the same as JSON), with an ASCII timeline: what was
//! found where (black, credits, breaks, speech, faces, the main labels) and one line per content
//! analysis saying what it found or why it found nothing.

use cuepoint_core::asset::{Asset, AssetState};
use cuepoint_core::content::{
    AnalysisLine, ContentAnalysis, ContentFiles, ContentTimeline, Span, TOP_LABELS,
};
use cuepoint_core::domain::S3Uri;
use cuepoint_core::loudness::AudioLayout;
use cuepoint_core::rekognition::{SegmentDetection, CUE_BLACK_FRAMES, CUE_END_CREDITS};
use cuepoint_core::results;
use cuepoint_core::scoring::{ScoringOutput, SlotNote};
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
    /// What scoring made of the slots (from `slots.json`), once it has run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<SlotCounts>,
    /// One line per content analysis (labels, faces, celebrities, moderation, speech,
    /// transcript); empty before the analyses have run.
    pub content_analyses: Vec<AnalysisLine>,
    /// Speech, faces, the main labels and flagged moments on the time axis.
    pub content: ContentTimeline,
    pub hls: Option<String>,
    pub vmap: Option<String>,
    /// The ad-inserted playback URL through MediaTailor (when `aws.playback_prefix` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playback: Option<String>,
    pub results: String,
}

/// How many slots scoring kept, and how many the content analyses marked down or refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SlotCounts {
    pub slots: usize,
    /// Inside speech: refused (score multiplied by `1 - speech_penalty` when it is below 1).
    pub inside_speech: usize,
    /// Next to a moderation label: never a break.
    pub refused_brand_safety: usize,
}

impl SlotCounts {
    pub fn of(output: &ScoringOutput) -> SlotCounts {
        let count = |f: fn(&SlotNote) -> bool| {
            output
                .slots
                .iter()
                .filter(|s| s.notes.iter().any(f))
                .count()
        };
        SlotCounts {
            slots: output.slots.len(),
            inside_speech: count(|n| matches!(n, SlotNote::InsideSpeech { .. })),
            refused_brand_safety: count(|n| matches!(n, SlotNote::NearModeration { .. })),
        }
    }
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

/// The content analyses' results files of `asset`, as far as they exist.
async fn content_files(blobs: &dyn BlobStore, asset: &Asset) -> ContentFiles {
    let mut files = ContentFiles::default();
    for analysis in ContentAnalysis::ALL {
        let Ok(uri) = asset.results.prefix.join(analysis.results_file()) else {
            continue;
        };
        if let Ok(Some(bytes)) = blobs.get(&uri).await {
            files.files.insert(analysis, bytes);
        }
    }
    files
}

pub async fn summarize(blobs: &dyn BlobStore, asset: &Asset) -> AssetSummary {
    // Before the analyses there is nothing to report; after them a missing file says so.
    let (content_analyses, content) = if asset.state.at_or_after(AssetState::Analysed) {
        let read = content_files(blobs, asset).await.read();
        let content = read.timeline(TOP_LABELS);
        (read.lines, content)
    } else {
        (Vec::new(), ContentTimeline::default())
    };
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
    let slots = match asset.results.prefix.join(results::SLOTS) {
        Ok(uri) => match blobs.get(&uri).await {
            Ok(Some(b)) => serde_json::from_slice::<ScoringOutput>(&b)
                .ok()
                .map(|o| SlotCounts::of(&o)),
            _ => None,
        },
        Err(_) => None,
    };
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
        failure: asset.failure.as_ref().map(|f| match f.kind {
            cuepoint_core::asset::FailureKind::Transient => format!(
                "{}: {} (transient: once the cause is fixed, `cuepoint retry {}` re-drives it)",
                f.stage, f.reason, asset.id
            ),
            cuepoint_core::asset::FailureKind::Permanent => format!("{}: {}", f.stage, f.reason),
        }),
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
        slots,
        content_analyses,
        content,
        hls: asset
            .results
            .hls_master
            .as_ref()
            .map(|u| location(blobs, u)),
        vmap: asset.results.vmap.as_ref().map(|u| location(blobs, u)),
        playback: None,
        results: location(blobs, &asset.results.prefix),
    }
}

/// [`summarize`], with the MediaTailor playback URL when the settings name its prefix.
pub async fn summarize_with(
    settings: &cuepoint_runtime::config::Settings,
    blobs: &dyn BlobStore,
    asset: &Asset,
) -> AssetSummary {
    let mut s = summarize(blobs, asset).await;
    s.playback = settings
        .aws
        .playback_prefix
        .as_deref()
        .and_then(|prefix| playback_url(prefix, asset));
    s
}

/// The URL a player starts an ad-inserted session with: MediaTailor's HLS prefix, the master
/// playlist's path under `assets/` (the playback configuration's content source) and the asset
/// id as the player parameter its ad decision server URL is filled from. None until the asset
/// is complete.
pub fn playback_url(prefix: &str, asset: &Asset) -> Option<String> {
    if asset.state != AssetState::Complete {
        return None;
    }
    let master = asset.results.hls_master.as_ref()?;
    let key = master.key.as_str();
    let path = key
        .split_once("assets/")
        .map_or(key, |(_, under)| under)
        .trim_start_matches('/');
    let sep = if prefix.ends_with('/') { "" } else { "/" };
    Some(format!("{prefix}{sep}{path}?ads.asset_id={}", asset.id))
}

/// `HH:MM:SS.mmm`, exactly as the VMAP writes the time (one formatter for both); a time the
/// VMAP cannot hold (negative, not finite) is shown in seconds.
pub fn clock(t: f64) -> String {
    cuepoint_core::vmap::time_offset(t).unwrap_or_else(|| format!("{t}s"))
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

/// One lane of the ASCII timeline: `mark` wherever a span is, `-` elsewhere.
pub fn lane(spans: &[Span], duration: f64, width: usize, mark: char) -> String {
    let mut line = vec!['-'; width];
    if duration > 0.0 && width > 0 {
        let col = |t: f64| (((t / duration) * width as f64).max(0.0) as usize).min(width - 1);
        for span in spans {
            for c in line
                .iter_mut()
                .take(col(span.end) + 1)
                .skip(col(span.start))
            {
                *c = mark;
            }
        }
    }
    line.into_iter().collect()
}

/// At most `n` characters: longer names end in `…`.
fn shorten(name: &str, n: usize) -> String {
    if name.chars().count() > n {
        name.chars().take(n - 1).chain(['…']).collect()
    } else {
        name.to_string()
    }
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
    if let Some(c) = &s.slots {
        out.push_str(&format!(
            "  slots     {} slot(s); {} inside speech; {} refused for brand safety\n",
            c.slots, c.inside_speech, c.refused_brand_safety
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
    for a in &s.content_analyses {
        out.push_str(&format!("  {:<11} {}\n", a.analysis.as_str(), a.outcome));
    }
    if let Some(t) = timeline(s, 60) {
        out.push_str(&format!(
            "  timeline  [{t}]  (# black, E credits, V break)\n"
        ));
        let d = s.duration_seconds.unwrap_or(0.0);
        let c = &s.content;
        if !s.content_analyses.is_empty() {
            out.push_str(&format!(
                "  {:<10}[{}]\n",
                "speech",
                lane(&c.speech, d, 60, '=')
            ));
            out.push_str(&format!(
                "  {:<10}[{}]\n",
                "faces",
                lane(&c.faces, d, 60, 'o')
            ));
            for l in &c.labels {
                out.push_str(&format!(
                    "  {:<10}[{}]  {} ({} samples)\n",
                    shorten(&l.name, 9),
                    lane(&l.spans, d, 60, '+'),
                    l.name,
                    l.samples
                ));
            }
            if !c.moderation.is_empty() {
                out.push_str(&format!(
                    "  {:<10}[{}]\n",
                    "flagged",
                    lane(&c.moderation, d, 60, '!')
                ));
            }
        }
    }
    if let Some(h) = &s.hls {
        out.push_str(&format!("  hls       {h}\n"));
    }
    if let Some(v) = &s.vmap {
        out.push_str(&format!("  vmap      {v}\n"));
    }
    if let Some(p) = &s.playback {
        out.push_str(&format!("  playback  {p}  (MediaTailor, ads inserted)\n"));
    }
    out.push_str(&format!("  results   {}\n", s.results));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_timeline() {
        assert_eq!(clock(3723.0456), "01:02:03.045");
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
            slots: None,
            content_analyses: vec![],
            content: ContentTimeline::default(),
            hls: None,
            playback: None,
            vmap: None,
            results: "r".into(),
        };
        assert_eq!(timeline(&s, 10).unwrap(), "--##-V----");
        // Before the analyses, no content lines.
        assert!(!render(&s).contains("speech"));
        assert!(render(&s).contains("00:00:05.000  score 0.900  ShotChange"));
    }

    fn put(dir: &std::path::Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// An asset whose results lie in a blob store rooted at `dir`, as the local engine writes
    /// them (the documented shapes, `CuepointAnalysis` where an analysis could not run).
    async fn analysed_asset(
        dir: &std::path::Path,
    ) -> (cuepoint_embedded::blobs::FsBlobStore, Asset) {
        use cuepoint_core::asset::ProbeInfo;
        use cuepoint_core::domain::{BucketName, ObjectKey, SourceObject};
        let source = SourceObject {
            bucket: BucketName::parse("ingest").unwrap(),
            key: ObjectKey::parse("in/a.mov").unwrap(),
            version_id: None,
            etag: Some("e".into()),
            size: Some(10),
        };
        let probe = ProbeInfo {
            duration_seconds: 60.0,
            ..ProbeInfo::default()
        };
        let mut asset = Asset::register(
            source,
            probe,
            S3Uri::parse("s3://out/assets/x/").unwrap(),
            1,
        );
        asset.state = AssetState::Complete;
        let root = dir.join("out/assets/x");
        let mut labels = Vec::new();
        for s in 0..20 {
            labels.push(format!(r#"{{"Timestamp":{},"Label":{{"Name":"Tabby","Confidence":81.0,"Parents":[{{"Name":"Cat"}}],"Categories":[]}}}}"#, s * 1000));
            labels.push(format!(r#"{{"Timestamp":{},"Label":{{"Name":"Cat","Confidence":93.0,"Parents":[],"Categories":[]}}}}"#, s * 1000));
        }
        put(
            &root,
            "labels.json",
            &format!(
                r#"{{"JobStatus":"SUCCEEDED","Labels":[{}]}}"#,
                labels.join(",")
            ),
        );
        put(
            &root,
            "faces.json",
            r#"{"JobStatus":"SUCCEEDED","Faces":[{"Timestamp":30000,"Face":{"BoundingBox":{"Width":0.2,"Height":0.3,"Left":0.4,"Top":0.2},"Confidence":99.1,"Landmarks":[]}},{"Timestamp":31000,"Face":{"Confidence":98.0}}]}"#,
        );
        put(
            &root,
            "celebrities.json",
            r#"{"JobStatus":"SUCCEEDED","Celebrities":[],"CuepointAnalysis":{"Status":"UNAVAILABLE_OFFLINE","Message":"no face-embedding model with a usable licence"}}"#,
        );
        put(
            &root,
            "moderation.json",
            r#"{"JobStatus":"SUCCEEDED","ModerationLabels":[],"CuepointAnalysis":{"Status":"NOT_INSTALLED","Model":"opennsfw","Message":"model opennsfw is not installed; run `cuepoint models install`"}}"#,
        );
        put(
            &root,
            "speech.json",
            r#"{"JobStatus":"SUCCEEDED","Speech":[{"Track":1,"StartTimestamp":40000,"EndTimestamp":45500,"Confidence":93.1},{"Track":1,"StartTimestamp":50000,"EndTimestamp":52000,"Confidence":88.0}],"CuepointAnalysis":{"Status":"COMPLETE","Model":"silero-vad"}}"#,
        );
        put(
            &root,
            "transcript.json",
            r#"{"results":{"transcripts":[{"transcript":"The quick brown fox jumps over the lazy dog twice."}],"items":[
            {"start_time":"40.1","end_time":"40.3","alternatives":[{"content":"The","confidence":"0.9"}],"type":"pronunciation"},
            {"start_time":"40.3","end_time":"40.6","alternatives":[{"content":"quick","confidence":"0.9"}],"type":"pronunciation"}]},
            "CuepointAnalysis":{"Status":"FAILED","Model":"whisper-base","Message":"faster-whisper exited with status 1"}}"#,
        );
        // Scoring's output over these results: one slot in speech, one refused.
        let slots = serde_json::json!({"policy": "default", "duration": 60.0, "breaks": [], "slots": [
            {"timestamp": 12.0, "score": 0.6, "reasons": ["Silence"]},
            {"timestamp": 42.0, "score": 0.3, "reasons": ["Silence"], "notes": [{"kind": "inside_speech", "track": 1, "start": 40.0, "end": 45.5, "penalty": 0.5}]},
            {"timestamp": 55.0, "score": 0.7, "reasons": ["BlackFrame"], "notes": [{"kind": "near_moderation", "name": "Violence", "confidence": 90.0, "at": 57.0, "distance": 2.0, "window": 10.0}]}
        ]});
        put(&root, "slots.json", &slots.to_string());
        (
            cuepoint_embedded::blobs::FsBlobStore::new(dir.to_path_buf()),
            asset,
        )
    }

    #[tokio::test]
    async fn playback_url_goes_through_mediatailor_once_complete() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut asset) = analysed_asset(dir.path()).await;
        let prefix = "https://abc.mediatailor.eu-west-1.amazonaws.com/v1/master/123/cuepoint-prod";
        // No renditions yet: nothing to play.
        assert_eq!(playback_url(prefix, &asset), None);
        asset.results.hls_master = Some(S3Uri::parse("s3://out/assets/x/hls/index.m3u8").unwrap());
        let want = format!("{prefix}/x/hls/index.m3u8?ads.asset_id={}", asset.id);
        assert_eq!(playback_url(prefix, &asset).as_deref(), Some(want.as_str()));
        assert_eq!(
            playback_url(&format!("{prefix}/"), &asset).as_deref(),
            Some(want.as_str())
        );
        asset.state = AssetState::Analysed;
        assert_eq!(playback_url(prefix, &asset), None);
        asset.state = AssetState::Complete;
        let mut settings = cuepoint_runtime::config::Settings::default();
        let blobs = cuepoint_embedded::blobs::FsBlobStore::new(dir.path().to_path_buf());
        assert_eq!(
            summarize_with(&settings, &blobs, &asset).await.playback,
            None
        );
        settings.aws.playback_prefix = Some(prefix.into());
        let s = summarize_with(&settings, &blobs, &asset).await;
        assert_eq!(s.playback.as_deref(), Some(want.as_str()));
        assert!(
            render(&s).contains(&format!("playback  {want}")),
            "{}",
            render(&s)
        );
    }

    #[tokio::test]
    async fn summary_shows_each_content_analysis_and_the_time_axis() {
        let dir = tempfile::tempdir().unwrap();
        let (blobs, asset) = analysed_asset(dir.path()).await;
        let s = summarize(&blobs, &asset).await;
        let text = render(&s);
        let lines: Vec<&str> = text.lines().collect();
        let line = |head: &str| -> &str {
            lines
                .iter()
                .find(|l| l.trim_start().starts_with(head))
                .unwrap_or_else(|| panic!("no {head:?} line in\n{text}"))
        };
        assert_eq!(line("labels "), "  labels      40 labels");
        assert_eq!(
            line("slots "),
            "  slots     3 slot(s); 1 inside speech; 1 refused for brand safety"
        );
        assert_eq!(line("faces "), "  faces       2 faces");
        assert_eq!(line("celebrities "), "  celebrities unavailable offline");
        assert_eq!(
            line("moderation "),
            "  moderation  not installed — run `cuepoint models install`"
        );
        assert_eq!(line("speech "), "  speech      7.5 s over 2 intervals");
        assert_eq!(
            line("transcript "),
            "  transcript  failed: faster-whisper exited with status 1"
        );
        // The time axis: 60 columns for 60 s, so one column a second.
        let lane_of = |head: &str| {
            let l = lines
                .iter()
                .find(|l| l.trim_start().starts_with(head) && l.contains('['))
                .unwrap_or_else(|| panic!("no {head:?} lane in\n{text}"));
            let start = l.find('[').unwrap() + 1;
            l[start..start + 60].to_string()
        };
        let speech = lane_of("speech");
        assert_eq!(&speech[38..47], "--======-");
        assert_eq!(&speech[50..53], "===");
        assert_eq!(speech.matches('=').count(), 9);
        let faces = lane_of("faces");
        assert_eq!(faces.find('o'), Some(30));
        assert_eq!(faces.matches('o').count(), 2);
        // "Cat" is Tabby's parent: the specific label is the one on the axis.
        let tabby = lane_of("Tabby");
        assert_eq!(tabby.matches('+').count(), 20);
        assert!(tabby.starts_with("++++"));
        assert!(line("Tabby").ends_with("Tabby (20 samples)"));
        assert!(!lines.iter().any(|l| l.trim_start().starts_with("Cat ")));
        // The same in JSON.
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["content_analyses"][3]["state"], "not_installed");
        assert_eq!(
            v["content_analyses"][5]["cause"],
            "faster-whisper exited with status 1"
        );
        assert_eq!(
            v["content"]["speech"][0],
            serde_json::json!({"start": 40.0, "end": 45.5})
        );
        assert_eq!(v["content"]["labels"][0]["name"], "Tabby");
    }

    #[tokio::test]
    async fn a_complete_transcript_is_quoted_and_missing_files_say_no_results() {
        let dir = tempfile::tempdir().unwrap();
        let (blobs, asset) = analysed_asset(dir.path()).await;
        let root = dir.path().join("out/assets/x");
        put(
            &root,
            "transcript.json",
            r#"{"results":{"transcripts":[{"transcript":"The quick brown fox jumps over the lazy dog twice."}],"items":[
            {"start_time":"40.1","end_time":"40.3","alternatives":[{"content":"The","confidence":"0.9"}],"type":"pronunciation"},
            {"start_time":"40.3","end_time":"40.6","alternatives":[{"content":"quick","confidence":"0.9"}],"type":"pronunciation"}]}}"#,
        );
        std::fs::remove_file(root.join("faces.json")).unwrap();
        let text = render(&summarize(&blobs, &asset).await);
        assert!(
            text.contains("  transcript  2 words (\"The quick brown fox jumps over the lazy…\")\n"),
            "{text}"
        );
        assert!(text.contains("  faces       no results\n"), "{text}");
        assert!(
            text.contains(
                "  faces     [------------------------------------------------------------]\n"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn status_json_of_one_asset_carries_the_content_analyses() {
        let dir = tempfile::tempdir().unwrap();
        let (blobs, asset) = analysed_asset(dir.path()).await;
        let summary = summarize(&blobs, &asset).await;
        let v = serde_json::to_value(crate::cli::status::asset_status(&asset, &summary)).unwrap();
        // The asset record as before...
        assert_eq!(v["id"], asset.id.to_string());
        assert_eq!(v["state"], serde_json::to_value(asset.state).unwrap());
        // ...with what each analysis found and where.
        let lines = v["content_analyses"].as_array().unwrap();
        let names: Vec<&str> = lines
            .iter()
            .map(|l| l["analysis"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "labels",
                "faces",
                "celebrities",
                "moderation",
                "speech",
                "transcript"
            ]
        );
        assert_eq!(lines[0]["found"], "40 labels");
        assert_eq!(lines[2]["state"], "unavailable_offline");
        assert_eq!(
            v["content"]["faces"][0],
            serde_json::json!({"start": 30.0, "end": 31.0})
        );
    }
}
