//! Row writes shared by INSERT, UPDATE and DELETE: constraint checks and index maintenance.

use crate::catalog::{IndexDef, TableDef};
use crate::encoding::{self, encode_key_value, encode_row_with_key};
use crate::error::{ConstraintKind, Result, SqlError};
use crate::exec::{self, Ctx};
use crate::expr::Expr;
use crate::kv::KvTxn;
use crate::types::Value;

/// A table's constraints bound once per statement.
#[derive(Debug)]
pub struct Checks {
    checks: Vec<(String, Expr)>,
}

impl Checks {
    /// Binds the table's CHECK constraints.
    pub fn bind(txn: &dyn KvTxn, table: &TableDef) -> Result<Checks> {
        let mut binder = crate::bind::Binder::new(txn);
        let mut checks = Vec::new();
        for c in &table.checks {
            let ast = parse_expr(&c.expr)?;
            checks.push((c.name.clone(), binder.table_expr(&ast, table, &table.name)?));
        }
        Ok(Checks { checks })
    }

    /// Fails with a constraint error if `row` breaks NOT NULL or a CHECK.
    pub fn verify(&self, table: &TableDef, row: &[Value], ctx: &Ctx<'_>) -> Result<()> {
        for (c, v) in table.columns.iter().zip(row) {
            if !c.nullable && v.is_null() {
                return Err(SqlError::Constraint {
                    kind: ConstraintKind::NotNull,
                    constraint: format!("{}_{}_not_null", table.name, c.name),
                    detail: format!(
                        "null value in column {:?} of table {:?}",
                        c.name, table.name
                    ),
                });
            }
        }
        for (name, e) in &self.checks {
            // NULL passes a CHECK, as in standard SQL.
            if crate::expr::truth(&exec::eval(e, row, ctx)?)? == Some(false) {
                return Err(SqlError::Constraint {
                    kind: ConstraintKind::Check,
                    constraint: name.clone(),
                    detail: format!("new row of table {:?} fails the check", table.name),
                });
            }
        }
        Ok(())
    }
}

/// Parses a stored expression (DEFAULT, CHECK).
pub fn parse_expr(text: &str) -> Result<sqlparser::ast::Expr> {
    let dialect = crate::parse::QsqlDialect::default();
    sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::Invalid(format!("stored expression {text:?} does not parse: {e}")))
}

/// Casts each value to its column's type (and checks VARCHAR lengths, DECIMAL precision).
pub fn coerce(table: &TableDef, row: &mut [Value]) -> Result<()> {
    for (c, v) in table.columns.iter().zip(row.iter_mut()) {
        if !v.is_null() {
            *v = crate::cast::cast(v, &c.data_type).map_err(|e| match e {
                SqlError::InvalidCast { value, target } => SqlError::InvalidCast {
                    value: format!("{value} for column {:?}", c.name),
                    target,
                },
                other => other,
            })?;
        }
    }
    Ok(())
}

/// The stored form of a row: values in slot order, primary-key columns left to the row key
/// (see [`encoding::stored_in_key`]).
pub fn stored_row(table: &TableDef, row: &[Value]) -> Vec<u8> {
    let mut slots = Value::nulls(table.next_slot as usize);
    for (c, v) in table.columns.iter().zip(row) {
        slots[c.slot as usize] = v.clone();
    }
    encode_row_with_key(&slots, &pk_in_key(table), table.row_format)
}

/// [`encoding::stored_in_key`] for `table`.
pub fn pk_in_key(table: &TableDef) -> Vec<Option<u8>> {
    let pk: Vec<(usize, &crate::types::DataType)> = table
        .pk_indices()
        .into_iter()
        .map(|c| (table.columns[c].slot as usize, &table.columns[c].data_type))
        .collect();
    encoding::stored_in_key(&pk, table.next_slot as usize)
}

