//! S3 "Object Created": EventBridge form (`source: aws.s3`) and S3 notification form (`Records`).
//!
//! Keys arrive URL-encoded (`application/x-www-form-urlencoded`: space as `+`) in the
//! notification form, as the S3 documentation states. For the EventBridge form the
//! documentation is silent; LocalStack, whose S3 is parity-tested against AWS, percent-encodes
//! it too, so both forms are decoded with [`ObjectKey::from_url_encoded`] and
//! [`object_created_entry`] encodes. (moto sends EventBridge keys raw: a key holding a literal
//! `+` or `%xx` would be mis-decoded there — see the report on emulators.)

use serde_json::{json, Map, Value};

use crate::domain::{BucketName, ObjectKey, SourceObject};

use super::envelope::{EventBridgeEvent, PutEventsEntry};
use super::inbound::{opt_str, opt_u64, req_obj, req_str, Inbound, InboundError};

/// EventBridge `source` of S3 events.
pub const SOURCE: &str = "aws.s3";
/// EventBridge `detail-type` of an object creation.
pub const DETAIL_TYPE_OBJECT_CREATED: &str = "Object Created";
/// `eventSource` of a record in the S3 notification form.
pub const NOTIFICATION_EVENT_SOURCE: &str = "aws:s3";
/// `Event` of the message S3 sends when a notification configuration is saved.
pub const TEST_EVENT: &str = "s3:TestEvent";

/// One created object, key already URL-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: BucketName,
    pub key: ObjectKey,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
    pub event_time: Option<String>,
    /// The S3 API that created the object, in the EventBridge vocabulary: `PutObject`,
    /// `POST Object`, `CopyObject` or `CompleteMultipartUpload` (notification `eventName`s
    /// are mapped to the same words).
    pub reason: Option<String>,
}

impl ObjectCreated {
    /// An object with only its location known (the rest `None`).
    pub fn new(bucket: BucketName, key: ObjectKey) -> Self {
        Self {
            bucket,
            key,
            size: None,
            etag: None,
            version_id: None,
            sequencer: None,
            event_time: None,
            reason: None,
        }
    }

    pub fn source_object(&self) -> SourceObject {
        SourceObject {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version_id: self.version_id.clone(),
            etag: self.etag.clone(),
            size: self.size,
        }
    }
}

