//! A tenant's status, its events and its finalizer, decided without I/O from what the tenant
//! reconcile observed: whether its Secret holds a principal, whether ConductorOne gave that
//! principal a token, which connectors use the tenant, and what the tenant's calls did lately.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::events::Note;
use crate::{
    api::{
        Reason, TenantStatus,
        conditions::{self, Desired, READY, STALLED, Status},
    },
    conductorone::ErrorKind,
    resources::InputProblem,
};

/// While deleted and still used, the tenant says so in this condition (and keeps its finalizer).
pub const IN_USE: &str = "InUse";

/// How many users a message names before it says "and N more".
const NAMED_USERS: usize = 5;

/// Whether ConductorOne accepted the principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// A token was minted (or a fresh one is cached).
    Token,
    /// The token request failed: the client's error kind and its message (fixed words and
    /// ConductorOne's short message; never a credential).
    Failed { kind: ErrorKind, message: String },
}

/// What the tenant reconcile observed.
#[derive(Clone, Debug)]
pub struct Seen<'a> {
    pub generation: Option<i64>,
    /// The principal's host (from the client id), or the Secret's problem.
    pub principal: Result<String, InputProblem>,
    /// `None` when no token was asked for (no usable principal).
    pub auth: Option<Auth>,
    /// The connectors that use the tenant, as `namespace/name`, sorted.
    pub users: &'a [String],
    pub last_error: Option<String>,
    pub rate_limited: bool,
    pub deleting: bool,
    pub previous: &'a TenantStatus,
    pub now: &'a Time,
}

/// The tenant's `Ready`: why, in the reason's words, and the message.
fn ready(seen: &Seen) -> Desired {
    let (status, reason, message) = match (&seen.principal, &seen.auth) {
        (Err(problem), _) => (false, problem.reason(), format!("the API credentials Secret: {problem}")),
        (Ok(host), Some(Auth::Token)) => {
            (true, Reason::Authenticated, format!("ConductorOne at {host} issued a token to the principal"))
        }
        (Ok(host), Some(Auth::Failed { kind, message })) => {
            let reason = auth_reason(*kind);
            let what = match reason {
                Reason::CredentialsRejected => "refused the principal",
                Reason::RateLimited => "answered the token request with 429 (Too Many Requests)",
                Reason::ConfigError => "cannot be called with these settings",
                _ => "could not be reached for a token",
            };
            (false, reason, format!("ConductorOne at {host} {what}: {message}"))
        }
        (Ok(host), None) => (false, Reason::Unknown, format!("ConductorOne at {host} was not asked yet")),
    };
    Desired::new(READY, status, reason, message)
}

/// The reason for a failed token request.
pub fn auth_reason(kind: ErrorKind) -> Reason {
    match kind {
        ErrorKind::InvalidCredentials | ErrorKind::Unauthorized | ErrorKind::Forbidden => {
            Reason::CredentialsRejected
        }
        ErrorKind::RateLimited => Reason::RateLimited,
        ErrorKind::Config => Reason::ConfigError,
        _ => Reason::Unreachable,
    }
}

/// The status the tenant should have. Conditions keep their transition times.
pub fn compute(seen: &Seen) -> TenantStatus {
    let ready = ready(seen);
    // What only a person can fix is also `Stalled`, so that kstatus (Flux, `kubectl wait`) reads it
    // as Failed at once instead of waiting out its timeout. A missing Secret is not: GitOps or an
    // external-secrets controller often creates it moments later.
    let stalled = matches!(
        ready.reason,
        Reason::CredentialsRejected | Reason::SecretKeyMissing | Reason::SecretKeyEmpty | Reason::ConfigError
    )
    .then(|| Desired::new(STALLED, Status::True, ready.reason, ready.message.clone()));
    let mut desired: Vec<Desired> = std::iter::once(ready).chain(stalled).collect();
    if seen.deleting && !seen.users.is_empty() {
        desired.push(Desired::new(
            IN_USE,
            Status::True,
            Reason::InUse,
            format!(
                "deletion waits until no BatonConnector uses this tenant (they revoke their credentials with its principal): {}",
                named(seen.users)
            ),
        ));
    }
    TenantStatus {
        observed_generation: seen.generation,
        conditions: conditions::merge(&seen.previous.conditions, desired, seen.generation, seen.now),
        host: seen.principal.as_ref().ok().cloned().or_else(|| seen.previous.host.clone()),
        connectors: u32::try_from(seen.users.len()).unwrap_or(u32::MAX),
        last_error: seen.last_error.clone(),
        rate_limited: seen.rate_limited,
    }
}

