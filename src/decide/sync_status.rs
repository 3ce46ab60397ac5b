//! ConductorOne's view of a connector's syncs, turned into `status.sync` and the `Synced`
//! condition. Pure: the controller polls, these functions decide.

use crate::api::Reason;
use std::time::Duration;

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use sha2::{Digest, Sha256};

use crate::{
    api::{SyncStatus, conditions::Desired, conditions::SYNCED},
    conductorone::{self, SyncState},
};

/// What one poll found, reduced to what status shows.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Observed {
    pub state: &'static str,
    pub last_started_at: Option<Timestamp>,
    pub last_completed_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// ConductorOne's own switch: syncs disabled (or paused) since then, and why.
    pub disabled_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
}

impl Observed {
    pub fn from_connector(info: &conductorone::ConnectorInfo) -> Self {
        let disabled_reason = Some(info.sync_disabled_reason.clone()).filter(|r| !r.is_empty());
        let disabled = Self { disabled_at: info.sync_disabled_at, disabled_reason, ..Default::default() };
        match &info.sync {
            None => Self { state: "NeverSynced", ..disabled },
            Some(s) => Self {
                state: s.state.label(),
                last_started_at: s.last_started_at,
                last_completed_at: s.last_completed_at,
                last_error: s.last_error.clone().filter(|e| !e.is_empty()),
                ..disabled
            },
        }
    }

    /// What a previous process read, from status.
    pub fn from_status(status: &SyncStatus) -> Self {
        Self {
            state: known(status.state.as_deref().unwrap_or_default(), STATES).unwrap_or("Unknown"),
            last_started_at: status.last_started_at.as_ref().map(|t| t.0),
            last_completed_at: status.last_completed_at.as_ref().map(|t| t.0),
            last_error: status.last_error.clone(),
            disabled_at: status.disabled_at.as_ref().map(|t| t.0),
            disabled_reason: status.disabled_reason.clone(),
        }
    }

    fn is(&self, state: &SyncState) -> bool {
        self.state == state.label()
    }
}

/// The new `status.sync`. `checkedAt` moves only when something else changed, so a poll that finds
/// nothing new costs the API server no write.
pub fn status(previous: Option<&SyncStatus>, observed: &Observed, now: Timestamp) -> SyncStatus {
    let mut next = SyncStatus {
        state: Some(observed.state.to_string()),
        last_started_at: observed.last_started_at.map(seconds),
        last_completed_at: observed.last_completed_at.map(seconds),
        last_error: observed.last_error.clone(),
        disabled_at: observed.disabled_at.map(seconds),
        disabled_reason: observed.disabled_reason.clone(),
        checked_at: previous.and_then(|p| p.checked_at.clone()),
    };
    let unchanged =
        previous.is_some_and(|p| SyncStatus { checked_at: p.checked_at.clone(), ..next.clone() } == *p);
    if !unchanged {
        next.checked_at = Some(seconds(now));
    }
    next
}

fn seconds(t: Timestamp) -> Time {
    Time(Timestamp::from_second(t.as_second()).unwrap_or(t))
}

/// The `Synced` condition: True only when a sync completed within the freshness window and the last
/// one did not fail.
pub fn condition(
    sync: &SyncStatus,
    observed: &Observed,
    freshness: Duration,
    created: Option<Timestamp>,
    now: Timestamp,
) -> Desired {
    let window = humantime::format_duration(freshness);
    let fresh_after =
        now.checked_sub(k8s_openapi::jiff::SignedDuration::try_from(freshness).unwrap_or_default()).ok();
    let completed = sync.last_completed_at.as_ref().map(|t| t.0);
    if observed.is(&SyncState::Error) {
        let error = observed.last_error.clone().unwrap_or_else(|| "no error message".into());
        return Desired::new(SYNCED, false, Reason::SyncFailed, format!("the last sync failed: {error}"));
    }
    if let Some(at) = observed.disabled_at {
        let why = observed.disabled_reason.as_deref().unwrap_or("no reason given");
        let message = format!("syncs are disabled in ConductorOne since {at}: {why}");
        return Desired::new(SYNCED, false, Reason::SyncDisabled, message);
    }
    if observed.is(&SyncState::Disabled) {
        return Desired::new(
            SYNCED,
            false,
            Reason::SyncDisabled,
            "syncing is disabled for this connector in ConductorOne",
        );
    }
    match (completed, fresh_after) {
        (Some(at), Some(after)) if at >= after => {
            Desired::new(SYNCED, true, Reason::Synced, format!("last sync completed at {at}"))
        }
        (Some(at), _) => Desired::new(
            SYNCED,
            false,
            Reason::SyncStale,
            format!("no sync completed since {at} (window {window})"),
        ),
        // A new connector gets one window to finish its first sync before it counts as stale.
        (None, Some(after)) if created.is_some_and(|c| c >= after) => Desired::new(
            SYNCED,
            false,
            Reason::WaitingForFirstSync,
            "waiting for ConductorOne to complete a first sync",
        ),
        (None, _) => {
            Desired::new(SYNCED, false, Reason::SyncStale, format!("no sync completed within {window}"))
        }
    }
}