/// Encode a key the way S3 writes it into events: `application/x-www-form-urlencoded`
/// (space as `+`), keeping `/` readable. [`ObjectKey::from_url_encoded`] is its inverse.
pub fn encode_key(key: &ObjectKey) -> String {
    let mut out = String::with_capacity(key.as_str().len());
    for b in key.as_str().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The PutEvents entry S3 would send to EventBridge for this object (used by `cuepoint run FILE`
/// uploads on the embedded bus). `time_ms` becomes the envelope `time`.
pub fn object_created_entry(o: &ObjectCreated, time_ms: Option<u64>) -> PutEventsEntry {
    let mut object = Map::new();
    object.insert("key".into(), Value::String(encode_key(&o.key)));
    if let Some(size) = o.size {
        object.insert("size".into(), json!(size));
    }
    if let Some(etag) = &o.etag {
        object.insert("etag".into(), json!(etag));
    }
    if let Some(v) = &o.version_id {
        object.insert("version-id".into(), json!(v));
    }
    if let Some(s) = &o.sequencer {
        object.insert("sequencer".into(), json!(s));
    }
    let mut detail = Map::new();
    detail.insert("version".into(), json!("0"));
    detail.insert("bucket".into(), json!({ "name": o.bucket.as_str() }));
    detail.insert("object".into(), Value::Object(object));
    if let Some(r) = &o.reason {
        detail.insert("reason".into(), json!(r));
    }
    PutEventsEntry {
        source: SOURCE.to_string(),
        detail_type: DETAIL_TYPE_OBJECT_CREATED.to_string(),
        detail: Value::Object(detail).to_string(),
        resources: vec![format!("arn:aws:s3:::{}", o.bucket)],
        time_ms,
    }
}

/// An S3 event delivered by EventBridge. `Object Created` is parsed; every other S3 detail-type
/// (`Object Deleted`, `Object Restore Completed`, ...) is `Ignored`.
pub(crate) fn from_eventbridge(ev: &EventBridgeEvent<Value>) -> Result<Inbound, InboundError> {
    if ev.detail_type != DETAIL_TYPE_OBJECT_CREATED {
        return Ok(Inbound::Ignored {
            reason: format!("S3 event {:?} needs no action", ev.detail_type),
        });
    }
    const WHAT: &str = "S3 Object Created event";
    let bucket = req_obj(&ev.detail, "bucket", WHAT)?;
    let object = req_obj(&ev.detail, "object", WHAT)?;
    let bucket = parse_bucket(req_str(bucket, "name", WHAT)?)?;
    let key = parse_key(req_str(object, "key", WHAT)?)?;
    Ok(Inbound::S3ObjectCreated(ObjectCreated {
        bucket,
        key,
        size: opt_u64(object, "size", WHAT)?,
        etag: opt_str(object, "etag", WHAT)?,
        version_id: opt_str(object, "version-id", WHAT)?,
        sequencer: opt_str(object, "sequencer", WHAT)?,
        event_time: (!ev.time.is_empty()).then(|| ev.time.clone()),
        reason: opt_str(&ev.detail, "reason", WHAT)?,
    }))
}

/// The notification form: `{"Records": [...]}`, one `Inbound` per record. Non-creation records
/// (`ObjectRemoved:*`, `ObjectRestore:*`, ...) are `Ignored`.
pub(crate) fn from_records(records: &[Value]) -> Result<Vec<Inbound>, InboundError> {
    const WHAT: &str = "S3 notification record";
    if records.is_empty() {
        return Ok(vec![Inbound::Ignored {
            reason: "S3 notification with no records".into(),
        }]);
    }
    let mut out = Vec::with_capacity(records.len());
    for (i, rec) in records.iter().enumerate() {
        let source = rec.get("eventSource").and_then(Value::as_str).unwrap_or("");
        if source != NOTIFICATION_EVENT_SOURCE {
            return Err(InboundError::UnknownShape(format!(
                "Records[{i}] has eventSource {source:?}, expected {NOTIFICATION_EVENT_SOURCE:?}"
            )));
        }
        let name = req_str(rec, "eventName", WHAT)?;
        let Some(action) = name.strip_prefix("ObjectCreated:") else {
            let key = rec
                .pointer("/s3/object/key")
                .and_then(Value::as_str)
                .unwrap_or("?");
            out.push(Inbound::Ignored {
                reason: format!("S3 {name} of {key:?} needs no action"),
            });
            continue;
        };
        let s3 = req_obj(rec, "s3", WHAT)?;
        let bucket = req_obj(s3, "bucket", WHAT)?;
        let object = req_obj(s3, "object", WHAT)?;
        out.push(Inbound::S3ObjectCreated(ObjectCreated {
            bucket: parse_bucket(req_str(bucket, "name", WHAT)?)?,
            key: parse_key(req_str(object, "key", WHAT)?)?,
            size: opt_u64(object, "size", WHAT)?,
            etag: opt_str(object, "eTag", WHAT)?,
            version_id: opt_str(object, "versionId", WHAT)?,
            sequencer: opt_str(object, "sequencer", WHAT)?,
            event_time: opt_str(rec, "eventTime", WHAT)?,
            reason: Some(reason_for_action(action)),
        }));
    }
    Ok(out)
}

/// Notification `eventName` suffix to the EventBridge `reason` vocabulary.
fn reason_for_action(action: &str) -> String {
    match action {
        "Put" => "PutObject".into(),
        "Post" => "POST Object".into(),
        "Copy" => "CopyObject".into(),
        other => other.into(), // CompleteMultipartUpload is the same word in both forms
    }
}

fn parse_bucket(name: &str) -> Result<BucketName, InboundError> {
    BucketName::parse(name).map_err(|e| InboundError::Invalid {
        what: "S3 bucket name",
        why: e.to_string(),
    })
}

fn parse_key(raw: &str) -> Result<ObjectKey, InboundError> {
    ObjectKey::from_url_encoded(raw).map_err(|e| InboundError::Invalid {
        what: "S3 object key",
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_key_inverts_from_url_encoded() {
        for raw in [
            "in/my movie (1).mxf",
            "a+b%20c.mov",
            "café/ünï code.mp4",
            "x&y=z?.ts",
            "plain/key.mp4",
        ] {
            let key = ObjectKey::parse(raw).unwrap();
            let enc = encode_key(&key);
            assert!(!enc.contains(' '), "{enc}");
            assert_eq!(ObjectKey::from_url_encoded(&enc).unwrap(), key, "{enc}");
        }
        assert_eq!(
            encode_key(&ObjectKey::parse("in/my movie+1.mp4").unwrap()),
            "in/my+movie%2B1.mp4"
        );
    }

    #[test]
    fn entry_carries_the_eventbridge_shape() {
        let mut o = ObjectCreated::new(
            BucketName::parse("ingest-1").unwrap(),
            ObjectKey::parse("in/a b.mxf").unwrap(),
        );
        o.size = Some(42);
        let e = object_created_entry(&o, Some(1_000));
        assert_eq!(e.source, "aws.s3");
        assert_eq!(e.detail_type, "Object Created");
        assert_eq!(e.resources, vec!["arn:aws:s3:::ingest-1".to_string()]);
        let d: Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(
            d,
            json!({"version": "0", "bucket": {"name": "ingest-1"}, "object": {"key": "in/a+b.mxf", "size": 42}})
        );
    }
}
