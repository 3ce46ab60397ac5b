//! The README's install commands and worked example, run as written on a fresh control plane: the
//! commands are extracted from the Markdown, so the docs cannot drift from what is tested.
//!
//! Pods cannot run here (no kubelet), so what can be is checked: every object is accepted, the
//! operator pod is admitted in its namespace that enforces the `restricted` Pod Security Standard,
//! and the operator binary, run with a token of the installed ServiceAccount, reconciles the
//! example until `kubectl wait` as documented returns.

use super::*;
use k8s_openapi::api::core::v1::Namespace;

/// The ```sh blocks of a Markdown text under the heading `section` and its subsections (the whole
/// text when `None`), in order.
pub(crate) fn sh_blocks(markdown: &str, section: Option<&str>) -> Vec<String> {
    let (mut out, mut inside, mut level) = (Vec::new(), section.is_none(), 0);
    // Some(true) inside a ```sh fence, Some(false) inside any other fence.
    let mut fence: Option<bool> = None;
    let mut block = String::new();
    for line in markdown.lines() {
        if let Some(is_sh) = fence {
            if line.trim_start().starts_with("```") {
                if is_sh && inside {
                    out.push(std::mem::take(&mut block));
                }
                block.clear();
                fence = None;
            } else if is_sh {
                block.push_str(line);
                block.push('\n');
            }
            continue;
        }
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            fence = Some(lang.trim() == "sh");
            continue;
        }
        if let (Some(wanted), true) = (section, line.starts_with('#')) {
            let hashes = line.chars().take_while(|c| *c == '#').count();
            if line[hashes..].trim() == wanted {
                (inside, level) = (true, hashes);
            } else if inside && hashes <= level {
                inside = false;
            }
        }
    }
    out
}

/// A throwaway control plane of its own, so that install commands run on an empty cluster as a new
/// user's would. Needs the suite's binaries; on an existing cluster (`BATON_E2E_KUBECONFIG`) the
/// cases that use it skip and say so.
pub(crate) struct Fresh {
    pub cp: ControlPlane,
    pub client: Client,
    kubelet: tokio::task::JoinHandle<()>,
    /// Holds `helm` (a link to `BATON_HELM`) and Helm's own config and cache.
    pub tools: tempfile::TempDir,
}

impl Drop for Fresh {
    fn drop(&mut self) {
        self.kubelet.abort();
    }
}

impl Fresh {
    pub(crate) async fn start(case: &str) -> anyhow::Result<Option<Self>> {
        let Ok(Source::Binaries { etcd, apiserver, controller_manager }) = control_plane::discover() else {
            println!(
                "e2e::{case}: SKIPPED, needs a local control plane of its own (not BATON_E2E_KUBECONFIG)"
            );
            return Ok(None);
        };
        let cp = ControlPlane::start(&etcd, &apiserver, &controller_manager).await?;
        let client = cp.client().await?;
        let kubelet = cluster::spawn_kubelet(client.clone());
        let tools = tempfile::Builder::new().prefix("baton-e2e-tools-").tempdir()?;
        if let Some(helm) = helm_binary() {
            std::os::unix::fs::symlink(helm, tools.path().join("helm"))?;
        }
        Ok(Some(Self { cp, client, kubelet, tools }))
    }

    /// Runs one documented block with bash (`-e`: the first failing command fails it) from the
    /// repository root, with this cluster's admin kubeconfig and the built `baton-operator` on PATH.
    /// Returns the standard output; the error carries the trace and both outputs.
    pub(crate) async fn sh(&self, block: &str) -> anyhow::Result<String> {
        let bin = Path::new(env!("CARGO_BIN_EXE_baton-operator")).parent().context("binary dir")?;
        let path = std::env::join_paths(
            [self.tools.path().to_path_buf(), bin.to_path_buf()]
                .into_iter()
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )?;
        let helm_home = self.tools.path().join("helm-home");
        // Documented waits have their own timeouts (at most 5 minutes); `timeout` bounds the rest.
        let mut cmd = std::process::Command::new("timeout");
        cmd.args(["400", "bash", "-e", "-o", "pipefail", "-x", "-c", block])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("KUBECONFIG", &self.cp.admin_kubeconfig)
            .env("PATH", path)
            .env("HELM_CONFIG_HOME", helm_home.join("config"))
            .env("HELM_CACHE_HOME", helm_home.join("cache"))
            .env("HELM_DATA_HOME", helm_home.join("data"))
            .stdin(std::process::Stdio::null());
        let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        ensure!(out.status.success(), "the documented commands failed:\n{block}--- output ---\n{text}");
        Ok(stdout)
    }

