//! The connector pods' own answer: what the kubelet and the scheduler say about the pods of the
//! current template, reduced to the first problem a person should hear of. Pure: the pods come in as
//! [`PodView`]s (what the pod cache keeps of each pod), the time comes in as a number.
//!
//! The order is the order of a pod's life and of what to fix first: an image that cannot be pulled,
//! a Secret or key the container cannot get, a crash loop (an OOM kill when that is how the last run
//! ended), an OOM kill, a pod no node takes, and last a container that runs but whose probes keep
//! failing past a grace period.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod};
use kube::ResourceExt;

use super::redact;
use crate::{
    api::Reason,
    resources::{deployment::TEMPLATE_HASH_ANNOTATION, labels},
};

/// How long a started container may stay unready before its probes count as failing: connectors
/// take a few seconds to reach their app, and the startup probe's own budget is longer still.
pub const PROBE_GRACE: Duration = Duration::from_secs(30);

/// What a probe failure usually means for a connector, and what to do: the operator's probes are
/// those of `spec.healthCheck`, which the SDK serves only from v0.7.6 on (older connectors ignore
/// `BATON_HEALTH_CHECK`, so nothing listens on the port).
const PROBE_HINT: &str = ": the connector serves its health endpoints only when built on baton-sdk v0.7.6 or newer (older \
     connectors ignore BATON_HEALTH_CHECK and nothing listens on the port); use an image of such a release, or set \
     spec.healthCheck.enabled to false";

/// The label the Job controller puts on a run's pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// What the pod cache keeps of one pod: a few hundred bytes instead of the whole object (~10 KB), and
/// only what [`service`] and [`failed_run`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    /// The BatonConnector the pod runs for (its instance label).
    pub instance: String,
    /// OneShot mode: the Job (run) the pod belongs to.
    pub job: Option<String>,
    /// Which template the pod was made from, as [`template_of`] says.
    pub template: Option<u64>,
    /// Being deleted: a pod on its way out says nothing about the current template.
    pub deleting: bool,
    /// `Succeeded` or `Failed`: the pod will not run again.
    pub finished: bool,
    /// Creation time, in seconds: the newest pod of a run speaks for it.
    pub created: i64,
    /// The scheduler's message while the pod is `Unschedulable`.
    pub unschedulable: Option<String>,
    /// Init containers first, then the others.
    pub containers: Box<[ContainerView]>,
}

/// One container of a [`PodView`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    /// `resources.limits.memory`, as written.
    pub memory_limit: Option<String>,
    pub restarts: i32,
    pub ready: bool,
    /// The startup probe passed (true when there is none).
    pub started: bool,
    /// Running since (seconds), while it runs.
    pub running_since: Option<i64>,
    /// Why it waits, with the kubelet's message (one line, bounded), for the reasons reported.
    pub waiting: Option<(String, String)>,
    /// How its latest run ended: the current state when it is terminated, else the last state.
    pub terminated: Option<Termination>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    pub reason: String,
    pub exit_code: i32,
    /// The termination message (with `FallbackToLogsOnError`, the end of its log when it failed):
    /// redacted and bounded when the view is made, so no credential is ever kept.
    pub last_words: String,
}

