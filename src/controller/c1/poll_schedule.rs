//! The sync poller's schedule, in lanes: one lane per tenant, and one for the connectors of the
//! older form (`apiCredentialsSecretRef`), which share the operator's one client. Each lane has its
//! own request budget and pace (the poll share of its tenant's own rate) and its own polls in
//! flight, and the due polls of a lane whose polls are all still out wait in the queue without
//! holding up the other lanes': a tenant whose ConductorOne is slow, unreachable or answers 429
//! delays the sync status of its own connectors only.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    num::NonZeroU32,
    ops::Bound,
    sync::Arc,
    time::Duration,
};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::{sync::Semaphore, time::Instant};

use super::pools::PoolKey;
use crate::controller::store::Key;

/// Whose budget a poll spends: a tenant's pool, `None` for the older form's shared client.
pub type LaneKey = Option<PoolKey>;

/// Connectors read with one request: the same lane, principal and app.
pub type Group = (LaneKey, String, String, String);

/// Polls in flight at once in one lane: enough to hide latency, few enough that a slow
/// ConductorOne holds only these.
pub const IN_FLIGHT: usize = 4;

/// What one connector's poll reads, and with which credentials.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Where the principal's Secret is: the connector's namespace for the older form, the tenant's
    /// Secret for a tenant (a cluster tenant's is in the operator's namespace).
    pub namespace: String,
    pub api_secret: String,
    /// A tenant's connector: the tenant's pool, whose client reads it, and the poller's lane.
    pub tenant: LaneKey,
    pub app_id: String,
    pub connector_id: String,
    /// The operator created the connector: if it disappears, someone deleted it.
    pub created: bool,
}

impl Target {
    /// Connectors in one group are read together.
    pub fn group(&self) -> Group {
        (self.tenant.clone(), self.namespace.clone(), self.api_secret.clone(), self.app_id.clone())
    }
}

pub struct Entry {
    pub target: Target,
    pub due: Instant,
    /// Polls in a row that found nothing new.
    pub unchanged: u32,
}

#[derive(Default)]
pub struct Schedule {
    pub entries: HashMap<Key, Entry>,
    /// Entries waiting for their turn; an entry being polled is in `entries` but not here.
    pub queue: BTreeSet<(Instant, Key)>,
    /// Connectors per group, for the request count of one round.
    pub groups: HashMap<Group, usize>,
    /// Groups per lane, for each lane's interval.
    pub lanes: HashMap<LaneKey, usize>,
}

impl Schedule {
    /// Adds an entry; one under the same key must have been removed first.
    pub fn insert(&mut self, key: Key, entry: Entry) {
        let members = self.groups.entry(entry.target.group()).or_default();
        *members += 1;
        if *members == 1 {
            *self.lanes.entry(entry.target.tenant.clone()).or_default() += 1;
        }
        self.queue.insert((entry.due, key.clone()));
        self.entries.insert(key, entry);
    }

    pub fn remove(&mut self, key: &Key) -> Option<Entry> {
        let old = self.entries.remove(key)?;
        self.queue.remove(&(old.due, key.clone()));
        let group = old.target.group();
        if let Some(n) = self.groups.get_mut(&group) {
            *n -= 1;
            if *n == 0 {
                self.groups.remove(&group);
                if let Some(g) = self.lanes.get_mut(&old.target.tenant) {
                    *g -= 1;
                    if *g == 0 {
                        self.lanes.remove(&old.target.tenant);
                    }
                }
            }
        }
        Some(old)
    }

    pub fn reschedule(&mut self, key: &Key, due: Instant) {
        if let Some(e) = self.entries.get_mut(key) {
            self.queue.remove(&(e.due, key.clone()));
            e.due = due;
            self.queue.insert((due, key.clone()));
        }
    }

    /// Takes the due entries out of the queue, grouped for reading, in the order they fell due.
    /// `admit` is asked once per group for its lane's room (a poll slot): a lane without room keeps
    /// its entries queued, and the other lanes' due entries are taken all the same.
    pub fn take_due<P>(
        &mut self,
        now: Instant,
        mut admit: impl FnMut(&LaneKey) -> Option<P>,
    ) -> Vec<(P, Vec<(Key, Target)>)> {
        let due: Vec<(Instant, Key)> = self.queue.iter().take_while(|(d, _)| *d <= now).cloned().collect();
        let mut taken: Vec<(P, Vec<(Key, Target)>)> = Vec::new();
        let mut index: HashMap<Group, usize> = HashMap::new();
        let mut full: HashSet<LaneKey> = HashSet::new();
        for (at, key) in due {
            let Some(target) = self.entries.get(&key).map(|e| e.target.clone()) else {
                self.queue.remove(&(at, key));
                continue;
            };
            let group = target.group();
            if let Some(&i) = index.get(&group) {
                self.queue.remove(&(at, key.clone()));
                taken[i].1.push((key, target));
                continue;
            }
            if full.contains(&target.tenant) {
                continue;
            }
            match admit(&target.tenant) {
                Some(permit) => {
                    self.queue.remove(&(at, key.clone()));
                    index.insert(group, taken.len());
                    taken.push((permit, vec![(key, target)]));
                }
                None => {
                    full.insert(target.tenant);
                }
            }
        }
        taken
    }

    /// When the next entry falls due after `now` (the overdue ones left are those of lanes without
    /// room: a finished poll wakes the poller for them).
    pub fn next_due_after(&self, now: Instant) -> Option<Instant> {
        let after = (now, (String::new(), String::new()));
        self.queue.range((Bound::Excluded(after), Bound::Unbounded)).map(|(d, _)| *d).find(|d| *d > now)
    }
}

