//! Pure status rules: what was observed in, `BatonConnectorStatus` out.
//!
//! The rules follow kstatus (`Reconciling`/`Stalled` are abnormal-true, `Ready` sums up) so that
//! `kubectl wait`, Flux and Argo CD all read the same truth.

use crate::api::Reason;
use k8s_openapi::{
    api::apps::v1::Deployment,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};
use kube::ResourceExt;

use super::messages::listing;
use crate::api::{
    BatonConnector, BatonConnectorStatus, CredentialsStatus, HandledRequests, RECONCILE_REQUESTED_AT,
    RESTART_REQUESTED_AT, SyncStatus, WorkloadStatus,
    conditions::{self as cond, Desired},
};
use crate::decide::pods::PodProblem;
use crate::resources::InputProblem;

/// Something that keeps the resource from converging, as reported in conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A Secret the resource reads is missing or incomplete.
    Input(InputProblem),
    /// A child object with our name exists but belongs to someone else; taking it over silently could
    /// break whatever owns it.
    /// `owner`: the object's controller, when another controller owns it.
    OwnershipConflict { kind: &'static str, name: String, owner: Option<String> },
    /// The API server refused the object the operator built (for example a value the schema cannot
    /// check). Only a change to the resource can fix it.
    Rejected { message: String },
    /// The connector's settings break its catalogued schema (the SDK would refuse to start, or a
    /// secret sits in the manifest): the workload is not changed until they are fixed.
    ConfigInvalid { errors: Vec<String> },
    /// ConductorOne refused or failed a call. `permanent` errors (bad or unauthorized API
    /// credentials) need a person; the others are retried with backoff.
    ConductorOne { reason: Reason, message: String, permanent: bool },
}

impl Problem {
    pub fn reason(&self) -> Reason {
        match self {
            Self::Input(p) => p.reason(),
            Self::OwnershipConflict { .. } => Reason::OwnershipConflict,
            Self::Rejected { .. } => Reason::InvalidSpec,
            Self::ConfigInvalid { .. } => Reason::ConfigInvalid,
            Self::ConductorOne { reason, .. } => *reason,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Input(p) => p.to_string(),
            Self::OwnershipConflict { kind, name, owner: None } => format!(
                "{kind} {name:?} exists and is not owned by this BatonConnector; delete it, rename the resource, or let it adopt the {kind} (annotation {}: \"true\")",
                crate::api::ADOPT_EXISTING
            ),
            Self::OwnershipConflict { kind, name, owner: Some(owner) } => format!(
                "{kind} {name:?} is controlled by {owner}; the operator never takes over another controller's object, adoption included: rename the resource"
            ),
            Self::Rejected { message } => format!("invalid spec: {message}"),
            Self::ConfigInvalid { errors } => {
                format!("invalid connector settings, not rolled out: {}", listing(errors))
            }
            Self::ConductorOne { message, .. } => format!("ConductorOne: {message}"),
        }
    }

    /// Whether only a person can fix it (kstatus `Stalled`), as opposed to something that may resolve
    /// while the operator retries.
    pub fn needs_person(&self) -> bool {
        match self {
            Self::Input(p) => !p.may_resolve_itself(),
            Self::OwnershipConflict { .. } | Self::Rejected { .. } | Self::ConfigInvalid { .. } => true,
            Self::ConductorOne { permanent, .. } => *permanent,
        }
    }

    /// Whether it concerns the ConductorOne credentials rather than the app's own configuration.
    fn is_credentials(&self, credentials_secrets: &[&str]) -> bool {
        let name = match self {
            Self::ConductorOne { .. } => return true,
            // The tenant is where the operator's ConductorOne access comes from.
            Self::Input(
                InputProblem::TenantNotFound(_)
                | InputProblem::TenantNotAllowed { .. }
                | InputProblem::TenantNotReady { .. },
            ) => return true,
            Self::Input(InputProblem::SecretNotFound { name, .. })
            | Self::Input(InputProblem::KeyMissing { name, .. })
            | Self::Input(InputProblem::KeyEmpty { name, .. }) => name,
            _ => return false,
        };
        credentials_secrets.contains(&name.as_str())
    }
}