/// The waiting reasons this module reports; others (`ContainerCreating`, `PodInitializing`) are
/// progress, and their messages are not kept.
const REPORTED_WAITING: &[&str] =
    &["ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "CrashLoopBackOff"];

/// Which template a pod (or a Deployment's template) is, by the template's
/// `baton.conductorone.com/template-hash` annotation, which pods carry verbatim. `None` for a pod an
/// older operator made; such a pod is never the current template's.
pub fn template_of(annotations: Option<&BTreeMap<String, String>>) -> Option<u64> {
    let hash = annotations?.get(TEMPLATE_HASH_ANNOTATION)?;
    u64::from_str_radix(hash, 16).ok()
}

impl PodView {
    /// What is kept of a pod; `None` for a pod without the instance label (not a connector's).
    pub fn of(pod: &Pod) -> Option<Self> {
        let instance = pod.labels().get(labels::INSTANCE_LABEL)?.clone();
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let unschedulable = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
            .map(|c| redact::one_line(c.message.as_deref().unwrap_or("no node fits the pod")));
        let limits = |name: &str| {
            let all = spec.into_iter().flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers));
            all.filter(|c| c.name == name)
                .find_map(|c| c.resources.as_ref()?.limits.as_ref()?.get("memory").map(|q| q.0.clone()))
        };
        let statuses = status.into_iter().flat_map(|s| {
            s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten())
        });
        let containers =
            statuses.filter(|c| telling(c)).map(|c| container_view(c, limits(&c.name))).collect();
        Some(Self {
            name: pod.name_any(),
            instance,
            job: pod.labels().get(JOB_NAME_LABEL).or_else(|| pod.labels().get("job-name")).cloned(),
            template: template_of(pod.metadata.annotations.as_ref()),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            finished: matches!(status.and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")),
            created: pod.metadata.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
            unschedulable,
            containers,
        })
    }
}

/// Whether a container can say anything [`service`] or [`failed_run`] reports: a healthy running
/// container (most of a fleet's) cannot, and is not kept at all.
fn telling(c: &ContainerStatus) -> bool {
    let state = c.state.as_ref();
    let running = state.is_some_and(|s| s.running.is_some());
    let healthy = running && c.ready && c.started.unwrap_or(true);
    !healthy
}

fn container_view(c: &ContainerStatus, memory_limit: Option<String>) -> ContainerView {
    let state = c.state.as_ref();
    let waiting = state.and_then(|s| s.waiting.as_ref()).and_then(|w| {
        let reason = w.reason.clone()?;
        REPORTED_WAITING
            .contains(&reason.as_str())
            .then(|| (reason, redact::one_line(w.message.as_deref().unwrap_or_default())))
    });
    // How the last run ended matters to a container that waits to run again (a crash loop), not to
    // one that runs.
    let last = waiting.as_ref().and_then(|_| termination(c.last_state.as_ref()));
    let terminated = termination(state).or(last);
    ContainerView {
        name: c.name.clone(),
        image: c.image.clone(),
        memory_limit,
        restarts: c.restart_count,
        ready: c.ready,
        started: c.started.unwrap_or(true),
        running_since: state
            .and_then(|s| s.running.as_ref())
            .map(|r| r.started_at.as_ref().map_or(0, |t| t.0.as_second())),
        waiting,
        terminated,
    }
}

fn termination(state: Option<&ContainerState>) -> Option<Termination> {
    let t = state?.terminated.as_ref()?;
    Some(Termination {
        reason: t.reason.clone().unwrap_or_else(|| "Error".into()),
        exit_code: t.exit_code,
        last_words: redact::last_words(t.message.as_deref().unwrap_or_default()),
    })
}

/// The first problem of a connector's pods, as status reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodProblem {
    pub reason: Reason,
    /// `Ready`'s message: which pod and container, and what to know to fix it.
    pub message: String,
    /// `status.workload.pod`, one line: `CrashLoopBackOff: exit 1, 5 restarts: <last words>`.
    pub short: String,
}

impl PodProblem {
    fn new(reason: Reason, pod: &str, detail: String, short: String) -> Self {
        Self { reason, message: format!("pod {pod}: {detail}"), short: format!("{reason}: {short}") }
    }

    /// Whether only a person can fix it (kstatus `Stalled`): a wrong image, a missing Secret, a
    /// connector that crashes or runs out of memory stay that way. A registry hiccup (the first
    /// `ErrImagePull`), a full cluster (`Unschedulable`, which an autoscaler may fix) and a slow start
    /// (`ProbeFailing`) may pass: those are `Reconciling`.
    pub fn needs_person(&self) -> bool {
        !matches!(self.reason, Reason::ErrImagePull | Reason::Unschedulable | Reason::ProbeFailing)
    }

