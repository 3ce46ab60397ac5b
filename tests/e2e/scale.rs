//! Fleet scale: ConductorOne's health never holds Kubernetes work hostage, and shards split a fleet.

use super::*;
use support::fake_conductorone::{Fault, FaultRule};

/// Creates connectors one at a time and measures, for each, how long until its Deployment exists.
async fn create_timed(env: &Env, ns: &str, prefix: &str, count: usize) -> anyhow::Result<Vec<Duration>> {
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), ns);
    let mut times = Vec::new();
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        let started = std::time::Instant::now();
        apply_value(&env.client, connector(&name, "okta", json!({})), Some(ns)).await?;
        eventually(&format!("a Deployment for {ns}/{name}"), WAIT, || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(deployments.get_opt(&name).await?.map(|_| ()))
        })
        .await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times)
}

fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}

/// Connectors that read their sync status from a ConductorOne answering every call after 10 s, and
/// others whose ConductorOne refuses connections, across an operator restart: a new connector that
/// needs no ConductorOne at all still gets its Deployment at once. Before the poller had a path of
/// its own, such a connector waited tens of seconds, or forever.
pub(crate) async fn slow_or_unreachable_conductorone_never_delays_other_connectors(
    env: &mut Env,
) -> anyhow::Result<()> {
    let ns = "brownout";
    ensure_operator(env).await?;
    namespace(&env.client, ns, json!({})).await?;
    okta_app(&env.client, ns).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    let calm = create_timed(env, ns, "calm", 5).await?;

    env.c1.inject(FaultRule::new(Fault::Delay(Duration::from_secs(10))).times(100_000));
    let principal = env.c1.register_principal("brownout");
    let closed = control_plane::free_port()?;
    let gone_id = principal.client_id.replace(env.c1.authority(), &format!("127.0.0.1:{closed}"));
    for (secret, client_id) in [("c1-slow", principal.client_id.as_str()), ("c1-gone", gone_id.as_str())] {
        let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret},
            "stringData": {"clientId": client_id, "clientSecret": principal.client_secret}});
        apply_value(&env.client, api_secret, Some(ns)).await?;
    }
    for i in 0..16 {
        let (app, id) = (format!("app-brownout-{i}"), format!("conn-brownout-{i}"));
        env.c1.add_connector(&app, &id, "okta");
        let secret = if i % 4 == 0 { "c1-gone" } else { "c1-slow" };
        let spec = json!({"conductorOne": {"apiCredentialsSecretRef": {"name": secret}, "appId": app, "connectorId": id}});
        apply_value(&env.client, connector(&format!("polled-{i}"), "okta", spec), Some(ns)).await?;
    }
    // A restart under the brownout: every connector that polls is looked at again.
    env.operator.stop().await;
    env.operator.start()?;
    env.operator.wait_ready().await?;
    let brownout = create_timed(env, ns, "during", 5).await?;
    println!(
        "    create -> Deployment, median: calm {:?}, ConductorOne slow/unreachable {:?} (worst {:?})",
        median(&calm),
        median(&brownout),
        brownout.last().copied().unwrap_or_default()
    );
    env.c1.clear_faults();
    // Anything that waited on ConductorOne would take at least its 10 s.
    ensure!(
        brownout.iter().all(|t| *t < Duration::from_secs(5)),
        "unrelated connectors waited on ConductorOne: {brownout:?} (calm: {calm:?})"
    );
    // The polled connectors say what is wrong, each on its own.
    eventually("the unreachable ConductorOne to be reported", WAIT, || async {
        for name in ["polled-0", "polled-4", "polled-8", "polled-12"] {
            let bc = get_bc(&env.client, ns, name).await?;
            if condition(&bc, "Synced").is_some_and(|(s, r)| s == "False" && r == "TransportError") {
                return Ok(Some(()));
            }
        }
        Ok(None)
    })
    .await?;
    Api::<k8s_openapi::api::core::v1::Namespace>::all(env.client.clone())
        .delete(ns, &DeleteParams::default())
        .await?;
    Ok(())
}

fn reconciles(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("baton_operator_reconciliations_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Two operators, each with a label selector: each reconciles only its own connectors, and a
/// connector relabelled to the other shard moves there without rolling its pod.
pub(crate) async fn shards_split_the_fleet_and_a_connector_moves_without_a_rollout(
    env: &mut Env,
) -> anyhow::Result<()> {
    env.operator.stop().await;
    env.operator.metrics_port = 0;
    let shard = |name: &str| {
        let selector = format!("example.com/shard={name}");
        operator_with(env, &format!("shard-{name}"), &["--selector", &selector])
    };
    let (mut a, mut b) = (shard("a"), shard("b"));
    a.start()?;
    b.start()?;
    a.wait_ready().await?;
    b.wait_ready().await?;
    let ns = "shards";
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    okta_app(&env.client, ns).await?;
    let mut bc = connector("okta", "okta", json!({}));
    bc["metadata"]["labels"] = json!({"example.com/shard": "a"});
    apply_value(&env.client, bc.clone(), Some(ns)).await?;
    wait_ready(&env.client, ns, "okta").await?;
    ensure!(reconciles(&a.metrics().await?) > 0.0, "shard a did not reconcile its connector");
    ensure!(reconciles(&b.metrics().await?) == 0.0, "shard b reconciled a connector of shard a");

    let rs_before = replica_sets(&env.client, ns, "okta").await?.len();
    let b_before = reconciles(&b.metrics().await?);
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    let relabel = json!({"metadata": {"labels": {"example.com/shard": "b"}}});
    api.patch("okta", &PatchParams::default(), &Patch::Merge(&relabel)).await?;
    eventually("shard b to take the connector over", WAIT, || async {
        Ok((reconciles(&b.metrics().await?) > b_before).then_some(()))
    })
    .await?;
    let a_after_move = reconciles(&a.metrics().await?);
    // An edit now is shard b's to apply.
    let edit = json!({"spec": {"env": [{"name": "BATON_LOG_LEVEL", "value": "debug"}]}});
    api.patch("okta", &PatchParams::default(), &Patch::Merge(&edit)).await?;
    wait_ready(&env.client, ns, "okta").await?;
    let deployment = Api::<Deployment>::namespaced(env.client.clone(), ns).get("okta").await?;
    let pod = deployment.spec.template.spec.context("no pod spec")?;
    let container = &pod.containers[0];
    ensure!(
        container.env.iter().flatten().any(|e| e.name == "BATON_LOG_LEVEL"),
        "shard b did not apply the edit"
    );
    ensure!(
        reconciles(&a.metrics().await?) == a_after_move,
        "shard a still reconciles a connector it gave up"
    );
    // The move itself rolled nothing: one ReplicaSet before, one more for the edit only.
    let rs_after = replica_sets(&env.client, ns, "okta").await?.len();
    ensure!(rs_after == rs_before + 1, "ReplicaSets: {rs_before} before the move, {rs_after} after the edit");
    a.stop().await;
    b.stop().await;
    Ok(())
}
