//! Table statistics for the planner, collected by `ANALYZE` and stored in the catalog:
//! row count and, per column, distinct values, NULL fraction, the most common values and an
//! equi-depth histogram. Without statistics the planner assumes 1,000 rows per table and
//! textbook selectivities. The `nq_stats` system view shows them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{self, TableDef};
use crate::encoding::{self, prefix_end};
use crate::error::{Result, SqlError};
use crate::exec::row_from_stored;
use crate::kv::KvTxn;
use crate::types::Value;

const STATS_PREFIX: &[u8] = b"c\0s\0";
/// Rows assumed for a table never analysed.
pub const DEFAULT_ROWS: f64 = 1000.0;
/// Most common values kept per column.
const MCV: usize = 10;
/// Buckets of a column's equi-depth histogram.
pub const HISTOGRAM_BUCKETS: usize = 100;
/// Values per column the histogram is built from (a uniform sample of the non-NULL values).
const HISTOGRAM_SAMPLE: usize = 30_000;

/// A histogram bucket bound: numbers (integers, floats, decimals, and dates and timestamps as
/// days and microseconds since 1970) or text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bound {
    /// A numeric bound.
    Number(f64),
    /// A text bound.
    Text(String),
}

impl Bound {
    /// The bound form of `v`, if its type has histograms.
    pub fn of(v: &Value) -> Option<Bound> {
        Some(match v {
            Value::Int(i) => Bound::Number(*i as f64),
            Value::Float(f) if !f.is_nan() => Bound::Number(*f),
            Value::Decimal(d) => Bound::Number(d.to_string().parse().ok()?),
            Value::Date(d) => Bound::Number(f64::from(*d)),
            Value::Timestamp(t) => Bound::Number(*t as f64),
            Value::Text(s) => Bound::Text(s.clone()),
            _ => return None,
        })
    }

