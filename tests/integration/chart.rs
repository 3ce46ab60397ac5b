//! The Helm chart rendered by a real Helm (`BATON_HELM`, else `helm` on PATH; `.ci/helm.sh` installs
//! one): `helm lint --strict`, `helm template` with the defaults, with every documented option on
//! (`ci/all-features-values.yaml`) and with every optional part off, and the rendered objects checked
//! against `config/` (`kubectl kustomize`): the same RBAC rules, security contexts and grace period.
//! Without a helm binary each test says that it skipped. Install, upgrade and uninstall against a
//! control plane are in the end-to-end suite (`tests/e2e/helm.rs`).

use std::{path::PathBuf, process::Command};

use serde_json::{Value, json};

const CHART: &str = "charts/baton-operator";
const ALL: &str = "charts/baton-operator/ci/all-features-values.yaml";

fn helm() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BATON_HELM") {
        return Some(p.into());
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("helm")).find(|p| p.is_file()))
}

/// Says so past libtest's output capture, which would swallow a `println!` of a passing test.
fn skipped(test: &str) {
    use std::io::Write as _;
    let line = format!(
        "chart::{test}: SKIPPED, no helm binary (BATON_HELM unset, none on PATH; .ci/helm.sh installs one)\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Runs a command from the repository root; panics with its output when it fails.
fn run(program: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HELM_CONFIG_HOME", std::env::temp_dir().join("baton-chart-tests/config"))
        .env("HELM_CACHE_HOME", std::env::temp_dir().join("baton-chart-tests/cache"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} {args:?} failed:\n{stdout}\n{stderr}", program.display());
    stdout.into_owned()
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("rendered YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// `helm template` of the chart as release `baton-operator` in `baton-system`, or None (and a line
/// saying so) without a helm binary.
fn render(test: &str, extra: &[&str]) -> Option<Vec<Value>> {
    let Some(helm) = helm() else {
        skipped(test);
        return None;
    };
    let mut args = vec!["template", "baton-operator", CHART, "--namespace", "baton-system"];
    args.extend_from_slice(extra);
    Some(docs(&run(&helm, &args)))
}

fn kustomize(dir: &str) -> Vec<Value> {
    docs(&run(&PathBuf::from("kubectl"), &["kustomize", dir]))
}

fn find<'a>(objs: &'a [Value], kind: &str, ns: Option<&str>) -> Vec<&'a Value> {
    objs.iter()
        .filter(|o| o["kind"] == kind)
        .filter(|o| ns.is_none_or(|ns| o["metadata"]["namespace"] == ns))
        .collect()
}

fn one<'a>(objs: &'a [Value], kind: &str, ns: Option<&str>) -> &'a Value {
    let found = find(objs, kind, ns);
    assert_eq!(found.len(), 1, "expected one {kind} in {ns:?}, found {}", found.len());
    found[0]
}

fn pod(objs: &[Value]) -> &Value {
    &one(objs, "Deployment", None)["spec"]["template"]["spec"]
}

fn env_value<'a>(objs: &'a [Value], name: &str) -> Option<&'a str> {
    pod(objs)["containers"][0]["env"].as_array()?.iter().find(|e| e["name"] == name)?["value"].as_str()
}

