//! One ConductorOne client (rate limiter, token cache) and one pool of call slots per tenant, so that
//! a tenant that is unreachable or answers 429 to everything holds up only its own connectors'
//! rotations, onboarding and revocations. Connectors of the older form
//! (`apiCredentialsSecretRef`) keep sharing the operator's one client and slot pool, as before
//! tenants existed: their principals are not grouped by tenant, so there is nothing to isolate by.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::Semaphore;

use sha2::{Digest, Sha256};

use super::tenant_calls::TenantCalls;
use crate::{
    api::TenantKind,
    conductorone::{ConductorOneClient, TenantClient},
    decide::tenant::Source,
};

/// What one tenant's calls go through.
pub struct Pool {
    pub client: ConductorOneClient,
    /// Reconciles that may wait on this tenant's ConductorOne at once.
    pub slots: Semaphore,
    /// What this tenant's calls did (the shared pool's count nothing: the operator's metrics have
    /// them).
    pub calls: Arc<TenantCalls>,
    /// The budget and CA bundle the client was made with.
    made_with: (Option<(u32, u32)>, Option<[u8; 32]>),
}

/// A tenant's pool: the tenant (its kind, its Secret's namespace, which is the tenant's own for a
/// namespaced tenant, and its name), its budget (`None` for the operator's own rate) and the digest
/// of its CA bundle (the sync poller keeps a key per connector: the bundle itself would be copied
/// thousands of times).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    kind: &'static str,
    namespace: String,
    name: String,
    rate: Option<(u32, u32)>,
    ca: Option<[u8; 32]>,
}

impl PoolKey {
    /// `None` for the older form, which shares the operator's pool.
    pub fn of(source: &Source) -> Option<Self> {
        let tenant = source.tenant.as_ref()?;
        Some(Self {
            kind: tenant.kind.as_str(),
            namespace: source.secret_namespace.clone(),
            name: tenant.name.clone(),
            rate: source.rate_limit.as_ref().map(|r| (r.requests_per_second, r.burst)),
            ca: source.ca_bundle.as_deref().map(|pem| Sha256::digest(pem.as_bytes()).into()),
        })
    }
}

