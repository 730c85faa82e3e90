//! `cuepoint serve` over real HTTP: a server on port 0 over an embedded data directory.
//! Auth, bad uploads, traversal attempts, edits refused on failed and in-flight assets, VMAP
//! versioning and the "Breaks Edited" choreography into the search catalog.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cuepoint_core::asset::{Asset, AssetState, BreakSummary, Failure};
use cuepoint_core::domain::{BucketName, ObjectKey, S3Uri, SourceObject};
use cuepoint_runtime::ports::{AssetWrite, SystemClock};
use cuepoint_workers::backend::{build_embedded, Backend};
use cuepoint_workers::cli::run::CommonArgs;
use cuepoint_workers::serve::{self, RunningServer, ServeArgs};
use reqwest::StatusCode;
use serde_json::{json, Value};

const TOKEN: &str = "s3cret-token";

fn args(dir: &Path, token: Option<&str>) -> ServeArgs {
    ServeArgs {
        bind: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_string),
        no_workers: true,
        max_upload_mib: 1,
        web_vendor: Some(dir.join("no-vendor")),
        common: CommonArgs {
            config: None,
            data_dir: Some(dir.to_path_buf()),
        },
    }
}

async fn backend(dir: &Path) -> Backend {
    let settings = CommonArgs {
        config: None,
        data_dir: Some(dir.to_path_buf()),
    }
    .settings()
    .unwrap();
    build_embedded(&settings, false, Arc::new(SystemClock))
        .await
        .unwrap()
}

/// A record in `state`, without running the pipeline; COMPLETE ones get slots.json and a VMAP.
async fn put_asset(b: &Backend, name: &str, state: AssetState) -> Asset {
    let source = SourceObject {
        bucket: BucketName::parse("cuepoint-ingest").unwrap(),
        key: ObjectKey::parse(format!("uploads/{name}")).unwrap(),
        version_id: None,
        etag: Some(format!("etag-{name}")),
        size: Some(1000),
    };
    let probe = cuepoint_core::asset::ProbeInfo {
        container: "mov".into(),
        duration_seconds: 60.0,
        ..Default::default()
    };
    let mut a = Asset::register(
        source.clone(),
        probe,
        S3Uri::parse("s3://placeholder/assets/").unwrap(),
        1,
    );
    a.results.prefix = b.ctx.results_prefix(&a.id);
    a.state = state;
    if state == AssetState::Failed {
        a.failure = Some(Failure {
            stage: cuepoint_core::asset::FailureStage::Transcode,
            reason: "transcode ERROR 1010: bad input".into(),
            kind: cuepoint_core::asset::FailureKind::Permanent,
            failed_in: Some(AssetState::Transcoding),
        });
    }
    if state == AssetState::Complete {
        a.breaks = vec![
            BreakSummary {
                timestamp: 22.0,
                score: 0.916,
                reasons: vec!["Silence".into(), "BlackFrame".into()],
            },
            BreakSummary {
                timestamp: 42.0,
                score: 0.9,
                reasons: vec!["Silence".into()],
            },
        ];
        let vmap = b.ctx.result_uri(&a.id, "ad_breaks.vmap");
        a.results.vmap = Some(vmap.clone());
        let slots = json!({"policy":"default","duration":60.0,"slots":[
            {"timestamp":22.0,"score":0.916,"reasons":["Silence","BlackFrame"]},
            {"timestamp":30.0,"score":0.6,"reasons":["ShotChange"]},
            {"timestamp":42.0,"score":0.9,"reasons":["Silence"]}],"breaks":[]});
        b.ctx
            .ports
            .blobs
            .put(
                &b.ctx.result_uri(&a.id, "slots.json"),
                slots.to_string().into_bytes(),
                "application/json",
            )
            .await
            .unwrap();
        let inv = cuepoint_core::ads::AdInventory::default_inventory();
        let xml = serve::breaks::render_vmap(&a.breaks, &[], &inv).unwrap();
        b.ctx
            .ports
            .blobs
            .put(&vmap, xml.into_bytes(), "application/xml")
            .await
            .unwrap();
    }
    b.ctx
        .ports
        .store
        .commit(AssetWrite {
            asset: a.clone(),
            expected_version: None,
            counter: None,
        })
        .await
        .unwrap();
    a
}

