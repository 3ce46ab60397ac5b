//! Connectors that do not start, run by the suite's kubelet: what `kubectl get bc` and `Ready` say,
//! from the pod's own answer, and how soon.

use super::*;
use inside::{
    clean_up, kubectl_line, pods_of, require_execution, standin_connector, standin_namespace, wait_reason,
};

const SOON: Duration = Duration::from_secs(30);

/// A required field missing (present but empty in the Secret, which the operator cannot tell from
/// a value: it checks which keys the Secret has, not what they hold), an image that does not exist,
/// and a connector that needs more memory than its limit: each is named, in `kubectl get bc` too.
pub(crate) async fn connectors_that_cannot_start_say_why_in_kubectl_get(env: &mut Env) -> anyhow::Result<()> {
    require_execution(env)?;
    ensure_operator(env).await?;
    let started = std::time::Instant::now();
    standin_namespace(env, "broken-field", "").await?;
    apply_value(&env.client, standin_connector("okta", "v0.25.0", json!({})), Some("broken-field")).await?;
    standin_namespace(env, "broken-image", "t").await?;
    let missing = json!({"image": {"repository": "e2e.local/missing/baton-okta", "tag": "v0.25.0"}});
    apply_value(&env.client, standin_connector("okta", "v0.25.0", missing), Some("broken-image")).await?;
    standin_namespace(env, "broken-oom", "t").await?;
    let hungry = json!({
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "env": [{"name": "STANDIN_ALLOCATE_MIB", "value": "512"}],
    });
    apply_value(&env.client, standin_connector("okta", "v0.25.0", hungry), Some("broken-oom")).await?;

    let (_, message) = wait_reason(env, "broken-field", "okta", "CrashLoopBackOff", SOON).await?;
    let took = started.elapsed();
    let sdk = "field api-token of type string is marked as required but it has a zero-value";
    ensure!(message.contains(sdk) && message.contains("exit 1"), "Ready's message: {message}");
    let line = kubectl_line(env, "broken-field", "okta")?;
    ensure!(
        line.contains("CrashLoopBackOff: exit 1") && line.contains("api-token"),
        "kubectl get bc: {line}"
    );
    ensure!(took < SOON, "CrashLoopBackOff took {took:?}");
    // The kubelet starts it again after each back-off, and it says the same each time.
    let pod = pods_of(env, "broken-field", "okta").await?.into_iter().next().context("no pod")?;
    eventually("the connector to be started again", SOON, || async {
        Ok((env.kubelet.logs(&pod, "baton-okta").matches(sdk).count() >= 3).then_some(()))
    })
    .await?;
    // What the kubelet reported: the last run's exit, and its log's end as the termination message.
    let pods = pods_of(env, "broken-field", "okta").await?;
    let statuses =
        pods.iter().flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()));
    let last = statuses.clone().find_map(|c| c.last_state.clone()?.terminated).context("no lastState")?;
    ensure!(last.exit_code == 1 && last.reason.as_deref() == Some("Error"), "{last:?}");
    ensure!(
        last.message.as_deref().is_some_and(|m| m.contains(&format!("Error: errors found:\n{sdk}"))),
        "{last:?}"
    );
    println!("    the missing field in kubectl get bc {:.1}s after the apply", took.as_secs_f64());

    // The pull fails (ErrImagePull, with the registry's answer), then the kubelet backs off
    // (ImagePullBackOff, a stall): both named, each in an event.
    let image = "e2e.local/missing/baton-okta:v0.25.0";
    let (_, message) = wait_reason(env, "broken-image", "okta", "ImagePullBackOff", SOON).await?;
    ensure!(message.contains(image) && message.contains("backing off"), "Ready's message: {message}");
    let line = kubectl_line(env, "broken-image", "okta")?;
    ensure!(line.contains(&format!("ImagePullBackOff: {image}")), "kubectl get bc: {line}");
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), "broken-image");
    let events = events.list(&Default::default()).await?.items;
    let pull = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("ErrImagePull"))
        .context("no ErrImagePull event")?;
    let note = pull.note.clone().unwrap_or_default();
    ensure!(note.contains(image) && note.contains("not found"), "ErrImagePull event: {note}");

    let (_, message) = wait_reason(env, "broken-oom", "okta", "OOMKilled", SOON).await?;
    ensure!(
        message.contains("limit (64Mi") && message.contains("raise spec.resources.limits.memory"),
        "{message}"
    );
    let line = kubectl_line(env, "broken-oom", "okta")?;
    ensure!(line.contains("OOMKilled: limit 64Mi"), "kubectl get bc: {line}");
    let pods = pods_of(env, "broken-oom", "okta").await?;
    let last = pods
        .iter()
        .flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
        .find_map(|c| c.last_state.clone()?.terminated);
    let last = last.context("no lastState.terminated")?;
    ensure!((last.exit_code, last.reason.as_deref()) == (137, Some("OOMKilled")), "{last:?}");
    clean_up(env, &["broken-field", "broken-image", "broken-oom"]).await
}

