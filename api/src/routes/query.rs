//! `POST /query`: statements in autocommit mode (or a script), optionally streamed as NDJSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::backend::{BackendSession, ExecOptions, SqlFailure, StatementOutcome, StreamItem};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiJson, AppState};

/// A statement or script to run.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// One statement, or several separated by `;`.
    #[schema(min_length = 1)]
    pub sql: String,
    /// Positional parameters `$1`, `$2`, ...: JSON null, booleans, numbers, strings.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<Json>,
    /// Statement timeout in milliseconds (at most the server's).
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    #[serde(default, deserialize_with = "crate::state::positive_u32")]
    pub timeout_ms: Option<u32>,
    /// Most rows to return per statement (at most the server's `limits.max_rows`).
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    #[serde(default, deserialize_with = "crate::state::positive_u32")]
    pub max_rows: Option<u32>,
    /// Stream the rows of one query as NDJSON instead of one JSON document.
    #[serde(default)]
    pub stream: bool,
}

/// Statements to run inside a transaction (as for `/query`, without streaming).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionQuery {
    /// One statement, or several separated by `;`.
    #[schema(min_length = 1)]
    pub sql: String,
    /// Positional parameters `$1`, `$2`, ...
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<Json>,
    /// Statement timeout in milliseconds (at most the server's).
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    #[serde(default, deserialize_with = "crate::state::positive_u32")]
    pub timeout_ms: Option<u32>,
    /// Most rows to return per statement (at most the server's `limits.max_rows`).
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    #[serde(default, deserialize_with = "crate::state::positive_u32")]
    pub max_rows: Option<u32>,
}

impl From<TransactionQuery> for QueryRequest {
    fn from(q: TransactionQuery) -> QueryRequest {
        QueryRequest {
            sql: q.sql,
            params: q.params,
            timeout_ms: q.timeout_ms,
            max_rows: q.max_rows,
            stream: false,
        }
    }
}

/// What `POST /query` answers: one statement's result, or a script's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum QueryResponse {
    /// One statement.
    Statement(StatementOutcome),
    /// Several statements.
    Script(ScriptResponse),
}

/// The result of a script of several statements.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptResponse {
    /// One result per statement, in order.
    pub results: Vec<StatementOutcome>,
    /// Wall time of the script.
    pub elapsed_ms: f64,
}

/// Sets a session's cancel flag if the request goes away (client disconnect, request
/// timeout) before the statement finished.
pub(crate) struct CancelOnDrop(pub Option<Arc<AtomicBool>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

impl CancelOnDrop {
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

/// Execution options for `principal` from the request and the server's limits.
pub(crate) fn options(
    state: &AppState,
    principal: &Principal,
    req: &QueryRequest,
) -> Result<ExecOptions, ApiError> {
    let limits = &state.inner.config.limits;
    let server_timeout = state.inner.config.statement_timeout();
    let timeout = match (
        req.timeout_ms.map(|ms| Duration::from_millis(ms.into())),
        server_timeout,
    ) {
        (Some(asked), Some(max)) => Some(asked.min(max)),
        (asked, max) => asked.or(max),
    };
    Ok(ExecOptions {
        timeout,
        max_rows: Some(
            req.max_rows
                .map_or(limits.max_rows, |n| n as usize)
                .min(limits.max_rows),
        ),
        read_only: principal.role < Role::Readwrite,
    })
}

/// Runs `req` on `session` on the blocking pool; cancels the statement if the request is
/// dropped.
pub(crate) async fn execute<S>(
    state: &AppState,
    session: S,
    run: impl FnOnce(&mut dyn BackendSession) -> Result<Vec<StatementOutcome>, SqlFailure>
    + Send
    + 'static,
) -> Result<Vec<StatementOutcome>, ApiError>
where
    S: SessionAccess,
{
    let cancel = CancelOnDrop(Some(session.cancel_handle()?));
    let outcome = tokio::task::spawn_blocking(move || session.with(run))
        .await
        .map_err(|e| ApiError::internal(format!("the statement's worker failed: {e}")))?;
    cancel.disarm();
    let outcomes = outcome?.map_err(ApiError::from)?;
    for o in &outcomes {
        state
            .inner
            .metrics
            .query_seconds
            .observe(o.elapsed_ms / 1000.0);
    }
    Ok(outcomes)
}

/// A session a request runs on: its own (autocommit) or a transaction's.
pub(crate) trait SessionAccess: Send + 'static {
    fn cancel_handle(&self) -> Result<Arc<AtomicBool>, ApiError>;
    fn with<R>(self, f: impl FnOnce(&mut dyn BackendSession) -> R) -> Result<R, ApiError>;
}

impl SessionAccess for Box<dyn BackendSession> {
    fn cancel_handle(&self) -> Result<Arc<AtomicBool>, ApiError> {
        Ok(BackendSession::cancel_handle(self.as_ref()))
    }

    fn with<R>(mut self, f: impl FnOnce(&mut dyn BackendSession) -> R) -> Result<R, ApiError> {
        Ok(f(self.as_mut()))
    }
}

impl SessionAccess for Arc<crate::transactions::Slot> {
    fn cancel_handle(&self) -> Result<Arc<AtomicBool>, ApiError> {
        let session = self.session.try_lock().ok_or_else(busy)?;
        Ok(BackendSession::cancel_handle(session.as_ref()))
    }

    fn with<R>(self, f: impl FnOnce(&mut dyn BackendSession) -> R) -> Result<R, ApiError> {
        let mut session = self.session.try_lock().ok_or_else(busy)?;
        self.touch();
        let r = f(session.as_mut());
        self.touch();
        Ok(r)
    }
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "transaction_busy",
        "another request is running a statement in this transaction",
    )
}

