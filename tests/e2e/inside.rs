//! Inside the pod: connectors that the suite's kubelet executes (images under `e2e.local`, see
//! `support/kubelet/mod.rs`), the stand-in connector in them. Each case checks what a person would:
//! which credential the process uses, what it wrote and where, and what `kubectl get bc` says when it
//! does not start.
//!
//! These cases need the kubelet to execute containers (root, for mount namespaces); where it cannot,
//! they are reported as skipped, with the reason.

use super::*;
use support::kubelet::ProcessRecord;

/// The stand-in image for baton-okta on SDK `version`.
pub(crate) fn standin(version: &str) -> Value {
    json!({"repository": "e2e.local/baton-okta", "tag": version})
}

pub(crate) fn require_execution(env: &Env) -> anyhow::Result<()> {
    env.kubelet
        .isolation()
        .map_err(|why| anyhow::Error::new(Skipped(format!("the kubelet cannot execute containers: {why}"))))
}

/// The processes the kubelet runs for the connector's pods in `ns` now.
fn running(env: &Env, ns: &str) -> Vec<ProcessRecord> {
    env.kubelet.processes().into_iter().filter(|p| p.namespace == ns && p.ended.is_none()).collect()
}

/// The pid the stand-in puts in its `User-Agent`.
fn exchanged_by(agent: &str) -> Option<u32> {
    agent.split("(pid ").nth(1)?.trim_end_matches(')').parse().ok()
}

/// The client id in a credential Secret the operator made.
async fn client_id_in(env: &Env, ns: &str, secret: &str) -> anyhow::Result<String> {
    let s: k8s_openapi::api::core::v1::Secret = Api::namespaced(env.client.clone(), ns).get(secret).await?;
    let data = s.data.unwrap_or_default();
    let id = data.get("BATON_CLIENT_ID").context("no BATON_CLIENT_ID")?;
    Ok(String::from_utf8(id.0.clone())?)
}

/// Waits until one process runs in `ns` and has exchanged `client_id` for a token; returns it.
async fn authenticated(env: &Env, ns: &str, client_id: &str) -> anyhow::Result<ProcessRecord> {
    eventually(&format!("a process in {ns} authenticated as {client_id}"), WAIT, || async {
        let procs = running(env, ns);
        let [p] = procs.as_slice() else { return Ok(None) };
        let used = env
            .c1
            .token_exchanges()
            .iter()
            .any(|x| x.client_id == client_id && exchanged_by(&x.user_agent) == Some(p.pid));
        Ok((used && p.client_id.as_deref() == Some(client_id)).then(|| p.clone()))
    })
    .await
}

