//! The engine as the HTTP API's [`Backend`]: sessions, schema, metrics, shutdown.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use nq_api::backend::{
    Backend, BackendSession, Column, EngineMetrics, ExecOptions, FailureKind, SqlFailure,
    SqlPosition, StatementOutcome, StreamItem, TableColumn, TableIndex, TableInfo,
};
use serde_json::Value as Json;
use sqlparser::ast::Statement;

use crate::engine::Engine;
use crate::error::SqlError;
use crate::result::{SqlExecutor, StatementResult};
use crate::session::{RowEvent, Session};
use crate::shell::format::json_value;
use crate::types::Value;

/// The embedded engine behind the API.
#[derive(Debug, Clone)]
pub struct EngineBackend {
    engine: Engine,
}

impl EngineBackend {
    /// Serves `engine`.
    pub fn new(engine: Engine) -> EngineBackend {
        EngineBackend { engine }
    }
}

/// The HTTP status class of an SQL error.
pub fn failure(error: &SqlError) -> SqlFailure {
    use nq_storage::StorageError;
    let kind = match error {
        SqlError::Parameter(_) => FailureKind::Unprocessable,
        SqlError::Constraint { .. } | SqlError::AlreadyExists { .. } => FailureKind::Conflict,
        SqlError::Cancelled(_) => FailureKind::Timeout,
        SqlError::MemoryLimit { .. } => FailureKind::TooLarge,
        SqlError::Storage(e) => match e {
            StorageError::WriteConflict { .. }
            | StorageError::Deadlock { .. }
            | StorageError::LockTimeout { .. }
            | StorageError::KeyLocked { .. } => FailureKind::Conflict,
            StorageError::KeyTooLarge { .. } | StorageError::ValueTooLarge { .. } => {
                FailureKind::TooLarge
            }
            _ => FailureKind::Internal,
        },
        _ => FailureKind::Invalid,
    };
    SqlFailure {
        kind,
        code: error.code().to_string(),
        message: error.to_string(),
        position: error.position().map(|p| SqlPosition {
            line: p.line,
            column: p.column,
        }),
        statement: None,
    }
}

/// A JSON parameter as a value: numbers that fit are integers, other numbers doubles,
/// arrays and objects JSON.
pub fn param_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(_) | Json::Object(_) => Value::Json(json.to_string()),
    }
}

/// Milliseconds, to the microsecond.
fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn columns(r: &[crate::result::ColumnInfo]) -> Vec<Column> {
    r.iter()
        .map(|c| Column {
            name: c.name.clone(),
            data_type: c.data_type.to_string(),
        })
        .collect()
}

fn outcome(r: StatementResult, max_rows: Option<usize>) -> StatementOutcome {
    let limit = max_rows.unwrap_or(usize::MAX);
    let truncated = r.rows.len() > limit;
    StatementOutcome {
        columns: columns(&r.columns),
        rows: r
            .rows
            .iter()
            .take(limit)
            .map(|row| row.iter().map(json_value).collect())
            .collect(),
        rows_affected: r.rows_affected,
        tag: r.tag,
        truncated,
        elapsed_ms: millis(r.elapsed),
    }
}

/// True for statements a `readonly` key may run.
fn reads_only(stmt: &Statement) -> bool {
    match stmt {
        Statement::Query(q) => q.locks.is_empty(),
        Statement::Explain {
            statement, analyze, ..
        } => !*analyze || reads_only(statement),
        Statement::Prepare { statement, .. } => reads_only(statement),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. }
        | Statement::Execute { .. }
        | Statement::Deallocate { .. }
        | Statement::Set(_) => true,
        _ => false,
    }
}

/// A session of the engine, with the API's options applied per call.
struct EngineSession {
    session: Session,
    default_timeout: Option<std::time::Duration>,
}

impl EngineSession {
    fn apply(&mut self, options: &ExecOptions) {
        self.session
            .set_statement_timeout(options.timeout.or(self.default_timeout));
    }

