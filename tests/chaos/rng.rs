//! A seeded, lock-free source of randomness shared by every fault decorator.
//!
//! Draw `n` of the run is `splitmix64(seed + n·φ)`: the sequence of draws is fixed by the seed,
//! but which task takes which draw depends on scheduling, so two runs with one seed inject the
//! same *mix* of faults, not the same fault at the same call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function.
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug)]
pub struct Dice {
    seed: u64,
    draws: AtomicU64,
}

impl Dice {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            draws: AtomicU64::new(0),
        }
    }

    /// An independent stream for one purpose (the asset mix, the engine, the faults).
    pub fn fork(&self, salt: u64) -> Dice {
        Dice::new(splitmix64(self.seed ^ salt.wrapping_mul(GOLDEN)))
    }

    pub fn next_u64(&self) -> u64 {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        splitmix64(
            self.seed
                .wrapping_add(n.wrapping_add(1).wrapping_mul(GOLDEN)),
        )
    }

    /// Uniform in [0, 1).
    pub fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn millis(&self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.between(lo, hi))
    }
}
