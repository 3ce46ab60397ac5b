//! Zero-click onboarding's side effects (the decisions are in [`crate::onboarding`]): creates the
//! ConductorOne app and connector the spec leaves out, and deletes them with the resource.
//!
//! Like a rotation, each creation is recorded before the call (`creating*Since`) and its result
//! right after it, under a field manager of its own. A reply lost to a crash or a timeout leaves the
//! intent recorded without an id; the next reconcile then looks for the object by the marker in its
//! description before it creates anything, so one resource never gets two connectors.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{Context, credentials, events::Note, status::Problem};
use crate::{
    Result,
    api::{BatonConnector, ConductorOneSpec, ConductorOneStatus},
    conductorone::{ApiCredentials, Error as C1Error, ErrorKind},
    onboarding::{self, Ids, Step},
    resources::SecretData,
};

/// Writes of the onboarding record use their own field manager and touch only its fields.
const STATE_MANAGER: &str = "baton-operator/onboarding";
/// A bound on steps per reconcile (release, find, create app, create connector and records).
const MAX_STEPS: usize = 8;
/// The fields of `status.conductorOne` this module owns.
const FIELDS: &[&str] =
    &["appId", "connectorId", "createdApp", "createdConnector", "creatingAppSince", "creatingConnectorSince"];

/// What onboarding came to.
#[derive(Default)]
pub(super) struct Onboarded {
    /// The ids to use; `None` until onboarding is done (or without `conductorOne`).
    pub ids: Option<Ids>,
    pub problem: Option<Problem>,
    /// Every ConductorOne slot was taken: come back soon.
    pub busy: bool,
}

/// Brings the resource's ConductorOne app and connector into being. `bc` is kept equal to what the
/// API server holds.
pub(super) async fn converge(
    ctx: &Context,
    bc: &mut BatonConnector,
    secrets: &SecretData,
    notes: &mut Vec<Note>,
) -> Result<Onboarded> {
    let mut out = Onboarded::default();
    let Some(c1) = bc.spec.conductor_one.clone() else { return Ok(out) };
    let mut slot = None;
    for _ in 0..MAX_STEPS {
        let recorded = record(bc);
        let step = onboarding::plan(&c1, Some(&recorded));
        if let Step::Ready(ids) = step {
            out.ids = Some(ids);
            return Ok(out);
        }
        if let Step::Release { app, connector } = step {
            release(ctx, bc, &c1, &recorded, app, connector, notes).await?;
            continue;
        }
        if slot.is_none() {
            match ctx.c1_slots.try_acquire() {
                Ok(s) => slot = Some(s),
                Err(_) => {
                    out.busy = true;
                    return Ok(out);
                }
            }
        }
        let api = match credentials::api_credentials(bc, &c1, secrets) {
            Ok(api) => api,
            Err(p) => {
                out.problem = Some(Problem::Input(p));
                return Ok(out);
            }
        };
        let done = match step {
            Step::FindApp => find_app(ctx, bc, &api, recorded, notes).await?,
            Step::CreateApp => create_app(ctx, bc, &c1, &api, recorded, notes).await?,
            Step::FindConnector { app } => find_connector(ctx, bc, &api, &app, recorded, notes).await?,
            Step::CreateConnector { app } => {
                create_connector(ctx, bc, &c1, &api, &app, recorded, notes).await?
            }
            Step::Ready(_) | Step::Release { .. } => unreachable!("handled above"),
        };
        if let Err(problem) = done {
            out.problem = Some(problem);
            return Ok(out);
        }
    }
    warn!(namespace = ?bc.namespace(), name = %bc.name_any(), "onboarding did not settle within one reconcile");
    out.busy = true;
    Ok(out)
}

type Done = std::result::Result<(), Problem>;

fn record(bc: &BatonConnector) -> ConductorOneStatus {
    bc.status.as_ref().and_then(|s| s.conductor_one.clone()).unwrap_or_default()
}

fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::now()))
}

fn uid(bc: &BatonConnector) -> String {
    bc.uid().unwrap_or_default()
}

