//! What the asset page shows besides the player: the timeline lanes and the panels (labels,
//! faces, persons, moderation, transcript), read from the results layout through the blob port.
//! Files may be missing, or say why they are empty (`CuepointAnalysis`, docs/content-analyses.md).

use std::collections::BTreeMap;

use cuepoint_core::asset::Asset;
use cuepoint_core::domain::AssetId;
use cuepoint_core::rekognition::{CUE_BLACK_FRAMES, CUE_END_CREDITS, SEGMENT_SHOT};
use cuepoint_core::scoring::{ScoringInputs, ScoringOutput};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use crate::context::WorkerContext;

pub const TRANSCRIPT: &str = "transcript.json";
pub const SPEECH: &str = "speech.json";

/// Read one file of the asset's results layout (`None` when it does not exist).
pub async fn fetch(ctx: &WorkerContext, id: &AssetId, rel: &str) -> ApiResult<Option<Vec<u8>>> {
    let uri = ctx
        .results_prefix(id)
        .join(rel)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(ctx.ports.blobs.get(&uri).await?)
}

pub async fn fetch_json(ctx: &WorkerContext, id: &AssetId, rel: &str) -> ApiResult<Option<Value>> {
    Ok(fetch(ctx, id, rel)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

// ---- timeline ----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Span {
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrackLoudness {
    /// 1-based audio track.
    pub track: u32,
    /// Carries sound (Input Max Loudness above the silence threshold).
    pub active: bool,
    pub max_loudness: f64,
    /// `[seconds, momentary LUFS]`, at most ~600 points.
    pub points: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SpeechSpan {
    pub track: u32,
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Mark {
    pub timestamp: f64,
    pub score: f64,
    pub reasons: Vec<String>,
}

/// Everything on the asset page's time axis, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Timeline {
    pub duration: f64,
    pub tracks: Vec<TrackLoudness>,
    pub black: Vec<Span>,
    pub credits: Vec<Span>,
    pub shots: Vec<f64>,
    pub speech: Vec<SpeechSpan>,
    pub slots: Vec<Mark>,
    pub breaks: Vec<Mark>,
}

pub async fn timeline(ctx: &WorkerContext, asset: &Asset) -> ApiResult<Timeline> {
    let silence = ctx.settings.audio.silence_threshold_lufs;
    let tracks = asset.audio.as_ref().map(|a| a.audiocount).unwrap_or(0);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut wanted: Vec<String> = (1..=tracks)
        .map(cuepoint_core::results::loudness_track)
        .collect();
    wanted.push(cuepoint_core::results::SEGMENTS.to_string());
    for rel in wanted {
        if let Some(b) = fetch(ctx, &asset.id, &rel).await? {
            files.insert(rel, b);
        }
    }
    let inputs = ScoringInputs::from_files(|rel: &str| Ok(files.get(rel).cloned()))
        .map_err(|e| ApiError::internal(format!("results of asset {}: {e}", asset.id)))?;
    let slots_out: Option<ScoringOutput> = fetch(ctx, &asset.id, cuepoint_core::results::SLOTS)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let duration = asset
        .probe
        .as_ref()
        .map(|p| p.duration_seconds)
        .filter(|d| *d > 0.0)
        .or(slots_out.as_ref().and_then(|o| o.duration))
        .or(inputs.duration_seconds())
        .unwrap_or(0.0);
    let tracks = inputs
        .loudness
        .iter()
        .enumerate()
        .map(|(i, log)| {
            let step = (log.rows.len() / 600).max(1);
            TrackLoudness {
                track: i as u32 + 1,
                active: log.summary.input_max_loudness > silence,
                max_loudness: log.summary.input_max_loudness,
                points: log
                    .rows
                    .iter()
                    .step_by(step)
                    .map(|r| [r.seconds, r.momentary.max(-120.0)])
                    .collect(),
            }
        })
        .collect();
    let (mut black, mut credits, mut shots) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(seg) = &inputs.segments {
        for s in &seg.segments {
            let span = Span {
                start: s.start_timestamp_millis as f64 / 1000.0,
                end: s.end_timestamp_millis as f64 / 1000.0,
            };
            match s.cue_type() {
                Some(CUE_BLACK_FRAMES) => black.push(span),
                Some(CUE_END_CREDITS) => credits.push(span),
                _ if s.segment_type == SEGMENT_SHOT => shots.push(span.start),
                _ => {}
            }
        }
    }
    let speech = fetch_json(ctx, &asset.id, SPEECH)
        .await?
        .map(|v| speech_spans(&v))
        .unwrap_or_default();
    let slots = slots_out
        .map(|o| {
            o.slots
                .iter()
                .map(|s| Mark {
                    timestamp: s.timestamp,
                    score: s.score,
                    reasons: s.reasons.iter().map(|r| r.to_string()).collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let breaks = asset
        .breaks
        .iter()
        .map(|b| Mark {
            timestamp: b.timestamp,
            score: b.score,
            reasons: b.reasons.clone(),
        })
        .collect();
    Ok(Timeline {
        duration,
        tracks,
        black,
        credits,
        shots,
        speech,
        slots,
        breaks,
    })
}

fn speech_spans(v: &Value) -> Vec<SpeechSpan> {
    v.get("Speech")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    Some(SpeechSpan {
                        track: s.get("Track")?.as_u64()? as u32,
                        start: s.get("StartTimestamp")?.as_f64()? / 1000.0,
                        end: s.get("EndTimestamp")?.as_f64()? / 1000.0,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---- panels ----

/// A name seen at several times (a label, a person, a moderation label).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Occurrences {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Highest confidence, percent.
    pub confidence: f64,
    pub count: usize,
    /// Milliseconds from the start, ascending (at most 200).
    pub times_ms: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FaceItem {
    pub timestamp_ms: u64,
    pub confidence: f64,
}

/// A stretch of the transcript: a sentence or up to a dozen words.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Phrase {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// The state of one analysis for the panels: `COMPLETE`, `MISSING` (no results file),
/// `NOT_INSTALLED`, `UNAVAILABLE_OFFLINE` or `FAILED` (as the file's `CuepointAnalysis` says).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PanelStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Insights {
    pub labels: PanelStatus,
    pub label_items: Vec<Occurrences>,
    pub faces: PanelStatus,
    pub face_items: Vec<FaceItem>,
    pub celebrities: PanelStatus,
    pub celebrity_items: Vec<Occurrences>,
    pub moderation: PanelStatus,
    pub moderation_items: Vec<Occurrences>,
    pub transcript: PanelStatus,
    pub transcript_items: Vec<Phrase>,
}

pub fn panel_status(file: Option<&Value>, name: &str) -> PanelStatus {
    let Some(v) = file else {
        return PanelStatus {
            status: "MISSING".into(),
            message: Some(format!("no {name} results for this asset")),
        };
    };
    let status = v
        .pointer("/CuepointAnalysis/Status")
        .and_then(Value::as_str)
        .unwrap_or("COMPLETE")
        .to_string();
    let message = v
        .pointer("/CuepointAnalysis/Message")
        .and_then(Value::as_str)
        .map(str::to_string);
    PanelStatus { status, message }
}

/// Group `list[]` entries by the name at `name_ptr` (timestamps at `Timestamp`).
pub fn occurrences(
    v: Option<&Value>,
    list: &str,
    name_ptr: &str,
    conf_ptr: &str,
    parent_ptr: Option<&str>,
) -> Vec<Occurrences> {
    let mut by: BTreeMap<String, Occurrences> = BTreeMap::new();
    for e in v
        .and_then(|v| v.get(list))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = e.pointer(name_ptr).and_then(Value::as_str) else {
            continue;
        };
        let t = e.get("Timestamp").and_then(Value::as_u64).unwrap_or(0);
        let c = e.pointer(conf_ptr).and_then(Value::as_f64).unwrap_or(0.0);
        let parent = parent_ptr
            .and_then(|p| e.pointer(p))
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        let o = by.entry(name.to_string()).or_insert_with(|| Occurrences {
            name: name.to_string(),
            parent,
            confidence: 0.0,
            count: 0,
            times_ms: vec![],
        });
        o.confidence = o.confidence.max(c);
        o.count += 1;
        o.times_ms.push(t);
    }
    let mut out: Vec<Occurrences> = by
        .into_values()
        .map(|mut o| {
            o.times_ms.sort_unstable();
            o.times_ms.dedup();
            o.times_ms.truncate(200);
            o
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.confidence.total_cmp(&a.confidence))
            .then(a.name.cmp(&b.name))
    });
    out
}

/// Transcript phrases from Amazon Transcribe's `results.items` (times are strings in seconds).
pub fn phrases(v: Option<&Value>) -> Vec<Phrase> {
    let mut out = Vec::new();
    let mut cur: Option<Phrase> = None;
    let mut words = 0usize;
    let items = v
        .and_then(|v| v.pointer("/results/items"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let num = |x: Option<&Value>| {
        x.and_then(|s| {
            s.as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .or_else(|| s.as_f64())
        })
    };
    for it in &items {
        let content = it
            .pointer("/alternatives/0/content")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if it.get("type").and_then(Value::as_str) == Some("punctuation") {
            if let Some(p) = cur.as_mut() {
                p.text.push_str(&content);
                if matches!(content.as_str(), "." | "?" | "!") {
                    out.extend(cur.take());
                    words = 0;
                }
            }
            continue;
        }
        let (Some(start), Some(end)) = (num(it.get("start_time")), num(it.get("end_time"))) else {
            continue;
        };
        if let Some(p) = &cur {
            if words >= 12 || start - p.end > 1.0 {
                out.extend(cur.take());
                words = 0;
            }
        }
        match cur.as_mut() {
            Some(p) => {
                p.text.push(' ');
                p.text.push_str(&content);
                p.end = end;
            }
            None => {
                cur = Some(Phrase {
                    start,
                    end,
                    text: content,
                })
            }
        }
        words += 1;
    }
    out.extend(cur);
    out
}

pub async fn insights(ctx: &WorkerContext, id: &AssetId) -> ApiResult<Insights> {
    let labels = fetch_json(ctx, id, cuepoint_core::results::LABELS).await?;
    let faces = fetch_json(ctx, id, cuepoint_core::results::FACES).await?;
    let celebs = fetch_json(ctx, id, cuepoint_core::results::CELEBRITIES).await?;
    let moderation = fetch_json(ctx, id, cuepoint_core::results::MODERATION).await?;
    let transcript = fetch_json(ctx, id, TRANSCRIPT).await?;
    let face_items = faces
        .as_ref()
        .and_then(|v| v.get("Faces"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|f| FaceItem {
                    timestamp_ms: f.get("Timestamp").and_then(Value::as_u64).unwrap_or(0),
                    confidence: f
                        .pointer("/Face/Confidence")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Insights {
        labels: panel_status(labels.as_ref(), "label"),
        label_items: occurrences(
            labels.as_ref(),
            "Labels",
            "/Label/Name",
            "/Label/Confidence",
            Some("/Label/Parents/0/Name"),
        ),
        faces: panel_status(faces.as_ref(), "face"),
        face_items,
        celebrities: panel_status(celebs.as_ref(), "celebrity"),
        celebrity_items: occurrences(
            celebs.as_ref(),
            "Celebrities",
            "/Celebrity/Name",
            "/Celebrity/Confidence",
            None,
        ),
        moderation: panel_status(moderation.as_ref(), "moderation"),
        moderation_items: occurrences(
            moderation.as_ref(),
            "ModerationLabels",
            "/ModerationLabel/Name",
            "/ModerationLabel/Confidence",
            Some("/ModerationLabel/ParentName"),
        ),
        transcript: panel_status(transcript.as_ref(), "transcript"),
        transcript_items: phrases(transcript.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transcript_phrases_split_on_sentences_and_pauses() {
        let w = |c: &str, a: f64, b: f64| json!({"type":"pronunciation","start_time":format!("{a}"),"end_time":format!("{b}"),"alternatives":[{"content":c,"confidence":"0.9"}]});
        let p = |c: &str| json!({"type":"punctuation","alternatives":[{"content":c}]});
        let v = json!({"results":{"transcripts":[{"transcript":"x"}],"items":[w("Hello",0.5,0.9),w("there",1.0,1.3),p("."),w("Next",1.4,1.6),w("words",4.0,4.5)]}});
        let ph = phrases(Some(&v));
        let texts: Vec<&str> = ph.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["Hello there.", "Next", "words"]);
        assert_eq!(ph[2].start, 4.0);
    }

    #[test]
    fn status_and_occurrences() {
        let v = json!({"Labels":[
            {"Timestamp":2000,"Label":{"Name":"Dog","Confidence":80.0,"Parents":[{"Name":"Animal"}]}},
            {"Timestamp":1000,"Label":{"Name":"Dog","Confidence":90.0,"Parents":[{"Name":"Animal"}]}},
            {"Timestamp":1000,"Label":{"Name":"Cat","Confidence":70.0}}],
            "CuepointAnalysis":{"Status":"NOT_INSTALLED","Message":"run install"}});
        let o = occurrences(
            Some(&v),
            "Labels",
            "/Label/Name",
            "/Label/Confidence",
            Some("/Label/Parents/0/Name"),
        );
        assert_eq!(o[0].name, "Dog");
        assert_eq!(o[0].times_ms, [1000, 2000]);
        assert_eq!(o[0].confidence, 90.0);
        assert_eq!(o[0].parent.as_deref(), Some("Animal"));
        assert_eq!(panel_status(Some(&v), "label").status, "NOT_INSTALLED");
        assert_eq!(panel_status(None, "label").status, "MISSING");
    }
}
