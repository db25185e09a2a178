//! The binder and planner: SQL syntax trees become plans. Names are resolved against the tables
//! in scope, expressions are bound to row positions, aggregates are collected, filters are
//! pushed down to scans and joins, and each scan picks an access path (primary-key point or
//! range, index point or range, or a full scan).

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast::{self, SelectItem, SetExpr, TableFactor};

use crate::catalog::{self, TableDef};
use crate::error::{Result, SqlError};
use crate::expr::{BinOp, Expr, SubqueryKind};
use crate::kv::KvTxn;
use crate::plan::{
    Access, AggCall, AggFunc, JoinAlgorithm, JoinKind, KeyRange, OutColumn, Plan, SetOpKind,
    SortKey,
};
use crate::types::{DataType, Value};

/// Normalises an identifier: unquoted names fold to lower case.
pub fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The last part of an object name (schemas are not supported).
pub fn object_name(name: &ast::ObjectName) -> Result<String> {
    match name.0.as_slice() {
        [ast::ObjectNamePart::Identifier(i)] => Ok(ident(i)),
        _ => Err(SqlError::Unsupported(format!(
            "qualified name {name}: schemas are not supported"
        ))),
    }
}

/// Converts a SQL type name to ours.
pub fn data_type(t: &ast::DataType) -> Result<DataType> {
    use ast::DataType as T;
    Ok(match t {
        T::Boolean | T::Bool => DataType::Boolean,
        T::SmallInt(_) | T::Int2(_) => DataType::SmallInt,
        T::Int(_) | T::Integer(_) | T::Int4(_) => DataType::Integer,
        T::BigInt(_) | T::Int8(_) => DataType::BigInt,
        T::Real | T::Float4 => DataType::Real,
        T::Double(_) | T::DoublePrecision | T::Float8 | T::Float(_) => DataType::Double,
        T::Decimal(info) | T::Numeric(info) => match info {
            ast::ExactNumberInfo::None => DataType::Decimal(None),
            ast::ExactNumberInfo::Precision(p) => {
                DataType::Decimal(Some((check_precision(*p)?, 0)))
            }
            ast::ExactNumberInfo::PrecisionAndScale(p, s) => {
                let p = check_precision(*p)?;
                if *s < 0 || *s as u64 > p as u64 {
                    return Err(SqlError::Invalid(format!(
                        "DECIMAL scale {s} must be between 0 and the precision {p}"
                    )));
                }
                DataType::Decimal(Some((p, *s as u8)))
            }
        },
        T::Text | T::String(None) => DataType::Text(None),
        T::Varchar(len) | T::CharacterVarying(len) | T::CharVarying(len) => match len {
            Some(ast::CharacterLength::IntegerLength { length, .. }) => {
                DataType::Text(Some(u32::try_from(*length).map_err(|_| {
                    SqlError::Invalid(format!("VARCHAR length {length} is too large"))
                })?))
            }
            _ => DataType::Text(None),
        },
        T::Blob(_) | T::Bytea => DataType::Blob,
        T::Date => DataType::Date,
        T::Timestamp(_, tz)
            if *tz == ast::TimezoneInfo::None || *tz == ast::TimezoneInfo::WithoutTimeZone =>
        {
            DataType::Timestamp
        }
        T::JSON | T::JSONB => DataType::Json,
        other => return Err(SqlError::Unsupported(format!("data type {other}"))),
    })
}

fn check_precision(p: u64) -> Result<u8> {
    if (1..=28).contains(&p) {
        Ok(p as u8)
    } else {
        Err(SqlError::Invalid(format!(
            "DECIMAL precision {p} must be between 1 and 28"
        )))
    }
}

/// A named relation in scope: its alias and its columns' positions in the current row.
#[derive(Debug, Clone)]
pub struct Scope {
    columns: Vec<OutColumn>,
    /// Unqualified names resolve to the first match instead of being ambiguous (ON CONFLICT:
    /// the target row before EXCLUDED).
    prefer_first: bool,
}

impl Scope {
    fn resolve(&self, table: Option<&str>, name: &str) -> Result<Option<usize>> {
        let mut found = None;
        for (i, c) in self.columns.iter().enumerate() {
            let table_ok = match table {
                Some(t) => c.table.as_deref() == Some(t),
                None => true,
            };
            if table_ok && c.name == name {
                if found.is_some() && self.prefer_first {
                    continue;
                }
                if found.is_some() {
                    return Err(SqlError::AmbiguousColumn(name.to_string()));
                }
                found = Some(i);
            }
        }
        Ok(found)
    }
}

/// Aggregation state while binding a SELECT: the GROUP BY expressions (as text, to match the
/// select list) and the aggregate calls found so far.
struct AggState {
    group_text: Vec<String>,
    group_count: usize,
    calls: Vec<(String, AggCall)>,
}

/// Binds statements of one transaction.
#[derive(Debug)]
pub struct Binder<'a> {
    txn: &'a dyn KvTxn,
    /// Scopes of enclosing queries, innermost last (for correlated subqueries).
    outer: Vec<Scope>,
    /// Common table expressions in scope.
    ctes: HashMap<String, Plan>,
    /// Engine statistics, for the `nq_stat_*` views.
    stats: Option<&'a crate::stats::EngineStats>,
    /// Table statistics read so far (ANALYZE results).
    table_stats: HashMap<String, Option<crate::tablestats::TableStats>>,
    /// One line per reordered join, for EXPLAIN: the orderer, the order, its estimated cost
    /// and, when exact ordering was feasible, the optimum's cost.
    pub join_notes: Vec<String>,
    /// False once the plan holds data read at planning time (a system view's rows), which a
    /// cached plan would serve stale.
    pub cacheable: bool,
}

/// Most relations for which EXPLAIN of an annealed or greedy join order also shows the exact
/// optimum's cost (the DP is O(2^n·n²)).
const EXPLAIN_DP_LIMIT: usize = 14;

const AGGREGATES: &[&str] = &["count", "sum", "avg", "min", "max"];

fn function_name(f: &ast::Function) -> String {
    f.name.to_string().to_lowercase()
}

fn is_aggregate(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Function(f) if AGGREGATES.contains(&function_name(f).as_str()) && f.over.is_none())
}

/// True if `e` calls an aggregate of *this* query level: subqueries are not entered (an
/// aggregate inside one belongs to it).
fn contains_aggregate(e: &ast::Expr) -> bool {
    use ast::Expr as E;
    if is_aggregate(e) {
        return true;
    }
    let any = |xs: &[&ast::Expr]| xs.iter().any(|x| contains_aggregate(x));
    match e {
        E::BinaryOp { left, right, .. } => any(&[left, right]),
        E::UnaryOp { expr, .. }
        | E::Nested(expr)
        | E::Cast { expr, .. }
        | E::IsNull(expr)
        | E::IsNotNull(expr)
        | E::IsTrue(expr)
        | E::IsFalse(expr)
        | E::IsNotTrue(expr)
        | E::IsNotFalse(expr)
        | E::IsUnknown(expr)
        | E::IsNotUnknown(expr)
        | E::Extract { expr, .. }
        | E::InSubquery { expr, .. } => contains_aggregate(expr),
        E::IsDistinctFrom(a, b) | E::IsNotDistinctFrom(a, b) => any(&[a, b]),
        E::Between {
            expr, low, high, ..
        } => any(&[expr, low, high]),
        E::InList { expr, list, .. } => {
            contains_aggregate(expr) || list.iter().any(contains_aggregate)
        }
        E::Like { expr, pattern, .. } | E::ILike { expr, pattern, .. } => any(&[expr, pattern]),
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(contains_aggregate)
                || conditions
                    .iter()
                    .any(|w| contains_aggregate(&w.condition) || contains_aggregate(&w.result))
                || else_result.as_deref().is_some_and(contains_aggregate)
        }
        E::Function(f) => {
            function_args(f).is_ok_and(|args| args.into_iter().any(contains_aggregate))
        }
        E::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            contains_aggregate(expr)
                || substring_from.as_deref().is_some_and(contains_aggregate)
                || substring_for.as_deref().is_some_and(contains_aggregate)
        }
        E::Trim {
            expr, trim_what, ..
        } => contains_aggregate(expr) || trim_what.as_deref().is_some_and(contains_aggregate),
        E::Position { expr, r#in } => any(&[expr, r#in]),
        _ => false,
    }
}

