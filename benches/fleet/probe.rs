//! What the benchmark observes, all from outside the operator: a watch on BatonConnectors and
//! Deployments (when each one became current, ready, or got its Deployment), the API server's audit
//! log (the operator's requests), and `/proc` (its CPU time and peak memory).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::{Read, Seek, SeekFrom},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::{api::apps::v1::Deployment, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DynamicObject},
    core::PartialObjectMeta,
    runtime::{WatchStreamExt, watcher},
};

use crate::support::control_plane::{OPERATOR_USER, WRITE_VERBS};

/// First moments, per `namespace/name`, as the watch delivered them.
#[derive(Default)]
pub struct Seen {
    /// `status.observedGeneration == metadata.generation`.
    pub current: HashMap<String, Instant>,
    /// `Ready=True` on the current generation.
    pub ready: HashMap<String, Instant>,
    pub deployments: HashMap<String, Instant>,
}

pub struct Tracker {
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

impl Tracker {
    pub fn start(client: Client) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        // Untyped, so that a resource written for a newer CRD cannot stop the watch.
        let resource = ApiResource::erase::<baton_operator::api::BatonConnector>(&());
        let bcs: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let s = seen.clone();
        let bc_task = tokio::spawn(async move {
            let mut stream = watcher(bcs, Default::default()).applied_objects().default_backoff().boxed();
            while let Some(Ok(bc)) = stream.next().await {
                let at = Instant::now();
                let key = key(&bc);
                let status = &bc.data["status"];
                if status["observedGeneration"].as_i64() != bc.metadata.generation {
                    continue;
                }
                let ready = status["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
                let mut seen = s.lock().unwrap();
                seen.current.entry(key.clone()).or_insert(at);
                if ready {
                    seen.ready.entry(key).or_insert(at);
                }
            }
        });
        let deployments: Api<PartialObjectMeta<Deployment>> = Api::all(client);
        let s = seen.clone();
        let deploy_task = tokio::spawn(async move {
            let mut stream =
                watcher(deployments, Default::default()).applied_objects().default_backoff().boxed();
            while let Some(Ok(d)) = stream.next().await {
                let at = Instant::now();
                s.lock().unwrap().deployments.entry(key(&d)).or_insert(at);
            }
        });
        Self { seen, tasks: vec![bc_task, deploy_task] }
    }

    pub fn with<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }

    /// Polls `check` until it answers, or `timeout` passes. The moments measured come from the
    /// watch, so the polling period does not enter the figures.
    pub async fn wait<T>(&self, timeout: Duration, mut check: impl FnMut(&Seen) -> Option<T>) -> Option<T> {
        let start = Instant::now();
        loop {
            if let Some(v) = self.with(&mut check) {
                return Some(v);
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn key<K: kube::Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// One request of the operator, from the audit log.
pub struct Request {
    pub at: Timestamp,
    pub verb: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    /// The object's name, when the request names one.
    pub name: String,
}

impl Request {
    pub fn is_write(&self) -> bool {
        WRITE_VERBS.contains(&self.verb.as_str())
    }
}

/// The audit log, read incrementally: at 5,000 connectors it holds tens of thousands of lines.
pub struct Audit {
    path: PathBuf,
    offset: u64,
    partial: String,
    ids: HashSet<String>,
    pub requests: Vec<Request>,
}

impl Audit {
    pub fn new(path: PathBuf) -> Self {
        Self { path, offset: 0, partial: String::new(), ids: HashSet::new(), requests: Vec::new() }
    }

    pub fn refresh(&mut self) -> anyhow::Result<()> {
        let Ok(mut file) = std::fs::File::open(&self.path) else { return Ok(()) };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        self.offset += file.read_to_end(&mut bytes)? as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let Some(end) = self.partial.rfind('\n') else { return Ok(()) };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            // A watch is logged when it starts and again when it ends; count it once.
            let id = e["auditID"].as_str().unwrap_or_default().to_string();
            if e["user"]["username"] != OPERATOR_USER || !self.ids.insert(id) {
                continue;
            }
            let Some(at) = e["requestReceivedTimestamp"].as_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let object = &e["objectRef"];
            let mut resource = object["resource"].as_str().unwrap_or("?").to_string();
            if let Some(sub) = object["subresource"].as_str() {
                resource = format!("{resource}/{sub}");
            }
            let verb = e["verb"].as_str().unwrap_or("?").to_string();
            let name = object["name"].as_str().unwrap_or_default().to_string();
            self.requests.push(Request { at, verb, resource, name });
        }
        Ok(())
    }

    pub fn between(&self, from: Timestamp, to: Timestamp) -> impl Iterator<Item = &Request> {
        self.requests.iter().filter(move |r| r.at >= from && r.at < to)
    }

    /// Waits until the operator has sent no request matching `counts` for `quiet`; gives up after `timeout`.
    pub async fn quiet(
        &mut self,
        quiet: Duration,
        timeout: Duration,
        counts: impl Fn(&Request) -> bool,
    ) -> anyhow::Result<bool> {
        let start = Instant::now();
        let (mut last, mut since) = (usize::MAX, Instant::now());
        while start.elapsed() < timeout {
            self.refresh()?;
            let n = self.requests.iter().filter(|r| counts(r)).count();
            if n != last {
                (last, since) = (n, Instant::now());
            } else if since.elapsed() >= quiet {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(false)
    }
}

/// Counts per `verb resource`.
pub fn tally<'a>(requests: impl Iterator<Item = &'a Request>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in requests {
        *out.entry(format!("{} {}", r.verb, r.resource)).or_default() += 1;
    }
    out
}

/// User plus system CPU time of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are fixed. utime and stime are
    // fields 14 and 15 of the whole line, 12 and 13 after the name.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Peak resident set size (`VmHWM`), in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A latency, or `None` when nothing happened before the deadline.
pub type Latency = Option<Duration>;

/// Nearest-rank percentile; latencies that never completed rank above all others.
pub fn percentile(samples: &[Latency], p: f64) -> Latency {
    let mut sorted: Vec<Latency> = samples.to_vec();
    sorted.sort_by_key(|l| l.unwrap_or(Duration::MAX));
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank - 1).copied().flatten()
}
