//! One fleet size on a fresh control plane: the user's apply and the operator's convergence, its
//! writes, CPU and memory, an idle period, a restart, single creates with the fleet in place, and
//! last, with the operator stopped, the hand-written equivalent applied by kubectl.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, PostParams},
};

use crate::{
    Args, log, manifests,
    probe::{self, Audit, Latency, Tracker},
    support::{
        cluster::{self, Operator},
        control_plane::ControlPlane,
    },
};

/// Everything measured for one N.
#[derive(Default)]
pub struct FleetResult {
    pub n: usize,
    pub user_apply: Duration,
    pub converged: Duration,
    pub baseline_apply: Duration,
    /// Operator writes from the start of the apply until the fleet settled, by `verb resource`.
    pub writes: BTreeMap<String, usize>,
    pub settled: bool,
    pub idle_writes: usize,
    pub restart_writes: usize,
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
    pub restart_peak_rss_mib: f64,
    /// Reads by `verb resource` from stopping the operator until the restarted one is quiet.
    pub restart_reads: BTreeMap<String, usize>,
    pub creates: Vec<Latency>,
}

/// The pieces every scenario needs: a control plane with the CRD, RBAC, a kubelet stand-in, the
/// watch and the audit log.
pub struct Cluster {
    pub cp: ControlPlane,
    pub admin: Client,
    pub tracker: Tracker,
    pub audit: Audit,
    pub operator: Operator,
    _kubelet: tokio::task::JoinHandle<()>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self._kubelet.abort();
    }
}

impl Cluster {
    pub async fn start(args: &Args, work: &Path) -> anyhow::Result<Self> {
        let (etcd, apiserver, controller_manager) = &args.binaries;
        // Room for kubectl, the controller manager and the operator at once on a small machine.
        let apiserver_args =
            ["--max-requests-inflight=1000", "--max-mutating-requests-inflight=500"].map(String::from);
        // At its default 20 requests/s, the controller manager needs over 10 min to give 5,000
        // Deployments their ReplicaSets and pods, and the fleet never settles within the run.
        let controller_manager_args = ["--kube-api-qps=300", "--kube-api-burst=600"].map(String::from);
        let cp = ControlPlane::start_with(
            etcd,
            apiserver,
            controller_manager,
            &apiserver_args,
            &controller_manager_args,
        )
        .await?;
        let admin = cp.client().await?;
        let kubeconfig = cluster::install_operator(&admin, &cp).await?;
        let mut operator = Operator::new(&args.operator, kubeconfig, work.join("operator.log"));
        // As in production: no debug logging to pay for, the default sync poll.
        operator.rust_log = "info".into();
        operator.sync_poll_interval = "5m".into();
        Ok(Self {
            _kubelet: cluster::spawn_kubelet(admin.clone()),
            tracker: Tracker::start(admin.clone()),
            audit: Audit::new(cp.audit_log.clone()),
            cp,
            admin,
            operator,
        })
    }

    pub async fn start_operator(&mut self) -> anyhow::Result<u32> {
        self.operator.start()?;
        self.operator.wait_ready().await?;
        self.operator.pid().context("the operator has no pid")
    }

