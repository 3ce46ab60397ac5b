//! Fleet benchmark (issue 9): the operator's release binary against a local control plane, next to
//! `kubectl apply --server-side` of the equivalent hand-written manifests, all in one run. Prints one
//! Markdown table and writes it to `target/fleet-bench.md`. See `docs/performance.md`.
//!
//! ```sh
//! source .ci/control-plane.sh && cargo bench --bench fleet                 # N = 1,000 and 5,000
//! source .ci/control-plane.sh && cargo bench --bench fleet -- --n 100      # quick, for development
//! ```
//!
//! Options: `--n 1000,5000,10000`, `--idle <s>` (30), `--creates <count>` (50), `--brownout <count>`
//! (200 connectors with ConductorOne settings; 0 skips the brownout), `--brownout-creates <count>` (20),
//! `--brownout-deadline <s>` (90), `--isolation <count>` (50 managed connectors per tenant in the
//! brownout's two-tenant case; 0 skips it), `--managed <count>` (50 connectors with managed credentials; 0 skips
//! them), `--timeout <s>` (1200, for convergence), `--out <file>`, `--operator <binary>` (another build of
//! the operator, to compare two versions under the same harness).
//! It exits non-zero only when it could not measure.

use baton_test_support as support;

#[path = "fleet/brownout.rs"]
mod brownout;
#[path = "fleet/isolation.rs"]
mod isolation;
#[path = "fleet/managed.rs"]
mod managed;
#[path = "fleet/manifests.rs"]
mod manifests;
#[path = "fleet/probe.rs"]
mod probe;
#[path = "fleet/report.rs"]
mod report;
#[path = "fleet/scenario.rs"]
mod scenario;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context as _, bail};

pub struct Args {
    pub sizes: Vec<usize>,
    pub idle: Duration,
    pub creates: usize,
    pub brownout: usize,
    pub brownout_creates: usize,
    pub brownout_deadline: Duration,
    /// Connectors per tenant in the brownout's two-tenant case.
    pub isolation: usize,
    pub managed: usize,
    pub timeout: Duration,
    pub out: PathBuf,
    pub operator: PathBuf,
    /// etcd, kube-apiserver, kube-controller-manager.
    pub binaries: (PathBuf, PathBuf, PathBuf),
}

const CREATE_DEADLINE: Duration = Duration::from_secs(60);

fn parse() -> anyhow::Result<Args> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let mut a = Args {
        sizes: vec![1000, 5000],
        idle: Duration::from_secs(30),
        creates: 50,
        brownout: 200,
        brownout_creates: 20,
        brownout_deadline: Duration::from_secs(90),
        isolation: 50,
        managed: 50,
        timeout: Duration::from_secs(1200),
        out: target.join("fleet-bench.md"),
        operator: PathBuf::from(env!("CARGO_BIN_EXE_baton-operator")),
        binaries: Default::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` passes `--bench` to every harness-less bench.
        if flag == "--bench" {
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let secs = |v: &str| -> anyhow::Result<Duration> { Ok(Duration::from_secs(v.parse()?)) };
        match flag.as_str() {
            "--n" => {
                a.sizes =
                    value.split(',').map(|n| n.trim().replace('_', "").parse()).collect::<Result<_, _>>()?
            }
            "--idle" => a.idle = secs(&value)?,
            "--creates" => a.creates = value.parse()?,
            "--brownout" => a.brownout = value.parse()?,
            "--brownout-creates" => a.brownout_creates = value.parse()?,
            "--brownout-deadline" => a.brownout_deadline = secs(&value)?,
            "--isolation" => a.isolation = value.parse()?,
            "--managed" => a.managed = value.parse()?,
            "--operator" => a.operator = value.into(),
            "--timeout" => a.timeout = secs(&value)?,
            "--out" => a.out = value.into(),
            other => bail!("unknown option {other}"),
        }
    }
    // `--n 0` measures no fleet (only the managed connectors and the brownout).
    a.sizes.retain(|&n| n > 0);
    a.sizes.sort_unstable();
    a.binaries = match support::control_plane::discover().map_err(anyhow::Error::msg)? {
        support::control_plane::Source::Binaries { etcd, apiserver, controller_manager } => {
            (etcd, apiserver, controller_manager)
        }
        support::control_plane::Source::Kubeconfig(_) => {
            bail!("the benchmark starts its own control plane; unset BATON_E2E_KUBECONFIG")
        }
    };
    Ok(a)
}

pub fn log(msg: &str) {
    eprintln!("[{}] {msg}", k8s_openapi::jiff::Timestamp::now().strftime("%H:%M:%S"));
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fleet benchmark: cannot run: {e:#} (did you `source .ci/control-plane.sh`?)");
            return ExitCode::FAILURE;
        }
    };
    // Taken before measuring: the commit and working tree measured, not those at the end.
    let context = context(&args);
    let mut failed = false;
    let mut fleets = Vec::new();
    for &n in &args.sizes {
        match scenario::run(&args, n).await {
            Ok(r) => fleets.push(r),
            Err(e) => {
                log(&format!("N={n}: could not measure: {e:#}"));
                failed = true;
            }
        }
    }
    let managed = if args.managed > 0 {
        managed::run(&args)
            .await
            .inspect_err(|e| {
                log(&format!("managed: could not measure: {e:#}"));
                failed = true;
            })
            .ok()
    } else {
        None
    };
    let brownout = if args.brownout > 0 {
        brownout::run(&args)
            .await
            .inspect_err(|e| {
                log(&format!("brownout: could not measure: {e:#}"));
                failed = true;
            })
            .ok()
    } else {
        None
    };
    let isolation = if args.isolation > 0 {
        isolation::run(&args)
            .await
            .inspect_err(|e| {
                log(&format!("isolation: could not measure: {e:#}"));
                failed = true;
            })
            .ok()
    } else {
        None
    };
    let table = report::table(
        &fleets,
        managed.as_ref(),
        brownout.as_ref(),
        isolation.as_ref(),
        CREATE_DEADLINE,
        args.brownout_deadline,
        args.idle,
    );
    let doc = format!("{context}\n{}", table.markdown());
    println!("\n{doc}");
    if let Err(e) = std::fs::write(&args.out, &doc) {
        log(&format!("could not write {}: {e}", args.out.display()));
    } else {
        log(&format!("written to {}", args.out.display()));
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// When, on what, and which commit: the figures mean little without it.
fn context(args: &Args) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let dirty = if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        ""
    } else {
        " (with uncommitted changes)"
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "Fleet benchmark, {}, commit {}{dirty}, {cores} cores, operator `{}`\n",
        k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC"),
        git(&["rev-parse", "--short", "HEAD"]),
        args.operator.display()
    )
}
