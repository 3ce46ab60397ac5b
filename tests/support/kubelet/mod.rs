//! The suite's kubelet (issue #16 items 3 and 4). The control plane has no node; this plays one.
//!
//! **Which pods it executes.** A pod whose every container runs an image of the reserved registry
//! `e2e.local` (see [`image`]) is executed; any other pod is simulated as before
//! ([`crate::cluster::simulate`]: marked Running and Ready, nothing runs).
//!
//! **Executing** a pod ([`pod`], [`container`]) is what the kubelet does, on this host: the claims
//! must exist (else the scheduler's `Unschedulable`), the images pull (`e2e.local/missing/...`:
//! `ErrImagePull`, then `ImagePullBackOff`), the volumes become directories ([`volumes`]), init
//! containers run one after another, then the containers, each with the pod's command and args over
//! the image's, its environment resolved as the kubelet resolves it ([`env`]: a missing Secret or
//! key leaves it in `CreateContainerConfigError` with the kubelet's message), its working
//! directory, user and groups, the root filesystem read-only when asked ([`isolate`]: a private
//! mount namespace and `chroot`), its probes ([`probe`]), its memory limit (over it: `OOMKilled`,
//! exit 137) and restarts with a short back-off ([`container`] says how short). The status is
//! written after each change, with a pod IP of its own. A deleted pod's processes get `SIGTERM`,
//! then `SIGKILL`; no process outlives the kubelet (it kills what is left when dropped, and every
//! process has `PR_SET_PDEATHSIG`).
//!
//! **Pod network.** Processes share the host's network. Each pod gets an address of its own in
//! 127.0.0.0/8 (`127.77.x.y`, in `status.podIP`) and another that stands for its loopback
//! (`127.78.x.y`). The stand-in connector binds what it is told to the way a pod would: `0.0.0.0`
//! becomes the pod IP, `127.0.0.1`/`localhost` the pod's loopback (it learns both from
//! `E2E_POD_IP` and `E2E_POD_LOOPBACK`, which the kubelet adds as a runtime adds `HOSTNAME`). So
//! probes against the pod IP reach a health server bound to `0.0.0.0` and not one bound to
//! `127.0.0.1`, and two pods' servers on one port never collide.
//!
//! **Where it degrades.** Executing needs a private mount namespace, `chroot` and `setuid`: root
//! (CI runs the suite as root). Without them [`Kubelet::isolation`] says why, executed pods wait in
//! `RunContainerError` with that reason, and the suite reports the cases that need them as
//! skipped, never as passed (`BATON_E2E_NO_EXEC=1` plays such a host). The kubelet's other limits: pods are not bound to a node, so the API
//! server removes a deleted pod at once and its processes stop right after (not before) it is gone;
//! memory is the main process's resident set, polled every 100 ms; an `emptyDir` over its
//! `sizeLimit` evicts the pod (checked every 2 s, as the eviction manager does, not refused at the
//! write); cgroups (CPU) are not used.
//!
//! [`connector`] is the stand-in connector program itself, which the suite's binary becomes when
//! its image environment says so ([`image::PLAYS_VAR`]).

pub mod connector;
pub mod container;
pub mod env;
pub mod image;
pub mod isolate;
pub mod model;
pub mod pod;
pub mod probe;
pub mod runtime;
pub mod sdk;
pub mod standin;
pub mod volumes;

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, ResourceExt as _,
    runtime::watcher::{self, Event},
};

pub use runtime::ProcessRecord;
use runtime::Runtime;

type Pods = Arc<Mutex<HashMap<String, Arc<pod::PodCtx>>>>;

/// The running kubelet; it stops, and stops every process it started, when dropped.
pub struct Kubelet {
    rt: Arc<Runtime>,
    pods: Pods,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    /// Plays the kubelet for the pods `selector` selects, keeping its files under `root`.
    pub fn start(client: Client, selector: &str, root: PathBuf) -> Self {
        let rt = Runtime::new(client.clone(), root);
        let pods: Pods = Arc::default();
        let task = tokio::spawn(dispatch(rt.clone(), pods.clone(), selector.to_string()));
        Self { rt, pods, task }
    }

