//! What was said (`transcript.json`), in Amazon Transcribe's output shape: `results.transcripts[]`
//! and `results.items[]` with `start_time`, `end_time` (seconds, as strings), `alternatives` and
//! `type` (`pronunciation` for a word, `punctuation`). Fields cuepoint does not read are kept in
//! `extra` so a stored file round-trips unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `type` of a word item.
pub const ITEM_PRONUNCIATION: &str = "pronunciation";
/// `type` of a punctuation item (no times).
pub const ITEM_PUNCTUATION: &str = "punctuation";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    #[serde(default, rename = "jobName", skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub results: TranscriptResults,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptResults {
    #[serde(default)]
    pub transcripts: Vec<TranscriptText>,
    #[serde(default)]
    pub items: Vec<TranscriptItem>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptText {
    pub transcript: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
    #[serde(rename = "type")]
    pub item_type: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<String>,
}

/// One spoken word with its times in seconds (when the item carries them).
#[derive(Debug, Clone, PartialEq)]
pub struct Word<'a> {
    pub content: &'a str,
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// 0–1, when the item says.
    pub confidence: Option<f64>,
}

impl TranscriptItem {
    pub fn is_word(&self) -> bool {
        self.item_type == ITEM_PRONUNCIATION
    }
}

fn seconds(s: &Option<String>) -> Option<f64> {
    s.as_deref()?
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
}

impl Transcript {
    /// The spoken words (pronunciation items, their first alternative), in order.
    pub fn words(&self) -> impl Iterator<Item = Word<'_>> {
        self.results
            .items
            .iter()
            .filter(|i| i.is_word())
            .filter_map(|i| {
                i.alternatives.first().map(|a| Word {
                    content: a.content.as_str(),
                    start: seconds(&i.start_time),
                    end: seconds(&i.end_time),
                    confidence: a.confidence.as_deref().and_then(|c| c.trim().parse().ok()),
                })
            })
    }

    pub fn word_count(&self) -> usize {
        self.words().count()
    }

    /// The full text: the transcripts joined, or the words when there is no transcript text.
    pub fn text(&self) -> String {
        let joined: Vec<&str> = self
            .results
            .transcripts
            .iter()
            .map(|t| t.transcript.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if joined.is_empty() {
            self.words()
                .map(|w| w.content)
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            joined.join(" ")
        }
    }

    /// The first `n` words of [`text`](Self::text), with `…` when there are more.
    pub fn opening(&self, n: usize) -> String {
        let text = self.text();
        let mut words = text.split_whitespace();
        let head: Vec<&str> = words.by_ref().take(n).collect();
        let more = words.next().is_some();
        format!("{}{}", head.join(" "), if more { "…" } else { "" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"jobName":"j","accountId":"1","status":"COMPLETED","results":{
        "transcripts":[{"transcript":"Hello there, world."}],
        "items":[
          {"start_time":"0.5","end_time":"0.9","alternatives":[{"confidence":"0.99","content":"Hello"}],"type":"pronunciation"},
          {"start_time":"0.9","end_time":"1.2","alternatives":[{"confidence":"0.98","content":"there"}],"type":"pronunciation"},
          {"alternatives":[{"confidence":"0.0","content":","}],"type":"punctuation"},
          {"start_time":"1.3","end_time":"1.7","alternatives":[{"confidence":"0.97","content":"world"}],"type":"pronunciation"},
          {"alternatives":[{"confidence":"0.0","content":"."}],"type":"punctuation"}]}}"#;

    #[test]
    fn reads_transcribe_output() {
        let t: Transcript = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(t.word_count(), 3);
        let first = t.words().next().unwrap();
        assert_eq!(
            (first.content, first.start, first.end),
            ("Hello", Some(0.5), Some(0.9))
        );
        assert_eq!(t.text(), "Hello there, world.");
        assert_eq!(t.opening(2), "Hello there,…");
        assert_eq!(t.opening(3), "Hello there, world.");
        assert_eq!(t.extra["accountId"], "1");
        let back: Transcript = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn words_stand_in_for_a_missing_transcript_text() {
        let mut t: Transcript = serde_json::from_str(SAMPLE).unwrap();
        t.results.transcripts.clear();
        assert_eq!(t.text(), "Hello there world");
        let empty: Transcript =
            serde_json::from_str(r#"{"results":{"transcripts":[],"items":[]}}"#).unwrap();
        assert_eq!(empty.word_count(), 0);
        assert_eq!(empty.opening(5), "");
    }
}
