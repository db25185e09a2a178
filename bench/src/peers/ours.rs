//! nq-storage. Every commit is a `Database::batch`. With durable commits the log runs
//! `SyncPolicy::Fsync` (the default): the batch's records are written and fsynced before it
//! returns, and concurrent batches share fsyncs through group commit. With fast commits it runs
//! `SyncPolicy::Relaxed`: the records reach the operating system, a background thread fsyncs
//! every [`RELAXED_SYNC`], and `Database::flush` (a checkpoint) ends the load.

use std::path::Path;
use std::time::Duration;

use nq_storage::mvcc::{MvccConfig, MvccStore};
use nq_storage::wal::{SyncPolicy, WalConfig};
use nq_storage::{BufferPoolConfig, Database, Options, Tree};

use super::{Batch, Committer, Engine, EngineConfig, Pair, ScanSummary, SharedEngine};
use crate::Result;

/// Background log sync interval of the fast (non-durable) commit mode.
pub const RELAXED_SYNC: Duration = Duration::from_secs(1);

fn create_db(dir: &Path, config: EngineConfig) -> Result<(Database, Tree)> {
    let sync = if config.durable_commits {
        SyncPolicy::Fsync
    } else {
        SyncPolicy::Relaxed {
            interval: RELAXED_SYNC,
        }
    };
    let options = Options {
        page_size: config.page_size,
        buffer_pool: BufferPoolConfig {
            budget_bytes: config.cache_bytes,
            ..BufferPoolConfig::default()
        },
        wal: WalConfig {
            sync,
            ..WalConfig::default()
        },
        ..Options::default()
    };
    let db = Database::create(dir.join("data.nqdb"), &options)?;
    let tree = db.create_tree("kv")?;
    Ok((db, tree))
}

pub struct OursEngine {
    db: Database,
    tree: Tree,
}

impl OursEngine {
    pub fn create(dir: &Path, config: EngineConfig) -> Result<OursEngine> {
        let (db, tree) = create_db(dir, config)?;
        Ok(OursEngine { db, tree })
    }
}

impl Engine for OursEngine {
    fn insert_batch(&mut self, batch: &Batch) -> Result<()> {
        self.db.batch(|| {
            for (key, value) in &batch.pairs {
                self.tree.insert(key, value)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn make_durable(&mut self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    fn begin_reads(&mut self) -> Result<()> {
        Ok(())
    }

    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        Ok(self.tree.get_into(key, out)?)
    }

    fn scan(&mut self, start: &[u8], limit: usize) -> Result<ScanSummary> {
        let mut summary = ScanSummary::default();
        // Borrowed entries, like redb's access guards: no allocation per row.
        let mut range = self.tree.range(start..);
        while summary.count < limit {
            let Some(item) = range.next_ref() else { break };
            let (key, value) = item?;
            summary.record(key, value);
        }
        Ok(summary)
    }

    fn close(self: Box<Self>) -> Result<()> {
        let OursEngine { db, tree } = *self;
        drop(tree);
        db.close()?;
        Ok(())
    }
}

/// The `commit` benchmark's shared database: MVCC transactions, every thread with a clone of
/// the same store.
pub struct OursShared {
    db: Database,
    store: MvccStore,
}

impl OursShared {
    pub fn create(dir: &Path, config: EngineConfig) -> Result<OursShared> {
        let config = EngineConfig {
            durable_commits: true,
            ..config
        };
        let (db, _) = create_db(dir, config)?;
        let store = MvccStore::open(
            &db,
            MvccConfig {
                gc_interval: None,
                ..MvccConfig::default()
            },
        )?;
        Ok(OursShared { db, store })
    }
}

impl SharedEngine for OursShared {
    fn committer(&self) -> Result<Box<dyn Committer>> {
        Ok(Box::new(OursCommitter {
            store: self.store.clone(),
        }))
    }

    fn count(&self) -> Result<u64> {
        let t = self.store.begin()?;
        Ok(t.scan(b"", None, usize::MAX)?.len() as u64)
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        match self.store.begin()?.get(key)? {
            Some(v) => {
                out.clear();
                out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn log_counters(&self) -> Option<(u64, u64)> {
        let stats = self.db.wal_stats();
        Some((stats.syncs, stats.bytes))
    }
}

struct OursCommitter {
    store: MvccStore,
}

impl Committer for OursCommitter {
    /// One snapshot-isolated transaction: begin, the writes, commit (durable on return).
    fn commit(&mut self, pairs: &[Pair]) -> Result<()> {
        let mut t = self.store.begin()?;
        for (key, value) in pairs {
            t.put(key, value)?;
        }
        t.commit()?;
        Ok(())
    }
}
