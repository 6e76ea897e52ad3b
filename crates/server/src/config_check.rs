//! `coffer config check`: every problem of a configuration file at once, each named by its key.
//! Loading stops at the first problem (serde does); an operator fixing a file wants them all, so
//! the file is walked key by key: unknown keys against the defaults' shape, then each known key
//! alone through the real loader, then the whole file with the environment as `serve` loads it.

use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde_json::Value;

use crate::config::{Config, ProviderConfig};

/// One problem: the key (`server.listen`, `providers[1].kind`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

/// Every problem of the file at `path` (none: `serve` would start with it).
pub fn check_file(path: &Path) -> Vec<Problem> {
    let problem = |key: &str, message: String| Problem {
        key: key.to_owned(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![problem("(file)", format!("{}: {e}", path.display()))],
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => return vec![problem("(file)", format!("not TOML: {e}"))],
    };
    let mut problems = Vec::new();
    let shape = serde_json::to_value(Config::default()).unwrap_or_default();
    for (key, value) in &table {
        if key == "providers" {
            check_providers(value, &mut problems);
        } else {
            match shape.get(key.as_str()) {
                None => problems.push(unknown(key)),
                Some(s) => check_key(&[key.as_str()], value, s, &mut problems),
            }
        }
    }
    if problems.is_empty()
        && let Err(e) = Config::load(Some(path))
    {
        problems.push(match e {
            crate::config::ConfigError::Invalid { key, message } => problem(&key, message),
            crate::config::ConfigError::Load(m) => problem("(file or environment)", m),
        });
    }
    problems
}

/// `value` at `path`, against the defaults' `shape` there: a table is walked (a key the
/// defaults do not have is unknown), anything else is loaded alone. A free map (`rates.manual`,
/// empty by default) is loaded whole.
fn check_key(path: &[&str], value: &toml::Value, shape: &Value, out: &mut Vec<Problem>) {
    match (value, shape) {
        (toml::Value::Table(t), Value::Object(m)) if !m.is_empty() => {
            for (k, v) in t {
                let mut p = path.to_vec();
                p.push(k);
                match m.get(k.as_str()) {
                    None => out.push(unknown(&p.join("."))),
                    Some(s) => check_key(&p, v, s, out),
                }
            }
        }
        _ => load_alone(path, value, out),
    }
}

fn unknown(key: &str) -> Problem {
    Problem {
        key: key.to_owned(),
        message: "unknown key (a typo?)".to_owned(),
    }
}

/// Loads the defaults with this one key set: a wrong type or value is named by its key.
fn load_alone(path: &[&str], value: &toml::Value, out: &mut Vec<Problem>) {
    let mut doc = value.clone();
    for k in path.iter().rev() {
        let mut t = toml::Table::new();
        t.insert((*k).to_owned(), doc);
        doc = toml::Value::Table(t);
    }
    let text = toml::to_string(&doc).unwrap_or_default();
    let fig = Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(&text));
    if let Err(e) = fig.extract::<Config>() {
        // The kind alone: the key is ours, figment's would name its own profile and source.
        out.push(Problem {
            key: path.join("."),
            message: e.kind.to_string(),
        });
    }
}

/// Each `[[providers]]` entry on its own, so one bad entry does not hide another.
fn check_providers(value: &toml::Value, out: &mut Vec<Problem>) {
    let Some(list) = value.as_array() else {
        out.push(Problem {
            key: "providers".into(),
            message: "expected a list of `[[providers]]` tables".into(),
        });
        return;
    };
    for (i, entry) in list.iter().enumerate() {
        let key = format!("providers[{i}]");
        let Some(t) = entry.as_table() else {
            out.push(Problem {
                key,
                message: "expected a table".into(),
            });
            continue;
        };
        let fields = provider_fields();
        for (k, v) in t {
            if !fields.contains(k) {
                out.push(unknown(&format!("{key}.{k}")));
                continue;
            }
            // This field alone on an otherwise valid entry: its problem is named by its key.
            let mut alone: toml::Table = toml::from_str(MINIMAL_PROVIDER).unwrap_or_default();
            alone.insert(k.clone(), v.clone());
            if let Err(e) = toml::Value::Table(alone).try_into::<ProviderConfig>() {
                out.push(Problem {
                    key: format!("{key}.{k}"),
                    message: e.message().to_owned(),
                });
            }
        }
        for required in ["id", "kind", "base_url", "api_key_env"] {
            if !t.contains_key(required) {
                out.push(Problem {
                    key: format!("{key}.{required}"),
                    message: "missing: every provider needs it".into(),
                });
            }
        }
    }
}

/// The required fields of a provider, with placeholder values.
const MINIMAL_PROVIDER: &str = "id = 'x'\nkind = 'x'\nbase_url = 'x'\napi_key_env = 'X'";

/// The fields a `[[providers]]` entry may have.
fn provider_fields() -> Vec<String> {
    toml::from_str::<ProviderConfig>(MINIMAL_PROVIDER)
        .ok()
        .and_then(|p| serde_json::to_value(p).ok())
        .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Vec<(String, String)> {
        let dir = std::env::temp_dir().join(format!("coffer-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let path = dir.join(format!("{}.toml", text.len()));
        std::fs::write(&path, text).unwrap_or_default();
        let out = check_file(&path);
        let _ = std::fs::remove_file(&path);
        out.into_iter().map(|p| (p.key, p.message)).collect()
    }

    #[test]
    fn every_bad_key_is_named() {
        let problems = check(
            r#"
[server]
listen = "not an address"
request_timeot = "5s"
[cache]
ttl = 30
[logs]
format = "json"
[rates]
manual = { USD = "0.9" }
[[providers]]
id = "p100"
kind = "p100"
base_url = "http://x"
api_key_env = "K"
timeout = "soon"
colour = "blue"
"#,
        );
        let mut keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "cache.ttl",
                "logs",
                "providers[0].colour",
                "providers[0].timeout",
                "server.listen",
                "server.request_timeot",
            ],
            "{problems:?}"
        );
        let timeout = problems
            .iter()
            .find(|(k, _)| k == "providers[0].timeout")
            .unwrap();
        assert!(timeout.1.contains("soon"), "{problems:?}");
    }

    #[test]
    fn a_good_file_has_no_problem_and_semantic_errors_are_named() {
        assert_eq!(check("[server]\nlisten = \"127.0.0.1:9\"\n"), Vec::new());
        let problems = check("[rates]\nbase = \"XYZ\"\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "rates.base");
    }
}