/// Labels `status.sync.state` takes.
const STATES: &[&str] = &["NeverSynced", "Unspecified", "Running", "Done", "Error", "Disabled", "Unknown"];
fn known(value: &str, set: &[&'static str]) -> Option<&'static str> {
    set.iter().copied().find(|k| *k == value)
}

/// The `Synced` condition a previous process wrote, and whether it was a stall, so a restart shows
/// it unchanged until the poller has read anew.
pub fn previous_condition(bc: &crate::api::BatonConnector) -> Option<(Desired, bool)> {
    let conditions = &bc.status.as_ref()?.conditions;
    let find = |t: &str| conditions.iter().find(|c| c.type_ == t);
    let synced = find(SYNCED)?;
    let reason = Reason::parse(&synced.reason).filter(|r| r.is_sync_reading() || r.is_sync_failure())?;
    let stalled = find(crate::api::conditions::STALLED)
        .is_some_and(|c| c.status == "True" && c.reason == reason.as_str());
    Some((Desired::new(SYNCED, synced.status == "True", reason, synced.message.clone()), stalled))
}

/// Before the first reading of a connector that has none in status.
pub fn awaiting_condition() -> Desired {
    Desired::new(
        SYNCED,
        false,
        Reason::AwaitingSyncStatus,
        "waiting for the first read of the sync status from ConductorOne",
    )
}

/// How long until a completed sync leaves the freshness window and the condition must change.
pub fn stale_in(sync: &SyncStatus, freshness: Duration, now: Timestamp) -> Option<Duration> {
    let completed = sync.last_completed_at.as_ref()?.0;
    let left = completed.as_second() + i64::try_from(freshness.as_secs()).ok()? - now.as_second();
    u64::try_from(left).ok().filter(|s| *s > 0).map(|s| Duration::from_secs(s + 1))
}

/// The condition when polling itself fails: says why, keeps what was last known in `status.sync`.
pub fn failed_condition(reason: Reason, message: &str) -> Desired {
    Desired::new(SYNCED, false, reason, format!("cannot read the sync status from ConductorOne: {message}"))
}

/// The poll interval of one resource: the configured one plus up to 10%, fixed per resource so a
/// fleet spreads its calls and a restart keeps the rhythm.
pub fn poll_interval(base: Duration, key: &str) -> Duration {
    let digest = Sha256::digest(key.as_bytes());
    let fraction = f64::from(u16::from_be_bytes([digest[0], digest[1]])) / f64::from(u16::MAX);
    base.mul_f64(1.0 + 0.1 * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn observed(state: &'static str, completed: Option<i64>) -> Observed {
        Observed { state, last_completed_at: completed.map(ts), ..Default::default() }
    }

    #[test]
    fn nothing_new_keeps_checked_at() {
        let o = observed("Done", Some(100));
        let first = status(None, &o, ts(200));
        assert_eq!(first.checked_at, Some(Time(ts(200))));
        let second = status(Some(&first), &o, ts(500));
        assert_eq!(second, first, "an unchanged poll must not change status");
        let third = status(Some(&first), &observed("Running", Some(100)), ts(600));
        assert_eq!(third.checked_at, Some(Time(ts(600))));
        assert_eq!(third.state.as_deref(), Some("Running"));
    }

    #[test]
    fn recent_completed_sync_is_synced() {
        let o = observed("Done", Some(1000));
        let c = condition(&status(None, &o, ts(1000)), &o, DAY, Some(ts(0)), ts(2000));
        assert!(c.status.is_true());
        assert_eq!(c.reason, "Synced");
    }

    #[test]
    fn old_sync_is_stale() {
        let o = observed("Done", Some(1000));
        let now = 1000 + 2 * 86400;
        let c = condition(&status(None, &o, ts(now)), &o, DAY, Some(ts(0)), ts(now));
        assert!(!c.status.is_true());
        assert_eq!(c.reason, "SyncStale");
    }

    #[test]
    fn failed_and_disabled_syncs_say_so() {
        let mut o = observed("Error", Some(1000));
        o.last_error = Some("okta: 401".into());
        let c = condition(&status(None, &o, ts(1000)), &o, DAY, None, ts(1001));
        assert_eq!((c.status.is_true(), c.reason.as_str()), (false, "SyncFailed"));
        assert!(c.message.contains("okta: 401"));
        let o = observed("Disabled", Some(1000));
        assert_eq!(condition(&status(None, &o, ts(1000)), &o, DAY, None, ts(1001)).reason, "SyncDisabled");
    }

    #[test]
    fn first_sync_gets_one_window() {
        let o = observed("NeverSynced", None);
        let s = status(None, &o, ts(100));
        assert_eq!(condition(&s, &o, DAY, Some(ts(50)), ts(100)).reason, "WaitingForFirstSync");
        assert_eq!(condition(&s, &o, DAY, Some(ts(50)), ts(50 + 2 * 86400)).reason, "SyncStale");
    }

    #[test]
    fn unknown_states_are_reported_as_unknown() {
        let info = conductorone::ConnectorInfo {
            id: "c".into(),
            app_id: "a".into(),
            catalog_id: String::new(),
            display_name: String::new(),
            description: String::new(),
            sync: Some(conductorone::SyncStatus {
                state: SyncState::Unknown("SYNC_STATUS_NEW_THING".into()),
                last_started_at: None,
                last_completed_at: None,
                updated_at: None,
                last_error: Some(String::new()),
            }),
            sync_disabled_at: None,
            sync_disabled_reason: String::new(),
            sync_disabled_category: String::new(),
            can_resume_sync: false,
            created_at: None,
            updated_at: None,
            deleted_at: None,
        };
        let o = Observed::from_connector(&info);
        assert_eq!(o.state, "Unknown");
        assert_eq!(o.last_error, None);
    }

    #[test]
    fn poll_interval_is_jittered_per_resource_and_stable() {
        let base = Duration::from_secs(300);
        let a = poll_interval(base, "ns/a");
        assert_eq!(a, poll_interval(base, "ns/a"));
        assert!(a >= base && a <= base.mul_f64(1.1));
        assert_ne!(a, poll_interval(base, "ns/b"));
    }
}
