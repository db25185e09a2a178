//! `/health`, `/ready` and `/metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A status answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: String,
}

/// Liveness: the process serves requests. Needs no credentials.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "Alive", body = Status)))]
pub async fn health() -> axum::Json<Status> {
    axum::Json(Status {
        status: "ok".into(),
    })
}

/// Readiness: initialised and not shutting down. Needs no credentials.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "Not initialised, or shutting down", body = ErrorBody),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<axum::Json<Status>, ApiError> {
    if !state.inner.auth.keys.is_initialized() {
        return Err(ApiError::not_initialized());
    }
    if state.is_draining() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        ));
    }
    Ok(axum::Json(Status {
        status: "ready".into(),
    }))
}

/// Prometheus metrics (text exposition format). Needs no credentials, so that scrapers need
/// none; serve it on `metrics_listen` to keep it off the public port.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Metrics", body = String, content_type = "application/openmetrics-text"),
    (status = 503, description = "Not initialised (run nqdb init)", body = ErrorBody),
))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    if !state.inner.auth.keys.is_initialized() {
        return ApiError::not_initialized().into_response();
    }
    let state2 = state.clone();
    let body = tokio::task::spawn_blocking(move || state2.metrics().render())
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
