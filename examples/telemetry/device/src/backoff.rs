//! Reconnect backoff: exponential growth with jitter, reset once a connection proved
//! stable.

use crate::rng::SplitMix64;

/// How reconnect attempts are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay before the first retry, in milliseconds (before jitter).
    pub initial_ms: u32,
    /// The delay never grows beyond this, in milliseconds (before jitter).
    pub max_ms: u32,
    /// A connection that stayed up this long resets the backoff, in milliseconds; one
    /// that dropped sooner counts as another failure (a server that accepts and then
    /// closes at once must not be hammered).
    pub stable_after_ms: u32,
}

impl Default for BackoffConfig {
    /// 1 s doubling up to 60 s; a connection is stable after 30 s.
    fn default() -> Self {
        BackoffConfig {
            initial_ms: 1_000,
            max_ms: 60_000,
            stable_after_ms: 30_000,
        }
    }
}

/// Consecutive failures and the delay they call for.
///
/// The `n`-th consecutive failure (counting from 0) waits
/// `d = min(max, initial * 2^n)` jittered uniformly into `d/2 ..= d` ("equal
/// jitter"): never less than half the nominal delay, so a fleet that lost its
/// server at the same moment spreads out instead of retrying in lockstep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    /// No failures yet.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            failures: 0,
        }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The settings.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// The nominal (un-jittered) delay after `failures` consecutive failures.
    pub fn nominal_ms(&self, failures: u32) -> u32 {
        let initial = u64::from(self.config.initial_ms.max(1));
        let max = u64::from(self.config.max_ms.max(self.config.initial_ms));
        let grown = initial.saturating_mul(1u64 << failures.min(32));
        u32::try_from(grown.min(max)).unwrap_or(u32::MAX)
    }

    /// Records one more failure and returns the jittered delay before the next attempt.
    pub fn fail(&mut self, rng: &mut SplitMix64) -> u32 {
        let nominal = self.nominal_ms(self.failures);
        self.failures = self.failures.saturating_add(1);
        let half = nominal / 2;
        half + rng.up_to(u64::from(nominal - half)) as u32
    }

    /// Forgets the failures: the next delay starts from `initial_ms` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(BackoffConfig {
            initial_ms: 1_000,
            max_ms: 30_000,
            stable_after_ms: 10_000,
        })
    }

    #[test]
    fn the_nominal_delay_doubles_per_failure_up_to_the_cap() {
        let b = backoff();
        let delays: [u32; 7] = core::array::from_fn(|n| b.nominal_ms(n as u32));
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(
            b.nominal_ms(u32::MAX),
            30_000,
            "no overflow after many failures"
        );
    }

    #[test]
    fn each_delay_is_jittered_between_half_and_all_of_the_nominal_delay() {
        let mut rng = SplitMix64::new(42);
        for _ in 0..200 {
            let mut b = backoff();
            for n in 0..8 {
                let nominal = b.nominal_ms(n);
                let delay = b.fail(&mut rng);
                assert!(
                    (nominal / 2..=nominal).contains(&delay),
                    "failure {n}: {delay} outside {}..={nominal}",
                    nominal / 2
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_devices_that_failed_at_the_same_moment() {
        let delays: [u32; 8] = core::array::from_fn(|seed| {
            let mut b = backoff();
            b.fail(&mut SplitMix64::new(seed as u64));
            b.fail(&mut SplitMix64::new(seed as u64 + 100))
        });
        let distinct = delays
            .iter()
            .enumerate()
            .filter(|(i, d)| !delays[..*i].contains(d))
            .count();
        assert!(distinct >= 6, "delays {delays:?} should mostly differ");
    }

    #[test]
    fn reset_starts_over_from_the_initial_delay() {
        let mut rng = SplitMix64::new(3);
        let mut b = backoff();
        for _ in 0..5 {
            b.fail(&mut rng);
        }
        assert_eq!(b.failures(), 5);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.fail(&mut rng) <= 1_000);
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let run = |seed| {
            let mut rng = SplitMix64::new(seed);
            let mut b = backoff();
            let delays: [u32; 6] = core::array::from_fn(|_| b.fail(&mut rng));
            delays
        };
        assert_eq!(run(9), run(9));
    }
}
