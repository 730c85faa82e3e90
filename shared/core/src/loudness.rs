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

/// Layout verdict from the channels of the tracks that carry audio.
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
pub const DEFAULT_MIN_SILENCE_SECONDS: f64 = 0.3;

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
    /// Length of the window a reading covers, seconds (EBU R 128: 400 ms momentary, 3 s
    /// short-term). A row's reading is of the window that ends at the row's time.
    pub fn window_seconds(self) -> f64 {
        match self {
            Self::Momentary => 0.4,
            Self::ShortTerm => 3.0,
        }
    }

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

/// The stretch of audio a run of quiet rows stands for.
///
/// A row is stamped at the *end* of its measurement window (0.4 s momentary, 3 s short-term),
/// so the sound stopped about a window before the run's first row, and came back between the
/// run's last row and the next (loud) row. Each edge is the middle of what the rows allow:
/// - start: the last sound was inside the window of the loud row before the run and before the
///   window of the run's first row, so it lies in `[prev - window, first - window]`;
/// - end: the sound is back within the window of the first loud row after the run, and not
///   before the run's last row: `(max(last, next - window), next]`.
///
/// With 100 ms rows both edges are within 50 ms of the truth. Rows whose window has not filled
/// yet (the first 0.3 s of momentary readings, 2.9 s of short-term: the meter reports its empty
/// value there, whatever the sound) say nothing; a run made only of them is `None`. A run that
/// begins at the first full window starts at 0; a log that ends quiet ends at its last row.
pub fn run_interval(
    rows: &[LoudnessRow],
    run: SilentRun,
    measure: LoudnessMeasure,
) -> Option<SilenceInterval> {
    let window = measure.window_seconds();
    // A tolerance for times written with limited precision.
    const EPS: f64 = 1e-6;
    let full = |i: usize| rows[i].seconds >= window - EPS;
    let first_full = (run.first..=run.last).find(|&i| full(i))?;
    let first = rows[first_full].seconds;
    let start = match first_full.checked_sub(1).filter(|&i| full(i)) {
        Some(p) => first - window - (first - rows[p].seconds) / 2.0,
        None => first - window,
    }
    .max(0.0);
    let last = rows[run.last].seconds;
    let end = match rows.get(run.last + 1) {
        Some(next) => {
            let earliest = last.max(next.seconds - window);
            (earliest + next.seconds) / 2.0
        }
        None => last,
    };
    let end = end.max(start);
    Some(SilenceInterval {
        start,
        end,
        duration: end - start,
    })
}

/// Silence intervals of one track at least `min_seconds` long, placed where the sound actually
/// stopped and came back: quiet windows (see [`run_interval`]), and with momentary readings
/// every 100 ms also gaps shorter than the 400 ms window (see [`block_silences`]).
pub fn silence_intervals(
    rows: &[LoudnessRow],
    threshold: f64,
    measure: LoudnessMeasure,
    min_seconds: f64,
) -> Vec<SilenceInterval> {
    // Block estimates place edges inside a 100 ms block; quiet windows cover the rest (logs
    // that are too coarse for blocks, stretches too far from a pinned window).
    let mut out = block_silences(rows, threshold, measure);
    let windows: Vec<SilenceInterval> = silent_runs(rows, threshold, measure)
        .into_iter()
        .filter_map(|run| run_interval(rows, run, measure))
        .filter(|w| !out.iter().any(|b| overlaps(b, w)))
        .collect();
    out.extend(windows);
    out.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut merged: Vec<SilenceInterval> = Vec::with_capacity(out.len());
    for iv in out {
        match merged.last_mut() {
            Some(m) if iv.start <= m.end => {
                m.end = m.end.max(iv.end);
                m.duration = m.end - m.start;
            }
            _ => merged.push(iv),
        }
    }
    // Tolerance: interval edges are sums of row times written in decimal.
    merged.retain(|iv| iv.duration >= min_seconds - 1e-6);
    merged
}

