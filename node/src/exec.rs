//! The executor: plans become pull-based row iterators ("Volcano"). Scans, filters,
//! projections, limits and the probe side of joins stream; sorts, aggregation, the build side
//! of joins and set operations hold what they must.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use crate::catalog::TableDef;
use crate::encoding::{self, decode_row, encode_key, prefix_end};
use crate::error::{Result, SqlError};
use crate::expr::{self, BinOp, Expr, SubqueryKind};
use crate::kv::KvTxn;
use crate::plan::{Access, AggCall, AggFunc, JoinKind, KeyRange, Plan, SetOpKind, SortKey};
use crate::types::Value;

/// A row.
pub type Row = Vec<Value>;
/// A stream of rows.
pub type RowIter<'a> = Box<dyn Iterator<Item = Result<Row>> + 'a>;

/// Limits a statement runs under.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Fail with [`SqlError::Cancelled`] after this instant (statement timeout).
    pub deadline: Option<std::time::Instant>,
    /// Set from another thread to cancel the statement.
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Bytes the statement's sorts, hash tables and buffers may hold; 0 = unlimited.
    pub memory_bytes: usize,
}

/// What a running statement needs: its transaction, parameters, the rows of enclosing
/// queries (for correlated subqueries), its limits, and where to count index use.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The transaction.
    pub txn: &'a dyn KvTxn,
    /// `$1`... values.
    pub params: &'a [Value],
    outer: RefCell<Vec<Row>>,
    limits: Limits,
    memory: std::cell::Cell<usize>,
    rows_seen: std::cell::Cell<u64>,
    stats: Option<&'a crate::stats::EngineStats>,
    profile: Option<&'a crate::stats::Profile>,
}

impl<'a> Ctx<'a> {
    /// A context for one statement.
    pub fn new(txn: &'a dyn KvTxn, params: &'a [Value]) -> Ctx<'a> {
        Ctx {
            txn,
            params,
            outer: RefCell::new(Vec::new()),
            limits: Limits::default(),
            memory: std::cell::Cell::new(0),
            rows_seen: std::cell::Cell::new(0),
            stats: None,
            profile: None,
        }
    }

    /// Runs under `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Ctx<'a> {
        self.limits = limits;
        self
    }

    /// Counts index use in `stats`.
    pub fn with_stats(mut self, stats: &'a crate::stats::EngineStats) -> Ctx<'a> {
        self.stats = Some(stats);
        self
    }

    /// Records rows and time per operator (EXPLAIN ANALYZE).
    pub fn with_profile(mut self, profile: &'a crate::stats::Profile) -> Ctx<'a> {
        self.profile = Some(profile);
        self
    }

    /// Fails if the statement was cancelled or ran out of time. Called once per row read and
    /// every 1,024 rows for the clock.
    pub fn check(&self) -> Result<()> {
        let n = self.rows_seen.get().wrapping_add(1);
        self.rows_seen.set(n);
        if let Some(c) = &self.limits.cancel
            && c.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(SqlError::Cancelled(
                "canceling statement due to user request".into(),
            ));
        }
        if n.is_multiple_of(1024)
            && let Some(d) = self.limits.deadline
            && std::time::Instant::now() > d
        {
            return Err(SqlError::Cancelled(
                "canceling statement due to statement timeout".into(),
            ));
        }
        Ok(())
    }

    /// Accounts `bytes` held by a sort, hash table or buffer against the memory limit.
    pub fn charge(&self, bytes: usize, what: &str) -> Result<()> {
        let used = self.memory.get() + bytes;
        self.memory.set(used);
        if self.limits.memory_bytes > 0 && used > self.limits.memory_bytes {
            return Err(SqlError::MemoryLimit {
                limit: self.limits.memory_bytes,
                what: what.to_string(),
            });
        }
        Ok(())
    }
}

/// Approximate bytes a row holds in memory.
pub fn row_bytes(row: &[Value]) -> usize {
    row.iter()
        .map(|v| {
            32 + match v {
                Value::Text(s) | Value::Json(s) => s.len(),
                Value::Blob(b) => b.len(),
                _ => 0,
            }
        })
        .sum::<usize>()
        + 24
}

