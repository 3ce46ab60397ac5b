//! Managed credentials through the controller, against a faked Kubernetes API and the fake
//! ConductorOne server: issue, rotation, revocation, deletion, and a crash at every write.

use baton_test_support as support;

use std::{sync::Arc, time::Duration};

use baton_operator::{api::BatonConnector, controller::reconcile};
use serde_json::json;
use support::{
    fake_kube::b64,
    harness::{self, APP, CONNECTOR},
    world::{BC, DEPLOY, ROTATE, SECRETS, World, converge, poll},
};

#[tokio::test]
async fn initial_issue_stores_the_credential_and_runs_the_connector() {
    let w = World::new("1s").await;
    w.reconcile().await.unwrap();
    let bc = w.kube.get(BC).unwrap();
    assert_eq!(bc["metadata"]["finalizers"][0], "baton.conductorone.com/revoke-credentials");
    assert_eq!(w.c1.count("POST", ROTATE), 1);
    let minted = w.c1.credentials();
    assert_eq!(minted.len(), 1);
    let secret = w.kube.get(&format!("{SECRETS}/okta-c1-credentials-1")).unwrap();
    assert_eq!(secret["metadata"]["ownerReferences"][0]["kind"], "BatonConnector");
    assert_eq!(w.credential_in_secret("okta-c1-credentials-1").as_deref(), Some(minted[0].id.as_str()));
    let keys: Vec<&String> = secret["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["BATON_CLIENT_ID", "BATON_CLIENT_SECRET"],
        "the Secret holds the credentials and nothing else"
    );
    assert_eq!(w.secret_in_use().as_deref(), Some("okta-c1-credentials-1"));
    assert_eq!(w.status()["credentials"]["rotation"]["phase"], "Rolling");

    w.make_available();
    w.reconcile().await.unwrap();
    let s = w.status();
    assert!(s["credentials"]["rotation"].is_null(), "{s}");
    assert_eq!(s["credentials"]["credentialId"], minted[0].id.as_str());
    assert!(s["credentials"]["nextRotationAt"].is_string());
    let ready = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["status"], "True", "{s}");

    // Converged: a restarted operator writes nothing and changes nothing in ConductorOne (it only
    // reads the sync status).
    w.kube.clear_calls();
    let changes =
        |w: &World| w.c1.calls().iter().filter(|c| c.method != "GET" && c.path != "/auth/v1/token").count();
    let before = changes(&w);
    w.reconcile().await.unwrap();
    assert!(w.kube.writes().is_empty(), "{:?}", w.kube.writes());
    assert_eq!(changes(&w), before);
}

#[tokio::test]
async fn rotate_request_rolls_once_and_revokes_only_after_the_new_pod_is_up() {
    let w = World::new("1s").await;
    converge(&w).await;
    let old = w.live_credentials();
    assert_eq!(old.len(), 1);
    w.kube.edit(BC, |bc| {
        bc["metadata"]["annotations"] =
            json!({"baton.conductorone.com/rotate-requested-at": "2026-11-22T10:00:00Z"})
    });
    w.kube.clear_calls();
    w.reconcile().await.unwrap();
    assert_eq!(w.c1.credentials().len(), 2);
    assert_eq!(w.secret_in_use().as_deref(), Some("okta-c1-credentials-2"));
    assert_eq!(w.kube.writes().iter().filter(|c| c.path == DEPLOY).count(), 1, "one rollout");
    assert_eq!(w.status()["handledRequests"]["rotate"], "2026-11-22T10:00:00Z");

    // The new pod is not available yet: nothing is revoked however often the operator looks.
    for _ in 0..3 {
        w.reconcile().await.unwrap();
    }
    assert_eq!(w.live_credentials().len(), 2);

    w.make_available();
    w.reconcile().await.unwrap();
    assert_eq!(w.status()["credentials"]["rotation"]["phase"], "GracePeriod");
    assert_eq!(w.live_credentials().len(), 2, "the old credential outlives the grace period");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.reconcile().await.unwrap();
    let live = w.live_credentials();
    assert_eq!(live.len(), 1);
    assert_ne!(live[0], old[0]);
    assert!(w.kube.get(&format!("{SECRETS}/okta-c1-credentials-1")).is_none(), "old revision cleaned up");
    assert!(w.status()["credentials"]["rotation"].is_null());
    assert!(w.events().iter().any(|e| e.contains("CredentialRevoked")));

    // Handled once: the annotation stays and causes nothing more.
    w.kube.clear_calls();
    w.reconcile().await.unwrap();
    assert_eq!(w.c1.credentials().len(), 2);
    assert!(
        w.kube.get(BC).unwrap()["metadata"]["annotations"]["baton.conductorone.com/rotate-requested-at"]
            .is_string()
    );
}

