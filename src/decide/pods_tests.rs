use super::*;
use serde_json::{Value, json};

const NOW: i64 = 1_700_000_000;

fn at(s: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(s).unwrap().to_string()
}

/// A connector pod of the template with config hash `hash`, with the given container status.
fn pod(name: &str, hash: &str, created: i64, status: Value) -> Pod {
    let mut status = status;
    if status.get("phase").is_none() {
        status["phase"] = json!("Running");
    }
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "ns", "creationTimestamp": at(created),
            "labels": {"app.kubernetes.io/instance": "okta", "app.kubernetes.io/managed-by": "baton-operator"},
            "annotations": {TEMPLATE_HASH_ANNOTATION: hash},
        },
        "spec": {"containers": [{
            "name": "baton-okta", "image": "ghcr.io/conductorone/baton-okta:v1",
            "resources": {"limits": {"memory": "256Mi"}},
        }]},
        "status": status,
    }))
    .unwrap()
}

fn container(state: Value, last: Value, ready: bool, restarts: i32) -> Value {
    json!({"containerStatuses": [{
        "name": "baton-okta", "image": "ghcr.io/conductorone/baton-okta:v1", "imageID": "",
        "ready": ready, "restartCount": restarts, "state": state, "lastState": last,
    }]})
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"waiting": {"reason": reason, "message": message}})
}

fn crashed(exit: i32, reason: &str, message: &str) -> Value {
    json!({"terminated": {"exitCode": exit, "reason": reason, "message": message}})
}

fn view(p: &Pod) -> PodView {
    PodView::of(p).expect("a connector pod")
}

fn current() -> Option<u64> {
    template_of(Some(&BTreeMap::from([(
        TEMPLATE_HASH_ANNOTATION.to_string(),
        "00000000000000a1".to_string(),
    )])))
}

fn problem(pods: &[Pod]) -> Option<PodProblem> {
    let views: Vec<_> = pods.iter().map(view).collect();
    service(&views, current(), NOW, None).problem
}

#[test]
fn a_pod_and_its_template_agree_on_the_template_id() {
    assert_eq!(view(&pod("a", "00000000000000a1", NOW, json!({}))).template, current());
    assert_ne!(view(&pod("a", "00000000000000a0", NOW, json!({}))).template, current());
    // A pod an older operator made has no id, and is no template's, not even an unnamed one's.
    let old = view(&pod("a", "not hex", NOW, json!({})));
    assert_eq!(old.template, None);
    let crash = container(waiting("CrashLoopBackOff", ""), crashed(1, "Error", ""), false, 2);
    let views = [view(&pod("a", "not hex", NOW, crash))];
    assert_eq!(service(&views, None, NOW, None), PodReading::default());
}

#[test]
fn a_crash_loop_names_exit_code_restarts_and_redacted_last_words() {
    let p = pod(
        "okta-1",
        "00000000000000a1",
        NOW,
        container(
            waiting("CrashLoopBackOff", "back-off 40s restarting failed container"),
            crashed(1, "Error", "starting\nfatal: login failed with client_secret=hunter2\n"),
            false,
            5,
        ),
    );
    let got = problem(&[p]).unwrap();
    assert_eq!(got.reason, Reason::CrashLoopBackOff);
    assert_eq!(
        got.short,
        "CrashLoopBackOff: exit 1, 5 restarts: starting | fatal: login failed with client_secret=[REDACTED]"
    );
    assert!(
        got.message
            .starts_with("pod okta-1: container baton-okta keeps crashing (exit 1, 5 restarts): starting")
    );
    assert!(!got.message.contains("hunter2") && got.needs_person());
}

#[test]
fn image_pull_problems_name_the_image_and_back_off_comes_first() {
    let pull = pod(
        "a",
        "00000000000000a1",
        NOW,
        container(waiting("ErrImagePull", "rpc error: not found"), json!({}), false, 0),
    );
    let got = problem(std::slice::from_ref(&pull)).unwrap();
    assert_eq!(
        (got.reason, got.short.as_str()),
        (Reason::ErrImagePull, "ErrImagePull: ghcr.io/conductorone/baton-okta:v1")
    );
    assert!(got.message.contains("rpc error: not found"));
    assert!(!got.needs_person(), "the first failed pull may be a registry hiccup");
    let backoff = pod(
        "b",
        "00000000000000a1",
        NOW - 5,
        container(waiting("ImagePullBackOff", "Back-off pulling image"), json!({}), false, 0),
    );
    let got = problem(&[pull, backoff]).unwrap();
    assert_eq!(got.reason, Reason::ImagePullBackOff);
    assert!(got.needs_person());
}