impl<'a> Binder<'a> {
    /// A binder reading the catalog through `txn`.
    pub fn new(txn: &'a dyn KvTxn) -> Binder<'a> {
        Binder {
            txn,
            outer: Vec::new(),
            ctes: HashMap::new(),
            stats: None,
            table_stats: HashMap::new(),
            join_notes: Vec::new(),
            cacheable: true,
        }
    }

    /// Gives the `nq_stat_*` views their source.
    pub fn with_stats(mut self, stats: &'a crate::stats::EngineStats) -> Binder<'a> {
        self.stats = Some(stats);
        self
    }

    /// A system view (`nq_tables`, `nq_columns`, `nq_indexes`, `nq_stat_statements`,
    /// `nq_stat_indexes`) as literal rows read now.
    fn system_view(&self, name: &str, alias: &str) -> Result<Option<Plan>> {
        let text = |s: &str| Value::Text(s.to_string());
        let tables = || catalog::list_tables(self.txn);
        let (cols, rows): (Vec<(&str, DataType)>, Vec<Vec<Value>>) = match name {
            "nq_tables" => (
                vec![
                    ("table_name", DataType::Text(None)),
                    ("columns", DataType::BigInt),
                    ("indexes", DataType::BigInt),
                    ("primary_key", DataType::Text(None)),
                ],
                tables()?
                    .iter()
                    .map(|t| {
                        vec![
                            text(&t.name),
                            Value::Int(t.columns.len() as i64),
                            Value::Int(t.indexes.len() as i64),
                            if t.primary_key.is_empty() {
                                Value::Null
                            } else {
                                text(&t.primary_key.join(", "))
                            },
                        ]
                    })
                    .collect(),
            ),
            "nq_columns" => (
                vec![
                    ("table_name", DataType::Text(None)),
                    ("column_name", DataType::Text(None)),
                    ("ordinal", DataType::BigInt),
                    ("data_type", DataType::Text(None)),
                    ("nullable", DataType::Boolean),
                    ("column_default", DataType::Text(None)),
                ],
                tables()?
                    .iter()
                    .flat_map(|t| {
                        t.columns.iter().enumerate().map(|(i, c)| {
                            vec![
                                text(&t.name),
                                text(&c.name),
                                Value::Int(i as i64 + 1),
                                text(&c.data_type.to_string()),
                                Value::Bool(c.nullable),
                                c.default.as_deref().map_or(Value::Null, text),
                            ]
                        })
                    })
                    .collect(),
            ),
            "nq_indexes" => (
                vec![
                    ("table_name", DataType::Text(None)),
                    ("index_name", DataType::Text(None)),
                    ("columns", DataType::Text(None)),
                    ("is_unique", DataType::Boolean),
                    ("is_primary", DataType::Boolean),
                ],
                tables()?
                    .iter()
                    .flat_map(|t| {
                        let pk = (!t.primary_key.is_empty()).then(|| {
                            vec![
                                text(&t.name),
                                text(&t.primary_key_name),
                                text(&t.primary_key.join(", ")),
                                Value::Bool(true),
                                Value::Bool(true),
                            ]
                        });
                        pk.into_iter().chain(t.indexes.iter().map(|i| {
                            vec![
                                text(&t.name),
                                text(&i.name),
                                text(&i.columns.join(", ")),
                                Value::Bool(i.unique),
                                Value::Bool(false),
                            ]
                        }))
                    })
                    .collect(),
            ),
            "nq_stat_statements" => (
                vec![
                    ("query", DataType::Text(None)),
                    ("calls", DataType::BigInt),
                    ("total_ms", DataType::Double),
                    ("mean_ms", DataType::Double),
                    ("rows", DataType::BigInt),
                ],
                self.stats
                    .map(crate::stats::EngineStats::statements)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(q, st)| {
                        let total = st.total.as_secs_f64() * 1000.0;
                        vec![
                            Value::Text(q),
                            Value::Int(st.calls as i64),
                            Value::Float(total),
                            Value::Float(total / st.calls.max(1) as f64),
                            Value::Int(st.rows as i64),
                        ]
                    })
                    .collect(),
            ),
            "nq_stat_indexes" => (
                vec![
                    ("table_name", DataType::Text(None)),
                    ("index_name", DataType::Text(None)),
                    ("scans", DataType::BigInt),
                    ("rows_read", DataType::BigInt),
                ],
                tables()?
                    .iter()
                    .flat_map(|t| {
                        t.indexes.iter().map(|i| {
                            let (scans, rows) =
                                self.stats.map_or((0, 0), |s| s.index_usage(t.id, i.id));
                            vec![
                                text(&t.name),
                                text(&i.name),
                                Value::Int(scans as i64),
                                Value::Int(rows as i64),
                            ]
                        })
                    })
                    .collect(),
            ),
            "nq_stats" => (
                vec![
                    ("table_name", DataType::Text(None)),
                    ("column_name", DataType::Text(None)),
                    ("rows", DataType::BigInt),
                    ("distinct_values", DataType::BigInt),
                    ("null_fraction", DataType::Double),
                    ("most_common", DataType::Text(None)),
                    ("histogram_buckets", DataType::BigInt),
                    ("histogram_bounds", DataType::Text(None)),
                ],
                {
                    let mut rows = Vec::new();
                    for t in tables()? {
                        let Some(st) = crate::tablestats::get(self.txn, &t.name)? else {
                            continue;
                        };
                        for c in &t.columns {
                            let Some(cs) = st.columns.get(&c.name) else {
                                continue;
                            };
                            let mcv: Vec<String> = cs
                                .most_common
                                .iter()
                                .map(|(v, f)| format!("{v}:{f:.4}"))
                                .collect();
                            let bounds: Vec<String> =
                                cs.histogram.iter().map(ToString::to_string).collect();
                            rows.push(vec![
                                text(&t.name),
                                text(&c.name),
                                Value::Int(st.rows as i64),
                                Value::Int(cs.distinct as i64),
                                Value::Float(cs.null_fraction),
                                text(&mcv.join(", ")),
                                Value::Int(cs.histogram.len().saturating_sub(1) as i64),
                                text(&bounds.join(", ")),
                            ]);
                        }
                    }
                    rows
                },
            ),
            _ => return Ok(None),
        };
        Ok(Some(Plan::Values {
            rows: rows
                .into_iter()
                .map(|r| r.into_iter().map(Expr::Literal).collect())
                .collect(),
            columns: cols
                .into_iter()
                .map(|(n, t)| OutColumn {
                    table: Some(alias.to_string()),
                    name: n.to_string(),
                    data_type: t,
                })
                .collect(),
        }))
    }

    /// Binds a query to a plan.
    pub fn query(&mut self, q: &ast::Query) -> Result<Plan> {
        let saved = self.ctes.clone();
        if let Some(with) = &q.with {
            if with.recursive {
                return Err(SqlError::Unsupported("WITH RECURSIVE".into()));
            }
            for cte in &with.cte_tables {
                let name = ident(&cte.alias.name);
                if with
                    .cte_tables
                    .iter()
                    .filter(|c| ident(&c.alias.name) == name)
                    .count()
                    > 1
                {
                    return Err(SqlError::Invalid(format!(
                        "WITH query name {name:?} specified more than once"
                    )));
                }
                let mut plan = self.query(&cte.query)?;
                let mut cols = plan.columns();
                if !cte.alias.columns.is_empty() {
                    if cte.alias.columns.len() != cols.len() {
                        return Err(SqlError::Invalid(format!(
                            "WITH {name} names {} columns but its query returns {}",
                            cte.alias.columns.len(),
                            cols.len()
                        )));
                    }
                    for (c, a) in cols.iter_mut().zip(&cte.alias.columns) {
                        c.name = ident(&a.name);
                    }
                    let n = cols.len();
                    plan = Plan::Project {
                        input: Box::new(plan),
                        exprs: (0..n).map(Expr::Column).collect(),
                        columns: cols,
                    };
                }
                self.ctes.insert(name, plan);
            }
        }
        let order = q.order_by.as_ref().map(|o| match &o.kind {
            ast::OrderByKind::Expressions(list) => Ok(list.as_slice()),
            ast::OrderByKind::All(_) => Err(SqlError::Unsupported("ORDER BY ALL".into())),
        });
        let order: &[ast::OrderByExpr] = match order {
            Some(r) => r?,
            None => &[],
        };
        let mut plan = match q.body.as_ref() {
            SetExpr::Select(s) => self.select(s, order)?,
            other => {
                let plan = self.set_expr(other)?;
                if order.is_empty() {
                    plan
                } else {
                    let cols = plan.columns();
                    let scope = Scope {
                        columns: cols,
                        prefer_first: false,
                    };
                    let mut keys = Vec::new();
                    for o in order {
                        let e = match self.output_ref(&o.expr, &scope)? {
                            Some(i) => Expr::Column(i),
                            None => self.expr(&o.expr, &scope)?,
                        };
                        keys.push(sort_key(e, o));
                    }
                    Plan::Sort {
                        input: Box::new(plan),
                        keys,
                    }
                }
            }
        };
        if let Some(fetch) = &q.fetch {
            if fetch.with_ties || fetch.percent {
                return Err(SqlError::Unsupported(
                    "FETCH ... WITH TIES / PERCENT".into(),
                ));
            }
            let empty = Scope {
                columns: Vec::new(),
                prefer_first: false,
            };
            let limit = match &fetch.quantity {
                Some(e) => self.expr(e, &empty)?,
                None => Expr::lit(Value::Int(1)),
            };
            let offset = match &q.limit_clause {
                Some(ast::LimitClause::LimitOffset {
                    offset: Some(o),
                    limit: None,
                    ..
                }) => Some(self.expr(&o.value, &empty)?),
                None => None,
                Some(_) => {
                    return Err(SqlError::Invalid(
                        "FETCH cannot be combined with LIMIT".into(),
                    ));
                }
            };
            plan = Plan::Limit {
                input: Box::new(plan),
                limit: Some(limit),
                offset,
            };
            self.ctes = saved;
            return Ok(plan);
        }
        if let Some(limit) = &q.limit_clause {
            let (limit, offset) = match limit {
                ast::LimitClause::LimitOffset { limit, offset, .. } => {
                    (limit.as_ref(), offset.as_ref().map(|o| &o.value))
                }
                ast::LimitClause::OffsetCommaLimit { offset, limit } => (Some(limit), Some(offset)),
            };
            let empty = Scope {
                columns: Vec::new(),
                prefer_first: false,
            };
            plan = Plan::Limit {
                input: Box::new(plan),
                limit: limit.map(|e| self.expr(e, &empty)).transpose()?,
                offset: offset.map(|e| self.expr(e, &empty)).transpose()?,
            };
        }
        self.ctes = saved;
        let mut plan = self.lookup_joins(plan);
        let all = vec![true; plan.width()];
        prune_columns(&mut plan, &all);
        Ok(plan)
    }

    /// Turns a hash join into an index nested-loop join where the right side is a table
    /// keyed (by primary key or a one-column index) on the join column and the left side is
    /// estimated to be much smaller than the table: a lookup per left row beats reading and
    /// hashing the whole table.
    fn lookup_joins(&mut self, plan: Plan) -> Plan {
        let b = |me: &mut Self, p: Box<Plan>| Box::new(me.lookup_joins(*p));
        match plan {
            Plan::Filter { input, predicate } => Plan::Filter {
                input: b(self, input),
                predicate,
            },
            Plan::Project {
                input,
                exprs,
                columns,
            } => Plan::Project {
                input: b(self, input),
                exprs,
                columns,
            },
            Plan::Sort { input, keys } => Plan::Sort {
                input: b(self, input),
                keys,
            },
            Plan::Limit {
                input,
                limit,
                offset,
            } => Plan::Limit {
                input: b(self, input),
                limit,
                offset,
            },
            Plan::Distinct { input } => Plan::Distinct {
                input: b(self, input),
            },
            Plan::Aggregate {
                input,
                groups,
                aggs,
                columns,
            } => Plan::Aggregate {
                input: b(self, input),
                groups,
                aggs,
                columns,
            },
            Plan::SetOp {
                left,
                right,
                kind,
                all,
            } => Plan::SetOp {
                left: b(self, left),
                right: b(self, right),
                kind,
                all,
            },
            Plan::Join {
                left,
                right,
                kind,
                keys,
                condition,
                algorithm: _,
            } => {
                let left = b(self, left);
                let right = b(self, right);
                if let Some(lookup) = self.as_lookup(&left, &right, kind, &keys, condition.as_ref())
                {
                    let Plan::Scan {
                        table,
                        alias,
                        filter,
                        columns,
                        ..
                    } = *right
                    else {
                        unreachable!("as_lookup only accepts scans")
                    };
                    return Plan::LookupJoin {
                        left,
                        table,
                        alias,
                        columns,
                        index: lookup.1,
                        left_key: lookup.0,
                        filter,
                        kind,
                        condition,
                        needed: None,
                    };
                }
                // The mirror: a small right side driving lookups into the left table (inner
                // joins only; a projection restores the column order).
                let swapped: Vec<(Expr, Expr)> =
                    keys.iter().map(|(l, r)| (r.clone(), l.clone())).collect();
                if kind == JoinKind::Inner
                    && condition
                        .as_ref()
                        .is_none_or(Expr::is_row_independent_except_columns)
                    && let Some((key, index)) = self.as_lookup(&right, &left, kind, &swapped, None)
                {
                    let (lw, rw) = (left.width(), right.width());
                    let columns = left.columns().into_iter().chain(right.columns()).collect();
                    let Plan::Scan {
                        table,
                        alias,
                        filter,
                        columns: table_columns,
                        ..
                    } = *left
                    else {
                        unreachable!("as_lookup only accepts scans")
                    };
                    let to_new = move |i: usize| if i < lw { rw + i } else { i - lw };
                    return Plan::Project {
                        input: Box::new(Plan::LookupJoin {
                            left: right,
                            table,
                            alias,
                            columns: table_columns,
                            index,
                            left_key: key,
                            filter,
                            kind,
                            condition: condition.map(|c| c.remap(&to_new)),
                            needed: None,
                        }),
                        exprs: (0..lw + rw).map(|j| Expr::Column(to_new(j))).collect(),
                        columns,
                    };
                }
                self.merge_or_hash(*left, *right, kind, keys, condition)
            }
            other => other,
        }
    }

    /// A hash join, or a merge join when that is estimated cheaper: an INNER or LEFT join on
    /// one pair of plain columns of the same type whose inputs arrive sorted on them (a scan
    /// in primary-key order, an index scan in index order), or are cheap enough to sort.
    fn merge_or_hash(
        &mut self,
        left: Plan,
        right: Plan,
        kind: JoinKind,
        keys: Vec<(Expr, Expr)>,
        condition: Option<Expr>,
    ) -> Plan {
        let hash = |left: Plan, right: Plan, keys, condition| Plan::Join {
            left: Box::new(left),
            right: Box::new(right),
            kind,
            keys,
            condition,
            algorithm: JoinAlgorithm::Hash,
        };
        let mergeable = matches!(kind, JoinKind::Inner | JoinKind::Left)
            && match keys.as_slice() {
                [(Expr::Column(l), Expr::Column(r))] => {
                    let (lt, rt) = (
                        left.columns()[*l].data_type.clone(),
                        right.columns()[*r].data_type.clone(),
                    );
                    let orderable = |t: &DataType| {
                        t.is_integer()
                            || matches!(
                                t,
                                DataType::Text(_)
                                    | DataType::Date
                                    | DataType::Timestamp
                                    | DataType::Decimal(_)
                                    | DataType::Boolean
                            )
                    };
                    orderable(&lt) && (lt == rt || (lt.is_integer() && rt.is_integer()))
                }
                _ => false,
            };
        if !mergeable {
            return hash(left, right, keys, condition);
        }
        let (lk, rk) = match &keys[0] {
            (Expr::Column(l), Expr::Column(r)) => (*l, *r),
            _ => unreachable!("checked above"),
        };
        let stats = |t: &str| crate::tablestats::get(self.txn, t).ok().flatten();
        let (l, r) = (
            crate::cost::estimate(&left, &stats),
            crate::cost::estimate(&right, &stats),
        );
        let (left_sorted, right_sorted) = (sorted_on(&left, lk), sorted_on(&right, rk));
        let sort_cost = |rows: f64, sorted: bool| {
            if sorted {
                0.0
            } else {
                rows * rows.max(2.0).log2()
            }
        };
        let merge_cost = crate::cost::merge_join_work(l.rows, r.rows)
            + sort_cost(l.rows, left_sorted)
            + sort_cost(r.rows, right_sorted);
        if merge_cost >= crate::cost::hash_join_work(l.rows, r.rows) {
            return hash(left, right, keys, condition);
        }
        let sorted = |plan: Plan, col: usize, already: bool| {
            if already {
                plan
            } else {
                Plan::Sort {
                    input: Box::new(plan),
                    keys: vec![SortKey {
                        expr: Expr::Column(col),
                        asc: true,
                        nulls_first: true,
                    }],
                }
            }
        };
        Plan::Join {
            left: Box::new(sorted(left, lk, left_sorted)),
            right: Box::new(sorted(right, rk, right_sorted)),
            kind,
            keys,
            condition,
            algorithm: JoinAlgorithm::Merge,
        }
    }

    /// The left key and index to look `right` up with, if a lookup join is the better plan.
    #[allow(clippy::type_complexity)]
    fn as_lookup(
        &mut self,
        left: &Plan,
        right: &Plan,
        kind: JoinKind,
        keys: &[(Expr, Expr)],
        condition: Option<&Expr>,
    ) -> Option<(Expr, Option<(u32, String)>)> {
        let _ = condition;
        if !matches!(kind, JoinKind::Inner | JoinKind::Left) || keys.len() != 1 {
            return None;
        }
        let Plan::Scan { table, .. } = right else {
            return None;
        };
        let (lk, rk) = &keys[0];
        let Expr::Column(c) = rk else { return None };
        let name = &table.columns.get(*c)?.name;
        let index = if table.primary_key.len() == 1 && table.primary_key[0] == *name {
            None
        } else {
            let idx = table
                .indexes
                .iter()
                .filter(|i| i.columns.len() == 1 && i.columns[0] == *name)
                .min_by_key(|i| !i.unique)?;
            Some((idx.id, idx.name.clone()))
        };
        let stats = |t: &str| crate::tablestats::get(self.txn, t).ok().flatten();
        // A lookup per outer row against reading the right side once (through its own best
        // access path, which may already be an index) and hashing it.
        let outer = crate::cost::estimate(left, &stats).rows;
        let scan = crate::cost::estimate(right, &stats);
        (outer * 4.0 < scan.cost + scan.rows).then(|| (lk.clone(), index))
    }

    fn set_expr(&mut self, body: &SetExpr) -> Result<Plan> {
        match body {
            SetExpr::Select(s) => self.select(s, &[]),
            SetExpr::Query(q) => self.query(q),
            SetExpr::Values(values) => self.values(values),
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let l = self.set_expr(left)?;
                let r = self.set_expr(right)?;
                if l.width() != r.width() {
                    return Err(SqlError::Invalid(format!(
                        "each {op} query must have the same number of columns ({} and {})",
                        l.width(),
                        r.width()
                    )));
                }
                for (a, b) in l.columns().iter().zip(r.columns()) {
                    let compatible = a.data_type == DataType::Null
                        || b.data_type == DataType::Null
                        || a.data_type == b.data_type
                        || crate::cast::common_type(&a.data_type, &b.data_type).is_some();
                    if !compatible {
                        return Err(SqlError::TypeMismatch(format!(
                            "{op} types {} and {} cannot be matched",
                            a.data_type, b.data_type
                        )));
                    }
                }
                let kind = match op {
                    ast::SetOperator::Union => SetOpKind::Union,
                    ast::SetOperator::Intersect => SetOpKind::Intersect,
                    ast::SetOperator::Except | ast::SetOperator::Minus => SetOpKind::Except,
                };
                let all = matches!(set_quantifier, ast::SetQuantifier::All);
                Ok(Plan::SetOp {
                    left: Box::new(l),
                    right: Box::new(r),
                    kind,
                    all,
                })
            }
            other => Err(SqlError::Unsupported(format!("query form {other}"))),
        }
    }

