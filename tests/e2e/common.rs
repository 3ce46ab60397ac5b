//! Building blocks shared by the end-to-end cases.

use super::*;

pub(crate) fn credentials_secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {
        "BATON_CLIENT_ID": "e2e@example.conductor.one/ccc", "BATON_CLIENT_SECRET": "secret-token:conductorone.com:v1:e2e"}})
}

/// The settings baton-okta requires (its API-token field group), as a person keeps them: in a Secret
/// that `secretRefs` names.
pub(crate) fn app_secret(name: &str, token: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
           "stringData": {"BATON_DOMAIN": "e2e.okta.com", "BATON_API_TOKEN": token}})
}

/// The Secret `okta-app` that [`connector`] reads by default, in `ns`.
pub(crate) async fn okta_app(client: &Client, ns: &str) -> anyhow::Result<()> {
    apply_value(client, app_secret("okta-app", "e2e-token"), Some(ns)).await.map(|_| ())
}

/// A BatonConnector; without settings of its own (`secretRefs`, `config`), it reads baton-okta's from
/// the Secret `okta-app` ([`okta_app`]), since the operator rolls out no settings the SDK would refuse.
pub(crate) fn connector(name: &str, app: &str, spec: Value) -> Value {
    let mut base = json!({"connector": app, "credentials": {"secretRef": {"name": "c1"}}});
    if spec.get("secretRefs").is_none() && spec.get("config").is_none() {
        base["secretRefs"] = json!([{"name": "okta-app"}]);
    }
    base.as_object_mut().unwrap().extend(spec.as_object().cloned().unwrap_or_default());
    json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector", "metadata": {"name": name}, "spec": base})
}

pub(crate) async fn get_bc(client: &Client, ns: &str, name: &str) -> anyhow::Result<BatonConnector> {
    Ok(Api::<BatonConnector>::namespaced(client.clone(), ns).get(name).await?)
}

pub(crate) fn condition(bc: &BatonConnector, type_: &str) -> Option<(String, String)> {
    let c = bc.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// Waits until the resource is Ready on its current generation.
pub(crate) async fn wait_ready(client: &Client, ns: &str, name: &str) -> anyhow::Result<BatonConnector> {
    let ready = eventually(&format!("{ns}/{name} to be Ready"), WAIT, || async move {
        let bc = get_bc(client, ns, name).await?;
        let current = bc.status.as_ref().map(|s| s.observed_generation) == bc.metadata.generation;
        let ready = condition(&bc, "Ready").is_some_and(|(s, _)| s == "True");
        Ok((current && ready).then_some(bc))
    })
    .await;
    match ready {
        Ok(bc) => Ok(bc),
        Err(e) => {
            // Say why: the conditions as they were when the wait ran out.
            let conditions = get_bc(client, ns, name).await.ok().and_then(|bc| bc.status).map(|s| {
                let line = |c: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition| {
                    format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message)
                };
                s.conditions.iter().map(line).collect::<Vec<_>>()
            });
            Err(e.context(format!("last conditions: {conditions:?}")))
        }
    }
}

pub(crate) async fn replica_sets(
    client: &Client,
    ns: &str,
    instance: &str,
) -> anyhow::Result<Vec<ReplicaSet>> {
    list(client, ns, &format!("app.kubernetes.io/instance={instance}")).await
}

/// Sets up a namespace with the credentials Secret and one ready connector.
pub(crate) async fn ready_connector(
    env: &mut Env,
    ns: &str,
    name: &str,
    spec: Value,
) -> anyhow::Result<BatonConnector> {
    ensure_operator(env).await?;
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    okta_app(&env.client, ns).await?;
    apply_value(&env.client, connector(name, "okta", spec), Some(ns)).await?;
    wait_ready(&env.client, ns, name).await
}

pub(crate) async fn ensure_operator(env: &mut Env) -> anyhow::Result<()> {
    if env.operator.metrics_port == 0 {
        env.operator.start()?;
        env.operator.wait_ready().await?;
    }
    Ok(())
}

