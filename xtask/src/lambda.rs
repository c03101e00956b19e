//! The examples as Lambda deploys them: arm64 `bootstrap` binaries, built once.
//!
//! [`lambda_steps`] (part of `cargo xtask test`, after moto's server started):
//! - [`SETUP`]: Debian's `qemu-user` and `libc6-arm64-cross` (to run the arm64 binaries),
//!   and the `aarch64-unknown-linux-gnu` Rust target;
//! - one `cargo lambda build --release --arm64` of every example ([`build_command`]),
//!   with cargo-lambda and zig from the pinned virtualenv, run from the workspace root
//!   with `--bin` exactly as `sam build` runs it for the templates (`CodeUri` is the
//!   workspace root), so `sam build` later finds everything built and only copies;
//! - `xtask/tests/bootstraps.rs`: each `bootstrap` is an aarch64 ELF that needs no glibc
//!   newer than [`LAMBDA_GLIBC`] (read from its version needs, [`inspect`]), with its
//!   size stripped and zipped as Lambda receives it;
//! - the ignored test of each example's `tests/lambda_mode.rs`: its `bootstrap` under `qemu-aarch64` answers the
//!   example's `events/*.json` through the Runtime API emulator exactly as the x86-64
//!   build does.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Architecture, Object};

use crate::chat::target_dir;
use crate::python::path_with_venv;
use crate::step::{Cmd, Step};

/// The examples deployed as Lambda functions: each a binary of the same name.
pub const EXAMPLES: [&str; 3] = ["echo", "chat", "telemetry"];

/// The newest glibc on Lambda's `provided.al2023` runtime (Amazon Linux 2023): 2.34.
pub const LAMBDA_GLIBC: (u32, u32) = (2, 34);

/// The Rust target of the arm64 functions.
pub const ARM64_TARGET: &str = "aarch64-unknown-linux-gnu";

/// Installs with apt-get whatever of `qemu-user` and `libc6-arm64-cross` is missing (as
/// root, or through sudo), and adds the aarch64 Rust target when missing.
pub const SETUP: &str = r#"set -eu
missing=""
command -v qemu-aarch64 >/dev/null 2>&1 || missing="qemu-user"
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing="$missing libc6-arm64-cross"
if [ -n "$missing" ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  echo "installing with apt-get:$missing"
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
else
  echo "qemu-aarch64 and the arm64 C library are installed"
fi
if rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "target aarch64-unknown-linux-gnu is installed"
else
  rustup target add aarch64-unknown-linux-gnu
fi
"#;

/// Where cargo-lambda puts an example's `bootstrap`: `target/lambda/<name>/bootstrap`.
pub fn bootstrap_path(root: &Path, example: &str) -> PathBuf {
    target_dir(root)
        .join("lambda")
        .join(example)
        .join("bootstrap")
}

/// `cargo lambda build --release --arm64 --bin echo --bin chat --bin telemetry`, from
/// the workspace root, with the virtualenv's cargo-lambda and zig first on `PATH`: the
/// command `sam build` runs for one function (`--bin <Binary>` in `CodeUri`), for all of
/// them at once, so the features, and so the artifacts, are the same.
pub fn build_command(root: &Path) -> Cmd {
    let mut cmd = Cmd::cargo().args(["lambda", "build", "--release", "--arm64"]);
    for example in EXAMPLES {
        cmd = cmd.args(["--bin", example]);
    }
    cmd.env("PATH", path_with_venv(root))
}

/// The steps of `cargo xtask test` that build and prove the arm64 functions; the chat's
/// and the telemetry's need moto's server (`AWS_ENDPOINT_URL_DYNAMODB`) started before.
pub fn lambda_steps(root: &Path) -> Vec<Step> {
    let arm64_test = |example: &str, features: &[&str]| {
        Step::run(
            format!(
                "{example}'s arm64 bootstrap under qemu-aarch64 answers events/*.json as the x86-64 build does"
            ),
            Cmd::cargo()
                .args(["test", "-p", example])
                .args(features)
                .args(["--test", "lambda_mode", "--", "--ignored"]),
        )
    };
    vec![
        Step::run(
            "qemu-user, libc6-arm64-cross and the aarch64 Rust target (installed when missing)",
            Cmd::new("sh").args(["-c", SETUP]),
        ),
        Step::run(
            "the arm64 bootstrap of every example: one cargo lambda build --release --arm64",
            build_command(root),
        ),
        Step::run(
            "the arm64 bootstraps: aarch64 ELF, glibc <= 2.34, size stripped and zipped",
            Cmd::cargo().args([
                "test",
                "-p",
                "xtask",
                "--test",
                "bootstraps",
                "--",
                "--ignored",
                "--nocapture",
            ]),
        ),
        arm64_test("echo", &[]),
        arm64_test("chat", &["--features", "integration"]),
        arm64_test("telemetry", &["--features", "integration"]),
    ]
}

/// What a function binary needs to start, and what it weighs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// The instruction set.
    pub architecture: Architecture,
    /// The newest `GLIBC_x.y` symbol version it needs; `None` when it needs none.
    pub newest_glibc: Option<(u32, u32)>,
    /// The shared libraries it needs (from its version needs), sorted.
    pub libraries: Vec<String>,
    /// Whether it is statically linked (no program interpreter).
    pub is_static: bool,
    /// Its size in bytes.
    pub size: u64,
    /// The size of a zip archive holding it as `bootstrap`, deflated, as SAM uploads it.
    pub zipped: u64,
}