/// The reason of a ConductorOne failure.
pub fn conductorone_reason(kind: crate::conductorone::ErrorKind) -> Reason {
    use crate::conductorone::ErrorKind as K;
    match kind {
        K::InvalidCredentials => Reason::InvalidCredentials,
        K::Unauthorized => Reason::Unauthorized,
        K::Forbidden => Reason::Forbidden,
        K::NotFound => Reason::NotFound,
        K::InvalidRequest => Reason::InvalidRequest,
        K::RateLimited => Reason::RateLimited,
        K::Server => Reason::ServerError,
        K::Timeout => Reason::Timeout,
        K::Transport => Reason::TransportError,
        K::Decode => Reason::DecodeError,
        K::Config => Reason::ConfigError,
    }
}

impl Problem {
    /// ConductorOne refused or failed a call.
    pub fn conductorone(message: String, e: &crate::conductorone::Error) -> Self {
        Self::ConductorOne { reason: conductorone_reason(e.kind()), message, permanent: e.is_permanent() }
    }
}

/// The state of the connector's Deployment as the Deployment controller reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkloadState {
    /// No Deployment exists.
    Absent,
    /// Rolling out or waiting for a pod; the message says what it waits for.
    Progressing(String),
    /// The Deployment controller gave up (`ProgressDeadlineExceeded`).
    Failed(String),
    /// At least one pod of the current template is available.
    Available,
    /// OneShot: the CronJob is on the current template and no run has failed since the last success.
    Scheduled(String),
    /// OneShot: the last finished run failed.
    RunFailed(String),
    /// Not available (or, OneShot, the last run failed), and a pod says why.
    Pod { problem: PodProblem, oneshot: bool },
}

/// The pods' own answer replaces the Deployment controller's "waiting for pods" (and its progress
/// deadline, minutes later) and a failed run's Job-level message; an available workload needs none.
fn with_pod(workload: WorkloadState, pod: Option<&PodProblem>) -> WorkloadState {
    match (workload, pod) {
        (WorkloadState::Progressing(_) | WorkloadState::Failed(_), Some(p)) => {
            WorkloadState::Pod { problem: p.clone(), oneshot: false }
        }
        (WorkloadState::RunFailed(_), Some(p)) => WorkloadState::Pod { problem: p.clone(), oneshot: true },
        (w, _) => w,
    }
}

/// OneShot mode: the CronJob's state, from its runs.
fn oneshot_state(runs: &super::runs::Runs, applied_current: bool) -> WorkloadState {
    if !runs.exists {
        return WorkloadState::Absent;
    }
    if !applied_current {
        return WorkloadState::Progressing("waiting for the CronJob to take the current template".into());
    }
    if let Some(f) = runs.failure() {
        let message = format!("run {} failed ({}): {}", f.job, f.reason, f.message);
        return WorkloadState::RunFailed(message);
    }
    WorkloadState::Scheduled(match &runs.status.last_successful_time {
        Some(at) => format!("scheduled; the last run succeeded at {}", at.0),
        None => "scheduled; no run has finished yet".into(),
    })
}

/// Reads a live Deployment. "Current" means the Deployment controller has seen the latest template
/// and every replica runs it: an available pod of an old template is not success.
pub fn workload_state(deployment: Option<&Deployment>) -> WorkloadState {
    let Some(d) = deployment else {
        return WorkloadState::Absent;
    };
    let Some(status) = &d.status else {
        return WorkloadState::Progressing("waiting for the Deployment controller".into());
    };
    let find = |t: &str| status.conditions.iter().flatten().find(|c| c.type_.as_deref() == Some(t));
    if let Some(p) = find("Progressing")
        && p.status.as_deref() == Some("False")
        && p.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return WorkloadState::Failed(
            p.message.clone().unwrap_or_else(|| "progress deadline exceeded".into()),
        );
    }
    if status.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
        return WorkloadState::Progressing(
            "waiting for the Deployment controller to see the new template".into(),
        );
    }
    let want = d.spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want || total > updated {
        return WorkloadState::Progressing(format!("rolling out: {updated} of {want} pods updated"));
    }
    let available_condition = find("Available").is_some_and(|c| c.status.as_deref() == Some("True"));
    if available < want || !available_condition {
        return WorkloadState::Progressing(format!("waiting for pods: {available} of {want} available"));
    }
    WorkloadState::Available
}

