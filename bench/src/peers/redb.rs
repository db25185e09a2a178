//! redb 4: a durable commit is `Durability::Immediate` (fsynced before `commit` returns); a
//! fast commit is `Durability::None` (kept in memory until a durable commit), and a last empty
//! `Durability::Immediate` commit ends such a load. redb serialises write transactions:
//! concurrent committers wait in `begin_write`.

use std::path::Path;
use std::sync::Arc;

use ::redb::{
    Builder, Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTableMetadata,
    TableDefinition,
};

use super::{Batch, Committer, Engine, EngineConfig, Pair, ScanSummary, SharedEngine};
use crate::Result;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

fn create_db(dir: &Path, config: EngineConfig) -> Result<Database> {
    let db = Builder::new()
        .set_cache_size(config.cache_bytes)
        .create(dir.join("data.redb"))?;
    Ok(db)
}

/// Inserts `pairs` in one write transaction committed with `durability`.
fn commit_pairs(db: &Database, pairs: &[Pair], durability: Durability) -> Result<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability)?;
    {
        let mut table = txn.open_table(TABLE)?;
        for (key, value) in pairs {
            table.insert(key.as_slice(), value.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

pub struct RedbEngine {
    db: Database,
    durable_commits: bool,
    /// The read transaction's table, open for the whole of the read phases.
    reads: Option<ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl RedbEngine {
    pub fn create(dir: &Path, config: EngineConfig) -> Result<RedbEngine> {
        Ok(RedbEngine {
            db: create_db(dir, config)?,
            durable_commits: config.durable_commits,
            reads: None,
        })
    }

    fn table(&self) -> Result<&ReadOnlyTable<&'static [u8], &'static [u8]>> {
        self.reads
            .as_ref()
            .ok_or_else(|| "redb: read before begin_reads".into())
    }
}

impl Engine for RedbEngine {
    fn insert_batch(&mut self, batch: &Batch) -> Result<()> {
        let durability = if self.durable_commits {
            Durability::Immediate
        } else {
            Durability::None
        };
        commit_pairs(&self.db, &batch.pairs, durability)
    }

    fn make_durable(&mut self) -> Result<()> {
        commit_pairs(&self.db, &[], Durability::Immediate)
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

/// The `commit` benchmark's shared database: one `Database` behind an `Arc`.
pub struct RedbShared {
    db: Arc<Database>,
}

impl RedbShared {
    pub fn create(dir: &Path, config: EngineConfig) -> Result<RedbShared> {
        let db = create_db(dir, config)?;
        // Create the table up front, so committers only insert.
        commit_pairs(&db, &[], Durability::Immediate)?;
        Ok(RedbShared { db: Arc::new(db) })
    }
}

impl SharedEngine for RedbShared {
    fn committer(&self) -> Result<Box<dyn Committer>> {
        Ok(Box::new(RedbCommitter {
            db: Arc::clone(&self.db),
        }))
    }

    fn count(&self) -> Result<u64> {
        Ok(self.db.begin_read()?.open_table(TABLE)?.len()?)
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        match self.db.begin_read()?.open_table(TABLE)?.get(key)? {
            Some(guard) => {
                out.clear();
                out.extend_from_slice(guard.value());
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

struct RedbCommitter {
    db: Arc<Database>,
}

impl Committer for RedbCommitter {
    fn commit(&mut self, pairs: &[Pair]) -> Result<()> {
        commit_pairs(&self.db, pairs, Durability::Immediate)
    }
}
