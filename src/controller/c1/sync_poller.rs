//! Reads the connectors' sync status from ConductorOne on a schedule of its own, off the reconcile
//! path: a slow, rate-limiting or unreachable ConductorOne delays sync status and nothing else. A
//! poll whose answer differs from the last one triggers a reconcile of its connector, which turns
//! the answer into status.
//!
//! The cadence fits a request budget (a share of the client's rate limit, so that rotations always
//! find room): with more connectors than the budget covers per interval, the effective interval
//! grows, and says so in a metric and the log. Each tenant has a lane of its own (its budget at
//! the same share of its own rate, its pace, its polls in flight: [`super::poll_schedule`]), so a
//! tenant whose ConductorOne is slow, unreachable or answers 429 delays only its own readings. A connector whose sync runs is looked at more often,
//! one whose answer does not change less often. Connectors of one app that use the same API
//! credentials are read with one list request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use kube::{ResourceExt, runtime::reflector::ObjectRef};
use tokio::{
    sync::{Notify, broadcast},
    time::Instant,
};
use tracing::{debug, info};

use super::poll_schedule::{Entry, Lane, LaneKey, Schedule, Target, lane_budget};

use crate::controller::store::{Key, cache::Caches};
use crate::decide::credentials;
use crate::metrics::Metrics;
use crate::{
    api::{BatonConnector, Reason},
    conductorone::{ErrorKind, SyncState},
    decide::sync_status::{self as sync, Observed},
};

/// What one poll found, or why it found nothing.
pub type PollResult = Result<Observed, PollFailure>;

/// A poll that could not read the sync status.
#[derive(Clone, Debug, PartialEq)]
pub struct PollFailure {
    pub reason: Reason,
    pub message: String,
    /// Only a person can fix it (ConductorOne refused the API credentials, the connector is gone).
    pub permanent: bool,
}

/// One poll of ConductorOne's sync status.
#[derive(Clone, Debug)]
pub struct SyncPoll {
    pub at: std::time::Instant,
    /// The observation, or the failure's reason, message and whether it needs a person.
    pub result: PollResult,
}

/// What the poller reads and calls with: the parts of the controller's context it needs, so that
/// it depends on them and not on the context that holds it.
pub struct PollerIo {
    pub client: kube::Client,
    /// The ConductorOne clients: a tenant's connectors are read through the tenant's own.
    pub pools: Arc<super::pools::Pools>,
    pub metrics: Arc<Metrics>,
    pub caches: Arc<Caches>,
}

/// How soon a connector whose API credentials cannot be read yet is looked at again (no request
/// is made for it, so this costs no budget).
const NO_CREDENTIALS_RETRY: Duration = Duration::from_secs(10);

pub struct SyncPoller {
    schedule: Mutex<Schedule>,
    wake: Notify,
    triggers: broadcast::Sender<ObjectRef<BatonConnector>>,
    interval: Duration,
    /// Requests per second the poller may spend through the operator's own client (the older
    /// form's lane); a tenant's lane gets the same share of the tenant's rate.
    budget: f64,
    /// Each lane's budget, pace and polls in flight, made on first use.
    lanes: Mutex<HashMap<LaneKey, Arc<Lane>>>,
    /// The last poll of each resource, so polls follow their own cadence however often a resource
    /// reconciles; the reconcile reads it ([`SyncPoller::last`]) instead of calling ConductorOne.
    pub results: Mutex<HashMap<ObjectRef<BatonConnector>, SyncPoll>>,
}

impl SyncPoller {
    pub fn new(interval: Duration, budget: f64) -> Self {
        Self {
            schedule: Default::default(),
            wake: Notify::new(),
            triggers: broadcast::channel(1024).0,
            interval,
            budget: budget.max(0.01),
            lanes: Default::default(),
            results: Default::default(),
        }
    }

    /// Resources whose sync status changed; each controller reconciles those it holds.
    pub fn triggers(&self) -> broadcast::Receiver<ObjectRef<BatonConnector>> {
        self.triggers.subscribe()
    }

