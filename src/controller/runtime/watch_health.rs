//! Keeping every watch alive through API server restarts, and knowing how each one is doing.
//!
//! kube's watcher recovers by itself, but it is paced for a struggling API server: its default
//! back-off grows to 30 s plus up to as much again in jitter, and it applies to a `410 Expired` too.
//! After a control-plane restart the operator therefore saw nothing for a minute or more, one watch
//! after another. Every watch here runs through [`resilient`] instead:
//! - a `410 Expired` (the resourceVersion is older than the restarted API server keeps) lists again
//!   at once;
//! - any other error retries after a short back-off (250 ms doubling up to 5 s, jittered), reset by
//!   the first event after it;
//! - a retry always starts a fresh watcher, which lists everything again: the stores and caches fed
//!   from it are rebuilt from that list, so objects changed or deleted while it was down are seen,
//!   and the watcher never resumes from a position the operator cannot vouch for.
//!
//! [`WatchHealth`] holds the state of each watch: `/readyz` is not ready while one is down, every
//! outage and recovery is logged once, and the metrics say how each kind of watch is doing.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt, stream::BoxStream};
use kube::runtime::watcher::{self, Event};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use rand::Rng;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// What a watch is of: the label of its metrics.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelValue)]
pub enum WatchKind {
    BatonConnector,
    Deployment,
    CronJob,
    Job,
    Secret,
    Pod,
    ConductorOneTenant,
    ClusterConductorOneTenant,
}

/// First retry delay after a watch error other than `410 Expired`.
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest a watch that could not reach the API server waits before it tries again: short,
/// because the API server being back is what every reconcile waits for, and a refused connection
/// costs nobody anything.
const RETRY_MAX_UNREACHABLE: Duration = Duration::from_secs(2);
/// The longest a watch whose request the API server answered with an error (overloaded, etcd
/// away) waits: each retry is a list, which a struggling API server should not get too often.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// While a watch stays down, how often it says so again at warning level.
const DOWN_REMINDER: Duration = Duration::from_secs(60);

/// The retry schedule of one watch: pure, so it can be tested without a server.
#[derive(Debug, Default)]
pub struct Retry {
    failures: u32,
    /// Whether the last error was an answer of the API server (see `answered`).
    answered: bool,
}

