//! Controller tests: one reconcile at a time against a faked Kubernetes HTTP API.

use baton_test_support as support;

use std::sync::Arc;

use baton_operator::{
    api::BatonConnector,
    controller::{self, Context, reconcile},
    metrics::Metrics,
    resources::deployment::{CONFIG_HASH_ANNOTATION, RESTARTED_AT_ANNOTATION},
};
use serde_json::{Value, json};
use support::fake_kube::{FakeKube, b64};

const BC: &str = "/apis/baton.conductorone.com/v1alpha1/namespaces/ns/batonconnectors/okta";
const DEPLOY: &str = "/apis/apps/v1/namespaces/ns/deployments/okta";
const CREDS: &str = "/api/v1/namespaces/ns/secrets/c1";
const APP: &str = "/api/v1/namespaces/ns/secrets/okta-app";
const SECRET_VALUE: &str = "s3cr3t-value-never-logged";

fn setup() -> (FakeKube, Arc<Context>) {
    let fake = FakeKube::default();
    fake.put(
        BC,
        json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
            "metadata": {"name": "okta", "namespace": "ns"},
            "spec": {
                "connector": "okta",
                "credentials": {"secretRef": {"name": "c1"}},
                "secretRefs": [{"name": "okta-app"}],
                "env": [{"name": "BATON_DOMAIN", "value": "acme.okta.com"}],
            },
        }),
    );
    fake.put(
        CREDS,
        secret(
            "c1",
            &[("BATON_CLIENT_ID", "id@acme.conductor.one/ccc"), ("BATON_CLIENT_SECRET", SECRET_VALUE)],
        ),
    );
    fake.put(APP, secret("okta-app", &[("BATON_API_TOKEN", "token-1")]));
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let c1 = baton_operator::conductorone::ConductorOneClient::new(Default::default()).unwrap();
    let ctx = Arc::new(Context::new(fake.client(), c1, metrics, controller::Config::default()));
    (fake, ctx)
}

fn secret(name: &str, pairs: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> =
        pairs.iter().map(|(k, v)| (k.to_string(), json!(b64(v)))).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "ns"}, "data": data})
}

async fn run(fake: &FakeKube, ctx: &Arc<Context>) -> Result<(), baton_operator::Error> {
    let bc: BatonConnector = serde_json::from_value(fake.get(BC).unwrap()).unwrap();
    reconcile(Arc::new(bc), ctx.clone()).await.map(|_| ())
}

fn make_available(fake: &FakeKube) {
    fake.make_available(DEPLOY);
}

