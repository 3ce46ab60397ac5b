//! The caches' unit tests.

use super::*;
use kube::api::ObjectMeta;

fn secret(ns: &str, name: &str, rv: u64, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            resource_version: Some(rv.to_string()),
            ..Default::default()
        },
        string_data: Some([("k".to_string(), value.to_string())].into()),
        ..Default::default()
    }
}

fn held(c: &Caches, ns: &str, name: &str) -> Option<Option<String>> {
    let store = c.secrets.read().unwrap();
    let (_, data) = store.items.get(&(ns.to_string(), name.to_string()))?;
    Some(data.as_ref().map(|d| {
        let (_, v) = d.data.iter().find(|(k, _)| k == "k").unwrap();
        String::from_utf8(v.0.clone()).unwrap()
    }))
}

#[test]
fn only_secrets_someone_reads_keep_their_data() {
    let c = Caches::default();
    c.index.set("ns", "okta", vec!["read".into()]);
    c.observe_secret(None, &Event::Apply(secret("ns", "read", 1, "a")));
    c.observe_secret(None, &Event::Apply(secret("ns", "other", 1, "b")));
    c.observe_secret(None, &Event::Apply(secret("elsewhere", "read", 1, "c")));
    assert_eq!(held(&c, "ns", "read"), Some(Some("a".into())));
    assert_eq!(held(&c, "ns", "other"), Some(None));
    assert_eq!(held(&c, "elsewhere", "read"), Some(None));
}

#[test]
fn a_relist_drops_what_was_deleted_meanwhile_in_its_scope_only() {
    let c = Caches::default();
    c.expect_watches(2);
    for (ns, name) in [("a", "x"), ("a", "y"), ("b", "z")] {
        c.observe_secret(None, &Event::Apply(secret(ns, name, 1, "v")));
    }
    c.observe_secret(Some("a"), &Event::Init);
    c.observe_secret(Some("a"), &Event::InitApply(secret("a", "x", 2, "v")));
    c.observe_secret(Some("a"), &Event::InitDone);
    assert!(held(&c, "a", "x").is_some());
    assert!(held(&c, "a", "y").is_none(), "deleted while the watch was down");
    assert!(held(&c, "b", "z").is_some(), "another namespace's watch owns it");
    assert_eq!(c.pending.borrow().unlisted, Some(1));
    // A second re-list of the same scope is not a first list.
    c.observe_secret(Some("a"), &Event::Init);
    c.observe_secret(Some("a"), &Event::InitDone);
    assert_eq!(c.pending.borrow().unlisted, Some(1));
}

#[test]
fn a_first_list_keeps_no_keys_unless_it_starts_over() {
    let c = Caches::default();
    c.expect_watches(1);
    c.observe_secret(None, &Event::Init);
    c.observe_secret(None, &Event::InitApply(secret("a", "x", 1, "v")));
    c.observe_secret(None, &Event::InitApply(secret("a", "y", 1, "v")));
    assert!(c.secrets.read().unwrap().relisting.is_empty(), "an empty cache's first list finds nothing gone");
    // The list fails; "y" is deleted meanwhile; the fresh watcher lists again.
    c.observe_secret(None, &Event::Init);
    c.observe_secret(None, &Event::InitApply(secret("a", "x", 1, "v")));
    c.observe_secret(None, &Event::InitDone);
    assert!(held(&c, "a", "x").is_some());
    assert!(held(&c, "a", "y").is_none(), "deleted while the first list started over");
    assert!(c.pending.borrow().settled(), "one list, however often it starts");
}

