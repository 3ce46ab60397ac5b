//! Zero-click onboarding's side effects (the decisions are in [`crate::decide::onboarding`]): creates the
//! ConductorOne app and connector the spec leaves out, and deletes them with the resource.
//!
//! Like a rotation, each creation is journaled in status before the call (`creating*Since`) and its
//! result right after it. A reply lost to a crash or a timeout leaves the
//! intent recorded without an id; the next reconcile then looks for the object by the marker in its
//! description before it creates anything, so one resource never gets two connectors.

use kube::ResourceExt;
use tracing::{info, warn};

use crate::controller::reconcile::pass::Pass;
use crate::decide::{
    events::Note,
    outcome::{CleanupError, Stage},
    status::Problem,
};
use crate::{
    Result,
    api::{BatonConnector, ConductorOneSpec, ConductorOneStatus},
    conductorone::{ApiCredentials, ConductorOneClient, Error as C1Error, ErrorKind},
    decide::onboarding::{self, Ids, Step},
};

/// A bound on steps per reconcile (release, find, create app, create connector and records).
const MAX_STEPS: usize = 8;

/// Brings the resource's ConductorOne app and connector into being; returns their ids once they
/// exist (`None` before, or without `conductorOne`). What keeps it from finishing goes into the
/// pass's outcome.
pub(crate) async fn converge(pass: &mut Pass<'_>) -> Result<Option<Ids>> {
    let Some(c1) = pass.bc.spec.conductor_one.clone() else { return Ok(None) };
    // The tenant's slots: a tenant whose ConductorOne is slow takes only its own.
    let pool = pass.seen.pool(pass.ctx);
    let mut slot = None;
    for _ in 0..MAX_STEPS {
        let recorded = pass.conductor_one();
        let step = onboarding::plan(&c1, Some(&recorded));
        if let Step::Ready(ids) = step {
            return Ok(Some(ids));
        }
        if let Step::Release { app, connector } = step {
            release(pass, &c1, &recorded, app, connector).await?;
            continue;
        }
        if slot.is_none() {
            match pool.slots.try_acquire() {
                Ok(s) => slot = Some(s),
                Err(_) => {
                    pass.outcome.busy();
                    return Ok(None);
                }
            }
        }
        let api = match pass.seen.api_credentials() {
            Ok(api) => api,
            Err(p) => {
                pass.outcome.block(Stage::Onboarding, Problem::Input(p));
                return Ok(None);
            }
        };
        let done = match step {
            Step::FindApp => find_app(pass, &api, recorded).await?,
            Step::CreateApp => create_app(pass, &c1, &api, recorded).await?,
            Step::FindConnector { app } => find_connector(pass, &api, &app, recorded).await?,
            Step::CreateConnector { app } => create_connector(pass, &c1, &api, &app, recorded).await?,
            Step::Ready(_) | Step::Release { .. } => unreachable!("handled above"),
        };
        if let Err(problem) = done {
            pass.outcome.block(Stage::Onboarding, problem);
            return Ok(None);
        }
    }
    warn!(namespace = %pass.namespace(), name = %pass.name(), "onboarding did not settle within one reconcile");
    pass.outcome.busy();
    Ok(None)
}

type Done = std::result::Result<(), Problem>;

fn record(bc: &BatonConnector) -> ConductorOneStatus {
    bc.status.as_ref().and_then(|s| s.conductor_one.clone()).unwrap_or_default()
}

fn uid(bc: &BatonConnector) -> String {
    bc.uid().unwrap_or_default()
}

async fn release(
    pass: &mut Pass<'_>,
    c1: &ConductorOneSpec,
    recorded: &ConductorOneStatus,
    app: bool,
    connector: bool,
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
    pass.record_onboarding(&next).await?;
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
    info!(namespace = %pass.namespace(), name = %pass.name(), released = ?let_go, "explicit ConductorOne ids win over created ones");
    pass.note(Note { warning: true, reason: "StoppedManaging", action: "Onboard", message });
    Ok(())
}