/// Everything one reconcile observed, the input of [`compute`].
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    pub problem: Option<Problem>,
    pub deployment: Option<&'a Deployment>,
    /// The config hash the pod template should carry (None when the inputs were unusable).
    pub config_hash: Option<String>,
    /// Whether this reconcile applied the current template (so a restart request is handled).
    pub applied_current: bool,
    /// The credentials to report (client ID, managed credential state); never a secret.
    pub credentials: Option<CredentialsStatus>,
    /// Managed credentials: no credential is usable yet; the message says what happens.
    pub issuing: Option<String>,
    /// With ConductorOne API access: the new `status.sync`, the `Synced` condition, and whether a
    /// failure to read it needs a person.
    pub sync: Option<(Option<SyncStatus>, Desired, bool)>,
    /// OneShot mode: the CronJob's runs.
    pub runs: Option<super::runs::Runs>,
    /// What the pods of the current template (OneShot: of the failed run) say is wrong.
    pub pod: Option<PodProblem>,
    /// A `sync-requested-at` value handled by this reconcile.
    pub handled_sync: Option<String>,
    /// A new `status.conductorOne`, when an action changed it.
    pub conductor_one: Option<crate::api::ConductorOneStatus>,
    /// The `ConfigValid` condition, from the check of the connector's settings.
    pub config: Option<Desired>,
}

/// Computes the full status. Deterministic: the same observation and previous status give the same
/// result, so an idle fleet never writes.
pub fn compute(bc: &BatonConnector, obs: &Observation<'_>, now: &Time) -> BatonConnectorStatus {
    let previous = bc.status.clone().unwrap_or_default();
    let generation = bc.metadata.generation;
    let suspended = bc.spec.suspend;
    let workload = match &obs.runs {
        Some(runs) => oneshot_state(runs, obs.applied_current),
        None => workload_state(obs.deployment),
    };
    let workload = with_pod(workload, obs.pod.as_ref());
    let oneshot = bc.spec.mode == crate::api::Mode::OneShot;
    let mut desired = Vec::new();
    desired.push(if suspended {
        Desired::new(
            cond::SUSPENDED,
            true,
            Reason::Suspended,
            "spec.suspend is true: the operator changes nothing",
        )
    } else {
        Desired::new(cond::SUSPENDED, false, Reason::NotSuspended, "")
    });

    desired.push(credentials_condition(bc, obs, oneshot, suspended));

    desired.push(workload_condition(&workload));
    desired.extend(obs.config.clone());

    let synced = obs.sync.as_ref().map(|(_, c, permanent)| (c, *permanent));
    if let Some((c, _)) = synced {
        desired.push(c.clone());
    }
    let adopting = previous.adoption.as_ref().map(|_| {
        "adopting the hand-written Deployment of this name: its pods keep running until this connector's pod is available"
    });
    let (ready, reconciling, stalled) = match adopting {
        Some(m) if obs.problem.is_none() && !suspended && !matches!(workload, WorkloadState::Available) => (
            Desired::new(cond::READY, false, Reason::Adopting, m),
            Desired::new(cond::RECONCILING, true, Reason::Adopting, m),
            Desired::new(cond::STALLED, false, Reason::NotStalled, ""),
        ),
        _ => summary(suspended, obs.problem.as_ref(), obs.issuing.as_deref(), &workload, synced),
    };
    let (reconciling, stalled) = progress_deadline(&previous.conditions, reconciling, stalled, now);
    desired.push(ready);
    desired.push(reconciling);
    desired.push(stalled);

    let handled_requests = handled_requests(bc, obs, &previous);
    let runs = obs.runs.as_ref().filter(|r| r.exists);
    let pod = match &workload {
        WorkloadState::Pod { problem, .. } => Some(problem.short.clone()),
        _ => None,
    };
    let shown_workload = workload_status(bc, obs, runs, &previous).map(|w| WorkloadStatus { pod, ..w });

    BatonConnectorStatus {
        observed_generation: generation.unwrap_or(previous.observed_generation),
        conditions: cond::merge(&previous.conditions, desired, generation, now),
        image: running_image(obs.deployment)
            .or_else(|| runs.map(|_| crate::resources::image::reference(bc)))
            .or(previous.image),
        workload: shown_workload,
        handled_requests,
        credentials: obs.credentials.clone().or(previous.credentials),
        sync: match &obs.sync {
            Some((status, _, _)) => status.clone(),
            None => None,
        },
        schedule: runs.map(|r| r.status.clone()),
        conductor_one: obs
            .conductor_one
            .clone()
            .or(previous.conductor_one)
            .filter(|c| *c != crate::api::ConductorOneStatus::default()),
        adoption: previous.adoption,
    }
}

