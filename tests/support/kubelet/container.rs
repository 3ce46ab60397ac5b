//! One container of an executed pod: its environment resolved at each start (a missing Secret or key
//! leaves it waiting in `CreateContainerConfigError`), its process started in the image's root, its
//! probes, its memory watched against the limit (over it: `SIGKILL`, `OOMKilled`, exit 137), and
//! its restarts with back-off (`CrashLoopBackOff`, `lastState.terminated` with the exit code and
//! the termination message).
//!
//! Back-off is short so that the suite sees several restarts: 1 s, doubling up to 8 s, reset after
//! a run of a minute (the kubelet's is 10 s doubling up to 5 min, reset after 10 min). A stopped
//! container gets `SIGTERM`, then `SIGKILL` after its pod's grace period, at most 10 s here.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Container, PodSecurityContext, SecurityContext},
    jiff::Timestamp,
};
use tokio::sync::mpsc;

use super::{
    env,
    image::ImageConfig,
    isolate::{self, Mount, Spec},
    model::{State, Terminated},
    pod::{PodCtx, restarts},
    probe::{self, Kind},
    runtime::{ProcessRecord, Snapshot},
    volumes::{self, Volumes},
};

const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
const BACKOFF_RESET: Duration = Duration::from_secs(60);
const MAX_GRACE: Duration = Duration::from_secs(10);
/// `FallbackToLogsOnError` keeps this much of the log's end (the kubelet's limits).
const LOG_TAIL_LINES: usize = 80;
const LOG_TAIL_BYTES: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Init(usize),
    Main(usize),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Stopped,
}

enum Attempt {
    /// It cannot be created now (config error): try again shortly.
    NotCreated,
    Exited(Terminated, Duration),
    Stopped,
}

