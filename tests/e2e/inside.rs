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
    env.kubelet.isolation().map_err(|why| anyhow::Error::new(Skipped(format!("the kubelet cannot execute containers: {why}"))))
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
        let used = env.c1.token_exchanges().iter().any(|x| x.client_id == client_id && exchanged_by(&x.user_agent) == Some(p.pid));
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
    let exchange = env.c1.token_exchanges().into_iter().find(|x| exchanged_by(&x.user_agent) == Some(before.pid));
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
    let revoked = env.c1.credential(&old_id).and_then(|c| c.revoked_at).context("the old credential was not revoked")?;
    for p in env.kubelet.processes().iter().filter(|p| p.client_id.as_deref() == Some(first_client.as_str())) {
        let (ended, _) = p.ended.context("a process on the old credential still runs")?;
        ensure!(ended <= revoked, "pid {} ran on the old credential until {ended}, revoked at {revoked}", p.pid);
    }
    // Nothing authenticated with the old credential once it was revoked (the fake refuses it, and
    // the running process is the new one).
    ensure!(
        !env.c1.token_exchanges().iter().any(|x| x.client_id == first_client && x.at > revoked),
        "the old credential was used after its revocation"
    );
    println!("    pid {} on credential 1, pid {} on credential 2; credential 1 revoked at {revoked}", before.pid, after.pid);
    Ok(())
}
