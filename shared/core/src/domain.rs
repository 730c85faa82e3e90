//! Validated newtypes for the values that cross cuepoint's boundary.
//!
//! An invalid asset id, bucket name or object key cannot exist past `parse`.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid asset id {0:?}: expected 1-64 characters of [A-Za-z0-9_-]")]
    AssetId(String),
    #[error("invalid bucket name {0:?}: expected 3-63 characters of [a-z0-9.-], starting and ending with a letter or digit")]
    Bucket(String),
    #[error("invalid object key {key:?}: {why}")]
    Key { key: String, why: &'static str },
    #[error("invalid S3 URI {0:?}: expected s3://bucket/key")]
    S3Uri(String),
}

/// Identifies one asset for its whole life. Derived from the source object so that the same
/// upload (redelivered or duplicated) always maps to the same asset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AssetId(String);

impl AssetId {
    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(DomainError::AssetId(s))
        }
    }

    /// The asset id of a source object: `a` + the first 20 hex digits of
    /// SHA-256(bucket, key, version id or etag). Same upload, same id; a new version of the same
    /// key is a new asset.
    pub fn for_source(source: &SourceObject) -> Self {
        let mut h = Sha256::new();
        h.update(source.bucket.as_str().as_bytes());
        h.update([0]);
        h.update(source.key.as_str().as_bytes());
        h.update([0]);
        h.update(source.version_id.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
        if source.version_id.is_none() {
            h.update(source.etag.as_deref().unwrap_or("").as_bytes());
        }
        let digest = h.finalize();
        let mut id = String::with_capacity(21);
        id.push('a');
        for b in &digest[..10] {
            id.push_str(&format!("{b:02x}"));
        }
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AssetId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<AssetId> for String {
    fn from(id: AssetId) -> String {
        id.0
    }
}

/// An S3 bucket name (the rules S3 enforces for new buckets, minus the IP-address rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketName(String);

impl BucketName {
    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        let b = s.as_bytes();
        let ok = (3..=63).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && !s.contains("..");
        if ok {
            Ok(Self(s))
        } else {
            Err(DomainError::Bucket(s))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl TryFrom<String> for BucketName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}
impl From<BucketName> for String {
    fn from(b: BucketName) -> String {
        b.0
    }
}

/// An S3 object key, already URL-decoded. Keys may hold any UTF-8 (spaces, unicode, `%`), but
/// not NUL, and at most 1024 bytes as in S3. Whether a key is safe as a *file path* is the
/// embedded blob store's concern (see [`ObjectKey::relative_path_segments`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let key = s.into();
        let why = if key.is_empty() {
            Some("empty")
        } else if key.len() > 1024 {
            Some("longer than 1024 bytes")
        } else if key.contains('\0') {
            Some("contains NUL")
        } else {
            None
        };
        match why {
            Some(why) => Err(DomainError::Key { key, why }),
            None => Ok(Self(key)),
        }
    }

    /// Decode a key as S3 puts it in event notifications: percent-encoded, with `+` for space.
    pub fn from_url_encoded(raw: &str) -> Result<Self, DomainError> {
        let spaced = raw.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map_err(|_| DomainError::Key {
                key: raw.to_string(),
                why: "percent-decodes to invalid UTF-8",
            })?;
        Self::parse(decoded.into_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's path segments if it is safe to map under a directory: no empty, `.` or `..`
    /// segment, no leading `/`, no backslash. `None` means the key would escape (or alias) its
    /// root and must be refused by any file-system backend.
    pub fn relative_path_segments(&self) -> Option<Vec<&str>> {
        if self.0.starts_with('/') || self.0.contains('\\') {
            return None;
        }
        let segs: Vec<&str> = self.0.split('/').collect();
        if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
            return None;
        }
        Some(segs)
    }

    /// The last path segment, e.g. `movie.mxf` for `in/movie.mxf`.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl TryFrom<String> for ObjectKey {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}
impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> String {
        k.0
    }
}

/// `s3://bucket/key` — the one way cuepoint names a blob, on AWS and in the embedded store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct S3Uri {
    pub bucket: BucketName,
    pub key: ObjectKey,
}

impl S3Uri {
    pub fn new(bucket: BucketName, key: ObjectKey) -> Self {
        Self { bucket, key }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| DomainError::S3Uri(s.to_string()))?;
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| DomainError::S3Uri(s.to_string()))?;
        Ok(Self {
            bucket: BucketName::parse(bucket)?,
            key: ObjectKey::parse(key)?,
        })
    }

    /// A sibling object under the same bucket: `join("hls/index.m3u8")` on `s3://b/out/a1/` etc.
    pub fn join(&self, rel: &str) -> Result<Self, DomainError> {
        let base = self.key.as_str().trim_end_matches('/');
        Ok(Self {
            bucket: self.bucket.clone(),
            key: ObjectKey::parse(format!("{base}/{rel}"))?,
        })
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}
impl TryFrom<String> for S3Uri {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<S3Uri> for String {
    fn from(u: S3Uri) -> String {
        u.to_string()
    }
}

/// The uploaded master file an asset was created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceObject {
    pub bucket: BucketName,
    pub key: ObjectKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl SourceObject {
    pub fn uri(&self) -> S3Uri {
        S3Uri::new(self.bucket.clone(), self.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(key: &str, version: Option<&str>, etag: Option<&str>) -> SourceObject {
        SourceObject {
            bucket: BucketName::parse("ingest-bucket").unwrap(),
            key: ObjectKey::parse(key).unwrap(),
            version_id: version.map(str::to_string),
            etag: etag.map(str::to_string),
            size: Some(1),
        }
    }

    #[test]
    fn asset_id_is_stable_and_distinguishes_versions() {
        let a = AssetId::for_source(&src("in/a.mp4", Some("v1"), Some("e")));
        assert_eq!(
            a,
            AssetId::for_source(&src("in/a.mp4", Some("v1"), Some("other-etag")))
        );
        assert_ne!(
            a,
            AssetId::for_source(&src("in/a.mp4", Some("v2"), Some("e")))
        );
        assert_ne!(
            a,
            AssetId::for_source(&src("in/b.mp4", Some("v1"), Some("e")))
        );
        assert_eq!(a.as_str().len(), 21);
        assert!(AssetId::parse(a.as_str()).is_ok());
        // without versioning the etag tells uploads apart
        assert_ne!(
            AssetId::for_source(&src("k", None, Some("e1"))),
            AssetId::for_source(&src("k", None, Some("e2")))
        );
    }

    #[test]
    fn asset_id_rejects_bad_input() {
        for bad in ["", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(AssetId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<AssetId>("\"a/b\"").is_err());
    }

    #[test]
    fn keys_decode_like_s3_notifications() {
        assert_eq!(
            ObjectKey::from_url_encoded("my+movie%281%29.mp4")
                .unwrap()
                .as_str(),
            "my movie(1).mp4"
        );
        assert_eq!(
            ObjectKey::from_url_encoded("up%2Fx.mp4").unwrap().as_str(),
            "up/x.mp4"
        );
        assert_eq!(
            ObjectKey::from_url_encoded("caf%C3%A9+%2B1.mov")
                .unwrap()
                .as_str(),
            "café +1.mov"
        );
        assert!(ObjectKey::from_url_encoded("%FF").is_err());
        assert!(ObjectKey::from_url_encoded("").is_err());
    }

    #[test]
    fn keys_that_escape_have_no_relative_path() {
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "/abs",
            "a//b",
            "a/./b",
            "a\\..\\b",
            "a/",
        ] {
            assert!(
                ObjectKey::parse(bad)
                    .unwrap()
                    .relative_path_segments()
                    .is_none(),
                "{bad}"
            );
        }
        assert_eq!(
            ObjectKey::parse("in/my movie é.mp4")
                .unwrap()
                .relative_path_segments()
                .unwrap(),
            vec!["in", "my movie é.mp4"]
        );
    }

    #[test]
    fn s3_uri_round_trips() {
        let u = S3Uri::parse("s3://out-bucket/assets/a1/hls/index.m3u8").unwrap();
        assert_eq!(u.bucket.as_str(), "out-bucket");
        assert_eq!(u.key.as_str(), "assets/a1/hls/index.m3u8");
        assert_eq!(u.to_string(), "s3://out-bucket/assets/a1/hls/index.m3u8");
        assert_eq!(
            S3Uri::parse("s3://b-1/x/")
                .unwrap()
                .join("y.json")
                .unwrap()
                .to_string(),
            "s3://b-1/x/y.json"
        );
        for bad in ["http://b/k", "s3://b", "s3://B/k", "s3://bb/"] {
            assert!(S3Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_rules() {
        assert!(BucketName::parse("cuepoint-ingest.1").is_ok());
        for bad in ["ab", "Upper", "-lead", "trail-", "a..b", "under_score"] {
            assert!(BucketName::parse(bad).is_err(), "{bad}");
        }
    }
}
