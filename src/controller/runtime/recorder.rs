//! Publishes Kubernetes events, folding a repeat of the same event within a few minutes into a series
//! on the first one, as kube's `Recorder` does. kube's keeps a full copy of every event it published
//! for that (about 3.8 KB each: 36 MiB for a fleet of 5,000 created within the window); this keeps a
//! digest of what makes two events the same, and what the first one's name was made of and its count.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event as K8sEvent},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    runtime::events::{Event, EventType, Reporter},
};
use serde_json::json;
use sha2::{Digest, Sha256};

/// How long a published event can still become a series; kube's `Recorder` uses the same.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Expired entries are dropped at most this often, so that a publish never walks the whole cache.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Event type, action, reason, reporter and the object regarded, hashed.
type Key = [u8; 16];

struct Published {
    /// The first event's name is the regarded object's name (part of the key) and this.
    stamp: i128,
    count: i32,
    last: Instant,
}

#[derive(Default)]
struct Cache {
    events: HashMap<Key, Published>,
    swept: Option<Instant>,
}

pub struct Recorder {
    client: Client,
    reporter: Reporter,
    cache: Mutex<Cache>,
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self { client, reporter, cache: Default::default() }
    }

    /// Creates the event, or, when the same event went out within the window, counts it in the
    /// series of that one.
    pub async fn publish(&self, ev: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let key = self.key(ev, regarding);
        let now = Instant::now();
        let repeat = {
            let mut cache = self.cache.lock().expect("event cache poisoned");
            cache.sweep(now);
            cache
                .events
                .get(&key)
                .filter(|p| now.duration_since(p.last) < SERIES_WINDOW)
                .map(|p| (p.stamp, p.count + 1))
        };
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        let published = match repeat {
            Some((stamp, count)) => {
                let series = json!({"series": {
                    "count": count,
                    "lastObservedTime": MicroTime(Timestamp::now()),
                }});
                api.patch(&self.name(regarding, stamp), &PatchParams::default(), &Patch::Merge(&series))
                    .await?;
                Published { stamp, count, last: now }
            }
            None => {
                let stamp = Timestamp::now().as_nanosecond();
                api.create(&PostParams::default(), &self.event(ev, regarding, &namespace, stamp)).await?;
                // A series starts at 2: the event itself was the first.
                Published { stamp, count: 1, last: now }
            }
        };
        self.cache.lock().expect("event cache poisoned").events.insert(key, published);
        Ok(())
    }

    /// What kube's `Recorder` compares to tell a repeat: everything but the note and the time.
    fn key(&self, ev: &Event, regarding: &ObjectReference) -> Key {
        let mut h = Sha256::new();
        let mut field = |v: Option<&str>| {
            // Length-prefixed, so that no two different tuples hash the same input.
            let v =
                v.map_or(Vec::from([0u8]), |s| [&[1u8][..], &s.len().to_le_bytes(), s.as_bytes()].concat());
            h.update(v);
        };
        field(Some(match ev.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }));
        field(Some(&ev.action));
        field(Some(&ev.reason));
        field(Some(&self.reporter.controller));
        field(self.reporter.instance.as_deref());
        for r in std::iter::once(Some(regarding)).chain([ev.secondary.as_ref()]) {
            let r = r.cloned().unwrap_or_default();
            for v in [r.api_version, r.kind, r.namespace, r.name, r.uid, r.resource_version, r.field_path] {
                field(v.as_deref());
            }
        }
        let digest = h.finalize();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }

    /// An event's name, as kube's `Recorder` makes it: the regarded object's name and the time.
    fn name(&self, regarding: &ObjectReference, stamp: i128) -> String {
        format!("{}.{stamp:x}", regarding.name.as_ref().unwrap_or(&self.reporter.controller))
    }

    /// The event as kube's `Recorder` builds it.
    fn event(&self, ev: &Event, regarding: &ObjectReference, namespace: &str, stamp: i128) -> K8sEvent {
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(
                Timestamp::from_nanosecond(stamp).unwrap_or_else(|_| Timestamp::now()),
            )),
            regarding: Some(regarding.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(namespace.into()),
                name: Some(self.name(regarding, stamp)),
                ..Default::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter.instance.clone().unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            related: ev.secondary.clone(),
            ..Default::default()
        }
    }

    /// Events the recorder can still fold repeats into, for tests.
    pub fn held(&self) -> usize {
        self.cache.lock().expect("event cache poisoned").events.len()
    }
}