    /// Binds `VALUES (...), (...)`.
    pub fn values(&mut self, values: &ast::Values) -> Result<Plan> {
        let empty = Scope {
            columns: Vec::new(),
            prefer_first: false,
        };
        let mut rows = Vec::new();
        let mut width = None;
        for row in &values.rows {
            let exprs = row
                .iter()
                .map(|e| self.expr(e, &empty))
                .collect::<Result<Vec<_>>>()?;
            if *width.get_or_insert(exprs.len()) != exprs.len() {
                return Err(SqlError::Invalid(
                    "VALUES lists must all be the same length".into(),
                ));
            }
            rows.push(exprs);
        }
        let width = width.unwrap_or(0);
        let columns = (0..width)
            .map(|i| OutColumn {
                table: None,
                name: format!("column{}", i + 1),
                data_type: rows
                    .first()
                    .map(|r: &Vec<Expr>| literal_type(&r[i]))
                    .unwrap_or(DataType::Null),
            })
            .collect();
        Ok(Plan::Values { rows, columns })
    }

    fn table_factor(&mut self, f: &TableFactor) -> Result<Plan> {
        match f {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                if let Some(args) = args {
                    let fname = object_name(name)?;
                    if fname != crate::grover::NAME {
                        return Err(SqlError::UnknownFunction(format!(
                            "table function {fname}; QSQL has {}",
                            crate::grover::NAME
                        )));
                    }
                    let args = crate::grover::GroverArgs::parse(&args.args)?;
                    return self.grover_search(&args, alias.as_ref().map(|a| ident(&a.name)));
                }
                let tname = object_name(name)?;
                let alias_name = alias.as_ref().map_or(tname.clone(), |a| ident(&a.name));
                if let Some(cte) = self.ctes.get(&tname) {
                    return Ok(rename(cte.clone(), &alias_name));
                }
                let def = match catalog::get_table(self.txn, &tname)? {
                    Some(def) => Arc::new(def),
                    None => {
                        self.cacheable = false;
                        return self
                            .system_view(&tname, &alias_name)?
                            .ok_or(SqlError::UnknownTable(tname));
                    }
                };
                Ok(scan_plan(def, alias_name, Access::Full))
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                let plan = self.query(subquery)?;
                let Some(alias) = alias else {
                    return Ok(plan);
                };
                let mut plan = rename(plan, &ident(&alias.name));
                if !alias.columns.is_empty() {
                    let mut cols = plan.columns();
                    for (c, a) in cols.iter_mut().zip(&alias.columns) {
                        c.name = ident(&a.name);
                    }
                    let n = cols.len();
                    plan = Plan::Project {
                        input: Box::new(plan),
                        exprs: (0..n).map(Expr::Column).collect(),
                        columns: cols,
                    };
                }
                Ok(plan)
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.table_with_joins(table_with_joins),
            other => Err(SqlError::Unsupported(format!("FROM item {other}"))),
        }
    }

    /// `grover_search(table, column, predicate [, max_rows])`: the table's rows in the order of
    /// an index whose first column is `column` (or of the primary key), searched for
    /// `predicate` by the Grover simulator. Output columns are the table's, under the alias or
    /// the table's name.
    fn grover_search(
        &mut self,
        args: &crate::grover::GroverArgs,
        alias: Option<String>,
    ) -> Result<Plan> {
        let def = Arc::new(catalog::table(self.txn, &args.table)?);
        if !def.columns.iter().any(|c| c.name == args.column) {
            return Err(SqlError::UnknownColumn(format!(
                "{}.{}",
                def.name, args.column
            )));
        }
        let access = match def
            .indexes
            .iter()
            .find(|i| i.columns.first() == Some(&args.column))
        {
            Some(index) => Access::IndexRange {
                index: index.id,
                name: index.name.clone(),
                range: crate::plan::KeyRange::default(),
                covering: false,
            },
            None if def.primary_key.first() == Some(&args.column) => {
                Access::PkRange(crate::plan::KeyRange::default())
            }
            None => {
                return Err(SqlError::Invalid(format!(
                    "{} needs an index on {}.{} (its items are the index entries): CREATE INDEX {}_{}_idx ON {} ({})",
                    crate::grover::NAME,
                    def.name,
                    args.column,
                    def.name,
                    args.column,
                    def.name,
                    args.column
                )));
            }
        };
        let alias = alias.unwrap_or_else(|| def.name.clone());
        let ast = crate::write::parse_expr(&args.predicate)?;
        let predicate = self.table_expr(&ast, &def, &alias)?;
        Ok(Plan::Grover {
            input: Box::new(scan_plan(def, alias, access)),
            predicate,
            max_rows: args.max_rows,
        })
    }

