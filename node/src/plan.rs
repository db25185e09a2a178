//! Physical query plans.

use std::sync::Arc;

use crate::catalog::TableDef;
use crate::expr::Expr;
use crate::types::DataType;

/// A column of a plan's output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutColumn {
    /// The table (alias) it comes from, for qualified references.
    pub table: Option<String>,
    /// Its name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
}

/// How a table is read.
#[derive(Debug, Clone)]
pub enum Access {
    /// Every row.
    Full,
    /// Rows whose primary key equals these values (all key columns).
    PkPoint(Vec<Expr>),
    /// Rows whose first primary-key column lies in a range.
    PkRange(KeyRange),
    /// Rows found through index `index` with all its columns equal to these values.
    IndexPoint {
        /// The index id.
        index: u32,
        /// Its name (for EXPLAIN).
        name: String,
        /// The key values.
        values: Vec<Expr>,
        /// Index-only: every column the query reads is in the index entry (its columns and
        /// the primary key), so rows are not fetched.
        covering: bool,
    },
    /// Rows found through index `index` whose first column lies in a range.
    IndexRange {
        /// The index id.
        index: u32,
        /// Its name.
        name: String,
        /// The range.
        range: KeyRange,
        /// Index-only (see [`Access::IndexPoint`]).
        covering: bool,
    },
}

/// A range over the first column of a key.
#[derive(Debug, Clone, Default)]
pub struct KeyRange {
    /// Lower bound and whether it is inclusive.
    pub low: Option<(Expr, bool)>,
    /// Upper bound and whether it is inclusive.
    pub high: Option<(Expr, bool)>,
}

/// How a join with equi-join keys runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinAlgorithm {
    /// Builds a hash table over the right input and streams the left through it (a nested
    /// loop when there are no keys).
    Hash,
    /// Both inputs arrive sorted ascending on their keys (NULLs first); one pass over each.
    Merge,
}

/// Join types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// INNER (and CROSS).
    Inner,
    /// LEFT OUTER.
    Left,
    /// RIGHT OUTER.
    Right,
    /// FULL OUTER.
    Full,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// COUNT(*).
    CountStar,
    /// COUNT(x).
    Count,
    /// SUM.
    Sum,
    /// AVG.
    Avg,
    /// MIN.
    Min,
    /// MAX.
    Max,
}

/// One aggregate computed by an Aggregate node.
#[derive(Debug, Clone)]
pub struct AggCall {
    /// The function.
    pub func: AggFunc,
    /// Its argument (none for COUNT(*)).
    pub arg: Option<Expr>,
    /// DISTINCT.
    pub distinct: bool,
}

/// A sort key.
#[derive(Debug, Clone)]
pub struct SortKey {
    /// What to sort by.
    pub expr: Expr,
    /// Ascending.
    pub asc: bool,
    /// NULLs before non-NULLs.
    pub nulls_first: bool,
}

/// Set operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOpKind {
    /// UNION.
    Union,
    /// INTERSECT.
    Intersect,
    /// EXCEPT.
    Except,
}

/// A plan node. Every node produces rows of its `columns()`.
#[derive(Debug, Clone)]
pub enum Plan {
    /// One row with no columns (SELECT without FROM).
    Single,
    /// Literal rows.
    Values {
        /// The rows.
        rows: Vec<Vec<Expr>>,
        /// Output columns.
        columns: Vec<OutColumn>,
    },
    /// Reads a table.
    Scan {
        /// The table.
        table: Arc<TableDef>,
        /// Alias used in the query.
        alias: String,
        /// How.
        access: Access,
        /// Residual filter on the table's columns.
        filter: Option<Expr>,
        /// Output columns (the table's columns).
        columns: Vec<OutColumn>,
        /// The columns anything above reads (`None`: all). The others are not decoded and
        /// come out as NULL, which keeps column positions unchanged.
        needed: Option<Vec<bool>>,
    },
    /// Keeps rows where the predicate is true.
    Filter {
        /// Input.
        input: Box<Plan>,
        /// Predicate.
        predicate: Expr,
    },
    /// Computes expressions.
    Project {
        /// Input.
        input: Box<Plan>,
        /// Expressions.
        exprs: Vec<Expr>,
        /// Output columns.
        columns: Vec<OutColumn>,
    },
    /// Sorts.
    Sort {
        /// Input.
        input: Box<Plan>,
        /// Keys.
        keys: Vec<SortKey>,
    },
    /// LIMIT / OFFSET.
    Limit {
        /// Input.
        input: Box<Plan>,
        /// Max rows.
        limit: Option<Expr>,
        /// Rows to skip.
        offset: Option<Expr>,
    },
    /// Removes duplicate rows.
    Distinct {
        /// Input.
        input: Box<Plan>,
    },
    /// Groups and aggregates: output is the group expressions then the aggregates.
    Aggregate {
        /// Input.
        input: Box<Plan>,
        /// GROUP BY expressions.
        groups: Vec<Expr>,
        /// Aggregates.
        aggs: Vec<AggCall>,
        /// Output columns.
        columns: Vec<OutColumn>,
    },
    /// Joins two inputs; output is left columns then right columns.
    Join {
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
        /// Kind.
        kind: JoinKind,
        /// Equi-join keys (left expr over left columns, right expr over right columns): a hash
        /// join when not empty, a nested-loop join otherwise.
        keys: Vec<(Expr, Expr)>,
        /// Remaining condition over the joined row.
        condition: Option<Expr>,
        /// Hash (or nested loop) or merge.
        algorithm: JoinAlgorithm,
    },
    /// Index nested-loop join: for each left row, looks the right table up by its primary key
    /// or an index with the left row's key value. Output is left columns then the table's.
    LookupJoin {
        /// Left input (the outer loop).
        left: Box<Plan>,
        /// The looked-up table.
        table: Arc<TableDef>,
        /// Its alias.
        alias: String,
        /// Its output columns.
        columns: Vec<OutColumn>,
        /// The index used: `None` for the primary key, else (id, name).
        index: Option<(u32, String)>,
        /// The key, over left columns.
        left_key: Expr,
        /// Filter on the table's own columns.
        filter: Option<Expr>,
        /// INNER or LEFT.
        kind: JoinKind,
        /// Remaining condition over the joined row.
        condition: Option<Expr>,
        /// The table's columns anything reads (`None`: all), as for [`Plan::Scan`].
        needed: Option<Vec<bool>>,
    },
    /// `grover_search(...)`: rows of `input` (a scan in index order) for which `predicate`
    /// holds, found by simulated Grover search (see `grover`).
    Grover {
        /// The items, in index order.
        input: Box<Plan>,
        /// The oracle's predicate over the input's columns.
        predicate: Expr,
        /// Most rows to find.
        max_rows: u64,
    },
    /// UNION / INTERSECT / EXCEPT.
    SetOp {
        /// Left.
        left: Box<Plan>,
        /// Right.
        right: Box<Plan>,
        /// Which.
        kind: SetOpKind,
        /// ALL.
        all: bool,
    },
}

