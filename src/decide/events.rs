//! Which events to publish, decided from what changed. Events go out on transitions only, so a
//! steady state publishes nothing and a repeated failure is one event (the recorder folds repeats of
//! the same event into a series).

use crate::api::{
    BatonConnectorStatus, Reason,
    conditions::{self, CONFIG_VALID, READY, STALLED, SYNCED},
};
use crate::resources::compare::ApplyCause;

/// An event to publish about the reconciled resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub message: String,
}

/// The event for a write to the workload (a Deployment or a CronJob).
pub fn applied(kind: &str, cause: ApplyCause, name: &str) -> Note {
    let (reason, message) = match cause {
        ApplyCause::Create => ("Created", format!("created {kind} {name}")),
        ApplyCause::Adopt => ("Adopted", format!("took over {kind} {name}, which it had not created")),
        ApplyCause::Drift => {
            ("DriftCorrected", format!("put back fields of {kind} {name} that were changed by hand"))
        }
        _ if kind == "CronJob" => ("Updated", format!("updated CronJob {name}; the next run uses it")),
        _ => ("RolledOut", format!("updated Deployment {name}; its pods roll")),
    };
    Note { warning: false, reason, action: "Apply", message }
}

/// Events for changes of the `Ready` condition and for newly handled trigger annotations.
pub fn transitions(old: Option<&BatonConnectorStatus>, new: &BatonConnectorStatus) -> Vec<Note> {
    let mut notes = Vec::new();
    let old_ready = old.and_then(|s| conditions::find(&s.conditions, READY));
    if let Some(ready) = conditions::find(&new.conditions, READY) {
        let changed = old_ready.is_none_or(|o| o.status != ready.status || o.reason != ready.reason);
        if changed {
            // A reason this operator did not write (an older or newer version's) is named generically,
            // so event reasons stay a bounded set.
            let reason = Reason::parse(&ready.reason);
            if ready.status == "True" {
                notes.push(Note {
                    warning: false,
                    reason: "Ready",
                    action: "Reconcile",
                    message: ready.message.clone(),
                });
            } else if reason.is_none_or(Reason::warns_when_not_ready) {
                notes.push(Note {
                    warning: true,
                    reason: reason.map_or("NotReady", Reason::as_str),
                    action: "Reconcile",
                    message: ready.message.clone(),
                });
            }
        }
    }
    let was_stalled = old.is_some_and(|s| conditions::is_true(&s.conditions, STALLED));
    if let Some(stalled) = conditions::find(&new.conditions, STALLED)
        && stalled.status == "True"
        && !was_stalled
        && stalled.reason == "ProgressDeadlineExceeded"
    {
        let message = stalled.message.clone();
        notes.push(Note { warning: true, reason: "ProgressDeadlineExceeded", action: "Reconcile", message });
    }
    let old_synced = old.and_then(|s| conditions::find(&s.conditions, SYNCED));
    if let Some(synced) = conditions::find(&new.conditions, SYNCED) {
        let was_true = old_synced.map(|o| o.status == "True");
        let failing = ["SyncFailed", "SyncStale", "SyncDisabled"].contains(&synced.reason.as_str());
        if synced.status == "True" && was_true == Some(false) {
            notes.push(Note {
                warning: false,
                reason: "SyncRecovered",
                action: "CheckSync",
                message: synced.message.clone(),
            });
        } else if synced.status != "True"
            && failing
            && old_synced.is_none_or(|o| o.status == "True" || o.reason != synced.reason)
        {
            notes.push(Note {
                warning: true,
                reason: "SyncFailing",
                action: "CheckSync",
                message: synced.message.clone(),
            });
        }
    }
    notes.extend(settings_checked(old, new, &notes));
    let old_failure = old.and_then(|s| s.schedule.as_ref()).and_then(|s| s.last_failure.as_ref());
    let new_failure = new.schedule.as_ref().and_then(|s| s.last_failure.as_ref());
    match (old_failure, new_failure) {
        (_, Some(f)) if old_failure.is_none_or(|o| o.job != f.job) => notes.push(Note {
            warning: true,
            reason: "RunFailed",
            action: "Run",
            message: format!("run {} failed ({}): {}", f.job, f.reason, f.message),
        }),
        (Some(f), None) => notes.push(Note {
            warning: false,
            reason: "RunRecovered",
            action: "Run",
            message: format!("a run succeeded after run {} failed", f.job),
        }),
        _ => {}
    }
    let old_sync = old.and_then(|s| s.handled_requests.sync.as_ref());
    if let Some(at) = &new.handled_requests.sync
        && old_sync != Some(at)
    {
        notes.push(Note {
            warning: false,
            reason: "RunRequested",
            action: "Run",
            message: format!("started a run as requested at {at}"),
        });
    }
    let old_restart = old.and_then(|s| s.handled_requests.restart.as_ref());
    if let Some(at) = &new.handled_requests.restart
        && old_restart != Some(at)
    {
        notes.push(Note {
            warning: false,
            reason: "RestartRequested",
            action: "Restart",
            message: format!("restarting the connector as requested at {at}"),
        });
    }
    notes
}

