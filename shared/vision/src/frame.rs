//! RGB frames and the few resampling steps the models need.

/// One decoded picture: packed 8-bit RGB, row-major, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Frame {
    /// A frame of `width` x `height` from packed RGB bytes (`None` if the length is wrong).
    pub fn new(width: usize, height: usize, rgb: Vec<u8>) -> Option<Frame> {
        (width > 0 && height > 0 && rgb.len() == width * height * 3).then_some(Frame {
            width,
            height,
            rgb,
        })
    }

    /// A frame of one colour.
    pub fn filled(width: usize, height: usize, rgb: [u8; 3]) -> Frame {
        Frame {
            width,
            height,
            rgb: rgb
                .iter()
                .copied()
                .cycle()
                .take(width * height * 3)
                .collect(),
        }
    }

    /// Bilinear resize to `width` x `height` (pixel centres aligned, as most image libraries do).
    /// Shrinking by more than 2x averages boxes first so that fine detail does not alias.
    pub fn resize(&self, width: usize, height: usize) -> Frame {
        if width == self.width && height == self.height {
            return self.clone();
        }
        let fx = self.width / width.max(1);
        let fy = self.height / height.max(1);
        if fx >= 2 || fy >= 2 {
            return self.box_shrink(fx.max(1), fy.max(1)).resize(width, height);
        }
        let sx = self.width as f32 / width as f32;
        let sy = self.height as f32 / height as f32;
        let mut out = vec![0u8; width * height * 3];
        let xs: Vec<(usize, usize, f32)> =
            (0..width).map(|x| sample_pos(x, sx, self.width)).collect();
        for y in 0..height {
            let (y0, y1, wy) = sample_pos(y, sy, self.height);
            let r0 = &self.rgb[y0 * self.width * 3..(y0 + 1) * self.width * 3];
            let r1 = &self.rgb[y1 * self.width * 3..(y1 + 1) * self.width * 3];
            let row = &mut out[y * width * 3..(y + 1) * width * 3];
            for (x, &(x0, x1, wx)) in xs.iter().enumerate() {
                for c in 0..3 {
                    let a = r0[x0 * 3 + c] as f32 * (1.0 - wx) + r0[x1 * 3 + c] as f32 * wx;
                    let b = r1[x0 * 3 + c] as f32 * (1.0 - wx) + r1[x1 * 3 + c] as f32 * wx;
                    row[x * 3 + c] = (a * (1.0 - wy) + b * wy).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        Frame {
            width,
            height,
            rgb: out,
        }
    }

    /// Average `fx` x `fy` boxes (edges that do not fill a box are dropped).
    fn box_shrink(&self, fx: usize, fy: usize) -> Frame {
        let width = (self.width / fx).max(1);
        let height = (self.height / fy).max(1);
        let mut out = vec![0u8; width * height * 3];
        let n = (fx * fy) as u32;
        for y in 0..height {
            for x in 0..width {
                let mut acc = [0u32; 3];
                for dy in 0..fy {
                    let row = (y * fy + dy).min(self.height - 1) * self.width;
                    for dx in 0..fx {
                        let p = (row + (x * fx + dx).min(self.width - 1)) * 3;
                        for (a, v) in acc.iter_mut().zip(&self.rgb[p..p + 3]) {
                            *a += *v as u32;
                        }
                    }
                }
                for c in 0..3 {
                    out[(y * width + x) * 3 + c] = ((acc[c] + n / 2) / n) as u8;
                }
            }
        }
        Frame {
            width,
            height,
            rgb: out,
        }
    }

    /// The `width` x `height` rectangle at the centre (clamped to the frame).
    pub fn center_crop(&self, width: usize, height: usize) -> Frame {
        let width = width.min(self.width);
        let height = height.min(self.height);
        let left = (self.width - width) / 2;
        let top = (self.height - height) / 2;
        let mut rgb = Vec::with_capacity(width * height * 3);
        for y in top..top + height {
            let start = (y * self.width + left) * 3;
            rgb.extend_from_slice(&self.rgb[start..start + width * 3]);
        }
        Frame { width, height, rgb }
    }

    /// Scale so that the shorter side is `side`, then take the centred `side` x `side` square.
    pub fn square_center(&self, side: usize) -> Frame {
        let (w, h) = if self.width <= self.height {
            (
                side,
                (self.height * side + self.width / 2) / self.width.max(1),
            )
        } else {
            (
                (self.width * side + self.height / 2) / self.height.max(1),
                side,
            )
        };
        self.resize(w.max(side), h.max(side))
            .center_crop(side, side)
    }
}

/// Source pixels and weight for output pixel `i` at scale `s` (half-pixel centres).
fn sample_pos(i: usize, s: f32, len: usize) -> (usize, usize, f32) {
    let p = ((i as f32 + 0.5) * s - 0.5).max(0.0);
    let p0 = (p.floor() as usize).min(len - 1);
    let p1 = (p0 + 1).min(len - 1);
    (p0, p1, p - p0 as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_and_crop_keep_colour_and_size() {
        let f = Frame::filled(640, 360, [10, 200, 30]);
        let r = f.resize(256, 256);
        assert_eq!((r.width, r.height), (256, 256));
        assert!(r.rgb.chunks(3).all(|p| p == [10, 200, 30]));
        let s = f.square_center(224);
        assert_eq!((s.width, s.height, s.rgb.len()), (224, 224, 224 * 224 * 3));
        let c = Frame::filled(10, 4, [1, 2, 3]).center_crop(4, 4);
        assert_eq!((c.width, c.height), (4, 4));
        assert!(Frame::new(2, 2, vec![0; 11]).is_none());
    }

    #[test]
    fn resize_interpolates() {
        // A left-to-right ramp stays a ramp.
        let mut rgb = Vec::new();
        for _y in 0..4 {
            for x in 0..8u8 {
                rgb.extend_from_slice(&[x * 30, 0, 0]);
            }
        }
        let f = Frame::new(8, 4, rgb).unwrap().resize(4, 2);
        let reds: Vec<u8> = f.rgb.chunks(3).take(4).map(|p| p[0]).collect();
        assert!(reds.windows(2).all(|w| w[0] < w[1]), "{reds:?}");
    }
}
