//! Managed-credential rotation as a pure state machine. `decide` looks at the recorded state and the
//! world and names the one next step; the transition functions say what to record for it. The
//! controller performs each step's side effect only after recording the state that lets it resume.
//!
//! Issue → store (new Secret revision) → roll → wait until the new pod is available → grace period →
//! revoke the old credential → clean up. The old credential is never revoked before the new pod is up.

use std::time::Duration;

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use sha2::{Digest, Sha256};

use crate::api::{
    ConnectorRef, CredentialsStatus, PreviousCredential, RotationPhase, RotationStatus, SupersededCredential,
};

/// Why a rotation starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// There is no credential yet.
    Initial,
    /// `rotation.interval` has passed.
    Interval,
    /// The `rotate-requested-at` annotation has a new value.
    Requested,
    /// The resource uses another ConductorOne connector than the credential was minted for.
    ConnectorChanged,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "Initial",
            Self::Interval => "Interval",
            Self::Requested => "Requested",
            Self::ConnectorChanged => "ConnectorChanged",
        }
    }
}

/// What a stored Secret revision says about the credential it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCredential {
    pub credential_id: String,
    pub client_id: String,
    pub issued_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
}

/// Everything `decide` looks at.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub state: &'a CredentialsStatus,
    pub interval: Duration,
    pub grace: Duration,
    pub rotate_request: Option<&'a str>,
    pub handled_rotate: Option<&'a str>,
    pub now: Timestamp,
    /// The Secret of the revision being issued, if it exists.
    pub stored: Option<StoredCredential>,
    /// The workload is available on a template that reads [`workload_secret`].
    pub rolled_out: bool,
    /// Seeds the interval jitter, so it is stable for one resource and differs across a fleet.
    pub jitter_seed: &'a str,
    /// The connector the resource uses now.
    pub connector: &'a ConnectorRef,
}

/// The next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Record a new rotation (phase `Issuing`).
    Start(Trigger),
    /// Record the in-flight mark, ask ConductorOne for a credential, store it in the revision's Secret.
    Issue,
    /// The revision's Secret exists (the reply was stored before a crash): record it and roll.
    Adopt(StoredCredential),
    /// An issue was in flight and nothing was stored: a credential may exist that nobody knows. Say so,
    /// then issue again.
    ReportUnrecorded { since: Timestamp },
    /// Wait for the workload to become available on the new Secret.
    AwaitRollout,
    /// The new credential is in use: record it as current.
    Promote,
    /// The previous credential stays valid until then.
    AwaitGrace(Timestamp),
    /// Record phase `Revoking`, revoke the previous credential, delete its Secret, finish.
    RevokePrevious(PreviousCredential),
    /// Revoke credentials minted but never used.
    RevokePending(String),
    /// The connector changed: record the credentials minted so far as superseded, then issue anew.
    Supersede,
    /// The pod runs on a credential of the current connector: revoke one of the old connector's.
    RevokeSuperseded(SupersededCredential),
    /// Nothing to do until the next rotation.
    Idle(Option<Timestamp>),
}

/// Names the next step. Pure: restarting the operator and calling it again gives the same answer, so
/// a restart never starts a rotation or a rollout by itself.
pub fn decide(input: &Input<'_>) -> Step {
    let state = input.state;
    // Records from before `mintedFor` existed are taken to be for the current connector.
    if state.minted_for.as_ref().is_some_and(|m| m != input.connector) {
        return Step::Supersede;
    }
    let Some(rotation) = &state.rotation else {
        if let Some(id) = state.pending_revocations.first() {
            return Step::RevokePending(id.clone());
        }
        if state.credential_id.is_none() {
            let trigger =
                if state.superseded.is_empty() { Trigger::Initial } else { Trigger::ConnectorChanged };
            return Step::Start(trigger);
        }
        if let (Some(old), true) = (state.superseded.first(), input.rolled_out) {
            return Step::RevokeSuperseded(old.clone());
        }
        if let Some(request) = input.rotate_request
            && input.handled_rotate != Some(request)
        {
            return Step::Start(Trigger::Requested);
        }
        let next = next_rotation(state, input.interval, input.jitter_seed);
        return match next {
            Some(at) if at <= input.now => Step::Start(Trigger::Interval),
            other => Step::Idle(other),
        };
    };
    match rotation.phase {
        RotationPhase::Issuing => match (&input.stored, &rotation.issue_in_flight_since) {
            (Some(stored), _) => Step::Adopt(stored.clone()),
            (None, Some(since)) => Step::ReportUnrecorded { since: since.0 },
            (None, None) => Step::Issue,
        },
        RotationPhase::Rolling if input.rolled_out => Step::Promote,
        RotationPhase::Rolling => Step::AwaitRollout,
        RotationPhase::GracePeriod | RotationPhase::Revoking => {
            let Some(previous) = rotation.previous.clone() else { return Step::Idle(None) };
            match &rotation.grace_until {
                Some(until) if rotation.phase == RotationPhase::GracePeriod && until.0 > input.now => {
                    Step::AwaitGrace(until.0)
                }
                _ => Step::RevokePrevious(previous),
            }
        }
    }
}