/// What the check of the connector's settings found, once per change of it: a definite error (unless
/// `Ready` just said the same), or new warnings of a connector that is Ready. While it is not, the
/// `Ready` event says what is wrong, and the warnings are often its echo (a required field that a
/// `secretRefs` Secret not found yet may supply).
fn settings_checked(
    old: Option<&BatonConnectorStatus>,
    new: &BatonConnectorStatus,
    so_far: &[Note],
) -> Option<Note> {
    let config = conditions::find(&new.conditions, CONFIG_VALID)?;
    let old_config = old.and_then(|s| conditions::find(&s.conditions, CONFIG_VALID));
    if old_config.is_some_and(|o| o.reason == config.reason && o.message == config.message) {
        return None;
    }
    let reason = match Reason::parse(&config.reason)? {
        Reason::ConfigInvalid => "ConfigInvalid",
        Reason::ValidatedWithWarnings if conditions::is_true(&new.conditions, READY) => "ConfigWarnings",
        _ => return None,
    };
    let said = so_far.iter().any(|n| n.reason == reason);
    (!said).then(|| Note { warning: true, reason, action: "Validate", message: config.message.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::{Desired, merge};
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

    fn status(ready: bool, reason: &'static str) -> BatonConnectorStatus {
        let now = Time(Timestamp::from_second(1).unwrap());
        BatonConnectorStatus {
            conditions: merge(
                &[],
                vec![Desired::new(READY, ready, Reason::parse(reason).expect("a known reason"), "m")],
                Some(1),
                &now,
            ),
            ..Default::default()
        }
    }

    #[test]
    fn steady_state_publishes_nothing() {
        let s = status(true, "Available");
        assert!(transitions(Some(&s), &s).is_empty());
        let s = status(false, "SecretNotFound");
        assert!(transitions(Some(&s), &s).is_empty());
    }

    #[test]
    fn failure_is_a_warning_and_recovery_is_normal() {
        let bad = transitions(Some(&status(true, "Available")), &status(false, "SecretNotFound"));
        assert_eq!(bad.len(), 1);
        assert!(bad[0].warning);
        assert_eq!(bad[0].reason, "SecretNotFound");
        let good = transitions(Some(&status(false, "SecretNotFound")), &status(true, "Available"));
        assert_eq!((good[0].warning, good[0].reason), (false, "Ready"));
    }

    #[test]
    fn progressing_is_not_worth_an_event() {
        assert!(transitions(None, &status(false, "Progressing")).is_empty());
    }

    fn with_synced(mut s: BatonConnectorStatus, ok: bool, reason: &'static str) -> BatonConnectorStatus {
        let now = Time(Timestamp::from_second(1).unwrap());
        s.conditions = merge(
            &s.conditions,
            vec![Desired::new(SYNCED, ok, Reason::parse(reason).expect("a known reason"), "m")],
            Some(1),
            &now,
        );
        s
    }

    #[test]
    fn sync_failing_and_recovered_are_announced_once() {
        let good = with_synced(status(true, "Available"), true, "Synced");
        let bad = with_synced(status(false, "SyncFailed"), false, "SyncFailed");
        let notes = transitions(Some(&good), &bad);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!((notes[0].warning, notes[0].reason), (true, "SyncFailing"));
        assert!(transitions(Some(&bad), &bad).is_empty());
        let back = transitions(Some(&bad), &good);
        assert!(back.iter().any(|n| n.reason == "SyncRecovered"));
    }

    fn with_config(mut s: BatonConnectorStatus, ok: bool, reason: Reason, m: &str) -> BatonConnectorStatus {
        let now = Time(Timestamp::from_second(1).unwrap());
        s.conditions.retain(|c| c.type_ != CONFIG_VALID);
        s.conditions.extend(merge(&[], vec![Desired::new(CONFIG_VALID, ok, reason, m)], Some(1), &now));
        s
    }

    #[test]
    fn invalid_settings_are_one_event_and_new_warnings_another() {
        let good = with_config(status(true, "Available"), true, Reason::Validated, "ok");
        let bad = with_config(status(false, "ConfigInvalid"), false, Reason::ConfigInvalid, "no domain");
        let notes = transitions(Some(&good), &bad);
        assert_eq!(notes.iter().filter(|n| n.reason == "ConfigInvalid").count(), 1, "{notes:?}");
        assert!(transitions(Some(&bad), &bad).is_empty());
        // Still invalid, for another reason: Ready's reason is the same, the check's message is new.
        let other = with_config(status(false, "ConfigInvalid"), false, Reason::ConfigInvalid, "no token");
        let notes = transitions(Some(&bad), &other);
        assert_eq!((notes.len(), notes[0].message.as_str()), (1, "no token"));
        let warned = with_config(status(true, "Available"), true, Reason::ValidatedWithWarnings, "w");
        let notes = transitions(Some(&good), &warned);
        assert_eq!((notes.len(), notes[0].reason, notes[0].warning), (1, "ConfigWarnings", true));
        assert!(transitions(Some(&warned), &warned).is_empty());
        let not_ready =
            with_config(status(false, "SecretNotFound"), true, Reason::ValidatedWithWarnings, "w");
        assert!(transitions(Some(&good), &not_ready).iter().all(|n| n.reason != "ConfigWarnings"));
    }

    #[test]
    fn a_pod_problem_is_a_warning_when_it_starts_or_changes_not_when_its_message_does() {
        let crash = transitions(Some(&status(true, "Available")), &status(false, "CrashLoopBackOff"));
        assert_eq!(crash.len(), 1);
        assert_eq!((crash[0].warning, crash[0].reason), (true, "CrashLoopBackOff"));
        // One more restart changes the message (the restart count), not the reason: no new event.
        let mut more = status(false, "CrashLoopBackOff");
        more.conditions[0].message = "6 restarts".into();
        assert!(transitions(Some(&status(false, "CrashLoopBackOff")), &more).is_empty());
        let oom = transitions(Some(&more), &status(false, "OOMKilled"));
        assert_eq!((oom[0].warning, oom[0].reason), (true, "OOMKilled"));
    }

    #[test]
    fn new_restart_request_is_announced_once() {
        let mut new = status(true, "Available");
        new.handled_requests.restart = Some("t1".into());
        assert_eq!(transitions(Some(&status(true, "Available")), &new)[0].reason, "RestartRequested");
        assert!(transitions(Some(&new), &new).is_empty());
    }
}
