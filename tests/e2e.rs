//! End-to-end suite: the operator binary against a real kube-apiserver, etcd and
//! kube-controller-manager (see `support/control_plane.rs` for where they come from). Without them it
//! prints one line saying it skipped, and why.
//!
//! No kubelet runs: `support::cluster::spawn_kubelet` marks the operator's pods Running and Ready so
//! that ReplicaSets and Deployments report availability as they would on a node.

mod support;

use std::{future::Future, path::Path, pin::Pin, process::ExitCode, time::Duration};

use anyhow::{Context as _, bail, ensure};
use baton_operator::api::BatonConnector;
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Pod, ServiceAccount},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use support::{
    cluster::{self, Operator, apply_value, apply_yaml, eventually, list, namespace},
    control_plane::{self, ControlPlane, Source},
    fake_conductorone::FakeConductorOne,
};

const WAIT: Duration = Duration::from_secs(90);

struct Env {
    client: Client,
    /// Running against an existing cluster (`BATON_E2E_KUBECONFIG`), which the suite cleans up after.
    external: bool,
    admin_kubeconfig: std::path::PathBuf,
    operator: Operator,
    cp: Option<ControlPlane>,
    c1: FakeConductorOne,
}

type Case = for<'a> fn(&'a mut Env) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => { vec![$((stringify!($name), (|env| Box::pin($name(env))) as Case)),*] };
}

#[tokio::main]
async fn main() -> ExitCode {
    let source = match control_plane::discover() {
        Ok(s) => s,
        Err(why) => {
            println!("e2e: SKIPPED, no control plane: {why}");
            return ExitCode::SUCCESS;
        }
    };
    let mut env = match setup(source).await {
        Ok(env) => env,
        Err(e) => {
            println!("e2e: setup failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cases = cases![
        status_starts_unobserved,
        invalid_resources_are_refused,
        examples_converge,
        two_resources_for_one_connector_do_not_share_pods,
        edit_makes_exactly_one_rollout,
        secret_change_makes_exactly_one_rollout,
        missing_secret_is_reported_then_recovers,
        hand_edits_are_put_back,
        restricted_namespace_admits_connector_pods,
        managed_credentials_issue_rotate_and_revoke,
        sync_status_shows_in_status_columns_events_and_metrics,
        kstatus_reads_progress_current_and_failed,
        unreadable_resource_does_not_block_the_fleet,
        operator_restart_writes_nothing,
        delete_garbage_collects_children,
        leader_election_lets_one_replica_reconcile,
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        if let Some(cp) = &mut env.cp
            && let Err(e) = cp.check_alive()
        {
            println!("test e2e::{name} ... FAILED: {e:#}");
            failed += 1;
            continue;
        }
        let started = std::time::Instant::now();
        match case(&mut env).await {
            Ok(()) => {
                passed += 1;
                println!("test e2e::{name} ... ok ({:.1}s)", started.elapsed().as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!("test e2e::{name} ... FAILED: {e:#}");
            }
        }
    }
    if failed > 0 {
        println!("--- operator log (tail) ---\n{}", env.operator.log_tail(60));
        if let Some(cp) = env.cp.take() {
            println!("--- kube-apiserver log (tail) ---\n{}", cp.log_tail("kube-apiserver", 20));
            println!("control plane files kept in {}", cp.keep().display());
        }
    }
    env.operator.stop().await;
    if env.external
        && let Err(e) = cluster::delete_namespaces(&env.client).await
    {
        println!("e2e: could not delete the test namespaces: {e:#}");
    }
    println!("e2e: {passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn setup(source: Source) -> anyhow::Result<Env> {
    let (cp, admin, admin_kubeconfig) = match source {
        Source::Binaries { etcd, apiserver, controller_manager } => {
            let cp = ControlPlane::start(&etcd, &apiserver, &controller_manager).await?;
            let client = cp.client().await?;
            let path = cp.admin_kubeconfig.clone();
            (Some(cp), client, path)
        }
        Source::Kubeconfig(path) => {
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&path)?,
                &Default::default(),
            )
            .await?;
            (None, Client::try_from(config)?, path)
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).with_context(|| format!("reading {p}"));
    apply_yaml(&admin, &read("crds/baton.conductorone.com_batonconnectors.yaml")?, None).await?;
    eventually("the CRD to be established", WAIT, || {
        let admin = admin.clone();
        async move {
            let api: Api<BatonConnector> = Api::all(admin);
            Ok(api.list(&Default::default()).await.ok().map(|_| ()))
        }
    })
    .await?;
    apply_yaml(&admin, &read("config/manager/namespace.yaml")?, None).await?;
    for f in [
        "service_account.yaml",
        "cluster_role.yaml",
        "cluster_role_binding.yaml",
        "leader_election_role.yaml",
    ] {
        apply_yaml(&admin, &read(&format!("config/rbac/{f}"))?, None).await?;
    }

    // The operator runs with a token of its own ServiceAccount, so an RBAC gap fails the suite.
    let sa: Api<ServiceAccount> = Api::namespaced(admin.clone(), "baton-system");
    let request = serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 7200}}))?;
    let token = sa.create_token_request("baton-operator", &PostParams::default(), &request).await?;
    let token = token
        .status
        .context("token request without status")?
        .token
        .context("token request without a token")?;
    let work = match &cp {
        Some(cp) => cp.dir().to_path_buf(),
        None => std::env::temp_dir(),
    };
    let kubeconfig = work.join("operator.kubeconfig");
    match &cp {
        Some(cp) => std::fs::write(&kubeconfig, cp.kubeconfig_with_token(&token))?,
        None => std::fs::write(&kubeconfig, token_kubeconfig(&admin_kubeconfig, &token)?)?,
    }
    cluster::spawn_kubelet(admin.clone());
    let operator =
        Operator::new(Path::new(env!("CARGO_BIN_EXE_baton-operator")), kubeconfig, work.join("operator.log"));
    let c1 = FakeConductorOne::start().await;
    let external = cp.is_none();
    Ok(Env { client: admin, external, operator, cp, c1, admin_kubeconfig })
}

