//! Cost and row estimates of a plan, for EXPLAIN: rows come from ANALYZE statistics (1,000 per
//! table without them) and the same selectivities the planner uses; cost counts rows read and
//! produced, plus n·log2(n) for sorts.

use crate::catalog::TableDef;
use crate::expr::Expr;
use crate::plan::{Access, JoinAlgorithm, JoinKind, Plan};
use crate::tablestats::{DEFAULT_ROWS, TableStats};

/// Estimated output rows and total cost of a plan node, its inputs included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Rows produced.
    pub rows: f64,
    /// Work, in rows touched.
    pub cost: f64,
}

/// Rows a scan of `table` keeps under `filter`: the table's rows (from ANALYZE, else
/// [`DEFAULT_ROWS`]) times each conjunct's selectivity. The join orderer uses it too.
pub fn scan_rows(table: &TableDef, filter: Option<&Expr>, stats: Option<&TableStats>) -> f64 {
    let base = stats.map_or(DEFAULT_ROWS, |s| s.rows as f64);
    let sel: f64 = filter
        .cloned()
        .map(Expr::conjuncts)
        .unwrap_or_default()
        .iter()
        .map(|c| crate::bind::selectivity(c, table, stats))
        .product();
    (base * sel).max(1.0)
}

/// Work of a hash join of `left` rows probing a table built over `right` rows: each row is
/// hashed once, to probe or to build.
pub fn hash_join_work(left: f64, right: f64) -> f64 {
    left + right
}

/// Work of a merge join of sorted inputs: a comparison per row, no hashing and no table,
/// counted at half a hash join's per-row work. Sorting an input is costed by its Sort node.
pub fn merge_join_work(left: f64, right: f64) -> f64 {
    (left + right) / 2.0
}

