//! Every `COFFER_*` variable the Dockerfile, compose and Kubernetes set is a configuration key, and
//! its value one the service accepts.

use super::*;

/// Every `COFFER_…` token outside `#` comments, in every file under `deploy/`.
fn coffer_tokens() -> BTreeMap<String, BTreeSet<String>> {
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files(&deploy()) {
        let rel = path.strip_prefix(deploy()).unwrap().display().to_string();
        for line in read(&path).lines() {
            let code = line.trim_start();
            if code.starts_with('#') {
                continue;
            }
            let bytes = code.as_bytes();
            let mut i = 0;
            while let Some(at) = code[i..].find("COFFER_") {
                let start = i + at;
                let boundary = start == 0
                    || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_uppercase()
                        || bytes[end].is_ascii_digit()
                        || bytes[end] == b'_')
                {
                    end += 1;
                }
                if boundary {
                    found
                        .entry(code[start..end].to_owned())
                        .or_default()
                        .insert(rel.clone());
                }
                i = end.max(start + 1);
            }
        }
    }
    found
}

/// `(name, literal value)` for every environment variable set with a literal value: Dockerfile
/// `ENV`, compose `environment`, Kubernetes `env` entries and configMapGenerator literals.
fn env_assignments() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in read(&deploy().join("Dockerfile")).lines() {
        if let Some(rest) = line.trim().strip_prefix("ENV ") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
                out.push((k.to_owned(), v.to_owned(), "Dockerfile".to_owned()));
            }
        }
    }
    fn walk(v: &Value, file: &str, out: &mut Vec<(String, String, String)>) {
        match v {
            Value::Mapping(m) => {
                if let (Some(Value::String(name)), Some(value)) = (m.get("name"), m.get("value"))
                    && let Some(value) = scalar(value)
                {
                    out.push((name.clone(), value, file.to_owned()));
                }
                for (k, val) in m {
                    if let Some(k) = k.as_str()
                        && k.starts_with("COFFER_")
                        && let Some(value) = scalar(val)
                    {
                        out.push((k.to_owned(), value, file.to_owned()));
                    }
                    walk(val, file, out);
                }
            }
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, file, out)),
            Value::String(text) => {
                if let Some((k, val)) = text.split_once('=')
                    && k.starts_with("COFFER_")
                    && !k.contains(' ')
                {
                    out.push((k.to_owned(), val.to_owned(), file.to_owned()));
                }
            }
            _ => {}
        }
    }
    for path in files(&deploy()).into_iter().filter(|p| is_yaml(p)) {
        let rel = path.strip_prefix(deploy()).unwrap().display().to_string();
        for doc in parse_docs(&read(&path), &rel) {
            walk(&doc, &rel, &mut out);
        }
    }
    out
}

/// `COFFER_SERVER__LISTEN` → `["server", "listen"]`, by the service's own mapping.
fn key_path(var: &str) -> Vec<String> {
    let key = coffer_server::config::env_key(var)
        .unwrap_or_else(|| panic!("{var} sets no configuration key"));
    key.split('.').map(str::to_owned).collect()
}

#[test]
fn every_coffer_variable_is_a_configuration_key() {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let tokens = coffer_tokens();
    for must in [
        "COFFER_SERVER__LISTEN",
        "COFFER_DATABASE__URL",
        "COFFER_CONFIG",
        "COFFER_ADMIN_KEY",
    ] {
        assert!(
            tokens.contains_key(must),
            "{must} is not used anywhere in deploy/"
        );
    }
    for (var, where_) in &tokens {
        if SPECIAL.contains(&var.as_str()) {
            continue;
        }
        assert!(
            var.contains("__"),
            "{var} (in {where_:?}): not COFFER_SECTION__KEY and not one of {SPECIAL:?}"
        );
        let path = key_path(var);
        let mut at = &defaults;
        for part in &path {
            at = at.get(part).unwrap_or_else(|| {
                panic!(
                    "{var} (in {where_:?}): `{}` is not a configuration key",
                    path.join(".")
                )
            });
        }
        assert!(
            !at.is_object(),
            "{var} (in {where_:?}) names the section `{}`, not a key",
            path.join(".")
        );
    }

    // Every literal value is one the service accepts for that key.
    let assignments = env_assignments();
    let mut checked = 0;
    for (var, value, file) in &assignments {
        if !var.starts_with("COFFER_") || SPECIAL.contains(&var.as_str()) || value.contains("${") {
            continue;
        }
        let path = key_path(var);
        // Loaded as the service loads its environment, so a value it would reject fails here.
        let cfg = Config::load_with_vars(None, &[(var.clone(), value.clone())])
            .unwrap_or_else(|e| panic!("{var}={value} ({file}): {e}"));
        // The value arrived where the name says.
        let got = serde_json::to_value(&cfg).unwrap();
        let mut at = &got;
        for part in &path {
            at = &at[part];
        }
        let shown = at.as_str().map_or_else(|| at.to_string(), str::to_owned);
        assert_eq!(shown, *value, "{var} ({file})");
        checked += 1;
    }
    assert!(
        checked >= 4,
        "expected the Dockerfile, compose and kustomize assignments, checked {checked}: {assignments:?}"
    );
}