async fn release(
    ctx: &Context,
    bc: &mut BatonConnector,
    c1: &ConductorOneSpec,
    recorded: &ConductorOneStatus,
    app: bool,
    connector: bool,
    notes: &mut Vec<Note>,
) -> Result<()> {
    let mut next = recorded.clone();
    let mut let_go = Vec::new();
    if app {
        let_go.push(format!("app {}", recorded.app_id.as_deref().unwrap_or_default()));
        next.created_app = false;
        next.app_id = None;
    }
    if connector {
        let_go.push(format!("connector {}", recorded.connector_id.as_deref().unwrap_or_default()));
        next.created_connector = false;
        next.connector_id = None;
    }
    persist(ctx, bc, &next).await?;
    let named = match (&c1.app_id, &c1.connector_id) {
        (Some(a), Some(c)) => format!("app {a} and connector {c}"),
        (Some(a), None) => format!("app {a}"),
        _ => "other ids".into(),
    };
    let them = if let_go.len() > 1 { "them" } else { "it" };
    let message = format!(
        "spec.conductorOne names {named}: the operator no longer manages the {} it created and will not delete {them}; delete {them} in ConductorOne if nothing uses {them}",
        let_go.join(" and "),
    );
    info!(namespace = ?bc.namespace(), name = %bc.name_any(), released = ?let_go, "explicit ConductorOne ids win over created ones");
    notes.push(Note { warning: true, reason: "StoppedManaging", action: "Onboard", message });
    Ok(())
}

async fn find_app(
    ctx: &Context,
    bc: &mut BatonConnector,
    api: &ApiCredentials,
    recorded: ConductorOneStatus,
    notes: &mut Vec<Note>,
) -> Result<Done> {
    let apps = match ctx.conductorone.list_apps(api).await {
        Ok(apps) => apps,
        Err(e) => return Ok(Err(c1_problem("finding the app created before a lost reply", &e))),
    };
    let uid = uid(bc);
    let found = marked(apps, &uid, |a| (&a.description, a.deleted_at.is_some()));
    let mut next = ConductorOneStatus { creating_app_since: None, ..recorded };
    if let Some(app) = &found {
        next.app_id = Some(app.id.clone());
        next.created_app = true;
        notes.push(created_note("AppCreated", format!("found app {} created before a lost reply", app.id)));
    }
    persist(ctx, bc, &next).await?;
    Ok(Ok(()))
}

async fn create_app(
    ctx: &Context,
    bc: &mut BatonConnector,
    c1: &ConductorOneSpec,
    api: &ApiCredentials,
    recorded: ConductorOneStatus,
    notes: &mut Vec<Note>,
) -> Result<Done> {
    let Some(new) = onboarding::new_app(c1, &bc.namespace().unwrap_or_default(), &bc.name_any(), &uid(bc))
    else {
        return Ok(Err(Problem::Rejected { message: "set conductorOne.appId or conductorOne.app".into() }));
    };
    persist(ctx, bc, &ConductorOneStatus { creating_app_since: Some(now()), ..recorded.clone() }).await?;
    match ctx.conductorone.create_app(api, &new.display_name, &new.description).await {
        Ok(app) => {
            let next = ConductorOneStatus {
                app_id: Some(app.id.clone()),
                created_app: true,
                creating_app_since: None,
                ..recorded
            };
            persist(ctx, bc, &next).await?;
            info!(namespace = ?bc.namespace(), name = %bc.name_any(), app_id = %app.id, "created ConductorOne app");
            notes.push(created_note(
                "AppCreated",
                format!("created app {} ({:?}) in ConductorOne", app.id, new.display_name),
            ));
            Ok(Ok(()))
        }
        Err(e) => {
            if surely_not_created(&e) {
                persist(ctx, bc, &recorded).await?;
            }
            Ok(Err(c1_problem("creating the app", &e)))
        }
    }
}

