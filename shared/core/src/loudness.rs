//! MediaConvert loudness logs and the per-track audio verdicts derived from them.
//!
//! # The CSV layout
//! MediaConvert (audio normalization `MEASURE_ONLY` + loudness logging `LOG`) writes one CSV per
//! audio track. cuepoint relies only on what both public consumers of those logs rely on:
//! - line 1 is a header (skipped, never interpreted);
//! - every following line but the last is a measurement row: column 0 = time in seconds,
//!   column 3 = short-term loudness (LUFS);
//! - the last line is the summary row: column 6 = the track's Input Max Loudness.
//!
//! MediaConvert's exact header names are not published in any reference we could find, so
//! [`LoudnessLog::to_csv`] writes descriptive names of its own ([`CSV_HEADER`]) in the same column
//! order. Measurement rows carry 5 columns (time, momentary, integrated, short-term, true peak);
//! the summary row carries 8: `<last time>,,,0,,<input integrated>,<input max>,<input true peak>`.
//! Its column 3 is a constant `0` ([`SUMMARY_SHORT_TERM_MARKER`]): the reference ad-slot sample
//! walks the summary row as if it were a measurement, and a value at or above any sensible silence
//! threshold can never open a silent run there, so walking it and skipping it agree.
//!
//! The parser is lenient where the scorers do not care (blank lines, `\r\n`, a BOM, extra
//! columns, empty momentary/integrated/true-peak cells become NaN) and strict where they do: the
//! time and short-term cells of every row and the Input Max Loudness of the summary must be
//! numbers, and a log whose last line is not a summary row (a truncated upload) is rejected.

use serde::{Deserialize, Serialize};

/// Layout verdict from the number of tracks that carry audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AudioLayout {
    /// The source has no audio tracks at all.
    #[serde(rename = "none")]
    NoAudio,
    /// Every track is silent.
    #[serde(rename = "silent")]
    Silent,
    #[serde(rename = "mono")]
    Mono,
    #[serde(rename = "2.0")]
    Stereo,
    #[serde(rename = "5.1")]
    Surround51,
    #[serde(rename = "other")]
    Other,
}

/// A run of silence in one track, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceInterval {
    pub start: f64,
    pub end: f64,
    pub duration: f64,
}

/// The per-asset audio attributes of the original silent-track pipeline (what `audio.json` holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioReport {
    pub audiocount: usize,
    /// Input Max Loudness per track (track 1 first).
    pub maxloudness: Vec<f64>,
    /// 1 = track has audio, 0 = silent.
    pub loudnessmap: Vec<u8>,
    pub layout: AudioLayout,
    /// Silence intervals per track (track 1 first).
    #[serde(default)]
    pub silences: Vec<Vec<SilenceInterval>>,
}

/// One measurement row of a MediaConvert loudness log (one per logging interval).
/// The CSV column order is fixed by `LoudnessLog::to_csv`/`parse`: column 0 is `seconds`,
/// column 3 is `short_term`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoudnessRow {
    pub seconds: f64,
    pub momentary: f64,
    pub integrated: f64,
    pub short_term: f64,
    pub true_peak: f64,
}

/// The log's last (summary) row: column 6 is the Input Max Loudness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoudnessSummary {
    pub input_integrated: f64,
    pub input_max_loudness: f64,
    pub input_true_peak: f64,
}

/// A whole loudness log for one audio track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoudnessLog {
    pub rows: Vec<LoudnessRow>,
    pub summary: LoudnessSummary,
}

/// Header line written by [`LoudnessLog::to_csv`] (8 columns; see the module docs).
pub const CSV_HEADER: &str = "Time (s),Momentary Loudness (LUFS),Integrated Loudness (LUFS),\
Short-Term Loudness (LUFS),True Peak (dBTP),Input Integrated Loudness (LUFS),\
Input Max Loudness (LUFS),Input True Peak (dBTP)";

/// Column 3 of the summary row we write: not a measurement, a value no silence threshold
/// (anything below 0 LUFS) treats as silent.
pub const SUMMARY_SHORT_TERM_MARKER: f64 = 0.0;

/// Default threshold (LUFS) below which a track or a moment is silent (the original silent-track pipeline's -50).
pub const DEFAULT_SILENCE_THRESHOLD: f64 = -50.0;
/// Default shortest silence reported in [`AudioReport::silences`], in seconds.
pub const DEFAULT_MIN_SILENCE_SECONDS: f64 = 0.5;

