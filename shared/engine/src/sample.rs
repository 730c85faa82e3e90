//! Synthetic media with a known answer, for `cuepoint demo`, the end-to-end tests and the
//! benchmark. Everything comes from lavfi sources in one FFmpeg run:
//!
//! - each shot shows a different test pattern (testsrc2, SMPTE bars, rgbtestsrc, testsrc,
//!   PAL bars, a recoloured variant), so every cut is a hard cut;
//! - black gaps are `color=black`, with digital silence on every track under them;
//! - optional rolling end credits: sparse white "words" scrolling up over black;
//! - active tracks carry a sine tone (a different pitch per track), the others `anullsrc`.
//!
//! All times are snapped to frame boundaries and the ground truth reports the snapped values.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::tools::run_ffmpeg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleContainer {
    /// QuickTime (moov atom at the end, as cameras write it).
    Mov,
    /// Matroska.
    Mkv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleAudioCodec {
    /// 24-bit PCM, 48 kHz.
    Pcm24,
    /// AAC-LC 96 kb/s, 48 kHz.
    Aac,
}

/// What to generate. Times in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleSpec {
    pub duration: f64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Number of mono audio tracks.
    pub track_count: u32,
    /// Tracks (1-based) that carry a tone; the rest are silent.
    pub active_tracks: Vec<u32>,
    /// Hard cuts between different content.
    pub cuts: Vec<f64>,
    /// Black, silent intervals `(start, end)`.
    pub black_gaps: Vec<(f64, f64)>,
    /// Rolling end credits from this time to the end.
    pub end_credits_from: Option<f64>,
    pub container: SampleContainer,
    pub audio_codec: SampleAudioCodec,
    /// x264 preset and CRF for the video.
    pub x264_preset: String,
    pub crf: u32,
}

impl Default for SampleSpec {
    /// The `cuepoint demo` asset: 60 s 1280x720 at 25 fps, 8 mono tracks with 1-2 active,
    /// 5 hard cuts, 2 s black silent gaps at 20 s and 40 s, end credits from 54 s.
    fn default() -> Self {
        SampleSpec {
            duration: 60.0,
            width: 1280,
            height: 720,
            fps: 25,
            track_count: 8,
            active_tracks: vec![1, 2],
            cuts: vec![5.0, 12.0, 28.0, 34.0, 47.0],
            black_gaps: vec![(20.0, 22.0), (40.0, 42.0)],
            end_credits_from: Some(54.0),
            container: SampleContainer::Mov,
            audio_codec: SampleAudioCodec::Pcm24,
            x264_preset: "veryfast".into(),
            crf: 23,
        }
    }
}

impl SampleSpec {
    /// A long asset with a cut every `cut_every` seconds, a 2 s black silent gap every
    /// `gap_every` seconds (placed between cuts) and no credits: the benchmark's shape.
    pub fn regular(duration: f64, width: u32, height: u32, cut_every: f64, gap_every: f64) -> Self {
        let mut gaps = Vec::new();
        let mut t = gap_every;
        while t + 2.0 < duration - 1.0 {
            gaps.push((t, t + 2.0));
            t += gap_every;
        }
        let mut cuts = Vec::new();
        let mut c = cut_every;
        while c < duration - 1.0 {
            // Keep cuts clear of the gaps (a cut inside black would be invisible).
            if gaps.iter().all(|(a, b)| c < a - 1.0 || c > b + 1.0) {
                cuts.push(c);
            }
            c += cut_every;
        }
        SampleSpec {
            duration,
            width,
            height,
            cuts,
            black_gaps: gaps,
            end_credits_from: None,
            ..SampleSpec::default()
        }
    }
}

/// The answer a perfect analysis would give for a generated sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub duration: f64,
    pub fps: f64,
    /// Hard cut times (content to different content), frame-aligned.
    pub cuts: Vec<f64>,
    /// Black, silent intervals `(start, end)`, frame-aligned.
    pub black_gaps: Vec<(f64, f64)>,
    /// Tracks carrying sound (1-based).
    pub active_tracks: Vec<u32>,
    pub track_count: u32,
    /// Rolling end credits `(start, end)`, when generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_credits: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    Content(usize),
    Black,
    Credits,
}