async fn find_app(pass: &mut Pass<'_>, api: &ApiCredentials, recorded: ConductorOneStatus) -> Result<Done> {
    let apps = match pass.seen.pool(pass.ctx).client.list_apps(api).await {
        Ok(apps) => apps,
        Err(e) => return Ok(Err(c1_problem("finding the app created before a lost reply", &e))),
    };
    let found = marked(apps, &uid(&pass.bc), |a| (&a.description, a.deleted_at.is_some()));
    let mut next = ConductorOneStatus { creating_app_since: None, ..recorded };
    if let Some(app) = &found {
        next.app_id = Some(app.id.clone());
        next.created_app = true;
        pass.note(created_note("AppCreated", format!("found app {} created before a lost reply", app.id)));
    }
    pass.record_onboarding(&next).await?;
    Ok(Ok(()))
}

async fn create_app(
    pass: &mut Pass<'_>,
    c1: &ConductorOneSpec,
    api: &ApiCredentials,
    recorded: ConductorOneStatus,
) -> Result<Done> {
    let Some(new) = onboarding::new_app(c1, &pass.namespace(), &pass.name(), &uid(&pass.bc)) else {
        return Ok(Err(Problem::Rejected { message: "set conductorOne.appId or conductorOne.app".into() }));
    };
    let now = pass.seen.now.clone();
    pass.record_onboarding(&ConductorOneStatus { creating_app_since: Some(now), ..recorded.clone() }).await?;
    match pass.seen.pool(pass.ctx).client.create_app(api, &new.display_name, &new.description).await {
        Ok(app) => {
            let next = ConductorOneStatus {
                app_id: Some(app.id.clone()),
                created_app: true,
                creating_app_since: None,
                ..recorded
            };
            pass.record_onboarding(&next).await?;
            info!(namespace = %pass.namespace(), name = %pass.name(), app_id = %app.id, "created ConductorOne app");
            let message = format!("created app {} ({:?}) in ConductorOne", app.id, new.display_name);
            pass.note(created_note("AppCreated", message));
            Ok(Ok(()))
        }
        Err(e) => {
            if surely_not_created(&e) {
                pass.record_onboarding(&recorded).await?;
            }
            Ok(Err(c1_problem("creating the app", &e)))
        }
    }
}

async fn find_connector(
    pass: &mut Pass<'_>,
    api: &ApiCredentials,
    app: &str,
    recorded: ConductorOneStatus,
) -> Result<Done> {
    let connectors = match pass.seen.pool(pass.ctx).client.list_connectors(api, app).await {
        Ok(list) => list,
        Err(e) => {
            let doing = "finding the connector created before a lost reply";
            return Ok(Err(app_problem(doing, app, &recorded, &e)));
        }
    };
    let found = marked(connectors, &uid(&pass.bc), |c| (&c.description, c.deleted_at.is_some()));
    let mut next = ConductorOneStatus { creating_connector_since: None, ..recorded };
    if let Some(connector) = &found {
        next.app_id = Some(app.to_string());
        next.connector_id = Some(connector.id.clone());
        next.created_connector = true;
        let message = format!("found connector {} created before a lost reply", connector.id);
        pass.note(created_note("ConnectorCreated", message));
    }
    pass.record_onboarding(&next).await?;
    Ok(Ok(()))
}

