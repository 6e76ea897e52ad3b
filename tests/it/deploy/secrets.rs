//! The provider secrets are exported under the names the mounted `coffer.toml` files ask for.

use super::*;

fn api_key_envs(toml_rel: &str) -> BTreeSet<String> {
    load_config(&deploy().join(toml_rel))
        .providers
        .into_iter()
        .map(|p| p.api_key_env)
        .collect()
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
