//! The kustomize base and overlay hang together (and render, where `kubectl` is installed).

use super::*;

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