async fn start(dir: &Path, token: Option<&str>) -> (RunningServer, String) {
    let s = serve::start(&args(dir, token)).await.unwrap();
    let base = format!("http://{}", s.addr);
    (s, base)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn error_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["status"].as_u64(),
        Some(status.as_u16() as u64),
        "error body carries the status: {body}"
    );
    (
        status,
        body["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn every_api_call_and_page_needs_the_token_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = start(dir.path(), Some(TOKEN)).await;
    let c = client();
    for path in [
        "/api/assets",
        "/api/search?q=x",
        "/api/openapi.json",
        "/api/assets/a1/breaks",
    ] {
        let (status, msg) = error_of(c.get(format!("{base}{path}")).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(msg.contains("bearer token"), "{msg}");
        let wrong = c
            .get(format!("{base}{path}"))
            .bearer_auth("s3cret-tokeN")
            .send()
            .await
            .unwrap();
        assert_eq!(
            wrong.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong token"
        );
    }
    let put = c
        .put(format!("{base}/api/assets/a1/breaks"))
        .json(&json!({"version":1,"breaks":[]}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::UNAUTHORIZED);
    let up = c
        .post(format!("{base}/api/uploads?name=a.mp4"))
        .header("content-type", "video/mp4")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), StatusCode::UNAUTHORIZED);
    for page in [
        "/",
        "/assets/a1",
        "/static/asset.js",
        "/media/a1/labels.json",
        "/vendor/hls.min.js",
    ] {
        assert_eq!(
            c.get(format!("{base}{page}"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED,
            "{page}"
        );
    }
    // The right token: header, or the cookie a browser gets from /?token=.
    let ok = c
        .get(format!("{base}/api/assets"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let login = c
        .get(format!("{base}/assets/a1?token={TOKEN}&t=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(login.headers()["location"], "/assets/a1?t=5");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("HttpOnly"));
    let page = c
        .get(format!("{base}/assets/a1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let doc: Value = c
        .get(format!("{base}/api/openapi.json"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for p in [
        "/api/assets",
        "/api/assets/{id}",
        "/api/assets/{id}/breaks",
        "/api/search",
        "/api/uploads",
    ] {
        assert!(doc["paths"][p].is_object(), "openapi lists {p}");
    }
    assert!(doc["paths"]["/api/assets/{id}/breaks"]["put"].is_object());
    assert_eq!(
        c.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_non_loopback_bind_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(dir.path(), None);
    a.bind = "0.0.0.0:0".parse().unwrap();
    let err = serve::start(&a).await.err().expect("refused");
    assert!(err.to_string().contains("--token"), "{err}");
}

fn ffmpeg_clip(path: &Path) {
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25:duration=1",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-shortest",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg on PATH");
    assert!(ok.success());
}

#[tokio::test]
async fn bad_uploads_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = start(dir.path(), None).await;
    let c = client();
    let up = |name: &str, ct: &str, body: Vec<u8>| {
        let mut r = c.post(format!("{base}/api/uploads?name={name}")).body(body);
        if !ct.is_empty() {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let (s, m) = error_of(
        up("notes.txt", "text/plain", b"hello".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(m.contains("text/plain is not a media type"), "{m}");
    let (s, m) = error_of(up("x.mp4", "", b"hello".to_vec()).await.unwrap()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{m}");
    let (s, m) = error_of(
        up(
            "fake.mp4",
            "video/mp4",
            b"this is not a video at all".to_vec(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(m.contains("fake.mp4 is not usable media"), "{m}");
    let (s, m) = error_of(up("empty.mp4", "video/mp4", vec![]).await.unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("empty"), "{m}");
    let (s, m) = error_of(
        up("big.mp4", "video/mp4", vec![0u8; 2 * 1024 * 1024])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(m.contains("1 MiB"), "{m}");
    // Streamed without a length: the limit is enforced while reading.
    let chunks =
        futures_util::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![0u8; 64 * 1024])));
    let r = c
        .post(format!("{base}/api/uploads?name=stream.mp4"))
        .header("content-type", "video/mp4")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = error_of(
        c.post(format!("{base}/api/uploads"))
            .header("content-type", "video/mp4")
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no name");
    let (s, _) = error_of(up("..%2F..", "video/mp4", b"x".to_vec()).await.unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a name with nothing usable");
    // Nothing of the refused uploads is left behind.
    let incoming = dir.path().join("uploads-incoming");
    assert_eq!(
        std::fs::read_dir(&incoming).unwrap().count(),
        0,
        "temporary files removed"
    );
    assert!(
        !dir.path().join("blobs/cuepoint-ingest/uploads").exists(),
        "nothing reached the ingest bucket"
    );

    // A real clip with a hostile name lands under uploads/ with a safe name and starts an asset.
    let clip = dir.path().join("clip.mp4");
    ffmpeg_clip(&clip);
    let r = up(
        "..%2F..%2Fetc%2Fclip%20one.mp4",
        "video/mp4",
        std::fs::read(&clip).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let ok: Value = r.json().await.unwrap();
    assert_eq!(ok["source"], "s3://cuepoint-ingest/uploads/clip_one.mp4");
    assert!(dir
        .path()
        .join("blobs/cuepoint-ingest/uploads/clip_one.mp4")
        .is_file());
    // The same name again does not replace the first upload's source.
    let again: Value = up("clip one.mp4", "video/mp4", std::fs::read(&clip).unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["source"],
        "s3://cuepoint-ingest/uploads/clip_one-2.mp4"
    );
    assert_ne!(again["asset_id"], ok["asset_id"]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_path_parameter_reads_outside_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path()).await;
    let a = put_asset(&b, "walk.mov", AssetState::Complete).await;
    std::fs::write(dir.path().join("secret.txt"), "top secret").unwrap();
    let (server, base) = start(dir.path(), None).await;
    let c = client();
    let ok = c
        .get(format!("{base}/media/{}/ad_breaks.vmap", a.id))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap().contains("vmap:VMAP"));
    let attempts = [
        format!("/media/{}/..%2F..%2F..%2F..%2Fsecret.txt", a.id),
        format!(
            "/media/{}/hls/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
            a.id
        ),
        format!("/media/{}/%2Fetc%2Fpasswd", a.id),
        format!("/media/{}/hls%5C..%5C..%5Csecret.txt", a.id),
        format!("/media/{}/.%2E/.%2E/.%2E/catalog.sqlite", a.id),
        "/media/..%2F..%2Fsecret.txt/x.json".to_string(),
        "/media/%2E%2E/labels.json".to_string(),
        format!("/media/{}/db.sqlite", a.id),
        "/api/assets/..%2F..%2Fsecret.txt".to_string(),
        "/api/assets/..%2Fx/breaks".to_string(),
        "/static/..%2F..%2Fsecret.txt".to_string(),
        "/vendor/..%2F..%2F..%2Fsecret.txt".to_string(),
    ];
    for path in &attempts {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
        assert!(
            !text.contains("top secret") && !text.contains("SQLite format"),
            "{path} leaked: {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(
            body["message"].is_string(),
            "{path}: JSON error expected, got {text}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn edits_write_vmap_versions_history_and_an_event_and_are_refused_when_they_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path()).await;
    let done = put_asset(&b, "harbour.mov", AssetState::Complete).await;
    let failed = put_asset(&b, "broken.mov", AssetState::Failed).await;
    let busy = put_asset(&b, "busy.mov", AssetState::Analysing).await;
    let (server, base) = start(dir.path(), None).await;
    let c = client();
    let url = |a: &Asset| format!("{base}/api/assets/{}/breaks", a.id);

    // Refused: FAILED and in-flight assets, with the reason.
    for (a, want) in [
        (&failed, "FAILED at stage transcode: transcode ERROR 1010"),
        (&busy, "is ANALYSING"),
    ] {
        let view: Value = c.get(url(a)).send().await.unwrap().json().await.unwrap();
        assert_eq!(view["editable"], false);
        let (s, m) = error_of(
            c.put(url(a))
                .json(&json!({"version":1,"breaks":[{"timestamp":10.0}]}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert!(m.contains(want), "{m}");
    }
    let (s, _) = error_of(
        c.put(url(&done))
            .json(&json!({"version":1,"breaks":[{"timestamp":99.0}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a break past the end");
    let (s, _) = error_of(
        c.put(url(&done))
            .body("{not json")
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = error_of(
        c.get(format!("{base}/api/assets/anope/breaks"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let before = std::fs::read_to_string(
        b.ctx
            .ports
            .blobs
            .local_path(&b.ctx.result_uri(&done.id, "ad_breaks.vmap"))
            .unwrap(),
    )
    .unwrap();
    let edit = json!({"version":1,"editor":"Mira","breaks":[{"timestamp":30.0,"from":22.0},{"timestamp":42.0},{"timestamp":50.5}]});
    let r = c.put(url(&done)).json(&edit).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"], 2);
    assert_eq!(v["history"][0]["by"], "Mira");
    assert_eq!(
        v["history"][0]["summary"],
        "moved 00:00:22.000 to 00:00:30.000; added 00:00:50.500"
    );
    assert_eq!(
        v["breaks"][0]["reasons"],
        json!(["ShotChange"]),
        "a break moved onto a slot takes the slot's reasons"
    );
    assert_eq!(v["breaks"][2]["reasons"], json!(["Editor"]));
    let path = |rel: &str| {
        b.ctx
            .ports
            .blobs
            .local_path(&b.ctx.result_uri(&done.id, rel))
            .unwrap()
    };
    let v1 = std::fs::read_to_string(path("vmap/v1.vmap")).unwrap();
    let v2 = std::fs::read_to_string(path("vmap/v2.vmap")).unwrap();
    let current = std::fs::read_to_string(path("ad_breaks.vmap")).unwrap();
    assert_eq!(v1, before, "the original VMAP is kept as version 1");
    assert_eq!(current, v2);
    assert!(
        v2.contains(r#"timeOffset="00:00:30.000""#) && v2.contains(r#"timeOffset="00:00:50.500""#)
    );
    assert!(!v2.contains(r#"timeOffset="00:00:22.000""#));
    // The record: breaks and history in the same conditional write.
    let rec = b.ctx.ports.store.get(&done.id).await.unwrap().unwrap();
    assert_eq!(rec.breaks.len(), 3);
    assert_eq!(rec.edits.len(), 1);
    assert_eq!(rec.version, done.version + 1);

    // A stale editor loses with a clear message; a fresh one writes version 3.
    let (s, m) = error_of(c.put(url(&done)).json(&edit).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(m.contains("now version 2 by Mira"), "{m}");
    let r = c
        .put(url(&done))
        .json(&json!({"version":2,"breaks":[{"timestamp":30.0},{"timestamp":42.0},{"timestamp":50.5}]}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"], 3);
    assert_eq!(
        v["history"][1]["summary"],
        "accepted 3 break(s) as they are"
    );
    assert_eq!(v["history"][1]["by"], "anonymous");
    assert!(
        path("vmap/v3.vmap").is_file()
            && path("vmap/v2.vmap").is_file()
            && path("vmap/v1.vmap").is_file()
    );

    // "Breaks Edited" went out on the bus; the catalog consumed it: the editor's break is found.
    let mut found = Value::Null;
    for _ in 0..100 {
        let r: Value = c
            .get(format!("{base}/api/search?q=editor"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["assets"].as_array().is_some_and(|a| !a.is_empty()) {
            found = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        found["assets"][0]["asset_id"],
        done.id.as_str(),
        "search after the edit: {found}"
    );
    assert_eq!(found["assets"][0]["hits"][0]["start"], 50.5);
    assert_eq!(
        found["assets"][0]["hits"][0]["url"],
        format!("/assets/{}?t=50.5", done.id)
    );
    let (s, _) = error_of(
        c.get(format!("{base}/api/search?q=%20%2A"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let list: Value = c
        .get(format!("{base}/api/assets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == done.id.as_str())
        .unwrap();
    assert_eq!(row["vmap_version"], 3);
    let frow = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == failed.id.as_str())
        .unwrap();
    assert_eq!(frow["failed_stage"], "transcode");
    server.shutdown().await.unwrap();
}