/// The key of an index entry for `row` (whose row key suffix is `pk`). A unique index's key is
/// the indexed values alone, unless one is NULL (NULLs never conflict), so a lookup of the
/// values finds a conflicting row.
pub fn index_key(table: &TableDef, index: &IndexDef, row: &[Value], pk: &[u8]) -> Vec<u8> {
    let mut key = encoding::index_prefix(table.id, index.id);
    let mut any_null = false;
    for c in table.index_columns(index) {
        any_null |= row[c].is_null();
        encode_key_value(&row[c], table.key_format, &mut key);
    }
    if !index.unique || any_null {
        key.extend_from_slice(pk);
    }
    key
}

/// The row key suffix (the key without the table's row prefix).
pub fn pk_suffix(table: &TableDef, key: &[u8]) -> Vec<u8> {
    key[encoding::row_prefix(table.id).len()..].to_vec()
}

/// Writes a new row and its index entries after checking key uniqueness.
pub fn insert_row(txn: &mut dyn KvTxn, table: &TableDef, key: &[u8], row: &[Value]) -> Result<()> {
    if txn.get(key)?.is_some() {
        return Err(duplicate_pk(table, row));
    }
    let pk = pk_suffix(table, key);
    for idx in &table.indexes {
        let ikey = index_key(table, idx, row, &pk);
        if idx.unique && txn.get(&ikey)?.is_some() {
            return Err(duplicate_index(table, idx, row));
        }
        txn.put(&ikey, &pk)?;
    }
    txn.put(key, &stored_row(table, row))
}

/// Deletes a row and its index entries.
pub fn delete_row(txn: &mut dyn KvTxn, table: &TableDef, key: &[u8], row: &[Value]) -> Result<()> {
    let pk = pk_suffix(table, key);
    for idx in &table.indexes {
        txn.delete(&index_key(table, idx, row, &pk))?;
    }
    txn.delete(key)
}

/// Replaces a row (the key may change), keeping indexes and uniqueness right.
pub fn update_row(
    txn: &mut dyn KvTxn,
    table: &TableDef,
    old_key: &[u8],
    old: &[Value],
    new_key: &[u8],
    new: &[Value],
) -> Result<()> {
    if new_key != old_key && txn.get(new_key)?.is_some() {
        return Err(duplicate_pk(table, new));
    }
    let (old_pk, new_pk) = (pk_suffix(table, old_key), pk_suffix(table, new_key));
    for idx in &table.indexes {
        let (ok, nk) = (
            index_key(table, idx, old, &old_pk),
            index_key(table, idx, new, &new_pk),
        );
        if ok != nk || old_pk != new_pk {
            txn.delete(&ok)?;
            if idx.unique && txn.get(&nk)?.is_some() {
                return Err(duplicate_index(table, idx, new));
            }
            txn.put(&nk, &new_pk)?;
        }
    }
    if new_key != old_key {
        txn.delete(old_key)?;
    }
    txn.put(new_key, &stored_row(table, new))
}

fn show_values(table: &TableDef, cols: &[usize], row: &[Value]) -> String {
    let names: Vec<&str> = cols
        .iter()
        .map(|&c| table.columns[c].name.as_str())
        .collect();
    let vals: Vec<String> = cols.iter().map(|&c| row[c].to_string()).collect();
    format!(
        "Key ({})=({}) already exists.",
        names.join(", "),
        vals.join(", ")
    )
}

fn duplicate_pk(table: &TableDef, row: &[Value]) -> SqlError {
    SqlError::Constraint {
        kind: ConstraintKind::PrimaryKey,
        constraint: table.primary_key_name.clone(),
        detail: show_values(table, &table.pk_indices(), row),
    }
}

fn duplicate_index(table: &TableDef, idx: &IndexDef, row: &[Value]) -> SqlError {
    SqlError::Constraint {
        kind: ConstraintKind::Unique,
        constraint: idx.name.clone(),
        detail: show_values(table, &table.index_columns(idx), row),
    }
}
