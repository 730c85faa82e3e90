//! `JobPlan::from_settings` on any JSON, and `build_job_settings` against it.
//!
//! Two input modes, chosen by the first byte:
//! - `#`: the rest drives `arbitrary` to pick an input URI, an output prefix and a track count;
//!   the compiled-in template is built for them and read back with `from_settings`;
//! - anything else: JSON text handed to `from_settings` (seeds: settings built for 0, 1, 2 and 8
//!   tracks, and the template itself).
//!
//! Properties, beyond "never panics":
//! - on `Ok`, every loudness-log URI of the plan can be formed: `JobPlan::loudness_log_uri`
//!   (which panics by design when `from_settings` let a too-long destination through) is called
//!   for every position and for the longest name, and `output_group_details` runs;
//! - what `build_job_settings` writes, `from_settings` reads back as the same job (same input,
//!   destinations under the prefix, one logged description per track), unless a destination is
//!   too long for an S3 key (the documented refusal).
#![no_main]

use arbitrary::Unstructured;
use cuepoint_core::domain::{BucketName, ObjectKey, S3Uri};
use cuepoint_core::mediaconvert::{
    build_job_settings, default_template, JobPlan, JobSettingsError, MAX_AUDIO_TRACKS,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b'#', rest)) => build_then_read(rest),
        _ => read_any(data),
    }
});

fn read_any(data: &[u8]) {
    let Ok(settings) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(plan) = JobPlan::from_settings(&settings) else {
        return;
    };
    check_plan(&plan);
}

fn check_plan(plan: &JobPlan) {
    let _ = plan.output_group_details(Some(1));
    let _ = plan.hls_master_uri();
    let _ = plan.proxy_uri();
    let Some(audio) = &plan.audio else {
        assert!(plan.loudness_log_uris().is_empty());
        assert_eq!(plan.try_loudness_log_uri(1, 1), None);
        return;
    };
    assert!(!audio.tracks.is_empty());
    let count = audio.tracks.len() as u32;
    for t in &audio.tracks {
        assert_eq!(
            Some(plan.loudness_log_uri(t.position, count)),
            plan.try_loudness_log_uri(t.position, count)
        );
    }
    let _ = plan.loudness_log_uri(u32::MAX, u32::MAX);
    let _ = plan.loudness_log_uri(1, 1);
    assert_eq!(
        plan.loudness_log_uris().len(),
        audio.tracks.iter().filter(|t| t.loudness_logging).count()
    );
}

fn uri(u: &mut Unstructured<'_>, bucket: &str) -> arbitrary::Result<Option<S3Uri>> {
    let key: String = u.arbitrary()?;
    // Long keys matter (the 1024-byte limit): sometimes pad to near it.
    let key = if u.ratio(1, 4)? {
        format!("{}{key}", "k".repeat(u.int_in_range(900..=1030)?))
    } else {
        key
    };
    Ok(ObjectKey::parse(key)
        .ok()
        .map(|k| S3Uri::new(BucketName::parse(bucket).expect("valid bucket"), k)))
}

fn build_then_read(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(Some(input)), Ok(Some(prefix)), Ok(tracks)) = (
        uri(&mut u, "cuepoint-ingest"),
        uri(&mut u, "cuepoint-media"),
        u.int_in_range(0..=MAX_AUDIO_TRACKS),
    ) else {
        return;
    };
    let settings = build_job_settings(&default_template(), &input, &prefix, tracks)
        .unwrap_or_else(|e| panic!("the compiled-in template does not build: {e}"));
    let plan = match JobPlan::from_settings(&settings) {
        Ok(plan) => plan,
        Err(JobSettingsError::Invalid { path, why }) if why.contains("longer than 1024 bytes") => {
            assert!(
                path.ends_with(".Destination") || path.starts_with("OutputGroups"),
                "{path}: {why}"
            );
            return;
        }
        Err(e) => panic!("from_settings refuses what build_job_settings wrote: {e}"),
    };
    check_plan(&plan);
    assert_eq!(plan.input, input);
    let dir = prefix.key.as_str().trim_end_matches('/');
    assert!(plan.hls.is_none(), "the first job makes no HLS");
    for dest in [&plan.proxy.destination] {
        assert_eq!(dest.bucket, prefix.bucket);
        assert!(
            dest.key.as_str().starts_with(dir),
            "{dest} is not under {prefix}"
        );
    }
    match (&plan.audio, tracks) {
        (None, 0) => {}
        (Some(a), n) if n > 0 => {
            assert_eq!(a.tracks.len() as u32, n);
            assert!(a
                .tracks
                .iter()
                .enumerate()
                .all(|(i, t)| t.track == i as u32 + 1 && t.loudness_logging));
            assert_eq!(plan.loudness_log_uris().len() as u32, n);
        }
        (audio, n) => panic!("{n} tracks built, plan audio {audio:?}"),
    }
}
