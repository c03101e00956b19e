//! Provisioning: the settings a device needs to connect, where they come from
//! (build-time defaults, overridden by what was stored in flash) and the serial
//! console commands that change them.
//!
//! Console commands, one per line (`\r`, `\n` or both end it):
//!
//! | command | effect |
//! | --- | --- |
//! | `help` | lists the commands and keys |
//! | `show` | every setting, where it comes from (`stored`, `default`, `unset`); secrets masked |
//! | `set KEY VALUE` | checks and stores one setting; VALUE is the rest of the line, spaces included |
//! | `unset KEY` | forgets the stored value: the build-time default applies again |
//! | `reboot` | restarts with the stored settings |
//! | `factory-reset` | forgets every stored value |
//!
//! Keys: `wifi_ssid`, `wifi_password`, `url`, `device_id`, `token`, `i2c_sda`,
//! `i2c_scl`, `sample_interval_ms` ([`SettingKey`]).

use core::fmt;

use heapless::String;
use telemetry_protocol::{validate_device_id, validate_sample_interval, DeviceId};

use crate::endpoint::Endpoint;

/// Longest URL the device stores.
pub const MAX_URL_LEN: usize = 256;
/// Longest `$connect` token the device stores.
pub const MAX_TOKEN_LEN: usize = 128;
/// Longest console line [`Command::parse`] is given (the longest `set` plus slack).
pub const MAX_LINE_LEN: usize = 300;

/// GPIOs of the ESP32-C3 that can carry I²C without disturbing anything else: not the
/// SPI flash (12–17), USB (18, 19), the console UART (20, 21) or the boot strapping
/// pins (2, 8, 9).
pub const I2C_CAPABLE_PINS: [u8; 8] = [0, 1, 3, 4, 5, 6, 7, 10];

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SettingKey {
    /// The Wi-Fi network (1–32 bytes).
    WifiSsid = 1,
    /// The WPA2 passphrase: empty for an open network, else 8–63 printable ASCII
    /// characters or 64 hex digits.
    WifiPassword = 2,
    /// `ws://…` or `wss://…`.
    Url = 3,
    /// The protocol device id.
    DeviceId = 4,
    /// Optional `&token=` for a `$connect` authorizer.
    Token = 5,
    /// GPIO of the sensor's SDA line.
    I2cSda = 6,
    /// GPIO of the sensor's SCL line.
    I2cScl = 7,
    /// The last sample interval (the dashboard's `control` sets it too).
    SampleIntervalMs = 8,
}

impl SettingKey {
    /// Every key, in the order `show` lists them.
    pub const ALL: [SettingKey; 8] = [
        SettingKey::WifiSsid,
        SettingKey::WifiPassword,
        SettingKey::Url,
        SettingKey::DeviceId,
        SettingKey::Token,
        SettingKey::I2cSda,
        SettingKey::I2cScl,
        SettingKey::SampleIntervalMs,
    ];

