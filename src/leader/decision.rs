//! The decisions of leader election, without I/O and without reading a clock: the caller passes in
//! what it read from the API server and its own monotonic clock readings, and carries out what comes
//! back. Every timing rule of the election lives here, so the tests below can check each one at exact
//! instants instead of racing a real clock.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{Value, json};
// tokio's Instant is a plain value here (never read inside this module), and the one the I/O loop's
// paused-clock tests use.
use tokio::time::Instant;

/// Where the lease lives and who this replica is.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub duration: Duration,
    /// How often a standby reads the Lease, and how often a failed renewal is retried.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// The holder renews three times per lease duration.
    pub(super) fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// A holder that could not renew for this long stops, leaving a third of the duration as margin
    /// before a standby may take over.
    pub(super) fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// `leaseDurationSeconds` as written: whole seconds, at least one.
    fn duration_secs(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

/// The holder named in a Lease; an empty name counts as none (a released lease).
pub(super) fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref().filter(|h| !h.is_empty())
}

/// What a standby does after one read of the Lease.
#[derive(Debug, PartialEq)]
pub(super) enum Acquire {
    /// There is no Lease: create one naming this replica.
    Create,
    /// Another replica holds the lease and, by this replica's clock, it has not expired.
    Wait,
    /// Write this replica as holder, conditional on `version` (the resourceVersion read).
    Take {
        version: Option<String>,
        /// `Some(n)`: a new holder, written with `acquireTime` and `leaseTransitions: n`. `None`: the
        /// lease already names this replica (a restart under the same identity) and is only renewed.
        transitions: Option<i32>,
        /// The holder whose lease expired, for the log; `None` when the lease was free or ours.
        expired: Option<String>,
    },
}

/// A standby's memory of the Lease: the last version it saw and when it first saw that version.
///
/// Expiry is judged by how long the record has not changed on this replica's own monotonic clock,
/// as client-go does, never by comparing the holder's `renewTime` with this node's wall clock: clock
/// skew between nodes then cannot make a standby take a lease early.
#[derive(Debug, Default)]
pub(super) struct Standby {
    version: Option<String>,
    since: Option<Instant>,
}

impl Standby {
    /// Decides from one read (`None`: the Lease does not exist) made at `now`.
    pub(super) fn observe(&mut self, lease: Option<&Lease>, now: Instant, config: &LeaderConfig) -> Acquire {
        let Some(lease) = lease else { return Acquire::Create };
        let version = lease.metadata.resource_version.clone();
        let current = holder(lease);
        let mut expired = None;
        if let Some(other) = current.filter(|h| *h != config.identity) {
            // A new version is a renewal (or a new holder): the lease is valid for a whole duration
            // from the moment this replica saw it.
            if self.version != version {
                *self = Standby { version, since: Some(now) };
                return Acquire::Wait;
            }
            // The holder's own duration counts, not ours: replicas of different versions may differ.
            let valid_for = lease
                .spec
                .as_ref()
                .and_then(|s| s.lease_duration_seconds)
                .map_or(config.duration, |s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
            if self.since.is_some_and(|t| now.saturating_duration_since(t) <= valid_for) {
                return Acquire::Wait;
            }
            expired = Some(other.to_string());
        }
        let ours = current == Some(config.identity.as_str());
        let transitions = lease.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0);
        Acquire::Take { version, transitions: (!ours).then_some(transitions + 1), expired }
    }
}

/// The spec of a Lease created by this replica, stamped `at` (a `MicroTime` as JSON).
pub(super) fn create_spec(config: &LeaderConfig, at: &Value) -> Value {
    json!({"holderIdentity": config.identity, "leaseDurationSeconds": config.duration_secs(),
           "acquireTime": at, "renewTime": at, "leaseTransitions": 0})
}

/// The merge patch's spec for [`Acquire::Take`], stamped `at`.
pub(super) fn take_spec(config: &LeaderConfig, transitions: Option<i32>, at: &Value) -> Value {
    let mut spec = json!({"holderIdentity": config.identity, "leaseDurationSeconds": config.duration_secs(),
                          "renewTime": at});
    if let Some(n) = transitions {
        spec["acquireTime"] = at.clone();
        spec["leaseTransitions"] = json!(n);
    }
    spec
}

