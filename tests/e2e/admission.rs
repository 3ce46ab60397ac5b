//! The ValidatingAdmissionPolicy of `config/admission/`, generated from the catalog, on the real API
//! server: the definite errors in a catalogued connector's settings are refused at `kubectl apply`
//! time with a message that names the field, and nothing else is (custom connectors, pinned images,
//! settings a Secret may supply, every `kubectl baton new` output, an object stored before the
//! policy).

use kube::api::{DeleteParams, DynamicObject};

use super::*;

const POLICY: &str = "config/admission/admission-policy.yaml";
const POLICY_NAME: &str = "batonconnectors.baton.conductorone.com";

fn bc(name: &str, spec: Value) -> Value {
    let mut full = json!({"connector": "okta", "credentials": {"secretRef": {"name": "c1"}}});
    full.as_object_mut().unwrap().extend(spec.as_object().cloned().unwrap_or_default());
    json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
           "metadata": {"name": name}, "spec": full})
}

fn admission_api(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
    Api::all_with(client.clone(), &kube::api::ApiResource::from_gvk_with_plural(&gvk, plural))
}

/// The API server's answer to a dry-run create: `Ok(())`, or the refusal's message.
async fn dry_run(client: &Client, ns: &str, object: Value) -> anyhow::Result<Result<(), String>> {
    let api: Api<BatonConnector> = Api::namespaced(client.clone(), ns);
    let object: BatonConnector = serde_json::from_value(object)?;
    let params = PostParams { dry_run: true, ..Default::default() };
    match api.create(&params, &object).await {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 403 => Ok(Err(s.message)),
        Err(e) => Err(e.into()),
    }
}

async fn refused(client: &Client, ns: &str, object: Value, parts: &[&str]) -> anyhow::Result<()> {
    let name = object["metadata"]["name"].clone();
    match dry_run(client, ns, object).await? {
        Ok(()) => bail!("{name} was accepted"),
        Err(message) => {
            for part in parts {
                ensure!(message.contains(part), "{name}: {part:?} not in {message:?}");
            }
            ensure!(message.contains(POLICY_NAME), "{name}: not refused by the policy: {message}");
            Ok(())
        }
    }
}

async fn accepted(client: &Client, ns: &str, object: Value) -> anyhow::Result<()> {
    let name = object["metadata"]["name"].clone();
    match dry_run(client, ns, object).await? {
        Ok(()) => Ok(()),
        Err(message) => bail!("{name} was refused: {message}"),
    }
}

pub(crate) async fn admission_policy_refuses_definite_errors_at_apply(env: &mut Env) -> anyhow::Result<()> {
    let ns = "admission";
    namespace(&env.client, ns, json!({})).await?;
    // Stored before the policy exists: its metadata can still be edited afterwards.
    let stored = bc("stored-before", json!({"config": {"domian": {"value": "acme.okta.com"}}}));
    apply_value(&env.client, stored, Some(ns)).await?;

    let policy = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(POLICY))?;
    apply_yaml(&env.client, &policy, None).await?;
    let policies = admission_api(&env.client, "ValidatingAdmissionPolicy", "validatingadmissionpolicies");
    let result = async {
        // The API server type-checks every expression against the CRD's schema.
        let checked = eventually("the policy to be type-checked", WAIT, || async {
            let p = policies.get(POLICY_NAME).await?;
            Ok(p.data["status"].get("typeChecking").cloned())
        })
        .await?;
        ensure!(
            checked.get("expressionWarnings").is_none_or(|w| w.as_array().is_some_and(|w| w.is_empty())),
            "type-checking warnings: {checked}"
        );
        cases(env, ns).await
    }
    .await;
    // Leave the cluster as the other cases expect it, whatever happened.
    let bindings =
        admission_api(&env.client, "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings");
    bindings.delete(POLICY_NAME, &DeleteParams::default()).await?;
    policies.delete(POLICY_NAME, &DeleteParams::default()).await?;
    result
}

async fn cases(env: &mut Env, ns: &str) -> anyhow::Result<()> {
    let client = env.client.clone();
    let c = &client;
    // The API server takes a moment to start enforcing a new policy.
    let typo = bc("typo", json!({"config": {"domian": {"value": "acme.okta.com"}}}));
    eventually("the admission policy to be enforced", WAIT, || {
        let typo = typo.clone();
        async move { Ok(dry_run(c, ns, typo).await?.is_err().then_some(())) }
    })
    .await?;
    refused(c, ns, typo, &["spec.config", "domian", "kubectl baton fields okta"]).await?;
    refused(
        c,
        ns,
        bc("env-typo", json!({"env": [{"name": "BATON_DOMIAN", "value": "a"}]})),
        &["BATON_DOMIAN"],
    )
    .await?;
    let missing = bc("missing", json!({"config": {"domain": {"value": "acme.okta.com"}}}));
    refused(c, ns, missing, &["api-token-group", "BATON_API_TOKEN", "private-key-group"]).await?;
    let inline = bc("inline", json!({"config": {"domain": {"value": "a"}, "api-token": {"value": "t0k3n"}}}));
    refused(c, ns, inline, &["api-token", "secretKeyRef"]).await?;
    let typed = bc(
        "typed",
        json!({"config": {"domain": {"value": "a"}, "api-token": {"secretKeyRef": {"name": "s", "key": "k"}},
                          "sync-inactive-apps": {"value": "yes"}}}),
    );
    refused(c, ns, typed, &["sync-inactive-apps"]).await?;

    let complete = json!({"config": {"domain": {"value": "acme.okta.com"},
                                     "api-token": {"secretKeyRef": {"name": "okta", "key": "token"}}}});
    accepted(c, ns, bc("complete", complete.clone())).await?;
    accepted(c, ns, bc("by-env", json!({"env": [{"name": "BATON_DOMAIN", "value": "a"},
                                                 {"name": "BATON_LOG_LEVEL", "value": "debug"}],
                                        "config": {"api-token": {"secretKeyRef": {"name": "s", "key": "k"}}}})))
    .await?;
    // What the API server cannot see, the operator decides: a Secret that may hold the settings, an
    // image pinned to a version the catalog may not describe, a connector it does not know.
    accepted(c, ns, bc("from-secret", json!({"secretRefs": [{"name": "okta-app"}]}))).await?;
    let mut pinned = complete.clone();
    pinned["image"] = json!({"tag": "v0.9.0"});
    pinned["config"]["newer-field"] = json!({"value": "x"});
    accepted(c, ns, bc("pinned", pinned)).await?;
    accepted(
        c,
        ns,
        bc("custom", json!({"connector": "in-house", "env": [{"name": "BATON_ANY", "value": "x"}]})),
    )
    .await?;
    // Stored before the policy: a metadata edit (a finalizer's removal, a label) is not refused.
    let api: Api<BatonConnector> = Api::namespaced(client.clone(), ns);
    let label = json!({"metadata": {"labels": {"team": "identity"}}});
    api.patch("stored-before", &PatchParams::default(), &Patch::Merge(&label)).await?;
    api.delete("stored-before", &DeleteParams::default()).await?;
    // Every manifest `kubectl baton new` prints still applies as printed.
    super::catalog::new_output_applies_for_every_connector(env).await
}
