//! The ConductorOne tenants as their watches deliver them, kept whole (a tenant is small and there
//! are few), and which connectors use which tenant, so that a tenant's change, or its Secret's,
//! reconciles exactly its connectors.

use std::{
    collections::{HashMap, HashSet},
    sync::RwLock,
    time::Duration,
};

use kube::{ResourceExt, runtime::watcher::Event};
use tokio::sync::{mpsc, watch};

use super::Key;
use crate::{
    api::{
        ClusterConductorOneTenant, ConductorOneTenant, DEFAULT_TENANT_ANNOTATION, TenantKind, TenantStatus,
    },
    decide::{
        tenant::{FoundTenant, Wanted},
        tenant_status,
    },
};

/// A tenant: its kind and (namespace, name), the namespace "" for a cluster tenant.
pub type TenantId = (TenantKind, Key);

/// The finalizer a tenant carries while connectors may still need its principal.
pub const TENANT_FINALIZER: &str = "baton.conductorone.com/tenant-in-use";

/// What the tenant reconcile reads of a tenant besides its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantMeta {
    pub generation: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
    pub status: TenantStatus,
}

impl TenantMeta {
    fn of<K: kube::Resource>(object: &K, status: Option<&TenantStatus>) -> Self {
        let meta = object.meta();
        Self {
            generation: meta.generation,
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            status: status.cloned().unwrap_or_default(),
        }
    }
}

/// A tenant as the tenant reconcile sees it.
#[derive(Clone, Debug)]
pub struct TenantView {
    pub found: FoundTenant,
    pub secret: Key,
    pub meta: TenantMeta,
}

/// How long a reconcile waits for the tenant watches' first lists: a connector must not read
/// `TenantNotFound` because the operator has just started.
const LIST_WAIT: Duration = Duration::from_secs(30);

struct Entry {
    found: FoundTenant,
    /// Cluster tenants: annotated as the default.
    is_default: bool,
    /// Where its principal's Secret is.
    secret: Key,
    meta: TenantMeta,
}

/// A tenant watch: its kind and scope.
type WatchScope = (TenantKind, Option<String>);

/// Tenants by (namespace, name); cluster tenants under the namespace "".
pub struct TenantStore {
    items: RwLock<HashMap<(TenantKind, Key), Entry>>,
    /// Per kind and scope being (re-)listed, the tenants seen so far.
    relisting: RwLock<HashMap<WatchScope, HashSet<Key>>>,
    /// Connectors that name a tenant or use the default one, with what they want.
    users: RwLock<HashMap<Key, Wanted>>,
    /// How many tenant watches have not finished their first list, and those that have.
    unlisted: watch::Sender<usize>,
    first_lists: RwLock<HashSet<WatchScope>>,
    /// The tenant reconcile's queue: tenants whose object, Secret or users changed.
    queue: RwLock<Option<mpsc::UnboundedSender<TenantId>>>,
}

impl Default for TenantStore {
    fn default() -> Self {
        Self {
            items: Default::default(),
            relisting: Default::default(),
            users: Default::default(),
            unlisted: watch::channel(0).0,
            first_lists: Default::default(),
            queue: Default::default(),
        }
    }
}

impl TenantStore {
    /// Declares how many tenant watches will feed the store; reads wait for their first lists.
    pub fn expect_watches(&self, count: usize) {
        self.unlisted.send_replace(count);
    }

    /// Waits (boundedly) until every tenant watch has listed once.
    pub async fn listed(&self) {
        let mut rx = self.unlisted.subscribe();
        if tokio::time::timeout(LIST_WAIT, rx.wait_for(|n| *n == 0)).await.is_err() {
            tracing::warn!("the tenant watches have not listed everything yet");
        }
    }

    pub fn observe_namespaced(&self, scope: Option<&str>, event: &Event<ConductorOneTenant>) {
        self.observe(TenantKind::ConductorOneTenant, scope, event, |t| {
            let ns = t.namespace()?;
            let secret = (ns.clone(), t.spec.settings.api_credentials_secret_ref.name.clone());
            let found = FoundTenant {
                kind: TenantKind::ConductorOneTenant,
                name: t.name_any(),
                settings: t.spec.settings.clone(),
                allowed: None,
                not_ready: tenant_status::not_ready(t.status.as_ref(), t.metadata.generation),
            };
            let meta = TenantMeta::of(t, t.status.as_ref());
            Some(((ns, t.name_any()), Entry { found, is_default: false, secret, meta }))
        });
    }

