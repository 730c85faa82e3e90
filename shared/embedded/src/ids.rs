//! Unique ids (message ids, receipt handles, event ids): 128 random bits from `fastrand`
//! (seeded per thread from the OS's randomness), laid out as a version-4 UUID by `uuid`.

/// A UUID (version 4), e.g. for message ids and EventBridge event ids.
pub fn new_uuid() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

/// An opaque token (32 hex digits), e.g. a receipt handle or a temp-file suffix.
pub fn new_token() -> String {
    format!("{:032x}", fastrand::u128(..))
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
        assert!(matches!(&one[19..20], "8" | "9" | "a" | "b"), "{one}");
        let tokens: HashSet<String> = (0..10_000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 10_000);
        assert!(tokens.iter().all(|t| t.len() == 32));
    }

    #[test]
    fn threads_draw_different_ids() {
        let a = std::thread::spawn(|| (0..1000).map(|_| new_uuid()).collect::<Vec<_>>());
        let b = std::thread::spawn(|| (0..1000).map(|_| new_uuid()).collect::<Vec<_>>());
        let mut all: HashSet<String> = a.join().unwrap().into_iter().collect();
        all.extend(b.join().unwrap());
        assert_eq!(all.len(), 2000);
    }
}
