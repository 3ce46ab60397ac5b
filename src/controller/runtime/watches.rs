//! The watches of one scope (a namespace, or the cluster) and what each event feeds: the caches, the
//! Secret index and the sync-status poller first, then the controller's triggers, so that a
//! reconcile started by an event always reads at least what that event brought.

use std::{
    collections::HashSet,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use futures::{StreamExt, TryStreamExt, future};
use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{Pod, Secret},
};
use kube::{
    Api, ResourceExt,
    api::ObjectMeta,
    runtime::{
        Controller, WatchStreamExt,
        controller::Config as ControllerConfig,
        reflector::{self, ObjectRef, Store},
        watcher::{self, Event, watcher},
    },
};
use tracing::{info, warn};

use super::{
    lean::{self, Lean},
    reconciler::{error_policy, reconcile_measured},
    watch_health::{WatchKind, resilient},
};
use crate::controller::{
    context::Context,
    store::{
        Key,
        cache::Caches,
        stored::{self, Guarded, Stored},
    },
};
use crate::{
    api::{ClusterConductorOneTenant, ConductorOneTenant, DEFAULT_TENANT_ANNOTATION, TenantKind},
    resources::labels,
};

pub async fn run_scope(ctx: Arc<Context>, scope: Option<String>, ready: Arc<AtomicBool>) {
    let client = ctx.client.clone();
    // Every watch decodes its objects without their field records (see `lean`).
    let connectors: Api<Lean<Guarded>> = scoped(&client, scope.as_deref());
    let secrets: Api<Lean<Secret>> = scoped(&client, scope.as_deref());

    let mut config = paged();
    if let Some(selector) = &ctx.config.selector {
        config = config.labels(selector);
    }
    let (reader, writer) = reflector::store();
    let (c, s) = (ctx.clone(), scope.clone());
    let mut relist = Relist::default();
    let connector_events =
        resilient(ctx.watch_health.clone(), WatchKind::BatonConnector, scope.clone(), move || {
            watcher(connectors.clone(), config.clone()).map_ok(lean::event)
        })
        .modify(|g: &mut Guarded| trim(kube::Resource::meta_mut(g)))
        .map_ok(move |event| {
            follow_connectors(&c, s.as_deref(), &event, &mut relist);
            stored::event(event)
        })
        .reflect(writer)
        .touched_objects();

    let deployment_events = children(&ctx, scope.clone(), WatchKind::Deployment, Caches::observe_deployment);
    let cronjob_events = children(&ctx, scope.clone(), WatchKind::CronJob, Caches::observe_cronjob);
    // A Job belongs to its CronJob, not to the BatonConnector: its instance label says whose it is.
    let job_events = children(&ctx, scope.clone(), WatchKind::Job, Caches::observe_job);
    // The connector pods, by the same label: the cache keeps a small view of each, and an event
    // reconciles the pod's resource (by its instance label), so that what the kubelet reports is in
    // the status within seconds rather than after the Deployment's progress deadline.
    let pod_events = children(&ctx, scope.clone(), WatchKind::Pod, Caches::observe_pod);

    // The Secret watch starts once the index knows every resource, so its first list keeps the data
    // of every Secret that is read and a restart needs no read per connector.
    let (c, s, r) = (ctx.clone(), scope.clone(), reader.clone());
    let secret_events = futures::stream::once(async move { listed(&r).await })
        .flat_map(move |()| {
            let (c, s) = (c.clone(), s.clone());
            let secrets = secrets.clone();
            resilient(c.watch_health.clone(), WatchKind::Secret, s.clone(), move || {
                watcher(secrets.clone(), paged()).map_ok(lean::event)
            })
            .map_ok(move |event| {
                c.caches.observe_secret(s.as_deref(), &event);
                event
            })
            .filter(not_first_list())
            .boxed()
        })
        .touched_objects();

    let (namespaced_tenant_events, cluster_tenant_events) = tenant_watches(&ctx, scope.clone());

    let s = scope.clone();
    let polled = broadcast_stream(ctx.sync_poller.triggers());
    // Plus the owners of children that a relist found gone: no event says so.
    let orphaned = broadcast_stream(ctx.caches.relisted());
    let polled = futures::stream::select(polled, orphaned)
        .filter(move |r| future::ready(s.is_none() || r.namespace == s))
        .map(|r| ObjectRef::<Stored>::new(&r.name).within(r.namespace.as_deref().unwrap_or_default()));

    ctx.fleet.add(stored::Sampled(reader.clone()));
    spawn_readiness(reader.clone(), ready);
    let c = ctx.clone();
    Controller::for_stream(connector_events, reader)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .owns_stream(deployment_events)
        .owns_stream(cronjob_events)
        .watches_stream(job_events, |job: Job| instance_of(&job))
        .watches_stream(pod_events, |pod: Pod| instance_of(&pod))
        .watches_stream(secret_events, move |secret: Secret| readers(&c, &secret))
        .watches_stream(namespaced_tenant_events, namespaced_tenant_users(ctx.clone()))
        .watches_stream(cluster_tenant_events, cluster_tenant_users(ctx.clone()))
        .reconcile_on(polled)
        .shutdown_on_signal()
        .run(reconcile_measured, error_policy, ctx.clone())
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(object = %obj, "reconciled"),
                Err(kube::runtime::controller::Error::ReconcilerFailed(e, obj)) => {
                    tracing::debug!(object = %obj, error = %e, "reconcile failed")
                }
                Err(e) => warn!(error = %e, "controller stream error"),
            }
        })
        .await;
}

