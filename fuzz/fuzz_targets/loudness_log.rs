//! `LoudnessLog::parse` on any text.
//!
//! Properties, beyond "never panics":
//! - `parse` and `parse_with_summary_cells` agree (same log, or the same error);
//! - every parsed row has a finite time (the parser's documented promise);
//! - `to_csv` of a parsed log parses back to an equal log, NaN cells compared as equal (an empty
//!   optional cell is NaN, and NaN != NaN), and writing that again gives the same text;
//! - the silence helpers and the audio report run on any parsed log, and their runs and
//!   intervals keep their documented shape.
#![no_main]

use cuepoint_core::loudness::{
    silent_runs, AudioOptions, AudioReport, LoudnessLog, LoudnessMeasure, LoudnessRow,
    LoudnessSummary,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = LoudnessLog::parse(text);
    match (&parsed, LoudnessLog::parse_with_summary_cells(text)) {
        (Ok(a), Ok((b, _))) => assert!(same_log(a, &b)),
        (Err(a), Err(b)) => assert_eq!(a, &b),
        (a, b) => panic!("parse and parse_with_summary_cells disagree: {a:?} / {b:?}"),
    }
    let Ok(log) = parsed else { return };
    assert!(
        log.rows.iter().all(|r| r.seconds.is_finite()),
        "non-finite time in {log:?}"
    );

    let csv = log.to_csv();
    let back = LoudnessLog::parse(&csv)
        .unwrap_or_else(|e| panic!("to_csv output does not parse: {e}\n{csv}"));
    assert!(
        same_log(&log, &back),
        "round trip changed the log:\n{log:?}\n{back:?}"
    );
    assert_eq!(back.to_csv(), csv);

    for measure in [LoudnessMeasure::ShortTerm, LoudnessMeasure::Momentary] {
        let runs = silent_runs(&log.rows, -50.0, measure);
        for w in runs.windows(2) {
            assert!(
                w[0].last + 1 < w[1].first,
                "runs not maximal and ordered: {runs:?}"
            );
        }
        for r in &runs {
            assert!(r.first <= r.last && r.last < log.rows.len());
            assert!(log.rows[r.first..=r.last]
                .iter()
                .all(|row| measure.of(row) < -50.0));
        }
    }
    let opts = AudioOptions::default();
    let report = AudioReport::from_logs(std::slice::from_ref(&log), &[], &opts);
    assert_eq!(report.audiocount, 1);
    for iv in &report.silences[0] {
        assert!(
            iv.end >= iv.start && iv.duration >= opts.min_silence_seconds - 1e-6,
            "{iv:?}"
        );
    }
});

fn same_f64(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn same_row(a: &LoudnessRow, b: &LoudnessRow) -> bool {
    same_f64(a.seconds, b.seconds)
        && same_f64(a.momentary, b.momentary)
        && same_f64(a.integrated, b.integrated)
        && same_f64(a.short_term, b.short_term)
        && same_f64(a.true_peak, b.true_peak)
}

fn same_summary(a: &LoudnessSummary, b: &LoudnessSummary) -> bool {
    same_f64(a.input_integrated, b.input_integrated)
        && same_f64(a.input_max_loudness, b.input_max_loudness)
        && same_f64(a.input_true_peak, b.input_true_peak)
}

fn same_log(a: &LoudnessLog, b: &LoudnessLog) -> bool {
    a.rows.len() == b.rows.len()
        && a.rows.iter().zip(&b.rows).all(|(x, y)| same_row(x, y))
        && same_summary(&a.summary, &b.summary)
}
