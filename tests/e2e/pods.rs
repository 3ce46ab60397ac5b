//! The pod's own answer: what the kubelet reports about a connector pod reaches the status, the
//! `kubectl get` columns and the events within seconds, redacted.

use super::*;

/// What the kubelet writes for a connector that keeps exiting, with a credential in its last words.
fn crash_loop_status(image: &str) -> Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let condition = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": now});
    json!({"status": {
        "phase": "Running",
        "conditions": [condition("PodScheduled", "True"), condition("Initialized", "True"),
                       condition("ContainersReady", "False"), condition("Ready", "False")],
        "containerStatuses": [{
            "name": "baton-okta", "image": image, "imageID": "", "ready": false, "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now,
                "message": "starting sync\nfatal: okta login failed: client_secret=hunter2-do-not-show"}},
        }],
    }})
}

pub(crate) async fn crash_loop_shows_in_kubectl_get_within_30s(env: &mut Env) -> anyhow::Result<()> {
    let ns = "crash";
    ready_connector(env, ns, "okta", json!({})).await?;
    let pods: Vec<Pod> = list(&env.client, ns, "app.kubernetes.io/instance=okta").await?;
    ensure!(pods.len() == 1, "one connector pod, found {}", pods.len());
    let pod = &pods[0];
    let policy = pod.spec.as_ref().and_then(|s| s.containers[0].termination_message_policy.clone());
    ensure!(policy.as_deref() == Some("FallbackToLogsOnError"), "terminationMessagePolicy {policy:?}");
    let image = pod.spec.as_ref().and_then(|s| s.containers[0].image.clone()).unwrap_or_default();

    let api: Api<Pod> = Api::namespaced(env.client.clone(), ns);
    let started = std::time::Instant::now();
    api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&crash_loop_status(&image)))
        .await?;
    let bc = eventually("Ready=False CrashLoopBackOff", Duration::from_secs(30), || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        Ok((condition(&bc, "Ready") == Some(("False".into(), "CrashLoopBackOff".into()))).then_some(bc))
    })
    .await?;
    let took = started.elapsed();
    let status = bc.status.clone().unwrap_or_default();
    let message = status.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.message.clone());
    let message = message.unwrap_or_default();
    ensure!(
        message.contains("exit 1, 5 restarts") && message.contains("okta login failed"),
        "Ready's message: {message}"
    );
    ensure!(
        condition(&bc, "Stalled") == Some(("True".into(), "CrashLoopBackOff".into())),
        "a person must act"
    );
    let short = status.workload.and_then(|w| w.pod).unwrap_or_default();
    ensure!(short.starts_with("CrashLoopBackOff: exit 1, 5 restarts: "), "status.workload.pod: {short}");

    let table = kubectl(env, &["get", "batonconnectors", "-n", ns])?;
    ensure!(table.lines().next().is_some_and(|h| h.contains("POD")), "no POD column:\n{table}");
    ensure!(table.contains("CrashLoopBackOff: exit 1, 5 restarts"), "kubectl get:\n{table}");
    ensure!(took < Duration::from_secs(30), "took {took:?}");

    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), ns);
    let warned = eventually("a CrashLoopBackOff warning", WAIT, || async {
        let all = events.list(&Default::default()).await?.items;
        Ok(all.into_iter().find(|e| e.reason.as_deref() == Some("CrashLoopBackOff")))
    })
    .await?;
    ensure!(warned.type_.as_deref() == Some("Warning"));
    // The credential in the last words reaches neither the status nor the event nor kubectl.
    let yaml = kubectl(env, &["get", "batonconnector", "okta", "-n", ns, "-o", "yaml"])?;
    for (what, text) in
        [("status", yaml.as_str()), ("event", warned.note.as_deref().unwrap_or_default()), ("table", &table)]
    {
        ensure!(!text.contains("hunter2"), "the client secret reached the {what}");
    }
    println!("    CrashLoopBackOff in the status {:.1}s after the kubelet reported it", took.as_secs_f64());
    Ok(())
}