/// Evaluates `e` over `row`.
pub fn eval(e: &Expr, row: &[Value], ctx: &Ctx<'_>) -> Result<Value> {
    Ok(match e {
        Expr::Column(i) => row[*i].clone(),
        Expr::Outer(depth, i) => {
            let outer = ctx.outer.borrow();
            let at = outer
                .len()
                .checked_sub(*depth)
                .ok_or_else(|| SqlError::Invalid("outer reference outside a subquery".into()))?;
            outer[at][*i].clone()
        }
        Expr::Literal(v) => v.clone(),
        Expr::Param(i) => ctx.params.get(*i).cloned().ok_or_else(|| {
            SqlError::Parameter(format!(
                "there is no parameter ${} ({} given)",
                i + 1,
                ctx.params.len()
            ))
        })?,
        Expr::Binary(op @ (BinOp::And | BinOp::Or), a, b) => {
            // Short-circuit where the left side decides.
            let l = eval(a, row, ctx)?;
            match (op, expr::truth(&l)?) {
                (BinOp::And, Some(false)) => Value::Bool(false),
                (BinOp::Or, Some(true)) => Value::Bool(true),
                _ => expr::binary(*op, &l, &eval(b, row, ctx)?)?,
            }
        }
        Expr::Binary(op, a, b) => expr::binary(*op, &eval(a, row, ctx)?, &eval(b, row, ctx)?)?,
        Expr::Not(a) => match expr::truth(&eval(a, row, ctx)?)? {
            Some(b) => Value::Bool(!b),
            None => Value::Null,
        },
        Expr::Neg(a) => crate::arith::neg(&eval(a, row, ctx)?)?,
        Expr::IsNull(a, negated) => Value::Bool(eval(a, row, ctx)?.is_null() != *negated),
        Expr::IsDistinct(a, b, negated) => {
            let (x, y) = (eval(a, row, ctx)?, eval(b, row, ctx)?);
            let distinct = match (x.is_null(), y.is_null()) {
                (true, true) => false,
                (true, false) | (false, true) => true,
                _ => expr::compare(BinOp::NotEq, &x, &y)? == Value::Bool(true),
            };
            Value::Bool(distinct != *negated)
        }
        Expr::InList(a, list, negated) => {
            let x = eval(a, row, ctx)?;
            let mut values = Vec::with_capacity(list.len());
            for item in list {
                values.push(eval(item, row, ctx)?);
            }
            in_values(&x, values.iter(), *negated)?
        }
        Expr::InSubquery(a, plan, negated) => {
            let x = eval(a, row, ctx)?;
            let values = run_subquery(plan, row, ctx)?
                .into_iter()
                .map(|mut r| r.swap_remove(0))
                .collect::<Vec<_>>();
            in_values(&x, values.iter(), *negated)?
        }
        Expr::Like {
            expr,
            pattern,
            escape,
            case_insensitive,
            negated,
        } => match (eval(expr, row, ctx)?, eval(pattern, row, ctx)?) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Text(_), Value::Text(p)) if ends_with_escape(&p, *escape) => {
                return Err(SqlError::Invalid(
                    "LIKE pattern must not end with escape character".into(),
                ));
            }
            (Value::Text(s), Value::Text(p)) => {
                Value::Bool(crate::functions::like(&s, &p, *escape, *case_insensitive) != *negated)
            }
            (a, b) => {
                return Err(SqlError::TypeMismatch(format!(
                    "LIKE needs text operands, got {} and {}",
                    a.data_type(),
                    b.data_type()
                )));
            }
        },
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => {
            let subject = match operand {
                Some(o) => Some(eval(o, row, ctx)?),
                None => None,
            };
            for (when, then) in whens {
                let w = eval(when, row, ctx)?;
                let hit = match &subject {
                    Some(s) => expr::compare(BinOp::Eq, s, &w)? == Value::Bool(true),
                    None => expr::truth(&w)? == Some(true),
                };
                if hit {
                    return eval(then, row, ctx);
                }
            }
            match otherwise {
                Some(o) => eval(o, row, ctx)?,
                None => Value::Null,
            }
        }
        Expr::Cast(a, t) => crate::cast::cast(&eval(a, row, ctx)?, t)?,
        Expr::Func(name, args) => {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                values.push(eval(a, row, ctx)?);
            }
            crate::functions::call(name, &values)?
        }
        Expr::Coalesce(args) => {
            for a in args {
                let v = eval(a, row, ctx)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            Value::Null
        }
        Expr::NullIf(a, b) => {
            let x = eval(a, row, ctx)?;
            let y = eval(b, row, ctx)?;
            if expr::compare(BinOp::Eq, &x, &y)? == Value::Bool(true) {
                Value::Null
            } else {
                x
            }
        }
        Expr::Subquery(kind, plan, negated) => {
            let rows = run_subquery(plan, row, ctx)?;
            match kind {
                SubqueryKind::Exists => Value::Bool(rows.is_empty() == *negated),
                SubqueryKind::Scalar => match rows.len() {
                    0 => Value::Null,
                    1 => rows.into_iter().next().expect("one row").swap_remove(0),
                    n => {
                        return Err(SqlError::Invalid(format!(
                            "more than one row returned by a subquery used as an expression ({n} rows)"
                        )));
                    }
                },
            }
        }
    })
}

