//! The readings: a Sensirion SHT4x on I²C (temperature and humidity, through the
//! `sht4x` driver's async API on esp-hal's async I²C master), the chip's own
//! temperature sensor (esp-hal TSENS) as the fallback, uptime and Wi-Fi RSSI. Which
//! metrics a sample carries is `telemetry_device::sample_metrics`, host-tested.

use embassy_time::Delay;
use esp_hal::gpio::AnyPin;
use esp_hal::i2c::master::{Config as I2cConfig, I2c};
use esp_hal::tsens::TemperatureSensor;
use esp_hal::Async;
use log::{info, warn};
use sht4x::{Precision, Sht4xAsync};
use telemetry_device::{ClimateReading, SampleInputs, SensorSchedule};

type Sht4x = Sht4xAsync<I2c<'static, Async>, Delay>;

/// The device's sensors.
pub struct Sensors {
    chip: TemperatureSensor<'static>,
    climate: Option<Sht4x>,
    schedule: SensorSchedule,
}

impl Sensors {
    /// The chip's sensor, and an SHT4x on `pins` (SDA, SCL) when given.
    pub fn new(
        chip: TemperatureSensor<'static>,
        i2c: esp_hal::peripherals::I2C0<'static>,
        pins: Option<(u8, u8)>,
    ) -> Self {
        let climate = pins.and_then(|(sda, scl)| {
            // SAFETY: the settings only accept I2C_CAPABLE_PINS, which nothing else in
            // this firmware uses (not flash, USB, the console UART or strapping pins),
            // and SDA != SCL, so each pin has exactly this one user.
            let (sda_pin, scl_pin) = unsafe { (AnyPin::steal(sda), AnyPin::steal(scl)) };
            match I2c::new(i2c, I2cConfig::default()) {
                Ok(bus) => {
                    info!("sensor: SHT4x on I2C, SDA GPIO{sda}, SCL GPIO{scl}");
                    Some(Sht4xAsync::new(
                        bus.with_sda(sda_pin).with_scl(scl_pin).into_async(),
                    ))
                }
                Err(error) => {
                    warn!("sensor: cannot configure I2C: {error:?}; chip temperature only");
                    None
                }
            }
        });
        Sensors {
            chip,
            climate,
            schedule: SensorSchedule::default(),
        }
    }

    /// Reads everything at `now_ms`: the SHT4x when it is due (see
    /// `SensorSchedule`), the chip's temperature always.
    pub async fn read(
        &mut self,
        now_ms: u64,
        rssi_dbm: Option<i32>,
        offline_dropped: u32,
    ) -> SampleInputs {
        let mut climate = None;
        if let Some(sensor) = self.climate.as_mut() {
            if self.schedule.due(now_ms) {
                match sensor.measure(Precision::High, &mut Delay).await {
                    Ok(measurement) => {
                        if self.schedule.failures() > 0 {
                            info!("sensor: the SHT4x answers again");
                        }
                        self.schedule.on_success();
                        climate = Some(ClimateReading {
                            milli_celsius: measurement.temperature_milli_celsius(),
                            milli_percent_rh: measurement.humidity_milli_percent(),
                        });
                    }
                    Err(error) => {
                        let pause = self.schedule.on_failure(now_ms);
                        if self.schedule.failures() == 1 {
                            warn!(
                                "sensor: the SHT4x did not answer ({error:?}); chip temperature until it does, next try in {pause} ms"
                            );
                        }
                    }
                }
            }
        }
        SampleInputs {
            climate,
            chip_celsius: self.chip.get_temperature().to_celsius(),
            uptime_ms: now_ms,
            rssi_dbm,
            offline_dropped,
        }
    }
}