const COL_TIME: usize = 0;
const COL_MOMENTARY: usize = 1;
const COL_INTEGRATED: usize = 2;
const COL_SHORT_TERM: usize = 3;
const COL_TRUE_PEAK: usize = 4;
const COL_INPUT_INTEGRATED: usize = 5;
const COL_INPUT_MAX: usize = 6;
const COL_INPUT_TRUE_PEAK: usize = 7;
/// A measurement row needs columns 0..=3; a summary row needs 0..=6.
const ROW_MIN_COLUMNS: usize = COL_SHORT_TERM + 1;
const SUMMARY_MIN_COLUMNS: usize = COL_INPUT_MAX + 1;

/// Why a loudness log could not be read. Line numbers count from 1 (the header is line 1);
/// columns are named and numbered from 1 in messages, from 0 in `column`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoudnessError {
    #[error("the loudness log is empty")]
    Empty,
    #[error("line {line}: the loudness log has a header but no summary row (it looks truncated)")]
    HeaderOnly { line: usize },
    #[error(
        "line {line}: expected the summary row (at least {SUMMARY_MIN_COLUMNS} columns, Input Max \
         Loudness in column {}) but found {found} column(s); the log looks truncated",
        COL_INPUT_MAX + 1
    )]
    MissingSummary { line: usize, found: usize },
    #[error(
        "line {line}: too few columns: found {found}, a measurement row needs at least {needed}"
    )]
    TooFewColumns {
        line: usize,
        found: usize,
        needed: usize,
    },
    #[error("line {line}: {field} (column {}) is not a number: {value:?}", column + 1)]
    NotANumber {
        line: usize,
        column: usize,
        field: &'static str,
        value: String,
    },
}

/// Which loudness measurement decides silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoudnessMeasure {
    /// 400 ms window: reacts fast, finds short pauses.
    Momentary,
    /// 3 s window (what the reference sample and the original silent-track pipeline use): lags the audio by
    /// up to 3 s, so a run of quiet short-term values starts about 3 s after the audio went quiet.
    #[default]
    ShortTerm,
}

impl LoudnessMeasure {
    pub fn of(self, row: &LoudnessRow) -> f64 {
        match self {
            Self::Momentary => row.momentary,
            Self::ShortTerm => row.short_term,
        }
    }
}

/// Columns 0 and 3 of the summary row, when they hold numbers. The reference scorer walks the
/// summary row like a measurement row (the public sample does), so it needs them; for logs we
/// write, column 3 is [`SUMMARY_SHORT_TERM_MARKER`] and walking changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryRowCells {
    pub seconds: Option<f64>,
    pub short_term: Option<f64>,
}

/// A maximal run of consecutive measurement rows below a threshold: row indexes `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilentRun {
    pub first: usize,
    pub last: usize,
}

/// Maximal runs of consecutive rows whose `measure` is below `threshold`, in row order.
/// Shared by the audio report, the reference scorer (which uses only where runs begin) and the
/// default scorer (which uses whole intervals).
pub fn silent_runs(
    rows: &[LoudnessRow],
    threshold: f64,
    measure: LoudnessMeasure,
) -> Vec<SilentRun> {
    let mut runs = Vec::new();
    let mut open: Option<usize> = None;
    for (i, row) in rows.iter().enumerate() {
        let silent = measure.of(row) < threshold;
        match (silent, open) {
            (true, None) => open = Some(i),
            (false, Some(first)) => {
                runs.push(SilentRun { first, last: i - 1 });
                open = None;
            }
            _ => {}
        }
    }
    if let Some(first) = open {
        runs.push(SilentRun {
            first,
            last: rows.len() - 1,
        });
    }
    runs
}

/// The interval a run covers: from its first row's time to the time of the first loud row after
/// it (the moment loudness came back), or to the last row's time when the log ends silent.
pub fn run_interval(rows: &[LoudnessRow], run: SilentRun) -> SilenceInterval {
    let start = rows[run.first].seconds;
    let end = rows.get(run.last + 1).unwrap_or(&rows[run.last]).seconds;
    SilenceInterval {
        start,
        end,
        duration: end - start,
    }
}

