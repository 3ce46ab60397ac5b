//! One executed pod's life, as the kubelet lives it: the claims it needs, the image pulls, the
//! volumes, the init containers one after another, then the containers; its status written after
//! every change. It ends when the pod is deleted (its processes stopped) or has finished.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::{Container, PersistentVolumeClaim, Pod},
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt as _,
    api::{Patch, PatchParams},
};
use tokio::sync::{Notify, watch};

use super::{
    container::{self, Outcome, Slot},
    image::{self, ImageConfig, Pull},
    model::{ContainerStatus, PodStatus},
    runtime::{PodNet, Runtime},
    volumes,
};

/// Between two pulls of an image that is not there: doubling up to the cap.
const PULL_BACKOFF: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(10));

/// What every part of one pod's life shares.
pub struct PodCtx {
    pub rt: Arc<Runtime>,
    pub pod: Pod,
    pub net: PodNet,
    pub dir: PathBuf,
    status: Mutex<PodStatus>,
    transitions: Mutex<BTreeMap<String, (bool, Timestamp)>>,
    changed: Notify,
    write: tokio::sync::Mutex<()>,
    stop: watch::Sender<bool>,
    /// Stopped by the kubelet itself (eviction), not by a deletion: the final status is written.
    evicted: std::sync::atomic::AtomicBool,
}

impl PodCtx {
    pub fn new(rt: Arc<Runtime>, pod: Pod) -> Arc<Self> {
        let spec = pod.spec.clone().unwrap_or_default();
        let statuses = |cs: &[Container], reason: &str| -> Vec<ContainerStatus> {
            cs.iter()
                .map(|c| ContainerStatus::new(&c.name, c.image.as_deref().unwrap_or_default(), reason))
                .collect()
        };
        let init = statuses(spec.init_containers.as_deref().unwrap_or_default(), "PodInitializing");
        let waiting = if init.is_empty() { "ContainerCreating" } else { "PodInitializing" };
        let status = PodStatus {
            phase: "Pending".into(),
            pod_ip: String::new(),
            start_time: Timestamp::now(),
            unschedulable: None,
            initialized: init.is_empty(),
            init,
            main: statuses(&spec.containers, waiting),
            failure: None,
        };
        let net = rt.allocate_net();
        let dir = rt.pod_dir(&pod.uid().unwrap_or_default());
        let status = Mutex::new(PodStatus { pod_ip: net.ip.clone(), ..status });
        Arc::new(Self {
            rt,
            pod,
            net,
            dir,
            status,
            transitions: Mutex::new(BTreeMap::new()),
            changed: Notify::new(),
            write: tokio::sync::Mutex::new(()),
            stop: watch::channel(false).0,
            evicted: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn namespace(&self) -> String {
        self.pod.namespace().unwrap_or_default()
    }

    pub fn spec(&self) -> k8s_openapi::api::core::v1::PodSpec {
        self.pod.spec.clone().unwrap_or_default()
    }

    /// Changes the status and has it written.
    pub fn update(&self, f: impl FnOnce(&mut PodStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_one();
    }

    pub fn container_status(&self, slot: Slot, f: impl FnOnce(&mut ContainerStatus)) {
        self.update(|s| {
            let c = match slot {
                Slot::Init(i) => &mut s.init[i],
                Slot::Main(i) => &mut s.main[i],
            };
            f(c);
            if s.initialized {
                let policy = restart_policy(&self.pod);
                s.phase = s.main_phase(|code| restarts(&policy, code));
            }
        });
    }

    /// The pod was deleted: its containers stop.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps, or returns `false` at once when the pod is stopped.
    pub async fn sleep(&self, d: Duration) -> bool {
        let mut stop = self.stopped();
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = stop.changed() => false,
        }
    }

    async fn flush(&self) {
        let _serial = self.write.lock().await;
        if self.is_stopped() && !self.evicted.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let status = {
            let s = self.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            s.to_json(&mut self.transitions.lock().unwrap_or_else(|e| e.into_inner()))
        };
        let api: Api<Pod> = Api::namespaced(self.rt.client.clone(), &self.namespace());
        let _ = api.patch_status(&self.pod.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await;
    }
}

pub fn restart_policy(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into())
}

/// Whether a container that exited with `code` runs again under `policy`.
pub fn restarts(policy: &str, code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => code != 0,
        _ => true,
    }
}

/// Lives the pod's life; returns when it is deleted or has finished.
pub async fn run(ctx: Arc<PodCtx>) {
    let writer = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                ctx.changed.notified().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                ctx.flush().await;
            }
        })
    };
    ctx.changed.notify_one();
    let sizes = tokio::spawn(watch_sizes(ctx.clone()));
    lifecycle(&ctx).await;
    sizes.abort();
    if ctx.evicted.load(std::sync::atomic::Ordering::SeqCst) {
        // The evicted pod's containers were killed.
        let now = Timestamp::now();
        ctx.update(|s| {
            for c in s.init.iter_mut().chain(s.main.iter_mut()) {
                if let super::model::State::Running { started_at } = c.state {
                    c.ready = false;
                    c.state = super::model::State::Terminated(super::model::Terminated {
                        exit_code: 137,
                        reason: "Error".into(),
                        message: String::new(),
                        started_at,
                        finished_at: now,
                    });
                }
            }
        });
    }
    ctx.flush().await;
    writer.abort();
}

