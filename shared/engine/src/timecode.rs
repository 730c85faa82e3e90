//! Frames, milliseconds and SMPTE timecodes at an exact frame rate.
//!
//! Rekognition conventions kept here: frame numbers start at 0, millisecond timestamps are
//! rounded down, timecodes are `HH:MM:SS:FF` and drop-frame `HH:MM:SS;FF` at 29.97/59.94.

use crate::probe::Rational;

/// A frame clock at an exact rational rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameClock {
    pub rate: Rational,
}

impl FrameClock {
    pub fn new(rate: Rational) -> Self {
        FrameClock { rate }
    }

    pub fn fps(&self) -> f64 {
        self.rate.as_f64()
    }

    /// The frame shown at `seconds` (nearest frame start; negative times are frame 0).
    pub fn frame_at(&self, seconds: f64) -> u64 {
        if !seconds.is_finite() || seconds <= 0.0 {
            return 0;
        }
        (seconds * self.rate.num as f64 / self.rate.den as f64).round() as u64
    }

    /// Start time of `frame` in milliseconds, rounded down.
    pub fn millis(&self, frame: u64) -> u64 {
        ((frame as u128 * 1000 * self.rate.den as u128) / self.rate.num as u128) as u64
    }

    /// Start time of `frame` in seconds.
    pub fn seconds(&self, frame: u64) -> f64 {
        frame as f64 * self.rate.den as f64 / self.rate.num as f64
    }

    /// Whether timecodes at this rate are drop-frame (29.97 and 59.94).
    pub fn drop_frame(&self) -> bool {
        self.rate.den == 1001 && (self.rate.num == 30000 || self.rate.num == 60000)
    }

    /// Frames per timecode second (30 for 29.97, 24 for 23.976, 25 for 25).
    pub fn nominal_fps(&self) -> u64 {
        (self.fps().round() as u64).max(1)
    }

    /// SMPTE timecode of the frame index `frame` (also used for durations in frames).
    pub fn smpte(&self, frame: u64) -> String {
        let nominal = self.nominal_fps();
        let (label_frame, sep) = if self.drop_frame() {
            // Drop 2 (29.97) or 4 (59.94) frame numbers at the start of every minute except
            // each tenth minute, so the labels track wall-clock time.
            let drop = nominal / 15;
            let per_min = nominal * 60 - drop;
            let per_10min = per_min * 10 + drop;
            let tens = frame / per_10min;
            let rem = frame % per_10min;
            let mut adjusted = frame + 9 * drop * tens;
            if rem > drop {
                adjusted += drop * ((rem - drop) / per_min);
            }
            (adjusted, ';')
        } else {
            (frame, ':')
        };
        let ff = label_frame % nominal;
        let total_secs = label_frame / nominal;
        format!(
            "{:02}:{:02}:{:02}{sep}{:02}",
            total_secs / 3600,
            (total_secs / 60) % 60,
            total_secs % 60,
            ff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_rate_timecodes() {
        let c = FrameClock::new(Rational::new(25, 1));
        assert_eq!(c.smpte(0), "00:00:00:00");
        assert_eq!(c.smpte(24), "00:00:00:24");
        assert_eq!(c.smpte(25), "00:00:01:00");
        assert_eq!(c.smpte(25 * 3661 + 3), "01:01:01:03");
        assert_eq!(c.frame_at(20.0), 500);
        assert_eq!(c.frame_at(19.98), 500);
        assert_eq!(c.millis(501), 20040);
    }

    #[test]
    fn drop_frame_timecodes_at_2997() {
        let c = FrameClock::new(Rational::new(30000, 1001));
        assert!(c.drop_frame());
        assert_eq!(c.smpte(0), "00:00:00;00");
        assert_eq!(c.smpte(1799), "00:00:59;29");
        // Frame numbers 00 and 01 are skipped at the start of minute 1 ...
        assert_eq!(c.smpte(1800), "00:01:00;02");
        // ... but not at minute 10.
        assert_eq!(c.smpte(17982), "00:10:00;00");
        assert_eq!(c.smpte(17981), "00:09:59;29");
        // One hour of 29.97 is 107892 frames and reads exactly 01:00:00;00.
        assert_eq!(c.smpte(107_892), "01:00:00;00");
        // Milliseconds are rounded down: frame 1 starts at 33.366... ms.
        assert_eq!(c.millis(1), 33);
    }

    #[test]
    fn drop_frame_at_5994_and_non_drop_at_23976() {
        let c = FrameClock::new(Rational::new(60000, 1001));
        assert_eq!(c.smpte(3600), "00:01:00;04");
        assert_eq!(c.smpte(215_784), "01:00:00;00");
        let film = FrameClock::new(Rational::new(24000, 1001));
        assert!(!film.drop_frame());
        assert_eq!(film.smpte(24), "00:00:01:00");
    }
}