fn found(fake: &FakeKube, type_: &str) -> Value {
    let bc = fake.get(BC).unwrap();
    bc["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap().clone()
}

fn condition(fake: &FakeKube, type_: &str) -> (String, String) {
    let c = found(fake, type_);
    (c["status"].as_str().unwrap().to_string(), c["reason"].as_str().unwrap().to_string())
}

fn config_hash(fake: &FakeKube) -> String {
    fake.get(DEPLOY).unwrap()["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        .as_str()
        .unwrap()
        .to_string()
}

fn deployment_writes(fake: &FakeKube) -> usize {
    fake.writes().iter().filter(|c| c.path == DEPLOY).count()
}

#[tokio::test]
async fn create_applies_deployment_and_reports_progress() {
    let (fake, ctx) = setup();
    run(&fake, &ctx).await.unwrap();
    let writes = fake.writes();
    assert_eq!(writes[0].path, DEPLOY);
    assert!(
        writes[0].query.contains("fieldManager=baton-operator") && writes[0].query.contains("force=true")
    );
    assert_eq!(writes[1].path, format!("{BC}/status"));
    assert!(writes[2].path.contains("/events"), "a Created event: {:?}", writes[2]);
    assert_eq!(writes.len(), 3);
    let d = fake.get(DEPLOY).unwrap();
    assert_eq!(d["metadata"]["labels"]["app"], "baton-okta");
    assert_eq!(d["metadata"]["ownerReferences"][0]["kind"], "BatonConnector");
    assert_eq!(condition(&fake, "Reconciling"), ("True".into(), "Progressing".into()));
    assert_eq!(fake.get(BC).unwrap()["status"]["observedGeneration"], 1);
}

#[tokio::test]
async fn converged_reconcile_writes_nothing() {
    let (fake, ctx) = setup();
    run(&fake, &ctx).await.unwrap();
    make_available(&fake);
    run(&fake, &ctx).await.unwrap();
    assert_eq!(condition(&fake, "Ready"), ("True".into(), "Available".into()));
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(fake.writes().len(), 0, "{:?}", fake.writes());
    assert!(fake.calls().iter().all(|c| c.method == "GET"));
}

#[tokio::test]
async fn spec_change_rolls_once() {
    let (fake, ctx) = setup();
    run(&fake, &ctx).await.unwrap();
    make_available(&fake);
    run(&fake, &ctx).await.unwrap();
    fake.edit(BC, |bc| {
        bc["spec"]["env"][0]["value"] = json!("other.okta.com");
        bc["metadata"]["generation"] = json!(2);
    });
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(deployment_writes(&fake), 1);
    let env = &fake.get(DEPLOY).unwrap()["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(env.as_array().unwrap().iter().any(|e| e["value"] == "other.okta.com"));
    assert_eq!(condition(&fake, "Ready").0, "False", "not ready until the new template is available");
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(deployment_writes(&fake), 0, "the same spec is not applied twice");
}

#[tokio::test]
async fn referenced_secret_change_rolls_once() {
    let (fake, ctx) = setup();
    run(&fake, &ctx).await.unwrap();
    let before = config_hash(&fake);
    fake.put(APP, secret("okta-app", &[("BATON_API_TOKEN", "token-2")]));
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(deployment_writes(&fake), 1);
    assert_ne!(config_hash(&fake), before);
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(deployment_writes(&fake), 0);
}

#[tokio::test]
async fn suspend_changes_nothing_and_says_so() {
    let (fake, ctx) = setup();
    run(&fake, &ctx).await.unwrap();
    fake.edit(BC, |bc| {
        bc["spec"]["suspend"] = json!(true);
        bc["spec"]["env"][0]["value"] = json!("changed.okta.com");
        bc["metadata"]["generation"] = json!(2);
    });
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(deployment_writes(&fake), 0);
    assert_eq!(condition(&fake, "Suspended"), ("True".into(), "Suspended".into()));
    assert_eq!(fake.get(BC).unwrap()["status"]["observedGeneration"], 2);
}

#[tokio::test]
async fn missing_secret_is_reported_and_retried_without_touching_the_workload() {
    let (fake, ctx) = setup();
    fake.edit(BC, |bc| bc["spec"]["secretRefs"][0]["name"] = json!("absent"));
    let err = run(&fake, &ctx).await.unwrap_err();
    assert!(
        matches!(err, baton_operator::Error::Blocked(baton_operator::api::Reason::SecretNotFound)),
        "{err}"
    );
    assert!(fake.get(DEPLOY).is_none());
    assert_eq!(condition(&fake, "Ready"), ("False".into(), "SecretNotFound".into()));
    let events: Vec<_> = fake.writes().into_iter().filter(|c| c.path.contains("/events")).collect();
    assert_eq!(events.len(), 1);
    assert!(events[0].body.contains("Warning") && events[0].body.contains("absent"));
    fake.clear_calls();
    let _ = run(&fake, &ctx).await;
    assert_eq!(fake.writes().len(), 0, "the same failure writes no second status or event");
}

#[tokio::test]
async fn hand_edits_to_owned_fields_are_put_back_and_others_left_alone() {
    let (fake, ctx) = setup();
    run(&fake, &ctx).await.unwrap();
    fake.edit(DEPLOY, |d| {
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
            json!("2026-11-22T00:00:00Z");
    });
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(deployment_writes(&fake), 0, "an annotation the operator does not own is left alone");
    fake.edit(DEPLOY, |d| d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil:latest"));
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(deployment_writes(&fake), 1);
    let image = fake.get(DEPLOY).unwrap()["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    assert_eq!(image, "public.ecr.aws/conductorone/baton-okta:latest");
    assert!(fake.writes().iter().any(|c| c.body.contains("DriftCorrected")));
}

#[tokio::test]
async fn restart_annotation_rolls_once_and_is_echoed() {
    let (fake, ctx) = setup();
    run(&fake, &ctx).await.unwrap();
    fake.edit(BC, |bc| {
        bc["metadata"]["annotations"] =
            json!({"baton.conductorone.com/restart-requested-at": "2026-11-22T01:00:00Z"})
    });
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(deployment_writes(&fake), 1);
    let d = fake.get(DEPLOY).unwrap();
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT_ANNOTATION],
        "2026-11-22T01:00:00Z"
    );
    assert_eq!(fake.get(BC).unwrap()["status"]["handledRequests"]["restart"], "2026-11-22T01:00:00Z");
    assert!(
        fake.get(BC).unwrap()["metadata"]["annotations"]["baton.conductorone.com/restart-requested-at"]
            .is_string()
    );
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(deployment_writes(&fake), 0);
}

#[tokio::test]
async fn foreign_deployment_with_our_name_is_not_taken_over() {
    let (fake, ctx) = setup();
    fake.put(DEPLOY, json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "okta", "namespace": "ns"}, "spec": {}}));
    let err = run(&fake, &ctx).await.unwrap_err();
    assert!(matches!(err, baton_operator::Error::Blocked(baton_operator::api::Reason::OwnershipConflict)));
    assert_eq!(deployment_writes(&fake), 0);
    assert_eq!(condition(&fake, "Stalled"), ("True".into(), "OwnershipConflict".into()));
}

