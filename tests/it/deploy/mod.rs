//! What can be checked about `deploy/` without a container engine or a cluster: every YAML file
//! parses; every `COFFER_*` variable the Dockerfile, compose and Kubernetes name is a real
//! configuration key and its value is accepted; the provider secrets are exported under the names
//! the mounted `coffer.toml` files ask for; ports agree with `server.listen`; the probe and scrape
//! paths answer on the real server; every `coffer.toml` loads and validates; the kustomize base and
//! overlay hang together; the Dockerfile builds `--locked` and runs as a non-root user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_files;
mod dockerfile;
mod docs;
mod env;
mod kustomize;
mod ports;
mod secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use coffer_server::config::Config;
use serde_norway::Value;

/// Variables `coffer` reads itself, outside the `COFFER_SECTION__KEY` scheme.
const SPECIAL: &[&str] = &["COFFER_ADMIN_KEY", "COFFER_CONFIG"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy() -> PathBuf {
    root().join("deploy")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Every document of a (multi-document) YAML text, with `<<` merge keys applied.
fn parse_docs(text: &str, what: &str) -> Vec<Value> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let mut v =
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{what}, document {}: {e}", i + 1));
        v.apply_merge()
            .unwrap_or_else(|e| panic!("{what}: merge keys: {e}"));
        if !v.is_null() {
            docs.push(v);
        }
    }
    docs
}

fn yaml(rel: &str) -> Vec<Value> {
    let path = deploy().join(rel);
    parse_docs(&read(&path), &path.display().to_string())
}

fn yaml1(rel: &str) -> Value {
    let mut docs = yaml(rel);
    assert_eq!(docs.len(), 1, "{rel}: expected one document");
    docs.remove(0)
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

fn seq(v: &Value) -> &Vec<Value> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("expected a list, got {v:?}"))
}

fn load_config(path: &Path) -> Config {
    Config::load(Some(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const COMPOSE_TOML: &str = "coffer.compose.toml";
const BASE_TOML: &str = "k8s/base/coffer.toml";
const PROD_TOML: &str = "k8s/overlays/production/coffer.toml";

#[test]
fn every_yaml_file_parses() {
    let yamls: Vec<PathBuf> = files(&deploy())
        .into_iter()
        .filter(|p| is_yaml(p))
        .collect();
    assert!(
        yamls.len() >= 10,
        "expected the compose and kustomize files, found {yamls:?}"
    );
    for path in &yamls {
        let docs = parse_docs(&read(path), &path.display().to_string());
        assert!(!docs.is_empty(), "{}: no document", path.display());
        for d in &docs {
            assert!(
                d.is_mapping(),
                "{}: a document is not a mapping",
                path.display()
            );
        }
    }
    // Multi-document text parses document by document.
    assert_eq!(parse_docs("a: 1\n---\nb: 2\n", "inline").len(), 2);
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn deployment() -> Value {
    yaml1("k8s/base/deployment.yaml")
}

fn container(workload: &Value) -> &Value {
    let containers = seq(&workload["spec"]["template"]["spec"]["containers"]);
    assert_eq!(containers.len(), 1);
    &containers[0]
}

fn dockerfile() -> String {
    read(&deploy().join("Dockerfile"))
}

/// The instructions of the last stage (the runtime image).
fn runtime_stage(text: &str) -> Vec<String> {
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM");
    lines[last_from..].to_vec()
}