/// Triggers from a broadcast channel; a receiver that fell behind says so and goes on (the resync
/// catches up with what it missed).
fn broadcast_stream(
    rx: tokio::sync::broadcast::Receiver<ObjectRef<crate::api::BatonConnector>>,
) -> impl futures::Stream<Item = ObjectRef<crate::api::BatonConnector>> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(r) => return Some((r, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "reconcile triggers lagged; the resync catches up");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// The watch of one kind of the operator's children: trimmed, and fed to the caches before the
/// controller sees it.
fn children<K>(
    ctx: &Arc<Context>,
    scope: Option<String>,
    kind: WatchKind,
    observe: fn(&Caches, Option<&str>, &Event<K>),
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let c = ctx.clone();
    let api = scoped::<Lean<K>>(&ctx.client, scope.as_deref());
    resilient(ctx.watch_health.clone(), kind, scope.clone(), move || {
        watcher(api.clone(), managed()).map_ok(lean::event)
    })
    .modify(|o: &mut K| trim(o.meta_mut()))
    .map_ok(move |event| {
        observe(&c.caches, scope.as_deref(), &event);
        event
    })
    .filter(not_first_list())
    .touched_objects()
}

/// Leaves out the objects of a watch's first list as reconcile triggers. That list comes at start
/// (the Secret watch's, once the BatonConnectors are listed), when the BatonConnector watch's own
/// first list triggers every resource anyway, and reconciles wait for every first list before they
/// read the caches: another trigger per child and per Secret (5,000 of each at a restart) would
/// only churn the controller's queue, at the restart's memory peak. Re-lists still trigger.
fn not_first_list<K, E>() -> impl FnMut(&Result<Event<K>, E>) -> future::Ready<bool> {
    let mut first = true;
    move |event| {
        future::ready(match event {
            Ok(Event::InitDone) => {
                first = false;
                true
            }
            Ok(Event::InitApply(_)) => !first,
            _ => true,
        })
    }
}

fn scoped<K>(client: &kube::Client, scope: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The resources a re-list of BatonConnectors has delivered so far: kept only while it runs, and not
/// for the first list, which can find nothing gone.
#[derive(Default)]
struct Relist {
    seen: Option<HashSet<Key>>,
    /// A first list without the keys is under way (when it fails and starts over, they are kept).
    first: bool,
    listed: bool,
}

/// Keeps the index and the poller in step with the BatonConnector watch.
fn follow_connectors(ctx: &Context, scope: Option<&str>, event: &Event<Guarded>, relist: &mut Relist) {
    ctx.caches.index.observe(scope, event);
    follow_tenant_users(ctx, event);
    let key_of = |g: &Guarded| (g.namespace().unwrap_or_default(), g.name_any());
    let (object, listed) = match event {
        Event::Apply(g) => (g, false),
        Event::InitApply(g) => {
            if let Some(seen) = &mut relist.seen {
                seen.insert(key_of(g));
            }
            (g, true)
        }
        Event::Delete(g) => {
            forget(ctx, &key_of(g));
            return;
        }
        Event::Init => {
            // A first list while nothing is kept per resource can find nothing gone.
            let nothing_kept = ctx.sync_poller.tracked() == 0 && ctx.backoff.is_empty();
            let first = !relist.listed && !relist.first && nothing_kept;
            relist.first |= first;
            relist.seen = (!first).then(HashSet::new);
            return;
        }
        Event::InitDone => {
            relist.listed = true;
            // Deleted while the watch was down: no Delete event came for them. What is kept per
            // resource is kept for those the list found (in this scope) only.
            let Some(seen) = relist.seen.take() else { return };
            let in_scope = |ns: &str| scope.is_none_or(|s| s == ns);
            let keep = |key: &Key| !in_scope(&key.0) || seen.contains(key);
            ctx.sync_poller.retain(keep);
            ctx.caches.tenants.retain_users(keep);
            ctx.backoff.retain(|r| keep(&(r.namespace.clone().unwrap_or_default(), r.name.clone())));
            return;
        }
    };
    match &object.0 {
        Ok(bc) if bc.metadata.deletion_timestamp.is_none() => ctx.sync_poller.track(bc, listed),
        _ => ctx.sync_poller.forget(&(object.namespace().unwrap_or_default(), object.name_any())),
    }
}

/// Which connectors use which tenant, so that a tenant's change reconciles them.
fn follow_tenant_users(ctx: &Context, event: &Event<Guarded>) {
    let key_of = |g: &Guarded| (g.namespace().unwrap_or_default(), g.name_any());
    let wanted = |g: &Guarded| {
        g.0.as_ref().ok().and_then(|bc| bc.spec.conductor_one.as_ref()).map(crate::decide::tenant::wanted)
    };
    let tenants = &ctx.caches.tenants;
    match event {
        Event::Apply(g) | Event::InitApply(g) => tenants.set_user(key_of(g), wanted(g)),
        Event::Delete(g) => tenants.set_user(key_of(g), None),
        // A re-list's end forgets what it did not find, with the poller (`follow_connectors`).
        Event::Init | Event::InitDone => {}
    }
}

/// Nothing is kept per resource once it is gone.
fn forget(ctx: &Context, key: &Key) {
    ctx.backoff.succeeded(&ObjectRef::new(&key.1).within(&key.0));
    ctx.sync_poller.forget_resource(key);
}

/// Children carry the operator's labels; nothing else is watched.
fn managed() -> watcher::Config {
    paged().labels(&labels::managed_selector())
}

/// Objects per page of a watch's (re-)list. A page is decoded whole before the first of its objects
/// is trimmed: at kube's default of 500, the concurrent first lists after a restart had 21 MiB in
/// flight, most of it field records (which are now not decoded at all, see `lean`), and made the
/// operator's peak. Smaller pages cost more list requests (one per 100 objects), none per connector.
const PAGE_SIZE: u32 = 100;

fn paged() -> watcher::Config {
    watcher::Config::default().page_size(PAGE_SIZE)
}

/// The resource a Job or a pod runs for, by its instance label.
fn instance_of(object: &impl ResourceExt) -> Option<ObjectRef<Stored>> {
    let instance = object.labels().get(labels::INSTANCE_LABEL)?;
    Some(ObjectRef::new(instance).within(&object.namespace()?))
}

/// The resources that read a Secret, from the index, and those whose tenant's principal it holds.
fn readers(ctx: &Context, secret: &Secret) -> Vec<ObjectRef<Stored>> {
    let Some(ns) = secret.namespace() else { return Vec::new() };
    let name = secret.name_any();
    ctx.caches.tenants.secret_changed(&(ns.clone(), name.clone()));
    let mut out: Vec<ObjectRef<Stored>> =
        ctx.caches.index.readers(&ns, &name).iter().map(|n| ObjectRef::new(n).within(&ns)).collect();
    out.extend(refs(ctx.caches.tenants.users_of_secret(&(ns, name))));
    out
}

fn refs(keys: Vec<Key>) -> Vec<ObjectRef<Stored>> {
    keys.into_iter().map(|(ns, name)| ObjectRef::new(&name).within(&ns)).collect()
}

/// The connectors a `ConductorOneTenant`'s event concerns.
fn namespaced_tenant_users(
    ctx: Arc<Context>,
) -> impl Fn(ConductorOneTenant) -> Vec<ObjectRef<Stored>> + Send + 'static {
    move |t| {
        let ns = t.namespace().unwrap_or_default();
        refs(ctx.caches.tenants.users_of(TenantKind::ConductorOneTenant, &ns, &t.name_any(), false))
    }
}

/// The connectors a `ClusterConductorOneTenant`'s event concerns: a deleted default tenant still
/// reaches those that used it as the default.
fn cluster_tenant_users(
    ctx: Arc<Context>,
) -> impl Fn(ClusterConductorOneTenant) -> Vec<ObjectRef<Stored>> + Send + 'static {
    move |t| {
        let was_default = t.annotations().get(DEFAULT_TENANT_ANNOTATION).is_some_and(|v| v == "true");
        refs(ctx.caches.tenants.users_of(
            TenantKind::ClusterConductorOneTenant,
            "",
            &t.name_any(),
            was_default,
        ))
    }
}