/// True if `pattern` ends with an escape character that escapes nothing.
fn ends_with_escape(pattern: &str, escape: Option<char>) -> bool {
    let Some(esc) = escape else { return false };
    let trailing = pattern.chars().rev().take_while(|&c| c == esc).count();
    trailing % 2 == 1
}

fn in_values<'v>(
    x: &Value,
    values: impl Iterator<Item = &'v Value>,
    negated: bool,
) -> Result<Value> {
    let mut values = values.peekable();
    // x IN (empty set) is false and x NOT IN (empty set) true, even for a NULL x.
    if values.peek().is_none() {
        return Ok(Value::Bool(negated));
    }
    if x.is_null() {
        return Ok(Value::Null);
    }
    let mut saw_null = false;
    for v in values {
        match expr::compare(BinOp::Eq, x, v)? {
            Value::Bool(true) => return Ok(Value::Bool(!negated)),
            Value::Null => saw_null = true,
            _ => {}
        }
    }
    Ok(if saw_null {
        Value::Null
    } else {
        Value::Bool(negated)
    })
}

fn run_subquery(plan: &Plan, row: &[Value], ctx: &Ctx<'_>) -> Result<Vec<Row>> {
    ctx.outer.borrow_mut().push(row.to_vec());
    let result = open(plan, ctx).and_then(Iterator::collect::<Result<Vec<_>>>);
    ctx.outer.borrow_mut().pop();
    result
}

/// True if the predicate holds (NULL counts as false). Every row tested also checks for
/// cancellation and the timeout.
pub fn holds(pred: &Expr, row: &[Value], ctx: &Ctx<'_>) -> Result<bool> {
    ctx.check()?;
    Ok(expr::truth(&eval(pred, row, ctx)?)? == Some(true))
}

/// Starts executing `plan`.
pub fn open<'a>(plan: &'a Plan, ctx: &'a Ctx<'a>) -> Result<RowIter<'a>> {
    let Some(profile) = ctx.profile else {
        return open_node(plan, ctx);
    };
    let node = plan as *const Plan as usize;
    let began = std::time::Instant::now();
    let inner = open_node(plan, ctx)?;
    profile.add(node, 0, 1, began.elapsed());
    Ok(Box::new(Profiled {
        inner,
        node,
        profile,
    }))
}

/// Counts an operator's rows and the time spent in it (inputs included).
struct Profiled<'a> {
    inner: RowIter<'a>,
    node: usize,
    profile: &'a crate::stats::Profile,
}

impl Iterator for Profiled<'_> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        let began = std::time::Instant::now();
        let item = self.inner.next();
        let rows = u64::from(matches!(item, Some(Ok(_))));
        self.profile.add(self.node, rows, 0, began.elapsed());
        item
    }
}