#[tokio::test]
async fn a_crash_before_any_write_never_loses_or_leaks_a_credential() {
    // Writes fail from the n-th on (the operator died there); a fresh operator then finishes the job.
    for n in 0..16 {
        let w = World::new("0s").await;
        converge(&w).await;
        w.kube.edit(BC, |bc| {
            bc["metadata"]["annotations"] = json!({"baton.conductorone.com/rotate-requested-at": "now"})
        });
        w.kube.fail_writes_from(n);
        for _ in 0..3 {
            let _ = w.reconcile().await;
            w.make_available();
        }
        w.kube.heal();
        converge(&w).await;
        let s = w.status();
        let current = s["credentials"]["credentialId"].as_str().unwrap().to_string();
        let live = w.live_credentials();
        let unrecorded = s["credentials"]["rotation"]["unrecordedAttempts"].as_i64().unwrap_or(0);
        let reported = w.events().iter().filter(|e| e.contains("CredentialPossiblyOrphaned")).count();
        // Everything minted is either in use or revoked, except what was reported as possibly orphaned.
        assert!(live.contains(&current), "crash at write {n}: current credential revoked: {s}");
        assert!(
            live.len() == 1 || live.len() - 1 <= reported + unrecorded as usize,
            "crash at write {n}: {} live credentials, {reported} reported: {s}",
            live.len()
        );
        assert_eq!(
            w.secret_in_use(),
            s["credentials"]["secretName"].as_str().map(str::to_string),
            "crash at write {n}"
        );
        assert_eq!(w.credential_in_secret(s["credentials"]["secretName"].as_str().unwrap()), Some(current));
    }
}

#[tokio::test]
async fn resuming_from_a_stored_reply_does_not_mint_again() {
    let w = World::new("1s").await;
    // Writes: finalizer, rotation start, in-flight mark, Secret; the operator died before recording
    // the reply.
    w.kube.fail_writes_from(4);
    let _ = w.reconcile().await;
    w.kube.heal();
    assert_eq!(w.c1.count("POST", ROTATE), 1);
    assert!(w.credential_in_secret("okta-c1-credentials-1").is_some());
    assert!(w.status()["credentials"]["rotation"]["issueInFlightSince"].is_string());
    w.reconcile().await.unwrap();
    assert_eq!(w.c1.count("POST", ROTATE), 1, "the stored reply is adopted");
    assert_eq!(w.status()["credentials"]["rotation"]["phase"], "Rolling");
}

#[tokio::test]
async fn lost_reply_is_reported_with_an_event_and_a_condition() {
    let w = World::new("1s").await;
    // Writes: finalizer, rotation start, in-flight mark; the reply never landed (the Secret write
    // is the one that fails).
    w.kube.fail_writes_from(3);
    let _ = w.reconcile().await;
    w.kube.heal();
    let minted = w.c1.count("POST", ROTATE);
    assert_eq!(minted, 1);
    w.reconcile().await.unwrap();
    assert!(w.events().iter().any(|e| e.contains("CredentialPossiblyOrphaned")));
    let s = w.status();
    assert_eq!(s["credentials"]["rotation"]["unrecordedAttempts"], 1);
    let creds = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "CredentialsReady")
        .cloned()
        .unwrap();
    assert!(creds["message"].as_str().unwrap().contains("may have left an unused credential"), "{creds}");
}

