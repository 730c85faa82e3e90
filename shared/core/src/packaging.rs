//! Packaging for ad insertion, as pure functions: where the HLS segments of the ladder start
//! (a boundary exactly at every chosen break, on the frame grid), the cue markers a media
//! playlist carries at each break, the SCTE-35 message those markers hold, and the master
//! playlist over the renditions.
//!
//! MediaTailor inserts VOD ads only between segments, and skips a marker that is more than
//! 100 ms from a segment boundary; players and ad servers read the break from the playlist
//! tags. So a break is never moved to a boundary: the boundary is put at the break. The break's
//! time is the first frame after the cut, and every time here is a whole number of frames.

use std::fmt::Write as _;

/// An exact frame rate, `num/den` frames per second (25/1, 30000/1001...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u64,
    pub den: u64,
}

impl FrameRate {
    /// `"25/1"`, `"30000/1001"` or `"25"`; `None` for zero, negative or unparsable rates.
    pub fn parse(s: &str) -> Option<Self> {
        let (n, d) = match s.split_once('/') {
            Some((n, d)) => (n.trim().parse().ok()?, d.trim().parse().ok()?),
            None => (s.trim().parse().ok()?, 1),
        };
        (n > 0 && d > 0).then_some(FrameRate { num: n, den: d })
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// The time of frame `n`, seconds.
    pub fn time_of(self, frame: u64) -> f64 {
        frame as f64 * self.den as f64 / self.num as f64
    }

    /// The frame nearest to `t` seconds (never negative).
    pub fn frame_at(self, t: f64) -> u64 {
        if !t.is_finite() || t <= 0.0 {
            return 0;
        }
        (t * self.num as f64 / self.den as f64).round() as u64
    }

    /// Whole frames that fit in `seconds` (at least one).
    pub fn frames_in(self, seconds: f64) -> u64 {
        ((seconds * self.num as f64 / self.den as f64 + 1e-9).floor() as u64).max(1)
    }
}

/// Where the segments of every rendition start, in frames of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPlan {
    pub rate: FrameRate,
    /// The frames at which breaks start (sorted, distinct, inside the programme).
    pub break_frames: Vec<u64>,
    /// Segment starts: 0, every break, and the cadence (restarted at each break).
    pub boundaries: Vec<u64>,
    /// Frames in the programme.
    pub total_frames: u64,
}

impl SegmentPlan {
    /// Segments of `segment_seconds` (the cadence starts again at each break, so no segment is
    /// longer), with a boundary exactly at each break in `breaks` (seconds). Breaks at the very
    /// start or end, or beyond the programme, cannot start an ad break inside it and are left
    /// out; two breaks on the same frame are one.
    pub fn new(duration_s: f64, rate: FrameRate, segment_seconds: f64, breaks: &[f64]) -> Self {
        let total = rate.frame_at(duration_s).max(1);
        let step = rate.frames_in(segment_seconds);
        let mut break_frames: Vec<u64> = breaks
            .iter()
            .map(|t| rate.frame_at(*t))
            .filter(|f| *f > 0 && *f < total)
            .collect();
        break_frames.sort_unstable();
        break_frames.dedup();
        let mut boundaries = Vec::new();
        let anchors: Vec<u64> = std::iter::once(0)
            .chain(break_frames.iter().copied())
            .collect();
        for (i, start) in anchors.iter().enumerate() {
            let end = anchors.get(i + 1).copied().unwrap_or(total);
            let mut f = *start;
            while f < end {
                boundaries.push(f);
                f += step;
            }
        }
        SegmentPlan {
            rate,
            break_frames,
            boundaries,
            total_frames: total,
        }
    }

    /// Segment start times, seconds.
    pub fn boundary_times(&self) -> Vec<f64> {
        self.boundaries
            .iter()
            .map(|f| self.rate.time_of(*f))
            .collect()
    }

    /// Break times on the frame grid, seconds: what the VMAP and the cue markers say.
    pub fn break_times(&self) -> Vec<f64> {
        self.break_frames
            .iter()
            .map(|f| self.rate.time_of(*f))
            .collect()
    }