    /// The interval every connector is read at, at least: the configured one, or longer when a
    /// lane's budget cannot read every group of the lane that often (the longest of the lanes).
    pub fn effective_interval(&self) -> Duration {
        let lanes: Vec<(LaneKey, usize)> = {
            let s = self.schedule.lock().expect("poll schedule poisoned");
            s.lanes.iter().map(|(k, n)| (k.clone(), *n)).collect()
        };
        let made = self.lanes.lock().expect("poll lanes poisoned");
        lanes
            .into_iter()
            .map(|(k, n)| {
                effective_interval(self.interval, made.get(&k).map_or(self.budget, |l| l.budget), n)
            })
            .max()
            .unwrap_or(self.interval)
    }

    /// One lane's interval: the configured one, or the time its budget needs for its groups.
    fn lane_interval(&self, lane: &LaneKey, budget: f64) -> Duration {
        let groups = self.schedule.lock().expect("poll schedule poisoned").lanes.get(lane).copied();
        effective_interval(self.interval, budget, groups.unwrap_or(0))
    }

    /// A lane's budget, pace and slots: a tenant's at the poll share of the tenant's own rate.
    fn lane(&self, key: &LaneKey, pools: &super::pools::Pools) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().expect("poll lanes poisoned");
        if let Some(lane) = lanes.get(key) {
            return lane.clone();
        }
        let budget = match key {
            None => self.budget,
            Some(_) => {
                let tenant = pools.for_key(key.as_ref()).client.rate().0;
                lane_budget(self.budget, pools.shared.client.rate().0, tenant)
            }
        };
        let lane = Arc::new(Lane::new(budget));
        lanes.insert(key.clone(), lane.clone());
        lane
    }

    /// Drops the lanes no connector polls through any more (a tenant gone, or its budget changed).
    fn prune_lanes(&self) {
        let s = self.schedule.lock().expect("poll schedule poisoned");
        let mut lanes = self.lanes.lock().expect("poll lanes poisoned");
        lanes.retain(|k, lane| s.lanes.contains_key(k) || Arc::strong_count(lane) > 1);
    }

    pub fn tracked(&self) -> usize {
        self.schedule.lock().expect("poll schedule poisoned").entries.len()
    }

    /// Follows a resource from the watch. `listed`: it came from a (re-)list, as after a restart;
    /// then a connector whose status already has a sync reading waits its turn, spread over the
    /// interval, rather than every connector polling at once.
    pub fn track(&self, bc: &BatonConnector, listed: bool) {
        let Some(key) = key(bc) else { return };
        // A tenant's connector is tracked by its reconcile, which resolves the tenant.
        if bc.spec.conductor_one.as_ref().is_some_and(|c1| c1.api_credentials_secret_ref.is_none()) {
            return;
        }
        let Some(target) = target(bc, None) else {
            self.forget(&key);
            return;
        };
        self.put(key, target, listed && has_reading(bc));
    }

    /// Follows a connector that uses a tenant, from its reconcile: `source` is where its principal
    /// is as the reconcile resolved it, `None` when it could not (nothing to read with).
    pub fn track_resolved(&self, bc: &BatonConnector, source: Option<&crate::decide::tenant::Source>) {
        let Some(key) = key(bc) else { return };
        match source.and_then(|s| target(bc, Some(s))) {
            Some(target) => self.put(key, target, has_reading(bc)),
            None => self.forget(&key),
        }
    }

    /// Schedules a target; `spread`: a reading is in status already, so it waits its turn.
    fn put(&self, key: Key, target: Target, spread: bool) {
        let now = Instant::now();
        let mut s = self.schedule.lock().expect("poll schedule poisoned");
        let due = match s.entries.get(&key) {
            Some(e) if e.target == target => return,
            // Pointed elsewhere: what was read no longer applies.
            Some(_) => now,
            None if spread => now + self.interval.mul_f64(self::spread(&key)),
            None => now,
        };
        s.remove(&key);
        s.insert(key, Entry { target, due, unchanged: 0 });
        drop(s);
        self.wake.notify_one();
    }

    /// Reads a connector at once (after the operator asked ConductorOne to change something).
    pub fn poll_soon(&self, key: &Key) {
        let mut s = self.schedule.lock().expect("poll schedule poisoned");
        // Only one waiting its turn: one being polled gets rescheduled when its answer comes.
        if s.entries.get(key).is_some_and(|e| s.queue.contains(&(e.due, key.clone()))) {
            s.reschedule(key, Instant::now());
            drop(s);
            self.wake.notify_one();
        }
    }

    /// Stops polling a connector; its last answer stays for the reconciles still to come.
    pub fn forget(&self, key: &Key) {
        self.schedule.lock().expect("poll schedule poisoned").remove(key);
    }

    /// Forgets a resource that is gone: its schedule and its last answer.
    pub fn forget_resource(&self, key: &Key) {
        self.forget(key);
        self.results.lock().expect("sync poll lock poisoned").remove(&reference(key));
    }

    /// The last poll of a resource.
    pub fn last(&self, bc: &ObjectRef<BatonConnector>) -> Option<SyncPoll> {
        self.results.lock().expect("sync poll lock poisoned").get(bc).cloned()
    }

    /// Forgets every connector `keep` says no to, schedule and answer (a relist did not find them:
    /// deleted while the watch was down).
    pub fn retain(&self, keep: impl Fn(&Key) -> bool) {
        let mut s = self.schedule.lock().expect("poll schedule poisoned");
        let gone: Vec<Key> = s.entries.keys().filter(|k| !keep(k)).cloned().collect();
        for key in gone {
            s.remove(&key);
        }
        drop(s);
        self.results
            .lock()
            .expect("sync poll lock poisoned")
            .retain(|r, _| keep(&(r.namespace.clone().unwrap_or_default(), r.name.clone())));
    }

    /// Polls until the process stops.
    pub async fn run(self: Arc<Self>, io: Arc<PollerIo>) {
        // The first lists track every connector; the interval said at start is then the real one.
        io.caches.synced().await;
        let mut reported = None;
        loop {
            let effective = self.effective_interval();
            io.metrics.sync_poll_interval.set(effective.as_secs_f64());
            if reported.is_none_or(|r: Duration| r.abs_diff(effective) > r / 10) {
                info!(
                    connectors = self.tracked(),
                    configured = %humantime::format_duration(self.interval),
                    effective = %humantime::format_duration(Duration::from_secs(effective.as_secs())),
                    budget_per_second = self.budget,
                    tenants = self.lanes.lock().expect("poll lanes poisoned").keys().flatten().count(),
                    "sync status poll interval"
                );
                reported = Some(effective);
            }
            io.metrics.sync_poll_connectors.set(self.tracked() as i64);
            self.prune_lanes();
            // A group goes out only with a slot of its lane; without one it waits in the queue, and a
            // finished poll of that lane wakes this loop (never a wait here on one lane's slot).
            let now = Instant::now();
            let admit =
                |lane: &LaneKey| self.lane(lane, &io.pools).in_flight.clone().try_acquire_owned().ok();
            let taken = self.schedule.lock().expect("poll schedule poisoned").take_due(now, admit);
            for (permit, group) in taken {
                let (this, io) = (self.clone(), io.clone());
                tokio::spawn(async move {
                    this.poll_group(&io, group).await;
                    drop(permit);
                    this.wake.notify_one();
                });
            }
            let next = self.schedule.lock().expect("poll schedule poisoned").next_due_after(now);
            let wake = self.wake.notified();
            match next {
                Some(due) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        () = wake => {}
                    }
                }
                None => wake.await,
            }
        }
    }

    /// Polls every connector that is due now and waits for the answers. For tests, which drive
    /// the operator step by step.
    pub async fn poll_due(&self, io: &PollerIo) {
        let taken =
            self.schedule.lock().expect("poll schedule poisoned").take_due(Instant::now(), |_| Some(()));
        for ((), group) in taken {
            self.poll_group(io, group).await;
        }
    }

    async fn poll_group(&self, io: &PollerIo, group: Vec<(Key, Target)>) {
        let Some((_, first)) = group.first().cloned() else { return };
        let secrets =
            io.caches.secrets(&io.client, &first.namespace, std::slice::from_ref(&first.api_secret)).await;
        let api = secrets
            .ok()
            .and_then(|s| credentials::api_credentials_in(&first.namespace, &first.api_secret, &s).ok());
        let Some(api) = api else {
            // The reconcile reports the missing credentials; nothing to read with until they exist.
            let due = Instant::now() + NO_CREDENTIALS_RETRY.min(self.interval);
            let mut s = self.schedule.lock().expect("poll schedule poisoned");
            group.iter().for_each(|(k, _)| s.reschedule(k, due));
            drop(s);
            self.wake.notify_one();
            return;
        };
        let pool = io.pools.for_key(first.tenant.as_ref());
        let conductorone = &pool.client;
        let lane = self.lane(&first.tenant, &io.pools);
        lane.pace.until_ready().await;
        let results: Vec<(Key, PollResult)> = if group.len() == 1 {
            let r = match conductorone.get_connector(&api, &first.app_id, &first.connector_id).await {
                Ok(i) if i.deleted_at.is_some() => Err(deleted(&first)),
                Ok(i) => Ok(Observed::from_connector(&i)),
                Err(e) if e.kind() == ErrorKind::NotFound && first.created => Err(deleted(&first)),
                Err(e) => Err(failure(e)),
            };
            vec![(group[0].0.clone(), r)]
        } else {
            match conductorone.list_connectors(&api, &first.app_id).await {
                Ok(list) => group
                    .iter()
                    .map(|(k, t)| {
                        let r = match list.iter().find(|i| i.id == t.connector_id) {
                            Some(i) if i.deleted_at.is_some() => Err(deleted(t)),
                            Some(i) => Ok(Observed::from_connector(i)),
                            None if t.created => Err(deleted(t)),
                            None => Err(not_listed(t)),
                        };
                        (k.clone(), r)
                    })
                    .collect(),
                Err(e) => {
                    let f = failure(e);
                    group.iter().map(|(k, _)| (k.clone(), Err(f.clone()))).collect()
                }
            }
        };
        let effective = self.lane_interval(&first.tenant, lane.budget);
        for (key, result) in results {
            self.record(key, result, effective);
        }
    }

    /// Stores an answer, schedules the next poll, and triggers a reconcile when the answer is new.
    fn record(&self, key: Key, result: PollResult, effective: Duration) {
        let reference = reference(&key);
        let changed = {
            let mut polls = self.results.lock().expect("sync poll lock poisoned");
            let changed = polls.get(&reference).is_none_or(|p| p.result != result);
            polls.insert(
                reference.clone(),
                SyncPoll { at: std::time::Instant::now(), result: result.clone() },
            );
            changed
        };
        let mut s = self.schedule.lock().expect("poll schedule poisoned");
        let Some(entry) = s.entries.get_mut(&key) else {
            // Forgotten while the poll ran.
            drop(s);
            self.results.lock().expect("sync poll lock poisoned").remove(&reference);
            return;
        };
        entry.unchanged = if changed { 0 } else { entry.unchanged.saturating_add(1) };
        let delay = next_delay(effective, &key, &result, entry.unchanged);
        s.reschedule(&key, Instant::now() + delay);
        drop(s);
        self.wake.notify_one();
        if changed {
            debug!(namespace = %key.0, name = %key.1, "sync status changed");
            let _ = self.triggers.send(reference);
        }
    }
}

