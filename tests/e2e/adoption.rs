//! Adoption (`baton.conductorone.com/adopt-existing`): a BatonConnector takes over the hand-written
//! Deployment of its name, as the vendor's guide writes it (the SentinelOne seed, with its bugs
//! fixed), with no moment without a ready connector pod; and never takes another controller's object.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{ConfigMap, Secret},
};

use super::*;

const ADOPT: &str = "baton.conductorone.com/adopt-existing";
const NAME: &str = "baton-sentinel-one";

/// The seed's Secret: the connector's own settings and its ConductorOne client credential in one.
fn seed_secret() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "baton-sentinel-one-secrets"},
           "stringData": {"BATON_CLIENT_ID": "s1@example.conductor.one/ccc",
                          "BATON_CLIENT_SECRET": "secret-token:conductorone.com:v1:seed",
                          "BATON_API_TOKEN": "s1-token",
                          "BATON_MANAGEMENT_CONSOLE_URL": "https://example.sentinelone.net"}})
}

/// The seed's Deployment with its bugs fixed (`baton: "true"` is a string; the image is the one
/// ConductorOne ships on public ECR; one namespace throughout).
fn seed_deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": NAME, "labels": {"app": NAME}},
           "spec": {"selector": {"matchLabels": {"app": NAME}},
                    "template": {"metadata": {"labels": {"app": NAME, "baton": "true", "baton-app": "sentinel-one"}},
                                 "spec": {"containers": [{"name": NAME,
                                     "image": "public.ecr.aws/conductorone/baton-sentinel-one:latest",
                                     "imagePullPolicy": "IfNotPresent",
                                     "envFrom": [{"secretRef": {"name": "baton-sentinel-one-secrets"}}]}]}}}})
}

fn adopting(name: &str, annotate: bool) -> Value {
    let mut bc = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
        "metadata": {"name": name},
        "spec": {"connector": "sentinel-one",
                 "credentials": {"secretRef": {"name": "baton-sentinel-one-secrets"}},
                 "secretRefs": [{"name": "baton-sentinel-one-secrets"}]}});
    if annotate {
        bc["metadata"]["annotations"] = json!({ADOPT: "true"});
    }
    bc
}

/// Waits for `Ready=False OwnershipConflict` on `name`, with `part` in its message.
async fn conflict_says(client: &Client, ns: &str, name: &str, part: &str) -> anyhow::Result<()> {
    let bc = eventually(&format!("{name}: OwnershipConflict"), WAIT, || async {
        let bc = get_bc(client, ns, name).await?;
        Ok((condition(&bc, "Ready") == Some(("False".into(), "OwnershipConflict".into()))).then_some(bc))
    })
    .await?;
    let ready = bc.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let message = ready.map(|c| c.message.clone()).unwrap_or_default();
    ensure!(message.contains(part), "{name}: {part:?} not in {message:?}");
    Ok(())
}

async fn ready_pods(client: &Client, ns: &str) -> anyhow::Result<usize> {
    let pods: Vec<Pod> = list(client, ns, &format!("app={NAME}")).await?;
    Ok(pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count())
}

/// A namespace with the seed's Secret (`secret`) and Deployment, running. The hand-written pods are
/// not the operator's, so a stand-in kubelet of their own runs them until the handle is aborted.
async fn hand_written(env: &mut Env, ns: &str, secret: Value) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    ensure_operator(env).await?;
    namespace(&env.client, ns, json!({})).await?;
    let selector = format!("app={NAME},!app.kubernetes.io/managed-by");
    let kubelet = cluster::spawn_kubelet_for(env.client.clone(), &selector);
    apply_value(&env.client, secret, Some(ns)).await?;
    apply_value(&env.client, seed_deployment(), Some(ns)).await?;
    let client = &env.client;
    eventually("the hand-written connector to run", WAIT, || async {
        Ok((ready_pods(client, ns).await? == 1).then_some(()))
    })
    .await?;
    Ok(kubelet)
}

pub(crate) async fn adoption_takes_over_a_hand_written_deployment_with_no_gap(
    env: &mut Env,
) -> anyhow::Result<()> {
    let ns = "adopt";
    let kubelet = hand_written(env, ns, seed_secret()).await?;
    let result = takeover(env, ns).await;
    kubelet.abort();
    result
}

