//! A session: runs statements, in autocommit mode or inside BEGIN ... COMMIT.

use std::time::Instant;

use sqlparser::ast::{self, Statement};

use crate::bind::Binder;
use crate::catalog;
use crate::ddl;
use crate::dml;
use crate::engine::Engine;
use crate::error::{Result, SqlError};
use crate::exec::{self, Ctx};
use crate::kv::KvTxn;
use crate::result::{ColumnInfo, SqlExecutor, StatementResult};
use crate::types::{DataType, Value};

/// A connection's state: the open explicit transaction, if any.
pub struct Session {
    engine: Engine,
    txn: Option<Box<dyn KvTxn>>,
    /// Savepoints of the explicit transaction, oldest first.
    savepoints: Vec<(String, Box<dyn std::any::Any + Send>)>,
    /// `SET statement_timeout`.
    statement_timeout: Option<std::time::Duration>,
    /// `PREPARE`d statements by name, with their declared parameter types.
    prepared: std::collections::HashMap<String, (Vec<DataType>, Statement)>,
    /// Set by [`Session::cancel_handle`] holders to cancel the running statement.
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// An error happened inside the explicit transaction: only ROLLBACK (or COMMIT, which then
    /// rolls back) is accepted, as in PostgreSQL.
    failed: bool,
    /// The plan-cache entry of the statement being run, if it came from the cache.
    cached: Option<std::sync::Arc<crate::plan::CachedStatement>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("in_transaction", &self.txn.is_some())
            .field("failed", &self.failed)
            .finish()
    }
}

fn result(tag: &str, rows_affected: u64) -> StatementResult {
    StatementResult {
        columns: Vec::new(),
        rows: Vec::new(),
        rows_affected,
        tag: tag.to_string(),
        elapsed: Default::default(),
    }
}

impl Session {
    pub(crate) fn new(engine: Engine) -> Session {
        Session {
            statement_timeout: engine.inner.options.statement_timeout,
            prepared: std::collections::HashMap::new(),
            engine,
            txn: None,
            savepoints: Vec::new(),
            cancel: Default::default(),
            failed: false,
            cached: None,
        }
    }

    /// A flag that cancels this session's running statement when set (from another thread).
    pub fn cancel_handle(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        std::sync::Arc::clone(&self.cancel)
    }