fn reference(key: &Key) -> ObjectRef<BatonConnector> {
    ObjectRef::new(&key.1).within(&key.0)
}

fn key(bc: &BatonConnector) -> Option<Key> {
    Some((bc.namespace()?, bc.name_any()))
}

/// What to poll for a resource; nothing until onboarding knows its connector.
fn target(bc: &BatonConnector, source: Option<&crate::decide::tenant::Source>) -> Option<Target> {
    let c1 = bc.spec.conductor_one.as_ref()?;
    let ids = crate::decide::onboarding::ids(bc)?;
    let (namespace, api_secret) = match (source, &c1.api_credentials_secret_ref) {
        (Some(s), _) => (s.secret_namespace.clone(), s.secret_name.clone()),
        (None, Some(own)) => (bc.namespace()?, own.name.clone()),
        (None, None) => return None,
    };
    Some(Target {
        namespace,
        api_secret,
        tenant: source.and_then(super::pools::PoolKey::of),
        app_id: ids.app,
        connector_id: ids.connector,
        created: ids.created_connector,
    })
}

/// Whether status already holds a sync reading that the reconcile can show until the next poll.
fn has_reading(bc: &BatonConnector) -> bool {
    bc.status.as_ref().and_then(|s| s.sync.as_ref()).is_some_and(|s| s.checked_at.is_some())
}

