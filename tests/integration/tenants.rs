//! Connectors that use a ConductorOne tenant instead of a principal Secret of their own, through the
//! controller against the faked Kubernetes API and the fake ConductorOne: the cluster tenant's
//! Secret is in the operator's namespace and nowhere else, and a connector that cannot use its
//! tenant says why.

use baton_test_support as support;

use std::sync::Arc;

use baton_operator::{
    api::{BatonConnector, ClusterConductorOneTenant, ConductorOneTenant, Reason, TenantKind, TenantRef},
    controller::{Context, reconcile},
    decide::tenant::Source,
};
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use support::{
    fake_kube::b64,
    world::{BC, ROTATE, SECRETS, World},
};

/// The operator's namespace in `controller::Config::default()`.
const OPERATOR_NS: &str = "baton-system";

/// The World's connector, moved to a tenant: its own principal Secret is gone from its namespace and
/// the same principal is in `OPERATOR_NS` as `c1-prod`.
pub(crate) fn world_with_tenant(w: &World, c1: Value) {
    let api = w.kube.get(&format!("{SECRETS}/c1-api")).unwrap();
    w.kube.put(
        &format!("/api/v1/namespaces/{OPERATOR_NS}/secrets/c1-prod"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-prod", "namespace": OPERATOR_NS},
               "data": api["data"].clone()}),
    );
    w.kube.put(
        &format!("{SECRETS}/c1-api"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api", "namespace": "ns"},
               "data": {"clientId": b64("wrong.example"), "clientSecret": b64("wrong")}}),
    );
    w.kube.edit(BC, |bc| {
        let spec = &mut bc["spec"]["conductorOne"];
        spec.as_object_mut().unwrap().remove("apiCredentialsSecretRef");
        spec.as_object_mut().unwrap().extend(c1.as_object().unwrap().clone());
    });
}

fn cluster_tenant(name: &str, annotations: Value, extra: Value) -> ClusterConductorOneTenant {
    let mut spec = json!({"apiCredentialsSecretRef": {"name": "c1-prod"}});
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ClusterConductorOneTenant",
        "metadata": {"name": name, "annotations": annotations}, "spec": spec,
    }))
    .unwrap()
}

/// The principal source of a cluster tenant whose Secret is in the operator's namespace.
fn cluster_source(name: &str, secret: &str) -> Source {
    Source {
        tenant: Some(TenantRef { kind: TenantKind::ClusterConductorOneTenant, name: name.into() }),
        secret_namespace: OPERATOR_NS.into(),
        secret_name: secret.into(),
        defaults: None,
        rate_limit: None,
        not_ready: None,
        ca_bundle: None,
    }
}

/// A watch's first list of these objects.
fn listed<K: Clone>(items: &[K]) -> Vec<Event<K>> {
    std::iter::once(Event::Init)
        .chain(items.iter().cloned().map(Event::InitApply))
        .chain([Event::InitDone])
        .collect()
}

/// A fresh operator whose tenant watches have listed these tenants.
fn operator(
    w: &World,
    cluster: &[ClusterConductorOneTenant],
    namespaced: &[ConductorOneTenant],
) -> Arc<Context> {
    let ctx = w.operator();
    let tenants = &ctx.caches.tenants;
    tenants.expect_watches(2);
    for e in listed(cluster) {
        tenants.observe_cluster(OPERATOR_NS, &e);
    }
    for e in listed(namespaced) {
        tenants.observe_namespaced(None, &e);
    }
    ctx
}

async fn reconcile_with(w: &World, ctx: Arc<Context>) -> Result<(), baton_operator::Error> {
    let bc: BatonConnector = serde_json::from_value(w.kube.get(BC).unwrap()).unwrap();
    reconcile(Arc::new(bc), ctx).await.map(|_| ())
}

