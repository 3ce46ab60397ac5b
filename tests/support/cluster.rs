//! Helpers for end-to-end flows on a real API server: applying YAML, waiting, playing the kubelet,
//! and running the operator binary as its own ServiceAccount.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams},
    core::GroupVersionKind,
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

pub const TEST_MANAGER: &str = "baton-e2e";
/// Marks the namespaces the suite creates, so it can remove them from an existing cluster.
pub const E2E_LABEL: &str = "baton.conductorone.com/e2e";

/// Deletes every namespace the suite created (used on an existing cluster; a local control plane is
/// thrown away whole).
pub async fn delete_namespaces(client: &Client) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    for ns in api.list(&ListParams::default().labels(E2E_LABEL)).await?.items {
        api.delete(&ns.name_any(), &Default::default()).await?;
    }
    Ok(())
}

/// Applies every document of a YAML stream with server-side apply. `namespace` overrides the
/// namespace of namespaced objects.
pub async fn apply_yaml(
    client: &Client,
    yaml: &str,
    namespace: Option<&str>,
) -> anyhow::Result<Vec<DynamicObject>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        if value.is_null() {
            continue;
        }
        out.push(apply_value(client, value, namespace).await?);
    }
    Ok(out)
}

pub async fn apply_value(
    client: &Client,
    value: serde_json::Value,
    namespace: Option<&str>,
) -> anyhow::Result<DynamicObject> {
    let mut obj: DynamicObject = serde_json::from_value(value)?;
    let types = obj.types.clone().ok_or_else(|| anyhow!("document without apiVersion/kind"))?;
    let gvk = GroupVersionKind::try_from(&types)?;
    let (resource, namespaced) = resource_for(&gvk)?;
    if let (true, Some(ns)) = (namespaced, namespace) {
        obj.metadata.namespace = Some(ns.to_string());
    }
    let api: Api<DynamicObject> = match (&obj.metadata.namespace, namespaced) {
        (Some(ns), true) => Api::namespaced_with(client.clone(), ns, &resource),
        (None, true) => Api::default_namespaced_with(client.clone(), &resource),
        _ => Api::all_with(client.clone(), &resource),
    };
    let name = obj.name_any();
    obj.metadata.managed_fields = None;
    obj.metadata.resource_version = None;
    api.patch(&name, &PatchParams::apply(TEST_MANAGER).force(), &Patch::Apply(&obj))
        .await
        .with_context(|| format!("applying {} {name}", gvk.kind))
}

