//! Leader election through a Lease, for running more than one replica. Only the holder reconciles;
//! a replica that loses the lease stops at once (fail-stop) rather than risk two writers.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::{sync::watch, task::JoinHandle};
use tracing::{info, warn};

/// Where the lease lives and who this replica is.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub duration: Duration,
}

/// A held lease.
pub struct Leadership {
    channel: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Waits until this replica holds the lease. Meanwhile the replica counts as ready (a standby is
/// healthy), and stops counting as ready once it leads, until its caches are filled.
pub async fn acquire(
    client: Client,
    config: &LeaderConfig,
    ready: &Arc<AtomicBool>,
) -> anyhow::Result<Leadership> {
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration.as_secs().max(2))
        .with_grace((config.duration.as_secs() / 3).max(1))
        .with_field_manager("baton-operator/leader")
        .build()
        .await?;
    let (mut channel, task) = manager.watch().await;
    ready.store(true, Ordering::Relaxed);
    info!(identity = %config.identity, lease = %config.lease_name, "waiting to lead");
    while !*channel.borrow_and_update() {
        channel.changed().await?;
    }
    ready.store(false, Ordering::Relaxed);
    info!(identity = %config.identity, "leading");
    Ok(Leadership { channel, task })
}

impl Leadership {
    /// Resolves when the lease is lost.
    pub async fn lost(&mut self) {
        loop {
            if self.channel.changed().await.is_err() || !*self.channel.borrow_and_update() {
                return;
            }
        }
    }

    /// Gives the lease up, so a standby takes over without waiting for it to expire.
    pub async fn release(self) {
        drop(self.channel);
        match self.task.await {
            Ok(Ok(_)) => info!("lease released"),
            Ok(Err(e)) => warn!(error = %e, "could not release the lease"),
            Err(e) => warn!(error = %e, "lease task failed"),
        }
    }
}