#[tokio::test]
async fn deletion_revokes_every_minted_credential() {
    let w = World::new("1s").await;
    converge(&w).await;
    assert_eq!(w.live_credentials().len(), 1);
    w.kube.edit(BC, |bc| bc["metadata"]["deletionTimestamp"] = json!("2026-11-22T00:00:00Z"));
    w.reconcile().await.unwrap();
    assert!(w.live_credentials().is_empty());
    assert!(w.kube.get(BC).unwrap()["metadata"]["finalizers"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn orphan_policy_keeps_credentials_and_needs_no_finalizer() {
    let w = World::new("1s").await;
    w.kube.edit(BC, |bc| bc["spec"]["deletionPolicy"] = json!("Orphan"));
    converge(&w).await;
    assert!(w.kube.get(BC).unwrap()["metadata"]["finalizers"].is_null());
    w.kube.edit(BC, |bc| bc["metadata"]["deletionTimestamp"] = json!("2026-11-22T00:00:00Z"));
    w.reconcile().await.unwrap();
    assert_eq!(w.live_credentials().len(), 1);
}

#[tokio::test]
async fn unauthorized_api_credentials_stall_without_a_retry_storm() {
    let w = World::new("1s").await;
    w.kube.edit(&format!("{SECRETS}/c1-api"), |s| {
        s["data"]["clientSecret"] = json!(b64("secret-token:conductorone.com:v1:e30"))
    });
    let err = w.reconcile().await.unwrap_err();
    assert!(matches!(err, baton_operator::Error::Blocked(_)), "{err}");
    let s = w.status();
    let stalled =
        s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Stalled").cloned().unwrap();
    assert_eq!(stalled["status"], "True", "{s}");
    assert_eq!(w.c1.count("POST", ROTATE), 0);
    assert!(w.kube.get(DEPLOY).is_none());
}

#[tokio::test]
async fn rate_limited_issue_is_retried_later_not_hammered() {
    let w = World::new("1s").await;
    use support::fake_conductorone::{Fault, FaultRule};
    w.c1.inject(FaultRule::new(Fault::rate_limited("1")).on("POST", ROTATE).times(100));
    let started = std::time::Instant::now();
    let err = w.reconcile().await.unwrap_err();
    assert!(matches!(err, baton_operator::Error::Blocked(baton_operator::api::Reason::RateLimited)), "{err}");
    // One call and its bounded retries, each honouring Retry-After.
    let attempts = w.c1.count("POST", ROTATE);
    assert!(attempts <= 1 + harness::config().max_retries as usize, "{attempts} attempts");
    assert!(started.elapsed() >= Duration::from_secs(attempts as u64 - 1));
    let s = w.status();
    assert!(s["credentials"]["rotation"]["issueInFlightSince"].is_null(), "a 429 proves nothing was minted");
    let ready = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").cloned().unwrap();
    assert_eq!(ready["reason"], "RateLimited");
}

#[tokio::test]
async fn client_secret_never_leaves_the_secret() {
    let w = World::new("0s").await;
    converge(&w).await;
    let secret = w.kube.get(&format!("{SECRETS}/okta-c1-credentials-1")).unwrap();
    let value = secret["data"]["BATON_CLIENT_SECRET"].as_str().unwrap().to_string();
    use base64::Engine;
    let plain = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&value).unwrap()).unwrap();
    for call in w.kube.calls() {
        if call.method == "POST" && call.path == SECRETS {
            continue; // the one write that stores it
        }
        assert!(
            !call.body.contains(&value) && !call.body.contains(&plain),
            "leaked in {} {}",
            call.method,
            call.path
        );
    }
}

#[tokio::test]
async fn sync_status_is_polled_on_its_own_cadence_even_when_failing() {
    use support::fake_conductorone::{Fault, FaultRule};
    let w = World::new("1s").await;
    converge(&w).await;
    let path = format!("/api/v1/apps/{APP}/connectors/{CONNECTOR}");
    // One operator process reconciling often: the poll result is reused until the interval passes.
    let ctx = w.operator();
    w.c1.inject(FaultRule::new(Fault::error(500, 13, "internal")).on("GET", &path).times(1000));
    let before = w.c1.count("GET", &path);
    for _ in 0..5 {
        poll(&ctx, &w.kube).await;
        let bc: BatonConnector = serde_json::from_value(w.kube.get(BC).unwrap()).unwrap();
        let _ = reconcile(Arc::new(bc), ctx.clone()).await;
    }
    let polls = w.c1.count("GET", &path) - before;
    assert!(polls <= 1 + harness::config().max_retries as usize, "{polls} requests for one poll interval");
    let s = w.status();
    let synced = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Synced").cloned().unwrap();
    assert_eq!(synced["status"], "False", "{synced}");
    assert_eq!(synced["reason"], "ServerError");
}

#[tokio::test]
async fn unknown_sync_states_are_tolerated() {
    let w = World::new("1s").await;
    w.c1.set_sync_status(
        APP,
        CONNECTOR,
        json!({"status": "SYNC_STATUS_SOMETHING_NEW", "completedAt": null, "extra": 1}),
    );
    converge(&w).await;
    assert_eq!(w.status()["sync"]["state"], "Unknown");
}

/// Collects everything the operator logs, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs_events_or_status() {
    // tracing caches each callsite's interest process-wide; while one dispatcher exists it asks the
    // registering thread's, so a sibling test thread without a subscriber would cache "never" and blind
    // this capture (seen about once in six runs). With a second live dispatcher, created first, every
    // interest is the union of both, and the capture below always sees its events.
    let _anchor = tracing::Dispatch::new(tracing_subscriber::registry());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let w = World::new("0s").await;
    converge(&w).await;
    let first = w.kube.get(&format!("{SECRETS}/okta-c1-credentials-1")).unwrap();
    let mut secrets = vec![first["data"]["BATON_CLIENT_SECRET"].as_str().unwrap().to_string()];
    w.kube.edit(BC, |bc| {
        bc["metadata"]["annotations"] = json!({"baton.conductorone.com/rotate-requested-at": "now"})
    });
    converge(&w).await;
    // A failing ConductorOne and a deletion log errors too.
    use support::fake_conductorone::{Fault, FaultRule};
    w.c1.inject(FaultRule::new(Fault::error(500, 13, "internal")).times(100));
    w.kube.edit(BC, |bc| bc["metadata"]["deletionTimestamp"] = json!("2026-11-22T00:00:00Z"));
    let _ = w.reconcile().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("credential rotation started"), "the capture works");
    let second = w.kube.get(&format!("{SECRETS}/okta-c1-credentials-2")).unwrap();
    secrets.push(second["data"]["BATON_CLIENT_SECRET"].as_str().unwrap().to_string());
    let api = w.kube.get(&format!("{SECRETS}/c1-api")).unwrap();
    secrets.push(api["data"]["clientSecret"].as_str().unwrap().to_string());
    let status = w.status().to_string();
    let events = w.events().join("\n");
    use base64::Engine;
    for encoded in secrets {
        let plain =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&encoded).unwrap()).unwrap();
        // The secret's JWK part is what would leak even if the prefix were cut.
        let key_part = plain.rsplit(':').next().unwrap().to_string();
        for (what, text) in [("logs", &logs), ("status", &status), ("events", &events)] {
            assert!(
                !text.contains(&key_part) && !text.contains(&encoded),
                "a client secret is in the {what}"
            );
        }
    }
}