/// Generate `spec` at `path` (overwritten) and return its ground truth.
pub async fn generate_sample(path: &Path, spec: &SampleSpec) -> Result<GroundTruth, EngineError> {
    let (truth, graph, maps) = plan(spec)?;
    let mut args: Vec<OsString> = vec!["-y".into(), "-filter_complex".into(), graph.into()];
    for m in maps {
        args.extend(["-map".into(), m.into()]);
    }
    let gop = (spec.fps * 2).to_string();
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            &spec.x264_preset,
            "-crf",
            &spec.crf.to_string(),
            "-pix_fmt",
            "yuv420p",
            "-g",
            &gop,
        ]
        .map(OsString::from),
    );
    match spec.audio_codec {
        SampleAudioCodec::Pcm24 => args.extend(["-c:a", "pcm_s24le"].map(OsString::from)),
        SampleAudioCodec::Aac => args.extend(["-c:a", "aac", "-b:a", "96k"].map(OsString::from)),
    }
    args.extend(["-ar", "48000", "-ac", "1"].map(OsString::from));
    args.extend([
        "-f".into(),
        OsString::from(match spec.container {
            SampleContainer::Mov => "mov",
            SampleContainer::Mkv => "matroska",
        }),
    ]);
    args.push(path.as_os_str().to_owned());
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| EngineError::io("creating", parent, e))?;
    }
    run_ffmpeg(&args, truth.duration, &path.display().to_string(), None).await?;
    Ok(truth)
}

fn invalid(field: &'static str, detail: impl Into<String>) -> EngineError {
    EngineError::InvalidSpec {
        field,
        detail: detail.into(),
    }
}

