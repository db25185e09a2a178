//! The interface the API reaches the database through.
//!
//! `api` does not link the engine: the `nqdb` binary (in `node/`) implements [`Backend`] for
//! its embedded engine today and for the cluster coordinator later, so routes, authentication
//! and the WebSocket layer never change when the data moves to shards. Values cross this
//! boundary as JSON, the wire format anyway.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use serde_json::Value as Json;
use utoipa::ToSchema;

/// What kind of failure a statement hit; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Bad SQL or a bad value: syntax, unknown names, type errors (400).
    Invalid,
    /// A parameter of the wrong type or count (422).
    Unprocessable,
    /// A constraint violation or a write conflict; retrying may help (409).
    Conflict,
    /// The statement ran past its timeout or was cancelled (408).
    Timeout,
    /// The statement needed more memory than its limit (413).
    TooLarge,
    /// The caller's role does not allow the statement (403).
    Forbidden,
    /// The server or storage failed (500).
    Internal,
}

/// A failed statement, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFailure {
    /// Which class of failure.
    pub kind: FailureKind,
    /// Stable lowercase code (`syntax_error`, `unique_violation`, ...).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Where in the SQL text, for errors tied to a place.
    pub position: Option<SqlPosition>,
    /// Index of the statement in a script that failed (0-based).
    pub statement: Option<usize>,
}

impl SqlFailure {
    /// A failure without a position.
    pub fn new(kind: FailureKind, code: &str, message: impl Into<String>) -> SqlFailure {
        SqlFailure {
            kind,
            code: code.to_string(),
            message: message.into(),
            position: None,
            statement: None,
        }
    }
}

/// A line and column in the SQL text, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct SqlPosition {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// SQL type name (`BIGINT`, `TEXT`, `DECIMAL(10,2)`, ...).
    #[serde(rename = "type")]
    pub data_type: String,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StatementOutcome {
    /// Result columns (empty for statements that return no rows).
    pub columns: Vec<Column>,
    /// Rows, each a JSON array in column order.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Vec<Vec<Json>>,
    /// Rows inserted, updated or deleted.
    pub rows_affected: u64,
    /// What ran: `SELECT`, `INSERT`, `CREATE TABLE`, `BEGIN`, ...
    pub tag: String,
    /// True when `max_rows` cut the rows short.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Wall time of the statement.
    pub elapsed_ms: f64,
}

/// Per-request execution options.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Statement timeout; `None` keeps the session's.
    pub timeout: Option<std::time::Duration>,
    /// Most rows returned per statement; more are dropped and the outcome marked truncated.
    pub max_rows: Option<usize>,
    /// Only reading statements are allowed (the `readonly` role).
    pub read_only: bool,
}

/// What a streamed statement hands the sink.
#[derive(Debug)]
pub enum StreamItem {
    /// The columns, once, before any row.
    Columns(Vec<Column>),
    /// One row.
    Row(Vec<Json>),
}

/// A connection's worth of state: an open explicit transaction, prepared statements.
/// Calls block; the API runs them on the blocking thread pool.
pub trait BackendSession: Send {
    /// Runs one statement or a `;`-separated script with positional parameters (`$1`...).
    /// Execution stops at the first failing statement.
    fn execute(
        &mut self,
        sql: &str,
        params: &[Json],
        options: &ExecOptions,
    ) -> Result<Vec<StatementOutcome>, SqlFailure>;

    /// Runs one query and hands its rows to `sink` as they are produced, without holding the
    /// result in memory. `sink` returns false to stop early. Returns the summary (no rows).
    fn stream(
        &mut self,
        sql: &str,
        params: &[Json],
        options: &ExecOptions,
        sink: &mut dyn FnMut(StreamItem) -> bool,
    ) -> Result<StatementOutcome, SqlFailure>;

    /// A flag that cancels the running statement when set from another thread.
    fn cancel_handle(&self) -> Arc<AtomicBool>;

    /// True inside an explicit transaction.
    fn in_transaction(&self) -> bool;
}

/// A column of a table, for `GET /tables/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TableColumn {
    /// Column name.
    pub name: String,
    /// SQL type.
    #[serde(rename = "type")]
    pub data_type: String,
    /// False for NOT NULL columns.
    pub nullable: bool,
    /// The DEFAULT expression, as SQL text.
    pub default: Option<String>,
    /// Part of the primary key.
    pub primary_key: bool,
}

/// An index of a table.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TableIndex {
    /// Index name.
    pub name: String,
    /// Indexed columns, in key order.
    pub columns: Vec<String>,
    /// UNIQUE index.
    pub unique: bool,
}

/// A table's schema and size.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<TableColumn>,
    /// Secondary indexes.
    pub indexes: Vec<TableIndex>,
    /// Estimated rows (from ANALYZE, or counted for small tables).
    pub row_estimate: u64,
}

/// Engine counters for `/metrics`, sampled on each scrape.
#[derive(Debug, Clone, Default)]
pub struct EngineMetrics {
    /// Buffer pool page hits.
    pub buffer_hits: u64,
    /// Buffer pool page misses (reads from disk).
    pub buffer_misses: u64,
    /// Pages loaded before a reader asked for them (read-ahead of batch lookups, prefetch
    /// advice); also counted in `buffer_misses`.
    pub buffer_prefetched: u64,
    /// Bytes the buffer pool's frames hold.
    pub buffer_bytes: u64,
    /// Frames in the buffer pool.
    pub buffer_frames: u64,
    /// WAL fsyncs.
    pub wal_syncs: u64,
    /// Total time spent in WAL fsyncs, seconds.
    pub wal_sync_seconds: f64,
    /// WAL bytes written.
    pub wal_bytes: u64,
    /// Committed transactions.
    pub commits: u64,
    /// Aborted transactions.
    pub aborts: u64,
    /// Write-write conflicts.
    pub conflicts: u64,
    /// Lock waits.
    pub lock_waits: u64,
    /// Deadlocks.
    pub deadlocks: u64,
    /// Checkpoints taken.
    pub checkpoints: u64,
}

/// Decides whether a change event belongs to a subscription (its table and `where`).
pub type ChangeFilter = Arc<dyn Fn(&crate::ws::log::Event) -> bool + Send + Sync>;

/// The database, as the API sees it.
pub trait Backend: Send + Sync + 'static {
    /// A new session.
    fn session(&self) -> Box<dyn BackendSession>;

    /// All tables, by name.
    fn tables(&self) -> Result<Vec<TableInfo>, SqlFailure>;

    /// One table; `None` if it does not exist.
    fn table(&self, name: &str) -> Result<Option<TableInfo>, SqlFailure>;

    /// Engine counters.
    fn metrics(&self) -> EngineMetrics;

    /// Starts appending every committed row change to `log` (called once, at start). Each
    /// event's message is `{"type":"change","table":..,"op":..,"seq":..,"row":{..},"old":{..}}`
    /// and its payload is what [`Backend::change_filter`]'s filters read.
    fn attach_changes(&self, log: Arc<crate::ws::log::EventLog>);

    /// A filter for the change feed of `table` with an optional SQL predicate over its
    /// columns; fails if the table does not exist or the predicate does not bind.
    fn change_filter(
        &self,
        table: &str,
        predicate: Option<&str>,
    ) -> Result<ChangeFilter, SqlFailure>;

    /// Makes everything durable and checkpoints; called once at shutdown.
    fn shutdown(&self) -> Result<(), String>;
}
