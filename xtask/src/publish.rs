//! The published crates as crates.io and docs.rs see them: API docs with warnings
//! denied, READMEs that work on crates.io, `cargo package` with nothing in the archives
//! that should not ship, and the declared MSRV checked with exactly that toolchain.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Cmd, Step};

/// The crates published on crates.io, in dependency order.
pub const PUBLISHED: [&str; 3] = ["wsgw-core", "wsgw-memory", "wsgw-aws"];

/// The steps `cargo xtask test` runs for the published crates: docs, packages, MSRV.
pub fn publish_steps(root: &Path) -> Vec<Step> {
    let msrv = declared_msrv(root).unwrap_or_else(|error| format!("<unreadable: {error}>"));
    let mut check_on_msrv = Cmd::new("rustup").args(["run", &msrv, "cargo", "check", "--locked"]);
    for name in PUBLISHED {
        check_on_msrv = check_on_msrv.args(["-p", name]);
    }
    vec![
        Step::run(
            "API docs of every crate, all features, rustdoc warnings denied",
            Cmd::cargo()
                .args(["doc", "--workspace", "--all-features", "--no-deps"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        ),
        Step::run(
            "cargo package of the published crates, and what their archives hold",
            Cmd::cargo().args(["xtask", "package"]),
        ),
        Step::run(
            format!("the declared MSRV's toolchain ({msrv})"),
            Cmd::new("rustup").args(["toolchain", "install", &msrv, "--profile", "minimal"]),
        ),
        Step::run(
            format!("the published crates, all features, on the MSRV ({msrv})"),
            check_on_msrv.arg("--all-features"),
        ),
    ]
}

/// `rust-version` of `[workspace.package]` in the workspace manifest.
pub fn declared_msrv(root: &Path) -> io::Result<String> {
    let manifest = fs::read_to_string(root.join("Cargo.toml"))?;
    let mut in_workspace_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_workspace_package = line == "[workspace.package]";
        } else if in_workspace_package {
            if let Some(value) = line.strip_prefix("rust-version") {
                let value = value.trim_start().trim_start_matches('=').trim();
                return Ok(value.trim_matches('"').to_owned());
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "no rust-version in [workspace.package] of Cargo.toml",
    ))
}

/// What is wrong with a published crate's README for crates.io: links that are not
/// absolute (crates.io resolves none of them against the repository), and a missing
/// `cargo add` line.
pub fn readme_problems(crate_name: &str, readme: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let cargo_add = format!("cargo add {crate_name}");
    if !readme
        .lines()
        .any(|line| line.trim().starts_with(&cargo_add))
    {
        problems.push(format!("no `{cargo_add}` line"));
    }
    for target in link_targets(readme) {
        let absolute = ["https://", "http://", "mailto:"]
            .iter()
            .any(|scheme| target.starts_with(scheme));
        // `#anchor` stays on the page, which is the page crates.io shows.
        if !absolute && !target.starts_with('#') {
            problems.push(format!("relative link `{target}`"));
        }
    }
    problems
}

/// The targets of a Markdown text's links and images: inline `[text](target)`,
/// reference definitions `[label]: target`, and HTML `href="…"` / `src="…"`.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code_block = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code_block = !in_code_block;
            continue;
        }
        if in_code_block {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            targets.push(target.trim_matches(['<', '>']).to_owned());
            rest = &after[end..];
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if let Some(colon) = trimmed.find("]:") {
                let target = trimmed[colon + 2..].split_whitespace().next().unwrap_or("");
                targets.push(target.to_owned());
            }
        }
        for attribute in ["href=\"", "src=\""] {
            let mut rest = line;
            while let Some(start) = rest.find(attribute) {
                let after = &rest[start + attribute.len()..];
                let end = after.find('"').unwrap_or(after.len());
                targets.push(after[..end].to_owned());
                rest = &after[end..];
            }
        }
    }
    targets
}

/// What should not be in a published crate's archive (paths as `cargo package --list`
/// prints them, relative to the crate), and what must be: the README and both licences.
///
/// An archive holds the manifest, the README, the licences, the library's sources
/// (`src/**.rs`) and wsgw-aws's SAM template (`templates/*.yaml`), and nothing else: the
/// tests build only inside the workspace (path-only dev-dependencies, shared test
/// modules) and carry test keys, so they stay out (`package.include`).
pub fn package_problems(files: &[String]) -> Vec<String> {
    const REQUIRED: [&str; 4] = ["Cargo.toml", "README.md", "LICENSE-MIT", "LICENSE-APACHE"];
    // What cargo adds to every archive.
    const GENERATED: [&str; 3] = ["Cargo.toml.orig", "Cargo.lock", ".cargo_vcs_info.json"];
    // Build output, local tools and caches, editor and OS litter.
    const FORBIDDEN_PARTS: [&str; 7] = [
        "target",
        ".venv",
        "node_modules",
        "__pycache__",
        ".idea",
        ".vscode",
        ".DS_Store",
    ];
    let mut problems: Vec<String> = REQUIRED
        .iter()
        .filter(|required| !files.iter().any(|file| file == *required))
        .map(|required| format!("{required} is missing"))
        .collect();
    for file in files {
        let allowed = REQUIRED.contains(&file.as_str())
            || GENERATED.contains(&file.as_str())
            || (file.starts_with("src/") && file.ends_with(".rs"))
            || (file.starts_with("templates/") && file.ends_with(".yaml"));
        let forbidden = file.split('/').any(|part| FORBIDDEN_PARTS.contains(&part));
        if !allowed || forbidden {
            problems.push(format!("{file} should not ship"));
        }
    }
    problems
}

