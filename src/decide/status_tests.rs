//! Tests of the pure status rules.

use k8s_openapi::{
    api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};

use crate::api::{
    RECONCILE_REQUESTED_AT, RESTART_REQUESTED_AT,
    conditions::{self as cond, find, is_true},
};
use crate::decide::{messages::listing, status::*};
use crate::resources::{InputProblem, testing::connector};

fn t(s: i64) -> Time {
    Time(Timestamp::from_second(s).unwrap())
}

fn deployment(
    generation: i64,
    observed: i64,
    updated: i32,
    available: i32,
    extra: Option<DeploymentCondition>,
) -> Deployment {
    let mut conditions = vec![DeploymentCondition {
        type_: Some("Available".into()),
        status: Some(if available > 0 { "True" } else { "False" }.into()),
        ..Default::default()
    }];
    conditions.extend(extra);
    let mut d = Deployment::default();
    d.metadata.name = Some("okta".into());
    d.metadata.generation = Some(generation);
    d.spec.replicas = Some(1);
    d.status = Some(DeploymentStatus {
        observed_generation: Some(observed),
        replicas: Some(updated.max(1)),
        updated_replicas: Some(updated),
        available_replicas: Some(available),
        conditions: Some(conditions),
        ..Default::default()
    });
    d
}

fn obs(problem: Option<Problem>, d: Option<&Deployment>) -> Observation<'_> {
    Observation {
        problem,
        deployment: d,
        config_hash: Some("h".into()),
        applied_current: true,
        credentials: None,
        issuing: None,
        sync: None,
        runs: None,
        pod: None,
        handled_sync: None,
        conductor_one: None,
        config: None,
    }
}

fn reason(s: &crate::api::BatonConnectorStatus, type_: &str) -> String {
    find(&s.conditions, type_).unwrap().reason.clone()
}

#[test]
fn available_current_workload_is_ready() {
    let d = deployment(2, 2, 1, 1, None);
    let s = compute(&connector("okta", "okta"), &obs(None, Some(&d)), &t(10));
    assert!(is_true(&s.conditions, cond::READY));
    assert!(!is_true(&s.conditions, cond::RECONCILING));
    assert!(!is_true(&s.conditions, cond::STALLED));
    assert!(is_true(&s.conditions, cond::WORKLOAD_AVAILABLE));
    assert!(is_true(&s.conditions, cond::CREDENTIALS_READY));
    assert_eq!(s.observed_generation, 1);
    assert_eq!(s.workload.as_ref().unwrap().available_replicas, 1);
}

#[test]
fn old_template_is_not_ready_even_if_a_pod_is_available() {
    let d = deployment(3, 2, 1, 1, None);
    let s = compute(&connector("okta", "okta"), &obs(None, Some(&d)), &t(10));
    assert!(!is_true(&s.conditions, cond::READY));
    assert!(is_true(&s.conditions, cond::RECONCILING));
    assert_eq!(reason(&s, cond::READY), "Progressing");
}

#[test]
fn a_new_resource_is_reconciling() {
    let s = compute(&connector("okta", "okta"), &obs(None, None), &t(10));
    assert!(is_true(&s.conditions, cond::RECONCILING));
    assert_eq!(reason(&s, cond::WORKLOAD_AVAILABLE), "NotCreated");
}

#[test]
fn progress_deadline_is_stalled() {
    let deadline = DeploymentCondition {
        type_: Some("Progressing".into()),
        status: Some("False".into()),
        reason: Some("ProgressDeadlineExceeded".into()),
        message: Some("ReplicaSet \"okta-1\" has timed out progressing.".into()),
        ..Default::default()
    };
    let d = deployment(2, 2, 1, 0, Some(deadline));
    let s = compute(&connector("okta", "okta"), &obs(None, Some(&d)), &t(10));
    assert!(is_true(&s.conditions, cond::STALLED));
    assert!(!is_true(&s.conditions, cond::RECONCILING));
    assert_eq!(reason(&s, cond::READY), "ProgressDeadlineExceeded");
}

#[test]
fn missing_secret_waits_and_missing_key_stalls() {
    let missing = Problem::Input(InputProblem::SecretNotFound { namespace: "ns".into(), name: "c1".into() });
    let mut o = obs(Some(missing), None);
    o.config_hash = None;
    let s = compute(&connector("okta", "okta"), &o, &t(10));
    assert!(is_true(&s.conditions, cond::RECONCILING));
    assert!(!is_true(&s.conditions, cond::STALLED));
    assert_eq!(reason(&s, cond::CREDENTIALS_READY), "SecretNotFound");
    assert!(find(&s.conditions, cond::READY).unwrap().message.contains("\"c1\""));

    let key = Problem::Input(InputProblem::KeyMissing { name: "c1".into(), key: "BATON_CLIENT_SECRET" });
    let mut o = obs(Some(key), None);
    o.config_hash = None;
    let s = compute(&connector("okta", "okta"), &o, &t(10));
    assert!(is_true(&s.conditions, cond::STALLED));
    assert!(!is_true(&s.conditions, cond::RECONCILING));
    assert_eq!(reason(&s, cond::READY), "SecretKeyMissing");
}

