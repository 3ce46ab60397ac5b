//! The status that kstatus (used by Flux, `kubectl wait`-style tooling and cli-utils) computes for a
//! custom resource, following `sigs.k8s.io/cli-utils/pkg/kstatus/status` rule by rule, so tests can
//! assert what GitOps tools will show.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KStatus {
    InProgress,
    Current,
    Failed,
    Terminating,
}

pub fn compute(obj: &Value) -> KStatus {
    if !obj["metadata"]["deletionTimestamp"].is_null() {
        return KStatus::Terminating;
    }
    let status = &obj["status"];
    if let Some(observed) = status["observedGeneration"].as_i64()
        && Some(observed) != obj["metadata"]["generation"].as_i64()
    {
        return KStatus::InProgress;
    }
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let is = |t: &str, s: &str| conditions.iter().any(|c| c["type"] == t && c["status"] == s);
    if is("Reconciling", "True") {
        return KStatus::InProgress;
    }
    if is("Stalled", "True") {
        return KStatus::Failed;
    }
    if is("Ready", "True") {
        return KStatus::Current;
    }
    if is("Ready", "False") || is("Ready", "Unknown") {
        return KStatus::InProgress;
    }
    KStatus::Current
}
