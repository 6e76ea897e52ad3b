//! The `coffer` binary: `keys create` prints a working key alone on the last line, `--version`
//! and `--help`, and clear failures.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Output};

use coffer_store::{Link, NewCustomer, Role};
use reqwest::Method;

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("coffer-cli-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.0.join("coffer.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `coffer ARGS` against `db_url` with a clean environment for Coffer's settings.
fn coffer(db_url: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    for (k, _) in std::env::vars() {
        if k.starts_with("COFFER_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("COFFER_DATABASE__URL", db_url)
        .env("NO_COLOR", "1")
        .args(args);
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn with_customers(db_url: &str, ids: &[&str]) {
    let store = coffer_store::connect(db_url).await.unwrap();
    store.migrate().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let links = vec![Link {
            provider: common::P100.into(),
            external_id: format!("gen-{i:06}"),
        }];
        store
            .create_customer(&NewCustomer {
                id: (*id).into(),
                name: None,
                links,
            })
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_prints_a_working_reader_key() {
    let dir = TempDir::new("keys");
    let url = dir.db_url();
    with_customers(&url, &["cli-a", "cli-b"]).await;

    let out = coffer(
        &url,
        &["keys", "create", "--role", "reader", "--customers", "cli-a"],
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    let key = stdout.lines().last().unwrap();
    assert_eq!(key, key.trim(), "the key is alone on its line");
    assert!(
        key.starts_with("coffer_") && key.len() == 71,
        "last line is not a key: {stdout:?}"
    );
    assert!(
        !text(&out.stderr).contains(key),
        "the key is printed on stdout only"
    );
    // Another run gives another key.
    let again = coffer(
        &url,
        &[
            "keys",
            "create",
            "--role",
            "reader",
            "--customers",
            "cli-a,cli-b",
        ],
    );
    assert!(again.status.success());
    let key2 = text(&again.stdout).lines().last().unwrap().to_owned();
    assert_ne!(key2, key);

    // The store holds it by hash only, with its role and scope.
    let store = coffer_store::connect(&url).await.unwrap();
    let stored = store
        .api_key_by_hash(&coffer_server::auth::hash_key(key))
        .await
        .unwrap()
        .expect("key stored by hash");
    assert_eq!(stored.role, Role::Reader);
    assert_eq!(stored.customers, vec!["cli-a".to_owned()]);
    assert_ne!(stored.hash, key);
    drop(store);

    // A server on the same file accepts it as a reader of cli-a only.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = coffer_sim::start(coffer_sim::SimConfig {
        customers: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let running = common::start_app(&sim, &url, false, Box::new(|_| {})).await;
    let base = running.url();
    let client = reqwest::Client::new();
    let get = |path: String, k: String, method: Method| {
        let req = client
            .request(method, format!("{base}{path}"))
            .header("x-api-key", k);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        get("/v2/customers/cli-a".into(), key.to_owned(), Method::GET).await,
        200
    );
    assert_eq!(
        get(
            "/v2/accounts/balance?customer_id=cli-a".into(),
            key.to_owned(),
            Method::GET
        )
        .await,
        200
    );
    assert_eq!(
        get("/v2/customers/cli-b".into(), key.to_owned(), Method::GET).await,
        404
    );
    assert_eq!(
        get("/v2/customers".into(), key.to_owned(), Method::GET).await,
        403
    );
    assert_eq!(
        get("/v2/customers/cli-b".into(), key2.clone(), Method::GET).await,
        200
    );
    assert_eq!(
        get("/v2/customers/cli-a".into(), format!("{key}x"), Method::GET).await,
        401
    );
    running.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_fails_clearly() {
    let dir = TempDir::new("fail");
    let url = dir.db_url();
    with_customers(&url, &["cli-a"]).await;

    let out = coffer(&url, &["keys", "create", "--role", "reader"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("--customers"), "{err}");
    assert!(
        !text(&out.stdout).contains("coffer_"),
        "no key printed on failure"
    );

    let out = coffer(
        &url,
        &[
            "keys",
            "create",
            "--role",
            "reader",
            "--customers",
            "cli-a,ghost",
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("ghost"), "{err}");
    assert!(!text(&out.stdout).contains("coffer_"));

    let out = coffer(
        &url,
        &["keys", "create", "--role", "owner", "--customers", "cli-a"],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("owner"), "{}", text(&out.stderr));

    // Nothing was stored by the failures: an admin key is the only way in so far.
    let out = coffer(&url, &["keys", "create", "--role", "admin"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).lines().last().unwrap().to_owned();
    let store = coffer_store::connect(&url).await.unwrap();
    let stored = store
        .api_key_by_hash(&coffer_server::auth::hash_key(&key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.role, Role::Admin);
}

#[test]
fn version_and_help() {
    let out = coffer("sqlite::memory:", &["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("coffer {}", env!("CARGO_PKG_VERSION"))
    );

    let out = coffer("sqlite::memory:", &["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for cmd in ["serve", "migrate", "keys", "sim", "demo"] {
        assert!(help.contains(cmd), "--help does not list {cmd}: {help}");
    }
    let out = coffer("sqlite::memory:", &["keys", "create", "--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("--customers"));

    let out = coffer("sqlite::memory:", &["frobnicate"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("frobnicate"));
}

/// Issue 17: `coffer keys create --expires` and `keys list`, and `coffer audit verify`, which
/// passes on the log Coffer wrote and names the entry an edit behind Coffer's back broke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_finds_an_entry_edited_behind_coffers_back() {
    let dir = TempDir::new("audit");
    let url = dir.db_url();
    with_customers(&url, &["aud-a"]).await;
    let made = coffer(
        &url,
        &["keys", "create", "--role", "admin", "--expires", "90d"],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let out = text(&made.stdout);
    assert!(out.contains("expires 20"), "{out}");
    let listed = coffer(&url, &["keys", "list"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed = text(&listed.stdout);
    let row = listed.lines().nth(1).unwrap_or_default();
    let cols: Vec<&str> = row.split('\t').collect();
    assert_eq!(cols.len(), 7, "{listed}");
    assert_eq!(cols[1], "admin");
    assert!(cols[4].starts_with("20"), "an expiry: {row}");
    assert_eq!(cols[6], "-", "not revoked: {row}");

    let ok = coffer(&url, &["audit", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("intact: 2 entries"),
        "{}",
        text(&ok.stdout)
    );

    // Someone with the database's password rewrites who created the customer.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_log SET key_id = 'someone-else' WHERE seq = 1")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let broken = coffer(&url, &["audit", "verify"]);
    assert!(!broken.status.success(), "an edited log must fail verify");
    let err = text(&broken.stderr);
    assert!(err.contains("entry 1") && err.contains("edited"), "{err}");
}

#[test]
fn config_check_names_every_bad_key() {
    let dir = TempDir::new("config");
    let bad = dir.0.join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"nowhere\"\nshutdown_grase = \"5s\"\n[sync]\ninterval = 5\n[[providers]]\nid = \"p\"\nkind = \"p100\"\nbase_url = \"http://x\"\napi_key_env = \"K\"\nretries = \"two\"\n",
    )
    .unwrap();
    let out = coffer(
        "sqlite::memory:",
        &["config", "check", bad.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    for key in [
        "`server.listen`",
        "`server.shutdown_grase`",
        "`sync.interval`",
        "`providers[0].retries`",
    ] {
        assert!(stdout.contains(key), "{key} not named:\n{stdout}");
    }
    assert!(
        text(&out.stderr).contains("4 problem(s)"),
        "{}",
        text(&out.stderr)
    );

    // Every shipped configuration passes.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "deploy/k8s/base/coffer.toml",
        "deploy/k8s/overlays/production/coffer.toml",
        "deploy/coffer.compose.toml",
    ] {
        let out = coffer(
            "sqlite::memory:",
            &["config", "check", root.join(file).to_str().unwrap()],
        );
        assert!(out.status.success(), "{file}: {}", text(&out.stdout));
        assert!(text(&out.stdout).ends_with(": ok\n"));
    }
}
