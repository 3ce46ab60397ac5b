//! Every reason a condition of the BatonConnector status can carry: one enum that the status rules,
//! the events, the metrics and the plugin share, and that tests hold against
//! `docs/troubleshooting.md` and the Argo CD health check, so a new reason cannot be forgotten in
//! one of them.

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[$doc])* $name),*
        }

        impl Reason {
            pub const ALL: &[Reason] = &[$(Reason::$name),*];

            /// The CamelCase string written into conditions, events and metric labels.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name)),*
                }
            }
        }
    };
}

reasons! {
    // The workload and the summary conditions.
    /// The connector pod runs the current template.
    Available,
    /// OneShot mode: the CronJob is current and no run failed since the last success.
    Scheduled,
    /// Reconciling=False: nothing left to do.
    Idle,
    /// Stalled=False.
    NotStalled,
    /// Suspended=False.
    NotSuspended,
    /// `spec.suspend` is true.
    Suspended,
    /// Being created or rolled out.
    Progressing,
    /// The Deployment does not exist yet.
    NotCreated,
    /// Taking over a hand-written Deployment (the `adopt-existing` annotation): the old pods run until
    /// the operator's own are available.
    Adopting,
    /// The rollout, or one cause of Reconciling, outlasted its deadline.
    ProgressDeadlineExceeded,
    /// OneShot mode: the last finished run failed.
    RunFailed,
    // What the connector pods say (`decide::pods`), when the workload is not available.
    /// The kubelet backs off pulling the image.
    ImagePullBackOff,
    /// Pulling the image failed.
    ErrImagePull,
    /// A Secret or key the container reads is missing.
    CreateContainerConfigError,
    /// The connector keeps exiting.
    CrashLoopBackOff,
    /// The connector was killed for exceeding its memory limit.
    OOMKilled,
    /// No node takes the pod.
    Unschedulable,
    /// The connector runs, but its startup or readiness probe keeps failing.
    ProbeFailing,
    /// OneShot mode: the failed run's connector (or uploader) exited non-zero.
    ContainerFailed,
    // Credentials.
    /// Managed mode: the first credential is being minted.
    IssuingCredentials,
    /// Managed mode: a credential is being minted (CredentialsReady).
    Issuing,
    /// Managed mode: the minted credential in use.
    Issued,
    /// OneShot mode needs no ConductorOne client credential.
    NotNeeded,
    /// `credentials.secretRef` names a Secret with both keys.
    SecretFound,
    /// The credentials were not checked in this pass.
    Unknown,
    // Inputs and the objects the operator builds.
    SecretNotFound,
    SecretKeyMissing,
    SecretKeyEmpty,
    /// `conductorOne.tenantRef` names a tenant that does not exist, or no default cluster tenant.
    TenantNotFound,
    /// The cluster tenant does not allow the connector's namespace.
    TenantNotAllowed,
    /// The tenant exists but its credentials cannot be used (the tenant's status says why).
    TenantNotReady,
    // A tenant's own conditions (ConductorOneTenant, ClusterConductorOneTenant).
    /// The tenant's principal got a token from ConductorOne (tenant Ready=True).
    Authenticated,
    /// ConductorOne refused the tenant's principal (wrong, revoked or unauthorised).
    CredentialsRejected,
    /// ConductorOne could not be reached for the tenant's token (connection, timeout, 5xx).
    Unreachable,
    /// A deleted tenant waits for the BatonConnectors that still use it (tenant InUse=True).
    InUse,
    /// A child with the resource's name belongs to someone else.
    OwnershipConflict,
    /// The API server refused what the operator built, or the resource cannot be read.
    InvalidSpec,
    // The connector's settings, checked against its catalogued schema.
    /// The settings match the connector's catalogued schema (ConfigValid).
    Validated,
    /// The settings are valid; the message lists warnings (unknown or deprecated fields).
    ValidatedWithWarnings,
    /// A definite error in the connector's settings: the SDK would refuse to start with them, or a
    /// secret field is given inline. The running workload is left as it is.
    ConfigInvalid,
    /// A custom connector, not in the catalog: its settings are not validated (ConfigValid=Unknown).
    NotCatalogued,
    // ConductorOne's answers.
    InvalidCredentials,
    Unauthorized,
    Forbidden,
    NotFound,
    /// A connector or app the operator created was deleted in ConductorOne.
    ConnectorDeleted,
    InvalidRequest,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
    DecodeError,
    ConfigError,
    // The sync status.
    Synced,
    SyncFailed,
    SyncStale,
    SyncDisabled,
    WaitingForFirstSync,
    AwaitingSyncStatus,
    /// No Ready condition yet (metrics and the plugin only; never written into a condition).
    Unobserved,
}

