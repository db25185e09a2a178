//! The catalog: table and index definitions, stored in the MVCC store itself so DDL is
//! transactional (a CREATE TABLE rolled back never existed; a concurrent one conflicts).
//!
//! Keys: `c\0t\0<lowercase table name>` holds a table's definition (JSON); `c\0next_id` the next
//! table id. Definitions are JSON so the format can grow fields without a migration.

use serde::{Deserialize, Serialize};

use crate::encoding::{KeyFormat, RowFormat};
use crate::error::{Result, SqlError};
use crate::kv::KvTxn;
use crate::types::DataType;

const TABLE_PREFIX: &[u8] = b"c\0t\0";
const NEXT_ID_KEY: &[u8] = b"c\0next_id";
/// Table ids below this are reserved for system tables.
const FIRST_TABLE_ID: u32 = 16;

/// A column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Name (case as written when quoted, lowercase otherwise).
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// False for NOT NULL (and primary-key) columns.
    pub nullable: bool,
    /// DEFAULT expression, as SQL text.
    pub default: Option<String>,
    /// Position in stored rows (never reused).
    pub slot: u16,
}

/// A secondary index (or the index behind a UNIQUE constraint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    /// Id, unique within the table.
    pub id: u32,
    /// Name, unique within the database.
    pub name: String,
    /// Indexed columns, by name, in order.
    pub columns: Vec<String>,
    /// True if no two rows may share a non-NULL key.
    pub unique: bool,
}

/// A CHECK constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    /// Constraint name.
    pub name: String,
    /// The condition, as SQL text.
    pub expr: String,
}

/// A table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Id, used in every key of the table.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Columns in declaration order.
    pub columns: Vec<ColumnDef>,
    /// Primary-key columns by name; empty means a hidden row id is the key.
    pub primary_key: Vec<String>,
    /// Name of the primary-key constraint.
    pub primary_key_name: String,
    /// Secondary indexes.
    pub indexes: Vec<IndexDef>,
    /// CHECK constraints.
    pub checks: Vec<CheckDef>,
    /// Next row slot for an added column.
    pub next_slot: u16,
    /// Next index id.
    pub next_index_id: u32,
    /// How integers are encoded in the table's keys; entries written before formats existed
    /// name none and use the first one.
    #[serde(default = "KeyFormat::legacy")]
    pub key_format: KeyFormat,
    /// How the table's row values begin; entries written before formats existed name none and
    /// use the first one.
    #[serde(default = "RowFormat::legacy")]
    pub row_format: RowFormat,
}

impl TableDef {
    /// Position of column `name` in `columns`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Positions of the primary-key columns (empty for a row-id table).
    pub fn pk_indices(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .map(|n| self.column_index(n).expect("primary key names a column"))
            .collect()
    }

    /// Positions of an index's columns.
    pub fn index_columns(&self, index: &IndexDef) -> Vec<usize> {
        index
            .columns
            .iter()
            .map(|n| self.column_index(n).expect("index names a column"))
            .collect()
    }

