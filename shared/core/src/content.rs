//! What the content analyses saw, for people: one status line per analysis (what it found, or
//! why it found nothing) and where speech, faces and the main labels are on the time axis. The
//! run summary, `cuepoint status` and `timeline.svg` show these.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::analysis::{AnalysisState, CuepointAnalysis};
use crate::rekognition::{CelebrityResults, FaceResults, LabelResults, ModerationResults};
use crate::speech::SpeechResults;
use crate::transcript::Transcript;

/// Detections closer than this (seconds) belong to one span on the time axis: labels and faces
/// are sampled about once a second, so one missed sample does not split a span.
pub const SPAN_GAP_SECONDS: f64 = 2.0;
/// Labels under this confidence are left off the time axis.
pub const LABEL_AXIS_MIN_CONFIDENCE: f64 = 50.0;
/// How many labels the time axis shows.
pub const TOP_LABELS: usize = 3;
/// Words of the transcript quoted in its status line.
pub const QUOTED_WORDS: usize = 8;

/// Which content analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentAnalysis {
    Labels,
    Faces,
    Celebrities,
    Moderation,
    Speech,
    Transcript,
}

impl ContentAnalysis {
    pub const ALL: [ContentAnalysis; 6] = [
        Self::Labels,
        Self::Faces,
        Self::Celebrities,
        Self::Moderation,
        Self::Speech,
        Self::Transcript,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Labels => "labels",
            Self::Faces => "faces",
            Self::Celebrities => "celebrities",
            Self::Moderation => "moderation",
            Self::Speech => "speech",
            Self::Transcript => "transcript",
        }
    }

    /// Its file in the results layout.
    pub fn results_file(self) -> &'static str {
        match self {
            Self::Labels => crate::results::LABELS,
            Self::Faces => crate::results::FACES,
            Self::Celebrities => crate::results::CELEBRITIES,
            Self::Moderation => crate::results::MODERATION,
            Self::Speech => crate::results::SPEECH,
            Self::Transcript => crate::results::TRANSCRIPT,
        }
    }
}

/// What one analysis came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AnalysisOutcome {
    /// It ran; `found` says what it found ("12 labels", "8.4 s over 3 intervals" of speech).
    Complete {
        found: String,
    },
    NotInstalled,
    UnavailableOffline,
    Failed {
        cause: String,
    },
    /// No results file (the analysis did not run, or this deployment does not have it).
    Missing,
    /// The file is there but cuepoint cannot read it.
    Unreadable {
        cause: String,
    },
}

impl std::fmt::Display for AnalysisOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Complete { found } => f.write_str(found),
            Self::NotInstalled => f.write_str("not installed — run `cuepoint models install`"),
            Self::UnavailableOffline => f.write_str("unavailable offline"),
            Self::Failed { cause } => write!(f, "failed: {cause}"),
            Self::Missing => f.write_str("no results"),
            Self::Unreadable { cause } => write!(f, "unreadable: {cause}"),
        }
    }
}

/// One line of the summary: an analysis and what it came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisLine {
    pub analysis: ContentAnalysis,
    #[serde(flatten)]
    pub outcome: AnalysisOutcome,
}

/// A stretch of time, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub start: f64,
    pub end: f64,
}

/// One label on the time axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelTrack {
    pub name: String,
    /// Distinct sample times at which it was seen.
    pub samples: usize,
    pub spans: Vec<Span>,
}

/// Speech, faces, the main labels and flagged moments on the time axis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentTimeline {
    pub speech: Vec<Span>,
    /// When at least one face is on screen.
    pub faces: Vec<Span>,
    /// The most often seen specific labels (a label that is another's parent, such as
    /// "Animal", says less than its child and is left off), most seen first.
    pub labels: Vec<LabelTrack>,
    /// Moderation labels at or above 50 %.
    pub moderation: Vec<Span>,
}

/// The results files, each as raw bytes when present.
#[derive(Debug, Clone, Default)]
pub struct ContentFiles {
    pub files: BTreeMap<ContentAnalysis, Vec<u8>>,
}