    /// Cluster tenants; their Secrets are in the operator's namespace.
    pub fn observe_cluster(&self, operator_ns: &str, event: &Event<ClusterConductorOneTenant>) {
        self.observe(TenantKind::ClusterConductorOneTenant, None, event, |t| {
            let secret = (operator_ns.to_string(), t.spec.settings.api_credentials_secret_ref.name.clone());
            let is_default = t.annotations().get(DEFAULT_TENANT_ANNOTATION).is_some_and(|v| v == "true");
            let found = FoundTenant {
                kind: TenantKind::ClusterConductorOneTenant,
                name: t.name_any(),
                settings: t.spec.settings.clone(),
                allowed: t.spec.allowed_namespaces.clone(),
                not_ready: tenant_status::not_ready(t.status.as_ref(), t.metadata.generation),
            };
            let meta = TenantMeta::of(t, t.status.as_ref());
            Some(((String::new(), t.name_any()), Entry { found, is_default, secret, meta }))
        });
    }

    fn observe<K: kube::Resource>(
        &self,
        kind: TenantKind,
        scope: Option<&str>,
        event: &Event<K>,
        entry: impl Fn(&K) -> Option<(Key, Entry)>,
    ) {
        let scope_key = (kind, scope.map(str::to_string));
        let mut items = self.items.write().expect("tenant store poisoned");
        let mut relisting = self.relisting.write().expect("tenant store poisoned");
        let mut changed: Vec<TenantId> = Vec::new();
        match event {
            Event::Init => {
                relisting.insert(scope_key, HashSet::new());
            }
            Event::InitApply(o) | Event::Apply(o) => {
                if let Some((key, e)) = entry(o) {
                    if let Some(seen) = relisting.get_mut(&scope_key) {
                        seen.insert(key.clone());
                    }
                    changed.push((kind, key.clone()));
                    items.insert((kind, key), e);
                }
            }
            Event::Delete(o) => {
                if let Some((key, _)) = entry(o) {
                    changed.push((kind, key.clone()));
                    items.remove(&(kind, key));
                }
            }
            Event::InitDone => {
                let Some(seen) = relisting.remove(&scope_key) else { return };
                let cluster = kind == TenantKind::ClusterConductorOneTenant;
                let in_scope = |key: &Key| cluster || scope.is_none_or(|s| s == key.0);
                items.retain(|(k, key), _| {
                    let keep = *k != kind || !in_scope(key) || seen.contains(key);
                    if !keep {
                        changed.push((*k, key.clone()));
                    }
                    keep
                });
                // A re-list after a failed watch is not a first list: each watch counts once.
                if self.first_lists.write().expect("tenant store poisoned").insert(scope_key) {
                    self.unlisted.send_modify(|n| *n = n.saturating_sub(1));
                }
            }
        }
        drop((items, relisting));
        changed.into_iter().for_each(|id| self.notify(id));
    }