/// Estimates a plan with `stats(table)` giving each table's statistics.
pub fn estimate(plan: &Plan, stats: &dyn Fn(&str) -> Option<TableStats>) -> Estimate {
    match plan {
        Plan::Single => Estimate {
            rows: 1.0,
            cost: 0.0,
        },
        Plan::Values { rows, .. } => Estimate {
            rows: rows.len() as f64,
            cost: rows.len() as f64,
        },
        // Every item is read and tested once to build the oracle; the simulation's own work
        // (O(N·√N) amplitude updates) is not row work and is left out.
        Plan::Grover {
            input, max_rows, ..
        } => {
            let i = estimate(input, stats);
            Estimate {
                rows: (*max_rows as f64).min(i.rows),
                cost: i.cost + i.rows,
            }
        }
        Plan::Scan {
            table,
            access,
            filter,
            ..
        } => {
            let s = stats(&table.name);
            let base = s.as_ref().map_or(DEFAULT_ROWS, |s| s.rows as f64);
            let rows = scan_rows(table, filter.as_ref(), s.as_ref());
            let cost = match access {
                Access::Full => base,
                Access::PkPoint(_) => 1.0,
                // Each entry costs a second lookup of its row, unless the scan is index-only.
                Access::IndexPoint { covering, .. } => {
                    if *covering {
                        rows
                    } else {
                        rows * 2.0
                    }
                }
                Access::PkRange(_) => rows * 1.5,
                Access::IndexRange { covering, .. } => {
                    if *covering {
                        rows * 1.2
                    } else {
                        rows * 3.0
                    }
                }
            };
            Estimate { rows, cost }
        }
        Plan::Filter { input, .. } => {
            let i = estimate(input, stats);
            Estimate {
                rows: (i.rows * 0.5).max(1.0),
                cost: i.cost + i.rows,
            }
        }
        Plan::Project { input, .. } => {
            let i = estimate(input, stats);
            Estimate {
                rows: i.rows,
                cost: i.cost + i.rows * 0.1,
            }
        }
        Plan::Sort { input, .. } => {
            let i = estimate(input, stats);
            Estimate {
                rows: i.rows,
                cost: i.cost + i.rows * i.rows.max(2.0).log2(),
            }
        }
        Plan::Limit { input, limit, .. } => {
            let i = estimate(input, stats);
            let n = match limit {
                Some(Expr::Literal(crate::types::Value::Int(n))) => (*n as f64).min(i.rows),
                _ => i.rows,
            };
            Estimate {
                rows: n,
                cost: i.cost,
            }
        }
        Plan::Distinct { input } => {
            let i = estimate(input, stats);
            Estimate {
                rows: (i.rows * 0.5).max(1.0),
                cost: i.cost + i.rows,
            }
        }
        Plan::Aggregate { input, groups, .. } => {
            let i = estimate(input, stats);
            let rows = if groups.is_empty() {
                1.0
            } else {
                (i.rows / 10.0).max(1.0)
            };
            Estimate {
                rows,
                cost: i.cost + i.rows,
            }
        }
        Plan::Join {
            left,
            right,
            kind,
            keys,
            condition,
            algorithm,
        } => {
            let (l, r) = (estimate(left, stats), estimate(right, stats));
            // Each equi-join key keeps 1/max(distinct values) of the cross product, distinct
            // values from ANALYZE where the key is a plain column, else the input's rows.
            let mut rows = l.rows * r.rows;
            for (lk, rk) in keys {
                let dl = distinct(left, lk, stats).unwrap_or(l.rows);
                let dr = distinct(right, rk, stats).unwrap_or(r.rows);
                rows /= dl.max(dr).max(1.0);
            }
            if condition.is_some() {
                rows *= 0.33;
            }
            rows = match kind {
                JoinKind::Inner => rows,
                JoinKind::Left => rows.max(l.rows),
                JoinKind::Right => rows.max(r.rows),
                JoinKind::Full => rows.max(l.rows + r.rows),
            }
            .max(1.0);
            let work = if keys.is_empty() {
                l.rows * r.rows
            } else if *algorithm == JoinAlgorithm::Merge {
                merge_join_work(l.rows, r.rows)
            } else {
                hash_join_work(l.rows, r.rows)
            };
            Estimate {
                rows,
                cost: l.cost + r.cost + work + rows,
            }
        }
        Plan::LookupJoin {
            left, index, kind, ..
        } => {
            let l = estimate(left, stats);
            // A primary-key lookup finds at most one row; an index lookup, a few.
            let per: f64 = if index.is_none() { 1.0 } else { 3.0 };
            let rows = if *kind == JoinKind::Left {
                l.rows * per.max(1.0)
            } else {
                l.rows * per
            };
            Estimate {
                rows: rows.max(1.0),
                cost: l.cost + l.rows * 2.0 + rows,
            }
        }
        Plan::SetOp { left, right, .. } => {
            let (l, r) = (estimate(left, stats), estimate(right, stats));
            Estimate {
                rows: l.rows + r.rows,
                cost: l.cost + r.cost + l.rows + r.rows,
            }
        }
    }
}

/// Distinct values of a plain-column expression of `plan`'s output, from ANALYZE statistics.
fn distinct(plan: &Plan, e: &Expr, stats: &dyn Fn(&str) -> Option<TableStats>) -> Option<f64> {
    let Expr::Column(col) = e else { return None };
    match plan {
        Plan::Project { input, exprs, .. } => distinct(input, exprs.get(*col)?, stats),
        Plan::Filter { input, .. } | Plan::Sort { input, .. } | Plan::Limit { input, .. } => {
            distinct(input, e, stats)
        }
        Plan::Scan { table, .. } => {
            let name = &table.columns.get(*col)?.name;
            stats(&table.name)?
                .columns
                .get(name)
                .map(|c| c.distinct.max(1) as f64)
        }
        Plan::LookupJoin { left, .. } if *col < left.width() => distinct(left, e, stats),
        Plan::Join { left, right, .. } => {
            let lw = left.width();
            if *col < lw {
                distinct(left, e, stats)
            } else {
                distinct(right, &Expr::Column(col - lw), stats)
            }
        }
        _ => None,
    }
}