#[tokio::test]
async fn listed_deployments_read_back_from_the_cache_as_they_were() {
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    // Requests would fail: the other end is gone.
    let (service, _) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let client = Client::new(service, "default");
    let deployment = |name: &str, available: Option<i32>| Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            resource_version: Some("3".into()),
            ..Default::default()
        },
        status: available.map(|n| DeploymentStatus { available_replicas: Some(n), ..Default::default() }),
        ..Default::default()
    };
    let c = Caches::default();
    c.expect_watches(1);
    c.observe_deployment(None, &Event::Init);
    let (a, b) = (deployment("a", None), deployment("b", Some(1)));
    c.observe_deployment(None, &Event::InitApply(a.clone()));
    c.observe_deployment(None, &Event::InitApply(b.clone()));
    c.observe_deployment(None, &Event::InitDone);
    assert_eq!(c.deployment(&client, "ns", "a").await.unwrap(), Some(a));
    assert_eq!(c.deployment(&client, "ns", "b").await.unwrap(), Some(b));
    assert_eq!(c.deployment(&client, "ns", "gone").await.unwrap(), None);
}

#[test]
fn an_older_event_does_not_replace_a_newer_copy() {
    let c = Caches::default();
    c.index.set("ns", "okta", vec!["s".into()]);
    c.observe_secret(None, &Event::Apply(secret("ns", "s", 5, "new")));
    c.observe_secret(None, &Event::Apply(secret("ns", "s", 4, "old")));
    assert_eq!(held(&c, "ns", "s"), Some(Some("new".into())));
    c.observe_secret(None, &Event::Delete(secret("ns", "s", 6, "new")));
    assert_eq!(held(&c, "ns", "s"), None);
}

fn labelled<K: Resource>(mut o: K, ns: &str, name: &str, rv: u64, instance: &str) -> K {
    let m = o.meta_mut();
    m.name = Some(name.into());
    m.namespace = Some(ns.into());
    m.resource_version = Some(rv.to_string());
    m.labels = Some([(labels::INSTANCE_LABEL.to_string(), instance.to_string())].into());
    o
}

/// The relist after an outage, for one cache: `changed` comes back with a newer version, `gone`
/// does not come back. Returns the resources the cache asked to reconcile.
fn outage<K: Resource + Clone>(
    c: &Caches,
    observe: fn(&Caches, Option<&str>, &Event<K>),
    changed: K,
    gone: K,
    changed_again: K,
) -> Vec<ObjectRef<BatonConnector>> {
    let mut triggers = c.relisted();
    c.expect_watches(1);
    observe(c, None, &Event::Init);
    observe(c, None, &Event::InitApply(changed));
    observe(c, None, &Event::InitApply(gone));
    observe(c, None, &Event::InitDone);
    assert!(triggers.try_recv().is_err(), "a first list finds nothing gone");
    // The watch fails; a fresh watcher lists again. Init twice: the first list attempt failed.
    observe(c, None, &Event::Init);
    observe(c, None, &Event::Init);
    assert_eq!(c.pending.borrow().listing, 1, "one list under way, however often it starts");
    observe(c, None, &Event::InitApply(changed_again));
    observe(c, None, &Event::InitDone);
    assert!(c.pending.borrow().settled());
    std::iter::from_fn(|| triggers.try_recv().ok()).collect()
}