    /// `kubectl apply --server-side` as the user, timed from start to exit.
    pub async fn kubectl_apply(&self, path: &Path) -> anyhow::Result<Duration> {
        let (kubeconfig, path) = (self.cp.admin_kubeconfig.clone(), path.to_path_buf());
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let out = std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["apply", "--server-side", "--field-manager=bench-user", "-o", "name", "-f"])
                .arg(&path)
                .output()
                .context("running kubectl")?;
            let elapsed = start.elapsed();
            ensure!(
                out.status.success(),
                "kubectl apply -f {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(elapsed)
        })
        .await?
    }

    /// Waits until the restarted operator has reconciled `fleet` resources (its own counter, when it
    /// has one) and then sent no request at all for a few seconds.
    pub async fn restarted_and_quiet(&mut self, fleet: usize) -> anyhow::Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(600) {
            let metrics = self.operator.metrics().await.unwrap_or_default();
            let reconciled: Option<f64> = metrics
                .lines()
                .filter(|l| l.starts_with("baton_operator_reconciliations_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .reduce(|a, b| a + b);
            if reconciled.is_none_or(|r| r >= fleet as f64) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !self.audit.quiet(Duration::from_secs(5), Duration::from_secs(600), |_| true).await? {
            log("the restarted operator did not fall quiet within 10 min");
        }
        Ok(())
    }

    /// Creates a BatonConnector from YAML and waits for its Deployment; `None` after `timeout`.
    pub async fn create_and_time(&self, yaml: &str, timeout: Duration) -> anyhow::Result<Latency> {
        let obj: DynamicObject = serde_yaml::from_str(yaml)?;
        let key = format!(
            "{}/{}",
            obj.metadata.namespace.clone().unwrap_or_default(),
            obj.metadata.name.clone().unwrap_or_default()
        );
        let start = Instant::now();
        self.create(obj).await?;
        Ok(self.tracker.wait(timeout, |s| s.deployments.get(&key).map(|at| at.duration_since(start))).await)
    }

    pub async fn create(&self, obj: DynamicObject) -> anyhow::Result<()> {
        let resource = ApiResource::erase::<baton_operator::api::BatonConnector>(&());
        let ns = obj.metadata.namespace.clone().context("namespace")?;
        let api: Api<DynamicObject> = Api::namespaced_with(self.admin.clone(), &ns, &resource);
        api.create(&PostParams::default(), &obj).await?;
        Ok(())
    }
}

pub async fn run(args: &Args, n: usize) -> anyhow::Result<FleetResult> {
    let work = tempfile::Builder::new().prefix("baton-bench-").tempdir()?;
    let m = manifests::write(work.path(), n, &args.operator)?;
    let mut c = Cluster::start(args, work.path()).await?;
    let mut r = FleetResult { n, ..Default::default() };
    let fleet_keys = |s: &probe::Seen| s.current.keys().filter(|k| k.starts_with("fleet-")).count();

    c.kubectl_apply(&m.fleet_namespaces).await?;
    let pid = c.start_operator().await?;
    log(&format!("N={n}: user applies {n} Secrets + {n} BatonConnectors"));
    let cpu_start = probe::cpu_seconds(pid).unwrap_or_default();
    let t_apply = Timestamp::now();
    let apply_start = Instant::now();
    r.user_apply = c.kubectl_apply(&m.fleet).await?;
    let converged = c
        .tracker
        .wait(args.timeout, |s| {
            let done = s
                .current
                .iter()
                .filter(|(k, _)| k.starts_with("fleet-"))
                .filter_map(|(k, at)| s.deployments.get(k).map(|d| (*at).max(*d)));
            let (count, last) = done.fold((0, apply_start), |(n, last), at| (n + 1, last.max(at)));
            (count >= n).then_some(last)
        })
        .await;
    let Some(converged) = converged else {
        bail!(
            "N={n}: the operator did not converge within {:?} ({} of {n} current)",
            args.timeout,
            c.tracker.with(fleet_keys)
        );
    };
    r.converged = converged.duration_since(apply_start);
    log(&format!(
        "N={n}: apply {:.1} s, converged after {:.1} s",
        r.user_apply.as_secs_f64(),
        r.converged.as_secs_f64()
    ));

    // Settled: every connector Ready (its pod available) and no operator write for 5 s.
    let all_ready = c
        .tracker
        .wait(Duration::from_secs(600), |s| {
            (s.ready.keys().filter(|k| k.starts_with("fleet-")).count() >= n).then_some(())
        })
        .await
        .is_some();
    r.settled = all_ready
        && c.audit.quiet(Duration::from_secs(5), Duration::from_secs(600), |q| q.is_write()).await?;
    if !r.settled {
        log(&format!(
            "N={n}: the fleet did not settle (all Ready: {all_ready}); figures cover what happened"
        ));
    }
    r.cpu_seconds = probe::cpu_seconds(pid).unwrap_or_default() - cpu_start;
    let t_settled = Timestamp::now();
    c.audit.refresh()?;
    r.writes = probe::tally(c.audit.between(t_apply, t_settled).filter(|q| q.is_write()));

    log(&format!("N={n}: idle for {} s", args.idle.as_secs()));
    tokio::time::sleep(args.idle).await;
    c.audit.refresh()?;
    r.idle_writes = c.audit.between(t_settled, Timestamp::now()).filter(|q| q.is_write()).count();
    r.peak_rss_mib = probe::peak_rss_mib(pid).unwrap_or_default();

    log(&format!("N={n}: restarting the operator"));
    let t_restart = Timestamp::now();
    c.operator.stop().await;
    let pid = c.start_operator().await?;
    c.restarted_and_quiet(n).await?;
    let window: Vec<_> = c.audit.between(t_restart, Timestamp::now()).collect();
    r.restart_writes = window.iter().filter(|q| q.is_write()).count();
    r.restart_reads = probe::tally(window.into_iter().filter(|q| !q.is_write()));

    log(&format!("N={n}: {} single creates with the fleet in place", args.creates));
    let ns = manifests::fleet_namespace(0);
    let names: Vec<String> = (0..args.creates).map(|i| format!("new-{i:03}")).collect();
    let secrets: String =
        names.iter().map(|name| format!("{}---\n", manifests::secret(&ns, &format!("{name}-c1")))).collect();
    let secrets_file = work.path().join("new-secrets.yaml");
    std::fs::write(&secrets_file, secrets)?;
    c.kubectl_apply(&secrets_file).await?;
    c.audit.quiet(Duration::from_secs(2), Duration::from_secs(120), |_| true).await?;
    for name in &names {
        r.creates.push(c.create_and_time(&manifests::connector(&ns, name), Duration::from_secs(60)).await?);
    }
    r.restart_peak_rss_mib = probe::peak_rss_mib(pid).unwrap_or_default();
    c.operator.stop().await;

    log(&format!("N={n}: baseline, kubectl applies {n} Secrets + {n} Deployments"));
    c.kubectl_apply(&m.baseline_namespaces).await?;
    r.baseline_apply = c.kubectl_apply(&m.baseline).await?;
    log(&format!("N={n}: baseline apply {:.1} s", r.baseline_apply.as_secs_f64()));
    Ok(r)
}
