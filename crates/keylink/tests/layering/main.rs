//! The library's layering, read from its sources the way a reviewer would: `error.rs` sits
//! above the modules whose errors it wraps and none of them imports it, even through other
//! modules, and the ground floor (`text`, `ids`, `clock`, `secret`) imports nothing above it.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The modules every other one may use; they use only each other.
const GROUND_FLOOR: &[&str] = &["text", "ids", "clock", "secret"];

/// Each top-level module of `src/` and the modules its code names as `crate::<module>`
/// (its submodules included; unit tests, the test harness and the fuzzing entry points are
/// not the library's code).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let name = relative.to_str().unwrap();
            if !name.ends_with(".rs")
                || name.ends_with("tests.rs")
                || ["lib.rs", "fuzzing.rs", "mutate.rs", "test_harness.rs"].contains(&name)
            {
                continue;
            }
            let module = name.split(['/', '.']).next().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let used = graph.entry(module.clone()).or_default();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
                    .unwrap_or(rest.len());
                let target = &rest[..end];
                if !target.is_empty() && target != module {
                    used.insert(target.to_owned());
                }
            }
        }
    }
    graph
}

/// The modules `from` reaches through imports.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut pending = vec![from.to_owned()];
    while let Some(module) = pending.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if seen.insert(next.clone()) {
                pending.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn no_module_whose_errors_error_rs_wraps_imports_it() {
    let graph = imports();
    let below_error = &graph["error"];
    assert!(
        below_error.contains("provider"),
        "the graph was read: {below_error:?}"
    );
    let circles: Vec<_> = below_error
        .iter()
        .filter(|m| reachable(&graph, m).contains("error"))
        .collect();
    assert!(
        circles.is_empty(),
        "these reach error.rs again: {circles:?}"
    );
}

#[test]
fn the_ground_floor_imports_only_the_ground_floor() {
    let graph = imports();
    for module in GROUND_FLOOR {
        let above: Vec<_> = reachable(&graph, module)
            .into_iter()
            .filter(|m| !GROUND_FLOOR.contains(&m.as_str()))
            .collect();
        assert!(above.is_empty(), "{module} imports {above:?}");
    }
}
