//! `nqdb sql --url`: the shell's connection to a server, over its HTTP API (docs/api.md).
//!
//! - Statements go to `POST /api/v1/query`, one request each (the shell splits scripts), with
//!   the API key as `Authorization: Bearer`.
//! - `BEGIN` / `START TRANSACTION` opens an HTTP transaction (`POST /transactions`); the
//!   statements after it go to `/transactions/{id}/query` until `COMMIT` or `ROLLBACK` (sent
//!   to `/transactions/{id}/commit` or `/rollback`). The statements are recognised with the
//!   engine's SQL parser ([`classify`]). A transaction still open when the connection is
//!   dropped (the shell exits) is rolled back.
//! - `\d` and `\d NAME` read `GET /tables` and `GET /tables/{name}` and print what an embedded
//!   database prints.
//! - Values arrive as JSON and become [`Cell`]s that print as the engine's values do.
//! - Ctrl-C drops the HTTP request; the server cancels a statement whose request went away.
//!
//! Each request runs on a small tokio runtime owned by the connection (one worker thread, so
//! that a dropped request's connection is closed at once, which is what tells the server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use sqlparser::ast::Statement;

use super::connection::{Canceller, Connection, QUERY_CANCELED, ShellError};
use super::result_set::{Cell, ResultColumn, ResultSet};
use crate::error::Position;
use crate::types::Value;

/// Environment variable the API key is read from when `--key` is not given.
pub const KEY_ENV: &str = "NQDB_API_KEY";

/// The code of errors reaching the server (refused connections, DNS, TLS, a broken response).
pub const CONNECTION_FAILED: &str = "connection_failed";

/// How long to wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to retry a transaction's request while the server still runs a statement of it
/// that Ctrl-C cancelled (`409 transaction_busy`).
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// What a statement does to the shell's transaction state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`.
    Commit,
    /// `ROLLBACK` (not `ROLLBACK TO SAVEPOINT`, which stays inside the transaction).
    Rollback,
    /// Anything else, including statements that do not parse (the server reports those).
    Other,
}

/// Classifies one statement with the engine's parser.
pub fn classify(sql: &str) -> Control {
    let Ok(statements) = crate::parse::parse(sql) else {
        return Control::Other;
    };
    match statements.as_slice() {
        [Statement::StartTransaction { .. }] => Control::Begin,
        [Statement::Commit { .. }] => Control::Commit,
        [
            Statement::Rollback {
                savepoint: None, ..
            },
        ] => Control::Rollback,
        _ => Control::Other,
    }
}

/// Cancels the requests of one statement: a permit-storing notification, so a Ctrl-C that
/// comes before the request starts still cancels it.
#[derive(Debug, Default)]
struct CancelSignal {
    notify: tokio::sync::Notify,
}

/// A connection to a server.
pub struct Remote {
    /// `.../api/v1/`.
    base: Url,
    /// The URL as given, without credentials, for messages.
    shown_url: String,
    key: Option<String>,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// The open HTTP transaction, if any.
    transaction: Option<String>,
    cancel: Arc<CancelSignal>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Remote")
            .field("url", &self.shown_url)
            .field("transaction", &self.transaction)
            .finish_non_exhaustive()
    }
}

/// The body of an error response.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    #[serde(default)]
    position: Option<WirePosition>,
}

#[derive(Debug, Deserialize)]
struct WirePosition {
    line: u64,
    column: u64,
}

/// One statement's result on the wire.
#[derive(Debug, Deserialize)]
struct Outcome {
    #[serde(default)]
    columns: Vec<WireColumn>,
    #[serde(default)]
    rows: Vec<Vec<Json>>,
    #[serde(default)]
    rows_affected: u64,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    truncated: bool,
    #[serde(default)]
    elapsed_ms: f64,
}

#[derive(Debug, Deserialize)]
struct WireColumn {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
}

/// What `/query` answers: one statement's result or a script's.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum QueryReply {
    Script { results: Vec<Outcome> },
    One(Outcome),
}

