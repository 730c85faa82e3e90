//! S3 "Object Created": EventBridge form (`source: aws.s3`) and S3 notification form (`Records`).
//! OWNER: events helper (serde shapes, fixtures, tests). Public API below is relied on by workers.

use crate::domain::{BucketName, ObjectKey, SourceObject};

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
}

impl ObjectCreated {
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
