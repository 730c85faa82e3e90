//! `transcript.json` and `speech.json` bodies the workers write themselves: for a source with
//! nothing to hear, for a failed transcription, and speech activity from a transcript's word
//! times (Amazon Transcribe measures no speech activity of its own).

use cuepoint_core::speech::{intervals_from_transcript, SpeechResults, DEFAULT_WORD_GAP_MS};
use cuepoint_core::transcript::Transcript;
use serde_json::{json, Value};

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

/// `speech.json` from a transcript of `track` (the core's word-gap rule). A transcript that
/// carries a `CuepointAnalysis` status passes it on; one that does not parse gives no speech.
pub fn speech_from_transcript(transcript: &Value, track: u32) -> Value {
    let parsed: Transcript = serde_json::from_value(transcript.clone()).unwrap_or_default();
    let mut out = SpeechResults::new(intervals_from_transcript(
        &parsed,
        track,
        DEFAULT_WORD_GAP_MS,
    ));
    if let Some(status) = transcript.get("CuepointAnalysis") {
        out.extra.insert("CuepointAnalysis".into(), status.clone());
    }
    serde_json::to_value(out).unwrap_or_else(|_| silent_speech())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(s: &str, e: &str, c: &str, w: &str) -> Value {
        json!({"start_time": s, "end_time": e, "type": "pronunciation", "alternatives": [{"content": w, "confidence": c}]})
    }

    #[test]
    fn words_merge_into_intervals_across_short_gaps() {
        // 0.1 s between "hello" and "there" merges; 1.6 s before "again" does not.
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