#[test]
fn a_missing_secret_or_key_is_the_kubelet_s_message() {
    let m = r#"couldn't find key BATON_TOKEN in Secret ns/okta-app"#;
    let got = problem(&[pod(
        "a",
        "00000000000000a1",
        NOW,
        container(waiting("CreateContainerConfigError", m), json!({}), false, 0),
    )])
    .unwrap();
    assert_eq!(got.reason, Reason::CreateContainerConfigError);
    assert_eq!(got.short, format!("CreateContainerConfigError: {m}"));
}

#[test]
fn an_oom_kill_names_the_limit_whether_it_loops_or_not() {
    let looping = container(waiting("CrashLoopBackOff", ""), crashed(137, "OOMKilled", ""), false, 3);
    let got = problem(&[pod("a", "00000000000000a1", NOW, looping)]).unwrap();
    assert_eq!((got.reason, got.short.as_str()), (Reason::OOMKilled, "OOMKilled: limit 256Mi, 3 restarts"));
    assert!(got.message.contains("spec.resources.limits.memory"));
    let just_killed = container(crashed(137, "OOMKilled", ""), json!({}), false, 0);
    assert_eq!(problem(&[pod("a", "00000000000000a1", NOW, just_killed)]).unwrap().reason, Reason::OOMKilled);
}

#[test]
fn an_unschedulable_pod_carries_the_scheduler_s_message() {
    let status = json!({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory.",
    }]});
    let got = problem(&[pod("a", "00000000000000a1", NOW, status)]).unwrap();
    assert_eq!(got.reason, Reason::Unschedulable);
    assert_eq!(got.short, "Unschedulable: 0/3 nodes are available: 3 Insufficient memory.");
    assert!(!got.needs_person());
}

#[test]
fn failing_probes_count_after_the_grace_and_ask_for_a_recheck_before() {
    let running = |since: i64, ready: bool| {
        container(json!({"running": {"startedAt": at(since)}}), json!({}), ready, 0)
    };
    let views = [view(&pod("a", "00000000000000a1", NOW, running(NOW - 10, false)))];
    let reading = service(&views, current(), NOW, None);
    assert_eq!(reading.problem, None);
    assert_eq!(reading.recheck, Some(Duration::from_secs(21)));
    let views = [view(&pod("a", "00000000000000a1", NOW, running(NOW - 31, false)))];
    let reading = service(&views, current(), NOW, None);
    let got = reading.problem.unwrap();
    assert_eq!(got.reason, Reason::ProbeFailing);
    assert_eq!(got.short, format!("ProbeFailing: readiness probe failing since {}", at(NOW - 31)));
    // Why, and what to do: the health server of SDKs before v0.7.6 does not exist.
    assert!(got.message.contains("still fails: the connector serves its health endpoints only when built on baton-sdk v0.7.6 or newer"), "{}", got.message);
    assert!(got.message.ends_with("or set spec.healthCheck.enabled to false"), "{}", got.message);
    // The message names the start, not the time since: a later pass writes nothing new.
    assert_eq!(service(&views, current(), NOW + 100, None).problem.unwrap(), got);
    let views = [view(&pod("a", "00000000000000a1", NOW, running(NOW - 100, true)))];
    assert_eq!(service(&views, current(), NOW, None), PodReading::default());
}

#[test]
fn pods_of_another_template_or_on_their_way_out_are_not_asked() {
    let crash = container(waiting("CrashLoopBackOff", ""), crashed(1, "Error", ""), false, 2);
    assert_eq!(problem(&[pod("old", "00000000000000a0", NOW, crash.clone())]), None);
    let mut leaving = pod("leaving", "00000000000000a1", NOW, crash);
    leaving.metadata.deletion_timestamp = leaving.metadata.creation_timestamp.clone();
    assert_eq!(problem(&[leaving]), None);
    let evicted = json!({"phase": "Failed", "reason": "Evicted"});
    assert_eq!(problem(&[pod("evicted", "00000000000000a1", NOW, evicted)]), None);
}

#[test]
fn the_order_puts_the_image_before_the_crash_before_scheduling() {
    let crash = pod(
        "c",
        "00000000000000a1",
        NOW,
        container(waiting("CrashLoopBackOff", ""), crashed(2, "Error", ""), false, 1),
    );
    let config = pod(
        "s",
        "00000000000000a1",
        NOW,
        container(waiting("CreateContainerConfigError", "secret \"x\" not found"), json!({}), false, 0),
    );
    let pull =
        pod("p", "00000000000000a1", NOW, container(waiting("ImagePullBackOff", ""), json!({}), false, 0));
    assert_eq!(problem(&[crash.clone(), config.clone(), pull]).unwrap().reason, Reason::ImagePullBackOff);
    assert_eq!(problem(&[crash.clone(), config]).unwrap().reason, Reason::CreateContainerConfigError);
    assert_eq!(problem(&[crash]).unwrap().reason, Reason::CrashLoopBackOff);
}