impl Plan {
    /// The output columns.
    pub fn columns(&self) -> Vec<OutColumn> {
        match self {
            Plan::Single => Vec::new(),
            Plan::Values { columns, .. }
            | Plan::Scan { columns, .. }
            | Plan::Project { columns, .. }
            | Plan::Aggregate { columns, .. } => columns.clone(),
            Plan::Filter { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Grover { input, .. }
            | Plan::Distinct { input } => input.columns(),
            Plan::Join { left, right, .. } => {
                let mut c = left.columns();
                c.extend(right.columns());
                c
            }
            Plan::LookupJoin { left, columns, .. } => {
                let mut c = left.columns();
                c.extend(columns.iter().cloned());
                c
            }
            Plan::SetOp { left, .. } => left.columns(),
        }
    }

    /// Number of output columns.
    pub fn width(&self) -> usize {
        self.columns().len()
    }
}

/// Statements by SQL text, parsed once, with the plan last built for them. An engine keeps one
/// for all its sessions. Plans are tagged with the catalog epoch they were built under (see
/// [`crate::catalog::CatalogClock`]) and used only by transactions that see exactly that
/// catalog; parameters stay parameters in a cached plan, so one plan serves every value.
#[derive(Debug, Default)]
pub struct PlanCache {
    entries: parking_lot::Mutex<std::collections::HashMap<String, Arc<CachedStatement>>>,
}

/// One cached statement.
#[derive(Debug)]
pub struct CachedStatement {
    /// The parsed statement.
    pub statement: sqlparser::ast::Statement,
    /// Its text with literals replaced (the `nq_stat_statements` key).
    pub normalized: String,
    plan: parking_lot::Mutex<Option<(u64, Arc<Plan>)>>,
}

impl CachedStatement {
    /// The plan cached under catalog epoch `epoch`, if any.
    pub fn plan(&self, epoch: u64) -> Option<Arc<Plan>> {
        match &*self.plan.lock() {
            Some((e, plan)) if *e == epoch => Some(Arc::clone(plan)),
            _ => None,
        }
    }

    /// Caches `plan`, built under catalog epoch `epoch`.
    pub fn set_plan(&self, epoch: u64, plan: Arc<Plan>) {
        *self.plan.lock() = Some((epoch, plan));
    }
}

/// Longest SQL text cached: longer ones are bulk statements (multi-row INSERTs with literal
/// values) that seldom repeat.
const MAX_CACHED_SQL: usize = 2048;
/// Statements cached; when full the cache starts over.
const MAX_CACHED_STATEMENTS: usize = 1024;

impl PlanCache {
    /// The cached statement for `sql`.
    pub fn get(&self, sql: &str) -> Option<Arc<CachedStatement>> {
        self.entries.lock().get(sql).cloned()
    }

    /// Caches `statements`, the parse of `sql`, if it is one statement short enough to be
    /// worth it; returns the entry, or gives the statements back.
    pub fn insert(
        &self,
        sql: &str,
        mut statements: Vec<sqlparser::ast::Statement>,
    ) -> Result<Arc<CachedStatement>, Vec<sqlparser::ast::Statement>> {
        if statements.len() != 1 || sql.len() > MAX_CACHED_SQL {
            return Err(statements);
        }
        let statement = statements.pop().expect("one statement");
        let entry = Arc::new(CachedStatement {
            normalized: crate::stats::normalize(&statement),
            statement,
            plan: parking_lot::Mutex::new(None),
        });
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_CACHED_STATEMENTS {
            entries.clear();
        }
        entries.insert(sql.to_string(), Arc::clone(&entry));
        Ok(entry)
    }

    /// Number of cached statements.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
