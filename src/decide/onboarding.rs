//! Zero-click onboarding: which ConductorOne app and connector a resource uses, and what the operator
//! has to create, find again or let go of to get there. Pure; `controller::onboarding` performs the
//! steps and records each one before its side effect, like a rotation.
//!
//! Explicit ids in the spec always win. What the operator created is recorded in
//! `status.conductorOne` and never created a second time: a connector deleted in ConductorOne by
//! someone else is reported, not replaced.

use crate::api::{BATON_CATALOG_ID, BatonConnector, ConductorOneSpec, ConductorOneStatus};
use crate::conductorone::NewConnector;

/// The app and connector a resource uses in ConductorOne.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    pub app: String,
    pub connector: String,
    /// The operator created the connector (so its disappearance means someone deleted it).
    pub created_connector: bool,
}

/// The next thing onboarding has to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Everything is in place.
    Ready(Ids),
    /// The spec names other ids than what the operator created: stop managing (never delete) the
    /// created app and/or connector.
    Release {
        app: bool,
        connector: bool,
    },
    /// A creation was under way when the last reply was lost: look for it by its marker.
    FindApp,
    CreateApp,
    FindConnector {
        app: String,
    },
    CreateConnector {
        app: String,
    },
}

/// Decides the next step from the spec and what status records.
pub fn plan(spec: &ConductorOneSpec, recorded: Option<&ConductorOneStatus>) -> Step {
    let rec = recorded.cloned().unwrap_or_default();
    // The app the operator may keep using: an explicit one, or the one it created.
    let wanted_app = spec.app_id.as_deref().or(rec.app_id.as_deref().filter(|_| rec.created_app));
    let connector_elsewhere = rec.app_id.is_some() && rec.app_id.as_deref() != wanted_app;
    let release_app = rec.created_app && spec.app_id.is_some();
    let release_connector = rec.created_connector && (spec.connector_id.is_some() || connector_elsewhere);
    if release_app || release_connector {
        return Step::Release { app: release_app, connector: release_connector };
    }
    let app = match (&spec.app_id, wanted_app) {
        (Some(id), _) => id.clone(),
        (None, Some(created)) => created.to_string(),
        (None, None) if rec.creating_app_since.is_some() => return Step::FindApp,
        (None, None) => return Step::CreateApp,
    };
    let (connector, created_connector) = match (&spec.connector_id, &rec.connector_id) {
        (Some(id), _) => (id.clone(), false),
        (None, Some(id)) if rec.created_connector => (id.clone(), true),
        (None, _) if rec.creating_connector_since.is_some() => return Step::FindConnector { app },
        (None, _) => return Step::CreateConnector { app },
    };
    Step::Ready(Ids { app, connector, created_connector })
}

/// The ids a resource uses, once onboarding is done; `None` before (or without `conductorOne`).
pub fn ids(bc: &BatonConnector) -> Option<Ids> {
    let c1 = bc.spec.conductor_one.as_ref()?;
    match plan(c1, bc.status.as_ref().and_then(|s| s.conductor_one.as_ref())) {
        Step::Ready(ids) => Some(ids),
        _ => None,
    }
}

/// Whether onboarding created, or may have created, something in ConductorOne that the resource's
/// deletion should remove.
pub fn owns_anything(bc: &BatonConnector) -> bool {
    let Some(rec) = bc.status.as_ref().and_then(|s| s.conductor_one.as_ref()) else { return false };
    rec.created_app
        || rec.created_connector
        || rec.creating_app_since.is_some()
        || rec.creating_connector_since.is_some()
}

/// Whether the spec asks the operator to create something.
pub fn creates(spec: &ConductorOneSpec) -> bool {
    spec.app_id.is_none() || spec.connector_id.is_none()
}

/// The line the operator puts in the description of what it creates. The resource's UID makes it
/// unique (a re-created resource of the same name has another), so a lost reply is found again.
pub fn marker(uid: &str) -> String {
    format!("baton-operator uid={uid}")
}

/// Whether `description` carries the marker of the resource with this UID.
pub fn has_marker(description: &str, uid: &str) -> bool {
    let wanted = marker(uid);
    description.lines().any(|line| line.trim_end().ends_with(&wanted))
}

/// What the operator sends to create an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApp {
    pub display_name: String,
    pub description: String,
}

fn described(user: Option<&str>, namespace: &str, name: &str, uid: &str) -> String {
    let stamp = format!("Managed by baton-operator for BatonConnector {namespace}/{name}; {}", marker(uid));
    match user.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => format!("{d}\n\n{stamp}"),
        None => stamp,
    }
}

pub fn new_app(spec: &ConductorOneSpec, namespace: &str, name: &str, uid: &str) -> Option<NewApp> {
    let app = spec.app.as_ref()?;
    Some(NewApp {
        display_name: app.display_name.clone(),
        description: described(app.description.as_deref(), namespace, name, uid),
    })
}

