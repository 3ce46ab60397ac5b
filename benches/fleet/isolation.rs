//! Two ConductorOne tenants (issue 17, isolation): tenant A and tenant B, two
//! `ClusterConductorOneTenant`s with their own service principals, each on a ConductorOne of its
//! own (two fakes: two ConductorOne tenants are two hosts). Tenant B stays calm; tenant A is calm,
//! then slow (every call answered after 10 s), then answers 429 to everything (token requests
//! included), then is unreachable. In each case every connector of both tenants is asked to rotate
//! at once, and then the sync status of every connector of B changes at B's ConductorOne: how long
//! until B's connectors run on their new credential revision (status names it and no rotation is
//! under way), and until their status shows the new sync reading.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

use crate::{
    Args, brownout, log, manifests,
    probe::Latency,
    scenario::Cluster,
    support::fake_conductorone::{FakeConductorOne, Fault, FaultRule},
};

pub const CALM: &str = "calm";
pub const SLOW: &str = "slow";
pub const RATE_LIMITED: &str = "rate-limited";
pub const UNREACHABLE: &str = "unreachable";
/// How long tenant A is broken before B is measured, so that A's failing polls and rotations are
/// under way (more than the poll interval).
const SETTLE: Duration = Duration::from_secs(15);
/// The operator's sync poll interval here: short, so that a sync reading shows within a minute.
const POLL_INTERVAL: &str = "10s";
/// How long B's rotations, and then B's sync readings, may take before they count as never.
pub const ROTATION_DEADLINE: Duration = Duration::from_secs(180);
pub const SYNC_DEADLINE: Duration = Duration::from_secs(120);
/// What a connector of the broken tenant reports.
const PROBLEMS: [&str; 3] = ["RateLimited", "Timeout", "TransportError"];

pub struct IsolationResult {
    pub per_tenant: usize,
    /// Per case: tenant B's rotation latencies and sync-status latencies.
    pub cases: Vec<Case>,
}

pub struct Case {
    pub name: &'static str,
    pub rotation: Vec<Latency>,
    pub sync: Vec<Latency>,
}

/// What the watch saw of a connector: each distinct state, with when it was first seen.
#[derive(Clone, Debug, PartialEq)]
struct State {
    secret: Option<String>,
    rotating: bool,
    completed: Option<Timestamp>,
    ready: bool,
    /// Every condition's reason, for what the broken tenant's connectors report.
    reasons: Vec<String>,
}

type Seen = Arc<Mutex<HashMap<String, Vec<(Instant, State)>>>>;

fn state(bc: &DynamicObject) -> State {
    let status = &bc.data["status"];
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    State {
        secret: status["credentials"]["secretName"].as_str().map(String::from),
        rotating: !status["credentials"]["rotation"].is_null(),
        completed: status["sync"]["lastCompletedAt"].as_str().and_then(|t| t.parse().ok()),
        ready: conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"),
        reasons: conditions.iter().filter_map(|c| c["reason"].as_str()).map(String::from).collect(),
    }
}

fn watch(c: &Cluster) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let resource = ApiResource::erase::<baton_operator::api::BatonConnector>(&());
    let api: Api<DynamicObject> = Api::all_with(c.admin.clone(), &resource);
    let s = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, Default::default()).applied_objects().default_backoff().boxed();
        while let Some(Ok(bc)) = stream.next().await {
            let (at, key, now) = (
                Instant::now(),
                format!("{}/{}", bc.namespace().unwrap_or_default(), bc.name_any()),
                state(&bc),
            );
            let mut seen = s.lock().unwrap();
            let history = seen.entry(key).or_default();
            if history.last().is_none_or(|(_, last)| *last != now) {
                history.push((at, now));
            }
        }
    });
    (seen, task)
}

/// The first moment after `since` at which `key` was in a state `done` accepts.
fn first(seen: &Seen, key: &str, since: Instant, done: impl Fn(&State) -> bool) -> Option<Instant> {
    let seen = seen.lock().unwrap();
    let history = seen.get(key)?;
    // The state in force at `since` counts from `since`.
    let before = history.iter().rev().find(|(at, _)| *at <= since).map(|(_, s)| (since, s));
    before
        .into_iter()
        .chain(history.iter().filter(|(at, _)| *at > since).map(|(at, s)| (*at, s)))
        .find(|(_, s)| done(s))
        .map(|(at, _)| at)
}