type TenantEvents<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// The tenant watches of a scope, feeding the tenant store before the controller sees their events:
/// the scope's `ConductorOneTenant`s, and when the scope is the whole cluster the
/// `ClusterConductorOneTenant`s (a namespaced install reads no cluster-scoped tenant).
fn tenant_watches(
    ctx: &Arc<Context>,
    scope: Option<String>,
) -> (TenantEvents<ConductorOneTenant>, TenantEvents<ClusterConductorOneTenant>) {
    let api: Api<Lean<ConductorOneTenant>> = scoped(&ctx.client, scope.as_deref());
    let (c, s) = (ctx.clone(), scope.clone());
    let namespaced =
        resilient(ctx.watch_health.clone(), WatchKind::ConductorOneTenant, scope.clone(), move || {
            watcher(api.clone(), paged()).map_ok(lean::event)
        })
        .map_ok(move |event| {
            c.caches.tenants.observe_namespaced(s.as_deref(), &event);
            event
        })
        .touched_objects()
        .boxed();
    if scope.is_some() {
        return (namespaced, futures::stream::empty().boxed());
    }
    let api: Api<Lean<ClusterConductorOneTenant>> = Api::all(ctx.client.clone());
    let c = ctx.clone();
    let cluster =
        resilient(ctx.watch_health.clone(), WatchKind::ClusterConductorOneTenant, None, move || {
            watcher(api.clone(), paged()).map_ok(lean::event)
        })
        .map_ok(move |event| {
            c.caches.tenants.observe_cluster(&c.config.operator_namespace, &event);
            event
        })
        .touched_objects()
        .boxed();
    (namespaced, cluster)
}