    /// The key's name on the console.
    pub const fn name(self) -> &'static str {
        match self {
            SettingKey::WifiSsid => "wifi_ssid",
            SettingKey::WifiPassword => "wifi_password",
            SettingKey::Url => "url",
            SettingKey::DeviceId => "device_id",
            SettingKey::Token => "token",
            SettingKey::I2cSda => "i2c_sda",
            SettingKey::I2cScl => "i2c_scl",
            SettingKey::SampleIntervalMs => "sample_interval_ms",
        }
    }

    /// The key stored in flash (never changes, whatever the name).
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The key of a stored id.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.id() == id)
    }

    /// The key called `name` on the console.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.name() == name)
    }

    /// Whether `show` masks the value.
    pub const fn is_secret(self) -> bool {
        matches!(self, SettingKey::WifiPassword | SettingKey::Token)
    }

    /// Whether the device cannot connect without it.
    pub const fn is_required(self) -> bool {
        matches!(
            self,
            SettingKey::WifiSsid | SettingKey::Url | SettingKey::DeviceId
        )
    }

    /// Checks a value for this key (an empty value is never valid: `unset` removes).
    pub fn validate(self, value: &str) -> Result<(), SettingError> {
        let fail = |reason| Err(SettingError::Invalid { key: self, reason });
        if value.is_empty() {
            return fail("is empty (use unset to go back to the default)");
        }
        match self {
            SettingKey::WifiSsid if value.len() > 32 => fail("must be at most 32 bytes"),
            SettingKey::WifiPassword => {
                let hex = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
                let passphrase = (8..=63).contains(&value.len())
                    && value.bytes().all(|b| (b' '..=b'~').contains(&b));
                if hex || passphrase {
                    Ok(())
                } else {
                    fail("must be 8-63 printable ASCII characters or 64 hex digits")
                }
            }
            SettingKey::Url => {
                if value.len() > MAX_URL_LEN {
                    return fail("is longer than 256 bytes");
                }
                match Endpoint::parse(value) {
                    Ok(_) => Ok(()),
                    Err(_) => fail("must be ws://HOST[:PORT][/PATH] or wss://HOST[:PORT][/PATH]"),
                }
            }
            SettingKey::DeviceId => validate_device_id(value)
                .or_else(|_| fail("must be 1-64 characters of A-Z a-z 0-9 _ . : -")),
            SettingKey::Token => {
                if value.len() > MAX_TOKEN_LEN || !value.bytes().all(|b| b.is_ascii_graphic()) {
                    fail("must be at most 128 printable characters without spaces")
                } else {
                    Ok(())
                }
            }
            SettingKey::I2cSda | SettingKey::I2cScl => match value.parse::<u8>() {
                Ok(pin) if I2C_CAPABLE_PINS.contains(&pin) => Ok(()),
                _ => fail("must be one of GPIO 0, 1, 3, 4, 5, 6, 7, 10"),
            },
            SettingKey::SampleIntervalMs => match value.parse::<u64>() {
                Ok(ms) if validate_sample_interval(ms).is_ok() => Ok(()),
                _ => fail("must be 250-3600000"),
            },
            SettingKey::WifiSsid => Ok(()),
        }
    }
}

impl fmt::Display for SettingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a setting or a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingError {
    /// A value this key does not take.
    Invalid {
        /// The key.
        key: SettingKey,
        /// What it must be.
        reason: &'static str,
    },
    /// Not a key ([`SettingKey::ALL`]).
    UnknownKey,
    /// Not a command.
    UnknownCommand,
    /// `set` without a value, or `unset` without a key.
    MissingArgument,
    /// A line longer than [`MAX_LINE_LEN`] or not UTF-8.
    BadLine,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::Invalid { key, reason } => write!(f, "{key} {reason}"),
            SettingError::UnknownKey => f.write_str(
                "unknown key; keys: wifi_ssid wifi_password url device_id token i2c_sda i2c_scl sample_interval_ms",
            ),
            SettingError::UnknownCommand => {
                f.write_str("unknown command; commands: help show set unset reboot factory-reset")
            }
            SettingError::MissingArgument => {
                f.write_str("usage: set KEY VALUE | unset KEY")
            }
            SettingError::BadLine => write!(f, "lines are UTF-8 and at most {MAX_LINE_LEN} bytes"),
        }
    }
}

impl core::error::Error for SettingError {}

/// One console command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `help`
    Help,
    /// `show`
    Show,
    /// `set KEY VALUE` (checked).
    Set(SettingKey, &'a str),
    /// `unset KEY`
    Unset(SettingKey),
    /// `reboot`
    Reboot,
    /// `factory-reset`
    FactoryReset,
}

impl<'a> Command<'a> {
    /// Parses one console line (without or with its line ending). An empty line is
    /// `Ok(None)`. `set`'s value is the rest of the line after one space, kept as
    /// typed (an SSID or passphrase may contain spaces).
    pub fn parse(line: &'a str) -> Result<Option<Self>, SettingError> {
        if line.len() > MAX_LINE_LEN {
            return Err(SettingError::BadLine);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let (word, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        let command = match word {
            "help" | "?" => Command::Help,
            "show" => Command::Show,
            "reboot" => Command::Reboot,
            "factory-reset" => Command::FactoryReset,
            "unset" => {
                let name = rest.trim();
                if name.is_empty() {
                    return Err(SettingError::MissingArgument);
                }
                Command::Unset(SettingKey::from_name(name).ok_or(SettingError::UnknownKey)?)
            }
            "set" => {
                let rest = rest.trim_start();
                let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                if name.is_empty() {
                    return Err(SettingError::MissingArgument);
                }
                let key = SettingKey::from_name(name).ok_or(SettingError::UnknownKey)?;
                if value.is_empty() {
                    return Err(SettingError::MissingArgument);
                }
                key.validate(value)?;
                Command::Set(key, value)
            }
            _ => return Err(SettingError::UnknownCommand),
        };
        Ok(Some(command))
    }
}

/// Where a setting's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Stored in flash (set on the console or by the dashboard).
    Stored,
    /// The build-time default.
    Default,
    /// Neither.
    Unset,
}

/// A setting's text, large enough for the longest (the URL).
pub type SettingText = String<MAX_URL_LEN>;

/// Every setting of a device: the build-time defaults with what flash stores laid
/// over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    defaults: [Option<SettingText>; 8],
    stored: [Option<SettingText>; 8],
}

