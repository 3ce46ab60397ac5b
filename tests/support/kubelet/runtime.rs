//! What the kubelet's pods share: the API client, its directory, pod IPs, and the record of every
//! process it started (which the suite reads to know what ran when, and with which credential).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use k8s_openapi::{
    api::core::v1::{ConfigMap, Secret},
    jiff::Timestamp,
};
use kube::{Api, Client, ResourceExt as _};

/// One process the kubelet started.
#[derive(Clone, Debug)]
pub struct ProcessRecord {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub pid: u32,
    /// `BATON_CLIENT_ID` in its environment, if any: which credential it was given.
    pub client_id: Option<String>,
    pub started: Timestamp,
    /// When it was seen to exit, and its exit code (128 + signal when killed).
    pub ended: Option<(Timestamp, i32)>,
}

pub struct Runtime {
    pub client: Client,
    pub root: PathBuf,
    /// `Err` says why containers cannot be executed here (no mount namespaces).
    pub isolation: Result<(), String>,
    pub records: Mutex<Vec<ProcessRecord>>,
}

/// A pod's addresses: its IP (where probes and other pods reach it) and the address that plays its
/// own loopback (`127.0.0.1` inside the pod), which nothing outside the pod reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNet {
    pub ip: String,
    pub loopback: String,
}

impl Runtime {
    pub fn new(client: Client, root: PathBuf) -> Arc<Self> {
        // `BATON_E2E_NO_EXEC=1` plays a host without mount namespaces, to see how the suite reports it.
        let isolation = match std::env::var("BATON_E2E_NO_EXEC").as_deref() {
            Ok("1") => Err("disabled by BATON_E2E_NO_EXEC=1".into()),
            _ => super::isolate::available(),
        };
        Arc::new(Self { client, root, isolation, records: Mutex::new(Vec::new()) })
    }

    /// A pod IP of its own: `127.77.x.y`, with `127.78.x.y` as its loopback. Every address of
    /// 127.0.0.0/8 is the host's loopback, so both can be bound without configuring anything. One
    /// counter for the whole process: two kubelets of one suite never hand out the same address.
    pub fn allocate_net(&self) -> PodNet {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let (x, y) = (n / 250 % 250, n % 250 + 2);
        PodNet { ip: format!("127.77.{x}.{y}"), loopback: format!("127.78.{x}.{y}") }
    }

    pub fn record_start(&self, record: ProcessRecord) {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }

    pub fn record_end(&self, pid: u32, code: i32) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = records.iter_mut().rev().find(|r| r.pid == pid && r.ended.is_none()) {
            r.ended = Some((Timestamp::now(), code));
        }
    }

    /// Where the claim's files are: one directory per PersistentVolumeClaim, kept across pods.
    pub fn claim_dir(&self, namespace: &str, claim: &str) -> PathBuf {
        self.root.join("claims").join(namespace).join(claim)
    }

    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root.join("pods").join(uid)
    }
}

/// The Secrets and ConfigMaps of a namespace as the kubelet reads them for one container start.
pub struct Snapshot {
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub config_maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl Snapshot {
    pub async fn read(client: &Client, ns: &str) -> kube::Result<Self> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let secrets = secrets.list(&Default::default()).await?.items.into_iter().map(|s| {
            let data = s.data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
            (s.name_any(), data)
        });
        let config_maps = maps.list(&Default::default()).await?.items.into_iter().map(|c| {
            let mut data: BTreeMap<String, Vec<u8>> =
                c.data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
            data.extend(c.binary_data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
            (c.name_any(), data)
        });
        Ok(Self { secrets: secrets.collect(), config_maps: config_maps.collect() })
    }
}

fn text(data: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    data.iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect()
}

impl super::env::Objects for Snapshot {
    fn secret(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.secrets.get(name).map(text)
    }
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.config_maps.get(name).map(text)
    }
}
