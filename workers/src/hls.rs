//! Reading HLS playlists back: where segment boundaries fall (breaks snap to them, because a
//! server-side inserter such as MediaTailor can only cut between segments).

use cuepoint_core::domain::S3Uri;
use cuepoint_runtime::ports::{BlobStore, PortError};

/// Boundaries (seconds) between the segments of the first media playlist under `master`,
/// including 0 and the end.
pub async fn segment_boundaries(blobs: &dyn BlobStore, master: &S3Uri) -> Result<Vec<f64>, PortError> {
    let Some(text) = blobs.get(master).await? else { return Ok(vec![]) };
    let text = String::from_utf8_lossy(&text);
    let media_text = if text.contains("#EXTINF") {
        text.into_owned()
    } else {
        let Some(variant) = first_variant(&text) else { return Ok(vec![]) };
        let dir = master.key.as_str().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let key = if dir.is_empty() { variant.to_string() } else { format!("{dir}/{variant}") };
        let uri = S3Uri::parse(&format!("s3://{}/{}", master.bucket, key)).map_err(|e| PortError::Permanent(e.to_string()))?;
        match blobs.get(&uri).await? {
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
            None => return Ok(vec![]),
        }
    };
    Ok(boundaries_from_media_playlist(&media_text))
}

/// The first variant URI of a master playlist.
pub fn first_variant(master: &str) -> Option<&str> {
    let mut lines = master.lines().map(str::trim);
    while let Some(l) = lines.next() {
        if l.starts_with("#EXT-X-STREAM-INF") {
            return lines.find(|l| !l.is_empty() && !l.starts_with('#'));
        }
    }
    None
}

/// Cumulative `#EXTINF` durations.
pub fn boundaries_from_media_playlist(media: &str) -> Vec<f64> {
    let mut t = 0.0;
    let mut out = vec![0.0];
    for l in media.lines() {
        if let Some(rest) = l.trim().strip_prefix("#EXTINF:") {
            let d: f64 = rest.split(',').next().and_then(|s| s.trim().parse().ok()).unwrap_or(0.0);
            t += d;
            out.push((t * 1_000_000.0).round() / 1_000_000.0);
        }
    }
    if out.len() == 1 {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_master_and_media() {
        let master = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nindex_0.m3u8\n";
        assert_eq!(first_variant(master), Some("index_0.m3u8"));
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.000000,\na0.ts\n#EXTINF:1.000000,\na1.ts\n#EXTINF:0.480000,\na2.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(boundaries_from_media_playlist(media), vec![0.0, 1.0, 2.0, 2.48]);
        assert!(boundaries_from_media_playlist("#EXTM3U\n").is_empty());
    }
}