impl Settings {
    /// Settings with `defaults` (key, value) from the build, nothing stored. Invalid
    /// or empty defaults are dropped (build.rs refuses invalid ones first).
    pub fn with_defaults(defaults: &[(SettingKey, &str)]) -> Self {
        let mut settings = Settings {
            defaults: Default::default(),
            stored: Default::default(),
        };
        for (key, value) in defaults {
            if key.validate(value).is_ok() {
                settings.defaults[slot(*key)] = text(value);
            }
        }
        settings
    }

    /// Lays a value read from flash over the default; an invalid stored value (from
    /// an older firmware with other rules, say) is ignored and reported.
    pub fn load_stored(&mut self, key: SettingKey, value: &str) -> Result<(), SettingError> {
        if value.is_empty() {
            // The store writes an empty value for `unset`.
            self.stored[slot(key)] = None;
            return Ok(());
        }
        key.validate(value)?;
        self.stored[slot(key)] = text(value);
        Ok(())
    }

    /// Applies `set` (already validated by [`Command::parse`]; checked again here).
    pub fn set(&mut self, key: SettingKey, value: &str) -> Result<(), SettingError> {
        key.validate(value)?;
        self.stored[slot(key)] = text(value);
        Ok(())
    }

    /// Applies `unset`.
    pub fn unset(&mut self, key: SettingKey) {
        self.stored[slot(key)] = None;
    }

    /// Applies `factory-reset`.
    pub fn forget_stored(&mut self) {
        self.stored = Default::default();
    }

    /// The value in effect and where it comes from.
    pub fn get(&self, key: SettingKey) -> (Option<&str>, Origin) {
        match (&self.stored[slot(key)], &self.defaults[slot(key)]) {
            (Some(value), _) => (Some(value.as_str()), Origin::Stored),
            (None, Some(value)) => (Some(value.as_str()), Origin::Default),
            (None, None) => (None, Origin::Unset),
        }
    }

    /// The value in effect, if any.
    pub fn value(&self, key: SettingKey) -> Option<&str> {
        self.get(key).0
    }

    /// The required settings that have no value: while any is missing the device
    /// says so on the console and does not try to connect.
    pub fn missing(&self) -> impl Iterator<Item = SettingKey> + '_ {
        SettingKey::ALL
            .into_iter()
            .filter(|key| key.is_required() && self.value(*key).is_none())
    }

    /// Everything needed to connect, checked, or the first missing key.
    pub fn connection(&self) -> Result<Connection<'_>, SettingKey> {
        let required = |key| self.value(key).ok_or(key);
        let ssid = required(SettingKey::WifiSsid)?;
        let url = required(SettingKey::Url)?;
        let device_id = required(SettingKey::DeviceId)?;
        let endpoint = Endpoint::parse(url).map_err(|_| SettingKey::Url)?;
        let mut id = DeviceId::new();
        id.push_str(device_id).map_err(|_| SettingKey::DeviceId)?;
        Ok(Connection {
            wifi_ssid: ssid,
            wifi_password: self.value(SettingKey::WifiPassword).unwrap_or(""),
            endpoint,
            device_id: id,
            token: self.value(SettingKey::Token),
        })
    }

    /// The I²C pins (SDA, SCL), when both are set and differ.
    pub fn i2c_pins(&self) -> Option<(u8, u8)> {
        let pin = |key| self.value(key)?.parse::<u8>().ok();
        let (sda, scl) = (pin(SettingKey::I2cSda)?, pin(SettingKey::I2cScl)?);
        (sda != scl).then_some((sda, scl))
    }

    /// The stored (or default) sample interval.
    pub fn sample_interval_ms(&self) -> Option<u32> {
        self.value(SettingKey::SampleIntervalMs)?.parse().ok()
    }

    /// Writes the `show` listing: one `key = value (origin)` line each, secrets as
    /// `******`.
    pub fn write_listing(&self, out: &mut impl fmt::Write) -> fmt::Result {
        for key in SettingKey::ALL {
            let (value, origin) = self.get(key);
            let origin = match origin {
                Origin::Stored => "stored",
                Origin::Default => "default",
                Origin::Unset => "unset",
            };
            match value {
                Some(_) if key.is_secret() => writeln!(out, "{key} = ****** ({origin})")?,
                Some(value) => writeln!(out, "{key} = {value} ({origin})")?,
                None => writeln!(out, "{key} = ({origin})")?,
            }
        }
        Ok(())
    }
}