    /// Whether containers can be executed here; `Err` says why not.
    pub fn isolation(&self) -> Result<(), String> {
        self.rt.isolation.clone()
    }

    /// Every process started so far, oldest first.
    pub fn processes(&self) -> Vec<ProcessRecord> {
        self.rt.records.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The directory behind a PersistentVolumeClaim.
    pub fn claim_dir(&self, namespace: &str, claim: &str) -> PathBuf {
        self.rt.claim_dir(namespace, claim)
    }

    /// The directory behind one of a pod's volumes (an `emptyDir`, a Secret's files).
    pub fn volume_dir(&self, pod: &Pod, volume: &str) -> PathBuf {
        self.rt.pod_dir(&pod.uid().unwrap_or_default()).join("volumes").join(volume)
    }

    /// What a pod's container wrote to stdout and stderr, every start of it in order (as
    /// `kubectl logs` and `kubectl logs --previous` together).
    pub fn logs(&self, pod: &Pod, container: &str) -> String {
        let dir = self.rt.pod_dir(&pod.uid().unwrap_or_default()).join(container);
        let mut out = String::new();
        for attempt in 0.. {
            match std::fs::read_to_string(dir.join(attempt.to_string()).join("log")) {
                Ok(text) => out.push_str(&text),
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
        for ctx in self.pods.lock().unwrap_or_else(|e| e.into_inner()).values() {
            ctx.stop();
        }
        for r in self.processes().iter().filter(|r| r.ended.is_none()) {
            isolate::signal(r.pid, libc::SIGKILL);
        }
    }
}

async fn dispatch(rt: Arc<Runtime>, pods: Pods, selector: String) {
    let api: Api<Pod> = Api::all(rt.client.clone());
    let stream = watcher::watcher(api, watcher::Config::default().labels(&selector));
    let mut stream = kube::runtime::utils::StreamBackoff::new(stream, crate::cluster::QuickRetry).boxed();
    let mut listed: Option<HashSet<String>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(p)) => seen(&rt, &pods, p).await,
            Ok(Event::InitApply(p)) => {
                listed.get_or_insert_with(HashSet::new).insert(p.uid().unwrap_or_default());
                seen(&rt, &pods, p).await;
            }
            Ok(Event::Delete(p)) => stop(&pods, &p.uid().unwrap_or_default()),
            Ok(Event::Init) => listed = Some(HashSet::new()),
            Ok(Event::InitDone) => {
                // Pods deleted while the watch was down.
                let listed = listed.take().unwrap_or_default();
                let gone: Vec<String> = pods
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys()
                    .filter(|u| !listed.contains(*u))
                    .cloned()
                    .collect();
                gone.iter().for_each(|u| stop(&pods, u));
            }
            Err(_) => {}
        }
    }
}

fn executed(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let mut images = spec.into_iter().flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers));
    images.all(|c| c.image.as_deref().is_some_and(image::known))
}

async fn seen(rt: &Arc<Runtime>, pods: &Pods, pod: Pod) {
    let uid = pod.uid().unwrap_or_default();
    if pod.metadata.deletion_timestamp.is_some() {
        return stop(pods, &uid);
    }
    if !executed(&pod) {
        return crate::cluster::simulate(&rt.client, &pod).await;
    }
    let mut all = pods.lock().unwrap_or_else(|e| e.into_inner());
    if all.contains_key(&uid) {
        return;
    }
    let ctx = pod::PodCtx::new(rt.clone(), pod);
    all.insert(uid, ctx.clone());
    tokio::spawn(pod::run(ctx));
}

fn stop(pods: &Pods, uid: &str) {
    if let Some(ctx) = pods.lock().unwrap_or_else(|e| e.into_inner()).remove(uid) {
        ctx.stop();
    }
}
