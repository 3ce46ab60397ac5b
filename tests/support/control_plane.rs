//! A real Kubernetes control plane for end-to-end tests: etcd, kube-apiserver and
//! kube-controller-manager on free loopback ports in a temporary directory, with generated
//! certificates and keys. Everything is killed and removed on drop, also when a test panics.
//!
//! Binaries come from `BATON_E2E_ETCD`, `BATON_E2E_KUBE_APISERVER` and
//! `BATON_E2E_KUBE_CONTROLLER_MANAGER`, else from `PATH`. `BATON_E2E_KUBECONFIG` selects an existing
//! cluster instead.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};

/// The user the operator runs as: its own ServiceAccount from `config/`.
pub const OPERATOR_USER: &str = "system:serviceaccount:baton-system:baton-operator";

/// Where the tests get their cluster from.
pub enum Source {
    Binaries { etcd: PathBuf, apiserver: PathBuf, controller_manager: PathBuf },
    Kubeconfig(PathBuf),
}

/// Finds binaries or a kubeconfig, or says why the suite cannot run.
pub fn discover() -> Result<Source, String> {
    if let Ok(path) = std::env::var("BATON_E2E_KUBECONFIG") {
        return Ok(Source::Kubeconfig(path.into()));
    }
    let find = |var: &str, name: &str| -> Option<PathBuf> {
        if let Ok(p) = std::env::var(var) {
            return Some(p.into());
        }
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
    };
    let etcd = find("BATON_E2E_ETCD", "etcd");
    let apiserver = find("BATON_E2E_KUBE_APISERVER", "kube-apiserver");
    let controller_manager = find("BATON_E2E_KUBE_CONTROLLER_MANAGER", "kube-controller-manager");
    match (etcd, apiserver, controller_manager) {
        (Some(etcd), Some(apiserver), Some(controller_manager)) => {
            Ok(Source::Binaries { etcd, apiserver, controller_manager })
        }
        (e, a, c) => {
            let missing: Vec<&str> = [
                (e.is_none(), "etcd (BATON_E2E_ETCD)"),
                (a.is_none(), "kube-apiserver (BATON_E2E_KUBE_APISERVER)"),
                (c.is_none(), "kube-controller-manager (BATON_E2E_KUBE_CONTROLLER_MANAGER)"),
            ]
            .into_iter()
            .filter_map(|(m, n)| m.then_some(n))
            .collect();
            Err(format!(
                "not found on PATH or in the environment: {}; BATON_E2E_KUBECONFIG is not set either",
                missing.join(", ")
            ))
        }
    }
}

/// A running local control plane.
pub struct ControlPlane {
    dir: tempfile::TempDir,
    /// Each component's command line, kept so that it can be started again on the same data and
    /// ports (an upgrade or a restart, as `restart` plays it).
    components: Vec<Component>,
    children: Vec<(String, Child)>,
    pub server: String,
    pub admin_kubeconfig: PathBuf,
    pub audit_log: PathBuf,
    ca_pem: String,
}

impl ControlPlane {
    pub async fn start(etcd: &Path, apiserver: &Path, controller_manager: &Path) -> anyhow::Result<Self> {
        Self::start_with(etcd, apiserver, controller_manager, &[], &[]).await
    }