/// The merge patch's spec for a renewal, stamped `at`.
pub(super) fn renew_spec(config: &LeaderConfig, at: &Value) -> Value {
    json!({"renewTime": at, "leaseDurationSeconds": config.duration_secs()})
}

/// The merge patch's spec that gives the lease up. `leaseDurationSeconds` and `leaseTransitions` stay,
/// so the next holder counts transitions on.
pub(super) fn release_spec() -> Value {
    json!({"holderIdentity": null, "acquireTime": null, "renewTime": null})
}

/// Whether a holder shutting down should clear this Lease: only while it still names this replica,
/// so a release never undoes another replica's acquisition.
pub(super) fn should_release(lease: Option<&Lease>, config: &LeaderConfig) -> bool {
    lease.and_then(holder) == Some(config.identity.as_str())
}

/// What one renewal attempt came to.
#[derive(Debug)]
pub(super) enum Outcome {
    Renewed,
    /// The Lease changed between the read and the write; try again at once.
    Conflict,
    /// The Lease names another holder (empty when nobody).
    TakenBy(String),
    /// An error answer, or no answer within the attempt's budget.
    Failed,
}

/// What the holder does after an attempt.
#[derive(Debug, PartialEq)]
pub(super) enum Next {
    /// Sleep this long, then attempt the next renewal.
    Wait(Duration),
    /// Stop leading: another replica holds the lease.
    TakenBy(String),
    /// Stop leading: no renewal succeeded within the renew deadline.
    Deadline,
}

/// The holder's renewal schedule.
///
/// The deadline is kept by the clock, not by the answers: each attempt gets only the time left until
/// the deadline ([`Renewer::budget`]), so a renewal that hangs (an API server that accepts
/// connections but cannot reach etcd, a network that drops packets) is abandoned when the deadline
/// comes, and this replica stops a third of the lease duration before a standby may take over,
/// whatever the API server does. A renewal counts from before its request was sent, since the write
/// may have been applied long before its answer arrived.
#[derive(Debug)]
pub(super) struct Renewer {
    renewed: Instant,
    every: Duration,
    deadline: Duration,
    retry: Duration,
}

impl Renewer {
    /// For a lease taken by a request sent at `acquired_at`.
    pub(super) fn new(acquired_at: Instant, config: &LeaderConfig) -> Self {
        Renewer {
            renewed: acquired_at,
            every: config.renew_every(),
            deadline: config.renew_deadline(),
            retry: config.retry_period,
        }
    }

    /// How long to wait before the first renewal.
    pub(super) fn first_wait(&self) -> Duration {
        self.every
    }

    /// When this replica must have stopped leading unless a renewal succeeds first.
    pub(super) fn deadline(&self) -> Instant {
        self.renewed + self.deadline
    }

    /// How long an attempt started at `attempt` may take.
    pub(super) fn budget(&self, attempt: Instant) -> Duration {
        self.deadline().saturating_duration_since(attempt)
    }