/// One result as-is; several under `results`.
pub(crate) fn respond(outcomes: Vec<StatementOutcome>) -> Response {
    if outcomes.len() == 1 {
        let mut outcomes = outcomes;
        return axum::Json(outcomes.remove(0)).into_response();
    }
    let elapsed_ms = outcomes.iter().map(|o| o.elapsed_ms).sum();
    axum::Json(ScriptResponse {
        results: outcomes,
        elapsed_ms,
    })
    .into_response()
}

/// Runs SQL in autocommit mode.
///
/// One statement returns its result; a script returns `{"results": [...]}`. With
/// `"stream": true` the rows of one query arrive as NDJSON lines: `{"columns": [...]}`, then
/// one `{"row": [...]}` per row, then `{"rows_affected": n, "elapsed_ms": x}` (or
/// `{"error": {...}}` if the query fails midway).
#[utoipa::path(
    post,
    path = "/query",
    tag = "sql",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The statement's result, or a script's results (NDJSON when streamed)", body = QueryResponse),
        (status = 400, description = "Malformed request or invalid SQL", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "The key's role does not allow the statement", body = ErrorBody),
        (status = 408, description = "Statement timeout", body = ErrorBody),
        (status = 409, description = "Constraint violation or write conflict", body = ErrorBody),
        (status = 413, description = "Body or result too large", body = ErrorBody),
        (status = 422, description = "Wrong parameter types", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn query(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Response, ApiError> {
    let options = options(&state, &principal, &req)?;
    let session = state.inner.backend.session();
    if req.stream {
        return stream(state, session, req, options).await;
    }
    let outcomes = execute(&state, session, move |s| {
        s.execute(&req.sql, &req.params, &options)
    })
    .await?;
    Ok(respond(outcomes))
}

#[derive(Serialize)]
struct StreamEnd {
    /// Rows streamed.
    row_count: u64,
    rows_affected: u64,
    tag: String,
    elapsed_ms: f64,
}

/// Streams one query's rows: the blocking worker pushes NDJSON lines into a bounded channel,
/// so a slow reader slows the query instead of growing memory, and a reader that goes away
/// stops it.
async fn stream(
    state: AppState,
    session: Box<dyn BackendSession>,
    req: QueryRequest,
    options: ExecOptions,
) -> Result<Response, ApiError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Result<(), SqlFailure>>();
    let cancel = BackendSession::cancel_handle(session.as_ref());
    let metrics_state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut session = session;
        let mut started = Some(started_tx);
        let mut row_count = 0u64;
        let line = |value: &dyn erased::Line| {
            let mut bytes = value.to_json();
            bytes.push(b'\n');
            bytes
        };
        let result = session.stream(&req.sql, &req.params, &options, &mut |item| {
            let bytes = match item {
                StreamItem::Columns(columns) => {
                    if let Some(s) = started.take() {
                        let _ = s.send(Ok(()));
                    }
                    line(&serde_json::json!({ "columns": columns }))
                }
                StreamItem::Row(row) => {
                    row_count += 1;
                    line(&serde_json::json!({ "row": row }))
                }
            };
            tx.blocking_send(Ok(bytes)).is_ok()
        });
        match result {
            Ok(outcome) => {
                metrics_state
                    .inner
                    .metrics
                    .query_seconds
                    .observe(outcome.elapsed_ms / 1000.0);
                if let Some(s) = started.take() {
                    let _ = s.send(Ok(()));
                }
                let _ = tx.blocking_send(Ok(line(&StreamEnd {
                    row_count,
                    rows_affected: outcome.rows_affected,
                    tag: outcome.tag,
                    elapsed_ms: outcome.elapsed_ms,
                })));
            }
            Err(failure) => match started.take() {
                Some(s) => {
                    let _ = s.send(Err(failure));
                }
                None => {
                    let body = ApiError::from(failure);
                    let _ = tx.blocking_send(Ok(line(&ErrorBody { error: body.detail })));
                }
            },
        }
    });
    let guard = CancelOnDrop(Some(cancel));
    match started_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => return Err(failure.into()),
        Err(_) => return Err(ApiError::internal("the query's worker stopped")),
    }
    // From here the body owns the cancel guard: dropping the response (client gone) cancels.
    let body = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        let item = rx.recv().await?;
        Some((item, (rx, guard)))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response())
}

mod erased {
    /// Anything serialisable as one NDJSON line.
    pub trait Line {
        fn to_json(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Line for T {
        fn to_json(&self) -> Vec<u8> {
            // Our own types and serde_json values always serialise.
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}
