//! Build-time configuration and the embedded root certificates.
//!
//! - `WIFI_SSID`, `WIFI_PASSWORD`, `WSGW_URL`, `DEVICE_ID` and optional `DEVICE_TOKEN`
//!   are read from the environment (safe dummies when unset, so CI builds) and checked
//!   here, with the same code the device uses, so a bad URL or id fails the build
//!   instead of the device.
//! - Amazon Root CA 1–4 and Starfield Services Root Certificate Authority – G2 (the
//!   roots API Gateway's certificates chain to) are taken from Mozilla's root store as
//!   shipped by the `webpki-root-certs` crate and written as a PEM bundle into
//!   `OUT_DIR/amazon_roots.pem`, NUL-terminated for mbedTLS.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use telemetry_device::{Config, Endpoint};

/// The roots API Gateway's (and most of AWS's) server certificates chain to.
const ROOTS: [&str; 5] = [
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
];

fn setting(name: &str, dummy: &str) -> String {
    println!("cargo:rerun-if-env-changed={name}");
    match env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => {
            if !dummy.is_empty() {
                println!(
                    "cargo:warning={name} is not set: building with the placeholder {dummy:?}"
                );
            }
            dummy.to_owned()
        }
    }
}

fn main() {
    let ssid = setting("WIFI_SSID", "wsgw-demo");
    let password = setting("WIFI_PASSWORD", "");
    let url = setting("WSGW_URL", "ws://192.168.1.10:8080");
    let device_id = setting("DEVICE_ID", "esp32-c3-01");
    println!("cargo:rerun-if-env-changed=DEVICE_TOKEN");
    let token = env::var("DEVICE_TOKEN").unwrap_or_default();

    if ssid.len() > 32 {
        panic!("WIFI_SSID is {} bytes; Wi-Fi allows at most 32", ssid.len());
    }
    if password.len() > 64 || (!password.is_empty() && password.len() < 8) {
        panic!("WIFI_PASSWORD must be empty (open network) or 8-64 bytes");
    }
    let endpoint = Endpoint::parse(&url).unwrap_or_else(|e| panic!("WSGW_URL {url:?}: {e}"));
    Config::new(&device_id).unwrap_or_else(|e| panic!("DEVICE_ID {device_id:?}: {e}"));
    let token = (!token.is_empty()).then_some(token.as_str());
    endpoint
        .device_target(&device_id, token)
        .unwrap_or_else(|e| panic!("WSGW_URL with DEVICE_ID and DEVICE_TOKEN: {e}"));

    for (name, value) in [
        ("FW_WIFI_SSID", ssid.as_str()),
        ("FW_WIFI_PASSWORD", password.as_str()),
        ("FW_WSGW_URL", url.as_str()),
        ("FW_DEVICE_ID", device_id.as_str()),
        ("FW_DEVICE_TOKEN", token.unwrap_or("")),
    ] {
        println!("cargo:rustc-env={name}={value}");
    }

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::write(out.join("amazon_roots.pem"), amazon_roots_pem()).expect("writes the PEM bundle");
    // .cargo/config.toml passes esp-hal's linker script as a target rustflag, but a
    // RUSTFLAGS variable in the environment (common on CI machines) replaces config
    // rustflags, and the link then fails on missing memory-map symbols. Cargo tells build
    // scripts the flags in effect, so the script is added here only when they lack it.
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if !rustflags.split('\u{1f}').any(|flag| flag.contains("-Tlinkall.x")) {
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