impl Retry {
    /// How long to wait after `error` before starting a fresh watcher.
    pub fn after(&mut self, error: &watcher::Error) -> Duration {
        // The first answer after a run of refused connections is the API server coming back, whose
        // first answers are often transient (a 403 before its authorizer has synced, a 5xx while
        // its caches fill): that starts the schedule over rather than inheriting the outage's.
        let answered = answered(error);
        if answered != self.answered {
            self.answered = answered;
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        // A fresh list cannot be too old, so a 410 that keeps coming back is not the restart case:
        // from the third one in a row it waits like any other error.
        if is_gone(error) && self.failures <= 2 {
            return Duration::ZERO;
        }
        let exp = self.failures.saturating_sub(1).min(16);
        let cap = if answered { RETRY_MAX } else { RETRY_MAX_UNREACHABLE };
        let full = RETRY_FIRST.saturating_mul(1u32 << exp).min(cap);
        // Half fixed, half random, so the watches of one process do not retry in lockstep.
        full / 2 + full.mul_f64(rand::rng().random_range(0.0..0.5))
    }

    /// The watch works again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The API server no longer has the resourceVersion the watch would resume from: a list is due.
pub fn is_gone(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// The API server answered (with an error status), as opposed to a request that never reached it.
fn answered(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(_) => true,
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => {
            matches!(e, kube::Error::Api(_))
        }
        _ => false,
    }
}

/// One watch's state.
#[derive(Debug, Default)]
struct State {
    /// Since when it has been failing; `None` while it works.
    down_since: Option<Instant>,
    /// When it last said at warning level that it is down.
    warned_at: Option<Instant>,
    /// When it last delivered an event (a list counts).
    last_event: Option<Instant>,
    /// Fresh watchers started after an error.
    restarts: u64,
}

/// The state of every watch of the process, by kind and scope (a namespace, or `None` for all).
#[derive(Debug)]
pub struct WatchHealth {
    watches: Mutex<HashMap<(WatchKind, Option<String>), State>>,
    /// How many watches are down now; reconcile plumbing waits on it going back to zero.
    down: watch::Sender<usize>,
}

impl Default for WatchHealth {
    fn default() -> Self {
        Self { watches: Mutex::default(), down: watch::channel(0).0 }
    }
}

impl WatchHealth {
    /// True while at least one watch is failing.
    pub fn any_down(&self) -> bool {
        *self.down.borrow() > 0
    }

    /// The kinds whose watches are failing now, for `/readyz`'s answer.
    pub fn down_kinds(&self) -> Vec<WatchKind> {
        let watches = self.watches.lock().expect("watch health poisoned");
        let mut kinds: Vec<WatchKind> =
            watches.iter().filter(|(_, s)| s.down_since.is_some()).map(|((k, _), _)| *k).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Resolves the next time every watch works again after some were down.
    pub async fn recovered(&self) {
        let mut rx = self.down.subscribe();
        let _ = rx.wait_for(|n| *n > 0).await;
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    fn update(&self, kind: WatchKind, scope: &Option<String>, f: impl FnOnce(&mut State)) {
        let mut watches = self.watches.lock().expect("watch health poisoned");
        f(watches.entry((kind, scope.clone())).or_default());
        let down = watches.values().filter(|s| s.down_since.is_some()).count();
        self.down.send_if_modified(|n| std::mem::replace(n, down) != down);
    }

    /// An event arrived. `Init` only says a list is about to start, so it proves nothing.
    fn delivered<K>(&self, kind: WatchKind, scope: &Option<String>, event: &Event<K>) {
        let proves = !matches!(event, Event::Init);
        self.update(kind, scope, |s| {
            s.last_event = Some(Instant::now());
            if proves && let Some(since) = s.down_since.take() {
                s.warned_at = None;
                info!(?kind, scope = scope.as_deref().unwrap_or("*"), down_for = ?since.elapsed(), "watch recovered");
            }
        });
    }

    fn failed(&self, kind: WatchKind, scope: &Option<String>, error: &watcher::Error, retry_in: Duration) {
        self.update(kind, scope, |s| {
            s.restarts += 1;
            let now = Instant::now();
            let since = *s.down_since.get_or_insert(now);
            let ns = scope.as_deref().unwrap_or("*");
            if s.warned_at.is_none_or(|t| t.elapsed() >= DOWN_REMINDER) {
                s.warned_at = Some(now);
                warn!(?kind, scope = ns, %error, down_for = ?since.elapsed(), ?retry_in, "watch failed; listing again");
            } else {
                debug!(?kind, scope = ns, %error, ?retry_in, "watch failed again; listing again");
            }
        });
    }

    /// A failed watch, for tests of what reads the state.
    #[cfg(test)]
    pub fn mark_failed_for_test(&self, kind: WatchKind) {
        let error =
            watcher::Error::WatchError(Box::new(kube::core::Status::failure("test", "Test").with_code(500)));
        self.failed(kind, &None, &error, Duration::ZERO);
    }

    /// Per kind: whether every watch of it works, restarts, and seconds since its last event.
    fn summary(&self) -> Vec<(WatchKind, bool, u64, Option<f64>)> {
        let watches = self.watches.lock().expect("watch health poisoned");
        let mut by_kind: HashMap<WatchKind, (bool, u64, Option<f64>)> = HashMap::new();
        for ((kind, _), s) in watches.iter() {
            let entry = by_kind.entry(*kind).or_insert((true, 0, None));
            entry.0 &= s.down_since.is_none();
            entry.1 += s.restarts;
            if let Some(t) = s.last_event {
                let age = t.elapsed().as_secs_f64();
                entry.2 = Some(entry.2.map_or(age, |a: f64| a.min(age)));
            }
        }
        let mut out: Vec<_> = by_kind.into_iter().map(|(k, (up, r, age))| (k, up, r, age)).collect();
        out.sort_by_key(|(k, ..)| *k);
        out
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: WatchKind,
}

/// The watches' metrics, computed at scrape time from their state.
#[derive(Debug)]
pub struct WatchMetrics(pub std::sync::Arc<WatchHealth>);

impl prometheus_client::collector::Collector for WatchMetrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::{
            encoding::EncodeMetric,
            metrics::{counter::ConstCounter, gauge::ConstGauge},
        };
        let summary = self.0.summary();
        let gauge = ConstGauge::new(0.0f64).metric_type();
        let mut family = encoder.encode_descriptor(
            "baton_operator_watch_up",
            "1 while every watch of this kind works, 0 while one is failing and being listed again",
            None,
            gauge,
        )?;
        for (kind, up, ..) in &summary {
            ConstGauge::new(f64::from(u8::from(*up)))
                .encode(family.encode_family(&KindLabels { kind: *kind })?)?;
        }
        let mut family = encoder.encode_descriptor(
            "baton_operator_watch_restarts",
            "Fresh watchers started after an error, by kind",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (kind, _, restarts, _) in &summary {
            ConstCounter::new(*restarts).encode(family.encode_family(&KindLabels { kind: *kind })?)?;
        }
        let mut family = encoder.encode_descriptor(
            "baton_operator_watch_last_event_age_seconds",
            "Seconds since a watch of this kind last delivered an event (a quiet kind grows; watch_up says whether it works)",
            None,
            gauge,
        )?;
        for (kind, _, _, age) in &summary {
            if let Some(age) = age {
                ConstGauge::new(*age).encode(family.encode_family(&KindLabels { kind: *kind })?)?;
            }
        }
        Ok(())
    }
}

/// A watch that never ends and never yields an error: errors are logged, counted and answered by a
/// fresh watcher from `start` (see the module's description). Events pass through unchanged.
pub fn resilient<K, S, F>(
    health: std::sync::Arc<WatchHealth>,
    kind: WatchKind,
    scope: Option<String>,
    start: F,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    F: Fn() -> S + Send + 'static,
{
    struct Running<K, F> {
        stream: BoxStream<'static, Result<Event<K>, watcher::Error>>,
        retry: Retry,
        start: F,
        health: std::sync::Arc<WatchHealth>,
        scope: Option<String>,
    }
    let stream = start().boxed();
    let running = Running { stream, retry: Retry::default(), start, health, scope };
    futures::stream::unfold(running, move |mut r| async move {
        loop {
            match r.stream.next().await {
                Some(Ok(event)) => {
                    if !matches!(event, Event::Init) {
                        r.retry.reset();
                    }
                    r.health.delivered(kind, &r.scope, &event);
                    return Some((Ok(event), r));
                }
                Some(Err(error)) => {
                    let delay = r.retry.after(&error);
                    r.health.failed(kind, &r.scope, &error, delay);
                    tokio::time::sleep(delay).await;
                    r.stream = (r.start)().boxed();
                }
                // kube's watcher never ends; should one, a fresh one takes its place.
                None => r.stream = (r.start)().boxed(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;
    use kube::core::Status;

    fn gone() -> watcher::Error {
        watcher::Error::WatchError(Box::new(
            Status::failure("too old resource version", "Expired").with_code(410),
        ))
    }

    fn refused() -> watcher::Error {
        watcher::Error::WatchError(Box::new(Status::failure("internal", "InternalError").with_code(500)))
    }

    fn unreachable() -> watcher::Error {
        watcher::Error::InitialListFailed(kube::Error::Service("client error (Connect)".into()))
    }

    #[test]
    fn an_unreachable_api_server_is_tried_again_within_two_seconds() {
        let mut retry = Retry::default();
        let delays: Vec<Duration> = (0..10).map(|_| retry.after(&unreachable())).collect();
        assert!(delays.iter().all(|d| *d <= RETRY_MAX_UNREACHABLE), "{delays:?}");
        assert!(delays[9] >= RETRY_MAX_UNREACHABLE / 2, "{delays:?}");
    }

    #[test]
    fn gone_lists_again_at_once_other_errors_back_off_to_a_short_cap() {
        let mut retry = Retry::default();
        assert_eq!(retry.after(&gone()), Duration::ZERO);
        retry.reset();
        let delays: Vec<Duration> = (0..10).map(|_| retry.after(&refused())).collect();
        assert!(delays[0] >= RETRY_FIRST / 2 && delays[0] <= RETRY_FIRST, "{delays:?}");
        assert!(delays.iter().all(|d| *d <= RETRY_MAX), "{delays:?}");
        assert!(delays[9] >= RETRY_MAX / 2, "the cap is reached: {delays:?}");
        retry.reset();
        assert!(retry.after(&refused()) <= RETRY_FIRST, "a working watch starts over");
    }

    #[test]
    fn the_first_answer_after_an_outage_starts_the_schedule_over() {
        let mut retry = Retry::default();
        for _ in 0..10 {
            retry.after(&unreachable());
        }
        assert!(retry.after(&refused()) <= RETRY_FIRST, "a 5xx right after the outage retries soon");
    }

    #[test]
    fn a_gone_that_keeps_coming_back_waits_like_any_error() {
        let mut retry = Retry::default();
        assert_eq!(retry.after(&gone()), Duration::ZERO);
        assert_eq!(retry.after(&gone()), Duration::ZERO);
        assert!(retry.after(&gone()) > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_restart_the_watcher_and_mark_the_watch_down_until_it_lists() {
        let health = std::sync::Arc::new(WatchHealth::default());
        let starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let s = starts.clone();
        // The first two watchers fail after Init (the API server is down); the third lists.
        let watch = resilient(health.clone(), WatchKind::Deployment, None, move || {
            let n = s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let events: Vec<Result<Event<u32>, watcher::Error>> = if n < 2 {
                vec![Ok(Event::Init), Err(refused())]
            } else {
                vec![Ok(Event::Init), Ok(Event::InitApply(7)), Ok(Event::InitDone)]
            };
            stream::iter(events).chain(stream::pending())
        });
        let mut watch = Box::pin(watch);
        assert!(matches!(watch.next().await, Some(Ok(Event::Init))));
        assert!(!health.any_down());
        // The error is not passed on: the next item is the second watcher's Init.
        assert!(matches!(watch.next().await, Some(Ok(Event::Init))));
        assert!(health.any_down(), "down after an error");
        assert_eq!(health.down_kinds(), vec![WatchKind::Deployment]);
        assert!(matches!(watch.next().await, Some(Ok(Event::Init))));
        assert!(health.any_down(), "an Init proves nothing");
        assert!(matches!(watch.next().await, Some(Ok(Event::InitApply(7)))));
        assert!(!health.any_down(), "a listed object proves the watch works");
        assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), 3);
        let summary = health.summary();
        assert_eq!(summary.len(), 1);
        assert_eq!((summary[0].1, summary[0].2), (true, 2));
    }

    #[tokio::test]
    async fn recovered_resolves_when_the_last_down_watch_works_again() {
        let health = std::sync::Arc::new(WatchHealth::default());
        let h = health.clone();
        let waiter = tokio::spawn(async move { h.recovered().await });
        tokio::task::yield_now().await;
        health.failed(WatchKind::Secret, &None, &refused(), Duration::ZERO);
        health.failed(WatchKind::Job, &Some("ns".into()), &refused(), Duration::ZERO);
        health.delivered(WatchKind::Secret, &None, &Event::<u32>::InitDone);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the Job watch is still down");
        health.delivered(WatchKind::Job, &Some("ns".into()), &Event::<u32>::Apply(1));
        tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
    }
}
