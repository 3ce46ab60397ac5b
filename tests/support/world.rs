//! A faked Kubernetes API and the fake ConductorOne with one BatonConnector that uses managed
//! credentials, and an operator that can be restarted between reconciles (controller tests).

use std::{sync::Arc, time::Duration};

use baton_operator::{
    api::BatonConnector,
    conductorone::ConductorOneClient,
    controller::{self, Context, reconcile},
    metrics::Metrics,
};
use serde_json::{Value, json};

use super::{
    fake_conductorone::FakeConductorOne,
    fake_kube::{FakeKube, b64},
    harness::{self, APP, CONNECTOR},
};

pub const BC: &str = "/apis/baton.conductorone.com/v1alpha1/namespaces/ns/batonconnectors/okta";
pub const DEPLOY: &str = "/apis/apps/v1/namespaces/ns/deployments/okta";
pub const SECRETS: &str = "/api/v1/namespaces/ns/secrets";
pub const ROTATE: &str = "/api/v1/apps/connectors/credentials";

pub struct World {
    pub kube: FakeKube,
    pub c1: FakeConductorOne,
    pub metrics: Arc<Metrics>,
}

impl World {
    pub async fn new(grace: &str) -> Self {
        let kube = FakeKube::default();
        let c1 = FakeConductorOne::start().await;
        c1.add_connector(APP, CONNECTOR, "okta");
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        c1.set_sync_status(
            APP,
            CONNECTOR,
            json!({"status": "SYNC_STATUS_DONE", "completedAt": now, "lastError": ""}),
        );
        let principal = c1.register_principal("operator");
        kube.put(
            &format!("{SECRETS}/c1-api"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api", "namespace": "ns"},
                   "data": {"clientId": b64(&principal.client_id), "clientSecret": b64(&principal.client_secret)}}),
        );
        // The app's own settings, complete for baton-okta's API-token group: the operator checks them
        // against the catalog before it rolls anything out.
        kube.put(
            &format!("{SECRETS}/okta-app"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "okta-app", "namespace": "ns"},
                   "data": {"token": b64("okta-api-token")}}),
        );
        kube.put(
            BC,
            json!({
                "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
                "metadata": {"name": "okta", "namespace": "ns"},
                "spec": {
                    "connector": "okta",
                    "config": {"domain": {"value": "acme.okta.com"},
                               "api-token": {"secretKeyRef": {"name": "okta-app", "key": "token"}}},
                    "credentials": {"managed": {"rotation": {"interval": "720h", "gracePeriod": grace}}},
                    "conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": APP, "connectorId": CONNECTOR},
                },
                "status": {"observedGeneration": -1},
            }),
        );
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        Self { kube, c1, metrics }
    }

    /// A fresh operator process: nothing survives from the previous one but what the API holds.
    pub fn operator(&self) -> Arc<Context> {
        let client = ConductorOneClient::new(harness::config()).unwrap();
        Arc::new(Context::new(
            self.kube.client(),
            client,
            self.metrics.clone(),
            controller::Config::default(),
        ))
    }

    /// One reconcile by a fresh process, after its poller has read the sync status (as a running
    /// operator's poller would have by then).
    pub async fn reconcile(&self) -> Result<(), baton_operator::Error> {
        let ctx = self.operator();
        poll(&ctx, &self.kube).await;
        let bc: BatonConnector = serde_json::from_value(self.kube.get(BC).unwrap()).unwrap();
        reconcile(Arc::new(bc), ctx).await.map(|_| ())
    }

    /// One reconcile by a fresh process whose watches have listed everything the fake holds, as a
    /// running operator's have: reads come from its caches.
    pub async fn reconcile_watched(&self) -> Result<(), baton_operator::Error> {
        let ctx = self.operator();
        let bc: BatonConnector = serde_json::from_value(self.kube.get(BC).unwrap()).unwrap();
        self.list_into_caches(&ctx, &bc);
        poll(&ctx, &self.kube).await;
        reconcile(Arc::new(bc), ctx).await.map(|_| ())
    }

    /// Plays the watches' first lists: the Secret index first (as the operator starts the Secret
    /// watch once it knows every resource), then Deployments, CronJobs, Jobs and Secrets.
    fn list_into_caches(&self, ctx: &Context, bc: &BatonConnector) {
        use kube::runtime::watcher::Event;
        let caches = &ctx.caches;
        caches.expect_watches(4);
        caches.index.set("ns", "okta", baton_operator::resources::inputs::referenced_secrets(bc));
        fn listed<K: serde::de::DeserializeOwned>(kube: &FakeKube, path: &str) -> Vec<Event<K>> {
            let objects = kube.list_under(path).into_iter().map(|o| serde_json::from_value(o).unwrap());
            std::iter::once(Event::Init)
                .chain(objects.map(Event::InitApply))
                .chain([Event::InitDone])
                .collect()
        }
        for e in listed(&self.kube, "/apis/apps/v1/namespaces/ns/deployments") {
            caches.observe_deployment(None, &e);
        }
        for e in listed(&self.kube, "/apis/batch/v1/namespaces/ns/cronjobs") {
            caches.observe_cronjob(None, &e);
        }
        for e in listed(&self.kube, "/apis/batch/v1/namespaces/ns/jobs") {
            caches.observe_job(None, &e);
        }
        for e in listed(&self.kube, SECRETS) {
            caches.observe_secret(None, &e);
        }
    }

    /// The single-Secret GETs sent to the API server since the calls were last cleared.
    pub fn secret_gets(&self) -> usize {
        let prefix = format!("{SECRETS}/");
        let gets: Vec<String> = self
            .kube
            .calls()
            .into_iter()
            .filter(|c| c.method == "GET" && c.path.starts_with(&prefix))
            .map(|c| c.path)
            .collect();
        if !gets.is_empty() {
            eprintln!("Secret GETs: {gets:?}");
        }
        gets.len()
    }

    pub fn status(&self) -> Value {
        self.kube.get(BC).unwrap()["status"].clone()
    }

    pub fn secret_in_use(&self) -> Option<String> {
        let d = self.kube.get(DEPLOY)?;
        let env = d["spec"]["template"]["spec"]["containers"][0]["env"].as_array()?.clone();
        env.iter()
            .find(|e| e["name"] == "BATON_CLIENT_SECRET")
            .and_then(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str().map(str::to_string))
    }

    pub fn credential_in_secret(&self, name: &str) -> Option<String> {
        let s = self.kube.get(&format!("{SECRETS}/{name}"))?;
        s["metadata"]["annotations"]["baton.conductorone.com/credential-id"].as_str().map(str::to_string)
    }

    pub fn make_available(&self) {
        self.kube.make_available(DEPLOY);
    }

    pub fn live_credentials(&self) -> Vec<String> {
        self.c1.credentials().into_iter().filter(|c| c.revoked_at.is_none()).map(|c| c.id).collect()
    }

    pub fn events(&self) -> Vec<String> {
        self.kube.calls().into_iter().filter(|c| c.path.contains("/events")).map(|c| c.body).collect()
    }
}

/// Lets the process's poller read the sync status of every connector that is due.
pub async fn poll(ctx: &Context, kube: &FakeKube) {
    let bc: BatonConnector = serde_json::from_value(kube.get(BC).unwrap()).unwrap();
    ctx.sync_poller.track(&bc, false);
    ctx.sync_poller.poll_due(&ctx.poller_io()).await;
}

/// Reconciles, playing the Deployment controller in between, until the rotation is over.
pub async fn converge(w: &World) {
    for _ in 0..10 {
        let _ = w.reconcile().await;
        w.make_available();
        let s = w.status();
        if s["credentials"]["rotation"].is_null() && s["credentials"]["credentialId"].is_string() {
            let _ = w.reconcile().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("did not converge: {}", w.status());
}
