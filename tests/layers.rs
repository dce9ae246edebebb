//! The layers are folders, and dependencies point inward: `domain` imports
//! nothing above it; `ports` import only the domain; `adapters` implement
//! ports and know nothing of the engine; the `engine` (and the `testkit`
//! that drives it) sits on top. Read from the source: a file that imports
//! from a layer above its own fails this test.

use std::path::{Path, PathBuf};

/// Module names, as the crate root re-exports them, by layer.
const PORTS: &[&str] = &["store", "ports"];
const ADAPTERS: &[&str] = &["adapters"];
const ENGINE: &[&str] = &[
    "engine",
    "checkout",
    "fulfillment",
    "money_path",
    "promotions",
    "maintenance",
    "telemetry",
    "testkit",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files(folder: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![src().join(folder)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out
}

/// Lines of code (not comments) under `folder` that name a module of `above`.
fn upward(folder: &str, above: &[&[&str]]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files(folder) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for target in above.iter().flat_map(|l| l.iter()) {
                let uses = [":", ";", ","].iter().any(|end| {
                    code.contains(&format!("crate::{target}{end}"))
                        || code.contains(&format!("crate::{{{target}{end}"))
                });
                if uses {
                    found.push(format!("{}:{}: {code}", file.display(), n + 1));
                }
            }
        }
    }
    found
}

#[test]
fn the_domain_imports_nothing_above_it() {
    let found = upward("domain", &[PORTS, ADAPTERS, ENGINE]);
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn ports_import_only_the_domain() {
    let found = upward("ports", &[ADAPTERS, ENGINE]);
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn adapters_know_nothing_of_the_engine() {
    let found = upward("adapters", &[ENGINE]);
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn every_source_file_is_in_a_layer() {
    let layers = ["lib.rs", "domain", "ports", "adapters", "engine", "testkit"];
    for entry in std::fs::read_dir(src()).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            layers.contains(&name.as_str()),
            "`src/{name}` is in no layer"
        );
    }
}