#[test]
fn app_secret_problem_does_not_blame_credentials() {
    let missing =
        Problem::Input(InputProblem::SecretNotFound { namespace: "ns".into(), name: "okta-app".into() });
    let mut o = obs(Some(missing), None);
    o.config_hash = None;
    let s = compute(&connector("okta", "okta"), &o, &t(10));
    assert_ne!(reason(&s, cond::CREDENTIALS_READY), "SecretNotFound");
    assert_eq!(reason(&s, cond::READY), "SecretNotFound");
}

#[test]
fn ownership_conflict_and_rejection_stall() {
    for p in [
        Problem::OwnershipConflict { kind: "Deployment", name: "okta".into(), owner: None },
        Problem::Rejected { message: "spec.template: invalid".into() },
    ] {
        let s = compute(&connector("okta", "okta"), &obs(Some(p.clone()), None), &t(10));
        assert!(is_true(&s.conditions, cond::STALLED), "{p:?}");
        assert_eq!(reason(&s, cond::STALLED), p.reason());
    }
}

#[test]
fn suspended_says_so_and_reports_the_existing_workload() {
    let mut bc = connector("okta", "okta");
    bc.spec.suspend = true;
    let d = deployment(1, 1, 1, 1, None);
    let mut o = obs(None, Some(&d));
    o.config_hash = None;
    o.applied_current = false;
    let s = compute(&bc, &o, &t(10));
    assert!(is_true(&s.conditions, cond::SUSPENDED));
    assert!(is_true(&s.conditions, cond::READY));
    assert_eq!(reason(&s, cond::READY), "Suspended");
    assert!(!is_true(&s.conditions, cond::RECONCILING));
}

#[test]
fn recomputing_from_the_written_status_changes_nothing() {
    let d = deployment(1, 1, 1, 1, None);
    let mut bc = connector("okta", "okta");
    let first = compute(&bc, &obs(None, Some(&d)), &t(10));
    bc.status = Some(first.clone());
    let second = compute(&bc, &obs(None, Some(&d)), &t(99));
    assert_eq!(first, second, "an idle resource must not cause a status write");
}

#[test]
fn trigger_annotations_are_echoed() {
    let mut bc = connector("okta", "okta");
    bc.metadata.annotations = Some(
        [
            (RESTART_REQUESTED_AT.to_string(), "r1".to_string()),
            (RECONCILE_REQUESTED_AT.to_string(), "c1".to_string()),
        ]
        .into(),
    );
    let s = compute(&bc, &obs(None, None), &t(10));
    assert_eq!(s.handled_requests.restart.as_deref(), Some("r1"));
    assert_eq!(s.handled_requests.reconcile.as_deref(), Some("c1"));
    let mut o = obs(None, None);
    o.applied_current = false;
    let s = compute(&bc, &o, &t(10));
    assert_eq!(
        s.handled_requests.restart, None,
        "a restart is handled only when the template carrying it was applied"
    );
}

fn synced(
    ok: bool,
    reason: &'static str,
    permanent: bool,
) -> Option<(Option<crate::api::SyncStatus>, cond::Desired, bool)> {
    Some((
        None,
        cond::Desired::new(cond::SYNCED, ok, crate::api::Reason::parse(reason).expect("a known reason"), "m"),
        permanent,
    ))
}

#[test]
fn with_api_access_ready_needs_a_recent_sync() {
    let d = deployment(1, 1, 1, 1, None);
    let bc = connector("okta", "okta");
    let mut o = obs(None, Some(&d));
    o.sync = synced(true, "Synced", false);
    assert!(is_true(&compute(&bc, &o, &t(1)).conditions, cond::READY));

    o.sync = synced(false, "SyncStale", false);
    let s = compute(&bc, &o, &t(1));
    assert_eq!(reason(&s, cond::READY), "SyncStale");
    assert!(!is_true(&s.conditions, cond::READY));
    assert!(!is_true(&s.conditions, cond::RECONCILING) && !is_true(&s.conditions, cond::STALLED));

    o.sync = synced(false, "WaitingForFirstSync", false);
    assert!(is_true(&compute(&bc, &o, &t(1)).conditions, cond::RECONCILING));

    o.sync = synced(false, "Unauthorized", true);
    assert!(is_true(&compute(&bc, &o, &t(1)).conditions, cond::STALLED));
}