#[tokio::test]
async fn leaving_managed_credentials_revokes_what_was_minted_once_the_new_pod_is_up() {
    let w = World::new("0s").await;
    converge(&w).await;
    let minted = w.live_credentials();
    assert_eq!(minted.len(), 1);
    w.kube.put(
        &format!("{SECRETS}/user-c1"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "user-c1", "namespace": "ns"},
               "data": {"BATON_CLIENT_ID": b64("user@t.conductor.one/ccc"), "BATON_CLIENT_SECRET": b64("user-secret")}}),
    );
    w.kube.edit(BC, |bc| {
        bc["spec"]["credentials"] = json!({"secretRef": {"name": "user-c1"}});
        bc["metadata"]["generation"] = json!(2);
    });
    w.reconcile().await.unwrap();
    assert_eq!(w.secret_in_use().as_deref(), Some("user-c1"));
    assert_eq!(w.live_credentials(), minted, "not revoked while the old pod may still use it");
    assert_eq!(w.status()["credentials"]["pendingRevocations"], json!(minted));
    assert!(w.kube.get(BC).unwrap()["metadata"]["finalizers"][0].is_string(), "deletion would still revoke");

    w.make_available();
    w.reconcile().await.unwrap();
    assert!(w.live_credentials().is_empty());
    assert!(w.kube.get(&format!("{SECRETS}/okta-c1-credentials-1")).is_none(), "revision Secret deleted");
    assert!(w.kube.get(&format!("{SECRETS}/user-c1")).is_some(), "the user's Secret is left alone");
    assert!(w.status()["credentials"]["pendingRevocations"].is_null());
    // Nothing left to revoke: the finalizer goes, and a converged resource writes nothing.
    w.reconcile().await.unwrap();
    assert!(w.kube.get(BC).unwrap()["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty()));
    w.kube.clear_calls();
    w.reconcile().await.unwrap();
    assert!(w.kube.writes().is_empty(), "{:?}", w.kube.writes());
}

#[tokio::test]
async fn connectors_of_one_app_are_read_with_one_list_request() {
    let w = World::new("1s").await;
    w.c1.add_connector(APP, "second-connector", "okta");
    let ctx = w.operator();
    let first: BatonConnector = serde_json::from_value(w.kube.get(BC).unwrap()).unwrap();
    let mut second = first.clone();
    second.metadata.name = Some("okta-second".into());
    second.spec.conductor_one.as_mut().unwrap().connector_id = Some("second-connector".into());
    ctx.sync_poller.track(&first, false);
    ctx.sync_poller.track(&second, false);
    ctx.sync_poller.poll_due(&ctx.poller_io()).await;
    assert_eq!(w.c1.count("GET", &format!("/api/v1/apps/{APP}/connectors")), 1);
    assert_eq!(w.c1.count("GET", &harness::connector_path()), 0);
    let polls = ctx.sync_poller.results.lock().unwrap();
    assert_eq!(polls.len(), 2);
    assert!(polls.values().all(|p| p.result.is_ok()), "{polls:?}");
}

fn calls_to(w: &World, action: &str) -> usize {
    w.c1.count("POST", &format!("/api/v1/apps/{APP}/connectors/{CONNECTOR}/{action}"))
}

fn condition_reason(w: &World, type_: &str) -> String {
    let s = w.status();
    let c =
        s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).cloned().unwrap_or_default();
    c["reason"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_sync_request_queues_one_sync_per_value() {
    let w = World::new("1s").await;
    converge(&w).await;
    w.kube.edit(BC, |bc| {
        bc["metadata"]["annotations"] =
            json!({"baton.conductorone.com/sync-requested-at": "2026-11-30T13:00:00Z"})
    });
    w.reconcile().await.unwrap();
    w.reconcile().await.unwrap();
    assert_eq!(calls_to(&w, "force_sync"), 1, "one ForceSync per request value");
    assert_eq!(w.status()["handledRequests"]["sync"], "2026-11-30T13:00:00Z");
    assert!(w.events().iter().any(|e| e.contains("SyncRequested")));
    w.kube.edit(BC, |bc| {
        bc["metadata"]["annotations"] =
            json!({"baton.conductorone.com/sync-requested-at": "2026-11-30T14:00:00Z"})
    });
    w.reconcile().await.unwrap();
    assert_eq!(calls_to(&w, "force_sync"), 2);
}

#[tokio::test]
async fn suspend_pauses_syncs_once_and_resume_resumes_them() {
    let w = World::new("1s").await;
    converge(&w).await;
    w.kube.edit(BC, |bc| bc["spec"]["suspend"] = json!(true));
    w.reconcile().await.unwrap();
    w.reconcile().await.unwrap();
    assert_eq!(calls_to(&w, "pause"), 1);
    assert!(w.status()["conductorOne"]["pausedAt"].is_string(), "{}", w.status());
    // ConductorOne now reports the connector's syncs as disabled; status and Synced say so.
    w.reconcile().await.unwrap();
    assert!(w.status()["sync"]["disabledAt"].is_string(), "{}", w.status());
    assert_eq!(w.status()["sync"]["disabledReason"], "paused by a user");
    assert_eq!(condition_reason(&w, "Synced"), "SyncDisabled");
    w.kube.edit(BC, |bc| bc["spec"]["suspend"] = json!(false));
    w.reconcile().await.unwrap();
    w.reconcile().await.unwrap();
    assert_eq!(calls_to(&w, "resume"), 1);
    assert!(w.status()["conductorOne"].is_null(), "{}", w.status());
    w.reconcile().await.unwrap();
    assert_eq!(condition_reason(&w, "Synced"), "Synced");
}

#[tokio::test]
async fn a_pause_made_by_someone_else_is_left_alone() {
    let w = World::new("1s").await;
    converge(&w).await;
    // Suspended without pausing: the operator makes no pause, and so resumes nothing afterwards.
    w.kube.edit(BC, |bc| {
        bc["spec"]["suspend"] = json!(true);
        bc["spec"]["conductorOne"]["pauseWhenSuspended"] = json!(false);
    });
    w.reconcile().await.unwrap();
    w.kube.edit(BC, |bc| bc["spec"]["suspend"] = json!(false));
    w.reconcile().await.unwrap();
    assert_eq!((calls_to(&w, "pause"), calls_to(&w, "resume")), (0, 0));
}

/// `render` shows, for a managed-credentials connector, the Secret revision the controller creates
/// and the Deployment reading it. The two build the Secret's identity separately (the controller
/// module is being reworked); this pins them together: name, labels, annotation keys, owner, keys.
#[tokio::test]
async fn render_shows_the_secret_and_pod_the_controller_creates() {
    let w = World::new("1s").await;
    w.reconcile().await.unwrap();
    let live_secret = w.kube.get(&format!("{SECRETS}/okta-c1-credentials-1")).unwrap();
    let live_deploy = w.kube.get(DEPLOY).unwrap();
    let mut bc = w.kube.get(BC).unwrap();
    // The resource as a person writes it: no status, so render numbers the first revision itself.
    bc.as_object_mut().unwrap().remove("status");
    // Render reads the Secrets the resource references from the same file.
    let app = w.kube.get(&format!("{SECRETS}/okta-app")).unwrap();
    let file =
        format!("{}---\n{}", serde_yaml::to_string(&app).unwrap(), serde_yaml::to_string(&bc).unwrap());
    let out = baton_operator::render::render(&file, "ns").unwrap();
    let docs: Vec<serde_json::Value> = out.split("---\n").map(|d| serde_yaml::from_str(d).unwrap()).collect();
    let (secret, deploy) = (&docs[0], &docs[1]);
    for field in ["name", "namespace", "labels", "ownerReferences"] {
        assert_eq!(secret["metadata"][field], live_secret["metadata"][field], "metadata.{field}");
    }
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&secret["metadata"]["annotations"]).len(), 2);
    for key in keys(&secret["metadata"]["annotations"]) {
        assert!(live_secret["metadata"]["annotations"].get(&key).is_some(), "the controller writes no {key}");
    }
    assert_eq!(keys(&secret["stringData"]), keys(&live_secret["data"]));
    assert_eq!(secret["type"], live_secret["type"]);
    let pod = |d: &serde_json::Value| d["spec"]["template"]["spec"].clone();
    assert_eq!(pod(deploy), pod(&live_deploy), "the rendered pod is the one the controller applied");
}