fn failure(e: crate::conductorone::Error) -> PollFailure {
    let reason = crate::decide::status::conductorone_reason(e.kind());
    PollFailure { reason, message: e.to_string(), permanent: e.is_permanent() }
}

fn not_listed(t: &Target) -> PollFailure {
    let message = format!("connector {} is not among the connectors of app {}", t.connector_id, t.app_id);
    PollFailure { reason: Reason::NotFound, message, permanent: true }
}

/// A connector gone from ConductorOne. One the operator created is never created again: a person
/// decides what replaces it.
fn deleted(t: &Target) -> PollFailure {
    if t.created {
        let message = format!(
            "connector {} (app {}), which the operator created, was deleted in ConductorOne; it is not created again: delete and re-create this BatonConnector, or set conductorOne.connectorId",
            t.connector_id, t.app_id
        );
        return PollFailure { reason: Reason::ConnectorDeleted, message, permanent: true };
    }
    let message = format!("connector {} of app {} was deleted in ConductorOne", t.connector_id, t.app_id);
    PollFailure { reason: Reason::NotFound, message, permanent: true }
}

/// Where in the interval a connector's first poll after a restart falls: fixed per connector, so
/// the fleet spreads evenly.
fn spread(key: &Key) -> f64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}/{}", key.0, key.1).as_bytes());
    f64::from(u16::from_be_bytes([digest[0], digest[1]])) / f64::from(u16::MAX)
}