impl Reason {
    /// The reason a condition carries, if this operator wrote it.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == value)
    }

    /// Whether `Ready=False` for this reason is worth a Warning event of its own: not for progress,
    /// suspension or a first credential, and not for what the `Synced` condition and the runs
    /// announce themselves.
    pub fn warns_when_not_ready(self) -> bool {
        !matches!(
            self,
            Self::Progressing | Self::Suspended | Self::IssuingCredentials | Self::RunFailed | Self::Adopting
        ) && !self.comes_from_sync()
    }

    /// `Ready` reasons that come from the `Synced` condition, which has events of its own.
    pub fn comes_from_sync(self) -> bool {
        matches!(self, Self::SyncFailed | Self::SyncStale | Self::SyncDisabled | Self::WaitingForFirstSync)
    }

    /// Reasons of a `Synced` condition computed from a reading, which time alone can change.
    pub fn is_sync_reading(self) -> bool {
        matches!(
            self,
            Self::Synced
                | Self::SyncStale
                | Self::SyncFailed
                | Self::SyncDisabled
                | Self::WaitingForFirstSync
        )
    }

    /// Reasons of a failure to read the sync status: ConductorOne's errors and the API credentials'
    /// problems.
    pub fn is_sync_failure(self) -> bool {
        matches!(
            self,
            Self::InvalidCredentials
                | Self::Unauthorized
                | Self::Forbidden
                | Self::NotFound
                | Self::ConnectorDeleted
                | Self::InvalidRequest
                | Self::RateLimited
                | Self::ServerError
                | Self::Timeout
                | Self::TransportError
                | Self::DecodeError
                | Self::ConfigError
                | Self::SecretNotFound
                | Self::SecretKeyMissing
                | Self::SecretKeyEmpty
                | Self::TenantNotFound
                | Self::TenantNotAllowed
                | Self::TenantNotReady
                | Self::AwaitingSyncStatus
        )
    }

    /// `Ready=False` reasons that waiting will not fix even while the resource is not `Stalled`:
    /// health checks (Argo CD) show them as Degraded, not Progressing.
    pub fn degraded_when_not_ready(self) -> bool {
        matches!(
            self,
            Self::SecretKeyMissing
                | Self::SecretKeyEmpty
                | Self::OwnershipConflict
                | Self::InvalidSpec
                | Self::ConfigInvalid
                | Self::ProgressDeadlineExceeded
                | Self::Unauthorized
                | Self::Forbidden
                | Self::InvalidCredentials
                | Self::SyncFailed
                | Self::SyncStale
                | Self::ImagePullBackOff
                | Self::CreateContainerConfigError
                | Self::CrashLoopBackOff
                | Self::OOMKilled
                | Self::TenantNotAllowed
        )
    }
}

/// Compares with the string a condition carries.
impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Reason> for String {
    fn eq(&self, other: &Reason) -> bool {
        self == other.as_str()
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(*r));
        }
        assert_eq!(Reason::parse("SomethingElse"), None);
    }

    #[test]
    fn every_reason_is_documented_for_the_people_who_meet_it() {
        let doc = include_str!("../../docs/troubleshooting.md");
        let missing: Vec<_> = Reason::ALL.iter().filter(|r| !doc.contains(&format!("| `{r}`"))).collect();
        assert!(missing.is_empty(), "docs/troubleshooting.md has no row for {missing:?}");
    }

    /// The reasons between `HARD_REASONS = {` and `}` in a Lua health check.
    fn hard_reasons(lua: &str) -> Vec<Reason> {
        let start = lua.find("HARD_REASONS = {").expect("the health check lists its hard reasons");
        let body = &lua[start..];
        let body = &body[..body.find('}').expect("the list ends")];
        let mut out: Vec<Reason> = body
            .lines()
            .filter_map(|l| l.trim().strip_suffix("= true,"))
            .map(|name| Reason::parse(name.trim()).unwrap_or_else(|| panic!("unknown reason {name:?}")))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_argo_cd_health_checks_degrade_exactly_the_reasons_waiting_will_not_fix() {
        let mut want: Vec<Reason> =
            Reason::ALL.iter().copied().filter(|r| r.degraded_when_not_ready()).collect();
        want.sort();
        for (file, lua) in [
            ("deploy/argocd/argocd-cm-patch.yaml", include_str!("../../deploy/argocd/argocd-cm-patch.yaml")),
            (
                "health.lua",
                include_str!(
                    "../../deploy/argocd/resource_customizations/baton.conductorone.com/BatonConnector/health.lua"
                ),
            ),
        ] {
            assert_eq!(hard_reasons(lua), want, "{file}");
        }
    }
}
