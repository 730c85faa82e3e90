//! `ScoringInputs::from_files` over a fuzzed results directory, then `scoring::score` with both
//! policies.
//!
//! The input is a small text archive, one section per file:
//!
//! ```text
//! ==> loudness/track-1.csv
//! <bytes of the file>
//! ==> segments.json
//! ...
//! ```
//!
//! so the seeds are real results directories (`tests/fixtures/slots-example`) and mutations edit
//! file contents and names alike. Two extra section names: `!err <path>` makes reading `<path>`
//! fail (the reader's error path), and `policy.json` is a `DefaultPolicyConfig` for the default
//! policy (the default configuration when absent or not valid).
//!
//! Properties, beyond "never panics":
//! - `from_files` reads a bounded number of files, every path it asks for is a plain relative
//!   path (no `..`, `.` or empty segment, no leading `/`, no backslash), and an error names a
//!   file it asked for;
//! - on `Ok`: loudness tracks are the consecutive `track-<n>.csv` present (at most
//!   `MAX_LOUDNESS_TRACKS`), track 1's summary cells are kept exactly when track 1 exists, HLS
//!   boundaries start at 0 and never decrease;
//! - `score` either fails with a duration or configuration error, or returns slots with a time
//!   that is not NaN and a score in [0, 1], at most `top_n` breaks, and for the default policy
//!   breaks in time order, inside the lead-in/lead-out guards, spaced as configured.
#![no_main]

use std::cell::RefCell;
use std::collections::BTreeMap;

use cuepoint_core::domain::ObjectKey;
use cuepoint_core::results;
use cuepoint_core::scoring::{
    score, DefaultPolicyConfig, Policy, ScoringError, ScoringInputs, ScoringOutput, Slot,
    MAX_LOUDNESS_TRACKS,
};
use libfuzzer_sys::fuzz_target;

const TOP_N: usize = 3;

/// The archive's files by path, and the paths whose reads fail.
fn unpack(data: &[u8]) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut failing = Vec::new();
    let mut text = Vec::with_capacity(data.len() + 1);
    text.push(b'\n');
    text.extend_from_slice(data);
    for section in split(&text, b"\n==> ").skip(1) {
        let (name, body) = match section.iter().position(|&b| b == b'\n') {
            Some(i) => (&section[..i], &section[i + 1..]),
            None => (section, &[][..]),
        };
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        match name.strip_prefix("!err ") {
            Some(path) => failing.push(path.to_string()),
            None => {
                files.insert(name.to_string(), body.to_vec());
            }
        }
    }
    (files, failing)
}

fn split<'a>(hay: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(hay);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (files, failing) = unpack(data);
    let asked: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let read = |path: &str| -> Result<Option<Vec<u8>>, String> {
        // Callers join this onto a directory or a results prefix: it must stay inside.
        let inside = ObjectKey::parse(path)
            .ok()
            .is_some_and(|k| k.relative_path_segments().is_some());
        assert!(
            inside,
            "from_files asks for {path:?}, which is not a plain relative path"
        );
        asked.borrow_mut().push(path.to_string());
        assert!(
            asked.borrow().len() <= MAX_LOUDNESS_TRACKS + 16,
            "from_files keeps reading: {:?}",
            asked.borrow()
        );
        if failing.iter().any(|f| f == path) {
            return Err("injected read error".into());
        }
        Ok(files.get(path).cloned())
    };
    let inputs = match ScoringInputs::from_files(read) {
        Ok(inputs) => inputs,
        Err(e) => {
            assert!(
                asked.borrow().iter().any(|p| p == e.file()),
                "error names a file never read: {e}"
            );
            return;
        }
    };

    let present = (1..)
        .take_while(|&n| files.contains_key(&results::loudness_track(n)))
        .count();
    assert_eq!(inputs.loudness.len(), present.min(MAX_LOUDNESS_TRACKS));
    assert_eq!(
        inputs.programme_summary_cells.is_some(),
        !inputs.loudness.is_empty()
    );
    if let Some(b) = &inputs.hls_segment_boundaries {
        assert_eq!(b.first(), Some(&0.0));
        assert!(
            b.windows(2).all(|w| w[0] <= w[1]),
            "boundaries decrease: {b:?}"
        );
    }

    check(&inputs, &Policy::Reference, None);
    let cfg = files
        .get("policy.json")
        .and_then(|b| serde_json::from_slice::<DefaultPolicyConfig>(b).ok())
        .unwrap_or_default();
    check(&inputs, &Policy::Default(cfg.clone()), Some(&cfg));
});

fn check(inputs: &ScoringInputs, policy: &Policy, cfg: Option<&DefaultPolicyConfig>) {
    let out = match score(inputs, policy, TOP_N) {
        Ok(out) => out,
        Err(ScoringError::Config(why)) => {
            assert!(
                cfg.is_some_and(|c| c.validate().is_err()),
                "config error for a valid config: {why}"
            );
            return;
        }
        Err(ScoringError::UnknownDuration { .. } | ScoringError::BadDuration(_)) => return,
    };
    let ScoringOutput {
        slots,
        breaks,
        duration,
        ..
    } = &out;
    if let Some(d) = duration {
        assert!(!d.is_nan());
    }
    for s in slots.iter().chain(breaks) {
        assert_slot(s);
    }
    // A schedule asks for one break per target instead of the best TOP_N.
    let wanted = match cfg.and_then(|c| c.schedule.as_ref()) {
        Some(s) => s.positions(*duration).len(),
        None => TOP_N,
    };
    assert!(
        breaks.len() <= wanted.min(slots.len()),
        "{} breaks from {} slots",
        breaks.len(),
        slots.len()
    );
    let Some(cfg) = cfg else { return };
    assert!(
        breaks.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
        "breaks out of time order"
    );
    let end = duration.unwrap_or(f64::INFINITY);
    for (i, b) in breaks.iter().enumerate() {
        assert!(
            b.timestamp >= cfg.lead_in_seconds && b.timestamp <= end - cfg.lead_out_seconds,
            "{b:?}"
        );
        assert!(b.score >= cfg.min_break_score);
        for c in &breaks[..i] {
            let gap = (b.timestamp - c.timestamp).abs();
            assert!(
                gap > 0.0 && gap >= cfg.min_spacing_seconds,
                "breaks {c:?} and {b:?} too close"
            );
        }
    }
}

fn assert_slot(s: &Slot) {
    assert!(!s.timestamp.is_nan(), "NaN slot time: {s:?}");
    assert!(
        (0.0..=1.0).contains(&s.score),
        "score outside [0, 1]: {s:?}"
    );
    assert!(!s.reasons.is_empty(), "a slot without a reason: {s:?}");
}