pub(crate) async fn managed_connector_runs_on_the_minted_credential_through_a_rotation(
    env: &mut Env,
) -> anyhow::Result<()> {
    require_execution(env)?;
    ensure_operator(env).await?;
    let ns = "inside-managed";
    let (app, connector_id) = ("app-inside", "conn-inside");
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal("inside-operator");
    namespace(&env.client, ns, json!({"pod-security.kubernetes.io/enforce": "restricted"})).await?;
    let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, api_secret, Some(ns)).await?;
    okta_app(&env.client, ns).await?;
    let mut bc = connector("okta", "okta", json!({}));
    bc["spec"] = json!({
        "connector": "okta",
        "image": standin("v0.25.0"),
        "secretRefs": [{"name": "okta-app"}],
        "credentials": {"managed": {"rotation": {"interval": "720h", "gracePeriod": "2s"}}},
        "conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id},
    });
    apply_value(&env.client, bc, Some(ns)).await?;
    let ready = wait_ready(&env.client, ns, "okta").await?;
    let first = ready.status.and_then(|s| s.credentials).context("no credentials status")?;
    let first_secret = first.secret_name.clone().context("no credential Secret")?;
    let first_client = client_id_in(env, ns, &first_secret).await?;
    let before = authenticated(env, ns, &first_client).await?;
    let exchange =
        env.c1.token_exchanges().into_iter().find(|x| exchanged_by(&x.user_agent) == Some(before.pid));
    ensure!(
        exchange.and_then(|x| x.credential_id) == first.credential_id,
        "the process did not authenticate with the credential the operator minted ({:?})",
        first.credential_id
    );

    // A rotation: a new process on the new credential; the old one revoked only once no process
    // that holds it runs.
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    let annotate = json!({"metadata": {"annotations": {"baton.conductorone.com/rotate-requested-at": "2026-12-04T12:00:00Z"}}});
    api.patch("okta", &PatchParams::default(), &Patch::Merge(&annotate)).await?;
    let old_id = first.credential_id.clone().unwrap_or_default();
    let rotated = eventually("the rotation to finish", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        let c = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
        Ok((c.credential_id.as_deref() != Some(old_id.as_str()) && c.rotation.is_none()).then_some(c))
    })
    .await?;
    let new_client = client_id_in(env, ns, rotated.secret_name.as_deref().context("no Secret")?).await?;
    let after = authenticated(env, ns, &new_client).await?;
    ensure!(after.pid != before.pid, "the rotation did not restart the connector");
    let revoked = env
        .c1
        .credential(&old_id)
        .and_then(|c| c.revoked_at)
        .context("the old credential was not revoked")?;
    for p in env.kubelet.processes().iter().filter(|p| p.client_id.as_deref() == Some(first_client.as_str()))
    {
        let (ended, _) = p.ended.context("a process on the old credential still runs")?;
        ensure!(
            ended <= revoked,
            "pid {} ran on the old credential until {ended}, revoked at {revoked}",
            p.pid
        );
    }
    // Nothing authenticated with the old credential once it was revoked (the fake refuses it, and
    // the running process is the new one).
    ensure!(
        !env.c1.token_exchanges().iter().any(|x| x.client_id == first_client && x.at > revoked),
        "the old credential was used after its revocation"
    );
    println!(
        "    pid {} on credential 1, pid {} on credential 2; credential 1 revoked at {revoked}",
        before.pid, after.pid
    );
    clean_up(env, &[ns]).await
}

/// A namespace with what a stand-in connector needs: `c1` (a credential the fake ConductorOne
/// accepts, so the process starts in service mode) and `okta-app` with `api_token` as baton-okta's
/// API token.
pub(crate) async fn standin_namespace(env: &mut Env, ns: &str, api_token: &str) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    namespace(&env.client, ns, json!({"pod-security.kubernetes.io/enforce": "restricted"})).await?;
    let p = env.c1.register_principal(&format!("{ns}-connector"));
    let c1 = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1"},
        "stringData": {"BATON_CLIENT_ID": p.client_id, "BATON_CLIENT_SECRET": p.client_secret}});
    apply_value(&env.client, c1, Some(ns)).await?;
    apply_value(&env.client, app_secret("okta-app", api_token), Some(ns)).await?;
    Ok(())
}

/// A baton-okta BatonConnector on the stand-in image of SDK `version`, with `extra` in its spec.
pub(crate) fn standin_connector(name: &str, version: &str, extra: Value) -> Value {
    let mut spec = json!({"image": standin(version)});
    spec.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    connector(name, "okta", spec)
}

/// The pods of connector `name` in `ns`.
pub(crate) async fn pods_of(env: &Env, ns: &str, name: &str) -> anyhow::Result<Vec<Pod>> {
    list(&env.client, ns, &format!("app.kubernetes.io/instance={name}")).await
}

/// Waits until `Ready` is False with `reason`; returns the resource and `Ready`'s message.
pub(crate) async fn wait_reason(
    env: &Env,
    ns: &str,
    name: &str,
    reason: &str,
    within: Duration,
) -> anyhow::Result<(BatonConnector, String)> {
    let found = eventually(&format!("{ns}/{name} Ready=False {reason}"), within, || async {
        let bc = get_bc(&env.client, ns, name).await?;
        let ready =
            bc.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned());
        Ok(ready.filter(|c| c.status == "False" && c.reason == reason).map(|c| (bc, c.message)))
    })
    .await;
    match found {
        Ok(f) => Ok(f),
        Err(e) => {
            let bc = get_bc(&env.client, ns, name).await.ok();
            let ready = bc.and_then(|b| b.status).map(|s| {
                s.conditions
                    .into_iter()
                    .filter(|c| c.type_ == "Ready")
                    .map(|c| format!("{}: {}", c.reason, c.message))
                    .collect::<Vec<_>>()
            });
            let logs: Vec<String> = pods_of(env, ns, name)
                .await
                .unwrap_or_default()
                .iter()
                .map(|p| env.kubelet.logs(p, "baton-okta"))
                .collect();
            Err(e.context(format!("Ready was {ready:?}; the connector's logs: {logs:?}")))
        }
    }
}

