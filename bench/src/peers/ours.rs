//! nq-storage. It has no WAL yet, so a "commit" is nothing: writes land in the buffer pool and
//! reach the file through its background flusher, and `Database::flush` is the one durable point.

use std::path::Path;

use nq_storage::{BufferPoolConfig, Database, Options, Tree};

use super::{Batch, Commit, Engine, EngineConfig, ScanSummary};
use crate::Result;

pub struct OursEngine {
    db: Database,
    tree: Tree,
}

impl OursEngine {
    pub fn create(dir: &Path, config: EngineConfig) -> Result<OursEngine> {
        let options = Options {
            page_size: config.page_size,
            buffer_pool: BufferPoolConfig {
                budget_bytes: config.cache_bytes,
                ..BufferPoolConfig::default()
            },
            ..Options::default()
        };
        let db = Database::create(dir.join("data.nqdb"), &options)?;
        let tree = db.create_tree("kv")?;
        Ok(OursEngine { db, tree })
    }
}

impl Engine for OursEngine {
    fn insert_batch(&mut self, batch: &Batch, commit: Commit) -> Result<()> {
        for (key, value) in &batch.pairs {
            self.tree.insert(key, value)?;
        }
        if commit == Commit::Durable {
            self.db.flush()?;
        }
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