fn latest(seen: &Seen, key: &str) -> Option<State> {
    seen.lock().unwrap().get(key).and_then(|h| h.last()).map(|(_, s)| s.clone())
}

fn name(tenant: char, i: usize) -> String {
    format!("{tenant}-{i:03}")
}

fn ns(tenant: char) -> String {
    format!("iso-{tenant}")
}

/// Two tenants' Secrets, tenants, namespaces and connectors.
fn manifests(per_tenant: usize, fakes: [(char, &FakeConductorOne); 2]) -> String {
    let mut yaml = String::new();
    for (t, c1) in fakes {
        let principal = c1.register_principal(&format!("tenant-{t}"));
        yaml += &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c1-tenant-{t}\n  namespace: baton-system\nstringData:\n  \
             clientId: {}\n  clientSecret: {}\n---\n\
             apiVersion: baton.conductorone.com/v1alpha1\nkind: ClusterConductorOneTenant\nmetadata:\n  name: tenant-{t}\n\
             spec:\n  apiCredentialsSecretRef:\n    name: c1-tenant-{t}\n  allowedNamespaces:\n    names: [{}]\n---\n\
             apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n---\n",
            principal.client_id,
            principal.client_secret,
            ns(t),
            ns(t)
        );
        let now = Timestamp::now().to_string();
        let done =
            json!({"status": "SYNC_STATUS_DONE", "startedAt": now, "completedAt": now, "lastError": ""});
        for i in 0..per_tenant {
            let (app, connector) = (format!("app-{t}-{i:03}"), format!("conn-{t}-{i:03}"));
            c1.add_connector(&app, &connector, "okta");
            c1.set_sync_status(&app, &connector, done.clone());
            yaml += &format!("{}---\n", manifests::secret(&ns(t), &format!("{}-c1", name(t, i))));
            yaml += &format!(
                "{}  credentials:\n    managed:\n      rotation:\n        interval: 720h\n        gracePeriod: 2s\n  \
                 conductorOne:\n    tenantRef:\n      kind: ClusterConductorOneTenant\n      name: tenant-{t}\n    \
                 appId: {app}\n    connectorId: {connector}\n---\n",
                manifests::connector_without_credentials(&ns(t), &name(t, i))
            );
        }
    }
    yaml
}

pub async fn run(args: &Args) -> anyhow::Result<IsolationResult> {
    let work = tempfile::Builder::new().prefix("baton-bench-isolation-").tempdir()?;
    let mut c = Cluster::start(args, work.path()).await?;
    c.operator.sync_poll_interval = POLL_INTERVAL.into();
    // Enough of each tenant's budget for the rotations of all its connectors at once.
    c.operator.extra_args = ["--c1-requests-per-second", "10", "--c1-burst", "20"].map(String::from).to_vec();
    let (a, b) = (FakeConductorOne::start().await, FakeConductorOne::start().await);
    let n = args.isolation;
    let file = work.path().join("isolation.yaml");
    std::fs::write(&file, manifests(n, [('a', &a), ('b', &b)]))?;
    let (seen, watch_task) = watch(&c);
    c.start_operator().await?;
    log(&format!("isolation: two tenants of {n} managed connectors each"));
    c.kubectl_apply(&file).await?;
    let keys = |t: char| (0..n).map(move |i| format!("{}/{}", ns(t), name(t, i)));
    let all: Vec<String> = keys('a').chain(keys('b')).collect();
    let ready = wait(Duration::from_secs(600), || {
        all.iter().all(|k| latest(&seen, k).is_some_and(|s| s.ready && s.secret.is_some() && !s.rotating))
    })
    .await;
    if !ready {
        log("isolation: not every connector got its credential within 10 min; going on");
    }

    let mut out = IsolationResult { per_tenant: n, cases: Vec::new() };
    for (round, case) in [CALM, SLOW, RATE_LIMITED, UNREACHABLE].into_iter().enumerate() {
        match case {
            SLOW => a.set_latency(Some(Duration::from_secs(10))),
            RATE_LIMITED => {
                a.set_latency(None);
                a.inject(FaultRule::new(Fault::rate_limited(brownout::RETRY_AFTER)).times(usize::MAX));
            }
            UNREACHABLE => {
                a.clear_faults();
                a.go_offline();
            }
            _ => {}
        }
        if case != CALM {
            tokio::time::sleep(SETTLE).await;
        }
        let calls_before = (a.calls().len(), b.calls().len());
        let rotation = rotate(&c, &seen, n, round).await?;
        let sync = sync_change(&b, &seen, n).await;
        let reported = keys('a')
            .filter(|k| {
                latest(&seen, k).is_some_and(|s| s.reasons.iter().any(|r| PROBLEMS.contains(&r.as_str())))
            })
            .count();
        log(&format!(
            "isolation: A {case}: B's rotation p50 {:?}, sync p50 {:?}; ConductorOne requests A {} (429: {}), B {}; A's connectors reporting it: {reported} of {n}",
            crate::probe::percentile(&rotation, 50.0),
            crate::probe::percentile(&sync, 50.0),
            a.calls().len() - calls_before.0,
            a.calls()[calls_before.0..].iter().filter(|c| c.status == Some(429)).count(),
            b.calls().len() - calls_before.1,
        ));
        out.cases.push(Case { name: case, rotation, sync });
    }
    a.go_online().await;
    watch_task.abort();
    c.operator.stop().await;
    Ok(out)
}