    /// The tenant reconcile's queue; the store sends every change from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<TenantId> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.queue.write().expect("tenant store poisoned") = Some(tx);
        rx
    }

    fn notify(&self, id: TenantId) {
        if let Some(tx) = self.queue.read().expect("tenant store poisoned").as_ref() {
            // A closed queue means the tenant reconcile stopped with the operator.
            let _ = tx.send(id);
        }
    }

    /// Every tenant the store holds.
    pub fn ids(&self) -> Vec<TenantId> {
        self.items.read().expect("tenant store poisoned").keys().cloned().collect()
    }

    /// A tenant, for its reconcile.
    pub fn view(&self, id: &TenantId) -> Option<TenantView> {
        let items = self.items.read().expect("tenant store poisoned");
        items.get(id).map(|e| TenantView {
            found: e.found.clone(),
            secret: e.secret.clone(),
            meta: e.meta.clone(),
        })
    }

    /// The connectors that use a tenant, as `namespace/name`, sorted.
    pub fn users(&self, id: &TenantId) -> Vec<String> {
        let mut users: Vec<String> = self
            .users_of(id.0, &id.1.0, &id.1.1, false)
            .into_iter()
            .map(|(ns, name)| format!("{ns}/{name}"))
            .collect();
        users.sort_unstable();
        users
    }

    /// A Secret changed: the tenants whose principal it holds are checked again.
    pub fn secret_changed(&self, secret: &Key) {
        let ids: Vec<TenantId> = {
            let items = self.items.read().expect("tenant store poisoned");
            items.iter().filter(|(_, e)| e.secret == *secret).map(|(id, _)| id.clone()).collect()
        };
        ids.into_iter().for_each(|id| self.notify(id));
    }

    /// The tenants a connector's choice concerns: the one it names, or the default ones.
    fn tenants_wanted(&self, connector_ns: &str, wanted: &Wanted) -> Vec<TenantId> {
        match wanted {
            Wanted::OwnSecret(_) => Vec::new(),
            Wanted::Tenant(r) => {
                let ns = match r.kind {
                    TenantKind::ConductorOneTenant => connector_ns.to_string(),
                    TenantKind::ClusterConductorOneTenant => String::new(),
                };
                vec![(r.kind, (ns, r.name.clone()))]
            }
            Wanted::DefaultTenant => {
                let items = self.items.read().expect("tenant store poisoned");
                items.iter().filter(|(_, e)| e.is_default).map(|(id, _)| id.clone()).collect()
            }
        }
    }

    /// What the pass needs to resolve a connector's principal: the tenant it names, or the cluster
    /// tenants annotated as the default.
    pub fn found(&self, namespace: &str, wanted: &Wanted) -> Vec<FoundTenant> {
        let items = self.items.read().expect("tenant store poisoned");
        match wanted {
            Wanted::OwnSecret(_) => Vec::new(),
            Wanted::Tenant(r) => {
                let ns = match r.kind {
                    TenantKind::ConductorOneTenant => namespace.to_string(),
                    TenantKind::ClusterConductorOneTenant => String::new(),
                };
                items.get(&(r.kind, (ns, r.name.clone()))).map(|e| e.found.clone()).into_iter().collect()
            }
            Wanted::DefaultTenant => {
                items.values().filter(|e| e.is_default).map(|e| e.found.clone()).collect()
            }
        }
    }

    /// Whether a tenant's principal is in this Secret: the Secret cache keeps its data.
    pub fn reads_secret(&self, secret: &Key) -> bool {
        self.items.read().expect("tenant store poisoned").values().any(|e| e.secret == *secret)
    }

    /// Records what a connector wants (nothing for the older form, which the Secret index covers);
    /// the tenants it leaves or joins count their users again.
    pub fn set_user(&self, connector: Key, wanted: Option<Wanted>) {
        let wanted = wanted.filter(|w| matches!(w, Wanted::Tenant(_) | Wanted::DefaultTenant));
        let before = {
            let mut users = self.users.write().expect("tenant store poisoned");
            match &wanted {
                Some(w) => users.insert(connector.clone(), w.clone()),
                None => users.remove(&connector),
            }
        };
        if before == wanted {
            return;
        }
        let touched =
            [before, wanted].into_iter().flatten().flat_map(|w| self.tenants_wanted(&connector.0, &w));
        touched.collect::<Vec<_>>().into_iter().for_each(|id| self.notify(id));
    }

    pub fn retain_users(&self, keep: impl Fn(&Key) -> bool) {
        let mut gone = Vec::new();
        self.users.write().expect("tenant store poisoned").retain(|k, w| {
            let kept = keep(k);
            if !kept {
                gone.push((k.0.clone(), w.clone()));
            }
            kept
        });
        let touched: Vec<TenantId> = gone.iter().flat_map(|(ns, w)| self.tenants_wanted(ns, w)).collect();
        touched.into_iter().for_each(|id| self.notify(id));
    }

    /// The connectors that use a tenant: those naming it, and for a default cluster tenant those
    /// naming none. A tenant that just stopped being the default still counts its former users, so
    /// that they learn of it.
    pub fn users_of(&self, kind: TenantKind, namespace: &str, name: &str, was_default: bool) -> Vec<Key> {
        let users = self.users.read().expect("tenant store poisoned");
        let is_default = was_default
            || self
                .items
                .read()
                .expect("tenant store poisoned")
                .get(&(kind, (String::new(), name.to_string())))
                .is_some_and(|e| e.is_default);
        users
            .iter()
            .filter(|(connector, wanted)| match wanted {
                Wanted::Tenant(r) => {
                    r.kind == kind
                        && r.name == name
                        && (kind == TenantKind::ClusterConductorOneTenant || connector.0 == namespace)
                }
                Wanted::DefaultTenant => kind == TenantKind::ClusterConductorOneTenant && is_default,
                Wanted::OwnSecret(_) => false,
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The connectors using the tenants whose principal is in this Secret.
    pub fn users_of_secret(&self, secret: &Key) -> Vec<Key> {
        let tenants: Vec<(TenantKind, Key, bool)> = self
            .items
            .read()
            .expect("tenant store poisoned")
            .iter()
            .filter(|(_, e)| e.secret == *secret)
            .map(|((kind, key), e)| (*kind, key.clone(), e.is_default))
            .collect();
        tenants.into_iter().flat_map(|(kind, (ns, name), d)| self.users_of(kind, &ns, &name, d)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TenantRef;

    fn cluster(name: &str, default: bool, secret: &str) -> ClusterConductorOneTenant {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ClusterConductorOneTenant",
            "metadata": {"name": name, "annotations": {DEFAULT_TENANT_ANNOTATION: default.to_string()}},
            "spec": {"apiCredentialsSecretRef": {"name": secret}},
        }))
        .unwrap()
    }

    fn key(ns: &str, name: &str) -> Key {
        (ns.to_string(), name.to_string())
    }

    #[test]
    fn a_tenant_or_its_secret_names_exactly_the_connectors_that_use_it() {
        let store = TenantStore::default();
        for e in [
            Event::Init,
            Event::InitApply(cluster("prod", true, "p")),
            Event::InitApply(cluster("dev", false, "d")),
            Event::InitDone,
        ] {
            store.observe_cluster("baton-system", &e);
        }
        let named = |name: &str| {
            Wanted::Tenant(TenantRef { kind: TenantKind::ClusterConductorOneTenant, name: name.into() })
        };
        store.set_user(key("team-a", "okta"), Some(named("prod")));
        store.set_user(key("team-b", "github"), Some(Wanted::DefaultTenant));
        store.set_user(key("team-b", "slack"), Some(named("dev")));
        store.set_user(key("team-c", "old"), Some(Wanted::OwnSecret("api".into())));

        let mut prod = store.users_of(TenantKind::ClusterConductorOneTenant, "", "prod", false);
        prod.sort();
        assert_eq!(prod, [key("team-a", "okta"), key("team-b", "github")], "named, and by default");
        assert_eq!(
            store.users_of(TenantKind::ClusterConductorOneTenant, "", "dev", false),
            [key("team-b", "slack")]
        );
        assert!(store.reads_secret(&key("baton-system", "p")));
        assert!(
            !store.reads_secret(&key("team-a", "p")),
            "a cluster tenant's Secret is in the operator namespace"
        );
        assert_eq!(store.users_of_secret(&key("baton-system", "d")), [key("team-b", "slack")]);
        assert_eq!(store.found("team-b", &Wanted::DefaultTenant).len(), 1);

        // Deleted: its former default users still hear of it (the deleted object says it was the default).
        store.observe_cluster("baton-system", &Event::Delete(cluster("prod", true, "p")));
        assert!(store.found("team-a", &named("prod")).is_empty());
        assert_eq!(store.users_of(TenantKind::ClusterConductorOneTenant, "", "prod", true).len(), 2);
        store.set_user(key("team-a", "okta"), None);
        assert_eq!(
            store.users_of(TenantKind::ClusterConductorOneTenant, "", "prod", true),
            [key("team-b", "github")]
        );
    }

    #[test]
    fn a_relist_drops_tenants_deleted_meanwhile_and_counts_the_first_list_once() {
        let store = TenantStore::default();
        store.expect_watches(1);
        for e in [
            Event::Init,
            Event::InitApply(cluster("a", false, "s")),
            Event::InitApply(cluster("b", false, "s")),
            Event::InitDone,
        ] {
            store.observe_cluster("op", &e);
        }
        assert_eq!(*store.unlisted.borrow(), 0);
        store.expect_watches(1);
        for e in [Event::Init, Event::InitApply(cluster("a", false, "s")), Event::InitDone] {
            store.observe_cluster("op", &e);
        }
        assert_eq!(*store.unlisted.borrow(), 1, "a re-list is not a first list");
        let named = |name: &str| {
            Wanted::Tenant(TenantRef { kind: TenantKind::ClusterConductorOneTenant, name: name.into() })
        };
        assert_eq!(store.found("x", &named("a")).len(), 1);
        assert!(store.found("x", &named("b")).is_empty(), "deleted while the watch was down");
    }
}
