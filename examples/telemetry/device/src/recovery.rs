//! When the firmware gives up and restarts, and how often it must prove it is alive:
//! the policies around the hardware watchdog and TLS failures, without the hardware.

use core::fmt;

/// How a TLS connection attempt failed, as far as a restart could help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// mbedTLS could not allocate (its arena is exhausted or fragmented).
    OutOfMemory,
    /// The handshake failed or timed out after TCP connected (a bad certificate, a
    /// reset, a stall).
    Handshake,
}

/// What to do after a TLS failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVerdict {
    /// Keep retrying with the usual backoff.
    Retry,
    /// Restart the device: the failures look like a state a restart clears.
    Restart,
}

/// Counts consecutive TLS failures and says when to restart.
///
/// Only failures after TCP connected count: no network, DNS or TCP errors say
/// nothing about the device's own state. A restart after
/// [`handshake_limit`](Self::handshake_limit) consecutive failures (8 by default;
/// with the reconnect backoff capped at 60 s that is at least ~5 minutes of failing)
/// clears whatever state a long-running device got into; allocation failures restart
/// sooner ([`memory_limit`](Self::memory_limit), 2), since only a restart gives the
/// memory back. One established session forgets the count.
///
/// ```
/// use telemetry_device::{TlsFailure, TlsFailures, TlsVerdict};
///
/// let mut failures = TlsFailures::default();
/// assert_eq!(failures.on_failure(TlsFailure::OutOfMemory), TlsVerdict::Retry);
/// assert_eq!(failures.on_failure(TlsFailure::OutOfMemory), TlsVerdict::Restart);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsFailures {
    handshake_limit: u32,
    memory_limit: u32,
    consecutive: u32,
    consecutive_memory: u32,
}

impl Default for TlsFailures {
    fn default() -> Self {
        TlsFailures::new(8, 2)
    }
}

impl TlsFailures {
    /// Restart after `handshake_limit` consecutive failures of any kind, or
    /// `memory_limit` consecutive allocation failures (both at least 1).
    pub fn new(handshake_limit: u32, memory_limit: u32) -> Self {
        TlsFailures {
            handshake_limit: handshake_limit.max(1),
            memory_limit: memory_limit.max(1),
            consecutive: 0,
            consecutive_memory: 0,
        }
    }

    /// Consecutive failures of any kind that restart the device.
    pub fn handshake_limit(&self) -> u32 {
        self.handshake_limit
    }

    /// Consecutive allocation failures that restart the device.
    pub fn memory_limit(&self) -> u32 {
        self.memory_limit
    }

    /// Consecutive TLS failures so far.
    pub fn consecutive(&self) -> u32 {
        self.consecutive
    }

    /// A TLS session was established: the count starts over.
    pub fn on_established(&mut self) {
        self.consecutive = 0;
        self.consecutive_memory = 0;
    }

    /// A TLS attempt failed after TCP connected.
    pub fn on_failure(&mut self, failure: TlsFailure) -> TlsVerdict {
        self.consecutive = self.consecutive.saturating_add(1);
        match failure {
            TlsFailure::OutOfMemory => {
                self.consecutive_memory = self.consecutive_memory.saturating_add(1)
            }
            TlsFailure::Handshake => self.consecutive_memory = 0,
        }
        if self.consecutive >= self.handshake_limit || self.consecutive_memory >= self.memory_limit
        {
            TlsVerdict::Restart
        } else {
            TlsVerdict::Retry
        }
    }
}

/// How the main loop keeps a hardware watchdog fed: every wait is cut to
/// [`feed_every_ms`](Self::feed_every_ms) so the loop comes round and feeds it, and
/// the watchdog fires only when the loop is stuck for
/// [`timeout_ms`](Self::timeout_ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogPlan {
    /// The hardware watchdog resets the chip after this long unfed.
    pub timeout_ms: u32,
    /// The main loop never waits longer than this between feeds.
    pub feed_every_ms: u32,
}

/// Why a [`WatchdogPlan`] cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogError {
    /// The loop would not feed the watchdog before it fires (feeds must come at
    /// least twice per timeout).
    FeedsTooRare,
    /// One step the loop awaits without feeding (a connection attempt, a close)
    /// can take longer than the timeout.
    StepLongerThanTimeout {
        /// The longest step, in milliseconds.
        step_ms: u32,
    },
}