    fn table_with_joins(&mut self, t: &ast::TableWithJoins) -> Result<Plan> {
        let mut plan = self.table_factor(&t.relation)?;
        for j in &t.joins {
            let right = self.table_factor(&j.relation)?;
            use ast::JoinOperator as J;
            let (kind, constraint) = match &j.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, Some(c)),
                J::FullOuter(c) => (JoinKind::Full, Some(c)),
                J::CrossJoin(_) => (JoinKind::Inner, None),
                other => return Err(SqlError::Unsupported(format!("join {other:?}"))),
            };
            let left_width = plan.width();
            let mut cols = plan.columns();
            cols.extend(right.columns());
            let scope = Scope {
                columns: cols,
                prefer_first: false,
            };
            let condition = match constraint {
                None | Some(ast::JoinConstraint::None) => None,
                Some(ast::JoinConstraint::On(e)) => Some(self.expr(e, &scope)?),
                Some(ast::JoinConstraint::Using(names)) => {
                    let mut parts = Vec::new();
                    for n in names {
                        let name = object_name(n)?;
                        let l = Scope {
                            columns: scope.columns[..left_width].to_vec(),
                            prefer_first: false,
                        }
                        .resolve(None, &name)?
                        .ok_or_else(|| SqlError::UnknownColumn(name.clone()))?;
                        let r = Scope {
                            columns: scope.columns[left_width..].to_vec(),
                            prefer_first: false,
                        }
                        .resolve(None, &name)?
                        .ok_or_else(|| SqlError::UnknownColumn(name.clone()))?;
                        parts.push(Expr::Binary(
                            BinOp::Eq,
                            Box::new(Expr::Column(l)),
                            Box::new(Expr::Column(left_width + r)),
                        ));
                    }
                    Expr::and_all(parts)
                }
                Some(ast::JoinConstraint::Natural) => {
                    return Err(SqlError::Unsupported("NATURAL JOIN".into()));
                }
            };
            plan = make_join(plan, right, kind, condition);
        }
        Ok(plan)
    }

    /// Binds a SELECT with the ORDER BY of its query.
    fn select(&mut self, s: &ast::Select, order: &[ast::OrderByExpr]) -> Result<Plan> {
        // FROM and WHERE
        if let Some(w) = &s.selection
            && contains_aggregate(w)
        {
            return Err(SqlError::Invalid(
                "aggregate functions are not allowed in WHERE".into(),
            ));
        }
        let quantum = crate::parse::quantum_hint(s)?
            .map(|arg| crate::quantum_join::Solver::parse(&arg))
            .transpose()?;
        let mut plan = self.bind_from_where(&s.from, s.selection.as_ref(), quantum)?;
        let scope = Scope {
            columns: plan.columns(),
            prefer_first: false,
        };
        // Aggregation
        let group_exprs: &[ast::Expr] = match &s.group_by {
            ast::GroupByExpr::Expressions(list, _) => list,
            ast::GroupByExpr::All(_) => {
                return Err(SqlError::Unsupported("GROUP BY ALL".into()));
            }
        };
        let mut aggregating = !group_exprs.is_empty()
            || s.having.is_some()
            || s.projection.iter().any(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    contains_aggregate(e)
                }
                _ => false,
            })
            || order.iter().any(|o| contains_aggregate(&o.expr));
        let mut agg = AggState {
            group_text: Vec::new(),
            group_count: 0,
            calls: Vec::new(),
        };
        let mut groups = Vec::new();
        if aggregating {
            for g in group_exprs {
                // GROUP BY 1 / GROUP BY alias refer to the select list.
                let target = match g {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::Number(n, _) => {
                            let k: usize = n.parse().map_err(|_| {
                                SqlError::Invalid(format!("GROUP BY position {n} is not valid"))
                            })?;
                            Some(projection_expr(&s.projection, k)?)
                        }
                        _ => None,
                    },
                    ast::Expr::Identifier(id) if scope.resolve(None, &ident(id))?.is_none() => {
                        alias_expr(&s.projection, &ident(id))
                    }
                    _ => None,
                };
                let g = target.unwrap_or(g);
                agg.group_text.push(g.to_string());
                groups.push(self.expr(g, &scope)?);
            }
            agg.group_count = groups.len();
        }
        // Select list, bound either over the FROM row or over the aggregate output.
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        let mut pending_aggs: Vec<AggCall> = Vec::new();
        for item in &s.projection {
            match item {
                SelectItem::Wildcard(_) => {
                    if aggregating {
                        return Err(SqlError::Invalid(
                            "SELECT * cannot be combined with GROUP BY or aggregates".into(),
                        ));
                    }
                    for (i, c) in scope.columns.iter().enumerate() {
                        exprs.push(Expr::Column(i));
                        columns.push(c.clone());
                    }
                }
                SelectItem::QualifiedWildcard(kind, _) => {
                    let t = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => object_name(n)?,
                        ast::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                    };
                    let mut any = false;
                    for (i, c) in scope.columns.iter().enumerate() {
                        if c.table.as_deref() == Some(t.as_str()) {
                            exprs.push(Expr::Column(i));
                            columns.push(c.clone());
                            any = true;
                        }
                    }
                    if !any {
                        return Err(SqlError::UnknownTable(t));
                    }
                }
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    let bound = if aggregating {
                        self.post_agg(e, &scope, &mut agg, &mut pending_aggs)?
                    } else {
                        self.expr(e, &scope)?
                    };
                    let name = match item {
                        SelectItem::ExprWithAlias { alias, .. } => ident(alias),
                        _ => display_name(e),
                    };
                    columns.push(OutColumn {
                        table: None,
                        name,
                        data_type: self.type_of(
                            &bound,
                            &scope,
                            &groups,
                            &pending_aggs,
                            aggregating,
                        ),
                    });
                    exprs.push(bound);
                }
                SelectItem::ExprWithAliases { .. } => {
                    return Err(SqlError::Unsupported("multiple aliases".into()));
                }
            }
        }
        let having = match &s.having {
            Some(h) => Some(self.post_agg(h, &scope, &mut agg, &mut pending_aggs)?),
            None => None,
        };
        // ORDER BY: output positions, output aliases, or expressions over the input (added as
        // hidden columns and dropped after sorting).
        let visible = exprs.len();
        let out_scope = Scope {
            columns: columns.clone(),
            prefer_first: false,
        };
        let mut keys = Vec::new();
        let item_texts: Vec<Option<String>> = s
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    Some(e.to_string())
                }
                _ => None,
            })
            .collect();
        let wildcard = s.projection.iter().any(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        });
        for o in order {
            // ORDER BY an expression that is also in the select list sorts by that column.
            let same_item = if wildcard {
                None
            } else {
                let text = o.expr.to_string();
                item_texts
                    .iter()
                    .position(|t| t.as_deref() == Some(text.as_str()))
            };
            let e = match self.output_ref(&o.expr, &out_scope)?.or(same_item) {
                Some(i) => Expr::Column(i),
                None => {
                    let bound = if aggregating {
                        self.post_agg(&o.expr, &scope, &mut agg, &mut pending_aggs)?
                    } else {
                        self.expr(&o.expr, &scope)?
                    };
                    exprs.push(bound);
                    columns.push(OutColumn {
                        table: None,
                        name: format!("?sort{}", exprs.len()),
                        data_type: DataType::Null,
                    });
                    Expr::Column(exprs.len() - 1)
                }
            };
            keys.push(sort_key(e, o));
        }
        aggregating |= !pending_aggs.is_empty();
        if aggregating {
            let mut agg_cols: Vec<OutColumn> = groups
                .iter()
                .enumerate()
                .map(|(i, g)| OutColumn {
                    table: None,
                    name: format!("?group{i}"),
                    data_type: expr_type(g, &scope.columns),
                })
                .collect();
            agg_cols.extend(pending_aggs.iter().enumerate().map(|(i, a)| OutColumn {
                table: None,
                name: format!("?agg{i}"),
                data_type: agg_type(a, &scope.columns),
            }));
            plan = Plan::Aggregate {
                input: Box::new(plan),
                groups,
                aggs: pending_aggs,
                columns: agg_cols,
            };
            if let Some(h) = having {
                plan = Plan::Filter {
                    input: Box::new(plan),
                    predicate: h,
                };
            }
        }
        plan = Plan::Project {
            input: Box::new(plan),
            exprs,
            columns: columns.clone(),
        };
        match &s.distinct {
            None | Some(ast::Distinct::All) => {}
            Some(ast::Distinct::Distinct) => {
                if columns.len() > visible {
                    return Err(SqlError::Invalid(
                        "for SELECT DISTINCT, ORDER BY expressions must appear in the select list"
                            .into(),
                    ));
                }
                plan = Plan::Distinct {
                    input: Box::new(plan),
                };
            }
            Some(ast::Distinct::On(_)) => {
                return Err(SqlError::Unsupported("DISTINCT ON".into()));
            }
        }
        if !keys.is_empty() {
            plan = Plan::Sort {
                input: Box::new(plan),
                keys,
            };
        }
        if columns.len() > visible {
            plan = Plan::Project {
                input: Box::new(plan),
                exprs: (0..visible).map(Expr::Column).collect(),
                columns: columns[..visible].to_vec(),
            };
        }
        Ok(plan)
    }

    /// Binds FROM and WHERE. Inner joins of two or more relations are flattened into a join
    /// graph and ordered by cost (see `join_order`), by the annealer when `quantum` names a
    /// solver (QUANTUM_JOIN); the output columns keep FROM order.
    fn bind_from_where(
        &mut self,
        from: &[ast::TableWithJoins],
        selection: Option<&ast::Expr>,
        quantum: Option<crate::quantum_join::Solver>,
    ) -> Result<Plan> {
        let inner_only = from.iter().all(|t| {
            t.joins.iter().all(|j| {
                use ast::JoinOperator as J;
                matches!(
                    &j.join_operator,
                    J::Join(ast::JoinConstraint::On(_) | ast::JoinConstraint::None)
                        | J::Inner(ast::JoinConstraint::On(_) | ast::JoinConstraint::None)
                        | J::CrossJoin(_)
                )
            })
        });
        let relations: usize = from.iter().map(|t| 1 + t.joins.len()).sum();
        if quantum.is_some() && !inner_only {
            return Err(SqlError::Unsupported(
                "QUANTUM_JOIN orders inner joins; this FROM clause also has outer joins".into(),
            ));
        }
        if relations > crate::join_order::MAX_RELATIONS {
            return Err(SqlError::Unsupported(format!(
                "{relations} relations in one FROM clause; at most {} can be joined",
                crate::join_order::MAX_RELATIONS
            )));
        }
        if !inner_only || relations < 2 {
            let mut plan = Plan::Single;
            for (i, t) in from.iter().enumerate() {
                let next = self.table_with_joins(t)?;
                plan = if i == 0 {
                    next
                } else {
                    make_join(plan, next, JoinKind::Inner, None)
                };
            }
            if let Some(w) = selection {
                let scope = Scope {
                    columns: plan.columns(),
                    prefer_first: false,
                };
                let pred = self.expr(w, &scope)?;
                plan = push_filter(plan, pred);
            }
            return Ok(plan);
        }
        let mut rels = Vec::new();
        let mut ons = Vec::new();
        for t in from {
            rels.push(self.table_factor(&t.relation)?);
            for j in &t.joins {
                rels.push(self.table_factor(&j.relation)?);
                use ast::JoinOperator as J;
                if let J::Join(ast::JoinConstraint::On(e)) | J::Inner(ast::JoinConstraint::On(e)) =
                    &j.join_operator
                {
                    ons.push(e);
                }
            }
        }
        let columns: Vec<OutColumn> = rels.iter().flat_map(Plan::columns).collect();
        let mut seen = std::collections::HashSet::new();
        for r in &rels {
            if let Some(Some(t)) = r.columns().first().map(|c| c.table.clone())
                && !seen.insert(t.clone())
            {
                return Err(SqlError::Invalid(format!(
                    "table name {t:?} specified more than once"
                )));
            }
        }
        let scope = Scope {
            columns: columns.clone(),
            prefer_first: false,
        };
        let mut conjuncts = Vec::new();
        for e in ons.into_iter().chain(selection) {
            conjuncts.extend(self.expr(e, &scope)?.conjuncts());
        }
        self.order_joins(rels, conjuncts, columns, quantum)
    }

    fn rel_rows(&mut self, plan: &Plan) -> f64 {
        match plan {
            Plan::Scan { table, filter, .. } => {
                let stats = self.stats_of(&table.name);
                crate::cost::scan_rows(table, filter.as_ref(), stats.as_ref())
            }
            Plan::Values { rows, .. } => rows.len().max(1) as f64,
            Plan::Project { input, .. } | Plan::Filter { input, .. } => self.rel_rows(input),
            _ => crate::tablestats::DEFAULT_ROWS,
        }
    }

    fn stats_of(&mut self, table: &str) -> Option<crate::tablestats::TableStats> {
        if !self.table_stats.contains_key(table) {
            let s = crate::tablestats::get(self.txn, table).ok().flatten();
            self.table_stats.insert(table.to_string(), s);
        }
        self.table_stats.get(table).cloned().flatten()
    }

    /// Distinct values of output column `col` of a relation (its rows if unknown).
    fn distinct(&mut self, plan: &Plan, col: usize, rows: f64) -> f64 {
        let scan = match plan {
            Plan::Project { input, exprs, .. } => match exprs.get(col) {
                Some(Expr::Column(c)) => return self.distinct(input, *c, rows),
                _ => None,
            },
            Plan::Scan { table, .. } => Some(table),
            _ => None,
        };
        match scan {
            Some(table) => {
                let name = table.columns.get(col).map(|c| c.name.clone());
                let stats = self.stats_of(&table.name);
                match (stats, name) {
                    (Some(s), Some(n)) => {
                        s.columns.get(&n).map_or(rows, |c| c.distinct.max(1) as f64)
                    }
                    _ => rows,
                }
            }
            None => rows,
        }
    }

    fn order_joins(
        &mut self,
        mut rels: Vec<Plan>,
        conjuncts: Vec<Expr>,
        columns: Vec<OutColumn>,
        quantum: Option<crate::quantum_join::Solver>,
    ) -> Result<Plan> {
        use crate::join_order::{JoinEdge, JoinGraph, JoinOrderer, Relation, default_orderer};
        let n = rels.len();
        let mut offsets = Vec::with_capacity(n);
        let mut at = 0;
        for r in &rels {
            offsets.push(at);
            at += r.width();
        }
        let rel_of = |col: usize| {
            offsets
                .iter()
                .rposition(|&o| o <= col)
                .expect("column in a relation")
        };
        let mut joins: Vec<(u64, Expr)> = Vec::new();
        let mut top: Vec<Expr> = Vec::new();
        for c in conjuncts {
            let cols = c.columns();
            let set: u64 = cols.iter().fold(0, |s, &col| s | (1 << rel_of(col)));
            if !c.is_row_independent_except_columns() || set == 0 {
                top.push(c);
            } else if set.count_ones() == 1 {
                let r = set.trailing_zeros() as usize;
                let off = offsets[r];
                let rel = std::mem::replace(&mut rels[r], Plan::Single);
                rels[r] = push_filter(rel, c.remap(&|i| i - off));
            } else {
                joins.push((set, c));
            }
        }
        let rows: Vec<f64> = rels.iter().map(|r| self.rel_rows(r)).collect();
        let mut graph = JoinGraph {
            relations: rels
                .iter()
                .zip(&rows)
                .map(|(p, &r)| Relation {
                    name: p
                        .columns()
                        .first()
                        .and_then(|c| c.table.clone())
                        .unwrap_or_else(|| "?".into()),
                    rows: r,
                })
                .collect(),
            edges: Vec::new(),
        };
        for (set, c) in &joins {
            let mut members = (0..n).filter(|&r| set & (1 << r) != 0);
            let (a, b) = (members.next().expect("two"), members.next().expect("two"));
            let selectivity = match c {
                Expr::Binary(BinOp::Eq, x, y) => match (x.as_ref(), y.as_ref()) {
                    (Expr::Column(cx), Expr::Column(cy)) => {
                        let (rx, ry) = (rel_of(*cx), rel_of(*cy));
                        let dx = self.distinct(&rels[rx].clone(), cx - offsets[rx], rows[rx]);
                        let dy = self.distinct(&rels[ry].clone(), cy - offsets[ry], rows[ry]);
                        1.0 / dx.max(dy).max(1.0)
                    }
                    _ => 0.1,
                },
                _ => 0.33,
            };
            graph.edges.push(JoinEdge { a, b, selectivity });
        }
        let annealer = quantum.map(|solver| crate::quantum_join::QuantumOrderer { solver });
        let orderer: &dyn JoinOrderer = match &annealer {
            Some(a) => a,
            None => default_orderer(n),
        };
        let choice = orderer.order(&graph);
        let mut order = choice.order;
        // Both orders of the first pair cost the same; the right input of a hash join is the
        // one held in memory, so put the smaller relation there.
        if order.len() >= 2 && rows[order[0]] < rows[order[1]] {
            order.swap(0, 1);
        }
        let names: Vec<&str> = order
            .iter()
            .map(|&r| graph.relations[r].name.as_str())
            .collect();
        let note = format!(
            "Join order ({}): {} (estimated cost {:.0})",
            orderer.name(),
            names.join(", "),
            graph.cost(&order)
        );
        self.join_notes.push(note);
        self.join_notes
            .extend(choice.detail.iter().map(|line| format!("  {line}")));
        if orderer.name() != "dynamic programming" && n <= EXPLAIN_DP_LIMIT {
            let dp = crate::join_order::DpOrderer.order(&graph).order;
            self.join_notes.push(format!(
                "  Dynamic programming (exact): estimated cost {:.0}",
                graph.cost(&dp)
            ));
        }
        // Build the left-deep tree, mapping original column positions to current ones.
        let mut pos: Vec<Option<usize>> = vec![None; columns.len()];
        let mut joined = 0u64;
        let mut plan: Option<Plan> = None;
        let mut applied = vec![false; joins.len()];
        for &r in &order {
            let rel = std::mem::replace(&mut rels[r], Plan::Single);
            let width = rel.width();
            let base = plan.as_ref().map_or(0, Plan::width);
            for k in 0..width {
                pos[offsets[r] + k] = Some(base + k);
            }
            joined |= 1 << r;
            plan = Some(match plan {
                None => rel,
                Some(left) => {
                    let mut conds = Vec::new();
                    for (j, (set, c)) in joins.iter().enumerate() {
                        if !applied[j] && set & !joined == 0 {
                            applied[j] = true;
                            conds.push(c.remap(&|i| pos[i].expect("joined column")));
                        }
                    }
                    make_join(left, rel, JoinKind::Inner, Expr::and_all(conds))
                }
            });
        }
        let plan = plan.expect("at least two relations");
        let restored = Plan::Project {
            input: Box::new(plan),
            exprs: (0..columns.len())
                .map(|i| Expr::Column(pos[i].expect("every column placed")))
                .collect(),
            columns,
        };
        // Conditions with subqueries run over the row in FROM order: a correlated subquery's
        // references to outer columns were bound to those positions.
        Ok(match Expr::and_all(top) {
            Some(f) => Plan::Filter {
                input: Box::new(restored),
                predicate: f,
            },
            None => restored,
        })
    }

    /// ORDER BY 2 or ORDER BY alias: a position in the output.
    fn output_ref(&self, e: &ast::Expr, out: &Scope) -> Result<Option<usize>> {
        match e {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => {
                    let k: usize = n.parse().map_err(|_| {
                        SqlError::Invalid(format!("ORDER BY position {n} is not valid"))
                    })?;
                    if k == 0 || k > out.columns.len() {
                        return Err(SqlError::Invalid(format!(
                            "ORDER BY position {k} is not in select list"
                        )));
                    }
                    Ok(Some(k - 1))
                }
                _ => Ok(None),
            },
            ast::Expr::Identifier(id) => out.resolve(None, &ident(id)).or(Ok(None)),
            _ => Ok(None),
        }
    }

    /// Binds an expression evaluated after aggregation: GROUP BY expressions and aggregate
    /// calls become columns of the aggregate output; anything else must be built from them.
    fn post_agg(
        &mut self,
        e: &ast::Expr,
        scope: &Scope,
        agg: &mut AggState,
        calls: &mut Vec<AggCall>,
    ) -> Result<Expr> {
        let text = e.to_string();
        if let Some(i) = agg.group_text.iter().position(|g| *g == text) {
            return Ok(Expr::Column(i));
        }
        if let ast::Expr::Function(f) = e
            && is_aggregate(e)
        {
            if let Some(i) = agg.calls.iter().position(|(t, _)| *t == text) {
                return Ok(Expr::Column(agg.group_count + i));
            }
            let call = self.agg_call(f, scope)?;
            agg.calls.push((text, call.clone()));
            calls.push(call);
            return Ok(Expr::Column(agg.group_count + agg.calls.len() - 1));
        }
        match e {
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => {
                // A bare column here must be grouped; resolve it to report a clear error.
                let bound = self.expr(e, scope)?;
                if let Expr::Column(_) = bound {
                    return Err(SqlError::Invalid(format!(
                        "column {e} must appear in the GROUP BY clause or be used in an aggregate function"
                    )));
                }
                Ok(bound)
            }
            ast::Expr::Nested(inner) => self.post_agg(inner, scope, agg, calls),
            ast::Expr::BinaryOp { left, op, right } => {
                let l = self.post_agg(left, scope, agg, calls)?;
                let r = self.post_agg(right, scope, agg, calls)?;
                Ok(Expr::Binary(bin_op(op)?, Box::new(l), Box::new(r)))
            }
            ast::Expr::UnaryOp { op, expr } => {
                let x = self.post_agg(expr, scope, agg, calls)?;
                unary(op, x)
            }
            ast::Expr::Cast {
                expr, data_type: t, ..
            } => Ok(Expr::Cast(
                Box::new(self.post_agg(expr, scope, agg, calls)?),
                data_type(t)?,
            )),
            ast::Expr::IsNull(x) => Ok(Expr::IsNull(
                Box::new(self.post_agg(x, scope, agg, calls)?),
                false,
            )),
            ast::Expr::IsNotNull(x) => Ok(Expr::IsNull(
                Box::new(self.post_agg(x, scope, agg, calls)?),
                true,
            )),
            ast::Expr::Function(f) => {
                let name = function_name(f);
                let args = function_args(f)?
                    .into_iter()
                    .map(|a| self.post_agg(a, scope, agg, calls))
                    .collect::<Result<Vec<_>>>()?;
                scalar_function(&name, args)
            }
            ast::Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => Ok(Expr::Case {
                operand: operand
                    .as_ref()
                    .map(|o| self.post_agg(o, scope, agg, calls).map(Box::new))
                    .transpose()?,
                whens: conditions
                    .iter()
                    .map(|w| {
                        Ok((
                            self.post_agg(&w.condition, scope, agg, calls)?,
                            self.post_agg(&w.result, scope, agg, calls)?,
                        ))
                    })
                    .collect::<Result<_>>()?,
                otherwise: else_result
                    .as_ref()
                    .map(|o| self.post_agg(o, scope, agg, calls).map(Box::new))
                    .transpose()?,
            }),
            // Anything without column references binds as usual.
            other => {
                let bound = self.expr(
                    other,
                    &Scope {
                        columns: Vec::new(),
                        prefer_first: false,
                    },
                );
                bound.map_err(|err| match err {
                    SqlError::UnknownColumn(c) => SqlError::Invalid(format!(
                        "column {c} must appear in the GROUP BY clause or be used in an aggregate function"
                    )),
                    other => other,
                })
            }
        }
    }

    fn agg_call(&mut self, f: &ast::Function, scope: &Scope) -> Result<AggCall> {
        let name = function_name(f);
        let ast::FunctionArguments::List(list) = &f.args else {
            return Err(SqlError::Invalid(format!("{name} needs an argument")));
        };
        let distinct = matches!(
            list.duplicate_treatment,
            Some(ast::DuplicateTreatment::Distinct)
        );
        let arg = match list.args.as_slice() {
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)] if name == "count" => None,
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => {
                if contains_aggregate(e) {
                    return Err(SqlError::Invalid(
                        "aggregate function calls cannot be nested".into(),
                    ));
                }
                Some(self.expr(e, scope)?)
            }
            _ => {
                return Err(SqlError::UnknownFunction(format!(
                    "{name} takes exactly one argument"
                )));
            }
        };
        let func = match (name.as_str(), &arg) {
            ("count", None) => AggFunc::CountStar,
            ("count", Some(_)) => AggFunc::Count,
            ("sum", _) => AggFunc::Sum,
            ("avg", _) => AggFunc::Avg,
            ("min", _) => AggFunc::Min,
            ("max", _) => AggFunc::Max,
            _ => unreachable!("only aggregates reach here"),
        };
        Ok(AggCall {
            func,
            arg,
            distinct,
        })
    }

    fn type_of(
        &self,
        e: &Expr,
        scope: &Scope,
        groups: &[Expr],
        aggs: &[AggCall],
        aggregating: bool,
    ) -> DataType {
        if aggregating {
            let mut cols: Vec<OutColumn> = groups
                .iter()
                .map(|g| OutColumn {
                    table: None,
                    name: String::new(),
                    data_type: expr_type(g, &scope.columns),
                })
                .collect();
            cols.extend(aggs.iter().map(|a| OutColumn {
                table: None,
                name: String::new(),
                data_type: agg_type(a, &scope.columns),
            }));
            expr_type(e, &cols)
        } else {
            expr_type(e, &scope.columns)
        }
    }

    /// Binds a scalar expression over `scope`.
    pub fn expr(&mut self, e: &ast::Expr, scope: &Scope) -> Result<Expr> {
        use ast::Expr as E;
        Ok(match e {
            E::Identifier(id) => self.column(None, &ident(id), scope)?,
            E::CompoundIdentifier(parts) => match parts.as_slice() {
                [t, c] => self.column(Some(&ident(t)), &ident(c), scope)?,
                _ => return Err(SqlError::Unsupported(format!("qualified name {e}"))),
            },
            E::Value(v) => literal(&v.value)?,
            E::TypedString(ts) => {
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                Expr::Literal(crate::cast::cast(
                    &Value::Text(text),
                    &data_type(&ts.data_type)?,
                )?)
            }
            E::Nested(inner) => self.expr(inner, scope)?,
            E::BinaryOp { left, op, right } => {
                let op = bin_op(op)?;
                let (mut l, mut r) = (self.expr(left, scope)?, self.expr(right, scope)?);
                if matches!(
                    op,
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem
                ) {
                    // An untyped string literal takes the other operand's type ('2' + 1 = 3).
                    let (tl, tr) = (expr_type(&l, &scope.columns), expr_type(&r, &scope.columns));
                    if matches!(l, Expr::Literal(Value::Text(_))) && tr.is_numeric() {
                        l = Expr::Cast(Box::new(l), tr);
                    } else if matches!(r, Expr::Literal(Value::Text(_))) && tl.is_numeric() {
                        r = Expr::Cast(Box::new(r), tl);
                    }
                }
                let (tl, tr) = (expr_type(&l, &scope.columns), expr_type(&r, &scope.columns));
                let e = Expr::Binary(op, Box::new(l), Box::new(r));
                // Integer arithmetic keeps the operands' width, as in PostgreSQL: INTEGER +
                // INTEGER overflows past 2^31 instead of silently widening.
                let narrow = |t: &DataType| matches!(t, DataType::SmallInt | DataType::Integer);
                if matches!(
                    op,
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem
                ) && narrow(&tl)
                    && narrow(&tr)
                {
                    let t = if tl == DataType::SmallInt && tr == DataType::SmallInt {
                        DataType::SmallInt
                    } else {
                        DataType::Integer
                    };
                    Expr::Cast(Box::new(e), t)
                } else {
                    e
                }
            }
            E::UnaryOp { op, expr } => unary(op, self.expr(expr, scope)?)?,
            E::IsNull(x) => Expr::IsNull(Box::new(self.expr(x, scope)?), false),
            E::IsNotNull(x) => Expr::IsNull(Box::new(self.expr(x, scope)?), true),
            // x IS [NOT] TRUE/FALSE is x IS [NOT] DISTINCT FROM the literal: never NULL.
            E::IsTrue(x) => self.is_bool(x, true, true, scope)?,
            E::IsFalse(x) => self.is_bool(x, false, true, scope)?,
            E::IsNotTrue(x) => self.is_bool(x, true, false, scope)?,
            E::IsNotFalse(x) => self.is_bool(x, false, false, scope)?,
            E::IsUnknown(x) => Expr::IsNull(Box::new(self.boolean(x, scope)?), false),
            E::IsNotUnknown(x) => Expr::IsNull(Box::new(self.boolean(x, scope)?), true),
            E::IsDistinctFrom(a, b) => Expr::IsDistinct(
                Box::new(self.expr(a, scope)?),
                Box::new(self.expr(b, scope)?),
                false,
            ),
            E::IsNotDistinctFrom(a, b) => Expr::IsDistinct(
                Box::new(self.expr(a, scope)?),
                Box::new(self.expr(b, scope)?),
                true,
            ),
            E::InList {
                expr,
                list,
                negated,
            } => Expr::InList(
                Box::new(self.expr(expr, scope)?),
                list.iter()
                    .map(|x| self.expr(x, scope))
                    .collect::<Result<_>>()?,
                *negated,
            ),
            E::InSubquery {
                expr,
                subquery,
                negated,
            } => {
                let x = self.expr(expr, scope)?;
                let plan = self.subquery(subquery, scope)?;
                if plan.width() != 1 {
                    return Err(SqlError::Invalid("subquery has too many columns".into()));
                }
                Expr::InSubquery(Box::new(x), Arc::new(plan), *negated)
            }
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.expr(expr, scope)?;
                let both = Expr::Binary(
                    BinOp::And,
                    Box::new(Expr::Binary(
                        BinOp::GtEq,
                        Box::new(x.clone()),
                        Box::new(self.expr(low, scope)?),
                    )),
                    Box::new(Expr::Binary(
                        BinOp::LtEq,
                        Box::new(x),
                        Box::new(self.expr(high, scope)?),
                    )),
                );
                if *negated {
                    Expr::Not(Box::new(both))
                } else {
                    both
                }
            }
            E::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any,
            }
            | E::ILike {
                negated,
                expr,
                pattern,
                escape_char,
                any,
            } => {
                if *any {
                    return Err(SqlError::Unsupported("LIKE ANY".into()));
                }
                let escape = match escape_char.as_deref() {
                    // PostgreSQL's default escape character.
                    None => Some('\\'),
                    Some(ast::Expr::Value(v)) => match &v.value {
                        ast::Value::SingleQuotedString(s) if s.chars().count() == 1 => {
                            s.chars().next()
                        }
                        _ => {
                            return Err(SqlError::Invalid(
                                "ESCAPE must be a single character".into(),
                            ));
                        }
                    },
                    Some(_) => {
                        return Err(SqlError::Invalid("ESCAPE must be a literal".into()));
                    }
                };
                Expr::Like {
                    expr: Box::new(self.expr(expr, scope)?),
                    pattern: Box::new(self.expr(pattern, scope)?),
                    escape,
                    case_insensitive: matches!(e, E::ILike { .. }),
                    negated: *negated,
                }
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => Expr::Case {
                operand: operand
                    .as_ref()
                    .map(|o| self.expr(o, scope).map(Box::new))
                    .transpose()?,
                whens: conditions
                    .iter()
                    .map(|w| {
                        Ok((
                            self.expr(&w.condition, scope)?,
                            self.expr(&w.result, scope)?,
                        ))
                    })
                    .collect::<Result<_>>()?,
                otherwise: else_result
                    .as_ref()
                    .map(|o| self.expr(o, scope).map(Box::new))
                    .transpose()?,
            },
            E::Cast {
                expr, data_type: t, ..
            } => Expr::Cast(Box::new(self.expr(expr, scope)?), data_type(t)?),
            E::Ceil { expr, .. } => Expr::Func("ceil".into(), vec![self.expr(expr, scope)?]),
            E::Floor { expr, .. } => Expr::Func("floor".into(), vec![self.expr(expr, scope)?]),
            E::Extract { field, expr, .. } => Expr::Func(
                "extract".into(),
                vec![
                    Expr::lit(Value::Text(field.to_string().to_lowercase())),
                    self.expr(expr, scope)?,
                ],
            ),
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                if substring_from.is_none() && substring_for.is_none() {
                    return Err(SqlError::UnknownFunction(
                        "substr takes 2 to 3 arguments, 1 given".into(),
                    ));
                }
                let mut args = vec![self.expr(expr, scope)?];
                args.push(match substring_from {
                    Some(f) => self.expr(f, scope)?,
                    None => Expr::lit(Value::Int(1)),
                });
                if let Some(f) = substring_for {
                    args.push(self.expr(f, scope)?);
                }
                Expr::Func("substr".into(), args)
            }
            E::Trim {
                expr,
                trim_where,
                trim_what,
                ..
            } => {
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "trim",
                };
                let mut args = vec![self.expr(expr, scope)?];
                if let Some(w) = trim_what {
                    args.push(self.expr(w, scope)?);
                }
                Expr::Func(name.into(), args)
            }
            E::Position { expr, r#in } => Expr::Func(
                "strpos".into(),
                vec![self.expr(r#in, scope)?, self.expr(expr, scope)?],
            ),
            E::Function(f) => {
                if is_aggregate(e) {
                    return Err(SqlError::Invalid(format!(
                        "aggregate function {} is not allowed here",
                        function_name(f)
                    )));
                }
                let name = function_name(f);
                let args = function_args(f)?
                    .into_iter()
                    .map(|a| self.expr(a, scope))
                    .collect::<Result<Vec<_>>>()?;
                scalar_function(&name, args)?
            }
            E::Exists { subquery, negated } => {
                let plan = self.subquery(subquery, scope)?;
                Expr::Subquery(SubqueryKind::Exists, Arc::new(plan), *negated)
            }
            E::Subquery(q) => {
                let plan = self.subquery(q, scope)?;
                if plan.width() != 1 {
                    return Err(SqlError::Invalid(
                        "subquery must return only one column".into(),
                    ));
                }
                Expr::Subquery(SubqueryKind::Scalar, Arc::new(plan), false)
            }
            other => return Err(SqlError::Unsupported(format!("expression {other}"))),
        })
    }

    fn is_bool(&mut self, x: &ast::Expr, value: bool, equal: bool, scope: &Scope) -> Result<Expr> {
        Ok(Expr::IsDistinct(
            Box::new(self.expr(x, scope)?),
            Box::new(Expr::lit(Value::Bool(value))),
            equal,
        ))
    }

    /// Binds an expression that must be BOOLEAN (IS UNKNOWN).
    fn boolean(&mut self, e: &ast::Expr, scope: &Scope) -> Result<Expr> {
        let bound = self.expr(e, scope)?;
        match expr_type(&bound, &scope.columns) {
            DataType::Boolean | DataType::Null => Ok(bound),
            other => Err(SqlError::TypeMismatch(format!(
                "argument of IS UNKNOWN must be BOOLEAN, not {other}"
            ))),
        }
    }

    fn subquery(&mut self, q: &ast::Query, scope: &Scope) -> Result<Plan> {
        self.outer.push(scope.clone());
        let plan = self.query(q);
        self.outer.pop();
        plan
    }

    fn column(&self, table: Option<&str>, name: &str, scope: &Scope) -> Result<Expr> {
        if let Some(i) = scope.resolve(table, name)? {
            return Ok(Expr::Column(i));
        }
        for (depth, outer) in self.outer.iter().rev().enumerate() {
            if let Some(i) = outer.resolve(table, name)? {
                return Ok(Expr::Outer(depth + 1, i));
            }
        }
        Err(SqlError::UnknownColumn(match table {
            Some(t) => format!("{t}.{name}"),
            None => name.to_string(),
        }))
    }

    /// Binds an expression over one table's columns (DML, defaults, CHECK).
    pub fn table_expr(&mut self, e: &ast::Expr, table: &TableDef, alias: &str) -> Result<Expr> {
        let scope = table_scope(table, alias);
        self.expr(e, &scope)
    }

    /// Binds an expression of ON CONFLICT DO UPDATE over the existing row's columns followed by
    /// EXCLUDED's (the proposed row).
    pub fn on_conflict_filter(&mut self, e: &ast::Expr, table: &TableDef) -> Result<Expr> {
        let mut scope = table_scope(table, &table.name);
        scope.columns.extend(table_scope(table, "excluded").columns);
        scope.prefer_first = true;
        self.expr(e, &scope)
    }

    /// Binds a projection list over one table (RETURNING).
    pub fn returning(
        &mut self,
        items: &[SelectItem],
        table: &TableDef,
    ) -> Result<(Vec<Expr>, Vec<OutColumn>)> {
        let scope = table_scope(table, &table.name);
        let mut exprs = Vec::new();
        let mut cols = Vec::new();
        for item in items {
            match item {
                SelectItem::Wildcard(_) => {
                    for (i, c) in scope.columns.iter().enumerate() {
                        exprs.push(Expr::Column(i));
                        cols.push(c.clone());
                    }
                }
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    let b = self.expr(e, &scope)?;
                    let name = match item {
                        SelectItem::ExprWithAlias { alias, .. } => ident(alias),
                        _ => display_name(e),
                    };
                    cols.push(OutColumn {
                        table: None,
                        name,
                        data_type: expr_type(&b, &scope.columns),
                    });
                    exprs.push(b);
                }
                _ => return Err(SqlError::Unsupported("this RETURNING item".into())),
            }
        }
        Ok((exprs, cols))
    }
}

