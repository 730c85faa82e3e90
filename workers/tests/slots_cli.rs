//! `cuepoint slots` end to end: the real binary on the hand-built results directory
//! `tests/fixtures/slots-example` (a 60 s programme).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/slots-example")
}

fn cuepoint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cuepoint"))
        .args(args)
        .output()
        .expect("run cuepoint")
}

fn slots_json(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["slots", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = cuepoint(&args);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Exactly one JSON object on stdout.
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn times(list: &Value) -> Vec<f64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["timestamp"].as_f64().unwrap())
        .collect()
}

fn check_slot_shape(slot: &Value) {
    let score = slot["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score), "{slot}");
    let reasons = slot["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty());
    for r in reasons {
        assert!(
            [
                "Silence",
                "BlackFrame",
                "ShotChange",
                "EndCredits",
                "SceneChange"
            ]
            .contains(&r.as_str().unwrap()),
            "{r}"
        );
    }
    for list in ["celebrities", "faces", "labels", "moderation"] {
        assert!(
            slot["context"][list]["before"].is_array() && slot["context"][list]["after"].is_array()
        );
    }
}

#[test]
fn default_policy_json_shape() {
    let v = slots_json(&fixture(), &[]);
    let obj = v.as_object().unwrap();
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    for k in ["policy", "duration", "slots", "breaks", "ads", "vmap"] {
        assert!(keys.contains(&k), "missing {k} in {keys:?}");
    }
    assert_eq!(v["policy"], "default");
    assert_eq!(v["duration"], 60.0);
    assert_eq!(v["vmap"], Value::Null);
    let slots = times(&v["slots"]);
    assert!(
        slots.windows(2).all(|w| w[0] < w[1]),
        "slots in time order: {slots:?}"
    );
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .for_each(check_slot_shape);
    v["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .for_each(check_slot_shape);
    // The scene change at the black frames (silence + black + cut at 15.84 s), moved onto the
    // 1 s HLS boundary at 16 s, and the end credits at 50 s, 30 s apart or more, in time order.
    assert_eq!(times(&v["breaks"]), vec![16.0, 50.0]);
    assert_eq!(v["breaks"][0]["snapped_from"], 15.84);
    assert_eq!(
        v["breaks"][0]["reasons"],
        serde_json::json!(["Silence", "BlackFrame", "ShotChange", "SceneChange"])
    );
    let ads = v["ads"].as_array().unwrap();
    assert_eq!(ads.len(), 2);
    assert_eq!(ads[0]["break_id"], "midroll-1");
    assert_eq!(ads[0]["time_offset"], "00:00:16.000");
    assert!(ads[0]["ad_url"].as_str().unwrap().ends_with(".mp4"));
}

#[test]
fn default_policy_knobs_from_flags() {
    let v = slots_json(&fixture(), &["--min-spacing", "15", "--top", "5"]);
    // 36.4 s (silence + cut, labels change) now fits; 50 s is 13.6 s from it.
    assert_eq!(times(&v["breaks"]), vec![16.0, 36.0]);
    let v = slots_json(&fixture(), &["--lead-out", "15", "--top", "1"]);
    assert_eq!(times(&v["breaks"]), vec![16.0]);
}

#[test]
fn reference_policy_on_the_fixture() {
    let v = slots_json(&fixture(), &["--policy", "reference"]);
    assert_eq!(v["policy"], "reference");
    let slots = v["slots"].as_array().unwrap();
    assert_eq!(
        times(&v["slots"]),
        vec![0.0, 6.2, 14.5, 15.0, 15.84, 22.4, 30.0, 35.5, 36.4, 43.0, 50.0]
    );
    // Silence at 14.5 s: 0.7, then labels {Indoors, Person} before and nothing after -> 1.0.
    assert_eq!(slots[2]["reasons"], serde_json::json!(["Silence"]));
    assert_eq!(slots[2]["score"], 1.0);
    // The first shot at 0 scores 0 (no labels within 2 s).
    assert_eq!(slots[0]["score"], 0.0);
    // EndCredits merges with the shot at 50 s.
    assert_eq!(
        slots[10]["reasons"],
        serde_json::json!(["ShotChange", "EndCredits"])
    );
    // Top 3: all 1.0, so the three latest, in (ascending) score order.
    assert_eq!(times(&v["breaks"]), vec![35.5, 36.4, 50.0]);
    slots.iter().for_each(check_slot_shape);
}

#[test]
fn table_output_and_vmap_file() {
    let dir = tempfile::tempdir().unwrap();
    let vmap = dir.path().join("ad_breaks.vmap");
    let out = cuepoint(&[
        "slots",
        fixture().to_str().unwrap(),
        "--vmap",
        vmap.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("00:00:15.840"), "{table}");
    assert!(table.contains("midroll-1"), "{table}");
    assert!(table.contains("Silence, BlackFrame, ShotChange"), "{table}");
    let xml = std::fs::read_to_string(&vmap).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(
        xml.contains(
            r#"<vmap:AdBreak timeOffset="00:00:16.000" breakType="linear" breakId="midroll-1">"#
        ),
        "{xml}"
    );
    assert!(xml.contains(r#"breakId="midroll-2""#));
    assert!(!xml.contains("midroll-3"));
}

#[test]
fn missing_result_files_mean_no_results() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    for f in [
        "faces.json",
        "celebrities.json",
        "moderation.json",
        "labels.json",
        "hls/index.m3u8",
    ] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let v = slots_json(dir.path(), &[]);
    // No HLS: the break stays on the cut.
    assert_eq!(times(&v["breaks"]), vec![15.84, 50.0]);
}

fn expect_failure(dir: &Path, file: &str, also: &str) {
    let out = cuepoint(&["slots", dir.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(file), "{err} should name {file}");
    assert!(err.contains(also), "{err} should say {also}");
}

#[test]
fn bad_files_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    std::fs::write(
        dir.path().join("labels.json"),
        r#"{"Labels": [{"Timestamp": "soon"}]}"#,
    )
    .unwrap();
    expect_failure(dir.path(), "labels.json", "invalid JSON");

    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    let csv = std::fs::read_to_string(dir.path().join("loudness/track-2.csv")).unwrap();
    let truncated: String = csv.lines().take(40).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("loudness/track-2.csv"), truncated).unwrap();
    expect_failure(dir.path(), "loudness/track-2.csv", "line 40");

    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    let csv = std::fs::read_to_string(dir.path().join("loudness/track-1.csv")).unwrap();
    std::fs::write(
        dir.path().join("loudness/track-1.csv"),
        csv.replacen("14.5,-72.4,-23.1,-64.8", "14.5,-72.4,-23.1,quiet", 1),
    )
    .unwrap();
    expect_failure(
        dir.path(),
        "loudness/track-1.csv",
        "short-term loudness (column 4) is not a number",
    );

    let out = cuepoint(&["slots", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/definitely/not/here"));

    let ads = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ads.path(), "{\"ads\": 3}").unwrap();
    let out = cuepoint(&[
        "slots",
        fixture().to_str().unwrap(),
        "--ads",
        ads.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(ads.path().to_str().unwrap()) && err.contains("ad inventory"),
        "{err}"
    );
}

#[test]
fn custom_ad_inventory_is_used() {
    let ads = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        ads.path(),
        r#"{"ads": [{"url": "https://ads.example/generic.mp4", "labels": []}, {"url": "https://ads.example/beach.mp4", "labels": ["Beach", "Sea"]}]}"#,
    )
    .unwrap();
    let v = slots_json(&fixture(), &["--ads", ads.path().to_str().unwrap()]);
    assert_eq!(v["ads"][0]["ad_url"], "https://ads.example/beach.mp4");
    // Nothing in common at 50 s: the first ad in inventory order.
    assert_eq!(v["ads"][1]["ad_url"], "https://ads.example/generic.mp4");
}

#[test]
fn speech_and_moderation_explain_and_refuse_slots() {
    // Someone speaks over the 36.4 s cut and a flagged frame sits 4 s after the end credits.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    std::fs::write(
        dir.path().join("speech.json"),
        r#"{"JobStatus":"SUCCEEDED","Speech":[{"Track":1,"StartTimestamp":35000,"EndTimestamp":38000,"Confidence":91.0}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("moderation.json"),
        r#"{"JobStatus":"SUCCEEDED","ModerationLabels":[{"Timestamp":54000,"ModerationLabel":{"Name":"Violence","Confidence":88.0,"ParentName":""}}]}"#,
    )
    .unwrap();
    let v = slots_json(dir.path(), &["--min-spacing", "15", "--top", "5"]);
    // Without these files the breaks are 16 s and 36 s (see default_policy_knobs_from_flags).
    assert_eq!(times(&v["breaks"]), vec![16.0]);
    let slot = |t: f64| {
        v["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["timestamp"].as_f64() == Some(t))
            .cloned()
            .unwrap_or_else(|| panic!("no slot at {t}"))
    };
    assert_eq!(slot(36.4)["notes"][0]["kind"], "inside_speech");
    assert_eq!(slot(50.0)["notes"][0]["kind"], "near_moderation");
    assert_eq!(slot(50.0)["notes"][0]["name"], "Violence");
    // The table says why, in words.
    let out = cuepoint(&["slots", dir.path().to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("refused: someone speaks on track 1 (35.000-38.000 s)"),
        "{table}"
    );
    assert!(
        table.contains("refused for brand safety: moderation label \"Violence\""),
        "{table}"
    );
    // The reference policy is not affected by either file.
    let reference = slots_json(dir.path(), &["--policy", "reference"]);
    assert_eq!(
        reference,
        slots_json(&fixture(), &["--policy", "reference"])
    );
}

#[test]
fn a_schedule_serves_targets_and_the_vmap_carries_the_break_duration() {
    let dir = tempfile::tempdir().unwrap();
    let vmap = dir.path().join("ad_breaks.vmap");
    // Targets at 15, 26 and 40 s, 4 s either way; breaks of 90 s.
    let spec = "at=15/26/40,deviation=4,duration=90";
    let v = slots_json(
        &fixture(),
        &[
            "--schedule",
            spec,
            "--min-spacing",
            "10",
            "--vmap",
            vmap.to_str().unwrap(),
        ],
    );
    let s = &v["schedule"];
    assert_eq!(s["break_seconds"], 90.0);
    // 15 s: the black + silence scene change at 15.84 s (on its HLS boundary, 16 s).
    assert_eq!(s["targets"][0]["served_by"]["timestamp"], 16.0);
    assert_eq!(s["targets"][0]["served_by"]["offset"], 1.0);
    // 26 s: only lone cuts (22.4 and 30 s), too weak for a break.
    assert!(s["targets"][1]["served_by"].is_null(), "{s}");
    assert_eq!(s["targets"][1]["unserved"]["kind"], "none_acceptable");
    // 40 s: the silence at the 36.4 s cut, on its boundary at 36 s.
    assert_eq!(s["targets"][2]["served_by"]["timestamp"], 36.0);
    assert_eq!(s["targets"][2]["served_by"]["break_index"], 1);
    assert_eq!(times(&v["breaks"]), vec![16.0, 36.0]);
    let explanation = v["breaks"][0]["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("scene change + black + silence + cut")
            && explanation.ends_with("serves the 00:00:15.000 target (+1.000 s)"),
        "{explanation}"
    );
    let xml = std::fs::read_to_string(&vmap).unwrap();
    assert!(
        xml.contains(r#"<vmap:Extension type="cuepoint-break-duration">"#)
            && xml.contains("<Duration>00:01:30.000</Duration>"),
        "{xml}"
    );
    // The table says it in words.
    let out = cuepoint(&[
        "slots",
        fixture().to_str().unwrap(),
        "--schedule",
        spec,
        "--min-spacing",
        "10",
    ]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("schedule: 2 of 3 target(s) served, within 4 s, breaks of 90 s"),
        "{table}"
    );
    assert!(table.contains("target 00:00:15.000  midroll-1 at 00:00:16.000 (+1.000 s)"));
    assert!(
        table.contains(
            "target 00:00:26.000  not served: 2 slot(s) in the window, none acceptable: \
             2 x scores below 0.5"
        ),
        "{table}"
    );
    // Bad specs and the reference policy are refused.
    let out = cuepoint(&[
        "slots",
        fixture().to_str().unwrap(),
        "--schedule",
        "every=0",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("every_seconds must be at least 1"), "{err}");
    let out = cuepoint(&[
        "slots",
        fixture().to_str().unwrap(),
        "--policy",
        "reference",
        "--schedule",
        "every=60",
    ]);
    assert!(!out.status.success());
}

/// labels.json as the local label model writes it: each sampled second, an ImageNet class with
/// its parents, and each parent as a label of its own.
fn local_labels(leaf: &str, parents: &[&str]) -> String {
    let parent_refs: Vec<Value> = parents
        .iter()
        .map(|p| serde_json::json!({"Name": p}))
        .collect();
    let mut labels = Vec::new();
    for second in 0..60 {
        let ts = second * 1000;
        labels.push(serde_json::json!({"Timestamp": ts, "Label": {"Name": leaf, "Confidence": 84.0, "Parents": parent_refs, "Categories": []}}));
        for p in parents {
            labels.push(serde_json::json!({"Timestamp": ts, "Label": {"Name": p, "Confidence": 90.0, "Parents": [], "Categories": []}}));
        }
    }
    serde_json::json!({"JobStatus": "SUCCEEDED", "VideoMetadata": {"DurationMillis": 60000}, "Labels": labels}).to_string()
}

#[test]
fn different_content_gets_different_ads() {
    let ads_for = |labels: String| {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture(), dir.path());
        std::fs::write(dir.path().join("labels.json"), labels).unwrap();
        let v = slots_json(dir.path(), &[]);
        let ads: Vec<String> = v["ads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                a["ad_url"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(!ads.is_empty());
        // The slot labels the ad was chosen for include the broader names.
        assert!(v["ads"][0]["similarity"].as_f64().unwrap() > 0.0, "{v}");
        ads
    };
    let animals = ads_for(local_labels("Tabby", &["Cat", "Mammal", "Pet", "Animal"]));
    let vehicles = ads_for(local_labels(
        "Sports Car",
        &["Car", "Vehicle", "Transportation"],
    ));
    assert!(
        animals.iter().all(|a| a == "AD-polarbear-15.mp4"),
        "{animals:?}"
    );
    assert!(
        vehicles.iter().all(|a| a == "AD-carracing-15.mp4"),
        "{vehicles:?}"
    );
}

#[test]
fn local_results_give_every_break_a_context() {
    // Faces as the local detector writes them (no emotions), a face every second.
    let faces: Vec<Value> = (0..60)
        .map(|s| serde_json::json!({"Timestamp": s * 1000, "Face": {"BoundingBox": {"Width": 0.2, "Height": 0.3, "Left": 0.4, "Top": 0.2}, "Confidence": 97.5, "Landmarks": []}}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    std::fs::write(
        dir.path().join("labels.json"),
        local_labels("Tabby", &["Cat", "Mammal", "Pet", "Animal"]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("faces.json"),
        serde_json::json!({"JobStatus": "SUCCEEDED", "Faces": faces}).to_string(),
    )
    .unwrap();
    let v = slots_json(dir.path(), &[]);
    let breaks = v["breaks"].as_array().unwrap();
    assert!(!breaks.is_empty());
    for b in breaks {
        let ctx = &b["context"];
        assert_eq!(ctx["faces"]["before"][0]["name"], "Face", "{ctx}");
        assert_eq!(ctx["faces"]["before"][0]["confidence"], 97.5);
        let labels: Vec<&str> = ctx["labels"]["before"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert!(
            labels.contains(&"Tabby") && labels.contains(&"Animal"),
            "{labels:?}"
        );
    }
    // The reference policy keeps the sample's rules: faces without emotions give nothing.
    let reference = slots_json(dir.path(), &["--policy", "reference"]);
    for s in reference["slots"].as_array().unwrap() {
        assert_eq!(s["context"]["faces"]["before"], serde_json::json!([]));
    }
}