/// When the credential in use is due for rotation: issued time plus the interval plus up to 10%
/// jitter, derived from the resource and credential so the whole fleet does not rotate at once and
/// the time is the same after every restart.
pub fn next_rotation(state: &CredentialsStatus, interval: Duration, seed: &str) -> Option<Timestamp> {
    let issued = state.issued_at.as_ref()?.0;
    let digest = Sha256::digest(format!("{seed}/{}", state.credential_id.as_deref().unwrap_or_default()));
    let fraction = f64::from(u16::from_be_bytes([digest[0], digest[1]])) / f64::from(u16::MAX);
    let total = interval.mul_f64(1.0 + 0.1 * fraction);
    // Whole seconds: the time is shown in status, which keeps seconds only.
    let next = issued.checked_add(jiff_span(total)).ok()?;
    Timestamp::from_second(next.as_second()).ok()
}

fn jiff_span(d: Duration) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::try_from(d).unwrap_or(k8s_openapi::jiff::SignedDuration::MAX)
}

/// The Secret the workload should read: the new one once a rotation has stored it, else the current.
pub fn workload_secret(state: &CredentialsStatus, base: &str) -> Option<String> {
    match &state.rotation {
        Some(r) if r.phase == RotationPhase::Rolling => Some(secret_name(base, r.revision)),
        _ => state.secret_name.clone(),
    }
}

/// Name of the Secret holding one revision of the managed credentials.
pub fn secret_name(base: &str, revision: i64) -> String {
    format!("{base}-c1-credentials-{revision}")
}

// ---------------------------------------------------------------------------------------------
// What to record for each step.

pub fn start(
    state: &CredentialsStatus,
    trigger: Trigger,
    connector: &ConnectorRef,
    now: Timestamp,
) -> CredentialsStatus {
    let previous = match (&state.credential_id, &state.secret_name) {
        (Some(id), Some(secret)) => {
            Some(PreviousCredential { credential_id: id.clone(), secret_name: secret.clone() })
        }
        _ => None,
    };
    CredentialsStatus {
        rotation: Some(RotationStatus {
            phase: RotationPhase::Issuing,
            trigger: trigger.as_str().into(),
            revision: state.revision.unwrap_or(0) + 1,
            started_at: Time(now),
            issue_in_flight_since: None,
            unrecorded_attempts: 0,
            new_credential_id: None,
            previous,
            grace_until: None,
        }),
        minted_for: Some(connector.clone()),
        ..state.clone()
    }
}

/// The connector changed: everything minted so far becomes superseded (revoked once the pod runs on
/// a credential of the new connector) and the next rotation issues for the new one. The pod keeps
/// the Secret it reads until then, and revision numbers go on, so no old Secret is ever reused.
pub fn supersede(state: &CredentialsStatus, base: &str, connector: &ConnectorRef) -> CredentialsStatus {
    let Some(old) = state.minted_for.clone() else { return state.clone() };
    let mut superseded = state.superseded.clone();
    let mut add = |id: &str, secret: Option<String>| {
        if !superseded.iter().any(|s| s.credential_id == id) {
            let entry = SupersededCredential {
                credential_id: id.into(),
                connector: old.clone(),
                secret_name: secret,
            };
            superseded.push(entry);
        }
    };
    if let Some(id) = &state.credential_id {
        add(id, state.secret_name.clone());
    }
    if let Some(r) = &state.rotation {
        if let Some(id) = &r.new_credential_id {
            add(id, Some(secret_name(base, r.revision)));
        }
        if let Some(p) = &r.previous {
            add(&p.credential_id, Some(p.secret_name.clone()));
        }
    }
    for id in &state.pending_revocations {
        add(id, None);
    }
    let revision = state.revision.max(state.rotation.as_ref().map(|r| r.revision));
    CredentialsStatus {
        secret_name: workload_secret(state, base),
        client_id: None,
        credential_id: None,
        revision,
        issued_at: None,
        expires_at: None,
        next_rotation_at: None,
        rotation: None,
        pending_revocations: Vec::new(),
        minted_for: Some(connector.clone()),
        superseded,
        revoked_hand_made: state.revoked_hand_made.clone(),
    }
}

/// One superseded credential is revoked (and its Secret deleted).
pub fn remove_superseded(state: &CredentialsStatus, credential_id: &str) -> CredentialsStatus {
    let mut next = state.clone();
    next.superseded.retain(|s| s.credential_id != credential_id);
    next
}