    /// Like [`start`](Self::start), with extra flags for kube-apiserver and kube-controller-manager
    /// (the benchmark raises their limits).
    pub async fn start_with(
        etcd: &Path,
        apiserver: &Path,
        controller_manager: &Path,
        extra_apiserver_args: &[String],
        extra_controller_manager_args: &[String],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("baton-e2e-").tempdir()?;
        let d = dir.path().to_path_buf();
        let pki = Pki::generate(&d)?;
        let mut cp = Self {
            dir,
            components: Vec::new(),
            children: Vec::new(),
            server: String::new(),
            admin_kubeconfig: d.join("admin.kubeconfig"),
            audit_log: d.join("audit.log"),
            ca_pem: pki.ca_pem.clone(),
        };

        let (client_port, peer_port) = (free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        cp.spawn(
            "etcd",
            etcd,
            [
                "--name=e2e",
                &format!("--data-dir={}", d.join("etcd").display()),
                &format!("--listen-client-urls={etcd_url}"),
                &format!("--advertise-client-urls={etcd_url}"),
                &format!("--listen-peer-urls={peer_url}"),
                &format!("--initial-advertise-peer-urls={peer_url}"),
                &format!("--initial-cluster=e2e={peer_url}"),
                "--unsafe-no-fsync=true",
            ]
            .map(String::from)
            .to_vec(),
        )?;
        wait_for_tcp(client_port, Duration::from_secs(30)).context("etcd did not start")?;

        let port = free_port()?;
        cp.server = format!("https://127.0.0.1:{port}");
        fs::write(d.join("audit-policy.yaml"), audit_policy())?;
        let p = |name: &str| d.join(name).display().to_string();
        let mut args = extra_apiserver_args.to_vec();
        args.extend(
            [
                &format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1",
                &format!("--secure-port={port}"),
                "--service-cluster-ip-range=10.0.0.0/24",
                &format!("--tls-cert-file={}", p("apiserver.crt")),
                &format!("--tls-private-key-file={}", p("apiserver.key")),
                &format!("--client-ca-file={}", p("ca.crt")),
                "--authorization-mode=Node,RBAC",
                // Otherwise it tries every 10 s to publish 127.0.0.1 as the kubernetes Endpoints.
                "--endpoint-reconciler-type=none",
                "--service-account-issuer=https://kubernetes.default.svc",
                &format!("--service-account-key-file={}", p("sa.pub")),
                &format!("--service-account-signing-key-file={}", p("sa.key")),
                &format!("--requestheader-client-ca-file={}", p("front-proxy-ca.crt")),
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                &format!("--proxy-client-cert-file={}", p("front-proxy-client.crt")),
                &format!("--proxy-client-key-file={}", p("front-proxy-client.key")),
                &format!("--audit-policy-file={}", p("audit-policy.yaml")),
                &format!("--audit-log-path={}", cp.audit_log.display()),
                "--audit-log-maxage=0",
                "--allow-privileged=false",
                // etcd 3.4 cannot answer the size-based list cost estimate: with it on, the API server
                // stalls for up to 60 s at a time ("Error getting keys"), worst right after a restart.
                "--feature-gates=SizeBasedListCostEstimate=false",
            ]
            .map(String::from),
        );
        cp.spawn("kube-apiserver", apiserver, args)?;
        fs::write(&cp.admin_kubeconfig, cp.kubeconfig_with_cert(&pki.admin_crt, &pki.admin_key))?;
        // The controller manager exits when the API server does not answer yet.
        cp.wait_ready().await?;

        let mut args = extra_controller_manager_args.to_vec();
        args.extend(
            [
                &format!("--kubeconfig={}", cp.admin_kubeconfig.display()),
                &format!("--authentication-kubeconfig={}", cp.admin_kubeconfig.display()),
                &format!("--authorization-kubeconfig={}", cp.admin_kubeconfig.display()),
                &format!("--service-account-private-key-file={}", p("sa.key")),
                &format!("--root-ca-file={}", p("ca.crt")),
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                &format!("--secure-port={}", free_port()?),
                // An OpenShift-derived tree adds a controller that writes a ConfigMap into every namespace.
                "--controllers=*,-service-ca-certificate-publisher-controller",
            ]
            .map(String::from),
        );
        cp.spawn("kube-controller-manager", controller_manager, args)?;
        Ok(cp)
    }

    /// An admin client.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.admin_kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = self.client().await?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            self.check_alive()?;
            let req = http::Request::get("/readyz").body(Vec::new())?;
            if client.request_text(req).await.is_ok_and(|t| t.trim() == "ok") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("kube-apiserver not ready after 60 s\n{}", self.log_tail("kube-apiserver", 30))
    }