fn named(users: &[String]) -> String {
    let shown = users.iter().take(NAMED_USERS).map(String::as_str).collect::<Vec<_>>().join(", ");
    match users.len().saturating_sub(NAMED_USERS) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// Events for the tenant's transitions: `Ready` flipping or changing its reason, and a deletion
/// starting to wait for its connectors.
pub fn transitions(old: &TenantStatus, new: &TenantStatus) -> Vec<Note> {
    let mut notes = Vec::new();
    let find = |s: &TenantStatus, t: &str| conditions::find(&s.conditions, t).cloned();
    if let Some(now) = find(new, READY) {
        let before = find(old, READY);
        let changed = before.as_ref().is_none_or(|b| b.status != now.status || b.reason != now.reason);
        if changed && now.reason != Reason::Unknown {
            let warning = now.status != "True";
            notes.push(Note {
                warning,
                reason: if warning { "TenantNotReady" } else { "TenantReady" },
                action: "Authenticate",
                message: format!("{}: {}", now.reason, now.message),
            });
        }
    }
    if let Some(in_use) = find(new, IN_USE)
        && find(old, IN_USE).is_none()
    {
        notes.push(Note {
            warning: false,
            reason: "DeletionBlocked",
            action: "Delete",
            message: in_use.message,
        });
    }
    notes
}

/// What to do with the tenant's finalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finalizer {
    Add,
    Remove,
    Keep,
}

/// A tenant carries the finalizer while it exists, so that a deletion waits for the connectors
/// that need its principal to revoke their credentials; once deleted and unused, it goes.
pub fn finalizer(deleting: bool, has_it: bool, users: usize) -> Finalizer {
    match (deleting, has_it) {
        (false, false) => Finalizer::Add,
        (true, true) if users == 0 => Finalizer::Remove,
        _ => Finalizer::Keep,
    }
}

