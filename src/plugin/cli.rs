//! The command line of `kubectl baton`. Flags follow kubectl's so a plugin invocation reads the same.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operate a fleet of BatonConnectors: see what is wrong, and ask the operator to act.
#[derive(Parser, Debug)]
#[command(name = "kubectl-baton", bin_name = "kubectl-baton", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Path to the kubeconfig file; `KUBECONFIG` or ~/.kube/config otherwise (in-cluster config in a pod).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace; the context's namespace otherwise.
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// All namespaces (status, and actions with --all).
    #[arg(short = 'A', long, global = true, conflicts_with = "namespace")]
    pub all_namespaces: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fleet summary: counts by Ready and reason, stale syncs, rotations due, possibly orphaned
    /// credentials, then every unhealthy connector with its reason.
    Status {
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// One connector on one screen: conditions, sync, credentials, children and recent events.
    Describe { name: String },
    /// Rotate the managed ConductorOne credentials now (rotate-requested-at).
    Rotate(Action),
    /// Roll the connector's pods (restart-requested-at).
    Restart(Action),
    /// Ask for a sync now (sync-requested-at): one run in OneShot mode, a ConductorOne ForceSync in
    /// Service mode (with spec.conductorOne).
    Sync(Action),
    /// Stop the operator from changing the connector (spec.suspend: true).
    Suspend(Action),
    /// Undo suspend (spec.suspend: false).
    Resume(Action),
    /// Print a shell completion script.
    Completion { shell: clap_complete::Shell },
    /// List a catalogued connector's settings: type, required, secret, default, group, environment
    /// variable and description (no cluster needed).
    Fields {
        #[arg(value_parser = connector_names(), hide_possible_values = true)]
        connector: String,
    },
    /// Print a complete, commented manifest for a catalogued connector: the BatonConnector with
    /// spec.config and the Secrets it reads, with placeholders (no cluster needed).
    New {
        #[arg(value_parser = connector_names(), hide_possible_values = true)]
        connector: String,
        /// The field group (authentication method) to configure; the connector's default otherwise.
        #[arg(long)]
        group: Option<String>,
    },
    /// Print a BatonConnector manifest for a hand-written connector Deployment (the vendor's
    /// Secret + Deployment): from a file with -f (no cluster needed), or NAME from the cluster.
    /// Secret values are never printed; the settings are checked as the operator checks them.
    Import(Import),
}

#[derive(Args, Debug, Clone)]
pub struct Import {
    /// The Deployment: read from the cluster (-n), or picked from the file with -f. Without it, -f
    /// imports every connector Deployment in the file.
    #[arg(required_unless_present = "filename")]
    pub name: Option<String>,
    /// A YAML file (`-` for standard input) with the Deployment and, optionally, its Secrets (only
    /// their key names are read), such as `kubectl get deploy,secret -o yaml` writes.
    #[arg(short = 'f', long, value_hint = clap::ValueHint::FilePath)]
    pub filename: Option<PathBuf>,
    /// The connector (`baton-<connector>`), when the image's name does not say.
    #[arg(long)]
    pub connector: Option<String>,
}

/// The catalogued connectors, so that shell completion offers them and a typo is caught by name.
fn connector_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::catalog::Catalog::embedded().names())
}

#[derive(Args, Debug, Clone)]
pub struct Action {
    /// The BatonConnector; or --all.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Every BatonConnector in the namespace (or all namespaces with -A) matching --selector.
    #[arg(long)]
    pub all: bool,
    /// Label selector for --all, e.g. `team=identity`.
    #[arg(short = 'l', long, conflicts_with = "name")]
    pub selector: Option<String>,
    /// Wait until the operator reports the request handled.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-baton").chain(args.iter().copied()))
    }

    #[test]
    fn actions_take_a_name_or_all_never_both() {
        assert!(parse(&["rotate", "okta"]).is_ok());
        assert!(parse(&["rotate", "--all", "-l", "team=a", "-A"]).is_ok());
        assert!(parse(&["rotate"]).is_err(), "neither a name nor --all");
        assert!(parse(&["rotate", "okta", "--all"]).is_err());
        assert!(parse(&["rotate", "okta", "-l", "team=a"]).is_err(), "a selector without --all");
        assert!(parse(&["status", "-n", "x", "-A"]).is_err());
    }

    #[test]
    fn catalog_commands_take_a_catalogued_connector() {
        let cli = parse(&["new", "okta", "--group", "private-key-group", "-n", "identity"]).unwrap();
        let Command::New { connector, group } = cli.command else { panic!("not new") };
        assert_eq!((connector.as_str(), group.as_deref()), ("okta", Some("private-key-group")));
        let err = parse(&["fields", "oktaa"]).unwrap_err().to_string();
        assert!(err.contains("okta"), "{err}");
    }

    #[test]
    fn import_takes_a_name_or_a_file() {
        let cli = parse(&["import", "-f", "-", "--connector", "okta"]).unwrap();
        let Command::Import(i) = cli.command else { panic!("not import") };
        assert_eq!(
            (i.name, i.filename.as_deref(), i.connector.as_deref()),
            (None, Some("-".as_ref()), Some("okta"))
        );
        assert!(parse(&["import", "baton-okta", "-n", "identity"]).is_ok());
        assert!(parse(&["import"]).is_err(), "neither a name nor a file");
    }

    #[test]
    fn completion_offers_connector_names() {
        use clap::CommandFactory as _;
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "kubectl-baton",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("sentinel-one") && script.contains("okta"), "connector names missing");
        assert!(script.contains("kubectl__baton__import") || script.contains("import"), "import missing");
        assert!(script.contains("--filename") && script.contains("--connector"), "import's flags missing");
    }

    #[test]
    fn kubectl_style_flags_go_anywhere() {
        let cli =
            parse(&["-n", "identity", "suspend", "okta", "--wait", "--timeout", "30s", "--context", "prod"])
                .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("identity"));
        assert_eq!(cli.global.context.as_deref(), Some("prod"));
        let Command::Suspend(a) = cli.command else { panic!("not suspend") };
        assert!(a.wait);
        assert_eq!(a.timeout, Duration::from_secs(30));
    }
}
