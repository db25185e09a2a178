//! INSERT, UPDATE and DELETE.

use std::collections::HashMap;

use parking_lot::Mutex;
use sqlparser::ast::{self, SetExpr};

use crate::bind::{Binder, ident, object_name, push_filter};
use crate::catalog::{self, TableDef};
use crate::encoding::{self, prefix_end};
use crate::error::{Result, SqlError};
use crate::exec::{self, Ctx, Row};
use crate::expr::Expr;
use crate::kv::KvTxn;
use crate::plan::{Access, OutColumn, Plan};
use crate::types::Value;
use crate::write::{self, Checks};

/// Hidden row ids of tables without a primary key, handed out from memory so concurrent
/// inserters never conflict on a counter. The first insert after a restart finds the largest
/// id in use.
#[derive(Debug, Default)]
pub struct RowIds {
    next: Mutex<HashMap<u32, i64>>,
}

impl RowIds {
    fn next(&self, txn: &dyn KvTxn, table: &TableDef) -> Result<i64> {
        let mut next = self.next.lock();
        if let Some(n) = next.get_mut(&table.id) {
            *n += 1;
            return Ok(*n);
        }
        let prefix = encoding::row_prefix(table.id);
        let end = prefix_end(&prefix);
        let mut max = 0i64;
        for r in txn.scan(&prefix, end.as_deref())? {
            let (k, _) = r?;
            if let Value::Int(rowid) = encoding::decode_key_value(&mut &k[prefix.len()..])? {
                max = max.max(rowid);
            }
        }
        next.insert(table.id, max + 1);
        Ok(max + 1)
    }

    /// Forgets a table's counter (after DROP TABLE).
    pub fn forget(&self, table: u32) {
        self.next.lock().remove(&table);
    }
}

/// What a DML statement returns.
#[derive(Debug)]
pub struct DmlResult {
    /// Rows written.
    pub affected: u64,
    /// RETURNING rows and their columns.
    pub returning: Option<(Vec<OutColumn>, Vec<Row>)>,
}

fn defaults(binder: &mut Binder<'_>, table: &TableDef) -> Result<Vec<Option<Expr>>> {
    table
        .columns
        .iter()
        .map(|c| {
            c.default
                .as_ref()
                .map(|d| binder.table_expr(&write::parse_expr(d)?, table, &table.name))
                .transpose()
        })
        .collect()
}