fn table_scope(table: &TableDef, alias: &str) -> Scope {
    Scope {
        columns: table_columns(table, alias),
        prefer_first: false,
    }
}

/// The output columns of a scan of `table` under `alias`: every column, in table order.
fn table_columns(table: &TableDef, alias: &str) -> Vec<OutColumn> {
    table
        .columns
        .iter()
        .map(|c| OutColumn {
            table: Some(alias.to_string()),
            name: c.name.clone(),
            data_type: c.data_type.clone(),
        })
        .collect()
}

/// A scan of `table` under `alias` through `access`, yielding every column, with no filter
/// yet (predicate pushdown adds it).
fn scan_plan(table: Arc<TableDef>, alias: String, access: Access) -> Plan {
    Plan::Scan {
        columns: table_columns(&table, &alias),
        table,
        alias,
        access,
        filter: None,
        needed: None,
    }
}

fn rename(plan: Plan, alias: &str) -> Plan {
    let columns: Vec<OutColumn> = plan
        .columns()
        .into_iter()
        .map(|mut c| {
            c.table = Some(alias.to_string());
            c
        })
        .collect();
    let n = columns.len();
    Plan::Project {
        input: Box::new(plan),
        exprs: (0..n).map(Expr::Column).collect(),
        columns,
    }
}

