//! The picture levels the engine's video detectors read from each frame of their small
//! analysis copy, computed from the raw 8-bit YUV 4:2:0 frames FFmpeg pipes out (here rather
//! than in the engine because this crate is optimised even in debug builds: the meter reads
//! every pixel of every frame).
//!
//! They are the values of FFmpeg's `signalstats` filter for the same frame (the detectors were
//! tuned on them): the mean of each plane, the 10th and 90th percentile of each plane's
//! histogram, the luma maximum, the mean absolute luma difference from the previous frame and
//! the mean chroma saturation (the distance of (U, V) from neutral, truncated to an integer as
//! signalstats stores it). Means are rounded to six significant digits, as signalstats prints
//! them (`%g`). `signalstats` also works out every chroma pixel's hue with a trigonometric
//! function, which none of the detectors reads; at 160x90 that alone costs about half of a
//! decode of the proxy. No I/O here.

/// One frame's levels (8-bit limited-range code values).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FrameLevels {
    pub y_low: f64,
    pub y_avg: f64,
    pub y_high: f64,
    pub y_max: f64,
    pub u_low: f64,
    pub u_avg: f64,
    pub u_high: f64,
    pub v_low: f64,
    pub v_avg: f64,
    pub v_high: f64,
    pub sat_avg: f64,
    /// Mean absolute luma difference from the previous frame (0 for the first frame).
    pub y_dif: f64,
}

impl FrameLevels {
    /// The signature the scene grouping compares: where the dark, middle and bright tenths of
    /// luma and of each chroma plane lie, and the mean saturation.
    pub fn signature(&self) -> Vec<f64> {
        vec![
            self.y_low,
            self.y_avg,
            self.y_high,
            self.u_low,
            self.u_avg,
            self.u_high,
            self.v_low,
            self.v_avg,
            self.v_high,
            self.sat_avg,
        ]
    }
}

/// Measures the frames of one video of a fixed size, in decode order.
pub struct LevelMeter {
    width: usize,
    height: usize,
    chroma_width: usize,
    chroma_height: usize,
    previous_luma: Option<Vec<u8>>,
    /// Saturation of every (U, V) pair: `sat[u * 256 + v]`.
    saturation: Vec<u8>,
}

impl LevelMeter {
    pub fn new(width: usize, height: usize) -> Self {
        let saturation = (0..256 * 256)
            .map(|i| {
                let (u, v) = ((i / 256) as f64 - 128.0, (i % 256) as f64 - 128.0);
                u.hypot(v) as u8
            })
            .collect();
        LevelMeter {
            width,
            height,
            chroma_width: width.div_ceil(2),
            chroma_height: height.div_ceil(2),
            previous_luma: None,
            saturation,
        }
    }

    /// Bytes of one raw frame (the Y plane, then U, then V, without padding).
    pub fn frame_len(&self) -> usize {
        self.width * self.height + 2 * self.chroma_width * self.chroma_height
    }

    /// The levels of the next frame; `None` when `frame` is not `frame_len()` bytes.
    pub fn measure(&mut self, frame: &[u8]) -> Option<FrameLevels> {
        if frame.len() != self.frame_len() {
            return None;
        }
        let luma_len = self.width * self.height;
        let chroma_len = self.chroma_width * self.chroma_height;
        let (luma, chroma) = frame.split_at(luma_len);
        let (u_plane, v_plane) = chroma.split_at(chroma_len);

        let hist_y = histogram(luma);
        // At most 255 per pixel: a u32 holds the sum of 16 million pixels.
        let diff: u32 = match &self.previous_luma {
            Some(prev) => luma
                .iter()
                .zip(prev)
                .map(|(&a, &b)| a.abs_diff(b) as u32)
                .sum(),
            None => 0,
        };
        match &mut self.previous_luma {
            Some(prev) => prev.copy_from_slice(luma),
            None => self.previous_luma = Some(luma.to_vec()),
        }
        let hist_u = histogram(u_plane);
        let hist_v = histogram(v_plane);
        let sat_total: u64 = u_plane
            .iter()
            .zip(v_plane)
            .map(|(&u, &v)| self.saturation[((u as usize) << 8) | v as usize] as u64)
            .sum();
        let (y_low, y_avg, y_high, y_max) = plane_levels(&hist_y, luma_len);
        let (u_low, u_avg, u_high, _) = plane_levels(&hist_u, chroma_len);
        let (v_low, v_avg, v_high, _) = plane_levels(&hist_v, chroma_len);
        Some(FrameLevels {
            y_low,
            y_avg,
            y_high,
            y_max,
            u_low,
            u_avg,
            u_high,
            v_low,
            v_avg,
            v_high,
            sat_avg: six_digits(sat_total as f64 / chroma_len as f64),
            y_dif: six_digits(diff as f64 / luma_len as f64),
        })
    }
}