/// INSERT.
pub fn insert(
    txn: &mut dyn KvTxn,
    ins: &ast::Insert,
    params: &[Value],
    rowids: &RowIds,
) -> Result<DmlResult> {
    let ast::TableObject::TableName(name) = &ins.table else {
        return Err(SqlError::Unsupported("INSERT into a table function".into()));
    };
    let table = catalog::table(txn, &object_name(name)?)?;
    let targets: Vec<usize> = if ins.columns.is_empty() {
        (0..table.columns.len()).collect()
    } else {
        ins.columns
            .iter()
            .map(|c| {
                let n = object_name(c)?;
                table.column_index(&n).ok_or(SqlError::UnknownColumn(n))
            })
            .collect::<Result<_>>()?
    };
    let Some(source) = &ins.source else {
        return Err(SqlError::Unsupported(
            "INSERT without VALUES or a query".into(),
        ));
    };
    // The source rows are computed before anything is written (INSERT ... SELECT from the same
    // table sees the table as it was).
    let mut binder = Binder::new(&*txn);
    let default_exprs = defaults(&mut binder, &table)?;
    let plan = match source.body.as_ref() {
        SetExpr::Values(v) if source.order_by.is_none() && source.limit_clause.is_none() => {
            binder.values(&*with_defaults(v, &table, &targets)?)?
        }
        _ => binder.query(source)?,
    };
    if plan.width() != targets.len() {
        return Err(SqlError::Invalid(format!(
            "INSERT has {} target columns but {} values",
            targets.len(),
            plan.width()
        )));
    }
    let on_conflict = match &ins.on {
        None => None,
        Some(ast::OnInsert::OnConflict(c)) => Some(c),
        Some(other) => return Err(SqlError::Unsupported(format!("{other}"))),
    };
    let target = match on_conflict.and_then(|c| c.conflict_target.as_ref()) {
        None => ConflictOn::Any,
        Some(t) => resolve_target(&table, t)?,
    };
    let update = match on_conflict.map(|c| &c.action) {
        Some(ast::OnConflictAction::DoUpdate(u)) => {
            // SET and WHERE see the existing row's columns and EXCLUDED (the proposed row).
            let assignments = bind_assignments(&mut binder, &table, &u.assignments, true)?;
            let filter = u
                .selection
                .as_ref()
                .map(|w| binder.on_conflict_filter(w, &table))
                .transpose()?;
            Some((assignments, filter))
        }
        _ => None,
    };
    let returning = ins
        .returning
        .as_ref()
        .map(|items| binder.returning(items, &table))
        .transpose()?;
    let checks = Checks::bind(&*txn, &table)?;
    let source_rows: Vec<Row> = {
        let ctx = Ctx::new(&*txn, params);
        exec::open(&plan, &ctx)?.collect::<Result<Vec<_>>>()?
    };
    let mut affected = 0;
    let mut out_rows = Vec::new();
    // Rows this statement inserted or updated: DO UPDATE may not touch one twice.
    let mut touched: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    for src in source_rows {
        let ctx_txn: &dyn KvTxn = &*txn;
        let ctx = Ctx::new(ctx_txn, params);
        let mut row: Row = Vec::with_capacity(table.columns.len());
        for (i, d) in default_exprs.iter().enumerate() {
            let given = targets.iter().position(|&t| t == i);
            row.push(match (given, d) {
                (Some(g), _) => src[g].clone(),
                (None, Some(d)) => exec::eval(d, &[], &ctx)?,
                (None, None) => Value::Null,
            });
        }
        write::coerce(&table, &mut row)?;
        checks.verify(&table, &row, &ctx)?;
        drop(ctx);
        let rowid = if table.primary_key.is_empty() {
            Some(rowids.next(&*txn, &table)?)
        } else {
            None
        };
        let key = exec::pk_key(&table, &row, rowid);
        let existing = if on_conflict.is_some() {
            conflicting_row(&*txn, &table, &key, &row, &target)?
        } else {
            None
        };
        let written = match (existing, &update) {
            (None, _) => {
                write::insert_row(txn, &table, &key, &row)?;
                touched.insert(key.clone());
                Some(row)
            }
            (Some(_), None) => None, // DO NOTHING
            (Some((old_key, _)), Some(_)) if touched.contains(&old_key) => {
                return Err(SqlError::Invalid(
                    "ON CONFLICT DO UPDATE command cannot affect row a second time: the proposed rows share a key"
                        .into(),
                ));
            }
            (Some((old_key, old)), Some((assignments, filter))) => {
                let ctx_txn: &dyn KvTxn = &*txn;
                let ctx = Ctx::new(ctx_txn, params);
                let mut combined = old.clone();
                combined.extend(row.iter().cloned());
                let proceed = match filter {
                    Some(f) => exec::holds(f, &combined, &ctx)?,
                    None => true,
                };
                if proceed {
                    let mut new = old.clone();
                    for (col, e) in assignments {
                        new[*col] = exec::eval(e, &combined, &ctx)?;
                    }
                    write::coerce(&table, &mut new)?;
                    checks.verify(&table, &new, &ctx)?;
                    drop(ctx);
                    let new_key = if table.primary_key.is_empty() {
                        old_key.clone()
                    } else {
                        exec::pk_key(&table, &new, None)
                    };
                    write::update_row(txn, &table, &old_key, &old, &new_key, &new)?;
                    touched.insert(new_key);
                    Some(new)
                } else {
                    None
                }
            }
        };
        if let Some(r) = written {
            affected += 1;
            if let Some((exprs, _)) = &returning {
                let ctx = Ctx::new(&*txn, params);
                out_rows.push(
                    exprs
                        .iter()
                        .map(|e| exec::eval(e, &r, &ctx))
                        .collect::<Result<Row>>()?,
                );
            }
        }
    }
    Ok(DmlResult {
        affected,
        returning: returning.map(|(_, cols)| (cols, out_rows)),
    })
}

