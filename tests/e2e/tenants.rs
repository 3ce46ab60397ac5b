//! ConductorOne tenants on a real API server: the service principal stays in the operator's
//! namespace, and a person who may write BatonConnectors in a team namespace, but may not read a
//! Secret there or in the operator's namespace, still gets managed credentials minted.

use super::*;
use support::fake_conductorone::{Fault, FaultRule};

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

/// A managed connector of `tenant` in `ns`, reading ConductorOne's `app`/`connector_id`.
fn tenant_connector(name: &str, tenant: &str, app: &str, connector_id: &str) -> Value {
    let mut bc = connector(name, "okta", json!({}));
    bc["spec"]["credentials"] = json!({"managed": {"rotation": {"interval": "720h", "gracePeriod": "2s"}}});
    bc["spec"]["conductorOne"] = json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": tenant},
        "appId": app, "connectorId": connector_id});
    bc
}

/// A cluster tenant allowed in `ns`, with a principal of `c1` in the operator's namespace.
async fn cluster_tenant(env: &Env, c1: &FakeConductorOne, name: &str, ns: &str) -> anyhow::Result<()> {
    let principal = c1.register_principal(name);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("c1-{name}")},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, secret, Some("baton-system")).await?;
    let tenant = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ClusterConductorOneTenant",
        "metadata": {"name": name},
        "spec": {"apiCredentialsSecretRef": {"name": format!("c1-{name}")}, "allowedNamespaces": {"names": [ns]}}});
    apply_value(&env.client, tenant, None).await?;
    namespace(&env.client, ns, json!({})).await?;
    okta_app(&env.client, ns).await
}

/// How long the calm tenant's connector may take for each step while the other tenant's
/// ConductorOne answers 429 to everything: with its own client, slots and poll lane it takes a few
/// seconds (the sync poll interval here is 2 s); sharing the poller's slots with the broken tenant,
/// its sync reading waited behind the broken tenant's failing polls (6 s each, 12 due every 5 s).
const CALM_TENANT_BOUND: Duration = Duration::from_secs(20);

/// Two cluster tenants, each with its own ConductorOne: tenant A's answers 429 to every request,
/// token requests included, for a dozen connectors; tenant B's connector still gets its credential
/// minted and rotated, and its sync status read, within a few seconds each, while A's connectors
/// report that they are rate limited.
pub(crate) async fn a_tenant_whose_conductorone_refuses_everything_never_delays_another_tenant(
    env: &mut Env,
) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let broken = FakeConductorOne::start().await;
    let (ns_a, ns_b) = ("iso-broken", "iso-calm");
    cluster_tenant(env, &broken, "iso-broken", ns_a).await?;
    cluster_tenant(env, &env.c1, "iso-calm", ns_b).await?;
    broken.inject(FaultRule::new(Fault::rate_limited("2")).times(usize::MAX));
    for i in 0..12 {
        let (app, id) = (format!("app-iso-a-{i}"), format!("conn-iso-a-{i}"));
        broken.add_connector(&app, &id, "okta");
        apply_value(&env.client, tenant_connector(&format!("a-{i}"), "iso-broken", &app, &id), Some(ns_a))
            .await?;
    }
    // A's connectors are failing their polls and their first mints before B's connector comes.
    // (Within A they queue: every call waits for A's one token request, which takes 6 s to fail.)
    let rate_limited = || async {
        let mut reporting = 0;
        for i in 0..12 {
            let bc = get_bc(&env.client, ns_a, &format!("a-{i}")).await?;
            let mut reasons = bc.status.iter().flat_map(|s| s.conditions.iter()).map(|c| c.reason.as_str());
            reporting += usize::from(reasons.any(|r| r == "RateLimited"));
        }
        anyhow::Ok(reporting)
    };
    eventually("tenant A's connectors to report the 429s", WAIT, || async {
        Ok((rate_limited().await? > 0).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let (app, id) = ("app-iso-b", "conn-iso-b");
    env.c1.add_connector(app, id, "okta");
    env.c1.set_sync_status(app, id, done_sync());
    let started = std::time::Instant::now();
    apply_value(&env.client, tenant_connector("b", "iso-calm", app, id), Some(ns_b)).await?;
    let ready = wait_ready(&env.client, ns_b, "b").await?;
    let minted = started.elapsed();
    let first =
        ready.status.and_then(|s| s.credentials).and_then(|c| c.credential_id).context("none minted")?;
    ensure!(minted <= CALM_TENANT_BOUND, "tenant B's connector took {minted:?} to be minted and Ready");

    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns_b);
    let annotate = json!({"metadata": {"annotations": {"baton.conductorone.com/rotate-requested-at": "2026-12-08T01:00:00Z"}}});
    let started = std::time::Instant::now();
    api.patch("b", &PatchParams::default(), &Patch::Merge(&annotate)).await?;
    eventually("tenant B's rotation", CALM_TENANT_BOUND, || async {
        let c = get_bc(&env.client, ns_b, "b").await?.status.and_then(|s| s.credentials).unwrap_or_default();
        let done = c.credential_id.as_deref() != Some(first.as_str())
            && c.rotation.is_none()
            && c.secret_name.as_deref() == Some("b-c1-credentials-2");
        Ok(done.then_some(()))
    })
    .await?;
    let rotated = started.elapsed();

    // A new sync finished at B's ConductorOne shows in B's status.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let completed =
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second())?;
    let sync = json!({"status": "SYNC_STATUS_DONE", "startedAt": completed.to_string(),
        "completedAt": completed.to_string(), "lastError": ""});
    env.c1.set_sync_status(app, id, sync);
    let started = std::time::Instant::now();
    eventually("tenant B's new sync reading in its status", CALM_TENANT_BOUND, || async {
        let bc = get_bc(&env.client, ns_b, "b").await?;
        let shown = bc.status.and_then(|s| s.sync).and_then(|s| s.last_completed_at).map(|t| t.0);
        Ok((shown == Some(completed)).then_some(()))
    })
    .await?;
    let synced = started.elapsed();
    let a_calls = broken.calls();
    let refused = a_calls.iter().filter(|c| c.status == Some(429)).count();
    ensure!(refused > 0 && refused == a_calls.len(), "tenant A's ConductorOne answered something else");
    let reporting = rate_limited().await?;
    ensure!(reporting > 0, "no connector of tenant A says it is rate limited");
    println!(
        "    tenant B with tenant A answering 429 ({} requests; {reporting} of A's 12 connectors report RateLimited): minted and Ready {minted:.1?}, rotated {rotated:.1?}, sync reading shown {synced:.1?}",
        a_calls.len()
    );

    // Clean up: A's ConductorOne calm again so that its connectors' finalizers can finish.
    broken.clear_faults();
    for ns in [ns_a, ns_b] {
        Api::<BatonConnector>::namespaced(env.client.clone(), ns)
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await?;
    }
    eventually("both tenants' connectors to be gone", WAIT, || async {
        let mut left = 0;
        for ns in [ns_a, ns_b] {
            left += Api::<BatonConnector>::namespaced(env.client.clone(), ns)
                .list(&Default::default())
                .await?
                .items
                .len();
        }
        Ok((left == 0).then_some(()))
    })
    .await?;
    let api: Api<kube::api::DynamicObject> = Api::all_with(
        env.client.clone(),
        &kube::api::ApiResource::erase::<baton_operator::api::ClusterConductorOneTenant>(&()),
    );
    for tenant in ["iso-broken", "iso-calm"] {
        api.delete(tenant, &DeleteParams::default()).await?;
    }
    Ok(())
}