/// Runs the container until it has finished for good under `policy`, or the pod is stopped.
pub async fn run(
    ctx: &PodCtx,
    slot: Slot,
    c: &Container,
    image: &ImageConfig,
    volumes: &Volumes,
    policy: &str,
) -> Outcome {
    let mut backoff = BACKOFF_BASE;
    let mut attempt = 0usize;
    loop {
        match start(ctx, slot, c, image, volumes, attempt).await {
            Attempt::Stopped => return Outcome::Stopped,
            Attempt::NotCreated => {
                if !ctx.sleep(Duration::from_secs(2)).await {
                    return Outcome::Stopped;
                }
            }
            Attempt::Exited(t, ran) => {
                attempt += 1;
                if !restarts(policy, t.exit_code) {
                    let code = t.exit_code;
                    ctx.container_status(slot, |s| {
                        s.ready = false;
                        s.state = State::Terminated(t);
                    });
                    return if code == 0 { Outcome::Succeeded } else { Outcome::Failed };
                }
                if ran >= BACKOFF_RESET {
                    backoff = BACKOFF_BASE;
                }
                let pod = format!(
                    "{}_{}({})",
                    ctx.pod.metadata.name.clone().unwrap_or_default(),
                    ctx.namespace(),
                    ctx.pod.metadata.uid.clone().unwrap_or_default()
                );
                let message = format!(
                    "back-off {}s restarting failed container={} pod={pod}",
                    backoff.as_secs(),
                    c.name
                );
                ctx.container_status(slot, |s| {
                    s.last = Some(t);
                    s.wait("CrashLoopBackOff", message);
                });
                if !ctx.sleep(backoff).await {
                    return Outcome::Stopped;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// The process's description: the pod's command and args over the image's, the resolved
/// environment over the image's, the working directory, user and groups, and the mounts.
fn exec_spec(
    ctx: &PodCtx,
    c: &Container,
    image: &ImageConfig,
    resolved: Vec<(String, String)>,
    mounts: Vec<Mount>,
    dir: &Path,
) -> Result<Spec, String> {
    let mut environment = image.env.clone();
    environment.push(("HOSTNAME".into(), ctx.pod.metadata.name.clone().unwrap_or_default()));
    for (k, v) in resolved {
        environment.retain(|(name, _)| *name != k);
        environment.push((k, v));
    }
    // How the stand-in plays the pod's network: see `mod.rs`.
    environment.push(("E2E_POD_IP".into(), ctx.net.ip.clone()));
    environment.push(("E2E_POD_LOOPBACK".into(), ctx.net.loopback.clone()));
    let defined = environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand = |args: &Vec<String>| args.iter().map(|a| env::expand(a, &defined)).collect::<Vec<_>>();
    let mut argv = match &c.command {
        Some(command) => expand(command),
        None => image.entrypoint.clone(),
    };
    argv.extend(match (&c.args, &c.command) {
        (Some(args), _) => expand(args),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone(),
    });
    let Some(program) = argv.first().cloned() else {
        return Err("no command specified".into());
    };
    if !program.contains('/') {
        let path = environment.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone()).unwrap_or_default();
        let found = path.split(':').map(|d| Path::new(d).join(&program)).find(|p| p.exists());
        let found =
            found.ok_or_else(|| format!("exec: \"{program}\": executable file not found in $PATH"))?;
        argv[0] = found.to_string_lossy().into_owned();
    }
    let pod_sc = ctx.spec().security_context.unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let (uid, gid, groups) = identity(&pod_sc, &sc, image.user);
    Ok(Spec {
        argv,
        env: environment,
        rootfs: dir.join("rootfs"),
        working_dir: c.working_dir.clone().unwrap_or_else(|| image.working_dir.clone()),
        uid,
        gid,
        groups,
        read_only_root: sc.read_only_root_filesystem == Some(true),
        mounts,
        log: dir.join("log"),
    })
}

/// The user, group and supplementary groups: the container's settings over the pod's over the
/// image's; `fsGroup` and `supplementalGroups` join the groups.
fn identity(pod: &PodSecurityContext, c: &SecurityContext, image_user: u32) -> (u32, u32, Vec<u32>) {
    let uid = c.run_as_user.or(pod.run_as_user).map_or(image_user, |u| u as u32);
    let gid = c.run_as_group.or(pod.run_as_group).map_or(if uid == 0 { 0 } else { uid }, |g| g as u32);
    let mut groups = vec![gid];
    groups.extend(pod.fs_group.map(|g| g as u32));
    groups.extend(pod.supplemental_groups.iter().flatten().map(|g| *g as u32));
    groups.dedup();
    (uid, gid, groups)
}

/// Everything the container's process needs mounted: the image's root, the volumes, and the file
/// behind `terminationMessagePath`. Creates the working directory where runc would.
fn all_mounts(
    c: &Container,
    image: &ImageConfig,
    volumes: &Volumes,
    dir: &Path,
) -> Result<Vec<Mount>, String> {
    let rootfs = dir.join("rootfs");
    let mut mounts =
        isolate::image_root(&rootfs, image).map_err(|e| format!("preparing the image's root: {e}"))?;
    let own = volumes::mounts(volumes, c.volume_mounts.as_deref().unwrap_or_default())?;
    let workdir = c.working_dir.clone().unwrap_or_else(|| image.working_dir.clone());
    let holder =
        own.iter().filter(|m| Path::new(&workdir).starts_with(&m.target)).max_by_key(|m| m.target.len());
    let made = match holder {
        Some(m) => std::fs::create_dir_all(
            m.source.join(Path::new(&workdir).strip_prefix(&m.target).unwrap_or(Path::new(""))),
        ),
        None => std::fs::create_dir_all(rootfs.join(workdir.trim_start_matches('/'))),
    };
    made.map_err(|e| format!("creating the working directory {workdir}: {e}"))?;
    mounts.extend(own);
    let log = dir.join("termination-log");
    std::fs::write(&log, b"").map_err(|e| e.to_string())?;
    std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .map_err(|e| e.to_string())?;
    let path = c.termination_message_path.clone().unwrap_or_else(|| "/dev/termination-log".into());
    mounts.push(Mount { source: log, target: path, read_only: false });
    Ok(mounts)
}

/// One start of the container, to its exit (or the pod's stop).
async fn start(
    ctx: &PodCtx,
    slot: Slot,
    c: &Container,
    image: &ImageConfig,
    volumes: &Volumes,
    attempt: usize,
) -> Attempt {
    let objects = match Snapshot::read(&ctx.rt.client, &ctx.namespace()).await {
        Ok(o) => o,
        Err(_) => return Attempt::NotCreated,
    };
    // `fieldRef` reads the pod as it is now: with its IP.
    let mut pod = ctx.pod.clone();
    let status = pod.status.get_or_insert_with(Default::default);
    status.pod_ip = Some(ctx.net.ip.clone());
    status.host_ip = Some("127.0.0.1".into());
    let resolved = match env::resolve(&pod, c, &objects) {
        Ok(e) => e,
        Err(e) => {
            ctx.container_status(slot, |s| s.wait(e.reason, e.message));
            return Attempt::NotCreated;
        }
    };
    let dir = ctx.dir.join(&c.name).join(attempt.to_string());
    let started_at = Timestamp::now();
    let spec = std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| all_mounts(c, image, volumes, &ctx.dir.join(&c.name)))
        .and_then(|mounts| exec_spec(ctx, c, image, resolved, mounts, &ctx.dir.join(&c.name)));
    let spec = spec.map(|mut s| {
        s.log = dir.join("log");
        s
    });
    let started = spec.and_then(|s| match isolate::spawn(&s) {
        Ok(child) => Ok((s, child)),
        Err(e) => Err(format!("failed to start container \"{}\": {e}", c.name)),
    });
    let (spec, mut child) = match started {
        Ok(started) => started,
        Err(message) => {
            let now = Timestamp::now();
            let t = Terminated {
                exit_code: 128,
                reason: "StartError".into(),
                message,
                started_at,
                finished_at: now,
            };
            return Attempt::Exited(t, Duration::ZERO);
        }
    };
    let pid = child.id().unwrap_or_default();
    let client_id = spec.env.iter().find(|(k, _)| k == "BATON_CLIENT_ID").map(|(_, v)| v.clone());
    ctx.rt.record_start(ProcessRecord {
        namespace: ctx.namespace(),
        pod: ctx.pod.metadata.name.clone().unwrap_or_default(),
        container: c.name.clone(),
        pid,
        client_id,
        started: started_at,
        ended: None,
    });
    let ran = Instant::now();
    let watched = watch(ctx, (slot, attempt), c, &spec, &mut child, pid, started_at).await;
    let code = match &watched {
        Watched::Exited { code, .. } => *code,
        Watched::Stopped(code) => *code,
    };
    ctx.rt.record_end(pid, code);
    let Watched::Exited { code, oom } = watched else { return Attempt::Stopped };
    let reason = if oom {
        "OOMKilled"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let message = termination_message(c, &ctx.dir.join(&c.name).join("termination-log"), &spec.log, code);
    let t = Terminated {
        exit_code: code,
        reason: reason.into(),
        message,
        started_at,
        finished_at: Timestamp::now(),
    };
    Attempt::Exited(t, ran.elapsed())
}

/// The termination message: what the process wrote to its termination-message file, else, with
/// `FallbackToLogsOnError` and a failure, the end of its log.
fn termination_message(c: &Container, file: &Path, log: &Path, code: i32) -> String {
    let written = std::fs::read_to_string(file).unwrap_or_default();
    if !written.is_empty()
        || code == 0
        || c.termination_message_policy.as_deref() != Some("FallbackToLogsOnError")
    {
        return written;
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    let start = tail.len().saturating_sub(LOG_TAIL_BYTES);
    let start = (start..=tail.len()).find(|i| tail.is_char_boundary(*i)).unwrap_or(tail.len());
    tail[start..].to_string()
}

enum Watched {
    Exited {
        code: i32,
        oom: bool,
    },
    /// The pod was stopped: the code the process ended with.
    Stopped(i32),
}

/// Probe state: consecutive failures and successes, per probe.
#[derive(Default)]
struct Counts {
    fails: i32,
    oks: i32,
}

/// Watches the running process: probes, memory, the pod's stop; returns how it ended.
async fn watch(
    ctx: &PodCtx,
    (slot, attempt): (Slot, usize),
    c: &Container,
    spec: &Spec,
    child: &mut tokio::process::Child,
    pid: u32,
    started_at: Timestamp,
) -> Watched {
    let (startup, liveness, readiness) =
        (c.startup_probe.clone(), c.liveness_probe.clone(), c.readiness_probe.clone());
    let mut started = startup.is_none();
    ctx.container_status(slot, |s| {
        s.state = State::Running { started_at };
        // Counts the starts before this one, as the kubelet's does.
        s.restart_count = attempt as i32;
        s.started = started;
        s.ready = started && readiness.is_none();
    });
    let (tx, mut rx) = mpsc::channel(16);
    let mut exec = spec.clone();
    exec.log = spec.log.with_file_name("probes.log");
    let probes: Vec<_> =
        [(Kind::Startup, &startup), (Kind::Liveness, &liveness), (Kind::Readiness, &readiness)]
            .into_iter()
            .filter_map(|(k, p)| {
                Some(probe::spawn(k, p.clone()?, c, ctx.net.ip.clone(), exec.clone(), tx.clone()))
            })
            .collect();
    let limit = memory_limit(c);
    let mut counts: [Counts; 3] = Default::default();
    let mut stop = ctx.stopped();
    let mut oom = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let grace = grace(ctx);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = tick.tick() => {
                if let (Some(limit), Some(rss)) = (limit, isolate::rss(pid)) && rss > limit && !oom {
                    oom = true;
                    isolate::signal(pid, libc::SIGKILL);
                }
            }
            Some((kind, ok)) = rx.recv() => {
                let probe = match kind { Kind::Startup => &startup, Kind::Liveness => &liveness, Kind::Readiness => &readiness };
                let Some(probe) = probe else { continue };
                let n = &mut counts[kind as usize];
                if ok { n.oks += 1; n.fails = 0 } else { n.fails += 1; n.oks = 0 }
                let failed = n.fails >= probe.failure_threshold.unwrap_or(3);
                let passed = n.oks >= probe.success_threshold.unwrap_or(1);
                match kind {
                    Kind::Startup if !started && passed => {
                        started = true;
                        let ready = readiness.is_none();
                        ctx.container_status(slot, |s| { s.started = true; s.ready = ready; });
                    }
                    Kind::Startup | Kind::Liveness if failed && (kind == Kind::Liveness) == started => {
                        let _ = terminate(child, pid, grace).await;
                    }
                    Kind::Readiness if started && (passed || failed) => {
                        ctx.container_status(slot, |s| s.ready = passed);
                    }
                    _ => {}
                }
            }
            _ = stop.changed() => {
                let code = terminate(child, pid, grace).await;
                probes.iter().for_each(|p| p.abort());
                return Watched::Stopped(code);
            }
        }
    };
    probes.iter().for_each(|p| p.abort());
    Watched::Exited { code: exit_code(status.ok()), oom }
}

fn exit_code(status: Option<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    match status {
        Some(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9)),
        None => 255,
    }
}

fn grace(ctx: &PodCtx) -> Duration {
    let seconds = ctx.spec().termination_grace_period_seconds.unwrap_or(30).max(0) as u64;
    Duration::from_secs(seconds).min(MAX_GRACE)
}

/// `SIGTERM`, then `SIGKILL` once the grace period is over; the exit code.
async fn terminate(child: &mut tokio::process::Child, pid: u32, grace: Duration) -> i32 {
    isolate::signal(pid, libc::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => exit_code(status.ok()),
        Err(_) => {
            let _ = child.start_kill();
            exit_code(child.wait().await.ok())
        }
    }
}

/// `resources.limits.memory` in bytes.
fn memory_limit(c: &Container) -> Option<u64> {
    let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?.0.clone();
    parse_quantity(&q)
}

pub fn parse_quantity(q: &str) -> Option<u64> {
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| (n * factor as f64) as u64);
        }
    }
    q.parse::<f64>().ok().map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_bytes() {
        assert_eq!(parse_quantity("64Mi"), Some(64 << 20));
        assert_eq!(parse_quantity("1Gi"), Some(1 << 30));
        assert_eq!(parse_quantity("500M"), Some(500_000_000));
        assert_eq!(parse_quantity("1024"), Some(1024));
    }

    #[test]
    fn the_container_user_wins_over_the_pod_and_the_image() {
        let pod = PodSecurityContext { run_as_user: Some(1000), fs_group: Some(2000), ..Default::default() };
        let c = SecurityContext { run_as_user: Some(3000), ..Default::default() };
        assert_eq!(identity(&pod, &c, 65532), (3000, 3000, vec![3000, 2000]));
        assert_eq!(identity(&Default::default(), &Default::default(), 0), (0, 0, vec![0]));
    }

    #[test]
    fn fallback_to_logs_keeps_the_end_of_a_failed_run() {
        let dir = tempfile::tempdir().unwrap();
        let (file, log) = (dir.path().join("t"), dir.path().join("log"));
        std::fs::write(&file, "").unwrap();
        let lines: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
        std::fs::write(&log, lines.join("\n")).unwrap();
        let c = Container {
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            ..Default::default()
        };
        let message = termination_message(&c, &file, &log, 1);
        assert!(message.ends_with("line 199") && message.starts_with("line 120"), "{message}");
        assert_eq!(termination_message(&c, &file, &log, 0), "");
        std::fs::write(&file, "said so").unwrap();
        assert_eq!(termination_message(&c, &file, &log, 1), "said so");
    }
}