/// Waits until the operator has made no write for `quiet`, so counts taken afterwards are stable.
/// A value that changes whenever the operator writes. On the local control plane it is the list of
/// the operator's write requests from the API server's audit log (a no-op apply counts too); on
/// an existing cluster, where the suite cannot read the audit log, it is the resourceVersions of
/// everything the operator writes plus its events.
pub(crate) async fn write_marker(env: &Env) -> anyhow::Result<Vec<String>> {
    if let Some(cp) = &env.cp {
        return Ok(cp.operator_writes());
    }
    let managed = "app.kubernetes.io/managed-by=baton-operator";
    let lp = kube::api::ListParams::default();
    let mut marker = Vec::new();
    for bc in Api::<BatonConnector>::all(env.client.clone()).list_metadata(&lp).await?.items {
        marker.push(format!(
            "bc {}/{} {}",
            bc.namespace().unwrap_or_default(),
            bc.name_any(),
            bc.resource_version().unwrap_or_default()
        ));
    }
    for d in Api::<Deployment>::all(env.client.clone()).list(&lp.clone().labels(managed)).await?.items {
        marker.push(format!(
            "deploy {}/{} {}",
            d.namespace().unwrap_or_default(),
            d.name_any(),
            d.resource_version().unwrap_or_default()
        ));
    }
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(env.client.clone());
    for s in secrets.list_metadata(&lp.clone().labels(managed)).await?.items {
        marker.push(format!(
            "secret {}/{} {}",
            s.namespace().unwrap_or_default(),
            s.name_any(),
            s.resource_version().unwrap_or_default()
        ));
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(env.client.clone());
    for e in events
        .list(&lp)
        .await?
        .items
        .iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("baton-operator"))
    {
        marker.push(format!("event {} {}", e.name_any(), e.resource_version().unwrap_or_default()));
    }
    marker.sort();
    Ok(marker)
}

/// Waits until the operator has made no write for `quiet`, so markers taken afterwards are stable.
pub(crate) async fn settle(env: &Env, quiet: Duration) -> anyhow::Result<Vec<String>> {
    let mut last = write_marker(env).await?;
    let mut since = std::time::Instant::now();
    let start = std::time::Instant::now();
    while since.elapsed() < quiet {
        ensure!(
            start.elapsed() < WAIT,
            "the operator kept writing: {:?}",
            last.iter().rev().take(5).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = write_marker(env).await?;
        if now != last {
            (last, since) = (now, std::time::Instant::now());
        }
    }
    Ok(last)
}

pub(crate) fn kubectl(env: &Env, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&env.admin_kubeconfig)
        .args(args)
        .output()?;
    ensure!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

pub(crate) fn done_sync() -> Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    json!({"status": "SYNC_STATUS_DONE", "startedAt": now, "completedAt": now, "lastError": ""})
}

/// A secretRef connector with ConductorOne API access, so it reports sync status.
pub(crate) async fn synced_connector(
    env: &mut Env,
    ns: &str,
    app: &str,
    connector_id: &str,
) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal(&format!("{ns}-principal"));
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, api_secret, Some(ns)).await?;
    let spec = json!({"conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id}});
    okta_app(&env.client, ns).await?;
    apply_value(&env.client, connector("okta", "okta", spec), Some(ns)).await?;
    Ok(())
}

/// Another operator process beside the suite's own (replicas, shards), with the suite's operator
/// kubeconfig, its own log `<log>.log` and extra arguments.
pub(crate) fn operator_with(env: &Env, log: &str, args: &[&str]) -> Operator {
    let work = env.operator.log_path().parent().map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    let mut op = Operator::new(
        Path::new(env!("CARGO_BIN_EXE_baton-operator")),
        work.join("operator.kubeconfig"),
        work.join(format!("{log}.log")),
    );
    op.extra_args = args.iter().map(|a| a.to_string()).collect();
    op
}

/// Two replicas with leader election on `lease`, named `<prefix>-1` and `<prefix>-2`, in place of the
/// suite's operator, once one of them leads: (leader, standby, the standby's identity).
pub(crate) async fn leader_and_standby(
    env: &mut Env,
    prefix: &str,
    lease: &str,
) -> anyhow::Result<(Operator, Operator, String)> {
    env.operator.stop().await;
    env.operator.metrics_port = 0;
    let replica = |n: usize| {
        let identity = format!("{prefix}-{n}");
        operator_with(env, &identity, &["--leader-election", "--lease-name", lease, "--identity", &identity])
    };
    let (mut a, mut b) = (replica(1), replica(2));
    a.start()?;
    a.wait_ready().await?;
    b.start()?;
    b.wait_ready().await?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.client.clone(), "baton-system");
    let holder = eventually("a replica to lead", WAIT, || async {
        Ok(leases.get_opt(lease).await?.and_then(|l| l.spec?.holder_identity))
    })
    .await?;
    let (first, second) = (format!("{prefix}-1"), format!("{prefix}-2"));
    Ok(if holder == first { (a, b, second) } else { (b, a, first) })
}