async fn find_connector(
    ctx: &Context,
    bc: &mut BatonConnector,
    api: &ApiCredentials,
    app: &str,
    recorded: ConductorOneStatus,
    notes: &mut Vec<Note>,
) -> Result<Done> {
    let connectors = match ctx.conductorone.list_connectors(api, app).await {
        Ok(list) => list,
        Err(e) => {
            return Ok(Err(app_problem(
                "finding the connector created before a lost reply",
                app,
                &recorded,
                &e,
            )));
        }
    };
    let uid = uid(bc);
    let found = marked(connectors, &uid, |c| (&c.description, c.deleted_at.is_some()));
    let mut next = ConductorOneStatus { creating_connector_since: None, ..recorded };
    if let Some(connector) = &found {
        next.app_id = Some(app.to_string());
        next.connector_id = Some(connector.id.clone());
        next.created_connector = true;
        notes.push(created_note(
            "ConnectorCreated",
            format!("found connector {} created before a lost reply", connector.id),
        ));
    }
    persist(ctx, bc, &next).await?;
    Ok(Ok(()))
}

async fn create_connector(
    ctx: &Context,
    bc: &mut BatonConnector,
    c1: &ConductorOneSpec,
    api: &ApiCredentials,
    app: &str,
    recorded: ConductorOneStatus,
    notes: &mut Vec<Note>,
) -> Result<Done> {
    let new = onboarding::new_connector(c1, &bc.namespace().unwrap_or_default(), &bc.name_any(), &uid(bc));
    // The app goes on record with the intent: the connector found after a lost reply lives there.
    let intent = ConductorOneStatus {
        app_id: Some(app.to_string()),
        creating_connector_since: Some(now()),
        ..recorded.clone()
    };
    persist(ctx, bc, &intent).await?;
    match ctx.conductorone.create_connector(api, app, &new).await {
        Ok(connector) => {
            let next = ConductorOneStatus {
                connector_id: Some(connector.id.clone()),
                created_connector: true,
                creating_connector_since: None,
                ..intent
            };
            persist(ctx, bc, &next).await?;
            info!(namespace = ?bc.namespace(), name = %bc.name_any(), app_id = %app, connector_id = %connector.id, "created ConductorOne connector");
            notes.push(created_note(
                "ConnectorCreated",
                format!(
                    "created connector {} ({:?}) in app {app} in ConductorOne",
                    connector.id, new.display_name
                ),
            ));
            Ok(Ok(()))
        }
        Err(e) => {
            if surely_not_created(&e) {
                persist(ctx, bc, &ConductorOneStatus { creating_connector_since: None, ..intent }).await?;
            }
            Ok(Err(app_problem("creating the connector", app, &recorded, &e)))
        }
    }
}

/// The server refused the request, so it created nothing; anything else (a timeout, a 5xx, a
/// dropped connection) may have created it.
fn surely_not_created(e: &C1Error) -> bool {
    matches!(e.status(), Some(400..=499)) || e.not_sent()
}

fn c1_problem(doing: &str, e: &C1Error) -> Problem {
    Problem::ConductorOne {
        reason: e.reason(),
        message: format!("{doing}: {e}"),
        permanent: e.is_permanent(),
    }
}

/// A failure inside an app; a created app that is gone was deleted by someone else.
fn app_problem(doing: &str, app: &str, recorded: &ConductorOneStatus, e: &C1Error) -> Problem {
    if e.kind() == ErrorKind::NotFound && recorded.created_app && recorded.app_id.as_deref() == Some(app) {
        return Problem::ConductorOne {
            reason: "ConnectorDeleted",
            message: format!(
                "app {app}, which the operator created, was deleted in ConductorOne; it is not created again: delete and re-create this BatonConnector, or set conductorOne.appId"
            ),
            permanent: true,
        };
    }
    c1_problem(doing, e)
}

fn created_note(reason: &'static str, message: String) -> Note {
    Note { warning: false, reason, action: "Onboard", message }
}