/// The settings a connection needs, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection<'a> {
    /// The Wi-Fi network.
    pub wifi_ssid: &'a str,
    /// Its passphrase, empty for an open network.
    pub wifi_password: &'a str,
    /// Where to connect.
    pub endpoint: Endpoint<'a>,
    /// The device id.
    pub device_id: DeviceId,
    /// The `$connect` token, if any.
    pub token: Option<&'a str>,
}

fn slot(key: SettingKey) -> usize {
    key.id() as usize - 1
}

fn text(value: &str) -> Option<SettingText> {
    let mut out = SettingText::new();
    out.push_str(value).ok()?;
    Some(out)
}

/// Persisting the sample interval the dashboard sets without wearing the flash out:
/// a change is written once it held for [`IntervalPersistence::SETTLE_MS`], and at
/// most once per [`IntervalPersistence::MIN_SPACING_MS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntervalPersistence {
    saved: Option<u32>,
    pending: Option<(u32, u64)>,
    last_write_ms: Option<u64>,
}

impl IntervalPersistence {
    /// A new interval is written once it held this long.
    pub const SETTLE_MS: u64 = 10_000;
    /// Writes are at least this far apart.
    pub const MIN_SPACING_MS: u64 = 10 * 60 * 1_000;

    /// Starts from the interval flash holds (if any).
    pub fn new(saved: Option<u32>) -> Self {
        IntervalPersistence {
            saved,
            pending: None,
            last_write_ms: None,
        }
    }

