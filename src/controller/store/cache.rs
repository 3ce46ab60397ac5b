//! What the watches deliver, kept for reconciles so that a reconcile, a resync or a restart reads
//! nothing per connector from the API server: the operator's Deployments (without `managedFields`),
//! and Secrets. Of a Secret only its existence is kept, unless a BatonConnector reads it: the cluster's
//! other Secrets (Helm releases, tokens) can be large and are none of the operator's business.
//!
//! Before the watches have listed everything, and in tests that drive `reconcile` without watches,
//! reads go to the API server.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::{
    ByteString,
    api::{
        apps::v1::Deployment,
        batch::v1::{CronJob, Job},
        core::v1::{Pod, Secret},
    },
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{reflector::ObjectRef, watcher::Event},
};
use tokio::sync::{broadcast, watch};

use super::{
    index::SecretIndex,
    packed::{Packed, Packer},
    tenants::TenantStore,
};
use crate::{
    Result,
    api::BatonConnector,
    decide::pods::PodView,
    resources::{SecretData, labels},
};

use super::Key;

/// How long a reconcile waits for the watches' first lists before it reads from the API server.
const SYNC_WAIT: Duration = Duration::from_secs(30);

/// A Secret's data as pairs (the map a reconcile wants allocates a node for eleven entries, and a
/// connector's Secret has two or three), and the operator's own annotations on it: those of a
/// credential revision say which credential it holds.
#[derive(Debug)]
struct Kept {
    data: Box<[(String, ByteString)]>,
    annotations: Box<[(String, String)]>,
}

type Data = Arc<Kept>;

/// The caches and the index from Secrets to the resources that read them.
pub struct Caches {
    /// As packed JSON: a typed Deployment takes about 20 KB, its JSON 3 KB, packed about 250 bytes;
    /// a reconcile reads one at a time.
    deployments: RwLock<Listed<Packed>>,
    /// OneShot mode's CronJobs, packed like the Deployments.
    cronjobs: RwLock<Listed<Packed>>,
    /// The Jobs of OneShot runs, with the instance (resource) they run for.
    jobs: RwLock<Listed<(String, Packed)>>,
    /// One per kind above, in that order: objects of one kind pack against one of them.
    packers: [Packer; 3],
    /// `None`: the Secret exists, but no resource read it when it was last seen.
    secrets: RwLock<Listed<Option<Data>>>,
    /// The connector pods, each reduced to what the status reads of it (a few hundred bytes; a
    /// whole Pod is ten kilobytes and more).
    pods: RwLock<Listed<PodView>>,
    pub index: SecretIndex,
    /// The ConductorOne tenants, and which connectors use them.
    pub tenants: TenantStore,
    /// Watches that have not finished their first list (`None` while no watch feeds the caches),
    /// and lists under way (a first one, or one after a watch failed).
    pending: watch::Sender<Pending>,
    waited_out: AtomicBool,
    /// Resources whose child a re-list found gone: deleted while the watch was down, so no event
    /// said so and nothing else would reconcile them.
    relisted: broadcast::Sender<ObjectRef<BatonConnector>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pending {
    unlisted: Option<usize>,
    listing: usize,
}

impl Pending {
    /// Every watch has listed once and none is listing again: the caches are complete and current.
    fn settled(&self) -> bool {
        self.unlisted.is_none_or(|n| n == 0) && self.listing == 0
    }
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            deployments: Default::default(),
            cronjobs: Default::default(),
            jobs: Default::default(),
            packers: Default::default(),
            secrets: Default::default(),
            pods: Default::default(),
            index: Default::default(),
            tenants: Default::default(),
            pending: watch::channel(Pending::default()).0,
            waited_out: AtomicBool::new(false),
            relisted: broadcast::channel(1024).0,
        }
    }
}

impl Caches {
    /// Declares how many watches (Deployments and Secrets, per watched namespace) will feed the
    /// caches; reads wait for their first lists from now on.
    pub fn expect_watches(&self, count: usize) {
        self.pending.send_modify(|p| p.unlisted = Some(count));
    }

