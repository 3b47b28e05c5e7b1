//! The core's modules form layers: each module uses only modules below it (so the module graph
//! has no cycle, and a pool can be made without touching the registry or the endpoint). The order
//! is [`LAYERS`]; docs/ARCHITECTURE.md draws it. This test reads every file of `src/` and fails on
//! any `crate::<module>` path in code (comments aside) that names a module at or above its own.

use std::fs;
use std::path::{Path, PathBuf};

/// Every top-level module of `src/`, lowest first. A module may use the ones before it.
const LAYERS: &[&str] = &[
    // Leaves: errors, locks and fork handling, time, randomness, the protocol, commands, settings.
    "error",
    // Cutting a call short from its own thread (Ctrl-C in Python).
    "interrupt",
    "sync",
    "fork",
    // Generic worker threads for the bindings' non-blocking calls (they hold their lock across
    // fork()).
    "workers",
    "clock",
    "random",
    "resp",
    "command",
    "config",
    // One connection, and the policies and records around calls.
    "tls",
    "connection",
    "retry",
    "breaker",
    "sizing",
    "metrics",
    "health",
    "leak",
    "events",
    "prometheus",
    // The pool, with its maintenance thread and the process-wide list of pools.
    "pool",
    // What serves users of many pools: the endpoint, then the registry (which starts it).
    "exporter",
    "registry",
    // The C ABI over everything.
    "ffi",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (None for `lib.rs`).
fn module_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

/// The modules named by `crate::<name>` paths in `line` (also inside `crate::{a, b::c}`).
fn crate_paths(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.push(name);
            }
        } else {
            names.push(
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    names
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let Some(own) = rank(&module) else {
            violations.push(format!(
                "{}: module `{module}` is missing from LAYERS",
                file.display()
            ));
            continue;
        };
        let text = fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for used in crate_paths(code) {
                if used == module {
                    continue;
                }
                match rank(&used) {
                    Some(theirs) if theirs < own => {}
                    Some(_) => violations.push(format!(
                        "{}:{}: `{module}` uses `{used}`, which is not below it",
                        file.display(),
                        number + 1
                    )),
                    // Re-exports at the crate root (`crate::Pool`) and macros: not modules.
                    None => {}
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_module_of_the_crate_is_in_a_layer() {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    for line in lib.lines() {
        let line = line.trim();
        let declared = ["pub mod ", "mod ", "pub(crate) mod "]
            .iter()
            .find_map(|prefix| line.strip_prefix(prefix));
        if let Some(name) = declared.and_then(|rest| rest.strip_suffix(';')) {
            assert!(
                rank(name).is_some(),
                "module `{name}` is missing from LAYERS"
            );
        }
    }
}
