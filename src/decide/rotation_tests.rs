//! The rotation sequence, step by step, including every resume point after a crash.

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

static C1: std::sync::LazyLock<ConnectorRef> = std::sync::LazyLock::new(|| conn("c1"));

fn conn(id: &str) -> ConnectorRef {
    ConnectorRef { app_id: "app".into(), connector_id: id.into() }
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

fn stored(id: &str, at: i64) -> StoredCredential {
    StoredCredential {
        credential_id: id.into(),
        client_id: format!("{id}@t.conductor.one/ccc"),
        issued_at: Some(ts(at)),
        expires_at: None,
    }
}

fn input(state: &CredentialsStatus, now: i64) -> Input<'_> {
    Input {
        state,
        interval: 24 * HOUR,
        grace: HOUR,
        rotate_request: None,
        handled_rotate: None,
        now: ts(now),
        stored: None,
        rolled_out: false,
        jitter_seed: "ns/okta",
        connector: &C1,
    }
}

/// Runs a full initial issue and returns the state with a current credential.
fn issued(now: i64) -> CredentialsStatus {
    let s = start(&CredentialsStatus::default(), Trigger::Initial, &conn("c1"), ts(now));
    let s = mark_in_flight(&s, ts(now));
    let s = record_stored(&s, &stored("cred-1", now));
    promote(&s, &stored("cred-1", now), "okta", HOUR, ts(now))
}

#[test]
fn no_credential_starts_an_initial_issue() {
    let s = CredentialsStatus::default();
    assert_eq!(decide(&input(&s, 0)), Step::Start(Trigger::Initial));
    let s = start(&s, Trigger::Initial, &conn("c1"), ts(0));
    let r = s.rotation.as_ref().unwrap();
    assert_eq!((r.phase, r.revision, r.previous.as_ref()), (RotationPhase::Issuing, 1, None));
    assert_eq!(decide(&input(&s, 0)), Step::Issue);
}

#[test]
fn stored_reply_is_adopted_after_a_crash_instead_of_minting_again() {
    let s =
        mark_in_flight(&start(&CredentialsStatus::default(), Trigger::Initial, &conn("c1"), ts(0)), ts(1));
    let mut i = input(&s, 5);
    i.stored = Some(stored("cred-1", 1));
    assert_eq!(decide(&i), Step::Adopt(stored("cred-1", 1)));
}

#[test]
fn in_flight_issue_without_stored_reply_is_reported_then_retried() {
    let s =
        mark_in_flight(&start(&CredentialsStatus::default(), Trigger::Initial, &conn("c1"), ts(0)), ts(7));
    assert_eq!(decide(&input(&s, 9)), Step::ReportUnrecorded { since: ts(7) });
    let s = record_unrecorded(&s);
    assert_eq!(s.rotation.as_ref().unwrap().unrecorded_attempts, 1);
    assert_eq!(decide(&input(&s, 9)), Step::Issue);
}

#[test]
fn rolling_waits_for_the_new_pod_then_promotes() {
    let s = record_stored(
        &mark_in_flight(&start(&CredentialsStatus::default(), Trigger::Initial, &conn("c1"), ts(0)), ts(0)),
        &stored("cred-1", 0),
    );
    assert_eq!(workload_secret(&s, "okta").as_deref(), Some("okta-c1-credentials-1"));
    assert_eq!(decide(&input(&s, 10)), Step::AwaitRollout);
    let mut i = input(&s, 10);
    i.rolled_out = true;
    assert_eq!(decide(&i), Step::Promote);
}

#[test]
fn initial_issue_has_no_grace_period() {
    let s = issued(100);
    assert_eq!(s.rotation, None);
    assert_eq!(s.credential_id.as_deref(), Some("cred-1"));
    assert_eq!(s.secret_name.as_deref(), Some("okta-c1-credentials-1"));
    assert_eq!(s.revision, Some(1));
    assert!(matches!(decide(&input(&s, 200)), Step::Idle(Some(_))));
}

#[test]
fn interval_with_jitter_triggers_rotation() {
    let s = issued(0);
    let next = next_rotation(&s, 24 * HOUR, "ns/okta").unwrap();
    let day = 24 * 3600;
    assert!(next >= ts(day) && next <= ts(day + day / 10), "{next}");
    assert_eq!(next, next_rotation(&s, 24 * HOUR, "ns/okta").unwrap(), "stable across restarts");
    assert_ne!(next, next_rotation(&s, 24 * HOUR, "other/okta").unwrap(), "differs across the fleet");
    assert_eq!(decide(&input(&s, next.as_second() - 1)), Step::Idle(Some(next)));
    assert_eq!(decide(&input(&s, next.as_second())), Step::Start(Trigger::Interval));
}

#[test]
fn rotate_annotation_triggers_once() {
    let s = issued(0);
    let mut i = input(&s, 10);
    i.rotate_request = Some("2026-11-22T10:00:00Z");
    assert_eq!(decide(&i), Step::Start(Trigger::Requested));
    i.handled_rotate = Some("2026-11-22T10:00:00Z");
    assert!(matches!(decide(&i), Step::Idle(_)));
}