/// Validate, snap to frames, and build the filter graph. Returns (truth, graph, map labels).
fn plan(spec: &SampleSpec) -> Result<(GroundTruth, String, Vec<String>), EngineError> {
    if spec.fps == 0 || spec.fps > 240 {
        return Err(invalid("fps", format!("{} is not in 1..=240", spec.fps)));
    }
    if spec.width < 16 || spec.height < 16 || spec.width % 2 == 1 || spec.height % 2 == 1 {
        return Err(invalid(
            "size",
            format!(
                "{}x{} must be even and at least 16x16",
                spec.width, spec.height
            ),
        ));
    }
    let fps = spec.fps as f64;
    let frames = |t: f64| (t * fps).round() as u64;
    let total = frames(spec.duration);
    if !(spec.duration.is_finite()) || total < 2 {
        return Err(invalid(
            "duration",
            format!("{} s is too short", spec.duration),
        ));
    }
    if spec.track_count == 0 && !spec.active_tracks.is_empty() {
        return Err(invalid("active_tracks", "there are no tracks"));
    }
    let mut active = spec.active_tracks.clone();
    active.sort_unstable();
    active.dedup();
    if let Some(bad) = active.iter().find(|t| **t == 0 || **t > spec.track_count) {
        return Err(invalid(
            "active_tracks",
            format!("track {bad} is not in 1..={}", spec.track_count),
        ));
    }

    let mut gaps: Vec<(u64, u64)> = Vec::new();
    for &(a, b) in &spec.black_gaps {
        let (fa, fb) = (frames(a), frames(b));
        if !(a.is_finite() && b.is_finite()) || fa >= fb || fb > total {
            return Err(invalid(
                "black_gaps",
                format!("({a}, {b}) is not inside 0..{} s", spec.duration),
            ));
        }
        gaps.push((fa, fb));
    }
    gaps.sort_unstable();
    if gaps.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err(invalid("black_gaps", "gaps overlap"));
    }
    let credits = match spec.end_credits_from {
        Some(t) => {
            let f = frames(t);
            if f == 0 || f >= total {
                return Err(invalid(
                    "end_credits_from",
                    format!("{t} s is not inside the clip"),
                ));
            }
            if gaps.iter().any(|(_, b)| *b > f) {
                return Err(invalid(
                    "end_credits_from",
                    "a black gap runs into the credits",
                ));
            }
            Some(f)
        }
        None => None,
    };
    let mut cuts: Vec<u64> = Vec::new();
    for &c in &spec.cuts {
        let f = frames(c);
        if !c.is_finite() || f == 0 || f >= total {
            return Err(invalid("cuts", format!("{c} s is not inside the clip")));
        }
        if gaps.iter().any(|(a, b)| f >= *a && f <= *b) || credits.is_some_and(|cf| f >= cf) {
            return Err(invalid(
                "cuts",
                format!("{c} s falls in a black gap or the credits"),
            ));
        }
        cuts.push(f);
    }
    cuts.sort_unstable();
    cuts.dedup();

    // Video pieces between all boundaries.
    let mut bounds: Vec<u64> = vec![0, total];
    bounds.extend(&cuts);
    for (a, b) in &gaps {
        bounds.extend([*a, *b]);
    }
    bounds.extend(credits);
    bounds.sort_unstable();
    bounds.dedup();
    let mut pieces: Vec<(u64, u64, Piece)> = Vec::new();
    let mut content = 0usize;
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        let kind = if gaps.iter().any(|(ga, gb)| a >= *ga && b <= *gb) {
            Piece::Black
        } else if credits.is_some_and(|cf| a >= cf) {
            Piece::Credits
        } else {
            content += 1;
            Piece::Content(content - 1)
        };
        pieces.push((a, b, kind));
    }

    let (w, h, r) = (spec.width, spec.height, spec.fps);
    let mut g = String::new();
    for (i, (a, b, kind)) in pieces.iter().enumerate() {
        let n = b - a;
        let src = match kind {
            Piece::Black => format!("color=c=black:s={w}x{h}:r={r}"),
            Piece::Credits => credits_source(w, h, r, n as f64 / fps),
            Piece::Content(k) => content_source(*k, w, h, r),
        };
        let _ = write!(g, "{src},trim=end_frame={n},format=yuv420p,setsar=1[v{i}];");
    }
    for i in 0..pieces.len() {
        let _ = write!(g, "[v{i}]");
    }
    let _ = write!(g, "concat=n={}:v=1:a=0[vout]", pieces.len());
    let mut maps = vec!["[vout]".to_string()];

    // Audio: silence under the gaps on every track.
    let sample_at = |frame: u64| frame * 48_000 / spec.fps as u64;
    let total_samples = sample_at(total);
    for track in 1..=spec.track_count {
        g.push(';');
        if active.contains(&track) {
            let freq = 330 + 110 * track;
            let mut segs: Vec<(u64, u64, bool)> = Vec::new();
            let mut pos = 0u64;
            for (a, b) in &gaps {
                if *a > pos {
                    segs.push((sample_at(pos), sample_at(*a), true));
                }
                segs.push((sample_at(*a), sample_at(*b), false));
                pos = *b;
            }
            if pos < total {
                segs.push((sample_at(pos), total_samples, true));
            }
            for (j, (s0, s1, tone)) in segs.iter().enumerate() {
                let src = if *tone {
                    format!("sine=f={freq}:r=48000")
                } else {
                    "anullsrc=r=48000:cl=mono".into()
                };
                let _ = write!(g, "{src},atrim=end_sample={},aformat=sample_fmts=s32:channel_layouts=mono[t{track}s{j}];", s1 - s0);
            }
            for j in 0..segs.len() {
                let _ = write!(g, "[t{track}s{j}]");
            }
            let _ = write!(g, "concat=n={}:v=0:a=1[a{track}]", segs.len());
        } else {
            let _ = write!(
                g,
                "anullsrc=r=48000:cl=mono,atrim=end_sample={total_samples}[a{track}]"
            );
        }
        maps.push(format!("[a{track}]"));
    }

    let secs = |f: u64| f as f64 / fps;
    let truth = GroundTruth {
        duration: secs(total),
        fps,
        cuts: cuts.iter().map(|f| secs(*f)).collect(),
        black_gaps: gaps.iter().map(|(a, b)| (secs(*a), secs(*b))).collect(),
        active_tracks: active,
        track_count: spec.track_count,
        end_credits: credits.map(|f| (secs(f), secs(total))),
    };
    Ok((truth, g, maps))
}

