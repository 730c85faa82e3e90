//! Worker metrics in CloudWatch Embedded Metric Format: one JSON line per handled message on
//! stdout, which CloudWatch Logs turns into metrics (namespace `Cuepoint`, dimension `Worker`)
//! with no API calls from the worker. Off in text-log mode (local runs).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Metrics {
    worker: String,
    enabled: bool,
}

pub const NAMESPACE: &str = "Cuepoint";

impl Metrics {
    pub fn new(worker: &str, enabled: bool) -> Self {
        Self {
            worker: worker.to_string(),
            enabled,
        }
    }

    pub fn handled(&self, latency: Duration) {
        self.emit(
            &[
                ("EventsHandled", 1.0, "Count"),
                (
                    "HandlerLatencyMs",
                    latency.as_secs_f64() * 1000.0,
                    "Milliseconds",
                ),
            ],
            None,
        );
    }

    pub fn failed(&self, latency: Duration, kind: &str) {
        self.emit(
            &[
                ("HandlerFailures", 1.0, "Count"),
                (
                    "HandlerLatencyMs",
                    latency.as_secs_f64() * 1000.0,
                    "Milliseconds",
                ),
            ],
            Some(kind),
        );
    }

    /// An event's publication to its handler starting (first deliveries): `HopLatencyMs`, so
    /// the hops of several worker processes can be put together.
    pub fn hop(&self, latency_ms: u64) {
        self.emit(&[("HopLatencyMs", latency_ms as f64, "Milliseconds")], None);
    }

    /// Open Rekognition jobs after a change (analysis and results workers).
    pub fn open_jobs(&self, n: i64) {
        self.emit(&[("OpenRekognitionJobs", n as f64, "Count")], None);
    }

    fn emit(&self, values: &[(&str, f64, &str)], failure_kind: Option<&str>) {
        if !self.enabled {
            return;
        }
        println!("{}", emf_line(&self.worker, values, failure_kind, now_ms()));
    }
}

/// One EMF document.
pub fn emf_line(
    worker: &str,
    values: &[(&str, f64, &str)],
    failure_kind: Option<&str>,
    ts_ms: u64,
) -> String {
    let mut doc = serde_json::Map::new();
    let defs: Vec<_> = values
        .iter()
        .map(|(n, _, u)| serde_json::json!({"Name": n, "Unit": u}))
        .collect();
    doc.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": ts_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Worker"]], "Metrics": defs}]
        }),
    );
    doc.insert("Worker".into(), worker.into());
    if let Some(k) = failure_kind {
        doc.insert("FailureKind".into(), k.into());
    }
    for (n, v, _) in values {
        doc.insert((*n).into(), serde_json::json!(v));
    }
    serde_json::Value::Object(doc).to_string()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_shape() {
        let line = emf_line(
            "ingest",
            &[
                ("EventsHandled", 1.0, "Count"),
                ("HandlerLatencyMs", 12.5, "Milliseconds"),
            ],
            None,
            7,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 7);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Cuepoint");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Worker"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Name"],
            "HandlerLatencyMs"
        );
        assert_eq!(v["Worker"], "ingest");
        assert_eq!(v["HandlerLatencyMs"], 12.5);
    }
}