    /// Resources to reconcile because a re-list found one of their children gone.
    pub fn relisted(&self) -> broadcast::Receiver<ObjectRef<BatonConnector>> {
        self.relisted.subscribe()
    }

    pub fn observe_deployment(&self, scope: Option<&str>, event: &Event<Deployment>) {
        let packer = &self.packers[0];
        let mut store = self.deployments.write().expect("deployment cache poisoned");
        let dropped = self.observe(&mut store, scope, event, |d| {
            serde_json::to_vec(d).ok().map(|json| packer.pack(&json, d.status.is_some()))
        });
        drop(store);
        // A Deployment is named after its resource.
        self.reconcile_owners(dropped.into_iter().map(|(key, _)| key));
    }

    pub fn observe_cronjob(&self, scope: Option<&str>, event: &Event<CronJob>) {
        let packer = &self.packers[1];
        let mut store = self.cronjobs.write().expect("cronjob cache poisoned");
        let dropped = self.observe(&mut store, scope, event, |c| {
            serde_json::to_vec(c).ok().map(|json| packer.pack(&json, c.status.is_some()))
        });
        drop(store);
        // So is a CronJob.
        self.reconcile_owners(dropped.into_iter().map(|(key, _)| key));
    }

    pub fn observe_job(&self, scope: Option<&str>, event: &Event<Job>) {
        let packer = &self.packers[2];
        let mut store = self.jobs.write().expect("job cache poisoned");
        let dropped = self.observe(&mut store, scope, event, |j| {
            let instance = j.labels().get(labels::INSTANCE_LABEL)?.clone();
            serde_json::to_vec(j).ok().map(|json| (instance, packer.pack(&json, j.status.is_some())))
        });
        drop(store);
        // A Job is its resource's by the instance label.
        self.reconcile_owners(dropped.into_iter().map(|((ns, _), (instance, _))| (ns, instance)));
    }

    pub fn observe_secret(&self, scope: Option<&str>, event: &Event<Secret>) {
        let mut store = self.secrets.write().expect("secret cache poisoned");
        let dropped = self.observe(&mut store, scope, event, |s| {
            let key = key_of(s)?;
            // The operator's own credential revisions are its business whoever reads them: a rotation
            // looks at the one it is rolling out before any resource's index names it.
            // A tenant's principal is read by every connector of the tenant.
            let keep = self.index.is_read(&key.0, &key.1)
                || is_credential_revision(s)
                || self.tenants.reads_secret(&key);
            Some(keep.then(|| data_of(s)))
        });
        drop(store);
        // A Secret is its readers'.
        let readers = dropped.into_iter().flat_map(|((ns, name), _)| {
            let tenant_users = self.tenants.users_of_secret(&(ns.clone(), name.clone()));
            self.index.readers(&ns, &name).into_iter().map(move |r| (ns.clone(), r)).chain(tenant_users)
        });
        self.reconcile_owners(readers.collect::<Vec<_>>());
    }

    pub fn observe_pod(&self, scope: Option<&str>, event: &Event<Pod>) {
        let mut store = self.pods.write().expect("pod cache poisoned");
        let dropped = self.observe(&mut store, scope, event, PodView::of);
        drop(store);
        // A pod is its resource's by the instance label, like a Job.
        self.reconcile_owners(dropped.into_iter().map(|((ns, _), view)| (ns, view.instance)));
    }

    fn reconcile_owners(&self, owners: impl IntoIterator<Item = Key>) {
        for (ns, name) in owners {
            tracing::debug!(namespace = %ns, %name, "a child was deleted while its watch was down");
            // No receiver: no controller runs (tests that drive the caches alone).
            let _ = self.relisted.send(ObjectRef::new(&name).within(&ns));
        }
    }

