//! The executor: plans become pull-based row iterators ("Volcano"). Scans, filters,
//! projections, limits and the probe side of joins stream; sorts, aggregation, the build side
//! of joins and set operations hold what they must.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::catalog::TableDef;
use crate::encoding::{self, encode_key, prefix_end};
use crate::error::{Result, SqlError};
use crate::expr::{self, BinOp, Expr, SubqueryKind};
use crate::kv::KvTxn;
use crate::plan::{
    Access, AggCall, AggFunc, JoinAlgorithm, JoinKind, KeyRange, Plan, SetOpKind, SortKey,
};
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

/// The part of a scan's filter its access path does not already guarantee. An index point
/// lookup finds exactly the rows whose indexed columns have the looked-up values when each
/// value already has its column's type and that type's key form is exact
/// ([`encoding::key_round_trips`]: equal keys mean SQL-equal values); a conjunct `column =
/// constant` that such a lookup used then holds for every row found and is dropped, so rows
/// are not compared again. The planner keeps every conjunct in the filter; this decides per
/// execution, since `$n` parameters take their values (and types) only now.
fn residual_filter<'p>(
    table: &TableDef,
    access: &Access,
    filter: &'p Expr,
    ctx: &Ctx<'_>,
) -> Result<Option<std::borrow::Cow<'p, Expr>>> {
    use std::borrow::Cow;
    let Access::IndexPoint { index, values, .. } = access else {
        return Ok(Some(Cow::Borrowed(filter)));
    };
    let Some(def) = table.indexes.iter().find(|i| i.id == *index) else {
        return Ok(Some(Cow::Borrowed(filter)));
    };
    let constant = |e: &Expr| -> Result<Option<Value>> {
        Ok(match e {
            Expr::Literal(_) | Expr::Param(_) => Some(eval(e, &[], ctx)?),
            _ => None,
        })
    };
    // (column, value) pairs the lookup matched exactly.
    let mut exact: Vec<(usize, Value)> = Vec::new();
    for (e, col) in values.iter().zip(table.index_columns(def)) {
        let data_type = &table.columns[col].data_type;
        let Some(v) = constant(e)? else { continue };
        if v.is_null() || !encoding::key_round_trips(data_type) {
            continue;
        }
        if crate::cast::cast(&v, data_type).is_ok_and(|c| c == v) {
            exact.push((col, v));
        }
    }
    if exact.is_empty() {
        return Ok(Some(Cow::Borrowed(filter)));
    }
    let mut kept = Vec::new();
    let mut dropped = false;
    for part in filter.clone().conjuncts() {
        let implied = match &part {
            Expr::Binary(BinOp::Eq, a, b) => match (a.as_ref(), b.as_ref()) {
                (Expr::Column(c), e) | (e, Expr::Column(c)) => match constant(e)? {
                    Some(v) => exact.iter().any(|(col, x)| col == c && *x == v),
                    None => false,
                },
                _ => false,
            },
            _ => false,
        };
        if implied {
            dropped = true;
        } else {
            kept.push(part);
        }
    }
    if !dropped {
        return Ok(Some(Cow::Borrowed(filter)));
    }
    Ok(Expr::and_all(kept).map(Cow::Owned))
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
            needed,
            ..
        } => {
            let rows = scan_table(table, access, needed.as_deref(), ctx)?;
            let filter = match filter {
                Some(f) => residual_filter(table, access, f, ctx)?,
                None => None,
            };
            match filter {
                Some(f) => Box::new(rows.filter_map(move |r| match r {
                    Ok(row) => match holds(&f, &row, ctx) {
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
            match column_permutation(exprs, input.width()) {
                // Plain columns, each read once: the identity passes rows through, any other
                // order moves the values instead of copying them.
                Some(p)
                    if p.iter().enumerate().all(|(i, &c)| i == c) && p.len() == input.width() =>
                {
                    rows
                }
                Some(p) => Box::new(rows.map(move |r| {
                    let mut row = r?;
                    Ok(p.iter()
                        .map(|&c| std::mem::replace(&mut row[c], Value::Null))
                        .collect())
                })),
                None => Box::new(rows.map(move |r| {
                    let row = r?;
                    exprs.iter().map(|e| eval(e, &row, ctx)).collect()
                })),
            }
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
        Plan::Grover {
            input,
            predicate,
            max_rows,
        } => {
            let mut items = Vec::new();
            for row in open(input, ctx)? {
                let row = row?;
                ctx.charge(row_bytes(&row), "Grover Search")?;
                items.push(row);
            }
            let (found, stats) = crate::grover::search(items, predicate, *max_rows, ctx)?;
            if let Some(profile) = ctx.profile {
                profile.note(plan as *const Plan as usize, stats.describe());
            }
            Box::new(found.into_iter().map(Ok))
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
            algorithm: JoinAlgorithm::Hash,
        } => join(left, right, *kind, keys, condition.as_ref(), ctx)?,
        Plan::Join {
            left,
            right,
            kind,
            keys,
            condition,
            algorithm: JoinAlgorithm::Merge,
        } => merge_join(left, right, *kind, keys, condition.as_ref(), ctx)?,
        Plan::LookupJoin {
            left,
            table,
            columns,
            index,
            left_key,
            filter,
            kind,
            condition,
            needed,
            ..
        } => {
            let width = columns.len();
            let slots = Rc::new(slot_map(table, needed.as_deref()));
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
                    &slots,
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

/// The input positions of a projection made only of plain columns, each at most once.
fn column_permutation(exprs: &[Expr], width: usize) -> Option<Vec<usize>> {
    let mut seen = vec![false; width];
    exprs
        .iter()
        .map(|e| match e {
            Expr::Column(c) if *c < width && !std::mem::replace(&mut seen[*c], true) => Some(*c),
            _ => None,
        })
        .collect()
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

/// Values of `table`'s columns (in column order) from a stored row under row key `key`.
pub fn row_from_stored(table: &TableDef, key: &[u8], raw: &[u8]) -> Result<Row> {
    row_from_slots(table, Some(key), raw, &slot_map(table, None))
}

/// For each stored slot, the column position it decodes into, if that column is `needed`
/// (`None`: every column).
pub fn slot_map(table: &TableDef, needed: Option<&[bool]>) -> Vec<Option<usize>> {
    let slots = table
        .columns
        .iter()
        .map(|c| c.slot as usize + 1)
        .max()
        .unwrap_or(0);
    let mut map = vec![None; slots];
    for (i, c) in table.columns.iter().enumerate() {
        if needed.is_none_or(|n| n.get(i).copied().unwrap_or(true)) {
            map[c.slot as usize] = Some(i);
        }
    }
    map
}

/// Decodes a stored row through a [`slot_map`]: columns not in the map are NULL. `key` is the
/// row's key, needed for the primary-key columns the row keeps there; callers without it
/// ([`slots_need_key`] false) pass `None`.
pub fn row_from_slots(
    table: &TableDef,
    key: Option<&[u8]>,
    raw: &[u8],
    slots: &[Option<usize>],
) -> Result<Row> {
    let mut row = Value::nulls(table.columns.len());
    let pk = key.map(encoding::row_key_pk).transpose()?;
    encoding::decode_row_into(raw, table.row_format, slots, &mut row, pk)?;
    Ok(row)
}

/// True if decoding `table`'s rows through `slots` may need the row key: a primary-key column
/// that rows keep in their key is among the wanted ones.
pub fn slots_need_key(table: &TableDef, slots: &[Option<usize>]) -> bool {
    crate::write::pk_in_key(table)
        .iter()
        .enumerate()
        .any(|(slot, k)| k.is_some() && slots.get(slot).copied().flatten().is_some())
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
    encoding::encode_key_value(&v, table.key_format, &mut k);
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
    needed: Option<&[bool]>,
    ctx: &'a Ctx<'a>,
) -> Result<RowIter<'a>> {
    let slots = slot_map(table, needed);
    // Scans of the row keys themselves need no keys: the store decodes values in place, and
    // the key only if a wanted primary-key column is kept in it (into one reused buffer).
    if let Some(bounds) = row_key_bounds(table, access, ctx)? {
        let Some((start, end)) = bounds else {
            return Ok(Box::new(std::iter::empty()));
        };
        let need_key = slots_need_key(table, &slots);
        let mut key = Vec::new();
        let decode = Box::new(move |k: nq_storage::mvcc::ScanKey<'_>, raw: &[u8]| {
            if need_key {
                k.decode_into(&mut key)?;
                row_from_slots(table, Some(&key), raw, &slots)
            } else {
                row_from_slots(table, None, raw, &slots)
            }
        });
        let rows = ctx.txn.scan_values(&start, end.as_deref(), decode)?;
        return Ok(Box::new(rows.map(move |r| {
            ctx.check()?;
            r
        })));
    }
    let rows = scan_keyed_with(table, access, Rc::new(slots), false, ctx)?;
    Ok(Box::new(rows.map(|r| r.map(|(_, row)| row))))
}

/// The row-key range a full or primary-key range scan reads: `None` for other access paths,
/// `Some(None)` for a range no row can be in.
#[allow(clippy::type_complexity)]
fn row_key_bounds(
    table: &TableDef,
    access: &Access,
    ctx: &Ctx<'_>,
) -> Result<Option<Option<(Vec<u8>, Option<Vec<u8>>)>>> {
    let row_prefix = encoding::row_prefix(table.id);
    Ok(match access {
        Access::Full => Some(Some((row_prefix.clone(), prefix_end(&row_prefix)))),
        Access::PkRange(range) => {
            let col = table.pk_indices()[0];
            Some(range_keys(&row_prefix, table, col, range, ctx)?)
        }
        _ => None,
    })
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
    scan_keyed_with(table, access, Rc::new(slot_map(table, None)), true, ctx)
}

/// Like [`scan_keyed`], decoding only the columns `slots` maps (see [`slot_map`]). Without
/// `keyed`, rows found through an index come with empty keys (callers that drop the keys
/// spare an allocation per row).
fn scan_keyed_with<'a>(
    table: &'a TableDef,
    access: &'a Access,
    slots: Rc<Vec<Option<usize>>>,
    keyed: bool,
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
    let rows = scan_access(table, access, slots, keyed, ctx)?;
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
    slots: Rc<Vec<Option<usize>>>,
    keyed: bool,
    ctx: &'a Ctx<'a>,
) -> Result<KeyedIter<'a>> {
    let row_prefix = encoding::row_prefix(table.id);
    let decode = {
        let slots = Rc::clone(&slots);
        move |r: Result<(Vec<u8>, Vec<u8>)>| {
            r.and_then(|(k, v)| {
                let row = row_from_slots(table, Some(&k), &v, &slots)?;
                Ok((k, row))
            })
        }
    };
    Ok(match access {
        Access::Full | Access::PkRange(_) => match row_key_bounds(table, access, ctx)? {
            Some(Some((start, end))) => Box::new(ctx.txn.scan(&start, end.as_deref())?.map(decode)),
            _ => Box::new(std::iter::empty()),
        },
        Access::PkPoint(values) => {
            let mut key = row_prefix;
            if !append_point_key(table, &table.pk_indices(), values, ctx, &mut key)? {
                return Ok(Box::new(std::iter::empty()));
            }
            match ctx.txn.get(&key)? {
                Some(raw) => Box::new(std::iter::once(
                    row_from_slots(table, Some(&key), &raw, &slots).map(|r| (key, r)),
                )),
                None => Box::new(std::iter::empty()),
            }
        }
        Access::IndexPoint {
            index,
            values,
            covering,
            ..
        } => {
            let def = index_def(table, *index)?;
            let mut prefix = encoding::index_prefix(table.id, *index);
            if !append_point_key(table, &table.index_columns(def), values, ctx, &mut prefix)? {
                return Ok(Box::new(std::iter::empty()));
            }
            let end = prefix_end(&prefix);
            if *covering {
                let entries = ctx.txn.scan(&prefix, end.as_deref())?;
                index_only_rows(table, def, entries, &slots)
            } else {
                index_rows(table, &prefix, end.as_deref(), slots, keyed, ctx)?
            }
        }
        Access::IndexRange {
            index,
            range,
            covering,
            ..
        } => {
            let def = index_def(table, *index)?;
            let col = table.index_columns(def)[0];
            let prefix = encoding::index_prefix(table.id, *index);
            match range_keys(&prefix, table, col, range, ctx)? {
                Some((start, end)) => {
                    if *covering {
                        let entries = ctx.txn.scan(&start, end.as_deref())?;
                        index_only_rows(table, def, entries, &slots)
                    } else {
                        index_rows(table, &start, end.as_deref(), slots, keyed, ctx)?
                    }
                }
                None => Box::new(std::iter::empty()),
            }
        }
    })
}

/// The index `id` of `table`.
fn index_def(table: &TableDef, id: u32) -> Result<&crate::catalog::IndexDef> {
    table
        .indexes
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| SqlError::UnknownIndex(id.to_string()))
}

/// Appends the key encoding of `values` (evaluated now) for columns `cols` to `key`. Returns
/// false if the lookup can match nothing: a value is NULL, or one the column cannot hold.
fn append_point_key(
    table: &TableDef,
    cols: &[usize],
    values: &[Expr],
    ctx: &Ctx<'_>,
    key: &mut Vec<u8>,
) -> Result<bool> {
    for (e, &col) in values.iter().zip(cols) {
        let v = eval(e, &[], ctx)?;
        if v.is_null() {
            return Ok(false);
        }
        match bound_key(table, col, &v)? {
            Some(k) => key.extend(k),
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// Follows index entries (whose value is the row key suffix) to their rows, in index order.
/// The rows are fetched in batches with one [`KvTxn::multi_get`](crate::kv::KvTxn::multi_get)
/// each; batches start small (a `LIMIT` may need only a few rows) and double up to
/// [`INDEX_BATCH_MAX`].
fn index_rows<'a>(
    table: &'a TableDef,
    start: &[u8],
    end: Option<&[u8]>,
    slots: Rc<Vec<Option<usize>>>,
    keyed: bool,
    ctx: &'a Ctx<'a>,
) -> Result<KeyedIter<'a>> {
    // The index entries are read where they lie: each appends its row key to `found`, so an
    // entry costs no allocation of its own.
    let found = Rc::new(RefCell::new(RowKeys::default()));
    let row_prefix = encoding::row_prefix(table.id);
    let sink = Rc::clone(&found);
    let entries = ctx.txn.scan_values(
        start,
        end,
        Box::new(move |_, pk: &[u8]| {
            sink.borrow_mut().push(&row_prefix, pk);
            Ok(Vec::new())
        }),
    )?;
    Ok(Box::new(IndexRows {
        table,
        entries,
        found,
        slots,
        ctx,
        keyed,
        batch: INDEX_BATCH_MIN,
        ready: std::collections::VecDeque::new(),
        done: false,
    }))
}

/// Row keys one after another in one buffer.
#[derive(Default)]
struct RowKeys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl RowKeys {
    fn push(&mut self, prefix: &[u8], suffix: &[u8]) {
        self.bytes.extend_from_slice(prefix);
        self.bytes.extend_from_slice(suffix);
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// First and largest batch of row keys [`index_rows`] fetches at once.
const INDEX_BATCH_MIN: usize = 16;
const INDEX_BATCH_MAX: usize = 1024;

struct IndexRows<'a> {
    table: &'a TableDef,
    /// The index entries; reading one appends its row key to `found`.
    entries: RowIter<'a>,
    found: Rc<RefCell<RowKeys>>,
    slots: Rc<Vec<Option<usize>>>,
    ctx: &'a Ctx<'a>,
    /// Whether rows are yielded with their keys (else with empty ones).
    keyed: bool,
    batch: usize,
    /// Fetched rows not yet yielded, with their keys.
    ready: std::collections::VecDeque<(Vec<u8>, Result<Row>)>,
    done: bool,
}

impl IndexRows<'_> {
    /// Reads the next batch of index entries and fetches their rows into `ready`.
    fn fill(&mut self) -> Result<()> {
        self.found.borrow_mut().clear();
        let mut n = 0;
        while n < self.batch {
            match self.entries.next() {
                Some(entry) => {
                    entry?;
                    n += 1;
                }
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        self.batch = (self.batch * 2).min(INDEX_BATCH_MAX);
        let found = self.found.borrow();
        if found.len() == 0 {
            return Ok(());
        }
        let keys: Vec<&[u8]> = (0..found.len()).map(|i| found.get(i)).collect();
        // Rows are decoded where they lie, in key order; `ready` keeps index order.
        let mut rows: Vec<Option<Result<Row>>> = Vec::new();
        rows.resize_with(keys.len(), || None);
        let (table, slots) = (self.table, &self.slots);
        self.ctx.txn.multi_get_with(&keys, &mut |i, raw| {
            rows[i] = Some(row_from_slots(table, Some(keys[i]), raw, slots));
        })?;
        for (key, row) in keys.into_iter().zip(rows) {
            let Some(row) = row else {
                return Err(SqlError::Storage(nq_storage::StorageError::Integrity(
                    format!(
                        "index entry of table {:?} points at a missing row",
                        self.table.name
                    ),
                )));
            };
            let key = if self.keyed { key.to_vec() } else { Vec::new() };
            self.ready.push_back((key, row));
        }
        Ok(())
    }
}

impl Iterator for IndexRows<'_> {
    type Item = Result<(Vec<u8>, Row)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() {
            if self.done {
                return None;
            }
            if let Err(err) = self.fill() {
                self.done = true;
                self.ready.clear();
                return Some(Err(err));
            }
        }
        let (key, row) = self.ready.pop_front()?;
        Some(row.map(|row| (key, row)))
    }
}

/// Index-only scan: rows made from the index entries alone. An entry's key holds the index
/// columns after the index prefix and its value the primary key, so every column in either
/// can be produced without reading the row. Only columns `slots` maps are filled; the planner
/// marks a scan covering only when that is all the query reads.
fn index_only_rows<'a>(
    table: &'a TableDef,
    index: &crate::catalog::IndexDef,
    entries: crate::kv::KvIter<'a>,
    slots: &[Option<usize>],
) -> KeyedIter<'a> {
    let wanted = |c: usize| slots.contains(&Some(c));
    let index_cols: Vec<(usize, bool)> = table
        .index_columns(index)
        .into_iter()
        .map(|c| (c, wanted(c)))
        .collect();
    let pk_cols: Vec<(usize, bool)> = table
        .pk_indices()
        .into_iter()
        .map(|c| (c, wanted(c)))
        .collect();
    let width = table.columns.len();
    let skip = encoding::index_prefix(table.id, index.id).len();
    let row_prefix = encoding::row_prefix(table.id);
    Box::new(entries.map(move |e| {
        let (k, pk) = e?;
        let mut row = Value::nulls(width);
        let mut rest = &k[skip..];
        for &(c, want) in &index_cols {
            let v = encoding::decode_key_value(&mut rest)?;
            if want {
                row[c] = v;
            }
        }
        let mut rest = pk.as_slice();
        for &(c, want) in &pk_cols {
            let v = encoding::decode_key_value(&mut rest)?;
            if want {
                row[c] = v;
            }
        }
        let mut key = Vec::with_capacity(row_prefix.len() + pk.len());
        key.extend_from_slice(&row_prefix);
        key.extend_from_slice(&pk);
        Ok((key, row))
    }))
}

/// Encodes a table row's primary key (or its row id).
pub fn pk_key(table: &TableDef, row: &[Value], rowid: Option<i64>) -> Vec<u8> {
    let mut key = encoding::row_prefix(table.id);
    if table.primary_key.is_empty() {
        encoding::encode_key_value(
            &Value::Int(rowid.expect("row-id tables pass a row id")),
            table.key_format,
            &mut key,
        );
    } else {
        let vals: Vec<Value> = table.pk_indices().iter().map(|&i| row[i].clone()).collect();
        encode_key(&vals, table.key_format, &mut key);
    }
    key
}

/// A running SUM: integers add up exactly in an `i128` (no DECIMAL arithmetic per row, and
/// no overflow short of 2^64 rows), other numbers (DECIMAL, floats) through SQL addition.
/// Integer sums come out as DECIMAL, as in PostgreSQL.
#[derive(Clone)]
struct SumState {
    ints: i128,
    any_int: bool,
    other: Value,
}

impl SumState {
    fn new() -> SumState {
        SumState {
            ints: 0,
            any_int: false,
            other: Value::Null,
        }
    }

    fn add(&mut self, v: &Value) -> Result<()> {
        match v {
            Value::Int(i) => {
                self.ints += i128::from(*i);
                self.any_int = true;
            }
            other if self.other.is_null() => self.other = other.clone(),
            other => self.other = crate::arith::add(&self.other, other)?,
        }
        Ok(())
    }

    /// The sum, NULL if nothing was added.
    fn finish(self) -> Result<Value> {
        if !self.any_int {
            return Ok(self.other);
        }
        let ints = rust_decimal::Decimal::try_from_i128_with_scale(self.ints, 0)
            .map(Value::Decimal)
            .map_err(|_| SqlError::Overflow("sum out of range for DECIMAL".into()))?;
        if self.other.is_null() {
            Ok(ints)
        } else {
            crate::arith::add(&self.other, &ints)
        }
    }
}

/// State of one aggregate over one group.
#[derive(Clone)]
enum Acc {
    Count(i64),
    Sum(SumState),
    Avg(SumState, i64),
    MinMax(Value),
}

fn new_acc(call: &AggCall) -> Acc {
    match call.func {
        AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
        AggFunc::Sum => Acc::Sum(SumState::new()),
        AggFunc::Avg => Acc::Avg(SumState::new(), 0),
        AggFunc::Min | AggFunc::Max => Acc::MinMax(Value::Null),
    }
}

/// Adds `v` to `acc`. Takes the value by reference: an aggregate over a plain column (the
/// common case) reads it in the row, and only MIN/MAX keep a copy.
fn feed(acc: &mut Acc, call: &AggCall, v: &Value) -> Result<()> {
    if call.func != AggFunc::CountStar && v.is_null() {
        return Ok(());
    }
    match acc {
        Acc::Count(n) => *n += 1,
        Acc::Sum(s) => s.add(v)?,
        Acc::Avg(s, n) => {
            s.add(v)?;
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
                *m = v.clone();
            }
        }
    }
    Ok(())
}

fn finish(acc: Acc) -> Result<Value> {
    Ok(match acc {
        Acc::Count(n) => Value::Int(n),
        Acc::Sum(s) => s.finish()?,
        Acc::Avg(s, n) => {
            if n == 0 {
                Value::Null
            } else {
                crate::arith::div(
                    &s.finish()?,
                    &Value::Decimal(rust_decimal::Decimal::from(n)),
                )?
            }
        }
        Acc::MinMax(m) => m,
    })
}

/// Appends the grouping key of `v` (see [`Value::group_key`]) to `out`; integers, the common
/// case, skip the DECIMAL normalisation `group_key` does (an integer's is already normal).
pub fn hash_key(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(i) => {
            out.push(2);
            let flags: u32 = if *i < 0 { 0x8000_0000 } else { 0 };
            let magnitude = i.unsigned_abs();
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&(magnitude as u32).to_le_bytes());
            out.extend_from_slice(&((magnitude >> 32) as u32).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        other => other.group_key(out),
    }
}

/// Evaluates `e` over `row` and hands the value to `f`, without copying a plain column.
fn with_value<T>(e: &Expr, row: &[Value], ctx: &Ctx<'_>, f: impl FnOnce(&Value) -> T) -> Result<T> {
    match e {
        Expr::Column(i) => Ok(f(&row[*i])),
        other => Ok(f(&eval(other, row, ctx)?)),
    }
}

/// Builds the hash key of `exprs` over `row` into `out` (cleared first). False if a value is
/// NULL (a NULL join key matches nothing).
fn join_key(exprs: &[&Expr], row: &[Value], ctx: &Ctx<'_>, out: &mut Vec<u8>) -> Result<bool> {
    out.clear();
    for e in exprs {
        let null = with_value(e, row, ctx, |v| {
            hash_key(v, out);
            v.is_null()
        })?;
        if null {
            return Ok(false);
        }
    }
    Ok(true)
}

fn aggregate(input: &Plan, groups: &[Expr], aggs: &[AggCall], ctx: &Ctx<'_>) -> Result<Vec<Row>> {
    struct Group {
        values: Row,
        accs: Vec<Acc>,
        seen: Vec<HashSet<Vec<u8>>>,
    }
    let mut table: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
    let mut out: Vec<Group> = Vec::new();
    let mut key = Vec::new();
    for r in open(input, ctx)? {
        let row = r?;
        key.clear();
        for g in groups {
            with_value(g, &row, ctx, |v| hash_key(v, &mut key))?;
        }
        // Without GROUP BY every row feeds the one group.
        let known = if groups.is_empty() {
            (!out.is_empty()).then_some(0)
        } else {
            table.get(key.as_slice()).copied()
        };
        let idx = match known {
            Some(i) => i,
            None => {
                let values = groups
                    .iter()
                    .map(|g| eval(g, &row, ctx))
                    .collect::<Result<Row>>()?;
                ctx.charge(
                    key.len() + row_bytes(&values) + 64 * aggs.len(),
                    "Aggregate",
                )?;
                out.push(Group {
                    values,
                    accs: aggs.iter().map(new_acc).collect(),
                    seen: aggs.iter().map(|_| HashSet::new()).collect(),
                });
                table.insert(key.clone(), out.len() - 1);
                out.len() - 1
            }
        };
        let g = &mut out[idx];
        for (j, call) in aggs.iter().enumerate() {
            let acc = &mut g.accs[j];
            let Some(arg) = &call.arg else {
                feed(acc, call, &Value::Null)?;
                continue;
            };
            if !call.distinct {
                with_value(arg, &row, ctx, |v| feed(acc, call, v))??;
                continue;
            }
            let v = eval(arg, &row, ctx)?;
            if !v.is_null() {
                let mut k = Vec::new();
                v.group_key(&mut k);
                if !g.seen[j].insert(k) {
                    continue;
                }
            }
            feed(acc, call, &v)?;
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
            for acc in g.accs {
                row.push(finish(acc)?);
            }
            Ok(row)
        })
        .collect()
}

/// One candidate pair of a join: the concatenation of `left` and `right` if it satisfies
/// `condition`, after checking for cancellation and the statement timeout.
fn joined_if(
    left: &[Value],
    right: &[Value],
    condition: Option<&Expr>,
    ctx: &Ctx<'_>,
) -> Result<Option<Row>> {
    ctx.check()?;
    let mut joined = Vec::with_capacity(left.len() + right.len());
    joined.extend_from_slice(left);
    joined.extend_from_slice(right);
    match condition {
        Some(c) if !holds(c, &joined, ctx)? => Ok(None),
        _ => Ok(Some(joined)),
    }
}

/// The hash join's table: the first build row of each key. While every key is one
/// integer-valued number (the usual foreign-key join) the keys are kept as `i64`s, so an entry
/// has no heap key and a probe hashes eight bytes instead of a seventeen-byte key; the first
/// other key turns the table into one over the key bytes. Both answer exactly as a table over
/// the key bytes would: [`int_of_key`] is the inverse of [`hash_key`] on integers.
enum JoinHeads {
    Ints(FxHashMap<i64, u32>),
    Bytes(FxHashMap<Vec<u8>, u32>),
}

impl JoinHeads {
    /// Makes `row` the first row of `key`, returning the previous first row.
    fn insert(&mut self, key: &[u8], row: u32) -> Option<u32> {
        if let JoinHeads::Ints(ints) = self {
            match int_of_key(key) {
                Some(i) => return ints.insert(i, row),
                None => {
                    let bytes = ints
                        .drain()
                        .map(|(i, r)| {
                            let mut k = Vec::new();
                            hash_key(&Value::Int(i), &mut k);
                            (k, r)
                        })
                        .collect();
                    *self = JoinHeads::Bytes(bytes);
                }
            }
        }
        match self {
            JoinHeads::Bytes(bytes) => bytes.insert(key.to_vec(), row),
            JoinHeads::Ints(_) => unreachable!("converted above"),
        }
    }

    /// The first row of `key`, or [`NO_ROW`].
    fn get(&self, key: &[u8]) -> u32 {
        let found = match self {
            JoinHeads::Ints(ints) => int_of_key(key).and_then(|i| ints.get(&i)),
            JoinHeads::Bytes(bytes) => bytes.get(key),
        };
        found.copied().unwrap_or(NO_ROW)
    }
}

/// The integer whose [`hash_key`] is `key`, if there is one: a single number with no scale
/// and a magnitude that fits an `i64`.
fn int_of_key(key: &[u8]) -> Option<i64> {
    let key: &[u8; 17] = key.try_into().ok()?;
    let word = |at: usize| u32::from_le_bytes([key[at], key[at + 1], key[at + 2], key[at + 3]]);
    if key[0] != 2 || word(13) != 0 {
        return None;
    }
    let magnitude = u64::from(word(5)) | (u64::from(word(9)) << 32);
    match word(1) {
        0 => i64::try_from(magnitude).ok(),
        0x8000_0000 if magnitude != 0 => 0i64.checked_sub_unsigned(magnitude),
        _ => None,
    }
}

/// End of a hash chain.
const NO_ROW: u32 = u32::MAX;

/// A hash join (a nested loop without keys), streaming the left input through a table built
/// over the right one. Rows of a key are chained through `next` in build order.
struct HashJoin<'a> {
    left: RowIter<'a>,
    right: Vec<Row>,
    /// First right row of each key.
    heads: JoinHeads,
    /// Next right row with the same key.
    next: Vec<u32>,
    left_keys: Vec<&'a Expr>,
    nested_loop: bool,
    condition: Option<&'a Expr>,
    kind: JoinKind,
    ctx: &'a Ctx<'a>,
    /// Right rows that found a partner (RIGHT and FULL joins).
    matched: Vec<bool>,
    left_width: usize,
    right_width: usize,
    /// The left row being joined, the next candidate and whether it matched yet.
    current: Option<(Row, u32, bool)>,
    left_done: bool,
    /// Next right row to consider for the unmatched tail of RIGHT and FULL joins.
    tail: usize,
    key: Vec<u8>,
}

