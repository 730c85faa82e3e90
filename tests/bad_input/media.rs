//! Bad media, made by real FFmpeg from lavfi sources (or cut from media it made), kept tiny.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run `ffmpeg -v error -y <args>` and fail the test with its stderr if it fails.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new(std::env::var("CUEPOINT_FFMPEG").unwrap_or_else(|_| "ffmpeg".into()))
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("run ffmpeg (is FFmpeg installed?)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// `seconds` of 160x90 test pattern with a mono tone, H.264 + AAC, `moov` first
/// (`+faststart`, as web uploads are): a reader knows the full duration from the first bytes.
pub fn faststart_mp4(dir: &Path, seconds: u32) -> PathBuf {
    let path = dir.join("faststart.mp4");
    let d = seconds.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=s=160x90:r=25:d={d}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=f=440:r=48000:d={d}"),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-movflags",
        "+faststart",
        s(&path),
    ]);
    path
}

/// The first half of `src`'s bytes, as an interrupted upload leaves it.
pub fn first_half(src: &Path, dest: &Path) -> PathBuf {
    let bytes = std::fs::read(src).expect("read media");
    std::fs::write(dest, &bytes[..bytes.len() / 2]).expect("write half");
    dest.to_path_buf()
}

/// Deterministic noise (xorshift), no container at all.
pub fn garbage(dest: &Path, len: usize) -> PathBuf {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(dest, bytes).expect("write garbage");
    dest.to_path_buf()
}

/// 3 s of mono tone as 24-bit WAV.
pub fn wav(dir: &Path) -> PathBuf {
    let path = dir.join("tone.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=48000:d=3",
        "-c:a",
        "pcm_s24le",
        s(&path),
    ]);
    path
}

/// 3 s of mono tone as AAC in an M4A.
pub fn m4a(dir: &Path) -> PathBuf {
    let path = dir.join("tone.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=48000:d=3",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        s(&path),
    ]);
    path
}

fn srt(dir: &Path) -> PathBuf {
    let path = dir.join("subs.srt");
    std::fs::write(
        &path,
        "1\n00:00:00,500 --> 00:00:02,000\nHello\n\n2\n00:00:02,500 --> 00:00:03,500\nWorld\n",
    )
    .expect("write srt");
    path
}

/// Matroska holding a video stream and a subtitle stream, and no audio at all.
pub fn mkv_video_and_subtitles(dir: &Path) -> PathBuf {
    let path = dir.join("video+subs.mkv");
    let subs = srt(dir);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x90:r=25:d=4",
        "-i",
        s(&subs),
        "-map",
        "0:v",
        "-map",
        "1:s",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:s",
        "srt",
        s(&path),
    ]);
    path
}

/// Matroska holding only a subtitle stream (a data file, no picture, no sound).
pub fn mkv_subtitles_only(dir: &Path) -> PathBuf {
    let path = dir.join("subs-only.mkv");
    let subs = srt(dir);
    ffmpeg(&["-i", s(&subs), "-c:s", "srt", s(&path)]);
    path
}

/// A QuickTime file whose video sample entry carries a codec tag no decoder knows (`zzzz`
/// where the H.264 `avc1` was), next to a normal AAC track: ffprobe sees a 160x90 video
/// stream of codec "none" (tag zzzz), as with a camera codec this FFmpeg was built without.
pub fn mov_unknown_video_codec(dir: &Path) -> PathBuf {
    let normal = dir.join("normal.mov");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x90:r=25:d=3",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=48000:d=3",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-f",
        "mov",
        s(&normal),
    ]);
    let mut bytes = std::fs::read(&normal).expect("read mov");
    let at = bytes
        .windows(4)
        .position(|w| w == b"avc1")
        .expect("an avc1 sample entry");
    bytes[at..at + 4].copy_from_slice(b"zzzz");
    assert!(
        !bytes.windows(4).any(|w| w == b"avc1"),
        "exactly one avc1 sample entry expected"
    );
    let path = dir.join("unknown-codec.mov");
    std::fs::write(&path, bytes).expect("write mov");
    path
}
