//! A tenant's own reconcile, against the faked Kubernetes API and the fake ConductorOne: its status
//! says whether ConductorOne issues its principal a token and how many connectors use it, a
//! rejected principal is reported once on the tenant and named by its connectors, and a deletion
//! waits for the connectors that still need the principal.

use baton_test_support as support;

use std::sync::Arc;

use baton_operator::{
    api::{BatonConnector, ClusterConductorOneTenant, Reason, TenantKind, TenantRef},
    controller::{
        Context, reconcile,
        store::tenants::{TENANT_FINALIZER, TenantId},
        tenants::{Next, reconcile::tenant},
    },
    decide::tenant::Wanted,
};
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use support::{
    fake_kube::b64,
    world::{BC, ROTATE, World},
};

const OPERATOR_NS: &str = "baton-system";
const TENANT: &str = "/apis/baton.conductorone.com/v1alpha1/clusterconductoronetenants/prod";

/// The World's connector on the cluster tenant `prod`, whose Secret holds the World's principal.
fn world_on_tenant(w: &World) {
    super::tenants::world_with_tenant(
        w,
        json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": "prod"}}),
    );
    w.kube.put(
        TENANT,
        json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ClusterConductorOneTenant",
               "metadata": {"name": "prod"}, "spec": {"apiCredentialsSecretRef": {"name": "c1-prod"}}}),
    );
}

fn live_tenant(w: &World) -> ClusterConductorOneTenant {
    serde_json::from_value(w.kube.get(TENANT).unwrap()).unwrap()
}

/// The tenant watch delivering the tenant as the fake API server holds it now.
fn watch_sees_tenant(ctx: &Context, w: &World, first: bool) {
    let store = &ctx.caches.tenants;
    let events = match first {
        true => vec![Event::Init, Event::InitApply(live_tenant(w)), Event::InitDone],
        false => vec![Event::Apply(live_tenant(w))],
    };
    for e in events {
        store.observe_cluster(OPERATOR_NS, &e);
    }
}

fn operator(w: &World) -> Arc<Context> {
    let ctx = w.operator();
    ctx.caches.tenants.expect_watches(1);
    watch_sees_tenant(&ctx, w, true);
    let wanted =
        Wanted::Tenant(TenantRef { kind: TenantKind::ClusterConductorOneTenant, name: "prod".into() });
    ctx.caches.tenants.set_user(("ns".into(), "okta".into()), Some(wanted));
    ctx
}

fn id() -> TenantId {
    (TenantKind::ClusterConductorOneTenant, (String::new(), "prod".into()))
}

fn condition(object: &Value, type_: &str) -> Option<(String, String, String)> {
    let c = object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?.clone();
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// The reasons of the events published about the tenant, oldest first.
fn tenant_events(w: &World) -> Vec<String> {
    w.kube
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path.contains("/events"))
        .map(|c| serde_json::from_str::<Value>(&c.body).unwrap())
        .filter(|e| e["regarding"]["kind"] == "ClusterConductorOneTenant")
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn reconcile_connector(w: &World, ctx: Arc<Context>) -> Result<(), baton_operator::Error> {
    let bc: BatonConnector = serde_json::from_value(w.kube.get(BC).unwrap()).unwrap();
    reconcile(Arc::new(bc), ctx).await.map(|_| ())
}

#[tokio::test]
async fn a_tenant_is_ready_once_conductorone_issues_its_principal_a_token_and_counts_its_connectors() {
    let w = World::new("1s").await;
    world_on_tenant(&w);
    let ctx = operator(&w);

    assert_eq!(tenant(&ctx, &id()).await.unwrap(), Next::Ready { rate_limited: false });
    let live = w.kube.get(TENANT).unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!([TENANT_FINALIZER]), "held while it exists");
    let (status, reason, message) = condition(&live, "Ready").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Authenticated"));
    assert!(message.contains(w.c1.authority()), "{message}");
    assert_eq!(live["status"]["connectors"], 1);
    assert_eq!(live["status"]["host"], w.c1.authority());
    assert_eq!(live["status"]["observedGeneration"], 1);
    assert_eq!(tenant_events(&w), ["TenantReady"]);

    // Checked again with nothing changed: the cached token, no write, no event.
    watch_sees_tenant(&ctx, &w, false);
    let exchanges = w.c1.token_exchanges().len();
    w.kube.clear_calls();
    assert_eq!(tenant(&ctx, &id()).await.unwrap(), Next::Ready { rate_limited: false });
    assert!(w.kube.writes().is_empty(), "{:?}", w.kube.writes());
    assert_eq!(w.c1.token_exchanges().len(), exchanges, "no token request while the cached one is fresh");
}