/// The kinds the suite applies from YAML, without a discovery round trip.
fn resource_for(gvk: &GroupVersionKind) -> anyhow::Result<(ApiResource, bool)> {
    let (plural, namespaced) = match gvk.kind.as_str() {
        "Namespace" => ("namespaces", false),
        "ServiceAccount" => ("serviceaccounts", true),
        "Secret" => ("secrets", true),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "BatonConnector" => ("batonconnectors", true),
        "ConductorOneTenant" => ("conductoronetenants", true),
        "ClusterConductorOneTenant" => ("clusterconductoronetenants", false),
        "Deployment" => ("deployments", true),
        "ValidatingAdmissionPolicy" => ("validatingadmissionpolicies", false),
        "ValidatingAdmissionPolicyBinding" => ("validatingadmissionpolicybindings", false),
        other => bail!("the e2e suite does not know kind {other}"),
    };
    Ok((ApiResource::from_gvk_with_plural(gvk, plural), namespaced))
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what` and the last value seen.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        let last = match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "condition not met".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates a namespace for one case, optionally with labels.
pub async fn namespace(client: &Client, name: &str, labels: serde_json::Value) -> anyhow::Result<()> {
    let mut labels = labels;
    labels[E2E_LABEL] = json!("true");
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    api.patch(name, &PatchParams::apply(TEST_MANAGER).force(), &Patch::Apply(&ns)).await?;
    Ok(())
}

/// Plays the kubelet, which this control plane lacks: every pod the operator's Deployments create is
/// marked Running and Ready, so ReplicaSets count it available. Runs until dropped.
pub fn spawn_kubelet(client: Client) -> tokio::task::JoinHandle<()> {
    spawn_kubelet_for(client, "app.kubernetes.io/managed-by=baton-operator")
}

/// The same stand-in kubelet for the pods `selector` selects (a hand-written connector's, say).
pub fn spawn_kubelet_for(client: Client, selector: &str) -> tokio::task::JoinHandle<()> {
    let selector = selector.to_string();
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::all(client.clone());
        let config = watcher::Config::default().labels(&selector);
        // A real kubelet retries its watch at once when the API server comes back; kube's default
        // back-off (up to a minute) would leave pods unready long after an outage case.
        let stream = watcher(pods, config).applied_objects();
        let mut stream = kube::runtime::utils::StreamBackoff::new(stream, QuickRetry).boxed();
        while let Some(event) = stream.next().await {
            let Ok(pod) = event else { continue };
            simulate(&client, &pod).await;
        }
    })
}

/// The simulated kubelet's answer for one pod: Running and Ready at once. A pod that is finished
/// (a run's pod that a test marked so), running already or being deleted is left alone.
pub async fn simulate(client: &Client, pod: &Pod) {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Running" | "Succeeded" | "Failed")) || pod.metadata.deletion_timestamp.is_some()
    {
        return;
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let condition = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
    let status = json!({"status": {
        "phase": "Running",
        "startTime": now,
        "conditions": [condition("PodScheduled"), condition("Initialized"), condition("ContainersReady"), condition("Ready")],
    }});
    let _ = api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await;
}

/// Half a second between watch retries, always.
pub struct QuickRetry;

impl Iterator for QuickRetry {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(500))
    }
}

impl kube::runtime::utils::Backoff for QuickRetry {
    fn reset(&mut self) {}
}

/// The operator binary, run as a child process with its own kubeconfig.
pub struct Operator {
    binary: PathBuf,
    kubeconfig: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    pub metrics_port: u16,
    pub extra_args: Vec<String>,
    /// Short by default so that sync status changes show within one poll in the suite.
    pub sync_poll_interval: String,
    pub rust_log: String,
}

impl Operator {
    pub fn new(binary: &Path, kubeconfig: PathBuf, log: PathBuf) -> Self {
        Self {
            binary: binary.into(),
            kubeconfig,
            log,
            child: None,
            metrics_port: 0,
            extra_args: Vec::new(),
            sync_poll_interval: "2s".into(),
            rust_log: "info,baton_operator=debug".into(),
        }
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        self.metrics_port = super::control_plane::free_port()?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.binary)
            .args(["run", "--log-format", "text", "--http-addr", &format!("127.0.0.1:{}", self.metrics_port)])
            // The fake ConductorOne server listens on loopback without TLS.
            .arg("--c1-insecure-loopback")
            .args(["--sync-poll-interval", &self.sync_poll_interval])
            .args(&self.extra_args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", &self.rust_log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the operator")?;
        self.child = Some(child);
        Ok(())
    }

    /// Stops it the way Kubernetes does: SIGTERM, then a kill after a grace period.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status if it did.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Some(status);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `/readyz` answers 200: the operator has listed its fleet.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/readyz", self.metrics_port);
        eventually("operator /readyz", Duration::from_secs(30), || {
            let url = url.clone();
            async move {
                let status = reqwest::get(&url).await?.status();
                Ok(status.is_success().then_some(()))
            }
        })
        .await
    }

    /// The running process, for reading its CPU time and memory from `/proc`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port)).await?.text().await?)
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Lists objects of a kind in a namespace, by label selector.
pub async fn list<K>(client: &Client, ns: &str, selector: &str) -> anyhow::Result<Vec<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    Ok(api.list(&ListParams::default().labels(selector)).await?.items)
}

/// Installs the CRD and the operator's namespace and RBAC from the repository, and writes a kubeconfig
/// with a token of the operator's own ServiceAccount into the control plane's directory; returns its path.
pub async fn install_operator(
    admin: &Client,
    cp: &super::control_plane::ControlPlane,
) -> anyhow::Result<PathBuf> {
    let root = crate::repository();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).with_context(|| format!("reading {p}"));
    // Every CRD: the operator watches tenants too, and is not ready while a watch fails.
    for crd in ["batonconnectors", "conductoronetenants", "clusterconductoronetenants"] {
        apply_yaml(admin, &read(&format!("crds/baton.conductorone.com_{crd}.yaml"))?, None).await?;
    }
    eventually("the CRD to be established", Duration::from_secs(60), || async {
        let api: Api<baton_operator::api::BatonConnector> = Api::all(admin.clone());
        Ok(api.list(&ListParams::default().limit(1)).await.ok().map(|_| ()))
    })
    .await?;
    apply_yaml(admin, &read("config/manager/namespace.yaml")?, None).await?;
    for f in ["service_account.yaml", "cluster_role.yaml", "cluster_role_binding.yaml"] {
        apply_yaml(admin, &read(&format!("config/rbac/{f}"))?, None).await?;
    }
    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin.clone(), "baton-system");
    let request = serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 7200}}))?;
    let token = sa.create_token_request("baton-operator", &Default::default(), &request).await?;
    let token = token.status.and_then(|s| s.token).context("token request without a token")?;
    let path = cp.dir().join("operator.kubeconfig");
    std::fs::write(&path, cp.kubeconfig_with_token(&token))?;
    Ok(path)
}