/// A running operator reads Secrets from its caches, and knows the revision it just stored without
/// reading it back: neither a new managed connector nor a rotation's rollout GETs a Secret.
#[tokio::test]
async fn a_new_managed_connector_and_a_rollout_get_no_secret() {
    let w = World::new("1s").await;
    w.kube.clear_calls();
    for _ in 0..6 {
        w.reconcile_watched().await.unwrap();
        w.make_available();
    }
    assert!(w.status()["credentials"]["credentialId"].is_string(), "{}", w.status());
    assert_eq!(w.secret_in_use().as_deref(), Some("okta-c1-credentials-1"));
    assert_eq!(w.secret_gets(), 0, "Secret GETs while a new managed connector was minted and rolled out");

    w.kube.edit(BC, |bc| {
        bc["metadata"]["annotations"] =
            json!({"baton.conductorone.com/rotate-requested-at": "2026-11-22T10:00:00Z"})
    });
    w.kube.clear_calls();
    w.reconcile_watched().await.unwrap();
    assert_eq!(w.secret_in_use().as_deref(), Some("okta-c1-credentials-2"));
    for _ in 0..3 {
        w.reconcile_watched().await.unwrap();
    }
    w.make_available();
    w.reconcile_watched().await.unwrap();
    assert_eq!(w.status()["credentials"]["rotation"]["phase"], "GracePeriod");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.reconcile_watched().await.unwrap();
    assert!(w.status()["credentials"]["rotation"].is_null(), "{}", w.status());
    assert_eq!(w.secret_gets(), 0, "Secret GETs during the rotation's rollout");
}