/// Replaces the keyword DEFAULT in VALUES rows by the target column's default (or NULL).
/// Borrows the rows when none says DEFAULT (a bulk load's VALUES are large; copying them per
/// statement showed up in its profile).
fn with_defaults<'v>(
    values: &'v ast::Values,
    table: &TableDef,
    targets: &[usize],
) -> Result<std::borrow::Cow<'v, ast::Values>> {
    let is_default = |e: &ast::Expr| {
        matches!(e, ast::Expr::Identifier(id)
            if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
    };
    if !values.rows.iter().any(|row| row.iter().any(is_default)) {
        return Ok(std::borrow::Cow::Borrowed(values));
    }
    let mut out = values.clone();
    for row in &mut out.rows {
        for (i, e) in row.iter_mut().enumerate() {
            if !is_default(e) {
                continue;
            }
            let Some(&col) = targets.get(i) else {
                continue;
            };
            *e = match &table.columns[col].default {
                Some(d) => write::parse_expr(d)?,
                None => ast::Expr::Value(ast::Value::Null.into()),
            };
        }
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Which constraint an ON CONFLICT clause handles.
enum ConflictOn {
    /// No target: any primary-key or unique conflict.
    Any,
    /// The primary key.
    PrimaryKey,
    /// The unique index with this id.
    Index(u32),
}

fn resolve_target(table: &TableDef, t: &ast::ConflictTarget) -> Result<ConflictOn> {
    let none = || {
        SqlError::Invalid(
            "there is no unique or exclusion constraint matching the ON CONFLICT specification"
                .into(),
        )
    };
    match t {
        ast::ConflictTarget::Columns(cols) => {
            let mut names: Vec<String> = cols.iter().map(ident).collect();
            names.sort();
            let mut pk = table.primary_key.clone();
            pk.sort();
            if !pk.is_empty() && pk == names {
                return Ok(ConflictOn::PrimaryKey);
            }
            table
                .indexes
                .iter()
                .find(|i| {
                    let mut c = i.columns.clone();
                    c.sort();
                    i.unique && c == names
                })
                .map(|i| ConflictOn::Index(i.id))
                .ok_or_else(none)
        }
        ast::ConflictTarget::OnConstraint(name) => {
            let name = object_name(name)?;
            if name == table.primary_key_name && !table.primary_key.is_empty() {
                return Ok(ConflictOn::PrimaryKey);
            }
            table
                .indexes
                .iter()
                .find(|i| i.unique && i.name == name)
                .map(|i| ConflictOn::Index(i.id))
                .ok_or_else(none)
        }
    }
}

/// The existing row a proposed row conflicts with on the targeted constraint (same primary
/// key, or same unique index key). Conflicts on other constraints are left for the insert to
/// report.
fn conflicting_row(
    txn: &dyn KvTxn,
    table: &TableDef,
    key: &[u8],
    row: &[Value],
    target: &ConflictOn,
) -> Result<Option<(Vec<u8>, Row)>> {
    if matches!(target, ConflictOn::Any | ConflictOn::PrimaryKey)
        && let Some(raw) = txn.get(key)?
    {
        return Ok(Some((
            key.to_vec(),
            exec::row_from_stored(table, key, &raw)?,
        )));
    }
    let pk = write::pk_suffix(table, key);
    for idx in table.indexes.iter().filter(|i| {
        (i.unique && matches!(target, ConflictOn::Any))
            || matches!(target, ConflictOn::Index(id) if *id == i.id)
    }) {
        let ikey = write::index_key(table, idx, row, &pk);
        if let Some(other_pk) = txn.get(&ikey)? {
            let mut k = encoding::row_prefix(table.id);
            k.extend_from_slice(&other_pk);
            if let Some(raw) = txn.get(&k)? {
                let row = exec::row_from_stored(table, &k, &raw)?;
                return Ok(Some((k, row)));
            }
        }
    }
    Ok(None)
}

fn bind_assignments(
    binder: &mut Binder<'_>,
    table: &TableDef,
    assignments: &[ast::Assignment],
    with_excluded: bool,
) -> Result<Vec<(usize, Expr)>> {
    assignments
        .iter()
        .map(|a| {
            let col = match &a.target {
                ast::AssignmentTarget::ColumnName(n) => object_name(n)?,
                ast::AssignmentTarget::Tuple(_) => {
                    return Err(SqlError::Unsupported("tuple assignment".into()));
                }
            };
            let i = table
                .column_index(&col)
                .ok_or_else(|| SqlError::UnknownColumn(col.clone()))?;
            let e = if with_excluded {
                binder.on_conflict_filter(&a.value, table)?
            } else {
                binder.table_expr(&a.value, table, &table.name)?
            };
            Ok((i, e))
        })
        .collect()
}

/// Rows of `table` matching `selection`, with their keys, read before any write.
fn matching_rows(
    txn: &dyn KvTxn,
    table: &TableDef,
    alias: &str,
    selection: Option<&ast::Expr>,
    params: &[Value],
) -> Result<Vec<(Vec<u8>, Row)>> {
    let mut binder = Binder::new(txn);
    let filter = selection
        .map(|w| binder.table_expr(w, table, alias))
        .transpose()?;
    let scan = Plan::Scan {
        table: std::sync::Arc::new(table.clone()),
        alias: alias.to_string(),
        access: Access::Full,
        filter: None,
        columns: Vec::new(),
        needed: None,
    };
    let (access, filter) = match filter {
        Some(f) => match push_filter(scan, f) {
            Plan::Scan { access, filter, .. } => (access, filter),
            _ => unreachable!("a filter on a scan stays in the scan"),
        },
        None => (Access::Full, None),
    };
    let ctx = Ctx::new(txn, params);
    let mut out = Vec::new();
    for r in exec::scan_keyed(table, &access, &ctx)? {
        let (key, row) = r?;
        let keep = match &filter {
            Some(f) => exec::holds(f, &row, &ctx)?,
            None => true,
        };
        if keep {
            out.push((key, row));
        }
    }
    Ok(out)
}

fn single_table(t: &ast::TableWithJoins) -> Result<(String, String)> {
    if !t.joins.is_empty() {
        return Err(SqlError::Unsupported("joins in UPDATE/DELETE".into()));
    }
    match &t.relation {
        ast::TableFactor::Table { name, alias, .. } => {
            let n = object_name(name)?;
            let a = alias.as_ref().map_or(n.clone(), |a| ident(&a.name));
            Ok((n, a))
        }
        other => Err(SqlError::Unsupported(format!("UPDATE/DELETE of {other}"))),
    }
}

/// UPDATE.
pub fn update(txn: &mut dyn KvTxn, up: &ast::Update, params: &[Value]) -> Result<DmlResult> {
    if up.from.is_some() {
        return Err(SqlError::Unsupported("UPDATE ... FROM".into()));
    }
    let (name, alias) = single_table(&up.table)?;
    let table = catalog::table(&*txn, &name)?;
    let mut binder = Binder::new(&*txn);
    let assignments = bind_assignments(&mut binder, &table, &up.assignments, false)?;
    let returning = up
        .returning
        .as_ref()
        .map(|items| binder.returning(items, &table))
        .transpose()?;
    let checks = Checks::bind(&*txn, &table)?;
    let rows = matching_rows(&*txn, &table, &alias, up.selection.as_ref(), params)?;
    let affected = rows.len() as u64;
    // Every new row is computed before anything is written: SET expressions (and their
    // subqueries) see the table as the statement found it.
    let mut changes = Vec::with_capacity(rows.len());
    {
        let ctx = Ctx::new(&*txn, params);
        for (key, old) in rows {
            let mut new = old.clone();
            for (col, e) in &assignments {
                new[*col] = exec::eval(e, &old, &ctx)?;
            }
            write::coerce(&table, &mut new)?;
            checks.verify(&table, &new, &ctx)?;
            let new_key = if table.primary_key.is_empty() {
                key.clone()
            } else {
                exec::pk_key(&table, &new, None)
            };
            changes.push((key, old, new_key, new));
        }
    }
    let mut out_rows = Vec::new();
    for (key, old, new_key, new) in changes {
        write::update_row(txn, &table, &key, &old, &new_key, &new)?;
        if let Some((exprs, _)) = &returning {
            let ctx = Ctx::new(&*txn, params);
            out_rows.push(
                exprs
                    .iter()
                    .map(|e| exec::eval(e, &new, &ctx))
                    .collect::<Result<Row>>()?,
            );
        }
    }
    Ok(DmlResult {
        affected,
        returning: returning.map(|(_, cols)| (cols, out_rows)),
    })
}

/// DELETE.
pub fn delete(txn: &mut dyn KvTxn, del: &ast::Delete, params: &[Value]) -> Result<DmlResult> {
    let from = match &del.from {
        ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
    };
    let [t] = from.as_slice() else {
        return Err(SqlError::Unsupported("DELETE from several tables".into()));
    };
    if del.using.is_some() {
        return Err(SqlError::Unsupported("DELETE ... USING".into()));
    }
    let (name, alias) = single_table(t)?;
    let table = catalog::table(&*txn, &name)?;
    let mut binder = Binder::new(&*txn);
    let returning = del
        .returning
        .as_ref()
        .map(|items| binder.returning(items, &table))
        .transpose()?;
    let rows = matching_rows(&*txn, &table, &alias, del.selection.as_ref(), params)?;
    let affected = rows.len() as u64;
    let mut out_rows = Vec::new();
    for (key, row) in rows {
        write::delete_row(txn, &table, &key, &row)?;
        if let Some((exprs, _)) = &returning {
            let ctx = Ctx::new(&*txn, params);
            out_rows.push(
                exprs
                    .iter()
                    .map(|e| exec::eval(e, &row, &ctx))
                    .collect::<Result<Row>>()?,
            );
        }
    }
    Ok(DmlResult {
        affected,
        returning: returning.map(|(_, cols)| (cols, out_rows)),
    })
}