/// The configured interval, or the time the budget needs to read every group once.
pub fn effective_interval(configured: Duration, budget: f64, groups: usize) -> Duration {
    let needed = Duration::from_secs_f64(groups as f64 / budget.max(0.01));
    configured.max(needed)
}

/// When to read a connector again: sooner while a sync runs, later when nothing changes, a full
/// interval after a failure (errors never make the operator call faster).
fn next_delay(effective: Duration, key: &Key, result: &PollResult, unchanged: u32) -> Duration {
    let base = sync::poll_interval(effective, &format!("{}/{}", key.0, key.1));
    match result {
        Ok(o) if o.state == SyncState::Running.label() => (base / 4).max(Duration::from_secs(1)),
        Ok(_) if unchanged >= 2 => base * 2,
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(state: &'static str) -> PollResult {
        Ok(Observed { state, ..Default::default() })
    }

    fn key() -> Key {
        ("ns".into(), "okta".into())
    }

    #[test]
    fn the_budget_stretches_the_interval_only_when_it_must() {
        let five_min = Duration::from_secs(300);
        assert_eq!(effective_interval(five_min, 2.5, 100), five_min);
        // 2.5 requests per second read 750 groups in 300 s; 3,000 need 1,200 s.
        assert_eq!(effective_interval(five_min, 2.5, 3000), Duration::from_secs(1200));
    }

    #[test]
    fn running_syncs_are_read_sooner_and_quiet_ones_later() {
        let i = Duration::from_secs(300);
        let base = next_delay(i, &key(), &observed("Done"), 0);
        assert!(base >= i && base <= i.mul_f64(1.1));
        assert_eq!(next_delay(i, &key(), &observed("Running"), 0), base / 4);
        assert_eq!(next_delay(i, &key(), &observed("Done"), 2), base * 2);
        let failed =
            Err(PollFailure { reason: Reason::ServerError, message: "boom".into(), permanent: false });
        assert_eq!(next_delay(i, &key(), &failed, 5), base, "a failure waits a full interval, no more");
    }

    #[test]
    fn first_polls_after_a_restart_spread_over_the_interval() {
        let points: Vec<f64> = (0..1000).map(|n| spread(&("ns".into(), format!("c{n}")))).collect();
        assert!(points.iter().all(|p| (0.0..=1.0).contains(p)));
        let early = points.iter().filter(|p| **p < 0.5).count();
        assert!((400..600).contains(&early), "{early} of 1000 in the first half");
    }
}