impl Bootstrap {
    /// Whether Lambda's `provided.al2023` can start it: static, or no glibc symbol newer
    /// than [`LAMBDA_GLIBC`].
    pub fn starts_on_lambda(&self) -> bool {
        self.is_static
            || self
                .newest_glibc
                .is_none_or(|version| version <= LAMBDA_GLIBC)
    }
}

/// Why a binary could not be inspected.
#[derive(Debug)]
pub enum InspectError {
    /// The file could not be read.
    Read(PathBuf, io::Error),
    /// It is not a 64-bit little-endian ELF file, or its version sections are broken.
    Elf(PathBuf, object::Error),
    /// The zip archive could not be made.
    Zip(io::Error),
}

impl fmt::Display for InspectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InspectError::Read(path, error) => write!(f, "cannot read {}: {error}", path.display()),
            InspectError::Elf(path, error) => {
                write!(
                    f,
                    "{} is not a readable ELF binary: {error}",
                    path.display()
                )
            }
            InspectError::Zip(error) => write!(f, "cannot zip the binary: {error}"),
        }
    }
}

impl std::error::Error for InspectError {}

/// `GLIBC_2.34` → `(2, 34)`; other version names → `None`.
pub fn glibc_version(name: &str) -> Option<(u32, u32)> {
    let version = name.strip_prefix("GLIBC_")?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |minor| minor.parse().ok())?;
    Some((major, minor))
}

/// Reads what the binary at `path` needs to start (its ELF version needs) and its sizes.
pub fn inspect(path: &Path) -> Result<Bootstrap, InspectError> {
    let data = std::fs::read(path).map_err(|error| InspectError::Read(path.to_owned(), error))?;
    let elf_error = |error| InspectError::Elf(path.to_owned(), error);
    let file = ElfFile64::<object::Endianness>::parse(&*data).map_err(elf_error)?;
    let endian = file.endian();
    let sections = file
        .elf_header()
        .sections(endian, &*data)
        .map_err(elf_error)?;
    let mut newest_glibc = None;
    let mut libraries = Vec::new();
    if let Some((mut needs, link)) = sections.gnu_verneed(endian, &*data).map_err(elf_error)? {
        let strings = sections.strings(endian, &*data, link).map_err(elf_error)?;
        while let Some((need, mut versions)) = needs.next().map_err(elf_error)? {
            let library = need.file(endian, strings).map_err(elf_error)?;
            libraries.push(String::from_utf8_lossy(library).into_owned());
            while let Some(version) = versions.next().map_err(elf_error)? {
                let name = version.name(endian, strings).map_err(elf_error)?;
                if let Some(found) = glibc_version(&String::from_utf8_lossy(name)) {
                    newest_glibc = newest_glibc.max(Some(found));
                }
            }
        }
    }
    libraries.sort();
    let is_static = !file
        .elf_program_headers()
        .iter()
        .any(|header| header.p_type(endian) == elf::PT_INTERP);
    Ok(Bootstrap {
        architecture: file.architecture(),
        newest_glibc,
        libraries,
        is_static,
        size: data.len() as u64,
        zipped: zipped_size(&data).map_err(InspectError::Zip)?,
    })
}

