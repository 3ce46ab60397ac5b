//! The identity of a managed-credentials Secret revision: its name, labels, annotation keys and
//! owner. `controller::credentials` writes these Secrets from it, and `render` shows the Secret the
//! operator would create from it too; `tests/integration/managed.rs` checks the two outputs side by side.

use kube::{Resource, ResourceExt, api::ObjectMeta};

use super::labels;
use crate::{api::BatonConnector, decide::rotation};

/// The ConductorOne id of the credential a revision holds (not secret).
pub const CREDENTIAL_ID_ANNOTATION: &str = "baton.conductorone.com/credential-id";
/// When ConductorOne issued it.
pub const ISSUED_AT_ANNOTATION: &str = "baton.conductorone.com/issued-at";
/// When it expires, if ConductorOne said.
pub const EXPIRES_AT_ANNOTATION: &str = "baton.conductorone.com/expires-at";
/// The revision number, also the suffix of the Secret's name.
pub const REVISION_LABEL: &str = "baton.conductorone.com/credential-revision";

/// Name, namespace, labels and owner of revision `revision` of `bc`'s managed credentials.
pub fn secret_metadata(bc: &BatonConnector, revision: i64) -> ObjectMeta {
    let mut labels = labels::labels(bc);
    labels.insert(REVISION_LABEL.into(), revision.to_string());
    ObjectMeta {
        name: Some(rotation::secret_name(&bc.name_any(), revision)),
        namespace: bc.namespace(),
        labels: Some(labels),
        owner_references: bc.controller_owner_ref(&()).map(|o| vec![o]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::connector;

    #[test]
    fn revisions_are_named_and_labelled_by_number() {
        let bc = connector("okta", "okta");
        let meta = secret_metadata(&bc, 3);
        assert_eq!(meta.name.as_deref(), Some("okta-c1-credentials-3"));
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        let labels = meta.labels.unwrap();
        assert_eq!(labels[REVISION_LABEL], "3");
        assert_eq!(labels[labels::INSTANCE_LABEL], "okta");
        assert_eq!(meta.owner_references.unwrap()[0].kind, "BatonConnector");
    }
}
