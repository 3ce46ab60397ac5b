//! Service mode's workload: managed credentials issued (or the next rotation step taken) before the
//! Deployment that needs them, then the Deployment, then the CronJob of OneShot mode removed and the
//! credentials of an earlier managed life revoked.

use super::{
    adoption,
    children::{Applied, apply_child, record_apply},
    oneshot,
    pass::Pass,
};
use crate::{
    Result,
    controller::c1::{credential_calls, rotation_steps},
    decide::{onboarding::Ids, outcome::Stage, rotation, status::Problem},
    resources,
};

pub async fn converge(pass: &mut Pass<'_>, ids: Option<&Ids>) -> Result<()> {
    // Issue, store or adopt a credential before the workload needs it; promote, wait out the grace
    // period and revoke once the workload runs on it.
    match rotation_steps::settings(pass, ids) {
        Ok(Some(r)) => rotation_steps::drive(pass, &r).await?,
        Ok(None) => {}
        Err(p) => pass.outcome.block(Stage::Rotation, p),
    }
    let name = pass.name();
    let credentials_secret = match &pass.bc.spec.credentials.managed {
        None => pass.bc.spec.credentials.secret_ref.as_ref().map(|r| r.name.clone()),
        Some(_) => rotation::workload_secret(&pass.credentials(), &name),
    };
    // A ConductorOne failure mid-rotation must not stop the workload that runs on the current
    // credential from being kept in shape.
    // Settings the SDK would refuse are not rolled out: the running pods keep the last good ones.
    if let Some(credentials_secret) = credentials_secret.filter(|_| !pass.outcome.blocked(Stage::Config)) {
        match resources::plan(&pass.workload_spec(), &pass.seen.secrets, &credentials_secret) {
            Err(p) => pass.outcome.block(Stage::Inputs, Problem::Input(p)),
            Ok(plan) => {
                pass.outcome.config_hash = Some(plan.config_hash.clone());
                let live = pass.seen.deployment.as_ref();
                let applied = match apply_child(
                    pass.ctx,
                    &pass.bc,
                    live,
                    plan.deployment,
                    "Deployment",
                    false,
                )
                .await?
                {
                    Applied::Conflict(live) => adoption::on_conflict(pass, *live).await?,
                    applied => applied,
                };
                if let Some(d) = record_apply(pass, applied, "Deployment") {
                    pass.ctx.caches.wrote_deployment(&d);
                    pass.seen.deployment = Some(d);
                }
                adoption::finish(pass).await?;
            }
        }
    }
    credential_calls::revoke_leftovers(pass).await?;
    credential_calls::revoke_hand_made(pass).await?;
    if pass.outcome.applied_current {
        oneshot::remove_cronjob(pass).await?;
    }
    Ok(())
}
