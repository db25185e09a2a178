//! WebSocket at `/api/v1/ws`: pub/sub channels, table change feeds, streamed queries.
//!
//! The hub owns the connection registry and the logs: one [`log::EventLog`] for table changes
//! (the backend appends every committed row change) and one per channel. Each subscription
//! is a task reading its log from a cursor into its connection's bounded outbound queue, so
//! memory per connection is bounded by the queue and a slow reader falls behind instead of
//! growing buffers (see `docs/websocket.md`).

pub mod conn;
pub mod log;
pub mod protocol;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::config::WebSocketConfig;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use log::EventLog;

/// Per-connection counters, for the registry and `GET /connections`.
#[derive(Debug)]
pub struct ConnStats {
    /// The key the connection authenticated with.
    pub key_id: String,
    /// Its role.
    pub role: Role,
    /// When it connected.
    pub since: Instant,
    /// Messages sent to it.
    pub sent: AtomicU64,
    /// Messages received from it.
    pub received: AtomicU64,
    /// Its live subscriptions.
    pub subscriptions: AtomicUsize,
}

/// Connections, channels and the change log.
#[derive(Debug)]
pub struct WsHub {
    pub(crate) config: WebSocketConfig,
    /// Committed table changes, appended by the backend.
    pub changes: Arc<EventLog>,
    channels: Mutex<HashMap<String, Arc<EventLog>>>,
    connections: Mutex<HashMap<u64, Arc<ConnStats>>>,
    next_id: AtomicU64,
}

impl WsHub {
    /// A hub with `config`'s limits.
    pub fn new(config: WebSocketConfig) -> WsHub {
        WsHub {
            changes: Arc::new(EventLog::new(config.change_retention)),
            channels: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            config,
        }
    }

    /// Registers a connection unless the limit is reached.
    fn register(&self, principal: &Principal) -> Option<(u64, Arc<ConnStats>)> {
        let mut conns = self.connections.lock();
        if conns.len() >= self.config.max_connections {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(ConnStats {
            key_id: principal.key_id.clone(),
            role: principal.role,
            since: Instant::now(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            subscriptions: AtomicUsize::new(0),
        });
        conns.insert(id, Arc::clone(&stats));
        Some((id, stats))
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.connections.lock().remove(&id);
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.connections.lock().len()
    }

    /// The log of `channel`, created on first use.
    pub(crate) fn channel(&self, name: &str) -> Arc<EventLog> {
        let mut channels = self.channels.lock();
        Arc::clone(
            channels
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(EventLog::new(self.config.channel_history.max(1)))),
        )
    }
}

/// Checks a channel name and whether `role` may use it: names are 1–128 characters of
/// letters, digits and `_ . : -`; channels under `admin.` are for admin keys only.
pub(crate) fn check_channel(
    name: &str,
    role: Role,
    publish: bool,
) -> Result<(), (&'static str, String)> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if !valid {
        return Err((
            "invalid_channel",
            format!("channel names are 1 to 128 of letters, digits and _ . : - (got {name:?})"),
        ));
    }
    if name.starts_with("admin.") && role < Role::Admin {
        return Err((
            "forbidden",
            "channels under admin. are for admin keys".into(),
        ));
    }
    if publish && role < Role::Readwrite {
        return Err(("forbidden", "publishing needs the readwrite role".into()));
    }
    Ok(())
}

/// Query parameters of the upgrade request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WsParams {
    /// API key or token, for clients that cannot set the Authorization header (browsers).
    pub token: Option<String>,
}

/// Opens a WebSocket (see docs/websocket.md for the protocol). Authenticate with the
/// Authorization header or `?token=`.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "websocket",
    params(WsParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 503, description = "Connection limit reached", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn upgrade(
    State(state): State<AppState>,
    Query(params): Query<WsParams>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or(params.token)
        .ok_or_else(|| {
            if state.inner.auth.keys.is_initialized() {
                ApiError::unauthorized(
                    "authenticate with Authorization: Bearer <key or token> or ?token=",
                )
            } else {
                ApiError::not_initialized()
            }
        })?;
    let principal = state.authenticate(bearer.trim())?;
    let upgrade = upgrade.map_err(|r| ApiError::new(r.status(), "bad_request", r.body_text()))?;
    let hub = Arc::clone(&state.inner.ws);
    let (id, stats) = hub.register(&principal).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            format!(
                "the server holds its limit of {} WebSocket connections; retry later",
                hub.config.max_connections
            ),
        )
    })?;
    Ok(upgrade
        .max_message_size(state.inner.config.limits.max_body_bytes)
        // Small socket buffers: with thousands of connections the library's 128 KiB defaults
        // would dominate memory; the outbound queue already batches writes.
        .read_buffer_size(4 << 10)
        .write_buffer_size(16 << 10)
        .on_upgrade(move |socket| conn::run(socket, state, principal, id, stats)))
}

/// One open connection, for `GET /connections`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionInfo {
    /// Connection id.
    pub id: u64,
    /// The key it authenticated with.
    pub key_id: String,
    /// The key's role.
    pub role: Role,
    /// Milliseconds since it connected.
    pub connected_ms: u64,
    /// Messages sent to it.
    pub messages_sent: u64,
    /// Messages received from it.
    pub messages_received: u64,
    /// Live subscriptions.
    pub subscriptions: usize,
}

/// Lists open WebSocket connections with their counters (admin).
#[utoipa::path(
    get,
    path = "/connections",
    tag = "websocket",
    responses(
        (status = 200, description = "Open connections", body = Vec<ConnectionInfo>),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn connections(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Vec<ConnectionInfo>>, ApiError> {
    principal.require(Role::Admin)?;
    let conns = state.inner.ws.connections.lock();
    let mut list: Vec<ConnectionInfo> = conns
        .iter()
        .map(|(id, c)| ConnectionInfo {
            id: *id,
            key_id: c.key_id.clone(),
            role: c.role,
            connected_ms: c.since.elapsed().as_millis() as u64,
            messages_sent: c.sent.load(Ordering::Relaxed),
            messages_received: c.received.load(Ordering::Relaxed),
            subscriptions: c.subscriptions.load(Ordering::Relaxed),
        })
        .collect();
    list.sort_by_key(|c| c.id);
    Ok(axum::Json(list))
}