fn open_node<'a>(plan: &'a Plan, ctx: &'a Ctx<'a>) -> Result<RowIter<'a>> {
    Ok(match plan {
        Plan::Single => Box::new(std::iter::once(Ok(Vec::new()))),
        Plan::Values { rows, .. } => Box::new(rows.iter().map(move |exprs| {
            exprs
                .iter()
                .map(|e| eval(e, &[], ctx))
                .collect::<Result<Row>>()
        })),
        Plan::Scan {
            table,
            access,
            filter,
            ..
        } => {
            let rows = scan_table(table, access, ctx)?;
            match filter {
                Some(f) => Box::new(rows.filter_map(move |r| match r {
                    Ok(row) => match holds(f, &row, ctx) {
                        Ok(true) => Some(Ok(row)),
                        Ok(false) => None,
                        Err(e) => Some(Err(e)),
                    },
                    Err(e) => Some(Err(e)),
                })),
                None => rows,
            }
        }
        Plan::Filter { input, predicate } => {
            let rows = open(input, ctx)?;
            Box::new(rows.filter_map(move |r| match r {
                Ok(row) => match holds(predicate, &row, ctx) {
                    Ok(true) => Some(Ok(row)),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                },
                Err(e) => Some(Err(e)),
            }))
        }
        Plan::Project { input, exprs, .. } => {
            let rows = open(input, ctx)?;
            Box::new(rows.map(move |r| {
                let row = r?;
                exprs.iter().map(|e| eval(e, &row, ctx)).collect()
            }))
        }
        Plan::Sort { input, keys } => {
            let mut rows: Vec<(Vec<Value>, Row)> = Vec::new();
            for r in open(input, ctx)? {
                let row = r?;
                let k = keys
                    .iter()
                    .map(|k| eval(&k.expr, &row, ctx))
                    .collect::<Result<Vec<_>>>()?;
                ctx.charge(row_bytes(&row) + row_bytes(&k), "Sort")?;
                rows.push((k, row));
            }
            rows.sort_by(|(a, _), (b, _)| compare_keys(keys, a, b));
            Box::new(rows.into_iter().map(|(_, r)| Ok(r)))
        }
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            let count = |e: &Option<Expr>, what: &str| -> Result<Option<usize>> {
                match e {
                    None => Ok(None),
                    Some(e) => match eval(e, &[], ctx)? {
                        Value::Null => Ok(None),
                        Value::Int(n) if n >= 0 => Ok(Some(n as usize)),
                        other => Err(SqlError::Invalid(format!(
                            "{what} must be a non-negative integer, not {other}"
                        ))),
                    },
                }
            };
            let limit = count(limit, "LIMIT")?;
            let offset = count(offset, "OFFSET")?.unwrap_or(0);
            let rows = open(input, ctx)?.skip(offset);
            match limit {
                Some(n) => Box::new(rows.take(n)),
                None => Box::new(rows),
            }
        }
        Plan::Distinct { input } => {
            let mut seen = HashSet::new();
            let rows = open(input, ctx)?;
            Box::new(rows.filter_map(move |r| match r {
                Ok(row) => {
                    let k = row_key(&row);
                    if seen.contains(&k) {
                        return None;
                    }
                    if let Err(e) = ctx.charge(k.len() + 48, "Distinct") {
                        return Some(Err(e));
                    }
                    seen.insert(k);
                    Some(Ok(row))
                }
                Err(e) => Some(Err(e)),
            }))
        }
        Plan::Aggregate {
            input,
            groups,
            aggs,
            ..
        } => Box::new(aggregate(input, groups, aggs, ctx)?.into_iter().map(Ok)),
        Plan::Join {
            left,
            right,
            kind,
            keys,
            condition,
        } => join(left, right, *kind, keys, condition.as_ref(), ctx)?,
        Plan::LookupJoin {
            left,
            table,
            columns,
            index,
            left_key,
            filter,
            kind,
            condition,
            ..
        } => {
            let width = columns.len();
            Box::new(open(left, ctx)?.flat_map(move |r| {
                let rows = lookup_join_row(
                    r,
                    table,
                    index.as_ref(),
                    left_key,
                    filter.as_ref(),
                    condition.as_ref(),
                    *kind,
                    width,
                    ctx,
                );
                match rows {
                    Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                }
            }))
        }
        Plan::SetOp {
            left,
            right,
            kind,
            all,
        } => set_op(left, right, *kind, *all, ctx)?,
    })
}

fn row_key(row: &[Value]) -> Vec<u8> {
    let mut k = Vec::new();
    for v in row {
        v.group_key(&mut k);
    }
    k
}

