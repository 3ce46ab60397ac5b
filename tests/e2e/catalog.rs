//! `kubectl baton new` output for every catalogued connector and field group is accepted by the
//! real API server as printed (server-side dry run, so nothing is stored or reconciled).

use baton_operator::catalog::Catalog;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Deserialize as _;

use super::*;

pub(crate) async fn new_output_applies_for_every_connector(env: &mut Env) -> anyhow::Result<()> {
    let ns = "catalog-new";
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
    match namespaces.create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    let mut applied = 0;
    for connector in Catalog::embedded().connectors() {
        let mut groups: Vec<Option<&str>> = connector.groups.iter().map(|g| Some(g.name.as_str())).collect();
        if groups.is_empty() {
            groups.push(None);
        }
        for group in groups {
            let mut args = vec!["new", connector.name.as_str(), "-n", ns];
            if let Some(g) = group {
                args.extend(["--group", g]);
            }
            let run = plugin::plugin(&env.admin_kubeconfig, &args).await?;
            ensure!(run.code == 0, "kubectl baton {args:?}: {}", run.stderr);
            for doc in serde_yaml::Deserializer::from_str(&run.stdout) {
                let object: DynamicObject =
                    serde_json::from_value(serde_json::to_value(serde_yaml::Value::deserialize(doc)?)?)?;
                let types = object.types.clone().context("a document without apiVersion/kind")?;
                let gvk = GroupVersionKind::try_from(&types)?;
                let plural = if gvk.kind == "Secret" { "secrets" } else { "batonconnectors" };
                let api: Api<DynamicObject> = Api::namespaced_with(
                    env.client.clone(),
                    ns,
                    &ApiResource::from_gvk_with_plural(&gvk, plural),
                );
                api.create(&dry_run, &object).await.with_context(|| {
                    format!("{} {group:?}: the API server refused the {}", connector.name, gvk.kind)
                })?;
            }
            applied += 1;
        }
    }
    ensure!(applied > 111, "only {applied} manifests");
    // Both a value and a Secret reference for one field: refused by the schema itself.
    let both = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector", "metadata": {"name": "both"},
        "spec": {"connector": "okta", "credentials": {"secretRef": {"name": "c1"}},
            "config": {"api-token": {"value": "x", "secretKeyRef": {"name": "okta", "key": "t"}}}}});
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), ns, &ApiResource::erase::<BatonConnector>(&()));
    match api.create(&dry_run, &serde_json::from_value(both)?).await {
        Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("spec.config.api-token") => {}
        other => bail!(
            "value and secretKeyRef together: expected a 422 naming spec.config.api-token, got {other:?}"
        ),
    }
    Ok(())
}

/// Without the admission policy, the operator itself reports settings the SDK would refuse, before
/// any pod starts: no Deployment, `Ready=False ConfigInvalid` naming the field and its variable, and a
/// Warning event; once the Secret supplies the field, the connector is created and becomes Ready.
pub(crate) async fn invalid_settings_are_reported_before_any_pod_starts(env: &mut Env) -> anyhow::Result<()> {
    let ns = "settings";
    ensure_operator(env).await?;
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    let domain_only = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "okta-app"},
        "stringData": {"BATON_DOMAIN": "e2e.okta.com"}});
    apply_value(&env.client, domain_only, Some(ns)).await?;
    apply_value(
        &env.client,
        connector("okta", "okta", json!({"secretRefs": [{"name": "okta-app"}]})),
        Some(ns),
    )
    .await?;
    let bc = eventually("Ready=False ConfigInvalid", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        Ok((condition(&bc, "Ready") == Some(("False".into(), "ConfigInvalid".into()))).then_some(bc))
    })
    .await?;
    let message = bc
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message.clone());
    ensure!(message.as_deref().is_some_and(|m| m.contains("BATON_API_TOKEN")), "{message:?}");
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(env.client.clone(), ns);
    ensure!(deployments.get_opt("okta").await?.is_none(), "a Deployment for settings the SDK would refuse");
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), ns);
    let warned = events
        .list(&Default::default())
        .await?
        .items
        .iter()
        .any(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("ConfigInvalid"));
    ensure!(warned, "no ConfigInvalid warning event");
    okta_app(&env.client, ns).await?;
    wait_ready(&env.client, ns, "okta").await?;
    Ok(())
}