    /// The problem the status reports, read back from it: `Ready`'s reason and message, and
    /// `status.workload.pod`, which only a pod's problem sets.
    pub fn reported(reason: &str, message: &str, short: Option<&str>) -> Option<Self> {
        Some(Self { reason: Reason::parse(reason)?, message: message.into(), short: short?.into() })
    }

    /// The pod the message names.
    fn pod(&self) -> Option<&str> {
        self.message.strip_prefix("pod ")?.split_once(':').map(|(pod, _)| pod)
    }
}

/// A loop passes through states that say less than the loop: between two back-offs the kubelet
/// pulls again (`ErrImagePull`) or runs the crashed container again, unready, until it crashes once
/// more. Reporting those would flip `Ready`, `Stalled` and the events with every retry, so while the
/// pod named in the status is still there and unhealthy, its loop stays reported (a new problem, a
/// probe failing past its grace, or a healthy pod ends it).
fn steady(now: Option<PodProblem>, previous: Option<&PodProblem>, live: &[&PodView]) -> Option<PodProblem> {
    let Some(previous) = previous else { return now };
    let Some(pod) = previous.pod().and_then(|name| live.iter().find(|p| p.name == name)) else {
        return now;
    };
    let looping =
        matches!(previous.reason, Reason::CrashLoopBackOff | Reason::OOMKilled | Reason::ImagePullBackOff);
    match &now {
        Some(n) if n.reason == Reason::ErrImagePull && previous.reason == Reason::ImagePullBackOff => {
            Some(previous.clone())
        }
        // Healthy containers are not kept: one left is unready, waiting or terminated.
        None if looping && !pod.containers.is_empty() => Some(previous.clone()),
        _ => now,
    }
}

/// What the pods of the current template say, and when to look again (a probe's grace ends).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodReading {
    pub problem: Option<PodProblem>,
    pub recheck: Option<Duration>,
}

/// Service mode: the first problem among the live pods of the template `template`.
/// `previous`: the problem the status reports now (see [`PodProblem::reported`]).
pub fn service(
    pods: &[PodView],
    template: Option<u64>,
    now: i64,
    previous: Option<&PodProblem>,
) -> PodReading {
    let current = |p: &PodView| template.is_some() && p.template == template;
    let mut live: Vec<&PodView> = pods.iter().filter(|p| current(p) && !p.deleting && !p.finished).collect();
    // Newest first, so that of two pods with one problem the current one is named.
    live.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
    let reading = match first_problem(&live) {
        Some(problem) => PodReading { problem: Some(problem), recheck: None },
        None => probes(&live, now),
    };
    PodReading { problem: steady(reading.problem, previous, &live), recheck: reading.recheck }
}

/// OneShot mode: why a failed run's pod failed (its newest pod), if the pod is still there.
pub fn failed_run(pods: &[PodView], job: &str) -> Option<PodProblem> {
    let pod = pods.iter().filter(|p| p.job.as_deref() == Some(job)).max_by_key(|p| (p.created, &p.name))?;
    if let Some(problem) = first_problem(&[pod]) {
        return Some(problem);
    }
    // Init containers come first: the connector, then the uploader.
    let (c, t) =
        pod.containers.iter().find_map(|c| Some((c, c.terminated.as_ref().filter(|t| t.exit_code != 0)?)))?;
    if t.reason == "OOMKilled" {
        return Some(oom(pod, c, t));
    }
    let short = with_last_words(format!("exit {}", t.exit_code), t);
    let detail = with_last_words(format!("container {} exited with code {}", c.name, t.exit_code), t);
    Some(PodProblem::new(Reason::ContainerFailed, &pod.name, detail, short))
}

