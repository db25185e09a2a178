//! CREATE / DROP TABLE and INDEX.

use sqlparser::ast::{self, ColumnOption, TableConstraint};

use crate::bind::{Binder, data_type, ident, object_name};
use crate::catalog::{self, CheckDef, ColumnDef, IndexDef, TableDef};
use crate::encoding::{self, KeyFormat, RowFormat, prefix_end};
use crate::error::{ConstraintKind, Result, SqlError};
use crate::exec::row_from_stored;
use crate::kv::KvTxn;
use crate::write;

fn index_column_names(cols: &[ast::IndexColumn]) -> Result<Vec<String>> {
    cols.iter()
        .map(|c| match &c.column.expr {
            ast::Expr::Identifier(i) => Ok(ident(i)),
            other => Err(SqlError::Unsupported(format!(
                "index on expression {other}: index columns must be plain column names"
            ))),
        })
        .collect()
}

/// CREATE TABLE. Returns false if it existed and IF NOT EXISTS was given.
pub fn create_table(txn: &mut dyn KvTxn, ct: &ast::CreateTable) -> Result<bool> {
    let name = object_name(&ct.name)?;
    if catalog::get_table(txn, &name)?.is_some() {
        if ct.if_not_exists {
            return Ok(false);
        }
        return Err(SqlError::AlreadyExists {
            kind: "table",
            name,
        });
    }
    if ct.query.is_some() {
        return Err(SqlError::Unsupported("CREATE TABLE ... AS".into()));
    }
    if ct.columns.is_empty() {
        return Err(SqlError::Invalid(
            "a table needs at least one column".into(),
        ));
    }
    let mut def = TableDef {
        id: 0,
        name: name.clone(),
        columns: Vec::new(),
        primary_key: Vec::new(),
        primary_key_name: format!("{name}_pkey"),
        indexes: Vec::new(),
        checks: Vec::new(),
        next_slot: 0,
        next_index_id: 1,
        key_format: KeyFormat::Compact,
        row_format: RowFormat::Bare,
    };
    let mut uniques: Vec<(Option<String>, Vec<String>)> = Vec::new();
    for col in &ct.columns {
        let cname = ident(&col.name);
        if def.column_index(&cname).is_some() {
            return Err(SqlError::AlreadyExists {
                kind: "column",
                name: cname,
            });
        }
        let mut c = ColumnDef {
            name: cname.clone(),
            data_type: data_type(&col.data_type)?,
            nullable: true,
            default: None,
            slot: def.next_slot,
        };
        def.next_slot += 1;
        for opt in &col.options {
            let cname_opt = opt.name.as_ref().map(ident);
            match &opt.option {
                ColumnOption::Null => {}
                ColumnOption::NotNull => c.nullable = false,
                ColumnOption::Default(e) => c.default = Some(e.to_string()),
                ColumnOption::PrimaryKey(_) => {
                    if !def.primary_key.is_empty() {
                        return Err(SqlError::Invalid(format!(
                            "multiple primary keys for table {name:?} are not allowed"
                        )));
                    }
                    def.primary_key = vec![cname.clone()];
                    if let Some(n) = cname_opt {
                        def.primary_key_name = n;
                    }
                }
                ColumnOption::Unique(_) => uniques.push((cname_opt, vec![cname.clone()])),
                ColumnOption::Check(chk) => def.checks.push(CheckDef {
                    name: cname_opt.unwrap_or_else(|| format!("{name}_{cname}_check")),
                    expr: chk.expr.to_string(),
                }),
                other => {
                    return Err(SqlError::Unsupported(format!("column option {other}")));
                }
            }
        }
        def.columns.push(c);
    }
    for tc in &ct.constraints {
        match tc {
            TableConstraint::PrimaryKey(pk) => {
                if !def.primary_key.is_empty() {
                    return Err(SqlError::Invalid(format!(
                        "multiple primary keys for table {name:?} are not allowed"
                    )));
                }
                def.primary_key = index_column_names(&pk.columns)?;
                if let Some(n) = &pk.name {
                    def.primary_key_name = ident(n);
                }
            }
            TableConstraint::Unique(u) => {
                uniques.push((u.name.as_ref().map(ident), index_column_names(&u.columns)?));
            }
            TableConstraint::Check(chk) => {
                let n = def.checks.len() + 1;
                def.checks.push(CheckDef {
                    name: chk
                        .name
                        .as_ref()
                        .map(ident)
                        .unwrap_or_else(|| format!("{name}_check{n}")),
                    expr: chk.expr.to_string(),
                });
            }
            other => return Err(SqlError::Unsupported(format!("table constraint {other}"))),
        }
    }
    for pk in def.primary_key.clone() {
        let i = def
            .column_index(&pk)
            .ok_or_else(|| SqlError::UnknownColumn(pk.clone()))?;
        def.columns[i].nullable = false;
    }
    for (cname, cols) in uniques {
        for c in &cols {
            if def.column_index(c).is_none() {
                return Err(SqlError::UnknownColumn(c.clone()));
            }
        }
        let iname = cname.unwrap_or_else(|| format!("{name}_{}_key", cols.join("_")));
        let id = def.next_index_id;
        def.next_index_id += 1;
        def.indexes.push(IndexDef {
            id,
            name: iname,
            columns: cols,
            unique: true,
        });
    }
    // Defaults and checks must bind now, not at the first insert.
    {
        let mut binder = Binder::new(txn);
        for c in &def.columns {
            if let Some(d) = &c.default {
                let e = binder.table_expr(&write::parse_expr(d)?, &def, &name)?;
                if !e.is_row_independent() {
                    return Err(SqlError::Invalid(format!(
                        "DEFAULT of column {:?} cannot refer to columns",
                        c.name
                    )));
                }
            }
        }
        for chk in &def.checks {
            binder.table_expr(&write::parse_expr(&chk.expr)?, &def, &name)?;
        }
    }
    for idx in &def.indexes {
        if catalog::find_index(txn, &idx.name)?.is_some() {
            return Err(SqlError::AlreadyExists {
                kind: "index",
                name: idx.name.clone(),
            });
        }
    }
    def.id = catalog::next_table_id(txn)?;
    catalog::put_table(txn, &def)?;
    Ok(true)
}

