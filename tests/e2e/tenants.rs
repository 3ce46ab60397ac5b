//! ConductorOne tenants on a real API server: the service principal stays in the operator's
//! namespace, and a person who may write BatonConnectors in a team namespace, but may not read a
//! Secret there or in the operator's namespace, still gets managed credentials minted.

use super::*;

/// A client that acts as `user` (impersonation by the admin's credentials), as `kubectl --as` does.
async fn impersonating(env: &Env, user: &str) -> anyhow::Result<Client> {
    let mut kubeconfig = kube::config::Kubeconfig::read_from(&env.admin_kubeconfig)?;
    for named in &mut kubeconfig.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.impersonate = Some(user.to_string());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}

pub(crate) async fn a_team_that_cannot_read_the_principal_gets_managed_credentials_through_a_cluster_tenant(
    env: &mut Env,
) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let (ns, tenant, user) = ("tenant-team-a", "prod-e2e", "alice-e2e");
    let (app, connector_id) = ("app-tenant-e2e", "conn-tenant-e2e");
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal("e2e-tenant-prod");
    // The platform team's part: the principal in the operator's namespace, and the tenant.
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-prod-e2e"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, secret, Some("baton-system")).await?;
    let cluster_tenant = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ClusterConductorOneTenant",
        "metadata": {"name": tenant},
        "spec": {"apiCredentialsSecretRef": {"name": "c1-prod-e2e"}, "allowedNamespaces": {"names": [ns]}}});
    apply_value(&env.client, cluster_tenant, None).await?;
    namespace(&env.client, ns, json!({})).await?;
    okta_app(&env.client, ns).await?;
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "connector-author"},
        "rules": [{"apiGroups": ["baton.conductorone.com"], "resources": ["batonconnectors"],
                   "verbs": ["get", "list", "watch", "create", "patch", "delete"]}]});
    apply_value(&env.client, role, Some(ns)).await?;
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "connector-author"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "connector-author"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]});
    apply_value(&env.client, binding, Some(ns)).await?;

    // The team's part, as the person: no Secret is readable, neither the principal nor their own.
    let alice = impersonating(env, user).await?;
    for secret_ns in ["baton-system", ns] {
        match Api::<k8s_openapi::api::core::v1::Secret>::namespaced(alice.clone(), secret_ns)
            .list(&Default::default())
            .await
        {
            Err(kube::Error::Api(e)) if e.code == 403 => {}
            other => bail!(
                "{user} listing Secrets in {secret_ns}: expected 403, got {:?}",
                other.map(|l| l.items.len())
            ),
        }
    }
    let mut bc = connector("okta", "okta", json!({}));
    bc["spec"]["credentials"] = json!({"managed": {}});
    bc["spec"]["conductorOne"] = json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": tenant},
        "appId": app, "connectorId": connector_id});
    apply_value(&alice, bc, Some(ns)).await?;
    let ready = wait_ready(&env.client, ns, "okta").await?;
    let minted =
        ready.status.as_ref().and_then(|s| s.credentials.clone()).context("no credentials status")?;
    let id = minted.credential_id.context("no credential minted")?;
    ensure!(env.c1.credential(&id).is_some(), "the credential {id} is not ConductorOne's");

    // The tenant's own status: its principal got a token, one connector uses it.
    let tenants: Api<baton_operator::api::ClusterConductorOneTenant> = Api::all(env.client.clone());
    let ready_tenant = eventually("the tenant to be Ready with its connector", WAIT, || async {
        let t = tenants.get(tenant).await?;
        let status = t.status.clone().unwrap_or_default();
        let ready = baton_operator::api::conditions::is_true(&status.conditions, "Ready");
        Ok((ready && status.connectors == 1).then_some(t))
    })
    .await?;
    ensure!(
        ready_tenant
            .metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == "baton.conductorone.com/tenant-in-use"),
        "the tenant carries its finalizer"
    );

    // The platform team rotates the service principal: one edit of its Secret. The tenant checks
    // the new one, no connector pod rolls for it, and the connector's next ConductorOne call
    // (a rotation) goes out with it while the old principal is refused.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(env.client.clone(), ns);
    let generation = deployments.get("okta").await?.metadata.generation;
    let rotated_principal = env.c1.register_principal("e2e-tenant-prod-2");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-prod-e2e"},
        "stringData": {"clientId": rotated_principal.client_id, "clientSecret": rotated_principal.client_secret}});
    apply_value(&env.client, secret, Some("baton-system")).await?;
    eventually("the tenant to get a token with the new principal", WAIT, || async {
        let used = env.c1.token_exchanges().iter().any(|t| t.client_id == rotated_principal.client_id);
        Ok(used.then_some(()))
    })
    .await?;
    env.c1.disable_principal(&principal.client_id);
    let minted_before = env.c1.credentials().len();
    ensure!(
        deployments.get("okta").await?.metadata.generation == generation,
        "a new principal rolled the connector"
    );
    let annotate = json!({"metadata": {"annotations": {"baton.conductorone.com/rotate-requested-at": "2026-12-08T01:00:00Z"}}});
    Api::<BatonConnector>::namespaced(env.client.clone(), ns)
        .patch("okta", &PatchParams::default(), &Patch::Merge(&annotate))
        .await?;
    // The old principal is refused now: a credential minted is the new principal's doing.
    eventually("a credential minted through the new principal", WAIT, || async {
        Ok((env.c1.credentials().len() > minted_before).then_some(()))
    })
    .await?;
    let ready = tenants.get(tenant).await?.status.unwrap_or_default();
    ensure!(baton_operator::api::conditions::is_true(&ready.conditions, "Ready"), "{ready:?}");

    // Deleting the tenant first waits for its connector, which needs the principal to revoke.
    tenants.delete(tenant, &DeleteParams::default()).await?;
    eventually("the tenant to say it is in use", WAIT, || async {
        let t = tenants.get(tenant).await?;
        let status = t.status.unwrap_or_default();
        Ok(baton_operator::api::conditions::is_true(&status.conditions, "InUse").then_some(()))
    })
    .await?;

    // Deletion revokes through the tenant's principal; then the tenant goes too.
    Api::<BatonConnector>::namespaced(alice.clone(), ns).delete("okta", &DeleteParams::default()).await?;
    eventually("deletion to revoke through the tenant", WAIT, || async {
        let gone = get_bc(&env.client, ns, "okta").await.is_err();
        let revoked = env.c1.credential(&id).is_some_and(|c| c.revoked_at.is_some());
        Ok((gone && revoked).then_some(()))
    })
    .await?;
    eventually("the unused tenant to be deleted", WAIT, || async {
        Ok(tenants.get_opt(tenant).await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}