/// The size of a zip archive holding `binary` as an executable `bootstrap`, deflated:
/// what `sam deploy` uploads and Lambda downloads on a cold start.
pub fn zipped_size(binary: &[u8]) -> io::Result<u64> {
    let mut archive = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    archive
        .start_file("bootstrap", options)
        .map_err(io::Error::other)?;
    archive.write_all(binary)?;
    let cursor = archive.finish().map_err(io::Error::other)?;
    Ok(cursor.into_inner().len() as u64)
}

/// `12.3 MiB`.
pub fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_versions_are_read_from_their_names() {
        assert_eq!(glibc_version("GLIBC_2.34"), Some((2, 34)));
        assert_eq!(glibc_version("GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(glibc_version("GLIBC_2"), Some((2, 0)));
        assert_eq!(glibc_version("GCC_3.0"), None);
        assert_eq!(glibc_version("GLIBC_PRIVATE"), None);
    }

    #[test]
    fn a_glibc_newer_than_lambdas_does_not_start_and_a_static_binary_does() {
        let binary = Bootstrap {
            architecture: Architecture::Aarch64,
            newest_glibc: Some((2, 35)),
            libraries: vec!["libc.so.6".to_owned()],
            is_static: false,
            size: 1,
            zipped: 1,
        };
        assert!(!binary.starts_on_lambda());
        assert!(Bootstrap {
            newest_glibc: Some((2, 34)),
            ..binary.clone()
        }
        .starts_on_lambda());
        assert!(Bootstrap {
            newest_glibc: None,
            is_static: true,
            ..binary
        }
        .starts_on_lambda());
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn this_test_binary_needs_glibc_and_zips_smaller_than_it_is() {
        let me = std::env::current_exe().expect("the test binary's path");

        let binary = inspect(&me).expect("an ELF binary");

        assert_eq!(binary.architecture, Architecture::X86_64);
        assert!(!binary.is_static);
        assert!(
            binary.libraries.contains(&"libc.so.6".to_owned()),
            "{binary:?}"
        );
        assert!(binary.newest_glibc.is_some_and(|version| version >= (2, 2)));
        assert!(binary.zipped < binary.size, "{binary:?}");
    }

    #[test]
    fn a_file_that_is_not_elf_is_an_error_naming_it() {
        let path = crate::workspace_root().join("Cargo.toml");

        let error = inspect(&path).expect_err("not a binary");

        assert!(error.to_string().contains("Cargo.toml"), "{error}");
    }

    /// The `key = value` lines of `[profile.release]` in the workspace manifest.
    fn release_profile() -> Vec<(String, String)> {
        let manifest = std::fs::read_to_string(crate::workspace_root().join("Cargo.toml"))
            .expect("the workspace manifest");
        manifest
            .lines()
            .skip_while(|line| line.trim() != "[profile.release]")
            .skip(1)
            .take_while(|line| !line.trim_start().starts_with('['))
            .filter_map(|line| {
                let (key, value) = line.split_once('=')?;
                Some((key.trim().to_owned(), value.trim().to_owned()))
            })
            .collect()
    }

    #[test]
    fn the_release_profile_unwinds_and_leaves_cargo_lambda_nothing_to_override() {
        let profile = release_profile();
        let value = |key: &str| {
            profile
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
        };

        // A handler's panic fails one invocation (wsgw::Panic) instead of the instance.
        assert_eq!(value("panic"), Some("\"unwind\""));
        // cargo-lambda adds its own strip, lto, codegen-units and panic to --release
        // builds unless the manifest sets them: what SAM deploys is this profile.
        for key in ["opt-level", "lto", "codegen-units", "strip"] {
            assert!(value(key).is_some(), "[profile.release] sets {key}");
        }
    }

    #[test]
    fn the_build_is_the_one_sam_runs_for_every_example_at_once() {
        let args: Vec<String> = build_command(Path::new("/work"))
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();

        assert_eq!(
            args,
            [
                "lambda",
                "build",
                "--release",
                "--arm64",
                "--bin",
                "echo",
                "--bin",
                "chat",
                "--bin",
                "telemetry"
            ]
        );
    }
}
