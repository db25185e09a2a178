//! The engines the benchmarks compare, behind small traits so every engine runs the very same
//! workload code.
//!
//! The traits mirror what the benchmarks need, not any engine's API. [`Engine`] (the `storage`
//! benchmark): a batch insert with one commit, a point lookup that hands the value to the
//! caller, and a bounded forward scan. [`SharedEngine`] and [`Committer`] (the `commit`
//! benchmark): one database shared by many threads, each committing small durable
//! transactions through its own handle.

mod ours;
mod redb;
mod sqlite;

use std::path::Path;

use crate::Result;

/// Which engine a `storage-engine` child process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// nq-storage.
    Ours,
    /// redb, a copy-on-write B-tree in Rust.
    Redb,
    /// SQLite through rusqlite, bundled build.
    Sqlite,
}

impl EngineKind {
    /// Run order of the `storage` benchmark, which is also the column order of its report.
    pub const ALL: [EngineKind; 3] = [EngineKind::Ours, EngineKind::Redb, EngineKind::Sqlite];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Ours => "ours",
            EngineKind::Redb => "redb",
            EngineKind::Sqlite => "sqlite",
        }
    }
}

/// Engine settings taken from the command line.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Page size for the engines that let us choose it (ours, SQLite; redb's is fixed at 4 KiB).
    pub page_size: usize,
    /// Page cache budget given to every engine, in bytes.
    pub cache_bytes: usize,
    /// `true`: every commit is durable (on disk, fsynced) when it returns. `false`: commits use
    /// the engine's least durable mode and [`Engine::make_durable`] ends the load.
    pub durable_commits: bool,
}

/// A row as the benchmarks write it: an 8-byte key and a 100-byte value.
pub type Pair = ([u8; 8], [u8; crate::workload::VALUE_LEN]);

/// One batch of encoded keys and values, built before the timed insert.
#[derive(Debug, Default)]
pub struct Batch {
    pub pairs: Vec<Pair>,
}

/// What a scan read, enough to check that it read the right rows.
#[derive(Debug, Default)]
pub struct ScanSummary {
    pub count: usize,
    pub first_key: Vec<u8>,
    pub last_key: Vec<u8>,
    /// Sum of key and value lengths, so every row's bytes are touched by the reader.
    pub bytes: u64,
}

impl ScanSummary {
    /// Records one row read by a scan.
    pub fn record(&mut self, key: &[u8], value: &[u8]) {
        if self.count == 0 {
            self.first_key.extend_from_slice(key);
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.bytes += (key.len() + value.len()) as u64;
        self.count += 1;
    }
}

/// One engine under test, holding an open database in its own directory.
pub trait Engine {
    /// Inserts every pair of `batch` and commits once, durably if
    /// [`EngineConfig::durable_commits`].
    fn insert_batch(&mut self, batch: &Batch) -> Result<()>;
    /// Makes every commit so far durable; ends a load whose commits were not.
    fn make_durable(&mut self) -> Result<()>;
    /// Called before the read phases: the peers open one read transaction for all reads, as
    /// ours has no transactions to open.
    fn begin_reads(&mut self) -> Result<()>;
    /// Looks `key` up and copies its value into `out`; `false` if the key is absent.
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool>;
    /// Reads up to `limit` rows in key order starting at `start` (inclusive).
    fn scan(&mut self, start: &[u8], limit: usize) -> Result<ScanSummary>;
    /// Ends the read transaction and closes the database cleanly.
    fn close(self: Box<Self>) -> Result<()>;
}

/// Creates a fresh database for `kind` inside the empty directory `dir`.
pub fn create(kind: EngineKind, dir: &Path, config: EngineConfig) -> Result<Box<dyn Engine>> {
    Ok(match kind {
        EngineKind::Ours => Box::new(ours::OursEngine::create(dir, config)?),
        EngineKind::Redb => Box::new(self::redb::RedbEngine::create(dir, config)?),
        EngineKind::Sqlite => Box::new(sqlite::SqliteEngine::create(dir, config)?),
    })
}

/// One database shared by the threads of the `commit` benchmark.
pub trait SharedEngine {
    /// A handle for one committer thread.
    fn committer(&self) -> Result<Box<dyn Committer>>;
    /// Rows in the table, counted by reading them all.
    fn count(&self) -> Result<u64>;
    /// Looks `key` up and copies its value into `out`; `false` if the key is absent.
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool>;
    /// Log syncs (fsyncs) issued and log bytes appended so far, for engines that count them.
    fn log_counters(&self) -> Option<(u64, u64)> {
        None
    }
}

/// One committer thread's handle on a [`SharedEngine`].
pub trait Committer: Send {
    /// Inserts `pairs` in one transaction and returns once that transaction is durable.
    fn commit(&mut self, pairs: &[Pair]) -> Result<()>;
}

/// Creates a fresh database for `kind` in the empty directory `dir`, for concurrent durable
/// commits (every commit is durable, whatever `config.durable_commits` says).
pub fn create_shared(
    kind: EngineKind,
    dir: &Path,
    config: EngineConfig,
) -> Result<Box<dyn SharedEngine>> {
    Ok(match kind {
        EngineKind::Ours => Box::new(ours::OursShared::create(dir, config)?),
        EngineKind::Redb => Box::new(self::redb::RedbShared::create(dir, config)?),
        EngineKind::Sqlite => Box::new(sqlite::SqliteShared::create(dir, config)?),
    })
}