/// `CredentialsReady`: the first problem with the credentials' Secrets, else where the credential
/// comes from.
fn credentials_condition(
    bc: &BatonConnector,
    obs: &Observation<'_>,
    oneshot: bool,
    suspended: bool,
) -> Desired {
    let credentials_secrets: Vec<&str> = bc
        .spec
        .credentials
        .secret_ref
        .iter()
        .map(|r| r.name.as_str())
        .chain(
            bc.spec.conductor_one.iter().flat_map(|c| &c.api_credentials_secret_ref).map(|r| r.name.as_str()),
        )
        .collect();

    let credentials_problem = obs.problem.as_ref().filter(|p| p.is_credentials(&credentials_secrets));
    let managed = obs.credentials.as_ref().and_then(|c| c.credential_id.as_ref());
    match credentials_problem {
        Some(p) => Desired::new(cond::CREDENTIALS_READY, false, p.reason(), p.message()),
        None if oneshot => Desired::new(
            cond::CREDENTIALS_READY,
            true,
            Reason::NotNeeded,
            "a one-shot run syncs to a file and uses no ConductorOne client credential",
        ),
        None if obs.issuing.is_some() => Desired::new(
            cond::CREDENTIALS_READY,
            false,
            Reason::Issuing,
            obs.issuing.clone().unwrap_or_default(),
        ),
        None if managed.is_some() => Desired::new(
            cond::CREDENTIALS_READY,
            true,
            Reason::Issued,
            credential_message(obs.credentials.as_ref().expect("checked above")),
        ),
        None if obs.config_hash.is_some() || suspended => Desired::new(
            cond::CREDENTIALS_READY,
            true,
            Reason::SecretFound,
            "client ID and secret are present",
        ),
        None => Desired::new(cond::CREDENTIALS_READY, false, Reason::Unknown, "credentials were not checked"),
    }
}

/// `WorkloadAvailable`, from the state of the Deployment or of the OneShot runs.
fn workload_condition(workload: &WorkloadState) -> Desired {
    match workload {
        WorkloadState::Available => {
            Desired::new(cond::WORKLOAD_AVAILABLE, true, Reason::Available, "the connector pod is available")
        }
        WorkloadState::Absent => Desired::new(
            cond::WORKLOAD_AVAILABLE,
            false,
            Reason::NotCreated,
            "the Deployment does not exist yet",
        ),
        WorkloadState::Progressing(m) => {
            Desired::new(cond::WORKLOAD_AVAILABLE, false, Reason::Progressing, m.clone())
        }
        WorkloadState::Failed(m) => {
            Desired::new(cond::WORKLOAD_AVAILABLE, false, Reason::ProgressDeadlineExceeded, m.clone())
        }
        WorkloadState::Scheduled(m) => {
            Desired::new(cond::WORKLOAD_AVAILABLE, true, Reason::Scheduled, m.clone())
        }
        WorkloadState::RunFailed(m) => {
            Desired::new(cond::WORKLOAD_AVAILABLE, false, Reason::RunFailed, m.clone())
        }
        WorkloadState::Pod { problem: p, .. } => {
            Desired::new(cond::WORKLOAD_AVAILABLE, false, p.reason, p.message.clone())
        }
    }
}