/// Test patterns that differ from each other in layout and colour, cycled shot by shot.
fn content_source(k: usize, w: u32, h: u32, r: u32) -> String {
    match k % 6 {
        0 => format!("testsrc2=s={w}x{h}:r={r}"),
        1 => format!("smptehdbars=s={w}x{h}:r={r}"),
        2 => format!("testsrc2=s={w}x{h}:r={r},hue=h=120:s=1.5,vflip"),
        3 => format!("rgbtestsrc=s={w}x{h}:r={r}"),
        4 => format!("testsrc=s={w}x{h}:r={r}"),
        // (Not testsrc2 negated + mirrored: its bars come out in the same order.)
        _ => format!("pal75bars=s={w}x{h}:r={r}"),
    }
}

/// Rolling credits without a font: rows of white "words" (boxes) on a tall black canvas,
/// scrolled up by a crop whose offset follows time.
fn credits_source(w: u32, h: u32, r: u32, seconds: f64) -> String {
    let speed = (h as f64 / 5.0).max(1.0); // one screen height every 5 s
    let canvas_h = even(h as f64 * 2.0 + speed * seconds + 2.0);
    let line_h = (h / 45).max(2);
    let pitch = (h / 8).max(line_h * 3);
    let mut s = format!("color=c=black:s={w}x{canvas_h}:r={r}");
    let mut seed: u32 = 0x2545_f491;
    let mut rand = move |m: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed % m.max(1)
    };
    // The first line starts low on the first frame: credits are visible from their first frame.
    let mut y = h * 3 / 4;
    while y + line_h < canvas_h {
        let words = 2 + rand(3);
        let line_w = w / 5 + rand(w / 5);
        let mut x = (w - line_w) / 2;
        for _ in 0..words {
            let word_w = (line_w / words).saturating_sub(w / 80).max(2);
            let _ = write!(
                s,
                ",drawbox=x={x}:y={y}:w={word_w}:h={line_h}:color=white:t=fill"
            );
            x += line_w / words;
        }
        y += pitch;
    }
    let _ = write!(
        s,
        ",crop={w}:{h}:0:'min(t*{speed:.3}\\,{max})'",
        max = canvas_h - h
    );
    s
}

fn even(x: f64) -> u32 {
    let v = x.ceil() as u32;
    v + (v % 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_plans_and_snaps() {
        let (truth, graph, maps) = plan(&SampleSpec::default()).unwrap();
        assert_eq!(truth.duration, 60.0);
        assert_eq!(truth.cuts, vec![5.0, 12.0, 28.0, 34.0, 47.0]);
        assert_eq!(truth.black_gaps, vec![(20.0, 22.0), (40.0, 42.0)]);
        assert_eq!(truth.end_credits, Some((54.0, 60.0)));
        assert_eq!(maps.len(), 9);
        assert!(graph.contains("concat=n=11:v=1:a=0[vout]"), "{graph}");
        assert!(graph.contains("anullsrc=r=48000:cl=mono,atrim=end_sample=2880000[a8]"));
    }

    #[test]
    fn rejects_bad_specs() {
        let bad_cut = SampleSpec {
            cuts: vec![21.0],
            ..SampleSpec::default()
        };
        assert!(plan(&bad_cut)
            .unwrap_err()
            .to_string()
            .contains("black gap"));
        let bad_track = SampleSpec {
            active_tracks: vec![9],
            ..SampleSpec::default()
        };
        assert!(plan(&bad_track)
            .unwrap_err()
            .to_string()
            .contains("track 9"));
        let odd = SampleSpec {
            width: 321,
            ..SampleSpec::default()
        };
        assert!(plan(&odd).is_err());
    }

    #[test]
    fn regular_spec_keeps_cuts_out_of_gaps() {
        let s = SampleSpec::regular(600.0, 1920, 1080, 40.0, 150.0);
        assert_eq!(s.black_gaps.len(), 3);
        assert!(plan(&s).is_ok());
        assert!(s.cuts.len() >= 11, "{:?}", s.cuts);
    }
}