/// A kubeconfig for the cluster of `admin`'s current context that authenticates with `token`.
fn token_kubeconfig(admin: &Path, token: &str) -> anyhow::Result<String> {
    let config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(admin)?)?;
    let current = config["current-context"].as_str().context("kubeconfig without current-context")?;
    let find = |list: &str, name: &str| {
        config[list].as_sequence().and_then(|l| l.iter().find(|e| e["name"].as_str() == Some(name)).cloned())
    };
    let context = find("contexts", current).context("current context not found")?;
    let cluster_name = context["context"]["cluster"].as_str().context("context without cluster")?;
    let cluster = find("clusters", cluster_name).context("cluster not found")?;
    let out = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [serde_json::to_value(&cluster)?],
        "users": [{"name": "baton-operator", "user": {"token": token}}],
        "contexts": [{"name": "baton-operator", "context": {"cluster": cluster_name, "user": "baton-operator"}}],
        "current-context": "baton-operator",
    });
    Ok(serde_yaml::to_string(&out)?)
}

// ---------------------------------------------------------------------------------------------
// Building blocks of the cases.

fn credentials_secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {
        "BATON_CLIENT_ID": "e2e@example.conductor.one/ccc", "BATON_CLIENT_SECRET": "secret-token:conductorone.com:v1:e2e"}})
}

fn app_secret(name: &str, token: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"BATON_API_TOKEN": token}})
}

fn connector(name: &str, app: &str, spec: Value) -> Value {
    let mut base = json!({"connector": app, "credentials": {"secretRef": {"name": "c1"}}});
    base.as_object_mut().unwrap().extend(spec.as_object().cloned().unwrap_or_default());
    json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector", "metadata": {"name": name}, "spec": base})
}

async fn get_bc(client: &Client, ns: &str, name: &str) -> anyhow::Result<BatonConnector> {
    Ok(Api::<BatonConnector>::namespaced(client.clone(), ns).get(name).await?)
}