/// The parts of the pod that must agree between the chart and config/.
fn pod_essentials(pod: &Value) -> Value {
    let c = &pod["containers"][0];
    json!({
        "podSecurityContext": pod["securityContext"],
        "securityContext": c["securityContext"],
        "terminationGracePeriodSeconds": pod["terminationGracePeriodSeconds"],
        "args": c["args"],
        "probes": [c["livenessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["path"]],
    })
}

#[test]
fn lint_strict_with_defaults_and_with_every_option() {
    let Some(helm) = helm() else {
        skipped("lint");
        return;
    };
    run(&helm, &["lint", "--strict", CHART]);
    run(&helm, &["lint", "--strict", CHART, "-f", ALL]);
    run(&helm, &["lint", "--strict", CHART, "--set", "watchNamespaces={identity}"]);
}

#[test]
fn defaults_render_the_rules_and_pod_of_config_default() {
    let Some(chart) = render("defaults", &[]) else { return };
    let config = kustomize("config/default");
    assert_eq!(
        one(&chart, "ClusterRole", None)["rules"],
        one(&config, "ClusterRole", None)["rules"],
        "the chart's ClusterRole differs from config/rbac/cluster_role.yaml"
    );
    assert!(find(&chart, "Role", None).is_empty(), "no Role without watchNamespaces or leader election");
    assert_eq!(pod_essentials(pod(&chart)), pod_essentials(pod(&config)));
    assert_eq!(one(&chart, "Deployment", None)["spec"]["strategy"]["type"], "Recreate");
    assert!(find(&chart, "PodDisruptionBudget", None).is_empty(), "a PDB for one replica blocks every drain");
    assert_eq!(env_value(&chart, "WATCH_NAMESPACES"), None);
    let crds = find(&chart, "CustomResourceDefinition", None);
    assert_eq!(crds.len(), 3, "the BatonConnector and both tenant CRDs");
    for plural in ["batonconnectors", "conductoronetenants", "clusterconductoronetenants"] {
        let name = format!("{plural}.baton.conductorone.com");
        let crd = crds.iter().find(|c| c["metadata"]["name"] == name.as_str()).expect("rendered");
        let file = format!("crds/baton.conductorone.com_{plural}.yaml");
        let committed = docs(&std::fs::read_to_string(&file).unwrap());
        assert_eq!(crd["spec"], committed[0]["spec"], "the chart's {plural} CRD differs from {file}");
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    }
    for kind in ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] {
        let (ours, theirs) = (one(&chart, kind, None), one(&config, kind, None));
        assert_eq!(ours["spec"], theirs["spec"], "the chart's {kind} differs from config/admission/");
        assert_eq!(ours["metadata"]["name"], theirs["metadata"]["name"]);
        assert!(
            ours["metadata"]["labels"]["app.kubernetes.io/name"].is_string(),
            "{kind} has the chart's labels"
        );
    }
}

#[test]
fn watched_namespaces_render_the_roles_of_config_namespaced() {
    let Some(chart) = render("namespaced", &["--set", "watchNamespaces={identity,connectors}"]) else {
        return;
    };
    let config = kustomize("config/namespaced");
    for objs in [&chart, &config] {
        assert!(find(objs, "ClusterRole", None).is_empty(), "a ClusterRole in the namespaced mode");
        assert!(
            find(objs, "ClusterRoleBinding", None).is_empty(),
            "a ClusterRoleBinding in the namespaced mode"
        );
    }
    let rules = namespaced_rules(&one(&kustomize("config/default"), "ClusterRole", None)["rules"]);
    for ns in ["identity", "connectors"] {
        assert_eq!(one(&chart, "Role", Some(ns))["rules"], rules, "chart Role in {ns}");
        assert_eq!(one(&config, "Role", Some(ns))["rules"], rules, "config/namespaced Role in {ns}");
        for objs in [&chart, &config] {
            let binding = one(objs, "RoleBinding", Some(ns));
            assert_eq!(binding["roleRef"]["kind"], "Role");
            assert_eq!(binding["subjects"][0]["namespace"], "baton-system");
        }
    }
    assert_eq!(env_value(&chart, "WATCH_NAMESPACES"), Some("identity,connectors"));
    assert_eq!(env_value(&config, "WATCH_NAMESPACES"), Some("identity,connectors"));
    assert_eq!(pod_essentials(pod(&chart)), pod_essentials(pod(&config)));
}

#[test]
fn every_documented_option_renders() {
    let Some(chart) = render("all-features", &["-f", ALL]) else { return };
    for kind in ["ServiceMonitor", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget", "Service"] {
        one(&chart, kind, None);
    }
    let dashboard = one(&chart, "ConfigMap", Some("monitoring"));
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(dashboard["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(dashboard["metadata"]["annotations"]["grafana_folder"], "Baton");
    let shipped: Value =
        serde_json::from_str(dashboard["data"]["baton-fleet.json"].as_str().unwrap()).unwrap();
    let source =
        std::fs::read_to_string(format!("{}/deploy/grafana/baton-fleet.json", env!("CARGO_MANIFEST_DIR")));
    assert_eq!(
        shipped,
        serde_json::from_str::<Value>(&source.unwrap()).unwrap(),
        "dashboard in the ConfigMap"
    );
    let config_rbac = kustomize("config/rbac");
    let leader = one(&chart, "Role", Some("baton-system"));
    assert_eq!(
        leader["rules"],
        one(&config_rbac, "Role", Some("baton-system"))["rules"],
        "leader-election Role"
    );
    assert_eq!(find(&chart, "Role", None).len(), 3, "a leader-election Role and one per watched namespace");
    let deployment = one(&chart, "Deployment", None);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let p = pod(&chart);
    assert_eq!(p["terminationGracePeriodSeconds"], 90);
    assert_eq!(p["priorityClassName"], "system-cluster-critical");
    assert_eq!(p["imagePullSecrets"][0]["name"], "regcred");
    assert_eq!(p["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(p["tolerations"][0]["key"], "dedicated");
    assert!(p["affinity"]["podAntiAffinity"].is_object());
    let c = &p["containers"][0];
    assert!(c["image"].as_str().unwrap().contains("@sha256:"), "digest not used: {}", c["image"]);
    assert_eq!(c["imagePullPolicy"], "Always");
    for (name, value) in [
        ("LEADER_ELECTION", "true"),
        ("WATCH_NAMESPACES", "identity,connectors"),
        ("SSL_CERT_FILE", "/etc/baton-operator/ca/ca-bundle.pem"),
        ("HTTPS_PROXY", "http://proxy.example.internal:3128"),
        ("C1_MAX_RETRIES", "5"),
        ("LOG_FORMAT", "text"),
    ] {
        assert_eq!(env_value(&chart, name), Some(value), "{name}");
    }
    let mounts: Vec<&str> =
        c["volumeMounts"].as_array().unwrap().iter().filter_map(|m| m["mountPath"].as_str()).collect();
    assert_eq!(mounts, ["/etc/baton-operator/ca", "/scratch"]);
    let template = &deployment["spec"]["template"]["metadata"];
    assert_eq!(template["annotations"]["example.com/team"], "identity");
    assert_eq!(template["labels"]["example.com/tier"], "operators");
    let pdb = one(&chart, "PodDisruptionBudget", None);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], deployment["spec"]["selector"]["matchLabels"]);
    // The restricted pod is kept whatever else is turned on.
    assert_eq!(
        pod_essentials(p)["securityContext"],
        pod_essentials(pod(&kustomize("config/default")))["securityContext"]
    );
}

#[test]
fn optional_parts_off_render_only_the_operator() {
    let off = "rbac.create=false,serviceAccount.create=false,installCRDs=false,metrics.service.enabled=false,admissionPolicy.enabled=false";
    let Some(chart) = render("off", &["--set", off]) else { return };
    let kinds: Vec<&str> = chart.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(kinds, ["Deployment"]);
    assert_eq!(pod(&chart)["serviceAccountName"], "default");
}

/// Each top-level value is either turned on in ci/all-features-values.yaml (and so rendered above) or
/// is a name, switch or security default checked by another test.
#[test]
fn every_value_is_exercised() {
    let read = |p: &str| -> Value {
        serde_yaml::from_str(&std::fs::read_to_string(format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap())
            .unwrap()
    };
    let (values, all) = (read("charts/baton-operator/values.yaml"), read(ALL));
    let elsewhere = [
        "nameOverride",
        "fullnameOverride",
        "rbac",
        "installCRDs",
        "admissionPolicy",
        "resources",
        "podSecurityContext",
        "securityContext",
    ];
    let missing: Vec<&String> = values
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !elsewhere.contains(&k.as_str()) && all.get(k.as_str()).is_none())
        .collect();
    assert!(missing.is_empty(), "values not turned on in {ALL}: {missing:?}");
}

/// The rows `(group, resource, verbs)` of the table in the chart README's RBAC section.
/// What only a ClusterRole grants: a Role in a watched namespace has the other rules.
const CLUSTER_ONLY: [&str; 3] =
    ["clusterconductoronetenants", "clusterconductoronetenants/status", "namespaces"];

fn namespaced_rules(rules: &Value) -> Value {
    let kept = rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            !r["resources"].as_array().unwrap().iter().any(|x| CLUSTER_ONLY.contains(&x.as_str().unwrap()))
        })
        .cloned()
        .collect();
    Value::Array(kept)
}

fn readme_rbac_rows() -> Vec<(String, String, Vec<String>)> {
    let readme =
        std::fs::read_to_string(format!("{}/charts/baton-operator/README.md", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let section = readme.split("\n## RBAC\n").nth(1).expect("the chart README has no RBAC section");
    let section = section.split("\n## ").next().unwrap();
    let cell = |c: &str| c.trim().split('`').nth(1).map(str::to_owned).unwrap_or_default();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').collect();
            let group = cell(cells[0]);
            let group = if group == "\"\"" { String::new() } else { group };
            let verbs = cells[2].split(',').map(|v| v.trim().to_owned()).collect();
            (group, cell(cells[1]), verbs)
        })
        .collect()
}

/// The same rows from rendered rules, one per group and resource.
fn rule_rows(rules: &Value) -> Vec<(String, String, Vec<String>)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
    };
    let mut rows = Vec::new();
    for rule in rules.as_array().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                rows.push((group.clone(), resource, strings(&rule["verbs"])));
            }
        }
    }
    rows
}