async fn create_connector(
    pass: &mut Pass<'_>,
    c1: &ConductorOneSpec,
    api: &ApiCredentials,
    app: &str,
    recorded: ConductorOneStatus,
) -> Result<Done> {
    let new = onboarding::new_connector(c1, &pass.namespace(), &pass.name(), &uid(&pass.bc));
    // The app goes on record with the intent: the connector found after a lost reply lives there.
    let intent = ConductorOneStatus {
        app_id: Some(app.to_string()),
        creating_connector_since: Some(pass.seen.now.clone()),
        ..recorded.clone()
    };
    pass.record_onboarding(&intent).await?;
    match pass.seen.pool(pass.ctx).client.create_connector(api, app, &new).await {
        Ok(connector) => {
            let next = ConductorOneStatus {
                connector_id: Some(connector.id.clone()),
                created_connector: true,
                creating_connector_since: None,
                ..intent
            };
            pass.record_onboarding(&next).await?;
            info!(namespace = %pass.namespace(), name = %pass.name(), app_id = %app, connector_id = %connector.id, "created ConductorOne connector");
            let message = format!(
                "created connector {} ({:?}) in app {app} in ConductorOne",
                connector.id, new.display_name
            );
            pass.note(created_note("ConnectorCreated", message));
            Ok(Ok(()))
        }
        Err(e) => {
            if surely_not_created(&e) {
                pass.record_onboarding(&ConductorOneStatus { creating_connector_since: None, ..intent })
                    .await?;
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
    Problem::conductorone(format!("{doing}: {e}"), e)
}

/// A failure inside an app; a created app that is gone was deleted by someone else.
fn app_problem(doing: &str, app: &str, recorded: &ConductorOneStatus, e: &C1Error) -> Problem {
    if e.kind() == ErrorKind::NotFound && recorded.created_app && recorded.app_id.as_deref() == Some(app) {
        return Problem::ConductorOne {
            reason: crate::api::Reason::ConnectorDeleted,
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

/// Deletion with `deletionPolicy: Revoke`, after the credentials are revoked: deletes the connector
/// and then the app the operator created (the app only when no other connector is in it), and what
/// a creation with a lost reply may have made. Says what it could not delete and why.
pub(crate) async fn delete_created(
    conductorone: &ConductorOneClient,
    bc: &BatonConnector,
    api: &ApiCredentials,
) -> std::result::Result<Vec<String>, CleanupError> {
    let rec = record(bc);
    let uid = uid(bc);
    let mut deleted = Vec::new();
    let mut app = rec.app_id.clone().filter(|_| rec.created_app);
    if app.is_none() && rec.creating_app_since.is_some() {
        let apps = conductorone
            .list_apps(api)
            .await
            .map_err(|e| CleanupError::retryable(format!("listing apps: {e}")))?;
        app = marked(apps, &uid, |a| (&a.description, a.deleted_at.is_some())).map(|a| a.id);
    }
    let connector_app = rec.app_id.clone().or(bc.spec.conductor_one.as_ref().and_then(|c| c.app_id.clone()));
    let mut connector = rec.connector_id.clone().filter(|_| rec.created_connector).zip(connector_app.clone());
    if connector.is_none()
        && rec.creating_connector_since.is_some()
        && let Some(in_app) = connector_app.clone().or(app.clone())
    {
        match conductorone.list_connectors(api, &in_app).await {
            Ok(list) => {
                connector =
                    marked(list, &uid, |c| (&c.description, c.deleted_at.is_some())).map(|c| (c.id, in_app));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CleanupError::retryable(format!("listing the connectors of app {in_app}: {e}")));
            }
        }
    }
    if let Some((id, in_app)) = &connector {
        match conductorone.delete_connector(api, in_app, id).await {
            Ok(()) => deleted.push(format!("connector {id}")),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CleanupError::from_conductorone(format!("deleting connector {id}: {e}"), &e));
            }
        }
    }
    if let Some(app) = app {
        let others = match conductorone.list_connectors(api, &app).await {
            Ok(list) => list
                .into_iter()
                .filter(|c| c.deleted_at.is_none() && connector.as_ref().is_none_or(|(id, _)| *id != c.id))
                .count(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(deleted),
            Err(e) => {
                return Err(CleanupError::from_conductorone(
                    format!("listing the connectors of app {app}: {e}"),
                    &e,
                ));
            }
        };
        if others > 0 {
            info!(namespace = ?bc.namespace(), name = %bc.name_any(), app_id = %app, others, "kept the created app: other connectors use it");
            return Ok(deleted);
        }
        match conductorone.delete_app(api, &app).await {
            Ok(()) => deleted.push(format!("app {app}")),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(CleanupError::from_conductorone(format!("deleting app {app}: {e}"), &e)),
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
