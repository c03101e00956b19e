//! What the wsgw package's tests share: the workspace's paths and the fixture function
//! built once per test binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tokio::sync::OnceCell;
use wsgw::build::Builder;
use wsgw_aws::template::CargoBuild;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("wsgw-aws/cli sits two levels below the workspace root")
        .to_path_buf()
}

/// The `plain-echo` fixture (lambda_runtime + aws-sdk-apigatewaymanagement, no wsgw
/// crates), built with [`Builder`] in the workspace's target directory, once.
pub async fn plain_echo() -> PathBuf {
    static BUILT: OnceCell<PathBuf> = OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let build = CargoBuild::new(
                workspace().join("wsgw-aws/cli/tests/plain-echo"),
                Some("plain-echo".to_owned()),
            );
            let mut built = Builder::default()
                .build_all([("PlainEcho".to_owned(), build)])
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            built.remove("PlainEcho").expect("the fixture's executable")
        })
        .await
        .clone()
}

/// A directory of its own under the system's temporary directory, emptied first.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsgw-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// A crate that does not compile, in a workspace of its own: `broken`'s `main` returns
/// a string where it declares `()`.
pub fn broken_crate(dir: &Path) -> PathBuf {
    let root = dir.join("broken");
    std::fs::create_dir_all(root.join("src")).expect("the crate's directory");
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"broken\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .expect("its manifest");
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    \"not a unit\"\n}\n",
    )
    .expect("its source");
    root
}
