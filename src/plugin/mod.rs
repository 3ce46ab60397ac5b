//! `kubectl baton`: the fleet operator's view of BatonConnectors. The binary in
//! `src/bin/kubectl-baton.rs` only calls [`main`].

pub mod actions;
pub mod cli;
pub mod describe;
pub mod error;
pub mod fields;
pub mod import;
pub mod manifest;
pub mod output;
pub mod scope;
pub mod summary;
pub mod tenants;
#[cfg(test)]
mod tests;

use std::{io::Write as _, process::ExitCode};

use clap::{CommandFactory as _, Parser as _};
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::api::GROUP;
use cli::{Cli, Command, Global};
pub use error::{PluginError, Result};
pub use scope::Scope;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completion { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "kubectl-baton", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if let Some(result) = offline(&cli, &mut std::io::stdout().lock()) {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "error: {e:#}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let client = connect(&cli.global).await?;
    execute(client, cli, &mut std::io::stdout().lock()).await
}

/// Runs a parsed command line against `client`, writing what a person reads to `out`.
pub async fn execute(client: Client, cli: Cli, out: &mut impl std::io::Write) -> Result<()> {
    if let Some(result) = offline(&cli, out) {
        return result;
    }
    let namespace = cli.global.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
    // Before the CRD check: an import reads a Deployment, and may run before the operator is installed.
    if let Command::Import(i) = &cli.command {
        let name = i.name.as_deref().expect("without -f the parser requires NAME");
        let report = import::from_cluster(&client, &namespace, name, i.connector.as_deref()).await?;
        return import::finish(report, out);
    }
    ensure_crd(&client).await?;
    let scope = Scope { namespace, all_namespaces: cli.global.all_namespaces };
    match cli.command {
        Command::Status { output } => {
            let fleet = scope.api(&client).list(&Default::default()).await?.items;
            let mut summary = summary::summarize(&fleet, k8s_openapi::jiff::Timestamp::now());
            (summary.tenants, summary.tenant_notes) = tenants::list(&client, &scope).await;
            output::status(out, &summary, &scope, output).map_err(anyhow::Error::from)?;
        }
        Command::Describe { name } => describe::describe(&client, &scope.namespace, &name, out).await?,
        Command::Rotate(a) => actions::run(&client, &scope, actions::Kind::Rotate, &a, out).await?,
        Command::Restart(a) => actions::run(&client, &scope, actions::Kind::Restart, &a, out).await?,
        Command::Sync(a) => actions::run(&client, &scope, actions::Kind::Sync, &a, out).await?,
        Command::Suspend(a) => actions::run(&client, &scope, actions::Kind::Suspend, &a, out).await?,
        Command::Resume(a) => actions::run(&client, &scope, actions::Kind::Resume, &a, out).await?,
        Command::Completion { .. } | Command::Fields { .. } | Command::New { .. } | Command::Import(_) => {
            unreachable!("handled before connecting")
        }
    }
    Ok(())
}

/// The commands that read only the catalog (and `import -f`, a file): no cluster, no kubeconfig.
pub fn offline(cli: &Cli, out: &mut impl std::io::Write) -> Option<Result<()>> {
    let catalog = crate::catalog::Catalog::embedded();
    let io = |r: std::io::Result<()>| r.map_err(|e| PluginError::from(anyhow::Error::from(e)));
    Some(match &cli.command {
        Command::Fields { connector } => {
            io(fields::print(catalog.get(connector).expect("the parser admits catalogued names"), out))
        }
        Command::New { connector, group } => {
            let connector = catalog.get(connector).expect("the parser admits catalogued names");
            match manifest::manifest(connector, group.as_deref(), cli.global.namespace.as_deref()) {
                Ok(text) => io(out.write_all(text.as_bytes())),
                Err(message) => Err(PluginError::from(anyhow::anyhow!(message))),
            }
        }
        Command::Import(i) if i.filename.is_some() => {
            let path = i.filename.as_deref().expect("matched");
            let ns = cli.global.namespace.as_deref();
            import::from_file(path, i.name.as_deref(), i.connector.as_deref(), ns)
                .and_then(|report| import::finish(report, out))
        }
        _ => return None,
    })
}

/// Builds a client the way kubectl would: `--kubeconfig`, then `KUBECONFIG` or ~/.kube/config, then
/// in-cluster; `--context` picks the context.
pub async fn connect(global: &Global) -> Result<Client> {
    let options = KubeConfigOptions { context: global.context.clone(), ..Default::default() };
    let config = match &global.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| anyhow::anyhow!("reading kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(anyhow::Error::from)?
        }
        None if global.context.is_some() => {
            Config::from_kubeconfig(&options).await.map_err(anyhow::Error::from)?
        }
        None => Config::infer().await.map_err(anyhow::Error::from)?,
    };
    Ok(Client::try_from(config).map_err(anyhow::Error::from)?)
}

/// Asks discovery whether the API is served, so a missing CRD is reported as such instead of as a
/// 404 that reads like an unknown name.
pub async fn ensure_crd(client: &Client) -> Result<()> {
    let version = format!("{GROUP}/v1alpha1");
    let resources = client.list_api_group_resources(&version).await?;
    if resources.resources.iter().any(|r| r.name == "batonconnectors") {
        Ok(())
    } else {
        Err(PluginError::CrdMissing)
    }
}
