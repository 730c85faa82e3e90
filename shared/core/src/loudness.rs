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

/// The seed's per-asset audio attributes (what `audio.json` holds).
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

/// Default threshold (LUFS) below which a track or a moment is silent (the seed's -50).
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
    #[error("line {line}: too few columns: found {found}, a measurement row needs at least {needed}")]
    TooFewColumns { line: usize, found: usize, needed: usize },
    #[error("line {line}: {field} (column {}) is not a number: {value:?}", column + 1)]
    NotANumber { line: usize, column: usize, field: &'static str, value: String },
}

/// Which loudness measurement decides silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoudnessMeasure {
    /// 400 ms window: reacts fast, finds short pauses.
    Momentary,
    /// 3 s window (what the reference sample and the silent-track seed use): lags the audio by
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
pub fn silent_runs(rows: &[LoudnessRow], threshold: f64, measure: LoudnessMeasure) -> Vec<SilentRun> {
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
        runs.push(SilentRun { first, last: rows.len() - 1 });
    }
    runs
}

/// The interval a run covers: from its first row's time to the time of the first loud row after
/// it (the moment loudness came back), or to the last row's time when the log ends silent.
pub fn run_interval(rows: &[LoudnessRow], run: SilentRun) -> SilenceInterval {
    let start = rows[run.first].seconds;
    let end = rows.get(run.last + 1).unwrap_or(&rows[run.last]).seconds;
    SilenceInterval { start, end, duration: end - start }
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
                next.push(SilenceInterval { start, end, duration: end - start });
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
            return Err(LoudnessError::HeaderOnly { line: header_line + 1 });
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
            return Err(LoudnessError::MissingSummary { line: summary_line, found: cells.len() });
        }
        let summary = LoudnessSummary {
            input_integrated: optional(&cells, summary_line, COL_INPUT_INTEGRATED, "input integrated loudness")?,
            input_max_loudness: required(&cells, summary_line, COL_INPUT_MAX, "input max loudness")?,
            input_true_peak: optional(&cells, summary_line, COL_INPUT_TRUE_PEAK, "input true peak")?,
        };
        let number = |col: usize| cells.get(col).and_then(|c| c.parse::<f64>().ok());
        let tail = SummaryRowCells { seconds: number(COL_TIME), short_term: number(COL_SHORT_TERM) };
        Ok((LoudnessLog { rows, summary }, tail))
    }

    /// Time of the last measurement row, if any.
    pub fn last_seconds(&self) -> Option<f64> {
        self.rows.last().map(|r| r.seconds)
    }

    /// The seed's "has audio" rule: Input Max Loudness above `threshold`.
    pub fn has_audio(&self, threshold: f64) -> bool {
        self.summary.input_max_loudness > threshold
    }
}

fn required(cells: &[&str], line: usize, column: usize, field: &'static str) -> Result<f64, LoudnessError> {
    let value = cells[column];
    value.parse::<f64>().map_err(|_| LoudnessError::NotANumber {
        line,
        column,
        field,
        value: value.to_string(),
    })
}

/// A cell the scorers do not read: absent or empty is NaN, anything else must be a number.
fn optional(cells: &[&str], line: usize, column: usize, field: &'static str) -> Result<f64, LoudnessError> {
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
    /// when its short-term loudness is below it.
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
    /// The seed's per-asset audio attributes from one loudness log per track (track 1 first).
    pub fn from_logs(logs: &[LoudnessLog], opts: &AudioOptions) -> AudioReport {
        let maxloudness: Vec<f64> = logs.iter().map(|l| l.summary.input_max_loudness).collect();
        let loudnessmap: Vec<u8> =
            logs.iter().map(|l| u8::from(l.has_audio(opts.silence_threshold))).collect();
        let active = loudnessmap.iter().filter(|&&m| m == 1).count();
        let silences = logs
            .iter()
            .map(|l| {
                silence_intervals(
                    &l.rows,
                    opts.silence_threshold,
                    LoudnessMeasure::ShortTerm,
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
        self.loudnessmap.iter().enumerate().filter(|(_, &m)| m == 1).map(|(i, _)| i).collect()
    }
}