impl Cache {
    fn sweep(&mut self, now: Instant) {
        if self.swept.is_some_and(|at| now.duration_since(at) < SWEEP_EVERY) {
            return;
        }
        self.events.retain(|_, p| now.duration_since(p.last) < SERIES_WINDOW);
        self.swept = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http::{Request, Response};
    use kube::client::Body;

    use super::*;

    type Seen = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

    /// A client whose requests are recorded and answered with an event.
    fn client() -> (Client, Seen) {
        let seen: Seen = Default::default();
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let s = seen.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let body = body.collect_bytes().await.unwrap_or_default();
                let body = serde_json::from_slice(&body).unwrap_or_default();
                s.lock().unwrap().push((parts.method.to_string(), parts.uri.path().to_string(), body));
                let answer = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                    "metadata": {"name": "e", "namespace": "ns"}, "eventTime": "2026-01-01T00:00:00.000000Z"});
                send.send_response(Response::new(Body::from(answer.to_string().into_bytes())));
            }
        });
        (Client::new(service, "default"), seen)
    }

    fn regarding(resource_version: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("baton.conductorone.com/v1alpha1".into()),
            kind: Some("BatonConnector".into()),
            namespace: Some("ns".into()),
            name: Some("okta".into()),
            uid: Some("u1".into()),
            resource_version: Some(resource_version.into()),
            ..Default::default()
        }
    }

    fn event(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn a_repeat_is_counted_in_the_series_of_the_first() {
        let (client, seen) = client();
        let r = Recorder::new(client, Reporter { controller: "baton-operator".into(), instance: None });
        r.publish(&event("SecretNotFound", "a"), &regarding("1")).await.unwrap();
        // The note is not part of what makes two events the same, as in kube's recorder.
        r.publish(&event("SecretNotFound", "b"), &regarding("1")).await.unwrap();
        r.publish(&event("SecretNotFound", "a"), &regarding("1")).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let (method, path, created) = &seen[0];
        assert_eq!((method.as_str(), path.as_str()), ("POST", "/apis/events.k8s.io/v1/namespaces/ns/events"));
        assert_eq!(created["note"], "a");
        assert_eq!(created["reportingInstance"], "baton-operator");
        let name = created["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("okta."), "{name}");
        for (i, count) in [(1, 2), (2, 3)] {
            let (method, path, patch) = &seen[i];
            assert_eq!(method, "PATCH");
            assert_eq!(path, &format!("/apis/events.k8s.io/v1/namespaces/ns/events/{name}"));
            assert_eq!(patch["series"]["count"], count);
            assert!(patch["series"]["lastObservedTime"].is_string());
        }
        assert_eq!(r.held(), 1);
    }

    #[tokio::test]
    async fn another_reason_or_version_is_a_new_event() {
        let (client, seen) = client();
        let r = Recorder::new(client, Reporter { controller: "baton-operator".into(), instance: None });
        r.publish(&event("SecretNotFound", "a"), &regarding("1")).await.unwrap();
        r.publish(&event("KeyMissing", "a"), &regarding("1")).await.unwrap();
        r.publish(&event("SecretNotFound", "a"), &regarding("2")).await.unwrap();
        let methods: Vec<String> = seen.lock().unwrap().iter().map(|(m, _, _)| m.clone()).collect();
        assert_eq!(methods, ["POST", "POST", "POST"]);
        assert_eq!(r.held(), 3);
    }

    #[test]
    fn entries_past_the_window_are_swept() {
        let start = Instant::now();
        let entry = |last: Instant| Published { stamp: 1, count: 1, last };
        let mut cache = Cache::default();
        cache.events.insert([1; 16], entry(start));
        cache.events.insert([2; 16], entry(start + SERIES_WINDOW));
        cache.sweep(start + SERIES_WINDOW + Duration::from_secs(1));
        assert_eq!(cache.events.keys().collect::<Vec<_>>(), [&[2; 16]]);
    }
}
