//! What a sample carries: the external temperature/humidity sensor when it answers,
//! the chip's own readings otherwise, and when to try a silent sensor again.

use heapless::Vec;

use crate::device::MAX_SAMPLE_METRICS;

/// One reading of an external temperature/humidity sensor (SHT4x), in the driver's
/// fixed-point units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClimateReading {
    /// Temperature in thousandths of a degree Celsius.
    pub milli_celsius: i32,
    /// Relative humidity in thousandths of a percent.
    pub milli_percent_rh: i32,
}

/// Everything one sample is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleInputs {
    /// The external sensor's reading, `None` when it did not answer (or is not due).
    pub climate: Option<ClimateReading>,
    /// The chip's internal temperature sensor, in °C (NaN when it failed).
    pub chip_celsius: f32,
    /// Device uptime in milliseconds.
    pub uptime_ms: u64,
    /// Wi-Fi signal strength in dBm, `None` while not joined.
    pub rssi_dbm: Option<i32>,
    /// Readings dropped from the offline buffer so far.
    pub offline_dropped: u32,
}

/// The metrics of one sample, in the protocol's names:
///
/// - `temperature_c`: the external sensor's, or the chip's when no sensor answered
///   (the chip runs warmer than the air: `ext_sensor` tells which);
/// - `humidity_pct`: only from the external sensor;
/// - `ext_sensor`: 1 when temperature and humidity come from the external sensor, 0
///   when they fell back to the chip;
/// - `uptime_s`, `rssi_dbm` (when joined), `offline_dropped`.
///
/// Values are rounded to two decimals; a chip temperature that is not a number is
/// left out.
pub fn sample_metrics(inputs: &SampleInputs) -> Vec<(&'static str, f64), MAX_SAMPLE_METRICS> {
    let mut metrics = Vec::new();
    let mut push = |name: &'static str, value: f64| {
        if value.is_finite() {
            // Cannot overflow: at most six metrics, MAX_SAMPLE_METRICS is 8.
            let _ = metrics.push((name, value));
        }
    };
    match inputs.climate {
        Some(climate) => {
            push(
                "temperature_c",
                round2(f64::from(climate.milli_celsius) / 1_000.0),
            );
            push(
                "humidity_pct",
                round2(f64::from(climate.milli_percent_rh) / 1_000.0),
            );
            push("ext_sensor", 1.0);
        }
        None => {
            if inputs.chip_celsius.is_finite() {
                push("temperature_c", round2(f64::from(inputs.chip_celsius)));
            }
            push("ext_sensor", 0.0);
        }
    }
    push("uptime_s", (inputs.uptime_ms / 1_000) as f64);
    if let Some(rssi) = inputs.rssi_dbm {
        push("rssi_dbm", f64::from(rssi));
    }
    push("offline_dropped", f64::from(inputs.offline_dropped));
    metrics
}

/// Rounds to two decimals (no `f64::round` without std).
pub fn round2(value: f64) -> f64 {
    let scaled = value * 100.0;
    let rounded = if scaled >= 0.0 {
        scaled + 0.5
    } else {
        scaled - 0.5
    };
    (rounded as i64) as f64 / 100.0
}

/// Whether to ask the external sensor at this sample: always while it answers; after
/// it stopped answering, again after a pause that doubles up to
/// [`SensorSchedule::MAX_PAUSE_MS`], so a missing sensor costs one I²C timeout a
/// minute at most and a reconnected one is found again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SensorSchedule {
    failures: u32,
    next_try_ms: u64,
}

impl SensorSchedule {
    /// The first pause after a failure.
    pub const FIRST_PAUSE_MS: u64 = 2_000;
    /// The longest pause between attempts.
    pub const MAX_PAUSE_MS: u64 = 60_000;

    /// Whether to read the sensor at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_try_ms
    }

    /// Consecutive failed reads.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The sensor answered.
    pub fn on_success(&mut self) {
        self.failures = 0;
        self.next_try_ms = 0;
    }

    /// The sensor did not answer at `now_ms`; returns the pause before the next try.
    pub fn on_failure(&mut self, now_ms: u64) -> u64 {
        let pause = Self::FIRST_PAUSE_MS
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MAX_PAUSE_MS);
        self.failures = self.failures.saturating_add(1);
        self.next_try_ms = now_ms.saturating_add(pause);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(climate: Option<ClimateReading>) -> SampleInputs {
        SampleInputs {
            climate,
            chip_celsius: 41.237,
            uptime_ms: 17_900,
            rssi_dbm: Some(-58),
            offline_dropped: 3,
        }
    }

    #[test]
    fn the_external_sensor_fills_temperature_and_humidity() {
        let metrics = sample_metrics(&inputs(Some(ClimateReading {
            milli_celsius: 22_345,
            milli_percent_rh: 41_004,
        })));
        assert_eq!(
            metrics.as_slice(),
            [
                ("temperature_c", 22.35),
                ("humidity_pct", 41.0),
                ("ext_sensor", 1.0),
                ("uptime_s", 17.0),
                ("rssi_dbm", -58.0),
                ("offline_dropped", 3.0),
            ]
        );
    }

    #[test]
    fn without_the_sensor_the_chips_temperature_is_the_fallback() {
        let metrics = sample_metrics(&SampleInputs {
            rssi_dbm: None,
            ..inputs(None)
        });
        assert_eq!(
            metrics.as_slice(),
            [
                ("temperature_c", 41.24),
                ("ext_sensor", 0.0),
                ("uptime_s", 17.0),
                ("offline_dropped", 3.0),
            ]
        );
        let broken = sample_metrics(&SampleInputs {
            chip_celsius: f32::NAN,
            ..inputs(None)
        });
        assert!(broken.iter().all(|(name, _)| *name != "temperature_c"));
    }

    #[test]
    fn the_metrics_are_valid_samples_for_the_device() {
        for climate in [
            None,
            Some(ClimateReading {
                milli_celsius: -40_000,
                milli_percent_rh: 100_000,
            }),
        ] {
            let metrics = sample_metrics(&inputs(climate));
            let mut device = crate::Device::<4>::new(crate::Config::new("d").unwrap(), 0).unwrap();
            device.on_sample(0, &metrics).unwrap();
        }
    }

    #[test]
    fn a_silent_sensor_is_retried_less_and_less_often_up_to_a_minute() {
        let mut schedule = SensorSchedule::default();
        assert!(schedule.due(0));
        let pauses: [u64; 7] = core::array::from_fn(|i| schedule.on_failure(i as u64));
        assert_eq!(
            pauses,
            [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        assert!(!schedule.due(6 + 59_999));
        assert!(schedule.due(6 + 60_000));
        schedule.on_success();
        assert_eq!(schedule.failures(), 0);
        assert!(schedule.due(0));
    }

    #[test]
    fn rounding_keeps_two_decimals_both_sides_of_zero() {
        assert_eq!(round2(31.425), 31.43);
        assert_eq!(round2(-1.23456), -1.23);
        assert_eq!(round2(0.0), 0.0);
    }
}