#[test]
fn a_failed_run_speaks_through_its_newest_pod() {
    let run = |name: &str, created: i64, exit: i32, reason: &str, words: &str| {
        let mut p = pod(
            name,
            "00000000000000a1",
            created,
            json!({"phase": "Failed", "initContainerStatuses": [{
                "name": "baton-okta", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": crashed(exit, reason, words),
            }]}),
        );
        p.metadata.labels.as_mut().unwrap().insert(JOB_NAME_LABEL.into(), "okta-123".into());
        view(&p)
    };
    let pods = [run("a", NOW - 60, 2, "Error", "first"), run("b", NOW, 1, "Error", "Bearer abc.def: 401")];
    let got = failed_run(&pods, "okta-123").unwrap();
    assert_eq!(got.reason, Reason::ContainerFailed);
    assert_eq!(got.short, "ContainerFailed: exit 1: Bearer [REDACTED] 401");
    assert_eq!(failed_run(&pods, "other"), None);
    let oom = [run("c", NOW, 137, "OOMKilled", "")];
    assert_eq!(failed_run(&oom, "okta-123").unwrap().reason, Reason::OOMKilled);
}

#[test]
fn a_view_is_small() {
    let words = "w".repeat(2000);
    let p = pod(
        "okta-7d9f8c-x2x4z",
        "00000000000000a1",
        NOW,
        container(waiting("CrashLoopBackOff", ""), crashed(1, "Error", &words), false, 5),
    );
    let size = |v: &PodView| {
        let heap: usize = v.name.len()
            + v.instance.len()
            + v.containers
                .iter()
                .map(|c| {
                    c.name.len()
                        + c.image.len()
                        + c.memory_limit.as_ref().map_or(0, String::len)
                        + c.waiting.as_ref().map_or(0, |(r, m)| r.len() + m.len())
                        + c.terminated.as_ref().map_or(0, |t| t.last_words.len() + t.reason.len())
                })
                .sum::<usize>();
        std::mem::size_of::<PodView>() + v.containers.len() * std::mem::size_of::<ContainerView>() + heap
    };
    let crashing = size(&view(&p));
    let running = size(&view(&pod(
        "okta-7d9f8c-x2x4z",
        "00000000000000a1",
        NOW,
        container(json!({"running": {}}), json!({}), true, 0),
    )));
    println!(
        "PodView: {running} bytes for a running pod, {crashing} for a crash loop with 2000 characters of last words"
    );
    assert!(running < 200 && crashing < 900, "{running}, {crashing}");
}

#[test]
fn a_loop_stays_reported_through_its_retries() {
    let crash = container(waiting("CrashLoopBackOff", ""), crashed(1, "Error", "boom"), false, 5);
    let reported = problem(&[pod("a", "00000000000000a1", NOW, crash)]).unwrap();
    let running = |ready: bool| {
        let mut s =
            container(json!({"running": {"startedAt": at(NOW - 5)}}), crashed(1, "Error", "boom"), ready, 6);
        s["containerStatuses"][0]["ready"] = json!(ready);
        view(&pod("a", "00000000000000a1", NOW, s))
    };
    // Run again, unready, within the probes' grace: still the crash loop, and a look at the grace's end.
    let reading = service(&[running(false)], current(), NOW, Some(&reported));
    assert_eq!(reading.problem.as_ref(), Some(&reported));
    assert_eq!(reading.recheck, Some(Duration::from_secs(26)));
    // Healthy: the loop is over.
    assert_eq!(service(&[running(true)], current(), NOW, Some(&reported)).problem, None);
    // Another pod (the old one was replaced): what the new one says.
    let other = view(&pod(
        "b",
        "00000000000000a1",
        NOW,
        container(json!({"running": {"startedAt": at(NOW - 5)}}), json!({}), false, 0),
    ));
    assert_eq!(service(&[other], current(), NOW, Some(&reported)).problem, None);
    // Between two back-offs a pull fails again: still backing off.
    let backoff = problem(&[pod(
        "a",
        "00000000000000a1",
        NOW,
        container(waiting("ImagePullBackOff", "Back-off"), json!({}), false, 0),
    )])
    .unwrap();
    let pull = [view(&pod(
        "a",
        "00000000000000a1",
        NOW,
        container(waiting("ErrImagePull", "not found"), json!({}), false, 0),
    ))];
    assert_eq!(service(&pull, current(), NOW, Some(&backoff)).problem, Some(backoff.clone()));
    // Read back from the status it was written to, it is the same problem.
    let read = PodProblem::reported(backoff.reason.as_str(), &backoff.message, Some(&backoff.short));
    assert_eq!(read, Some(backoff));
    assert_eq!(PodProblem::reported("Progressing", "waiting", None), None);
}
