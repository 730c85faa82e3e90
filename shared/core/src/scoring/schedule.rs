//! A broadcaster's schedule: "about one break every 8 minutes, 90 s long".
//!
//! Targets are positions in the programme (a list, or every N seconds). Each target, in time
//! order, takes the best acceptable slot within `max_deviation_seconds` of it (ties: the one
//! nearest the target, then the earlier) that keeps the minimum spacing from the breaks already
//! taken and the hourly limit. A target with no such slot says why. The break duration is what
//! the VMAP announces for every break.

use serde::{Deserialize, Serialize};

use super::ScoringError;

/// Most targets one schedule may produce (an interval of 1 s over a day is 86 400).
pub const MAX_TARGETS: usize = 100_000;

fn default_max_deviation() -> f64 {
    60.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Where breaks should go.
    pub targets: Targets,
    /// How far (seconds, either side) a break may sit from its target.
    #[serde(default = "default_max_deviation")]
    pub max_deviation_seconds: f64,
    /// How long each break is, seconds (written into the VMAP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_seconds: Option<f64>,
    /// At most this many breaks in any hour of the programme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_breaks_per_hour: Option<u32>,
}

/// Target positions: `[480, 960]` or `{"every_seconds": 480}` (from `every_seconds` on, or
/// from `from_seconds`, up to the end of the programme).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Targets {
    At(Vec<f64>),
    Every(Interval),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    pub every_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seconds: Option<f64>,
}

impl Schedule {
    pub fn validate(&self) -> Result<(), ScoringError> {
        let bad = |m: String| Err(ScoringError::Config(format!("schedule: {m}")));
        let d = self.max_deviation_seconds;
        if !(d.is_finite() && d >= 0.0) {
            return bad(format!("max_deviation_seconds must be >= 0, got {d}"));
        }
        if let Some(b) = self.break_seconds {
            if !(b.is_finite() && b > 0.0) {
                return bad(format!("break_seconds must be > 0, got {b}"));
            }
        }
        if self.max_breaks_per_hour == Some(0) {
            return bad("max_breaks_per_hour must be at least 1".into());
        }
        match &self.targets {
            Targets::At(list) => {
                if list.len() > MAX_TARGETS {
                    return bad(format!("more than {MAX_TARGETS} targets"));
                }
                if let Some(t) = list.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
                    return bad(format!("target {t} is not a time >= 0"));
                }
            }
            Targets::Every(i) => {
                if !(i.every_seconds.is_finite() && i.every_seconds >= 1.0) {
                    return bad(format!(
                        "every_seconds must be at least 1, got {}",
                        i.every_seconds
                    ));
                }
                if let Some(f) = i.from_seconds.filter(|f| !(f.is_finite() && *f >= 0.0)) {
                    return bad(format!("from_seconds must be >= 0, got {f}"));
                }
            }
        }
        Ok(())
    }

    /// Target positions in time order; an interval runs up to (not including) `duration`.
    pub fn positions(&self, duration: Option<f64>) -> Vec<f64> {
        let mut out = match &self.targets {
            Targets::At(list) => list.clone(),
            Targets::Every(i) => {
                let Some(end) = duration else {
                    return Vec::new();
                };
                let from = i.from_seconds.unwrap_or(i.every_seconds);
                (0..MAX_TARGETS)
                    .map(|k| from + k as f64 * i.every_seconds)
                    .take_while(|t| *t < end)
                    .collect()
            }
        };
        out.sort_by(f64::total_cmp);
        out
    }

    /// A schedule from the command line: comma-separated `key=value` pairs, times in seconds
    /// (or with `s`, `m`, `h`): `every=8m,deviation=60,duration=90,per_hour=8,from=300`, or
    /// `at=480/960/1440` for a list of targets.
    pub fn parse_spec(spec: &str) -> Result<Schedule, String> {
        let mut targets = None;
        let mut from = None;
        let mut s = Schedule {
            targets: Targets::At(Vec::new()),
            max_deviation_seconds: default_max_deviation(),
            break_seconds: None,
            max_breaks_per_hour: None,
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected key=value"))?;
            match key.trim() {
                "every" => {
                    targets = Some(Targets::Every(Interval {
                        every_seconds: seconds(value)?,
                        from_seconds: None,
                    }))
                }
                "at" => {
                    targets = Some(Targets::At(
                        value.split('/').map(seconds).collect::<Result<_, _>>()?,
                    ))
                }
                "from" => from = Some(seconds(value)?),
                "deviation" => s.max_deviation_seconds = seconds(value)?,
                "duration" => s.break_seconds = Some(seconds(value)?),
                "per_hour" => {
                    s.max_breaks_per_hour = Some(
                        value
                            .trim()
                            .parse()
                            .map_err(|_| format!("per_hour={value}: not a whole number"))?,
                    )
                }
                other => {
                    return Err(format!(
                        "unknown key {other:?} (every, at, from, deviation, duration, per_hour)"
                    ))
                }
            }
        }
        s.targets = targets.ok_or("needs every=SECONDS or at=T1/T2/...")?;
        if let Some(f) = from {
            match &mut s.targets {
                Targets::Every(i) => i.from_seconds = Some(f),
                Targets::At(_) => return Err("from= goes with every=, not at=".into()),
            }
        }
        Ok(s)
    }
}

/// `90`, `90s`, `8m`, `1.5h`: seconds.
fn seconds(v: &str) -> Result<f64, String> {
    let v = v.trim();
    let (num, unit) = match v.char_indices().last() {
        Some((i, 's')) => (&v[..i], 1.0),
        Some((i, 'm')) => (&v[..i], 60.0),
        Some((i, 'h')) => (&v[..i], 3600.0),
        _ => (v, 1.0),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(|x| x * unit)
        .ok_or_else(|| format!("{v:?} is not a time in seconds (or with s, m, h)"))
}

/// What the schedule asked for and how each target was served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_seconds: Option<f64>,
    pub max_deviation_seconds: f64,
    pub targets: Vec<TargetOutcome>,
}

