//! Managed credentials: issue, rotate and revoke against the fake ConductorOne.

use super::*;

pub(crate) async fn managed_credentials_issue_rotate_and_revoke(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let ns = "managed";
    let (app, connector_id) = ("app-e2e", "conn-e2e");
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal("e2e-operator");
    namespace(&env.client, ns, json!({"pod-security.kubernetes.io/enforce": "restricted"})).await?;
    let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, api_secret, Some(ns)).await?;
    okta_app(&env.client, ns).await?;
    let spec = json!({
        "connector": "okta",
        "secretRefs": [{"name": "okta-app"}],
        "credentials": {"managed": {"rotation": {"interval": "720h", "gracePeriod": "2s"}}},
        "conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id},
    });
    let mut bc = connector("okta", "okta", json!({}));
    bc["spec"] = spec;
    apply_value(&env.client, bc, Some(ns)).await?;
    let ready = wait_ready(&env.client, ns, "okta").await?;
    let first = ready.status.as_ref().and_then(|s| s.credentials.clone()).context("no credentials status")?;
    let first_id = first.credential_id.clone().context("no credential id")?;
    ensure!(first.secret_name.as_deref() == Some("okta-c1-credentials-1"), "{first:?}");
    ensure!(env.c1.credentials().len() == 1);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), ns);
    let stored = secrets.get("okta-c1-credentials-1").await?;
    let keys: Vec<_> = stored.data.unwrap_or_default().into_keys().collect();
    ensure!(keys == ["BATON_CLIENT_ID", "BATON_CLIENT_SECRET"], "{keys:?}");
    ensure!(replica_sets(&env.client, ns, "okta").await?.len() == 1);

    // Rotate on request: a new credential, one rollout, the old one revoked after the new pod is up.
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    let annotate = json!({"metadata": {"annotations": {"baton.conductorone.com/rotate-requested-at": "2026-11-22T12:00:00Z"}}});
    api.patch("okta", &PatchParams::default(), &Patch::Merge(&annotate)).await?;
    let rotated = eventually("the rotation to finish", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        let c = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
        Ok((c.credential_id.as_deref() != Some(first_id.as_str()) && c.rotation.is_none()).then_some(c))
    })
    .await?;
    ensure!(rotated.secret_name.as_deref() == Some("okta-c1-credentials-2"), "{rotated:?}");
    let old = env.c1.credential(&first_id).context("old credential unknown to the fake")?;
    let revoked_at = old.revoked_at.context("the old credential was not revoked")?;
    let rs = replica_sets(&env.client, ns, "okta").await?;
    ensure!(rs.len() == 2, "expected exactly one rollout, found {} ReplicaSets", rs.len());
    let pods: Vec<Pod> = list(&env.client, ns, "app.kubernetes.io/instance=okta").await?;
    let new_pod_ready = pods
        .iter()
        .filter_map(|p| {
            p.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "Ready")?
                .last_transition_time
                .clone()
        })
        .map(|t| t.0)
        .max()
        .context("no ready pod")?;
    ensure!(revoked_at >= new_pod_ready, "revoked at {revoked_at}, new pod ready at {new_pod_ready}");
    ensure!(secrets.get_opt("okta-c1-credentials-1").await?.is_none(), "old Secret revision left behind");

    // Deletion revokes what the operator minted, then lets the resource go.
    api.delete("okta", &DeleteParams::default()).await?;
    let current = rotated.credential_id.unwrap_or_default();
    eventually("deletion to revoke and finish", WAIT, || async {
        let gone = api.get_opt("okta").await?.is_none();
        let revoked = env.c1.credential(&current).is_some_and(|c| c.revoked_at.is_some());
        Ok((gone && revoked).then_some(()))
    })
    .await?;
    Ok(())
}