    /// The interval in effect at `now_ms`; returns the interval to write now, if any.
    /// Call it on every sample (and after a `control`); after writing, call
    /// [`written`](Self::written).
    pub fn poll(&mut self, now_ms: u64, in_effect: u32) -> Option<u32> {
        if self.saved == Some(in_effect) {
            self.pending = None;
            return None;
        }
        let since = match self.pending {
            Some((value, since)) if value == in_effect => since,
            _ => {
                self.pending = Some((in_effect, now_ms));
                now_ms
            }
        };
        let settled = now_ms.saturating_sub(since) >= Self::SETTLE_MS;
        let spaced = self
            .last_write_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= Self::MIN_SPACING_MS);
        (settled && spaced).then_some(in_effect)
    }

    /// `interval` was written to flash at `now_ms`.
    pub fn written(&mut self, now_ms: u64, interval: u32) {
        self.saved = Some(interval);
        self.pending = None;
        self.last_write_ms = Some(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        Settings::with_defaults(&[
            (SettingKey::WifiSsid, "build-wifi"),
            (SettingKey::Url, "ws://192.168.1.10:8080"),
            (SettingKey::I2cSda, "4"),
            (SettingKey::I2cScl, "5"),
        ])
    }

    #[test]
    fn set_takes_the_rest_of_the_line_spaces_included() {
        assert_eq!(
            Command::parse("set wifi_ssid My Home Wi-Fi\r\n"),
            Ok(Some(Command::Set(SettingKey::WifiSsid, "My Home Wi-Fi")))
        );
        assert_eq!(
            Command::parse("set wifi_password correct horse battery"),
            Ok(Some(Command::Set(
                SettingKey::WifiPassword,
                "correct horse battery"
            )))
        );
        assert_eq!(
            Command::parse("  set url wss://abc.execute-api.eu-west-1.amazonaws.com/production\n"),
            Ok(Some(Command::Set(
                SettingKey::Url,
                "wss://abc.execute-api.eu-west-1.amazonaws.com/production"
            )))
        );
    }

    #[test]
    fn the_other_commands_parse_and_blank_lines_are_nothing() {
        assert_eq!(Command::parse("help"), Ok(Some(Command::Help)));
        assert_eq!(Command::parse("show\r"), Ok(Some(Command::Show)));
        assert_eq!(Command::parse("reboot"), Ok(Some(Command::Reboot)));
        assert_eq!(
            Command::parse("factory-reset"),
            Ok(Some(Command::FactoryReset))
        );
        assert_eq!(
            Command::parse("unset token"),
            Ok(Some(Command::Unset(SettingKey::Token)))
        );
        assert_eq!(Command::parse("\r\n"), Ok(None));
        assert_eq!(Command::parse("   "), Ok(None));
    }

    #[test]
    fn bad_commands_get_a_reason_and_change_nothing() {
        assert_eq!(Command::parse("sett x"), Err(SettingError::UnknownCommand));
        assert_eq!(
            Command::parse("set colour red"),
            Err(SettingError::UnknownKey)
        );
        assert_eq!(
            Command::parse("set url"),
            Err(SettingError::MissingArgument)
        );
        assert_eq!(Command::parse("unset"), Err(SettingError::MissingArgument));
        assert_eq!(
            Command::parse(&"x".repeat(MAX_LINE_LEN + 1)),
            Err(SettingError::BadLine)
        );
        for (line, key) in [
            ("set url https://example.com/", SettingKey::Url),
            ("set device_id has space", SettingKey::DeviceId),
            ("set wifi_password short", SettingKey::WifiPassword),
            (
                "set wifi_ssid 123456789012345678901234567890123",
                SettingKey::WifiSsid,
            ),
            ("set sample_interval_ms 100", SettingKey::SampleIntervalMs),
            ("set i2c_sda 12", SettingKey::I2cSda),
            ("set token a b", SettingKey::Token),
        ] {
            match Command::parse(line) {
                Err(SettingError::Invalid { key: got, .. }) => assert_eq!(got, key, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        let message = Command::parse("set i2c_sda 18").unwrap_err().to_string();
        assert_eq!(
            message,
            "i2c_sda must be one of GPIO 0, 1, 3, 4, 5, 6, 7, 10"
        );
    }

    #[test]
    fn passphrases_follow_wpa2s_rules() {
        let key = SettingKey::WifiPassword;
        assert!(key.validate("12345678").is_ok());
        assert!(key.validate(&"p".repeat(63)).is_ok());
        assert!(
            key.validate(&"a".repeat(64)).is_ok(),
            "64 hex digits: a raw key"
        );
        assert!(key.validate(&"z".repeat(64)).is_err());
        assert!(key.validate("1234567").is_err());
        assert!(key.validate("tab\there!").is_err());
    }

    #[test]
    fn stored_values_override_the_build_defaults_and_unset_brings_them_back() {
        let mut settings = defaults();
        assert_eq!(
            settings.get(SettingKey::WifiSsid),
            (Some("build-wifi"), Origin::Default)
        );
        settings.set(SettingKey::WifiSsid, "field-wifi").unwrap();
        assert_eq!(
            settings.get(SettingKey::WifiSsid),
            (Some("field-wifi"), Origin::Stored)
        );
        settings.unset(SettingKey::WifiSsid);
        assert_eq!(settings.value(SettingKey::WifiSsid), Some("build-wifi"));
        settings.load_stored(SettingKey::Token, "t0k3n").unwrap();
        settings.forget_stored();
        assert_eq!(settings.get(SettingKey::Token), (None, Origin::Unset));
    }

    #[test]
    fn an_unconfigured_device_knows_what_is_missing() {
        let mut settings = defaults();
        assert_eq!(
            settings.missing().collect::<Vec<_>>(),
            [SettingKey::DeviceId]
        );
        assert_eq!(settings.connection().unwrap_err(), SettingKey::DeviceId);
        settings.set(SettingKey::DeviceId, "esp32-c3-07").unwrap();
        assert_eq!(settings.missing().count(), 0);
        let connection = settings.connection().unwrap();
        assert_eq!(connection.wifi_ssid, "build-wifi");
        assert_eq!(connection.wifi_password, "");
        assert_eq!(connection.endpoint.port, 8080);
        assert_eq!(connection.device_id, "esp32-c3-07");
        assert_eq!(connection.token, None);
        assert_eq!(
            Settings::with_defaults(&[]).missing().collect::<Vec<_>>(),
            [SettingKey::WifiSsid, SettingKey::Url, SettingKey::DeviceId]
        );
    }

    #[test]
    fn invalid_defaults_and_stored_values_are_not_used() {
        let mut settings = Settings::with_defaults(&[
            (SettingKey::Url, "http://wrong"),
            (SettingKey::DeviceId, ""),
        ]);
        assert_eq!(settings.value(SettingKey::Url), None);
        assert!(settings
            .load_stored(SettingKey::DeviceId, "bad id")
            .is_err());
        assert_eq!(settings.value(SettingKey::DeviceId), None);
        settings.load_stored(SettingKey::DeviceId, "").unwrap();
        assert_eq!(settings.value(SettingKey::DeviceId), None);
    }

    #[test]
    fn show_masks_secrets_and_tells_where_values_come_from() {
        let mut settings = defaults();
        settings
            .set(SettingKey::WifiPassword, "hunter2hunter2")
            .unwrap();
        let mut listing = std::string::String::new();
        settings.write_listing(&mut listing).unwrap();
        assert!(
            listing.contains("wifi_ssid = build-wifi (default)\n"),
            "{listing}"
        );
        assert!(
            listing.contains("wifi_password = ****** (stored)\n"),
            "{listing}"
        );
        assert!(listing.contains("device_id = (unset)\n"), "{listing}");
        assert!(!listing.contains("hunter2"), "{listing}");
        assert_eq!(listing.lines().count(), SettingKey::ALL.len());
    }

    #[test]
    fn pins_and_the_interval_are_read_as_numbers() {
        let mut settings = defaults();
        assert_eq!(settings.i2c_pins(), Some((4, 5)));
        settings.set(SettingKey::I2cScl, "4").unwrap();
        assert_eq!(settings.i2c_pins(), None, "SDA and SCL on one pin");
        assert_eq!(settings.sample_interval_ms(), None);
        settings.set(SettingKey::SampleIntervalMs, "5000").unwrap();
        assert_eq!(settings.sample_interval_ms(), Some(5_000));
    }

    #[test]
    fn every_key_round_trips_through_its_name_and_id() {
        for key in SettingKey::ALL {
            assert_eq!(SettingKey::from_name(key.name()), Some(key));
            assert_eq!(SettingKey::from_id(key.id()), Some(key));
        }
        assert_eq!(SettingKey::from_id(0), None);
        assert_eq!(SettingKey::from_id(9), None);
    }

    #[test]
    fn a_changed_interval_is_written_once_it_settled_and_not_too_often() {
        let mut persistence = IntervalPersistence::new(Some(1_000));
        assert_eq!(persistence.poll(0, 1_000), None, "unchanged");
        assert_eq!(persistence.poll(1_000, 5_000), None, "just changed");
        assert_eq!(persistence.poll(10_999, 5_000), None);
        assert_eq!(persistence.poll(11_000, 5_000), Some(5_000));
        persistence.written(11_000, 5_000);
        assert_eq!(persistence.poll(12_000, 5_000), None);
        // A dashboard flipping the interval every second writes at most once per
        // ten minutes.
        let mut writes = 0;
        for second in 12..3_600u64 {
            let interval = if second % 2 == 0 { 2_000 } else { 3_000 };
            if let Some(value) = persistence.poll(second * 1_000, interval) {
                persistence.written(second * 1_000, value);
                writes += 1;
            }
        }
        assert_eq!(writes, 0, "it never settled");
        for second in 3_600..3_700u64 {
            if let Some(value) = persistence.poll(second * 1_000, 2_000) {
                persistence.written(second * 1_000, value);
                writes += 1;
            }
        }
        assert_eq!(writes, 1);
    }
}
