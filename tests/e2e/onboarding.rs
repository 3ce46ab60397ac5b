//! Zero-click onboarding: `examples/okta-zero-click.yaml`, applied as written (with the fake's API
//! credentials in its Secret), creates the app and connector in ConductorOne, runs on credentials
//! minted for that connector, and deleting it removes both; with `Orphan` they stay.

use super::*;

/// Applies the example in `ns` under `name`, pointing its API Secret at the fake, with `policy`.
async fn apply_example(env: &mut Env, ns: &str, policy: &str) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let principal = env.c1.register_principal(&format!("{ns}-principal"));
    namespace(&env.client, ns, json!({})).await?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/okta-zero-click.yaml");
    for doc in serde_yaml::Deserializer::from_str(&std::fs::read_to_string(path)?) {
        let mut value: Value = serde::Deserialize::deserialize(doc)?;
        if value["metadata"]["name"] == "conductorone-api" {
            value["stringData"] =
                json!({"clientId": principal.client_id, "clientSecret": principal.client_secret});
        }
        if value["kind"] == "BatonConnector" {
            value["spec"]["deletionPolicy"] = json!(policy);
        }
        apply_value(&env.client, value, Some(ns)).await?;
    }
    Ok(())
}

/// Waits for onboarding to record the ids, lets the fake report a first sync, and waits for Ready.
async fn onboarded(env: &mut Env, ns: &str) -> anyhow::Result<(BatonConnector, String, String)> {
    let (app, connector) = eventually("the app and connector ids in status", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        let c1 = bc.status.and_then(|s| s.conductor_one).unwrap_or_default();
        Ok(c1.app_id.zip(c1.connector_id).filter(|_| c1.created_app && c1.created_connector))
    })
    .await?;
    env.c1.set_sync_status(&app, &connector, done_sync());
    let bc = wait_ready(&env.client, ns, "okta").await?;
    Ok((bc, app, connector))
}

/// Every field of status, and the finalizer, is owned by one field manager, the operator's: journals
/// and the summary are one writer, so no write of one can leave a field the other owns.
fn status_has_one_owner(bc: &BatonConnector) -> anyhow::Result<()> {
    fn leaves(node: &Value, path: String, out: &mut Vec<String>) {
        match node.as_object() {
            Some(map) if !map.is_empty() => {
                for (k, v) in map {
                    leaves(v, format!("{path}/{k}"), out);
                }
            }
            _ => out.push(path),
        }
    }
    let mut owners: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for entry in bc.metadata.managed_fields.iter().flatten() {
        let manager = entry.manager.clone().context("a managedFields entry without a manager")?;
        let fields = serde_json::to_value(&entry.fields_v1)?;
        let mut paths = Vec::new();
        for key in ["f:status", "f:metadata"] {
            if let Some(node) = fields.get(key) {
                leaves(node, key.to_string(), &mut paths);
            }
        }
        for path in paths.into_iter().filter(|p| p.starts_with("f:status") || p.contains("f:finalizers")) {
            owners.entry(path).or_default().push(format!("{manager} ({:?})", entry.operation));
        }
    }
    ensure!(owners.keys().any(|p| p.contains("f:credentials")), "no credential record in {owners:?}");
    ensure!(owners.keys().any(|p| p.contains("f:conductorOne")), "no onboarding record in {owners:?}");
    let shared: Vec<_> = owners.iter().filter(|(_, m)| m.len() > 1).collect();
    ensure!(shared.is_empty(), "status fields with more than one owner: {shared:?}");
    let foreign: Vec<_> = owners.iter().filter(|(_, m)| !m[0].starts_with("baton-operator ")).collect();
    ensure!(foreign.is_empty(), "status fields not owned by the operator's one field manager: {foreign:?}");
    Ok(())
}

async fn delete_and_wait(env: &Env, ns: &str) -> anyhow::Result<()> {
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    api.delete("okta", &DeleteParams::default()).await?;
    eventually("the BatonConnector to be gone", WAIT, || async {
        Ok(api.get_opt("okta").await?.is_none().then_some(()))
    })
    .await
}

pub(crate) async fn zero_click_example_onboards_and_cleans_up(env: &mut Env) -> anyhow::Result<()> {
    let ns = "zero-click";
    apply_example(env, ns, "Revoke").await?;
    let (bc, app, connector) = onboarded(env, ns).await?;
    let created = env.c1.app(&app).context("the created app is not in ConductorOne")?;
    ensure!(created.display_name == "Okta", "{created:?}");
    let (description, catalog, _) = env.c1.connector_details(&app, &connector).context("no connector")?;
    ensure!(catalog == baton_operator::api::BATON_CATALOG_ID, "catalog {catalog}");
    ensure!(description.contains(&bc.uid().unwrap_or_default()), "no marker in {description:?}");
    let credential_id =
        bc.status.as_ref().and_then(|s| s.credentials.as_ref()).and_then(|c| c.credential_id.clone());
    let credential =
        env.c1.credential(&credential_id.context("no credential")?).context("unknown credential")?;
    ensure!(credential.app_id == app && credential.connector_id == connector, "{credential:?}");
    ensure!(env.c1.count("POST", "/api/v1/apps") == 1, "one app created");
    ensure!(env.c1.count("POST", &format!("/api/v1/apps/{app}/connectors")) == 1, "one connector created");

    status_has_one_owner(&bc)?;

    let described = super::plugin::plugin(&env.admin_kubeconfig, &["describe", "okta", "-n", ns]).await?;
    let line = format!("Connector:      {connector} (created by the operator)");
    ensure!(described.stdout.contains(&line), "kubectl baton describe lacks {line:?}:\n{}", described.stdout);

    delete_and_wait(env, ns).await?;
    ensure!(env.c1.connector_details(&app, &connector).is_none(), "the connector was not deleted");
    ensure!(env.c1.app(&app).is_none(), "the app was not deleted");
    ensure!(
        env.c1.credential(&credential.id).is_some_and(|c| c.revoked_at.is_some()),
        "credential not revoked"
    );
    Ok(())
}

pub(crate) async fn zero_click_with_orphan_keeps_app_and_connector(env: &mut Env) -> anyhow::Result<()> {
    let ns = "zero-click-orphan";
    apply_example(env, ns, "Orphan").await?;
    let (_, app, connector) = onboarded(env, ns).await?;
    delete_and_wait(env, ns).await?;
    ensure!(env.c1.app(&app).is_some(), "the app was deleted");
    ensure!(env.c1.connector_details(&app, &connector).is_some(), "the connector was deleted");
    Ok(())
}
