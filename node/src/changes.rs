//! Change capture: the rows each committed transaction inserted, updated or deleted, handed
//! to a listener (the WebSocket change feeds) in commit order.
//!
//! Capture reads the transaction's buffered writes just before it commits: a row key with a
//! value is an insert or an update, one without is a delete, and the snapshot value the write
//! replaces tells which (and is the `old` row). Under first-committer-wins nobody else can have
//! committed that key between the snapshot and this commit, so the snapshot value is exactly
//! the row the commit replaced.
//!
//! **Commit order.** Commits run concurrently and finish in any order, but listeners must see
//! them by commit timestamp. Before committing, a transaction registers with a lower bound on
//! its commit timestamp (one more than the newest timestamp handed out so far, since its own
//! will be handed out later). A finished commit is delivered once no registered transaction
//! could still get a smaller timestamp: once every open registration's lower bound exceeds it.
//! Transactions that register later get larger timestamps anyway.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use nq_storage::mvcc::MvccStore;
use parking_lot::Mutex;

use crate::catalog::TableDef;
use crate::error::Result;
use crate::exec::row_from_stored;
use crate::kv::KvTxn;
use crate::types::Value;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// A new row.
    Insert,
    /// A row replaced (same primary key).
    Update,
    /// A row removed.
    Delete,
}

impl ChangeOp {
    /// `insert`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Insert => "insert",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }
}

/// One row change of a committed transaction.
#[derive(Debug, Clone)]
pub struct RowChange {
    /// The table (its definition at the commit).
    pub table: Arc<TableDef>,
    /// What happened.
    pub op: ChangeOp,
    /// The row after the change (insert, update).
    pub row: Option<Vec<Value>>,
    /// The row before the change (update, delete).
    pub old: Option<Vec<Value>>,
}

/// The changes of one committed transaction.
#[derive(Debug, Clone)]
pub struct CommittedChanges {
    /// Its commit timestamp.
    pub commit_ts: u64,
    /// Row changes in key order.
    pub changes: Vec<RowChange>,
}

/// Receives committed changes, in commit order. Called with the ordering lock held: it must
/// be quick and must not run SQL.
pub trait ChangeListener: Send + Sync + std::fmt::Debug {
    /// One committed transaction's row changes.
    fn committed(&self, commit: CommittedChanges);
}

#[derive(Debug, Default)]
struct Order {
    next_ticket: u64,
    /// Registered commits in flight: ticket -> lower bound of their commit timestamp.
    /// Lower bounds never decrease with the ticket, so the first entry has the smallest.
    in_flight: BTreeMap<u64, u64>,
    /// Finished commits waiting for earlier ones: (commit ts, ticket) -> changes.
    ready: BTreeMap<(u64, u64), Vec<RowChange>>,
}

/// Captures changes at commit and delivers them in order.
#[derive(Debug)]
pub(crate) struct ChangeCapture {
    listener: Arc<dyn ChangeListener>,
    order: Mutex<Order>,
    /// Table definitions by id, dropped whenever a commit changes the catalog.
    tables: Mutex<HashMap<u32, Arc<TableDef>>>,
}

