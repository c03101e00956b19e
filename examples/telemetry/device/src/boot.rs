//! Why the device restarted: the chip's reset reason combined with what the firmware
//! noted before it reset itself, as the word the first reading after a boot carries
//! (`reset_reason`, see `telemetry_protocol::RealTimeDataUpdate`).
//!
//! The chip only knows *how* it was reset (power-on, a watchdog, a software reset…).
//! Before the firmware resets on purpose it writes a [`RestartCause`] into RAM that
//! survives a software reset (RTC fast memory on the ESP32-C3, see firmware/README.md),
//! so a panic and a restart after repeated TLS failures are told apart from a plain
//! software reset.

/// Why the firmware reset the chip itself, noted before [`esp_hal::system::software_reset`]
/// in memory that survives it.
///
/// [`esp_hal::system::software_reset`]: https://docs.rs/esp-hal/1.2/esp_hal/system/fn.software_reset.html
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RestartCause {
    /// The panic handler logged a panic and reset.
    Panic = 1,
    /// Too many consecutive TLS failures (see [`crate::TlsFailures`]).
    TlsFailures = 2,
    /// Someone asked on the console (`reboot`, or after changing the settings).
    Console = 3,
}

impl RestartCause {
    /// The value stored in retained memory; never `0` (what that memory holds after
    /// power-on is not relied on: see [`RestartNote`]).
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The cause a stored code stands for.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(RestartCause::Panic),
            2 => Some(RestartCause::TlsFailures),
            3 => Some(RestartCause::Console),
            _ => None,
        }
    }
}

/// The note as stored in retained RAM: a magic word and the cause, so that random
/// power-on contents are not read as a cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartNote {
    /// [`RestartNote::MAGIC`] when a cause was written.
    pub magic: u32,
    /// [`RestartCause::code`].
    pub code: u8,
}

impl RestartNote {
    /// Marks a note as written by this firmware.
    pub const MAGIC: u32 = 0x5753_4757; // "WSGW"

    /// No note.
    pub const EMPTY: RestartNote = RestartNote { magic: 0, code: 0 };

    /// The note for `cause`.
    pub const fn new(cause: RestartCause) -> Self {
        RestartNote {
            magic: Self::MAGIC,
            code: cause.code(),
        }
    }

    /// The cause this note records, if it is one.
    pub fn cause(&self) -> Option<RestartCause> {
        if self.magic != Self::MAGIC {
            return None;
        }
        RestartCause::from_code(self.code)
    }
}

/// The ESP32-C3's reset reasons (`esp_hal::rtc_cntl::SocResetReason`, the values of
/// the ROM's `rtc_get_reset_reason`) as the words a reading carries.
///
/// `note` is what the firmware wrote before resetting itself (only believed when the
/// chip reports a software reset; a note left over from before a watchdog or a
/// power cut is ignored).
///
/// ```
/// use telemetry_device::{reset_reason, RestartCause, RestartNote};
///
/// assert_eq!(reset_reason(Some(0x01), None), "power_on");
/// assert_eq!(reset_reason(Some(0x10), None), "watchdog");
/// let note = RestartNote::new(RestartCause::Panic);
/// assert_eq!(reset_reason(Some(0x03), note.cause()), "panic");
/// ```
pub fn reset_reason(chip_reason: Option<u32>, note: Option<RestartCause>) -> &'static str {
    let Some(code) = chip_reason else {
        return "unknown";
    };
    match code {
        // ChipPowerOn (also brown-out and the super watchdog, which share the code).
        0x01 => "power_on",
        // CoreSw, Cpu0Sw: esp_hal::system::software_reset and friends.
        0x03 | 0x0C => match note {
            Some(RestartCause::Panic) => "panic",
            Some(RestartCause::TlsFailures) => "tls_failures",
            Some(RestartCause::Console) => "console",
            None => "software",
        },
        0x05 => "deep_sleep",
        // CoreMwdt0/1, Cpu0Mwdt0/1: the timer groups' watchdogs.
        0x07 | 0x08 | 0x0B | 0x11 => "watchdog",
        // CoreRtcWdt, Cpu0RtcWdt, SysRtcWdt: the RTC watchdog the firmware feeds.
        0x09 | 0x0D | 0x10 => "watchdog",
        0x12 => "super_watchdog",
        0x0F => "brownout",
        0x13 | 0x17 => "glitch",
        0x14 => "efuse_error",
        // CoreUsbUart, CoreUsbJtag: the host reset the chip over USB (espflash).
        0x15 | 0x16 => "usb",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry_protocol::validate_reset_reason;

    #[test]
    fn every_chip_reason_maps_to_a_valid_protocol_word() {
        for code in 0..=0x20 {
            for note in [
                None,
                Some(RestartCause::Panic),
                Some(RestartCause::TlsFailures),
                Some(RestartCause::Console),
            ] {
                let word = reset_reason(Some(code), note);
                validate_reset_reason(word).unwrap();
            }
        }
        validate_reset_reason(reset_reason(None, None)).unwrap();
    }

    #[test]
    fn the_firmwares_note_names_a_software_reset_and_nothing_else() {
        let panic = Some(RestartCause::Panic);
        assert_eq!(reset_reason(Some(0x03), panic), "panic");
        assert_eq!(reset_reason(Some(0x0C), panic), "panic");
        assert_eq!(
            reset_reason(Some(0x03), Some(RestartCause::TlsFailures)),
            "tls_failures"
        );
        assert_eq!(reset_reason(Some(0x03), None), "software");
        // A note left from an earlier panic does not turn a watchdog into a panic.
        assert_eq!(reset_reason(Some(0x10), panic), "watchdog");
        assert_eq!(reset_reason(Some(0x01), panic), "power_on");
    }

    #[test]
    fn watchdogs_brownouts_and_usb_resets_are_told_apart() {
        for code in [0x07, 0x08, 0x09, 0x0B, 0x0D, 0x10, 0x11] {
            assert_eq!(reset_reason(Some(code), None), "watchdog", "{code:#x}");
        }
        assert_eq!(reset_reason(Some(0x0F), None), "brownout");
        assert_eq!(reset_reason(Some(0x15), None), "usb");
        assert_eq!(reset_reason(Some(0x99), None), "unknown");
    }

    #[test]
    fn only_a_note_with_the_magic_word_names_a_cause() {
        for cause in [
            RestartCause::Panic,
            RestartCause::TlsFailures,
            RestartCause::Console,
        ] {
            assert_eq!(RestartNote::new(cause).cause(), Some(cause));
            assert_eq!(RestartCause::from_code(cause.code()), Some(cause));
        }
        assert_eq!(RestartNote::EMPTY.cause(), None);
        let garbage = RestartNote {
            magic: 0xDEAD_BEEF,
            code: 1,
        };
        assert_eq!(garbage.cause(), None);
        let unknown = RestartNote {
            magic: RestartNote::MAGIC,
            code: 77,
        };
        assert_eq!(unknown.cause(), None);
    }
}
