//! The harness of the LocalStack end-to-end tests: one private stack of resources per test,
//! the real workers on the AWS backend (in this process or as child processes), and the
//! waiting and reading the tests share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cuepoint_aws::provision::{load_routing, provision, ProvisionNames, Provisioned};
use cuepoint_aws::{AwsClients, DynamoAssetStore, S3BlobStore, SqsDeadLetters};
use cuepoint_core::asset::Asset;
use cuepoint_core::domain::{BucketName, ObjectKey, S3Uri};
use cuepoint_core::routing::RoutingDefinition;
use cuepoint_embedded::{EmbeddedBackend, EmbeddedOptions};
use cuepoint_engine::sample::{generate_sample, GroundTruth, SampleSpec};
use cuepoint_runtime::config::{AwsSettings, Backend as BackendKind, Settings};
use cuepoint_runtime::ports::{AssetStore, BlobStore, DeadLetters, JobLedger};
use cuepoint_workers::app::RunningWorkers;
use cuepoint_workers::backend::Backend;
use cuepoint_workers::handlers::WorkerKind;

pub const ROUTING: &str = include_str!("../../infra/routing.json");

/// The emulator endpoint. The LocalStack tests are ignored unless asked for (`tests/run.sh` runs
/// them with `--include-ignored` after starting LocalStack); asked for without one, they fail.
pub fn endpoint(test: &str) -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!(
            "{test}: AWS_ENDPOINT_URL is not set. Run `tests/emulator/localstack.sh start` and \
             `eval \"$(tests/emulator/localstack.sh env)\"` (tests/run.sh does both)"
        ),
    }
}

/// A name prefix unique to this run and call: lowercase and bucket-safe.
fn unique_prefix(test: &str) -> String {
    format!("e2e{:08x}-{test}", fastrand::u32(..))
}

/// One test's private resources (queues, DLQs, rules, bus, topic, table, buckets) and the
/// settings that point the workers at them.
pub struct Stack {
    pub test: String,
    pub names: ProvisionNames,
    pub res: Provisioned,
    pub clients: AwsClients,
    pub settings: Settings,
    pub routing: RoutingDefinition,
    pub dir: tempfile::TempDir,
    pub started: Instant,
}

