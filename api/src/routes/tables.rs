//! `GET /tables` and `GET /tables/{name}`.

use axum::extract::{Path, State};

use crate::auth::Principal;
use crate::backend::TableInfo;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))
}

/// Lists the tables with their schemas.
#[utoipa::path(
    get,
    path = "/tables",
    tag = "schema",
    responses(
        (status = 200, description = "All tables", body = Vec<TableInfo>),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<axum::Json<Vec<TableInfo>>, ApiError> {
    let backend = state.inner.backend.clone();
    Ok(axum::Json(blocking(move || backend.tables()).await??))
}

/// One table: columns, indexes, estimated rows.
#[utoipa::path(
    get,
    path = "/tables/{name}",
    tag = "schema",
    params(("name" = String, Path, description = "Table name")),
    responses(
        (status = 200, description = "The table", body = TableInfo),
        (status = 404, description = "No such table", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    _principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<TableInfo>, ApiError> {
    let backend = state.inner.backend.clone();
    let lookup = name.clone();
    blocking(move || backend.table(&lookup))
        .await??
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("table {name:?} does not exist")))
}