    /// Applies one watch event; returns what a re-list that ended with it found gone.
    fn observe<K: Resource, V: Clone>(
        &self,
        store: &mut Listed<V>,
        scope: Option<&str>,
        event: &Event<K>,
        keep: impl Fn(&K) -> Option<V>,
    ) -> Vec<(Key, V)> {
        match event {
            Event::Init => {
                if store.begin(scope) {
                    self.pending.send_modify(|p| p.listing += 1);
                }
            }
            Event::InitApply(o) | Event::Apply(o) => {
                if let (Some(key), Some(value)) = (key_of(o), keep(o)) {
                    store.put(key, version_of(o), value);
                }
            }
            Event::Delete(o) => {
                if let Some(key) = key_of(o) {
                    store.remove(&key);
                }
            }
            Event::InitDone => {
                let (first, dropped) = store.end(scope);
                self.pending.send_modify(|p| {
                    p.listing = p.listing.saturating_sub(1);
                    if first && let Some(n) = &mut p.unlisted {
                        *n = n.saturating_sub(1);
                    }
                });
                if self.pending.borrow().settled() {
                    // Complete again: the next gap in the watches gets its own bounded wait.
                    self.waited_out.store(false, Ordering::Relaxed);
                }
                return dropped;
            }
        }
        Vec::new()
    }

    /// Waits (boundedly) for the lists under way: the first ones, or those after a watch failed (the
    /// API server restarted, say), so that a reconcile never acts on what the cache held before an
    /// outage. False when reads must go to the API server. Once a wait has run out (a watch that
    /// cannot list, for want of permission or while the API server is down), nobody waits again
    /// until the caches are complete once more.
    pub(crate) async fn synced(&self) -> bool {
        let mut rx = self.pending.subscribe();
        let fed = |p: &Pending| p.unlisted.is_some();
        if self.waited_out.load(Ordering::Relaxed) {
            let p = *rx.borrow();
            return fed(&p) && p.settled();
        }
        if tokio::time::timeout(SYNC_WAIT, rx.wait_for(Pending::settled)).await.is_err() {
            tracing::warn!("the watches have not listed everything yet; reading from the API server");
            self.waited_out.store(true, Ordering::Relaxed);
            return false;
        }
        fed(&rx.borrow())
    }

    /// The live Deployment, from the cache once it is synced.
    pub async fn deployment(&self, client: &Client, ns: &str, name: &str) -> Result<Option<Deployment>> {
        self.object(&self.deployments, &self.packers[0], client, ns, name).await
    }

    /// The live CronJob (OneShot mode), likewise.
    pub async fn cronjob(&self, client: &Client, ns: &str, name: &str) -> Result<Option<CronJob>> {
        self.object(&self.cronjobs, &self.packers[1], client, ns, name).await
    }