fn compare_keys(keys: &[SortKey], a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for (k, (x, y)) in keys.iter().zip(a.iter().zip(b)) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if k.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            _ => {
                let o = x.total_cmp(y);
                if k.asc { o } else { o.reverse() }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Values of `table`'s columns (in column order) from a stored row.
pub fn row_from_stored(table: &TableDef, raw: &[u8]) -> Result<Row> {
    let slots = decode_row(raw)?;
    Ok(table
        .columns
        .iter()
        .map(|c| slots.get(c.slot as usize).cloned().unwrap_or(Value::Null))
        .collect())
}

/// The key encoding of `v` as column `column`'s type. `Ok(None)` if the value cannot be of that
/// type (out of its range): no row has it, and a range bound on it is no bound.
fn bound_key(table: &TableDef, column: usize, v: &Value) -> Result<Option<Vec<u8>>> {
    let v = match crate::cast::cast(v, &table.columns[column].data_type) {
        Ok(v) => v,
        Err(SqlError::Overflow(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut k = Vec::new();
    encoding::encode_key_value(&v, &mut k);
    Ok(Some(k))
}

/// A start key and an optional end key (exclusive).
type KeySpan = (Vec<u8>, Option<Vec<u8>>);

/// Start and end keys for a range over the first key column under `prefix`. Bounds are loose
/// (inclusive); the caller keeps the exact condition as a filter.
fn range_keys(
    prefix: &[u8],
    table: &TableDef,
    column: usize,
    range: &KeyRange,
    ctx: &Ctx<'_>,
) -> Result<Option<KeySpan>> {
    let mut start = prefix.to_vec();
    if let Some((e, _)) = &range.low {
        let v = eval(e, &[], ctx)?;
        if v.is_null() {
            return Ok(None);
        }
        // An impossible low bound is dropped; the filter still applies the condition.
        if let Some(k) = bound_key(table, column, &v)? {
            start.extend(k);
        }
    }
    let end = match &range.high {
        Some((e, _)) => {
            let v = eval(e, &[], ctx)?;
            if v.is_null() {
                return Ok(None);
            }
            match bound_key(table, column, &v)? {
                Some(k) => {
                    let mut hi = prefix.to_vec();
                    hi.extend(k);
                    prefix_end(&hi)
                }
                None => prefix_end(prefix),
            }
        }
        None => prefix_end(prefix),
    };
    Ok(Some((start, end)))
}

fn scan_table<'a>(
    table: &'a Arc<TableDef>,
    access: &'a Access,
    ctx: &'a Ctx<'a>,
) -> Result<RowIter<'a>> {
    let rows = scan_keyed(table, access, ctx)?;
    Ok(Box::new(rows.map(|r| r.map(|(_, row)| row))))
}

/// A stream of rows with their row keys (UPDATE and DELETE need the key).
pub type KeyedIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Row)>> + 'a>;

/// Reads a table through an access path, yielding each row with its key. Checks for
/// cancellation and the statement timeout on every row, and counts index use.
pub fn scan_keyed<'a>(
    table: &'a TableDef,
    access: &'a Access,
    ctx: &'a Ctx<'a>,
) -> Result<KeyedIter<'a>> {
    let counter = match (access, ctx.stats) {
        (Access::IndexPoint { index, .. } | Access::IndexRange { index, .. }, Some(stats)) => {
            let c = stats.index(table.id, *index);
            c.scans.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(c)
        }
        _ => None,
    };
    let rows = scan_access(table, access, ctx)?;
    Ok(Box::new(rows.map(move |r| {
        ctx.check()?;
        if let Some(c) = &counter {
            c.rows.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        r
    })))
}

fn scan_access<'a>(
    table: &'a TableDef,
    access: &'a Access,
    ctx: &'a Ctx<'a>,
) -> Result<KeyedIter<'a>> {
    let row_prefix = encoding::row_prefix(table.id);
    let decode = move |r: Result<(Vec<u8>, Vec<u8>)>| {
        r.and_then(|(k, v)| Ok((k, row_from_stored(table, &v)?)))
    };
    Ok(match access {
        Access::Full => {
            let end = prefix_end(&row_prefix);
            Box::new(ctx.txn.scan(&row_prefix, end.as_deref())?.map(decode))
        }
        Access::PkPoint(values) => {
            let pk = table.pk_indices();
            let mut key = row_prefix;
            for (e, &col) in values.iter().zip(&pk) {
                let v = eval(e, &[], ctx)?;
                if v.is_null() {
                    return Ok(Box::new(std::iter::empty()));
                }
                // A value the column cannot hold matches no row.
                match bound_key(table, col, &v)? {
                    Some(k) => key.extend(k),
                    None => return Ok(Box::new(std::iter::empty())),
                }
            }
            match ctx.txn.get(&key)? {
                Some(raw) => Box::new(std::iter::once(
                    row_from_stored(table, &raw).map(|r| (key, r)),
                )),
                None => Box::new(std::iter::empty()),
            }
        }
        Access::PkRange(range) => {
            let col = table.pk_indices()[0];
            match range_keys(&row_prefix, table, col, range, ctx)? {
                Some((start, end)) => Box::new(ctx.txn.scan(&start, end.as_deref())?.map(decode)),
                None => Box::new(std::iter::empty()),
            }
        }
        Access::IndexPoint { index, values, .. } => {
            let def = table
                .indexes
                .iter()
                .find(|i| i.id == *index)
                .ok_or_else(|| SqlError::UnknownIndex(index.to_string()))?;
            let cols = table.index_columns(def);
            let mut prefix = encoding::index_prefix(table.id, *index);
            for (e, &col) in values.iter().zip(&cols) {
                let v = eval(e, &[], ctx)?;
                if v.is_null() {
                    return Ok(Box::new(std::iter::empty()));
                }
                match bound_key(table, col, &v)? {
                    Some(k) => prefix.extend(k),
                    None => return Ok(Box::new(std::iter::empty())),
                }
            }
            let end = prefix_end(&prefix);
            index_rows(table, ctx.txn.scan(&prefix, end.as_deref())?, ctx)
        }
        Access::IndexRange { index, range, .. } => {
            let def = table
                .indexes
                .iter()
                .find(|i| i.id == *index)
                .ok_or_else(|| SqlError::UnknownIndex(index.to_string()))?;
            let col = table.index_columns(def)[0];
            let prefix = encoding::index_prefix(table.id, *index);
            match range_keys(&prefix, table, col, range, ctx)? {
                Some((start, end)) => index_rows(table, ctx.txn.scan(&start, end.as_deref())?, ctx),
                None => Box::new(std::iter::empty()),
            }
        }
    })
}

