//! The fleet as a whole: unreadable resources, restarts, deletion, leader election.

use super::*;

/// A resource written for a newer CRD (here: a mode this operator does not know) is reported on itself
/// and skipped; the rest of the fleet is reconciled as usual.
pub(crate) async fn unreadable_resource_does_not_block_the_fleet(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let original = std::fs::read_to_string(root.join("crds/baton.conductorone.com_batonconnectors.yaml"))?;
    let mut newer: Value = serde_yaml::from_str(&original)?;
    let mode = &mut newer["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["mode"];
    mode["enum"].as_array_mut().context("mode has an enum")?.push(json!("Batch"));
    apply_value(&env.client, newer, None).await?;
    namespace(&env.client, "unreadable", json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some("unreadable")).await?;
    let future = eventually("the newer CRD to be served", WAIT, || async {
        Ok(apply_value(
            &env.client,
            connector("future", "okta", json!({"mode": "Batch"})),
            Some("unreadable"),
        )
        .await
        .ok())
    })
    .await;
    // Put the real CRD back whatever happened; the stored object keeps its unknown mode.
    apply_yaml(&env.client, &original, None).await?;
    future?;
    okta_app(&env.client, "unreadable").await?;
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

pub(crate) async fn operator_restart_writes_nothing(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let before = settle(env, Duration::from_secs(3)).await?;
    let rs_before: Vec<ReplicaSet> = Api::all(env.client.clone()).list(&Default::default()).await?.items;
    let reads_before = env.cp.as_ref().map(|cp| cp.operator_reads().len());
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
    // The watches' lists deliver everything a reconcile reads: no request per connector.
    if let (Some(cp), Some(before)) = (&env.cp, reads_before) {
        let reads = cp.operator_reads();
        let per_object: Vec<&String> = reads[before.min(reads.len())..]
            .iter()
            .filter(|r| r.starts_with("get ") && (r.contains("/deployments/") || r.contains("/secrets/")))
            .collect();
        ensure!(per_object.is_empty(), "the restart read objects one by one: {per_object:?}");
    }
    Ok(())
}

pub(crate) async fn delete_garbage_collects_children(env: &mut Env) -> anyhow::Result<()> {
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

pub(crate) async fn leader_election_lets_one_replica_reconcile(env: &mut Env) -> anyhow::Result<()> {
    env.operator.stop().await;
    env.operator.metrics_port = 0;
    let replica = |n: usize| {
        let identity = format!("replica-{n}");
        operator_with(
            env,
            &identity,
            &["--leader-election", "--lease-namespace", "baton-system", "--identity", &identity],
        )
    };
    let (mut a, mut b) = (replica(1), replica(2));
    a.start()?;
    a.wait_ready().await?;
    b.start()?;
    b.wait_ready().await?;
    namespace(&env.client, "leader", json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some("leader")).await?;
    okta_app(&env.client, "leader").await?;
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
    let (mut leader, standby, standby_id) =
        if reconciled(&ma) { (a, b, "replica-2") } else { (b, a, "replica-1") };
    // The leader gets SIGTERM: it finishes in-flight reconciles and releases the Lease, so the standby
    // takes over at once instead of after the 15 s lease duration.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.client.clone(), "baton-system");
    let sigterm = std::time::Instant::now();
    leader.stop().await;
    let exited = sigterm.elapsed();
    let took_over = eventually("the standby to hold the Lease", WAIT, || async {
        let lease = leases.get("baton-operator").await?;
        let holder = lease.spec.and_then(|s| s.holder_identity);
        Ok((holder.as_deref() == Some(standby_id)).then(|| sigterm.elapsed()))
    })
    .await?;
    okta_app(&env.client, "leader").await?;
    apply_value(&env.client, connector("second", "okta", json!({})), Some("leader")).await?;
    wait_ready(&env.client, "leader", "second").await?;
    let converged = sigterm.elapsed();
    ensure!(reconciled(&standby.metrics().await?), "the standby did not take over");
    println!(
        "e2e: leader handover: leader exited {:.2}s after SIGTERM, standby held the Lease after {:.2}s, \
         a new connector was Ready after {:.2}s (lease duration 15 s)",
        exited.as_secs_f64(),
        took_over.as_secs_f64(),
        converged.as_secs_f64()
    );
    ensure!(
        took_over < Duration::from_secs(5),
        "the standby took {took_over:?} to take over: the Lease was not released on SIGTERM"
    );
    // A leader that dies without releasing (SIGKILL) is replaced once the Lease expires, and not
    // before: a standby judges expiry by how long it has seen the Lease unchanged.
    let mut third = replica(3);
    third.start()?;
    third.wait_ready().await?;
    let killed = std::time::Instant::now();
    drop(standby);
    let expired = eventually("replica-3 to take the expired Lease", WAIT, || async {
        let lease = leases.get("baton-operator").await?;
        let holder = lease.spec.and_then(|s| s.holder_identity);
        Ok((holder.as_deref() == Some("replica-3")).then(|| killed.elapsed()))
    })
    .await?;
    println!(
        "e2e: leader killed without release: replica-3 held the Lease after {:.2}s",
        expired.as_secs_f64()
    );
    ensure!(
        (Duration::from_secs(9)..Duration::from_secs(20)).contains(&expired),
        "a killed leader's Lease was taken after {expired:?}, expected after its 15 s expiry"
    );
    third.stop().await;
    Ok(())
}