#[test]
fn reconciling_for_too_long_becomes_stalled() {
    let missing = Problem::Input(InputProblem::SecretNotFound { namespace: "ns".into(), name: "c1".into() });
    let mut bc = connector("okta", "okta");
    let mut o = obs(Some(missing), None);
    o.config_hash = None;
    let first = compute(&bc, &o, &t(0));
    assert!(is_true(&first.conditions, cond::RECONCILING));
    bc.status = Some(first);
    let soon = compute(&bc, &o, &t(60));
    assert!(is_true(&soon.conditions, cond::RECONCILING), "still within the deadline");
    let late = compute(&bc, &o, &t(16 * 60));
    assert!(is_true(&late.conditions, cond::STALLED));
    assert!(!is_true(&late.conditions, cond::RECONCILING));
    assert_eq!(reason(&late, cond::STALLED), "ProgressDeadlineExceeded");
    assert!(find(&late.conditions, cond::STALLED).unwrap().message.contains("c1"));
}

#[test]
fn a_rollout_keeps_its_own_deadline() {
    let d = deployment(2, 1, 0, 0, None);
    let mut bc = connector("okta", "okta");
    let first = compute(&bc, &obs(None, Some(&d)), &t(0));
    bc.status = Some(first);
    let late = compute(&bc, &obs(None, Some(&d)), &t(16 * 60));
    assert!(is_true(&late.conditions, cond::RECONCILING));
    assert!(!is_true(&late.conditions, cond::STALLED));
}

/// OneShot: ready while scheduled, not ready (but not stalled) after a failed run.
#[test]
fn oneshot_is_ready_when_scheduled_and_not_after_a_failed_run() {
    use crate::api::{Mode, RunFailure, ScheduleStatus};
    use crate::decide::runs::Runs;
    let mut bc = connector("okta", "okta");
    bc.spec.mode = Mode::OneShot;
    let scheduled = Runs { exists: true, status: ScheduleStatus::default() };
    let o = Observation { runs: Some(scheduled.clone()), ..obs(None, None) };
    let s = compute(&bc, &o, &t(10));
    assert_eq!(reason(&s, cond::READY), "Scheduled");
    assert_eq!(find(&s.conditions, cond::READY).unwrap().status, "True");
    assert_eq!(reason(&s, cond::CREDENTIALS_READY), "NotNeeded");
    assert!(s.schedule.is_some());
    let failure = RunFailure {
        job: "okta-1".into(),
        time: None,
        reason: "BackoffLimitExceeded".into(),
        message: "x".into(),
    };
    let failed =
        Runs { exists: true, status: ScheduleStatus { last_failure: Some(failure), ..Default::default() } };
    let s = compute(&bc, &Observation { runs: Some(failed), ..obs(None, None) }, &t(10));
    assert_eq!(reason(&s, cond::READY), "RunFailed");
    assert_eq!(find(&s.conditions, cond::STALLED).unwrap().status, "False");
    // Not on the current template yet: in progress.
    let o = Observation { runs: Some(scheduled), applied_current: false, ..obs(None, None) };
    assert_eq!(reason(&compute(&bc, &o, &t(10)), cond::READY), "Progressing");
}

#[test]
fn invalid_settings_stall_and_keep_the_running_pod_reported_as_available() {
    let errors = vec!["spec.config.domain (BATON_DOMAIN): required".to_string()];
    let config = Some(cond::Desired::new(
        cond::CONFIG_VALID,
        false,
        crate::api::Reason::ConfigInvalid,
        listing(&errors),
    ));
    let d = deployment(1, 1, 1, 1, None);
    let mut o = obs(Some(Problem::ConfigInvalid { errors }), Some(&d));
    o.config_hash = None;
    o.applied_current = false;
    o.config = config;
    let s = compute(&connector("okta", "okta"), &o, &t(10));
    assert_eq!(reason(&s, cond::READY), "ConfigInvalid");
    assert!(is_true(&s.conditions, cond::STALLED) && !is_true(&s.conditions, cond::RECONCILING));
    assert!(find(&s.conditions, cond::READY).unwrap().message.contains("BATON_DOMAIN"));
    assert_eq!(reason(&s, cond::CONFIG_VALID), "ConfigInvalid");
    // The connector that runs is still the one with the last good settings.
    assert!(is_true(&s.conditions, cond::WORKLOAD_AVAILABLE));
}

#[test]
fn a_custom_connector_reports_config_valid_unknown() {
    let mut o = obs(None, None);
    o.config = Some(cond::Desired::new(
        cond::CONFIG_VALID,
        cond::Status::Unknown,
        crate::api::Reason::NotCatalogued,
        "not in the catalog",
    ));
    let s = compute(&connector("okta", "in-house"), &o, &t(10));
    let c = find(&s.conditions, cond::CONFIG_VALID).unwrap();
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("Unknown", "NotCatalogued"));
}

