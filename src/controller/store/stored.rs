//! The BatonConnectors as the controller keeps them between events: each object as packed JSON,
//! decoded for the reconcile that needs it, behind a typed header of only what the controller's store
//! and queue key on (name and namespace). A typed BatonConnector takes about 4.5 KB, most of it the
//! inline size of the optional parts of its spec that a connector rarely sets; its JSON (already
//! without `managedFields`) about 1.5 KB, packed a few hundred bytes.

use std::borrow::Cow;

use kube::{
    Resource,
    api::ObjectMeta,
    core::{DeserializeGuard, error_boundary::InvalidObject},
    runtime::watcher::Event,
};
use serde::Deserialize;

use super::packed::{Packed, Packer};
use crate::{
    api::BatonConnector,
    metrics::{FleetSource, Sample},
};

/// A BatonConnector, or the metadata of one that does not deserialize: one unreadable object must
/// not stop the watch of all the others.
pub type Guarded = DeserializeGuard<BatonConnector>;

/// BatonConnectors pack against one with a status: most have one.
static PACKER: Packer = Packer::new();

#[derive(Clone, Debug)]
pub struct Stored {
    metadata: ObjectMeta,
    content: Content,
}

#[derive(Clone, Debug)]
enum Content {
    /// The object as packed JSON, and what the per-resource metrics report of it.
    Readable { json: Packed, sample: Sample },
    /// One the operator cannot read: what it could read of its metadata, and why.
    Unreadable(Box<InvalidObject>),
}

impl From<Guarded> for Stored {
    fn from(guard: Guarded) -> Self {
        // The store and the queues key on name and namespace; every copy of a key in them carries
        // whatever else the header has.
        let header = |m: &ObjectMeta| ObjectMeta {
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            ..Default::default()
        };
        match guard.0 {
            Ok(bc) => {
                let metadata = header(&bc.metadata);
                let content = match serde_json::to_vec(&bc) {
                    Ok(json) => Content::Readable {
                        json: PACKER.pack(&json, bc.status.is_some()),
                        sample: Sample::of(&bc),
                    },
                    Err(e) => Content::Unreadable(Box::new(InvalidObject {
                        error: e.to_string(),
                        metadata: bc.metadata,
                    })),
                };
                Self { metadata, content }
            }
            Err(invalid) => {
                Self { metadata: header(&invalid.metadata), content: Content::Unreadable(Box::new(invalid)) }
            }
        }
    }
}

impl Stored {
    /// The BatonConnector, or why the operator cannot read it.
    pub fn decode(&self) -> Result<BatonConnector, Box<InvalidObject>> {
        match &self.content {
            Content::Readable { json, .. } => {
                let invalid =
                    |error: String| Box::new(InvalidObject { error, metadata: self.metadata.clone() });
                let json = PACKER.unpack(json).map_err(|e| invalid(e.to_string()))?;
                serde_json::from_slice(&json).map_err(|e| invalid(e.to_string()))
            }
            Content::Unreadable(invalid) => Err(invalid.clone()),
        }
    }

    /// What the per-resource metrics report; none for an unreadable resource, which is reported on
    /// itself instead.
    pub fn sample(&self) -> Option<&Sample> {
        match &self.content {
            Content::Readable { sample, .. } => Some(sample),
            Content::Unreadable(_) => None,
        }
    }
}

/// The same watch event, with the object as the store keeps it.
pub fn event(event: Event<Guarded>) -> Event<Stored> {
    match event {
        Event::Apply(g) => Event::Apply(g.into()),
        Event::Delete(g) => Event::Delete(g.into()),
        Event::Init => Event::Init,
        Event::InitApply(g) => Event::InitApply(g.into()),
        Event::InitDone => Event::InitDone,
    }
}

// The controller needs to read objects of its kind from the wire too.
impl<'de> Deserialize<'de> for Stored {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DeserializeGuard::<BatonConnector>::deserialize(d).map(Self::from)
    }
}