/// A key removed from the credentials Secret under a running connector: the operator holds the
/// rollout and names the key; when the container next starts (here the process dies), the kubelet
/// cannot make its environment and the pod says which key, in `kubectl get bc`.
pub(crate) async fn a_key_removed_under_a_running_connector_is_named_at_its_restart(
    env: &mut Env,
) -> anyhow::Result<()> {
    require_execution(env)?;
    let ns = "broken-key";
    standin_namespace(env, ns, "t").await?;
    apply_value(&env.client, standin_connector("okta", "v0.25.0", json!({})), Some(ns)).await?;
    wait_ready(&env.client, ns, "okta").await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), ns);
    let remove = json!([{"op": "remove", "path": "/data/BATON_CLIENT_SECRET"}]);
    secrets.patch("c1", &PatchParams::default(), &Patch::<()>::Json(serde_json::from_value(remove)?)).await?;
    let (_, message) = wait_reason(env, ns, "okta", "SecretKeyMissing", WAIT).await?;
    ensure!(message.contains("BATON_CLIENT_SECRET"), "Ready's message: {message}");
    let running = env.kubelet.processes().into_iter().find(|p| p.namespace == ns && p.ended.is_none());
    let running = running.context("no running connector process")?;
    support::kubelet::isolate::kill(running.pid);
    let kubelet_says = format!("couldn't find key BATON_CLIENT_SECRET in Secret {ns}/c1");
    let line = eventually("the pod's CreateContainerConfigError in kubectl get bc", SOON, || async {
        let line = kubectl_line(env, ns, "okta")?;
        Ok(line.contains("CreateContainerConfigError").then_some(line))
    })
    .await?;
    ensure!(line.contains(&kubelet_says), "kubectl get bc: {line}");
    clean_up(env, &[ns]).await
}

/// `spec.healthCheck.enabled` on a connector whose SDK predates the health server (v0.7.5): the probes
/// fail, and the status says why and what to do. Beside it, the same on v0.7.6 becomes Ready: its
/// server, bound to 0.0.0.0, answers the kubelet on the pod IP.
pub(crate) async fn health_checks_on_an_sdk_before_v0_7_6_say_why_the_probes_fail(
    env: &mut Env,
) -> anyhow::Result<()> {
    require_execution(env)?;
    let enabled = json!({"healthCheck": {"enabled": true}});
    for (ns, version) in [("probe-old", "v0.7.5"), ("probe-new", "v0.7.6")] {
        standin_namespace(env, ns, "t").await?;
        apply_value(&env.client, standin_connector("okta", version, enabled.clone()), Some(ns)).await?;
    }
    wait_ready(&env.client, "probe-new", "okta").await?;
    let pods = pods_of(env, "probe-new", "okta").await?;
    let ip = pods.first().and_then(|p| p.status.as_ref()?.pod_ip.clone()).context("no pod IP")?;
    let logs = pods.iter().map(|p| env.kubelet.logs(p, "baton-okta")).collect::<String>();
    ensure!(logs.contains(&format!("health check server starting on {ip}:8081")), "{logs}");
    loopback_is_not_reached(env, &pods_of(env, "probe-new", "okta").await?).await?;

    let (_, message) = wait_reason(env, "probe-old", "okta", "ProbeFailing", PROBE_WAIT).await?;
    ensure!(
        message.contains("startup probe still fails") && message.contains("baton-sdk v0.7.6 or newer"),
        "{message}"
    );
    ensure!(message.contains("spec.healthCheck.enabled to false"), "what to do is missing: {message}");
    let line = kubectl_line(env, "probe-old", "okta")?;
    ensure!(line.contains("ProbeFailing: startup probe failing"), "kubectl get bc: {line}");
    // The old SDK's process runs (it ignores BATON_HEALTH_CHECK): it is the probes that fail.
    let pods = pods_of(env, "probe-old", "okta").await?;
    let logs = pods.iter().map(|p| env.kubelet.logs(p, "baton-okta")).collect::<String>();
    ensure!(logs.contains("startup Hello succeeded") && !logs.contains("health check server"), "{logs}");
    clean_up(env, &["probe-old", "probe-new"]).await
}

