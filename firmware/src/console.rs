//! The serial console: provisioning commands (`telemetry_device::settings`) typed
//! into `espflash monitor` (or any terminal) over the chip's USB-Serial-JTAG port or
//! UART0 (GPIO20 RX), whichever the board wires to its USB connector. Replies go out
//! through esp-println, like the log.

use embassy_futures::select::{select, Either};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::Mutex;
use embedded_io_async::Read;
use esp_hal::uart::UartRx;
use esp_hal::usb::usb_serial_jtag::UsbSerialJtagRx;
use esp_hal::Async;
use esp_println::println;
use heapless::Vec;
use telemetry_device::settings::MAX_LINE_LEN;
use telemetry_device::{Command, RestartCause, SettingKey, Settings};

use crate::storage::Store;

/// The settings partition, shared by the console and the main loop (which stores the
/// sample interval the dashboard sets).
pub static STORE: Mutex<CriticalSectionRawMutex, Option<Store>> = Mutex::new(None);

/// One input's partial line.
#[derive(Default)]
struct Line {
    bytes: Vec<u8, MAX_LINE_LEN>,
    overflowed: bool,
}

impl Line {
    /// Adds `byte`; returns the finished line at a line end.
    fn push(&mut self, byte: u8) -> Option<Result<&str, ()>> {
        if byte == b'\r' || byte == b'\n' {
            let overflowed = core::mem::take(&mut self.overflowed);
            if overflowed {
                self.bytes.clear();
                return Some(Err(()));
            }
            return Some(core::str::from_utf8(&self.bytes).map_err(|_| ()));
        }
        if self.bytes.push(byte).is_err() {
            self.overflowed = true;
        }
        None
    }
}

/// Reads command lines from both inputs for ever.
#[embassy_executor::task]
pub async fn console_task(
    mut usb: UsbSerialJtagRx<'static, Async>,
    mut uart: UartRx<'static, Async>,
    settings: &'static mut Settings,
) {
    let mut usb_line = Line::default();
    let mut uart_line = Line::default();
    let mut usb_buf = [0u8; 64];
    let mut uart_buf = [0u8; 64];
    loop {
        let (line, input) =
            match select(usb.read(&mut usb_buf), uart.read_async(&mut uart_buf)).await {
                Either::First(Ok(n)) => (&mut usb_line, &usb_buf[..n]),
                Either::Second(Ok(n)) => (&mut uart_line, &uart_buf[..n]),
                // A framing error or a detached USB host: nothing to read this time.
                Either::First(Err(_)) | Either::Second(Err(_)) => continue,
            };
        for &byte in input {
            let Some(finished) = line.push(byte) else {
                continue;
            };
            match finished {
                Ok(text) => {
                    let mut copy: heapless::String<MAX_LINE_LEN> = heapless::String::new();
                    let _ = copy.push_str(text);
                    line.bytes.clear();
                    run(&copy, settings).await;
                }
                Err(()) => {
                    line.bytes.clear();
                    println!("error: {}", telemetry_device::SettingError::BadLine);
                }
            }
        }
    }
}

async fn run(line: &str, settings: &mut Settings) {
    let command = match Command::parse(line) {
        Ok(Some(command)) => command,
        Ok(None) => return,
        Err(error) => {
            println!("error: {error}");
            return;
        }
    };
    match command {
        Command::Help => println!(
            "commands: show | set KEY VALUE | unset KEY | reboot | factory-reset\n\
             keys: wifi_ssid wifi_password url device_id token i2c_sda i2c_scl sample_interval_ms\n\
             changes are stored in flash at once and take effect after reboot"
        ),
        Command::Show => {
            let mut listing: heapless::String<1_024> = heapless::String::new();
            let _ = settings.write_listing(&mut listing);
            println!("{listing}");
            let missing: Vec<SettingKey, 8> = settings.missing().collect();
            if !missing.is_empty() {
                println!("missing: {missing:?} (the device does not connect without them)");
            }
        }
        Command::Set(key, value) => {
            let stored = store(Change::Save(key, Some(value))).await;
            if stored && settings.set(key, value).is_ok() {
                println!("{key} stored; reboot to apply");
            }
        }
        Command::Unset(key) => {
            if store(Change::Save(key, None)).await {
                settings.unset(key);
                println!("{key} unset (the build-time default applies); reboot to apply");
            }
        }
        Command::FactoryReset => {
            if store(Change::EraseAll).await {
                settings.forget_stored();
                println!("every stored setting erased; reboot to apply");
            }
        }
        Command::Reboot => {
            println!("rebooting");
            crate::restart(RestartCause::Console);
        }
    }
}

/// A change to the stored settings.
enum Change<'a> {
    Save(SettingKey, Option<&'a str>),
    EraseAll,
}

/// Writes `change` to the settings partition; says why not when there is none or the
/// write fails.
async fn store(change: Change<'_>) -> bool {
    let mut guard = STORE.lock().await;
    let Some(store) = guard.as_mut() else {
        println!(
            "error: no settings partition; flash with --partition-table partitions.csv (README.md, Provisioning)"
        );
        return false;
    };
    let result = match change {
        Change::Save(key, value) => store.save(key, value).await,
        Change::EraseAll => store.erase().await,
    };
    match result {
        Ok(()) => true,
        Err(error) => {
            println!("error: {error}");
            false
        }
    }
}