impl ScheduleReport {
    pub fn served(&self) -> usize {
        self.targets
            .iter()
            .filter(|t| t.served_by.is_some())
            .count()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetOutcome {
    /// Seconds.
    pub target: f64,
    /// The window a break may sit in.
    pub earliest: f64,
    pub latest: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<Served>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unserved: Option<Unserved>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Served {
    /// Position of the break in the output's `breaks` (0-based; the VMAP's `midroll-N` is N-1).
    pub break_index: usize,
    pub timestamp: f64,
    /// `timestamp - target`.
    pub offset: f64,
}

/// Why no break serves a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unserved {
    /// No candidate slot at all within the window.
    NoBoundary,
    /// Slots within the window, none acceptable; `why` counts the reasons ("2 x refused: someone
    /// speaks ...").
    NoneAcceptable { slots: usize, why: Vec<String> },
    /// Acceptable slots, each too close to a break already taken.
    Spacing { acceptable: usize, min_spacing: f64 },
    /// Acceptable slots, but a break there would exceed the hourly limit.
    PerHour { acceptable: usize, limit: u32 },
}

impl std::fmt::Display for Unserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoBoundary => f.write_str("no candidate boundary within the window"),
            Self::NoneAcceptable { slots, why } => {
                write!(f, "{slots} slot(s) in the window, none acceptable: {}", why.join("; "))
            }
            Self::Spacing {
                acceptable,
                min_spacing,
            } => write!(
                f,
                "{acceptable} acceptable slot(s), each within {min_spacing} s of another break"
            ),
            Self::PerHour { acceptable, limit } => write!(
                f,
                "{acceptable} acceptable slot(s), each would make more than {limit} breaks in an hour"
            ),
        }
    }
}

/// True when adding `t` to `taken` keeps at most `limit` breaks in every hour-long window.
pub(super) fn within_hourly_limit(taken: &[f64], t: f64, limit: Option<u32>) -> bool {
    let Some(limit) = limit else { return true };
    let mut all: Vec<f64> = taken.iter().copied().chain([t]).collect();
    all.sort_by(f64::total_cmp);
    // The busiest hour starts at a break.
    all.iter()
        .all(|&a| all.iter().filter(|&&b| b >= a && b < a + 3600.0).count() <= limit as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_and_json_forms() {
        let s = Schedule::parse_spec("every=8m,deviation=60,duration=90s,per_hour=6").unwrap();
        assert_eq!(
            s.targets,
            Targets::Every(Interval {
                every_seconds: 480.0,
                from_seconds: None
            })
        );
        assert_eq!(s.max_deviation_seconds, 60.0);
        assert_eq!(s.break_seconds, Some(90.0));
        assert_eq!(s.max_breaks_per_hour, Some(6));
        assert_eq!(s.positions(Some(1800.0)), vec![480.0, 960.0, 1440.0]);
        assert_eq!(s.positions(None), Vec::<f64>::new());
        let s = Schedule::parse_spec("every=600,from=300").unwrap();
        assert_eq!(s.positions(Some(1500.0)), vec![300.0, 900.0]);
        let s = Schedule::parse_spec("at=960/480, deviation=0.5h").unwrap();
        assert_eq!(s.positions(None), vec![480.0, 960.0]);
        assert_eq!(s.max_deviation_seconds, 1800.0);
        for bad in [
            "",
            "every",
            "every=x",
            "at=1/2,from=3",
            "colour=red",
            "per_hour=1.5",
        ] {
            assert!(Schedule::parse_spec(bad).is_err(), "{bad}");
        }
        let j: Schedule = serde_json::from_str(
            r#"{"targets": {"every_seconds": 480}, "max_deviation_seconds": 60, "break_seconds": 90}"#,
        )
        .unwrap();
        assert_eq!(j.positions(Some(1000.0)), vec![480.0, 960.0]);
        let j: Schedule = serde_json::from_str(r#"{"targets": [100, 50]}"#).unwrap();
        assert_eq!(j.max_deviation_seconds, 60.0);
        assert!(serde_json::from_str::<Schedule>(r#"{"targets": [1], "deviation": 3}"#).is_err());
    }

    #[test]
    fn validation() {
        let ok = Schedule::parse_spec("every=480").unwrap();
        assert!(ok.validate().is_ok());
        let bad = [
            "every=0.5",
            "every=480,deviation=-1",
            "every=480,duration=0",
            "every=480,per_hour=0",
            "at=-3",
        ];
        for spec in bad {
            let s = Schedule::parse_spec(spec).unwrap();
            assert!(s.validate().is_err(), "{spec}");
        }
    }

    #[test]
    fn hourly_limit_counts_any_hour() {
        assert!(within_hourly_limit(&[0.0, 1000.0], 3000.0, Some(3)));
        assert!(!within_hourly_limit(
            &[0.0, 1000.0, 3000.0],
            3500.0,
            Some(3)
        ));
        // 0, 1000, 3000 and 4000: the hour from 1000 holds 1000, 3000, 4000.
        assert!(!within_hourly_limit(
            &[1000.0, 3000.0, 4000.0],
            0.0,
            Some(2)
        ));
        assert!(within_hourly_limit(&[0.0], 3600.0, Some(1)));
        assert!(within_hourly_limit(&[0.0, 1.0, 2.0], 3.0, None));
    }
}