impl Iterator for HashJoin<'_> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        loop {
            if let Some((lrow, cursor, found)) = &mut self.current {
                while *cursor != NO_ROW {
                    let i = *cursor as usize;
                    *cursor = if self.nested_loop {
                        if i + 1 < self.right.len() {
                            (i + 1) as u32
                        } else {
                            NO_ROW
                        }
                    } else {
                        self.next[i]
                    };
                    let joined = match joined_if(lrow, &self.right[i], self.condition, self.ctx) {
                        Ok(joined) => joined,
                        Err(e) => return Some(Err(e)),
                    };
                    if let Some(joined) = joined {
                        *found = true;
                        if let Some(m) = self.matched.get_mut(i) {
                            *m = true;
                        }
                        return Some(Ok(joined));
                    }
                }
                let (lrow, _, found) = self.current.take().expect("current row");
                if !found && matches!(self.kind, JoinKind::Left | JoinKind::Full) {
                    let mut joined = lrow;
                    joined.extend(std::iter::repeat_n(Value::Null, self.right_width));
                    return Some(Ok(joined));
                }
                continue;
            }
            if !self.left_done {
                match self.left.next() {
                    None => self.left_done = true,
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(lrow)) => {
                        let first = if self.nested_loop {
                            if self.right.is_empty() { NO_ROW } else { 0 }
                        } else {
                            match join_key(&self.left_keys, &lrow, self.ctx, &mut self.key) {
                                Ok(true) => self.heads.get(&self.key),
                                Ok(false) => NO_ROW,
                                Err(e) => return Some(Err(e)),
                            }
                        };
                        self.current = Some((lrow, first, false));
                    }
                }
                continue;
            }
            while self.tail < self.matched.len() {
                let i = self.tail;
                self.tail += 1;
                if !self.matched[i] {
                    let mut joined = Value::nulls(self.left_width);
                    joined.extend_from_slice(&self.right[i]);
                    return Some(Ok(joined));
                }
            }
            return None;
        }
    }
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
    if right_rows.len() >= NO_ROW as usize {
        return Err(SqlError::Unsupported(
            "a hash join build side of 2^32 rows or more".into(),
        ));
    }
    // Rows with a NULL key never match and are left out of the table. Building from the last
    // row to the first makes each chain run in build order.
    let right_keys: Vec<&Expr> = keys.iter().map(|(_, r)| r).collect();
    let mut heads = JoinHeads::Ints(FxHashMap::default());
    let mut next = Vec::new();
    if !keys.is_empty() {
        next = vec![NO_ROW; right_rows.len()];
        let mut key = Vec::new();
        for (i, row) in right_rows.iter().enumerate().rev() {
            if !join_key(&right_keys, row, ctx, &mut key)? {
                continue;
            }
            if let Some(previous) = heads.insert(&key, i as u32) {
                next[i] = previous;
            }
        }
    }
    let matched = if matches!(kind, JoinKind::Right | JoinKind::Full) {
        vec![false; right_rows.len()]
    } else {
        Vec::new()
    };
    Ok(Box::new(HashJoin {
        left: open(left, ctx)?,
        right: right_rows,
        heads,
        next,
        left_keys: keys.iter().map(|(l, _)| l).collect(),
        nested_loop: keys.is_empty(),
        condition,
        kind,
        ctx,
        matched,
        left_width: left.width(),
        right_width: right.width(),
        current: None,
        left_done: false,
        tail: 0,
        key: Vec::new(),
    }))
}

