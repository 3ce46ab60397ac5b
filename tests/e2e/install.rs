//! The documented install commands (`docs/install.md`'s checkout installs, the README's Helm
//! quickstart), run as written on fresh control planes: the commands are extracted from the
//! Markdown, so the docs cannot drift from what is tested. Blocks marked as not run are printed.
//!
//! Pods cannot run here (no kubelet), so what can be is checked: every object is accepted, the
//! operator pod is admitted in its namespace that enforces the `restricted` Pod Security Standard,
//! and the operator binary, run with a token of the installed ServiceAccount, reconciles the
//! example until `kubectl wait` as documented returns.

use super::*;
use k8s_openapi::api::core::v1::Namespace;

use crate::support::doc_blocks;

/// The blocks of `markdown` under `section` (the whole text when `None`) that the suite runs; the
/// marked ones are printed as skipped, with their reason.
pub(crate) fn sh_blocks(markdown: &str, section: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for block in doc_blocks::sh_blocks(markdown).into_iter().filter(|b| b.under(section)) {
        match &block.skip {
            Some(why) => println!("e2e: documented block skipped ({why}):\n{}", block.text),
            None => out.push(block.text),
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
        // `timeout` bounds every block, documented waits included (the quickstart allows 30 minutes for
        // a real first sync; against the fake it takes seconds).
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

/// The checkout install of `docs/install.md` (`kubectl apply --server-side -k config/default` and
/// the CRD-only install) as written, then what the cluster can show without a kubelet; then, on a
/// second fresh control plane, the README's Helm quickstart ([`quickstart_runs_as_written`]).
pub(crate) async fn readme_install_and_worked_example_run_as_written(env: &mut Env) -> anyhow::Result<()> {
    // Runs on control planes of its own, not the suite's.
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
    let install = sh_blocks(&read("docs/install.md")?, Some("From a checkout"));
    ensure!(
        install.iter().any(|b| b.contains("kubectl apply --server-side -k config/default")),
        "docs/install.md no longer has `kubectl apply --server-side -k config/default`: {install:?}"
    );
    // The namespaced variant is the subject of its own case, on a cluster of its own.
    for block in install.iter().filter(|b| !b.contains("config/namespaced")) {
        fresh.sh(block).await?;
    }
    // Every object of the install is there.
    fresh.sh("kubectl get -k config/default -o name").await?;
    fresh.pod_admitted("baton-system", "app.kubernetes.io/name=baton-operator").await?;
    let mut operator = fresh.operator_as("baton-system", "baton-operator", "installed-operator", &[]).await?;
    // The operator running as the installed ServiceAccount reconciles a connector until it is Ready.
    namespace(&fresh.client, "identity", json!({})).await?;
    apply_value(&fresh.client, credentials_secret("c1"), Some("identity")).await?;
    okta_app(&fresh.client, "identity").await?;
    apply_value(&fresh.client, connector("okta", "okta", json!({})), Some("identity")).await?;
    wait_ready(&fresh.client, "identity", "okta").await?;
    let out = fresh.sh("baton-operator render -f examples/okta.yaml").await?;
    ensure!(out.contains("kind: Deployment"), "render printed no Deployment:\n{out}");
    operator.stop().await;
    adopt_the_crd_into_helm(&fresh).await?;
    drop(fresh);
    quickstart_runs_as_written(env).await
}

/// The README quickstart's placeholders that must point at the suite's fake ConductorOne instead of
/// a real tenant, in one place: the service principal's client ID (its host is the API's address)
/// and secret. Everything else runs as written; the placeholder app and connector ids are
/// registered in the fake as they are, and the Okta values reach no Okta (no connector pod runs).
const QUICKSTART_CLIENT_ID: &str = "baton-operator@acme.conductor.one/spc";
const QUICKSTART_CLIENT_SECRET: &str = "secret-token:conductorone.com:v1:eyJrdHkiOiJPS1AiLCJjcnYiOiJFZDI1NTE5IiwieCI6IlJFUExBQ0UiLCJkIjoiUkVQTEFDRSJ9";
const QUICKSTART_APP_ID: &str = "2kVYm0bTq9XnS3cRfH8dLpWu4Ej";
const QUICKSTART_CONNECTOR_ID: &str = "2kVYm7sQz1NaG5hKbT0xPcYr6Dv";

/// The README's Helm quickstart, every unmarked command as written and in order, on a fresh control
/// plane, with the fake's API credentials in place of the placeholders: Helm installs the chart, the
/// operator (the built binary, run with the chart's ServiceAccount token, as its pod would run it)
/// mints a credential through the fake, and the documented `kubectl wait` returns once the fake
/// reports a completed sync.
async fn quickstart_runs_as_written(env: &mut Env) -> anyhow::Result<()> {
    if helm_binary().is_none() {
        println!("e2e: README quickstart SKIPPED, no helm binary (BATON_HELM unset, none on PATH)");
        return Ok(());
    }
    let Some(fresh) = Fresh::start("readme quickstart").await? else { return Ok(()) };
    let principal = env.c1.register_principal("quickstart");
    env.c1.add_connector(QUICKSTART_APP_ID, QUICKSTART_CONNECTOR_ID, "okta");
    env.c1.set_sync_status(QUICKSTART_APP_ID, QUICKSTART_CONNECTOR_ID, done_sync());
    let blocks = sh_blocks(&read("README.md")?, Some("Quickstart"));
    let commands = blocks.join("");
    for placeholder in
        [QUICKSTART_CLIENT_ID, QUICKSTART_CLIENT_SECRET, QUICKSTART_APP_ID, QUICKSTART_CONNECTOR_ID]
    {
        ensure!(
            commands.contains(placeholder),
            "the README quickstart no longer has the placeholder {placeholder}; update this case"
        );
    }
    ensure!(commands.contains("helm install"), "the README quickstart does not install with Helm");
    ensure!(commands.contains("kubectl -n identity wait"), "the README quickstart waits for nothing");
    let mut operator = None;
    for block in &blocks {
        let block = block
            .replace(QUICKSTART_CLIENT_ID, &principal.client_id)
            .replace(QUICKSTART_CLIENT_SECRET, &principal.client_secret);
        // Each command on its own, so that the operator starts right after `helm install`.
        for command in commands_of(&block) {
            fresh.sh(&command).await?;
            if command.starts_with("helm install") {
                fresh.pod_admitted("baton-system", "app.kubernetes.io/instance=baton-operator").await?;
                operator = Some(
                    fresh.operator_as("baton-system", "baton-operator", "quickstart-operator", &[]).await?,
                );
            }
        }
    }
    let mut operator = operator.context("the quickstart's helm install did not start an operator")?;
    let bc = wait_ready(&fresh.client, "identity", "okta").await?;
    let credential =
        bc.status.as_ref().and_then(|s| s.credentials.as_ref()).and_then(|c| c.credential_id.clone());
    let credential = env.c1.credential(&credential.context("no managed credential in status")?);
    ensure!(
        credential
            .is_some_and(|c| c.app_id == QUICKSTART_APP_ID && c.connector_id == QUICKSTART_CONNECTOR_ID),
        "the quickstart's connector does not run on a credential minted for its connector"
    );
    ensure!(
        bc.status.as_ref().and_then(|s| s.sync.as_ref()).is_some_and(|s| s.last_completed_at.is_some()),
        "the quickstart's connector reports no completed sync: {:?}",
        bc.status
    );
    operator.stop().await;
    Ok(())
}

/// The commands of a block: a line ending in `\` goes on with the next, and a here-document
/// (`<<'EOF'`) runs to its terminator.
fn commands_of(block: &str) -> Vec<String> {
    let (mut out, mut current, mut heredoc) = (Vec::new(), String::new(), None::<String>);
    for line in block.lines() {
        current.push_str(line);
        current.push('\n');
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some((_, tag)) = line.split_once("<<") {
            heredoc = Some(tag.trim().trim_matches(['\'', '"', '-']).to_owned());
        } else if !line.trim_end().ends_with('\\') && !line.trim().is_empty() {
            out.push(std::mem::take(&mut current));
        } else if line.trim().is_empty() {
            current.clear();
        }
    }
    out
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

/// `config/namespaced` as docs/install.md installs it: the operator, with exactly those permissions,
/// reconciles a connector in a watched namespace, leaves one elsewhere alone, and cannot read a
/// Secret outside the watched namespaces (checked by impersonation and with its own token).
pub(crate) async fn namespaced_install_reads_no_secret_outside_its_namespaces(
    env: &mut Env,
) -> anyhow::Result<()> {
    let Some(fresh) = Fresh::start("namespaced_install_reads_no_secret_outside_its_namespaces").await? else {
        return Ok(());
    };
    let blocks: Vec<String> = sh_blocks(&read("docs/install.md")?, Some("From a checkout"))
        .into_iter()
        .filter(|b| b.contains("config/namespaced"))
        .collect();
    ensure!(!blocks.is_empty(), "docs/install.md no longer shows config/namespaced");
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

    okta_app(&fresh.client, "identity").await?;
    apply_value(&fresh.client, connector("watched", "okta", json!({})), Some("identity")).await?;
    okta_app(&fresh.client, "elsewhere").await?;
    apply_value(&fresh.client, connector("unwatched", "okta", json!({})), Some("elsewhere")).await?;
    wait_ready(&fresh.client, "identity", "watched").await?;
    namespaced_tenant_mints(env, &fresh.client).await?;
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

/// A namespaced install uses namespaced tenants: a `ConductorOneTenant` in a watched namespace
/// mints a managed connector's credential there, with the Role's permissions alone, and its status
/// says it is Ready with one connector.
async fn namespaced_tenant_mints(env: &Env, client: &Client) -> anyhow::Result<()> {
    let (app, connector_id) = ("app-namespaced-tenant", "conn-namespaced-tenant");
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal("e2e-namespaced-tenant");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-team"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(client, secret, Some("identity")).await?;
    let tenant = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ConductorOneTenant",
        "metadata": {"name": "team"}, "spec": {"apiCredentialsSecretRef": {"name": "c1-team"}}});
    apply_value(client, tenant, Some("identity")).await?;
    let mut bc = connector("tenanted", "okta", json!({}));
    bc["spec"]["credentials"] = json!({"managed": {}});
    bc["spec"]["conductorOne"] =
        json!({"tenantRef": {"name": "team"}, "appId": app, "connectorId": connector_id});
    apply_value(client, bc, Some("identity")).await?;
    let ready = wait_ready(client, "identity", "tenanted").await?;
    ensure!(
        ready.status.and_then(|s| s.credentials).and_then(|c| c.credential_id).is_some(),
        "no credential minted through the namespaced tenant"
    );
    let tenants: Api<baton_operator::api::ConductorOneTenant> = Api::namespaced(client.clone(), "identity");
    eventually("the namespaced tenant to be Ready with its connector", WAIT, || async {
        let status = tenants.get("team").await?.status.unwrap_or_default();
        let ready = baton_operator::api::conditions::is_true(&status.conditions, "Ready");
        Ok((ready && status.connectors == 1).then_some(()))
    })
    .await
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
