//! What can be checked about `deploy/` without a container engine or a cluster: every YAML file
//! parses; every `COFFER_*` variable the Dockerfile, compose and Kubernetes name is a real
//! configuration key and its value is accepted; the provider secrets are exported under the names
//! the mounted `coffer.toml` files ask for; ports agree with `server.listen`; the probe and scrape
//! paths answer on the real server; every `coffer.toml` loads and validates; the kustomize base and
//! overlay hang together; the Dockerfile builds `--locked` and runs as a non-root user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

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
    // Documents are separated by a `---` line (block scalars are indented, so a separator at
    // column 0 cannot be inside one).
    let mut chunks = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            chunks.push(line[3..].to_owned() + "\n");
        } else {
            let last = chunks.last_mut().unwrap();
            last.push_str(line);
            last.push('\n');
        }
    }
    let mut docs = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut v: Value = serde_norway::from_str(chunk)
            .unwrap_or_else(|e| panic!("{what}, document {}: {e}", i + 1));
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

// ---------------------------------------------------------------------------------------------

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

/// With `kubectl` on the PATH, the base and the overlay also render through kustomize.
#[test]
fn kustomize_renders_when_kubectl_is_installed() {
    for dir in ["k8s/base", "k8s/overlays/production"] {
        let out = match std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(deploy().join(dir))
            .output()
        {
            Ok(o) => o,
            Err(_) => {
                eprintln!("kubectl not found: kustomize rendering not checked");
                return;
            }
        };
        assert!(
            out.status.success(),
            "kubectl kustomize {dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs = parse_docs(&String::from_utf8(out.stdout).unwrap(), dir);
        let kinds: BTreeSet<&str> = docs.iter().map(|d| s(&d["kind"])).collect();
        for k in [
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "ServiceAccount",
            "Job",
            "ConfigMap",
        ] {
            assert!(kinds.contains(k), "{dir}: no {k} rendered ({kinds:?})");
        }
        assert!(
            !kinds.contains("Secret"),
            "{dir}: a Secret is rendered; secrets are referenced, never committed"
        );
        if dir.ends_with("production") {
            for d in &docs {
                if d["kind"] != "Namespace" {
                    assert_eq!(
                        d["metadata"]["namespace"], "coffer",
                        "{dir}: {:?}",
                        d["metadata"]["name"]
                    );
                }
            }
            let dep = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
            assert!(dep["spec"]["replicas"].is_null(), "the HPA owns the scale");
            let image = s(&dep["spec"]["template"]["spec"]["containers"][0]["image"]);
            assert!(image.starts_with("registry.example.com/coffer:"), "{image}");
            let cm = docs
                .iter()
                .find(|d| {
                    d["kind"] == "ConfigMap"
                        && s(&d["metadata"]["name"]).starts_with("coffer-config")
                })
                .unwrap();
            assert!(s(&cm["data"]["coffer.toml"]).contains("https://partner-api.p100.io"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Environment variables

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

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `COFFER_SERVER__LISTEN` → `["server", "listen"]`, as figment's `Env::prefixed("COFFER_").split("__")` does.
fn key_path(var: &str) -> Vec<String> {
    var.trim_start_matches("COFFER_")
        .split("__")
        .map(str::to_lowercase)
        .collect()
}

static TMP: AtomicUsize = AtomicUsize::new(0);

/// Loads a coffer.toml holding only `key = value` (typed as figment types environment values),
/// through the real `Config::load`, so a value the service would reject fails here.
fn load_with(path: &[String], value: &str) -> Result<Config, String> {
    let literal = if value == "true" || value == "false" || value.parse::<i64>().is_ok() {
        value.to_owned()
    } else {
        serde_json::to_string(value).unwrap()
    };
    let (last, table) = path.split_last().unwrap();
    let text = if table.is_empty() {
        format!("{last} = {literal}\n")
    } else {
        format!("[{}]\n{last} = {literal}\n", table.join("."))
    };
    let file = std::env::temp_dir().join(format!(
        "coffer-deploy-test-{}-{}.toml",
        std::process::id(),
        TMP.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&file, text).unwrap();
    let result = Config::load(Some(&file)).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&file);
    result
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
        let cfg = load_with(&path, value).unwrap_or_else(|e| panic!("{var}={value} ({file}): {e}"));
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

// ---------------------------------------------------------------------------------------------
// Secrets

fn api_key_envs(toml_rel: &str) -> BTreeSet<String> {
    load_config(&deploy().join(toml_rel))
        .providers
        .into_iter()
        .map(|p| p.api_key_env)
        .collect()
}

fn deployment() -> Value {
    yaml1("k8s/base/deployment.yaml")
}

fn container(workload: &Value) -> &Value {
    let containers = seq(&workload["spec"]["template"]["spec"]["containers"]);
    assert_eq!(containers.len(), 1);
    &containers[0]
}

#[test]
fn provider_secrets_are_exported_under_the_names_the_config_asks_for() {
    // Kubernetes: every non-COFFER variable of the Deployment comes from the Secret and is one
    // provider's api_key_env, in the base and in the production configuration alike.
    let dep = deployment();
    let env = seq(&container(&dep)["env"]);
    let mut provider_vars = BTreeSet::new();
    let mut secret_keys = BTreeSet::new();
    for e in env {
        let name = s(&e["name"]);
        if let Some(r) = e["valueFrom"]["secretKeyRef"].as_mapping() {
            assert_eq!(
                r.get("name").and_then(Value::as_str),
                Some("coffer"),
                "{name}"
            );
            secret_keys.insert(s(&e["valueFrom"]["secretKeyRef"]["key"]).to_owned());
        }
        if !name.starts_with("COFFER_") {
            assert!(
                e["valueFrom"]["secretKeyRef"].is_mapping(),
                "{name} must come from the Secret"
            );
            provider_vars.insert(name.to_owned());
        }
    }
    for sensitive in ["COFFER_DATABASE__URL", "COFFER_ADMIN_KEY"] {
        let e = env
            .iter()
            .find(|e| e["name"] == sensitive)
            .unwrap_or_else(|| panic!("{sensitive} not set"));
        assert!(
            e["valueFrom"]["secretKeyRef"].is_mapping(),
            "{sensitive} must come from the Secret"
        );
    }
    let expected: BTreeSet<String> = ["P100_API_KEY", "BANK_API_KEY"].map(String::from).into();
    assert_eq!(provider_vars, expected);
    assert_eq!(api_key_envs(BASE_TOML), provider_vars, "base coffer.toml");
    assert_eq!(
        api_key_envs(PROD_TOML),
        provider_vars,
        "production coffer.toml"
    );

    // The example Secret has exactly the keys referenced, placeholders only, and is not applied.
    let example = yaml1("k8s/base/secret.example.yaml");
    let job = yaml1("k8s/base/migrate-job.yaml");
    for e in seq(&container(&job)["env"]) {
        if let Some(k) = e["valueFrom"]["secretKeyRef"]["key"].as_str() {
            secret_keys.insert(k.to_owned());
        }
    }
    let example_keys: BTreeSet<String> = example["stringData"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| s(k).to_owned())
        .collect();
    assert_eq!(
        example_keys, secret_keys,
        "secret.example.yaml vs the secretKeyRefs"
    );
    for (k, v) in example["stringData"].as_mapping().unwrap() {
        assert!(
            s(v).contains("CHANGE_ME"),
            "secret.example.yaml `{}` must be a placeholder",
            s(k)
        );
    }
    for kz in [
        "k8s/base/kustomization.yaml",
        "k8s/overlays/production/kustomization.yaml",
    ] {
        let k = yaml1(kz);
        assert!(
            k["secretGenerator"].is_null(),
            "{kz}: secrets are created in the cluster, not generated"
        );
        for r in seq(&k["resources"]) {
            assert!(
                !s(r).contains("secret"),
                "{kz}: {} must not be applied",
                s(r)
            );
        }
    }

    // Compose: the app's non-COFFER variables are exactly the providers' api_key_env.
    let compose = yaml1("compose.yaml");
    let app_env = compose["services"]["coffer"]["environment"]
        .as_mapping()
        .unwrap();
    let compose_vars: BTreeSet<String> = app_env
        .keys()
        .map(|k| s(k).to_owned())
        .filter(|k| !k.starts_with("COFFER_"))
        .collect();
    assert_eq!(
        compose_vars,
        api_key_envs(COMPOSE_TOML),
        "compose coffer environment vs coffer.compose.toml"
    );
}

// ---------------------------------------------------------------------------------------------
// Ports

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

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no port in {addr}"))
}

#[test]
fn every_port_is_the_listen_port() {
    // Dockerfile: the image listens where it says it does, on every interface.
    let runtime = runtime_stage(&dockerfile());
    let env_listen = runtime
        .iter()
        .filter_map(|l| l.strip_prefix("ENV "))
        .flat_map(str::split_whitespace)
        .find_map(|p| p.strip_prefix("COFFER_SERVER__LISTEN="))
        .expect("the runtime stage sets COFFER_SERVER__LISTEN");
    let image_listen: std::net::SocketAddr = env_listen.parse().unwrap();
    assert!(
        image_listen.ip().is_unspecified(),
        "the image must listen on 0.0.0.0, not {image_listen}"
    );
    let exposed: Vec<u16> = runtime
        .iter()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(str::split_whitespace)
        .map(|p| p.trim_end_matches("/tcp").parse().unwrap())
        .collect();
    assert_eq!(exposed, vec![image_listen.port()]);

    // Compose: the file's listen port (no env override of it) is the published and scraped one.
    // The image's COFFER_SERVER__LISTEN wins over any coffer.toml: they must agree.
    let compose_cfg = load_config(&deploy().join(COMPOSE_TOML));
    let listen = compose_cfg.server.listen;
    assert_eq!(
        listen.port(),
        image_listen.port(),
        "coffer.compose.toml vs the image's COFFER_SERVER__LISTEN"
    );
    assert!(
        listen.ip().is_unspecified(),
        "coffer.compose.toml listens on {listen}"
    );
    let compose = yaml1("compose.yaml");
    let app = &compose["services"]["coffer"];
    let env_override = app["environment"]["COFFER_SERVER__LISTEN"].as_str();
    let port = env_override.map_or(listen.port(), port_of);
    for p in seq(&app["ports"]) {
        assert_eq!(port_of(s(p)), port, "compose coffer ports: {}", s(p));
    }
    let prom = yaml1("prometheus.yml");
    let job = seq(&prom["scrape_configs"])
        .iter()
        .find(|j| j["job_name"] == "coffer")
        .expect("a coffer scrape job");
    let mut scraped = 0;
    for sd in seq(&job["dns_sd_configs"]) {
        assert!(seq(&sd["names"]).iter().any(|n| n == "coffer"));
        assert_eq!(
            sd["port"].as_u64(),
            Some(u64::from(port)),
            "prometheus dns_sd port"
        );
        scraped += 1;
    }
    for sc in job["static_configs"].as_sequence().into_iter().flatten() {
        for t in seq(&sc["targets"]) {
            assert_eq!(port_of(s(t)), port, "prometheus target {}", s(t));
            scraped += 1;
        }
    }
    assert!(scraped > 0, "prometheus scrapes no coffer target");

    // Compose: each provider's base_url is a simulator service listening on that port, for
    // that provider kind, on every interface.
    for p in &compose_cfg.providers {
        let url = p.base_url.trim_start_matches("http://");
        let (host, port) = url
            .split_once(':')
            .unwrap_or_else(|| panic!("{}: no port", p.base_url));
        let svc = &compose["services"][host];
        assert!(
            svc.is_mapping(),
            "provider {}: no compose service `{host}`",
            p.id
        );
        let cmd: Vec<&str> = seq(&svc["command"]).iter().map(s).collect();
        assert_eq!(cmd[0], "sim", "{host} runs the simulators");
        let flag = format!("--{}-listen", p.kind);
        let at = cmd
            .iter()
            .position(|c| *c == flag)
            .unwrap_or_else(|| panic!("{host}: no {flag}"));
        assert_eq!(cmd[at + 1], format!("0.0.0.0:{port}"), "{host} {flag}");
    }

    // Kubernetes: container port `http`, probes, Service, scrape annotation, both configurations.
    for rel in [BASE_TOML, PROD_TOML] {
        let l = load_config(&deploy().join(rel)).server.listen;
        assert!(l.ip().is_unspecified(), "{rel} listens on {l}");
        assert_eq!(l.port(), 8080, "{rel}");
    }
    let k8s_port = load_config(&deploy().join(BASE_TOML)).server.listen.port();
    assert_eq!(
        k8s_port,
        image_listen.port(),
        "k8s coffer.toml vs the image's COFFER_SERVER__LISTEN"
    );
    let dep = deployment();
    let c = container(&dep);
    let ports = seq(&c["ports"]);
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["name"], "http");
    assert_eq!(
        ports[0]["containerPort"].as_u64(),
        Some(u64::from(k8s_port))
    );
    assert!(
        !seq(&c["env"])
            .iter()
            .any(|e| e["name"] == "COFFER_SERVER__LISTEN"),
        "the listen port comes from coffer.toml only"
    );
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let p = &c[probe]["httpGet"]["port"];
        if !p.is_null() {
            assert!(
                p == "http" || p.as_u64() == Some(u64::from(k8s_port)),
                "{probe} port {p:?}"
            );
        }
    }
    let svc = yaml1("k8s/base/service.yaml");
    for p in seq(&svc["spec"]["ports"]) {
        let t = &p["targetPort"];
        assert!(
            t == "http" || t.as_u64() == Some(u64::from(k8s_port)),
            "Service targetPort {t:?}"
        );
    }
    let ann = &dep["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        s(&ann["prometheus.io/port"]).parse::<u16>().unwrap(),
        k8s_port
    );
}

// ---------------------------------------------------------------------------------------------
// Paths on the real server

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_and_scrape_paths_answer_on_the_real_server() {
    let dep = deployment();
    let c = container(&dep);
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        if let Some(p) = c[probe]["httpGet"]["path"].as_str() {
            paths.insert(format!("k8s {probe}"), p.to_owned());
        }
    }
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let ann = &dep["spec"]["template"]["metadata"]["annotations"];
    paths.insert(
        "k8s prometheus.io/path".into(),
        s(&ann["prometheus.io/path"]).to_owned(),
    );
    let prom = yaml1("prometheus.yml");
    let job = seq(&prom["scrape_configs"])
        .iter()
        .find(|j| j["job_name"] == "coffer")
        .unwrap();
    // Prometheus' default metrics_path is /metrics.
    paths.insert(
        "prometheus.yml".into(),
        job["metrics_path"]
            .as_str()
            .unwrap_or("/metrics")
            .to_owned(),
    );

    let app = common::spawn(common::Backend::Sqlite, Default::default())
        .await
        .expect("sqlite is always available");
    for (what, path) in &paths {
        let r = app
            .client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "{what}: GET {path} (no key, as a probe or scraper calls it)"
        );
        if what.contains("prometheus") {
            let ct = r.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(ct.starts_with("text/plain"), "{what}: {path} answers {ct}");
        }
    }
    // Readiness says what it checked.
    let ready: serde_json::Value = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Configuration files

#[test]
fn every_coffer_toml_loads_and_validates() {
    let tomls: Vec<PathBuf> = files(&deploy())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert_eq!(tomls.len(), 3, "{tomls:?}");
    for path in &tomls {
        let cfg = load_config(path);
        assert_eq!(cfg.providers.len(), 2, "{}", path.display());
        assert_eq!(
            cfg.log.format,
            "json",
            "{}: production logs are JSON",
            path.display()
        );
        // A migration step (compose service, Kubernetes Job) owns the schema.
        assert!(!cfg.database.migrate_on_start, "{}", path.display());
        assert!(
            cfg.database.url.starts_with("postgres://"),
            "{}",
            path.display()
        );
        assert!(
            !cfg.database.url.contains(":CHANGE") && !cfg.database.url.contains(":coffer@"),
            "{}: no password in the file",
            path.display()
        );
        // Above, the pod's grace period must outlive the server's.
        assert!(
            cfg.server.shutdown_grace.as_secs() < 30,
            "{}",
            path.display()
        );
    }
    let prod = load_config(&deploy().join(PROD_TOML));
    let p100 = prod.providers.iter().find(|p| p.kind == "p100").unwrap();
    assert_eq!(p100.base_url, "https://partner-api.p100.io");
    let base = load_config(&deploy().join(BASE_TOML));
    let p100 = base.providers.iter().find(|p| p.kind == "p100").unwrap();
    assert_eq!(p100.base_url, "https://partner-api-stage.p100.io");
    // The kubelet kills the pod terminationGracePeriodSeconds after the preStop sleep began:
    // the sleep and then Coffer's whole grace fit in it.
    let dep = deployment();
    let pre_stop = container(&dep)["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .expect("a preStop sleep");
    assert!(
        pre_stop >= 3,
        "{pre_stop}s is too short for endpoints to update"
    );
    for cfg in [&base, &prod] {
        assert!(
            dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap()
                > pre_stop + cfg.server.shutdown_grace.as_secs()
        );
    }
}

/// The policy selects the API's pods, admits their HTTP port only, and lets out DNS, PostgreSQL,
/// HTTPS and OTLP.
fn network_policy_admits_the_api_only(np: &Value, dep: &Value) {
    let pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .unwrap();
    for (k, v) in np["spec"]["podSelector"]["matchLabels"]
        .as_mapping()
        .unwrap()
    {
        assert_eq!(pod_labels.get(k), Some(v), "NetworkPolicy selector {k:?}");
    }
    let types: Vec<&str> = seq(&np["spec"]["policyTypes"]).iter().map(s).collect();
    assert_eq!(types, ["Ingress", "Egress"]);
    let ports = |rules: &Value| -> Vec<String> {
        seq(rules)
            .iter()
            .flat_map(|r| seq(&r["ports"]).iter())
            .map(|p| scalar(&p["port"]).unwrap())
            .collect()
    };
    let port_name = s(&container(dep)["ports"][0]["name"]);
    assert_eq!(ports(&np["spec"]["ingress"]), [port_name]);
    let egress = ports(&np["spec"]["egress"]);
    for p in ["53", "5432", "443", "4317"] {
        assert!(
            egress.iter().any(|e| e == p),
            "egress lacks {p}: {egress:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Kustomize

#[test]
fn kustomize_base_and_overlay_hang_together() {
    for dir in ["k8s/base", "k8s/overlays/production"] {
        let k = yaml1(&format!("{dir}/kustomization.yaml"));
        let mut referenced: Vec<String> = Vec::new();
        for key in ["resources", "patches"] {
            for r in k[key].as_sequence().into_iter().flatten() {
                referenced.push(
                    r.as_str()
                        .map_or_else(|| s(&r["path"]).to_owned(), str::to_owned),
                );
            }
        }
        for g in k["configMapGenerator"].as_sequence().into_iter().flatten() {
            for f in g["files"].as_sequence().into_iter().flatten() {
                referenced.push(s(f).to_owned());
            }
        }
        for r in &referenced {
            assert!(
                deploy().join(dir).join(r).exists(),
                "{dir}: {r} does not exist"
            );
        }
    }

    let base = yaml1("k8s/base/kustomization.yaml");
    let mut kinds = BTreeMap::new();
    for r in seq(&base["resources"]) {
        for d in yaml(&format!("k8s/base/{}", s(r))) {
            kinds.insert(format!("{}/{}", s(&d["apiVersion"]), s(&d["kind"])), d);
        }
    }
    for k in [
        "apps/v1/Deployment",
        "v1/Service",
        "autoscaling/v2/HorizontalPodAutoscaler",
        "policy/v1/PodDisruptionBudget",
        "networking.k8s.io/v1/NetworkPolicy",
        "v1/ServiceAccount",
        "batch/v1/Job",
    ] {
        assert!(kinds.contains_key(k), "base has no {k}: {:?}", kinds.keys());
    }
    let dep = &kinds["apps/v1/Deployment"];
    // The HPA owns the scale: a `replicas` here would reset it on every apply.
    assert!(
        dep["spec"]["replicas"].is_null(),
        "{:?}",
        dep["spec"]["replicas"]
    );
    let pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .unwrap();
    let matches = |sel: &Value, what: &str| {
        for (k, v) in sel
            .as_mapping()
            .unwrap_or_else(|| panic!("{what}: no selector"))
        {
            assert_eq!(
                pod_labels.get(k),
                Some(v),
                "{what} selector {k:?} does not select the pods"
            );
        }
    };
    matches(&dep["spec"]["selector"]["matchLabels"], "Deployment");
    matches(&kinds["v1/Service"]["spec"]["selector"], "Service");
    matches(
        &kinds["policy/v1/PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        "PodDisruptionBudget",
    );
    // `maxUnavailable` holds at any scale; `minAvailable: 1` let a drain take all pods but one.
    let pdb = &kinds["policy/v1/PodDisruptionBudget"]["spec"];
    assert_eq!(pdb["maxUnavailable"], 1);
    assert!(pdb["minAvailable"].is_null());
    network_policy_admits_the_api_only(&kinds["networking.k8s.io/v1/NetworkPolicy"], dep);
    let hpa = &kinds["autoscaling/v2/HorizontalPodAutoscaler"];
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        dep["metadata"]["name"]
    );
    assert!(
        seq(&hpa["spec"]["metrics"])
            .iter()
            .any(|m| m["resource"]["name"] == "cpu")
    );
    let sa = s(&kinds["v1/ServiceAccount"]["metadata"]["name"]);

    // The ConfigMap mounted where COFFER_CONFIG points, holding the generated coffer.toml.
    let generated: BTreeMap<&str, &Value> = seq(&base["configMapGenerator"])
        .iter()
        .map(|g| (s(&g["name"]), g))
        .collect();
    let job = &kinds["batch/v1/Job"];
    for (what, w, args) in [("Deployment", dep, "serve"), ("Job", job, "migrate")] {
        let spec = &w["spec"]["template"]["spec"];
        let c = container(w);
        assert_eq!(
            seq(&c["args"]).iter().map(s).collect::<Vec<_>>(),
            vec![args],
            "{what} command"
        );
        assert_eq!(spec["serviceAccountName"], sa, "{what}");
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{what}");
        assert_ne!(
            spec["securityContext"]["runAsUser"].as_u64(),
            Some(0),
            "{what}"
        );
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"], true,
            "{what}"
        );
        assert_eq!(
            c["securityContext"]["allowPrivilegeEscalation"], false,
            "{what}"
        );
        for r in ["requests", "limits"] {
            for k in ["cpu", "memory"] {
                assert!(!c["resources"][r][k].is_null(), "{what}: resources.{r}.{k}");
            }
        }
        let config_path = seq(&c["env"])
            .iter()
            .find(|e| e["name"] == "COFFER_CONFIG")
            .map(|e| s(&e["value"]).to_owned());
        let config_path =
            PathBuf::from(config_path.unwrap_or_else(|| panic!("{what}: no COFFER_CONFIG")));
        let mount = seq(&c["volumeMounts"])
            .iter()
            .find(|m| Path::new(s(&m["mountPath"])) == config_path.parent().unwrap())
            .unwrap_or_else(|| panic!("{what}: nothing mounted at {}", config_path.display()));
        let volume = seq(&spec["volumes"])
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        let cm = s(&volume["configMap"]["name"]);
        let g = generated
            .get(cm)
            .unwrap_or_else(|| panic!("{what}: ConfigMap {cm} is not generated"));
        let file_name = config_path.file_name().unwrap().to_str().unwrap();
        assert!(
            seq(&g["files"]).iter().any(|f| s(f) == file_name),
            "{what}: {cm} holds no {file_name}"
        );
        for e in c["envFrom"].as_sequence().into_iter().flatten() {
            let name = s(&e["configMapRef"]["name"]);
            assert!(
                generated.contains_key(name),
                "{what}: envFrom ConfigMap {name} is not generated"
            );
        }
    }
    let probes = container(dep);
    assert!(
        probes["readinessProbe"]["httpGet"].is_mapping()
            && probes["livenessProbe"]["httpGet"].is_mapping()
    );

    // The overlay: a namespace, more replicas, bigger limits, its own image and coffer.toml.
    let prod = yaml1("k8s/overlays/production/kustomization.yaml");
    assert_eq!(prod["namespace"], "coffer");
    assert!(prod["replicas"].is_null(), "the HPA owns the scale");
    let hpa_patch = yaml1("k8s/overlays/production/hpa-patch.yaml");
    assert!(hpa_patch["spec"]["minReplicas"].as_u64() > Some(2));
    let image = seq(&prod["images"])
        .iter()
        .find(|i| i["name"] == "coffer")
        .expect("the overlay sets the image");
    assert!(image["newTag"].is_string() || image["newTag"].is_number());
    let cm = seq(&prod["configMapGenerator"])
        .iter()
        .find(|g| g["name"] == "coffer-config")
        .unwrap();
    assert_eq!(cm["behavior"], "replace");
    let patch = yaml1("k8s/overlays/production/deployment-patch.yaml");
    let limits = &container(&patch)["resources"]["limits"];
    assert_ne!(
        limits,
        &container(dep)["resources"]["limits"],
        "production limits are bigger"
    );
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

#[test]
fn dockerfile_builds_locked_and_runs_as_non_root() {
    let text = dockerfile();
    let joined = text.replace("\\\n", " ");
    let builds: Vec<&str> = joined
        .lines()
        .filter(|l| l.trim_start().starts_with("RUN") && l.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty(), "no cargo build");
    for b in &builds {
        assert!(
            b.contains("--release") && b.contains("--locked"),
            "every build is --release --locked: {b}"
        );
    }
    assert!(
        joined
            .lines()
            .filter(|l| l.trim_start().starts_with("FROM "))
            .count()
            >= 2,
        "multi-stage"
    );
    assert!(
        text.contains("COPY migrations"),
        "migrations are embedded at compile time and must be in the build"
    );

    let runtime = runtime_stage(&text);
    let from = &runtime[0];
    assert!(
        from.contains("distroless") || from.contains("slim"),
        "small runtime base: {from}"
    );
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime sets USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric uid, verifiable by runAsNonRoot");
    assert_ne!(uid, 0, "the runtime user is not root");
    assert_eq!(uid, 10001);
    assert!(
        runtime.iter().any(|l| l == r#"ENTRYPOINT ["coffer"]"#),
        "{runtime:?}"
    );
    assert!(
        runtime.iter().any(|l| l == r#"CMD ["serve"]"#),
        "{runtime:?}"
    );
    // Kubernetes runs the same uid.
    let dep = deployment();
    assert_eq!(
        dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"].as_u64(),
        Some(u64::from(uid))
    );

    // The build context keeps what the build needs and drops target/ and .git/.
    let ignore: Vec<String> = read(&root().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    for must in ["target", ".git"] {
        assert!(
            ignore.iter().any(|l| l == must),
            ".dockerignore lacks {must}"
        );
    }
    for needed in ["src", "crates", "migrations", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !ignore.iter().any(|l| l == needed),
            ".dockerignore drops {needed}, which the build needs"
        );
        assert!(root().join(needed).exists());
    }
}

// ---------------------------------------------------------------------------------------------
// docs/operations.md

/// The configuration reference names every key (with its environment name) and every metric
/// the server defines, so neither can be added without being documented.
#[test]
fn operations_doc_covers_every_key_and_metric() {
    let doc = read(&root().join("docs/operations.md"));
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let mut keys = 0;
    for (section, table) in defaults.as_object().unwrap() {
        let Some(table) = table.as_object() else {
            continue;
        };
        assert!(
            doc.contains(&format!("### `[{section}]`")),
            "docs/operations.md: no section [{section}]"
        );
        for key in table.keys() {
            assert!(
                doc.contains(&format!("| `{key}` |")),
                "docs/operations.md: key {section}.{key} is not documented"
            );
            let env = format!("COFFER_{}__{}", section.to_uppercase(), key.to_uppercase());
            assert!(
                doc.contains(&env) || doc.contains("(file only)"),
                "docs/operations.md: {env} is not documented"
            );
            keys += 1;
        }
    }
    assert!(keys >= 25, "{keys}");
    let provider = coffer_server::config::ProviderConfig {
        id: "p".into(),
        kind: "p100".into(),
        base_url: "http://x".into(),
        api_key_env: "X".into(),
        timeout: std::time::Duration::from_secs(1),
        rate_limit: 0,
        retries: 0,
        quote_currency: None,
        max_retry_after: coffer_server::provider::DEFAULT_MAX_RETRY_AFTER,
        webhook_secret_env: None,
    };
    for key in serde_json::to_value(provider)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "docs/operations.md: providers key {key} is not documented"
        );
    }
    for var in SPECIAL {
        assert!(
            doc.contains(var),
            "docs/operations.md: {var} is not documented"
        );
    }

    let metrics = read(&root().join("crates/server/src/metrics.rs"));
    let mut names = BTreeSet::new();
    for piece in metrics.split('"').skip(1).step_by(2) {
        if piece.starts_with("coffer_") && piece.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            names.insert(piece.to_owned());
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "docs/operations.md: metric {name} is not in the list of metrics"
        );
    }
}