pub fn new_connector(spec: &ConductorOneSpec, namespace: &str, name: &str, uid: &str) -> NewConnector {
    let template = spec.connector.clone().unwrap_or_default();
    NewConnector {
        display_name: template.display_name.unwrap_or_else(|| format!("{namespace}/{name}")),
        description: described(None, namespace, name, uid),
        catalog_id: template.catalog_id.unwrap_or_else(|| BATON_CATALOG_ID.to_string()),
        owner_user_ids: template.owner_user_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AppTemplate, SecretRef};
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

    fn spec(app_id: Option<&str>, connector_id: Option<&str>) -> ConductorOneSpec {
        ConductorOneSpec {
            tenant_ref: None,
            api_credentials_secret_ref: Some(SecretRef { name: "api".into() }),
            app_id: app_id.map(Into::into),
            app: app_id.is_none().then(|| AppTemplate { display_name: "Okta".into(), description: None }),
            connector_id: connector_id.map(Into::into),
            connector: None,
            sync_freshness: None,
            pause_when_suspended: true,
        }
    }

    fn since() -> Option<Time> {
        Some(Time(Timestamp::from_second(1_800_000_000).unwrap()))
    }

    fn created(app: Option<&str>, connector: Option<&str>) -> ConductorOneStatus {
        ConductorOneStatus {
            app_id: app.map(Into::into),
            connector_id: connector.map(Into::into),
            created_app: app.is_some(),
            created_connector: connector.is_some(),
            ..Default::default()
        }
    }

    fn ready(app: &str, connector: &str, created_connector: bool) -> Step {
        Step::Ready(Ids { app: app.into(), connector: connector.into(), created_connector })
    }

    #[test]
    fn explicit_ids_need_nothing() {
        assert_eq!(plan(&spec(Some("a"), Some("c")), None), ready("a", "c", false));
    }

    #[test]
    fn missing_ids_are_created_app_first() {
        assert_eq!(plan(&spec(None, None), None), Step::CreateApp);
        let app_done = created(Some("a1"), None);
        assert_eq!(plan(&spec(None, None), Some(&app_done)), Step::CreateConnector { app: "a1".into() });
        assert_eq!(plan(&spec(Some("a"), None), None), Step::CreateConnector { app: "a".into() });
        let both = created(Some("a1"), Some("c1"));
        assert_eq!(plan(&spec(None, None), Some(&both)), ready("a1", "c1", true));
    }

    #[test]
    fn a_creation_in_flight_is_looked_for_before_creating_again() {
        let app = ConductorOneStatus { creating_app_since: since(), ..Default::default() };
        assert_eq!(plan(&spec(None, None), Some(&app)), Step::FindApp);
        let connector = ConductorOneStatus { creating_connector_since: since(), ..Default::default() };
        assert_eq!(plan(&spec(Some("a"), None), Some(&connector)), Step::FindConnector { app: "a".into() });
    }

    #[test]
    fn explicit_ids_added_later_win_and_release_what_was_created() {
        let both = created(Some("a1"), Some("c1"));
        // Same app pasted into the spec: the app is the user's now, the connector stays the operator's.
        assert_eq!(plan(&spec(Some("a1"), None), Some(&both)), Step::Release { app: true, connector: false });
        // Another app: the created connector lives in the old one, so both are let go.
        assert_eq!(plan(&spec(Some("z"), None), Some(&both)), Step::Release { app: true, connector: true });
        assert_eq!(
            plan(&spec(Some("a1"), Some("k")), Some(&both)),
            Step::Release { app: true, connector: true }
        );
        // A connector created in an explicit app, and then the app changes.
        let in_explicit = ConductorOneStatus {
            app_id: Some("a".into()),
            connector_id: Some("c1".into()),
            created_connector: true,
            ..Default::default()
        };
        assert_eq!(plan(&spec(Some("a"), None), Some(&in_explicit)), ready("a", "c1", true));
        assert_eq!(
            plan(&spec(Some("b"), None), Some(&in_explicit)),
            Step::Release { app: false, connector: true }
        );
        // From an explicit app to one the operator creates: the old connector is let go.
        assert_eq!(
            plan(&spec(None, None), Some(&in_explicit)),
            Step::Release { app: false, connector: true }
        );
    }

    #[test]
    fn released_records_do_not_count_as_created() {
        let released = ConductorOneStatus { app_id: Some("a1".into()), ..Default::default() };
        assert_eq!(plan(&spec(None, None), Some(&released)), Step::CreateApp);
        assert_eq!(
            plan(&spec(Some("a1"), None), Some(&released)),
            Step::CreateConnector { app: "a1".into() }
        );
    }

    #[test]
    fn markers_match_only_their_resource() {
        let spec = spec(None, None);
        let d = new_connector(&spec, "ns", "okta", "uid-1").description;
        assert!(has_marker(&d, "uid-1"));
        assert!(!has_marker(&d, "uid-10") && !has_marker(&d, "uid-"));
        let app = new_app(&spec, "ns", "okta", "uid-1").unwrap();
        assert!(has_marker(&app.description, "uid-1"));
    }

    #[test]
    fn connector_defaults_to_the_generic_baton_catalog_entry() {
        let c = new_connector(&spec(Some("a"), None), "ns", "okta", "u");
        assert_eq!(c.catalog_id, BATON_CATALOG_ID);
        assert_eq!(c.display_name, "ns/okta");
        let mut with_template = spec(Some("a"), None);
        with_template.app = None;
        with_template.connector = Some(crate::api::ConnectorTemplate {
            display_name: Some("Okta prod".into()),
            catalog_id: Some("cat".into()),
            owner_user_ids: vec!["u1".into()],
        });
        let c = new_connector(&with_template, "ns", "okta", "u");
        assert_eq!((c.display_name.as_str(), c.catalog_id.as_str()), ("Okta prod", "cat"));
        assert_eq!(c.owner_user_ids, vec!["u1".to_string()]);
        let mut described = spec(None, None);
        described.app =
            Some(AppTemplate { display_name: "Okta".into(), description: Some("HR's Okta".into()) });
        let app = new_app(&described, "ns", "okta", "u").unwrap();
        assert!(app.description.starts_with("HR's Okta\n\n"), "{}", app.description);
    }
}
