//! OneShot mode: what the CronJob and its Jobs say about the runs, as `status.schedule`. Pure.

use k8s_openapi::{
    api::batch::v1::{CronJob, Job},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::{Timestamp, tz::TimeZone},
};
use kube::ResourceExt;

use crate::api::{RunFailure, ScheduleStatus};

/// The runs as status shows them, and whether the last finished one failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Runs {
    pub exists: bool,
    pub status: ScheduleStatus,
}

impl Runs {
    pub fn failure(&self) -> Option<&RunFailure> {
        self.status.last_failure.as_ref()
    }
}

/// Reads the CronJob and the Jobs of one resource. What finished Jobs said is kept from the previous
/// status, so the record survives the Jobs' garbage collection.
pub fn observe(
    cronjob: Option<&CronJob>,
    jobs: &[Job],
    previous: Option<&ScheduleStatus>,
    now: Timestamp,
) -> Runs {
    let Some(cronjob) = cronjob else {
        return Runs { exists: false, status: ScheduleStatus::default() };
    };
    let status = cronjob.status.clone().unwrap_or_default();
    let mut last_success =
        latest([status.last_successful_time.clone(), previous.and_then(|p| p.last_successful_time.clone())]);
    let mut last_failure = previous.and_then(|p| p.last_failure.clone());
    let mut active = Vec::new();
    for job in jobs {
        match finished(job) {
            Some(Ok(at)) => last_success = latest([last_success, Some(at)]),
            Some(Err(f)) if newer(f.time.as_ref(), last_failure.as_ref().and_then(|l| l.time.as_ref())) => {
                last_failure = Some(f)
            }
            Some(Err(_)) => {}
            None => active.push(job.name_any()),
        }
    }
    active.sort();
    // A failure counts until a run succeeds after it.
    if let Some(f) = &last_failure
        && !newer(f.time.as_ref(), last_success.as_ref())
    {
        last_failure = None;
    }
    let next_run_time = next_run(&cronjob.spec.schedule, cronjob.spec.time_zone.as_deref(), now);
    Runs {
        exists: true,
        status: ScheduleStatus {
            last_schedule_time: status.last_schedule_time,
            last_successful_time: last_success,
            last_failure,
            next_run_time,
            active,
        },
    }
}

/// When a Job finished: `Ok(time)` for success, `Err` with what went wrong.
fn finished(job: &Job) -> Option<Result<Time, RunFailure>> {
    let status = job.status.as_ref()?;
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let done = |t: &str| conditions.iter().find(|c| c.type_ == t && c.status == "True");
    if let Some(c) = done("Complete") {
        let at = status.completion_time.clone().or(c.last_transition_time.clone())?;
        return Some(Ok(at));
    }
    let c = done("Failed")?;
    Some(Err(RunFailure {
        job: job.name_any(),
        time: c.last_transition_time.clone(),
        reason: c.reason.clone().unwrap_or_else(|| "Failed".into()),
        message: c.message.clone().unwrap_or_default(),
    }))
}

fn latest<const N: usize>(times: [Option<Time>; N]) -> Option<Time> {
    times.into_iter().flatten().max_by_key(|t| t.0)
}

fn newer(a: Option<&Time>, than: Option<&Time>) -> bool {
    match (a, than) {
        (Some(a), Some(b)) => a.0 > b.0,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The next time the schedule fires after `now`, in its time zone (UTC when unset). Kubernetes
/// evaluates the schedule itself; this is only what status shows.
pub fn next_run(schedule: &str, time_zone: Option<&str>, now: Timestamp) -> Option<Time> {
    let cron = croner::parser::CronParser::new().parse(schedule).ok()?;
    let zone = match time_zone {
        Some(name) => TimeZone::get(name).ok()?,
        None => TimeZone::UTC,
    };
    let next = cron.find_next_occurrence(&now.to_zoned(zone), false).ok()?;
    Some(Time(next.timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{CronJobSpec, CronJobStatus, JobCondition, JobStatus};
    use kube::api::ObjectMeta;

    fn ts(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn cronjob() -> CronJob {
        CronJob {
            metadata: ObjectMeta { name: Some("okta".into()), ..Default::default() },
            spec: CronJobSpec { schedule: "0 */6 * * *".into(), ..Default::default() },
            status: Some(CronJobStatus::default()),
        }
    }

    fn job(name: &str, kind: &str, at: &str) -> Job {
        let condition = JobCondition {
            type_: kind.into(),
            status: "True".into(),
            reason: Some(if kind == "Failed" { "BackoffLimitExceeded" } else { "" }.into()),
            message: Some("Job has reached the specified backoff limit".into()),
            last_transition_time: Some(ts(at)),
            ..Default::default()
        };
        Job {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: None,
            status: Some(JobStatus { conditions: Some(vec![condition]), ..Default::default() }),
        }
    }

    fn now() -> Timestamp {
        "2026-11-30T13:00:00Z".parse().unwrap()
    }

    #[test]
    fn no_cronjob_is_no_runs() {
        assert!(!observe(None, &[], None, now()).exists);
    }

    #[test]
    fn a_failure_counts_until_a_later_success() {
        let cj = cronjob();
        let failed = job("okta-1", "Failed", "2026-11-30T06:05:00Z");
        let runs = observe(Some(&cj), std::slice::from_ref(&failed), None, now());
        let f = runs.failure().expect("failed");
        assert_eq!((f.job.as_str(), f.reason.as_str()), ("okta-1", "BackoffLimitExceeded"));
        let ok = job("okta-2", "Complete", "2026-11-30T12:05:00Z");
        let runs = observe(Some(&cj), &[failed.clone(), ok], Some(&runs.status), now());
        assert_eq!(runs.failure(), None);
        assert_eq!(runs.status.last_successful_time, Some(ts("2026-11-30T12:05:00Z")));
        // The success is remembered after its Job is gone; an older failure does not come back.
        let runs = observe(Some(&cj), &[failed], Some(&runs.status), now());
        assert_eq!(runs.failure(), None);
        assert_eq!(runs.status.last_successful_time, Some(ts("2026-11-30T12:05:00Z")));
    }

    #[test]
    fn running_jobs_are_active() {
        let mut running = job("okta-3", "Complete", "2026-11-30T12:00:00Z");
        running.status = Some(JobStatus::default());
        let runs = observe(Some(&cronjob()), &[running], None, now());
        assert_eq!(runs.status.active, ["okta-3"]);
        assert_eq!(runs.failure(), None);
    }

    #[test]
    fn next_run_follows_the_schedule_and_zone() {
        assert_eq!(next_run("0 */6 * * *", None, now()), Some(ts("2026-11-30T18:00:00Z")));
        assert_eq!(next_run("@daily", None, now()), Some(ts("2026-12-01T00:00:00Z")));
        // Midnight in Berlin is 23:00 UTC in winter.
        assert_eq!(next_run("0 0 * * *", Some("Europe/Berlin"), now()), Some(ts("2026-11-30T23:00:00Z")));
        assert_eq!(next_run("not a schedule", None, now()), None);
    }
}
