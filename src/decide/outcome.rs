//! What one reconcile pass came to: one type for every stage, with one rule for which problem is
//! reported when several stages hit one.

use std::time::Duration;

use crate::api::ConductorOneStatus;
use crate::decide::status::Problem;

/// How soon a reconcile that found every ConductorOne slot taken comes back.
pub const C1_BUSY_RETRY: Duration = Duration::from_secs(2);

/// The stages of a pass that can block it, in the order their problems are reported: what keeps
/// onboarding from finishing explains the rest; an object the operator cannot write explains why a
/// rotation waits; a rotation's failure says more than the inputs it left unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Creating the ConductorOne app and connector.
    Onboarding,
    /// The connector's settings break its catalogued schema: nothing built from them is applied.
    Config,
    /// Applying the workload (the API server refused it, or someone else owns it).
    Apply,
    /// Managed credentials: their settings and the rotation's ConductorOne calls.
    Rotation,
    /// The Secrets the workload reads.
    Inputs,
    /// Revoking what was minted while the resource used managed credentials.
    Leftovers,
    /// What a person asked ConductorOne for (a sync, a pause).
    Actions,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// Every problem of the pass, in the order they were found.
    problems: Vec<(Stage, Problem)>,
    /// Look again after this long at the latest.
    wait: Option<Duration>,
    /// The config hash the pod template should carry (None when the inputs were unusable).
    pub config_hash: Option<String>,
    /// The workload is on the current template (it was applied, or needed no apply).
    pub applied_current: bool,
    /// Operator-minted credentials revoked because the resource no longer uses managed credentials.
    pub revoked: Vec<String>,
    /// A `sync-requested-at` value this pass handled (a run started, or a sync queued).
    pub handled_sync: Option<String>,
    /// A new `status.conductorOne`, when an action changed it.
    pub conductor_one: Option<ConductorOneStatus>,
    /// The connector's settings as checked against the catalog (`ConfigValid`).
    pub settings: Option<crate::catalog::validate::Outcome>,
}

impl Outcome {
    /// Records a problem.
    pub fn block(&mut self, stage: Stage, problem: Problem) {
        self.problems.push((stage, problem));
    }

    /// The problem to report: the earliest stage's, and within a stage the first.
    pub fn problem(&self) -> Option<&Problem> {
        // `min_by_key` keeps the first of equal keys.
        self.problems.iter().min_by_key(|(stage, _)| *stage).map(|(_, p)| p)
    }

    pub fn into_problem(self) -> Option<Problem> {
        self.problem().cloned()
    }

    /// Whether a stage of the workload (its settings, apply, rotation, inputs) is blocked.
    pub fn workload_blocked(&self) -> bool {
        self.problems
            .iter()
            .any(|(s, _)| matches!(s, Stage::Config | Stage::Apply | Stage::Rotation | Stage::Inputs))
    }

    /// Whether `stage` has a problem.
    pub fn blocked(&self, stage: Stage) -> bool {
        self.problems.iter().any(|(s, _)| *s == stage)
    }

    /// Look again after `delay` at the latest.
    pub fn recheck_in(&mut self, delay: Duration) {
        self.wait = Some(self.wait.map_or(delay, |w| w.min(delay)));
    }

    /// Every ConductorOne slot was taken: come back shortly rather than hold a worker.
    pub fn busy(&mut self) {
        self.recheck_in(C1_BUSY_RETRY);
    }

    pub fn wait(&self) -> Option<Duration> {
        self.wait
    }
}

/// Why cleaning up in ConductorOne failed. The message names objects, never secret values.
#[derive(Debug)]
pub struct CleanupError {
    pub message: String,
    /// Retrying will not cure it (no access, refused credentials): deletion gives up at once.
    pub permanent: bool,
}

impl CleanupError {
    pub fn retryable(message: String) -> Self {
        Self { message, permanent: false }
    }

    pub fn permanent(message: String) -> Self {
        Self { message, permanent: true }
    }

    /// A failed ConductorOne call, permanent when ConductorOne's answer says so.
    pub fn from_conductorone(message: String, e: &crate::conductorone::Error) -> Self {
        Self { message, permanent: e.is_permanent() }
    }
}

impl std::fmt::Display for CleanupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.permanent {
            true => write!(f, "{} (permanent)", self.message),
            false => f.write_str(&self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(m: &str) -> Problem {
        Problem::Rejected { message: m.into() }
    }

    #[test]
    fn the_earliest_stage_is_reported_whatever_the_order() {
        let mut o = Outcome::default();
        o.block(Stage::Inputs, rejected("inputs"));
        o.block(Stage::Actions, rejected("actions"));
        o.block(Stage::Apply, rejected("apply"));
        o.block(Stage::Rotation, rejected("rotation"));
        assert_eq!(o.problem(), Some(&rejected("apply")));
        o.block(Stage::Onboarding, rejected("onboarding"));
        assert_eq!(o.problem(), Some(&rejected("onboarding")));
    }

    #[test]
    fn within_a_stage_the_first_problem_stays() {
        let mut o = Outcome::default();
        o.block(Stage::Rotation, rejected("first"));
        o.block(Stage::Rotation, rejected("second"));
        assert_eq!(o.problem(), Some(&rejected("first")));
    }

    #[test]
    fn onboarding_problems_do_not_block_the_workload_stages() {
        let mut o = Outcome::default();
        o.block(Stage::Onboarding, rejected("x"));
        assert!(!o.workload_blocked());
        o.block(Stage::Inputs, rejected("y"));
        assert!(o.workload_blocked());
    }

    #[test]
    fn invalid_settings_block_the_workload_and_explain_more_than_its_inputs() {
        let mut o = Outcome::default();
        o.block(Stage::Inputs, rejected("inputs"));
        o.block(Stage::Config, rejected("config"));
        assert!(o.workload_blocked() && o.blocked(Stage::Config) && !o.blocked(Stage::Apply));
        assert_eq!(o.problem(), Some(&rejected("config")));
    }

    #[test]
    fn the_shortest_wait_wins() {
        let mut o = Outcome::default();
        assert_eq!(o.wait(), None);
        o.recheck_in(Duration::from_secs(60));
        o.busy();
        o.recheck_in(Duration::from_secs(30));
        assert_eq!(o.wait(), Some(C1_BUSY_RETRY));
    }
}
