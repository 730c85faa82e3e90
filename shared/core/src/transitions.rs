//! Gradual transitions from per-frame picture statistics: fades to and from black and
//! cross-dissolves.
//!
//! During a fade or a dissolve every frame is a mix of two pictures whose weight moves a little
//! each frame, so the mean luma moves steadily one way (to black, from black, or from one
//! picture's level to the other's) while no single frame changes much. A *ramp* is a run of
//! frames whose mean luma changes the same way every frame, by at least `min_step` levels, for
//! at least `min_frames` frames and `min_change` levels in total, with no one step holding
//! half of the change (that is a cut). A ramp that ends where a black run starts is a fade-out;
//! one that starts where a black run ends a fade-in; any other ramp is a dissolve when the
//! picture changes more during it than around it (`motion_ratio`), which keeps a slow change of
//! light in a moving shot from counting. A dissolve between two pictures of the same mean
//! luma leaves no ramp and is not found.

use serde::{Deserialize, Serialize};

/// One analysed frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameStat {
    pub frame: u64,
    /// Mean luma (8-bit levels).
    pub luma: f64,
    /// Mean absolute difference from the previous frame (any scale, compared only with itself).
    pub diff: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransitionKind {
    FadeOut,
    FadeIn,
    Dissolve,
}

/// A transition over frames `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub kind: TransitionKind,
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransitionOptions {
    pub min_frames: u64,
    pub min_step: f64,
    pub min_change: f64,
    /// A dissolve's mean frame difference is at least this times that of the second around it.
    pub motion_ratio: f64,
    /// Frames on each side that make "around".
    pub context_frames: u64,
}

impl Default for TransitionOptions {
    fn default() -> Self {
        Self {
            min_frames: 6,
            min_step: 0.3,
            min_change: 8.0,
            motion_ratio: 1.2,
            context_frames: 25,
        }
    }
}

/// Transitions in `frames` (ascending frame numbers). `black` are black runs `[start, end)`.
pub fn detect(
    frames: &[FrameStat],
    black: &[(u64, u64)],
    o: &TransitionOptions,
) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < frames.len() {
        let sign = step_sign(frames, i, o.min_step);
        if sign == 0 {
            i += 1;
            continue;
        }
        // Ramp: steps i->i+1 .. j-1->j all of `sign`.
        let mut j = i + 1;
        while j + 1 < frames.len() && step_sign(frames, j, o.min_step) == sign {
            j += 1;
        }
        let (before, first, last) = (frames[i], frames[i + 1], frames[j]);
        i = j;
        let change = (last.luma - before.luma).abs();
        let biggest = frames_between(frames, before.frame, last.frame)
            .windows(2)
            .map(|w| (w[1].luma - w[0].luma).abs())
            .fold(0.0, f64::max);
        if last.frame + 1 - first.frame < o.min_frames
            || change < o.min_change
            || biggest > 0.5 * change
        {
            continue;
        }
        let fade_out = (sign < 0)
            .then(|| {
                black
                    .iter()
                    .find(|(s, _)| *s >= first.frame && *s <= last.frame + 2)
            })
            .flatten();
        let fade_in = (sign > 0)
            .then(|| {
                black
                    .iter()
                    .find(|(_, e)| *e + 1 >= before.frame && *e <= last.frame)
            })
            .flatten();
        // The fade runs over the whole ramp: the darkest frames of a fade already count as
        // black, so the black run starts before the picture is fully gone.
        if fade_out.is_some() {
            out.push(Transition {
                kind: TransitionKind::FadeOut,
                start: first.frame,
                end: last.frame,
            });
        } else if fade_in.is_some() {
            out.push(Transition {
                kind: TransitionKind::FadeIn,
                start: first.frame,
                end: last.frame,
            });
        } else if busier_than_around(frames, first.frame, last.frame, o) {
            out.push(Transition {
                kind: TransitionKind::Dissolve,
                start: first.frame,
                end: last.frame,
            });
        }
    }
    out
}

/// Where a shot boundary belongs for each transition that has no cut inside it: a fade-out's
/// shot ends where the black run starts, a fade-in's begins where it ends, a dissolve's new
/// shot starts at its middle. `black` as for [`detect`].
pub fn boundaries(transitions: &[Transition], black: &[(u64, u64)], cuts: &[u64]) -> Vec<u64> {
    transitions
        .iter()
        .filter_map(|t| {
            let at = match t.kind {
                TransitionKind::FadeOut => black
                    .iter()
                    .map(|(s, _)| *s)
                    .find(|s| *s >= t.start && *s <= t.end + 2)?,
                TransitionKind::FadeIn => black
                    .iter()
                    .map(|(_, e)| *e)
                    .find(|e| *e + 1 >= t.start && *e <= t.end)?,
                TransitionKind::Dissolve => (t.start + t.end).div_ceil(2),
            };
            let (lo, hi) = (t.start.min(at).saturating_sub(1), t.end.max(at) + 1);
            (!cuts.iter().any(|c| *c >= lo && *c <= hi)).then_some(at)
        })
        .collect()
}