/// Compares join key values of inputs sorted by [`Value::total_cmp`].
fn cmp_key_values(a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = x.total_cmp(y);
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

/// A merge join of inputs sorted ascending on their keys (NULLs first): one pass over each,
/// holding only the right rows of the current key. INNER and LEFT.
struct MergeJoin<'a> {
    left: RowIter<'a>,
    right: std::iter::Peekable<RowIter<'a>>,
    left_keys: Vec<&'a Expr>,
    right_keys: Vec<&'a Expr>,
    condition: Option<&'a Expr>,
    kind: JoinKind,
    ctx: &'a Ctx<'a>,
    right_width: usize,
    /// The right rows of the key last matched, with that key.
    group: Vec<Row>,
    group_key: Option<Vec<Value>>,
    /// The left row being joined, the next group row to try and whether it matched yet.
    current: Option<(Row, usize, bool)>,
}

fn keys_of(exprs: &[&Expr], row: &[Value], ctx: &Ctx<'_>) -> Result<Vec<Value>> {
    exprs.iter().map(|e| eval(e, row, ctx)).collect()
}

impl MergeJoin<'_> {
    /// Makes `group` the right rows whose key equals `key` (empty if none), reading past
    /// smaller keys. The right input only moves forward, as the left keys only grow.
    fn seek(&mut self, key: &[Value]) -> Result<()> {
        if self.group_key.as_deref() == Some(key) {
            return Ok(());
        }
        if let Some(g) = &self.group_key
            && cmp_key_values(g, key) == std::cmp::Ordering::Greater
        {
            return Err(SqlError::Invalid(
                "merge join input is not sorted on its keys".into(),
            ));
        }
        self.group.clear();
        self.group_key = Some(key.to_vec());
        loop {
            let Some(peeked) = self.right.peek() else {
                return Ok(());
            };
            let Ok(row) = peeked else {
                return Err(self.right.next().expect("peeked").expect_err("error"));
            };
            let rk = keys_of(&self.right_keys, row, self.ctx)?;
            match cmp_key_values(&rk, key) {
                std::cmp::Ordering::Less => {
                    self.right.next();
                }
                std::cmp::Ordering::Equal => {
                    let row = self.right.next().expect("peeked")?;
                    self.ctx.charge(row_bytes(&row) + 16, "Merge Join")?;
                    self.group.push(row);
                }
                std::cmp::Ordering::Greater => return Ok(()),
            }
        }
    }
}