/// Follows index entries (whose value is the row key suffix) to their rows.
fn index_rows<'a>(
    table: &'a TableDef,
    entries: crate::kv::KvIter<'a>,
    ctx: &'a Ctx<'a>,
) -> KeyedIter<'a> {
    let row_prefix = encoding::row_prefix(table.id);
    Box::new(entries.map(move |e| {
        let (_, pk) = e?;
        let mut key = row_prefix.clone();
        key.extend_from_slice(&pk);
        match ctx.txn.get(&key)? {
            Some(raw) => row_from_stored(table, &raw).map(|r| (key, r)),
            None => Err(SqlError::Storage(nq_storage::StorageError::Integrity(
                format!(
                    "index entry of table {:?} points at a missing row",
                    table.name
                ),
            ))),
        }
    }))
}

/// Encodes a table row's primary key (or its row id).
pub fn pk_key(table: &TableDef, row: &[Value], rowid: Option<i64>) -> Vec<u8> {
    let mut key = encoding::row_prefix(table.id);
    if table.primary_key.is_empty() {
        encoding::encode_key_value(
            &Value::Int(rowid.expect("row-id tables pass a row id")),
            &mut key,
        );
    } else {
        let vals: Vec<Value> = table.pk_indices().iter().map(|&i| row[i].clone()).collect();
        encode_key(&vals, &mut key);
    }
    key
}

/// State of one aggregate over one group.
#[derive(Clone)]
enum Acc {
    Count(i64),
    Sum(Value),
    Avg(Value, i64),
    MinMax(Value),
}

fn new_acc(call: &AggCall) -> Acc {
    match call.func {
        AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
        AggFunc::Sum => Acc::Sum(Value::Null),
        AggFunc::Avg => Acc::Avg(Value::Null, 0),
        AggFunc::Min | AggFunc::Max => Acc::MinMax(Value::Null),
    }
}

fn feed(acc: &mut Acc, call: &AggCall, v: Value) -> Result<()> {
    if call.func != AggFunc::CountStar && v.is_null() {
        return Ok(());
    }
    match acc {
        Acc::Count(n) => *n += 1,
        Acc::Sum(s) => {
            *s = if s.is_null() {
                widen(v)
            } else {
                crate::arith::add(s, &v)?
            }
        }
        Acc::Avg(s, n) => {
            *s = if s.is_null() {
                widen(v)
            } else {
                crate::arith::add(s, &v)?
            };
            *n += 1;
        }
        Acc::MinMax(m) => {
            let replace = m.is_null()
                || match v.sql_cmp(m) {
                    Some(o) => (call.func == AggFunc::Min) == (o == std::cmp::Ordering::Less),
                    None => {
                        return Err(SqlError::TypeMismatch(format!(
                            "cannot compare {} with {}",
                            v.data_type(),
                            m.data_type()
                        )));
                    }
                };
            if replace {
                *m = v;
            }
        }
    }
    Ok(())
}

/// SUM and AVG of integers accumulate as DECIMAL, as in PostgreSQL, so they cannot overflow.
fn widen(v: Value) -> Value {
    match v {
        Value::Int(i) => Value::Decimal(rust_decimal::Decimal::from(i)),
        other => other,
    }
}