fn condition(bc: &BatonConnector, type_: &str) -> Option<(String, String)> {
    let c = bc.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// Waits until the resource is Ready on its current generation.
async fn wait_ready(client: &Client, ns: &str, name: &str) -> anyhow::Result<BatonConnector> {
    eventually(&format!("{ns}/{name} to be Ready"), WAIT, || async move {
        let bc = get_bc(client, ns, name).await?;
        let current = bc.status.as_ref().map(|s| s.observed_generation) == bc.metadata.generation;
        let ready = condition(&bc, "Ready").is_some_and(|(s, _)| s == "True");
        Ok((current && ready).then_some(bc))
    })
    .await
}

async fn replica_sets(client: &Client, ns: &str, instance: &str) -> anyhow::Result<Vec<ReplicaSet>> {
    list(client, ns, &format!("app.kubernetes.io/instance={instance}")).await
}

/// Sets up a namespace with the credentials Secret and one ready connector.
async fn ready_connector(env: &mut Env, ns: &str, name: &str, spec: Value) -> anyhow::Result<BatonConnector> {
    ensure_operator(env).await?;
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    apply_value(&env.client, connector(name, "okta", spec), Some(ns)).await?;
    wait_ready(&env.client, ns, name).await
}

async fn ensure_operator(env: &mut Env) -> anyhow::Result<()> {
    if env.operator.metrics_port == 0 {
        env.operator.start()?;
        env.operator.wait_ready().await?;
    }
    Ok(())
}

/// Waits until the operator has made no write for `quiet`, so counts taken afterwards are stable.
/// A value that changes whenever the operator writes. On the local control plane it is the list of
/// the operator's write requests from the API server's audit log (a no-op apply counts too); on
/// an existing cluster, where the suite cannot read the audit log, it is the resourceVersions of
/// everything the operator writes plus its events.
async fn write_marker(env: &Env) -> anyhow::Result<Vec<String>> {
    if let Some(cp) = &env.cp {
        return Ok(cp.operator_writes());
    }
    let managed = "app.kubernetes.io/managed-by=baton-operator";
    let lp = kube::api::ListParams::default();
    let mut marker = Vec::new();
    for bc in Api::<BatonConnector>::all(env.client.clone()).list_metadata(&lp).await?.items {
        marker.push(format!(
            "bc {}/{} {}",
            bc.namespace().unwrap_or_default(),
            bc.name_any(),
            bc.resource_version().unwrap_or_default()
        ));
    }
    for d in Api::<Deployment>::all(env.client.clone()).list(&lp.clone().labels(managed)).await?.items {
        marker.push(format!(
            "deploy {}/{} {}",
            d.namespace().unwrap_or_default(),
            d.name_any(),
            d.resource_version().unwrap_or_default()
        ));
    }
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(env.client.clone());
    for s in secrets.list_metadata(&lp.clone().labels(managed)).await?.items {
        marker.push(format!(
            "secret {}/{} {}",
            s.namespace().unwrap_or_default(),
            s.name_any(),
            s.resource_version().unwrap_or_default()
        ));
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(env.client.clone());
    for e in events
        .list(&lp)
        .await?
        .items
        .iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("baton-operator"))
    {
        marker.push(format!("event {} {}", e.name_any(), e.resource_version().unwrap_or_default()));
    }
    marker.sort();
    Ok(marker)
}

/// Waits until the operator has made no write for `quiet`, so markers taken afterwards are stable.
async fn settle(env: &Env, quiet: Duration) -> anyhow::Result<Vec<String>> {
    let mut last = write_marker(env).await?;
    let mut since = std::time::Instant::now();
    let start = std::time::Instant::now();
    while since.elapsed() < quiet {
        ensure!(
            start.elapsed() < WAIT,
            "the operator kept writing: {:?}",
            last.iter().rev().take(5).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = write_marker(env).await?;
        if now != last {
            (last, since) = (now, std::time::Instant::now());
        }
    }
    Ok(last)
}

// ---------------------------------------------------------------------------------------------
// The cases.

async fn status_starts_unobserved(env: &mut Env) -> anyhow::Result<()> {
    // Before the operator runs, a new resource must read as not yet observed (kstatus: in progress).
    namespace(&env.client, "defaults", json!({})).await?;
    apply_value(&env.client, connector("fresh", "okta", json!({})), Some("defaults")).await?;
    let bc = get_bc(&env.client, "defaults", "fresh").await?;
    ensure!(bc.status.as_ref().map(|s| s.observed_generation) == Some(-1), "status: {:?}", bc.status);
    ensure!(
        bc.spec.mode.as_str() == "Service"
            && bc.spec.deletion_policy == baton_operator::api::DeletionPolicy::Revoke
    );
    Ok(())
}

async fn invalid_resources_are_refused(env: &mut Env) -> anyhow::Result<()> {
    namespace(&env.client, "invalid", json!({})).await?;
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), "invalid");
    let cases = [
        (json!({"connector": "okta"}), "credentials: Required value"),
        (
            json!({"connector": "okta", "credentials": {}}),
            "set exactly one of credentials.secretRef or credentials.managed",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}, "managed": {}}}),
            "set exactly one of credentials.secretRef or credentials.managed",
        ),
        (
            json!({"connector": "okta", "credentials": {"managed": {}}}),
            "credentials.managed needs spec.conductorOne",
        ),
        (json!({"connector": "Okta!", "credentials": {"secretRef": {"name": "a"}}}), "spec.connector"),
        (
            json!({"connector": "okta", "mode": "Batch", "credentials": {"secretRef": {"name": "a"}}}),
            "Unsupported value: \"Batch\"",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}, "image": {"digest": "latest"}}),
            "spec.image.digest",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}, "env": [{"name": "BATON_CLIENT_SECRET", "value": "x"}]}),
            "env may not set BATON_CLIENT_ID",
        ),
        (
            json!({"connector": "okta", "credentials": {"managed": {"rotation": {"interval": "30 days"}}},
                   "conductorOne": {"apiCredentialsSecretRef": {"name": "api"}, "appId": "a", "connectorId": "c"}}),
            "spec.credentials.managed.rotation.interval",
        ),
    ];
    for (spec, expected) in cases {
        // Sent as raw JSON: several of these do not even deserialize into the operator's types.
        let raw = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector", "metadata": {"name": "bad"}, "spec": spec});
        let pp = PostParams { dry_run: true, ..Default::default() };
        let dynamic: kube::api::DynamicObject = serde_json::from_value(raw)?;
        let dapi: Api<kube::api::DynamicObject> = Api::namespaced_with(
            env.client.clone(),
            "invalid",
            &kube::api::ApiResource::erase::<BatonConnector>(&()),
        );
        match dapi.create(&pp, &dynamic).await {
            Ok(_) => bail!("the API server accepted {spec}"),
            Err(kube::Error::Api(s)) => {
                ensure!(s.code == 422, "expected 422 for {spec}, got {}: {}", s.code, s.message);
                ensure!(
                    s.message.contains(expected),
                    "message for {spec} should mention {expected:?}: {}",
                    s.message
                );
            }
            Err(e) => bail!("unexpected error for {spec}: {e}"),
        }
    }
    // The connector of an existing resource cannot change.
    let valid = json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}});
    apply_value(&env.client, connector("immutable", "okta", valid), Some("invalid")).await?;
    let patch = json!({"spec": {"connector": "github"}});
    match api.patch("immutable", &PatchParams::default(), &Patch::Merge(&patch)).await {
        Err(kube::Error::Api(s)) if s.message.contains("connector is immutable") => Ok(()),
        other => bail!("changing spec.connector: {other:?}"),
    }
}