#[test]
fn a_relist_after_an_outage_updates_changed_children_and_reconciles_the_owners_of_deleted_ones() {
    let d = |name: &str, rv, instance: &str| labelled(Deployment::default(), "ns", name, rv, instance);
    let c = Caches::default();
    let triggered = outage(&c, Caches::observe_deployment, d("a", 1, "a"), d("b", 1, "b"), d("a", 5, "a"));
    assert_eq!(triggered, vec![ObjectRef::new("b").within("ns")]);
    let store = c.deployments.read().unwrap();
    assert_eq!(store.items.get(&("ns".into(), "a".into())).map(|(v, _)| *v), Some(Some(5)));
    assert!(!store.items.contains_key(&("ns".into(), "b".into())));
    drop(store);

    let cj = |name: &str, rv, instance: &str| labelled(CronJob::default(), "ns", name, rv, instance);
    let c = Caches::default();
    let triggered = outage(&c, Caches::observe_cronjob, cj("a", 1, "a"), cj("b", 1, "b"), cj("a", 5, "a"));
    assert_eq!(triggered, vec![ObjectRef::new("b").within("ns")]);
    assert_eq!(c.cronjobs.read().unwrap().items.len(), 1);

    // A Job is its resource's by label, whatever its own name.
    let j = |name: &str, rv, instance: &str| labelled(Job::default(), "ns", name, rv, instance);
    let c = Caches::default();
    let triggered = outage(&c, Caches::observe_job, j("a-1", 1, "a"), j("b-7", 1, "b"), j("a-1", 5, "a"));
    assert_eq!(triggered, vec![ObjectRef::new("b").within("ns")]);
    assert_eq!(c.jobs.read().unwrap().items.len(), 1);

    // A pod is its resource's by label too; what is kept of it is its small view.
    let p = |name: &str, rv, instance: &str| labelled(Pod::default(), "ns", name, rv, instance);
    let c = Caches::default();
    let triggered = outage(&c, Caches::observe_pod, p("a-x1", 1, "a"), p("b-y2", 1, "b"), p("a-x1", 5, "a"));
    assert_eq!(triggered, vec![ObjectRef::new("b").within("ns")]);
    assert_eq!(c.pods.read().unwrap().items.len(), 1);

    // A Secret is its readers'; a changed one carries its new data.
    let c = Caches::default();
    c.index.set("ns", "reader-of-a", vec!["a".into()]);
    c.index.set("ns", "reader-of-b", vec!["b".into()]);
    let triggered = outage(
        &c,
        Caches::observe_secret,
        secret("ns", "a", 1, "old"),
        secret("ns", "b", 1, "x"),
        secret("ns", "a", 5, "new"),
    );
    assert_eq!(triggered, vec![ObjectRef::new("reader-of-b").within("ns")]);
    assert_eq!(held(&c, "ns", "a"), Some(Some("new".into())));
    assert_eq!(held(&c, "ns", "b"), None);
}

#[tokio::test(start_paused = true)]
async fn reads_wait_for_a_relist_under_way_and_not_for_ever() {
    let c = std::sync::Arc::new(Caches::default());
    c.expect_watches(1);
    c.observe_secret(None, &Event::Init);
    c.observe_secret(None, &Event::InitDone);
    assert!(c.synced().await, "listed: the cache answers");
    // The watch failed and lists again: a read waits until the list is done.
    c.observe_secret(None, &Event::Init);
    let reader = {
        let c = c.clone();
        tokio::spawn(async move { c.synced().await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!reader.is_finished(), "a read during a relist waits");
    c.observe_secret(None, &Event::InitDone);
    assert!(reader.await.unwrap(), "and then reads the cache");
    // A relist that never ends (the API server stays away): one bounded wait, then the API
    // server answers reads, until the caches are complete again.
    c.observe_secret(None, &Event::Init);
    assert!(!c.synced().await, "after SYNC_WAIT, reads go to the API server");
    assert!(!c.synced().await, "without waiting again");
    c.observe_secret(None, &Event::InitDone);
    assert!(c.synced().await);
}

#[tokio::test]
async fn a_resource_reads_its_own_pods_from_the_cache() {
    let (service, _) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let client = Client::new(service, "default");
    let p = |ns: &str, name: &str, instance: &str| labelled(Pod::default(), ns, name, 1, instance);
    let c = Caches::default();
    c.expect_watches(1);
    c.observe_pod(None, &Event::Init);
    for pod in [p("ns", "okta-1", "okta"), p("ns", "other-1", "other"), p("elsewhere", "okta-1", "okta")] {
        c.observe_pod(None, &Event::InitApply(pod));
    }
    // A pod without the instance label is no connector's, and is not kept.
    c.observe_pod(
        None,
        &Event::InitApply(Pod {
            metadata: ObjectMeta {
                name: Some("x".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        }),
    );
    c.observe_pod(None, &Event::InitDone);
    let pods = c.pods(&client, "ns", "okta").await.unwrap();
    assert_eq!(pods.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["okta-1"]);
    c.observe_pod(None, &Event::Delete(p("ns", "okta-1", "okta")));
    assert!(c.pods(&client, "ns", "okta").await.unwrap().is_empty());
}
