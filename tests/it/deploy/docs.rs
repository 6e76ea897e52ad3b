//! `docs/operations.md` names every configuration key and metric.

use super::*;

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