/// The `kubectl get bc` line of `name` in `ns`, checked to have the POD column.
pub(crate) fn kubectl_line(env: &Env, ns: &str, name: &str) -> anyhow::Result<String> {
    let table = kubectl(env, &["get", "batonconnectors", "-n", ns])?;
    ensure!(table.lines().next().is_some_and(|h| h.contains("POD")), "no POD column:\n{table}");
    let line = table.lines().find(|l| l.split_whitespace().next() == Some(name));
    Ok(line.context(format!("no line for {name}:\n{table}"))?.to_string())
}

/// The operator's Deployment as it was before the writable working directory: no `workingDir`, no
/// work volume and no `TMPDIR`, the root filesystem still read-only; under labels of its own so that
/// neither the operator nor its ReplicaSet controller mistakes it for the connector's.
fn before_the_work_volume(deployment: &Deployment, name: &str) -> anyhow::Result<Value> {
    let mut d = serde_json::to_value(deployment)?;
    d["metadata"] = json!({"name": name, "labels": {"e2e-case": name}});
    d["status"] = Value::Null;
    d["spec"]["selector"] = json!({"matchLabels": {"e2e-case": name}});
    let template = &mut d["spec"]["template"];
    template["metadata"]["labels"] = json!({"e2e-case": name});
    let pod = template["spec"].as_object_mut().context("no pod spec")?;
    pod.remove("volumes");
    let container = pod["containers"][0].as_object_mut().context("no container")?;
    ensure!(
        container["securityContext"]["readOnlyRootFilesystem"] == json!(true),
        "the root filesystem is writable"
    );
    container.remove("workingDir");
    container.remove("volumeMounts");
    if let Some(env) = container.get_mut("env").and_then(Value::as_array_mut) {
        env.retain(|e| e["name"] != "TMPDIR");
    }
    Ok(d)
}

/// Read-only root filesystem: the connector's task writes `debug.log` in its working directory. In
/// the operator's Deployment that is the work volume and the task succeeds; in the same Deployment
/// without it (as before issue #16 item 1) the working directory is the image's `/home/nonroot`, on
/// the read-only root, and the task fails with the SDK's error, which only the log shows.
pub(crate) async fn read_only_root_fails_without_the_work_volume_and_passes_with_it(
    env: &mut Env,
) -> anyhow::Result<()> {
    require_execution(env)?;
    let ns = "inside-rofs";
    standin_namespace(env, ns, "t").await?;
    apply_value(&env.client, standin_connector("okta", "v0.25.0", json!({})), Some(ns)).await?;
    wait_ready(&env.client, ns, "okta").await?;
    let pods = pods_of(env, ns, "okta").await?;
    let pod = pods.first().context("no pod")?;
    let logs = eventually("the task to finish", WAIT, || async {
        let logs = env.kubelet.logs(pod, "baton-okta");
        Ok(logs.contains("task").then_some(logs))
    })
    .await?;
    ensure!(logs.contains("task done") && !logs.contains("task failed"), "the operator's Deployment: {logs}");
    let debug_log = env.kubelet.volume_dir(pod, "work").join("debug.log");
    ensure!(debug_log.is_file(), "debug.log is not on the work volume ({})", debug_log.display());

    let name = "okta-before-item-1";
    let deployment: Deployment = Api::namespaced(env.client.clone(), ns).get("okta").await?;
    let selector = format!("e2e-case={name}");
    let root = env.operator.log_path().parent().map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    let kubelet = support::kubelet::Kubelet::start(env.client.clone(), &selector, root.join("kubelet-rofs"));
    apply_value(&env.client, before_the_work_volume(&deployment, name)?, Some(ns)).await?;
    let logs = eventually("the task to fail on the read-only root", WAIT, || async {
        let pods: Vec<Pod> = list(&env.client, ns, &selector).await?;
        let logs: String = pods.iter().map(|p| kubelet.logs(p, "baton-okta")).collect();
        Ok(logs.contains("task failed").then_some(logs))
    })
    .await?;
    ensure!(
        logs.contains("open debug.log: read-only file system")
            || logs.contains("stat debug.log: permission denied"),
        "not the SDK's error: {logs}"
    );
    drop(kubelet);
    clean_up(env, &[ns]).await
}