/// `t<table id: 4 bytes>r...`: a row key.
fn row_key_table(key: &[u8]) -> Option<u32> {
    match key {
        [b't', a, b, c, d, b'r', ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

fn is_catalog_key(key: &[u8]) -> bool {
    key.starts_with(b"c\0")
}

impl ChangeCapture {
    pub fn new(listener: Arc<dyn ChangeListener>) -> ChangeCapture {
        ChangeCapture {
            listener,
            order: Mutex::new(Order::default()),
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// Commits `txn` and delivers its row changes once every earlier commit has been.
    pub fn commit(&self, store: &MvccStore, txn: Box<dyn KvTxn>) -> Result<u64> {
        let writes = txn.writes(&|k| row_key_table(k).is_some() || is_catalog_key(k));
        if writes.is_empty() {
            return txn.commit();
        }
        let ddl = writes.iter().any(|(k, _)| is_catalog_key(k));
        let changes = match self.decode(txn.as_ref(), &writes, ddl) {
            Ok(changes) => changes,
            Err(e) => {
                txn.rollback();
                return Err(e);
            }
        };
        if ddl {
            self.tables.lock().clear();
        }
        if changes.is_empty() {
            return txn.commit();
        }
        let ticket = {
            let mut order = self.order.lock();
            let ticket = order.next_ticket;
            order.next_ticket += 1;
            let lower_bound = store.last_timestamp() + 1;
            order.in_flight.insert(ticket, lower_bound);
            ticket
        };
        let result = txn.commit();
        let mut order = self.order.lock();
        order.in_flight.remove(&ticket);
        if let Ok(commit_ts) = result {
            order.ready.insert((commit_ts, ticket), changes);
        }
        self.deliver(&mut order);
        result
    }

    /// Hands over every ready commit that no commit in flight can precede.
    fn deliver(&self, order: &mut Order) {
        let horizon = order.in_flight.values().next().copied().unwrap_or(u64::MAX);
        while let Some(entry) = order.ready.first_entry() {
            let (commit_ts, _) = *entry.key();
            if commit_ts >= horizon {
                break;
            }
            let changes = entry.remove();
            self.listener
                .committed(CommittedChanges { commit_ts, changes });
        }
    }

    fn table(&self, txn: &dyn KvTxn, id: u32, ddl: bool) -> Result<Option<Arc<TableDef>>> {
        if !ddl && let Some(t) = self.tables.lock().get(&id) {
            return Ok(Some(Arc::clone(t)));
        }
        // This transaction's own view of the catalog, so that its own DDL counts.
        let all: HashMap<u32, Arc<TableDef>> = crate::catalog::list_tables(txn)?
            .into_iter()
            .map(|t| (t.id, Arc::new(t)))
            .collect();
        let found = all.get(&id).cloned();
        if !ddl {
            *self.tables.lock() = all;
        }
        Ok(found)
    }

    fn decode(
        &self,
        txn: &dyn KvTxn,
        writes: &[(Vec<u8>, Option<Vec<u8>>)],
        ddl: bool,
    ) -> Result<Vec<RowChange>> {
        let mut changes = Vec::new();
        let mut current: Option<(u32, Option<Arc<TableDef>>)> = None;
        for (key, value) in writes {
            let Some(id) = row_key_table(key) else {
                continue;
            };
            if current.as_ref().is_none_or(|(cid, _)| *cid != id) {
                current = Some((id, self.table(txn, id, ddl)?));
            }
            // Rows of a table this transaction dropped have no definition: no events.
            let Some((_, Some(table))) = &current else {
                continue;
            };
            let old = txn
                .get_snapshot(key)?
                .map(|raw| row_from_stored(table, key, &raw))
                .transpose()?;
            let row = value
                .as_deref()
                .map(|raw| row_from_stored(table, key, raw))
                .transpose()?;
            let op = match (&old, &row) {
                (None, Some(_)) => ChangeOp::Insert,
                (Some(_), Some(_)) => ChangeOp::Update,
                (Some(_), None) => ChangeOp::Delete,
                // Inserted and deleted again inside the transaction.
                (None, None) => continue,
            };
            changes.push(RowChange {
                table: Arc::clone(table),
                op,
                row,
                old,
            });
        }
        Ok(changes)
    }
}

/// A compiled `where` predicate of a change-feed subscription, over one table's columns.
#[derive(Debug)]
pub struct RowFilter {
    table: String,
    expr: crate::expr::Expr,
}

impl RowFilter {
    /// Binds `predicate` (SQL expression text) over the columns of `table`. Only the table's
    /// own columns, literals and functions are allowed (no subqueries).
    pub fn compile(table: &TableDef, predicate: &str) -> Result<RowFilter> {
        let ast = crate::write::parse_expr(predicate)?;
        let txn = crate::bind::NoTxn;
        let expr = crate::bind::Binder::new(&txn).table_expr(&ast, table, &table.name)?;
        Ok(RowFilter {
            table: table.name.clone(),
            expr,
        })
    }

    /// True if the change matches: the new row for inserts and updates, the old row for
    /// deletes (an update matches if either side does, so a row moving out of the filter is
    /// seen leaving). Errors (a division by zero for some row) count as no match.
    pub fn matches(&self, change: &RowChange) -> bool {
        if change.table.name != self.table {
            return false;
        }
        let txn = crate::bind::NoTxn;
        let ctx = crate::exec::Ctx::new(&txn, &[]);
        let test = |row: &Option<Vec<Value>>| {
            row.as_ref()
                .is_some_and(|r| crate::exec::holds(&self.expr, r, &ctx).unwrap_or(false))
        };
        test(&change.row) || test(&change.old)
    }
}
