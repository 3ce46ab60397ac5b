//! Zero-click onboarding through the controller, against a faked Kubernetes API and the fake
//! ConductorOne: the operator creates the app and connector a manifest leaves out, exactly once
//! (crash-tested), mints credentials for them, and deletes only what it created.

use baton_test_support as support;

use baton_operator::api::BATON_CATALOG_ID;
use serde_json::{Value, json};
use support::{
    fake_conductorone::{Fault, FaultRule},
    harness::{APP, CONNECTOR},
    world::{BC, World, converge},
};

const APPS: &str = "/api/v1/apps";

/// A world whose BatonConnector names no ids: the operator creates app and connector.
async fn zero_click(conductor_one: Value) -> World {
    let w = World::new("1s").await;
    let mut c1 = conductor_one;
    c1["apiCredentialsSecretRef"] = json!({"name": "c1-api"});
    w.kube.edit(BC, |bc| bc["spec"]["conductorOne"] = c1);
    w
}

async fn from_scratch() -> World {
    zero_click(json!({"app": {"displayName": "Okta", "description": "HR's Okta"}})).await
}

fn recorded(w: &World) -> (String, String) {
    let c1 = &w.status()["conductorOne"];
    (c1["appId"].as_str().unwrap_or_default().into(), c1["connectorId"].as_str().unwrap_or_default().into())
}

fn uid(w: &World) -> String {
    w.kube.get(BC).unwrap()["metadata"]["uid"].as_str().unwrap().to_string()
}

/// Apps and connectors in the fake that carry this resource's marker.
fn marked(w: &World) -> (Vec<String>, Vec<(String, String)>) {
    let marker = format!("uid={}", uid(w));
    let apps: Vec<String> =
        w.c1.apps()
            .into_iter()
            .filter(|a| a.deleted_at.is_none() && a.description.ends_with(&marker))
            .map(|a| a.id)
            .collect();
    let mut connectors = Vec::new();
    for app in w.c1.apps().into_iter().filter(|a| a.deleted_at.is_none()) {
        for id in w.c1.connector_ids(&app.id) {
            let (description, _, _) = w.c1.connector_details(&app.id, &id).unwrap();
            if description.ends_with(&marker) {
                connectors.push((app.id.clone(), id));
            }
        }
    }
    (apps, connectors)
}

