//! EXPLAIN: the plan tree as indented text, one line per operator, naming the access path and
//! index each scan uses.

use crate::expr::Expr;
use crate::plan::{Access, AggFunc, JoinAlgorithm, JoinKind, Plan, SetOpKind};
use crate::stats::Profile;
use crate::tablestats::TableStats;

/// Renders a plan, one line per operator, with each operator's estimated cost and rows.
pub fn explain(plan: &Plan, stats: &dyn Fn(&str) -> Option<TableStats>) -> Vec<String> {
    let mut lines = Vec::new();
    walk(plan, 0, &mut lines, None, Some(stats));
    lines
}

/// Renders a plan with what each operator did in one run: rows produced, times started
/// (loops) and time spent, its inputs included.
pub fn explain_analyze(
    plan: &Plan,
    profile: &Profile,
    stats: &dyn Fn(&str) -> Option<TableStats>,
) -> Vec<String> {
    let mut lines = Vec::new();
    walk(plan, 0, &mut lines, Some(profile), Some(stats));
    lines
}

type StatsFn<'s> = Option<&'s dyn Fn(&str) -> Option<TableStats>>;

fn walk(
    plan: &Plan,
    depth: usize,
    out: &mut Vec<String>,
    profile: Option<&Profile>,
    stats: StatsFn<'_>,
) {
    let pad = "  ".repeat(depth);
    let arrow = if depth == 0 { "" } else { "-> " };
    let line = match plan {
        Plan::Single => "Result (one row)".to_string(),
        Plan::Values { rows, .. } => format!("Values ({} rows)", rows.len()),
        Plan::Scan {
            table,
            alias,
            access,
            filter,
            ..
        } => {
            let name = if *alias == table.name {
                table.name.clone()
            } else {
                format!("{} {alias}", table.name)
            };
            let how = match access {
                Access::Full => format!("Seq Scan on {name}"),
                Access::PkPoint(_) => {
                    format!("Primary Key Lookup on {name} ({})", table.primary_key_name)
                }
                Access::PkRange(_) => format!(
                    "Primary Key Range Scan on {name} ({})",
                    table.primary_key_name
                ),
                Access::IndexPoint {
                    name: index,
                    covering: false,
                    ..
                } => format!("Index Lookup on {name} using {index}"),
                Access::IndexPoint {
                    name: index,
                    covering: true,
                    ..
                } => format!("Index Only Scan on {name} using {index} (lookup)"),
                Access::IndexRange {
                    name: index,
                    covering: false,
                    ..
                } => format!("Index Range Scan on {name} using {index}"),
                Access::IndexRange {
                    name: index,
                    covering: true,
                    ..
                } => format!("Index Only Scan on {name} using {index} (range)"),
            };
            match filter {
                Some(f) => format!("{how} (filter: {})", show(f)),
                None => how,
            }
        }
        Plan::Filter { predicate, .. } => format!("Filter ({})", show(predicate)),
        Plan::Project { exprs, .. } => format!("Project ({} columns)", exprs.len()),
        Plan::Sort { keys, .. } => format!("Sort ({} keys)", keys.len()),
        Plan::Limit { .. } => "Limit".to_string(),
        Plan::Grover {
            predicate,
            max_rows,
            ..
        } => format!(
            "Grover Search (simulated) for {max_rows} rows (oracle: {})",
            show(predicate)
        ),
        Plan::Distinct { .. } => "Distinct (hash)".to_string(),
        Plan::Aggregate { groups, aggs, .. } => {
            let names: Vec<&str> = aggs
                .iter()
                .map(|a| match a.func {
                    AggFunc::CountStar => "count(*)",
                    AggFunc::Count => "count",
                    AggFunc::Sum => "sum",
                    AggFunc::Avg => "avg",
                    AggFunc::Min => "min",
                    AggFunc::Max => "max",
                })
                .collect();
            if groups.is_empty() {
                format!("Aggregate [{}]", names.join(", "))
            } else {
                format!(
                    "Hash Aggregate ({} groups keys) [{}]",
                    groups.len(),
                    names.join(", ")
                )
            }
        }
        Plan::Join {
            kind,
            keys,
            condition,
            algorithm,
            ..
        } => {
            let k = match kind {
                JoinKind::Inner => "Inner",
                JoinKind::Left => "Left",
                JoinKind::Right => "Right",
                JoinKind::Full => "Full",
            };
            let algo = if keys.is_empty() {
                format!("Nested Loop {k} Join")
            } else if *algorithm == JoinAlgorithm::Merge {
                format!("Merge {k} Join ({} keys)", keys.len())
            } else {
                format!("Hash {k} Join ({} keys)", keys.len())
            };
            match condition {
                Some(c) => format!("{algo} (condition: {})", show(c)),
                None => algo,
            }
        }
        Plan::LookupJoin {
            table, index, kind, ..
        } => format!(
            "Index Nested Loop {} Join on {} using {}",
            if *kind == JoinKind::Left {
                "Left"
            } else {
                "Inner"
            },
            table.name,
            index
                .as_ref()
                .map_or(table.primary_key_name.as_str(), |(_, n)| n.as_str())
        ),
        Plan::SetOp { kind, all, .. } => format!(
            "{}{}",
            match kind {
                SetOpKind::Union => "Union",
                SetOpKind::Intersect => "Intersect",
                SetOpKind::Except => "Except",
            },
            if *all { " All" } else { "" }
        ),
    };
    let actual = match profile.map(|p| p.get(plan as *const Plan as usize)) {
        Some(Some(p)) => format!(
            " (actual rows={} loops={} time={:.3} ms)",
            p.rows,
            p.loops,
            p.time.as_secs_f64() * 1000.0
        ),
        Some(None) => " (never executed)".to_string(),
        None => String::new(),
    };
    let estimated = match stats {
        Some(f) => {
            let e = crate::cost::estimate(plan, f);
            format!(" (cost={:.0} rows={:.0})", e.cost, e.rows)
        }
        None => String::new(),
    };
    let note = profile
        .and_then(|p| p.note_of(plan as *const Plan as usize))
        .map_or(String::new(), |n| format!(" ({n})"));
    out.push(format!("{pad}{arrow}{line}{estimated}{actual}{note}"));
    match plan {
        Plan::Filter { input, .. }
        | Plan::Project { input, .. }
        | Plan::Sort { input, .. }
        | Plan::Limit { input, .. }
        | Plan::Distinct { input }
        | Plan::Aggregate { input, .. }
        | Plan::Grover { input, .. }
        | Plan::LookupJoin { left: input, .. } => walk(input, depth + 1, out, profile, stats),
        Plan::Join { left, right, .. } | Plan::SetOp { left, right, .. } => {
            walk(left, depth + 1, out, profile, stats);
            walk(right, depth + 1, out, profile, stats);
        }
        _ => {}
    }
}

fn show(e: &Expr) -> String {
    match e {
        Expr::Column(i) => format!("#{}", i + 1),
        Expr::Outer(d, i) => format!("outer{d}.#{}", i + 1),
        Expr::Literal(v) => match v {
            crate::types::Value::Text(s) => format!("'{s}'"),
            other => other.to_string(),
        },
        Expr::Param(i) => format!("${}", i + 1),
        Expr::Binary(op, a, b) => format!("{} {} {}", show(a), op.symbol(), show(b)),
        Expr::Not(a) => format!("NOT {}", show(a)),
        Expr::IsNull(a, n) => format!("{} IS {}NULL", show(a), if *n { "NOT " } else { "" }),
        _ => "…".to_string(),
    }
}