/// One lane's budget, pace and polls in flight.
pub struct Lane {
    /// Requests per second this lane's polls may spend.
    pub budget: f64,
    pub pace: DefaultDirectRateLimiter,
    pub in_flight: Arc<Semaphore>,
}

impl Lane {
    pub fn new(budget: f64) -> Self {
        let budget = budget.max(0.01);
        let period = Duration::from_secs_f64(1.0 / budget);
        let quota = Quota::with_period(period).unwrap_or(Quota::per_second(NonZeroU32::MIN));
        Self {
            budget,
            pace: RateLimiter::direct(quota.allow_burst(NonZeroU32::MIN)),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        }
    }
}

/// A tenant's poll budget: the operator's poll budget (its share of the operator's rate) scaled to
/// the tenant's own rate, so the share is the same of every client.
pub fn lane_budget(operator_budget: f64, operator_rate: u32, tenant_rate: u32) -> f64 {
    operator_budget * f64::from(tenant_rate) / f64::from(operator_rate.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::{TenantKind, TenantRef},
        decide::tenant::Source,
    };

    fn tenant(name: &str) -> LaneKey {
        PoolKey::of(&Source {
            tenant: Some(TenantRef { kind: TenantKind::ClusterConductorOneTenant, name: name.into() }),
            secret_namespace: "baton-system".into(),
            secret_name: name.into(),
            defaults: None,
            rate_limit: None,
            not_ready: None,
            ca_bundle: None,
        })
    }

    fn target(lane: &LaneKey, app: &str, connector: &str) -> Target {
        Target {
            namespace: "ns".into(),
            api_secret: "api".into(),
            tenant: lane.clone(),
            app_id: app.into(),
            connector_id: connector.into(),
            created: false,
        }
    }

    fn entry(target: Target, due: Instant) -> Entry {
        Entry { target, due, unchanged: 0 }
    }

    #[test]
    fn schedule_counts_groups_per_lane_and_requeues() {
        let mut s = Schedule::default();
        let now = Instant::now();
        let (a, b) = (tenant("a"), tenant("b"));
        s.insert(("ns".into(), "1".into()), entry(target(&None, "app", "1"), now));
        s.insert(("ns".into(), "2".into()), entry(target(&None, "app", "2"), now));
        assert_eq!(s.groups.len(), 1, "one app and one set of credentials: one request");
        s.insert(("ns".into(), "3".into()), entry(target(&a, "app", "3"), now));
        s.insert(("ns".into(), "4".into()), entry(target(&b, "app", "4"), now));
        s.insert(("ns".into(), "5".into()), entry(target(&b, "other", "5"), now));
        assert_eq!(s.groups.len(), 4, "the same app and Secret names in another lane is another request");
        assert_eq!((s.lanes[&None], s.lanes[&a], s.lanes[&b]), (1, 1, 2));
        s.reschedule(&("ns".into(), "1".into()), now + Duration::from_secs(5));
        assert_eq!(s.queue.len(), 5);
        for k in ["1", "2", "3", "4", "5"] {
            s.remove(&("ns".into(), k.into()));
        }
        assert!(s.groups.is_empty() && s.queue.is_empty() && s.lanes.is_empty());
    }

    #[test]
    fn a_lane_without_room_keeps_its_polls_and_the_others_go_on() {
        let mut s = Schedule::default();
        let now = Instant::now();
        let (broken, calm) = (tenant("broken"), tenant("calm"));
        // The broken tenant's polls fell due first, many of them.
        for i in 0..20 {
            let at = now - Duration::from_secs(60 - i);
            s.insert(("a".into(), format!("{i}")), entry(target(&broken, &format!("app-{i}"), "c"), at));
        }
        for i in 0..3 {
            let at = now - Duration::from_secs(10 - i);
            s.insert(("b".into(), format!("{i}")), entry(target(&calm, &format!("app-{i}"), "c"), at));
        }
        s.insert(
            ("b".into(), "later".into()),
            entry(target(&calm, "app-9", "c"), now + Duration::from_secs(3)),
        );
        let mut asked = 0;
        let taken = s.take_due(now, |lane| {
            asked += 1;
            (lane != &broken).then_some(())
        });
        assert_eq!(taken.len(), 3, "every due poll of the calm tenant");
        assert!(taken.iter().all(|(_, g)| g.iter().all(|(_, t)| t.tenant == calm)));
        assert_eq!(asked, 4, "a lane without room is asked once per round, not once per poll");
        assert_eq!(s.queue.len(), 21, "the broken tenant's polls wait their lane's turn");
        assert_eq!(s.next_due_after(now), Some(now + Duration::from_secs(3)), "not an overdue one");

        // A slot of the broken lane frees: its oldest poll goes first.
        let mut room = 1;
        let taken = s.take_due(now, |_| (room > 0).then(|| room -= 1));
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].1[0].0, ("a".into(), "0".into()));
    }

    #[test]
    fn connectors_of_one_app_are_taken_together_with_one_slot() {
        let mut s = Schedule::default();
        let now = Instant::now();
        let lane = tenant("t");
        for i in 0..3 {
            s.insert(("ns".into(), format!("{i}")), entry(target(&lane, "app", &format!("{i}")), now));
        }
        let mut slots = 0;
        let taken = s.take_due(now, |_| {
            slots += 1;
            Some(())
        });
        assert_eq!((taken.len(), taken[0].1.len(), slots), (1, 3, 1));
    }

    #[test]
    fn a_tenant_polls_at_its_share_of_its_own_rate() {
        // The operator's 5 requests/s with a share of 0.5: 2.5 for the poller.
        assert_eq!(lane_budget(2.5, 5, 5), 2.5);
        assert_eq!(lane_budget(2.5, 5, 20), 10.0);
        assert_eq!(lane_budget(2.5, 5, 1), 0.5);
    }
}