    /// The operator binary, run as the ServiceAccount `ns/name` with a fresh token, the way its pod
    /// would run it.
    pub(crate) async fn operator_as(
        &self,
        ns: &str,
        name: &str,
        log: &str,
        args: &[String],
    ) -> anyhow::Result<Operator> {
        let token = sa_token(&self.client, ns, name).await?;
        let kubeconfig = self.cp.dir().join(format!("{log}.kubeconfig"));
        std::fs::write(&kubeconfig, self.cp.kubeconfig_with_token(&token))?;
        let mut op = Operator::new(
            Path::new(env!("CARGO_BIN_EXE_baton-operator")),
            kubeconfig,
            self.cp.dir().join(format!("{log}.log")),
        );
        op.extra_args = args.to_vec();
        op.start()?;
        op.wait_ready().await?;
        Ok(op)
    }

    /// Waits until the Deployment `ns/name` has a pod: the ReplicaSet controller's create passed
    /// admission, including Pod Security in a namespace that enforces it.
    pub(crate) async fn pod_admitted(&self, ns: &str, selector: &str) -> anyhow::Result<()> {
        let enforced = Api::<Namespace>::all(self.client.clone()).get(ns).await?.labels().get(PSA).cloned();
        ensure!(
            enforced.as_deref() == Some("restricted"),
            "namespace {ns} does not enforce the restricted Pod Security Standard: {enforced:?}"
        );
        eventually(&format!("a pod {selector} in {ns} to be admitted"), WAIT, || async {
            let pods: Vec<Pod> = list(&self.client, ns, selector).await?;
            if !pods.is_empty() {
                return Ok(Some(()));
            }
            let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.client.clone(), ns);
            let refused: Vec<String> = events
                .list(&Default::default())
                .await?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("FailedCreate"))
                .filter_map(|e| e.message)
                .collect();
            ensure!(refused.is_empty(), "the operator pod was refused: {refused:?}");
            Ok(None)
        })
        .await
    }
}

const PSA: &str = "pod-security.kubernetes.io/enforce";

pub(crate) fn helm_binary() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("BATON_HELM") {
        return Some(p.into());
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("helm")).find(|p| p.is_file()))
}

pub(crate) async fn sa_token(client: &Client, ns: &str, name: &str) -> anyhow::Result<String> {
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let request = serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))?;
    eventually(&format!("a token for {ns}/{name}"), WAIT, || async {
        Ok(sa.create_token_request(name, &PostParams::default(), &request).await.ok())
    })
    .await?
    .status
    .and_then(|s| s.token)
    .context("token request without a token")
}

fn read(path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .with_context(|| format!("reading {path}"))
}

/// A block that the suite does not run, with the reason it prints.
fn skip_reason(block: &str) -> Option<&'static str> {
    block.lines().any(|l| l.trim_start().starts_with("cargo ")).then_some("builds and runs from source")
}

