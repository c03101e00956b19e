//! The happy path as the docs show it is this crate: the README's "Writing a system" and
//! the wsgw-core crate docs hold its source and tests verbatim, and the counts they state
//! (lines of source, wsgw items named) hold.

use std::collections::BTreeSet;
use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// The source files, the tests, and the docs that show them.
struct Sources {
    lib: String,
    main: String,
    tests: String,
}

fn sources() -> Sources {
    Sources {
        lib: read("src/lib.rs"),
        main: read("src/main.rs"),
        tests: read("tests/rooms.rs"),
    }
}

/// `text` as lines of a `//!` doc comment.
fn as_crate_doc(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                "//!".to_owned()
            } else {
                format!("//! {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every wsgw item the example names: imported from a wsgw crate, or written as a path
/// into one.
fn wsgw_items(sources: &Sources) -> BTreeSet<String> {
    let mut items = BTreeSet::new();
    for text in [&sources.lib, &sources.main, &sources.tests] {
        for line in text.lines().map(str::trim) {
            if let Some(import) = line
                .strip_prefix("use wsgw_")
                .and_then(|rest| rest.split_once("::"))
            {
                let names = import.1.trim_end_matches(';');
                let names = names.trim_start_matches('{').trim_end_matches('}');
                items.extend(names.split(',').map(|name| name.trim().to_owned()));
            } else if let Some(at) = line.find("wsgw_") {
                // A path such as `wsgw_aws::runner::run(…)`: the item is its last segment
                // with the module it is in.
                let path: String = line[at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let segments: Vec<&str> = path.split("::").collect();
                items.insert(segments[1..].join("::"));
            }
        }
    }
    items.retain(|item| !item.is_empty());
    items
}

#[test]
fn the_source_is_at_most_60_lines_naming_at_most_10_wsgw_items_as_the_readme_says() {
    let sources = sources();
    let lines = sources.lib.lines().count() + sources.main.lines().count();
    assert!(lines <= 60, "{lines} lines of source");
    let items = wsgw_items(&sources);
    assert!(items.len() <= 10, "{} items: {items:?}", items.len());
    let readme = read("../../README.md");
    let stated = format!(
        "That is {lines} lines of source naming {} wsgw items",
        items.len()
    );
    assert!(readme.contains(&stated), "the README should say: {stated}");
    for item in &items {
        let name = item.rsplit("::").next().unwrap_or(item);
        assert!(
            readme.contains(&format!("`{item}`")) || readme.contains(&format!("`{name}`")),
            "the README names {item}"
        );
    }
}

#[test]
fn the_readme_shows_this_crates_source_and_tests_verbatim() {
    let sources = sources();
    let readme = read("../../README.md");
    let section = readme
        .split("## Writing a system")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a section \"Writing a system\"");
    for (file, text) in [
        ("src/lib.rs", &sources.lib),
        ("tests/rooms.rs", &sources.tests),
        ("src/main.rs", &sources.main),
    ] {
        assert!(
            section.contains(text.trim_end()),
            "the README's \"Writing a system\" shows {file} as it is"
        );
    }
}

#[test]
fn the_wsgw_core_crate_docs_open_with_this_crate() {
    let sources = sources();
    let docs = read("../../wsgw-core/src/lib.rs");
    let opening: String = docs
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    for (file, text) in [
        ("src/lib.rs", &sources.lib),
        ("tests/rooms.rs", &sources.tests),
        ("src/main.rs", &sources.main),
    ] {
        assert!(
            opening.contains(&as_crate_doc(text.trim_end())),
            "wsgw-core's crate docs show {file} as it is"
        );
    }
    let happy_path = opening
        .find("happy path")
        .expect("the docs name the happy path");
    let first_code = opening.find("```").expect("a code block");
    assert!(happy_path < first_code, "the docs open with the happy path");
}
