//! Wall-clock time without a battery-backed clock: SNTP once it answers, the server's
//! `Date` header until then, and never a time before the firmware was built.
//!
//! The same clock stamps readings (`ts_ms`) and is what mbedTLS checks certificate
//! validity dates against ([`WallClock::certificate_time_ms`]).
//!
//! Which source wins:
//!
//! - **SNTP** is precise but unauthenticated: anyone on the path can answer. An answer
//!   earlier than the build time is refused (a past time would make an expired
//!   certificate look valid), and so is one that disagrees with the server's `Date` by
//!   more than [`MAX_DISAGREEMENT_MS`] when a `Date` is known.
//! - The server's **`Date`** arrives inside the connection (over `wss://`, after the
//!   server proved its identity), to the second. It is used until SNTP answers, and it
//!   outranks an SNTP answer it disagrees with.
//! - The **build time** is a floor: before either source answered, certificates are
//!   checked against it (a certificate that expired before the firmware was built is
//!   refused; one issued after the build is refused too until SNTP or a `Date` is
//!   known, which is why the firmware asks SNTP before its first `wss://` connection).

use core::fmt;

/// An SNTP answer further than this from the server's `Date` is not believed.
pub const MAX_DISAGREEMENT_MS: u64 = 10 * 60 * 1_000;

/// Where the clock's time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// Nothing answered yet: only the build time is known (a lower bound).
    BuildTime,
    /// The server's `Date` header at the last connect.
    ServerDate,
    /// An SNTP server.
    Sntp,
}

/// Why a time was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockRejected {
    /// The time is before the firmware was built.
    BeforeBuild {
        /// The time offered, Unix milliseconds.
        offered_ms: u64,
        /// The build time, Unix milliseconds.
        build_ms: u64,
    },
    /// An SNTP answer disagrees with the server's `Date` by more than
    /// [`MAX_DISAGREEMENT_MS`].
    DisagreesWithServer {
        /// The SNTP time offered, Unix milliseconds.
        offered_ms: u64,
        /// The server's time at that moment, Unix milliseconds.
        server_ms: u64,
    },
}

impl fmt::Display for ClockRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockRejected::BeforeBuild {
                offered_ms,
                build_ms,
            } => write!(
                f,
                "{offered_ms} ms is before the firmware was built ({build_ms} ms)"
            ),
            ClockRejected::DisagreesWithServer {
                offered_ms,
                server_ms,
            } => write!(
                f,
                "{offered_ms} ms disagrees with the server's Date ({server_ms} ms) by more than {} s",
                MAX_DISAGREEMENT_MS / 1_000
            ),
        }
    }
}

impl core::error::Error for ClockRejected {}

/// The device's idea of Unix time, as offsets from its uptime.
///
/// ```
/// use telemetry_device::{TimeSource, WallClock};
///
/// let build = 1_732_000_000_000;
/// let mut clock = WallClock::new(build);
/// assert_eq!(clock.now_ms(5_000), None);
/// assert_eq!(clock.certificate_time_ms(5_000), build);
///
/// clock.on_sntp(10_000, 1_732_230_000_000)?;
/// assert_eq!(clock.source(), TimeSource::Sntp);
/// assert_eq!(clock.now_ms(11_000), Some(1_732_230_001_000));
/// # Ok::<(), telemetry_device::ClockRejected>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    build_ms: u64,
    sntp_offset_ms: Option<i64>,
    server_offset_ms: Option<i64>,
}

impl WallClock {
    /// A clock that knows only that it is not earlier than `build_ms` (Unix ms).
    pub const fn new(build_ms: u64) -> Self {
        WallClock {
            build_ms,
            sntp_offset_ms: None,
            server_offset_ms: None,
        }
    }

    /// The build time this clock never goes below.
    pub fn build_ms(&self) -> u64 {
        self.build_ms
    }

    /// Where the time comes from now.
    pub fn source(&self) -> TimeSource {
        if self.sntp_offset_ms.is_some() {
            TimeSource::Sntp
        } else if self.server_offset_ms.is_some() {
            TimeSource::ServerDate
        } else {
            TimeSource::BuildTime
        }
    }

    /// An SNTP server said it is `unix_ms` at uptime `uptime_ms`.
    pub fn on_sntp(&mut self, uptime_ms: u64, unix_ms: u64) -> Result<(), ClockRejected> {
        self.check_not_before_build(unix_ms)?;
        if let Some(server_ms) = at(self.server_offset_ms, uptime_ms) {
            if unix_ms.abs_diff(server_ms) > MAX_DISAGREEMENT_MS {
                return Err(ClockRejected::DisagreesWithServer {
                    offered_ms: unix_ms,
                    server_ms,
                });
            }
        }
        self.sntp_offset_ms = Some(offset(uptime_ms, unix_ms));
        Ok(())
    }