impl Iterator for MergeJoin<'_> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        loop {
            if let Some((lrow, at, found)) = &mut self.current {
                while *at < self.group.len() {
                    let i = *at;
                    *at += 1;
                    let joined = match joined_if(lrow, &self.group[i], self.condition, self.ctx) {
                        Ok(joined) => joined,
                        Err(e) => return Some(Err(e)),
                    };
                    if let Some(joined) = joined {
                        *found = true;
                        return Some(Ok(joined));
                    }
                }
                let (lrow, _, found) = self.current.take().expect("current row");
                if !found && self.kind == JoinKind::Left {
                    let mut joined = lrow;
                    joined.extend(std::iter::repeat_n(Value::Null, self.right_width));
                    return Some(Ok(joined));
                }
                continue;
            }
            let lrow = match self.left.next()? {
                Ok(row) => row,
                Err(e) => return Some(Err(e)),
            };
            let key = match keys_of(&self.left_keys, &lrow, self.ctx) {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            if key.iter().any(Value::is_null) {
                // A NULL key matches nothing; the right input stays where it is.
                self.current = Some((lrow, usize::MAX, false));
                continue;
            }
            if let Err(e) = self.seek(&key) {
                return Some(Err(e));
            }
            self.current = Some((lrow, 0, false));
        }
    }
}

