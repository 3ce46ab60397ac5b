//! The per-tenant metrics' source: each tenant of the tenant store, with its status as the
//! operator last wrote it, and its pool's call accounting and budget (`metrics::tenants`).

use std::sync::Arc;

use super::pools::{Pools, tenant_key};
use crate::{
    api::{Reason, conditions},
    controller::store::tenants::{TenantId, TenantStore, TenantView},
    metrics::tenants::{TenantSample, TenantSource},
};

/// Reads the tenant store and the pools at scrape time.
pub struct TenantSampler {
    /// The caches: their tenant store.
    pub caches: Arc<crate::controller::store::cache::Caches>,
    pub pools: Arc<Pools>,
}

impl TenantSource for TenantSampler {
    fn each(&self, f: &mut dyn FnMut(&TenantSample)) {
        each(&self.caches.tenants, &self.pools, f);
    }
}

fn each(store: &TenantStore, pools: &Pools, f: &mut dyn FnMut(&TenantSample)) {
    let mut ids = store.ids();
    ids.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    for id in ids {
        let Some(view) = store.view(&id) else { continue };
        f(&sample(&id, &view, pools));
    }
}

fn sample(id: &TenantId, view: &TenantView, pools: &Pools) -> TenantSample {
    let (kind, (namespace, name)) = id;
    let status = &view.meta.status;
    let ready = conditions::find(&status.conditions, conditions::READY);
    // A namespaced tenant's Secret is in its own namespace, a cluster tenant's in the operator's.
    let pool = pools.get(&tenant_key(*kind, &view.secret.0, name));
    // The budget in use: the pool's client once there is one, else what it will be made with.
    let (requests_per_second, burst) = match &pool {
        Some(p) => p.client.rate(),
        None => view
            .found
            .settings
            .rate_limit
            .as_ref()
            .map_or_else(|| pools.shared.client.rate(), |r| (r.requests_per_second, r.burst)),
    };
    let calls = pool.map(|p| p.calls.snapshot()).unwrap_or_default();
    TenantSample {
        kind: kind.as_str(),
        namespace: namespace.clone(),
        name: name.clone(),
        ready: ready.is_some_and(|c| c.status == "True"),
        reason: ready.map_or_else(|| Reason::Unobserved.to_string(), |c| c.reason.clone()),
        connectors: status.connectors,
        // The accounting knows now; the status, since the tenant's last check.
        rate_limited: calls.rate_limited || (calls.calls == 0 && status.rate_limited),
        calls: calls.calls,
        errors: calls.errors,
        throttled: calls.throttled,
        requests_per_second,
        burst,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kube::runtime::watcher::Event;

    use super::*;
    use crate::{
        api::{ClusterConductorOneTenant, ConductorOneTenant, TenantKind},
        conductorone::{CallOutcome, ConductorOneClient},
        decide::tenant::Source,
    };

    fn cluster(name: &str, rate: Option<(u32, u32)>) -> ClusterConductorOneTenant {
        let mut spec = serde_json::json!({"apiCredentialsSecretRef": {"name": "c1"}});
        if let Some((rps, burst)) = rate {
            spec["rateLimit"] = serde_json::json!({"requestsPerSecond": rps, "burst": burst});
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ClusterConductorOneTenant",
            "metadata": {"name": name, "generation": 1},
            "spec": spec,
            "status": {"observedGeneration": 1, "connectors": 2, "conditions": [{
                "type": "Ready", "status": "True", "reason": "Authenticated", "message": "ok",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        }))
        .unwrap()
    }

    fn namespaced(ns: &str, name: &str) -> ConductorOneTenant {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ConductorOneTenant",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"apiCredentialsSecretRef": {"name": "c1"}},
        }))
        .unwrap()
    }

    #[test]
    fn a_tenant_reports_its_status_its_calls_and_the_budget_its_client_spends() {
        let caches = Arc::new(crate::controller::store::cache::Caches::default());
        for e in [Event::Init, Event::InitApply(cluster("prod", Some((7, 9)))), Event::InitDone] {
            caches.tenants.observe_cluster("baton-system", &e);
        }
        for e in [Event::Init, Event::InitApply(namespaced("team-a", "own")), Event::InitDone] {
            caches.tenants.observe_namespaced(None, &e);
        }
        let pools = Arc::new(Pools::new(ConductorOneClient::new(Default::default()).unwrap(), 2));
        let source = Source {
            tenant: Some(crate::api::TenantRef {
                kind: TenantKind::ClusterConductorOneTenant,
                name: "prod".into(),
            }),
            secret_namespace: "baton-system".into(),
            secret_name: "c1".into(),
            defaults: None,
            rate_limit: Some(crate::api::RateLimit { requests_per_second: 7, burst: 9 }),
            not_ready: None,
            ca_bundle: None,
        };
        let pool = pools.for_source(&source);
        for (result, status) in [("Ok", 200), ("RateLimited", 429)] {
            pool.calls.record(&CallOutcome {
                operation: "token",
                result,
                status: Some(status),
                latency: Duration::from_millis(1),
                attempt: 0,
                rate_limited: status == 429,
            });
        }
        let sampler = TenantSampler { caches, pools: pools.clone() };
        let mut seen = Vec::new();
        sampler.each(&mut |s| seen.push(s.clone()));
        assert_eq!(seen.len(), 2, "{seen:?}");
        let prod = seen.iter().find(|s| s.name == "prod").unwrap();
        assert_eq!(
            (prod.kind, prod.namespace.as_str(), prod.ready, prod.reason.as_str(), prod.connectors),
            ("ClusterConductorOneTenant", "", true, "Authenticated", 2)
        );
        assert_eq!((prod.calls, prod.errors, prod.throttled, prod.rate_limited), (2, 1, 1, true));
        assert_eq!((prod.requests_per_second, prod.burst), (7, 9));

        // Never called yet: no pool, the operator's own rate, and no report yet.
        let own = seen.iter().find(|s| s.name == "own").unwrap();
        assert_eq!((own.namespace.as_str(), own.ready, own.reason.as_str()), ("team-a", false, "Unobserved"));
        assert_eq!((own.requests_per_second, own.burst), pools.shared.client.rate());
        assert_eq!(own.calls, 0);
    }
}