fn finish(acc: Acc, call: &AggCall) -> Result<Value> {
    Ok(match acc {
        Acc::Count(n) => Value::Int(n),
        Acc::Sum(s) => s,
        Acc::Avg(s, n) => {
            if n == 0 {
                Value::Null
            } else {
                let _ = call;
                crate::arith::div(&s, &Value::Decimal(rust_decimal::Decimal::from(n)))?
            }
        }
        Acc::MinMax(m) => m,
    })
}

fn aggregate(input: &Plan, groups: &[Expr], aggs: &[AggCall], ctx: &Ctx<'_>) -> Result<Vec<Row>> {
    struct Group {
        values: Row,
        accs: Vec<Acc>,
        seen: Vec<HashSet<Vec<u8>>>,
    }
    let mut table: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut out: Vec<Group> = Vec::new();
    for r in open(input, ctx)? {
        let row = r?;
        let values = groups
            .iter()
            .map(|g| eval(g, &row, ctx))
            .collect::<Result<Row>>()?;
        let key = row_key(&values);
        let idx = match table.get(&key) {
            Some(&i) => i,
            None => {
                ctx.charge(
                    key.len() + row_bytes(&values) + 64 * aggs.len(),
                    "Aggregate",
                )?;
                out.push(Group {
                    values,
                    accs: aggs.iter().map(new_acc).collect(),
                    seen: aggs.iter().map(|_| HashSet::new()).collect(),
                });
                table.insert(key, out.len() - 1);
                out.len() - 1
            }
        };
        let g = &mut out[idx];
        for (j, call) in aggs.iter().enumerate() {
            let v = match &call.arg {
                Some(a) => eval(a, &row, ctx)?,
                None => Value::Null,
            };
            if call.distinct && !v.is_null() {
                let mut k = Vec::new();
                v.group_key(&mut k);
                if !g.seen[j].insert(k) {
                    continue;
                }
            }
            feed(&mut g.accs[j], call, v)?;
        }
    }
    if out.is_empty() && groups.is_empty() {
        out.push(Group {
            values: Vec::new(),
            accs: aggs.iter().map(new_acc).collect(),
            seen: Vec::new(),
        });
    }
    out.into_iter()
        .map(|g| {
            let mut row = g.values;
            for (acc, call) in g.accs.into_iter().zip(aggs) {
                row.push(finish(acc, call)?);
            }
            Ok(row)
        })
        .collect()
}

fn join<'a>(
    left: &'a Plan,
    right: &'a Plan,
    kind: JoinKind,
    keys: &'a [(Expr, Expr)],
    condition: Option<&'a Expr>,
    ctx: &'a Ctx<'a>,
) -> Result<RowIter<'a>> {
    let mut right_rows: Vec<Row> = Vec::new();
    for r in open(right, ctx)? {
        let row = r?;
        ctx.charge(row_bytes(&row) + 16, "Hash Join")?;
        right_rows.push(row);
    }
    let right_width = right.width();
    let left_width = left.width();
    // Hash table over the right side's key values; rows with a NULL key never match.
    let mut buckets: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    if !keys.is_empty() {
        for (i, row) in right_rows.iter().enumerate() {
            let vals = keys
                .iter()
                .map(|(_, r)| eval(r, row, ctx))
                .collect::<Result<Vec<_>>>()?;
            if vals.iter().any(Value::is_null) {
                continue;
            }
            buckets.entry(row_key(&vals)).or_default().push(i);
        }
    }
    let matched = Rc::new(RefCell::new(vec![false; right_rows.len()]));
    let marks = Rc::clone(&matched);
    let right_rows = Arc::new(right_rows);
    let all: Vec<usize> = (0..right_rows.len()).collect();
    let rr = Arc::clone(&right_rows);
    let probe = open(left, ctx)?.map(move |r| -> Result<Vec<Row>> {
        let lrow = r?;
        let candidates: &[usize] = if keys.is_empty() {
            &all
        } else {
            let vals = keys
                .iter()
                .map(|(l, _)| eval(l, &lrow, ctx))
                .collect::<Result<Vec<_>>>()?;
            if vals.iter().any(Value::is_null) {
                &[]
            } else {
                buckets
                    .get(&row_key(&vals))
                    .map_or(&[][..], |v| v.as_slice())
            }
        };
        let mut out = Vec::new();
        for &i in candidates {
            ctx.check()?;
            let mut joined = lrow.clone();
            joined.extend(rr[i].iter().cloned());
            let ok = match condition {
                Some(c) => holds(c, &joined, ctx)?,
                None => true,
            };
            if ok {
                marks.borrow_mut()[i] = true;
                out.push(joined);
            }
        }
        if out.is_empty() && matches!(kind, JoinKind::Left | JoinKind::Full) {
            let mut joined = lrow;
            joined.extend(std::iter::repeat_n(Value::Null, right_width));
            out.push(joined);
        }
        Ok(out)
    });
    // Drain the probe side first when unmatched right rows must follow.
    if matches!(kind, JoinKind::Right | JoinKind::Full) {
        let mut rows = Vec::new();
        for batch in probe {
            rows.extend(batch?);
        }
        let flags = matched.borrow();
        for (i, m) in flags.iter().enumerate() {
            if !m {
                let mut joined = vec![Value::Null; left_width];
                joined.extend(right_rows[i].iter().cloned());
                rows.push(joined);
            }
        }
        return Ok(Box::new(rows.into_iter().map(Ok)));
    }
    Ok(Box::new(probe.flat_map(|batch| match batch {
        Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    })))
}