/// Deletes every key under `prefix`.
fn delete_prefix(txn: &mut dyn KvTxn, prefix: &[u8]) -> Result<u64> {
    let end = prefix_end(prefix);
    let keys: Vec<Vec<u8>> = txn
        .scan(prefix, end.as_deref())?
        .map(|r| r.map(|(k, _)| k))
        .collect::<Result<_>>()?;
    for k in &keys {
        txn.delete(k)?;
    }
    Ok(keys.len() as u64)
}

/// DROP TABLE / DROP INDEX. Returns how many objects were dropped.
pub fn drop(
    txn: &mut dyn KvTxn,
    kind: &ast::ObjectType,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<u64> {
    let mut dropped = 0;
    for n in names {
        let name = object_name(n)?;
        match kind {
            ast::ObjectType::Table => match catalog::get_table(txn, &name)? {
                Some(def) => {
                    delete_prefix(txn, &encoding::table_prefix(def.id))?;
                    catalog::delete_table(txn, &name)?;
                    dropped += 1;
                }
                None if if_exists => {}
                None => return Err(SqlError::UnknownTable(name)),
            },
            ast::ObjectType::Index => match catalog::find_index(txn, &name)? {
                Some((mut def, idx)) => {
                    delete_prefix(txn, &encoding::index_prefix(def.id, idx.id))?;
                    def.indexes.retain(|i| i.id != idx.id);
                    catalog::put_table(txn, &def)?;
                    dropped += 1;
                }
                None if if_exists => {}
                None => return Err(SqlError::UnknownIndex(name)),
            },
            other => return Err(SqlError::Unsupported(format!("DROP {other}"))),
        }
    }
    Ok(dropped)
}

/// CREATE [UNIQUE] INDEX: records the index and builds its entries from the existing rows.
pub fn create_index(txn: &mut dyn KvTxn, ci: &ast::CreateIndex) -> Result<bool> {
    let table_name = object_name(&ci.table_name)?;
    let mut def = catalog::table(txn, &table_name)?;
    let columns = index_column_names(&ci.columns)?;
    for c in &columns {
        if def.column_index(c).is_none() {
            return Err(SqlError::UnknownColumn(c.clone()));
        }
    }
    let name = match &ci.name {
        Some(n) => object_name(n)?,
        None => format!("{table_name}_{}_idx", columns.join("_")),
    };
    if catalog::find_index(txn, &name)?.is_some() {
        if ci.if_not_exists {
            return Ok(false);
        }
        return Err(SqlError::AlreadyExists {
            kind: "index",
            name,
        });
    }
    if ci.predicate.is_some() {
        return Err(SqlError::Unsupported("partial indexes".into()));
    }
    let idx = IndexDef {
        id: def.next_index_id,
        name,
        columns,
        unique: ci.unique,
    };
    def.next_index_id += 1;
    // Backfill.
    let prefix = encoding::row_prefix(def.id);
    let end = prefix_end(&prefix);
    let rows: Vec<(Vec<u8>, Vec<u8>)> =
        txn.scan(&prefix, end.as_deref())?.collect::<Result<_>>()?;
    for (key, raw) in rows {
        let row = row_from_stored(&def, &key, &raw)?;
        let pk = write::pk_suffix(&def, &key);
        let ikey = write::index_key(&def, &idx, &row, &pk);
        if idx.unique && txn.get(&ikey)?.is_some() {
            let cols = def.index_columns(&idx);
            let vals: Vec<String> = cols.iter().map(|&c| row[c].to_string()).collect();
            return Err(SqlError::Constraint {
                kind: ConstraintKind::Unique,
                constraint: idx.name.clone(),
                detail: format!(
                    "could not create unique index: key ({})=({}) is duplicated",
                    idx.columns.join(", "),
                    vals.join(", ")
                ),
            });
        }
        txn.put(&ikey, &pk)?;
    }
    def.indexes.push(idx);
    catalog::put_table(txn, &def)?;
    Ok(true)
}

/// ALTER TABLE ADD / DROP / RENAME COLUMN.
pub fn alter_table(
    txn: &mut dyn KvTxn,
    at: &ast::AlterTable,
    params: &[crate::types::Value],
) -> Result<bool> {
    let name = object_name(&at.name)?;
    let Some(mut def) = catalog::get_table(txn, &name)? else {
        if at.if_exists {
            return Ok(false);
        }
        return Err(SqlError::UnknownTable(name));
    };
    for op in &at.operations {
        match op {
            ast::AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                ..
            } => {
                let cname = ident(&column_def.name);
                if def.column_index(&cname).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(SqlError::AlreadyExists {
                        kind: "column",
                        name: cname,
                    });
                }
                let mut col = ColumnDef {
                    name: cname.clone(),
                    data_type: data_type(&column_def.data_type)?,
                    nullable: true,
                    default: None,
                    slot: def.next_slot,
                };
                for opt in &column_def.options {
                    match &opt.option {
                        ColumnOption::Null => {}
                        ColumnOption::NotNull => col.nullable = false,
                        ColumnOption::Default(e) => col.default = Some(e.to_string()),
                        ColumnOption::Check(chk) => def.checks.push(CheckDef {
                            name: opt
                                .name
                                .as_ref()
                                .map(ident)
                                .unwrap_or_else(|| format!("{name}_{cname}_check")),
                            expr: chk.expr.to_string(),
                        }),
                        other => {
                            return Err(SqlError::Unsupported(format!("ADD COLUMN with {other}")));
                        }
                    }
                }
                def.next_slot += 1;
                def.columns.push(col);
                // Existing rows get the column's default (or NULL), checked like an insert.
                backfill(txn, &def, params)?;
            }
            ast::AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for c in column_names {
                    let cname = ident(c);
                    let Some(i) = def.column_index(&cname) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::UnknownColumn(cname));
                    };
                    if def.primary_key.contains(&cname) {
                        return Err(SqlError::Invalid(format!(
                            "cannot drop column {cname:?}: it is part of the primary key"
                        )));
                    }
                    if let Some(chk) = def.checks.iter().find(|k| mentions(&k.expr, &cname)) {
                        return Err(SqlError::Invalid(format!(
                            "cannot drop column {cname:?}: constraint {:?} depends on it",
                            chk.name
                        )));
                    }
                    // Indexes on the column go with it.
                    let doomed: Vec<u32> = def
                        .indexes
                        .iter()
                        .filter(|x| x.columns.contains(&cname))
                        .map(|x| x.id)
                        .collect();
                    for id in doomed {
                        delete_prefix(txn, &encoding::index_prefix(def.id, id))?;
                    }
                    def.indexes.retain(|x| !x.columns.contains(&cname));
                    // The slot stays in stored rows and is ignored from now on.
                    def.columns.remove(i);
                }
                if def.columns.is_empty() {
                    return Err(SqlError::Invalid(
                        "a table needs at least one column".into(),
                    ));
                }
            }
            ast::AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let (old, new) = (ident(old_column_name), ident(new_column_name));
                let i = def
                    .column_index(&old)
                    .ok_or_else(|| SqlError::UnknownColumn(old.clone()))?;
                if def.column_index(&new).is_some() {
                    return Err(SqlError::AlreadyExists {
                        kind: "column",
                        name: new,
                    });
                }
                if let Some(chk) = def.checks.iter().find(|k| mentions(&k.expr, &old)) {
                    return Err(SqlError::Unsupported(format!(
                        "renaming column {old:?}: constraint {:?} refers to it",
                        chk.name
                    )));
                }
                def.columns[i].name = new.clone();
                for pk in &mut def.primary_key {
                    if *pk == old {
                        pk.clone_from(&new);
                    }
                }
                for idx in &mut def.indexes {
                    for c in &mut idx.columns {
                        if *c == old {
                            c.clone_from(&new);
                        }
                    }
                }
            }
            other => return Err(SqlError::Unsupported(format!("ALTER TABLE {other}"))),
        }
    }
    catalog::put_table(txn, &def)?;
    Ok(true)
}

