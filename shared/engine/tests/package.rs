//! Packaging against real FFmpeg: every break is a key frame and a segment start in every
//! rendition (checked with ffprobe on the segments written), the playlists carry cue markers
//! there, the master describes the ladder, and a rotated phone video comes out upright.

use std::path::Path;

use cuepoint_core::packaging::{ladder_for_source, segment_starts, DEFAULT_LADDER};
use cuepoint_engine::package::{key_frame_times, package, PackageSpec, RenditionSpec};
use cuepoint_engine::*;

const FRAME: f64 = 1.0 / 25.0;

fn ladder(width: u32, height: u32) -> Vec<RenditionSpec> {
    ladder_for_source(&DEFAULT_LADDER, width, height)
        .into_iter()
        .map(|r| RenditionSpec {
            playlist_name: format!("index_{}.m3u8", r.name),
            width: r.width,
            height: r.height,
            max_bitrate: None,
        })
        .collect()
}

/// The first key frame of each segment, on the programme's clock (seconds from the first
/// segment's first frame).
async fn segment_key_frames(segments: &[std::path::PathBuf]) -> Vec<f64> {
    let mut first = None;
    let mut out = Vec::new();
    for s in segments {
        let k = key_frame_times(s).await.unwrap();
        let t = *k.first().expect("every segment starts with a key frame");
        let origin = *first.get_or_insert(t);
        out.push(t - origin);
    }
    out
}

#[tokio::test]
async fn every_break_is_a_key_frame_and_a_segment_start_in_every_rendition() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.mov");
    let spec = SampleSpec {
        duration: 20.0,
        width: 1280,
        height: 720,
        fps: 25,
        track_count: 2,
        active_tracks: vec![1],
        cuts: vec![4.0, 8.4],
        black_gaps: vec![],
        end_credits_from: None,
        x264_preset: "ultrafast".into(),
        ..SampleSpec::default()
    };
    generate_sample(&src, &spec).await.unwrap();
    let out_dir = dir.path().join("hls");
    let mut p = PackageSpec::new(&src, &out_dir);
    p.renditions = ladder(1280, 720);
    p.breaks = vec![8.4, 17.52, 13.0];
    p.segment_seconds = 6;
    p.x264_preset = "ultrafast".into();
    let out = package(&p, None).await.unwrap();
    assert_eq!(out.breaks, vec![8.4, 13.0, 17.52]);
    assert_eq!(out.renditions.len(), 3, "720p source: 720p, 480p, 360p");

    for r in &out.renditions {
        let name = r.playlist.display().to_string();
        for b in &out.breaks {
            assert!(
                r.boundaries.iter().any(|x| (x - b).abs() < FRAME / 2.0),
                "{name}: no segment boundary at {b} in {:?}",
                r.boundaries
            );
        }
        assert!(
            r.boundaries.windows(2).all(|w| w[1] - w[0] <= 6.0 + 1e-6),
            "{name}: {:?}",
            r.boundaries
        );
        // the key frame each segment starts with is the segment boundary, to the frame
        let keys = segment_key_frames(&r.segments).await;
        println!(
            "{name}: breaks {:?} boundaries {:?} segment key frames {keys:?}",
            out.breaks, r.boundaries
        );
        for (k, b) in keys.iter().zip(&r.boundaries) {
            assert!(
                (k - b).abs() < FRAME / 2.0,
                "{name}: key frame {k} vs segment start {b}"
            );
        }
        for b in &out.breaks {
            assert!(
                keys.iter().any(|k| (k - b).abs() < FRAME / 2.0),
                "{name}: no key frame at {b}: {keys:?}"
            );
        }
        let text = std::fs::read_to_string(&r.playlist).unwrap();
        assert_eq!(text.matches("#EXT-X-CUE-OUT:0").count(), 3, "{text}");
        assert_eq!(text.matches("#EXT-X-CUE-IN").count(), 3);
        assert_eq!(text.matches("SCTE35-OUT=0xFC").count(), 3);
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:"));
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
        assert!(text.contains("#EXT-X-ENDLIST"));
        // the marked segments start at the breaks
        let starts = segment_starts(&text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut seg = 0;
        let mut marked = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("#EXTINF") {
                if lines[i - 1] == "#EXT-X-CUE-IN" {
                    marked.push(starts[seg]);
                }
                seg += 1;
            }
        }
        assert_eq!(marked.len(), 3);
        for (m, b) in marked.iter().zip(&out.breaks) {
            assert!((m - b).abs() < FRAME / 2.0, "{name}: cue at {m}, break {b}");
        }
        assert!(r.bandwidth >= r.average_bandwidth && r.average_bandwidth > 0);
    }
    let master = std::fs::read_to_string(&out.master).unwrap();
    for (res, playlist) in [
        ("1280x720", "index_720p.m3u8"),
        ("854x480", "index_480p.m3u8"),
        ("640x360", "index_360p.m3u8"),
    ] {
        let line = master
            .lines()
            .position(|l| l == playlist)
            .map(|i| master.lines().nth(i - 1).unwrap())
            .unwrap_or_else(|| panic!("{playlist} missing: {master}"));
        for attr in [
            "BANDWIDTH=",
            "AVERAGE-BANDWIDTH=",
            "CODECS=\"avc1.6400",
            ",mp4a.40.2\"",
            "FRAME-RATE=25.000",
        ] {
            assert!(line.contains(attr), "{line}");
        }
        assert!(line.contains(&format!("RESOLUTION={res}")), "{line}");
    }
    // the ladder's renditions are what the master says
    for r in &out.renditions {
        let probe = probe_media(r.segments[0].to_str().unwrap()).await.unwrap();
        let v = probe.video.unwrap();
        assert_eq!((v.width, v.height), (r.width, r.height));
    }
}

#[tokio::test]
async fn a_rotated_phone_video_comes_out_upright() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("landscape.mov");
    let spec = SampleSpec {
        duration: 4.0,
        width: 640,
        height: 360,
        fps: 25,
        track_count: 1,
        active_tracks: vec![1],
        cuts: vec![],
        black_gaps: vec![],
        end_credits_from: None,
        x264_preset: "ultrafast".into(),
        ..SampleSpec::default()
    };
    generate_sample(&src, &spec).await.unwrap();
    // A phone records landscape pixels and a display matrix saying "turn a quarter".
    let rotated = dir.path().join("phone.mov");
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&src)
        .args(["-map", "0", "-c", "copy", "-metadata:s:v:0", "rotate=90"])
        .arg(&rotated)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let info = probe_media(rotated.to_str().unwrap()).await.unwrap();
    let v = info.video.unwrap();
    assert_eq!((v.width, v.height), (360, 640), "displayed upright");

    let mut p = PackageSpec::new(&rotated, dir.path().join("hls"));
    p.renditions = ladder(v.width, v.height);
    p.breaks = vec![2.0];
    p.x264_preset = "ultrafast".into();
    let out = package(&p, None).await.unwrap();
    assert_eq!(
        (out.renditions[0].width, out.renditions[0].height),
        (360, 640)
    );
    let seg = probe_media(out.renditions[0].segments[0].to_str().unwrap())
        .await
        .unwrap();
    let sv = seg.video.unwrap();
    assert_eq!((sv.width, sv.height), (360, 640), "portrait pixels");
    assert!(!has_rotation(&out.renditions[0].segments[0]).await);
}

async fn has_rotation(path: &Path) -> bool {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-of", "json"])
        .arg(path)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("\"rotation\"") || text.contains("\"rotate\"")
}
