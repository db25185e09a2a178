//! The WebSocket protocol: JSON text messages with a `type` field (see `docs/websocket.md`).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Subscribe to a channel or to a table's change feed.
    Subscribe {
        /// The client's reference, echoed in the answer.
        #[serde(default)]
        id: Option<String>,
        /// A pub/sub channel.
        #[serde(default)]
        channel: Option<String>,
        /// A table's change feed.
        #[serde(default)]
        table: Option<String>,
        /// A SQL predicate over the table's columns.
        #[serde(default, rename = "where")]
        predicate: Option<String>,
        /// Resume a feed from this sequence number (after a `lagged` or a reconnect).
        #[serde(default)]
        resume_from: Option<u64>,
    },
    /// End a subscription.
    Unsubscribe {
        /// The subscription id from `subscribed`.
        subscription: u64,
    },
    /// Publish to a channel.
    Publish {
        /// The client's reference.
        #[serde(default)]
        id: Option<String>,
        /// The channel.
        channel: String,
        /// Any JSON.
        payload: Json,
    },
    /// Run a statement; rows stream back in batches.
    Query {
        /// The query's id, used by `cancel` and in every answer.
        id: String,
        /// The statement.
        sql: String,
        /// Positional parameters.
        #[serde(default)]
        params: Vec<Json>,
        /// Rows per `rows` message.
        #[serde(default)]
        batch_rows: Option<usize>,
    },
    /// Cancel a running query.
    Cancel {
        /// The query's id.
        id: String,
    },
    /// Stop delivering a subscription's events for now (they are read later, from where it
    /// stopped, within the lag limit).
    Pause {
        /// The subscription.
        subscription: u64,
    },
    /// Deliver a paused subscription's events again.
    Resume {
        /// The subscription.
        subscription: u64,
    },
    /// Application-level ping; answered with `pong`.
    Ping {
        /// Echoed back.
        #[serde(default)]
        data: Option<Json>,
    },
}

/// What the server sends (besides `change` and channel `message`s, which are serialised once
/// per event for all subscribers).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message of a connection.
    Welcome {
        /// Connection id.
        connection: u64,
        /// The caller's role.
        role: String,
        /// The server pings this often; answer or send anything within `idle_timeout_ms`.
        heartbeat_ms: u64,
        /// Silence longer than this closes the connection.
        idle_timeout_ms: u64,
    },
    /// A subscription started.
    Subscribed {
        /// The client's reference.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The subscription id.
        subscription: u64,
        /// The channel.
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// The table.
        #[serde(skip_serializing_if = "Option::is_none")]
        table: Option<String>,
        /// The first sequence number it will deliver.
        from_seq: u64,
    },
    /// A subscription ended.
    Unsubscribed {
        /// The subscription id.
        subscription: u64,
    },
    /// A publish was accepted.
    Published {
        /// The client's reference.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The channel.
        channel: String,
        /// The message's sequence number in the channel.
        seq: u64,
    },
    /// The subscriber reads more slowly than events arrive: its queue is filling.
    SlowDown {
        /// The subscription.
        subscription: u64,
        /// Messages waiting in this connection's queue.
        queued: usize,
        /// Events it is behind the newest.
        behind: u64,
    },
    /// The subscriber fell too far behind; delivery stopped. Subscribe again with
    /// `resume_from` to get the missed events while they are retained.
    Lagged {
        /// The subscription (now ended).
        subscription: u64,
        /// Events not delivered.
        missed: u64,
        /// The first undelivered sequence number.
        resume_from: u64,
    },
    /// A subscription was paused.
    Paused {
        /// The subscription.
        subscription: u64,
    },
    /// A subscription was resumed.
    Resumed {
        /// The subscription.
        subscription: u64,
    },
    /// Result columns of a query.
    Columns {
        /// The query id.
        id: String,
        /// Columns.
        columns: Vec<crate::backend::Column>,
    },
    /// A batch of rows.
    Rows {
        /// The query id.
        id: String,
        /// Rows.
        rows: Vec<Vec<Json>>,
    },
    /// Rows sent so far of a long query.
    Progress {
        /// The query id.
        id: String,
        /// Rows sent so far.
        rows_sent: u64,
    },
    /// A query finished.
    Done {
        /// The query id.
        id: String,
        /// Rows returned.
        row_count: u64,
        /// Rows changed.
        rows_affected: u64,
        /// Statement tag.
        tag: String,
        /// Wall time.
        elapsed_ms: f64,
    },
    /// A query was cancelled.
    Cancelled {
        /// The query id.
        id: String,
    },
    /// Answer to `ping`.
    Pong {
        /// The ping's data.
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Json>,
    },
    /// Something the client sent failed.
    Error {
        /// The client's reference or query id it concerns.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Stable code.
        code: String,
        /// Message.
        message: String,
        /// Position in SQL text.
        #[serde(skip_serializing_if = "Option::is_none")]
        position: Option<crate::backend::SqlPosition>,
    },
}

impl ServerMessage {
    /// As text.
    pub fn to_text(&self) -> String {
        // Our own enums always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An error answer.
    pub fn error(id: Option<String>, code: &str, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error {
            id,
            code: code.to_string(),
            message: message.into(),
            position: None,
        }
    }
}
