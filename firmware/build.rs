//! Build-time defaults, the build time and the embedded root certificates.
//!
//! - `WIFI_SSID`, `WIFI_PASSWORD`, `WSGW_URL`, `DEVICE_ID`, `DEVICE_TOKEN`, `I2C_SDA`,
//!   `I2C_SCL` and `SAMPLE_INTERVAL_MS` are optional defaults for the settings a
//!   device can also be given on its serial console (stored in flash, which wins).
//!   Each one set is checked here with the device's own rules, so a bad value fails
//!   the build instead of the device. Unset ones stay unset: a device without an SSID,
//!   URL or device id says so on the console and does not connect.
//! - The build time (`SOURCE_DATE_EPOCH` when set, for reproducible builds) is the
//!   floor of the device's wall clock: no certificate check uses an earlier time.
//! - Amazon Root CA 1–4 and Starfield Services Root Certificate Authority – G2 (the
//!   roots API Gateway's certificates chain to) are taken from Mozilla's root store as
//!   shipped by the `webpki-root-certs` crate and written as a PEM bundle into
//!   `OUT_DIR/amazon_roots.pem`, NUL-terminated for mbedTLS.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use std::time::{SystemTime, UNIX_EPOCH};

use telemetry_device::SettingKey;

/// The roots API Gateway's (and most of AWS's) server certificates chain to.
const ROOTS: [&str; 5] = [
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
];

/// Build-time variable → setting it is the default of → value when unset.
const DEFAULTS: [(&str, SettingKey, &str); 8] = [
    ("WIFI_SSID", SettingKey::WifiSsid, ""),
    ("WIFI_PASSWORD", SettingKey::WifiPassword, ""),
    ("WSGW_URL", SettingKey::Url, ""),
    ("DEVICE_ID", SettingKey::DeviceId, ""),
    ("DEVICE_TOKEN", SettingKey::Token, ""),
    ("I2C_SDA", SettingKey::I2cSda, "4"),
    ("I2C_SCL", SettingKey::I2cScl, "5"),
    ("SAMPLE_INTERVAL_MS", SettingKey::SampleIntervalMs, ""),
];

fn main() {
    let mut unset = Vec::new();
    for (variable, key, fallback) in DEFAULTS {
        println!("cargo:rerun-if-env-changed={variable}");
        let value = env::var(variable).unwrap_or_default();
        let value = if value.is_empty() {
            fallback
        } else {
            value.as_str()
        };
        if value.is_empty() {
            if key.is_required() {
                unset.push(variable);
            }
        } else if let Err(error) = key.validate(value) {
            panic!("{variable}: {error}");
        }
        println!("cargo:rustc-env=FW_DEFAULT_{variable}={value}");
    }
    if !unset.is_empty() {
        println!(
            "cargo:warning={} not set: the device needs them from its serial console (see README.md, Provisioning)",
            unset.join(", ")
        );
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let build_s = env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=FW_BUILD_UNIX_S={build_s}");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::write(out.join("amazon_roots.pem"), amazon_roots_pem()).expect("writes the PEM bundle");
    // .cargo/config.toml passes esp-hal's linker script as a target rustflag, but a
    // RUSTFLAGS variable in the environment (common on CI machines) replaces config
    // rustflags, and the link then fails on missing memory-map symbols. Cargo tells build
    // scripts the flags in effect, so the script is added here only when they lack it.
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if !rustflags
        .split('\u{1f}')
        .any(|flag| flag.contains("-Tlinkall.x"))
    {
        println!("cargo:rustc-link-arg=-Tlinkall.x");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The five roots as one NUL-terminated PEM bundle.
fn amazon_roots_pem() -> Vec<u8> {
    let mut pem = String::new();
    for name in ROOTS {
        let der = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|cert| cert.as_ref())
            .find(|der| names_subject(der, name))
            .unwrap_or_else(|| panic!("{name:?} is not in webpki-root-certs' Mozilla root store"));
        writeln!(pem, "# {name}").unwrap();
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = base64(der);
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let mut bytes = pem.into_bytes();
    bytes.push(0);
    bytes
}

/// Whether the DER certificate carries `name` as a complete string value (a
/// PrintableString or UTF8String of exactly that length), as a self-signed root's
/// subject and issuer common name do.
fn names_subject(der: &[u8], name: &str) -> bool {
    let mut needle = vec![0u8, name.len() as u8];
    needle.extend_from_slice(name.as_bytes());
    [0x13u8, 0x0c].iter().any(|tag| {
        needle[0] = *tag;
        der.windows(needle.len())
            .any(|window| window == needle.as_slice())
    })
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
