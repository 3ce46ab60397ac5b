//! Labels every child object and pod carries, and the selector that scopes pods to one resource.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::api::BatonConnector;

pub const MANAGED_BY: &str = "baton-operator";
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// Label selector for everything this operator manages, used to scope its watches.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY}")
}

/// `baton-<connector>`: the vendor manifests' app name, kept so `kubectl logs -l app=baton-okta` works.
pub fn app_name(bc: &BatonConnector) -> String {
    format!("baton-{}", bc.spec.connector)
}

/// The labels of every child and pod: the vendor's (`app`, `baton`, `baton-app`, with `baton` as the
/// string "true", which the vendor's YAML meant but wrote as a boolean) plus the recommended
/// `app.kubernetes.io/*` set.
pub fn labels(bc: &BatonConnector) -> BTreeMap<String, String> {
    let app = app_name(bc);
    BTreeMap::from([
        ("app".to_string(), app.clone()),
        ("baton".to_string(), "true".to_string()),
        ("baton-app".to_string(), bc.spec.connector.clone()),
        (NAME_LABEL.to_string(), app),
        (INSTANCE_LABEL.to_string(), bc.name_any()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (COMPONENT_LABEL.to_string(), "connector".to_string()),
    ])
}

/// The pod selector. It names the instance, so two resources for one connector in one namespace never
/// share pods, and holds nothing that can change over the resource's life (selectors are immutable).
pub fn selector(bc: &BatonConnector) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE_LABEL.to_string(), bc.name_any()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
    ])
}

/// Pod labels: the user's `podLabels` first, then ours, so ours win on a clash.
pub fn pod_labels(bc: &BatonConnector) -> BTreeMap<String, String> {
    let mut out = bc.spec.pod_labels.clone();
    out.extend(labels(bc));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::connector;

    #[test]
    fn vendor_labels_are_strings() {
        let l = labels(&connector("okta-prod", "okta"));
        assert_eq!(l["app"], "baton-okta");
        assert_eq!(l["baton"], "true");
        assert_eq!(l["baton-app"], "okta");
        assert_eq!(l[INSTANCE_LABEL], "okta-prod");
        assert_eq!(l[MANAGED_BY_LABEL], "baton-operator");
    }

    #[test]
    fn selectors_of_two_instances_differ() {
        let a = selector(&connector("okta-a", "okta"));
        let b = selector(&connector("okta-b", "okta"));
        assert_ne!(a, b);
        // The selector must be a subset of the pod labels or the Deployment is invalid.
        let pods = pod_labels(&connector("okta-a", "okta"));
        assert!(a.iter().all(|(k, v)| pods.get(k) == Some(v)));
    }

    #[test]
    fn user_pod_labels_cannot_override_ours() {
        let mut bc = connector("x", "okta");
        bc.spec.pod_labels.insert("app".into(), "evil".into());
        bc.spec.pod_labels.insert("team".into(), "iam".into());
        let l = pod_labels(&bc);
        assert_eq!(l["app"], "baton-okta");
        assert_eq!(l["team"], "iam");
    }
}
