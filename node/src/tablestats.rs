//! Table statistics for the planner, collected by `ANALYZE` and stored in the catalog:
//! row count and, per column, distinct values, NULL fraction and the most common values.
//! Without statistics the planner assumes 1,000 rows per table and textbook selectivities.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{self, TableDef};
use crate::encoding::{self, prefix_end};
use crate::error::{Result, SqlError};
use crate::exec::row_from_stored;
use crate::kv::KvTxn;

const STATS_PREFIX: &[u8] = b"c\0s\0";
/// Rows assumed for a table never analysed.
pub const DEFAULT_ROWS: f64 = 1000.0;
/// Most common values kept per column.
const MCV: usize = 10;

/// Statistics of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// Distinct non-NULL values.
    pub distinct: u64,
    /// Fraction of rows that are NULL.
    pub null_fraction: f64,
    /// The most common values (as text) with their frequency (fraction of rows).
    pub most_common: Vec<(String, f64)>,
}

/// Statistics of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    /// Rows when analysed.
    pub rows: u64,
    /// Per column, by name.
    pub columns: HashMap<String, ColumnStats>,
}

fn key(table: &str) -> Vec<u8> {
    let mut k = STATS_PREFIX.to_vec();
    k.extend_from_slice(table.as_bytes());
    k
}

/// Reads a table's statistics, if it was analysed.
pub fn get(txn: &dyn KvTxn, table: &str) -> Result<Option<TableStats>> {
    match txn.get(&key(table))? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| {
            SqlError::Storage(nq_storage::StorageError::Integrity(format!(
                "table statistics do not decode: {e}"
            )))
        }),
    }
}

/// Scans `table` and stores its statistics.
pub fn analyze(txn: &mut dyn KvTxn, table: &TableDef) -> Result<TableStats> {
    let prefix = encoding::row_prefix(table.id);
    let end = prefix_end(&prefix);
    let mut rows = 0u64;
    let n = table.columns.len();
    let mut counts: Vec<HashMap<Vec<u8>, (u64, String)>> = vec![HashMap::new(); n];
    let mut nulls = vec![0u64; n];
    for r in txn.scan(&prefix, end.as_deref())? {
        let (_, raw) = r?;
        let row = row_from_stored(table, &raw)?;
        rows += 1;
        for (i, v) in row.iter().enumerate() {
            if v.is_null() {
                nulls[i] += 1;
                continue;
            }
            let mut k = Vec::new();
            v.group_key(&mut k);
            counts[i].entry(k).or_insert_with(|| (0, v.to_string())).0 += 1;
        }
    }
    let mut columns = HashMap::new();
    for (i, c) in table.columns.iter().enumerate() {
        let mut mcv: Vec<(u64, String)> = counts[i].values().cloned().collect();
        mcv.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        mcv.truncate(MCV);
        columns.insert(
            c.name.clone(),
            ColumnStats {
                distinct: counts[i].len() as u64,
                null_fraction: if rows == 0 {
                    0.0
                } else {
                    nulls[i] as f64 / rows as f64
                },
                most_common: mcv
                    .into_iter()
                    .map(|(n, v)| (v, n as f64 / rows.max(1) as f64))
                    .collect(),
            },
        );
    }
    let stats = TableStats { rows, columns };
    txn.put(
        &key(&table.name),
        &serde_json::to_vec(&stats).expect("stats serialise"),
    )?;
    Ok(stats)
}

/// `ANALYZE [table]`: every table when none is named. Returns how many were analysed.
pub fn analyze_named(txn: &mut dyn KvTxn, table: Option<&str>) -> Result<u64> {
    let tables = match table {
        Some(t) => vec![catalog::table(&*txn, t)?],
        None => catalog::list_tables(&*txn)?,
    };
    for t in &tables {
        analyze(txn, t)?;
    }
    Ok(tables.len() as u64)
}
