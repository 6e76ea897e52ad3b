//! Ports agree with `server.listen`, and the probe and scrape paths answer on the real server.

use super::*;
use crate::common;

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