/// The histogram of a plane, counted in four interleaved tables so that runs of equal values
/// (flat pictures are common) do not wait on one counter.
fn histogram(plane: &[u8]) -> [u32; 256] {
    let mut h = [[0u32; 256]; 4];
    let mut quads = plane.chunks_exact(4);
    for q in &mut quads {
        h[0][q[0] as usize] += 1;
        h[1][q[1] as usize] += 1;
        h[2][q[2] as usize] += 1;
        h[3][q[3] as usize] += 1;
    }
    for &p in quads.remainder() {
        h[0][p as usize] += 1;
    }
    let mut out = [0u32; 256];
    for (i, o) in out.iter_mut().enumerate() {
        *o = h[0][i] + h[1][i] + h[2][i] + h[3][i];
    }
    out
}

/// (10th percentile, mean, 90th percentile, maximum) of a plane's histogram. A percentile is
/// the first level at which the running count reaches that share of the pixels (rounded to
/// the nearest pixel, ties to even, as `lrint` does).
fn plane_levels(hist: &[u32; 256], pixels: usize) -> (f64, f64, f64, f64) {
    let low_count = (pixels as f64 * 10.0 / 100.0).round_ties_even() as u64;
    let high_count = (pixels as f64 * 90.0 / 100.0).round_ties_even() as u64;
    let (mut low, mut high, mut max) = (None, None, 0usize);
    let mut running = 0u64;
    let mut total = 0u64;
    for (level, &n) in hist.iter().enumerate() {
        if n > 0 {
            max = level;
        }
        running += n as u64;
        total += n as u64 * level as u64;
        if low.is_none() && running >= low_count {
            low = Some(level);
        }
        if high.is_none() && running >= high_count {
            high = Some(level);
        }
    }
    (
        low.unwrap_or(0) as f64,
        six_digits(total as f64 / pixels.max(1) as f64),
        high.unwrap_or(0) as f64,
        max as f64,
    )
}

/// `v` rounded to six significant digits (C's `%g`).
fn six_digits(v: f64) -> f64 {
    format!("{v:.5e}").parse().unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_of_a_flat_frame_and_a_change() {
        let mut m = LevelMeter::new(4, 2);
        assert_eq!(m.frame_len(), 8 + 2 * 2);
        // Luma 16 everywhere, neutral chroma.
        let mut frame = vec![16u8; 8];
        frame.extend([128u8; 4]);
        let a = m.measure(&frame).unwrap();
        assert_eq!(
            (a.y_low, a.y_avg, a.y_high, a.y_max),
            (16.0, 16.0, 16.0, 16.0)
        );
        assert_eq!((a.sat_avg, a.y_dif), (0.0, 0.0));
        // Half the luma to 235, chroma (128+3, 128+4): saturation 5.
        let mut frame = vec![16u8, 16, 16, 16, 235, 235, 235, 235];
        frame.extend([131u8, 131, 132, 132]);
        let b = m.measure(&frame).unwrap();
        assert_eq!((b.y_low, b.y_high, b.y_max), (16.0, 235.0, 235.0));
        assert_eq!(b.y_avg, 125.5);
        assert_eq!(b.y_dif, (235.0 - 16.0) / 2.0);
        assert_eq!(b.sat_avg, 5.0);
        assert_eq!((b.u_avg, b.v_avg), (131.0, 132.0));
        assert!(m.measure(&frame[1..]).is_none());
    }

    #[test]
    fn means_have_six_significant_digits() {
        assert_eq!(six_digits(126.34097222), 126.341);
        assert_eq!(six_digits(0.6694444), 0.669444);
        assert_eq!(six_digits(0.0), 0.0);
    }
}