async fn takeover(env: &mut Env, ns: &str) -> anyhow::Result<()> {
    let client = env.client.clone();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret_version = secrets.get("baton-sentinel-one-secrets").await?.metadata.resource_version;
    let old = deployments.get(NAME).await?;

    // Without the annotation: nothing is taken over, and the message says how to adopt.
    apply_value(&client, adopting(NAME, false), Some(ns)).await?;
    conflict_says(&client, ns, NAME, ADOPT).await?;
    ensure!(deployments.get(NAME).await?.metadata.resource_version == old.metadata.resource_version);

    // With it: watch the ready pods every 50 ms through the whole cut-over.
    let (fewest, done) = (Arc::new(AtomicUsize::new(usize::MAX)), Arc::new(AtomicBool::new(false)));
    let watcher = {
        let (client, fewest, done, ns) = (client.clone(), fewest.clone(), done.clone(), ns.to_string());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                if let Ok(n) = ready_pods(&client, &ns).await {
                    fewest.fetch_min(n, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let started = std::time::Instant::now();
    apply_value(&client, adopting(NAME, true), Some(ns)).await?;
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let bc = eventually("the adoption to finish", WAIT, || async {
        let bc = get_bc(&client, ns, NAME).await?;
        let ready = condition(&bc, "Ready").is_some_and(|(s, _)| s == "True");
        let journal_closed = bc.status.as_ref().is_some_and(|s| s.adoption.is_none());
        let old_gone = replica_sets.list(&Default::default()).await?.items.iter().all(|rs| {
            rs.owner_references().iter().any(|o| o.kind == "Deployment" && o.controller == Some(true))
        });
        Ok((ready && journal_closed && old_gone && ready_pods(&client, ns).await? >= 1).then_some(bc))
    })
    .await?;
    done.store(true, Ordering::SeqCst);
    watcher.await?;
    let took = started.elapsed();
    let fewest = fewest.load(Ordering::SeqCst);
    ensure!(
        fewest >= 1,
        "a moment without a ready connector pod during the adoption (fewest ready: {fewest})"
    );
    println!("e2e: adoption took {:.1}s, never fewer than {fewest} ready pod(s)", took.as_secs_f64());

    let adopted = deployments.get(NAME).await?;
    ensure!(adopted.metadata.uid != old.metadata.uid, "the Deployment was not replaced");
    ensure!(
        adopted
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == bc.metadata.uid.as_ref() && o.controller == Some(true)),
        "the adopted Deployment is not owned by the BatonConnector"
    );
    let selector = adopted.spec.selector.match_labels.clone().unwrap_or_default();
    ensure!(
        selector.contains_key("app.kubernetes.io/instance"),
        "not selected as the operator's own: {selector:?}"
    );
    ensure!(
        secrets.get("baton-sentinel-one-secrets").await?.metadata.resource_version == secret_version,
        "the Secret was changed"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    let reasons: Vec<String> =
        events.list(&Default::default()).await?.items.into_iter().filter_map(|e| e.reason).collect();
    ensure!(reasons.iter().any(|r| r == "Adopting") && reasons.iter().any(|r| r == "Adopted"), "{reasons:?}");

    refuses_another_controllers_deployment(&client, ns).await
}

/// A Deployment that another controller owns is never taken, annotation or not.
async fn refuses_another_controllers_deployment(client: &Client, ns: &str) -> anyhow::Result<()> {
    let owners: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let owner = owners
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "other-operator"}}))?,
        )
        .await?;
    let mut theirs = seed_deployment();
    theirs["metadata"]["name"] = json!("theirs");
    theirs["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "other-operator",
        "uid": owner.metadata.uid, "controller": true}]);
    theirs["spec"]["selector"]["matchLabels"]["app"] = json!("theirs");
    theirs["spec"]["template"]["metadata"]["labels"]["app"] = json!("theirs");
    apply_value(client, theirs, Some(ns)).await?;
    apply_value(client, adopting("theirs", true), Some(ns)).await?;
    conflict_says(client, ns, "theirs", "ConfigMap/other-operator").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let still = deployments.get("theirs").await?;
    ensure!(still.metadata.deletion_timestamp.is_none(), "another controller's Deployment was released");
    ensure!(
        still.owner_references().iter().all(|o| o.kind == "ConfigMap"),
        "another controller's Deployment got a new owner"
    );
    Ok(())
}

