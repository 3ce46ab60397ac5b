//! A pod's status as the kubelet keeps it, and the status object it writes from it.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled`, `StartError`.
    pub reason: String,
    pub message: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Waiting { reason: String, message: String },
    Running { started_at: Timestamp },
    Terminated(Terminated),
}

#[derive(Clone, Debug)]
pub struct ContainerStatus {
    pub name: String,
    pub image: String,
    pub restart_count: i32,
    pub ready: bool,
    pub started: bool,
    pub state: State,
    pub last: Option<Terminated>,
}

impl ContainerStatus {
    pub fn new(name: &str, image: &str, reason: &str) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            restart_count: 0,
            ready: false,
            started: false,
            state: State::Waiting { reason: reason.into(), message: String::new() },
            last: None,
        }
    }

    pub fn wait(&mut self, reason: &str, message: String) {
        self.ready = false;
        self.started = false;
        self.state = State::Waiting { reason: reason.into(), message };
    }

    fn to_json(&self) -> Value {
        let state = state_json(&self.state);
        let mut out = json!({
            "name": self.name, "image": self.image, "imageID": "", "restartCount": self.restart_count,
            "ready": self.ready, "started": self.started, "state": state,
        });
        if matches!(self.state, State::Running { .. }) {
            out["containerID"] = json!(format!("e2e://{}", self.name));
        }
        if let Some(last) = &self.last {
            out["lastState"] = state_json(&State::Terminated(last.clone()));
        }
        out
    }
}

fn state_json(state: &State) -> Value {
    match state {
        State::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            json!({"waiting": w})
        }
        State::Running { started_at } => json!({"running": {"startedAt": started_at.to_string()}}),
        State::Terminated(t) => {
            let mut out = json!({"exitCode": t.exit_code, "reason": t.reason,
                "startedAt": t.started_at.to_string(), "finishedAt": t.finished_at.to_string()});
            if !t.message.is_empty() {
                out["message"] = json!(t.message);
            }
            json!({"terminated": out})
        }
    }
}

/// The pod's whole status, rewritten on every change.
#[derive(Clone, Debug)]
pub struct PodStatus {
    pub phase: String,
    pub pod_ip: String,
    pub start_time: Timestamp,
    /// The scheduler's refusal (`Unschedulable` and its message), while there is one.
    pub unschedulable: Option<String>,
    pub initialized: bool,
    pub init: Vec<ContainerStatus>,
    pub main: Vec<ContainerStatus>,
    /// Why the pod failed as a whole (`Evicted`), with the message.
    pub failure: Option<(String, String)>,
}

impl PodStatus {
    pub fn to_json(&self, transitions: &mut std::collections::BTreeMap<String, (bool, Timestamp)>) -> Value {
        let ready = self.initialized && !self.main.is_empty() && self.main.iter().all(|c| c.ready);
        let scheduled = self.unschedulable.is_none();
        let mut conditions = Vec::new();
        for (type_, status) in [
            ("PodScheduled", scheduled),
            ("Initialized", self.initialized),
            ("ContainersReady", ready),
            ("Ready", ready),
        ] {
            // A condition's time changes only with its status, as the kubelet's does.
            let entry = transitions.entry(type_.into()).or_insert((status, Timestamp::now()));
            if entry.0 != status {
                *entry = (status, Timestamp::now());
            }
            let mut c = json!({"type": type_, "status": if status { "True" } else { "False" },
                "lastTransitionTime": entry.1.to_string()});
            if type_ == "PodScheduled"
                && let Some(m) = &self.unschedulable
            {
                c["reason"] = json!("Unschedulable");
                c["message"] = json!(m);
            }
            conditions.push(c);
        }
        let mut status = json!({
            "phase": self.phase,
            "startTime": self.start_time.to_string(),
            "conditions": conditions,
            "containerStatuses": self.main.iter().map(ContainerStatus::to_json).collect::<Vec<_>>(),
        });
        if !self.init.is_empty() {
            status["initContainerStatuses"] = self.init.iter().map(ContainerStatus::to_json).collect();
        }
        if self.unschedulable.is_none() {
            status["podIP"] = json!(self.pod_ip);
            status["podIPs"] = json!([{"ip": self.pod_ip}]);
        }
        if let Some((reason, message)) = &self.failure {
            status["reason"] = json!(reason);
            status["message"] = json!(message);
        }
        json!({ "status": status })
    }

    /// The phase from the containers' states, once every init container has succeeded.
    /// `will_restart`: whether a container that exited with `code` runs again.
    pub fn main_phase(&self, will_restart: impl Fn(i32) -> bool) -> String {
        let finals: Vec<Option<i32>> = self
            .main
            .iter()
            .map(|c| match &c.state {
                State::Terminated(t) if !will_restart(t.exit_code) => Some(t.exit_code),
                _ => None,
            })
            .collect();
        if !finals.is_empty() && finals.iter().all(Option::is_some) {
            let ok = finals.iter().all(|c| *c == Some(0));
            return if ok { "Succeeded" } else { "Failed" }.into();
        }
        let started = self.main.iter().any(|c| !matches!(c.state, State::Waiting { .. }) || c.last.is_some());
        if started { "Running" } else { "Pending" }.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminated(code: i32) -> State {
        let now = Timestamp::now();
        State::Terminated(Terminated {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: String::new(),
            started_at: now,
            finished_at: now,
        })
    }

    fn pod(states: Vec<State>) -> PodStatus {
        let main = states
            .into_iter()
            .map(|s| ContainerStatus { state: s, ..ContainerStatus::new("c", "i", "ContainerCreating") })
            .collect();
        PodStatus {
            phase: "Pending".into(),
            pod_ip: "127.77.0.2".into(),
            start_time: Timestamp::now(),
            unschedulable: None,
            initialized: true,
            init: Vec::new(),
            main,
            failure: None,
        }
    }

    #[test]
    fn the_phase_follows_the_containers_and_the_restart_policy() {
        let never = |_| false;
        assert_eq!(pod(vec![terminated(0)]).main_phase(never), "Succeeded");
        assert_eq!(pod(vec![terminated(0), terminated(1)]).main_phase(never), "Failed");
        assert_eq!(pod(vec![terminated(1)]).main_phase(|c| c != 0), "Running");
        assert_eq!(pod(vec![State::Running { started_at: Timestamp::now() }]).main_phase(never), "Running");
        let waiting = State::Waiting { reason: "ContainerCreating".into(), message: String::new() };
        assert_eq!(pod(vec![waiting]).main_phase(never), "Pending");
    }

    #[test]
    fn ready_needs_every_container_and_the_pod_ip_waits_for_scheduling() {
        let mut p = pod(vec![State::Running { started_at: Timestamp::now() }]);
        let mut times = Default::default();
        let ready = |s: &Value| s["status"]["conditions"][3]["status"].clone();
        assert_eq!(ready(&p.to_json(&mut times)), "False");
        p.main[0].ready = true;
        let s = p.to_json(&mut times);
        assert_eq!(ready(&s), "True");
        assert_eq!(s["status"]["podIP"], "127.77.0.2");
        p.unschedulable = Some("persistentvolumeclaim \"x\" not found".into());
        let s = p.to_json(&mut times);
        assert!(s["status"].get("podIP").is_none());
        assert_eq!(s["status"]["conditions"][0]["reason"], "Unschedulable");
    }
}
