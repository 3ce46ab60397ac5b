//! `kubectl baton describe NAME`: everything a person needs about one connector on one screen.

use std::io::Write;

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        batch::v1::{CronJob, Job},
        core::v1::Event,
    },
    jiff::Timestamp,
};
use kube::{Api, Client, ResourceExt, api::ListParams};

use super::{
    error::{self, Result},
    output::{age, table},
};
use crate::api::{BatonConnector, BatonConnectorStatus, Mode};

/// How many events are shown; older ones are in `kubectl get events`.
const EVENTS: usize = 8;

pub async fn describe(client: &Client, namespace: &str, name: &str, out: &mut impl Write) -> Result<()> {
    let bc = Api::<BatonConnector>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| error::named(e, "batonconnector", namespace, name))?;
    let children = children(client, namespace, &bc).await?;
    let events = events(client, namespace, &bc).await?;
    let tenant = match &bc.spec.conductor_one {
        Some(c1) => Some(super::tenants::of_connector(client, namespace, c1).await),
        None => None,
    };
    let seen = Seen { children: &children, events: &events, tenant: tenant.as_deref() };
    render(out, &bc, &seen, Timestamp::now()).map_err(anyhow::Error::from)?;
    Ok(())
}

/// One line per child object, already rendered.
async fn children(client: &Client, namespace: &str, bc: &BatonConnector) -> Result<Vec<String>> {
    let name = bc.name_any();
    let selector = ListParams::default().labels(&format!("app.kubernetes.io/instance={name}"));
    let mut lines = Vec::new();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    if let Some(d) = deployments.get_opt(&name).await? {
        let s = d.status.unwrap_or_default();
        lines.push(format!(
            "Deployment/{name}: {}/{} available, {} updated",
            s.available_replicas.unwrap_or(0),
            d.spec.replicas.unwrap_or(1),
            s.updated_replicas.unwrap_or(0)
        ));
    }
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), namespace);
    if let Some(c) = cronjobs.get_opt(&name).await? {
        let suspended = c.spec.suspend.unwrap_or(false);
        let last = c.status.and_then(|s| s.last_schedule_time).map_or("never".into(), |t| t.0.to_string());
        lines.push(format!(
            "CronJob/{name}: last scheduled {last}{}",
            if suspended { ", suspended" } else { "" }
        ));
        let mut jobs = Api::<Job>::namespaced(client.clone(), namespace).list(&selector).await?.items;
        jobs.sort_by_key(|j| j.creation_timestamp());
        for j in jobs.iter().rev().take(5) {
            let s = j.status.clone().unwrap_or_default();
            let state = match (s.succeeded.unwrap_or(0), s.failed.unwrap_or(0), s.active.unwrap_or(0)) {
                (n, _, _) if n > 0 => "Succeeded".to_string(),
                (_, _, n) if n > 0 => "Running".to_string(),
                (_, f, _) if f > 0 => format!("Failed ({f} pods)"),
                _ => "Pending".to_string(),
            };
            lines.push(format!("  Job/{}: {state}", j.name_any()));
        }
    }
    if lines.is_empty() {
        lines.push("none yet".into());
    }
    Ok(lines)
}

/// The resource's events, newest last. core/v1 sees events written through events.k8s.io/v1 too.
async fn events(client: &Client, namespace: &str, bc: &BatonConnector) -> Result<Vec<Event>> {
    let uid = bc.uid().unwrap_or_default();
    let lp = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
    let mut events = Api::<Event>::namespaced(client.clone(), namespace).list(&lp).await?.items;
    events.sort_by_key(event_time);
    let skip = events.len().saturating_sub(EVENTS);
    Ok(events.split_off(skip))
}

fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// What `describe` read besides the connector.
#[derive(Default)]
pub struct Seen<'a> {
    /// One line per child object, already rendered.
    pub children: &'a [String],
    pub events: &'a [Event],
    /// The tenant the connector uses and whether it is ready (`tenants::of_connector`).
    pub tenant: Option<&'a str>,
}