/// Adoption with a switch to managed credentials: the operator mints its own credential for the
/// adopted connector, and revokes the hand-made one the old pods used only once none of them is left.
pub(crate) async fn adoption_with_managed_credentials_revokes_the_hand_made_one_last(
    env: &mut Env,
) -> anyhow::Result<()> {
    let ns = "adopt-managed";
    let ids = ("app-adopt", "conn-adopt");
    env.c1.add_connector(ids.0, ids.1, "SentinelOne");
    env.c1.set_sync_status(ids.0, ids.1, done_sync());
    // The credential the hand-written pods use, made by hand as in the UI.
    let (hand_made, hand_secret) =
        env.c1.issue_by_hand(ids.0, ids.1).context("the fake has the connector")?;
    let mut secret = seed_secret();
    secret["stringData"]["BATON_CLIENT_ID"] = json!(hand_made.client_id);
    secret["stringData"]["BATON_CLIENT_SECRET"] = json!(hand_secret);
    let kubelet = hand_written(env, ns, secret).await?;
    let result = managed_takeover(env, ns, ids, hand_made).await;
    kubelet.abort();
    result
}

async fn managed_takeover(
    env: &mut Env,
    ns: &str,
    (app, connector_id): (&str, &str),
    hand_made: support::fake_conductorone::StoredCredential,
) -> anyhow::Result<()> {
    let client = env.client.clone();
    let principal = env.c1.register_principal("adopt-operator");
    apply_value(
        &client,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}}),
        Some(ns),
    )
    .await?;

    // When the last hand-written pod went, as the suite saw it (every 50 ms).
    let (old_gone_at, done) = (Arc::new(std::sync::Mutex::new(None)), Arc::new(AtomicBool::new(false)));
    let watcher = {
        let (client, old_gone_at, done, ns) =
            (client.clone(), old_gone_at.clone(), done.clone(), ns.to_string());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let old: anyhow::Result<Vec<Pod>> =
                    list(&client, &ns, &format!("app={NAME},!app.kubernetes.io/managed-by")).await;
                if let Ok(old) = old {
                    let mut at = old_gone_at.lock().unwrap();
                    match (old.iter().any(|p| p.metadata.deletion_timestamp.is_none()), *at) {
                        (false, None) => *at = Some(k8s_openapi::jiff::Timestamp::now()),
                        (true, _) => *at = None,
                        _ => {}
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut bc = adopting(NAME, true);
    bc["spec"]["credentials"] = json!({"managed": {"revokeHandMade": [hand_made.id]}});
    bc["spec"]["conductorOne"] =
        json!({"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id});
    apply_value(&client, bc, Some(ns)).await?;
    let c1 = &env.c1;
    let bc = eventually("the hand-made credential to be revoked", WAIT, || async {
        let bc = get_bc(&client, ns, NAME).await?;
        let ready = condition(&bc, "Ready").is_some_and(|(s, _)| s == "True");
        let revoked = c1.credential(&hand_made.id).is_some_and(|c| c.is_revoked());
        Ok((ready && revoked).then_some(bc))
    })
    .await?;
    done.store(true, Ordering::SeqCst);
    watcher.await?;
    let revoked_at = env.c1.credential(&hand_made.id).and_then(|c| c.revoked_at).context("revoked")?;
    let gone_at = old_gone_at.lock().unwrap().context("the hand-written pods never went")?;
    ensure!(
        revoked_at >= gone_at - k8s_openapi::jiff::SignedDuration::from_millis(100),
        "the hand-made credential was revoked at {revoked_at}, before the last old pod went at {gone_at}"
    );
    let credentials = bc.status.as_ref().and_then(|s| s.credentials.clone()).context("credentials status")?;
    ensure!(credentials.revoked_hand_made == vec![hand_made.id.clone()], "{credentials:?}");
    let minted = credentials.credential_id.clone().context("a minted credential")?;
    ensure!(
        env.c1.credential(&minted).is_some_and(|c| !c.is_revoked()),
        "the operator's own credential was revoked"
    );
    Ok(())
}