/// `kubectl apply -k config/default`, the CRD-only install and the worked example, as the README
/// says, then checks what the cluster can show without a kubelet.
pub(crate) async fn readme_install_and_worked_example_run_as_written(_env: &mut Env) -> anyhow::Result<()> {
    // Runs on a control plane of its own, not the suite's.
    let Some(fresh) = Fresh::start("readme_install_and_worked_example_run_as_written").await? else {
        return Ok(());
    };
    // Before anything is installed, the plugin says the CRD is missing, with its own exit code.
    let run = super::plugin::plugin(&fresh.cp.admin_kubeconfig, &["status", "-A"]).await?;
    ensure!(
        run.code == 3 && run.stderr.contains("CRD is not installed"),
        "kubectl baton status on a cluster without the CRD exited {}: {}",
        run.code,
        run.stderr
    );
    let readme = read("README.md")?;
    let install = sh_blocks(&readme, Some("Install"));
    let example = sh_blocks(&readme, Some("A worked example"));
    ensure!(
        install.iter().any(|b| b.contains("kubectl apply -k config/default")),
        "the README's Install section no longer has `kubectl apply -k config/default`: {install:?}"
    );
    ensure!(!example.is_empty(), "the README's worked example has no sh block");
    // The namespaced variant is the subject of its own case, on a cluster of its own.
    for block in install.iter().filter(|b| !b.contains("config/namespaced")) {
        match skip_reason(block) {
            Some(why) => println!("e2e: README block skipped ({why}):\n{block}"),
            None => {
                fresh.sh(block).await?;
            }
        }
    }
    // Every object of the install is there.
    fresh.sh("kubectl get -k config/default -o name").await?;
    fresh.pod_admitted("baton-system", "app.kubernetes.io/name=baton-operator").await?;
    let mut operator = fresh.operator_as("baton-system", "baton-operator", "installed-operator", &[]).await?;
    for block in &example {
        match skip_reason(block) {
            Some(why) => println!("e2e: README block skipped ({why}):\n{block}"),
            None => {
                let out = fresh.sh(block).await?;
                if block.contains("baton-operator render") {
                    ensure!(out.contains("kind: Deployment"), "render printed no Deployment:\n{out}");
                }
            }
        }
    }
    // kubectl wait returned: the example is Ready on its current generation, reconciled by the
    // operator running as the installed ServiceAccount.
    wait_ready(&fresh.client, "identity", "okta").await?;
    operator.stop().await;
    adopt_the_crd_into_helm(&fresh).await
}

/// The chart README's adoption commands, on a CRD that `kubectl apply -k` created: afterwards Helm
/// installs the chart (its other objects renamed so as not to collide with this install) and owns
/// the CRD, with the example's resource still there.
async fn adopt_the_crd_into_helm(fresh: &Fresh) -> anyhow::Result<()> {
    if helm_binary().is_none() {
        println!("e2e: CRD adoption into Helm SKIPPED, no helm binary");
        return Ok(());
    }
    let chart_readme = read("charts/baton-operator/README.md")?;
    let adopt = sh_blocks(&chart_readme, Some("Install"))
        .into_iter()
        .find(|b| b.contains("meta.helm.sh/release-name"))
        .context("the chart README no longer shows how to adopt the CRD")?;
    fresh.sh(&adopt).await?;
    fresh
        .sh("helm install baton-operator charts/baton-operator -n baton-system --set fullnameOverride=adoption-check")
        .await?;
    let manifest = fresh.sh("helm get manifest baton-operator -n baton-system").await?;
    ensure!(manifest.contains("kind: CustomResourceDefinition"), "Helm did not take the CRD over");
    get_bc(&fresh.client, "identity", "okta").await.context("the adoption lost the example's resource")?;
    Ok(())
}