/// `cargo xtask package`: every published crate packaged together (so their path
/// dependencies on each other resolve as crates.io versions), then each archive's file
/// list checked ([`package_problems`]). Archives are left in `target/package/`.
///
/// `--no-verify`: verifying would build each crate once more from its unpacked archive
/// in a target dir of its own, the AWS SDK with it (minutes on CI's two cores); the
/// same sources are checked by the MSRV step and built and tested by every other step.
pub fn package(root: &Path) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(root)
        .args(["package", "--no-verify", "--allow-dirty", "--locked"]);
    for name in PUBLISHED {
        command.args(["-p", name]);
    }
    let status = command
        .status()
        .map_err(|error| format!("cargo package could not start: {error}"))?;
    if !status.success() {
        return Err(format!("cargo package failed ({status})"));
    }
    let mut problems = Vec::new();
    for name in PUBLISHED {
        let output = Command::new(&cargo)
            .current_dir(root)
            .args(["package", "--list", "--allow-dirty", "-p", name])
            .output()
            .map_err(|error| format!("cargo package --list could not start: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo package --list -p {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let files: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        println!("{name}: {} files", files.len());
        problems.extend(
            package_problems(&files)
                .into_iter()
                .map(|problem| format!("{name}: {problem}")),
        );
        let readme = crate_dir(root, name).join("README.md");
        let text = fs::read_to_string(&readme)
            .map_err(|error| format!("{}: {error}", readme.display()))?;
        problems.extend(
            readme_problems(name, &text)
                .into_iter()
                .map(|problem| format!("{name}/README.md: {problem}")),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// A published crate's directory.
pub fn crate_dir(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace_root;

    #[test]
    fn every_published_crates_readme_has_only_absolute_links_and_its_cargo_add_line() {
        for name in PUBLISHED {
            let readme = crate_dir(&workspace_root(), name).join("README.md");
            let text = fs::read_to_string(&readme).expect("each published crate has a README");
            assert_eq!(readme_problems(name, &text), Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn every_published_manifest_names_its_own_readme_docs_and_docs_rs_settings() {
        for name in PUBLISHED {
            let manifest =
                fs::read_to_string(crate_dir(&workspace_root(), name).join("Cargo.toml"))
                    .expect("manifest");
            for line in [
                "readme = \"README.md\"".to_owned(),
                format!("documentation = \"https://docs.rs/{name}\""),
                "[package.metadata.docs.rs]".to_owned(),
                "all-features = true".to_owned(),
                "rustdoc-args = [\"--cfg\", \"docsrs\"]".to_owned(),
            ] {
                assert!(manifest.contains(&line), "{name}/Cargo.toml lacks {line}");
            }
            let lib = fs::read_to_string(crate_dir(&workspace_root(), name).join("src/lib.rs"))
                .expect("lib.rs");
            assert!(lib.contains("#![deny(missing_docs)]"), "{name}");
            assert!(
                lib.contains("#![cfg_attr(docsrs, feature(doc_cfg))]"),
                "{name}"
            );
        }
    }

    #[test]
    fn a_relative_link_or_a_missing_cargo_add_line_is_a_problem() {
        let readme = "# x\n\nSee [core](../wsgw-core) and [docs](https://docs.rs/x), \
                      [top](#x), ![logo](logo.png).\n\n[ref]: CHANGELOG.md\n\
                      <img src=\"img/a.svg\">\n```sh\ncargo add wsgw-other\n```\n\
                      ```rust\nlet link = \"[a](b)\";\n```\n";
        assert_eq!(
            readme_problems("wsgw-x", readme),
            [
                "no `cargo add wsgw-x` line",
                "relative link `../wsgw-core`",
                "relative link `logo.png`",
                "relative link `CHANGELOG.md`",
                "relative link `img/a.svg`",
            ]
        );
        assert!(readme_problems(
            "wsgw-other",
            "```sh\ncargo add wsgw-other --features a\n```"
        )
        .is_empty());
    }

    #[test]
    fn only_sources_readme_licences_and_templates_ship() {
        let files: Vec<String> = [
            "Cargo.toml",
            "Cargo.toml.orig",
            "Cargo.lock",
            ".cargo_vcs_info.json",
            "README.md",
            "LICENSE-MIT",
            "src/lib.rs",
            "src/gateway/mod.rs",
            "templates/stateful-websocket.yaml",
            "target/debug/x",
            "tests/keys/test-rsa-private.pem",
            "src/target/x.rs",
            "src/lib.rs.swp",
            ".env",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            package_problems(&files),
            [
                "LICENSE-APACHE is missing",
                "target/debug/x should not ship",
                "tests/keys/test-rsa-private.pem should not ship",
                "src/target/x.rs should not ship",
                "src/lib.rs.swp should not ship",
                ".env should not ship",
            ]
        );
    }

    #[test]
    fn the_declared_msrv_is_read_from_the_workspace_package() {
        let msrv = declared_msrv(&workspace_root()).expect("rust-version");
        assert!(
            msrv.split('.').all(|part| part.parse::<u32>().is_ok()),
            "{msrv}"
        );
        let steps = publish_steps(&workspace_root());
        let args: Vec<String> = steps[3]
            .cmd()
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[..3], ["run".to_owned(), msrv, "cargo".to_owned()]);
        assert!(args.contains(&"--all-features".to_owned()));
    }
}
