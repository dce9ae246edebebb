//! The dependency direction, read from the source: the domain imports
//! nothing from the store (ports and adapters) or the engine; the store
//! imports nothing from the engine. A module that imports from a layer above
//! it fails this test.

use std::path::{Path, PathBuf};

/// The domain: pure types and rules.
const DOMAIN: &[&str] = &[
    "actor",
    "cart",
    "catalog",
    "clock",
    "customer",
    "error",
    "event",
    "id",
    "inventory",
    "money",
    "note",
    "order",
    "payment",
    "pricing",
    "shipping",
    "tax",
    "validate",
];
/// Ports and adapters.
const STORE: &[&str] = &["store"];
/// The application services on top.
const ENGINE: &[&str] = &[
    "engine",
    "checkout",
    "fulfillment",
    "money_path",
    "promotions",
    "maintenance",
    "testkit",
    "telemetry",
];

fn files(module: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let single = src.join(format!("{module}.rs"));
    if single.exists() {
        out.push(single);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
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

/// Lines of code (not comments) in `module` that name a module of `above`.
fn upward(module: &str, above: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files(module) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for target in above {
                let uses = code.contains(&format!("crate::{target}::"))
                    || code.contains(&format!("crate::{target};"))
                    || code.contains(&format!("crate::{target}::{{"));
                if uses {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, code));
                }
            }
        }
    }
    found
}

#[test]
fn the_domain_imports_neither_the_store_nor_the_engine() {
    let above: Vec<&str> = STORE.iter().chain(ENGINE).copied().collect();
    let found: Vec<String> = DOMAIN.iter().flat_map(|m| upward(m, &above)).collect();
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn the_store_does_not_import_the_engine() {
    let found: Vec<String> = STORE.iter().flat_map(|m| upward(m, ENGINE)).collect();
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn every_module_is_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known: Vec<&str> = DOMAIN.iter().chain(STORE).chain(ENGINE).copied().collect();
    for entry in std::fs::read_dir(src).into_iter().flatten().flatten() {
        let name = entry
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if name == "lib" {
            continue;
        }
        assert!(
            known.contains(&name.as_str()),
            "module `{name}` is in no layer"
        );
    }
}