/// `config/namespaced` as the README installs it: the operator, with exactly those permissions,
/// reconciles a connector in a watched namespace, leaves one elsewhere alone, and cannot read a
/// Secret outside the watched namespaces (checked by impersonation and with its own token).
pub(crate) async fn namespaced_install_reads_no_secret_outside_its_namespaces(
    _env: &mut Env,
) -> anyhow::Result<()> {
    let Some(fresh) = Fresh::start("namespaced_install_reads_no_secret_outside_its_namespaces").await? else {
        return Ok(());
    };
    let readme = read("README.md")?;
    let blocks: Vec<String> =
        sh_blocks(&readme, Some("Install")).into_iter().filter(|b| b.contains("config/namespaced")).collect();
    ensure!(!blocks.is_empty(), "the README's Install section no longer shows config/namespaced");
    for block in &blocks {
        fresh.sh(block).await?;
    }
    fresh.sh("kubectl get -k config/namespaced -o name").await?;
    fresh.pod_admitted("baton-system", "app.kubernetes.io/name=baton-operator").await?;
    let listed = fresh.sh("kubectl kustomize config/namespaced").await?;
    ensure!(!listed.contains("kind: ClusterRole"), "config/namespaced grants something cluster-wide");
    let watched = watched_namespaces(&listed)?;
    ensure!(watched == ["identity", "connectors"], "WATCH_NAMESPACES of config/namespaced: {watched:?}");

    namespace(&fresh.client, "elsewhere", json!({})).await?;
    for ns in ["identity", "elsewhere"] {
        apply_value(&fresh.client, credentials_secret("c1"), Some(ns)).await?;
    }
    let sa = "system:serviceaccount:baton-system:baton-operator";
    let can = |args: &str| format!("kubectl auth can-i {args} --as={sa}");
    for denied in [
        "get secrets -n elsewhere",
        "list secrets -n elsewhere",
        "watch secrets -n elsewhere",
        "list secrets --all-namespaces",
        "list deployments.apps --all-namespaces",
        "list batonconnectors.baton.conductorone.com --all-namespaces",
    ] {
        let out = fresh.sh(&format!("{} || true", can(denied))).await?;
        ensure!(out.lines().any(|l| l.trim() == "no"), "the operator may {denied}: {out}");
    }
    for allowed in
        ["get secrets -n identity", "watch secrets -n connectors", "patch batonconnectors/status -n identity"]
    {
        fresh.sh(&can(allowed)).await?;
    }

    // As its pod would run it: WATCH_NAMESPACES from the overlay's Deployment.
    let args = ["--namespace".to_string(), watched.join(",")];
    let mut operator =
        fresh.operator_as("baton-system", "baton-operator", "namespaced-operator", &args).await?;
    // Its own token: the Secret outside is forbidden, not just unlisted.
    let kubeconfig = fresh.cp.dir().join("namespaced-operator.kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig)?,
        &Default::default(),
    )
    .await?;
    let as_operator = Client::try_from(config)?;
    match Api::<k8s_openapi::api::core::v1::Secret>::namespaced(as_operator.clone(), "elsewhere")
        .get("c1")
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => bail!(
            "reading a Secret in an unwatched namespace: expected 403, got {:?}",
            other.map(|_| "the Secret")
        ),
    }
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(as_operator, "identity").get("c1").await?;

    apply_value(&fresh.client, connector("watched", "okta", json!({})), Some("identity")).await?;
    apply_value(&fresh.client, connector("unwatched", "okta", json!({})), Some("elsewhere")).await?;
    wait_ready(&fresh.client, "identity", "watched").await?;
    let other = get_bc(&fresh.client, "elsewhere", "unwatched").await?;
    ensure!(
        other.status.as_ref().is_none_or(|s| s.observed_generation == -1),
        "a connector outside the watched namespaces was reconciled: {:?}",
        other.status
    );
    let log = std::fs::read_to_string(operator.log_path())?;
    let forbidden: Vec<&str> = log.lines().filter(|l| l.to_lowercase().contains("forbidden")).collect();
    ensure!(forbidden.is_empty(), "the operator made requests outside its Roles:\n{}", forbidden.join("\n"));
    operator.stop().await;
    Ok(())
}

/// The namespaces in the WATCH_NAMESPACES of a rendered install.
pub(crate) fn watched_namespaces(rendered: &str) -> anyhow::Result<Vec<String>> {
    for doc in serde_yaml::Deserializer::from_str(rendered) {
        let obj: Value = serde::Deserialize::deserialize(doc)?;
        if obj["kind"] != "Deployment" {
            continue;
        }
        let env =
            obj["spec"]["template"]["spec"]["containers"][0]["env"].as_array().cloned().unwrap_or_default();
        let value = env.iter().find(|e| e["name"] == "WATCH_NAMESPACES").and_then(|e| e["value"].as_str());
        return Ok(value.map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default());
    }
    bail!("no Deployment rendered")
}