    /// Records the outcome of the attempt started at `attempt`, seen at `now`.
    pub(super) fn record(&mut self, attempt: Instant, outcome: Outcome, now: Instant) -> Next {
        let wait = match outcome {
            Outcome::Renewed => {
                self.renewed = attempt;
                self.every
            }
            Outcome::Conflict => Duration::ZERO,
            Outcome::TakenBy(holder) => return Next::TakenBy(holder),
            // Retry soon, but never sleep past the deadline: the last try comes at the deadline.
            Outcome::Failed => self.retry.min(self.deadline().saturating_duration_since(now)),
        };
        if now >= self.deadline() { Next::Deadline } else { Next::Wait(wait) }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// A 15 s lease retried every second; the I/O loop's tests use it too.
    pub(in crate::leader) fn config() -> LeaderConfig {
        LeaderConfig {
            namespace: "baton-system".into(),
            lease_name: "lease".into(),
            identity: "me".into(),
            duration: Duration::from_secs(15),
            retry_period: SEC,
        }
    }

    fn lease(version: &str, holder: Option<&str>, duration: Option<i32>, transitions: Option<i32>) -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "lease", "resourceVersion": version},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "leaseTransitions": transitions},
        }))
        .unwrap()
    }

    fn take(version: &str, transitions: Option<i32>, expired: Option<&str>) -> Acquire {
        Acquire::Take { version: Some(version.into()), transitions, expired: expired.map(Into::into) }
    }

    #[test]
    fn a_missing_lease_is_created() {
        assert_eq!(Standby::default().observe(None, Instant::now(), &config()), Acquire::Create);
    }

    #[test]
    fn a_free_lease_is_taken_at_once_as_a_new_transition() {
        let (config, t0) = (config(), Instant::now());
        let free = lease("7", None, Some(15), Some(3));
        assert_eq!(Standby::default().observe(Some(&free), t0, &config), take("7", Some(4), None));
        // A released lease has an empty holder in some writers' hands: the same as none.
        let emptied = lease("8", Some(""), Some(15), None);
        assert_eq!(Standby::default().observe(Some(&emptied), t0, &config), take("8", Some(1), None));
    }

    #[test]
    fn a_lease_already_naming_this_replica_is_renewed_not_reacquired() {
        let ours = lease("7", Some("me"), Some(15), Some(3));
        assert_eq!(Standby::default().observe(Some(&ours), Instant::now(), &config()), take("7", None, None));
    }

    #[test]
    fn a_valid_foreign_lease_is_respected_for_its_whole_duration_on_our_clock() {
        let (config, t0) = (config(), Instant::now());
        let mut standby = Standby::default();
        let held = lease("7", Some("other"), Some(15), Some(3));
        // However old its renewTime may look, a lease first seen now is valid for a whole duration.
        for s in [0, 1, 5, 14, 15] {
            assert_eq!(standby.observe(Some(&held), t0 + s * SEC, &config), Acquire::Wait, "at {s}s");
        }
        assert_eq!(
            standby.observe(Some(&held), t0 + 15 * SEC + Duration::from_millis(1), &config),
            take("7", Some(4), Some("other"))
        );
    }

    #[test]
    fn every_renewal_restarts_the_standbys_count() {
        let (config, t0) = (config(), Instant::now());
        let mut standby = Standby::default();
        for (i, s) in [0u32, 10, 20, 30].into_iter().enumerate() {
            let renewed = lease(&i.to_string(), Some("other"), Some(15), None);
            assert_eq!(standby.observe(Some(&renewed), t0 + s * SEC, &config), Acquire::Wait);
        }
        let last = lease("3", Some("other"), Some(15), None);
        assert_eq!(standby.observe(Some(&last), t0 + 45 * SEC, &config), Acquire::Wait);
        assert_eq!(standby.observe(Some(&last), t0 + 46 * SEC, &config), take("3", Some(1), Some("other")));
    }

    #[test]
    fn the_holders_duration_counts_and_a_missing_one_falls_back_to_ours() {
        let (config, t0) = (config(), Instant::now());
        let mut standby = Standby::default();
        let long = lease("7", Some("other"), Some(60), None);
        assert_eq!(standby.observe(Some(&long), t0, &config), Acquire::Wait);
        assert_eq!(standby.observe(Some(&long), t0 + 59 * SEC, &config), Acquire::Wait);
        assert_eq!(standby.observe(Some(&long), t0 + 61 * SEC, &config), take("7", Some(1), Some("other")));

        let mut standby = Standby::default();
        let unset = lease("9", Some("other"), None, None);
        assert_eq!(standby.observe(Some(&unset), t0, &config), Acquire::Wait);
        assert_eq!(standby.observe(Some(&unset), t0 + 15 * SEC, &config), Acquire::Wait);
        assert_eq!(standby.observe(Some(&unset), t0 + 16 * SEC, &config), take("9", Some(1), Some("other")));
    }

    #[test]
    fn writes_carry_the_fields_client_go_reads() {
        let config = config();
        let at = json!("2026-01-01T00:00:00.000000Z");
        assert_eq!(
            create_spec(&config, &at),
            json!({"holderIdentity": "me", "leaseDurationSeconds": 15, "acquireTime": at, "renewTime": at,
                   "leaseTransitions": 0})
        );
        assert_eq!(
            take_spec(&config, Some(4), &at),
            json!({"holderIdentity": "me", "leaseDurationSeconds": 15, "acquireTime": at, "renewTime": at,
                   "leaseTransitions": 4})
        );
        assert_eq!(
            take_spec(&config, None, &at),
            json!({"holderIdentity": "me", "leaseDurationSeconds": 15, "renewTime": at})
        );
        assert_eq!(renew_spec(&config, &at), json!({"renewTime": at, "leaseDurationSeconds": 15}));
        let short = LeaderConfig { duration: Duration::from_millis(300), ..config };
        assert_eq!(renew_spec(&short, &at)["leaseDurationSeconds"], 1);
    }

    #[test]
    fn release_clears_only_a_lease_this_replica_holds() {
        let config = config();
        assert!(should_release(Some(&lease("7", Some("me"), Some(15), None)), &config));
        assert!(!should_release(Some(&lease("7", Some("other"), Some(15), None)), &config));
        assert!(!should_release(Some(&lease("7", None, Some(15), None)), &config));
        assert!(!should_release(None, &config));
        assert_eq!(release_spec(), json!({"holderIdentity": null, "acquireTime": null, "renewTime": null}));
    }

    #[test]
    fn the_holder_renews_every_third_of_the_duration() {
        let (config, t0) = (config(), Instant::now());
        let mut renewer = Renewer::new(t0, &config);
        assert_eq!(renewer.first_wait(), 5 * SEC);
        let mut attempt = t0 + renewer.first_wait();
        for _ in 0..10 {
            // Each renewal, answered 200 ms later, moves the deadline to 10 s after it was sent.
            let next = renewer.record(attempt, Outcome::Renewed, attempt + Duration::from_millis(200));
            assert_eq!(next, Next::Wait(5 * SEC));
            assert_eq!(renewer.deadline(), attempt + 10 * SEC);
            attempt += Duration::from_millis(200) + 5 * SEC;
        }
    }

    #[test]
    fn a_conflict_is_retried_at_once() {
        let (config, t0) = (config(), Instant::now());
        let mut renewer = Renewer::new(t0, &config);
        assert_eq!(renewer.record(t0 + 5 * SEC, Outcome::Conflict, t0 + 5 * SEC), Next::Wait(Duration::ZERO));
        assert_eq!(renewer.deadline(), t0 + 10 * SEC);
    }

    #[test]
    fn failures_are_retried_every_retry_period_then_the_holder_gives_up_at_the_deadline() {
        let (config, t0) = (config(), Instant::now());
        let mut renewer = Renewer::new(t0, &config);
        let mut now = t0 + renewer.first_wait();
        let mut attempts = 0;
        let stopped = loop {
            attempts += 1;
            match renewer.record(now, Outcome::Failed, now) {
                Next::Wait(wait) => {
                    assert!(wait <= SEC && now + wait <= renewer.deadline(), "{wait:?} at {:?}", now - t0);
                    now += wait;
                }
                Next::Deadline => break now,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(stopped - t0, 10 * SEC);
        // At 5, 6, 7, 8, 9 and 10 s.
        assert_eq!(attempts, 6);
    }

    #[test]
    fn an_attempt_gets_only_the_time_left_until_the_deadline() {
        let (config, t0) = (config(), Instant::now());
        let mut renewer = Renewer::new(t0, &config);
        assert_eq!(renewer.budget(t0 + 5 * SEC), 5 * SEC);
        assert_eq!(renewer.budget(t0 + 12 * SEC), Duration::ZERO);
        // An attempt that hung for its whole budget ends at the deadline, and the holder stops then,
        // a third of the duration before a standby (counting from the same write) may take over.
        let attempt = t0 + 5 * SEC;
        let ended = attempt + renewer.budget(attempt);
        assert_eq!(renewer.record(attempt, Outcome::Failed, ended), Next::Deadline);
        assert_eq!(config.duration - (ended - t0), 5 * SEC);
    }

    #[test]
    fn a_late_success_after_the_deadline_still_stops() {
        let (config, t0) = (config(), Instant::now());
        let mut renewer = Renewer::new(t0, &config);
        // Sent at 4 s, answered at 15 s (an I/O loop that ignored the budget): the renewal moves the
        // deadline only to 14 s after the start, which has passed, so the holder stops rather than
        // lead on into a time when a standby may already count the lease as expired.
        assert_eq!(renewer.record(t0 + 4 * SEC, Outcome::Renewed, t0 + 15 * SEC), Next::Deadline);
    }

    #[test]
    fn another_holder_ends_leadership_at_once() {
        let (config, t0) = (config(), Instant::now());
        let mut renewer = Renewer::new(t0, &config);
        assert_eq!(
            renewer.record(t0 + 5 * SEC, Outcome::TakenBy("other".into()), t0 + 5 * SEC),
            Next::TakenBy("other".into())
        );
    }
}
