//! Unique ids (message ids, receipt handles, event ids) without a random-number crate.
//!
//! 128 bits from SipHash with per-process random keys (std's `RandomState`, seeded from the OS)
//! over a process-wide counter, the process id and the wall-clock nanoseconds: unique within a
//! process by the counter, across processes by the random keys.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn keys() -> &'static std::collections::hash_map::RandomState {
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    KEYS.get_or_init(std::collections::hash_map::RandomState::new)
}

fn random_u128() -> u128 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h1 = keys().build_hasher();
    h1.write_u64(n);
    h1.write_u128(nanos);
    h1.write_u32(std::process::id());
    let a = h1.finish();
    let mut h2 = keys().build_hasher();
    h2.write_u64(a);
    h2.write_u64(n);
    h2.write_u8(0xa5);
    let b = h2.finish();
    ((a as u128) << 64) | b as u128
}

/// A UUID (version 4 layout), e.g. for message ids and EventBridge event ids.
pub fn new_uuid() -> String {
    let v = random_u128();
    let mut bytes = v.to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An opaque token (32 hex digits), e.g. a receipt handle or a temp-file suffix.
pub fn new_token() -> String {
    format!("{:032x}", random_u128())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_shaped_like_uuids() {
        let ids: HashSet<String> = (0..10_000).map(|_| new_uuid()).collect();
        assert_eq!(ids.len(), 10_000);
        let one = new_uuid();
        assert_eq!(one.len(), 36);
        assert_eq!(&one[14..15], "4");
        assert_eq!(new_token().len(), 32);
    }
}