/// The first problem in the order of the module's doc, among `pods` (in the order given).
fn first_problem(pods: &[&PodView]) -> Option<PodProblem> {
    let containers = || pods.iter().flat_map(|p| p.containers.iter().map(move |c| (*p, c)));
    let waiting = |reason: &str| {
        containers()
            .find_map(|(p, c)| c.waiting.as_ref().filter(|(r, _)| r == reason).map(|(_, m)| (p, c, m)))
    };
    for (reason, why) in [(Reason::ImagePullBackOff, "backing off"), (Reason::ErrImagePull, "failed")] {
        if let Some((p, c, m)) = waiting(reason.as_str()) {
            let detail = format!("pulling image {} for container {} {why}: {m}", c.image, c.name);
            return Some(PodProblem::new(reason, &p.name, detail, c.image.clone()));
        }
    }
    if let Some((p, c, m)) = waiting("CreateContainerConfigError") {
        let detail = format!("container {} cannot be created: {m}", c.name);
        return Some(PodProblem::new(Reason::CreateContainerConfigError, &p.name, detail, m.clone()));
    }
    if let Some((p, c, _)) = waiting("CrashLoopBackOff") {
        let t = c.terminated.clone().unwrap_or(Termination {
            reason: "Error".into(),
            exit_code: 0,
            last_words: String::new(),
        });
        if t.reason == "OOMKilled" {
            return Some(oom(p, c, &t));
        }
        let counts = format!("exit {}, {} restarts", t.exit_code, c.restarts);
        let detail = with_last_words(format!("container {} keeps crashing ({counts})", c.name), &t);
        return Some(PodProblem::new(Reason::CrashLoopBackOff, &p.name, detail, with_last_words(counts, &t)));
    }
    let killed = containers().find(|(_, c)| {
        c.running_since.is_none()
            && c.waiting.is_none()
            && c.terminated.as_ref().is_some_and(|t| t.reason == "OOMKilled")
    });
    if let Some((p, c)) = killed {
        return Some(oom(p, c, c.terminated.as_ref().expect("found above")));
    }
    if let Some(p) = pods.iter().find(|p| p.unschedulable.is_some()) {
        let m = p.unschedulable.clone().unwrap_or_default();
        return Some(PodProblem::new(
            Reason::Unschedulable,
            &p.name,
            format!("no node takes the pod: {m}"),
            m,
        ));
    }
    None
}

fn oom(p: &PodView, c: &ContainerView, t: &Termination) -> PodProblem {
    let limit = c.memory_limit.as_deref().unwrap_or("none set");
    let short = format!("limit {limit}, {} restarts", c.restarts);
    let detail = format!(
        "container {} was killed for using more memory than its limit ({limit}; {} restarts); raise spec.resources.limits.memory",
        c.name, c.restarts
    );
    PodProblem::new(Reason::OOMKilled, &p.name, with_last_words(detail, t), short)
}

fn with_last_words(text: String, t: &Termination) -> String {
    match t.last_words.is_empty() {
        true => text,
        false => format!("{text}: {}", t.last_words),
    }
}

/// A container that has run for [`PROBE_GRACE`] without becoming ready (or started): its probes
/// fail. One still within its grace asks for a look when the grace ends.
fn probes(pods: &[&PodView], now: i64) -> PodReading {
    let mut recheck: Option<Duration> = None;
    for p in pods {
        for c in p.containers.iter() {
            let Some(since) = c.running_since.filter(|_| !c.ready || !c.started) else { continue };
            let grace_ends = since.saturating_add(PROBE_GRACE.as_secs() as i64);
            if now < grace_ends {
                let wait = Duration::from_secs((grace_ends - now) as u64 + 1);
                recheck = Some(recheck.map_or(wait, |r| r.min(wait)));
                continue;
            }
            let probe = if c.started { "readiness" } else { "startup" };
            let at =
                k8s_openapi::jiff::Timestamp::from_second(since).map(|t| t.to_string()).unwrap_or_default();
            let detail = format!(
                "container {} has run since {at} and its {probe} probe still fails{PROBE_HINT}",
                c.name
            );
            let short = format!("{probe} probe failing since {at}");
            return PodReading {
                problem: Some(PodProblem::new(Reason::ProbeFailing, &p.name, detail, short)),
                recheck: None,
            };
        }
    }
    PodReading { problem: None, recheck }
}

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;
