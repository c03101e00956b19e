//! A small deterministic pseudo-random generator for jitter.
//!
//! Jitter only has to spread a fleet's reconnects apart, not resist an attacker, so a
//! seeded SplitMix64 is enough: the firmware seeds it from the hardware RNG, the
//! simulator from the device's index, and tests from a constant (same seed, same
//! delays).

/// SplitMix64 (Steele, Lea and Flood, 2014): 64 bits of state, full period, good
/// statistical quality for its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`; equal seeds give equal sequences.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..=max`, uniform up to a negligible bias for the small ranges
    /// (milliseconds of jitter) this is used for.
    pub fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        self.next_u64() % (max + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_seeds_give_equal_sequences_and_different_seeds_differ() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let mut c = SplitMix64::new(8);
        let first: [u64; 4] = core::array::from_fn(|_| a.next_u64());
        let second: [u64; 4] = core::array::from_fn(|_| b.next_u64());
        let other: [u64; 4] = core::array::from_fn(|_| c.next_u64());
        assert_eq!(first, second);
        assert_ne!(first, other);
    }

    #[test]
    fn up_to_stays_within_its_bound_and_covers_it() {
        let mut rng = SplitMix64::new(1);
        let mut seen = [false; 5];
        for _ in 0..1_000 {
            let v = rng.up_to(4);
            assert!(v <= 4);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "every value of 0..=4 comes up");
        assert_eq!(rng.up_to(0), 0);
    }
}