pub fn render(out: &mut impl Write, bc: &BatonConnector, seen: &Seen, now: Timestamp) -> std::io::Result<()> {
    let Seen { children, events, tenant } = *seen;
    let status = bc.status.clone().unwrap_or_default();
    let generation = bc.metadata.generation.unwrap_or(0);
    writeln!(out, "Name:       {}/{}", bc.namespace().unwrap_or_default(), bc.name_any())?;
    writeln!(out, "Connector:  {} ({} mode)", bc.spec.connector, bc.spec.mode.as_str())?;
    writeln!(out, "Suspended:  {}", bc.spec.suspend)?;
    let seen =
        if status.observed_generation == generation { "current" } else { "NOT YET SEEN by the operator" };
    writeln!(out, "Generation: {generation} ({seen}, observed {})", status.observed_generation)?;
    if let Some(image) = &status.image {
        writeln!(out, "Image:      {image}")?;
    }
    // What the connector pod says is wrong, first: it is usually the reason someone runs describe.
    if let Some(pod) = status.workload.as_ref().and_then(|w| w.pod.as_deref()) {
        writeln!(out, "Pod:        {pod}")?;
    }

    writeln!(out, "\nConditions:")?;
    let mut rows = vec![["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"].map(String::from).to_vec()];
    rows.extend(status.conditions.iter().map(|c| {
        vec![
            format!("  {}", c.type_),
            c.status.clone(),
            c.reason.clone(),
            age(c.last_transition_time.0, now),
            c.message.clone(),
        ]
    }));
    rows[0][0] = "  TYPE".into();
    table(out, &rows)?;

    conductor_one(out, bc, &status, tenant)?;
    sync(out, bc, &status, now)?;
    schedule(out, bc, &status)?;
    credentials(out, &status, now)?;

    writeln!(out, "\nChildren:")?;
    for line in children {
        writeln!(out, "  {line}")?;
    }

    writeln!(out, "\nEvents (last {EVENTS}):")?;
    if events.is_empty() {
        writeln!(out, "  none")?;
    }
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            vec![
                format!("  {}", event_time(e).map_or("-".into(), |t| age(t, now))),
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(out, &rows)
}

/// The ConductorOne ids, and who created them.
fn conductor_one(
    out: &mut impl Write,
    bc: &BatonConnector,
    status: &BatonConnectorStatus,
    tenant: Option<&str>,
) -> std::io::Result<()> {
    if let Some(c1) = &bc.spec.conductor_one {
        writeln!(out, "\nConductorOne:")?;
        writeln!(out, "  Principal:      {}", crate::decide::tenant::describe(c1))?;
        if let Some(tenant) = tenant {
            writeln!(out, "  Tenant:         {tenant}")?;
        }
        let created = status.conductor_one.clone().unwrap_or_default();
        let by = |operator: bool| if operator { " (created by the operator)" } else { "" };
        match crate::decide::onboarding::ids(bc) {
            Some(ids) => {
                let app_created = c1.app_id.is_none() && created.created_app;
                writeln!(out, "  App:            {}{}", ids.app, by(app_created))?;
                writeln!(out, "  Connector:      {}{}", ids.connector, by(ids.created_connector))?;
            }
            None => writeln!(out, "  Onboarding:     the app or connector is still being created")?,
        }
        if let Some(at) = &created.paused_at {
            writeln!(out, "  Paused:         since {} (spec.suspend)", at.0)?;
        }
    }
    Ok(())
}

/// The last sync ConductorOne reported.
fn sync(
    out: &mut impl Write,
    bc: &BatonConnector,
    status: &BatonConnectorStatus,
    now: Timestamp,
) -> std::io::Result<()> {
    if let Some(sync) = &status.sync {
        writeln!(out, "\nSync (ConductorOne):")?;
        writeln!(out, "  State:          {}", sync.state.as_deref().unwrap_or("unknown"))?;
        let ago = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            t.as_ref().map_or("never".to_string(), |t| format!("{} ago ({})", age(t.0, now), t.0))
        };
        writeln!(out, "  Last started:   {}", ago(&sync.last_started_at))?;
        writeln!(out, "  Last completed: {}", ago(&sync.last_completed_at))?;
        if let Some(c1) = &bc.spec.conductor_one {
            writeln!(out, "  Freshness:      {}", c1.sync_freshness())?;
        }
        if let Some(e) = sync.last_error.as_deref().filter(|e| !e.is_empty()) {
            writeln!(out, "  Last error:     {e}")?;
        }
    }
    Ok(())
}