    /// Sets the statement timeout (`None`: no timeout).
    pub fn set_statement_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.statement_timeout = timeout;
    }

    fn limits(&self) -> crate::exec::Limits {
        crate::exec::Limits {
            deadline: self
                .statement_timeout
                .map(|t| std::time::Instant::now() + t),
            cancel: Some(std::sync::Arc::clone(&self.cancel)),
            memory_bytes: self.engine.inner.options.memory_limit_bytes,
        }
    }

    /// True inside BEGIN ... COMMIT.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    fn begin(&self) -> Result<Box<dyn KvTxn>> {
        Ok(Box::new(catalog::ClockedTxn::new(
            Box::new(self.engine.inner.store.begin()?),
            std::sync::Arc::clone(&self.engine.inner.catalog_clock),
        )))
    }

    fn run(&mut self, stmt: &Statement, params: &[Value]) -> Result<StatementResult> {
        match stmt {
            Statement::StartTransaction { .. } => {
                if self.txn.is_some() {
                    return Err(SqlError::Transaction(
                        "there is already a transaction in progress".into(),
                    ));
                }
                self.txn = Some(self.begin()?);
                self.failed = false;
                Ok(result("BEGIN", 0))
            }
            Statement::Commit { .. } => {
                match self.txn.take().inspect(|_| self.savepoints.clear()) {
                    None => Err(SqlError::Transaction(
                        "there is no transaction in progress".into(),
                    )),
                    Some(t) if self.failed => {
                        t.rollback();
                        self.failed = false;
                        Ok(result("ROLLBACK", 0))
                    }
                    Some(t) => {
                        self.engine.commit(t)?;
                        Ok(result("COMMIT", 0))
                    }
                }
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                let name = crate::bind::ident(name);
                let Some(txn) = self.txn.as_mut() else {
                    return Err(SqlError::Transaction(
                        "ROLLBACK TO SAVEPOINT can only be used in transaction blocks".into(),
                    ));
                };
                let Some(at) = self.savepoints.iter().rposition(|(n, _)| *n == name) else {
                    return Err(SqlError::Transaction(format!(
                        "savepoint {name:?} does not exist"
                    )));
                };
                txn.rollback_to(self.savepoints[at].1.as_ref())?;
                // The savepoint itself stays; later ones are gone.
                self.savepoints.truncate(at + 1);
                self.failed = false;
                Ok(result("ROLLBACK", 0))
            }
            Statement::Rollback { .. } => {
                self.savepoints.clear();
                match self.txn.take() {
                    None => Err(SqlError::Transaction(
                        "there is no transaction in progress".into(),
                    )),
                    Some(t) => {
                        t.rollback();
                        self.failed = false;
                        Ok(result("ROLLBACK", 0))
                    }
                }
            }
            Statement::Savepoint { name } => {
                if self.failed {
                    return Err(SqlError::Transaction(
                        "current transaction is aborted, commands ignored until end of transaction block".into(),
                    ));
                }
                let Some(txn) = self.txn.as_ref() else {
                    return Err(SqlError::Transaction(
                        "SAVEPOINT can only be used in transaction blocks".into(),
                    ));
                };
                self.savepoints
                    .push((crate::bind::ident(name), txn.savepoint()));
                Ok(result("SAVEPOINT", 0))
            }
            Statement::ReleaseSavepoint { name } => {
                let name = crate::bind::ident(name);
                let Some(at) = self.savepoints.iter().rposition(|(n, _)| *n == name) else {
                    return Err(SqlError::Transaction(format!(
                        "savepoint {name:?} does not exist"
                    )));
                };
                self.savepoints.truncate(at);
                Ok(result("RELEASE", 0))
            }
            Statement::Prepare {
                name,
                data_types,
                statement,
            } => {
                let name = crate::bind::ident(name);
                if self.prepared.contains_key(&name) {
                    return Err(SqlError::AlreadyExists {
                        kind: "prepared statement",
                        name,
                    });
                }
                let types = data_types
                    .iter()
                    .map(crate::bind::data_type)
                    .collect::<Result<Vec<_>>>()?;
                self.prepared.insert(name, (types, (**statement).clone()));
                Ok(result("PREPARE", 0))
            }
            Statement::Execute {
                name: Some(name),
                parameters,
                ..
            } => {
                let name = crate::bind::object_name(name)?;
                let (types, stmt) = self.prepared.get(&name).cloned().ok_or_else(|| {
                    SqlError::Invalid(format!("prepared statement {name:?} does not exist"))
                })?;
                // Parameters are constant expressions, cast to the declared types.
                let mut values = Vec::with_capacity(parameters.len());
                for (i, p) in parameters.iter().enumerate() {
                    let Some(e) = crate::bind::literal_expr(p)? else {
                        return Err(SqlError::Parameter(format!(
                            "EXECUTE parameter {} must be a constant",
                            i + 1
                        )));
                    };
                    values.push(match types.get(i) {
                        Some(t) => crate::cast::cast(&e, t)?,
                        None => e,
                    });
                }
                if !types.is_empty() && values.len() != types.len() {
                    return Err(SqlError::Parameter(format!(
                        "prepared statement {name:?} takes {} parameters, {} given",
                        types.len(),
                        values.len()
                    )));
                }
                let _ = params;
                self.run(&stmt, &values)
            }
            Statement::Deallocate { name, .. } => {
                let name = crate::bind::ident(name);
                if name == "all" {
                    self.prepared.clear();
                } else if self.prepared.remove(&name).is_none() {
                    return Err(SqlError::Invalid(format!(
                        "prepared statement {name:?} does not exist"
                    )));
                }
                Ok(result("DEALLOCATE", 0))
            }
            Statement::Set(ast::Set::SingleAssignment {
                variable, values, ..
            }) => {
                let name = variable.to_string().to_lowercase();
                if name != "statement_timeout" {
                    return Err(SqlError::Unsupported(format!("SET {name}")));
                }
                let ms = match values.as_slice() {
                    [ast::Expr::Value(v)] => match &v.value {
                        ast::Value::Number(n, _) => n.parse::<u64>().ok(),
                        ast::Value::SingleQuotedString(s) => {
                            s.trim_end_matches("ms").parse::<u64>().ok()
                        }
                        _ => None,
                    },
                    _ => None,
                }
                .ok_or_else(|| {
                    SqlError::Invalid("statement_timeout takes milliseconds (0 = none)".into())
                })?;
                self.statement_timeout = (ms > 0).then(|| std::time::Duration::from_millis(ms));
                Ok(result("SET", 0))
            }
            other => {
                if self.failed {
                    return Err(SqlError::Transaction(
                        "current transaction is aborted, commands ignored until end of transaction block".into(),
                    ));
                }
                self.cancel
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                let limits = self.limits();
                // The cached plan belongs to the statement the cache entry holds, not to one
                // run on its behalf (EXECUTE of a prepared statement).
                let cached = self
                    .cached
                    .as_deref()
                    .filter(|c| std::ptr::eq(&c.statement, other));
                match self.txn.as_mut() {
                    Some(txn) => {
                        let r = execute(&self.engine, txn.as_mut(), other, params, &limits, cached);
                        if r.is_err() {
                            self.failed = true;
                        }
                        r
                    }
                    None => {
                        let mut txn = self.begin()?;
                        match execute(&self.engine, txn.as_mut(), other, params, &limits, cached) {
                            Ok(r) => {
                                self.engine.commit(txn)?;
                                Ok(r)
                            }
                            Err(e) => {
                                txn.rollback();
                                Err(e)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs one data or schema statement inside `txn`.
fn execute(
    engine: &Engine,
    txn: &mut dyn KvTxn,
    stmt: &Statement,
    params: &[Value],
    limits: &crate::exec::Limits,
    cached: Option<&crate::plan::CachedStatement>,
) -> Result<StatementResult> {
    let stats = &engine.inner.stats;
    match stmt {
        Statement::Query(q) => {
            let epoch = cached.and_then(|_| engine.inner.catalog_clock.epoch_for(txn.start_ts()));
            let plan = match (cached, epoch) {
                (Some(c), Some(e)) => match c.plan(e) {
                    Some(plan) => plan,
                    None => {
                        let mut binder = Binder::new(&*txn).with_stats(stats);
                        let plan = std::sync::Arc::new(binder.query(q)?);
                        if binder.cacheable {
                            c.set_plan(e, std::sync::Arc::clone(&plan));
                        }
                        plan
                    }
                },
                _ => std::sync::Arc::new(Binder::new(&*txn).with_stats(stats).query(q)?),
            };
            if !q.locks.is_empty() {
                lock_rows(txn, &plan, params)?;
            }
            let ctx = Ctx::new(&*txn, params)
                .with_limits(limits.clone())
                .with_stats(stats);
            let rows = exec::open(&plan, &ctx)?.collect::<Result<Vec<_>>>()?;
            Ok(StatementResult {
                columns: plan
                    .columns()
                    .into_iter()
                    .map(|c| ColumnInfo {
                        name: c.name,
                        data_type: c.data_type,
                    })
                    .collect(),
                rows_affected: 0,
                tag: "SELECT".into(),
                rows,
                elapsed: Default::default(),
            })
        }
        Statement::Explain {
            statement, analyze, ..
        } => {
            let Statement::Query(q) = statement.as_ref() else {
                return Err(SqlError::Unsupported(
                    "EXPLAIN of a statement other than SELECT".into(),
                ));
            };
            let mut binder = Binder::new(&*txn).with_stats(stats);
            let plan = binder.query(q)?;
            let reader: &dyn KvTxn = &*txn;
            let table_stats = |t: &str| crate::tablestats::get(reader, t).ok().flatten();
            let notes = std::mem::take(&mut binder.join_notes);
            let mut lines = if *analyze {
                let profile = crate::stats::Profile::default();
                let began = Instant::now();
                let ctx = Ctx::new(&*txn, params)
                    .with_limits(limits.clone())
                    .with_stats(stats)
                    .with_profile(&profile);
                let n = exec::open(&plan, &ctx)?.try_fold(0u64, |n, r| r.map(|_| n + 1))?;
                let mut lines = crate::explain::explain_analyze(&plan, &profile, &table_stats);
                lines.push(format!(
                    "Execution: {n} rows in {:.3} ms",
                    began.elapsed().as_secs_f64() * 1000.0
                ));
                lines
            } else {
                crate::explain::explain(&plan, &table_stats)
            };
            lines.extend(notes);
            Ok(StatementResult {
                columns: vec![ColumnInfo {
                    name: "QUERY PLAN".into(),
                    data_type: DataType::Text(None),
                }],
                rows: lines.into_iter().map(|l| vec![Value::Text(l)]).collect(),
                rows_affected: 0,
                tag: "EXPLAIN".into(),
                elapsed: Default::default(),
            })
        }
        Statement::CreateTable(ct) => {
            ddl::create_table(txn, ct)?;
            Ok(result("CREATE TABLE", 0))
        }
        Statement::Analyze(a) => {
            let name = a
                .table_name
                .as_ref()
                .map(crate::bind::object_name)
                .transpose()?;
            let n = crate::tablestats::analyze_named(txn, name.as_deref())?;
            Ok(result("ANALYZE", n))
        }
        Statement::AlterTable(at) => {
            ddl::alter_table(txn, at, params)?;
            Ok(result("ALTER TABLE", 0))
        }
        Statement::CreateIndex(ci) => {
            ddl::create_index(txn, ci)?;
            Ok(result("CREATE INDEX", 0))
        }
        Statement::Drop {
            object_type,
            if_exists,
            names,
            ..
        } => {
            if *object_type == ast::ObjectType::Table {
                for n in names {
                    if let Ok(name) = crate::bind::object_name(n)
                        && let Some(def) = catalog::get_table(&*txn, &name)?
                    {
                        engine.inner.rowids.forget(def.id);
                    }
                }
            }
            ddl::drop(txn, object_type, names, *if_exists)?;
            Ok(result(&format!("DROP {object_type}"), 0))
        }
        Statement::Insert(ins) => dml_result(
            "INSERT",
            dml::insert(txn, ins, params, &engine.inner.rowids)?,
        ),
        Statement::Update(up) => dml_result("UPDATE", dml::update(txn, up, params)?),
        Statement::Delete(del) => dml_result("DELETE", dml::delete(txn, del, params)?),
        other => Err(SqlError::Unsupported(format!(
            "statement {}",
            first_words(&other.to_string())
        ))),
    }
}

/// `SELECT ... FOR UPDATE`: takes the pessimistic lock on every row each scanned table
/// contributes under its pushed-down filter (waiting for other holders, failing on deadlock or
/// when the row changed after this transaction's snapshot), before the query runs.
fn lock_rows(txn: &mut dyn KvTxn, plan: &crate::plan::Plan, params: &[Value]) -> Result<()> {
    fn scans<'p>(plan: &'p crate::plan::Plan, out: &mut Vec<&'p crate::plan::Plan>) {
        use crate::plan::Plan;
        match plan {
            Plan::Scan { .. } => out.push(plan),
            Plan::Filter { input, .. }
            | Plan::Project { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Distinct { input }
            | Plan::Grover { input, .. }
            | Plan::Aggregate { input, .. } => scans(input, out),
            Plan::Join { left, right, .. } | Plan::SetOp { left, right, .. } => {
                scans(left, out);
                scans(right, out);
            }
            // FOR UPDATE over a lookup join locks the outer side's rows only.
            Plan::LookupJoin { left, .. } => scans(left, out),
            Plan::Single | Plan::Values { .. } => {}
        }
    }
    let mut found = Vec::new();
    scans(plan, &mut found);
    let mut keys = Vec::new();
    {
        let ctx = Ctx::new(&*txn, params);
        for s in found {
            let crate::plan::Plan::Scan {
                table,
                access,
                filter,
                ..
            } = s
            else {
                continue;
            };
            for r in exec::scan_keyed(table, access, &ctx)? {
                let (key, row) = r?;
                let keep = match filter {
                    Some(f) => exec::holds(f, &row, &ctx)?,
                    None => true,
                };
                if keep {
                    keys.push(key);
                }
            }
        }
    }
    for k in keys {
        txn.lock_for_update(&k)?;
    }
    Ok(())
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn dml_result(tag: &str, r: dml::DmlResult) -> Result<StatementResult> {
    let (columns, rows) = match r.returning {
        Some((cols, rows)) => (
            cols.into_iter()
                .map(|c| ColumnInfo {
                    name: c.name,
                    data_type: c.data_type,
                })
                .collect(),
            rows,
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(StatementResult {
        columns,
        rows,
        rows_affected: r.affected,
        tag: tag.into(),
        elapsed: Default::default(),
    })
}

impl SqlExecutor for Session {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<Vec<StatementResult>> {
        let plans = &self.engine.inner.plans;
        let (cached, parsed) = match plans.get(sql) {
            Some(c) => (Some(c), Vec::new()),
            None => match plans.insert(sql, crate::parse::parse(sql)?) {
                Ok(c) => (Some(c), Vec::new()),
                Err(parsed) => (None, parsed),
            },
        };
        let statements = match &cached {
            Some(c) => std::slice::from_ref(&c.statement),
            None => parsed.as_slice(),
        };
        let mut out = Vec::with_capacity(statements.len());
        for stmt in statements {
            let began = Instant::now();
            self.cached.clone_from(&cached);
            let r = self.run(stmt, params);
            self.cached = None;
            let mut r = r?;
            r.elapsed = began.elapsed();
            let query = match &cached {
                Some(c) => c.normalized.clone(),
                None => crate::stats::normalize(stmt),
            };
            let rows = if r.columns.is_empty() {
                r.rows_affected
            } else {
                r.rows.len() as u64
            };
            if let Some(limit) = self.engine.inner.options.slow_query
                && r.elapsed >= limit
            {
                tracing::warn!(
                    target: "nq_node::slow_query",
                    ms = r.elapsed.as_secs_f64() * 1000.0,
                    rows,
                    query = %query,
                    "slow query"
                );
            }
            self.engine.inner.stats.record(query, r.elapsed, rows);
            out.push(r);
        }
        Ok(out)
    }

    fn describe(&mut self, table: &str) -> Result<StatementResult> {
        let txn = self.begin()?;
        let def = catalog::table(txn.as_ref(), table)?;
        let text = |s: &str| Value::Text(s.to_string());
        let mut rows = Vec::new();
        for c in &def.columns {
            rows.push(vec![
                text(&c.name),
                text(&c.data_type.to_string()),
                Value::Bool(c.nullable),
                c.default.as_deref().map_or(Value::Null, text),
                Value::Bool(def.primary_key.contains(&c.name)),
            ]);
        }
        for idx in &def.indexes {
            rows.push(vec![
                text(&format!("index {}", idx.name)),
                text(&format!(
                    "{}({})",
                    if idx.unique { "UNIQUE " } else { "" },
                    idx.columns.join(", ")
                )),
                Value::Null,
                Value::Null,
                Value::Bool(false),
            ]);
        }
        txn.rollback();
        let col = |n: &str, t: DataType| ColumnInfo {
            name: n.into(),
            data_type: t,
        };
        Ok(StatementResult {
            columns: vec![
                col("column", DataType::Text(None)),
                col("type", DataType::Text(None)),
                col("nullable", DataType::Boolean),
                col("default", DataType::Text(None)),
                col("primary_key", DataType::Boolean),
            ],
            rows,
            rows_affected: 0,
            tag: "DESCRIBE".into(),
            elapsed: Default::default(),
        })
    }

    fn list_tables(&mut self) -> Result<StatementResult> {
        let txn = self.begin()?;
        let tables = catalog::list_tables(txn.as_ref())?;
        txn.rollback();
        Ok(StatementResult {
            columns: vec![
                ColumnInfo {
                    name: "table".into(),
                    data_type: DataType::Text(None),
                },
                ColumnInfo {
                    name: "columns".into(),
                    data_type: DataType::BigInt,
                },
                ColumnInfo {
                    name: "indexes".into(),
                    data_type: DataType::BigInt,
                },
            ],
            rows: tables
                .iter()
                .map(|t| {
                    vec![
                        Value::Text(t.name.clone()),
                        Value::Int(t.columns.len() as i64),
                        Value::Int(t.indexes.len() as i64),
                    ]
                })
                .collect(),
            rows_affected: 0,
            tag: "LIST".into(),
            elapsed: Default::default(),
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(t) = self.txn.take() {
            t.rollback();
        }
    }
}

/// What [`Session::query_each`] hands its sink.
#[derive(Debug)]
pub enum RowEvent<'a> {
    /// The result columns, once, before any row.
    Columns(&'a [ColumnInfo]),
    /// One row.
    Row(Vec<Value>),
}

impl Session {
    /// Runs one statement and hands its rows to `sink` as the executor produces them, so a
    /// large result is never held in memory (the HTTP API streams it). `sink` returns false
    /// to stop early. A plain SELECT streams; any other statement runs as usual and its rows,
    /// if any, are handed over afterwards. Returns the outcome without rows.
    pub fn query_each(
        &mut self,
        sql: &str,
        params: &[Value],
        sink: &mut dyn FnMut(RowEvent<'_>) -> bool,
    ) -> Result<StatementResult> {
        let began = Instant::now();
        let statements = crate::parse::parse(sql)?;
        let [stmt] = statements.as_slice() else {
            return Err(SqlError::Invalid(format!(
                "streaming runs exactly one statement, not {}",
                statements.len()
            )));
        };
        let streamable = matches!(stmt, Statement::Query(q) if q.locks.is_empty());
        if !streamable || self.failed {
            let mut r = SqlExecutor::execute(self, sql, params)?
                .pop()
                .ok_or_else(|| SqlError::Invalid("empty statement".into()))?;
            if sink(RowEvent::Columns(&r.columns)) {
                for row in std::mem::take(&mut r.rows) {
                    if !sink(RowEvent::Row(row)) {
                        break;
                    }
                }
            }
            return Ok(r);
        }
        let Statement::Query(q) = stmt else {
            unreachable!("checked above")
        };
        self.cancel
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let limits = self.limits();
        let mut rows = 0u64;
        let own = match self.txn {
            Some(_) => None,
            None => Some(self.begin()?),
        };
        let result = {
            let txn: &dyn KvTxn = match (&own, &self.txn) {
                (Some(t), _) | (None, Some(t)) => t.as_ref(),
                (None, None) => unreachable!("one of the two is set"),
            };
            let stats = &self.engine.inner.stats;
            let mut counting = |event: RowEvent<'_>| {
                rows += u64::from(matches!(event, RowEvent::Row(_)));
                sink(event)
            };
            stream_query(txn, q, params, &limits, stats, &mut counting)
        };
        if let Some(t) = own {
            t.rollback();
        } else if result.is_err() {
            self.failed = true;
        }
        let mut r = result?;
        r.elapsed = began.elapsed();
        self.engine
            .inner
            .stats
            .record(crate::stats::normalize(stmt), r.elapsed, rows);
        Ok(r)
    }
}

/// Plans `q` and feeds its rows to `sink`.
fn stream_query(
    txn: &dyn KvTxn,
    q: &ast::Query,
    params: &[Value],
    limits: &crate::exec::Limits,
    stats: &crate::stats::EngineStats,
    sink: &mut dyn FnMut(RowEvent<'_>) -> bool,
) -> Result<StatementResult> {
    let plan = Binder::new(txn).with_stats(stats).query(q)?;
    let columns: Vec<ColumnInfo> = plan
        .columns()
        .into_iter()
        .map(|c| ColumnInfo {
            name: c.name,
            data_type: c.data_type,
        })
        .collect();
    let ctx = Ctx::new(txn, params)
        .with_limits(limits.clone())
        .with_stats(stats);
    if sink(RowEvent::Columns(&columns)) {
        for row in exec::open(&plan, &ctx)? {
            if !sink(RowEvent::Row(row?)) {
                break;
            }
        }
    }
    Ok(StatementResult {
        columns,
        rows: Vec::new(),
        rows_affected: 0,
        tag: "SELECT".into(),
        elapsed: Default::default(),
    })
}