/// What no decision reads: kubectl's copy of the last applied object is often most of an object's
/// size. (The field-ownership records are not even decoded: `lean`.)
fn trim(meta: &mut ObjectMeta) {
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Resolves once the store has listed everything. The store's own readiness future wakes only its
/// latest poller, and the controller polls it too; asking again every second avoids a lost wake-up.
async fn listed(store: &Store<Stored>) {
    loop {
        match tokio::time::timeout(Duration::from_secs(1), store.wait_until_ready()).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => {
                warn!(error = %e, "BatonConnector cache never synced");
                return future::pending().await;
            }
            Err(_) => continue,
        }
    }
}

fn spawn_readiness(store: Store<Stored>, ready: Arc<AtomicBool>) {
    tokio::spawn(async move {
        listed(&store).await;
        info!(resources = store.len(), "BatonConnector cache synced");
        ready.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BatonConnector;
    use kube::core::DeserializeGuard;

    fn context() -> Context {
        let (service, _) =
            tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
        let client = kube::Client::new(service, "default");
        let c1 = crate::conductorone::ConductorOneClient::new(Default::default()).unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(crate::metrics::Metrics::register(&mut registry));
        Context::new(client, c1, metrics, Default::default())
    }

    fn polled(name: &str) -> Guarded {
        let bc: BatonConnector = serde_json::from_value(serde_json::json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"connector": "okta", "credentials": {"secretRef": {"name": "c1"}},
                     "conductorOne": {"apiCredentialsSecretRef": {"name": "api"}, "appId": "app", "connectorId": name}},
        }))
        .unwrap();
        DeserializeGuard(Ok(bc))
    }

    #[tokio::test]
    async fn a_relist_forgets_what_was_deleted_while_the_watch_was_down() {
        let ctx = context();
        let mut relist = Relist::default();
        for event in
            [Event::Init, Event::InitApply(polled("a")), Event::InitApply(polled("b")), Event::InitDone]
        {
            follow_connectors(&ctx, None, &event, &mut relist);
        }
        assert_eq!(ctx.sync_poller.tracked(), 2);
        ctx.backoff.failed(&ObjectRef::new("b").within("ns"));
        // The watch fails; "b" is deleted meanwhile; the fresh watcher's list has only "a".
        for event in [Event::Init, Event::Init, Event::InitApply(polled("a")), Event::InitDone] {
            follow_connectors(&ctx, None, &event, &mut relist);
        }
        assert_eq!(ctx.sync_poller.tracked(), 1, "the deleted connector is no longer polled");
        assert_eq!(ctx.backoff.len(), 0, "nor kept in backoff");
        assert_eq!(ctx.caches.index.readers("ns", "c1"), ["a"], "nor indexed as a reader of its Secret");
    }
}