async fn wait(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

/// Asks every connector of both tenants to rotate at once; B's latencies, from the request until
/// each runs on a new revision with no rotation under way.
async fn rotate(c: &Cluster, seen: &Seen, n: usize, round: usize) -> anyhow::Result<Vec<Latency>> {
    let resource = ApiResource::erase::<baton_operator::api::BatonConnector>(&());
    let at = Timestamp::now().to_string();
    let annotate = json!({"metadata": {"annotations": {"baton.conductorone.com/rotate-requested-at": at}}});
    let mut started = Vec::new();
    // B first, so that its requests are not later than A's.
    for t in ['b', 'a'] {
        let api: Api<DynamicObject> = Api::namespaced_with(c.admin.clone(), &ns(t), &resource);
        for i in 0..n {
            let key = format!("{}/{}", ns(t), name(t, i));
            let before = latest(seen, &key).and_then(|s| s.secret);
            let start = Instant::now();
            api.patch(&name(t, i), &PatchParams::default(), &Patch::Merge(&annotate)).await?;
            if t == 'b' {
                started.push((key, before, start));
            }
        }
    }
    let deadline = ROTATION_DEADLINE;
    let rotated = |(key, before, start): &(String, Option<String>, Instant)| {
        first(seen, key, *start, |s| s.secret.is_some() && s.secret != *before && !s.rotating)
            .map(|at| at - *start)
    };
    wait(deadline, || started.iter().all(|s| rotated(s).is_some())).await;
    log(&format!("isolation: round {round}: rotation requested at {at}"));
    Ok(started.iter().map(rotated).collect())
}

/// Finishes a new sync of every connector of B at B's ConductorOne; the latencies until each
/// one's status shows it.
async fn sync_change(b: &FakeConductorOne, seen: &Seen, n: usize) -> Vec<Latency> {
    // Status keeps whole seconds: a new second, so every reading differs from the last.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let completed = Timestamp::from_second(Timestamp::now().as_second()).expect("a time");
    let sync = json!({"status": "SYNC_STATUS_DONE", "startedAt": completed.to_string(),
                      "completedAt": completed.to_string(), "lastError": ""});
    let start = Instant::now();
    for i in 0..n {
        b.set_sync_status(&format!("app-b-{i:03}"), &format!("conn-b-{i:03}"), sync.clone());
    }
    let key = |i: usize| format!("{}/{}", ns('b'), name('b', i));
    let shown =
        |i: usize| first(seen, &key(i), start, |s| s.completed == Some(completed)).map(|at| at - start);
    wait(SYNC_DEADLINE, || (0..n).all(|i| shown(i).is_some())).await;
    (0..n).map(shown).collect()
}