async fn lifecycle(ctx: &Arc<PodCtx>) {
    if let Err(why) = &ctx.rt.isolation {
        let message = format!("the e2e kubelet cannot execute containers here: {why}");
        ctx.update(|s| {
            s.main
                .iter_mut()
                .chain(s.init.iter_mut())
                .for_each(|c| c.wait("RunContainerError", message.clone()))
        });
        return;
    }
    if !claims_exist(ctx).await {
        return;
    }
    let Some(images) = pull_images(ctx).await else { return };
    let Some(volumes) = volumes::prepare(ctx).await else { return };
    let spec = ctx.spec();
    let policy = restart_policy(&ctx.pod);
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        // An init container runs again on failure unless the pod never restarts anything.
        let init_policy = if policy == "Never" { "Never" } else { "OnFailure" };
        match container::run(ctx, Slot::Init(i), c, &images[&c.name], &volumes, init_policy).await {
            Outcome::Succeeded => {}
            Outcome::Failed => {
                ctx.update(|s| {
                    s.phase = "Failed".into();
                    for m in &mut s.main {
                        m.wait("PodInitializing", String::new());
                    }
                });
                return;
            }
            Outcome::Stopped => return,
        }
    }
    ctx.update(|s| {
        s.initialized = true;
        s.phase = "Running".into();
        for m in &mut s.main {
            m.wait("ContainerCreating", String::new());
        }
    });
    let runs = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| container::run(ctx, Slot::Main(i), c, &images[&c.name], &volumes, &policy));
    futures::future::join_all(runs).await;
}

/// The scheduler does not place a pod whose claim does not exist; it says so until it does.
async fn claims_exist(ctx: &PodCtx) -> bool {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.rt.client.clone(), &ctx.namespace());
    let claims: Vec<String> = ctx
        .spec()
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.clone()))
        .collect();
    loop {
        let mut missing = None;
        for claim in &claims {
            if !matches!(api.get_opt(claim).await, Ok(Some(_))) {
                missing =
                    Some(format!("0/1 nodes are available: persistentvolumeclaim \"{claim}\" not found."));
                break;
            }
        }
        let found = missing.is_none();
        ctx.update(|s| s.unschedulable = missing);
        if found {
            return true;
        }
        if !ctx.sleep(Duration::from_secs(2)).await {
            return false;
        }
    }
}

/// Every container's image, pulled; `None` when the pod was deleted while a pull kept failing.
async fn pull_images(ctx: &PodCtx) -> Option<BTreeMap<String, ImageConfig>> {
    let spec = ctx.spec();
    let inits = spec.init_containers.iter().flatten().enumerate().map(|(i, c)| (Slot::Init(i), c));
    let all: Vec<(Slot, &Container)> =
        inits.chain(spec.containers.iter().enumerate().map(|(i, c)| (Slot::Main(i), c))).collect();
    let mut out = BTreeMap::new();
    let mut backoff = PULL_BACKOFF.0;
    for (slot, c) in &all {
        let image = c.image.clone().unwrap_or_default();
        loop {
            let message = match image::pull(&image) {
                Pull::Image(config) => {
                    out.insert(c.name.clone(), config);
                    break;
                }
                Pull::NotFound(message) => message,
                Pull::Unknown => format!("{image}: not found"),
            };
            ctx.container_status(*slot, |s| s.wait("ErrImagePull", message));
            if !ctx.sleep(Duration::from_secs(2)).await {
                return None;
            }
            let back = format!("Back-off pulling image \"{image}\"");
            ctx.container_status(*slot, |s| s.wait("ImagePullBackOff", back));
            if !ctx.sleep(backoff).await {
                return None;
            }
            backoff = (backoff * 2).min(PULL_BACKOFF.1);
        }
    }
    Some(out)
}

/// The eviction manager's check of `emptyDir` `sizeLimit`s, every 2 s: a volume over its limit fails
/// the pod (`Evicted`, with the kubelet's message) and stops its containers.
async fn watch_sizes(ctx: Arc<PodCtx>) {
    let limits: Vec<(String, String, u64)> = ctx
        .spec()
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| {
            let q = v.empty_dir.as_ref()?.size_limit.as_ref()?.0.clone();
            let bytes = container::parse_quantity(&q)?;
            Some((v.name.clone(), q, bytes))
        })
        .collect();
    if limits.is_empty() {
        return;
    }
    while ctx.sleep(Duration::from_secs(2)).await {
        for (name, quantity, bytes) in &limits {
            if usage(&ctx.dir.join("volumes").join(name)) > *bytes {
                let message =
                    format!("Usage of EmptyDir volume \"{name}\" exceeds the limit \"{quantity}\". ");
                ctx.evicted.store(true, std::sync::atomic::Ordering::SeqCst);
                ctx.update(|s| {
                    s.phase = "Failed".into();
                    s.failure = Some(("Evicted".into(), message));
                });
                ctx.stop();
                return;
            }
        }
    }
}

/// Bytes of the files under `dir`.
pub fn usage(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => usage(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_decide_which_exits_run_again() {
        assert!(restarts("Always", 0) && restarts("Always", 1));
        assert!(!restarts("OnFailure", 0) && restarts("OnFailure", 137));
        assert!(!restarts("Never", 0) && !restarts("Never", 1));
    }

    #[test]
    fn usage_counts_the_files_below_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/x"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("y"), vec![0u8; 24]).unwrap();
        assert_eq!(usage(dir.path()), 1024);
        assert_eq!(usage(&dir.path().join("missing")), 0);
    }
}
