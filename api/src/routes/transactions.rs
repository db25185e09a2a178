//! `POST /transactions` and the statements, commit and rollback of one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::query::{QueryRequest, QueryResponse, TransactionQuery, execute, options, respond};
use crate::auth::Principal;
use crate::backend::ExecOptions;
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiJson, AppState};

/// An opened transaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionOpened {
    /// Its id, for the URLs below `/transactions/{id}`.
    pub id: String,
    /// It is rolled back after this long without a request, milliseconds.
    pub idle_timeout_ms: u64,
}

/// How a transaction ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionEnded {
    /// `COMMIT` or `ROLLBACK`.
    pub outcome: String,
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no open transaction {id:?} (it may have been committed, rolled back, or timed out)"
    ))
}

/// Opens a transaction.
#[utoipa::path(
    post,
    path = "/transactions",
    tag = "transactions",
    responses(
        (status = 201, description = "Opened", body = TransactionOpened),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 429, description = "Too many open transactions or rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn open(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<(StatusCode, axum::Json<TransactionOpened>), ApiError> {
    let session = state.inner.backend.session();
    let opts = ExecOptions::default();
    let (session, outcome) = tokio::task::spawn_blocking(move || {
        let mut session = session;
        let r = session.execute("BEGIN", &[], &opts);
        (session, r)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the transaction's worker failed: {e}")))?;
    outcome?;
    let txns = &state.inner.transactions;
    let id = txns.insert(&principal.key_id, session).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_transactions",
            "too many transactions are open; commit or roll back some first",
        )
    })?;
    state.inner.metrics.open_transactions.set(txns.len() as i64);
    Ok((
        StatusCode::CREATED,
        axum::Json(TransactionOpened {
            id,
            idle_timeout_ms: txns.idle_timeout().as_millis() as u64,
        }),
    ))
}

/// Runs statements inside a transaction.
#[utoipa::path(
    post,
    path = "/transactions/{id}/query",
    tag = "transactions",
    params(("id" = String, Path, description = "Transaction id")),
    request_body = TransactionQuery,
    responses(
        (status = 200, description = "The statement's result, or a script's results", body = QueryResponse),
        (status = 400, description = "Invalid SQL", body = ErrorBody),
        (status = 404, description = "No such open transaction", body = ErrorBody),
        (status = 409, description = "Conflict, or another request is using the transaction", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn query(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TransactionQuery>,
) -> Result<Response, ApiError> {
    let req = QueryRequest::from(req);
    let slot = state
        .inner
        .transactions
        .get(&id, &principal.key_id)
        .ok_or_else(|| unknown(&id))?;
    let options = options(&state, &principal, &req)?;
    let outcomes = execute(&state, slot, move |s| {
        s.execute(&req.sql, &req.params, &options)
    })
    .await?;
    Ok(respond(outcomes))
}

async fn finish(
    state: &AppState,
    principal: &Principal,
    id: &str,
    sql: &'static str,
) -> Result<String, ApiError> {
    let txns = &state.inner.transactions;
    let slot = txns.get(id, &principal.key_id).ok_or_else(|| unknown(id))?;
    if slot.session.is_locked() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "transaction_busy",
            "a statement is running in this transaction",
        ));
    }
    txns.remove(id).ok_or_else(|| unknown(id))?;
    state.inner.metrics.open_transactions.set(txns.len() as i64);
    let outcomes = execute(state, slot, move |s| {
        s.execute(sql, &[], &ExecOptions::default())
    })
    .await?;
    Ok(outcomes
        .into_iter()
        .next()
        .map(|o| o.tag)
        .unwrap_or_default())
}

/// Commits a transaction.
///
/// A transaction in which a statement failed cannot commit: it is rolled back and the answer
/// is 409 `transaction_rolled_back`.
#[utoipa::path(
    post,
    path = "/transactions/{id}/commit",
    tag = "transactions",
    params(("id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, description = "Committed", body = TransactionEnded),
        (status = 404, description = "No such open transaction", body = ErrorBody),
        (status = 409, description = "Write conflict, or rolled back after an earlier error", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn commit(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<TransactionEnded>, ApiError> {
    let outcome = finish(&state, &principal, &id, "COMMIT").await?;
    if outcome != "COMMIT" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "transaction_rolled_back",
            "a statement in this transaction failed, so it was rolled back instead of committed",
        ));
    }
    Ok(axum::Json(TransactionEnded { outcome }))
}

/// Rolls a transaction back.
#[utoipa::path(
    post,
    path = "/transactions/{id}/rollback",
    tag = "transactions",
    params(("id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, description = "Rolled back", body = TransactionEnded),
        (status = 404, description = "No such open transaction", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rollback(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<TransactionEnded>, ApiError> {
    let outcome = finish(&state, &principal, &id, "ROLLBACK").await?;
    Ok(axum::Json(TransactionEnded { outcome }))
}

/// Rolls back transactions left idle; runs until the server stops.
pub(crate) async fn reap_idle(state: AppState) {
    let period =
        (state.inner.transactions.idle_timeout() / 4).max(std::time::Duration::from_millis(50));
    loop {
        tokio::time::sleep(period).await;
        let idle = state.inner.transactions.take_idle();
        if idle.is_empty() {
            continue;
        }
        state
            .inner
            .metrics
            .open_transactions
            .set(state.inner.transactions.len() as i64);
        tracing::info!(count = idle.len(), "rolling back idle transactions");
        let _ = tokio::task::spawn_blocking(move || {
            for slot in idle {
                let _ = slot
                    .session
                    .lock()
                    .execute("ROLLBACK", &[], &ExecOptions::default());
            }
        })
        .await;
    }
}