/// Silence intervals of one track at least `min_seconds` long.
pub fn silence_intervals(
    rows: &[LoudnessRow],
    threshold: f64,
    measure: LoudnessMeasure,
    min_seconds: f64,
) -> Vec<SilenceInterval> {
    silent_runs(rows, threshold, measure)
        .into_iter()
        .map(|run| run_interval(rows, run))
        .filter(|iv| iv.end >= iv.start && iv.duration >= min_seconds)
        .collect()
}

/// Times where every list has silence at once (the intersection of sorted interval lists),
/// keeping pieces at least `min_seconds` long. No lists means no common silence.
pub fn common_silence(tracks: &[Vec<SilenceInterval>], min_seconds: f64) -> Vec<SilenceInterval> {
    let Some((first, rest)) = tracks.split_first() else {
        return Vec::new();
    };
    let mut acc: Vec<SilenceInterval> = first.clone();
    for other in rest {
        let mut next = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < acc.len() && j < other.len() {
            let start = acc[i].start.max(other[j].start);
            let end = acc[i].end.min(other[j].end);
            if end >= start {
                next.push(SilenceInterval {
                    start,
                    end,
                    duration: end - start,
                });
            }
            if acc[i].end < other[j].end {
                i += 1;
            } else {
                j += 1;
            }
        }
        acc = next;
    }
    acc.retain(|iv| iv.duration >= min_seconds);
    acc
}

impl LoudnessLog {
    /// The log as MediaConvert-layout CSV (see the module docs), `\n` line endings.
    /// Numbers use Rust's shortest round-trip formatting, so `parse(to_csv())` gives back the
    /// same values.
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(64 * (self.rows.len() + 2));
        out.push_str(CSV_HEADER);
        out.push('\n');
        for r in &self.rows {
            out.push_str(&format!(
                "{},{},{},{},{}\n",
                r.seconds, r.momentary, r.integrated, r.short_term, r.true_peak
            ));
        }
        let end = self.rows.last().map_or(0.0, |r| r.seconds);
        let s = &self.summary;
        out.push_str(&format!(
            "{end},,,{SUMMARY_SHORT_TERM_MARKER},,{},{},{}\n",
            s.input_integrated, s.input_max_loudness, s.input_true_peak
        ));
        out
    }

    /// Parses a MediaConvert-layout loudness log.
    pub fn parse(text: &str) -> Result<LoudnessLog, LoudnessError> {
        Self::parse_with_summary_cells(text).map(|(log, _)| log)
    }

    /// [`parse`](Self::parse), also returning the summary row's time and short-term cells.
    pub fn parse_with_summary_cells(
        text: &str,
    ) -> Result<(LoudnessLog, SummaryRowCells), LoudnessError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        // The first non-blank line is the header, whatever it says (the sample skips line 1).
        let Some((header_line, _)) = lines.by_ref().find(|(_, l)| !l.trim().is_empty()) else {
            return Err(LoudnessError::Empty);
        };
        let body: Vec<(usize, &str)> = lines.filter(|(_, l)| !l.trim().is_empty()).collect();
        let Some((&(summary_line, summary_text), data)) = body.split_last() else {
            return Err(LoudnessError::HeaderOnly {
                line: header_line + 1,
            });
        };

        let mut rows = Vec::with_capacity(data.len());
        for &(line, text) in data {
            let cells: Vec<&str> = text.split(',').map(str::trim).collect();
            if cells.len() < ROW_MIN_COLUMNS {
                return Err(LoudnessError::TooFewColumns {
                    line,
                    found: cells.len(),
                    needed: ROW_MIN_COLUMNS,
                });
            }
            let seconds = required(&cells, line, COL_TIME, "time")?;
            if !seconds.is_finite() {
                return Err(LoudnessError::NotANumber {
                    line,
                    column: COL_TIME,
                    field: "time",
                    value: cells[COL_TIME].to_string(),
                });
            }
            rows.push(LoudnessRow {
                seconds,
                momentary: optional(&cells, line, COL_MOMENTARY, "momentary loudness")?,
                integrated: optional(&cells, line, COL_INTEGRATED, "integrated loudness")?,
                short_term: required(&cells, line, COL_SHORT_TERM, "short-term loudness")?,
                true_peak: optional(&cells, line, COL_TRUE_PEAK, "true peak")?,
            });
        }

        let cells: Vec<&str> = summary_text.split(',').map(str::trim).collect();
        if cells.len() < SUMMARY_MIN_COLUMNS {
            return Err(LoudnessError::MissingSummary {
                line: summary_line,
                found: cells.len(),
            });
        }
        let summary = LoudnessSummary {
            input_integrated: optional(
                &cells,
                summary_line,
                COL_INPUT_INTEGRATED,
                "input integrated loudness",
            )?,
            input_max_loudness: required(
                &cells,
                summary_line,
                COL_INPUT_MAX,
                "input max loudness",
            )?,
            input_true_peak: optional(
                &cells,
                summary_line,
                COL_INPUT_TRUE_PEAK,
                "input true peak",
            )?,
        };
        let number = |col: usize| cells.get(col).and_then(|c| c.parse::<f64>().ok());
        let tail = SummaryRowCells {
            seconds: number(COL_TIME),
            short_term: number(COL_SHORT_TERM),
        };
        Ok((LoudnessLog { rows, summary }, tail))
    }

    /// Time of the last measurement row, if any.
    pub fn last_seconds(&self) -> Option<f64> {
        self.rows.last().map(|r| r.seconds)
    }

    /// The original silent-track pipeline's "has audio" rule: Input Max Loudness above `threshold`.
    pub fn has_audio(&self, threshold: f64) -> bool {
        self.summary.input_max_loudness > threshold
    }
}