impl Resource for Stored {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        BatonConnector::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        BatonConnector::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        BatonConnector::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        BatonConnector::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A controller's store as the per-resource metrics read it.
pub struct Sampled(pub kube::runtime::reflector::Store<Stored>);

impl FleetSource for Sampled {
    fn each(&self, f: &mut dyn FnMut(&str, &str, &Sample)) {
        for stored in self.0.state() {
            if let Some(sample) = stored.sample() {
                let meta = kube::Resource::meta(stored.as_ref());
                f(
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.name.as_deref().unwrap_or_default(),
                    sample,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A status with a little of everything a connector's status may have.
    fn status() -> crate::api::BatonConnectorStatus {
        use crate::api::{CredentialsStatus, SyncStatus, WorkloadStatus, conditions};
        use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
        let at = |s| Time(Timestamp::from_second(s).unwrap());
        let desired = vec![
            conditions::Desired::new(
                conditions::READY,
                true,
                crate::api::Reason::Available,
                "the connector is running",
            ),
            conditions::Desired::new(conditions::STALLED, false, crate::api::Reason::NotStalled, ""),
        ];
        crate::api::BatonConnectorStatus {
            observed_generation: 4,
            conditions: conditions::merge(&[], desired, Some(4), &at(1_700_000_000)),
            image: Some("public.ecr.aws/conductorone/baton-okta:v1".into()),
            workload: Some(WorkloadStatus {
                name: "okta".into(),
                available_replicas: 1,
                config_hash: Some("abc".into()),
                pod: None,
            }),
            credentials: Some(CredentialsStatus {
                secret_name: Some("okta-c1".into()),
                next_rotation_at: Some(at(1_800_000_000)),
                ..Default::default()
            }),
            sync: Some(SyncStatus { last_completed_at: Some(at(1_700_000_100)), ..Default::default() }),
            ..Default::default()
        }
    }

    fn guarded(value: serde_json::Value) -> Guarded {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn every_example_decodes_to_what_was_stored() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value = serde_json::Value::deserialize(doc).unwrap();
                if value["kind"] != "BatonConnector" {
                    continue;
                }
                let mut bc: BatonConnector = serde_json::from_value(value).unwrap();
                bc.status = Some(status());
                let stored = Stored::from(DeserializeGuard(Ok(bc.clone())));
                assert_eq!(stored.decode().unwrap(), bc);
                seen += 1;
            }
        }
        assert!(seen >= 3, "only {seen} examples");
    }

    #[test]
    fn the_header_is_what_the_store_keys_on() {
        let stored = Stored::from(guarded(json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
            "metadata": {"name": "okta", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                         "generation": 3, "labels": {"a": "b"}, "finalizers": ["f"]},
            "spec": {"connector": "okta", "credentials": {"secretRef": {"name": "s"}}},
        })));
        let meta = stored.meta();
        assert_eq!((meta.name.as_deref(), meta.namespace.as_deref()), (Some("okta"), Some("ns")));
        assert_eq!((meta.uid.as_ref(), meta.labels.as_ref(), meta.generation), (None, None, None));
        let bc = stored.decode().unwrap();
        assert_eq!(
            (bc.metadata.uid.as_deref(), bc.metadata.resource_version.as_deref()),
            (Some("u1"), Some("7"))
        );
        assert_eq!((bc.metadata.generation, bc.metadata.finalizers), (Some(3), Some(vec!["f".into()])));
        assert!(stored.sample().is_some());
    }

    #[test]
    fn an_unreadable_resource_stays_unreadable() {
        let stored = Stored::from(guarded(json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
            "metadata": {"name": "okta", "namespace": "ns", "generation": 2},
            "spec": {"connector": "okta", "mode": "Batch"},
        })));
        let invalid = stored.decode().unwrap_err();
        assert!(invalid.error.contains("Batch"), "{}", invalid.error);
        assert_eq!(invalid.metadata.generation, Some(2));
        assert!(stored.sample().is_none());
        assert_eq!(stored.meta().name.as_deref(), Some("okta"));
    }
}