fn ready(w: &World) -> (String, String, String) {
    let s = w.status();
    let c = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

#[tokio::test]
async fn a_cluster_tenant_mints_the_connector_credentials_with_the_principal_in_the_operator_namespace() {
    let w = World::new("1s").await;
    world_with_tenant(&w, json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": "prod"}}));
    let ctx = operator(&w, &[cluster_tenant("prod", json!({}), json!({}))], &[]);
    reconcile_with(&w, ctx).await.unwrap();
    assert_eq!(w.c1.count("POST", ROTATE), 1, "minted with the tenant's principal");
    assert!(w.kube.get(&format!("{SECRETS}/okta-c1-credentials-1")).is_some());
    assert_eq!(w.status()["credentials"]["rotation"]["phase"], "Rolling");
}

#[tokio::test]
async fn a_connector_naming_no_tenant_uses_the_default_cluster_tenant() {
    let w = World::new("1s").await;
    world_with_tenant(&w, json!({}));
    let default =
        cluster_tenant("prod", json!({"baton.conductorone.com/is-default-tenant": "true"}), json!({}));
    let other = cluster_tenant("sandbox", json!({}), json!({}));
    reconcile_with(&w, operator(&w, &[default, other], &[])).await.unwrap();
    assert_eq!(w.c1.count("POST", ROTATE), 1);
}

#[tokio::test]
async fn a_missing_or_disallowing_tenant_or_its_missing_secret_is_reported_on_the_connector() {
    let w = World::new("1s").await;
    world_with_tenant(&w, json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": "prod"}}));

    let err = reconcile_with(&w, operator(&w, &[], &[])).await.unwrap_err();
    assert!(matches!(err, baton_operator::Error::Blocked(Reason::TenantNotFound)), "{err:?}");
    let (status, reason, message) = ready(&w);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "TenantNotFound"));
    assert!(message.contains("ClusterConductorOneTenant \"prod\" not found"), "{message}");

    let elsewhere = cluster_tenant("prod", json!({}), json!({"allowedNamespaces": {"names": ["team-a"]}}));
    let err = reconcile_with(&w, operator(&w, &[elsewhere], &[])).await.unwrap_err();
    assert!(matches!(err, baton_operator::Error::Blocked(Reason::TenantNotAllowed)), "{err:?}");
    assert_eq!(ready(&w).1, "TenantNotAllowed");

    w.kube.delete(&format!("/api/v1/namespaces/{OPERATOR_NS}/secrets/c1-prod"));
    let err = reconcile_with(&w, operator(&w, &[cluster_tenant("prod", json!({}), json!({}))], &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, baton_operator::Error::Blocked(Reason::TenantNotReady)), "{err:?}");
    let (_, reason, message) = ready(&w);
    assert_eq!(reason, "TenantNotReady");
    assert!(message.starts_with("ClusterConductorOneTenant \"prod\" is not ready"), "{message}");
    assert!(!message.contains("wrong"), "no secret value in a message: {message}");
    assert_eq!(w.c1.count("POST", ROTATE), 0, "nothing minted with the connector's own (wrong) Secret");
}

#[tokio::test]
async fn a_namespaced_tenant_reads_its_secret_in_the_connector_namespace() {
    let w = World::new("1s").await;
    let api = w.kube.get(&format!("{SECRETS}/c1-api")).unwrap();
    w.kube.put(
        &format!("{SECRETS}/c1-sandbox"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-sandbox", "namespace": "ns"},
               "data": api["data"].clone()}),
    );
    world_with_tenant(&w, json!({"tenantRef": {"name": "sandbox"}}));
    let tenant: ConductorOneTenant = serde_json::from_value(json!({
        "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ConductorOneTenant",
        "metadata": {"name": "sandbox", "namespace": "ns"},
        "spec": {"apiCredentialsSecretRef": {"name": "c1-sandbox"}},
    }))
    .unwrap();
    reconcile_with(&w, operator(&w, &[], &[tenant])).await.unwrap();
    assert_eq!(w.c1.count("POST", ROTATE), 1);
}