#[test]
fn the_readme_rbac_table_is_what_the_chart_renders() {
    let Some(chart) = render("rbac-readme", &[]) else { return };
    let documented = readme_rbac_rows();
    assert!(documented.len() >= 5, "read only {} rows of the chart README's RBAC table", documented.len());
    assert_eq!(
        documented,
        rule_rows(&one(&chart, "ClusterRole", None)["rules"]),
        "charts/baton-operator/README.md's RBAC table differs from the rendered ClusterRole"
    );
    // With watchNamespaces the same rules, in a Role per namespace.
    let Some(namespaced) = render("rbac-readme", &["--set", "watchNamespaces={identity}"]) else { return };
    let in_namespace: Vec<_> = documented
        .iter()
        .filter(|(_, resource, _)| !CLUSTER_ONLY.contains(&resource.as_str()))
        .cloned()
        .collect();
    assert_eq!(in_namespace, rule_rows(&one(&namespaced, "Role", Some("identity"))["rules"]));
    // The leader-election Role as the README describes it.
    let Some(leader) = render("rbac-readme", &["--set", "leaderElection.enabled=true"]) else { return };
    assert_eq!(
        rule_rows(&one(&leader, "Role", Some("baton-system"))["rules"]),
        [(
            "coordination.k8s.io".to_owned(),
            "leases".to_owned(),
            vec!["get".into(), "create".into(), "patch".into()]
        )]
    );
    let readme =
        std::fs::read_to_string(format!("{}/charts/baton-operator/README.md", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    assert!(
        readme.contains("allows get, create and patch on `coordination.k8s.io` `leases`"),
        "the chart README no longer describes the leader-election Role's rules"
    );
}