    fn cmp(&self, other: &Bound) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Bound::Number(a), Bound::Number(b)) => a.partial_cmp(b),
            (Bound::Text(a), Bound::Text(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Number(n) => write!(f, "{n}"),
            Bound::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// Fraction of a column's non-NULL values below `v` (`inclusive`: at or below), read off an
/// equi-depth histogram: whole buckets below the one holding `v`, plus a linear share of that
/// one (half of it for text). `None` without a histogram or for a value it cannot place.
pub fn histogram_fraction(bounds: &[Bound], v: &Value, inclusive: bool) -> Option<f64> {
    let v = Bound::of(v)?;
    let (first, last) = (bounds.first()?, bounds.last()?);
    let buckets = (bounds.len() - 1) as f64;
    if bounds.len() < 2 {
        return None;
    }
    use std::cmp::Ordering::{Greater, Less};
    match (v.cmp(first)?, v.cmp(last)?) {
        (Less, _) => return Some(0.0),
        (_, Greater) => return Some(1.0),
        _ => {}
    }
    // The last bound not above v (ties: the last equal one for <=, the first for <).
    let mut at = 0;
    for (i, b) in bounds.iter().enumerate() {
        match b.cmp(&v)? {
            Less => at = i,
            std::cmp::Ordering::Equal => {
                if inclusive {
                    at = i;
                } else {
                    return Some(i as f64 / buckets);
                }
            }
            Greater => break,
        }
    }
    if at + 1 >= bounds.len() {
        return Some(1.0);
    }
    let within = match (&bounds[at], &bounds[at + 1], &v) {
        (Bound::Number(lo), Bound::Number(hi), Bound::Number(x)) if hi > lo => (x - lo) / (hi - lo),
        (Bound::Number(_), Bound::Number(_), _) => 1.0,
        _ => 0.5,
    };
    Some(((at as f64 + within.clamp(0.0, 1.0)) / buckets).clamp(0.0, 1.0))
}

/// Equi-depth bucket bounds of `values` (sorted here): `HISTOGRAM_BUCKETS + 1` quantiles,
/// first the smallest value and last the largest.
fn histogram(mut values: Vec<Bound>) -> Vec<Bound> {
    values.sort_by(|a, b| a.cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if values.len() < 2 {
        return Vec::new();
    }
    let buckets = HISTOGRAM_BUCKETS.min(values.len() - 1);
    (0..=buckets)
        .map(|i| values[i * (values.len() - 1) / buckets].clone())
        .collect()
}

/// A uniform sample of up to [`HISTOGRAM_SAMPLE`] values (reservoir sampling with a fixed
/// seed, so ANALYZE of the same data gives the same histogram).
struct Reservoir {
    values: Vec<Bound>,
    seen: u64,
    state: u64,
}

impl Reservoir {
    fn new(seed: u64) -> Reservoir {
        Reservoir {
            values: Vec::new(),
            seen: 0,
            state: seed | 1,
        }
    }

    fn offer(&mut self, v: &Value) {
        let Some(b) = Bound::of(v) else { return };
        self.seen += 1;
        if self.values.len() < HISTOGRAM_SAMPLE {
            self.values.push(b);
            return;
        }
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) % self.seen;
        if (r as usize) < HISTOGRAM_SAMPLE {
            self.values[r as usize] = b;
        }
    }
}

/// Statistics of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// Distinct non-NULL values.
    pub distinct: u64,
    /// Fraction of rows that are NULL.
    pub null_fraction: f64,
    /// The most common values (as text) with their frequency (fraction of rows).
    pub most_common: Vec<(String, f64)>,
    /// Equi-depth histogram of the non-NULL values: bucket bounds, smallest first, each
    /// bucket holding about the same number of values (empty for types without one).
    #[serde(default)]
    pub histogram: Vec<Bound>,
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
    let mut samples: Vec<Reservoir> = (0..n)
        .map(|i| Reservoir::new(u64::from(table.id) << 16 | i as u64))
        .collect();
    for r in txn.scan(&prefix, end.as_deref())? {
        let (key, raw) = r?;
        let row = row_from_stored(table, &key, &raw)?;
        rows += 1;
        for (i, v) in row.iter().enumerate() {
            if v.is_null() {
                nulls[i] += 1;
                continue;
            }
            samples[i].offer(v);
            let mut k = Vec::new();
            v.group_key(&mut k);
            counts[i].entry(k).or_insert_with(|| (0, v.to_string())).0 += 1;
        }
    }
    let mut columns = HashMap::new();
    for ((i, c), sample) in table.columns.iter().enumerate().zip(samples) {
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
                histogram: histogram(sample.values),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_histogram_is_equi_depth_and_places_values() {
        let values: Vec<Bound> = (0..1000).map(|i| Bound::Number(f64::from(i))).collect();
        let h = histogram(values);
        assert_eq!(h.len(), HISTOGRAM_BUCKETS + 1);
        assert_eq!(h[0], Bound::Number(0.0));
        assert_eq!(h[HISTOGRAM_BUCKETS], Bound::Number(999.0));
        let f = |v: i64| histogram_fraction(&h, &Value::Int(v), false).unwrap();
        assert!((f(250) - 0.25).abs() < 0.01, "{}", f(250));
        assert_eq!(f(-5), 0.0);
        assert_eq!(f(5000), 1.0);
        assert!(f(100) < f(101));
    }

    #[test]
    fn test_skewed_histogram_follows_the_data() {
        // 90% of the values are below 10, the rest spread up to 1000.
        let mut values: Vec<Bound> = (0..900).map(|i| Bound::Number(f64::from(i % 10))).collect();
        values.extend((0..100).map(|i| Bound::Number(f64::from(10 + i * 10))));
        let h = histogram(values);
        let below_10 = histogram_fraction(&h, &Value::Int(10), false).unwrap();
        assert!(below_10 > 0.85 && below_10 < 0.95, "{below_10}");
    }

    #[test]
    fn test_text_histogram() {
        let values: Vec<Bound> = (b'a'..=b'z')
            .map(|c| Bound::Text((c as char).to_string()))
            .collect();
        let h = histogram(values);
        let f = histogram_fraction(&h, &Value::Text("n".into()), false).unwrap();
        assert!(f > 0.4 && f < 0.6, "{f}");
        assert_eq!(histogram_fraction(&h, &Value::Int(3), false), None);
    }
}