fn projection_expr(items: &[SelectItem], k: usize) -> Result<&ast::Expr> {
    match items.get(k.wrapping_sub(1)) {
        Some(SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) => Ok(e),
        _ => Err(SqlError::Invalid(format!(
            "GROUP BY position {k} is not in select list"
        ))),
    }
}

fn alias_expr<'s>(items: &'s [SelectItem], name: &str) -> Option<&'s ast::Expr> {
    items.iter().find_map(|item| match item {
        SelectItem::ExprWithAlias { expr, alias } if ident(alias) == name => Some(expr),
        _ => None,
    })
}

fn sort_key(expr: Expr, o: &ast::OrderByExpr) -> SortKey {
    let asc = !matches!(o.options.sort, Some(ast::OrderBySort::Desc));
    // PostgreSQL: NULLs are larger than any value, so last ascending, first descending.
    let nulls_first = o.options.nulls_first.unwrap_or(!asc);
    SortKey {
        expr,
        asc,
        nulls_first,
    }
}

fn display_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => ident(i),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(ident).unwrap_or_default(),
        ast::Expr::Function(f) => function_name(f),
        ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => display_name(expr),
        _ => "?column?".to_string(),
    }
}

fn function_args(f: &ast::Function) -> Result<Vec<&ast::Expr>> {
    match &f.args {
        ast::FunctionArguments::None => Ok(Vec::new()),
        ast::FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                other => Err(SqlError::Unsupported(format!("function argument {other}"))),
            })
            .collect(),
        ast::FunctionArguments::Subquery(_) => Err(SqlError::Unsupported(
            "subquery as a function argument".into(),
        )),
    }
}

fn scalar_function(name: &str, mut args: Vec<Expr>) -> Result<Expr> {
    match name {
        "coalesce" => {
            if args.is_empty() {
                return Err(SqlError::UnknownFunction(
                    "coalesce needs at least one argument".into(),
                ));
            }
            Ok(Expr::Coalesce(args))
        }
        "nullif" => {
            if args.len() != 2 {
                return Err(SqlError::UnknownFunction("nullif takes 2 arguments".into()));
            }
            let b = args.pop().expect("two");
            let a = args.pop().expect("two");
            Ok(Expr::NullIf(Box::new(a), Box::new(b)))
        }
        _ => match crate::functions::arity(name) {
            None => Err(SqlError::UnknownFunction(format!("{name} does not exist"))),
            Some((min, max)) => {
                if args.len() < min || max.is_some_and(|m| args.len() > m) {
                    let expected = match max {
                        Some(m) if m == min => format!("{min}"),
                        Some(m) => format!("{min} to {m}"),
                        None => format!("at least {min}"),
                    };
                    return Err(SqlError::UnknownFunction(format!(
                        "{name} takes {expected} arguments, {} given",
                        args.len()
                    )));
                }
                Ok(Expr::Func(name.to_string(), args))
            }
        },
    }
}

fn bin_op(op: &ast::BinaryOperator) -> Result<BinOp> {
    use ast::BinaryOperator as B;
    Ok(match op {
        B::Plus => BinOp::Add,
        B::Minus => BinOp::Sub,
        B::Multiply => BinOp::Mul,
        B::Divide => BinOp::Div,
        B::Modulo => BinOp::Rem,
        B::StringConcat => BinOp::Concat,
        B::Eq => BinOp::Eq,
        B::NotEq => BinOp::NotEq,
        B::Lt => BinOp::Lt,
        B::LtEq => BinOp::LtEq,
        B::Gt => BinOp::Gt,
        B::GtEq => BinOp::GtEq,
        B::And => BinOp::And,
        B::Or => BinOp::Or,
        other => return Err(SqlError::Unsupported(format!("operator {other}"))),
    })
}

fn unary(op: &ast::UnaryOperator, x: Expr) -> Result<Expr> {
    Ok(match op {
        ast::UnaryOperator::Not => Expr::Not(Box::new(x)),
        ast::UnaryOperator::Minus => match x {
            // Fold so that -9223372036854775808 is a literal, not an overflow.
            Expr::Literal(Value::Int(i)) => Expr::Literal(Value::Int(-i)),
            Expr::Literal(Value::Decimal(d)) => Expr::Literal(Value::Decimal(-d)),
            Expr::Literal(Value::Float(f)) => Expr::Literal(Value::Float(-f)),
            other => Expr::Neg(Box::new(other)),
        },
        ast::UnaryOperator::Plus => x,
        other => return Err(SqlError::Unsupported(format!("operator {other}"))),
    })
}

/// A literal value.
pub fn literal(v: &ast::Value) -> Result<Expr> {
    Ok(Expr::Literal(match v {
        ast::Value::Number(n, _) => {
            if let Ok(i) = n.parse::<i64>() {
                Value::Int(i)
            } else if n.contains(['e', 'E']) {
                Value::Float(n.parse().map_err(|_| SqlError::InvalidCast {
                    value: n.clone(),
                    target: "DOUBLE PRECISION".into(),
                })?)
            } else if let Ok(d) = n.parse::<rust_decimal::Decimal>() {
                Value::Decimal(d)
            } else if n.bytes().all(|b| b.is_ascii_digit()) {
                // Integers beyond i64 that still fit a decimal were caught above; this one is
                // too large for any exact type.
                return Err(SqlError::Overflow(format!("number {n}")));
            } else {
                Value::Float(n.parse().map_err(|_| SqlError::InvalidCast {
                    value: n.clone(),
                    target: "NUMERIC".into(),
                })?)
            }
        }
        ast::Value::SingleQuotedString(s)
        | ast::Value::EscapedStringLiteral(s)
        | ast::Value::UnicodeStringLiteral(s)
        | ast::Value::DoubleQuotedString(s) => Value::Text(s.clone()),
        ast::Value::DollarQuotedString(d) => Value::Text(d.value.clone()),
        ast::Value::HexStringLiteral(h) => Value::Blob(
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(h.get(i..i + 2).unwrap_or("x"), 16))
                .collect::<std::result::Result<Vec<u8>, _>>()
                .map_err(|_| SqlError::InvalidCast {
                    value: h.clone(),
                    target: "BLOB".into(),
                })?,
        ),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Null => Value::Null,
        ast::Value::Placeholder(p) => {
            let n: usize = p
                .strip_prefix('$')
                .and_then(|d| d.parse().ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    SqlError::Parameter(format!("unsupported placeholder {p}; use $1, $2, ..."))
                })?;
            return Ok(Expr::Param(n - 1));
        }
        other => return Err(SqlError::Unsupported(format!("literal {other}"))),
    }))
}