    /// Fails with the component's last log lines when one of the processes has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let name = name.clone();
                bail!("{name} exited ({status}):\n{}", self.log_tail(&name, 20));
            }
        }
        Ok(())
    }

    /// A kubeconfig for this cluster authenticating with a client certificate.
    fn kubeconfig_with_cert(&self, crt: &str, key: &str) -> String {
        self.kubeconfig_for(&self.server, crt, key)
    }

    fn kubeconfig_for(&self, server: &str, crt: &str, key: &str) -> String {
        use base64::Engine;
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
             users:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n\
             contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: admin\ncurrent-context: e2e\n",
            server,
            b(&self.ca_pem),
            b(crt),
            b(key)
        )
    }

    /// A kubeconfig for this cluster authenticating with a bearer token.
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        use base64::Engine;
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
             users:\n- name: operator\n  user:\n    token: {token}\n\
             contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: operator\ncurrent-context: e2e\n",
            self.server,
            base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
        )
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self, name: &str, binary: &Path, args: Vec<String>) -> anyhow::Result<()> {
        self.components.push(Component { name: name.into(), binary: binary.into(), args });
        self.launch(name)
    }

    /// Starts a component from its recorded command line, appending to its log.
    fn launch(&mut self, name: &str) -> anyhow::Result<()> {
        let component = self
            .components
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("no component {name}"))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))?;
        let child = Command::new(&component.binary)
            .args(&component.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    /// The last lines of a component's log, for failure messages.
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Number of write requests (create, update, patch, delete) the operator's ServiceAccount made,
    /// from the API server's audit log.
    pub fn operator_writes(&self) -> Vec<String> {
        self.operator_requests(&WRITE_VERBS)
    }

    /// The operator's reads (get, list, watch), likewise.
    pub fn operator_reads(&self) -> Vec<String> {
        self.operator_requests(&["get", "list", "watch"])
    }

    fn operator_requests(&self, verbs: &[&str]) -> Vec<String> {
        let text = fs::read_to_string(&self.audit_log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["user"]["username"] == OPERATOR_USER && e["stage"] == "ResponseComplete")
            .filter(|e| verbs.contains(&e["verb"].as_str().unwrap_or_default()))
            // Lease renewals are leader election's heartbeat, not a change to anything.
            .filter(|e| e["objectRef"]["resource"] != "leases")
            .map(|e| {
                format!("{} {}", e["verb"].as_str().unwrap_or("?"), e["requestURI"].as_str().unwrap_or("?"))
            })
            .collect()
    }

    /// Restarts the control plane on the same data, as an upgrade or etcd maintenance does: the API
    /// server (and the controller manager, which exits without it) and, with `etcd`, etcd too are
    /// killed; after `outage` they start again on the same ports, and this returns once the API
    /// server answers `/readyz`, with the moment it did.
    pub async fn restart(&mut self, etcd: bool, outage: Duration) -> anyhow::Result<Instant> {
        let down: &[&str] = if etcd {
            &["kube-controller-manager", "kube-apiserver", "etcd"]
        } else {
            &["kube-controller-manager", "kube-apiserver"]
        };
        for name in down {
            self.kill(name);
        }
        tokio::time::sleep(outage).await;
        for name in down.iter().rev() {
            self.launch(name)?;
            match *name {
                "etcd" => {
                    let port = self.etcd_port()?;
                    wait_for_tcp(port, Duration::from_secs(30)).context("etcd did not start again")?;
                }
                "kube-apiserver" => self.wait_ready().await?,
                _ => {}
            }
        }
        Ok(Instant::now())
    }

    /// A second API server on the same etcd, as in a highly available control plane: the operator
    /// keeps talking to the first, so a test can change the cluster while the operator's API server
    /// is down. Returns an admin client of the second one.
    pub async fn add_apiserver(&mut self) -> anyhow::Result<kube::Client> {
        let first = self.components.iter().find(|c| c.name == "kube-apiserver").context("no API server")?;
        let port = free_port()?;
        let second = self.dir.path().join("audit-second.log");
        let args = first
            .args
            .iter()
            .map(|a| {
                if a.starts_with("--secure-port=") {
                    format!("--secure-port={port}")
                } else if a.starts_with("--audit-log-path=") {
                    format!("--audit-log-path={}", second.display())
                } else {
                    a.clone()
                }
            })
            .collect();
        let binary = first.binary.clone();
        self.spawn("kube-apiserver-second", &binary, args)?;
        let kubeconfig = self.dir.path().join("admin-second.kubeconfig");
        let (crt, key) = (
            fs::read_to_string(self.dir.path().join("admin.crt"))?,
            fs::read_to_string(self.dir.path().join("admin.key"))?,
        );
        fs::write(&kubeconfig, self.kubeconfig_for(&format!("https://127.0.0.1:{port}"), &crt, &key))?;
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig)?,
            &Default::default(),
        )
        .await?;
        let client = kube::Client::try_from(config)?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            self.check_alive()?;
            let req = http::Request::get("/readyz").body(Vec::new())?;
            if client.request_text(req).await.is_ok_and(|t| t.trim() == "ok") {
                return Ok(client);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "the second kube-apiserver was not ready after 60 s\n{}",
            self.log_tail("kube-apiserver-second", 30)
        )
    }

    /// Kills one component (SIGKILL: the harshest stop, as a node losing power) and waits for it.
    fn kill(&mut self, name: &str) {
        if let Some(i) = self.children.iter().position(|(n, _)| n == name) {
            let (_, mut child) = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn etcd_port(&self) -> anyhow::Result<u16> {
        let etcd = self.components.iter().find(|c| c.name == "etcd").context("no etcd")?;
        let url = etcd
            .args
            .iter()
            .find_map(|a| a.strip_prefix("--listen-client-urls="))
            .context("etcd without a client URL")?;
        Ok(url.rsplit(':').next().unwrap_or_default().parse()?)
    }

    /// Keeps the directory (logs, certificates) for a post-mortem.
    pub fn keep(self) -> PathBuf {
        let mut this = self;
        this.stop();
        let dir = std::mem::replace(&mut this.dir, tempfile::tempdir().expect("temp dir"));
        dir.keep()
    }

    fn stop(&mut self) {
        // In reverse order, each one gone before the next: an API server that loses etcd while
        // shutting down hangs for minutes.
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A component's command line.
struct Component {
    name: String,
    binary: PathBuf,
    args: Vec<String>,
}

/// The verbs that change something, as the audit log spells them.
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// Every request of the operator's user, reads included (the benchmark counts what a restart reads);
/// nobody else's.
fn audit_policy() -> String {
    format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: Metadata\n  users: [\"{OPERATOR_USER}\"]\n\
         - level: None\n"
    )
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_tcp(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listens on 127.0.0.1:{port} after {timeout:?}")
}

/// Certificates and keys, written into the control plane's directory.
struct Pki {
    ca_pem: String,
    admin_crt: String,
    admin_key: String,
}

impl Pki {
    fn generate(dir: &Path) -> anyhow::Result<Self> {
        let write = |name: &str, content: &str| fs::write(dir.join(name), content);
        let (ca_pem, ca) = new_ca("e2e-ca")?;
        write("ca.crt", &ca_pem)?;
        let (fp_pem, fp) = new_ca("e2e-front-proxy-ca")?;
        write("front-proxy-ca.crt", &fp_pem)?;

        let mut serving = CertificateParams::new(vec!["localhost".into(), "kubernetes.default.svc".into()])?;
        serving.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse()?));
        serving.subject_alt_names.push(SanType::IpAddress("10.0.0.1".parse()?));
        serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (crt, key) = leaf(serving, &ca)?;
        write("apiserver.crt", &crt)?;
        write("apiserver.key", &key)?;

        let (admin_crt, admin_key) = leaf(client_params("e2e-admin", Some("system:masters"))?, &ca)?;
        write("admin.crt", &admin_crt)?;
        write("admin.key", &admin_key)?;
        let (crt, key) = leaf(client_params("front-proxy-client", None)?, &fp)?;
        write("front-proxy-client.crt", &crt)?;
        write("front-proxy-client.key", &key)?;
        let sa = KeyPair::generate()?;
        write("sa.key", &sa.serialize_pem())?;
        write("sa.pub", &sa.public_key_pem())?;
        Ok(Self { ca_pem, admin_crt, admin_key })
    }
}

fn new_ca(name: &str) -> anyhow::Result<(String, Issuer<'static, KeyPair>)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let pem = params.self_signed(&key)?.pem();
    Ok((pem, Issuer::new(params, key)))
}

fn client_params(cn: &str, org: Option<&str>) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    if let Some(o) = org {
        params.distinguished_name.push(DnType::OrganizationName, o);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

fn leaf(params: CertificateParams, issuer: &Issuer<'_, KeyPair>) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    let crt = params.signed_by(&key, issuer)?.pem();
    Ok((crt, key.serialize_pem()))
}
