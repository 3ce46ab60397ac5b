//! A ConductorOne brownout: connectors that report sync status through `spec.conductorOne`, the fake
//! ConductorOne made calm, slow, rate-limiting or unreachable, the operator restarted each time (and
//! once calm without a restart, for reference), and then new connectors without any ConductorOne
//! settings created: how long until their Deployment exists.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{
    Args, log, manifests,
    probe::Latency,
    scenario::Cluster,
    support::fake_conductorone::{FakeConductorOne, Fault, FaultRule},
};

const PER_NAMESPACE: usize = 50;

pub struct BrownoutResult {
    pub connectors: usize,
    /// Per case (steady, calm, slow, rate-limited, unreachable): one latency per new connector.
    pub cases: Vec<(&'static str, Vec<Latency>)>,
}

/// Calm, without a restart: the floor, for reference.
pub const STEADY: &str = "steady";
pub const CALM: &str = "calm";
pub const SLOW: &str = "slow";
pub const RATE_LIMITED: &str = "rate-limited";
pub const UNREACHABLE: &str = "unreachable";
/// What the rate-limiting ConductorOne asks for in `Retry-After` on every call, in seconds.
pub const RETRY_AFTER: &str = "2";

pub async fn run(args: &Args) -> anyhow::Result<BrownoutResult> {
    let work = tempfile::Builder::new().prefix("baton-bench-brownout-").tempdir()?;
    let mut c = Cluster::start(args, work.path()).await?;
    let c1 = FakeConductorOne::start().await;
    let synced = args.brownout;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let done = json!({"status": "SYNC_STATUS_DONE", "startedAt": now, "completedAt": now, "lastError": ""});

    let mut yaml = String::new();
    for chunk in 0..synced.div_ceil(PER_NAMESPACE) {
        let ns = format!("synced-{chunk:02}");
        let principal = c1.register_principal(&ns);
        yaml += &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n");
        yaml += &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c1-api\n  namespace: {ns}\nstringData:\n  \
             clientId: {}\n  clientSecret: {}\n---\n",
            principal.client_id, principal.client_secret
        );
        for i in chunk * PER_NAMESPACE..((chunk + 1) * PER_NAMESPACE).min(synced) {
            let (app, connector) = (format!("app-{i:04}"), format!("conn-{i:04}"));
            c1.add_connector(&app, &connector, "okta");
            c1.set_sync_status(&app, &connector, done.clone());
            let name = manifests::connector_name(i);
            yaml += &format!("{}---\n", manifests::secret(&ns, &format!("{name}-c1")));
            yaml += &manifests::connector(&ns, &name);
            yaml += &format!(
                "  conductorOne:\n    apiCredentialsSecretRef:\n      name: c1-api\n    appId: {app}\n    connectorId: {connector}\n---\n"
            );
        }
    }
    let cases = [STEADY, CALM, SLOW, RATE_LIMITED, UNREACHABLE];
    yaml += "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: plain\n---\n";
    for case in cases {
        for i in 0..args.brownout_creates {
            yaml += &format!("{}---\n", manifests::secret("plain", &format!("{case}-{i:03}-c1")));
        }
    }
    let file = work.path().join("synced.yaml");
    std::fs::write(&file, yaml)?;
    log(&format!("brownout: {synced} connectors with ConductorOne sync status"));
    c.kubectl_apply(&file).await?;
    c.start_operator().await?;
    let all = c
        .tracker
        .wait(Duration::from_secs(600), |s| {
            (s.current.keys().filter(|k| k.starts_with("synced-")).count() >= synced).then_some(())
        })
        .await;
    if all.is_none() {
        log("brownout: not every synced connector was reconciled within 10 min; going on");
    }

    let mut out = BrownoutResult { connectors: synced, cases: Vec::new() };
    for case in cases {
        let calls_before = c1.calls().len();
        match case {
            SLOW => c1.set_latency(Some(Duration::from_secs(10))),
            RATE_LIMITED => {
                c1.set_latency(None);
                // 429 with Retry-After on every request, token requests included, until cleared.
                c1.inject(FaultRule::new(Fault::rate_limited(RETRY_AFTER)).times(usize::MAX));
            }
            UNREACHABLE => {
                c1.clear_faults();
                c1.go_offline();
            }
            _ => {}
        }
        log(&format!("brownout: ConductorOne {case}, {} new connectors", args.brownout_creates));
        if case != STEADY {
            c.operator.stop().await;
            c.start_operator().await?;
        }
        let mut started = Vec::new();
        for i in 0..args.brownout_creates {
            let name = format!("{case}-{i:03}");
            c.create(serde_yaml::from_str(&manifests::connector("plain", &name))?).await?;
            started.push((format!("plain/{name}"), Instant::now()));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let deadline = Instant::now() + args.brownout_deadline;
        let done = |s: &crate::probe::Seen| started.iter().all(|(k, _)| s.deployments.contains_key(k));
        c.tracker.wait(deadline.saturating_duration_since(Instant::now()), |s| done(s).then_some(())).await;
        let latencies = c.tracker.with(|s| {
            started.iter().map(|(k, at)| s.deployments.get(k).map(|d| d.duration_since(*at))).collect()
        });
        out.cases.push((case, latencies));
        // That the fault was felt: what the operator asked of ConductorOne during the case.
        let calls = c1.calls();
        let answered =
            |status: u16| calls[calls_before..].iter().filter(|c| c.status == Some(status)).count();
        log(&format!(
            "brownout: {case}: {} ConductorOne requests, {} answered 200, {} answered 429",
            calls.len() - calls_before,
            answered(200),
            answered(429)
        ));
    }
    c1.go_online().await;
    c.operator.stop().await;
    Ok(out)
}
