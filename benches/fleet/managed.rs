//! Managed credentials (issue 18): connectors whose ConductorOne credential the operator mints,
//! created together against the fake ConductorOne, then all rotated on request. What is counted is
//! the operator's single-object Secret reads (`get secrets` in the audit log) while it mints and
//! rolls out, and again while it rotates and rolls out: a credential revision the operator writes is
//! known to it without reading it back, so both should be zero.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::jiff::Timestamp;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams},
};
use serde_json::json;

use crate::{
    Args, log, manifests,
    probe::{Request, tally},
    scenario::Cluster,
    support::{control_plane::WRITE_VERBS, fake_conductorone::FakeConductorOne},
};

const NAMESPACE: &str = "managed";

#[derive(Default)]
pub struct ManagedResult {
    pub connectors: usize,
    /// Operator requests by `verb resource`, from the apply until every connector was Ready and
    /// the operator fell quiet.
    pub minted: BTreeMap<String, usize>,
    /// Single-Secret GETs in the same window: of the operator's own credential revisions, and of
    /// Secrets the user applied (read once each when the watch saw them before a connector
    /// referenced them, so the cache had not kept their data).
    pub minted_gets: SecretGets,
    /// The same from the rotation request until every connector ran on its second credential,
    /// the first one revoked.
    pub rotated: BTreeMap<String, usize>,
    pub rotated_gets: SecretGets,
    pub settled: bool,
}

#[derive(Default)]
pub struct SecretGets {
    pub revisions: usize,
    pub users: usize,
}

impl ManagedResult {
    /// Whether a `verb resource` key counts a write (create, update, patch, delete).
    pub fn is_write(key: &str) -> bool {
        key.split(' ').next().is_some_and(|verb| WRITE_VERBS.contains(&verb))
    }
}

pub async fn run(args: &Args) -> anyhow::Result<ManagedResult> {
    let work = tempfile::Builder::new().prefix("baton-bench-managed-").tempdir()?;
    let mut c = Cluster::start(args, work.path()).await?;
    let c1 = FakeConductorOne::start().await;
    let n = args.managed;
    let principal = c1.register_principal(NAMESPACE);
    let mut yaml = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: c1-api\n  namespace: {NAMESPACE}\nstringData:\n  \
         clientId: {}\n  clientSecret: {}\n---\n",
        principal.client_id, principal.client_secret
    );
    let now = Timestamp::now().to_string();
    let done = json!({"status": "SYNC_STATUS_DONE", "startedAt": now, "completedAt": now, "lastError": ""});
    for i in 0..n {
        let (app, connector) = (format!("app-{i:04}"), format!("conn-{i:04}"));
        c1.add_connector(&app, &connector, "okta");
        // Ready needs a finished sync, as ConductorOne would report for a working connector.
        c1.set_sync_status(&app, &connector, done.clone());
        // The Secret holds the app's API token; the operator writes the ConductorOne credential.
        yaml += &format!("{}---\n", manifests::secret(NAMESPACE, &format!("{}-c1", name(i))));
        yaml += &format!(
            "{}  credentials:\n    managed:\n      rotation:\n        interval: 720h\n        gracePeriod: 2s\n  \
             conductorOne:\n    apiCredentialsSecretRef:\n      name: c1-api\n    appId: {app}\n    connectorId: {connector}\n---\n",
            manifests::connector_without_credentials(NAMESPACE, &name(i))
        );
    }
    let file = work.path().join("managed.yaml");
    std::fs::write(&file, yaml)?;
    c.start_operator().await?;
    let mut out = ManagedResult { connectors: n, settled: true, ..Default::default() };

    log(&format!("managed: {n} connectors with managed credentials"));
    let start = Timestamp::now();
    c.kubectl_apply(&file).await?;
    let ready = c
        .tracker
        .wait(Duration::from_secs(600), |s| {
            (s.ready.keys().filter(|k| k.starts_with("managed/")).count() >= n).then_some(())
        })
        .await;
    out.settled &= ready.is_some() && quiet(&mut c).await?;
    (out.minted, out.minted_gets) = window(&mut c, start)?;

    log(&format!("managed: rotating all {n}"));
    let start = Timestamp::now();
    let resource = ApiResource::erase::<baton_operator::api::BatonConnector>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(c.admin.clone(), NAMESPACE, &resource);
    let annotate = json!({"metadata": {"annotations": {
        "baton.conductorone.com/rotate-requested-at": start.to_string()}}});
    for i in 0..n {
        api.patch(&name(i), &PatchParams::default(), &Patch::Merge(&annotate)).await?;
    }
    let began = Instant::now();
    let mut rotated = false;
    while !rotated && began.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let list = api.list(&ListParams::default()).await?;
        rotated = list.items.iter().all(|bc| {
            let creds = &bc.data["status"]["credentials"];
            creds["secretName"].as_str().is_some_and(|s| s.ends_with("-credentials-2"))
                && creds["rotation"].is_null()
        });
    }
    out.settled &= rotated && quiet(&mut c).await?;
    (out.rotated, out.rotated_gets) = window(&mut c, start)?;
    log(&format!(
        "managed: {} credentials minted, {} revoked by the fake ConductorOne",
        c1.credentials().len(),
        c1.credentials().iter().filter(|cr| cr.revoked_at.is_some()).count()
    ));
    c.operator.stop().await;
    Ok(out)
}

fn name(i: usize) -> String {
    format!("m-{i:04}")
}

/// No operator request at all for 5 s (within 5 min).
async fn quiet(c: &mut Cluster) -> anyhow::Result<bool> {
    c.audit.quiet(Duration::from_secs(5), Duration::from_secs(300), |_: &Request| true).await
}

fn window(c: &mut Cluster, from: Timestamp) -> anyhow::Result<(BTreeMap<String, usize>, SecretGets)> {
    c.audit.refresh()?;
    let now = Timestamp::now();
    let mut gets = SecretGets::default();
    for r in c.audit.between(from, now).filter(|r| r.verb == "get" && r.resource == "secrets") {
        // The operator names its revisions `<connector>-c1-credentials-<n>`.
        if r.name.contains("-c1-credentials-") {
            gets.revisions += 1;
        } else {
            gets.users += 1;
        }
    }
    Ok((tally(c.audit.between(from, now)), gets))
}