fn required(
    cells: &[&str],
    line: usize,
    column: usize,
    field: &'static str,
) -> Result<f64, LoudnessError> {
    let value = cells[column];
    value.parse::<f64>().map_err(|_| LoudnessError::NotANumber {
        line,
        column,
        field,
        value: value.to_string(),
    })
}

/// A cell the scorers do not read: absent or empty is NaN, anything else must be a number.
fn optional(
    cells: &[&str],
    line: usize,
    column: usize,
    field: &'static str,
) -> Result<f64, LoudnessError> {
    match cells.get(column) {
        None | Some(&"") => Ok(f64::NAN),
        Some(_) => required(cells, line, column, field),
    }
}

/// Knobs for [`AudioReport::from_logs`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioOptions {
    /// LUFS. A track has audio when its Input Max Loudness is above this; a moment is silent
    /// when its momentary loudness is below it.
    pub silence_threshold: f64,
    /// Shortest silence interval reported, seconds.
    pub min_silence_seconds: f64,
}

impl Default for AudioOptions {
    fn default() -> Self {
        Self {
            silence_threshold: DEFAULT_SILENCE_THRESHOLD,
            min_silence_seconds: DEFAULT_MIN_SILENCE_SECONDS,
        }
    }
}

impl AudioLayout {
    /// Layout from the number of tracks and how many of them carry audio.
    pub fn classify(tracks: usize, active: usize) -> Self {
        match (tracks, active) {
            (0, _) => Self::NoAudio,
            (_, 0) => Self::Silent,
            (_, 1) => Self::Mono,
            (_, 2) => Self::Stereo,
            (_, 6) => Self::Surround51,
            _ => Self::Other,
        }
    }
}

impl AudioReport {
    /// The tracks that carry sound (1-based), in order.
    pub fn tracks_with_sound(&self) -> Vec<u32> {
        self.loudnessmap
            .iter()
            .enumerate()
            .filter(|(_, m)| **m == 1)
            .map(|(i, _)| i as u32 + 1)
            .collect()
    }

    /// The main dialogue track (1-based): the loudest track with sound, the first on a tie;
    /// `None` when no track carries sound.
    pub fn main_dialogue_track(&self) -> Option<u32> {
        let mut best: Option<(u32, f64)> = None;
        for t in self.tracks_with_sound() {
            let l = self
                .maxloudness
                .get(t as usize - 1)
                .copied()
                .unwrap_or(f64::NEG_INFINITY);
            if best.is_none_or(|(_, b)| l > b) {
                best = Some((t, l));
            }
        }
        best.map(|(t, _)| t)
    }

