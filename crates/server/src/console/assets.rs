//! The console's files, embedded in the binary (`include_bytes!`), each served under a name
//! carrying a hash of its content, computed once at start-up. A file that names another
//! (`import … from "./api.js"`, `<link href="/console/assets/console.css">`) names its hashed
//! name instead, so its own hash changes with the other's: a browser caching any of them for a
//! year never mixes versions. Only the page itself (`index.html`) is asked for again each time.

use std::collections::HashMap;
use std::sync::LazyLock;

use sha2::{Digest, Sha256};

/// Where the page finds its assets.
pub const PREFIX: &str = "/console/assets/";

struct Source {
    name: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
}

macro_rules! source {
    ($name:literal, $path:literal, $type:expr) => {
        Source {
            name: $name,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $path)),
            content_type: $type,
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every asset, each after those it names (the hashes are computed in this order).
const SOURCES: &[Source] = &[
    source!("uPlot.esm.js", "vendor/uPlot.esm.js", JS),
    source!("uPlot.min.css", "vendor/uPlot.min.css", CSS),
    source!("console.css", "console.css", CSS),
    source!("api.js", "api.js", JS),
    source!("ui.js", "ui.js", JS),
    source!("overview.js", "overview.js", JS),
    source!("customers.js", "customers.js", JS),
    source!("sync.js", "sync.js", JS),
    source!("history.js", "history.js", JS),
    source!("rates.js", "rates.js", JS),
    source!("app.js", "app.js", JS),
];

const INDEX: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/index.html"));

pub struct Asset {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

pub struct Assets {
    /// By hashed name.
    pub files: HashMap<String, Asset>,
    /// Plain name → hashed name.
    pub names: Vec<(&'static str, String)>,
    /// The page, naming the hashed assets.
    pub index: Vec<u8>,
}

/// Built on first use (the router asks at start-up).
pub static ASSETS: LazyLock<Assets> = LazyLock::new(Assets::build);

/// `app.js` with hash `h` → `app.h.js`.
fn hashed_name(name: &str, body: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(body));
    let hash = &digest[..16];
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

/// `text` with every earlier asset's reference replaced by its hashed name.
fn rewrite(text: &[u8], names: &[(&'static str, String)], prefix: &str) -> Vec<u8> {
    let mut s = String::from_utf8_lossy(text).into_owned();
    for (plain, hashed) in names {
        for quote in ['"', '\''] {
            s = s.replace(
                &format!("{quote}{prefix}{plain}{quote}"),
                &format!("{quote}{prefix}{hashed}{quote}"),
            );
        }
    }
    s.into_bytes()
}

impl Assets {
    fn build() -> Self {
        let mut files = HashMap::new();
        let mut names: Vec<(&'static str, String)> = Vec::new();
        for src in SOURCES {
            let body = rewrite(src.bytes, &names, "./");
            let hashed = hashed_name(src.name, &body);
            names.push((src.name, hashed.clone()));
            files.insert(
                hashed,
                Asset {
                    content_type: src.content_type,
                    body,
                },
            );
        }
        let index = rewrite(INDEX, &names, PREFIX);
        Assets {
            files,
            names,
            index,
        }
    }

    /// The hashed name of an asset, by its plain name.
    pub fn hashed(&self, plain: &str) -> Option<&str> {
        self.names
            .iter()
            .find(|(p, _)| *p == plain)
            .map(|(_, h)| h.as_str())
    }

    /// Bytes of every asset and of the page, as embedded (before compression).
    pub fn total_bytes(&self) -> usize {
        self.index.len() + self.files.values().map(|a| a.body.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_names_a_hashed_asset() {
        let a = &*ASSETS;
        let index = String::from_utf8(a.index.clone()).unwrap_or_default();
        for plain in ["app.js", "console.css", "uPlot.min.css"] {
            let hashed = a.hashed(plain).unwrap_or_default();
            assert!(index.contains(&format!("{PREFIX}{hashed}")), "{index}");
            assert!(!index.contains(&format!("{PREFIX}{plain}\"")), "{index}");
        }
        for (plain, hashed) in &a.names {
            let body = String::from_utf8_lossy(&a.files[hashed].body).into_owned();
            for (other, _) in &a.names {
                assert!(
                    !body.contains(&format!("\"./{other}\"")),
                    "{plain} still names ./{other}"
                );
            }
        }
        let app = String::from_utf8_lossy(&a.files[a.hashed("app.js").unwrap_or_default()].body)
            .into_owned();
        let api = a.hashed("api.js").unwrap_or_default();
        assert!(app.contains(&format!("\"./{api}\"")), "{app}");
    }

    #[test]
    fn a_change_in_an_import_changes_the_importer_s_name() {
        let names = vec![("api.js", "api.aaaa.js".to_owned())];
        let other = vec![("api.js", "api.bbbb.js".to_owned())];
        let src = br#"import { api } from "./api.js";"#;
        let (a, b) = (rewrite(src, &names, "./"), rewrite(src, &other, "./"));
        assert_ne!(hashed_name("app.js", &a), hashed_name("app.js", &b));
        assert!(
            hashed_name("app.js", &a).starts_with("app.")
                && hashed_name("app.js", &a).ends_with(".js")
        );
    }
}