#[tokio::test]
async fn no_request_carries_a_secret_value() {
    let (fake, ctx) = setup();
    run(&fake, &ctx).await.unwrap();
    make_available(&fake);
    run(&fake, &ctx).await.unwrap();
    fake.edit(BC, |bc| bc["spec"]["secretRefs"][0]["name"] = json!("absent"));
    let _ = run(&fake, &ctx).await;
    for call in fake.calls() {
        assert!(!call.body.contains(SECRET_VALUE) && !call.body.contains(&b64(SECRET_VALUE)), "{call:?}");
    }
}

#[tokio::test]
async fn unreadable_resource_is_reported_once_and_skipped() {
    let (fake, ctx) = setup();
    // Written for a newer CRD: a mode this operator does not know.
    fake.edit(BC, |bc| bc["spec"]["mode"] = json!("Batch"));
    let guard: controller::store::stored::Guarded = serde_json::from_value(fake.get(BC).unwrap()).unwrap();
    assert!(guard.0.is_err());
    let stored = Arc::new(controller::Stored::from(guard));
    controller::reconcile_stored(stored.clone(), ctx.clone()).await.unwrap();
    assert!(fake.get(DEPLOY).is_none());
    assert_eq!(condition(&fake, "Stalled"), ("True".into(), "InvalidSpec".into()));
    let message = fake.get(BC).unwrap()["status"]["conditions"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("Batch"), "{message}");
    assert!(fake.writes().iter().any(|c| c.path.contains("/events") && c.body.contains("InvalidSpec")));
    fake.clear_calls();
    controller::reconcile_stored(stored, ctx).await.unwrap();
    assert!(fake.writes().is_empty(), "reported once: {:?}", fake.writes());
}

/// Settings baton-okta would refuse at start: nothing is rolled out, the status names the field and
/// its variable with one event, and once fixed the connector is created as usual. A running
/// connector given broken settings keeps running on its last good ones.
#[tokio::test]
async fn settings_the_sdk_would_refuse_are_reported_and_never_rolled_out() {
    let (fake, ctx) = setup();
    fake.put(APP, secret("okta-app", &[("BATON_OKTA_PRIVATE_KEY_ID", "kid")]));
    let err = run(&fake, &ctx).await.unwrap_err();
    assert!(
        matches!(err, baton_operator::Error::Blocked(baton_operator::api::Reason::ConfigInvalid)),
        "{err}"
    );
    assert!(fake.get(DEPLOY).is_none(), "no Deployment for settings the SDK would refuse");
    assert_eq!(condition(&fake, "Ready"), ("False".into(), "ConfigInvalid".into()));
    assert_eq!(condition(&fake, "Stalled"), ("True".into(), "ConfigInvalid".into()));
    assert_eq!(condition(&fake, "ConfigValid"), ("False".into(), "ConfigInvalid".into()));
    let ready = message(&fake, "Ready");
    for part in ["api-token", "BATON_API_TOKEN", "api-token-group", "private-key-group"] {
        assert!(ready.contains(part), "{part} not in {ready}");
    }
    let events: Vec<_> = fake.writes().into_iter().filter(|c| c.path.contains("/events")).collect();
    assert_eq!(events.len(), 1, "one event: {events:?}");
    assert!(events[0].body.contains("Warning") && events[0].body.contains("ConfigInvalid"));
    fake.clear_calls();
    let _ = run(&fake, &ctx).await;
    assert_eq!(fake.writes().len(), 0, "the same finding writes no second status or event");

    fake.put(APP, secret("okta-app", &[("BATON_API_TOKEN", "token-1")]));
    run(&fake, &ctx).await.unwrap();
    assert!(fake.get(DEPLOY).is_some());
    assert_eq!(condition(&fake, "ConfigValid"), ("True".into(), "Validated".into()));
    make_available(&fake);
    run(&fake, &ctx).await.unwrap();
    assert_eq!(condition(&fake, "Ready"), ("True".into(), "Available".into()));

    // A typo on the running connector: the Deployment is left as it is.
    fake.edit(BC, |bc| {
        bc["spec"]["env"][0]["name"] = json!("BATON_DOMIAN");
        bc["metadata"]["generation"] = json!(2);
    });
    fake.clear_calls();
    assert!(run(&fake, &ctx).await.is_err());
    assert_eq!(deployment_writes(&fake), 0);
    assert_eq!(condition(&fake, "Ready"), ("False".into(), "ConfigInvalid".into()));
    assert_eq!(condition(&fake, "WorkloadAvailable"), ("True".into(), "Available".into()));
    assert!(message(&fake, "Ready").contains("did you mean BATON_DOMAIN"), "{}", message(&fake, "Ready"));
}