fn overlaps(a: &SilenceInterval, b: &SilenceInterval) -> bool {
    a.start <= b.end && b.start <= a.end
}

/// How many chained steps a block estimate may be from a quiet window: each step adds the
/// rounding of two readings (FFmpeg writes LUFS to 0.001 dB, 1.2e-4 of the energy), and a
/// silent block next to sound at -20 LUFS stays readable as silent for about this many steps.
const MAX_CHAIN_STEPS: u32 = 8;

/// Silences shorter than the measurement window, from the loudness of each 100 ms block.
///
/// A momentary reading is the mean energy of the 4 blocks its window holds, so consecutive
/// readings give the difference of two blocks 4 apart: `b[k] = 4 (q[k] - q[k-1]) + b[k-4]`. A
/// reading below the threshold pins its 4 blocks (each about the window's mean); from there the
/// recurrence runs forwards and backwards to the blocks of nearby windows that are never
/// wholly quiet, such as a 0.3 s pause. Rounding adds up along the chain, so a block is only
/// estimated within [`MAX_CHAIN_STEPS`] of a pinned window (the nearer side wins). A gap's edge
/// inside a block is placed by the share of that block's energy against the block beyond it
/// (the sound's level), so steady sound gives edges within a few milliseconds.
///
/// Needs momentary readings at a constant spacing that divides the window; returns nothing
/// otherwise (short-term readings, coarser logs).
pub fn block_silences(
    rows: &[LoudnessRow],
    threshold: f64,
    measure: LoudnessMeasure,
) -> Vec<SilenceInterval> {
    const EPS: f64 = 1e-6;
    if measure != LoudnessMeasure::Momentary || rows.len() < 2 {
        return Vec::new();
    }
    let window = measure.window_seconds();
    let step = rows[1].seconds - rows[0].seconds;
    if step.is_nan()
        || step <= EPS
        || rows
            .windows(2)
            .any(|w| (w[1].seconds - w[0].seconds - step).abs() > EPS)
    {
        return Vec::new();
    }
    let ratio = window / step;
    let n = ratio.round() as usize;
    if n < 2 || (ratio - n as f64).abs() > 1e-3 {
        return Vec::new();
    }
    // Energy of each full window (fill readings and unreadable cells are unknown).
    let q: Vec<Option<f64>> = rows
        .iter()
        .map(|r| {
            let m = r.momentary;
            if r.seconds < window - EPS || m.is_nan() {
                None
            } else if m == f64::NEG_INFINITY || m < -200.0 {
                Some(0.0)
            } else {
                Some(10f64.powf(m / 10.0))
            }
        })
        .collect();
    let tau = 10f64.powf(threshold / 10.0);
    let len = rows.len();
    let pinned = |k: usize| q[k].filter(|&v| v < tau);

    // (energy, steps from a pinned window)
    let mut fwd: Vec<Option<(f64, u32)>> = vec![None; len];
    for k in 0..len {
        if let Some(v) = pinned(k) {
            for b in fwd.iter_mut().take(k + 1).skip((k + 1).saturating_sub(n)) {
                *b = Some((v, 0));
            }
        } else if k >= n {
            if let (Some(a), Some(b), Some((prev, age))) = (q[k], q[k - 1], fwd[k - n]) {
                if age < MAX_CHAIN_STEPS {
                    fwd[k] = Some((n as f64 * (a - b) + prev, age + 1));
                }
            }
        }
    }
    let mut bwd: Vec<Option<(f64, u32)>> = vec![None; len];
    for k in (0..len).rev() {
        if let Some(v) = pinned(k) {
            for b in bwd.iter_mut().take(k + 1).skip((k + 1).saturating_sub(n)) {
                if b.is_none() {
                    *b = Some((v, 0));
                }
            }
        }
    }
    // Backwards: b[k] = b[k+n] - n (q[k+n] - q[k+n-1]), from the right end down.
    for k in (0..len.saturating_sub(n)).rev() {
        if bwd[k].is_some_and(|(_, age)| age == 0) {
            continue;
        }
        if let (Some(a), Some(b), Some((next, age))) = (q[k + n], q[k + n - 1], bwd[k + n]) {
            if age < MAX_CHAIN_STEPS {
                bwd[k] = Some((next - n as f64 * (a - b), age + 1));
            }
        }
    }
    let block: Vec<Option<f64>> = fwd
        .iter()
        .zip(&bwd)
        .map(|(f, b)| match (f, b) {
            // Rounding errors add up like a random walk: weigh each side by 1 / its steps.
            (Some((x, 0)), _) | (_, Some((x, 0))) => Some(*x),
            (Some((x, fa)), Some((y, ba))) => {
                let (wf, wb) = (1.0 / *fa as f64, 1.0 / *ba as f64);
                Some((x * wf + y * wb) / (wf + wb))
            }
            (Some((x, _)), None) | (None, Some((x, _))) => Some(*x),
            (None, None) => None,
        })
        .collect();

    // Runs of silent blocks; block k spans [t_k - step, t_k].
    let mut out = Vec::new();
    let mut k = 0;
    while k < len {
        if !block[k].is_some_and(|b| b < tau) {
            k += 1;
            continue;
        }
        let first = k;
        while k + 1 < len && block[k + 1].is_some_and(|b| b < tau) {
            k += 1;
        }
        let last = k;
        k += 1;
        // A run shorter than the window must show in the readings as a dip: some window over
        // it at most half as loud as the loudest window around it. Readings that change in a
        // way no meter produces (a step from sound to silence in one row) fit a train of
        // pulses as well as steady sound, and would otherwise read as gaps.
        if last + 1 - first < n && !dips(&q, first, last, n) {
            continue;
        }
        // A run made only of pinned blocks is a quiet window, placed by `run_interval`.
        let start_edge = |i: usize| rows[i].seconds - step;
        let start = match first.checked_sub(1) {
            Some(p) => start_edge(first) - step * (1.0 - sound_share(&block, p, -1)),
            None => start_edge(first).max(0.0),
        }
        .max(0.0);
        let end = match rows.get(last + 1) {
            Some(_) => rows[last].seconds + step * (1.0 - sound_share(&block, last + 1, 1)),
            None => rows[last].seconds,
        };
        out.push(SilenceInterval {
            start,
            end,
            duration: end - start,
        });
    }
    out
}