    /// Refuses writes for read-only callers, naming the statement.
    fn check_read_only(sql: &str, options: &ExecOptions) -> Result<(), SqlFailure> {
        if !options.read_only {
            return Ok(());
        }
        let statements = crate::parse::parse(sql).map_err(|e| failure(&e))?;
        for (i, stmt) in statements.iter().enumerate() {
            if !reads_only(stmt) {
                let mut f = SqlFailure::new(
                    FailureKind::Forbidden,
                    "permission_denied",
                    "this key has the readonly role: only queries are allowed",
                );
                f.statement = Some(i);
                return Err(f);
            }
        }
        Ok(())
    }
}

impl BackendSession for EngineSession {
    fn execute(
        &mut self,
        sql: &str,
        params: &[Json],
        options: &ExecOptions,
    ) -> Result<Vec<StatementOutcome>, SqlFailure> {
        Self::check_read_only(sql, options)?;
        self.apply(options);
        let params: Vec<Value> = params.iter().map(param_value).collect();
        if sql.trim().trim_matches(';').trim().is_empty() {
            return Err(SqlFailure::new(
                FailureKind::Invalid,
                "invalid_statement",
                "the request contains no SQL statement",
            ));
        }
        match SqlExecutor::execute(&mut self.session, sql, &params) {
            Ok(results) => Ok(results
                .into_iter()
                .map(|r| outcome(r, options.max_rows))
                .collect()),
            Err(e) => {
                let mut f = failure(&e);
                // Say which statement of a script failed: run it again one by one only
                // if it was a script (rare) and the error is not a parse error.
                if f.position.is_none()
                    && let Ok(statements) = crate::parse::parse(sql)
                    && statements.len() > 1
                {
                    f.message = format!("{} (in a script; statements before it ran)", f.message);
                }
                Err(f)
            }
        }
    }

    fn stream(
        &mut self,
        sql: &str,
        params: &[Json],
        options: &ExecOptions,
        sink: &mut dyn FnMut(StreamItem) -> bool,
    ) -> Result<StatementOutcome, SqlFailure> {
        Self::check_read_only(sql, options)?;
        self.apply(options);
        let params: Vec<Value> = params.iter().map(param_value).collect();
        let began = Instant::now();
        let r = self
            .session
            .query_each(sql, &params, &mut |event| match event {
                RowEvent::Columns(c) => sink(StreamItem::Columns(columns(c))),
                RowEvent::Row(row) => sink(StreamItem::Row(row.iter().map(json_value).collect())),
            })
            .map_err(|e| failure(&e))?;
        Ok(StatementOutcome {
            columns: columns(&r.columns),
            rows: Vec::new(),
            rows_affected: r.rows_affected,
            tag: r.tag,
            truncated: false,
            elapsed_ms: millis(began.elapsed()),
        })
    }

    fn cancel_handle(&self) -> Arc<AtomicBool> {
        self.session.cancel_handle()
    }

    fn in_transaction(&self) -> bool {
        self.session.in_transaction()
    }
}

fn table_info(engine: &Engine, def: &crate::catalog::TableDef) -> Result<TableInfo, SqlError> {
    let txn = engine.inner.store.begin()?;
    let stats = crate::tablestats::get(&txn, &def.name)?;
    drop(txn);
    Ok(TableInfo {
        name: def.name.clone(),
        columns: def
            .columns
            .iter()
            .map(|c| TableColumn {
                name: c.name.clone(),
                data_type: c.data_type.to_string(),
                nullable: c.nullable,
                default: c.default.clone(),
                primary_key: def.primary_key.contains(&c.name),
            })
            .collect(),
        indexes: def
            .indexes
            .iter()
            .map(|i| TableIndex {
                name: i.name.clone(),
                columns: i.columns.clone(),
                unique: i.unique,
            })
            .collect(),
        row_estimate: stats.map_or(0, |s| s.rows),
    })
}