/// `GET /tables/{name}`.
#[derive(Debug, Deserialize)]
struct TableInfo {
    name: String,
    columns: Vec<TableColumn>,
    #[serde(default)]
    indexes: Vec<TableIndex>,
}

#[derive(Debug, Deserialize)]
struct TableColumn {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    nullable: bool,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    primary_key: bool,
}

#[derive(Debug, Deserialize)]
struct TableIndex {
    name: String,
    columns: Vec<String>,
    #[serde(default)]
    unique: bool,
}

impl Remote {
    /// Connects to the server at `url` (`http://host:port` or `https://...`, with or without
    /// `/api/v1`), authenticating with `key`. Over https, the certificates in the PEM file
    /// `ca_cert` are trusted besides the built-in roots. Checks that a server answers there.
    pub fn connect(
        url: &str,
        key: Option<String>,
        ca_cert: Option<&std::path::Path>,
    ) -> Result<Remote, ShellError> {
        let (base, shown_url) = base_url(url)?;
        let mut builder = reqwest::Client::builder();
        if let Some(path) = ca_cert {
            let invalid = |why: String| {
                ShellError::new(
                    "invalid_certificate",
                    format!("--ca-cert {}: {why}", path.display()),
                )
            };
            let pem = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
            let certificates =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(cause(&e)))?;
            if certificates.is_empty() {
                return Err(invalid("no certificate in the file".into()));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nqdb-http")
            .enable_all()
            .build()
            .map_err(|e| ShellError::new(CONNECTION_FAILED, format!("cannot start: {e}")))?;
        let client = builder
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("nqdb/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ShellError::new(
                    CONNECTION_FAILED,
                    format!("cannot set up HTTP: {}", cause(&e)),
                )
            })?;
        let remote = Remote {
            base,
            shown_url,
            key: key.filter(|k| !k.is_empty()),
            client,
            runtime,
            transaction: None,
            cancel: Arc::default(),
        };
        remote.check_health()?;
        Ok(remote)
    }

    /// The server's URL, as shown in messages.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// The id of the open HTTP transaction, if any.
    pub fn transaction(&self) -> Option<&str> {
        self.transaction.as_deref()
    }

    /// `GET /health`: something that speaks the API answers at the URL.
    fn check_health(&self) -> Result<(), ShellError> {
        match self.request(Method::GET, &["health"], None, false) {
            Ok(_) => Ok(()),
            Err(e) if e.code == CONNECTION_FAILED => Err(e),
            Err(e) => Err(ShellError::new(
                CONNECTION_FAILED,
                format!(
                    "{} does not answer as an nqdb server ({}: {})",
                    self.shown_url, e.code, e.message
                ),
            )),
        }
    }

    /// Sends a request to `path` (segments under `/api/v1`) and returns the JSON body of a
    /// success, or the server's error. Ctrl-C cancels it if `cancellable`.
    fn request(
        &self,
        method: Method,
        path: &[&str],
        body: Option<&Json>,
        cancellable: bool,
    ) -> Result<Json, ShellError> {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        let mut request = self.client.request(method, url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let exchange = async move {
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        };
        let cancel = Arc::clone(&self.cancel);
        let outcome = self.runtime.block_on(async move {
            if !cancellable {
                return Some(exchange.await);
            }
            tokio::select! {
                outcome = exchange => Some(outcome),
                () = cancel.notify.notified() => None,
            }
        });
        let (status, bytes) = match outcome {
            None => {
                return Err(ShellError::new(
                    QUERY_CANCELED,
                    "canceling statement due to user request",
                ));
            }
            Some(Err(e)) => {
                return Err(ShellError::new(
                    CONNECTION_FAILED,
                    format!(
                        "cannot reach the server at {}: {}",
                        self.shown_url,
                        cause(&e)
                    ),
                ));
            }
            Some(Ok(answer)) => answer,
        };
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Json::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                ShellError::new(
                    CONNECTION_FAILED,
                    format!("the server at {} sent invalid JSON: {e}", self.shown_url),
                )
            });
        }
        Err(error_response(status, &bytes))
    }

    /// [`Remote::request`] on the open transaction's `path`, retried while the server is
    /// still stopping a statement of the transaction that Ctrl-C cancelled.
    fn transaction_request(
        &self,
        id: &str,
        action: &str,
        body: Option<&Json>,
        cancellable: bool,
    ) -> Result<Json, ShellError> {
        let began = Instant::now();
        loop {
            match self.request(
                Method::POST,
                &["transactions", id, action],
                body,
                cancellable,
            ) {
                Err(e) if e.code == "transaction_busy" && began.elapsed() < BUSY_RETRY => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// `BEGIN`: opens an HTTP transaction.
    fn begin(&mut self) -> Result<ResultSet, ShellError> {
        let opened = self.request(Method::POST, &["transactions"], None, true)?;
        let id = opened["id"].as_str().ok_or_else(|| {
            ShellError::new(
                CONNECTION_FAILED,
                format!(
                    "the server at {} opened a transaction without an id",
                    self.shown_url
                ),
            )
        })?;
        self.transaction = Some(id.to_owned());
        Ok(command("BEGIN"))
    }

    /// `COMMIT` (`action` "commit") or `ROLLBACK` ("rollback") of the open transaction `id`.
    fn finish(&mut self, id: &str, action: &str) -> Result<ResultSet, ShellError> {
        let outcome = self.transaction_request(id, action, None, true);
        match &outcome {
            // The request may not have reached the server: the transaction may still be
            // open there, and a later request finds out.
            Err(e) if e.code == CONNECTION_FAILED || e.code == QUERY_CANCELED => {}
            Err(e) if e.code == "transaction_busy" => {}
            _ => self.transaction = None,
        }
        match outcome {
            Ok(ended) => Ok(command(ended["outcome"].as_str().unwrap_or("COMMIT"))),
            // A transaction in which a statement failed rolls back at COMMIT, as an embedded
            // session reports it.
            Err(e) if e.code == "transaction_rolled_back" => Ok(command("ROLLBACK")),
            Err(e) => Err(e),
        }
    }

    /// Runs `sql` in autocommit mode, or in the open transaction.
    fn query(&mut self, sql: &str) -> Result<Vec<ResultSet>, ShellError> {
        let body = json!({ "sql": sql });
        let reply = match self.transaction.clone() {
            None => self.request(Method::POST, &["query"], Some(&body), true),
            Some(id) => {
                let reply = self.transaction_request(&id, "query", Some(&body), true);
                if matches!(&reply, Err(e) if e.code == "not_found") {
                    // Timed out or rolled back by the server: it is gone.
                    self.transaction = None;
                }
                reply
            }
        }?;
        let reply: QueryReply = serde_json::from_value(reply).map_err(|e| {
            ShellError::new(
                CONNECTION_FAILED,
                format!(
                    "the server at {} sent a result of the wrong shape: {e}",
                    self.shown_url
                ),
            )
        })?;
        Ok(match reply {
            QueryReply::One(outcome) => vec![result_set(outcome)],
            QueryReply::Script { results } => results.into_iter().map(result_set).collect(),
        })
    }

    /// Rolls back the open transaction, if any (on exit).
    pub fn rollback_open_transaction(&mut self) -> Result<(), ShellError> {
        match self.transaction.take() {
            Some(id) => self
                .transaction_request(&id, "rollback", None, false)
                .map(|_| ()),
            None => Ok(()),
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.rollback_open_transaction();
    }
}

impl Connection for Remote {
    fn execute(&mut self, sql: &str) -> Result<Vec<ResultSet>, ShellError> {
        let began = Instant::now();
        let mut results = match (classify(sql), self.transaction.clone()) {
            (Control::Begin, None) => vec![self.begin()?],
            (Control::Commit, Some(id)) => vec![self.finish(&id, "commit")?],
            (Control::Rollback, Some(id)) => vec![self.finish(&id, "rollback")?],
            // The rest, and BEGIN inside a transaction or COMMIT outside one, which the
            // server answers as an embedded session does.
            _ => self.query(sql)?,
        };
        // One statement's time is the round trip, as the user waited for it.
        if let [result] = results.as_mut_slice() {
            result.elapsed = began.elapsed();
        }
        Ok(results)
    }

    fn describe(&mut self, table: &str) -> Result<ResultSet, ShellError> {
        let info = match self.request(Method::GET, &["tables", table], None, true) {
            Ok(info) => info,
            Err(e) if e.code == "not_found" => {
                return Err(ShellError::new(
                    "undefined_table",
                    format!("table {table:?} does not exist"),
                ));
            }
            Err(e) => return Err(e),
        };
        let info: TableInfo = self.parse_body(info)?;
        Ok(describe(&info))
    }

    fn list_tables(&mut self) -> Result<ResultSet, ShellError> {
        let tables = self.request(Method::GET, &["tables"], None, true)?;
        let tables: Vec<TableInfo> = self.parse_body(tables)?;
        Ok(list(&tables))
    }

    fn canceller(&mut self) -> Canceller {
        let signal = Arc::new(CancelSignal::default());
        self.cancel = Arc::clone(&signal);
        Arc::new(move || signal.notify.notify_one())
    }
}

impl Remote {
    fn parse_body<T: serde::de::DeserializeOwned>(&self, body: Json) -> Result<T, ShellError> {
        serde_json::from_value(body).map_err(|e| {
            ShellError::new(
                CONNECTION_FAILED,
                format!(
                    "the server at {} sent an answer of the wrong shape: {e}",
                    self.shown_url
                ),
            )
        })
    }
}

/// The API base (`.../api/v1/`) of `url`, and `url` without credentials for messages.
fn base_url(url: &str) -> Result<(Url, String), ShellError> {
    let invalid = |why: String| ShellError::new("invalid_url", format!("invalid --url {why}"));
    let mut parsed = Url::parse(url.trim()).map_err(|e| invalid(format!("{url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid(format!(
            "{url:?}: expected http://HOST:PORT or https://HOST:PORT"
        )));
    }
    let _ = parsed.set_password(None);
    let _ = parsed.set_username("");
    parsed.set_query(None);
    parsed.set_fragment(None);
    let path = parsed.path().trim_end_matches('/');
    let path = path.strip_suffix("/api/v1").unwrap_or(path).to_owned();
    parsed.set_path(&path);
    let shown = parsed.as_str().trim_end_matches('/').to_owned();
    parsed.set_path(&format!("{path}/api/v1/"));
    Ok((parsed, shown))
}

/// The innermost cause of `error` ("Connection refused (os error 111)"), after what failed.
fn cause(error: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let what = if error.is_connect() {
        "cannot connect"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "broken response"
    } else {
        "request failed"
    };
    if std::ptr::addr_eq(innermost, error) {
        what.to_owned()
    } else {
        format!("{what}: {innermost}")
    }
}

/// The server's error response as a shell error.
fn error_response(status: StatusCode, body: &[u8]) -> ShellError {
    let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) else {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(200).collect();
        return ShellError::new("http_error", format!("HTTP {status}: {text}"));
    };
    let position = error.position.map(|p| Position {
        line: p.line,
        column: p.column,
    });
    // The engine's syntax errors carry their position in the message too; the shell shows it
    // apart, as for an embedded database.
    let message = match position {
        Some(p) => {
            let prefix = format!("syntax error at line {}, column {}: ", p.line, p.column);
            error
                .message
                .strip_prefix(&prefix)
                .map_or(error.message.clone(), str::to_owned)
        }
        None => error.message,
    };
    ShellError {
        code: error.code,
        message,
        position,
    }
}

/// A result without rows, as `tag` ran.
fn command(tag: &str) -> ResultSet {
    ResultSet {
        columns: Vec::new(),
        rows: Vec::new(),
        rows_affected: 0,
        tag: tag.to_owned(),
        elapsed: Duration::ZERO,
        truncated: false,
    }
}

fn result_set(outcome: Outcome) -> ResultSet {
    let columns: Vec<ResultColumn> = outcome
        .columns
        .into_iter()
        .map(|c| ResultColumn::new(c.name, c.type_name))
        .collect();
    let rows = outcome
        .rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .enumerate()
                .map(|(i, value)| {
                    let type_name = columns.get(i).map_or("", |c| c.type_name.as_str());
                    Cell::from_json(value, type_name)
                })
                .collect()
        })
        .collect();
    ResultSet {
        columns,
        rows,
        rows_affected: outcome.rows_affected,
        tag: outcome.tag,
        elapsed: Duration::from_secs_f64(outcome.elapsed_ms.max(0.0) / 1000.0),
        truncated: outcome.truncated,
    }
}