/// Evaluates a constant expression (literals, signs, casts of literals) without a row;
/// `None` if it is not constant.
pub fn literal_expr(e: &ast::Expr) -> Result<Option<Value>> {
    let mut binder = Binder {
        txn: &NoTxn,
        outer: Vec::new(),
        ctes: HashMap::new(),
        stats: None,
        table_stats: HashMap::new(),
        join_notes: Vec::new(),
        cacheable: true,
    };
    let bound = binder.expr(
        e,
        &Scope {
            columns: Vec::new(),
            prefer_first: false,
        },
    )?;
    if !bound.is_constant() {
        return Ok(None);
    }
    let txn = NoTxn;
    let ctx = crate::exec::Ctx::new(&txn, &[]);
    crate::exec::eval(&bound, &[], &ctx).map(Some)
}

/// A transaction with no data, for evaluating constants.
#[derive(Debug)]
pub(crate) struct NoTxn;

/// A transaction with no data, for executor unit tests over literal rows.
#[cfg(test)]
pub(crate) fn tests_no_txn() -> impl KvTxn {
    NoTxn
}

impl KvTxn for NoTxn {
    fn get(&self, _: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn scan<'a>(&'a self, _: &[u8], _: Option<&[u8]>) -> Result<crate::kv::KvIter<'a>> {
        Ok(Box::new(std::iter::empty()))
    }
    fn put(&mut self, _: &[u8], _: &[u8]) -> Result<()> {
        Err(SqlError::Invalid("constant evaluation cannot write".into()))
    }
    fn delete(&mut self, _: &[u8]) -> Result<()> {
        Err(SqlError::Invalid("constant evaluation cannot write".into()))
    }
    fn lock_for_update(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn start_ts(&self) -> u64 {
        0
    }
    fn savepoint(&self) -> Box<dyn std::any::Any + Send> {
        Box::new(())
    }
    fn rollback_to(&mut self, _: &(dyn std::any::Any + Send)) -> Result<()> {
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<u64> {
        Ok(0)
    }
    fn rollback(self: Box<Self>) {}
}

fn literal_type(e: &Expr) -> DataType {
    match e {
        Expr::Literal(v) => v.data_type(),
        _ => DataType::Null,
    }
}

/// Best-effort static type of an expression (for result column metadata).
pub fn expr_type(e: &Expr, cols: &[OutColumn]) -> DataType {
    match e {
        Expr::Column(i) => cols.get(*i).map_or(DataType::Null, |c| c.data_type.clone()),
        Expr::Literal(v) => v.data_type(),
        Expr::Binary(op, a, b) => match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let (ta, tb) = (expr_type(a, cols), expr_type(b, cols));
                crate::cast::common_type(&ta, &tb).unwrap_or(ta)
            }
            BinOp::Concat => DataType::Text(None),
            _ => DataType::Boolean,
        },
        Expr::Not(_)
        | Expr::IsNull(..)
        | Expr::IsDistinct(..)
        | Expr::InList(..)
        | Expr::InSubquery(..)
        | Expr::Like { .. } => DataType::Boolean,
        Expr::Neg(a) => expr_type(a, cols),
        Expr::Cast(_, t) => t.clone(),
        Expr::Case {
            whens, otherwise, ..
        } => whens
            .first()
            .map(|(_, t)| expr_type(t, cols))
            .or_else(|| otherwise.as_ref().map(|o| expr_type(o, cols)))
            .unwrap_or(DataType::Null),
        Expr::Coalesce(args) => args
            .iter()
            .map(|a| expr_type(a, cols))
            .find(|t| *t != DataType::Null)
            .unwrap_or(DataType::Null),
        Expr::NullIf(a, _) => expr_type(a, cols),
        Expr::Func(name, args) => {
            let types: Vec<DataType> = args.iter().map(|a| expr_type(a, cols)).collect();
            crate::functions::return_type(name, &types).unwrap_or(DataType::Null)
        }
        Expr::Subquery(SubqueryKind::Exists, ..) => DataType::Boolean,
        Expr::Subquery(SubqueryKind::Scalar, plan, _) => plan
            .columns()
            .first()
            .map_or(DataType::Null, |c| c.data_type.clone()),
        Expr::Outer(..) | Expr::Param(_) => DataType::Null,
    }
}

fn agg_type(a: &AggCall, cols: &[OutColumn]) -> DataType {
    match a.func {
        AggFunc::CountStar | AggFunc::Count => DataType::BigInt,
        AggFunc::Sum | AggFunc::Avg => match a.arg.as_ref().map(|e| expr_type(e, cols)) {
            Some(DataType::Real | DataType::Double) => DataType::Double,
            _ => DataType::Decimal(None),
        },
        AggFunc::Min | AggFunc::Max => a
            .arg
            .as_ref()
            .map_or(DataType::Null, |e| expr_type(e, cols)),
    }
}

/// Builds a join, splitting an ON condition into hash keys (left = right) and the rest.
fn make_join(left: Plan, right: Plan, kind: JoinKind, condition: Option<Expr>) -> Plan {
    let lw = left.width();
    let mut keys = Vec::new();
    let mut rest = Vec::new();
    for c in condition.map(Expr::conjuncts).unwrap_or_default() {
        if let Expr::Binary(BinOp::Eq, a, b) = &c {
            // Which input an expression reads: Some(true) left only, Some(false) right only.
            let side = |e: &Expr| -> Option<bool> {
                let cols = e.columns();
                if cols.is_empty() || !e.is_row_independent_except_columns() {
                    None
                } else if cols.iter().all(|&i| i < lw) {
                    Some(true)
                } else if cols.iter().all(|&i| i >= lw) {
                    Some(false)
                } else {
                    None
                }
            };
            match (side(a), side(b)) {
                (Some(true), Some(false)) => {
                    keys.push(((**a).clone(), b.remap(&|i| i - lw)));
                    continue;
                }
                (Some(false), Some(true)) => {
                    keys.push(((**b).clone(), a.remap(&|i| i - lw)));
                    continue;
                }
                _ => {}
            }
        }
        rest.push(c);
    }
    // An inner join's single-side conditions filter that side before joining.
    let (mut left, mut right) = (left, right);
    let mut residual = Vec::new();
    for c in rest {
        let cols = c.columns();
        let pushable = !cols.is_empty() && c.is_row_independent_except_columns();
        if pushable && kind == JoinKind::Inner && cols.iter().all(|&i| i < lw) {
            left = push_filter(left, c);
        } else if pushable
            && matches!(kind, JoinKind::Inner | JoinKind::Left)
            && cols.iter().all(|&i| i >= lw)
        {
            right = push_filter(right, c.remap(&|i| i - lw));
        } else {
            residual.push(c);
        }
    }
    Plan::Join {
        left: Box::new(left),
        right: Box::new(right),
        kind,
        keys,
        condition: Expr::and_all(residual),
        algorithm: JoinAlgorithm::Hash,
    }
}

impl Expr {
    /// True if the expression has no subquery (safe to move between operators).
    fn is_row_independent_except_columns(&self) -> bool {
        let mut ok = true;
        self.visit(&mut |e| {
            if matches!(
                e,
                Expr::Subquery(..) | Expr::InSubquery(..) | Expr::Outer(..)
            ) {
                ok = false;
            }
        });
        ok
    }
}

/// True if `plan` produces its rows in ascending order of output column `col`, NULLs first
/// (the order a merge join needs).
fn sorted_on(plan: &Plan, col: usize) -> bool {
    match plan {
        Plan::Scan { table, access, .. } => match access {
            Access::Full | Access::PkRange(_) | Access::PkPoint(_) => {
                table.pk_indices().first() == Some(&col)
            }
            Access::IndexPoint { index, .. } | Access::IndexRange { index, .. } => table
                .indexes
                .iter()
                .find(|i| i.id == *index)
                .is_some_and(|i| table.index_columns(i).first() == Some(&col)),
        },
        Plan::Filter { input, .. } | Plan::Limit { input, .. } => sorted_on(input, col),
        Plan::Project { input, exprs, .. } => {
            matches!(exprs.get(col), Some(Expr::Column(c)) if sorted_on(input, *c))
        }
        Plan::Sort { keys, .. } => keys.first().is_some_and(|k| {
            matches!(k.expr, Expr::Column(c) if c == col) && k.asc && k.nulls_first
        }),
        // Both join algorithms emit INNER and LEFT results in the left input's order.
        Plan::Join {
            left,
            kind: JoinKind::Inner | JoinKind::Left,
            ..
        }
        | Plan::LookupJoin { left, .. } => col < left.width() && sorted_on(left, col),
        _ => false,
    }
}

/// Marks the columns `e` reads in `needed`. False if `e` holds a subquery: a correlated one
/// may read any column of the row it is evaluated on, so the caller keeps them all.
fn mark_columns(e: &Expr, needed: &mut [bool]) -> bool {
    let mut plain = true;
    e.visit(&mut |x| match x {
        Expr::Column(i) => {
            if let Some(n) = needed.get_mut(*i) {
                *n = true;
            }
        }
        Expr::Subquery(..) | Expr::InSubquery(..) => plain = false,
        _ => {}
    });
    plain
}

/// Marks what `exprs` read; every column if one holds a subquery.
fn mark_all<'e>(exprs: impl IntoIterator<Item = &'e Expr>, needed: &mut [bool]) {
    for e in exprs {
        if !mark_columns(e, needed) {
            needed.iter_mut().for_each(|n| *n = true);
            return;
        }
    }
}

/// Column pruning: records in every scan (and lookup join) which of its table's columns the
/// operators above read, given that the plan's output columns `needed` are read. Scans then
/// decode only those, and an index scan whose index entry holds them all becomes index-only.
/// Column positions do not change (unread columns come out as NULL).
pub fn prune_columns(plan: &mut Plan, needed: &[bool]) {
    match plan {
        Plan::Single | Plan::Values { .. } => {}
        Plan::Scan {
            table,
            access,
            filter,
            needed: scan_needed,
            ..
        } => {
            let mut need = needed.to_vec();
            need.resize(table.columns.len(), true);
            mark_all(filter.iter(), &mut need);
            if let Access::IndexPoint {
                index, covering, ..
            }
            | Access::IndexRange {
                index, covering, ..
            } = access
            {
                *covering = table
                    .indexes
                    .iter()
                    .find(|i| i.id == *index)
                    .is_some_and(|i| {
                        let in_entry: Vec<usize> = table
                            .index_columns(i)
                            .into_iter()
                            .chain(table.pk_indices())
                            .collect();
                        need.iter().enumerate().all(|(c, &n)| {
                            !n || (in_entry.contains(&c)
                                && crate::encoding::key_round_trips(&table.columns[c].data_type))
                        })
                    });
            }
            *scan_needed = if need.iter().all(|&n| n) {
                None
            } else {
                Some(need)
            };
        }
        Plan::Filter { input, predicate }
        | Plan::Grover {
            input, predicate, ..
        } => {
            let mut need = needed.to_vec();
            mark_all([&*predicate], &mut need);
            prune_columns(input, &need);
        }
        Plan::Project { input, exprs, .. } => {
            // Every expression is still evaluated (it may fail), so all of them count, except
            // plain columns nobody above reads: they only pass a value on (a join's output
            // under an aggregate would otherwise decode and copy every column of both sides).
            let mut need = vec![false; input.width()];
            mark_all(
                exprs.iter().enumerate().filter_map(|(i, e)| {
                    let read_above = needed.get(i).copied().unwrap_or(true);
                    (read_above || !matches!(e, Expr::Column(_))).then_some(e)
                }),
                &mut need,
            );
            prune_columns(input, &need);
        }
        Plan::Sort { input, keys } => {
            let mut need = needed.to_vec();
            mark_all(keys.iter().map(|k| &k.expr), &mut need);
            prune_columns(input, &need);
        }
        Plan::Limit { input, .. } => prune_columns(input, needed),
        // Duplicates are decided on every column.
        Plan::Distinct { input } => {
            let all = vec![true; input.width()];
            prune_columns(input, &all);
        }
        Plan::Aggregate {
            input,
            groups,
            aggs,
            ..
        } => {
            let mut need = vec![false; input.width()];
            mark_all(
                groups
                    .iter()
                    .chain(aggs.iter().filter_map(|a| a.arg.as_ref())),
                &mut need,
            );
            prune_columns(input, &need);
        }
        Plan::Join {
            left,
            right,
            keys,
            condition,
            ..
        } => {
            let lw = left.width();
            let mut need = needed.to_vec();
            need.resize(lw + right.width(), true);
            mark_all(condition.iter(), &mut need);
            let (mut l, mut r) = (need[..lw].to_vec(), need[lw..].to_vec());
            mark_all(keys.iter().map(|(k, _)| k), &mut l);
            mark_all(keys.iter().map(|(_, k)| k), &mut r);
            prune_columns(left, &l);
            prune_columns(right, &r);
        }
        Plan::LookupJoin {
            left,
            table,
            left_key,
            filter,
            condition,
            needed: table_needed,
            ..
        } => {
            let lw = left.width();
            let mut need = needed.to_vec();
            need.resize(lw + table.columns.len(), true);
            mark_all(condition.iter(), &mut need);
            let (mut l, mut t) = (need[..lw].to_vec(), need[lw..].to_vec());
            mark_all([&*left_key], &mut l);
            mark_all(filter.iter(), &mut t);
            prune_columns(left, &l);
            *table_needed = if t.iter().all(|&n| n) { None } else { Some(t) };
        }
        // Set operations compare whole rows.
        Plan::SetOp { left, right, .. } => {
            let all = vec![true; left.width()];
            prune_columns(left, &all);
            prune_columns(right, &all);
        }
    }
}