impl Stack {
    /// Provision from `infra/routing.json` under a fresh prefix. `None`: no emulator (skip).
    ///
    /// Cuepoint's own events go to a bus of the test's own and the MediaConvert rule filters on
    /// a workflow name of its own, so tests never receive each other's events even though
    /// AWS-service rules all live on the shared default bus.
    pub async fn new(test: &str) -> Option<Stack> {
        endpoint(test)?;
        // The emulator takes any credentials; the worker processes read the same variables.
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ] {
            if std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
        let started = Instant::now();
        let prefix = unique_prefix(test);
        let mut names = ProvisionNames::with_prefix(&prefix);
        names.workflow = prefix.clone();
        names.event_bus = format!("{prefix}-bus");

        let mut aws = AwsSettings {
            s3_path_style: true,
            local_media_engine: true,
            ..AwsSettings::default()
        };
        let clients = AwsClients::from_env(&aws).await;
        let res = provision(&clients, ROUTING, &names)
            .await
            .expect("provision from infra/routing.json");
        res.apply_to(&mut aws);
        let routing = load_routing(ROUTING, &names).expect("routing.json");

        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = cuepoint_tests::test_settings(&dir.path().join("data"));
        settings.backend = BackendKind::Aws;
        settings.ingest_bucket = names.ingest_bucket.clone();
        settings.output_bucket = names.output_bucket.clone();
        settings.workflow = names.workflow.clone();
        settings.consumer.visibility_seconds = 30;
        settings.consumer.heartbeat_seconds = 5;
        settings.consumer.retry_base_seconds = 1;
        settings.consumer.retry_max_seconds = 3;
        settings.consumer.shutdown_grace_seconds = 20;
        settings.analysis.cap_retry_seconds = 2;
        settings.aws = aws;
        eprintln!(
            "{test}: provisioned {prefix} in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Some(Stack {
            test: test.to_string(),
            names,
            res,
            clients,
            settings,
            routing,
            dir,
            started,
        })
    }

    pub fn store(&self) -> DynamoAssetStore {
        DynamoAssetStore::from_settings(&self.clients, &self.settings.aws)
    }

    pub fn blobs(&self) -> S3BlobStore {
        S3BlobStore::new(&self.clients)
    }

    pub fn dead_letters(&self) -> SqsDeadLetters {
        SqsDeadLetters::from_settings(&self.clients, &self.settings.aws)
    }

    pub fn max_receive_count(&self, queue: &str) -> u32 {
        self.routing
            .queue(queue)
            .map(|q| q.max_receive_count)
            .expect("queue in routing.json")
    }

    pub fn ingest_uri(&self, key: &str) -> S3Uri {
        S3Uri::new(
            BucketName::parse(&self.names.ingest_bucket).unwrap(),
            ObjectKey::parse(key).unwrap(),
        )
    }

    /// Upload a local file to the ingest bucket (one PutObject, as a user would).
    pub async fn upload(&self, file: &Path, key: &str) {
        self.blobs()
            .put_file(&self.ingest_uri(key), file, "video/quicktime")
            .await
            .expect("upload to the ingest bucket");
    }

    /// A tiny clip with a known answer: 8 s 160x90, two mono tracks (track 2 silent), hard cuts,
    /// one black silent gap.
    pub async fn clip(&self, name: &str) -> (PathBuf, GroundTruth) {
        let path = self.dir.path().join(name);
        let truth = generate_sample(&path, &tiny_clip())
            .await
            .expect("generate the clip");
        (path, truth)
    }

    /// Build the AWS backend and start `kinds` in this process, with settings `settings`.
    pub async fn start_workers(
        &self,
        settings: &Settings,
        kinds: &[WorkerKind],
    ) -> (Backend, RunningWorkers) {
        let backend = cuepoint_workers::backend::build(settings, true)
            .await
            .expect("AWS backend");
        let workers =
            cuepoint_workers::app::start(&backend.ctx, kinds, |q| backend.queue(q), false);
        (backend, workers)
    }

    /// Every asset of this stack's table.
    pub async fn assets(&self) -> Vec<Asset> {
        self.store().list().await.expect("list assets")
    }

    /// Wait until `n` assets exist and all are COMPLETE or FAILED.
    pub async fn wait_terminal(&self, n: usize, timeout: Duration) -> Vec<Asset> {
        let t0 = Instant::now();
        loop {
            let assets = self.assets().await;
            if assets.len() >= n && assets.iter().all(|a| a.state.is_terminal()) {
                return assets;
            }
            if t0.elapsed() > timeout {
                let states: Vec<String> = assets
                    .iter()
                    .map(|a| format!("{} {} v{}", a.id, a.state, a.version))
                    .collect();
                let dlq = self.dead_letters().counts().await.unwrap_or_default();
                panic!("{}: {n} terminal assets expected within {timeout:?}; have {states:?}; DLQs {dlq:?}", self.test);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Messages in each DLQ that holds any.
    pub async fn dead_lettered(&self) -> BTreeMap<String, u64> {
        self.dead_letters()
            .counts()
            .await
            .expect("DLQ counts")
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Whether an object exists in the output bucket.
    pub async fn output_exists(&self, uri: &S3Uri) -> bool {
        self.blobs().head(uri).await.expect("head").is_some()
    }

    pub fn elapsed(&self) {
        eprintln!(
            "TIME {}: {:.1}s",
            self.test,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// The local engine's job ledger in `data_dir` (what the MediaConvert and Rekognition stand-ins
/// accepted), opened after the workers stopped.
pub fn ledger(settings: &Settings, data_dir: &Path) -> Arc<dyn JobLedger> {
    let routing = cuepoint_workers::backend::routing(settings).expect("routing");
    let backend = EmbeddedBackend::open(data_dir, EmbeddedOptions::new(routing))
        .expect("open the local engine's ledger");
    backend.ledger()
}

pub fn tiny_clip() -> SampleSpec {
    SampleSpec {
        duration: 8.0,
        width: 160,
        height: 90,
        fps: 25,
        track_count: 2,
        active_tracks: vec![1],
        cuts: vec![2.0, 6.0],
        black_gaps: vec![(3.5, 4.5)],
        end_credits_from: None,
        ..SampleSpec::default()
    }
}

/// Poll `f` until it gives `Some`, or panic with `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let t0 = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Worker binaries as child processes

/// The directory cargo put this test binary's profile in (`<target>/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // <target>/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary in <target>/<profile>/deps")
        .to_path_buf()
}

/// The path of a worker binary built with `--features aws`, building it if needed (a no-op
/// when it is up to date). Cargo does not build other packages' binaries for a test target.
pub fn worker_binary(name: &str) -> PathBuf {
    let profile = profile_dir();
    let target = profile.parent().expect("target dir").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--locked",
        "--quiet",
        "-p",
        "cuepoint-workers",
        "--features",
        "aws",
        "--bin",
        name,
    ])
    .arg("--manifest-path")
    .arg(&manifest)
    .arg("--target-dir")
    .arg(&target);
    if profile.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let t0 = Instant::now();
    let status = cmd.status().expect("run cargo build for the worker binary");
    assert!(
        status.success(),
        "building {name} with --features aws failed"
    );
    eprintln!(
        "worker binary {name} ready in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let bin = profile.join(name);
    assert!(bin.is_file(), "{} missing after the build", bin.display());
    bin
}

/// The `CUEPOINT_*` environment that configures a worker binary exactly like `settings`
/// (what docs/aws.md lists for a deployment).
pub fn worker_env(settings: &Settings) -> Vec<(String, String)> {
    let c = &settings.consumer;
    let a = &settings.aws;
    let mut env = vec![
        ("CUEPOINT_BACKEND".to_string(), "aws".to_string()),
        ("CUEPOINT_LOG_FORMAT".into(), "json".into()),
        (
            "CUEPOINT_DATA_DIR".into(),
            settings.data_dir.display().to_string(),
        ),
        (
            "CUEPOINT_INGEST_BUCKET".into(),
            settings.ingest_bucket.clone(),
        ),
        (
            "CUEPOINT_OUTPUT_BUCKET".into(),
            settings.output_bucket.clone(),
        ),
        ("CUEPOINT_WORKFLOW".into(), settings.workflow.clone()),
        ("CUEPOINT_AWS__TABLE".into(), a.table.clone()),
        ("CUEPOINT_AWS__EVENT_BUS".into(), a.event_bus.clone()),
        (
            "CUEPOINT_AWS__REKOGNITION_TOPIC_ARN".into(),
            a.rekognition_topic_arn.clone(),
        ),
        (
            "CUEPOINT_AWS__S3_PATH_STYLE".into(),
            a.s3_path_style.to_string(),
        ),
        (
            "CUEPOINT_AWS__LOCAL_MEDIA_ENGINE".into(),
            a.local_media_engine.to_string(),
        ),
        (
            "CUEPOINT_CONSUMER__WAIT_SECONDS".into(),
            c.wait_seconds.to_string(),
        ),
        (
            "CUEPOINT_CONSUMER__CONCURRENCY".into(),
            c.concurrency.to_string(),
        ),
        (
            "CUEPOINT_CONSUMER__VISIBILITY_SECONDS".into(),
            c.visibility_seconds.to_string(),
        ),
        (
            "CUEPOINT_CONSUMER__HEARTBEAT_SECONDS".into(),
            c.heartbeat_seconds.to_string(),
        ),
        (
            "CUEPOINT_CONSUMER__RETRY_BASE_SECONDS".into(),
            c.retry_base_seconds.to_string(),
        ),
        (
            "CUEPOINT_CONSUMER__RETRY_MAX_SECONDS".into(),
            c.retry_max_seconds.to_string(),
        ),
        (
            "CUEPOINT_CONSUMER__SHUTDOWN_GRACE_SECONDS".into(),
            c.shutdown_grace_seconds.to_string(),
        ),
    ];
    for (queue, url) in &a.queue_urls {
        env.push((
            format!("CUEPOINT_AWS__QUEUE_URLS__{}", queue.to_uppercase()),
            url.clone(),
        ));
    }
    env
}

/// A worker binary running as a child process, its JSON log lines collected.
pub struct WorkerProcess {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl WorkerProcess {
    pub fn spawn(bin: &Path, settings: &Settings) -> WorkerProcess {
        let mut cmd = Command::new(bin);
        // Only what the worker is given explicitly (plus PATH, HOME and the AWS variables).
        for (k, _) in std::env::vars() {
            if k.starts_with("CUEPOINT_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(worker_env(settings))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("stderr piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        WorkerProcess {
            child,
            lines,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Log lines parsed as JSON (non-JSON lines are skipped).
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The first log event whose message is `message`.
    pub fn find(&self, message: &str) -> Option<serde_json::Value> {
        self.events().into_iter().find(|e| e["message"] == message)
    }

    pub fn count(&self, message: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e["message"] == message)
            .count()
    }

    /// `kill -TERM <pid>`.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Wait for the process to exit, at most `timeout`; kills it (and fails) past that.
    pub fn wait_exit(&mut self, timeout: Duration) -> (std::process::ExitStatus, Duration) {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return (status, t0.elapsed());
            }
            if t0.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "worker {} did not exit within {timeout:?}; log tail:\n{}",
                    self.pid(),
                    self.tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines.lock().unwrap();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for WorkerProcess {
    /// A failing test must not leave a worker behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