fn text(s: &str) -> Cell {
    Cell::from_value(&Value::Text(s.to_owned()))
}

fn boolean(b: bool) -> Cell {
    Cell::from_value(&Value::Bool(b))
}

/// `\d NAME`: the rows an embedded session's `describe` returns.
fn describe(table: &TableInfo) -> ResultSet {
    let mut rows = Vec::new();
    for c in &table.columns {
        rows.push(vec![
            text(&c.name),
            text(&c.type_name),
            boolean(c.nullable),
            c.default.as_deref().map_or(Cell::Null, text),
            boolean(c.primary_key),
        ]);
    }
    for index in &table.indexes {
        rows.push(vec![
            text(&format!("index {}", index.name)),
            text(&format!(
                "{}({})",
                if index.unique { "UNIQUE " } else { "" },
                index.columns.join(", ")
            )),
            Cell::Null,
            Cell::Null,
            boolean(false),
        ]);
    }
    ResultSet {
        columns: vec![
            ResultColumn::new("column", "TEXT"),
            ResultColumn::new("type", "TEXT"),
            ResultColumn::new("nullable", "BOOLEAN"),
            ResultColumn::new("default", "TEXT"),
            ResultColumn::new("primary_key", "BOOLEAN"),
        ],
        rows,
        rows_affected: 0,
        tag: "DESCRIBE".into(),
        elapsed: Duration::ZERO,
        truncated: false,
    }
}