    /// The times to force key frames at (and to cut segments at) for an encoder that takes
    /// the first frame at or after each time: half a frame before each boundary, so rounding
    /// in the encoder's time base cannot push the key frame one frame late. The first frame is
    /// a key frame anyway and is left out.
    pub fn cut_times(&self) -> Vec<f64> {
        let half = 0.5 * self.rate.den as f64 / self.rate.num as f64;
        self.boundaries
            .iter()
            .filter(|f| **f > 0)
            .map(|f| self.rate.time_of(*f) - half)
            .collect()
    }

    /// The longest segment, seconds (what `#EXT-X-TARGETDURATION` must cover).
    pub fn longest_segment(&self) -> f64 {
        let mut ends: Vec<u64> = self.boundaries.iter().skip(1).copied().collect();
        ends.push(self.total_frames);
        self.boundaries
            .iter()
            .zip(ends)
            .map(|(s, e)| self.rate.time_of(e - s))
            .fold(0.0, f64::max)
    }
}

/// `-force_key_frames` / `-segment_times` value: comma-separated seconds, microsecond precision.
pub fn times_arg(times: &[f64]) -> String {
    let mut s = String::new();
    for (i, t) in times.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{t:.6}");
    }
    s
}

// ---- SCTE-35 ----

/// CRC-32/MPEG-2, the checksum closing a splice_info_section.
pub fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    let mut crc: u32 = 0xFFFF_FFFF;
    for b in bytes {
        crc ^= (*b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A SCTE-35 splice_info_section with a splice_insert that leaves the network (an ad break
/// starts) at `pts_90k` (90 kHz ticks of the programme, 33 bits), no break duration (VOD: the
/// ad decision server fills the break), event `event_id`.
pub fn splice_insert_out(event_id: u32, pts_90k: u64) -> Vec<u8> {
    let pts = pts_90k & 0x1_FFFF_FFFF;
    let mut cmd = Vec::with_capacity(15);
    cmd.extend_from_slice(&event_id.to_be_bytes());
    cmd.push(0x7F); // splice_event_cancel_indicator 0, reserved
                    // out_of_network 1, program_splice 1, duration 0, splice_immediate 0, reserved
    cmd.push(0xCF);
    // splice_time(): time_specified_flag 1, reserved, pts_time (33 bits)
    cmd.push(0xFE | ((pts >> 32) as u8 & 0x01));
    cmd.extend_from_slice(&((pts & 0xFFFF_FFFF) as u32).to_be_bytes());
    cmd.extend_from_slice(&0u16.to_be_bytes()); // unique_program_id
    cmd.push(0); // avail_num
    cmd.push(0); // avails_expected

    let mut body = vec![0u8]; // protocol_version
    body.extend_from_slice(&[0, 0, 0, 0, 0]); // not encrypted, pts_adjustment 0
    body.push(0); // cw_index
    let len = cmd.len() as u32;
    // tier 0xFFF, splice_command_length
    body.extend_from_slice(&[0xFF, 0xF0 | ((len >> 8) as u8 & 0x0F), len as u8]);
    body.push(0x05); // splice_insert
    body.extend_from_slice(&cmd);
    body.extend_from_slice(&0u16.to_be_bytes()); // descriptor_loop_length

    let section_length = body.len() + 4;
    let mut out = vec![
        0xFC,
        0x30 | ((section_length >> 8) as u8 & 0x0F),
        section_length as u8,
    ];
    out.extend_from_slice(&body);
    let crc = crc32_mpeg2(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// `0x...` upper-case hex, the form of `SCTE35-OUT`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::from("0x");
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

// ---- media playlists ----

/// Where the programme starts on the date line of `#EXT-X-PROGRAM-DATE-TIME` (a date range
/// needs one; a VOD programme has no wall clock, so a fixed origin keeps every rendition and
/// every packaging of the asset identical).
pub const PROGRAM_ORIGIN: &str = "2000-01-01T00:00:00.000Z";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CueError {
    #[error("media playlist line {line}: {why}")]
    Parse { line: usize, why: String },
    #[error("no segment of the media playlist starts at the break at {at:.3} s (nearest segment start {nearest:.3} s)")]
    NoBoundary { at: f64, nearest: f64 },
    #[error("the media playlist already carries cue markers")]
    AlreadyConditioned,
}

/// A media playlist's segments: (start seconds, duration seconds, index of the `#EXTINF` line).
fn segments(text: &str) -> Result<Vec<(f64, f64, usize)>, CueError> {
    let mut out = Vec::new();
    let mut at = 0.0f64;
    let mut pending: Option<(f64, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let d = rest
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite() && *d >= 0.0)
                .ok_or_else(|| CueError::Parse {
                    line: i + 1,
                    why: format!("bad #EXTINF duration in {line:?}"),
                })?;
            pending = Some((d, i));
        } else if !line.is_empty() && !line.starts_with('#') {
            let (d, idx) = pending.take().ok_or_else(|| CueError::Parse {
                line: i + 1,
                why: "segment without #EXTINF".into(),
            })?;
            out.push((at, d, idx));
            at += d;
        }
    }
    Ok(out)
}

/// Segment start times of a media playlist (from its `#EXTINF` durations), seconds.
pub fn segment_starts(text: &str) -> Result<Vec<f64>, CueError> {
    Ok(segments(text)?.into_iter().map(|(s, _, _)| s).collect())
}

/// `text` with the `#EXTINF` durations replaced by `durations` (one per segment, in order) and
/// `#EXT-X-TARGETDURATION` raised to cover the longest. Muxers time a segment from its
/// earliest packet, and the audio encoder's priming starts the first one a few milliseconds
/// before the first picture; the programme's clock is the picture's.
pub fn with_durations(text: &str, durations: &[f64]) -> Result<String, CueError> {
    let segs = segments(text)?;
    if segs.len() != durations.len() {
        return Err(CueError::Parse {
            line: 0,
            why: format!(
                "{} segments in the playlist, {} durations",
                segs.len(),
                durations.len()
            ),
        });
    }
    let target = durations
        .iter()
        .fold(0.0f64, |a, d| a.max(*d))
        .ceil()
        .max(1.0) as u64;
    let mut out = String::with_capacity(text.len());
    let mut k = 0;
    for line in text.lines() {
        if line.starts_with("#EXTINF:") {
            let title = line.split_once(',').map(|(_, t)| t).unwrap_or("");
            let _ = writeln!(out, "#EXTINF:{:.6},{title}", durations[k]);
            k += 1;
        } else if line.starts_with("#EXT-X-TARGETDURATION:") {
            let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// The seconds of a date `offset` seconds after [`PROGRAM_ORIGIN`], as its ISO 8601 form.
fn program_date(offset: f64) -> String {
    let ms = (offset.max(0.0) * 1000.0).round() as u64;
    let (s, ms) = (ms / 1000, ms % 1000);
    let (days, s) = (s / 86_400, s % 86_400);
    // January 2000 has 31 days; programmes longer than that are not VOD assets cuepoint takes.
    format!(
        "2000-01-{:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        1 + days,
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// The media playlist `text` with cue markers at every break in `breaks` (seconds, each the
/// start of a segment within `tolerance` seconds): on the segment that starts the break,
/// `#EXT-X-DATERANGE` (zero duration, `SCTE35-OUT` holding a splice_insert at the break), then
/// `#EXT-X-CUE-OUT:0` and `#EXT-X-CUE-IN` (an insertion point, the form MediaTailor reads for
/// VOD), all before the segment's `#EXTINF`. A `#EXT-X-PROGRAM-DATE-TIME` at
/// [`PROGRAM_ORIGIN`] goes before the first segment (date ranges require one). A break that is
/// not on a segment start is an error: it would be skipped downstream.
pub fn add_cue_markers(text: &str, breaks: &[f64], tolerance: f64) -> Result<String, CueError> {
    if text
        .lines()
        .any(|l| l.starts_with("#EXT-X-CUE-OUT") || l.starts_with("#EXT-X-DATERANGE"))
    {
        return Err(CueError::AlreadyConditioned);
    }
    let segs = segments(text)?;
    let first = segs.first().ok_or(CueError::Parse {
        line: 0,
        why: "the playlist lists no segments".into(),
    })?;
    // (line index of the #EXTINF to put tags before, tags)
    let mut inserts: Vec<(usize, Vec<String>)> = vec![(
        first.2,
        vec![format!("#EXT-X-PROGRAM-DATE-TIME:{PROGRAM_ORIGIN}")],
    )];
    let mut sorted: Vec<f64> = breaks.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup_by(|a, b| (*a - *b).abs() <= tolerance);
    for (n, at) in sorted.iter().enumerate() {
        let (start, _, line) = segs
            .iter()
            .min_by(|a, b| (a.0 - at).abs().total_cmp(&(b.0 - at).abs()))
            .copied()
            .unwrap_or(*first);
        if (start - at).abs() > tolerance {
            return Err(CueError::NoBoundary {
                at: *at,
                nearest: start,
            });
        }
        let id = n as u32 + 1;
        let pts = (start * 90_000.0).round() as u64;
        let tags = vec![
            format!(
                "#EXT-X-DATERANGE:ID=\"break-{id}\",START-DATE=\"{}\",DURATION=0,SCTE35-OUT={}",
                program_date(start),
                hex(&splice_insert_out(id, pts))
            ),
            "#EXT-X-CUE-OUT:0".to_string(),
            "#EXT-X-CUE-IN".to_string(),
        ];
        match inserts.iter_mut().find(|(l, _)| *l == line) {
            Some((_, t)) => t.extend(tags),
            None => inserts.push((line, tags)),
        }
    }
    let mut out = String::with_capacity(text.len() + 256 * inserts.len());
    for (i, line) in text.lines().enumerate() {
        if let Some((_, tags)) = inserts.iter().find(|(l, _)| *l == i) {
            for t in tags {
                out.push_str(t);
                out.push('\n');
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

// ---- the master playlist ----

/// One rendition of the ladder, as the master playlist describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The media playlist, relative to the master.
    pub uri: String,
    pub width: u32,
    pub height: u32,
    /// Peak segment bit rate, bits/s.
    pub bandwidth: u64,
    /// Mean bit rate over the programme, bits/s.
    pub average_bandwidth: u64,
    /// RFC 6381 codecs, e.g. `avc1.640028,mp4a.40.2`.
    pub codecs: String,
    pub frame_rate: f64,
}

/// Peak and average bit rates (bits/s) of segments given as (bytes, seconds).
pub fn bandwidths(segments: &[(u64, f64)]) -> (u64, u64) {
    let mut peak = 0.0f64;
    let (mut bytes, mut secs) = (0u64, 0.0f64);
    for (b, d) in segments {
        bytes += b;
        secs += d;
        if *d > 0.0 {
            peak = peak.max(*b as f64 * 8.0 / d);
        }
    }
    let avg = if secs > 0.0 {
        bytes as f64 * 8.0 / secs
    } else {
        0.0
    };
    (peak.ceil() as u64, avg.ceil() as u64)
}

/// H.264 High profile at `level` (e.g. 4.0 → `avc1.640028`), with AAC-LC audio when `audio`.
pub fn h264_codecs(level_idc: u8, audio: bool) -> String {
    let mut s = format!("avc1.6400{level_idc:02x}");
    if audio {
        s.push_str(",mp4a.40.2");
    }
    s
}

/// The lowest H.264 level (`level_idc`, 31 = 3.1) whose macroblock rate and frame size hold
/// `width`x`height` at `fps`.
pub fn h264_level(width: u32, height: u32, fps: f64) -> u8 {
    let mbs = (width.div_ceil(16) as u64) * (height.div_ceil(16) as u64);
    let rate = mbs as f64 * fps;
    // (level_idc, max macroblocks per second, max frame size in macroblocks)
    const LEVELS: [(u8, f64, u64); 10] = [
        (30, 40_500.0, 1_620),
        (31, 108_000.0, 3_600),
        (32, 216_000.0, 5_120),
        (40, 245_760.0, 8_192),
        (41, 245_760.0, 8_192),
        (42, 522_240.0, 8_704),
        (50, 589_824.0, 22_080),
        (51, 983_040.0, 36_864),
        (52, 2_073_600.0, 36_864),
        (60, 4_177_920.0, 139_264),
    ];
    LEVELS
        .iter()
        .find(|(_, r, f)| rate <= *r && mbs <= *f)
        .map(|(l, _, _)| *l)
        .unwrap_or(62)
}

/// The master playlist over `variants`, highest bandwidth first.
pub fn master_playlist(variants: &[Variant]) -> String {
    let mut v: Vec<&Variant> = variants.iter().collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.bandwidth));
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in v {
        let _ = writeln!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\",FRAME-RATE={:.3}\n{}",
            r.bandwidth.max(1),
            r.average_bandwidth.max(1),
            r.width,
            r.height,
            r.codecs,
            r.frame_rate,
            r.uri
        );
    }
    s
}

// ---- the ladder ----

/// One rung: a name (`720p`) and the picture size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    pub name: String,
    pub width: u32,
    pub height: u32,
}

/// The even number nearest to `x` (853.3 → 854), at least 2.
fn even(x: f64) -> u32 {
    ((x / 2.0).round().max(1.0) as u32) * 2
}

/// The rungs of `ladder` (the shorter side of each picture: 1080, 720...) a `width`x`height`
/// source (as displayed, rotation applied) can fill: none above the source. A source smaller
/// than every rung gets one rung at its own size. Sizes keep the source's aspect, even.
pub fn ladder_for_source(ladder: &[u32], width: u32, height: u32) -> Vec<Rung> {
    let short = width.min(height).max(2);
    let mut sizes: Vec<u32> = ladder.iter().copied().filter(|r| *r <= short).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes.dedup();
    if sizes.is_empty() {
        sizes.push(short - short % 2);
    }
    sizes
        .into_iter()
        .map(|r| {
            let scale = r as f64 / short as f64;
            let (w, h) = if width >= height {
                (even(width as f64 * scale), even(r as f64))
            } else {
                (even(r as f64), even(height as f64 * scale))
            };
            Rung {
                name: format!("{r}p"),
                width: w,
                height: h,
            }
        })
        .collect()
}

/// The ladder cuepoint packages by default (shorter side, pixels).
pub const DEFAULT_LADDER: [u32; 4] = [1080, 720, 480, 360];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PAL: FrameRate = FrameRate { num: 25, den: 1 };

    fn playlist(durations: &[f64]) -> String {
        let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
        for (i, d) in durations.iter().enumerate() {
            s.push_str(&format!("#EXTINF:{d:.6},\nseg_{i:05}.ts\n"));
        }
        s.push_str("#EXT-X-ENDLIST\n");
        s
    }

    #[test]
    fn boundaries_sit_exactly_at_breaks_and_the_cadence_restarts_there() {
        let p = SegmentPlan::new(30.0, PAL, 6.0, &[8.4, 28.52]);
        assert_eq!(p.break_frames, vec![210, 713]);
        assert_eq!(p.break_times(), vec![8.4, 28.52]);
        assert_eq!(
            p.boundary_times(),
            vec![0.0, 6.0, 8.4, 14.4, 20.4, 26.4, 28.52]
        );
        assert!((p.longest_segment() - 6.0).abs() < 1e-9);
        // half a frame early, so the frame at the break is the first at or after it
        assert_eq!(p.cut_times()[1], 8.38);
        assert_eq!(times_arg(&[8.38, 14.38]), "8.380000,14.380000");
    }

    #[test]
    fn breaks_are_put_on_the_frame_grid_and_kept_inside_the_programme() {
        let ntsc = FrameRate::parse("30000/1001").unwrap();
        let p = SegmentPlan::new(60.0, ntsc, 6.0, &[10.01, 10.02, 0.0, 60.0, 75.0, -1.0]);
        assert_eq!(p.break_frames, vec![300]);
        assert!((p.break_times()[0] - 10.01).abs() < 1e-9);
        assert_eq!(FrameRate::parse("0/1"), None);
        assert_eq!(FrameRate::parse("25"), Some(PAL));
    }

    #[test]
    fn cue_markers_precede_the_segment_that_starts_each_break() {
        let text = playlist(&[6.0, 2.4, 6.0, 6.0]);
        let out = add_cue_markers(&text, &[8.4], 0.02).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        let at = lines.iter().position(|l| *l == "seg_00002.ts").unwrap();
        assert_eq!(lines[at - 1], "#EXTINF:6.000000,");
        assert_eq!(lines[at - 2], "#EXT-X-CUE-IN");
        assert_eq!(lines[at - 3], "#EXT-X-CUE-OUT:0");
        assert!(lines[at - 4].starts_with(
            "#EXT-X-DATERANGE:ID=\"break-1\",START-DATE=\"2000-01-01T00:00:08.400Z\",DURATION=0,SCTE35-OUT=0xFC30"
        ));
        let first = lines.iter().position(|l| *l == "seg_00000.ts").unwrap();
        assert_eq!(
            lines[first - 2],
            "#EXT-X-PROGRAM-DATE-TIME:2000-01-01T00:00:00.000Z"
        );
        // segments and durations are untouched
        assert_eq!(
            segment_starts(&out).unwrap(),
            segment_starts(&text).unwrap()
        );
        assert_eq!(
            add_cue_markers(&out, &[8.4], 0.02),
            Err(CueError::AlreadyConditioned)
        );
        assert!(matches!(
            add_cue_markers(&text, &[9.0], 0.02),
            Err(CueError::NoBoundary { .. })
        ));
    }

    #[test]
    fn durations_are_replaced_in_order_and_the_target_covers_them() {
        let text = playlist(&[6.023222, 2.4, 4.6]);
        let out = with_durations(&text, &[6.0, 2.4, 6.5]).unwrap();
        assert_eq!(segment_starts(&out).unwrap(), vec![0.0, 6.0, 8.4]);
        assert!(out.contains("#EXT-X-TARGETDURATION:7\n"), "{out}");
        assert!(with_durations(&text, &[1.0]).is_err());
    }

    #[test]
    fn splice_insert_is_a_well_formed_section() {
        let s = splice_insert_out(1, 756_000);
        assert_eq!(s[0], 0xFC);
        let len = (((s[1] & 0x0F) as usize) << 8) | s[2] as usize;
        assert_eq!(len, s.len() - 3);
        assert_eq!(s[13], 0x05, "splice_insert");
        // a section with its CRC appended checks to zero
        assert_eq!(crc32_mpeg2(&s), 0);
        // pts_time of the splice_time
        let pts =
            ((s[20] as u64 & 1) << 32) | u32::from_be_bytes([s[21], s[22], s[23], s[24]]) as u64;
        assert_eq!(pts, 756_000);
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn master_playlist_names_every_attribute() {
        let v = Variant {
            uri: "index_720p.m3u8".into(),
            width: 1280,
            height: 720,
            bandwidth: 2_000_000,
            average_bandwidth: 1_500_000,
            codecs: h264_codecs(h264_level(1280, 720, 25.0), true),
            frame_rate: 25.0,
        };
        let low = Variant {
            uri: "index_360p.m3u8".into(),
            width: 640,
            height: 360,
            bandwidth: 500_000,
            average_bandwidth: 400_000,
            codecs: h264_codecs(h264_level(640, 360, 25.0), true),
            frame_rate: 25.0,
        };
        let m = master_playlist(&[low, v]);
        assert!(m.contains("#EXT-X-STREAM-INF:BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1500000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=25.000\nindex_720p.m3u8\n"), "{m}");
        assert!(m.find("720p").unwrap() < m.find("360p").unwrap());
        assert_eq!(h264_level(1920, 1080, 25.0), 40);
        assert_eq!(h264_level(1920, 1080, 60.0), 42);
        assert_eq!(
            bandwidths(&[(100_000, 1.0), (50_000, 1.0)]),
            (800_000, 600_000)
        );
    }

    #[test]
    fn the_ladder_never_goes_above_the_source() {
        let names = |l: Vec<Rung>| l.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(
            names(ladder_for_source(&DEFAULT_LADDER, 1280, 720)),
            ["720p", "480p", "360p"]
        );
        assert_eq!(
            names(ladder_for_source(&DEFAULT_LADDER, 1920, 1080)),
            ["1080p", "720p", "480p", "360p"]
        );
        let portrait = ladder_for_source(&DEFAULT_LADDER, 1080, 1920);
        assert_eq!(
            (portrait[1].width, portrait[1].height),
            (720, 1280),
            "a phone video stays upright"
        );
        let tiny = ladder_for_source(&DEFAULT_LADDER, 320, 180);
        assert_eq!((tiny.len(), tiny[0].width, tiny[0].height), (1, 320, 180));
        let wide = ladder_for_source(&DEFAULT_LADDER, 854, 480);
        assert_eq!((wide[0].width, wide[0].height), (854, 480));
    }

    proptest! {
        #[test]
        fn every_break_is_a_segment_start_and_no_segment_is_longer_than_the_cadence(
            duration in 2.0f64..600.0,
            seg in 1u32..10,
            breaks in proptest::collection::vec(0.0f64..700.0, 0..8),
            ntsc in any::<bool>(),
        ) {
            let rate = if ntsc { FrameRate { num: 30000, den: 1001 } } else { PAL };
            let p = SegmentPlan::new(duration, rate, seg as f64, &breaks);
            // strictly increasing, starting at 0, inside the programme
            prop_assert_eq!(p.boundaries[0], 0);
            prop_assert!(p.boundaries.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(p.boundaries.iter().all(|b| *b < p.total_frames));
            for b in &p.break_frames {
                prop_assert!(p.boundaries.contains(b));
            }
            prop_assert!(p.longest_segment() <= seg as f64 + 1e-9);
            // every break inside the programme (not on its first or last frame) is kept
            for t in &breaks {
                let f = rate.frame_at(*t);
                if f > 0 && f < p.total_frames {
                    prop_assert!(p.break_frames.contains(&f));
                }
            }
            // a playlist of these segments takes cue markers at every break, once each
            let mut ends: Vec<u64> = p.boundaries[1..].to_vec();
            ends.push(p.total_frames);
            let durs: Vec<f64> = p.boundaries.iter().zip(&ends).map(|(s, e)| rate.time_of(e - s)).collect();
            let text = playlist(&durs);
            let half = 0.5 / rate.as_f64();
            let out = add_cue_markers(&text, &p.break_times(), half).unwrap();
            prop_assert_eq!(out.matches("#EXT-X-CUE-OUT:0").count(), p.break_frames.len());
            prop_assert_eq!(out.matches("#EXT-X-CUE-IN").count(), p.break_frames.len());
            prop_assert_eq!(out.matches("SCTE35-OUT=0xFC").count(), p.break_frames.len());
            prop_assert_eq!(out.matches("#EXT-X-PROGRAM-DATE-TIME").count(), 1);
            prop_assert_eq!(segment_starts(&out).unwrap(), segment_starts(&text).unwrap());
            // each marker group sits right before the #EXTINF of the segment starting its break
            let lines: Vec<&str> = out.lines().collect();
            let starts = segment_starts(&out).unwrap();
            let mut seg_i = 0;
            for (i, l) in lines.iter().enumerate() {
                if l.starts_with("#EXTINF") {
                    if lines[i - 1] == "#EXT-X-CUE-IN" {
                        prop_assert_eq!(lines[i - 2], "#EXT-X-CUE-OUT:0");
                        let at = starts[seg_i];
                        prop_assert!(p.break_times().iter().any(|b| (b - at).abs() <= half));
                    }
                    seg_i += 1;
                }
            }
        }

        #[test]
        fn cue_markers_never_touch_the_segments(durs in proptest::collection::vec(0.04f64..8.0, 1..40), pick in any::<proptest::sample::Index>()) {
            let text = playlist(&durs);
            let starts = segment_starts(&text).unwrap();
            let at = starts[pick.index(starts.len())];
            let out = add_cue_markers(&text, &[at], 0.001).unwrap();
            let kept: Vec<&str> = out.lines().filter(|l| !l.starts_with("#EXT-X-CUE") && !l.starts_with("#EXT-X-DATERANGE") && !l.starts_with("#EXT-X-PROGRAM-DATE-TIME")).collect();
            prop_assert_eq!(kept, text.lines().collect::<Vec<_>>());
        }
    }
}
