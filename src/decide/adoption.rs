//! Adoption of a hand-written workload (the `adopt-existing` annotation): whether a BatonConnector
//! may take over the Deployment or CronJob of its own name, and the next step of the cut-over.
//!
//! A Deployment's selector is immutable, and a hand-written one selects by the vendor's labels, not
//! by the instance as the operator's does: it cannot be patched into the operator's. So the old
//! Deployment is *released*: deleted with `propagationPolicy: Orphan`, which leaves its ReplicaSet
//! and pods running, without an owner. The operator then creates its own Deployment; once a pod of it
//! is available, the orphaned ReplicaSets (found by the old selector, recorded in
//! `status.adoption`) are deleted. The app is never without a running connector, and two processes
//! share the credential for at most one rollout, as replicas of one connector may (the vendor's
//! guidance). A CronJob has no selector: it is taken over in place by the operator's apply.

use k8s_openapi::api::apps::v1::Deployment;
use kube::{Resource, ResourceExt};

use crate::api::{ADOPT_EXISTING, AdoptionStatus, BatonConnector};

/// Whether the resource asks to adopt what it finds under its name.
pub fn requested(bc: &BatonConnector) -> bool {
    bc.annotations().get(ADOPT_EXISTING).is_some_and(|v| v == "true")
}

/// What to do with a live object of the resource's name that the resource does not control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Takeover {
    /// Not asked for: the object stays someone else's (`OwnershipConflict`, as without adoption).
    NotRequested,
    /// Another controller owns it (another operator, a Helm-less chart controller...): never taken.
    Refused { owner: String },
    /// Release the old Deployment (orphaning its pods) and record its selector first.
    Release(AdoptionStatus),
    /// The released Deployment is still being deleted: wait for the name to be free.
    WaitForRelease,
    /// Take the object over in place (a CronJob: the apply adds the owner reference).
    InPlace,
}

/// The controller owner of an object, as `Kind/name`, if any.
pub fn controller_of<K: Resource>(object: &K) -> Option<String> {
    object
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| format!("{}/{}", o.kind, o.name))
}

/// Decides for a live Deployment that the resource does not control.
pub fn deployment(
    bc: &BatonConnector,
    live: &Deployment,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Takeover {
    if !requested(bc) {
        return Takeover::NotRequested;
    }
    if let Some(owner) = controller_of(live) {
        return Takeover::Refused { owner };
    }
    if live.metadata.deletion_timestamp.is_some() {
        return Takeover::WaitForRelease;
    }
    let selector = live.spec.selector.match_labels.clone().unwrap_or_default();
    Takeover::Release(AdoptionStatus { selector, released_at: now.clone() })
}

/// Decides for a live CronJob that the resource does not control.
pub fn cronjob<K: Resource>(bc: &BatonConnector, live: &K) -> Takeover {
    if !requested(bc) {
        return Takeover::NotRequested;
    }
    match controller_of(live) {
        Some(owner) => Takeover::Refused { owner },
        None => Takeover::InPlace,
    }
}

/// Whether a ReplicaSet is one the released Deployment left behind: it has no controller and its
/// labels carry every label of the old selector. The operator's own ReplicaSets are owned by its
/// Deployment, so they never match, whatever labels they share with the old pods.
pub fn left_behind<K: Resource>(replica_set: &K, adoption: &AdoptionStatus) -> bool {
    let labels = replica_set.labels();
    controller_of(replica_set).is_none()
        && !adoption.selector.is_empty()
        && adoption.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{
        api::apps::v1::ReplicaSet,
        apimachinery::pkg::apis::meta::v1::{OwnerReference, Time},
        jiff::Timestamp,
    };
    use serde_json::json;

    fn bc(adopt: Option<&str>) -> BatonConnector {
        let mut bc = crate::resources::testing::connector("baton-sentinel-one", "sentinel-one");
        if let Some(v) = adopt {
            bc.metadata.annotations = Some([(ADOPT_EXISTING.to_string(), v.to_string())].into());
        }
        bc
    }

    fn vendor_deployment(owner: Option<&str>) -> Deployment {
        let mut d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "baton-sentinel-one", "labels": {"app": "baton-sentinel-one"}},
            "spec": {"selector": {"matchLabels": {"app": "baton-sentinel-one"}},
                     "template": {"metadata": {"labels": {"app": "baton-sentinel-one"}}}},
        }))
        .unwrap();
        d.metadata.owner_references = owner.map(|kind| {
            vec![OwnerReference {
                kind: kind.into(),
                name: "x".into(),
                controller: Some(true),
                ..Default::default()
            }]
        });
        d
    }

    fn now() -> Time {
        Time(Timestamp::from_second(100).unwrap())
    }

    #[test]
    fn without_the_annotation_nothing_is_taken_over() {
        assert_eq!(deployment(&bc(None), &vendor_deployment(None), &now()), Takeover::NotRequested);
        assert_eq!(deployment(&bc(Some("yes")), &vendor_deployment(None), &now()), Takeover::NotRequested);
    }

    #[test]
    fn an_unowned_deployment_is_released_with_its_selector_recorded() {
        let Takeover::Release(a) = deployment(&bc(Some("true")), &vendor_deployment(None), &now()) else {
            panic!()
        };
        assert_eq!(a.selector, [("app".to_string(), "baton-sentinel-one".to_string())].into());
        assert_eq!(a.released_at, now());
    }

    #[test]
    fn another_controllers_object_is_refused_and_named() {
        let owned = vendor_deployment(Some("OtherOperatorThing"));
        assert_eq!(
            deployment(&bc(Some("true")), &owned, &now()),
            Takeover::Refused { owner: "OtherOperatorThing/x".into() }
        );
    }

    #[test]
    fn a_released_deployment_still_deleting_is_waited_for() {
        let mut d = vendor_deployment(None);
        d.metadata.deletion_timestamp = Some(now());
        assert_eq!(deployment(&bc(Some("true")), &d, &now()), Takeover::WaitForRelease);
    }

    #[test]
    fn only_ownerless_replica_sets_with_the_old_labels_are_left_behind() {
        let adoption = AdoptionStatus {
            selector: [("app".into(), "baton-sentinel-one".into())].into(),
            released_at: now(),
        };
        let rs = |labels: serde_json::Value, owned: bool| -> ReplicaSet {
            let mut rs: ReplicaSet =
                serde_json::from_value(json!({"metadata": {"name": "r", "labels": labels}})).unwrap();
            if owned {
                rs.metadata.owner_references = Some(vec![OwnerReference {
                    kind: "Deployment".into(),
                    controller: Some(true),
                    ..Default::default()
                }]);
            }
            rs
        };
        assert!(left_behind(
            &rs(json!({"app": "baton-sentinel-one", "pod-template-hash": "1"}), false),
            &adoption
        ));
        assert!(
            !left_behind(&rs(json!({"app": "baton-sentinel-one"}), true), &adoption),
            "the operator's own"
        );
        assert!(!left_behind(&rs(json!({"app": "other"}), false), &adoption));
        let empty = AdoptionStatus { selector: Default::default(), released_at: now() };
        assert!(!left_behind(&rs(json!({"app": "x"}), false), &empty), "an empty selector matches nothing");
    }
}