fn condition(w: &World, type_: &str) -> Value {
    w.status()["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or_default()
}

fn delete(w: &World) {
    w.kube.edit(BC, |bc| bc["metadata"]["deletionTimestamp"] = json!("2026-11-30T00:00:00Z"));
}

#[tokio::test]
async fn a_manifest_without_ids_gets_an_app_a_connector_and_credentials_for_them() {
    let w = from_scratch().await;
    converge(&w).await;
    let (app, connector) = recorded(&w);
    let c1 = w.status()["conductorOne"].clone();
    assert_eq!(
        (c1["createdApp"].as_bool(), c1["createdConnector"].as_bool()),
        (Some(true), Some(true)),
        "{c1}"
    );
    let created_app = w.c1.app(&app).expect("the recorded app exists");
    assert_eq!(created_app.display_name, "Okta");
    assert!(created_app.description.starts_with("HR's Okta\n\n"), "{}", created_app.description);
    let (description, catalog, owners) =
        w.c1.connector_details(&app, &connector).expect("the recorded connector exists");
    assert!(description.contains(&format!("uid={}", uid(&w))), "{description}");
    assert_eq!(catalog, BATON_CATALOG_ID);
    assert!(owners.is_empty());
    // The credential in use was minted for the created connector.
    let id = w.status()["credentials"]["credentialId"].as_str().unwrap().to_string();
    let credential = w.c1.credential(&id).unwrap();
    assert_eq!(
        (credential.app_id.as_str(), credential.connector_id.as_str()),
        (app.as_str(), connector.as_str())
    );
    assert!(w.events().iter().any(|e| e.contains("ConnectorCreated")));
    // More reconciles create nothing more.
    for _ in 0..3 {
        w.reconcile().await.unwrap();
    }
    assert_eq!(w.c1.count("POST", APPS), 1);
    assert_eq!(w.c1.count("POST", &format!("{APPS}/{app}/connectors")), 1);
}

#[tokio::test]
async fn an_existing_app_gets_a_connector_described_by_the_manifest() {
    let w = zero_click(json!({"appId": APP, "connector": {"displayName": "Okta prod", "catalogId": "cat1", "ownerUserIds": ["u1"]}})).await;
    converge(&w).await;
    let (app, connector) = recorded(&w);
    assert_eq!(app, APP);
    assert_ne!(connector, CONNECTOR);
    assert_eq!(w.c1.count("POST", APPS), 0, "no app is created when appId is given");
    let (_, catalog, owners) = w.c1.connector_details(APP, &connector).unwrap();
    assert_eq!((catalog.as_str(), owners), ("cat1", vec!["u1".to_string()]));
    assert_eq!(w.status()["conductorOne"]["createdApp"], Value::Null);
}

#[tokio::test]
async fn a_crash_at_any_write_never_creates_a_second_app_or_connector() {
    // Writes fail from the n-th on (the operator died there), which includes the write right after
    // each create call; a fresh operator then finishes the job.
    for n in 0..10 {
        let w = from_scratch().await;
        w.kube.fail_writes_from(n);
        for _ in 0..2 {
            let _ = w.reconcile().await;
        }
        w.kube.heal();
        converge(&w).await;
        let (apps, connectors) = marked(&w);
        let (app, connector) = recorded(&w);
        assert_eq!(apps, vec![app.clone()], "crash at write {n}: {}", w.status());
        assert_eq!(connectors, vec![(app.clone(), connector)], "crash at write {n}: {}", w.status());
        assert_eq!(w.c1.connector_ids(&app).len(), 1, "crash at write {n}");
    }
}

#[tokio::test]
async fn a_lost_reply_is_found_again_by_its_marker() {
    let w = from_scratch().await;
    w.c1.inject(FaultRule::new(Fault::LoseReply).on("POST", APPS));
    let _ = w.reconcile().await;
    assert_eq!(w.c1.apps().iter().filter(|a| a.display_name == "Okta").count(), 1, "the server created it");
    assert!(w.status()["conductorOne"]["creatingAppSince"].is_string(), "{}", w.status());
    assert!(w.status()["conductorOne"]["appId"].is_null());
    converge(&w).await;
    assert_eq!(w.c1.count("POST", APPS), 1, "found, not created again");
    assert_eq!(w.c1.apps().iter().filter(|a| a.display_name == "Okta").count(), 1);

    // The same for a connector.
    let w = zero_click(json!({"appId": APP})).await;
    let path = format!("{APPS}/{APP}/connectors");
    w.c1.inject(FaultRule::new(Fault::LoseReply).on("POST", &path));
    let _ = w.reconcile().await;
    assert_eq!(w.c1.connector_ids(APP).len(), 2);
    converge(&w).await;
    assert_eq!(w.c1.count("POST", &path), 1);
    assert_eq!(w.c1.connector_ids(APP).len(), 2, "the fake's own connector and the one created");
    assert!(w.events().iter().any(|e| e.contains("created before a lost reply")));
}

#[tokio::test]
async fn refusals_say_why_and_leave_no_intent_behind() {
    for (status, code, message) in
        [(409, 6, "an app named Okta already exists"), (400, 3, "displayName too long")]
    {
        let w = from_scratch().await;
        w.c1.inject(FaultRule::new(Fault::error(status, code, message)).on("POST", APPS));
        let _ = w.reconcile().await;
        let ready = condition(&w, "Ready");
        assert_eq!(ready["status"], "False");
        assert!(ready["message"].as_str().unwrap().contains(message), "{ready}");
        assert_eq!(condition(&w, "Stalled")["status"], "True", "{}", w.status());
        assert!(w.status()["conductorOne"]["creatingAppSince"].is_null(), "a refusal created nothing");
        // Once ConductorOne accepts, the app is created.
        converge(&w).await;
        assert_eq!(w.c1.count("POST", APPS), 2);
    }
    // An app id that does not exist.
    let w = zero_click(json!({"appId": "missingAppAAAAAAAAAAAAAAAAA"})).await;
    let _ = w.reconcile().await;
    let ready = condition(&w, "Ready");
    assert_eq!(ready["reason"], "NotFound", "{ready}");
    assert!(w.status()["conductorOne"]["creatingConnectorSince"].is_null());
}

#[tokio::test]
async fn deletion_removes_the_connector_then_the_app_it_created() {
    let w = from_scratch().await;
    converge(&w).await;
    let (app, connector) = recorded(&w);
    delete(&w);
    w.reconcile().await.unwrap();
    assert!(w.live_credentials().is_empty());
    assert!(w.c1.connector_details(&app, &connector).is_none(), "connector deleted");
    assert!(w.c1.app(&app).is_none(), "app deleted");
    assert!(w.kube.get(BC).unwrap()["metadata"]["finalizers"].as_array().unwrap().is_empty());
    assert!(w.events().iter().any(|e| e.contains("deleted the connector")));
}

#[tokio::test]
async fn deletion_keeps_what_the_operator_did_not_create() {
    // A connector created in the user's app: the app and its other connector stay.
    let w = zero_click(json!({"appId": APP})).await;
    converge(&w).await;
    let (_, connector) = recorded(&w);
    delete(&w);
    w.reconcile().await.unwrap();
    assert_eq!(w.c1.connector_ids(APP), vec![CONNECTOR.to_string()]);
    assert!(w.c1.app(APP).is_some());
    assert!(!w.c1.connector_ids(APP).contains(&connector));

    // A created app someone added another connector to stays, without the operator's connector.
    let w = from_scratch().await;
    converge(&w).await;
    let (app, connector) = recorded(&w);
    w.c1.add_connector(&app, "someoneElseCCCCCCCCCCCCCCCC", "other");
    delete(&w);
    w.reconcile().await.unwrap();
    assert!(w.c1.app(&app).is_some());
    assert_eq!(w.c1.connector_ids(&app), vec!["someoneElseCCCCCCCCCCCCCCCC".to_string()]);
    assert!(!w.c1.connector_ids(&app).contains(&connector));
}

#[tokio::test]
async fn orphan_leaves_app_and_connector_in_place() {
    let w = from_scratch().await;
    w.kube.edit(BC, |bc| bc["spec"]["deletionPolicy"] = json!("Orphan"));
    converge(&w).await;
    let (app, connector) = recorded(&w);
    assert!(w.kube.get(BC).unwrap()["metadata"]["finalizers"].is_null());
    delete(&w);
    w.reconcile().await.unwrap();
    assert!(w.c1.app(&app).is_some());
    assert!(w.c1.connector_details(&app, &connector).is_some());
    assert_eq!(w.live_credentials().len(), 1);
}

#[tokio::test]
async fn explicit_ids_set_later_win_and_what_was_created_is_let_go() {
    let w = from_scratch().await;
    converge(&w).await;
    let (app, connector) = recorded(&w);
    w.kube.edit(BC, |bc| {
        bc["spec"]["conductorOne"] = json!({"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector});
    });
    w.reconcile().await.unwrap();
    let c1 = w.status()["conductorOne"].clone();
    assert!(c1["createdApp"].is_null() && c1["createdConnector"].is_null(), "{c1}");
    assert!(w.events().iter().any(|e| e.contains("StoppedManaging")));
    delete(&w);
    w.reconcile().await.unwrap();
    assert!(w.c1.app(&app).is_some(), "no longer the operator's to delete");
    assert!(w.c1.connector_details(&app, &connector).is_some());
    assert_eq!(w.c1.count("POST", APPS), 1);
}

#[tokio::test]
async fn a_created_connector_deleted_in_conductorone_is_reported_not_recreated() {
    let w = from_scratch().await;
    converge(&w).await;
    let (app, connector) = recorded(&w);
    w.c1.remove_connector(&app, &connector);
    for _ in 0..2 {
        let _ = w.reconcile().await;
    }
    let stalled = condition(&w, "Stalled");
    assert_eq!(
        (stalled["status"].as_str(), stalled["reason"].as_str()),
        (Some("True"), Some("ConnectorDeleted")),
        "{}",
        w.status()
    );
    assert!(stalled["message"].as_str().unwrap().contains("not created again"));
    assert_eq!(w.c1.count("POST", &format!("{APPS}/{app}/connectors")), 1);
    assert_eq!(recorded(&w), (app, connector));
}

#[tokio::test]
async fn switching_to_another_connector_mints_for_it_and_revokes_the_old_credential_after_the_rollout() {
    let w = from_scratch().await;
    converge(&w).await;
    let (app, connector) = recorded(&w);
    let old = w.status()["credentials"]["credentialId"].as_str().unwrap().to_string();
    w.kube.edit(BC, |bc| {
        bc["spec"]["conductorOne"] =
            json!({"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": APP, "connectorId": CONNECTOR});
    });
    // Until the new pod is available, the old credential stays valid.
    w.reconcile().await.unwrap();
    assert!(w.live_credentials().contains(&old), "{}", w.status());
    assert!(w.events().iter().any(|e| e.contains("ConnectorChanged")));
    converge(&w).await;
    let s = w.status();
    let new = s["credentials"]["credentialId"].as_str().unwrap().to_string();
    let minted = w.c1.credential(&new).unwrap();
    assert_eq!((minted.app_id.as_str(), minted.connector_id.as_str()), (APP, CONNECTOR));
    assert_eq!(w.live_credentials(), vec![new], "the old connector's credential is revoked: {s}");
    assert!(s["credentials"]["superseded"].is_null(), "{s}");
    let revoked = w.c1.credential(&old).unwrap();
    assert_eq!((revoked.app_id, revoked.connector_id), (app, connector));
}