/// One outer row of an index nested-loop join: the matching rows of `table`, joined.
#[allow(clippy::too_many_arguments)]
fn lookup_join_row(
    left: Result<Row>,
    table: &TableDef,
    index: Option<&(u32, String)>,
    left_key: &Expr,
    filter: Option<&Expr>,
    condition: Option<&Expr>,
    kind: JoinKind,
    width: usize,
    ctx: &Ctx<'_>,
) -> Result<Vec<Row>> {
    let lrow = left?;
    let key = eval(left_key, &lrow, ctx)?;
    let mut out = Vec::new();
    if !key.is_null() {
        let access = match index {
            None => Access::PkPoint(vec![Expr::Literal(key)]),
            Some((id, name)) => Access::IndexPoint {
                index: *id,
                name: name.clone(),
                values: vec![Expr::Literal(key)],
            },
        };
        let matches: Vec<(Vec<u8>, Row)> =
            scan_keyed(table, &access, ctx)?.collect::<Result<_>>()?;
        for (_, rrow) in matches {
            if let Some(f) = filter
                && !holds(f, &rrow, ctx)?
            {
                continue;
            }
            let mut joined = lrow.clone();
            joined.extend(rrow);
            if let Some(c) = condition
                && !holds(c, &joined, ctx)?
            {
                continue;
            }
            out.push(joined);
        }
    }
    if out.is_empty() && kind == JoinKind::Left {
        let mut joined = lrow;
        joined.extend(std::iter::repeat_n(Value::Null, width));
        out.push(joined);
    }
    Ok(out)
}

fn set_op<'a>(
    left: &'a Plan,
    right: &'a Plan,
    kind: SetOpKind,
    all: bool,
    ctx: &'a Ctx<'a>,
) -> Result<RowIter<'a>> {
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut right_rows = Vec::new();
    for r in open(right, ctx)? {
        let row = r?;
        ctx.charge(row_bytes(&row), "Set Operation")?;
        *counts.entry(row_key(&row)).or_insert(0) += 1;
        if kind == SetOpKind::Union {
            right_rows.push(row);
        }
    }
    let mut out = Vec::new();
    let mut emitted: HashSet<Vec<u8>> = HashSet::new();
    match kind {
        SetOpKind::Union => {
            for r in open(left, ctx)?.chain(right_rows.into_iter().map(Ok)) {
                let row = r?;
                if all || emitted.insert(row_key(&row)) {
                    out.push(row);
                }
            }
        }
        SetOpKind::Intersect | SetOpKind::Except => {
            for r in open(left, ctx)? {
                let row = r?;
                let k = row_key(&row);
                let n = counts.get(&k).copied().unwrap_or(0);
                let keep = match (kind, all) {
                    (SetOpKind::Intersect, true) => {
                        if n > 0 {
                            counts.insert(k, n - 1);
                            true
                        } else {
                            false
                        }
                    }
                    (SetOpKind::Intersect, false) => n > 0 && emitted.insert(k),
                    (_, true) => {
                        if n > 0 {
                            counts.insert(k, n - 1);
                            false
                        } else {
                            true
                        }
                    }
                    (_, false) => n == 0 && emitted.insert(k),
                };
                if keep {
                    out.push(row);
                }
            }
        }
    }
    Ok(Box::new(out.into_iter().map(Ok)))
}