/// Recorded right before the call to ConductorOne.
pub fn mark_in_flight(state: &CredentialsStatus, now: Timestamp) -> CredentialsStatus {
    with_rotation(state, |r| r.issue_in_flight_since = Some(Time(now)))
}

/// The call failed in a way that means ConductorOne did not mint anything.
pub fn clear_in_flight(state: &CredentialsStatus) -> CredentialsStatus {
    with_rotation(state, |r| r.issue_in_flight_since = None)
}

/// An in-flight issue left nothing behind that the operator knows of.
pub fn record_unrecorded(state: &CredentialsStatus) -> CredentialsStatus {
    with_rotation(state, |r| {
        r.issue_in_flight_since = None;
        r.unrecorded_attempts += 1;
    })
}

/// The reply is stored in the revision's Secret: roll the workload onto it.
pub fn record_stored(state: &CredentialsStatus, stored: &StoredCredential) -> CredentialsStatus {
    with_rotation(state, |r| {
        r.phase = RotationPhase::Rolling;
        r.issue_in_flight_since = None;
        r.new_credential_id = Some(stored.credential_id.clone());
    })
}

/// The new pod is available: the new credential becomes current. With a previous credential, the
/// grace period starts; without one, the rotation is over.
pub fn promote(
    state: &CredentialsStatus,
    stored: &StoredCredential,
    base: &str,
    grace: Duration,
    now: Timestamp,
) -> CredentialsStatus {
    let Some(rotation) = &state.rotation else { return state.clone() };
    let mut next = CredentialsStatus {
        secret_name: Some(secret_name(base, rotation.revision)),
        client_id: Some(stored.client_id.clone()),
        credential_id: Some(stored.credential_id.clone()),
        revision: Some(rotation.revision),
        issued_at: Some(Time(stored.issued_at.unwrap_or(now))),
        expires_at: stored.expires_at.map(Time),
        rotation: None,
        ..state.clone()
    };
    if rotation.previous.is_some() {
        next.rotation = Some(RotationStatus {
            phase: RotationPhase::GracePeriod,
            grace_until: now.checked_add(jiff_span(grace)).ok().map(Time),
            issue_in_flight_since: None,
            ..rotation.clone()
        });
    }
    next
}

pub fn mark_revoking(state: &CredentialsStatus) -> CredentialsStatus {
    with_rotation(state, |r| r.phase = RotationPhase::Revoking)
}

/// The previous credential is revoked and its Secret deleted.
pub fn finish(state: &CredentialsStatus) -> CredentialsStatus {
    CredentialsStatus { rotation: None, ..state.clone() }
}

/// A credential was minted but could not be used; revoke it later.
pub fn add_pending_revocation(state: &CredentialsStatus, credential_id: &str) -> CredentialsStatus {
    let mut next = state.clone();
    if !next.pending_revocations.iter().any(|id| id == credential_id) {
        next.pending_revocations.push(credential_id.to_string());
    }
    next
}

pub fn remove_pending_revocation(state: &CredentialsStatus, credential_id: &str) -> CredentialsStatus {
    let mut next = state.clone();
    next.pending_revocations.retain(|id| id != credential_id);
    next
}

/// Every credential the operator minted and has not revoked: what deletion must revoke.
pub fn minted(state: &CredentialsStatus) -> Vec<String> {
    let mut ids: Vec<String> = state.credential_id.iter().cloned().collect();
    if let Some(r) = &state.rotation {
        ids.extend(r.new_credential_id.iter().cloned());
        ids.extend(r.previous.iter().map(|p| p.credential_id.clone()));
    }
    ids.extend(state.pending_revocations.iter().cloned());
    ids.extend(state.superseded.iter().map(|s| s.credential_id.clone()));
    ids.sort();
    ids.dedup();
    ids
}

/// Every credential the operator minted and has not revoked, with the connector it belongs to
/// (`current` for records from before that was kept).
pub fn minted_by_connector(state: &CredentialsStatus, current: &ConnectorRef) -> Vec<(ConnectorRef, String)> {
    let own = state.minted_for.clone().unwrap_or_else(|| current.clone());
    let mut out: Vec<(ConnectorRef, String)> =
        state.superseded.iter().map(|s| (s.connector.clone(), s.credential_id.clone())).collect();
    for id in minted(state) {
        if !out.iter().any(|(_, known)| *known == id) {
            out.push((own.clone(), id));
        }
    }
    out
}

fn with_rotation(state: &CredentialsStatus, f: impl FnOnce(&mut RotationStatus)) -> CredentialsStatus {
    let mut next = state.clone();
    if let Some(r) = next.rotation.as_mut() {
        f(r);
    }
    next
}

#[cfg(test)]
#[path = "rotation_tests.rs"]
mod tests;
