//! The arm64 `bootstrap` of every example, as `cargo xtask test` builds it (one
//! `cargo lambda build --release --arm64`): each must start on Lambda's `provided.al2023`
//! (an aarch64 ELF needing glibc 2.34 at most, or static), and its size, stripped and
//! zipped as Lambda receives it, is reported.
//!
//! Run by `cargo xtask test` after the build; plain `cargo test` leaves it out (ignored),
//! since it needs the arm64 binaries.

use xtask::lambda::{bootstrap_path, inspect, mebibytes, EXAMPLES, LAMBDA_GLIBC};

#[test]
#[ignore = "needs the arm64 bootstraps: cargo xtask test builds them (cargo lambda build --release --arm64)"]
fn every_examples_arm64_bootstrap_starts_on_provided_al2023() {
    let root = xtask::workspace_root();
    println!("| function | size (stripped) | zipped | newest glibc needed | libraries |");
    println!("|---|---:|---:|---|---|");
    for example in EXAMPLES {
        let path = bootstrap_path(&root, example);
        let binary = inspect(&path).unwrap_or_else(|error| {
            panic!(
                "{error}: build it with `cargo xtask test`, or `cargo lambda build --release --arm64 -p {example}` (cargo-lambda and zig: pip install -r xtask/requirements.txt)"
            )
        });
        let glibc = binary
            .newest_glibc
            .map_or("none".to_owned(), |(major, minor)| {
                format!("{major}.{minor}")
            });
        println!(
            "| {example} | {} | {} | {glibc} | {} |",
            mebibytes(binary.size),
            mebibytes(binary.zipped),
            binary.libraries.join(", ")
        );
        assert_eq!(
            binary.architecture,
            object::Architecture::Aarch64,
            "{}: Lambda's arm64 functions run aarch64 binaries",
            path.display()
        );
        assert!(
            binary.starts_on_lambda(),
            "{} needs glibc {glibc}, newer than provided.al2023's {}.{}",
            path.display(),
            LAMBDA_GLIBC.0,
            LAMBDA_GLIBC.1
        );
    }
}