fn merge_join<'a>(
    left: &'a Plan,
    right: &'a Plan,
    kind: JoinKind,
    keys: &'a [(Expr, Expr)],
    condition: Option<&'a Expr>,
    ctx: &'a Ctx<'a>,
) -> Result<RowIter<'a>> {
    if !matches!(kind, JoinKind::Inner | JoinKind::Left) || keys.is_empty() {
        return Err(SqlError::Invalid(
            "merge join needs keys and an INNER or LEFT join".into(),
        ));
    }
    Ok(Box::new(MergeJoin {
        left: open(left, ctx)?,
        right: open(right, ctx)?.peekable(),
        left_keys: keys.iter().map(|(l, _)| l).collect(),
        right_keys: keys.iter().map(|(_, r)| r).collect(),
        condition,
        kind,
        ctx,
        right_width: right.width(),
        group: Vec::new(),
        group_key: None,
        current: None,
    }))
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
    slots: &Rc<Vec<Option<usize>>>,
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
                covering: false,
            },
        };
        let matches: Vec<(Vec<u8>, Row)> =
            scan_keyed_with(table, &access, Rc::clone(slots), false, ctx)?
                .collect::<Result<_>>()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::OutColumn;
    use crate::types::DataType;
    use proptest::prelude::*;

    fn values(rows: &[(Option<i64>, i64)], table: &str) -> Plan {
        Plan::Values {
            rows: rows
                .iter()
                .map(|(k, v)| {
                    vec![
                        Expr::Literal(k.map_or(Value::Null, Value::Int)),
                        Expr::Literal(Value::Int(*v)),
                    ]
                })
                .collect(),
            columns: ["k", "v"]
                .iter()
                .map(|n| OutColumn {
                    table: Some(table.into()),
                    name: (*n).into(),
                    data_type: DataType::BigInt,
                })
                .collect(),
        }
    }

    fn run(
        left: &[(Option<i64>, i64)],
        right: &[(Option<i64>, i64)],
        kind: JoinKind,
        algorithm: JoinAlgorithm,
        condition: Option<Expr>,
    ) -> Vec<Row> {
        let plan = Plan::Join {
            left: Box::new(values(left, "l")),
            right: Box::new(values(right, "r")),
            kind,
            keys: vec![(Expr::Column(0), Expr::Column(0))],
            condition,
            algorithm,
        };
        let txn = crate::bind::tests_no_txn();
        let ctx = Ctx::new(&txn, &[]);
        let mut rows = open(&plan, &ctx)
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap();
        rows.sort_by(|a, b| cmp_key_values(a, b));
        rows
    }

    fn sorted_input() -> impl Strategy<Value = Vec<(Option<i64>, i64)>> {
        proptest::collection::vec((proptest::option::of(0i64..6), 0i64..100), 0..12).prop_map(
            |mut rows| {
                rows.sort_by(|a, b| {
                    let key = |k: &Option<i64>| k.map_or(Value::Null, Value::Int);
                    key(&a.0).total_cmp(&key(&b.0))
                });
                rows
            },
        )
    }

    proptest! {
        #[test]
        fn test_merge_join_matches_hash_join(
            left in sorted_input(),
            right in sorted_input(),
            left_join in any::<bool>(),
            with_condition in any::<bool>(),
        ) {
            let kind = if left_join { JoinKind::Left } else { JoinKind::Inner };
            // l.v < r.v + 50 over the joined row (l.k, l.v, r.k, r.v).
            let condition = with_condition.then(|| Expr::Binary(
                BinOp::Lt,
                Box::new(Expr::Column(1)),
                Box::new(Expr::Binary(BinOp::Add, Box::new(Expr::Column(3)), Box::new(Expr::lit(Value::Int(50))))),
            ));
            let hash = run(&left, &right, kind, JoinAlgorithm::Hash, condition.clone());
            let merge = run(&left, &right, kind, JoinAlgorithm::Merge, condition);
            prop_assert_eq!(merge, hash);
        }
    }

    /// Integers at the edges of the key encoding's words and signs.
    const EDGE_INTS: [i64; 10] = [
        0,
        1,
        -1,
        42,
        -42,
        i64::MAX,
        i64::MIN,
        1 << 32,
        -(1 << 32),
        4_294_967_295,
    ];

    fn key_of(v: &Value) -> Vec<u8> {
        let mut k = Vec::new();
        hash_key(v, &mut k);
        k
    }

    #[test]
    fn test_int_of_key_inverts_hash_key_on_integers_only() {
        for i in EDGE_INTS {
            assert_eq!(int_of_key(&key_of(&Value::Int(i))), Some(i), "{i}");
        }
        // An integral DECIMAL has the integer's key (and matches it in a join); a fraction, a
        // too-large magnitude, text and composite keys have none.
        let seven = Value::Decimal(rust_decimal::Decimal::from(7));
        assert_eq!(int_of_key(&key_of(&seven)), Some(7));
        for v in [
            Value::Decimal(rust_decimal::Decimal::new(15, 1)),
            Value::Decimal(rust_decimal::Decimal::from(u64::MAX)),
            Value::Text("7".into()),
            Value::Float(7.5),
        ] {
            assert_eq!(int_of_key(&key_of(&v)), None, "{v:?}");
        }
        let mut two = Vec::new();
        hash_key(&Value::Int(1), &mut two);
        hash_key(&Value::Int(2), &mut two);
        assert_eq!(int_of_key(&two), None);
    }

    #[test]
    fn test_join_heads_switch_to_bytes_and_keep_every_entry() {
        let key = |v: Value| key_of(&v);
        let mut heads = JoinHeads::Ints(FxHashMap::default());
        assert_eq!(heads.insert(&key(Value::Int(5)), 0), None);
        assert_eq!(heads.insert(&key(Value::Int(5)), 1), Some(0));
        assert!(matches!(heads, JoinHeads::Ints(_)));
        assert_eq!(heads.insert(&key(Value::Text("x".into())), 2), None);
        assert!(matches!(heads, JoinHeads::Bytes(_)));
        assert_eq!(heads.get(&key(Value::Int(5))), 1);
        assert_eq!(heads.get(&key(Value::Text("x".into()))), 2);
        assert_eq!(heads.get(&key(Value::Int(6))), NO_ROW);
    }

    #[test]
    fn test_hash_key_of_integers_is_their_group_key() {
        for i in EDGE_INTS {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            hash_key(&Value::Int(i), &mut fast);
            Value::Int(i).group_key(&mut slow);
            assert_eq!(fast, slow, "{i}");
        }
    }

    #[test]
    fn test_integer_sums_are_exact_decimals() {
        let mut s = SumState::new();
        for _ in 0..4 {
            s.add(&Value::Int(i64::MAX)).unwrap();
        }
        let expected = rust_decimal::Decimal::from(i64::MAX) * rust_decimal::Decimal::from(4);
        assert_eq!(s.finish().unwrap(), Value::Decimal(expected));
        assert_eq!(SumState::new().finish().unwrap(), Value::Null);
    }
}