/// OneShot mode's runs.
fn schedule(out: &mut impl Write, bc: &BatonConnector, status: &BatonConnectorStatus) -> std::io::Result<()> {
    if bc.spec.mode == Mode::OneShot
        && let Some(s) = &status.schedule
    {
        writeln!(out, "\nSchedule:")?;
        let t = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            t.as_ref().map_or("-".to_string(), |t| t.0.to_string())
        };
        writeln!(out, "  Last scheduled: {}", t(&s.last_schedule_time))?;
        writeln!(out, "  Last success:   {}", t(&s.last_successful_time))?;
        writeln!(out, "  Next run:       {}", t(&s.next_run_time))?;
        if let Some(f) = &s.last_failure {
            writeln!(out, "  Last failure:   Job {} {}: {}", f.job, f.reason, f.message)?;
        }
    }
    Ok(())
}

/// The managed credential and its rotation.
fn credentials(out: &mut impl Write, status: &BatonConnectorStatus, now: Timestamp) -> std::io::Result<()> {
    if let Some(c) = &status.credentials {
        writeln!(out, "\nCredentials:")?;
        writeln!(out, "  Secret:         {}", c.secret_name.as_deref().unwrap_or("-"))?;
        if let Some(r) = c.revision {
            writeln!(out, "  Revision:       {r}")?;
        }
        if let Some(id) = &c.credential_id {
            writeln!(out, "  Credential id:  {id}")?;
        }
        if let Some(t) = &c.issued_at {
            writeln!(out, "  Issued:         {} ago", age(t.0, now))?;
        }
        if let Some(t) = &c.next_rotation_at {
            writeln!(out, "  Next rotation:  {} ({})", t.0, age(t.0, now))?;
        }
        match &c.rotation {
            Some(r) => writeln!(
                out,
                "  Rotation:       {:?} to revision {} ({}, started {} ago{})",
                r.phase,
                r.revision,
                r.trigger,
                age(r.started_at.0, now),
                if r.unrecorded_attempts > 0 {
                    format!(
                        ", {} unrecorded issue attempts: a credential may be orphaned",
                        r.unrecorded_attempts
                    )
                } else {
                    String::new()
                }
            )?,
            None => writeln!(out, "  Rotation:       none under way")?,
        }
        if !c.pending_revocations.is_empty() {
            writeln!(out, "  Pending revocations: {}", c.pending_revocations.join(", "))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BatonConnectorStatus, WorkloadStatus};

    #[test]
    fn the_pod_s_answer_is_shown_when_there_is_one() {
        let mut bc = crate::resources::testing::connector("okta", "okta");
        let shown = |bc: &BatonConnector| {
            let mut out = Vec::new();
            render(&mut out, bc, &Seen::default(), Timestamp::UNIX_EPOCH).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(!shown(&bc).contains("Pod:"));
        let line = "CrashLoopBackOff: exit 1, 5 restarts: fatal: login failed";
        bc.status = Some(BatonConnectorStatus {
            workload: Some(WorkloadStatus {
                name: "okta".into(),
                pod: Some(line.into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(shown(&bc).contains(&format!("Pod:        {line}\n")), "{}", shown(&bc));
    }

    #[test]
    fn the_tenant_in_use_is_shown_with_whether_it_is_ready() {
        let mut bc = crate::resources::testing::connector("okta", "okta");
        bc.spec.conductor_one = Some(crate::api::ConductorOneSpec {
            tenant_ref: Some(crate::api::TenantRef {
                kind: crate::api::TenantKind::ClusterConductorOneTenant,
                name: "prod".into(),
            }),
            api_credentials_secret_ref: None,
            app_id: Some("app".into()),
            app: None,
            connector_id: Some("conn".into()),
            connector: None,
            sync_freshness: Some("24h".into()),
            pause_when_suspended: true,
        });
        let tenant = "ClusterConductorOneTenant prod: NOT READY (CredentialsRejected: refused), 2 connectors";
        let mut out = Vec::new();
        let seen = Seen { tenant: Some(tenant), ..Default::default() };
        render(&mut out, &bc, &seen, Timestamp::UNIX_EPOCH).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("  Principal:      ClusterConductorOneTenant prod\n"), "{text}");
        assert!(text.contains(&format!("  Tenant:         {tenant}\n")), "{text}");
    }
}
