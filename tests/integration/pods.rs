//! The pod's own answer, one reconcile at a time against the faked API: what the kubelet and the
//! scheduler say about the connector pods reaches `Ready`, `status.workload.pod` and one event per
//! transition, redacted, and a repeat writes nothing.

use baton_test_support as support;

use std::sync::Arc;

use baton_operator::{
    api::BatonConnector,
    controller::{self, Context, reconcile},
    metrics::Metrics,
};
use serde_json::{Value, json};
use support::{
    fake_kube::{FakeKube, b64},
    kstatus::{self, KStatus},
};

const BC: &str = "/apis/baton.conductorone.com/v1alpha1/namespaces/ns/batonconnectors/okta";
const DEPLOY: &str = "/apis/apps/v1/namespaces/ns/deployments/okta";
const POD: &str = "/api/v1/namespaces/ns/pods/okta-5d8f-x7k2p";
const SECRET_VALUE: &str = "hunter2-never-shown";

fn setup(spec: Value) -> (FakeKube, Arc<Context>) {
    let fake = FakeKube::default();
    // baton-okta's required settings, or the operator rolls nothing out.
    let mut full = json!({"connector": "okta", "credentials": {"secretRef": {"name": "c1"}},
        "config": {"domain": {"value": "acme.okta.com"}, "api-token": {"secretKeyRef": {"name": "c1", "key": "token"}}}});
    full.as_object_mut().unwrap().extend(spec.as_object().unwrap().clone());
    fake.put(
        BC,
        json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
            "metadata": {"name": "okta", "namespace": "ns"}, "spec": full,
        }),
    );
    let data = json!({"BATON_CLIENT_ID": b64("id@acme.conductor.one/ccc"), "BATON_CLIENT_SECRET": b64("s"),
                      "token": b64("okta-token")});
    fake.put(
        "/api/v1/namespaces/ns/secrets/c1",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1", "namespace": "ns"}, "data": data}),
    );
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let c1 = baton_operator::conductorone::ConductorOneClient::new(Default::default()).unwrap();
    let ctx = Arc::new(Context::new(fake.client(), c1, metrics, controller::Config::default()));
    (fake, ctx)
}

async fn run(fake: &FakeKube, ctx: &Arc<Context>) {
    let bc: BatonConnector = serde_json::from_value(fake.get(BC).unwrap()).unwrap();
    // A problem makes the reconcile return an error (so the controller backs off); status says it.
    let _ = reconcile(Arc::new(bc), ctx.clone()).await;
}

/// The Deployment controller's view of a pod that is not available.
fn unavailable(fake: &FakeKube) {
    fake.edit(DEPLOY, |d| {
        let generation = d["metadata"]["generation"].clone();
        d["status"] = json!({
            "observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0,
            "conditions": [{"type": "Available", "status": "False"}],
        });
    });
}

/// A pod made from the Deployment's current template, with the given status.
fn pod_of_template(fake: &FakeKube, status: Value) {
    let template = fake.get(DEPLOY).unwrap()["spec"]["template"].clone();
    let mut metadata = template["metadata"].clone();
    metadata["name"] = json!("okta-5d8f-x7k2p");
    metadata["namespace"] = json!("ns");
    fake.put(POD, json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"], "status": status}));
}

fn container_status(state: Value, last: Value, restarts: i32) -> Value {
    json!({"phase": "Running", "containerStatuses": [{
        "name": "baton-okta", "image": "public.ecr.aws/conductorone/baton-okta:latest", "imageID": "",
        "ready": false, "restartCount": restarts, "state": state, "lastState": last,
    }]})
}

fn crash_loop() -> Value {
    container_status(
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}),
        json!({"terminated": {"exitCode": 1, "reason": "Error",
               "message": format!("sync failed\nfatal: 401 with client_secret={SECRET_VALUE}")}}),
        5,
    )
}

fn ready(fake: &FakeKube) -> (String, String, String) {
    let bc = fake.get(BC).unwrap();
    let c =
        bc["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

fn workload_pod(fake: &FakeKube) -> Option<String> {
    fake.get(BC).unwrap()["status"]["workload"]["pod"].as_str().map(str::to_string)
}

fn events_with_reason(fake: &FakeKube, reason: &str) -> usize {
    fake.writes()
        .iter()
        .filter(|c| c.path.contains("/events") && c.body.contains(&format!("\"reason\":\"{reason}\"")))
        .count()
}

#[tokio::test]
async fn a_crash_loop_reaches_the_status_redacted_with_one_event_and_no_rewrite() {
    let (fake, ctx) = setup(json!({}));
    run(&fake, &ctx).await;
    unavailable(&fake);
    pod_of_template(&fake, crash_loop());
    fake.clear_calls();
    run(&fake, &ctx).await;
    let (status, reason, message) = ready(&fake);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "CrashLoopBackOff"));
    assert!(message.contains("okta-5d8f-x7k2p") && message.contains("exit 1, 5 restarts"), "{message}");
    assert!(message.contains("client_secret=[REDACTED]"), "{message}");
    assert_eq!(
        workload_pod(&fake).as_deref(),
        Some("CrashLoopBackOff: exit 1, 5 restarts: sync failed | fatal: 401 with client_secret=[REDACTED]")
    );
    assert_eq!(events_with_reason(&fake, "CrashLoopBackOff"), 1);
    for call in fake.calls() {
        assert!(
            !call.body.contains(SECRET_VALUE),
            "the last words' secret was sent: {} {}",
            call.method,
            call.path
        );
    }
    // The kubelet reports nothing new: nothing is written, no event repeats.
    fake.clear_calls();
    run(&fake, &ctx).await;
    run(&fake, &ctx).await;
    assert_eq!(fake.writes().len(), 0, "{:?}", fake.writes());
    // The pod recovers and the Deployment is available: Ready again, the line is gone.
    fake.make_available(DEPLOY);
    fake.edit(POD, |p| p["status"] = json!({"phase": "Running"}));
    run(&fake, &ctx).await;
    assert_eq!(ready(&fake).1, "Available");
    assert_eq!(workload_pod(&fake), None);
}