/// A connector that is not in the catalog runs exactly as before, and its status says it is not
/// validated.
#[tokio::test]
async fn a_custom_connector_runs_unvalidated_and_says_so() {
    let (fake, ctx) = setup();
    fake.edit(BC, |bc| {
        bc["spec"]["connector"] = json!("in-house");
        bc["spec"]["env"] = json!([{"name": "BATON_ANYTHING", "value": "x"}]);
    });
    run(&fake, &ctx).await.unwrap();
    assert!(fake.get(DEPLOY).is_some());
    assert_eq!(condition(&fake, "ConfigValid"), ("Unknown".into(), "NotCatalogued".into()));
    make_available(&fake);
    run(&fake, &ctx).await.unwrap();
    assert_eq!(condition(&fake, "Ready"), ("True".into(), "Available".into()));
}

/// OneShot mode: no CronJob for settings the SDK would refuse; suspending still reaches the CronJob.
#[tokio::test]
async fn oneshot_settings_the_sdk_would_refuse_get_no_cronjob() {
    const CRONJOB: &str = "/apis/batch/v1/namespaces/ns/cronjobs/okta";
    let (fake, ctx) = setup();
    to_oneshot(&fake);
    fake.edit(BC, |bc| bc["spec"]["env"] = json!([]));
    let err = run(&fake, &ctx).await.unwrap_err();
    assert!(
        matches!(err, baton_operator::Error::Blocked(baton_operator::api::Reason::ConfigInvalid)),
        "{err}"
    );
    assert!(fake.get(CRONJOB).is_none());
    assert_eq!(condition(&fake, "Ready"), ("False".into(), "ConfigInvalid".into()));
    assert!(message(&fake, "ConfigValid").contains("BATON_DOMAIN"));
    fake.edit(BC, |bc| bc["spec"]["env"] = json!([{"name": "BATON_DOMAIN", "value": "acme.okta.com"}]));
    run(&fake, &ctx).await.unwrap();
    assert!(fake.get(CRONJOB).is_some());
}

/// A hand-written CronJob of the resource's name: a conflict without the adoption annotation, taken
/// over in place with it (no controller owns it, and a CronJob has no selector to keep).
#[tokio::test]
async fn a_hand_written_cronjob_is_adopted_in_place_only_when_asked() {
    const CRONJOB: &str = "/apis/batch/v1/namespaces/ns/cronjobs/okta";
    let (fake, ctx) = setup();
    to_oneshot(&fake);
    fake.put(
        CRONJOB,
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "okta", "namespace": "ns"},
               "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}),
    );
    let err = run(&fake, &ctx).await.unwrap_err();
    assert!(
        matches!(err, baton_operator::Error::Blocked(baton_operator::api::Reason::OwnershipConflict)),
        "{err}"
    );
    assert_eq!(fake.writes().iter().filter(|c| c.path == CRONJOB).count(), 0);
    fake.edit(BC, |bc| {
        bc["metadata"]["annotations"] = json!({"baton.conductorone.com/adopt-existing": "true"})
    });
    fake.clear_calls();
    run(&fake, &ctx).await.unwrap();
    assert_eq!(fake.writes().iter().filter(|c| c.path == CRONJOB).count(), 1, "one apply takes it over");
    let cronjob = fake.get(CRONJOB).unwrap();
    assert_eq!(cronjob["metadata"]["ownerReferences"][0]["kind"], "BatonConnector");
    assert_eq!(cronjob["spec"]["schedule"], "0 3 * * *");
}

/// The resource as a OneShot connector that uploads to S3.
fn to_oneshot(fake: &FakeKube) {
    fake.edit(BC, |bc| {
        bc["spec"]["mode"] = json!("OneShot");
        bc["spec"]["schedule"] = json!("0 3 * * *");
        bc["spec"]["output"] = json!({"s3": {"bucket": "uploads", "region": "us-west-2"}});
        bc["spec"].as_object_mut().unwrap().remove("credentials");
    });
}

fn message(fake: &FakeKube, type_: &str) -> String {
    found(fake, type_)["message"].as_str().unwrap().to_string()
}