async fn examples_converge(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    ensure!(files.len() >= 4, "expected the example files, found {files:?}");
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "yaml")) {
        let ns = format!("ex-{}", file.file_stem().unwrap().to_string_lossy());
        namespace(&env.client, &ns, json!({})).await?;
        let objects = apply_yaml(&env.client, &std::fs::read_to_string(file)?, Some(&ns)).await?;
        for bc in objects.iter().filter(|o| o.types.as_ref().is_some_and(|t| t.kind == "BatonConnector")) {
            let name = bc.name_any();
            let bc = wait_ready(&env.client, &ns, &name).await.with_context(|| file.display().to_string())?;
            let d: Deployment = Api::namespaced(env.client.clone(), &ns).get(&name).await?;
            let labels = d.labels();
            let app = &bc.spec.connector;
            ensure!(labels.get("app") == Some(&format!("baton-{app}")), "labels {labels:?}");
            ensure!(labels.get("baton").map(String::as_str) == Some("true"));
            ensure!(labels.get("baton-app") == Some(app));
            ensure!(labels.get("app.kubernetes.io/managed-by").map(String::as_str) == Some("baton-operator"));
            ensure!(
                bc.status
                    .as_ref()
                    .and_then(|s| s.image.as_deref())
                    .is_some_and(|i| i.contains(&format!("baton-{app}")))
            );
            let pods: Vec<Pod> = list(&env.client, &ns, &format!("app=baton-{app}")).await?;
            ensure!(pods.len() == 1, "kubectl logs -l app=baton-{app} finds {} pods", pods.len());
        }
    }
    Ok(())
}

async fn two_resources_for_one_connector_do_not_share_pods(env: &mut Env) -> anyhow::Result<()> {
    ready_connector(env, "twins", "okta-a", json!({})).await?;
    apply_value(&env.client, connector("okta-b", "okta", json!({})), Some("twins")).await?;
    wait_ready(&env.client, "twins", "okta-b").await?;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "twins");
    let mut seen = Vec::new();
    for name in ["okta-a", "okta-b"] {
        let d = deployments.get(name).await?;
        let selector = d.spec.selector.match_labels.unwrap_or_default();
        let selector = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let pods: Vec<Pod> = list(&env.client, "twins", &selector).await?;
        ensure!(pods.len() == 1, "{name}'s selector {selector} matches {} pods", pods.len());
        seen.push(pods[0].name_any());
    }
    ensure!(seen[0] != seen[1]);
    let all: Vec<Pod> = list(&env.client, "twins", "app=baton-okta").await?;
    ensure!(all.len() == 2);
    Ok(())
}

async fn edit_makes_exactly_one_rollout(env: &mut Env) -> anyhow::Result<()> {
    ready_connector(env, "edit", "okta", json!({"env": [{"name": "BATON_DOMAIN", "value": "a.okta.com"}]}))
        .await?;
    ensure!(replica_sets(&env.client, "edit", "okta").await?.len() == 1);
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), "edit");
    let patch = json!({"spec": {"env": [{"name": "BATON_DOMAIN", "value": "b.okta.com"}]}});
    api.patch("okta", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let bc = wait_ready(&env.client, "edit", "okta").await?;
    ensure!(bc.status.as_ref().unwrap().observed_generation == 2);
    settle(env, Duration::from_secs(2)).await?;
    let rs = replica_sets(&env.client, "edit", "okta").await?;
    ensure!(rs.len() == 2, "expected exactly one new ReplicaSet, found {}", rs.len());
    Ok(())
}