fn step_sign(frames: &[FrameStat], i: usize, min_step: f64) -> i8 {
    let (a, b) = (frames[i], frames[i + 1]);
    if b.frame != a.frame + 1 {
        return 0;
    }
    let d = b.luma - a.luma;
    if d >= min_step {
        1
    } else if d <= -min_step {
        -1
    } else {
        0
    }
}

fn frames_between(frames: &[FrameStat], from: u64, to: u64) -> &[FrameStat] {
    let a = frames.partition_point(|f| f.frame < from);
    let b = frames.partition_point(|f| f.frame <= to);
    &frames[a..b]
}

fn mean_diff(frames: &[FrameStat]) -> Option<f64> {
    (!frames.is_empty()).then(|| frames.iter().map(|f| f.diff).sum::<f64>() / frames.len() as f64)
}

fn busier_than_around(frames: &[FrameStat], start: u64, end: u64, o: &TransitionOptions) -> bool {
    let Some(inside) = mean_diff(frames_between(frames, start, end)) else {
        return false;
    };
    let before = mean_diff(frames_between(
        frames,
        start.saturating_sub(o.context_frames),
        start.saturating_sub(1),
    ));
    let after = mean_diff(frames_between(frames, end + 1, end + o.context_frames));
    let around = before.into_iter().chain(after).fold(0.0, f64::max);
    inside > o.motion_ratio * around
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shot at `level` (with motion `diff`) for `len` frames, then a linear move to `to` over
    /// `ramp` frames (a frame difference of `ramp_diff`), from frame `first`.
    fn shot_then_ramp(
        level: f64,
        len: u64,
        to: f64,
        ramp: u64,
        diff: f64,
        ramp_diff: f64,
    ) -> Vec<FrameStat> {
        let mut v: Vec<FrameStat> = (0..len)
            .map(|f| FrameStat {
                frame: f,
                luma: level + if f % 2 == 0 { 0.05 } else { 0.0 },
                diff,
            })
            .collect();
        for k in 1..=ramp {
            v.push(FrameStat {
                frame: len + k - 1,
                luma: level + (to - level) * k as f64 / ramp as f64,
                diff: ramp_diff,
            });
        }
        v
    }

    fn extend(v: &mut Vec<FrameStat>, level: f64, len: u64, diff: f64) {
        let start = v.last().map_or(0, |f| f.frame + 1);
        v.extend((0..len).map(|k| FrameStat {
            frame: start + k,
            luma: level,
            diff,
        }));
    }

    #[test]
    fn fade_out_fade_in_and_dissolve() {
        // 0-49 picture, 50-74 fade to black, 75-99 black, 100-119 fade in, 120-169 picture,
        // 170-194 dissolve to a darker picture, 195-250 that picture.
        let mut v = shot_then_ramp(120.0, 50, 16.0, 25, 1.0, 2.0);
        extend(&mut v, 16.0, 25, 0.0);
        let mut up = shot_then_ramp(16.0, 0, 110.0, 20, 0.0, 2.0);
        for f in &mut up {
            f.frame += 100;
        }
        v.extend(up);
        extend(&mut v, 110.0, 50, 1.0);
        let mut d = shot_then_ramp(110.0, 0, 80.0, 25, 0.0, 2.0);
        for f in &mut d {
            f.frame += 170;
        }
        v.extend(d);
        extend(&mut v, 80.0, 56, 1.0);
        // The fade-out's last frame reads black already: the black run starts at 74.
        let black = [(74, 100)];
        let t = detect(&v, &black, &TransitionOptions::default());
        assert_eq!(
            t,
            vec![
                Transition {
                    kind: TransitionKind::FadeOut,
                    start: 50,
                    end: 74
                },
                Transition {
                    kind: TransitionKind::FadeIn,
                    start: 100,
                    end: 119
                },
                Transition {
                    kind: TransitionKind::Dissolve,
                    start: 170,
                    end: 194
                },
            ]
        );
        // Shot boundaries: where the black starts and ends, the dissolve's middle; none where
        // a cut is already inside.
        assert_eq!(boundaries(&t, &black, &[]), vec![74, 100, 182]);
        assert_eq!(boundaries(&t, &black, &[74, 100, 175]), Vec::<u64>::new());
    }

    #[test]
    fn cuts_slow_light_and_busy_motion_are_not_transitions() {
        // A hard cut: one big step.
        let mut v = shot_then_ramp(120.0, 50, 60.0, 1, 1.0, 30.0);
        extend(&mut v, 60.0, 50, 1.0);
        assert!(detect(&v, &[], &TransitionOptions::default()).is_empty());
        // Light changing by 0.2 levels a frame.
        let v = shot_then_ramp(120.0, 50, 100.0, 100, 1.0, 1.0);
        assert!(detect(&v, &[], &TransitionOptions::default()).is_empty());
        // A ramp in a shot that moves as much before and after as during it.
        let mut v = shot_then_ramp(120.0, 50, 90.0, 25, 2.0, 2.0);
        extend(&mut v, 90.0, 50, 2.0);
        assert!(detect(&v, &[], &TransitionOptions::default()).is_empty());
        // Too short: 4 frames.
        let mut v = shot_then_ramp(120.0, 50, 90.0, 4, 1.0, 3.0);
        extend(&mut v, 90.0, 50, 1.0);
        assert!(detect(&v, &[], &TransitionOptions::default()).is_empty());
    }
}