impl Backend for EngineBackend {
    fn session(&self) -> Box<dyn BackendSession> {
        Box::new(EngineSession {
            default_timeout: self.engine.inner.options.statement_timeout,
            session: self.engine.session(),
        })
    }

    fn tables(&self) -> Result<Vec<TableInfo>, SqlFailure> {
        let run = || -> Result<Vec<TableInfo>, SqlError> {
            let txn = self.engine.inner.store.begin()?;
            let defs = crate::catalog::list_tables(&txn)?;
            drop(txn);
            defs.iter().map(|d| table_info(&self.engine, d)).collect()
        };
        run().map_err(|e| failure(&e))
    }

    fn table(&self, name: &str) -> Result<Option<TableInfo>, SqlFailure> {
        let run = || -> Result<Option<TableInfo>, SqlError> {
            let txn = self.engine.inner.store.begin()?;
            let def = match crate::catalog::table(&txn, name) {
                Ok(def) => def,
                Err(SqlError::UnknownTable(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            drop(txn);
            table_info(&self.engine, &def).map(Some)
        };
        run().map_err(|e| failure(&e))
    }

    fn metrics(&self) -> EngineMetrics {
        let pool = self.engine.inner.db.stats();
        let m = self.engine.inner.store.metrics();
        let page_size = self.engine.inner.options.storage.page_size as u64;
        EngineMetrics {
            buffer_hits: pool.hits,
            buffer_misses: pool.misses,
            buffer_prefetched: pool.prefetched,
            buffer_bytes: pool.capacity_frames * page_size,
            buffer_frames: pool.capacity_frames,
            wal_syncs: m.wal.syncs,
            wal_sync_seconds: m.wal.sync_nanos as f64 / 1e9,
            wal_bytes: m.wal.bytes,
            commits: m.commits,
            aborts: m.aborts_conflict
                + m.aborts_deadlock
                + m.aborts_lock_timeout
                + m.aborts_locked
                + m.aborts_user
                + m.aborts_error,
            conflicts: m.conflicts,
            lock_waits: m.lock_waits,
            deadlocks: m.deadlocks,
            checkpoints: m.checkpoints,
        }
    }

    fn attach_changes(&self, log: Arc<nq_api::ws::log::EventLog>) {
        let listener = Arc::new(super::feed::LogListener { log });
        if !self.engine.set_change_listener(listener) {
            tracing::warn!(
                "a change listener was already attached; this server's feeds stay empty"
            );
        }
    }

    fn change_filter(
        &self,
        table: &str,
        predicate: Option<&str>,
    ) -> Result<nq_api::backend::ChangeFilter, SqlFailure> {
        super::feed::filter(&self.engine, table, predicate)
    }

    fn shutdown(&self) -> Result<(), String> {
        self.engine
            .inner
            .db
            .checkpoint()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(sql: &str) -> Statement {
        crate::parse::parse(sql).unwrap().remove(0)
    }

    #[test]
    fn read_only_classification() {
        for sql in [
            "SELECT 1",
            "EXPLAIN SELECT 1",
            "BEGIN",
            "COMMIT",
            "SET statement_timeout = 5",
        ] {
            assert!(reads_only(&parse_one(sql)), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "CREATE TABLE t (a INT)",
            "DROP TABLE t",
            "SELECT * FROM t FOR UPDATE",
            "PREPARE p AS DELETE FROM t",
            "ANALYZE",
        ] {
            assert!(!reads_only(&parse_one(sql)), "{sql}");
        }
    }

    #[test]
    fn params_map_to_values() {
        assert_eq!(param_value(&serde_json::json!(5)), Value::Int(5));
        assert_eq!(param_value(&serde_json::json!(1.5)), Value::Float(1.5));
        assert_eq!(
            param_value(&serde_json::json!("x")),
            Value::Text("x".into())
        );
        assert_eq!(param_value(&serde_json::json!(null)), Value::Null);
        assert_eq!(
            param_value(&serde_json::json!({"a": 1})),
            Value::Json("{\"a\":1}".into())
        );
    }
}
