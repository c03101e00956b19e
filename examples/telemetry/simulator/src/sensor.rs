//! Plausible sensor values that drift like real ones.

use telemetry_device::SplitMix64;

/// A value that wanders around a mean and is pulled back to it (an Ornstein–Uhlenbeck
/// process): no jumps, no runaway, different for every device.
#[derive(Debug, Clone)]
struct Drift {
    value: f64,
    mean: f64,
    /// Pull back towards the mean, per second.
    reversion: f64,
    /// Noise, per square root of a second.
    volatility: f64,
}

impl Drift {
    fn step(&mut self, dt_s: f64, rng: &mut SplitMix64) -> f64 {
        let dt_s = dt_s.clamp(0.0, 3_600.0);
        self.value += self.reversion * (self.mean - self.value) * dt_s
            + self.volatility * dt_s.sqrt() * gaussian(rng);
        self.value
    }
}

/// A standard normal sample (Box–Muller).
fn gaussian(rng: &mut SplitMix64) -> f64 {
    let unit = |rng: &mut SplitMix64| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u1, u2) = (unit(rng), unit(rng));
    (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The simulated sensors of one device: the metrics the ESP32-C3 firmware reports
/// (`temperature_c`, `rssi_dbm`, `uptime_s`) plus a humidity sensor.
#[derive(Debug, Clone)]
pub struct Sensors {
    rng: SplitMix64,
    temperature: Drift,
    humidity: Drift,
    rssi: Drift,
    last_ms: Option<u64>,
}

impl Sensors {
    /// Sensors of device number `index`, seeded so runs can be repeated.
    pub fn new(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0xA5A5_5A5A_0F0F_F0F0);
        let spread = |rng: &mut SplitMix64, range: f64| gaussian(rng) * range;
        let temperature_mean = 22.0 + spread(&mut rng, 2.0);
        let humidity_mean = (45.0 + spread(&mut rng, 8.0)).clamp(20.0, 80.0);
        let rssi_mean = (-60.0 + spread(&mut rng, 8.0)).clamp(-85.0, -35.0);
        Sensors {
            temperature: Drift {
                value: temperature_mean,
                mean: temperature_mean,
                reversion: 0.002,
                volatility: 0.05,
            },
            humidity: Drift {
                value: humidity_mean,
                mean: humidity_mean,
                reversion: 0.002,
                volatility: 0.15,
            },
            rssi: Drift {
                value: rssi_mean,
                mean: rssi_mean,
                reversion: 0.05,
                volatility: 1.0,
            },
            rng,
            last_ms: None,
        }
    }

    /// Reads every sensor at device uptime `now_ms`.
    pub fn read(&mut self, now_ms: u64) -> [(&'static str, f64); 4] {
        let dt_s = match self.last_ms {
            Some(last) => now_ms.saturating_sub(last) as f64 / 1_000.0,
            None => 0.0,
        };
        self.last_ms = Some(now_ms);
        let temperature = self.temperature.step(dt_s, &mut self.rng);
        let humidity = self.humidity.step(dt_s, &mut self.rng).clamp(0.0, 100.0);
        let rssi = self.rssi.step(dt_s, &mut self.rng).clamp(-100.0, -20.0);
        [
            ("temperature_c", round2(temperature)),
            ("humidity_pct", round2(humidity)),
            ("rssi_dbm", rssi.round()),
            ("uptime_s", (now_ms / 1_000) as f64),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_drift_slowly_and_stay_plausible() {
        let mut sensors = Sensors::new(1);
        let mut previous = sensors.read(0);
        for step in 1..=3_600u64 {
            let now = step * 1_000;
            let reading = sensors.read(now);
            let temperature = reading[0].1;
            assert!((10.0..=35.0).contains(&temperature), "{temperature}");
            assert!(
                (temperature - previous[0].1).abs() < 0.5,
                "no jumps in a second"
            );
            assert!((0.0..=100.0).contains(&reading[1].1));
            assert!((-100.0..=-20.0).contains(&reading[2].1));
            assert_eq!(reading[3].1, step as f64);
            previous = reading;
        }
    }

    #[test]
    fn devices_differ_and_a_seed_repeats() {
        let a: Vec<_> = (0..5).map(|i| Sensors::new(1).read(i * 1_000)).collect();
        let mut same = Sensors::new(1);
        let b: Vec<_> = (0..5).map(|i| same.read(i * 1_000)).collect();
        let mut other = Sensors::new(2);
        let c: Vec<_> = (0..5).map(|i| other.read(i * 1_000)).collect();
        assert_eq!(a[0], b[0]);
        assert_ne!(b, c);
    }
}