/// OneShot on the stand-in: a run's connector (an init container) syncs into `/data`, the uploader
/// (`e2e.local/busybox`) copies the file into the claim under a temporary name and renames it; the
/// file is on the claim's disk, whole. A run whose connector fails shows its pod's reason and the
/// connector's words.
pub(crate) async fn oneshot_run_writes_its_file_into_the_claim_and_a_failed_run_names_its_reason(
    env: &mut Env,
) -> anyhow::Result<()> {
    require_execution(env)?;
    let ns = "inside-oneshot";
    standin_namespace(env, ns, "t").await?;
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "uploads"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(env.client.clone(), ns);
    claims
        .patch("uploads", &PatchParams::apply(cluster::TEST_MANAGER).force(), &Patch::Apply(&claim))
        .await?;
    let bc = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector", "metadata": {"name": "okta"},
        "spec": {"connector": "okta", "mode": "OneShot", "schedule": "0 3 * * *", "image": standin("v0.25.0"),
            "secretRefs": [{"name": "okta-app"}],
            "output": {"persistentVolumeClaim": {"claimName": "uploads"}, "uploaderImage": "e2e.local/busybox:stable"},
            "runs": {"backoffLimit": 0, "activeDeadlineSeconds": 600}}});
    apply_value(&env.client, bc, Some(ns)).await?;
    wait_ready(&env.client, ns, "okta").await?;
    oneshot::request_run(env, ns, "okta", "2026-12-04T12:00:00Z").await?;
    eventually("the run's success in status", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        Ok(bc.status.and_then(|s| s.schedule).and_then(|s| s.last_successful_time).map(|_| ()))
    })
    .await?;
    let dir = env.kubelet.claim_dir(ns, "uploads").join("okta");
    let file =
        std::fs::read(dir.join("sync.c1z")).with_context(|| format!("no sync.c1z in {}", dir.display()))?;
    ensure!(
        file == support::kubelet::connector::sync_content("okta"),
        "the file on the claim is not the whole sync ({} bytes)",
        file.len()
    );
    let names: Vec<String> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    ensure!(names == ["sync.c1z"], "left in the claim: {names:?}");

    // The token emptied: the next run's connector refuses to start.
    let template_hash = |c: &k8s_openapi::api::batch::v1::CronJob| {
        c.spec
            .job_template
            .spec
            .as_ref()
            .and_then(|j| j.template.metadata.as_ref())
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default()
            .get("baton.conductorone.com/config-hash")
            .cloned()
    };
    let cronjobs: Api<k8s_openapi::api::batch::v1::CronJob> = Api::namespaced(env.client.clone(), ns);
    let before = template_hash(&cronjobs.get("okta").await?);
    apply_value(&env.client, app_secret("okta-app", ""), Some(ns)).await?;
    eventually("the CronJob to take the new settings", WAIT, || async {
        Ok((template_hash(&cronjobs.get("okta").await?) != before).then_some(()))
    })
    .await?;
    oneshot::request_run(env, ns, "okta", "2026-12-04T12:10:00Z").await?;
    let (_, message) = wait_reason(env, ns, "okta", "ContainerFailed", WAIT).await?;
    ensure!(
        message.contains("container baton-okta exited with code 1") && message.contains("field api-token"),
        "Ready's message: {message}"
    );
    clean_up(env, &[ns]).await
}

/// Deletes the case's namespaces and waits until the kubelet has stopped every process of theirs, so
/// that no connector keeps restarting (and the operator writing its status) during later cases.
pub(crate) async fn clean_up(env: &Env, namespaces: &[&str]) -> anyhow::Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    for ns in namespaces {
        api.delete(ns, &DeleteParams::default()).await?;
    }
    eventually("the connectors' processes to stop", WAIT, || async {
        let left = env
            .kubelet
            .processes()
            .into_iter()
            .filter(|p| p.ended.is_none() && namespaces.contains(&p.namespace.as_str()));
        Ok((left.count() == 0).then_some(()))
    })
    .await
}
