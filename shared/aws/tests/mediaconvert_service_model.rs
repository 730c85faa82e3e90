//! Both MediaConvert jobs' settings, as cuepoint builds them, against MediaConvert's service
//! model: botocore's copy, through `infra/check_mediaconvert.py` (every member name, type,
//! range and enum value of CreateJob). There is no MediaConvert emulator, so this is what keeps
//! a settings change from becoming a job MediaConvert refuses.
//!
//! Needs a Python with botocore in `CUEPOINT_BOTOCORE_PYTHON` (tests/run.sh passes LocalStack's
//! venv in its AWS part, where ignored tests run).

use std::path::{Path, PathBuf};
use std::process::Command;

use cuepoint_core::domain::S3Uri;
use cuepoint_core::mediaconvert::{
    build_job_settings, build_packaging_settings, default_packaging_template, default_template,
    PackagingSource,
};
use cuepoint_core::packaging::{FrameRate, DEFAULT_LADDER};
use serde_json::{json, Value};

fn checker() -> (PathBuf, PathBuf) {
    let python = std::env::var_os("CUEPOINT_BOTOCORE_PYTHON").map(PathBuf::from).expect(
        "CUEPOINT_BOTOCORE_PYTHON: a Python with botocore (tests/emulator/localstack.sh env prints it)",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/check_mediaconvert.py");
    (python, script)
}

/// Run the checker on `settings`: its verdict and what it printed.
fn check(name: &str, settings: &Value) -> (bool, String) {
    let (python, script) = checker();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(settings).unwrap()).unwrap();
    let out = Command::new(&python)
        .arg(&script)
        .arg(&file)
        .output()
        .expect("the botocore Python runs");
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

fn first_job() -> Value {
    build_job_settings(
        &default_template(),
        &S3Uri::parse("s3://cuepoint-ingest/masters/My Show (1).mxf").unwrap(),
        &S3Uri::parse("s3://cuepoint-output/assets/a0123456789abcdef0123/").unwrap(),
        8,
    )
    .unwrap()
}

fn packaging_job() -> Value {
    build_packaging_settings(
        &default_packaging_template(),
        &S3Uri::parse("s3://cuepoint-ingest/masters/My Show (1).mxf").unwrap(),
        &S3Uri::parse("s3://cuepoint-output/assets/a0123456789abcdef0123/").unwrap(),
        &PackagingSource {
            width: 1920,
            height: 1080,
            frame_rate: FrameRate { num: 25, den: 1 },
            duration_s: 1800.0,
            audio_track: Some(1),
        },
        &DEFAULT_LADDER,
        &[480.4, 959.96, 1441.0],
    )
    .unwrap()
}

#[test]
#[ignore = "needs botocore: CUEPOINT_BOTOCORE_PYTHON (run by tests/run.sh's AWS part)"]
fn both_jobs_settings_match_the_service_model() {
    for (name, settings) in [
        ("first-job", first_job()),
        ("packaging-job", packaging_job()),
    ] {
        let (ok, report) = check(name, &settings);
        assert!(ok, "{report}");
    }
}

#[test]
#[ignore = "needs botocore: CUEPOINT_BOTOCORE_PYTHON (run by tests/run.sh's AWS part)"]
fn a_wrong_member_type_or_enum_is_caught() {
    let mut unknown = packaging_job();
    unknown["Esam"]["SignalProcessingNotifications"] = json!({"SccXml": "<x/>"});
    let (ok, report) = check("unknown", &unknown);
    assert!(
        !ok && report.contains("SignalProcessingNotifications"),
        "{report}"
    );

    let mut wrong_type = packaging_job();
    wrong_type["OutputGroups"][0]["OutputGroupSettings"]["HlsGroupSettings"]["SegmentLength"] =
        json!("6");
    let (ok, report) = check("wrong-type", &wrong_type);
    assert!(!ok && report.contains("SegmentLength"), "{report}");

    let mut bad_enum = first_job();
    bad_enum["TimecodeConfig"]["Source"] = json!("ZERO_BASED");
    let (ok, report) = check("bad-enum", &bad_enum);
    assert!(!ok && report.contains("ZERO_BASED"), "{report}");
}