fn pod_problem(reason: crate::api::Reason) -> crate::decide::pods::PodProblem {
    crate::decide::pods::PodProblem {
        reason,
        message: format!("pod okta-1: {reason} detail"),
        short: format!("{reason}: short"),
    }
}

/// A pod's problem replaces "waiting for pods": with its reason in Ready and WorkloadAvailable, its
/// line in status.workload.pod, and Stalled when a person must act.
#[test]
fn a_pod_problem_explains_an_unavailable_workload() {
    use crate::api::Reason;
    let d = deployment(1, 1, 1, 0, None);
    let bc = connector("okta", "okta");
    let o = Observation { pod: Some(pod_problem(Reason::CrashLoopBackOff)), ..obs(None, Some(&d)) };
    let s = compute(&bc, &o, &t(10));
    for c in [cond::READY, cond::WORKLOAD_AVAILABLE, cond::STALLED] {
        assert_eq!(reason(&s, c), "CrashLoopBackOff", "{c}");
    }
    assert_eq!(find(&s.conditions, cond::READY).unwrap().message, "pod okta-1: CrashLoopBackOff detail");
    assert!(is_true(&s.conditions, cond::STALLED) && !is_true(&s.conditions, cond::RECONCILING));
    assert_eq!(s.workload.as_ref().and_then(|w| w.pod.as_deref()), Some("CrashLoopBackOff: short"));
    // Written once, computed again: the same status, so no second write.
    let mut bc = bc;
    bc.status = Some(s.clone());
    assert_eq!(compute(&bc, &o, &t(99)), s);
}

#[test]
fn a_pod_problem_that_may_pass_is_reconciling_not_stalled() {
    use crate::api::Reason;
    let d = deployment(1, 1, 1, 0, None);
    for r in [Reason::ErrImagePull, Reason::Unschedulable, Reason::ProbeFailing] {
        let o = Observation { pod: Some(pod_problem(r)), ..obs(None, Some(&d)) };
        let s = compute(&connector("okta", "okta"), &o, &t(10));
        assert_eq!(reason(&s, cond::READY), r.as_str());
        assert_eq!(reason(&s, cond::RECONCILING), r.as_str());
        assert!(!is_true(&s.conditions, cond::STALLED), "{r}");
    }
}

#[test]
fn a_pod_problem_beats_the_progress_deadline_but_not_availability_or_the_operator_s_own_findings() {
    use crate::api::Reason;
    let deadline = DeploymentCondition {
        type_: Some("Progressing".into()),
        status: Some("False".into()),
        reason: Some("ProgressDeadlineExceeded".into()),
        ..Default::default()
    };
    let failed = deployment(1, 1, 1, 0, Some(deadline));
    let bc = connector("okta", "okta");
    let pod = Some(pod_problem(Reason::OOMKilled));
    let s = compute(&bc, &Observation { pod: pod.clone(), ..obs(None, Some(&failed)) }, &t(10));
    assert_eq!(reason(&s, cond::READY), "OOMKilled");
    let available = deployment(1, 1, 1, 1, None);
    let s = compute(&bc, &Observation { pod: pod.clone(), ..obs(None, Some(&available)) }, &t(10));
    assert_eq!(reason(&s, cond::READY), "Available");
    assert_eq!(s.workload.as_ref().and_then(|w| w.pod.as_deref()), None);
    let missing = Problem::Input(InputProblem::SecretNotFound { namespace: "ns".into(), name: "app".into() });
    let s = compute(&bc, &Observation { pod, ..obs(Some(missing), Some(&failed)) }, &t(10));
    assert_eq!(reason(&s, cond::READY), "SecretNotFound");
}

/// OneShot: a failed run's pod gives the reason and message; like any failed run, not a stall.
#[test]
fn a_failed_run_reports_its_pod_s_reason() {
    use crate::api::{Mode, Reason, RunFailure, ScheduleStatus};
    use crate::decide::runs::Runs;
    let mut bc = connector("okta", "okta");
    bc.spec.mode = Mode::OneShot;
    let failure =
        RunFailure { job: "okta-1".into(), reason: "BackoffLimitExceeded".into(), ..Default::default() };
    let failed =
        Runs { exists: true, status: ScheduleStatus { last_failure: Some(failure), ..Default::default() } };
    let o = Observation {
        runs: Some(failed),
        pod: Some(pod_problem(Reason::ContainerFailed)),
        ..obs(None, None)
    };
    let s = compute(&bc, &o, &t(10));
    assert_eq!(reason(&s, cond::READY), "ContainerFailed");
    assert!(!is_true(&s.conditions, cond::STALLED) && !is_true(&s.conditions, cond::RECONCILING));
    assert_eq!(s.workload.as_ref().and_then(|w| w.pod.as_deref()), Some("ContainerFailed: short"));
}