#[tokio::test]
async fn a_rejected_principal_is_said_once_on_the_tenant_and_its_connectors_name_it() {
    let w = World::new("1s").await;
    world_on_tenant(&w);
    let principal_secret = format!("/api/v1/namespaces/{OPERATOR_NS}/secrets/c1-prod");
    let good = w.kube.get(&principal_secret).unwrap()["data"].clone();
    let stranger = w.c1.register_principal("stranger");
    w.c1.disable_principal(&stranger.client_id);
    w.kube.edit(&format!("/api/v1/namespaces/{OPERATOR_NS}/secrets/c1-prod"), |s| {
        s["data"] =
            json!({"clientId": b64(&stranger.client_id), "clientSecret": b64(&stranger.client_secret)});
    });
    let ctx = operator(&w);
    assert_eq!(tenant(&ctx, &id()).await.unwrap(), Next::NotReady);
    let live = w.kube.get(TENANT).unwrap();
    let (status, reason, message) = condition(&live, "Ready").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "CredentialsRejected"), "{message}");
    assert!(!message.contains(&stranger.client_secret), "no secret in a message");
    assert_eq!(tenant_events(&w), ["TenantNotReady"]);

    // The connector reads the tenant's verdict and calls nothing with the rejected principal.
    watch_sees_tenant(&ctx, &w, false);
    let calls = w.c1.count("POST", ROTATE);
    let err = reconcile_connector(&w, ctx.clone()).await.unwrap_err();
    assert!(matches!(err, baton_operator::Error::Blocked(Reason::TenantNotReady)), "{err:?}");
    let ready = condition(&json!({"status": w.status()}), "Ready").unwrap();
    assert_eq!(ready.1, "TenantNotReady");
    assert!(ready.2.contains("CredentialsRejected"), "{}", ready.2);
    assert_eq!(w.c1.count("POST", ROTATE), calls);

    // The principal rotated in its Secret: Ready again, and the connector goes on.
    w.kube.edit(&principal_secret, |s| s["data"] = good);
    let ctx = operator(&w);
    assert_eq!(tenant(&ctx, &id()).await.unwrap(), Next::Ready { rate_limited: false });
    watch_sees_tenant(&ctx, &w, false);
    reconcile_connector(&w, ctx).await.unwrap();
    assert_eq!(w.c1.count("POST", ROTATE), calls + 1, "minted once the tenant is ready");
    assert_eq!(tenant_events(&w), ["TenantNotReady", "TenantReady"]);
}

#[tokio::test]
async fn a_deleted_tenant_waits_for_its_connectors_then_lets_go() {
    let w = World::new("1s").await;
    world_on_tenant(&w);
    let ctx = operator(&w);
    tenant(&ctx, &id()).await.unwrap();
    w.kube.edit(TENANT, |t| t["metadata"]["deletionTimestamp"] = json!("2026-12-08T00:00:00Z"));
    watch_sees_tenant(&ctx, &w, false);

    assert_eq!(tenant(&ctx, &id()).await.unwrap(), Next::Ready { rate_limited: false });
    let live = w.kube.get(TENANT).unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!([TENANT_FINALIZER]), "kept while used");
    let (status, reason, message) = condition(&live, "InUse").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "InUse"));
    assert!(message.ends_with("ns/okta"), "{message}");
    assert!(tenant_events(&w).contains(&"DeletionBlocked".to_string()));

    // The connector moved away (or was deleted): the finalizer goes.
    ctx.caches.tenants.set_user(("ns".into(), "okta".into()), None);
    watch_sees_tenant(&ctx, &w, false);
    assert_eq!(tenant(&ctx, &id()).await.unwrap(), Next::Gone);
    assert_eq!(w.kube.get(TENANT).unwrap()["metadata"]["finalizers"], json!([]));
}

/// A tenant behind a TLS-inspecting proxy brings the proxy's CA: a bundle that is PEM makes the
/// tenant's client (the fake is plain HTTP on loopback, so the token still comes), one that is not
/// is the tenant's `ConfigError`, and its connectors call nothing.
#[tokio::test]
async fn a_tenant_ca_bundle_is_loaded_and_a_broken_one_is_the_tenant_s_config_error() {
    let w = World::new("1s").await;
    world_on_tenant(&w);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).unwrap().pem();
    w.kube.edit(TENANT, |t| t["spec"]["caBundle"] = json!(ca));
    let ctx = operator(&w);
    assert_eq!(tenant(&ctx, &id()).await.unwrap(), Next::Ready { rate_limited: false });

    let broken = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
    w.kube.edit(TENANT, |t| t["spec"]["caBundle"] = json!(broken));
    let ctx = operator(&w);
    assert_eq!(tenant(&ctx, &id()).await.unwrap(), Next::NotReady);
    let (status, reason, message) = condition(&w.kube.get(TENANT).unwrap(), "Ready").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ConfigError"), "{message}");
    assert!(message.contains("caBundle"), "{message}");

    watch_sees_tenant(&ctx, &w, false);
    let err = reconcile_connector(&w, ctx).await.unwrap_err();
    assert!(matches!(err, baton_operator::Error::Blocked(Reason::TenantNotReady)), "{err:?}");
    assert_eq!(w.c1.count("POST", ROTATE), 0);
}
