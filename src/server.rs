//! The operator's HTTP endpoints: `/livez`, `/readyz` and `/metrics`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context as _;
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::controller::runtime::watch_health::WatchHealth;

/// What `/readyz` answers from.
#[derive(Clone, Default)]
pub struct Readiness {
    /// The BatonConnector cache has been filled (or, with leader election, this replica is a standby).
    pub listed: Arc<AtomicBool>,
    /// The watches: not ready while one is down (the API server is away, say).
    pub watches: Arc<WatchHealth>,
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    ready: Readiness,
}

/// The router, separate from the listener so tests can drive it.
pub fn router(registry: Arc<Registry>, ready: Readiness) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AppState { registry, ready })
}

/// Binds the HTTP address. Done before anything else at startup so that an address in use stops
/// the operator at once, with the address in the message.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (--http-addr, HTTP_ADDR)"))
}

/// Serves until the process ends.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, ready: Readiness) -> std::io::Result<()> {
    axum::serve(listener, router(registry, ready)).await
}

/// Ready once the controller's cache of BatonConnectors has been filled, so a probe does not route
/// traffic (or a rollout does not continue) before the operator knows its fleet; not ready while a
/// watch is down, so that a person and the kubelet see an operator that cannot see its cluster.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.ready.listed.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "cache not synced".to_string());
    }
    let down = state.ready.watches.down_kinds();
    if down.is_empty() {
        (StatusCode::OK, "ok".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("watches down, listing again: {down:?}"))
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, http::Request};
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, String, String) {
        let response = router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_follows_the_cache_and_livez_is_always_ok() {
        let mut registry = Registry::default();
        crate::metrics::Metrics::register(&mut registry);
        let ready = Readiness::default();
        let router = router(Arc::new(registry), ready.clone());
        assert_eq!(get(router.clone(), "/livez").await.0, StatusCode::OK);
        assert_eq!(get(router.clone(), "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        ready.listed.store(true, Ordering::Relaxed);
        assert_eq!(get(router.clone(), "/readyz").await.0, StatusCode::OK);
        ready.watches.mark_failed_for_test(crate::controller::runtime::watch_health::WatchKind::Deployment);
        let (status, _, body) = get(router.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("Deployment"), "{body}");
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_text() {
        let mut registry = Registry::default();
        let metrics = crate::metrics::Metrics::register(&mut registry);
        metrics.status_writes.inc();
        let (status, content_type, body) =
            get(router(Arc::new(registry), Readiness::default()), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("application/openmetrics-text"));
        assert!(body.contains("baton_operator_status_writes_total 1"), "{body}");
        assert!(body.ends_with("# EOF\n"));
    }
}
