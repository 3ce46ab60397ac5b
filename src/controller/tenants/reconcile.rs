//! One tenant's check: its finalizer, its principal (from its Secret, through the tenant's own
//! ConductorOne client), and its status and events when they change. `decide::tenant_status`
//! decides; this reads and writes.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Resource,
    api::{Patch, PatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::info;

use super::Next;
use crate::{
    Result,
    api::{ClusterConductorOneTenant, ConductorOneTenant, TenantKind, TenantRef},
    conductorone::{ClientId, check_ca_bundle},
    controller::{
        context::{Context, FIELD_MANAGER},
        reconcile::publish::publish_about,
        store::tenants::{TENANT_FINALIZER, TenantId, TenantView},
    },
    decide::{
        credentials::api_credentials_in,
        events::Note,
        tenant::Source,
        tenant_status::{self, Auth, Finalizer, Seen},
    },
};

pub async fn tenant(ctx: &Context, id: &TenantId) -> Result<Next> {
    let Some(view) = ctx.caches.tenants.view(id) else {
        return Ok(Next::Gone);
    };
    let users = ctx.caches.tenants.users(id);
    let (secret_ns, secret_name) = &view.secret;
    match tenant_status::finalizer(
        view.meta.deleting,
        view.meta.finalizers.iter().any(|f| f == TENANT_FINALIZER),
        users.len(),
    ) {
        Finalizer::Add => add_finalizer(ctx, id, &view).await?,
        Finalizer::Remove => {
            remove_finalizer(ctx, id, &view).await?;
            info!(kind = id.0.as_str(), namespace = %id.1.0, name = %id.1.1, "no connector uses the deleted tenant; finalizer removed");
            return Ok(Next::Gone);
        }
        Finalizer::Keep => {}
    }

    let secrets = ctx.caches.secrets(&ctx.client, secret_ns, std::slice::from_ref(secret_name)).await?;
    let principal = api_credentials_in(secret_ns, secret_name, &secrets);
    let source = Source {
        tenant: Some(TenantRef { kind: id.0, name: id.1.1.clone() }),
        secret_namespace: secret_ns.clone(),
        secret_name: secret_name.clone(),
        defaults: None,
        rate_limit: view.found.settings.rate_limit.clone(),
        not_ready: None,
        ca_bundle: view.found.settings.ca_bundle.clone(),
    };
    let pool = ctx.pools.for_source(&source);
    let ca = view.found.settings.ca_bundle.as_deref().map(check_ca_bundle).transpose();
    let auth = match (&principal, ca) {
        // A bundle that is not PEM: no client of the tenant's own can be made.
        (Ok(_), Err(e)) => Some(Auth::Failed { kind: e.kind(), message: e.message().to_string() }),
        (Ok(creds), Ok(_)) => Some(match pool.client.authenticate(creds).await {
            Ok(()) => Auth::Token,
            Err(e) => Auth::Failed { kind: e.kind(), message: e.message().to_string() },
        }),
        (Err(_), _) => None,
    };
    let host = principal.map(|creds| {
        ClientId::parse(&creds.client_id).map(|c| c.authority().to_string()).unwrap_or_else(|_| "?".into())
    });
    let calls = pool.calls.snapshot();
    let now = Time(Timestamp::now());
    let seen = Seen {
        generation: view.meta.generation,
        principal: host,
        auth,
        users: &users,
        last_error: calls.last_error,
        rate_limited: calls.rate_limited,
        deleting: view.meta.deleting,
        previous: &view.meta.status,
        now: &now,
    };
    let status = tenant_status::compute(&seen);
    let ready = crate::api::conditions::is_true(&status.conditions, crate::api::conditions::READY);
    if status != view.meta.status {
        let notes = tenant_status::transitions(&view.meta.status, &status);
        write_status(ctx, id, &status).await?;
        for note in notes {
            publish(ctx, id, &view, note).await;
        }
    }
    Ok(if ready { Next::Ready { rate_limited: status.rate_limited } } else { Next::NotReady })
}

/// The tenant's API: namespaced or cluster-wide, as its kind is.
fn api<K>(ctx: &Context, id: &TenantId) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    Api::namespaced(ctx.client.clone(), &id.1.0)
}

async fn patch_tenant(
    ctx: &Context,
    id: &TenantId,
    patch: Patch<serde_json::Value>,
    status: bool,
) -> Result<()> {
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    let name = &id.1.1;
    match id.0 {
        TenantKind::ConductorOneTenant => {
            send(api::<ConductorOneTenant>(ctx, id), name, &params, &patch, status).await
        }
        TenantKind::ClusterConductorOneTenant => {
            send(Api::<ClusterConductorOneTenant>::all(ctx.client.clone()), name, &params, &patch, status)
                .await
        }
    }
}

async fn send<K>(
    api: Api<K>,
    name: &str,
    params: &PatchParams,
    patch: &Patch<serde_json::Value>,
    status: bool,
) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match status {
        true => api.patch_status(name, params, patch).await?,
        false => api.patch(name, params, patch).await?,
    };
    Ok(())
}

async fn write_status(ctx: &Context, id: &TenantId, status: &crate::api::TenantStatus) -> Result<()> {
    patch_tenant(ctx, id, Patch::Merge(json!({"status": status})), true).await
}

async fn add_finalizer(ctx: &Context, id: &TenantId, view: &TenantView) -> Result<()> {
    // Guarded by the resourceVersion, so that another writer's finalizer is never lost.
    let ops = match view.meta.finalizers.is_empty() {
        true => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": view.meta.resource_version},
            {"op": "add", "path": "/metadata/finalizers", "value": [TENANT_FINALIZER]},
        ]),
        false => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": view.meta.resource_version},
            {"op": "add", "path": "/metadata/finalizers/-", "value": TENANT_FINALIZER},
        ]),
    };
    patch_tenant(ctx, id, Patch::Json(serde_json::from_value(ops).expect("valid JSON patch")), false).await
}

async fn remove_finalizer(ctx: &Context, id: &TenantId, view: &TenantView) -> Result<()> {
    let Some(index) = view.meta.finalizers.iter().position(|f| f == TENANT_FINALIZER) else { return Ok(()) };
    let ops = json!([
        {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": TENANT_FINALIZER},
        {"op": "remove", "path": format!("/metadata/finalizers/{index}")},
    ]);
    patch_tenant(ctx, id, Patch::Json(serde_json::from_value(ops).expect("valid JSON patch")), false).await
}

/// Events about a cluster tenant go to the `default` namespace, as for other cluster-scoped objects.
async fn publish(ctx: &Context, id: &TenantId, view: &TenantView, note: Note) {
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("baton.conductorone.com/v1alpha1".into()),
        kind: Some(id.0.as_str().into()),
        namespace: (id.0 == TenantKind::ConductorOneTenant).then(|| id.1.0.clone()),
        name: Some(id.1.1.clone()),
        uid: view.meta.uid.clone(),
        ..Default::default()
    };
    publish_about(ctx, &reference, note).await;
}
