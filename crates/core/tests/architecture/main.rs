//! The invariants of `docs/ARCHITECTURE.md`, read off the manifests and the sources: a change
//! that breaks one fails here, not in review. (It lives in core's tests because core links in
//! seconds; it reads the whole workspace.)

use std::fs;
use std::path::{Path, PathBuf};

mod cycles;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The names in a manifest's `[dependencies]` (not dev, not build), with whether each is
/// optional.
fn dependencies(krate: &str) -> Vec<(String, bool)> {
    let text = fs::read_to_string(root().join(krate).join("Cargo.toml")).expect("manifest");
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or_default()
            .to_owned();
        out.push((name, line.contains("optional = true")));
    }
    out
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in fs::read_dir(dir).expect("dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), fs::read_to_string(&path).expect("source")));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join(dir), &mut out);
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// Lines that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

fn has_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !is_ident(before) && !is_ident(after)
    })
}

const IO_CRATES: &[&str] = &[
    "tokio",
    "sqlx",
    "reqwest",
    "hyper",
    "http",
    "axum",
    "tower",
    "tower-http",
    "moka",
];

#[test]
fn core_does_no_io_and_has_no_floats() {
    for (dep, _) in dependencies("crates/core") {
        assert!(
            !IO_CRATES.contains(&dep.as_str()) && !dep.starts_with("coffer-"),
            "coffer-core depends on `{dep}`: core is pure (no I/O, HTTP, SQL, caches, runtimes)"
        );
    }
    for (path, text) in sources("crates/core/src") {
        for (n, line) in code_lines(&text) {
            for float in ["f32", "f64"] {
                assert!(
                    !has_word(line, float),
                    "{}:{}: `{float}` in core: money and rates are exact",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}

#[test]
fn adapters_know_core_and_the_kit_only() {
    let forbidden = ["sqlx", "axum", "moka", "tower", "tower-http"];
    for krate in ["crates/providers/p100", "crates/providers/corebanq"] {
        for (dep, _) in dependencies(krate) {
            assert!(
                !forbidden.contains(&dep.as_str())
                    && (!dep.starts_with("coffer-")
                        || dep == "coffer-core"
                        || dep == "coffer-provider-kit"),
                "{krate} depends on `{dep}`: adapters know coffer-core, the kit and HTTP only"
            );
        }
    }
    for (dep, optional) in dependencies("crates/providers/kit") {
        assert!(
            optional
                || (!forbidden.contains(&dep.as_str()) && !dep.starts_with("coffer-")
                    || dep == "coffer-core"),
            "the kit depends on `{dep}` outside its `testing` feature"
        );
    }
    for dir in ["crates/providers/p100/src", "crates/providers/corebanq/src"] {
        for (path, text) in sources(dir) {
            for (n, line) in code_lines(&text) {
                for name in ["coffer_store", "coffer_server", "axum", "sqlx", "moka"] {
                    assert!(
                        !has_word(line, name),
                        "{}:{}: an adapter uses `{name}`",
                        path.display(),
                        n + 1
                    );
                }
            }
        }
    }
}

#[test]
fn the_kit_names_no_provider() {
    for (path, text) in sources("crates/providers/kit/src") {
        let lower = text.to_lowercase();
        for name in ["p100", "corebanq"] {
            assert!(
                !lower.contains(name),
                "{} names `{name}`: the kit knows no provider",
                path.display()
            );
        }
    }
}

#[test]
fn error_statuses_are_answered_in_error_rs_only() {
    const ERRORS: &[&str] = &[
        "BAD_REQUEST",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "CONFLICT",
        "PAYLOAD_TOO_LARGE",
        "UNPROCESSABLE_ENTITY",
        "TOO_MANY_REQUESTS",
        "INTERNAL_SERVER_ERROR",
        "BAD_GATEWAY",
        "SERVICE_UNAVAILABLE",
        "GATEWAY_TIMEOUT",
    ];
    for (path, text) in sources("crates/server/src") {
        let file = path.to_string_lossy().replace('\\', "/");
        // Readiness answers 503 with its own body: a probe's answer, not an error.
        if file.ends_with("/error.rs") || file.ends_with("/routes/health.rs") {
            continue;
        }
        for (n, line) in code_lines(&text) {
            for code in ERRORS {
                assert!(
                    !line.contains(&format!("StatusCode::{code}")),
                    "{file}:{}: `StatusCode::{code}` outside error.rs: errors become answers in one place",
                    n + 1
                );
            }
            assert!(
                !line.contains("StatusCode::from_u16"),
                "{file}:{}: a computed status outside error.rs",
                n + 1
            );
        }
    }
}

#[test]
fn adapters_are_registered_in_one_place() {
    for (path, text) in sources("crates/server/src") {
        let file = path.to_string_lossy().replace('\\', "/");
        if file.ends_with("/registry.rs") {
            assert!(text.contains("pub const REGISTRY"), "{file}: no REGISTRY");
            continue;
        }
        for (n, line) in code_lines(&text) {
            assert!(
                !line.contains("coffer_provider_p100")
                    && !line.contains("coffer_provider_corebanq"),
                "{file}:{}: a provider crate named outside the registry (registry.rs)",
                n + 1
            );
        }
    }
}