async fn secret_change_makes_exactly_one_rollout(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    namespace(&env.client, "secret-change", json!({})).await?;
    apply_value(&env.client, app_secret("okta-app", "one"), Some("secret-change")).await?;
    ready_connector(env, "secret-change", "okta", json!({"secretRefs": [{"name": "okta-app"}]})).await?;
    let before = get_bc(&env.client, "secret-change", "okta").await?;
    let hash = |bc: &BatonConnector| {
        bc.status.as_ref().and_then(|s| s.workload.as_ref()).and_then(|w| w.config_hash.clone())
    };
    apply_value(&env.client, app_secret("okta-app", "two"), Some("secret-change")).await?;
    eventually("a new config hash", WAIT, || async {
        let bc = get_bc(&env.client, "secret-change", "okta").await?;
        Ok((hash(&bc) != hash(&before)).then_some(()))
    })
    .await?;
    wait_ready(&env.client, "secret-change", "okta").await?;
    settle(env, Duration::from_secs(2)).await?;
    let rs = replica_sets(&env.client, "secret-change", "okta").await?;
    ensure!(rs.len() == 2, "expected exactly one new ReplicaSet, found {}", rs.len());
    Ok(())
}

async fn missing_secret_is_reported_then_recovers(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    namespace(&env.client, "missing", json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some("missing")).await?;
    apply_value(
        &env.client,
        connector("okta", "okta", json!({"secretRefs": [{"name": "later"}]})),
        Some("missing"),
    )
    .await?;
    eventually("Ready=False SecretNotFound", WAIT, || async {
        let bc = get_bc(&env.client, "missing", "okta").await?;
        Ok((condition(&bc, "Ready") == Some(("False".into(), "SecretNotFound".into()))).then_some(()))
    })
    .await?;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "missing");
    let warnings = events.list(&Default::default()).await?.items;
    ensure!(
        warnings
            .iter()
            .any(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("SecretNotFound")),
        "no SecretNotFound warning event"
    );
    // Creating the Secret is enough: the operator watches Secret metadata and reconciles at once.
    apply_value(&env.client, app_secret("later", "x"), Some("missing")).await?;
    wait_ready(&env.client, "missing", "okta").await?;
    Ok(())
}

async fn hand_edits_are_put_back(env: &mut Env) -> anyhow::Result<()> {
    ready_connector(env, "drift", "okta", json!({})).await?;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "drift");
    // `kubectl rollout restart` writes this annotation; the operator does not own it and keeps it.
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}});
    deployments.patch("okta", &PatchParams::default(), &Patch::Strategic(&restart)).await?;
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "baton-okta", "image": "evil:latest"}]}}}});
    deployments.patch("okta", &PatchParams::default(), &Patch::Strategic(&image)).await?;
    eventually("the image to be put back", WAIT, || async {
        let d = deployments.get("okta").await?;
        let t = d.spec.template;
        let image = t.spec.as_ref().and_then(|s| s.containers[0].image.clone()).unwrap_or_default();
        let kept = t
            .metadata
            .and_then(|m| m.annotations)
            .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"));
        Ok((image == "public.ecr.aws/conductorone/baton-okta:latest" && kept).then_some(()))
    })
    .await?;
    Ok(())
}

async fn restricted_namespace_admits_connector_pods(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    namespace(&env.client, "restricted", json!({"pod-security.kubernetes.io/enforce": "restricted"})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some("restricted")).await?;
    apply_value(
        &env.client,
        connector("okta", "okta", json!({"healthCheck": {"enabled": true}})),
        Some("restricted"),
    )
    .await?;
    wait_ready(&env.client, "restricted", "okta").await?;
    let pods: Vec<Pod> = list(&env.client, "restricted", "app=baton-okta").await?;
    ensure!(pods.len() == 1);
    Ok(())
}