impl fmt::Display for WatchdogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchdogError::FeedsTooRare => {
                f.write_str("the watchdog must be fed at least twice per timeout")
            }
            WatchdogError::StepLongerThanTimeout { step_ms } => write!(
                f,
                "a step of {step_ms} ms without feeding would trip the watchdog"
            ),
        }
    }
}

impl core::error::Error for WatchdogError {}

impl WatchdogPlan {
    /// Checks that feeding every [`feed_every_ms`](Self::feed_every_ms) keeps the
    /// watchdog quiet, with `longest_step_ms` the longest the loop awaits without
    /// feeding (the connect timeout, for the firmware).
    pub fn validate(&self, longest_step_ms: u32) -> Result<(), WatchdogError> {
        if self.feed_every_ms == 0 || self.feed_every_ms.saturating_mul(2) > self.timeout_ms {
            return Err(WatchdogError::FeedsTooRare);
        }
        let worst = longest_step_ms.saturating_add(self.feed_every_ms);
        if worst >= self.timeout_ms {
            return Err(WatchdogError::StepLongerThanTimeout {
                step_ms: longest_step_ms,
            });
        }
        Ok(())
    }

    /// When to wake at the latest, at `now_ms`, for a wait until `until_ms`.
    pub fn wake_by(&self, now_ms: u64, until_ms: u64) -> u64 {
        until_ms.min(now_ms.saturating_add(u64::from(self.feed_every_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_consecutive_handshake_failures_restart_and_a_session_resets_the_count() {
        let mut failures = TlsFailures::new(3, 2);
        assert_eq!(
            failures.on_failure(TlsFailure::Handshake),
            TlsVerdict::Retry
        );
        assert_eq!(
            failures.on_failure(TlsFailure::Handshake),
            TlsVerdict::Retry
        );
        failures.on_established();
        assert_eq!(failures.consecutive(), 0);
        assert_eq!(
            failures.on_failure(TlsFailure::Handshake),
            TlsVerdict::Retry
        );
        assert_eq!(
            failures.on_failure(TlsFailure::Handshake),
            TlsVerdict::Retry
        );
        assert_eq!(
            failures.on_failure(TlsFailure::Handshake),
            TlsVerdict::Restart
        );
    }

    #[test]
    fn allocation_failures_restart_sooner_but_only_when_consecutive() {
        let mut failures = TlsFailures::new(8, 2);
        assert_eq!(
            failures.on_failure(TlsFailure::OutOfMemory),
            TlsVerdict::Retry
        );
        assert_eq!(
            failures.on_failure(TlsFailure::Handshake),
            TlsVerdict::Retry
        );
        assert_eq!(
            failures.on_failure(TlsFailure::OutOfMemory),
            TlsVerdict::Retry,
            "a handshake failure in between breaks the run"
        );
        assert_eq!(
            failures.on_failure(TlsFailure::OutOfMemory),
            TlsVerdict::Restart
        );
    }

    #[test]
    fn the_defaults_leave_minutes_of_retries_before_a_restart() {
        let failures = TlsFailures::default();
        assert_eq!(
            (failures.handshake_limit(), failures.memory_limit()),
            (8, 2)
        );
        assert_eq!(TlsFailures::new(0, 0).handshake_limit(), 1);
    }

    #[test]
    fn the_firmwares_plan_feeds_in_time_through_a_whole_connection_attempt() {
        let plan = WatchdogPlan {
            timeout_ms: 60_000,
            feed_every_ms: 5_000,
        };
        let connect_timeout = crate::Config::new("d").unwrap().connect_timeout_ms;
        assert_eq!(plan.validate(connect_timeout), Ok(()));
        assert_eq!(
            plan.validate(58_000),
            Err(WatchdogError::StepLongerThanTimeout { step_ms: 58_000 })
        );
        let rare = WatchdogPlan {
            timeout_ms: 8_000,
            feed_every_ms: 5_000,
        };
        assert_eq!(rare.validate(0), Err(WatchdogError::FeedsTooRare));
    }

    #[test]
    fn waits_are_cut_so_the_loop_comes_round_to_feed() {
        let plan = WatchdogPlan {
            timeout_ms: 60_000,
            feed_every_ms: 5_000,
        };
        assert_eq!(plan.wake_by(1_000, 3_600_000), 6_000);
        assert_eq!(plan.wake_by(1_000, 2_000), 2_000);
        assert_eq!(plan.wake_by(u64::MAX - 1, u64::MAX), u64::MAX);
    }
}