/// True if `expr` (SQL text) names column `col` as an identifier.
fn mentions(expr: &str, col: &str) -> bool {
    write::parse_expr(expr).is_ok_and(|e| {
        let mut found = false;
        let _ = ast::visit_expressions(&e, |x: &ast::Expr| {
            match x {
                ast::Expr::Identifier(i) if ident(i) == col => found = true,
                ast::Expr::CompoundIdentifier(parts)
                    if parts.last().is_some_and(|p| ident(p) == col) =>
                {
                    found = true;
                }
                _ => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        found
    })
}

/// Rewrites every row with the table's current columns: the newest column takes its default.
fn backfill(txn: &mut dyn KvTxn, def: &TableDef, params: &[crate::types::Value]) -> Result<()> {
    let last = def.columns.len() - 1;
    let default = {
        let mut binder = Binder::new(&*txn);
        def.columns[last]
            .default
            .as_ref()
            .map(|d| binder.table_expr(&write::parse_expr(d)?, def, &def.name))
            .transpose()?
    };
    let checks = write::Checks::bind(&*txn, def)?;
    let prefix = encoding::row_prefix(def.id);
    let end = prefix_end(&prefix);
    let rows: Vec<(Vec<u8>, Vec<u8>)> =
        txn.scan(&prefix, end.as_deref())?.collect::<Result<_>>()?;
    for (key, raw) in rows {
        let mut row = row_from_stored(def, &key, &raw)?;
        {
            let ctx = crate::exec::Ctx::new(&*txn, params);
            row[last] = match &default {
                Some(e) => crate::exec::eval(e, &[], &ctx)?,
                None => crate::types::Value::Null,
            };
        }
        write::coerce(def, &mut row)?;
        {
            let ctx = crate::exec::Ctx::new(&*txn, params);
            checks.verify(def, &row, &ctx)?;
        }
        txn.put(&key, &write::stored_row(def, &row))?;
    }
    Ok(())
}
