//! A container's probes, run as the kubelet runs them: `httpGet` from outside the pod against the
//! pod IP (so a server bound to the pod's loopback is not reached, as in a pod), `tcpSocket`
//! likewise, and `exec` as a process in the container (its root, user and environment). Each probe
//! reports every result; the container's runner counts them against the thresholds.

use std::time::Duration;

use k8s_openapi::{
    api::core::v1::{Container, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};
use tokio::{sync::mpsc, task::JoinHandle};

use super::isolate::{self, Spec};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

/// Starts a probe's loop; its results arrive on `tx` until the handle is aborted.
pub fn spawn(
    kind: Kind,
    probe: Probe,
    container: &Container,
    ip: String,
    exec: Spec,
    tx: mpsc::Sender<(Kind, bool)>,
) -> JoinHandle<()> {
    let ports: Vec<(String, i32)> =
        container.ports.iter().flatten().filter_map(|p| Some((p.name.clone()?, p.container_port))).collect();
    tokio::spawn(async move {
        let delay = probe.initial_delay_seconds.unwrap_or(0).max(0) as u64;
        // The kubelet's first probe comes shortly after the container starts.
        tokio::time::sleep(Duration::from_secs(delay) + Duration::from_millis(500)).await;
        let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
        let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
        loop {
            let ok = tokio::time::timeout(timeout, once(&probe, &ports, &ip, &exec)).await.unwrap_or(false);
            if tx.send((kind, ok)).await.is_err() {
                return;
            }
            tokio::time::sleep(period).await;
        }
    })
}

fn port(p: &IntOrString, named: &[(String, i32)]) -> Option<i32> {
    match p {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => {
            name.parse().ok().or_else(|| named.iter().find(|(n, _)| n == name).map(|(_, p)| *p))
        }
    }
}

async fn once(probe: &Probe, named: &[(String, i32)], ip: &str, exec: &Spec) -> bool {
    if let Some(h) = &probe.http_get {
        let Some(port) = port(&h.port, named) else { return false };
        let host = h.host.clone().unwrap_or_else(|| ip.to_string());
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let url = format!("{scheme}://{host}:{port}{}", h.path.as_deref().unwrap_or("/"));
        let Ok(client) = reqwest::Client::builder().no_proxy().build() else { return false };
        return client.get(url).send().await.is_ok_and(|r| (200..400).contains(&r.status().as_u16()));
    }
    if let Some(t) = &probe.tcp_socket {
        let Some(port) = port(&t.port, named) else { return false };
        let host = t.host.clone().unwrap_or_else(|| ip.to_string());
        return tokio::net::TcpStream::connect((host.as_str(), port as u16)).await.is_ok();
    }
    if let Some(e) = &probe.exec {
        let mut spec = exec.clone();
        spec.argv = e.command.clone().unwrap_or_default();
        if spec.argv.is_empty() {
            return false;
        }
        let Ok(mut child) = isolate::spawn(&spec) else { return false };
        return child.wait().await.is_ok_and(|s| s.success());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_ports_resolve_through_the_container() {
        let named = [("health".to_string(), 8081)];
        assert_eq!(port(&IntOrString::String("health".into()), &named), Some(8081));
        assert_eq!(port(&IntOrString::Int(9), &named), Some(9));
        assert_eq!(port(&IntOrString::String("other".into()), &named), None);
    }
}