    /// The server's `Date` said it is `unix_ms` at uptime `uptime_ms`. An SNTP time
    /// that disagrees with it is dropped: the server's time came over the
    /// connection, SNTP's over bare UDP.
    pub fn on_server_date(&mut self, uptime_ms: u64, unix_ms: u64) -> Result<(), ClockRejected> {
        self.check_not_before_build(unix_ms)?;
        if let Some(sntp_ms) = at(self.sntp_offset_ms, uptime_ms) {
            if unix_ms.abs_diff(sntp_ms) > MAX_DISAGREEMENT_MS {
                self.sntp_offset_ms = None;
            }
        }
        self.server_offset_ms = Some(offset(uptime_ms, unix_ms));
        Ok(())
    }

    /// Unix time at uptime `uptime_ms` from SNTP or the server's `Date`, `None`
    /// before either answered (readings then carry `ts_ms: 0`).
    pub fn now_ms(&self, uptime_ms: u64) -> Option<u64> {
        at(self.sntp_offset_ms.or(self.server_offset_ms), uptime_ms).map(|ms| ms.max(self.build_ms))
    }

    /// The time certificates are checked against at uptime `uptime_ms`:
    /// [`now_ms`](Self::now_ms), or the build time before anything answered.
    pub fn certificate_time_ms(&self, uptime_ms: u64) -> u64 {
        self.now_ms(uptime_ms).unwrap_or(self.build_ms)
    }

    fn check_not_before_build(&self, unix_ms: u64) -> Result<(), ClockRejected> {
        if unix_ms < self.build_ms {
            return Err(ClockRejected::BeforeBuild {
                offered_ms: unix_ms,
                build_ms: self.build_ms,
            });
        }
        Ok(())
    }
}

fn offset(uptime_ms: u64, unix_ms: u64) -> i64 {
    unix_ms as i64 - uptime_ms as i64
}

fn at(offset_ms: Option<i64>, uptime_ms: u64) -> Option<u64> {
    offset_ms.map(|offset| (uptime_ms as i64).saturating_add(offset).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILD: u64 = 1_732_000_000_000;
    const NOW: u64 = 1_732_230_000_000;

    #[test]
    fn before_anything_answers_certificates_are_checked_against_the_build_time() {
        let clock = WallClock::new(BUILD);
        assert_eq!(clock.source(), TimeSource::BuildTime);
        assert_eq!(clock.now_ms(123), None);
        assert_eq!(clock.certificate_time_ms(123), BUILD);
    }

    #[test]
    fn sntp_sets_the_clock_and_time_advances_with_uptime() {
        let mut clock = WallClock::new(BUILD);
        clock.on_sntp(2_000, NOW).unwrap();
        assert_eq!(clock.source(), TimeSource::Sntp);
        assert_eq!(clock.now_ms(62_000), Some(NOW + 60_000));
        assert_eq!(clock.certificate_time_ms(62_000), NOW + 60_000);
    }

    #[test]
    fn the_servers_date_is_used_until_sntp_answers() {
        let mut clock = WallClock::new(BUILD);
        clock.on_server_date(5_000, NOW).unwrap();
        assert_eq!(clock.source(), TimeSource::ServerDate);
        assert_eq!(clock.certificate_time_ms(6_000), NOW + 1_000);
        clock.on_sntp(7_000, NOW + 2_300).unwrap();
        assert_eq!(clock.source(), TimeSource::Sntp);
        assert_eq!(clock.now_ms(8_000), Some(NOW + 3_300));
    }

    #[test]
    fn a_time_before_the_build_is_refused_from_either_source() {
        let mut clock = WallClock::new(BUILD);
        let past = BUILD - 86_400_000;
        let refused = ClockRejected::BeforeBuild {
            offered_ms: past,
            build_ms: BUILD,
        };
        assert_eq!(clock.on_sntp(1_000, past), Err(refused));
        assert_eq!(clock.on_server_date(1_000, past), Err(refused));
        assert_eq!(clock.source(), TimeSource::BuildTime);
        // A 1970 answer from an unset NTP server is the common case.
        assert!(clock.on_sntp(1_000, 0).is_err());
    }

    #[test]
    fn sntp_that_disagrees_with_the_server_is_not_believed() {
        let mut clock = WallClock::new(BUILD);
        clock.on_server_date(10_000, NOW).unwrap();
        let spoofed = NOW + 30 * 86_400_000;
        assert_eq!(
            clock.on_sntp(10_000, spoofed),
            Err(ClockRejected::DisagreesWithServer {
                offered_ms: spoofed,
                server_ms: NOW
            })
        );
        assert_eq!(clock.source(), TimeSource::ServerDate);
        // Within the tolerance it is the more precise source.
        clock.on_sntp(10_000, NOW + 400).unwrap();
        assert_eq!(clock.now_ms(10_000), Some(NOW + 400));
    }

    #[test]
    fn a_server_date_that_disagrees_with_sntp_replaces_it() {
        let mut clock = WallClock::new(BUILD);
        clock.on_sntp(1_000, NOW + 3_600_000).unwrap();
        clock.on_server_date(1_000, NOW).unwrap();
        assert_eq!(clock.source(), TimeSource::ServerDate);
        assert_eq!(clock.now_ms(1_000), Some(NOW));
        // A close server date leaves SNTP in charge.
        clock.on_sntp(2_000, NOW + 1_000).unwrap();
        clock.on_server_date(3_000, NOW + 2_500).unwrap();
        assert_eq!(clock.source(), TimeSource::Sntp);
    }
}