/// The v0.7.6 connector's pod again, by hand, with the SDK's default bind address (127.0.0.1): the
/// server listens on the pod's loopback, where the kubelet's `httpGet` probes do not reach, and the
/// pod stays unready; the same pod with `exec` probes through the connector's own `health-check`
/// subcommand (which runs inside the pod, beside the server) becomes ready. (`spec.env` may not set
/// `BATON_HEALTH_CHECK*`, so these are copies of the pod.)
async fn loopback_is_not_reached(env: &Env, pods: &[Pod]) -> anyhow::Result<()> {
    let mut pod = serde_json::to_value(pods.first().context("no pod")?)?;
    pod["metadata"] = json!({"name": "okta-on-loopback", "labels": {"e2e-case": "loopback"}});
    pod["status"] = Value::Null;
    let vars = pod["spec"]["containers"][0]["env"].as_array_mut().context("no env")?;
    vars.retain(|e| e["name"] != "BATON_HEALTH_CHECK_BIND_ADDRESS");
    let mut exec = pod.clone();
    exec["metadata"]["name"] = json!("okta-exec-probes");
    let probe = |endpoint: &str| json!({"exec": {"command": ["/baton-okta", "health-check", format!("--endpoint={endpoint}")]}, "periodSeconds": 2});
    let container = &mut exec["spec"]["containers"][0];
    container["startupProbe"] = probe("live");
    container["livenessProbe"] = probe("live");
    container["readinessProbe"] = probe("ready");
    let root = env.operator.log_path().parent().map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    let kubelet = support::kubelet::Kubelet::start(
        env.client.clone(),
        "e2e-case=loopback",
        root.join("kubelet-loopback"),
    );
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "probe-new");
    api.create(&PostParams::default(), &serde_json::from_value(pod)?).await?;
    api.create(&PostParams::default(), &serde_json::from_value(exec)?).await?;
    let listening = eventually("the loopback pod's server to start", WAIT, || async {
        let p = api.get("okta-on-loopback").await?;
        let logs = kubelet.logs(&p, "baton-okta");
        Ok(logs.contains("health check server starting on 127.78.").then_some(p))
    })
    .await?;
    let ready = |p: &Pod| {
        let c = p.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        c.first().is_some_and(|c| c.ready)
    };
    eventually("the pod with exec probes to be ready", Duration::from_secs(30), || async {
        Ok(ready(&api.get("okta-exec-probes").await?).then_some(()))
    })
    .await?;
    // Two startup probes (at 0.5 s and 10.5 s) have failed by then.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let p = api.get("okta-on-loopback").await?;
    let status = p.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
    let c = status.first().context("no container status")?;
    ensure!(
        c.state.as_ref().is_some_and(|s| s.running.is_some()) && !c.ready && c.started == Some(false),
        "{c:?}"
    );
    let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).context("no pod IP")?;
    ensure!(ip.starts_with("127.77.") && listening.uid() == p.uid(), "pod IP {ip}");
    for name in ["okta-on-loopback", "okta-exec-probes"] {
        api.delete(name, &DeleteParams::default()).await?;
    }
    drop(kubelet);
    Ok(())
}

/// The operator reports failing probes after a 30 s grace; the startup probe's first tries come on
/// top.
const PROBE_WAIT: Duration = Duration::from_secs(60);

/// A connector that writes more into its working directory than `spec.workDir.sizeLimit`: the
/// kubelet evicts the pod, saying which volume and which limit.
pub(crate) async fn a_work_volume_over_its_size_limit_evicts_the_pod(env: &mut Env) -> anyhow::Result<()> {
    require_execution(env)?;
    let ns = "broken-disk";
    standin_namespace(env, ns, "t").await?;
    let full =
        json!({"workDir": {"sizeLimit": "64Mi"}, "env": [{"name": "STANDIN_FILL_MIB", "value": "80"}]});
    apply_value(&env.client, standin_connector("okta", "v0.25.0", full), Some(ns)).await?;
    let evicted = eventually("a pod evicted for its work volume", WAIT, || async {
        let pods = pods_of(env, ns, "okta").await?;
        Ok(pods.into_iter().find(|p| p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")))
    })
    .await?;
    let status = evicted.status.unwrap_or_default();
    let message = status.message.unwrap_or_default();
    ensure!(status.phase.as_deref() == Some("Failed"), "phase {:?}", status.phase);
    ensure!(message.contains("Usage of EmptyDir volume \"work\" exceeds the limit \"64Mi\""), "{message}");
    let killed = status.container_statuses.unwrap_or_default();
    let code = killed.first().and_then(|c| c.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code));
    ensure!(code == Some(137), "the evicted pod's container: {killed:?}");
    clean_up(env, &[ns]).await
}