async fn managed_credentials_issue_rotate_and_revoke(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let ns = "managed";
    let (app, connector_id) = ("app-e2e", "conn-e2e");
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal("e2e-operator");
    namespace(&env.client, ns, json!({"pod-security.kubernetes.io/enforce": "restricted"})).await?;
    let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, api_secret, Some(ns)).await?;
    let spec = json!({
        "connector": "okta",
        "credentials": {"managed": {"rotation": {"interval": "720h", "gracePeriod": "2s"}}},
        "conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id},
    });
    let mut bc = connector("okta", "okta", json!({}));
    bc["spec"] = spec;
    apply_value(&env.client, bc, Some(ns)).await?;
    let ready = wait_ready(&env.client, ns, "okta").await?;
    let first = ready.status.as_ref().and_then(|s| s.credentials.clone()).context("no credentials status")?;
    let first_id = first.credential_id.clone().context("no credential id")?;
    ensure!(first.secret_name.as_deref() == Some("okta-c1-credentials-1"), "{first:?}");
    ensure!(env.c1.credentials().len() == 1);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), ns);
    let stored = secrets.get("okta-c1-credentials-1").await?;
    let keys: Vec<_> = stored.data.unwrap_or_default().into_keys().collect();
    ensure!(keys == ["BATON_CLIENT_ID", "BATON_CLIENT_SECRET"], "{keys:?}");
    ensure!(replica_sets(&env.client, ns, "okta").await?.len() == 1);

    // Rotate on request: a new credential, one rollout, the old one revoked after the new pod is up.
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    let annotate = json!({"metadata": {"annotations": {"baton.conductorone.com/rotate-requested-at": "2026-11-22T12:00:00Z"}}});
    api.patch("okta", &PatchParams::default(), &Patch::Merge(&annotate)).await?;
    let rotated = eventually("the rotation to finish", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        let c = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
        Ok((c.credential_id.as_deref() != Some(first_id.as_str()) && c.rotation.is_none()).then_some(c))
    })
    .await?;
    ensure!(rotated.secret_name.as_deref() == Some("okta-c1-credentials-2"), "{rotated:?}");
    let old = env.c1.credential(&first_id).context("old credential unknown to the fake")?;
    let revoked_at = old.revoked_at.context("the old credential was not revoked")?;
    let rs = replica_sets(&env.client, ns, "okta").await?;
    ensure!(rs.len() == 2, "expected exactly one rollout, found {} ReplicaSets", rs.len());
    let pods: Vec<Pod> = list(&env.client, ns, "app.kubernetes.io/instance=okta").await?;
    let new_pod_ready = pods
        .iter()
        .filter_map(|p| {
            p.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "Ready")?
                .last_transition_time
                .clone()
        })
        .map(|t| t.0)
        .max()
        .context("no ready pod")?;
    ensure!(revoked_at >= new_pod_ready, "revoked at {revoked_at}, new pod ready at {new_pod_ready}");
    ensure!(secrets.get_opt("okta-c1-credentials-1").await?.is_none(), "old Secret revision left behind");

    // Deletion revokes what the operator minted, then lets the resource go.
    api.delete("okta", &DeleteParams::default()).await?;
    let current = rotated.credential_id.unwrap_or_default();
    eventually("deletion to revoke and finish", WAIT, || async {
        let gone = api.get_opt("okta").await?.is_none();
        let revoked = env.c1.credential(&current).is_some_and(|c| c.revoked_at.is_some());
        Ok((gone && revoked).then_some(()))
    })
    .await?;
    Ok(())
}

fn done_sync() -> Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    json!({"status": "SYNC_STATUS_DONE", "startedAt": now, "completedAt": now, "lastError": ""})
}

