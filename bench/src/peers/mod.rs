//! The engines the `storage` benchmark compares, behind one small trait so every engine runs the
//! very same workload code.
//!
//! The trait mirrors what the benchmark needs, not any engine's API: a batch insert with one
//! commit, a point lookup that hands the value to the caller, and a bounded forward scan.

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
}

/// How a batch's commit must behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The engine's least durable commit (per-batch commits of the load).
    Fast,
    /// The one commit that makes everything so far durable (the end of the load).
    Durable,
}

/// One batch of encoded keys and values, built before the timed insert.
#[derive(Debug, Default)]
pub struct Batch {
    pub pairs: Vec<([u8; 8], [u8; crate::workload::VALUE_LEN])>,
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
    /// Inserts every pair of `batch` and commits once.
    fn insert_batch(&mut self, batch: &Batch, commit: Commit) -> Result<()>;
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
