//! Building functions: one host `cargo build` per crate or workspace, in its shared
//! target directory; a failing build shows cargo's output and names the function.

mod support;

use wsgw::build::{BuildError, Builder};
use wsgw_aws::template::CargoBuild;

#[tokio::test]
async fn a_function_is_built_in_the_workspaces_shared_target_directory() {
    let executable = support::plain_echo().await;

    assert!(
        executable.starts_with(support::workspace().join("target")),
        "{}",
        executable.display()
    );
    assert!(executable.ends_with("plain-echo"));
    assert!(executable.is_file());
}

#[tokio::test]
async fn functions_sharing_a_binary_get_the_same_executable() {
    let crate_dir = support::workspace().join("wsgw-aws/cli/tests/plain-echo");
    let build = CargoBuild::new(&crate_dir, Some("plain-echo".to_owned()));
    let same_crate_spelled_otherwise = CargoBuild::new(crate_dir.join("../plain-echo"), None);

    let built = Builder::default()
        .build_all([
            ("Function".to_owned(), build),
            (
                "AuthorizerFunction".to_owned(),
                same_crate_spelled_otherwise,
            ),
        ])
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(built["Function"], built["AuthorizerFunction"]);
}

#[tokio::test]
async fn a_failing_build_names_the_function_and_shows_cargos_output() {
    let dir = support::scratch_dir("broken-build");
    let crate_dir = support::broken_crate(&dir);

    let error = Builder::default()
        .build_all([(
            "BrokenFunction".to_owned(),
            CargoBuild::new(&crate_dir, Some("broken".to_owned())),
        )])
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(matches!(error, BuildError::Failed { .. }), "{message}");
    let first_line = message.lines().next().unwrap_or_default();
    assert!(
        first_line
            .starts_with("building function BrokenFunction failed (cargo build --bin broken in "),
        "{first_line}"
    );
    assert!(
        message.contains("error[E0308]: mismatched types"),
        "cargo's output: {message}"
    );
    assert!(message.contains("src/main.rs"), "{message}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_binary_the_crate_does_not_have_is_a_failed_build_naming_it() {
    let crate_dir = support::workspace().join("wsgw-aws/cli/tests/plain-echo");

    let error = Builder::default()
        .build_all([(
            "Function".to_owned(),
            CargoBuild::new(crate_dir, Some("no-such-binary".to_owned())),
        )])
        .await
        .unwrap_err()
        .to_string();

    assert!(
        error.contains("building function Function failed"),
        "{error}"
    );
    assert!(error.contains("no-such-binary"), "{error}");
}