    /// The original silent-track pipeline's per-asset audio attributes from one loudness log per track (track 1 first).
    pub fn from_logs(logs: &[LoudnessLog], opts: &AudioOptions) -> AudioReport {
        let maxloudness: Vec<f64> = logs.iter().map(|l| l.summary.input_max_loudness).collect();
        let loudnessmap: Vec<u8> = logs
            .iter()
            .map(|l| u8::from(l.has_audio(opts.silence_threshold)))
            .collect();
        let active = loudnessmap.iter().filter(|&&m| m == 1).count();
        let silences = logs
            .iter()
            .map(|l| {
                // Momentary loudness (400 ms window): the 3 s short-term window never drops
                // below the threshold in a silence shorter than about 3 s.
                silence_intervals(
                    &l.rows,
                    opts.silence_threshold,
                    LoudnessMeasure::Momentary,
                    opts.min_silence_seconds,
                )
            })
            .collect();
        AudioReport {
            audiocount: logs.len(),
            maxloudness,
            loudnessmap,
            layout: AudioLayout::classify(logs.len(), active),
            silences,
        }
    }

    /// Indexes (0-based) of the tracks that carry audio.
    pub fn active_tracks(&self) -> Vec<usize> {
        self.loudnessmap
            .iter()
            .enumerate()
            .filter(|(_, &m)| m == 1)
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn main_dialogue_track_is_the_loudest_with_sound() {
        let r = |max: Vec<f64>, map: Vec<u8>| AudioReport {
            audiocount: max.len(),
            maxloudness: max,
            loudnessmap: map,
            layout: AudioLayout::Mono,
            silences: vec![],
        };
        let a = r(vec![-30.0, -12.0, -5.0], vec![1, 1, 0]);
        assert_eq!(a.tracks_with_sound(), [1, 2]);
        assert_eq!(a.main_dialogue_track(), Some(2));
        assert_eq!(
            r(vec![-20.0, -20.0], vec![1, 1]).main_dialogue_track(),
            Some(1)
        );
        assert_eq!(r(vec![-140.0], vec![0]).main_dialogue_track(), None);
        assert_eq!(r(vec![], vec![]).main_dialogue_track(), None);
    }

    use super::*;
    use proptest::prelude::*;

    fn row(seconds: f64, short_term: f64) -> LoudnessRow {
        LoudnessRow {
            seconds,
            momentary: short_term,
            integrated: -23.0,
            short_term,
            true_peak: -1.0,
        }
    }

    fn log(rows: Vec<LoudnessRow>, max: f64) -> LoudnessLog {
        LoudnessLog {
            rows,
            summary: LoudnessSummary {
                input_integrated: -23.0,
                input_max_loudness: max,
                input_true_peak: -1.5,
            },
        }
    }

    #[test]
    fn to_csv_writes_the_mediaconvert_layout() {
        let l = log(vec![row(0.1, -20.5), row(0.2, -60.0)], -12.25);
        let csv = l.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(
            lines[0].split(',').nth(6),
            Some("Input Max Loudness (LUFS)")
        );
        assert_eq!(
            lines[0].split(',').nth(3),
            Some("Short-Term Loudness (LUFS)")
        );
        assert_eq!(lines[1], "0.1,-20.5,-23,-20.5,-1");
        assert_eq!(lines[2], "0.2,-60,-23,-60,-1");
        // Summary: column 0 the last time, column 3 the marker, column 6 Input Max Loudness.
        assert_eq!(lines[3], "0.2,,,0,,-23,-12.25,-1.5");
        assert_eq!(lines.len(), 4);
        assert!(csv.ends_with('\n'));
    }

    #[test]
    fn parse_reads_back_what_to_csv_wrote() {
        let l = log(
            vec![row(0.0, -120.7), row(0.1, -20.5), row(0.2, -60.0)],
            -143.268118,
        );
        assert_eq!(LoudnessLog::parse(&l.to_csv()).unwrap(), l);
        let (_, cells) = LoudnessLog::parse_with_summary_cells(&l.to_csv()).unwrap();
        assert_eq!(
            cells,
            SummaryRowCells {
                seconds: Some(0.2),
                short_term: Some(0.0)
            }
        );
    }

    #[test]
    fn a_log_without_rows_still_has_a_summary() {
        let l = log(vec![], -70.0);
        let csv = l.to_csv();
        assert_eq!(csv.lines().nth(1), Some("0,,,0,,-23,-70,-1.5"));
        assert_eq!(LoudnessLog::parse(&csv).unwrap(), l);
    }

    #[test]
    fn parse_tolerates_crlf_bom_blank_lines_extra_and_empty_cells() {
        let text = "\u{feff}Time,M,I,S,TP,II,IM,ITP\r\n1.0, -20 ,,-21\r\n\r\n2.0,-19,-20,-22,-3,x,y,z\r\n9,,,-5,,-24,-11.5,\r\n\r\n";
        let l = LoudnessLog::parse(text).unwrap();
        assert_eq!(l.rows.len(), 2);
        assert_eq!(l.rows[0].seconds, 1.0);
        assert_eq!(l.rows[0].momentary, -20.0);
        assert!(l.rows[0].integrated.is_nan());
        assert!(l.rows[0].true_peak.is_nan());
        assert_eq!(l.rows[1].short_term, -22.0);
        assert_eq!(l.summary.input_max_loudness, -11.5);
        assert_eq!(l.summary.input_integrated, -24.0);
        assert!(l.summary.input_true_peak.is_nan());
    }

    #[test]
    fn parse_accepts_infinite_loudness() {
        let l = LoudnessLog::parse("h\n1,-inf,-inf,-inf,-inf\n1,,,0,,-70,-inf,-inf\n").unwrap();
        assert_eq!(l.rows[0].short_term, f64::NEG_INFINITY);
        assert!(!l.has_audio(-50.0));
    }

    #[test]
    fn parse_errors_name_the_line_and_problem() {
        assert_eq!(LoudnessLog::parse(""), Err(LoudnessError::Empty));
        assert_eq!(LoudnessLog::parse(" \n\n"), Err(LoudnessError::Empty));
        assert_eq!(
            LoudnessLog::parse("header\n"),
            Err(LoudnessError::HeaderOnly { line: 2 })
        );
        // Truncated: the last line is a measurement row, not a summary.
        let truncated = "h\n0.1,-20,-20,-20,-1\n0.2,-20,-2";
        let err = LoudnessLog::parse(truncated).unwrap_err();
        assert_eq!(err, LoudnessError::MissingSummary { line: 3, found: 3 });
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = LoudnessLog::parse("h\n0.1,-20,-20\n0.2,,,0,,-1,-2,-3\n").unwrap_err();
        assert_eq!(
            err,
            LoudnessError::TooFewColumns {
                line: 2,
                found: 3,
                needed: 4
            }
        );
        assert_eq!(
            err.to_string(),
            "line 2: too few columns: found 3, a measurement row needs at least 4"
        );
        let err = LoudnessLog::parse("h\n0.1,-20,-20,loud,-1\n0.2,,,0,,-1,-2,-3\n").unwrap_err();
        assert_eq!(
            err,
            LoudnessError::NotANumber {
                line: 2,
                column: 3,
                field: "short-term loudness",
                value: "loud".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "line 2: short-term loudness (column 4) is not a number: \"loud\""
        );
        let err = LoudnessLog::parse("h\nabc,-20,-20,-20,-1\n0.2,,,0,,-1,-2,-3\n").unwrap_err();
        assert!(matches!(
            err,
            LoudnessError::NotANumber {
                line: 2,
                column: 0,
                ..
            }
        ));
        let err = LoudnessLog::parse("h\nnan,-20,-20,-20,-1\n0.2,,,0,,-1,-2,-3\n").unwrap_err();
        assert!(
            matches!(
                err,
                LoudnessError::NotANumber {
                    line: 2,
                    column: 0,
                    ..
                }
            ),
            "time must be finite"
        );
        let err = LoudnessLog::parse("h\n1,-20,-20,-20,-1\n0.2,,,0,,-1,,-3\n").unwrap_err();
        assert!(matches!(
            err,
            LoudnessError::NotANumber {
                line: 3,
                column: 6,
                field: "input max loudness",
                ..
            }
        ));
        let err = LoudnessLog::parse("h\n1,x,-20,-20,-1\n0.2,,,0,,-1,-2,-3\n").unwrap_err();
        assert!(matches!(
            err,
            LoudnessError::NotANumber {
                line: 2,
                column: 1,
                ..
            }
        ));
    }

    #[test]
    fn non_numeric_summary_cells_are_none() {
        let (_, cells) =
            LoudnessLog::parse_with_summary_cells("h\nSummary,,,,,-1,-2,-3\n").unwrap();
        assert_eq!(
            cells,
            SummaryRowCells {
                seconds: None,
                short_term: None
            }
        );
    }

    fn rows_at(levels: &[(f64, f64)]) -> Vec<LoudnessRow> {
        levels.iter().map(|&(t, s)| row(t, s)).collect()
    }

    #[test]
    fn silent_runs_and_intervals() {
        let rows = rows_at(&[
            (0.0, -70.0),
            (1.0, -70.0),
            (2.0, -20.0),
            (3.0, -60.0),
            (4.0, -50.0),
            (5.0, -55.0),
            (6.0, -56.0),
        ]);
        let runs = silent_runs(&rows, -50.0, LoudnessMeasure::ShortTerm);
        assert_eq!(
            runs,
            vec![
                SilentRun { first: 0, last: 1 },
                SilentRun { first: 3, last: 3 },
                SilentRun { first: 5, last: 6 }
            ]
        );
        // -50 is not below -50. The last run ends with the log, at the last row's time.
        let ivs = silence_intervals(&rows, -50.0, LoudnessMeasure::ShortTerm, 0.0);
        let spans: Vec<(f64, f64, f64)> =
            ivs.iter().map(|i| (i.start, i.end, i.duration)).collect();
        assert_eq!(
            spans,
            vec![(0.0, 2.0, 2.0), (3.0, 4.0, 1.0), (5.0, 6.0, 1.0)]
        );
        let long = silence_intervals(&rows, -50.0, LoudnessMeasure::ShortTerm, 1.5);
        assert_eq!(long.len(), 1);
        assert!(silent_runs(&[], -50.0, LoudnessMeasure::ShortTerm).is_empty());
    }

    #[test]
    fn momentary_measure_reads_the_momentary_column() {
        let mut r = row(1.0, -20.0);
        r.momentary = -80.0;
        assert_eq!(
            silent_runs(&[r.clone()], -50.0, LoudnessMeasure::Momentary).len(),
            1
        );
        assert!(silent_runs(&[r], -50.0, LoudnessMeasure::ShortTerm).is_empty());
    }

    fn iv(start: f64, end: f64) -> SilenceInterval {
        SilenceInterval {
            start,
            end,
            duration: end - start,
        }
    }

    #[test]
    fn common_silence_intersects_tracks() {
        let a = vec![iv(0.0, 2.0), iv(5.0, 9.0), iv(12.0, 13.0)];
        let b = vec![iv(1.0, 6.0), iv(8.0, 12.5)];
        let both = common_silence(&[a.clone(), b], 0.0);
        assert_eq!(
            both,
            vec![iv(1.0, 2.0), iv(5.0, 6.0), iv(8.0, 9.0), iv(12.0, 12.5)]
        );
        assert_eq!(
            common_silence(std::slice::from_ref(&a), 1.5),
            vec![iv(0.0, 2.0), iv(5.0, 9.0)]
        );
        assert!(common_silence(&[], 0.0).is_empty());
        assert!(common_silence(&[a, vec![]], 0.0).is_empty());
    }

    #[test]
    fn audio_report_follows_the_seed() {
        // The original silent-track pipeline's 8-track example: two tracks with audio, six silent -> a 2.0 asset.
        let maxes = [
            -12.766523,
            -14.114044,
            -143.268118,
            -143.268118,
            -143.268118,
            -143.268118,
            -143.268118,
            -143.268118,
        ];
        let logs: Vec<LoudnessLog> = maxes
            .iter()
            .map(|&m| log(vec![row(1.0, -20.0)], m))
            .collect();
        let report = AudioReport::from_logs(&logs, &AudioOptions::default());
        assert_eq!(report.audiocount, 8);
        assert_eq!(report.maxloudness, maxes.to_vec());
        assert_eq!(report.loudnessmap, vec![1, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(report.layout, AudioLayout::Stereo);
        assert_eq!(report.active_tracks(), vec![0, 1]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["layout"], "2.0");
        assert_eq!(
            json["loudnessmap"],
            serde_json::json!([1, 1, 0, 0, 0, 0, 0, 0])
        );
    }

    #[test]
    fn layouts() {
        assert_eq!(AudioLayout::classify(0, 0), AudioLayout::NoAudio);
        assert_eq!(AudioLayout::classify(8, 0), AudioLayout::Silent);
        assert_eq!(AudioLayout::classify(8, 1), AudioLayout::Mono);
        assert_eq!(AudioLayout::classify(2, 2), AudioLayout::Stereo);
        assert_eq!(AudioLayout::classify(8, 6), AudioLayout::Surround51);
        assert_eq!(AudioLayout::classify(8, 3), AudioLayout::Other);
        assert_eq!(AudioLayout::classify(8, 8), AudioLayout::Other);
        let r = AudioReport::from_logs(&[], &AudioOptions::default());
        assert_eq!((r.audiocount, r.layout), (0, AudioLayout::NoAudio));
        assert!(r.silences.is_empty());
    }

    #[test]
    fn threshold_is_strict_and_configurable() {
        // As in the original silent-track pipeline: audio when max loudness > threshold; exactly the threshold is silent.
        let logs = vec![log(vec![], -50.0), log(vec![], -49.9)];
        let r = AudioReport::from_logs(&logs, &AudioOptions::default());
        assert_eq!(r.loudnessmap, vec![0, 1]);
        assert_eq!(r.layout, AudioLayout::Mono);
        let opts = AudioOptions {
            silence_threshold: -60.0,
            ..AudioOptions::default()
        };
        assert_eq!(AudioReport::from_logs(&logs, &opts).loudnessmap, vec![1, 1]);
        let opts: AudioOptions = serde_json::from_str(r#"{"min_silence_seconds": 2}"#).unwrap();
        assert_eq!(opts.silence_threshold, -50.0);
        assert_eq!(opts.min_silence_seconds, 2.0);
    }

    #[test]
    fn audio_report_silences_per_track() {
        let t1 = log(
            rows_at(&[
                (0.0, -20.0),
                (1.0, -60.0),
                (1.2, -60.0),
                (1.4, -20.0),
                (2.0, -60.0),
                (3.0, -61.0),
            ]),
            -10.0,
        );
        let t2 = log(rows_at(&[(0.0, -70.0), (3.0, -70.0)]), -70.0);
        let r = AudioReport::from_logs(&[t1, t2], &AudioOptions::default());
        // Track 1: [1.0, 1.4] is 0.4 s, under the 0.5 s minimum; [2.0, 3.0] ends with the log.
        assert_eq!(r.silences[0], vec![iv(2.0, 3.0)]);
        assert_eq!(r.silences[1], vec![iv(0.0, 3.0)]);
        assert_eq!(r.layout, AudioLayout::Mono);
    }

    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            -200.0f64..10.0,
            any::<f64>().prop_filter("finite", |v| v.is_finite())
        ]
    }

    fn arb_log() -> impl Strategy<Value = LoudnessLog> {
        let r = (finite(), finite(), finite(), finite(), finite()).prop_map(
            |(seconds, momentary, integrated, short_term, true_peak)| LoudnessRow {
                seconds,
                momentary,
                integrated,
                short_term,
                true_peak,
            },
        );
        (
            proptest::collection::vec(r, 0..40),
            finite(),
            finite(),
            finite(),
        )
            .prop_map(|(rows, a, b, c)| LoudnessLog {
                rows,
                summary: LoudnessSummary {
                    input_integrated: a,
                    input_max_loudness: b,
                    input_true_peak: c,
                },
            })
    }

    proptest! {
        #[test]
        fn csv_round_trips(l in arb_log()) {
            prop_assert_eq!(LoudnessLog::parse(&l.to_csv()).unwrap(), l);
        }

        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = LoudnessLog::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_csv_like_text(text in "([-0-9.,a-z\\r\\n ]|inf|nan){0,200}") {
            let _ = LoudnessLog::parse_with_summary_cells(&text);
        }

        #[test]
        fn silence_intervals_are_ordered_and_long_enough(
            levels in proptest::collection::vec(-80.0f64..0.0, 0..60),
            min in 0.0f64..3.0,
        ) {
            let rows: Vec<LoudnessRow> = levels.iter().enumerate().map(|(i, &s)| row(i as f64 * 0.1, s)).collect();
            let ivs = silence_intervals(&rows, -50.0, LoudnessMeasure::ShortTerm, min);
            for w in ivs.windows(2) {
                prop_assert!(w[0].end <= w[1].start);
            }
            for i in &ivs {
                prop_assert!(i.duration >= min && i.end >= i.start);
            }
        }
    }
}