/// The requests (annotations) this status answers: a restart once the workload carries it.
fn handled_requests(
    bc: &BatonConnector,
    obs: &Observation<'_>,
    previous: &BatonConnectorStatus,
) -> HandledRequests {
    let annotations = bc.annotations();
    HandledRequests {
        restart: if obs.applied_current {
            annotations.get(RESTART_REQUESTED_AT).cloned()
        } else {
            previous.handled_requests.restart.clone()
        },
        reconcile: annotations.get(RECONCILE_REQUESTED_AT).cloned(),
        rotate: previous.handled_requests.rotate.clone(),
        sync: obs.handled_sync.clone().or(previous.handled_requests.sync.clone()),
    }
}

/// `status.workload`: the OneShot runs' or the Deployment's, keeping the last config hash.
fn workload_status(
    bc: &BatonConnector,
    obs: &Observation<'_>,
    runs: Option<&super::runs::Runs>,
    previous: &BatonConnectorStatus,
) -> Option<WorkloadStatus> {
    runs.map(|r| WorkloadStatus {
        name: bc.name_any(),
        available_replicas: i32::try_from(r.status.active.len()).unwrap_or(i32::MAX),
        config_hash: obs
            .config_hash
            .clone()
            .or_else(|| previous.workload.as_ref().and_then(|w| w.config_hash.clone())),
        pod: None,
    })
    .or_else(|| {
        obs.deployment.map(|d| WorkloadStatus {
            name: d.name_any(),
            available_replicas: d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0),
            config_hash: obs
                .config_hash
                .clone()
                .or_else(|| previous.workload.as_ref().and_then(|w| w.config_hash.clone())),
            pod: None,
        })
    })
}

fn credential_message(c: &CredentialsStatus) -> String {
    let id = c.credential_id.as_deref().unwrap_or_default();
    let mut message = match &c.rotation {
        Some(r) => format!("credential {id} in use; rotation {:?} ({})", r.phase, r.trigger),
        None => format!("credential {id} in use"),
    };
    message.push_str(&unrecorded_note(c));
    message
}

/// Says so when an issue attempt may have left a credential nobody knows of in ConductorOne.
pub fn unrecorded_note(c: &CredentialsStatus) -> String {
    match c.rotation.as_ref().map(|r| r.unrecorded_attempts).filter(|n| *n > 0) {
        Some(n) => format!(
            "; {n} issue attempt(s) got no stored reply and may have left an unused credential in ConductorOne"
        ),
        None => String::new(),
    }
}

/// How long the operator may report `Reconciling` for one cause before it calls the resource
/// `Stalled`: an endless "in progress" hides a problem from Flux and Argo CD.
pub const PROGRESS_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Turns `Reconciling` that has lasted past [`PROGRESS_DEADLINE`] into `Stalled`. Causes with a
/// deadline of their own are left alone: a rollout (the Deployment's `progressDeadlineSeconds`) and
/// the first sync (`conductorOne.syncFreshness`).
fn progress_deadline(
    previous: &[Condition],
    reconciling: Desired,
    stalled: Desired,
    now: &Time,
) -> (Desired, Desired) {
    const OWN_DEADLINE: &[Reason] = &[Reason::Progressing, Reason::WaitingForFirstSync];
    let since = cond::find(previous, cond::RECONCILING)
        .filter(|c| c.status == "True")
        .map(|c| now.0.duration_since(c.last_transition_time.0));
    let deadline = k8s_openapi::jiff::SignedDuration::try_from(PROGRESS_DEADLINE).unwrap_or_default();
    match since {
        Some(elapsed)
            if reconciling.status.is_true()
                && elapsed > deadline
                && !OWN_DEADLINE.contains(&reconciling.reason) =>
        {
            let message = format!(
                "no progress for {}: {}",
                humantime::format_duration(PROGRESS_DEADLINE),
                reconciling.message
            );
            (
                Desired::new(cond::RECONCILING, false, Reason::ProgressDeadlineExceeded, ""),
                Desired::new(cond::STALLED, true, Reason::ProgressDeadlineExceeded, message),
            )
        }
        _ => (reconciling, stalled),
    }
}