/// `\d`: the rows an embedded session's `list_tables` returns.
fn list(tables: &[TableInfo]) -> ResultSet {
    let count = |n: usize| Cell::from_value(&Value::Int(i64::try_from(n).unwrap_or(i64::MAX)));
    ResultSet {
        columns: vec![
            ResultColumn::new("table", "TEXT"),
            ResultColumn::new("columns", "BIGINT"),
            ResultColumn::new("indexes", "BIGINT"),
        ],
        rows: tables
            .iter()
            .map(|t| {
                vec![
                    text(&t.name),
                    count(t.columns.len()),
                    count(t.indexes.len()),
                ]
            })
            .collect(),
        rows_affected: 0,
        tag: "LIST".into(),
        elapsed: Duration::ZERO,
        truncated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::SqlExecutor;

    #[test]
    fn test_transaction_statements_are_recognised_by_the_parser() {
        for sql in [
            "BEGIN",
            "begin transaction",
            "START TRANSACTION",
            "  Begin  ",
            "/* comment */ BEGIN",
        ] {
            assert_eq!(classify(sql), Control::Begin, "{sql}");
        }
        for sql in ["COMMIT", "commit work", "END"] {
            assert_eq!(classify(sql), Control::Commit, "{sql}");
        }
        for sql in ["ROLLBACK", "rollback transaction", "-- bye\nABORT"] {
            assert_eq!(classify(sql), Control::Rollback, "{sql}");
        }
        for sql in [
            "ROLLBACK TO SAVEPOINT a",
            "SAVEPOINT a",
            "SELECT 'BEGIN'",
            "select 1 as commit_count",
            "INSERT INTO begin_log VALUES (1)",
            "BEGINNING",
            "BEGIN; COMMIT",
            "not sql at all",
        ] {
            assert_eq!(classify(sql), Control::Other, "{sql}");
        }
    }

    #[test]
    fn test_urls() {
        for (url, base, shown) in [
            (
                "http://localhost:8080",
                "http://localhost:8080/api/v1/",
                "http://localhost:8080",
            ),
            (
                "http://127.0.0.1:9/api/v1/",
                "http://127.0.0.1:9/api/v1/",
                "http://127.0.0.1:9",
            ),
            (
                "https://user:secret@db.example:443/nq/?x=1",
                "https://db.example/nq/api/v1/",
                "https://db.example/nq",
            ),
        ] {
            let (b, s) = base_url(url).unwrap();
            assert_eq!((b.as_str(), s.as_str()), (base, shown), "{url}");
        }
        for url in ["localhost:8080", "ftp://host", "http://", "nonsense"] {
            assert_eq!(base_url(url).unwrap_err().code, "invalid_url", "{url}");
        }
    }

    #[test]
    fn test_error_responses() {
        let body = br#"{"error":{"code":"syntax_error","message":"syntax error at line 1, column 10: Expected: end of statement, found: FORM","position":{"line":1,"column":10}}}"#;
        assert_eq!(
            error_response(StatusCode::BAD_REQUEST, body),
            ShellError {
                code: "syntax_error".into(),
                message: "Expected: end of statement, found: FORM".into(),
                position: Some(Position {
                    line: 1,
                    column: 10
                }),
            }
        );
        let body = br#"{"error":{"code":"unauthorized","message":"invalid API key"}}"#;
        assert_eq!(
            error_response(StatusCode::UNAUTHORIZED, body),
            ShellError::new("unauthorized", "invalid API key")
        );
        let proxy = error_response(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(proxy.code, "http_error");
        assert!(proxy.message.contains("502"), "{}", proxy.message);
    }

    /// `\d` from the API prints what an embedded session prints.
    #[test]
    fn test_describe_and_list_match_an_embedded_session() {
        let dir = tempfile::tempdir().unwrap();
        let engine = crate::Engine::open(dir.path()).unwrap();
        let mut session = engine.session();
        session
            .execute(
                "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'x', \
                 price DECIMAL(10,2)); CREATE UNIQUE INDEX t_name ON t (name, price)",
                &[],
            )
            .unwrap();
        let embedded = ResultSet::from(session.describe("t").unwrap());
        let info: TableInfo = serde_json::from_value(json!({
            "name": "t",
            "columns": [
                {"name": "id", "type": "INTEGER", "nullable": false, "default": null, "primary_key": true},
                {"name": "name", "type": "VARCHAR(20)", "nullable": false, "default": "'x'", "primary_key": false},
                {"name": "price", "type": "DECIMAL(10,2)", "nullable": true, "default": null, "primary_key": false},
            ],
            "indexes": [{"name": "t_name", "columns": ["name", "price"], "unique": true}],
            "row_estimate": 0
        }))
        .unwrap();
        assert_eq!(describe(&info), embedded);
        let listed = ResultSet::from(session.list_tables().unwrap());
        assert_eq!(list(&[info]), listed);
        drop(session);
        engine.close().unwrap();
    }

    #[test]
    fn test_results_from_the_wire() {
        let reply: QueryReply = serde_json::from_value(json!({
            "columns": [{"name": "x", "type": "DOUBLE PRECISION"}, {"name": "j", "type": "JSON"}],
            "rows": [[2.0, {"a": 1}], [null, "s"]],
            "rows_affected": 0, "tag": "SELECT", "elapsed_ms": 1.5, "truncated": true
        }))
        .unwrap();
        let QueryReply::One(outcome) = reply else {
            panic!("one statement")
        };
        let set = result_set(outcome);
        assert!(set.columns[0].numeric);
        assert_eq!(set.rows[0][0].text(), "2.0");
        assert_eq!(set.rows[0][1].text(), r#"{"a":1}"#);
        assert!(set.rows[1][0].is_null());
        assert_eq!(set.rows[1][1].text(), r#""s""#);
        assert_eq!(set.elapsed, Duration::from_micros(1500));
        assert!(set.truncated);

        let script: QueryReply = serde_json::from_value(json!({
            "results": [{"columns": [], "rows": [], "rows_affected": 1, "tag": "INSERT", "elapsed_ms": 0.1}],
            "elapsed_ms": 0.1
        }))
        .unwrap();
        assert!(matches!(script, QueryReply::Script { results } if results.len() == 1));
    }
}
