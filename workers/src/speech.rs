//! `transcript.json` and `speech.json` bodies the workers write themselves: for a source with
//! nothing to hear, for a failed transcription, and speech activity from a transcript's word
//! times (Amazon Transcribe measures no speech activity of its own).

use serde_json::{json, Value};

/// Words closer than this belong to one speech interval.
const MAX_WORD_GAP_SECONDS: f64 = 0.5;

/// A transcript of nothing (Transcribe's output shape).
pub fn silent_transcript() -> Value {
    json!({"status": "COMPLETED", "results": {"transcripts": [{"transcript": ""}], "items": []}})
}

pub fn silent_speech() -> Value {
    json!({"JobStatus": "SUCCEEDED", "Speech": []})
}

fn failed_status(reason: &str) -> Value {
    json!({"Status": "FAILED", "Message": reason})
}

/// What a failed transcription leaves in the results layout: empty results that say why.
pub fn failed_transcript(reason: &str) -> Value {
    json!({"status": "FAILED", "results": {"transcripts": [], "items": []}, "CuepointAnalysis": failed_status(reason)})
}

pub fn failed_speech(reason: &str) -> Value {
    json!({"JobStatus": "FAILED", "Speech": [], "CuepointAnalysis": failed_status(reason)})
}

/// `speech.json` from a transcript of `track`: consecutive words less than 0.5 s apart make one
/// interval; its confidence is the mean word confidence in percent. A transcript that carries a
/// `CuepointAnalysis` status passes it on.
pub fn speech_from_transcript(transcript: &Value, track: u32) -> Value {
    let items = transcript
        .pointer("/results/items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut words: Vec<(f64, f64, f64)> = items
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("pronunciation"))
        .filter_map(|i| {
            let t = |k: &str| {
                i.get(k)
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<f64>().ok())
            };
            let conf = i
                .pointer("/alternatives/0/confidence")
                .and_then(|c| {
                    c.as_str()
                        .and_then(|s| s.parse::<f64>().ok())
                        .or_else(|| c.as_f64())
                })
                .unwrap_or(0.0);
            Some((t("start_time")?, t("end_time")?, conf))
        })
        .filter(|(s, e, _)| s.is_finite() && e.is_finite() && e >= s)
        .collect();
    words.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut speech: Vec<Value> = Vec::new();
    let mut current: Option<(f64, f64, f64, usize)> = None;
    let close = |c: (f64, f64, f64, usize), out: &mut Vec<Value>| {
        out.push(json!({
            "Track": track,
            "StartTimestamp": (c.0 * 1000.0).round() as u64,
            "EndTimestamp": (c.1 * 1000.0).round() as u64,
            "Confidence": ((c.2 / c.3 as f64) * 1000.0).round() / 10.0,
        }))
    };
    for (s, e, conf) in words {
        current = match current {
            Some((cs, ce, sum, n)) if s - ce < MAX_WORD_GAP_SECONDS => {
                Some((cs, ce.max(e), sum + conf, n + 1))
            }
            Some(c) => {
                close(c, &mut speech);
                Some((s, e, conf, 1))
            }
            None => Some((s, e, conf, 1)),
        };
    }
    if let Some(c) = current {
        close(c, &mut speech);
    }
    let mut out = json!({"JobStatus": "SUCCEEDED", "Speech": speech});
    if let Some(status) = transcript.get("CuepointAnalysis") {
        out["CuepointAnalysis"] = status.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(s: &str, e: &str, c: &str, w: &str) -> Value {
        json!({"start_time": s, "end_time": e, "type": "pronunciation", "alternatives": [{"content": w, "confidence": c}]})
    }

    #[test]
    fn words_merge_into_intervals_across_short_gaps() {
        let t = json!({"results": {"transcripts": [{"transcript": "hello there. again"}], "items": [
            word("0.5", "0.9", "0.9", "hello"),
            word("1.0", "1.4", "0.7", "there"),
            {"type": "punctuation", "alternatives": [{"content": ".", "confidence": "0.0"}]},
            word("3.0", "3.6", "1.0", "again"),
        ]}});
        let s = speech_from_transcript(&t, 2);
        assert_eq!(
            s,
            json!({"JobStatus": "SUCCEEDED", "Speech": [
                {"Track": 2, "StartTimestamp": 500, "EndTimestamp": 1400, "Confidence": 80.0},
                {"Track": 2, "StartTimestamp": 3000, "EndTimestamp": 3600, "Confidence": 100.0},
            ]})
        );
    }

    #[test]
    fn statuses_pass_through_and_nothing_is_empty() {
        let t = json!({"results": {"transcripts": [], "items": []},
                       "CuepointAnalysis": {"Status": "NOT_INSTALLED", "Model": "whisper-base", "Message": "m"}});
        let s = speech_from_transcript(&t, 1);
        assert_eq!(s["Speech"], json!([]));
        assert_eq!(s["CuepointAnalysis"]["Status"], "NOT_INSTALLED");
        assert_eq!(speech_from_transcript(&json!({}), 1)["Speech"], json!([]));
        assert_eq!(
            failed_speech("boom")["CuepointAnalysis"],
            json!({"Status": "FAILED", "Message": "boom"})
        );
        assert_eq!(
            failed_transcript("boom")["CuepointAnalysis"]["Status"],
            "FAILED"
        );
    }
}