    /// The index named `name`.
    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

fn table_key(name: &str) -> Vec<u8> {
    let mut k = TABLE_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

fn decode(raw: &[u8]) -> Result<TableDef> {
    serde_json::from_slice(raw).map_err(|e| {
        SqlError::Storage(nq_storage::StorageError::Integrity(format!(
            "catalog entry is not a table definition: {e}"
        )))
    })
}

/// The definition of table `name`, if it exists in the transaction's snapshot.
pub fn get_table(txn: &dyn KvTxn, name: &str) -> Result<Option<TableDef>> {
    txn.get(&table_key(name))?
        .map(|raw| decode(&raw))
        .transpose()
}

/// Like [`get_table`], failing with [`SqlError::UnknownTable`].
pub fn table(txn: &dyn KvTxn, name: &str) -> Result<TableDef> {
    get_table(txn, name)?.ok_or_else(|| SqlError::UnknownTable(name.to_string()))
}

/// Every table, by name.
pub fn list_tables(txn: &dyn KvTxn) -> Result<Vec<TableDef>> {
    let end = crate::encoding::prefix_end(TABLE_PREFIX);
    txn.scan(TABLE_PREFIX, end.as_deref())?
        .map(|r| r.and_then(|(_, v)| decode(&v)))
        .collect()
}

/// Stores a table's definition (create or alter).
pub fn put_table(txn: &mut dyn KvTxn, def: &TableDef) -> Result<()> {
    let raw = serde_json::to_vec(def).expect("definitions serialise");
    txn.put(&table_key(&def.name), &raw)
}

/// Removes a table's definition.
pub fn delete_table(txn: &mut dyn KvTxn, name: &str) -> Result<()> {
    txn.delete(&table_key(name))
}

/// Hands out a new table id.
pub fn next_table_id(txn: &mut dyn KvTxn) -> Result<u32> {
    let id = match txn.get(NEXT_ID_KEY)? {
        Some(raw) => u32::from_le_bytes(raw.as_slice().try_into().map_err(|_| {
            SqlError::Storage(nq_storage::StorageError::Integrity(
                "catalog id counter is not a u32".into(),
            ))
        })?),
        None => FIRST_TABLE_ID,
    };
    txn.put(NEXT_ID_KEY, &(id + 1).to_le_bytes())?;
    Ok(id)
}

/// The table owning index `name`, if any.
pub fn find_index(txn: &dyn KvTxn, name: &str) -> Result<Option<(TableDef, IndexDef)>> {
    for t in list_tables(txn)? {
        if let Some(i) = t.index(name) {
            let i = i.clone();
            return Ok(Some((t, i)));
        }
    }
    Ok(None)
}

/// Orders committed catalog changes (DDL and ANALYZE) so that a plan built against one
/// catalog is never used against another. Every transaction that writes a catalog key (any key
/// under `c\0`) is an open writer from its first such write until it ends; its commit starts a
/// new epoch. A transaction may use plans cached under the current epoch only when no writer
/// is open and its snapshot includes the newest catalog commit: its catalog is then exactly
/// the epoch's. Registering the writer before it commits closes the window in which a
/// transaction could see a catalog change the clock does not know about yet.
#[derive(Debug, Default)]
pub struct CatalogClock {
    state: parking_lot::Mutex<ClockState>,
}

#[derive(Debug, Default)]
struct ClockState {
    open_writers: u64,
    epoch: u64,
    last_commit_ts: u64,
}

impl CatalogClock {
    /// The epoch whose cached plans a transaction with snapshot `start_ts` may use (and cache
    /// under), or `None` if it must plan afresh.
    pub fn epoch_for(&self, start_ts: u64) -> Option<u64> {
        let s = self.state.lock();
        (s.open_writers == 0 && start_ts >= s.last_commit_ts).then_some(s.epoch)
    }

    fn writer_opened(&self) {
        self.state.lock().open_writers += 1;
    }

    fn writer_closed(&self, commit_ts: Option<u64>) {
        let mut s = self.state.lock();
        if let Some(ts) = commit_ts {
            s.epoch += 1;
            s.last_commit_ts = s.last_commit_ts.max(ts);
        }
        s.open_writers -= 1;
    }
}

/// True for keys of the catalog (definitions, id counter, statistics).
fn is_catalog_key(key: &[u8]) -> bool {
    key.starts_with(b"c\0")
}

/// A transaction that reports its catalog writes to a [`CatalogClock`]; everything else goes
/// straight to the wrapped transaction.
pub struct ClockedTxn {
    inner: Option<Box<dyn KvTxn>>,
    clock: std::sync::Arc<CatalogClock>,
    writer: bool,
}

impl std::fmt::Debug for ClockedTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockedTxn")
            .field("inner", &self.inner)
            .field("catalog_writer", &self.writer)
            .finish()
    }
}

impl ClockedTxn {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn KvTxn>, clock: std::sync::Arc<CatalogClock>) -> ClockedTxn {
        ClockedTxn {
            inner: Some(inner),
            clock,
            writer: false,
        }
    }

    fn txn(&self) -> &dyn KvTxn {
        self.inner.as_deref().expect("transaction not finished")
    }

    fn txn_mut(&mut self) -> &mut dyn KvTxn {
        self.inner.as_deref_mut().expect("transaction not finished")
    }

    fn note_write(&mut self, key: &[u8]) {
        if !self.writer && is_catalog_key(key) {
            self.writer = true;
            self.clock.writer_opened();
        }
    }

    fn close(&mut self, commit_ts: Option<u64>) {
        if std::mem::take(&mut self.writer) {
            self.clock.writer_closed(commit_ts);
        }
    }
}

impl KvTxn for ClockedTxn {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.txn().get(key)
    }

    fn scan<'a>(&'a self, start: &[u8], end: Option<&[u8]>) -> Result<crate::kv::KvIter<'a>> {
        self.txn().scan(start, end)
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.txn().multi_get(keys)
    }

    fn multi_get_with(&self, keys: &[&[u8]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()> {
        self.txn().multi_get_with(keys, found)
    }

    fn scan_values<'a>(
        &'a self,
        start: &[u8],
        end: Option<&[u8]>,
        decode: crate::kv::ValueDecoder<'a>,
    ) -> Result<crate::exec::RowIter<'a>> {
        self.txn().scan_values(start, end, decode)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.note_write(key);
        self.txn_mut().put(key, value)
    }

    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.note_write(key);
        self.txn_mut().delete(key)
    }

    fn lock_for_update(&mut self, key: &[u8]) -> Result<()> {
        self.txn_mut().lock_for_update(key)
    }

    fn start_ts(&self) -> u64 {
        self.txn().start_ts()
    }

    fn writes(&self, keep: &dyn Fn(&[u8]) -> bool) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.txn().writes(keep)
    }

    fn get_snapshot(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.txn().get_snapshot(key)
    }

    fn savepoint(&self) -> Box<dyn std::any::Any + Send> {
        self.txn().savepoint()
    }

    fn rollback_to(&mut self, savepoint: &(dyn std::any::Any + Send)) -> Result<()> {
        self.txn_mut().rollback_to(savepoint)
    }

    fn commit(mut self: Box<Self>) -> Result<u64> {
        let inner = self.inner.take().expect("transaction not finished");
        let result = inner.commit();
        let committed = result.as_ref().ok().copied();
        self.close(committed);
        result
    }

    fn rollback(mut self: Box<Self>) {
        if let Some(inner) = self.inner.take() {
            inner.rollback();
        }
        self.close(None);
    }
}

impl Drop for ClockedTxn {
    fn drop(&mut self) {
        // Dropping an unfinished transaction rolls it back.
        self.close(None);
    }
}