/// The parsed results.
#[derive(Debug, Clone, Default)]
pub struct ContentResults {
    pub labels: Option<LabelResults>,
    pub faces: Option<FaceResults>,
    pub celebrities: Option<CelebrityResults>,
    pub moderation: Option<ModerationResults>,
    pub speech: Option<SpeechResults>,
    pub transcript: Option<Transcript>,
    pub lines: Vec<AnalysisLine>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The `CuepointAnalysis` of a results file, if it has a readable one.
fn local_status(extra: &Map<String, Value>) -> Option<CuepointAnalysis> {
    serde_json::from_value(extra.get("CuepointAnalysis")?.clone()).ok()
}

fn outcome(extra: &Map<String, Value>, found: impl FnOnce() -> String) -> AnalysisOutcome {
    let Some(status) = local_status(extra) else {
        return AnalysisOutcome::Complete { found: found() };
    };
    match status.status {
        AnalysisState::Complete => AnalysisOutcome::Complete { found: found() },
        AnalysisState::NotInstalled => AnalysisOutcome::NotInstalled,
        AnalysisState::UnavailableOffline => AnalysisOutcome::UnavailableOffline,
        AnalysisState::Failed => AnalysisOutcome::Failed {
            cause: status.message.unwrap_or_else(|| "no cause recorded".into()),
        },
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    bytes: Option<&Vec<u8>>,
) -> Result<Option<T>, AnalysisOutcome> {
    match bytes {
        None => Ok(None),
        Some(b) => serde_json::from_slice(b)
            .map(Some)
            .map_err(|e| AnalysisOutcome::Unreadable {
                cause: e.to_string(),
            }),
    }
}

impl ContentFiles {
    /// Parses every file and says, per analysis, what it came to.
    pub fn read(&self) -> ContentResults {
        let mut out = ContentResults::default();
        for analysis in ContentAnalysis::ALL {
            let bytes = self.files.get(&analysis);
            let outcome = match analysis {
                ContentAnalysis::Labels => read_one(bytes, &mut out.labels, |r: &LabelResults| {
                    (&r.extra, plural(r.labels.len(), "label", "labels"))
                }),
                ContentAnalysis::Faces => read_one(bytes, &mut out.faces, |r: &FaceResults| {
                    (&r.extra, plural(r.faces.len(), "face", "faces"))
                }),
                ContentAnalysis::Celebrities => {
                    read_one(bytes, &mut out.celebrities, |r: &CelebrityResults| {
                        (
                            &r.extra,
                            plural(r.celebrities.len(), "celebrity", "celebrities"),
                        )
                    })
                }
                ContentAnalysis::Moderation => {
                    read_one(bytes, &mut out.moderation, |r: &ModerationResults| {
                        (
                            &r.extra,
                            plural(
                                r.moderation_labels.len(),
                                "moderation label",
                                "moderation labels",
                            ),
                        )
                    })
                }
                ContentAnalysis::Speech => read_one(bytes, &mut out.speech, |r: &SpeechResults| {
                    let found = if r.speech.is_empty() {
                        "no speech".to_string()
                    } else {
                        format!(
                            "{:.1} s over {}",
                            r.total_seconds(),
                            plural(r.speech.len(), "interval", "intervals")
                        )
                    };
                    (&r.extra, found)
                }),
                ContentAnalysis::Transcript => {
                    read_one(bytes, &mut out.transcript, |r: &Transcript| {
                        let words = r.word_count();
                        let quote = r.opening(QUOTED_WORDS);
                        let found = if quote.is_empty() {
                            plural(words, "word", "words")
                        } else {
                            format!("{} (\"{quote}\")", plural(words, "word", "words"))
                        };
                        (&r.extra, found)
                    })
                }
            };
            out.lines.push(AnalysisLine { analysis, outcome });
        }
        out
    }
}

fn read_one<T: serde::de::DeserializeOwned>(
    bytes: Option<&Vec<u8>>,
    slot: &mut Option<T>,
    describe: impl FnOnce(&T) -> (&Map<String, Value>, String),
) -> AnalysisOutcome {
    match parse::<T>(bytes) {
        Err(o) => o,
        Ok(None) => AnalysisOutcome::Missing,
        Ok(Some(r)) => {
            let (extra, found) = describe(&r);
            let o = outcome(extra, || found);
            *slot = Some(r);
            o
        }
    }
}

/// Joins sorted times into spans: points closer than `gap` share a span.
fn spans_of(times: impl IntoIterator<Item = f64>, gap: f64) -> Vec<Span> {
    let mut sorted: Vec<f64> = times.into_iter().filter(|t| t.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut out: Vec<Span> = Vec::new();
    for t in sorted {
        match out.last_mut() {
            Some(s) if t - s.end <= gap => s.end = t,
            _ => out.push(Span { start: t, end: t }),
        }
    }
    out
}

fn parent_names(extra: &Map<String, Value>) -> impl Iterator<Item = &str> {
    extra
        .get("Parents")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("Name").and_then(|n| n.as_str()))
}

impl ContentResults {
    /// Speech, faces, the `top` most seen specific labels and flagged moments on the time axis.
    pub fn timeline(&self, top: usize) -> ContentTimeline {
        ContentTimeline::of(
            self.labels.as_ref(),
            self.faces.as_ref(),
            self.moderation.as_ref(),
            self.speech.as_ref(),
            top,
        )
    }
}

impl ContentTimeline {
    /// From the results scoring read (no transcript needed).
    pub fn of_inputs(inputs: &crate::scoring::ScoringInputs, top: usize) -> ContentTimeline {
        Self::of(
            inputs.labels.as_ref(),
            inputs.faces.as_ref(),
            inputs.moderation.as_ref(),
            inputs.speech.as_ref(),
            top,
        )
    }

    pub fn of(
        labels: Option<&LabelResults>,
        faces: Option<&FaceResults>,
        moderation: Option<&ModerationResults>,
        speech: Option<&SpeechResults>,
        top: usize,
    ) -> ContentTimeline {
        let ms = |t: i64| t as f64 / 1000.0;
        let speech = speech
            .map(|s| {
                s.merged_seconds()
                    .into_iter()
                    .map(|(start, end)| Span { start, end })
                    .collect()
            })
            .unwrap_or_default();
        let faces = faces
            .map(|r| spans_of(r.faces.iter().map(|f| ms(f.timestamp)), SPAN_GAP_SECONDS))
            .unwrap_or_default();
        let moderation = moderation
            .map(|r| {
                let flagged = r
                    .moderation_labels
                    .iter()
                    .filter(|m| m.moderation_label.confidence >= 50.0)
                    .map(|m| ms(m.timestamp));
                spans_of(flagged, SPAN_GAP_SECONDS)
            })
            .unwrap_or_default();

        let mut tracks = Vec::new();
        if let Some(r) = labels {
            let parents: BTreeSet<&str> = r
                .labels
                .iter()
                .flat_map(|l| parent_names(&l.label.extra))
                .collect();
            let mut seen: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
            for l in &r.labels {
                let name = l.label.name.as_str();
                if l.label.confidence >= LABEL_AXIS_MIN_CONFIDENCE && !parents.contains(name) {
                    seen.entry(name).or_default().insert(l.timestamp);
                }
            }
            let mut ranked: Vec<(&str, BTreeSet<i64>)> = seen.into_iter().collect();
            // Most seen first; ties in name order (the map's order, kept by the stable sort).
            ranked.sort_by_key(|r| std::cmp::Reverse(r.1.len()));
            tracks = ranked
                .into_iter()
                .take(top)
                .map(|(name, times)| LabelTrack {
                    name: name.to_string(),
                    samples: times.len(),
                    spans: spans_of(times.iter().map(|&t| ms(t)), SPAN_GAP_SECONDS),
                })
                .collect();
        }
        ContentTimeline {
            speech,
            faces,
            labels: tracks,
            moderation,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.speech.is_empty()
            && self.faces.is_empty()
            && self.labels.is_empty()
            && self.moderation.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(ContentAnalysis, &str)]) -> ContentFiles {
        ContentFiles {
            files: entries
                .iter()
                .map(|(k, v)| (*k, v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn line(r: &ContentResults, a: ContentAnalysis) -> String {
        r.lines
            .iter()
            .find(|l| l.analysis == a)
            .unwrap()
            .outcome
            .to_string()
    }

    #[test]
    fn status_lines_say_what_each_analysis_found_or_why_not() {
        let r = files(&[
            (ContentAnalysis::Labels, r#"{"Labels":[{"Timestamp":0,"Label":{"Name":"Cat","Confidence":90}},{"Timestamp":1000,"Label":{"Name":"Cat","Confidence":90}}]}"#),
            (ContentAnalysis::Faces, r#"{"Faces":[],"CuepointAnalysis":{"Status":"NOT_INSTALLED","Model":"retinaface","Message":"model retinaface is not installed"}}"#),
            (ContentAnalysis::Celebrities, r#"{"Celebrities":[],"CuepointAnalysis":{"Status":"UNAVAILABLE_OFFLINE"}}"#),
            (ContentAnalysis::Moderation, r#"{"ModerationLabels":[],"CuepointAnalysis":{"Status":"FAILED","Model":"opennsfw","Message":"tract: shape mismatch"}}"#),
            (ContentAnalysis::Speech, r#"{"JobStatus":"SUCCEEDED","Speech":[{"Track":1,"StartTimestamp":1000,"EndTimestamp":3500,"Confidence":90},{"Track":1,"StartTimestamp":5000,"EndTimestamp":6000,"Confidence":90}],"CuepointAnalysis":{"Status":"COMPLETE","Model":"silero-vad"}}"#),
        ])
        .read();
        assert_eq!(line(&r, ContentAnalysis::Labels), "2 labels");
        assert_eq!(
            line(&r, ContentAnalysis::Faces),
            "not installed — run `cuepoint models install`"
        );
        assert_eq!(
            line(&r, ContentAnalysis::Celebrities),
            "unavailable offline"
        );
        assert_eq!(
            line(&r, ContentAnalysis::Moderation),
            "failed: tract: shape mismatch"
        );
        assert_eq!(line(&r, ContentAnalysis::Speech), "3.5 s over 2 intervals");
        assert_eq!(line(&r, ContentAnalysis::Transcript), "no results");
        let json = serde_json::to_value(&r.lines).unwrap();
        assert_eq!(json[1]["analysis"], "faces");
        assert_eq!(json[1]["state"], "not_installed");
        assert_eq!(json[3]["cause"], "tract: shape mismatch");
        assert_eq!(json[4]["found"], "3.5 s over 2 intervals");
    }

    #[test]
    fn transcript_line_quotes_the_first_words_and_bad_files_say_so() {
        let r = files(&[
            (ContentAnalysis::Transcript, r#"{"results":{"transcripts":[{"transcript":"one two three four five six seven eight nine ten"}],"items":[
                {"start_time":"0.1","end_time":"0.2","alternatives":[{"content":"one","confidence":"0.9"}],"type":"pronunciation"},
                {"start_time":"0.3","end_time":"0.4","alternatives":[{"content":"two","confidence":"0.9"}],"type":"pronunciation"}]}}"#),
            (ContentAnalysis::Labels, "{not json"),
        ])
        .read();
        assert_eq!(
            line(&r, ContentAnalysis::Transcript),
            "2 words (\"one two three four five six seven eight…\")"
        );
        assert!(line(&r, ContentAnalysis::Labels).starts_with("unreadable: "));
        assert!(r.labels.is_none());
    }

    #[test]
    fn time_axis_joins_samples_into_spans_and_prefers_specific_labels() {
        let mut labels = Vec::new();
        for s in 0..10 {
            labels.push(format!(r#"{{"Timestamp":{},"Label":{{"Name":"Tabby","Confidence":80,"Parents":[{{"Name":"Cat"}},{{"Name":"Animal"}}]}}}}"#, s * 1000));
            labels.push(format!(r#"{{"Timestamp":{},"Label":{{"Name":"Cat","Confidence":95,"Parents":[{{"Name":"Animal"}}]}}}}"#, s * 1000));
            labels.push(format!(
                r#"{{"Timestamp":{},"Label":{{"Name":"Animal","Confidence":99,"Parents":[]}}}}"#,
                s * 1000
            ));
        }
        for s in 20..23 {
            labels.push(format!(r#"{{"Timestamp":{},"Label":{{"Name":"Sports Car","Confidence":70,"Parents":[{{"Name":"Car"}}]}}}}"#, s * 1000));
        }
        labels.push(r#"{"Timestamp":30000,"Label":{"Name":"Kite","Confidence":20}}"#.into());
        let labels = format!(r#"{{"Labels":[{}]}}"#, labels.join(","));
        let faces = r#"{"Faces":[{"Timestamp":1000,"Face":{"Confidence":99}},{"Timestamp":2000,"Face":{"Confidence":99}},{"Timestamp":2000,"Face":{"Confidence":97}},{"Timestamp":9000,"Face":{"Confidence":99}}]}"#;
        let moderation = r#"{"ModerationLabels":[{"Timestamp":4000,"ModerationLabel":{"Name":"Violence","Confidence":80}},{"Timestamp":5000,"ModerationLabel":{"Name":"Smoking","Confidence":10}}]}"#;
        let speech = r#"{"Speech":[{"Track":1,"StartTimestamp":1000,"EndTimestamp":2000},{"Track":2,"StartTimestamp":1500,"EndTimestamp":4000}]}"#;
        let t = files(&[
            (ContentAnalysis::Labels, &labels),
            (ContentAnalysis::Faces, faces),
            (ContentAnalysis::Moderation, moderation),
            (ContentAnalysis::Speech, speech),
        ])
        .read()
        .timeline(TOP_LABELS);
        let names: Vec<&str> = t.labels.iter().map(|l| l.name.as_str()).collect();
        // "Cat" and "Animal" are parents; "Kite" is under 50 %.
        assert_eq!(names, ["Tabby", "Sports Car"]);
        assert_eq!(t.labels[0].samples, 10);
        assert_eq!(
            t.labels[0].spans,
            vec![Span {
                start: 0.0,
                end: 9.0
            }]
        );
        assert_eq!(
            t.labels[1].spans,
            vec![Span {
                start: 20.0,
                end: 22.0
            }]
        );
        assert_eq!(
            t.faces,
            vec![
                Span {
                    start: 1.0,
                    end: 2.0
                },
                Span {
                    start: 9.0,
                    end: 9.0
                }
            ]
        );
        assert_eq!(
            t.speech,
            vec![Span {
                start: 1.0,
                end: 4.0
            }]
        );
        assert_eq!(
            t.moderation,
            vec![Span {
                start: 4.0,
                end: 4.0
            }]
        );
    }
}
