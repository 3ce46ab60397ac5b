//! A BatonConnector the operator cannot read (for example one written for a newer CRD version, with
//! a mode this operator does not know). It is reported on the resource itself and skipped; it never
//! stops the operator from reconciling the rest of the fleet.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
    core::error_boundary::InvalidObject,
    runtime::{controller::Action, events::EventType},
};
use serde_json::json;
use tracing::warn;

use crate::controller::context::{Context, FIELD_MANAGER};
use crate::{
    Result,
    api::{BatonConnector, conditions},
};

const REASON: &str = "InvalidSpec";

pub async fn report(ctx: &Context, invalid: &InvalidObject) -> Result<Action> {
    let meta = &invalid.metadata;
    let (Some(ns), Some(name)) = (meta.namespace.clone(), meta.name.clone()) else {
        return Ok(Action::await_change());
    };
    let message = format!("the operator cannot read this resource: {}", invalid.error);
    warn!(namespace = %ns, name = %name, error = %invalid.error, "skipping a BatonConnector the operator cannot read");
    let resource = ApiResource::erase::<BatonConnector>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &resource);
    let Some(live) = api.get_opt(&name).await? else { return Ok(Action::await_change()) };
    // Reported once per change of the resource: a restart of the operator writes nothing again.
    let status = &live.data["status"];
    let reported = status["observedGeneration"].as_i64() == meta.generation
        && status["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == conditions::STALLED && c["reason"] == REASON && c["message"] == message)
        });
    if reported {
        return Ok(Action::await_change());
    }
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let condition = |type_: &str, status: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": REASON, "message": message,
               "lastTransitionTime": now, "observedGeneration": meta.generation})
    };
    let patch = json!({"status": {
        "observedGeneration": meta.generation,
        "conditions": [
            condition(conditions::READY, "False", &message),
            condition(conditions::RECONCILING, "False", ""),
            condition(conditions::STALLED, "True", &message),
        ],
    }});
    // The one field manager of status, though only these fields are written: the resource cannot be
    // read, so nothing else of its status can be computed, and a merge patch keeps the rest.
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    api.patch_status(&name, &params, &Patch::Merge(&patch)).await?;
    let reference = ObjectReference {
        api_version: Some("baton.conductorone.com/v1alpha1".into()),
        kind: Some("BatonConnector".into()),
        name: Some(name.clone()),
        namespace: Some(ns.clone()),
        uid: meta.uid.clone(),
        ..Default::default()
    };
    let event = kube::runtime::events::Event {
        type_: EventType::Warning,
        reason: REASON.into(),
        note: Some(message),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        warn!(error = %e, "could not publish event");
    }
    Ok(Action::await_change())
}
