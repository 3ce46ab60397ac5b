//! One reconcile pass: what it observed (from the caches only), the resource as the API server holds
//! it after this pass's own writes, and what the pass came to. Every write of status, a journal
//! entry before a ConductorOne call as much as the summary at the end, goes through [`Pass::write_status`]:
//! status has one writer and one field manager, and what it wrote is known without reading it back.

use std::sync::Arc;

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        batch::v1::{CronJob, Job},
        core::v1::Secret,
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::{
    principal::{self, Principal},
    sync_view::{self, SyncView},
};
use crate::{
    Error, Result,
    api::{BatonConnector, BatonConnectorStatus, ConductorOneStatus, ConnectorDefaults, CredentialsStatus},
    conductorone::ApiCredentials,
    controller::{
        c1::pools::Pool,
        context::{Context, FIELD_MANAGER},
    },
    decide::{events::Note, outcome::Outcome, pods::PodView},
    resources::{InputProblem, SecretData, inputs},
};

/// What a pass reads, all of it from the watches' caches (or, before they are filled, from the API
/// server), once, at its start.
pub struct Observed {
    /// The pass's one clock reading, in whole seconds as status keeps time.
    pub now: Time,
    /// The Secrets the resource reads, plus the credential revisions this pass created.
    pub secrets: SecretData,
    pub deployment: Option<Deployment>,
    pub cronjob: Option<CronJob>,
    /// OneShot mode: the Jobs of its runs.
    pub jobs: Vec<Job>,
    /// With ConductorOne API access: the sync status as the poller last read it.
    pub sync: Option<SyncView>,
    /// The resource's pods, as the pod cache keeps them.
    pub pods: Vec<PodView>,
    /// With ConductorOne API access: the service principal (its tenant, or the older form's
    /// Secret), or why there is none.
    pub principal: Option<Principal>,
    /// The tenant's connector defaults, which fill what the connector leaves unset in its workload.
    pub defaults: Option<ConnectorDefaults>,
}

impl Observed {
    pub async fn read(ctx: &Context, bc: &BatonConnector) -> Result<Self> {
        let ns = bc.namespace().ok_or(Error::NotNamespaced)?;
        let name = bc.name_any();
        let now = Timestamp::from_second(Timestamp::now().as_second()).expect("now is a valid timestamp");
        let secrets = ctx.caches.secrets(&ctx.client, &ns, &inputs::referenced_secrets(bc)).await?;
        let deployment = ctx.caches.deployment(&ctx.client, &ns, &name).await?;
        let cronjob = ctx.caches.cronjob(&ctx.client, &ns, &name).await?;
        let jobs = match bc.spec.mode {
            crate::api::Mode::OneShot => ctx.caches.jobs(&ctx.client, &ns, &name).await?,
            crate::api::Mode::Service => Vec::new(),
        };
        let (principal, defaults) = match &bc.spec.conductor_one {
            Some(c1) => {
                let (p, d) = principal::observe_with_defaults(ctx, &ns, c1, &secrets).await?;
                // A tenant that is not ready holds its connectors' calls (the deletion path, which
                // reads the principal itself, still tries to revoke).
                let p = p.and_then(|(source, creds)| {
                    crate::decide::tenant::usable(&source, creds).map(|creds| (source, creds))
                });
                (Some(p), d)
            }
            None => (None, None),
        };
        if bc.spec.conductor_one.as_ref().is_some_and(|c1| c1.api_credentials_secret_ref.is_none()) {
            let source = principal.as_ref().and_then(|p| p.as_ref().ok()).map(|(s, _)| s);
            // The tenant's pool made (or made again) with its whole settings before the poller,
            // which keeps only the pool's key, calls through it.
            if let Some(source) = source {
                ctx.pools.for_source(source);
            }
            ctx.sync_poller.track_resolved(bc, source);
        }
        let sync = sync_view::observe(ctx, bc, principal.as_ref(), defaults.as_ref(), now);
        let pods = ctx.caches.pods(&ctx.client, &ns, &name).await?;
        Ok(Self { now: Time(now), secrets, deployment, cronjob, jobs, sync, pods, principal, defaults })
    }

    /// The ConductorOne client and call slots of the connector's tenant (the shared ones for the
    /// older form, or when the principal could not be resolved: no call is made then anyway).
    pub fn pool(&self, ctx: &Context) -> Arc<Pool> {
        match &self.principal {
            Some(Ok((source, _))) => ctx.pools.for_source(source),
            _ => ctx.pools.shared.clone(),
        }
    }