#[tokio::test]
async fn every_pod_reason_reaches_ready_and_the_pod_line() {
    let waiting = |reason: &str, message: &str| {
        container_status(json!({"waiting": {"reason": reason, "message": message}}), json!({}), 0)
    };
    let unschedulable = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
        "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}]});
    let oom = container_status(
        json!({"waiting": {"reason": "CrashLoopBackOff"}}),
        json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
        3,
    );
    let long_ago = k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap().to_string();
    let unready = container_status(json!({"running": {"startedAt": long_ago}}), json!({}), 0);
    let cases = [
        (
            waiting("ImagePullBackOff", "Back-off pulling image"),
            "ImagePullBackOff",
            "ImagePullBackOff: public.ecr.aws/conductorone/baton-okta:latest",
            "True",
        ),
        (
            waiting("ErrImagePull", "manifest unknown"),
            "ErrImagePull",
            "ErrImagePull: public.ecr.aws/conductorone/baton-okta:latest",
            "False",
        ),
        (
            waiting("CreateContainerConfigError", "secret \"gone\" not found"),
            "CreateContainerConfigError",
            "CreateContainerConfigError: secret \"gone\" not found",
            "True",
        ),
        (oom, "OOMKilled", "OOMKilled: limit 1Gi, 3 restarts", "True"),
        (
            unschedulable,
            "Unschedulable",
            "Unschedulable: 0/3 nodes are available: 3 Insufficient memory.",
            "False",
        ),
        (
            unready,
            "ProbeFailing",
            "ProbeFailing: readiness probe failing since 1970-01-12T13:46:40Z",
            "False",
        ),
    ];
    for (status, reason, line, stalled) in cases {
        let (fake, ctx) = setup(json!({}));
        run(&fake, &ctx).await;
        unavailable(&fake);
        pod_of_template(&fake, status);
        run(&fake, &ctx).await;
        assert_eq!(ready(&fake).1, reason);
        assert_eq!(workload_pod(&fake).as_deref(), Some(line), "{reason}");
        let bc = fake.get(BC).unwrap();
        let stalled_now = bc["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Stalled")
            .unwrap()["status"]
            .clone();
        assert_eq!(stalled_now, json!(stalled), "{reason}: Stalled");
        // What Flux and `kubectl wait` make of it: failed where a person must act.
        let want = if stalled == "True" { KStatus::Failed } else { KStatus::InProgress };
        assert_eq!(kstatus::compute(&bc), want, "{reason}: kstatus");
    }
}

#[tokio::test]
async fn a_pod_of_an_older_template_is_not_asked() {
    let (fake, ctx) = setup(json!({}));
    run(&fake, &ctx).await;
    unavailable(&fake);
    pod_of_template(&fake, crash_loop());
    fake.edit(POD, |p| {
        p["metadata"]["annotations"]["baton.conductorone.com/template-hash"] = json!("00000000000000ff");
    });
    run(&fake, &ctx).await;
    assert_eq!(ready(&fake).1, "Progressing");
    assert_eq!(workload_pod(&fake), None);
}

/// OneShot: the failed run's reason and message come from its pod.
#[tokio::test]
async fn a_failed_run_reports_its_pod_s_reason() {
    let (fake, ctx) = setup(json!({
        "mode": "OneShot", "schedule": "@hourly", "output": {"s3": {"bucket": "uploads"}},
    }));
    run(&fake, &ctx).await;
    let labels =
        json!({"app.kubernetes.io/instance": "okta", "app.kubernetes.io/managed-by": "baton-operator"});
    // Whole seconds, as the API server keeps time.
    let now =
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second()).unwrap();
    let now = now.to_string();
    fake.put(
        "/apis/batch/v1/namespaces/ns/jobs/okta-2900",
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "okta-2900", "namespace": "ns", "labels": labels},
               "spec": {"template": {"spec": {"containers": []}}},
               "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                          "message": "Job has reached the specified backoff limit", "lastTransitionTime": now}]}}),
    );
    let mut pod_labels = labels.clone();
    pod_labels["batch.kubernetes.io/job-name"] = json!("okta-2900");
    fake.put(
        "/api/v1/namespaces/ns/pods/okta-2900-abcde",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "okta-2900-abcde", "namespace": "ns", "labels": pod_labels},
               "spec": {"containers": []},
               "status": {"phase": "Failed", "initContainerStatuses": [{
                   "name": "baton-okta", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                   "state": {"terminated": {"exitCode": 2, "reason": "Error",
                             "message": "fatal: authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl rejected"}}}]}}),
    );
    run(&fake, &ctx).await;
    let (status, reason, message) = ready(&fake);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ContainerFailed"));
    assert!(
        message.contains("exited with code 2") && message.contains("Bearer [REDACTED] rejected"),
        "{message}"
    );
    assert!(!message.contains("eyJ"), "{message}");
    assert_eq!(
        workload_pod(&fake).as_deref(),
        Some("ContainerFailed: exit 2: fatal: authorization: Bearer [REDACTED] rejected")
    );
    fake.clear_calls();
    run(&fake, &ctx).await;
    assert_eq!(fake.writes().len(), 0, "{:?}", fake.writes());
}