/// A secretRef connector with ConductorOne API access, so it reports sync status.
async fn synced_connector(env: &mut Env, ns: &str, app: &str, connector_id: &str) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal(&format!("{ns}-principal"));
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, api_secret, Some(ns)).await?;
    let spec = json!({"conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id}});
    apply_value(&env.client, connector("okta", "okta", spec), Some(ns)).await?;
    Ok(())
}

fn kubectl(env: &Env, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&env.admin_kubeconfig)
        .args(args)
        .output()?;
    ensure!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

async fn sync_status_shows_in_status_columns_events_and_metrics(env: &mut Env) -> anyhow::Result<()> {
    let (ns, app, connector_id) = ("sync", "app-sync", "conn-sync");
    synced_connector(env, ns, app, connector_id).await?;
    let bc = wait_ready(&env.client, ns, "okta").await?;
    ensure!(condition(&bc, "Synced").is_some_and(|(s, _)| s == "True"), "{:?}", bc.status);
    let sync = bc.status.as_ref().and_then(|s| s.sync.clone()).context("no status.sync")?;
    ensure!(sync.state.as_deref() == Some("Done") && sync.last_completed_at.is_some(), "{sync:?}");
    let table = kubectl(env, &["get", "batonconnectors", "-n", ns, "-o", "wide"])?;
    let header = table.lines().next().unwrap_or_default();
    for column in ["CONNECTOR", "MODE", "READY", "STATUS", "LAST SYNC", "AGE", "NEXT ROTATION", "MESSAGE"] {
        ensure!(header.contains(column), "no {column} column in {header:?}");
    }
    ensure!(table.lines().nth(1).is_some_and(|l| l.contains("Available") && l.contains("True")), "{table}");
    kubectl(env, &["wait", "--for=condition=Ready", "batonconnector/okta", "-n", ns, "--timeout=30s"])?;

    // ConductorOne reports a failed sync: status, condition, event and metric follow within a poll.
    let failed = json!({"status": "SYNC_STATUS_ERROR", "completedAt": k8s_openapi::jiff::Timestamp::now().to_string(),
        "lastError": "okta: 401 Unauthorized"});
    env.c1.set_sync_status(app, connector_id, failed);
    let started = std::time::Instant::now();
    let bc = eventually("Synced=False SyncFailed", Duration::from_secs(15), || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        Ok((condition(&bc, "Ready") == Some(("False".into(), "SyncFailed".into()))).then_some(bc))
    })
    .await?;
    // One poll interval is 2.2 s at most; the rest is slack for a loaded machine.
    ensure!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}, more than one poll interval",
        started.elapsed()
    );
    let sync = bc.status.as_ref().and_then(|s| s.sync.clone()).unwrap_or_default();
    ensure!(
        sync.state.as_deref() == Some("Error")
            && sync.last_error.as_deref() == Some("okta: 401 Unauthorized")
    );
    let table = kubectl(env, &["get", "batonconnectors", "-n", ns])?;
    ensure!(table.contains("SyncFailed"), "{table}");
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), ns);
    let has_event = |reason: &'static str| {
        let events = events.clone();
        async move {
            let items = events.list(&Default::default()).await?.items;
            anyhow::Ok(items.iter().any(|e| e.reason.as_deref() == Some(reason)))
        }
    };
    ensure!(has_event("SyncFailing").await?, "no SyncFailing event");
    let series = format!("baton_connector_ready{{namespace=\"{ns}\",name=\"okta\",connector=\"okta\"}} 0");
    eventually("the ready metric to drop", Duration::from_secs(10), || async {
        Ok(env.operator.metrics().await?.contains(&series).then_some(()))
    })
    .await?;

    env.c1.set_sync_status(app, connector_id, done_sync());
    wait_ready(&env.client, ns, "okta").await?;
    ensure!(has_event("SyncRecovered").await?, "no SyncRecovered event");
    let metrics = env.operator.metrics().await?;
    ensure!(metrics.contains(&series.replace("} 0", "} 1")), "ready metric did not recover");
    ensure!(metrics.contains("baton_connector_last_sync_timestamp_seconds{namespace=\"sync\""));
    ensure!(
        metrics
            .contains("baton_operator_conductorone_calls_total{operation=\"get_connector\",result=\"Ok\"}")
    );
    Ok(())
}

async fn kstatus_reads_progress_current_and_failed(env: &mut Env) -> anyhow::Result<()> {
    use support::kstatus::{KStatus, compute};
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        "kstatus",
        &kube::api::ApiResource::erase::<BatonConnector>(&()),
    );
    let read = |name: &'static str| {
        let api = api.clone();
        async move { anyhow::Ok(compute(&serde_json::to_value(api.get(name).await?)?)) }
    };
    // Before the operator has looked at it, a new resource is in progress (observedGeneration -1).
    env.operator.stop().await;
    env.operator.metrics_port = 0;
    namespace(&env.client, "kstatus", json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some("kstatus")).await?;
    apply_value(&env.client, connector("good", "okta", json!({})), Some("kstatus")).await?;
    ensure!(read("good").await? == KStatus::InProgress);
    ensure_operator(env).await?;
    wait_ready(&env.client, "kstatus", "good").await?;
    ensure!(read("good").await? == KStatus::Current);
    // A credentials Secret without the secret key needs a person: Stalled, which kstatus reads as Failed.
    let broken = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "broken"},
        "stringData": {"BATON_CLIENT_ID": "x@example.conductor.one/ccc"}});
    apply_value(&env.client, broken, Some("kstatus")).await?;
    let spec = json!({"credentials": {"secretRef": {"name": "broken"}}});
    apply_value(&env.client, connector("bad", "okta", spec), Some("kstatus")).await?;
    eventually("kstatus Failed", WAIT, || async {
        Ok((read("bad").await? == KStatus::Failed).then_some(()))
    })
    .await?;
    Ok(())
}

/// A resource written for a newer CRD (here: a mode this operator does not know) is reported on itself
/// and skipped; the rest of the fleet is reconciled as usual.
async fn unreadable_resource_does_not_block_the_fleet(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let original = std::fs::read_to_string(root.join("crds/baton.conductorone.com_batonconnectors.yaml"))?;
    let mut newer: Value = serde_yaml::from_str(&original)?;
    let mode = &mut newer["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["mode"];
    mode["enum"].as_array_mut().context("mode has an enum")?.push(json!("OneShot"));
    apply_value(&env.client, newer, None).await?;
    namespace(&env.client, "unreadable", json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some("unreadable")).await?;
    let future = eventually("the newer CRD to be served", WAIT, || async {
        Ok(apply_value(
            &env.client,
            connector("future", "okta", json!({"mode": "OneShot"})),
            Some("unreadable"),
        )
        .await
        .ok())
    })
    .await;
    // Put the real CRD back whatever happened; the stored object keeps its unknown mode.
    apply_yaml(&env.client, &original, None).await?;
    future?;
    apply_value(&env.client, connector("fine", "okta", json!({})), Some("unreadable")).await?;
    wait_ready(&env.client, "unreadable", "fine").await?;
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        "unreadable",
        &kube::api::ApiResource::erase::<BatonConnector>(&()),
    );
    eventually("the unreadable resource to be reported", WAIT, || async {
        let obj = api.get("future").await?;
        let conditions = obj.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
        Ok(conditions
            .iter()
            .any(|c| c["type"] == "Stalled" && c["status"] == "True" && c["reason"] == "InvalidSpec")
            .then_some(()))
    })
    .await?;
    Ok(())
}