    /// The principal the connector's ConductorOne calls use, or the problem that prevents them.
    pub fn api_credentials(&self) -> std::result::Result<ApiCredentials, InputProblem> {
        match &self.principal {
            Some(p) => p.clone().map(|(_, creds)| creds),
            None => Err(InputProblem::TenantNotFound("spec.conductorOne is not set".into())),
        }
    }
}

pub struct Pass<'a> {
    pub ctx: &'a Context,
    /// Kept equal to what the API server holds: every write of this pass is applied to it.
    pub bc: BatonConnector,
    pub seen: Observed,
    pub notes: Vec<Note>,
    pub outcome: Outcome,
}

impl<'a> Pass<'a> {
    pub fn new(ctx: &'a Context, bc: BatonConnector, seen: Observed) -> Self {
        Self { ctx, bc, seen, notes: Vec::new(), outcome: Outcome::default() }
    }

    pub fn namespace(&self) -> String {
        self.bc.namespace().unwrap_or_default()
    }

    pub fn name(&self) -> String {
        self.bc.name_any()
    }

    pub fn now(&self) -> Timestamp {
        self.seen.now.0
    }

    pub fn status(&self) -> BatonConnectorStatus {
        self.bc.status.clone().unwrap_or_default()
    }

    /// The resource as its workload is built: the tenant's connector defaults fill what it leaves
    /// unset (`decide::tenant::with_defaults`).
    pub fn workload_spec(&self) -> std::borrow::Cow<'_, BatonConnector> {
        crate::decide::tenant::with_defaults(&self.bc, self.seen.defaults.as_ref())
    }

    /// The managed-credential record, as status holds it.
    pub fn credentials(&self) -> CredentialsStatus {
        self.bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default()
    }

    /// The onboarding record and the pause, as status holds them.
    pub fn conductor_one(&self) -> ConductorOneStatus {
        self.bc.status.as_ref().and_then(|s| s.conductor_one.clone()).unwrap_or_default()
    }

    /// Journals the credential record (and a handled rotate request) before the next side effect.
    pub async fn record_credentials(
        &mut self,
        state: &CredentialsStatus,
        handled_rotate: Option<&str>,
    ) -> Result<()> {
        let mut status = self.status();
        status.credentials = Some(state.clone());
        if let Some(r) = handled_rotate {
            status.handled_requests.rotate = Some(r.to_string());
        }
        self.write_status(status).await
    }

    /// Journals the onboarding record; the pause, which actions own, stays as it is.
    pub async fn record_onboarding(&mut self, next: &ConductorOneStatus) -> Result<()> {
        let mut status = self.status();
        let record = ConductorOneStatus { paused_at: self.conductor_one().paused_at, ..next.clone() };
        let record = Some(record).filter(|c| *c != ConductorOneStatus::default());
        if record == status.conductor_one {
            return Ok(());
        }
        status.conductor_one = record;
        self.write_status(status).await
    }

    /// Replaces the whole status with `status` (one writer owns all of it), and keeps the in-memory
    /// copy equal to what was written.
    pub async fn write_status(&mut self, status: BatonConnectorStatus) -> Result<()> {
        let api: Api<BatonConnector> = Api::namespaced(self.ctx.client.clone(), &self.namespace());
        let value = serde_json::to_value(&status).expect("status always serializes");
        let patch: json_patch::Patch =
            serde_json::from_value(json!([{"op": "add", "path": "/status", "value": value}]))
                .expect("valid JSON patch");
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        api.patch_status(&self.name(), &params, &Patch::Json::<()>(patch)).await?;
        self.ctx.metrics.status_writes.inc();
        // What was written, as it reads back: times keep whole seconds on the wire, and a copy with
        // ConductorOne's sub-second times would make the rest of the pass (the next rotation's time)
        // differ from what the next pass reads.
        self.bc.status = Some(serde_json::from_value(value).expect("status reads back"));
        Ok(())
    }

    /// A credential revision this pass created: the rest of the pass, and the next one before the
    /// watch brings it, read it from here.
    pub fn stored_secret(&mut self, secret: &Secret) {
        self.ctx.caches.wrote_secret(secret);
        self.seen.secrets.insert_secret(secret);
    }

    pub fn note(&mut self, note: Note) {
        self.notes.push(note);
    }
}
