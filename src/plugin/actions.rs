//! `rotate`, `restart`, `sync`, `suspend`, `resume`: the same merge patch a person would write with
//! `kubectl annotate` or `kubectl patch`, then optionally a wait for the operator's acknowledgement.

use std::{io::Write, time::Duration};

use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;

use super::{
    cli::Action,
    error::{self, PluginError, Result},
    scope::Scope,
};
use crate::api::{self, BatonConnector, conditions};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rotate,
    Restart,
    Sync,
    Suspend,
    Resume,
}

impl Kind {
    /// The trigger annotation, for the kinds that are one.
    pub fn annotation(self) -> Option<&'static str> {
        match self {
            Self::Rotate => Some(api::ROTATE_REQUESTED_AT),
            Self::Restart => Some(api::RESTART_REQUESTED_AT),
            Self::Sync => Some(api::SYNC_REQUESTED_AT),
            Self::Suspend | Self::Resume => None,
        }
    }

    /// Whether the operator has acted on this request, as its status says.
    pub fn handled(self, bc: &BatonConnector, value: &str, generation: i64) -> bool {
        let Some(status) = &bc.status else { return false };
        let h = &status.handled_requests;
        let echoed = match self {
            Self::Rotate => &h.rotate,
            Self::Restart => &h.restart,
            Self::Sync => &h.sync,
            Self::Suspend | Self::Resume => {
                let want = if self == Self::Suspend { "True" } else { "False" };
                return conditions::find(&status.conditions, conditions::SUSPENDED)
                    .is_some_and(|c| c.status == want && c.observed_generation.unwrap_or(-1) >= generation);
            }
        };
        echoed.as_deref() == Some(value)
    }
}

/// The request value: now, in RFC 3339 to the second, as `date -u +%FT%TZ` writes it.
pub fn now_value() -> String {
    Timestamp::from_second(Timestamp::now().as_second()).expect("now is a valid time").to_string()
}

pub async fn run(
    client: &Client,
    scope: &Scope,
    kind: Kind,
    args: &Action,
    out: &mut impl Write,
) -> Result<()> {
    let targets: Vec<(String, String)> = match &args.name {
        Some(name) => {
            let api: Api<BatonConnector> = Api::namespaced(client.clone(), &scope.namespace);
            api.get_metadata(name)
                .await
                .map_err(|e| error::named(e, "batonconnector", &scope.namespace, name))?;
            vec![(scope.namespace.clone(), name.clone())]
        }
        None => {
            let mut lp = ListParams::default();
            if let Some(selector) = &args.selector {
                lp = lp.labels(selector);
            }
            let list = scope.api(client).list_metadata(&lp).await?.items;
            list.iter().map(|m| (m.namespace().unwrap_or_default(), m.name_any())).collect()
        }
    };
    if targets.is_empty() {
        writeln!(out, "no BatonConnectors matched").map_err(anyhow::Error::from)?;
        return Ok(());
    }
    let value = now_value();
    let mut pending = Vec::new();
    for (namespace, name) in targets {
        let api: Api<BatonConnector> = Api::namespaced(client.clone(), &namespace);
        let before =
            api.get(&name).await.map_err(|e| error::named(e, "batonconnector", &namespace, &name))?;
        let (patch, change) = match kind.annotation() {
            Some(key) => {
                let was = before.annotations().get(key).cloned().unwrap_or_else(|| "unset".into());
                let patch = json!({"metadata": {"annotations": {key: value}}});
                (patch, format!("{key}={value} (was {was})"))
            }
            None => {
                let want = kind == Kind::Suspend;
                let change = if before.spec.suspend == want {
                    format!("spec.suspend already {want}")
                } else {
                    format!("spec.suspend {} -> {want}", before.spec.suspend)
                };
                (json!({"spec": {"suspend": want}}), change)
            }
        };
        let after = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| error::named(e, "batonconnector", &namespace, &name))?;
        writeln!(out, "{namespace}/{name}: {change}").map_err(anyhow::Error::from)?;
        pending.push((namespace, name, after.metadata.generation.unwrap_or(0)));
    }
    if args.wait {
        wait(client, kind, &value, pending, args.timeout, out).await?;
    }
    Ok(())
}

async fn wait(
    client: &Client,
    kind: Kind,
    value: &str,
    mut pending: Vec<(String, String, i64)>,
    timeout: Duration,
    out: &mut impl Write,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut still = Vec::new();
        for (namespace, name, generation) in pending {
            let api: Api<BatonConnector> = Api::namespaced(client.clone(), &namespace);
            let bc =
                api.get(&name).await.map_err(|e| error::named(e, "batonconnector", &namespace, &name))?;
            if kind.handled(&bc, value, generation) {
                writeln!(out, "{namespace}/{name}: handled by the operator").map_err(anyhow::Error::from)?;
            } else {
                still.push((namespace, name, generation));
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let names: Vec<_> = pending.iter().map(|(ns, n, _)| format!("{ns}/{n}")).collect();
            return Err(PluginError::Timeout {
                what: format!("the operator has not reported {kind:?} handled for {}", names.join(", ")),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BatonConnectorStatus, HandledRequests};

    fn with_status(status: BatonConnectorStatus) -> BatonConnector {
        let mut bc = crate::resources::testing::connector("a", "okta");
        bc.status = Some(status);
        bc
    }

    #[test]
    fn a_trigger_is_handled_when_status_echoes_exactly_this_value() {
        let bc = with_status(BatonConnectorStatus {
            handled_requests: HandledRequests {
                rotate: Some("2026-01-01T00:00:00Z".into()),
                ..Default::default()
            },
            ..Default::default()
        });
        assert!(Kind::Rotate.handled(&bc, "2026-01-01T00:00:00Z", 1));
        assert!(!Kind::Rotate.handled(&bc, "2026-01-01T00:00:01Z", 1));
        assert!(!Kind::Restart.handled(&bc, "2026-01-01T00:00:00Z", 1));
    }

    #[test]
    fn suspend_is_handled_once_the_condition_reports_the_patched_generation() {
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::from_second(1).unwrap());
        let at = |generation| {
            with_status(BatonConnectorStatus {
                conditions: conditions::merge(
                    &[],
                    vec![conditions::Desired::new(
                        conditions::SUSPENDED,
                        true,
                        crate::api::Reason::Suspended,
                        "",
                    )],
                    Some(generation),
                    &now,
                ),
                ..Default::default()
            })
        };
        assert!(!Kind::Suspend.handled(&at(1), "", 2), "an old generation's condition is not an answer");
        assert!(Kind::Suspend.handled(&at(2), "", 2));
        assert!(!Kind::Resume.handled(&at(2), "", 2));
    }
}
