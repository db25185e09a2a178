//! SQLite (bundled, through rusqlite) with a WAL journal, one transaction per batch with a
//! cached prepared statement. Durable commits run `synchronous=FULL` (the WAL is fsynced at
//! every commit). Fast commits run `synchronous=OFF`, and the load ends with
//! `synchronous=FULL` and `wal_checkpoint(FULL)`: with `synchronous=OFF` a checkpoint would not
//! fsync, and the load must end durable like the other engines'.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::{Batch, Committer, Engine, EngineConfig, Pair, ScanSummary, SharedEngine};
use crate::Result;

const INSERT: &str = "INSERT INTO kv(k, v) VALUES (?1, ?2)";
/// How long a committer waits for the write lock before SQLite gives up with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// Creates the database file in WAL mode with the table, on a connection set to
/// `synchronous`.
fn create_db(dir: &Path, config: EngineConfig, synchronous: &str) -> Result<Connection> {
    let conn = Connection::open(dir.join("data.sqlite"))?;
    // page_size must be set before the first table exists (and before WAL is enabled).
    conn.pragma_update(None, "page_size", config.page_size as i64)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("sqlite: journal_mode is {mode}, not wal").into());
    }
    conn.pragma_update(None, "synchronous", synchronous)?;
    set_cache(&conn, config.cache_bytes)?;
    conn.execute_batch("CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")?;
    Ok(conn)
}

fn set_cache(conn: &Connection, cache_bytes: usize) -> Result<()> {
    // A negative cache_size is in KiB.
    conn.pragma_update(None, "cache_size", -((cache_bytes / 1024) as i64))?;
    Ok(())
}

fn insert_pairs(conn: &Connection, pairs: &[Pair]) -> Result<()> {
    let mut insert = conn.prepare_cached(INSERT)?;
    for (key, value) in pairs {
        insert.execute((key.as_slice(), value.as_slice()))?;
    }
    Ok(())
}

fn get_value(conn: &Connection, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
    let mut select = conn.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
    let mut rows = select.query([key])?;
    match rows.next()? {
        Some(row) => {
            out.clear();
            out.extend_from_slice(row.get_ref(0)?.as_blob()?);
            Ok(true)
        }
        None => Ok(false),
    }
}

pub struct SqliteEngine {
    conn: Connection,
}

impl SqliteEngine {
    pub fn create(dir: &Path, config: EngineConfig) -> Result<SqliteEngine> {
        let synchronous = if config.durable_commits {
            "FULL"
        } else {
            "OFF"
        };
        Ok(SqliteEngine {
            conn: create_db(dir, config, synchronous)?,
        })
    }
}

impl Engine for SqliteEngine {
    fn insert_batch(&mut self, batch: &Batch) -> Result<()> {
        let txn = self.conn.transaction()?;
        insert_pairs(&txn, &batch.pairs)?;
        txn.commit()?;
        Ok(())
    }

    fn make_durable(&mut self) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        let (busy, _log, _checkpointed): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(FULL)", [], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
        if busy != 0 {
            return Err("sqlite: wal_checkpoint(FULL) could not complete".into());
        }
        Ok(())
    }

    fn begin_reads(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN")?;
        Ok(())
    }

    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        get_value(&self.conn, key, out)
    }

    fn scan(&mut self, start: &[u8], limit: usize) -> Result<ScanSummary> {
        let mut select = self
            .conn
            .prepare_cached("SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2")?;
        let mut rows = select.query((start, limit as i64))?;
        let mut summary = ScanSummary::default();
        while let Some(row) = rows.next()? {
            summary.record(row.get_ref(0)?.as_blob()?, row.get_ref(1)?.as_blob()?);
        }
        Ok(summary)
    }

    fn close(self: Box<Self>) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("COMMIT")?;
        }
        self.conn.close().map_err(|(_conn, err)| err)?;
        Ok(())
    }
}

/// The `commit` benchmark's shared database: one connection per committer thread, as SQLite
/// connections must not be shared between concurrent writers.
pub struct SqliteShared {
    /// The connection that created the file; used for the checks after the run.
    conn: Connection,
    path: std::path::PathBuf,
    cache_bytes: usize,
}

impl SqliteShared {
    pub fn create(dir: &Path, config: EngineConfig) -> Result<SqliteShared> {
        Ok(SqliteShared {
            conn: create_db(dir, config, "FULL")?,
            path: dir.join("data.sqlite"),
            cache_bytes: config.cache_bytes,
        })
    }
}

impl SharedEngine for SqliteShared {
    fn committer(&self) -> Result<Box<dyn Committer>> {
        let conn = Connection::open(&self.path)?;
        // journal_mode=WAL is stored in the file; synchronous and the cache are per connection.
        conn.pragma_update(None, "synchronous", "FULL")?;
        set_cache(&conn, self.cache_bytes)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Box::new(SqliteCommitter { conn }))
    }

    fn count(&self) -> Result<u64> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM kv", [], |row| row.get(0))?;
        Ok(count as u64)
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        get_value(&self.conn, key, out)
    }
}

struct SqliteCommitter {
    conn: Connection,
}

impl Committer for SqliteCommitter {
    fn commit(&mut self, pairs: &[Pair]) -> Result<()> {
        // IMMEDIATE takes the write lock at BEGIN, where the busy handler waits for it; a
        // deferred transaction would upgrade inside the INSERT.
        let txn = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_pairs(&txn, pairs)?;
        txn.commit()?;
        Ok(())
    }
}