/// A tenant: its kind, the namespace of its Secret and its name.
pub type TenantKey = (&'static str, String, String);

/// The key of a tenant's pool.
pub fn tenant_key(kind: TenantKind, secret_namespace: &str, name: &str) -> TenantKey {
    (kind.as_str(), secret_namespace.to_string(), name.to_string())
}

pub struct Pools {
    /// The older form's, and the template of every tenant's client (its settings and metrics).
    pub shared: Arc<Pool>,
    per_tenant: Mutex<HashMap<TenantKey, Arc<Pool>>>,
    slots: usize,
}

impl Pools {
    pub fn new(shared: ConductorOneClient, slots: usize) -> Self {
        Self {
            shared: Arc::new(Pool {
                client: shared,
                slots: Semaphore::new(slots),
                calls: Default::default(),
                made_with: (None, None),
            }),
            per_tenant: Mutex::default(),
            slots,
        }
    }

    /// The pool of a connector's principal. A tenant's pool is made on first use, at the tenant's
    /// `rateLimit` (the operator's own rate without one) and with its `caBundle`, and made again
    /// when either changes.
    pub fn for_source(&self, source: &Source) -> Arc<Pool> {
        let Some(key) = PoolKey::of(source) else { return self.shared.clone() };
        self.pool(&key, |_| source.ca_bundle.as_deref().map(str::to_string), true)
    }

    /// The pool of a key the sync poller kept. Its tenant's pool as it is: only a connector's
    /// reconcile (with the tenant's whole settings) makes one again; the rare poll before any has
    /// made one goes out without the tenant's CA bundle, and its pool is made again with it later.
    pub fn for_key(&self, key: Option<&PoolKey>) -> Arc<Pool> {
        let Some(k) = key else { return self.shared.clone() };
        self.pool(k, |_| None, false)
    }

    fn pool(&self, k: &PoolKey, pem: impl Fn(&PoolKey) -> Option<String>, remake: bool) -> Arc<Pool> {
        let key = (k.kind, k.namespace.clone(), k.name.clone());
        let mut pools = self.per_tenant.lock().expect("tenant pools poisoned");
        if let Some(pool) = pools.get(&key).filter(|p| !remake || p.made_with == (k.rate, k.ca)) {
            return pool.clone();
        }
        // The budget or CA bundle changed: the new client keeps the tenant's accounting.
        let calls = pools.get(&key).map(|p| p.calls.clone()).unwrap_or_default();
        let hook_calls = calls.clone();
        let hook = Arc::new(move |call: &crate::conductorone::CallOutcome| hook_calls.record(call));
        let (requests_per_second, burst) = k.rate.unwrap_or_else(|| self.shared.client.rate());
        let ca_pem = pem(k);
        let tenant = TenantClient { requests_per_second, burst, ca_bundle: ca_pem.as_deref() };
        let (client, made_with) = match self.shared.client.for_tenant(tenant, hook) {
            Ok(client) => (client, (k.rate, ca_pem.as_ref().and(k.ca))),
            Err(e) => {
                // A CA bundle that is not PEM: the tenant's status says so (`ConfigError`) and its
                // connectors make no call until it is fixed. The rest of the settings are the
                // shared client's, which was built from them.
                tracing::warn!(error = %e, tenant = %k.name, "no client of its own for a tenant");
                return self.shared.clone();
            }
        };
        let pool = Arc::new(Pool { client, slots: Semaphore::new(self.slots), calls, made_with });
        pools.insert(key, pool.clone());
        pool
    }

    /// A tenant's pool if it has one yet.
    pub fn get(&self, key: &TenantKey) -> Option<Arc<Pool>> {
        self.per_tenant.lock().expect("tenant pools poisoned").get(key).cloned()
    }

    /// Every tenant's pool, for the per-tenant metrics.
    pub fn each(&self) -> Vec<(TenantKey, Arc<Pool>)> {
        let pools = self.per_tenant.lock().expect("tenant pools poisoned");
        pools.iter().map(|(k, p)| (k.clone(), p.clone())).collect()
    }

    /// Forgets a deleted tenant's pool.
    pub fn forget(&self, key: &TenantKey) {
        self.per_tenant.lock().expect("tenant pools poisoned").remove(key);
    }

    /// How many tenants have a pool of their own.
    pub fn tenants(&self) -> usize {
        self.per_tenant.lock().expect("tenant pools poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RateLimit, TenantKind, TenantRef};

    fn source(kind: TenantKind, ns: &str, name: &str, rate: Option<(u32, u32)>) -> Source {
        Source {
            tenant: Some(TenantRef { kind, name: name.into() }),
            secret_namespace: ns.into(),
            secret_name: "s".into(),
            defaults: None,
            rate_limit: rate.map(|(requests_per_second, burst)| RateLimit { requests_per_second, burst }),
            not_ready: None,
            ca_bundle: None,
        }
    }

    #[test]
    fn each_tenant_has_its_own_client_and_slots_and_the_older_form_shares_one() {
        let pools = Pools::new(ConductorOneClient::new(Default::default()).unwrap(), 2);
        let older = Source { tenant: None, ..source(TenantKind::ConductorOneTenant, "ns", "x", None) };
        assert!(Arc::ptr_eq(&pools.for_source(&older), &pools.shared));

        let prod =
            pools.for_source(&source(TenantKind::ClusterConductorOneTenant, "op", "prod", Some((7, 9))));
        let sandbox = pools.for_source(&source(TenantKind::ClusterConductorOneTenant, "op", "sandbox", None));
        assert!(!Arc::ptr_eq(&prod, &sandbox) && !Arc::ptr_eq(&prod, &pools.shared));
        assert_eq!(prod.client.rate(), (7, 9), "the tenant's own budget");
        assert_eq!(
            sandbox.client.rate(),
            pools.shared.client.rate(),
            "without rateLimit, the operator's rate"
        );

        // One tenant's slots taken leave the other's free.
        let _held: Vec<_> = (0..2).map(|_| prod.slots.try_acquire().unwrap()).collect();
        assert!(prod.slots.try_acquire().is_err());
        assert!(sandbox.slots.try_acquire().is_ok());

        let again =
            pools.for_source(&source(TenantKind::ClusterConductorOneTenant, "op", "prod", Some((7, 9))));
        assert!(Arc::ptr_eq(&prod, &again), "kept while the budget stays");
        let changed =
            pools.for_source(&source(TenantKind::ClusterConductorOneTenant, "op", "prod", Some((3, 3))));
        assert_eq!(changed.client.rate(), (3, 3), "made again at the new budget");
        assert!(Arc::ptr_eq(&changed.calls, &prod.calls), "the tenant's accounting carries over");
        let namesake = pools.for_source(&source(TenantKind::ConductorOneTenant, "team-a", "prod", None));
        assert!(!Arc::ptr_eq(&changed, &namesake), "a namespaced tenant of the same name is another tenant");
        assert_eq!(pools.tenants(), 3);
    }
}
