//! A leader stopped with SIGTERM in the middle of a reconcile: it finishes that reconcile (here one
//! waiting on ConductorOne to issue a credential, which is returned only once and so must be
//! stored), then releases the Lease, and the standby carries on at once without issuing again.

use super::*;
use support::fake_conductorone::{Fault, FaultRule};

const LEASE: &str = "handover";
const ISSUE: &str = "/api/v1/apps/connectors/credentials";

pub(crate) async fn sigterm_finishes_the_in_flight_reconcile_then_hands_over(
    env: &mut Env,
) -> anyhow::Result<()> {
    let (mut leader, mut standby, standby_id) = leader_and_standby(env, "handover", LEASE).await?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.client.clone(), "baton-system");

    let ns = "handover";
    let (app, connector_id) = ("app-handover", "conn-handover");
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal("handover-operator");
    namespace(&env.client, ns, json!({})).await?;
    let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, api_secret, Some(ns)).await?;
    let issued_before = env.c1.count("POST", ISSUE);
    env.c1.inject(FaultRule::new(Fault::Delay(Duration::from_secs(3))).on("POST", ISSUE));
    okta_app(&env.client, ns).await?;
    let mut bc = connector("okta", "okta", json!({}));
    bc["spec"] = json!({
        "connector": "okta",
        "secretRefs": [{"name": "okta-app"}],
        "credentials": {"managed": {}},
        "conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id},
    });
    apply_value(&env.client, bc, Some(ns)).await?;
    eventually("the leader to ask ConductorOne for a credential", WAIT, || async {
        Ok((env.c1.count("POST", ISSUE) > issued_before).then_some(()))
    })
    .await?;

    // The issue call is in flight (the fake holds it for 3 s).
    let sigterm = std::time::Instant::now();
    leader.stop().await;
    let exited = sigterm.elapsed();
    let log = std::fs::read_to_string(leader.log_path())?;
    ensure!(
        log.contains("lease released"),
        "the leader did not shut down gracefully (exited after {exited:?}):\n{}",
        leader.log_tail(20)
    );
    ensure!(
        exited >= Duration::from_secs(1),
        "the leader exited {exited:?} after SIGTERM, before its reconcile finished"
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), ns);
    ensure!(
        secrets.get_opt("okta-c1-credentials-1").await?.is_some(),
        "the credential issued during shutdown was not stored"
    );
    eventually("the standby to hold the Lease", WAIT, || async {
        let holder = leases.get(LEASE).await?.spec.and_then(|s| s.holder_identity);
        Ok((holder.as_deref() == Some(standby_id.as_str())).then_some(()))
    })
    .await?;
    wait_ready(&env.client, ns, "okta").await?;
    let issued = env.c1.count("POST", ISSUE) - issued_before;
    ensure!(
        issued == 1,
        "{issued} credentials issued: the standby issued again instead of using the stored one"
    );
    println!(
        "e2e: SIGTERM during a reconcile: the leader finished it and exited after {:.2}s; the standby then took over",
        exited.as_secs_f64()
    );
    standby.stop().await;
    Ok(())
}