/// Whether a window overlapping blocks `first..=last` reads at most half the energy of the
/// loudest window within one window's length on either side.
fn dips(q: &[Option<f64>], first: usize, last: usize, n: usize) -> bool {
    let over = first..(last + n).min(q.len());
    let around = first.saturating_sub(n)..(last + 2 * n).min(q.len());
    let low = q[over]
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let high = q[around].iter().flatten().copied().fold(0.0, f64::max);
    low <= 0.5 * high
}

/// The share of block `i` that carried sound, judged against the level of the block beyond it
/// (`dir` = -1: the block before, +1: the block after); a half when the level is unknown.
fn sound_share(block: &[Option<f64>], i: usize, dir: isize) -> f64 {
    let beyond = i as isize + dir;
    let level = usize::try_from(beyond)
        .ok()
        .and_then(|j| block.get(j).copied().flatten());
    match (block[i], level) {
        (Some(b), Some(l)) if l > 0.0 && (b / l).is_finite() => (b / l).clamp(0.0, 1.0),
        _ => 0.5,
    }
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
    /// Layout from the number of tracks and how many of them carry audio, every track mono.
    pub fn classify(tracks: usize, active: usize) -> Self {
        Self::from_channels(tracks, &vec![1; active])
    }

    /// Layout from the number of tracks and the channel count of each track that carries
    /// audio: what counts is how many channels sound, however they are spread over tracks
    /// (one 6-channel track and six mono tracks are both 5.1). A count of 0 (unknown) is
    /// taken as one channel.
    pub fn from_channels(tracks: usize, channels_with_sound: &[u32]) -> Self {
        if tracks == 0 {
            return Self::NoAudio;
        }
        let total: u32 = channels_with_sound.iter().map(|&c| c.max(1)).sum();
        match total {
            0 => Self::Silent,
            1 => Self::Mono,
            2 => Self::Stereo,
            6 => Self::Surround51,
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

    /// The original silent-track pipeline's per-asset audio attributes from one loudness log per
    /// track (track 1 first) and each track's channel count (as probed; a track missing from
    /// `channels` counts as mono). The layout counts the channels of the tracks with sound.
    pub fn from_logs(logs: &[LoudnessLog], channels: &[u32], opts: &AudioOptions) -> AudioReport {
        let maxloudness: Vec<f64> = logs.iter().map(|l| l.summary.input_max_loudness).collect();
        let loudnessmap: Vec<u8> = logs
            .iter()
            .map(|l| u8::from(l.has_audio(opts.silence_threshold)))
            .collect();
        let sounding: Vec<u32> = loudnessmap
            .iter()
            .enumerate()
            .filter(|(_, &m)| m == 1)
            .map(|(i, _)| channels.get(i).copied().unwrap_or(1))
            .collect();
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
            layout: AudioLayout::from_channels(logs.len(), &sounding),
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
        assert!(silent_runs(&[], -50.0, LoudnessMeasure::ShortTerm).is_empty());
    }

    /// 100 ms rows of momentary loudness, the first at 0.1 s.
    fn momentary_rows(levels: &[f64]) -> Vec<LoudnessRow> {
        levels
            .iter()
            .enumerate()
            .map(|(i, &m)| LoudnessRow {
                seconds: (i as f64 + 1.0) / 10.0,
                momentary: m,
                integrated: -23.0,
                short_term: -23.0,
                true_peak: -1.0,
            })
            .collect()
    }

    /// What an EBU R 128 meter logs for per-block energies `blocks` (100 ms each): every 100 ms
    /// the 400 ms momentary loudness, 3 decimals, the empty-window value while it fills.
    fn meter(blocks: &[f64]) -> Vec<LoudnessRow> {
        let levels: Vec<f64> = (0..blocks.len())
            .map(|i| {
                if i < 3 {
                    return -120.691;
                }
                let mean = blocks[i - 3..=i].iter().sum::<f64>() / 4.0;
                let db = if mean > 0.0 {
                    10.0 * mean.log10()
                } else {
                    -120.691
                };
                (db.max(-120.691) * 1000.0).round() / 1000.0
            })
            .collect();
        momentary_rows(&levels)
    }

    /// Block energies of a sound at `lufs` over `seconds`, silent inside `gaps` (seconds);
    /// a block partly in a gap carries its share of the energy.
    fn blocks(seconds: f64, lufs: f64, gaps: &[(f64, f64)]) -> Vec<f64> {
        let e = 10f64.powf(lufs / 10.0);
        let n = (seconds * 10.0).round() as usize;
        (0..n)
            .map(|i| {
                let (a, b) = (i as f64 / 10.0, (i + 1) as f64 / 10.0);
                let silent: f64 = gaps
                    .iter()
                    .map(|&(s, t)| (b.min(t) - a.max(s)).max(0.0))
                    .sum();
                e * (1.0 - silent * 10.0)
            })
            .collect()
    }

    fn assert_found(found: &[SilenceInterval], truth: &[(f64, f64)], tolerance: f64) -> f64 {
        assert_eq!(found.len(), truth.len(), "found {found:?}, truth {truth:?}");
        let mut worst = 0.0f64;
        for (f, &(s, e)) in found.iter().zip(truth) {
            worst = worst.max((f.start - s).abs()).max((f.end - e).abs());
            assert!(
                (f.start - s).abs() <= tolerance && (f.end - e).abs() <= tolerance,
                "{f:?} against ({s}, {e})"
            );
            assert!((f.duration - (f.end - f.start)).abs() < 1e-9);
        }
        worst
    }

    #[test]
    fn quiet_windows_are_placed_where_the_sound_stopped() {
        // Stamped at the end of their 400 ms window: quiet rows 1.5..=2.0 mean the sound
        // stopped at 1.1 (between the windows of rows 1.4 and 1.5) and came back between
        // 2.0 and 2.1.
        let mut levels = vec![-20.0; 30];
        for l in &mut levels[14..20] {
            *l = -90.0;
        }
        let ivs = run_interval(
            &momentary_rows(&levels),
            SilentRun {
                first: 14,
                last: 19,
            },
            LoudnessMeasure::Momentary,
        )
        .unwrap();
        assert!(
            (ivs.start - 1.05).abs() < 1e-9 && (ivs.end - 2.05).abs() < 1e-9,
            "{ivs:?}"
        );
        // The meter's window-fill readings are not silence; a log that starts and ends quiet
        // is silent from 0 to its last row.
        let mut levels = vec![-120.691, -120.691, -120.691, -20.0, -20.0];
        assert!(silence_intervals(
            &momentary_rows(&levels),
            -50.0,
            LoudnessMeasure::Momentary,
            0.0
        )
        .is_empty());
        levels = vec![-120.691; 12];
        let ivs = silence_intervals(
            &momentary_rows(&levels),
            -50.0,
            LoudnessMeasure::Momentary,
            0.0,
        );
        assert_eq!(ivs, vec![iv(0.0, 1.2)]);
        // Short-term: a 3 s window.
        let mut rows = momentary_rows(&vec![-20.0; 100]);
        for r in &mut rows[60..70] {
            r.short_term = -60.0;
        }
        let ivs = silence_intervals(&rows, -50.0, LoudnessMeasure::ShortTerm, 0.0);
        assert_eq!(ivs.len(), 1);
        assert!(
            (ivs[0].start - 3.05).abs() < 1e-9 && (ivs[0].end - 7.05).abs() < 1e-9,
            "{ivs:?}"
        );
    }

    #[test]
    fn gaps_are_found_to_within_a_tenth_of_a_second_down_to_0_3_s() {
        // Sound at -20 LUFS (loud: the rounding of the log matters most), gaps of 0.3 to 1 s,
        // on and off the 100 ms grid.
        let truth = [
            (2.0, 3.0),
            (4.0, 4.3),
            (5.05, 5.35),
            (6.02, 6.34),
            (7.0, 7.5),
            (8.07, 8.62),
            (9.5, 10.2),
        ];
        let rows = meter(&blocks(12.0, -20.0, &truth));
        let found = silence_intervals(&rows, -50.0, LoudnessMeasure::Momentary, 0.3);
        let worst = assert_found(&found, &truth, 0.1);
        assert!(worst < 0.02, "worst edge error {worst}");
        // Configurable: 0.5 s and longer only.
        let long = silence_intervals(&rows, -50.0, LoudnessMeasure::Momentary, 0.5);
        assert_found(
            &long,
            &[(2.0, 3.0), (7.0, 7.5), (8.07, 8.62), (9.5, 10.2)],
            0.1,
        );
    }

    #[test]
    fn short_gaps_far_from_any_quiet_window_are_not_guessed() {
        // No window is ever quiet: nothing pins the blocks, so nothing is claimed.
        let rows = meter(&blocks(20.0, -20.0, &[(10.0, 10.3)]));
        assert!(silence_intervals(&rows, -50.0, LoudnessMeasure::Momentary, 0.0).is_empty());
        // A dip that is quieter but not silent is not silence.
        let mut b = blocks(8.0, -20.0, &[(1.0, 2.0)]);
        for x in &mut b[50..53] {
            *x = 10f64.powf(-40.0 / 10.0);
        }
        let found = silence_intervals(&meter(&b), -50.0, LoudnessMeasure::Momentary, 0.0);
        assert_found(&found, &[(1.0, 2.0)], 0.02);
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
        let report = AudioReport::from_logs(&logs, &[], &AudioOptions::default());
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
        let r = AudioReport::from_logs(&[], &[], &AudioOptions::default());
        assert_eq!((r.audiocount, r.layout), (0, AudioLayout::NoAudio));
        assert!(r.silences.is_empty());
    }

    #[test]
    fn layout_counts_channels_not_tracks() {
        let loud = || log(vec![row(1.0, -20.0)], -12.0);
        let quiet = || log(vec![row(1.0, -90.0)], -140.0);
        let layout = |logs: &[LoudnessLog], ch: &[u32]| {
            AudioReport::from_logs(logs, ch, &AudioOptions::default()).layout
        };
        assert_eq!(layout(&[loud()], &[6]), AudioLayout::Surround51);
        assert_eq!(layout(&[loud()], &[2]), AudioLayout::Stereo);
        assert_eq!(layout(&[loud()], &[1]), AudioLayout::Mono);
        assert_eq!(layout(&[loud(), loud()], &[1, 1]), AudioLayout::Stereo);
        // A silent 5.1 track beside a stereo one: the stereo one is what sounds.
        assert_eq!(layout(&[loud(), quiet()], &[2, 6]), AudioLayout::Stereo);
        assert_eq!(layout(&[quiet()], &[6]), AudioLayout::Silent);
        assert_eq!(layout(&[loud(), loud()], &[2, 2]), AudioLayout::Other);
        // Unknown counts are mono.
        assert_eq!(layout(&[loud(), loud()], &[]), AudioLayout::Stereo);
        assert_eq!(layout(&[loud()], &[0]), AudioLayout::Mono);
    }

    #[test]
    fn threshold_is_strict_and_configurable() {
        // As in the original silent-track pipeline: audio when max loudness > threshold; exactly the threshold is silent.
        let logs = vec![log(vec![], -50.0), log(vec![], -49.9)];
        let r = AudioReport::from_logs(&logs, &[], &AudioOptions::default());
        assert_eq!(r.loudnessmap, vec![0, 1]);
        assert_eq!(r.layout, AudioLayout::Mono);
        let opts = AudioOptions {
            silence_threshold: -60.0,
            ..AudioOptions::default()
        };
        assert_eq!(
            AudioReport::from_logs(&logs, &[], &opts).loudnessmap,
            vec![1, 1]
        );
        let opts: AudioOptions = serde_json::from_str(r#"{"min_silence_seconds": 2}"#).unwrap();
        assert_eq!(opts.silence_threshold, -50.0);
        assert_eq!(opts.min_silence_seconds, 2.0);
    }

    #[test]
    fn audio_report_silences_per_track() {
        let mut b = blocks(6.0, -20.0, &[(1.0, 1.2), (2.0, 2.6)]);
        let t1 = log(meter(&b), -10.0);
        b.iter_mut().for_each(|x| *x = 0.0);
        let t2 = log(meter(&b), -140.0);
        let r = AudioReport::from_logs(&[t1, t2], &[], &AudioOptions::default());
        // Track 1: the 0.2 s gap is under the 0.3 s minimum.
        assert_eq!(r.silences[0].len(), 1, "{:?}", r.silences[0]);
        assert!(
            (r.silences[0][0].start - 2.0).abs() < 0.02,
            "{:?}",
            r.silences[0]
        );
        assert!(
            (r.silences[0][0].end - 2.6).abs() < 0.02,
            "{:?}",
            r.silences[0]
        );
        assert_eq!(r.silences[1], vec![iv(0.0, 6.0)]);
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
            let ivs = silence_intervals(&rows, -50.0, LoudnessMeasure::Momentary, min);
            for w in ivs.windows(2) {
                prop_assert!(w[0].end <= w[1].start);
            }
            for i in &ivs {
                prop_assert!(i.duration >= min - 1e-6 && i.end >= i.start);
            }
        }
    }
}