/// The tenant's problem as its connectors report it (`TenantNotReady`): `Ready=False` for the
/// tenant's current generation, else nothing (a tenant not checked yet does not hold them up).
pub fn not_ready(status: Option<&TenantStatus>, generation: Option<i64>) -> Option<String> {
    let status = status?;
    let ready = conditions::find(&status.conditions, READY)?;
    let current = status.observed_generation == generation;
    (current && ready.status == "False" && ready.reason != Reason::Unknown)
        .then(|| format!("{}: {}", ready.reason, ready.message))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn seen<'a>(
        principal: Result<String, InputProblem>,
        auth: Option<Auth>,
        users: &'a [String],
        previous: &'a TenantStatus,
        now: &'a Time,
    ) -> Seen<'a> {
        Seen {
            generation: Some(2),
            principal,
            auth,
            users,
            last_error: None,
            rate_limited: false,
            deleting: false,
            previous,
            now,
        }
    }

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(1_800_000_000 + secs).unwrap())
    }

    fn host() -> Result<String, InputProblem> {
        Ok("acme.conductor.one".into())
    }

    #[test]
    fn ready_when_conductorone_issues_a_token_and_says_why_not_otherwise() {
        let (none, t0) = (TenantStatus::default(), at(0));
        let users = ["team-a/okta".to_string()];
        let ok = compute(&seen(host(), Some(Auth::Token), &users, &none, &t0));
        let ready = conditions::find(&ok.conditions, READY).unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Authenticated"));
        assert_eq!(
            (ok.connectors, ok.host.as_deref(), ok.observed_generation),
            (1, Some("acme.conductor.one"), Some(2))
        );

        let rejected = Auth::Failed { kind: ErrorKind::Unauthorized, message: "invalid_client".into() };
        let t1 = at(60);
        let bad = compute(&seen(host(), Some(rejected), &users, &ok, &t1));
        let ready = conditions::find(&bad.conditions, READY).unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "CredentialsRejected"));
        assert!(ready.message.contains("refused the principal: invalid_client"), "{}", ready.message);
        assert_eq!(ready.last_transition_time, t1);
        let stalled = conditions::find(&bad.conditions, STALLED).unwrap();
        assert_eq!((stalled.status.as_str(), stalled.reason.as_str()), ("True", "CredentialsRejected"));
        assert!(conditions::find(&ok.conditions, STALLED).is_none(), "a ready tenant is not stalled");

        for (kind, reason) in [
            (ErrorKind::Transport, "Unreachable"),
            (ErrorKind::Timeout, "Unreachable"),
            (ErrorKind::Server, "Unreachable"),
            (ErrorKind::RateLimited, "RateLimited"),
            (ErrorKind::Forbidden, "CredentialsRejected"),
            (ErrorKind::Config, "ConfigError"),
        ] {
            let auth = Auth::Failed { kind, message: "x".into() };
            let s = compute(&seen(host(), Some(auth), &users, &bad, &t1));
            assert_eq!(conditions::find(&s.conditions, READY).unwrap().reason, reason, "{kind:?}");
        }

        let missing = InputProblem::SecretNotFound { namespace: "baton-system".into(), name: "c1".into() };
        let s = compute(&seen(Err(missing), None, &users, &ok, &t1));
        let ready = conditions::find(&s.conditions, READY).unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "SecretNotFound"));
        assert_eq!(s.host.as_deref(), Some("acme.conductor.one"), "the host last known stays");
    }

    #[test]
    fn a_steady_tenant_computes_the_same_status_and_publishes_nothing() {
        let t0 = at(0);
        let first = compute(&seen(host(), Some(Auth::Token), &[], &TenantStatus::default(), &t0));
        let t1 = at(300);
        let again = compute(&seen(host(), Some(Auth::Token), &[], &first, &t1));
        assert_eq!(again, first, "no write when nothing changed, transition times kept");
        assert!(transitions(&first, &again).is_empty());
        let notes = transitions(&TenantStatus::default(), &first);
        assert_eq!(notes.iter().map(|n| (n.reason, n.warning)).collect::<Vec<_>>(), [("TenantReady", false)]);
    }

    #[test]
    fn a_deletion_waits_for_its_connectors_and_says_which() {
        let (none, t0) = (TenantStatus::default(), at(0));
        let users: Vec<String> = (0..7).map(|i| format!("team-{i}/okta")).collect();
        let mut s = seen(host(), Some(Auth::Token), &users, &none, &t0);
        s.deleting = true;
        let status = compute(&s);
        let in_use = conditions::find(&status.conditions, IN_USE).unwrap();
        assert!(
            in_use
                .message
                .ends_with("team-0/okta, team-1/okta, team-2/okta, team-3/okta, team-4/okta and 2 more"),
            "{}",
            in_use.message
        );
        let notes = transitions(&none, &status);
        assert!(notes.iter().any(|n| n.reason == "DeletionBlocked"), "{notes:?}");

        assert_eq!(finalizer(false, false, 0), Finalizer::Add);
        assert_eq!(finalizer(false, true, 3), Finalizer::Keep);
        assert_eq!(finalizer(true, true, 3), Finalizer::Keep);
        assert_eq!(finalizer(true, true, 0), Finalizer::Remove);
        assert_eq!(finalizer(true, false, 0), Finalizer::Keep, "someone else's deletion to finish");
    }

    #[test]
    fn connectors_hear_of_a_not_ready_tenant_only_for_its_current_generation() {
        let t0 = at(0);
        let rejected = Auth::Failed { kind: ErrorKind::Unauthorized, message: "invalid_client".into() };
        let bad = compute(&seen(host(), Some(rejected), &[], &TenantStatus::default(), &t0));
        let why = not_ready(Some(&bad), Some(2)).unwrap();
        assert!(why.starts_with("CredentialsRejected: ConductorOne at acme.conductor.one refused"), "{why}");
        assert_eq!(not_ready(Some(&bad), Some(3)), None, "a changed spec is not judged yet");
        assert_eq!(not_ready(None, Some(2)), None, "not checked yet");
        let good = compute(&seen(host(), Some(Auth::Token), &[], &bad, &t0));
        assert_eq!(not_ready(Some(&good), Some(2)), None);
    }
}
