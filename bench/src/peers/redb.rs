//! redb 4: per-batch commits use `Durability::None` (its least durable level: kept in memory
//! until a durable commit), the last batch commits with `Durability::Immediate`.

use std::path::Path;

use ::redb::{Builder, Database, Durability, ReadOnlyTable, ReadableDatabase, TableDefinition};

use super::{Batch, Commit, Engine, EngineConfig, ScanSummary};
use crate::Result;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

pub struct RedbEngine {
    db: Database,
    /// The read transaction's table, open for the whole of the read phases.
    reads: Option<ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl RedbEngine {
    pub fn create(dir: &Path, config: EngineConfig) -> Result<RedbEngine> {
        let db = Builder::new()
            .set_cache_size(config.cache_bytes)
            .create(dir.join("data.redb"))?;
        Ok(RedbEngine { db, reads: None })
    }

    fn table(&self) -> Result<&ReadOnlyTable<&'static [u8], &'static [u8]>> {
        self.reads
            .as_ref()
            .ok_or_else(|| "redb: read before begin_reads".into())
    }
}

impl Engine for RedbEngine {
    fn insert_batch(&mut self, batch: &Batch, commit: Commit) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(match commit {
            Commit::Fast => Durability::None,
            Commit::Durable => Durability::Immediate,
        })?;
        {
            let mut table = txn.open_table(TABLE)?;
            for (key, value) in &batch.pairs {
                table.insert(key.as_slice(), value.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn begin_reads(&mut self) -> Result<()> {
        self.reads = Some(self.db.begin_read()?.open_table(TABLE)?);
        Ok(())
    }

    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        match self.table()?.get(key)? {
            Some(guard) => {
                out.clear();
                out.extend_from_slice(guard.value());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(&mut self, start: &[u8], limit: usize) -> Result<ScanSummary> {
        let mut summary = ScanSummary::default();
        for item in self.table()?.range(start..)?.take(limit) {
            let (key, value) = item?;
            summary.record(key.value(), value.value());
        }
        Ok(summary)
    }

    fn close(self: Box<Self>) -> Result<()> {
        drop(self);
        Ok(())
    }
}
