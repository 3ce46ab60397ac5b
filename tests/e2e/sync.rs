//! Sync status from ConductorOne and what kstatus reads from it.

use super::*;

pub(crate) async fn sync_status_shows_in_status_columns_events_and_metrics(
    env: &mut Env,
) -> anyhow::Result<()> {
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

pub(crate) async fn kstatus_reads_progress_current_and_failed(env: &mut Env) -> anyhow::Result<()> {
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
    okta_app(&env.client, "kstatus").await?;
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
    okta_app(&env.client, "kstatus").await?;
    apply_value(&env.client, connector("bad", "okta", spec), Some("kstatus")).await?;
    eventually("kstatus Failed", WAIT, || async {
        Ok((read("bad").await? == KStatus::Failed).then_some(()))
    })
    .await?;
    Ok(())
}

/// Sync now and suspend reach ConductorOne once each: ForceSync per request value, pause while
/// suspended, resume after, with what ConductorOne then reports in status.
pub(crate) async fn sync_now_and_suspend_reach_conductorone(env: &mut Env) -> anyhow::Result<()> {
    let (ns, app, connector_id) = ("actions", "app-actions", "conn-actions");
    synced_connector(env, ns, app, connector_id).await?;
    wait_ready(&env.client, ns, "okta").await?;
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    let action = |a: &str| format!("/api/v1/apps/{app}/connectors/{connector_id}/{a}");
    let annotate = json!({"metadata": {"annotations": {"baton.conductorone.com/sync-requested-at": "2026-11-30T13:00:00Z"}}});
    api.patch("okta", &PatchParams::default(), &Patch::Merge(&annotate)).await?;
    eventually("ConductorOne to queue a sync", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        let handled = bc.status.as_ref().and_then(|s| s.handled_requests.sync.clone());
        Ok((handled.as_deref() == Some("2026-11-30T13:00:00Z")).then_some(()))
    })
    .await?;
    // The fake marks a queued sync running; the poller reads it soon after.
    eventually("the running sync in status", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        let state = bc.status.and_then(|s| s.sync).and_then(|s| s.state);
        Ok((state.as_deref() == Some("Running")).then_some(()))
    })
    .await?;
    ensure!(env.c1.count("POST", &action("force_sync")) == 1, "one ForceSync per request");

    api.patch("okta", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"suspend": true}}))).await?;
    let bc = eventually("the pause to show in status", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        let disabled = bc.status.as_ref().and_then(|s| s.sync.as_ref()).and_then(|s| s.disabled_at.clone());
        Ok(disabled.map(|_| bc))
    })
    .await?;
    ensure!(condition(&bc, "Synced").is_some_and(|(_, r)| r == "SyncDisabled"), "{:?}", bc.status);
    ensure!(bc.status.as_ref().and_then(|s| s.conductor_one.as_ref()).is_some_and(|c| c.paused_at.is_some()));
    api.patch("okta", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"suspend": false}}))).await?;
    eventually("the resume to show in status", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        let disabled = bc.status.as_ref().and_then(|s| s.sync.as_ref()).and_then(|s| s.disabled_at.clone());
        let paused = bc.status.as_ref().and_then(|s| s.conductor_one.as_ref()).is_some();
        Ok((disabled.is_none() && !paused).then_some(()))
    })
    .await?;
    ensure!(
        (env.c1.count("POST", &action("pause")), env.c1.count("POST", &action("resume"))) == (1, 1),
        "one pause and one resume"
    );
    Ok(())
}