async fn operator_restart_writes_nothing(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let before = settle(env, Duration::from_secs(3)).await?;
    let rs_before: Vec<ReplicaSet> = Api::all(env.client.clone()).list(&Default::default()).await?.items;
    env.operator.stop().await;
    env.operator.start()?;
    env.operator.wait_ready().await?;
    // Every resource reconciles once on start; wait until this operator has done that for the fleet.
    let fleet =
        Api::<BatonConnector>::all(env.client.clone()).list_metadata(&Default::default()).await?.items.len();
    eventually("the restarted operator to reconcile the fleet", WAIT, || async {
        let metrics = env.operator.metrics().await?;
        let done: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("baton_operator_reconciliations_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        Ok((done >= fleet as f64).then_some(()))
    })
    .await?;
    let after = settle(env, Duration::from_secs(3)).await?;
    let new: Vec<&String> = after.iter().filter(|w| !before.contains(w)).collect();
    ensure!(after.len() == before.len() && new.is_empty(), "the restart caused writes: {new:?}");
    let rs_after: Vec<ReplicaSet> = Api::all(env.client.clone()).list(&Default::default()).await?.items;
    ensure!(rs_after.len() == rs_before.len(), "the restart rolled pods");
    Ok(())
}

async fn delete_garbage_collects_children(env: &mut Env) -> anyhow::Result<()> {
    ready_connector(env, "delete", "okta", json!({})).await?;
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), "delete");
    api.delete("okta", &DeleteParams::default()).await?;
    eventually("the Deployment, ReplicaSet and pod to be collected", WAIT, || async {
        let d = Api::<Deployment>::namespaced(env.client.clone(), "delete").get_opt("okta").await?;
        let rs = replica_sets(&env.client, "delete", "okta").await?;
        let pods: Vec<Pod> = list(&env.client, "delete", "app.kubernetes.io/instance=okta").await?;
        Ok((d.is_none() && rs.is_empty() && pods.is_empty()).then_some(()))
    })
    .await?;
    // The user's Secret is not the operator's to delete.
    ensure!(
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(env.client.clone(), "delete")
            .get_opt("c1")
            .await?
            .is_some()
    );
    Ok(())
}

async fn leader_election_lets_one_replica_reconcile(env: &mut Env) -> anyhow::Result<()> {
    env.operator.stop().await;
    env.operator.metrics_port = 0;
    let work = env.operator.log_path().parent().map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    let replica = |n: usize| {
        let mut op = Operator::new(
            Path::new(env!("CARGO_BIN_EXE_baton-operator")),
            work.join("operator.kubeconfig"),
            work.join(format!("replica-{n}.log")),
        );
        op.extra_args =
            ["--leader-election", "--lease-namespace", "baton-system", "--identity", &format!("replica-{n}")]
                .map(String::from)
                .to_vec();
        op
    };
    let (mut a, mut b) = (replica(1), replica(2));
    a.start()?;
    a.wait_ready().await?;
    b.start()?;
    b.wait_ready().await?;
    namespace(&env.client, "leader", json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some("leader")).await?;
    apply_value(&env.client, connector("first", "okta", json!({})), Some("leader")).await?;
    wait_ready(&env.client, "leader", "first").await?;
    let reconciled = |m: &str| {
        m.lines().any(|l| l.starts_with("baton_operator_reconciliations_total") && !l.ends_with(" 0"))
    };
    let (ma, mb) = (a.metrics().await?, b.metrics().await?);
    ensure!(
        reconciled(&ma) != reconciled(&mb),
        "exactly one replica must reconcile (a: {}, b: {})",
        reconciled(&ma),
        reconciled(&mb)
    );
    let (mut leader, standby) = if reconciled(&ma) { (a, b) } else { (b, a) };
    // The leader goes away; the standby takes over once the lease expires (15 s at most).
    leader.stop().await;
    apply_value(&env.client, connector("second", "okta", json!({})), Some("leader")).await?;
    wait_ready(&env.client, "leader", "second").await?;
    ensure!(reconciled(&standby.metrics().await?), "the standby did not take over");
    drop(standby);
    Ok(())
}