/// Isolation: every ConductorOne call slot of another tenant, and of the older form's shared pool,
/// is taken (as by a tenant that is unreachable and holds its calls until they time out), and this
/// tenant's connector still gets its credential; with its own tenant's slots taken it waits.
#[tokio::test]
async fn a_tenant_whose_call_slots_are_all_taken_does_not_hold_up_another_tenant() {
    let w = World::new("1s").await;
    world_with_tenant(&w, json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": "prod"}}));
    let tenants =
        [cluster_tenant("prod", json!({}), json!({})), cluster_tenant("sandbox", json!({}), json!({}))];
    let pool_of = |ctx: &Context, name: &str| ctx.pools.for_source(&cluster_source(name, "c1-prod"));

    let ctx = operator(&w, &tenants, &[]);
    let prod = pool_of(&ctx, "prod");
    let held = prod.slots.try_acquire_many(prod.slots.available_permits() as u32).unwrap();
    let _ = reconcile_with(&w, ctx.clone()).await;
    assert_eq!(w.c1.count("POST", ROTATE), 0, "its own tenant is busy: it waits");
    drop(held);

    let ctx = operator(&w, &tenants, &[]);
    let sandbox = pool_of(&ctx, "sandbox");
    let _other = sandbox.slots.try_acquire_many(sandbox.slots.available_permits() as u32).unwrap();
    let shared = ctx.pools.shared.clone();
    let _older = shared.slots.try_acquire_many(shared.slots.available_permits() as u32).unwrap();
    reconcile_with(&w, ctx.clone()).await.unwrap();
    assert_eq!(w.c1.count("POST", ROTATE), 1, "minted through its own tenant's pool");
    assert_eq!(ctx.pools.tenants(), 2);
}

/// Isolation of the sync poller: a tenant whose ConductorOne never answers (every call times out
/// and is retried) has more connectors due than the poller may read at once; another tenant's
/// connector, due after them, still gets its sync status read at once, through a lane of its own.
#[tokio::test]
async fn a_tenant_whose_polls_all_hang_does_not_hold_up_another_tenants_sync_status() {
    let w = World::new("1s").await;
    world_with_tenant(&w, json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": "prod"}}));
    let hanging = support::fake_conductorone::FakeConductorOne::start().await;
    let principal = hanging.register_principal("hanging");
    hanging.inject(
        support::fake_conductorone::FaultRule::new(support::fake_conductorone::Fault::Delay(
            std::time::Duration::from_secs(30),
        ))
        .times(usize::MAX),
    );
    w.kube.put(
        &format!("/api/v1/namespaces/{OPERATOR_NS}/secrets/c1-hanging"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-hanging", "namespace": OPERATOR_NS},
               "data": {"clientId": b64(&principal.client_id), "clientSecret": b64(&principal.client_secret)}}),
    );
    let tenants =
        [cluster_tenant("prod", json!({}), json!({})), cluster_tenant("hanging", json!({}), json!({}))];
    let ctx = operator(&w, &tenants, &[]);
    let source = |name: &str| cluster_source(name, &format!("c1-{name}"));
    let calm: BatonConnector = serde_json::from_value(w.kube.get(BC).unwrap()).unwrap();
    // Eight connectors of the hanging tenant, each of its own app: eight polls, each taking 8 s
    // (four attempts of the tests' 2 s timeout).
    for i in 0..8 {
        let mut bc = w.kube.get(BC).unwrap();
        bc["metadata"]["name"] = json!(format!("hanging-{i}"));
        bc["spec"]["conductorOne"] = json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": "hanging"},
            "appId": format!("app-{i}"), "connectorId": format!("conn-{i}")});
        let bc: BatonConnector = serde_json::from_value(bc).unwrap();
        ctx.sync_poller.track_resolved(&bc, Some(&source("hanging")));
    }
    let poller = tokio::spawn(ctx.sync_poller.clone().run(Arc::new(ctx.poller_io())));
    // The hanging tenant's polls are out before the calm tenant's connector is due.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    ctx.sync_poller.track_resolved(&calm, Some(&source("prod")));
    let reference = kube::runtime::reflector::ObjectRef::from(&calm);
    let started = std::time::Instant::now();
    let read = loop {
        if let Some(poll) = ctx.sync_poller.last(&reference) {
            break poll;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "the calm tenant's poll waited");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(read.result.is_ok(), "{:?}", read.result);
    let hanging_polls =
        ctx.sync_poller.results.lock().unwrap().keys().filter(|r| r.name.starts_with("hanging-")).count();
    assert_eq!(hanging_polls, 0, "the hanging tenant's polls are still out");
    poller.abort();
}

/// Isolation of deletions: the revocation on deletion takes a call slot of the connector's own
/// tenant, so with the older form's shared slots and another tenant's all taken it still goes on,
/// and with its own tenant's taken it waits.
#[tokio::test]
async fn a_deletion_waits_only_for_its_own_tenants_call_slots() {
    let w = World::new("1s").await;
    world_with_tenant(&w, json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": "prod"}}));
    let tenants =
        [cluster_tenant("prod", json!({}), json!({})), cluster_tenant("sandbox", json!({}), json!({}))];
    let ctx = operator(&w, &tenants, &[]);
    reconcile_with(&w, ctx.clone()).await.unwrap();
    assert_eq!(w.live_credentials().len(), 1, "minted");
    w.kube.edit(BC, |bc| bc["metadata"]["deletionTimestamp"] = json!("2026-12-08T00:00:00Z"));
    let pool_of = |name: &str| ctx.pools.for_source(&cluster_source(name, "c1-prod"));
    let take_all = |pool: &baton_operator::controller::c1::pools::Pool| {
        pool.slots.available_permits().try_into().unwrap()
    };

    let prod = pool_of("prod");
    let held = prod.slots.try_acquire_many(take_all(&prod)).unwrap();
    let _ = reconcile_with(&w, ctx.clone()).await;
    assert_eq!(w.live_credentials().len(), 1, "its own tenant is busy: the revocation waits");
    assert!(!w.kube.get(BC).unwrap()["metadata"]["finalizers"].as_array().unwrap().is_empty());
    drop(held);

    let sandbox = pool_of("sandbox");
    let _other = sandbox.slots.try_acquire_many(take_all(&sandbox)).unwrap();
    let shared = ctx.pools.shared.clone();
    let _older = shared.slots.try_acquire_many(take_all(&shared)).unwrap();
    reconcile_with(&w, ctx.clone()).await.unwrap();
    assert!(w.live_credentials().is_empty(), "revoked through its own tenant's slots");
    assert!(w.kube.get(BC).unwrap()["metadata"]["finalizers"].as_array().unwrap().is_empty());
}
