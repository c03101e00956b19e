//! The ESP32-C3 firmware's steps: its toolchain, a `--release --locked` build for
//! `riscv32imc-unknown-none-elf` in `firmware/` (its own workspace), and a flashable
//! image made with `espflash save-image`, which must exist and stay under
//! [`IMAGE_BUDGET`] bytes.
//!
//! espflash comes from crates.io (`cargo install espflash --locked`, several minutes)
//! only when it is not installed yet; afterwards the installed binary is reused.

use std::path::Path;

use crate::step::{Cmd, Step};

/// The firmware's cargo workspace, relative to the workspace root.
pub const FIRMWARE_DIR: &str = "firmware";

/// The largest image the firmware may grow to: 1 MiB.
pub const IMAGE_BUDGET: u64 = 1024 * 1024;

/// Variables that would override the firmware's own toolchain, target or rustflags.
pub const OVERRIDING_VARIABLES: [&str; 5] = [
    "RUSTUP_TOOLCHAIN",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
];

/// Debian packages the firmware build needs: `pkg-config` and `libudev-dev` for
/// espflash (it links libudev); `clang`, `libclang-dev`, `cmake` and `ninja-build` for
/// mbedtls-rs-sys, which compiles mbedTLS from source for the firmware's feature set
/// (`hook-wall-clock`, only the client suites it needs, a 4 KiB outgoing buffer)
/// instead of linking its prebuilt all-suites library.
pub const APT_PACKAGES: [&str; 6] = [
    "pkg-config",
    "libudev-dev",
    "clang",
    "libclang-dev",
    "cmake",
    "ninja-build",
];

/// Adds the target when missing, installs [`APT_PACKAGES`] with apt-get when missing,
/// and installs espflash once.
pub const SETUP: &str = r#"set -eu
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if rustup target list --installed | grep -qx riscv32imc-unknown-none-elf; then
  echo "target riscv32imc-unknown-none-elf is installed"
else
  rustup target add riscv32imc-unknown-none-elf
fi
missing=""
for package in pkg-config libudev-dev clang libclang-dev cmake ninja-build; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  echo "installing with apt-get:$missing"
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi
if command -v espflash >/dev/null 2>&1; then
  echo "reusing $(command -v espflash) ($(espflash --version))"
else
  echo "installing espflash from crates.io (once; this takes several minutes)"
  cargo install espflash --locked
fi
"#;

/// Turns the release ELF into a flashable image; fails when no image is produced or it
/// is over [`IMAGE_BUDGET`], and prints its size.
pub const SAVE_IMAGE: &str = r#"set -eu
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
elf="${CARGO_TARGET_DIR:-target}/riscv32imc-unknown-none-elf/release/wsgw-telemetry-firmware"
image="$elf.bin"
rm -f "$image"
espflash save-image --chip esp32c3 "$elf" "$image"
if [ ! -s "$image" ]; then
  echo "espflash produced no image at $image" >&2
  exit 1
fi
size=$(wc -c < "$image" | tr -d ' ')
echo "firmware image: firmware/$image, $size bytes (budget 1048576)"
if [ "$size" -ge 1048576 ]; then
  echo "the firmware image is over its 1 MiB budget" >&2
  exit 1
fi
"#;

/// The three firmware steps, run in `root/firmware`.
pub fn firmware_steps(root: &Path) -> Vec<Step> {
    let dir = root.join(FIRMWARE_DIR);
    vec![
        Step::run(
            "firmware toolchain: riscv32imc target, apt packages (libudev for espflash; clang, cmake, ninja for mbedTLS), espflash (installed once)",
            Cmd::new("sh").args(["-c", SETUP]).current_dir(&dir),
        ),
        // The `cargo` on PATH (rustup's proxy) honours firmware/rust-toolchain.toml, unless
        // RUSTUP_TOOLCHAIN says otherwise; RUSTFLAGS-style variables would replace the
        // target's rustflags in firmware/.cargo/config.toml (the linker script) and a
        // CARGO_BUILD_TARGET its target, so none of them is passed on.
        Step::run(
            "firmware for the ESP32-C3: release build, Cargo.lock as committed",
            OVERRIDING_VARIABLES
                .iter()
                .fold(Cmd::new("cargo"), |cmd, name| cmd.env_remove(*name))
                .args(["build", "--release", "--locked"])
                .current_dir(&dir),
        ),
        Step::run(
            "firmware image: espflash save-image --chip esp32c3, under 1 MiB",
            Cmd::new("sh").args(["-c", SAVE_IMAGE]).current_dir(&dir),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firmware_is_set_up_built_locked_and_imaged_in_its_own_workspace() {
        let root = Path::new("/repo");
        let steps = firmware_steps(root);
        let args: Vec<Vec<String>> = steps
            .iter()
            .map(|step| {
                step.cmd()
                    .get_args()
                    .map(|arg| arg.to_string_lossy().into_owned())
                    .collect()
            })
            .collect();
        assert_eq!(
            args,
            vec![
                vec!["-c".to_owned(), SETUP.to_owned()],
                vec![
                    "build".to_owned(),
                    "--release".to_owned(),
                    "--locked".to_owned()
                ],
                vec!["-c".to_owned(), SAVE_IMAGE.to_owned()],
            ]
        );
        for step in &steps {
            assert!(step.cmd().to_string().starts_with("(cd /repo/firmware && "));
        }
        let build = steps[1].cmd().to_string();
        for name in OVERRIDING_VARIABLES {
            assert!(build.contains(&format!("-u {name} ")), "{build}");
        }
    }

    #[test]
    fn the_setup_installs_every_apt_package_the_build_needs() {
        for package in APT_PACKAGES {
            assert!(
                SETUP.contains(&format!(" {package}")),
                "{package} is not installed by SETUP"
            );
        }
    }

    #[test]
    fn espflash_is_installed_only_when_missing_and_the_image_size_is_checked() {
        assert!(SETUP.contains("if command -v espflash"));
        assert!(SETUP.contains("cargo install espflash --locked"));
        assert!(SAVE_IMAGE.contains("save-image --chip esp32c3"));
        assert!(SAVE_IMAGE.contains(&IMAGE_BUDGET.to_string()));
    }

    #[test]
    fn the_firmware_workspace_is_where_the_steps_look() {
        let dir = crate::workspace_root().join(FIRMWARE_DIR);
        assert!(dir.join("Cargo.toml").is_file());
        assert!(dir.join("Cargo.lock").is_file());
        assert!(dir.join("rust-toolchain.toml").is_file());
    }
}