/// Adds a filter to a plan, pushing it into a scan (where it can choose an access path) or
/// through an inner join to the side it reads.
pub fn push_filter(plan: Plan, predicate: Expr) -> Plan {
    match plan {
        Plan::Scan {
            table,
            alias,
            access: _,
            filter,
            columns,
            needed,
        } => {
            let mut parts = filter.map(Expr::conjuncts).unwrap_or_default();
            parts.extend(predicate.conjuncts());
            let access = choose_access(&table, &parts);
            Plan::Scan {
                table,
                alias,
                access,
                filter: Expr::and_all(parts),
                columns,
                needed,
            }
        }
        Plan::Join {
            left,
            right,
            kind: JoinKind::Inner,
            keys,
            condition,
            algorithm,
        } => {
            let lw = left.width();
            let mut left = *left;
            let mut right = *right;
            let mut residual = condition.map(Expr::conjuncts).unwrap_or_default();
            let mut new_keys = keys;
            for c in predicate.conjuncts() {
                let cols = c.columns();
                if !c.is_row_independent_except_columns() || cols.is_empty() {
                    residual.push(c);
                } else if cols.iter().all(|&i| i < lw) {
                    left = push_filter(left, c);
                } else if cols.iter().all(|&i| i >= lw) {
                    right = push_filter(right, c.remap(&|i| i - lw));
                } else if let Expr::Binary(BinOp::Eq, a, b) = &c {
                    let (ca, cb) = (a.columns(), b.columns());
                    if !ca.is_empty()
                        && ca.iter().all(|&i| i < lw)
                        && !cb.is_empty()
                        && cb.iter().all(|&i| i >= lw)
                    {
                        new_keys.push(((**a).clone(), b.remap(&|i| i - lw)));
                    } else if !cb.is_empty()
                        && cb.iter().all(|&i| i < lw)
                        && !ca.is_empty()
                        && ca.iter().all(|&i| i >= lw)
                    {
                        new_keys.push(((**b).clone(), a.remap(&|i| i - lw)));
                    } else {
                        residual.push(c);
                    }
                } else {
                    residual.push(c);
                }
            }
            Plan::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind: JoinKind::Inner,
                keys: new_keys,
                condition: Expr::and_all(residual),
                algorithm,
            }
        }
        other => Plan::Filter {
            input: Box::new(other),
            predicate,
        },
    }
}

/// Estimated fraction of a table's rows a conjunct keeps.
pub(crate) fn selectivity(
    c: &Expr,
    table: &TableDef,
    stats: Option<&crate::tablestats::TableStats>,
) -> f64 {
    let column_stats = |col: usize| {
        stats.and_then(|s| table.columns.get(col).and_then(|c| s.columns.get(&c.name)))
    };
    match c {
        Expr::Binary(BinOp::Eq, a, b) => {
            let (col, value) = match (a.as_ref(), b.as_ref()) {
                (Expr::Column(c), v) | (v, Expr::Column(c)) if v.is_row_independent() => (*c, v),
                _ => return 0.1,
            };
            match column_stats(col) {
                Some(cs) => {
                    if let Expr::Literal(v) = value
                        && let Some((_, f)) =
                            cs.most_common.iter().find(|(t, _)| *t == v.to_string())
                    {
                        return *f;
                    }
                    1.0 / cs.distinct.max(1) as f64
                }
                None => {
                    let unique = table.primary_key.len() == 1
                        && table.column_index(&table.primary_key[0]) == Some(col)
                        || table.indexes.iter().any(|i| {
                            i.unique
                                && i.columns.len() == 1
                                && table.column_index(&i.columns[0]) == Some(col)
                        });
                    if unique {
                        1.0 / crate::tablestats::DEFAULT_ROWS
                    } else {
                        0.05
                    }
                }
            }
        }
        Expr::Binary(op, a, b)
            if matches!(op, BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq) =>
        {
            // col < literal (or literal > col): read off the column's histogram.
            let (col, value, op) = match (a.as_ref(), b.as_ref()) {
                (Expr::Column(c), Expr::Literal(v)) => (*c, v, *op),
                (Expr::Literal(v), Expr::Column(c)) => (*c, v, op.flip()),
                _ => return 0.33,
            };
            let Some(cs) = column_stats(col) else {
                return 0.33;
            };
            let inclusive = matches!(op, BinOp::LtEq | BinOp::Gt);
            match crate::tablestats::histogram_fraction(&cs.histogram, value, inclusive) {
                Some(below) => {
                    let non_null = 1.0 - cs.null_fraction;
                    let f = if matches!(op, BinOp::Lt | BinOp::LtEq) {
                        below
                    } else {
                        1.0 - below
                    };
                    (f * non_null).clamp(0.0, 1.0)
                }
                None => 0.33,
            }
        }
        Expr::Binary(op, _, _) if op.is_comparison() => 0.33,
        Expr::IsNull(a, negated) => match a.as_ref() {
            Expr::Column(col) => {
                let f = column_stats(*col).map_or(0.05, |cs| cs.null_fraction);
                if *negated { 1.0 - f } else { f }
            }
            _ => 0.5,
        },
        Expr::InList(_, list, false) => (0.05 * list.len() as f64).min(0.5),
        Expr::Binary(BinOp::Or, a, b) => {
            let (x, y) = (selectivity(a, table, stats), selectivity(b, table, stats));
            (x + y - x * y).min(1.0)
        }
        _ => 0.5,
    }
}

/// Picks the cheapest access path for a scan under these conjuncts: a primary-key point
/// lookup, a unique then non-unique index point lookup, a primary-key range, an index range,
/// or a full scan. The conjuncts all stay as the scan's filter.
fn choose_access(table: &TableDef, parts: &[Expr]) -> Access {
    let mut eq: HashMap<usize, Expr> = HashMap::new();
    let mut ranges: HashMap<usize, KeyRange> = HashMap::new();
    for p in parts {
        let Expr::Binary(op, a, b) = p else { continue };
        if !op.is_comparison() || *op == BinOp::NotEq {
            continue;
        }
        let (col, value, op) = match (a.as_ref(), b.as_ref()) {
            (Expr::Column(c), v) if v.is_row_independent() => (*c, v.clone(), *op),
            (v, Expr::Column(c)) if v.is_row_independent() => (*c, v.clone(), op.flip()),
            _ => continue,
        };
        match op {
            BinOp::Eq => {
                eq.insert(col, value);
            }
            BinOp::Gt | BinOp::GtEq => {
                ranges.entry(col).or_default().low = Some((value, op == BinOp::GtEq));
            }
            BinOp::Lt | BinOp::LtEq => {
                ranges.entry(col).or_default().high = Some((value, op == BinOp::LtEq));
            }
            _ => {}
        }
    }
    let pk = table.pk_indices();
    if !pk.is_empty() && pk.iter().all(|c| eq.contains_key(c)) {
        return Access::PkPoint(pk.iter().map(|c| eq[c].clone()).collect());
    }
    let mut indexes: Vec<_> = table.indexes.iter().collect();
    indexes.sort_by_key(|i| !i.unique);
    for idx in &indexes {
        let cols = table.index_columns(idx);
        if cols.iter().all(|c| eq.contains_key(c)) {
            return Access::IndexPoint {
                index: idx.id,
                name: idx.name.clone(),
                values: cols.iter().map(|c| eq[c].clone()).collect(),
                covering: false,
            };
        }
    }
    if let Some(&first) = pk.first() {
        if let Some(r) = ranges.get(&first) {
            return Access::PkRange(r.clone());
        }
        if let Some(v) = eq.get(&first) {
            return Access::PkRange(KeyRange {
                low: Some((v.clone(), true)),
                high: Some((v.clone(), true)),
            });
        }
    }
    for idx in &indexes {
        let first = table.index_columns(idx)[0];
        let range = ranges.get(&first).cloned().or_else(|| {
            eq.get(&first).map(|v| KeyRange {
                low: Some((v.clone(), true)),
                high: Some((v.clone(), true)),
            })
        });
        if let Some(range) = range {
            return Access::IndexRange {
                index: idx.id,
                name: idx.name.clone(),
                range,
                covering: false,
            };
        }
    }
    Access::Full
}

#[cfg(test)]
mod prune_tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalog::{ColumnDef, TableDef};
    use crate::plan::{Access, JoinAlgorithm, JoinKind};

    fn scan(id: u32, name: &str, columns: &[(&str, DataType)]) -> Plan {
        let table = TableDef {
            id,
            name: name.into(),
            columns: columns
                .iter()
                .enumerate()
                .map(|(i, (c, t))| ColumnDef {
                    name: (*c).into(),
                    data_type: t.clone(),
                    nullable: true,
                    default: None,
                    slot: i as u16,
                })
                .collect(),
            primary_key: vec![columns[0].0.into()],
            primary_key_name: format!("{name}_pkey"),
            indexes: Vec::new(),
            checks: Vec::new(),
            next_slot: columns.len() as u16,
            next_index_id: 1,
            key_format: crate::encoding::KeyFormat::Compact,
            row_format: crate::encoding::RowFormat::Bare,
        };
        scan_plan(Arc::new(table), name.into(), Access::Full)
    }

    fn scan_needed(plan: &Plan) -> Vec<Option<Vec<bool>>> {
        match plan {
            Plan::Scan { needed, .. } => vec![needed.clone()],
            Plan::Project { input, .. } | Plan::Aggregate { input, .. } => scan_needed(input),
            Plan::Join { left, right, .. } => {
                let mut out = scan_needed(left);
                out.extend(scan_needed(right));
                out
            }
            other => panic!("unexpected node {other:?}"),
        }
    }

    /// `SELECT sum(items.price) FROM items JOIN cats ON cats.id = items.category` plans a
    /// pass-through projection of all six joined columns under the aggregate; the scans must
    /// still decode only the join keys and the summed column, not the text columns.
    #[test]
    fn test_columns_a_passthrough_projection_only_forwards_are_pruned() {
        let items = scan(
            1,
            "items",
            &[
                ("id", DataType::BigInt),
                ("category", DataType::BigInt),
                ("price", DataType::BigInt),
                ("name", DataType::Text(None)),
            ],
        );
        let cats = scan(
            2,
            "cats",
            &[("id", DataType::BigInt), ("label", DataType::Text(None))],
        );
        let join = Plan::Join {
            left: Box::new(items),
            right: Box::new(cats),
            kind: JoinKind::Inner,
            keys: vec![(Expr::Column(1), Expr::Column(0))],
            condition: None,
            algorithm: JoinAlgorithm::Hash,
        };
        let columns = join.columns();
        let project = Plan::Project {
            input: Box::new(join),
            exprs: (0..6).map(Expr::Column).collect(),
            columns,
        };
        let mut plan = Plan::Aggregate {
            input: Box::new(project),
            groups: Vec::new(),
            aggs: vec![crate::plan::AggCall {
                func: crate::plan::AggFunc::Sum,
                arg: Some(Expr::Column(2)),
                distinct: false,
            }],
            columns: Vec::new(),
        };
        prune_columns(&mut plan, &[true]);
        assert_eq!(
            scan_needed(&plan),
            vec![
                Some(vec![false, true, true, false]),
                Some(vec![true, false])
            ]
        );
        // A projection's computed expressions are still evaluated, so their inputs stay.
        let mut computed = Plan::Project {
            input: Box::new(scan(
                3,
                "t",
                &[("a", DataType::BigInt), ("b", DataType::BigInt)],
            )),
            exprs: vec![Expr::Column(0), Expr::Column(1)],
            columns: Vec::new(),
        };
        prune_columns(&mut computed, &[true, false]);
        assert_eq!(scan_needed(&computed), vec![Some(vec![true, false])]);
    }
}