    async fn object<K>(
        &self,
        store: &RwLock<Listed<Packed>>,
        packer: &Packer,
        client: &Client,
        ns: &str,
        name: &str,
    ) -> Result<Option<K>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + serde::de::DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        if self.synced().await {
            let key = (ns.to_string(), name.to_string());
            let json = store.read().expect("cache poisoned").items.get(&key).map(|(_, p)| packer.unpack(p));
            match json {
                None => return Ok(None),
                // Packed by this process from an object it decoded, so it always decodes again; if
                // it ever did not, the API server has the object.
                Some(json) => {
                    if let Some(object) = json.ok().and_then(|j| serde_json::from_slice(&j).ok()) {
                        return Ok(Some(object));
                    }
                }
            }
        }
        Ok(Api::<K>::namespaced(client.clone(), ns).get_opt(name).await?)
    }

    /// The Jobs of one resource's runs.
    pub async fn jobs(&self, client: &Client, ns: &str, instance: &str) -> Result<Vec<Job>> {
        if self.synced().await {
            let store = self.jobs.read().expect("job cache poisoned");
            let packer = &self.packers[2];
            return Ok(store
                .items
                .iter()
                .filter(|((job_ns, _), (_, (i, _)))| job_ns == ns && i == instance)
                .filter_map(|(_, (_, (_, packed)))| serde_json::from_slice(&packer.unpack(packed).ok()?).ok())
                .collect());
        }
        let selector = format!("{},{}={instance}", labels::managed_selector(), labels::INSTANCE_LABEL);
        let lp = kube::api::ListParams::default().labels(&selector);
        Ok(Api::<Job>::namespaced(client.clone(), ns).list(&lp).await?.items)
    }

    /// The pods of one resource (both modes' pods carry its instance label).
    pub async fn pods(&self, client: &Client, ns: &str, instance: &str) -> Result<Vec<PodView>> {
        if self.synced().await {
            let store = self.pods.read().expect("pod cache poisoned");
            return Ok(store
                .items
                .iter()
                .filter(|((pod_ns, _), (_, v))| pod_ns == ns && v.instance == instance)
                .map(|(_, (_, v))| v.clone())
                .collect());
        }
        let selector = format!("{},{}={instance}", labels::managed_selector(), labels::INSTANCE_LABEL);
        let lp = kube::api::ListParams::default().labels(&selector);
        match Api::<Pod>::namespaced(client.clone(), ns).list(&lp).await {
            Ok(pods) => Ok(pods.items.iter().filter_map(PodView::of).collect()),
            // The pods only add detail to the status: an install whose RBAC predates the pod watch
            // (a Role not yet updated) still reconciles, without the pods' answer.
            Err(kube::Error::Api(s)) if s.code == 403 => {
                tracing::warn!(namespace = %ns, "the operator may not list pods; the status lacks their answer");
                Ok(Vec::new())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A Deployment the operator just wrote, so that the next reconcile does not act on an older copy
    /// that the watch has not replaced yet.
    pub fn wrote_deployment(&self, d: &Deployment) {
        Self::wrote(&self.deployments, &self.packers[0], d);
    }

    /// Likewise for a CronJob.
    pub fn wrote_cronjob(&self, c: &CronJob) {
        Self::wrote(&self.cronjobs, &self.packers[1], c);
    }

    /// A credential revision the operator just created, likewise: the next reconcile finds it here
    /// even before the watch delivers it.
    pub fn wrote_secret(&self, secret: &Secret) {
        if let Some(key) = key_of(secret) {
            let mut store = self.secrets.write().expect("secret cache poisoned");
            store.put(key, version_of(secret), Some(data_of(secret)));
        }
    }

    fn wrote<K: Resource + Clone + serde::Serialize>(
        store: &RwLock<Listed<Packed>>,
        packer: &Packer,
        object: &K,
    ) {
        let mut object = object.clone();
        object.meta_mut().managed_fields = None;
        if let (Some(key), Ok(json)) = (key_of(&object), serde_json::to_vec(&object)) {
            let mut store = store.write().expect("cache poisoned");
            store.put(key, version_of(&object), packer.pack(&json, false));
        }
    }

    /// The data of the named Secrets in a namespace; missing ones are absent from the result. A
    /// Secret the cache knows but holds no data of (it was not read by anyone when last seen) is read
    /// once and kept from then on.
    pub async fn secrets(&self, client: &Client, ns: &str, names: &[String]) -> Result<SecretData> {
        let synced = self.synced().await;
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let mut out = SecretData::default();
        for name in names {
            let key = (ns.to_string(), name.clone());
            let cached = synced.then(|| {
                let store = self.secrets.read().expect("secret cache poisoned");
                store.items.get(&key).map(|(_, data)| data.clone())
            });
            match cached {
                // Listed and absent: it does not exist.
                Some(None) => {}
                Some(Some(Some(kept))) => out.insert_with_annotations(
                    name.clone(),
                    kept.data.iter().cloned().collect(),
                    kept.annotations.iter().map(|(k, v)| (k, v)),
                ),
                Some(Some(None)) | None => {
                    if let Some(secret) = api.get_opt(name).await? {
                        if synced {
                            let mut store = self.secrets.write().expect("secret cache poisoned");
                            store.put(key, version_of(&secret), Some(data_of(&secret)));
                        }
                        out.insert_secret(&secret);
                    }
                }
            }
        }
        Ok(out)
    }

    /// How many objects the caches hold, for the log and tests.
    pub fn sizes(&self) -> (usize, usize) {
        let d = self.deployments.read().expect("deployment cache poisoned").items.len();
        let s = self.secrets.read().expect("secret cache poisoned").items.len();
        (d, s)
    }
}

fn key_of<K: Resource>(o: &K) -> Option<Key> {
    Some((o.meta().namespace.clone()?, o.meta().name.clone()?))
}

/// resourceVersions are opaque, but in practice etcd revisions: a number lets an older watch event
/// be told from the copy the operator just wrote.
fn version_of<K: Resource>(o: &K) -> Option<u64> {
    o.meta().resource_version.as_deref()?.parse().ok()
}

fn data_of(secret: &Secret) -> Data {
    let mut data = SecretData::default();
    data.insert_secret(secret);
    let pairs = data.get(&secret.name_any()).into_iter().flatten().map(|(k, v)| (k.clone(), v.clone()));
    let annotations = secret
        .annotations()
        .iter()
        .filter(|(k, _)| k.starts_with(OPERATOR_ANNOTATIONS))
        .map(|(k, v)| (k.clone(), v.clone()));
    Arc::new(Kept { data: pairs.collect(), annotations: annotations.collect() })
}

/// The prefix of the operator's annotations.
const OPERATOR_ANNOTATIONS: &str = "baton.conductorone.com/";

/// A Secret revision of managed credentials that this operator wrote.
fn is_credential_revision(secret: &Secret) -> bool {
    let labels = secret.labels();
    labels.contains_key(crate::resources::credentials::REVISION_LABEL)
        && labels.get(labels::MANAGED_BY_LABEL).map(String::as_str) == Some(labels::MANAGED_BY)
}

/// Objects by key, with what a re-list needs: the keys seen since it began, so that objects deleted
/// while the watch was down are dropped when it ends.
struct Listed<V> {
    items: HashMap<Key, (Option<u64>, V)>,
    /// Per scope (a namespace, or `None` for all) being re-listed, the keys seen so far.
    relisting: HashMap<Option<String>, HashSet<Key>>,
    /// Scopes whose first list has ended.
    listed: HashSet<Option<String>>,
    /// Scopes whose first list is under way.
    first: HashSet<Option<String>>,
}

impl<V> Default for Listed<V> {
    fn default() -> Self {
        Self {
            items: HashMap::new(),
            relisting: HashMap::new(),
            listed: HashSet::new(),
            first: HashSet::new(),
        }
    }
}

impl<V> Listed<V> {
    /// Starts a (re-)list of a scope; true unless one was under way already (its list failed and a
    /// fresh watcher starts over).
    fn begin(&mut self, scope: Option<&str>) -> bool {
        let scope = scope.map(str::to_string);
        let in_scope = |k: &Key| scope.as_ref().is_none_or(|ns| *ns == k.0);
        let under_way = self.first.contains(&scope) || self.relisting.contains_key(&scope);
        if !under_way && !self.listed.contains(&scope) && !self.items.keys().any(in_scope) {
            // The scope's first list, and the cache holds nothing of it: nothing can be found gone,
            // so no keys need keeping (at a restart, a set of every key of the kind, at the peak).
            self.first.insert(scope);
            return true;
        }
        // A first list that failed and starts over keeps them: the failed one may have brought
        // objects deleted since.
        self.first.remove(&scope);
        self.relisting.insert(scope, HashSet::new());
        !under_way
    }

    fn put(&mut self, key: Key, version: Option<u64>, value: V) {
        for (scope, seen) in &mut self.relisting {
            if scope.as_ref().is_none_or(|ns| *ns == key.0) {
                seen.insert(key.clone());
            }
        }
        if let (Some(new), Some((Some(old), _))) = (version, self.items.get(&key))
            && new < *old
        {
            return;
        }
        self.items.insert(key, (version, value));
    }

    fn remove(&mut self, key: &Key) {
        self.items.remove(key);
    }

    /// Ends a re-list: whether it was the scope's first, and what it found gone (deleted while the
    /// watch was down), which leaves the cache.
    fn end(&mut self, scope: Option<&str>) -> (bool, Vec<(Key, V)>) {
        let scope = scope.map(str::to_string);
        self.first.remove(&scope);
        let mut dropped = Vec::new();
        if let Some(seen) = self.relisting.remove(&scope) {
            let gone: Vec<Key> = self
                .items
                .keys()
                .filter(|k| scope.as_ref().is_none_or(|ns| *ns == k.0) && !seen.contains(*k))
                .cloned()
                .collect();
            for key in gone {
                if let Some((_, value)) = self.items.remove(&key) {
                    dropped.push((key, value));
                }
            }
        }
        (self.listed.insert(scope), dropped)
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
