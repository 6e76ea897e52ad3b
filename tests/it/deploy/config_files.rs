//! Every `coffer.toml` under `deploy/` loads and validates.

use super::*;

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