#[test]
fn full_rotation_keeps_the_old_credential_until_grace_ends() {
    let s = issued(0);
    let s = start(&s, Trigger::Requested, &conn("c1"), ts(10));
    let r = s.rotation.as_ref().unwrap();
    assert_eq!(r.revision, 2);
    assert_eq!(r.previous.as_ref().unwrap().credential_id, "cred-1");
    assert_eq!(
        workload_secret(&s, "okta").as_deref(),
        Some("okta-c1-credentials-1"),
        "old Secret while issuing"
    );
    let s = record_stored(&mark_in_flight(&s, ts(11)), &stored("cred-2", 11));
    assert_eq!(workload_secret(&s, "okta").as_deref(), Some("okta-c1-credentials-2"));
    // Nothing is revoked while the new pod is not available.
    assert_eq!(decide(&input(&s, 5000)), Step::AwaitRollout);
    let s = promote(&s, &stored("cred-2", 11), "okta", HOUR, ts(20));
    assert_eq!(s.credential_id.as_deref(), Some("cred-2"));
    assert_eq!(s.rotation.as_ref().unwrap().phase, RotationPhase::GracePeriod);
    assert_eq!(decide(&input(&s, 21)), Step::AwaitGrace(ts(20 + 3600)));
    let previous =
        PreviousCredential { credential_id: "cred-1".into(), secret_name: "okta-c1-credentials-1".into() };
    assert_eq!(decide(&input(&s, 20 + 3600)), Step::RevokePrevious(previous.clone()));
    let s = mark_revoking(&s);
    assert_eq!(
        decide(&input(&s, 20 + 3600)),
        Step::RevokePrevious(previous),
        "resumes revoking after a crash"
    );
    let s = finish(&s);
    assert_eq!(s.rotation, None);
    assert_eq!(minted(&s), ["cred-2"]);
}

#[test]
fn pending_revocations_are_handled_before_new_rotations() {
    let s = add_pending_revocation(&issued(0), "stray");
    assert_eq!(decide(&input(&s, 1)), Step::RevokePending("stray".into()));
    let s = remove_pending_revocation(&s, "stray");
    assert!(matches!(decide(&input(&s, 1)), Step::Idle(_)));
}

#[test]
fn minted_lists_every_live_credential_once() {
    let s = issued(0);
    let s = start(&s, Trigger::Requested, &conn("c1"), ts(1));
    let s = record_stored(&s, &stored("cred-2", 1));
    let s = add_pending_revocation(&s, "stray");
    assert_eq!(minted(&s), ["cred-1", "cred-2", "stray"]);
}

#[test]
fn clear_in_flight_allows_a_clean_retry() {
    let s =
        mark_in_flight(&start(&CredentialsStatus::default(), Trigger::Initial, &conn("c1"), ts(0)), ts(1));
    let s = clear_in_flight(&s);
    assert_eq!(decide(&input(&s, 2)), Step::Issue);
    assert_eq!(s.rotation.as_ref().unwrap().unrecorded_attempts, 0);
}

#[test]
fn a_new_connector_gets_its_own_credential_before_the_old_ones_are_revoked() {
    let s = issued(0);
    let other = conn("c2");
    let on = |s: &CredentialsStatus, rolled_out: bool| {
        decide(&Input { connector: &other, rolled_out, ..input(s, 10) })
    };
    assert_eq!(on(&s, true), Step::Supersede);
    let s = supersede(&s, "okta", &other);
    // The pod keeps its Secret until the new credential is out; nothing is revoked yet.
    assert_eq!(workload_secret(&s, "okta").as_deref(), Some("okta-c1-credentials-1"));
    assert_eq!(s.superseded[0].connector, *C1);
    assert_eq!(minted(&s), ["cred-1"]);
    assert_eq!(on(&s, true), Step::Start(Trigger::ConnectorChanged));
    let s = start(&s, Trigger::ConnectorChanged, &other, ts(10));
    let r = s.rotation.clone().unwrap();
    assert_eq!((r.revision, r.previous), (2, None));
    let s = record_stored(&mark_in_flight(&s, ts(10)), &stored("cred-2", 10));
    assert_eq!(on(&s, false), Step::AwaitRollout);
    let s = promote(&s, &stored("cred-2", 10), "okta", HOUR, ts(11));
    assert!(s.rotation.is_none(), "no grace period for another connector's credential");
    assert!(matches!(on(&s, false), Step::Idle(_)), "not before the new pod is available");
    let Step::RevokeSuperseded(old) = on(&s, true) else { panic!("{:?}", on(&s, true)) };
    assert_eq!(
        (old.credential_id.as_str(), old.secret_name.as_deref()),
        ("cred-1", Some("okta-c1-credentials-1"))
    );
    let s = remove_superseded(&s, "cred-1");
    assert!(matches!(on(&s, true), Step::Idle(Some(_))));
    assert_eq!(minted_by_connector(&s, &other), [(other.clone(), "cred-2".to_string())]);
}

#[test]
fn superseding_mid_rotation_never_reuses_a_revision() {
    let s = issued(0);
    let s = start(&s, Trigger::Requested, &C1, ts(10));
    let s = record_stored(&mark_in_flight(&s, ts(10)), &stored("cred-2", 10));
    let s = supersede(&s, "okta", &conn("c2"));
    let ids: Vec<_> = s.superseded.iter().map(|o| o.credential_id.as_str()).collect();
    assert_eq!(ids, ["cred-1", "cred-2"]);
    assert_eq!(s.revision, Some(2));
    assert_eq!(
        workload_secret(&s, "okta").as_deref(),
        Some("okta-c1-credentials-2"),
        "no roll back to the old Secret"
    );
    let next = start(&s, Trigger::ConnectorChanged, &conn("c2"), ts(11));
    assert_eq!(next.rotation.unwrap().revision, 3);
    let by = minted_by_connector(&s, &conn("c2"));
    assert!(by.iter().all(|(c, _)| *c == *C1), "{by:?}");
}