/// `Ready`, `Reconciling` and `Stalled` together, so they can never contradict each other.
fn summary(
    suspended: bool,
    problem: Option<&Problem>,
    issuing: Option<&str>,
    workload: &WorkloadState,
    synced: Option<(&Desired, bool)>,
) -> (Desired, Desired, Desired) {
    let not_reconciling = || Desired::new(cond::RECONCILING, false, Reason::Idle, "");
    let not_stalled = || Desired::new(cond::STALLED, false, Reason::NotStalled, "");
    if suspended {
        let available = matches!(workload, WorkloadState::Available | WorkloadState::Scheduled(_));
        let msg = "reconciliation is suspended; the workload is left as it is";
        return (
            Desired::new(cond::READY, available, Reason::Suspended, msg),
            not_reconciling(),
            not_stalled(),
        );
    }
    if let Some(p) = problem {
        let ready = Desired::new(cond::READY, false, p.reason(), p.message());
        return if p.needs_person() {
            (ready, not_reconciling(), Desired::new(cond::STALLED, true, p.reason(), p.message()))
        } else {
            (ready, Desired::new(cond::RECONCILING, true, p.reason(), p.message()), not_stalled())
        };
    }
    // Running (or scheduled) is not enough when ConductorOne can tell whether it actually syncs.
    let running = |reason: Reason, message: String| match synced {
        Some((s, permanent)) if !s.status.is_true() => {
            let ready = Desired::new(cond::READY, false, s.reason, s.message.clone());
            if permanent {
                (ready, not_reconciling(), Desired::new(cond::STALLED, true, s.reason, s.message.clone()))
            } else if matches!(s.reason, Reason::WaitingForFirstSync | Reason::AwaitingSyncStatus) {
                (ready, Desired::new(cond::RECONCILING, true, s.reason, s.message.clone()), not_stalled())
            } else {
                (ready, not_reconciling(), not_stalled())
            }
        }
        _ => (Desired::new(cond::READY, true, reason, message), not_reconciling(), not_stalled()),
    };
    match workload {
        WorkloadState::Available => running(Reason::Available, "the connector is running".into()),
        WorkloadState::Scheduled(m) => running(Reason::Scheduled, m.clone()),
        // The next scheduled run may well succeed: not stalled, but not ready either.
        WorkloadState::RunFailed(m) => {
            (Desired::new(cond::READY, false, Reason::RunFailed, m.clone()), not_reconciling(), not_stalled())
        }
        WorkloadState::Failed(m) => (
            Desired::new(cond::READY, false, Reason::ProgressDeadlineExceeded, m.clone()),
            not_reconciling(),
            Desired::new(cond::STALLED, true, Reason::ProgressDeadlineExceeded, m.clone()),
        ),
        WorkloadState::Absent if issuing.is_some() => {
            let m = issuing.unwrap_or_default().to_string();
            (
                Desired::new(cond::READY, false, Reason::IssuingCredentials, m.clone()),
                Desired::new(cond::RECONCILING, true, Reason::IssuingCredentials, m),
                not_stalled(),
            )
        }
        WorkloadState::Absent => {
            let m = "creating the connector workload";
            (
                Desired::new(cond::READY, false, Reason::Progressing, m),
                Desired::new(cond::RECONCILING, true, Reason::Progressing, m),
                not_stalled(),
            )
        }
        // A failed run's pod, like the run: the next run may succeed.
        WorkloadState::Pod { problem: p, oneshot: true } => {
            (Desired::new(cond::READY, false, p.reason, p.message.clone()), not_reconciling(), not_stalled())
        }
        WorkloadState::Pod { problem: p, oneshot: false } => {
            let ready = Desired::new(cond::READY, false, p.reason, p.message.clone());
            if p.needs_person() {
                (ready, not_reconciling(), Desired::new(cond::STALLED, true, p.reason, p.message.clone()))
            } else {
                (ready, Desired::new(cond::RECONCILING, true, p.reason, p.message.clone()), not_stalled())
            }
        }
        WorkloadState::Progressing(m) => (
            Desired::new(cond::READY, false, Reason::Progressing, m.clone()),
            Desired::new(cond::RECONCILING, true, Reason::Progressing, m.clone()),
            not_stalled(),
        ),
    }
}

fn running_image(deployment: Option<&Deployment>) -> Option<String> {
    deployment?.spec.template.spec.as_ref()?.containers.first()?.image.clone()
}