/// Records `next` as the onboarding fields of `status.conductorOne`, field by field, so that the
/// rest of `status.conductorOne` (the pause) keeps its owner.
async fn persist(ctx: &Context, bc: &mut BatonConnector, next: &ConductorOneStatus) -> Result<()> {
    let previous = serde_json::to_value(record(bc)).unwrap_or(Value::Null);
    let next = serde_json::to_value(next).unwrap_or(Value::Null);
    let mut ops = Vec::new();
    if bc.status.is_none() {
        ops.push(json!({"op": "add", "path": "/status", "value": {}}));
    }
    if bc.status.as_ref().is_none_or(|s| s.conductor_one.is_none()) {
        ops.push(json!({"op": "add", "path": "/status/conductorOne", "value": {}}));
    }
    for field in FIELDS {
        let path = format!("/status/conductorOne/{field}");
        match (previous.get(field), next.get(field)) {
            (old, Some(new)) if old != Some(new) => {
                ops.push(json!({"op": "add", "path": path, "value": new}))
            }
            (Some(_), None) => ops.push(json!({"op": "remove", "path": path})),
            _ => {}
        }
    }
    if ops.iter().all(|op| op["path"] == "/status" || op["path"] == "/status/conductorOne") {
        return Ok(());
    }
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).expect("valid JSON patch");
    let api: Api<BatonConnector> = Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
    let params = PatchParams { field_manager: Some(STATE_MANAGER.into()), ..Default::default() };
    *bc = api.patch_status(&bc.name_any(), &params, &Patch::Json::<()>(patch)).await?;
    ctx.metrics.status_writes.inc();
    Ok(())
}

/// Deletion with `deletionPolicy: Revoke`, after the credentials are revoked: deletes the connector
/// and then the app the operator created (the app only when no other connector is in it), and what
/// a creation with a lost reply may have made. Says what it could not delete and why.
pub(super) async fn delete_created(
    ctx: &Context,
    bc: &BatonConnector,
    api: &ApiCredentials,
) -> std::result::Result<Vec<String>, String> {
    let rec = record(bc);
    let uid = uid(bc);
    let mut deleted = Vec::new();
    let mut app = rec.app_id.clone().filter(|_| rec.created_app);
    if app.is_none() && rec.creating_app_since.is_some() {
        let apps = ctx.conductorone.list_apps(api).await.map_err(|e| format!("listing apps: {e}"))?;
        app = marked(apps, &uid, |a| (&a.description, a.deleted_at.is_some())).map(|a| a.id);
    }
    let connector_app = rec.app_id.clone().or(bc.spec.conductor_one.as_ref().and_then(|c| c.app_id.clone()));
    let mut connector = rec.connector_id.clone().filter(|_| rec.created_connector).zip(connector_app.clone());
    if connector.is_none()
        && rec.creating_connector_since.is_some()
        && let Some(in_app) = connector_app.clone().or(app.clone())
    {
        match ctx.conductorone.list_connectors(api, &in_app).await {
            Ok(list) => {
                connector =
                    marked(list, &uid, |c| (&c.description, c.deleted_at.is_some())).map(|c| (c.id, in_app));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("listing the connectors of app {in_app}: {e}")),
        }
    }
    if let Some((id, in_app)) = &connector {
        match ctx.conductorone.delete_connector(api, in_app, id).await {
            Ok(()) => deleted.push(format!("connector {id}")),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(with_permanence(format!("deleting connector {id}: {e}"), &e)),
        }
    }
    if let Some(app) = app {
        let others = match ctx.conductorone.list_connectors(api, &app).await {
            Ok(list) => list
                .into_iter()
                .filter(|c| c.deleted_at.is_none() && connector.as_ref().is_none_or(|(id, _)| *id != c.id))
                .count(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(deleted),
            Err(e) => return Err(with_permanence(format!("listing the connectors of app {app}: {e}"), &e)),
        };
        if others > 0 {
            info!(namespace = ?bc.namespace(), name = %bc.name_any(), app_id = %app, others, "kept the created app: other connectors use it");
            return Ok(deleted);
        }
        match ctx.conductorone.delete_app(api, &app).await {
            Ok(()) => deleted.push(format!("app {app}")),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(with_permanence(format!("deleting app {app}: {e}"), &e)),
        }
    }
    Ok(deleted)
}

/// The live object (app or connector) that carries this resource's marker: what a lost reply created.
fn marked<T>(items: Vec<T>, uid: &str, described: impl Fn(&T) -> (&String, bool)) -> Option<T> {
    items.into_iter().find(|item| {
        let (description, deleted) = described(item);
        !deleted && onboarding::has_marker(description, uid)
    })
}

/// Marks a failure that retrying will not cure, so deletion gives up on it at once.
pub(super) fn with_permanence(message: String, e: &C1Error) -> String {
    if e.is_permanent() { format!("{message} (permanent)") } else { message }
}
