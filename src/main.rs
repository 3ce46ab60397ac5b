//! The `baton-operator` binary: a thin CLI over the library.

use std::{
    io::Write as _,
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use anyhow::Context as _;
use baton_operator::{
    api,
    conductorone::{ClientConfig, ConductorOneClient},
    controller, leader,
    metrics::Metrics,
    render, server, telemetry,
};
use clap::{Parser, Subcommand};

/// Runs ConductorOne Baton connectors on Kubernetes from BatonConnector resources.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the current kubeconfig context, or in-cluster config in a pod.
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD into a directory
    /// (`crd --dir crds`, as committed).
    Crd {
        /// Write `<group>_<plural>.yaml` per CRD into this directory instead of printing them.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the ValidatingAdmissionPolicy (and its binding) that refuses, at `kubectl apply`, the
    /// definite errors in a catalogued connector's settings.
    AdmissionPolicy,
    /// Print the objects `run` would apply for the BatonConnectors in a file (no cluster needed).
    /// Secrets in the same file stand in for the cluster's.
    Render {
        /// YAML file with BatonConnectors and the Secrets they reference; `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace for resources that do not name one.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Namespaces to watch (repeat or comma-separate); all namespaces when unset.
    #[arg(long, env = "WATCH_NAMESPACES", value_delimiter = ',')]
    namespace: Vec<String>,
    /// Address of /livez, /readyz and /metrics.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// How often converged resources are re-checked (reads only), e.g. `10m`.
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    resync_interval: Duration,
    /// How many resources reconcile at once.
    #[arg(long, env = "CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// How often each connector's sync status is read from ConductorOne (plus up to 10% jitter).
    #[arg(long, env = "SYNC_POLL_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    sync_poll_interval: Duration,
    /// Label selector of the BatonConnectors this process reconciles, to split a fleet across
    /// several operator installs (shards); all when unset. Example: `shard=a`, `shard notin (a,b)`.
    #[arg(long, env = "SELECTOR")]
    selector: Option<String>,
    /// Share of the ConductorOne request rate the sync-status poller may spend (the rest is kept for
    /// rotations), of each tenant's own rate for a tenant's connectors. The poll interval stretches
    /// when this budget cannot cover the fleet.
    #[arg(long, env = "C1_POLL_SHARE", default_value_t = 0.5, value_parser = parse_share)]
    c1_poll_share: f64,
    /// Log format: JSON lines, or text (coloured on a terminal only, never with NO_COLOR set).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    log_format: telemetry::LogFormat,
    /// Timeout of one ConductorOne API request, e.g. `15s`.
    #[arg(long, env = "C1_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    c1_timeout: Duration,
    /// Requests per second to ConductorOne, for all connectors together.
    #[arg(long, env = "C1_REQUESTS_PER_SECOND", default_value_t = 5)]
    c1_requests_per_second: u32,
    /// Requests ConductorOne may receive at once above the steady rate.
    #[arg(long, env = "C1_BURST", default_value_t = 10)]
    c1_burst: u32,
    /// Retries of one ConductorOne call after 429, 5xx or a network error.
    #[arg(long, env = "C1_MAX_RETRIES", default_value_t = 3)]
    c1_max_retries: u32,
    /// Elect a leader through a Lease so that several replicas can run; only the leader reconciles.
    #[arg(long, env = "LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the leader-election Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "baton-system")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "baton-operator")]
    lease_name: String,
    /// This replica's identity in the Lease; the pod name in a cluster.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Talk plain HTTP to ConductorOne hosts on loopback. For tests against a local fake only.
    #[arg(long, hide = true)]
    c1_insecure_loopback: bool,
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 (exclusive) and 1")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match dispatch(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`baton-operator crd | head`): nothing is left to tell anyone.
        Err(err) if err.is::<StdoutClosed>() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Crd { dir: None } => write_stdout(&api::crds_yaml()),
        Command::Crd { dir: Some(dir) } => {
            for crd in api::crds() {
                let path = dir.join(api::crd_file_name(&crd));
                std::fs::write(&path, api::crd_yaml(&crd))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::AdmissionPolicy => write_stdout(&baton_operator::catalog::admission::manifests(
            baton_operator::catalog::Catalog::embedded(),
        )),
        Command::Render { file, namespace } => {
            let input = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            write_stdout(&render::render(&input, &namespace)?)
        }
        Command::Run(args) => run(args).await,
    }
}

/// Standard output was closed by its reader. Only output to stdout maps to it, so that a broken
/// connection elsewhere (to the API server, say) is never mistaken for it and silenced.
#[derive(Debug, thiserror::Error)]
#[error("standard output is closed")]
struct StdoutClosed;

/// `print!` panics when stdout is a closed pipe; this returns [`StdoutClosed`] instead.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => Ok(other.context("writing to standard output")?),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let listener = server::bind(args.http_addr).await?;
    let client = kube::Client::try_default().await.context("no usable kubeconfig or in-cluster config")?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let config = controller::Config {
        namespaces: args.namespace,
        resync_interval: args.resync_interval,
        concurrency: args.concurrency,
        sync_poll_interval: args.sync_poll_interval,
        sync_poll_budget: f64::from(args.c1_requests_per_second) * args.c1_poll_share,
        selector: args.selector,
        operator_namespace: args.lease_namespace.clone(),
        ..Default::default()
    };
    let c1_config = ClientConfig {
        timeout: args.c1_timeout,
        requests_per_second: args.c1_requests_per_second,
        burst: args.c1_burst,
        max_retries: args.c1_max_retries,
        allow_insecure_http: args.c1_insecure_loopback,
        ..Default::default()
    };
    let hook_metrics = metrics.clone();
    let conductorone =
        ConductorOneClient::with_metrics(c1_config, Arc::new(move |call| hook_metrics.record_call(call)))
            .context("configuring the ConductorOne client")?;
    let ctx = Arc::new(controller::Context::new(client, conductorone, metrics, config));
    // Per-resource series are computed from the controller's cache at scrape time.
    registry.register_collector(Box::new(ctx.fleet.clone()));
    registry.register_collector(Box::new(controller::runtime::watch_health::WatchMetrics(
        ctx.watch_health.clone(),
    )));
    // Per-tenant series: the tenant store and each tenant's call accounting, at scrape time.
    registry.register_collector(Box::new(baton_operator::metrics::tenants::TenantMetrics(Arc::new(
        controller::c1::tenant_metrics::TenantSampler {
            caches: ctx.caches.clone(),
            pools: ctx.pools.clone(),
        },
    ))));
    let ready = Arc::new(AtomicBool::new(false));
    let readiness = server::Readiness { listed: ready.clone(), watches: ctx.watch_health.clone() };
    let http = tokio::spawn(server::serve(listener, Arc::new(registry), readiness));
    tracing::info!(addr = %args.http_addr, "starting baton-operator");
    let leadership = if args.leader_election {
        let config = leader::LeaderConfig {
            namespace: args.lease_namespace,
            lease_name: args.lease_name,
            identity: args.identity.unwrap_or_else(|| format!("baton-operator-{}", std::process::id())),
            duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(1),
        };
        Some(leader::acquire(ctx.client.clone(), &config, &ready).await?)
    } else {
        None
    };
    match leadership {
        None => tokio::select! {
            res = http => res?.context("HTTP server failed")?,
            () = controller::run(ctx, ready) => {}
        },
        Some(mut lead) => {
            tokio::select! {
                res = http => res?.context("HTTP server failed")?,
                // On SIGTERM the controller returns once its in-flight reconciles are done; only then
                // is the lease given up, so the next leader never overlaps with a write of this one.
                () = controller::run(ctx, ready) => {}
                () = lead.lost() => anyhow::bail!("lost the leader-election lease; stopping so that only one replica writes"),
            }
            lead.release().await;
        }
    }
    Ok(())
}
