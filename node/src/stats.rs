//! Statistics the engine keeps about itself: per-statement counters (`nq_stat_statements`),
//! index usage (`nq_stat_indexes`), and per-operator profiles for EXPLAIN ANALYZE.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use sqlparser::ast::{Statement, Value as AstValue, VisitMut, VisitorMut};

/// Counters of one normalised statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatementStat {
    /// Times run (successfully).
    pub calls: u64,
    /// Total wall time.
    pub total: Duration,
    /// Rows returned or affected.
    pub rows: u64,
}

/// Counters of one index.
#[derive(Debug, Default)]
pub struct IndexStat {
    /// Scans started through the index.
    pub scans: AtomicU64,
    /// Rows read through it.
    pub rows: AtomicU64,
}

/// Engine-wide statistics, shared by every session.
#[derive(Debug, Default)]
pub struct EngineStats {
    statements: Mutex<HashMap<String, StatementStat>>,
    indexes: Mutex<HashMap<(u32, u32), Arc<IndexStat>>>,
}

/// Most distinct statements remembered; beyond it new ones are not tracked.
const MAX_STATEMENTS: usize = 5000;

impl EngineStats {
    /// Records a finished statement under its normalised text.
    pub fn record(&self, query: String, elapsed: Duration, rows: u64) {
        let mut map = self.statements.lock();
        if map.len() >= MAX_STATEMENTS && !map.contains_key(&query) {
            return;
        }
        let s = map.entry(query).or_default();
        s.calls += 1;
        s.total += elapsed;
        s.rows += rows;
    }

    /// A copy of the statement counters.
    pub fn statements(&self) -> Vec<(String, StatementStat)> {
        let mut v: Vec<_> = self
            .statements
            .lock()
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1.total));
        v
    }

    /// The counters of index `index` of table `table`.
    pub fn index(&self, table: u32, index: u32) -> Arc<IndexStat> {
        Arc::clone(self.indexes.lock().entry((table, index)).or_default())
    }

    /// (scans, rows read) of an index.
    pub fn index_usage(&self, table: u32, index: u32) -> (u64, u64) {
        match self.indexes.lock().get(&(table, index)) {
            Some(s) => (
                s.scans.load(Ordering::Relaxed),
                s.rows.load(Ordering::Relaxed),
            ),
            None => (0, 0),
        }
    }
}

/// Replaces literals with `?`, so `SELECT * FROM t WHERE id = 1` and `... id = 2` count as one
/// statement.
pub fn normalize(stmt: &Statement) -> String {
    struct Strip;
    impl VisitorMut for Strip {
        type Break = ();
        fn post_visit_value(
            &mut self,
            value: &mut sqlparser::ast::ValueWithSpan,
        ) -> std::ops::ControlFlow<()> {
            if !matches!(value.value, AstValue::Placeholder(_)) {
                value.value = AstValue::Placeholder("?".into());
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut s = stmt.clone();
    let _ = s.visit(&mut Strip);
    s.to_string()
}

/// Rows, loops and time of one plan operator in one execution.
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeProfile {
    /// Rows produced.
    pub rows: u64,
    /// Times the operator was started (more than 1 inside a correlated subquery).
    pub loops: u64,
    /// Time spent producing its rows, its inputs included.
    pub time: Duration,
}

/// Per-operator profiles of one EXPLAIN ANALYZE run, keyed by the plan node's address.
#[derive(Debug, Default)]
pub struct Profile {
    nodes: Mutex<HashMap<usize, NodeProfile>>,
    notes: Mutex<HashMap<usize, String>>,
}

impl Profile {
    /// Records what an operator did beyond rows and time (e.g. a Grover search's oracle
    /// calls), shown by EXPLAIN ANALYZE.
    pub fn note(&self, node: usize, text: String) {
        self.notes.lock().insert(node, text);
    }

    /// A node's note.
    pub fn note_of(&self, node: usize) -> Option<String> {
        self.notes.lock().get(&node).cloned()
    }

    /// Adds to a node's counters.
    pub fn add(&self, node: usize, rows: u64, loops: u64, time: Duration) {
        let mut map = self.nodes.lock();
        let p = map.entry(node).or_default();
        p.rows += rows;
        p.loops += loops;
        p.time += time;
    }

    /// A node's counters.
    pub fn get(&self, node: usize) -> Option<NodeProfile> {
        self.nodes.lock().get(&node).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_literals_are_normalised_away() {
        let a = crate::parse::parse("SELECT * FROM t WHERE id = 1 AND name = 'x'").unwrap();
        let b = crate::parse::parse("SELECT * FROM t WHERE id = 42 AND name = 'yy'").unwrap();
        assert_eq!(normalize(&a[0]), normalize(&b[0]));
        assert!(normalize(&a[0]).contains("id = ?"), "{}", normalize(&a[0]));
    }
}
