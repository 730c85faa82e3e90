//! Inputs the fuzz targets in `fuzz/` found (minimised), kept as ordinary tests so `cargo test`
//! guards the fixes without cargo-fuzz. See docs/fuzzing.md for the runs that found them.

use std::cell::RefCell;
use std::collections::BTreeMap;

use cuepoint_core::domain::ObjectKey;
use cuepoint_core::scoring::{InputError, ScoringInputs};

/// Reads `files` and records every path asked for.
fn read_layout(files: &[(&str, &str)]) -> (Result<ScoringInputs, InputError>, Vec<String>) {
    let files: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(p, b)| (p.to_string(), b.as_bytes().to_vec()))
        .collect();
    let asked = RefCell::new(Vec::new());
    let result = ScoringInputs::from_files(|path: &str| {
        asked.borrow_mut().push(path.to_string());
        Ok(files.get(path).cloned())
    });
    (result, asked.into_inner())
}

fn is_plain_relative(path: &str) -> bool {
    ObjectKey::parse(path)
        .ok()
        .is_some_and(|k| k.relative_path_segments().is_some())
}

/// scoring_inputs: a master playlist's variant URI was joined onto `hls/` unchecked, so
/// `from_files` asked its reader for `hls/\0` or `hls/../../x`, which a file-system reader joins
/// onto the results directory (escaping it with `..`).
#[test]
fn hls_variant_uri_must_stay_inside_the_results_layout() {
    let bad = [
        "\0",                        // the minimised fuzz input: the whole master is a NUL
        "../../../outside.m3u8",     // escapes the results directory
        "v/../../outside.m3u8",      // escapes after a harmless segment
        ".//stream_0.m3u8",          // `./` is stripped, leaving an absolute-looking path
        "sub\\..\\..\\outside.m3u8", // backslash separators
        "a//b.m3u8",                 // empty segment
    ];
    for uri in bad {
        let master = format!("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n{uri}\n");
        let (result, asked) = read_layout(&[("hls/index.m3u8", &master)]);
        for path in &asked {
            assert!(
                is_plain_relative(path),
                "{uri:?}: from_files asked for {path:?}"
            );
        }
        let err = result.expect_err(uri);
        assert_eq!(err.file(), "hls/index.m3u8", "{uri:?}: {err}");
        assert!(err.to_string().contains("relative path"), "{uri:?}: {err}");
    }

    // Ordinary relative variants still work, `./` included.
    let media = "#EXTM3U\n#EXTINF:1.5,\na.ts\n#EXTINF:2,\nb.ts\n";
    for uri in ["stream_0.m3u8", "./stream_0.m3u8", "v0/stream_0.m3u8"] {
        let master = format!("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n{uri}\n");
        let variant = format!("hls/{}", uri.trim_start_matches("./"));
        let (result, _) = read_layout(&[("hls/index.m3u8", &master), (&variant, media)]);
        let inputs = result.unwrap_or_else(|e| panic!("{uri:?}: {e}"));
        assert_eq!(
            inputs.hls_segment_boundaries,
            Some(vec![0.0, 1.5, 3.5]),
            "{uri:?}"
        );
    }
}
