//! SQLite (bundled, through rusqlite): WAL journal with `synchronous=OFF` during the load, one
//! transaction per batch with a cached prepared statement. At the end of the load it switches to
//! `synchronous=FULL` and runs `wal_checkpoint(FULL)`: with `synchronous=OFF` a checkpoint would
//! not fsync, and the load must end durable like the other engines'.

use std::path::Path;

use rusqlite::Connection;

use super::{Batch, Commit, Engine, EngineConfig, ScanSummary};
use crate::Result;

pub struct SqliteEngine {
    conn: Connection,
}

impl SqliteEngine {
    pub fn create(dir: &Path, config: EngineConfig) -> Result<SqliteEngine> {
        let conn = Connection::open(dir.join("data.sqlite"))?;
        // page_size must be set before the first table exists (and before WAL is enabled).
        conn.pragma_update(None, "page_size", config.page_size as i64)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("sqlite: journal_mode is {mode}, not wal").into());
        }
        conn.pragma_update(None, "synchronous", "OFF")?;
        // A negative cache_size is in KiB.
        conn.pragma_update(None, "cache_size", -((config.cache_bytes / 1024) as i64))?;
        conn.execute_batch("CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")?;
        Ok(SqliteEngine { conn })
    }
}

impl Engine for SqliteEngine {
    fn insert_batch(&mut self, batch: &Batch, commit: Commit) -> Result<()> {
        let txn = self.conn.transaction()?;
        {
            let mut insert = txn.prepare_cached("INSERT INTO kv(k, v) VALUES (?1, ?2)")?;
            for (key, value) in &batch.pairs {
                insert.execute((key.as_slice(), value.as_slice()))?;
            }
        }
        txn.commit()?;
        if commit == Commit::Durable {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
            let (busy, _log, _checkpointed): (i64, i64, i64) =
                self.conn
                    .query_row("PRAGMA wal_checkpoint(FULL)", [], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })?;
            if busy != 0 {
                return Err("sqlite: wal_checkpoint(FULL) could not complete".into());
            }
        }
        Ok(())
    }

    fn begin_reads(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN")?;
        Ok(())
    }

    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        let mut select = self.conn.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
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
