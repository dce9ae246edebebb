//! The layers are folders, and dependencies point inward: `domain` imports
//! nothing above it; `ports` import only the domain; `adapters` implement
//! ports and know nothing of the engine; the `engine` (and the `testkit`
//! that drives it) sits on top. Read from the source: a file that imports
//! from a layer above its own fails this test.

use std::path::{Path, PathBuf};

/// Module names, as the crate root re-exports them, by layer.
const PORTS: &[&str] = &["store", "ports"];
const ADAPTERS: &[&str] = &["adapters"];
const AGENTIC: &[&str] = &["agentic"];
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
    let found = upward("domain", &[PORTS, ADAPTERS, ENGINE, AGENTIC]);
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn ports_import_only_the_domain() {
    let found = upward("ports", &[ADAPTERS, ENGINE, AGENTIC]);
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn adapters_know_nothing_of_the_engine() {
    let found = upward("adapters", &[ENGINE, AGENTIC]);
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn the_engine_knows_nothing_of_the_agentic_protocols() {
    let found = upward("engine", &[AGENTIC]);
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

/// The protocol layer drives the engine (whose access table it relies on)
/// and never reaches past it to a store or an adapter.
#[test]
fn the_agentic_protocols_and_the_admin_call_the_engine_never_a_store() {
    let mut found = upward("agentic", &[ADAPTERS]);
    found.extend(upward("admin", &[ADAPTERS]));
    for file in files("agentic").into_iter().chain(files("admin")) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if !code.starts_with("//")
                && (code.contains(".store()")
                    || code.contains(".inner.store")
                    || code.contains("engine.inner"))
            {
                found.push(format!("{}:{}: {code}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "store or engine-internal access from agentic or admin:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_source_file_is_in_a_layer() {
    let layers = [
        "lib.rs", "domain", "ports", "adapters", "engine", "testkit", "agentic", "admin",
    ];
    for entry in std::fs::read_dir(src()).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            layers.contains(&name.as_str()),
            "`src/{name}` is in no layer"
        );
    }
}

/// The domain modules (`src/domain/<module>` or `src/domain/<module>.rs`)
/// each file under `domain` names, by module: `crate::money::…`,
/// `crate::{id, money}` and the root's re-exports `crate::Error`/`Result`.
fn domain_imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let domain = src().join("domain");
    let module_of = |path: &Path| -> Option<String> {
        let rel = path.strip_prefix(&domain).ok()?;
        let first = rel.components().next()?.as_os_str().to_string_lossy();
        Some(first.trim_end_matches(".rs").to_owned())
    };
    let mut modules: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        files("domain")
            .iter()
            .filter_map(|f| module_of(f))
            .filter(|m| m != "mod")
            .map(|m| (m, Default::default()))
            .collect();
    let names: Vec<String> = modules.keys().cloned().collect();
    let alias = |name: &str| -> Option<String> {
        match name {
            "Error" | "Result" => Some("error".to_owned()),
            n if names.iter().any(|m| m == n) => Some(n.to_owned()),
            _ => None,
        }
    };
    for file in files("domain") {
        let Some(module) = module_of(&file).filter(|m| m != "mod") else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // Unit tests may use anything.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut deps = std::collections::BTreeSet::new();
        for line in code.lines().map(str::trim_start) {
            if line.starts_with("//") {
                continue;
            }
            for (i, _) in line.match_indices("crate::") {
                let rest = line.get(i + "crate::".len()..).unwrap_or_default();
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .map(|n| n.trim().split("::").next().unwrap_or_default())
                        .collect(),
                    None => vec![
                        rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                            .next()
                            .unwrap_or_default(),
                    ],
                };
                deps.extend(names.into_iter().filter_map(alias));
            }
        }
        deps.remove(&module);
        if let Some(d) = modules.get_mut(&module) {
            d.extend(deps);
        }
    }
    modules
}

#[test]
fn domain_modules_import_each_other_without_cycles() {
    let graph = domain_imports();
    assert!(graph.contains_key("money") && graph.contains_key("pricing"));
    assert!(
        graph.get("pricing").is_some_and(|d| d.contains("money")),
        "the reader must see pricing's imports: {graph:?}"
    );
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit(
        node: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path.get(at..).unwrap_or_default().to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for node in graph.keys() {
        let cycle = visit(node, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap_or_default().join(" -> ")
        );
    }
}

#[test]
fn money_and_ids_are_the_bottom_of_the_domain() {
    let graph = domain_imports();
    for module in ["money", "id"] {
        let deps = graph.get(module).cloned().unwrap_or_default();
        assert!(deps.is_empty(), "`{module}` imports {deps:?}");
    }
}
