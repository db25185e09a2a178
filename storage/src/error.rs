//! The storage engine's error type.
//!
//! Every failure a caller can see is one of these variants. Bad bytes on disk are
//! [`StorageError::Corruption`] naming the file and page; they are never a panic and never
//! garbage handed back to a caller.

use std::io;
use std::path::PathBuf;

use crate::page::PageId;

/// Result alias used throughout the crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Errors returned by the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system I/O call failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file the call was made on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Bytes read from disk do not form what they claim to be (bad checksum, bad header,
    /// truncated file, impossible field values).
    #[error("corruption in {path}{}: {reason}; restore from a backup or run check_integrity", page_suffix(*.page))]
    Corruption {
        /// The data file.
        path: PathBuf,
        /// The page, if the damage is local to one.
        page: Option<PageId>,
        /// What was wrong.
        reason: String,
    },

    /// The write-ahead log is damaged somewhere other than its tail, so records that were
    /// acknowledged as durable cannot be read back.
    #[error("write-ahead log damaged in {path} at lsn {lsn}: {reason}; restore from a backup")]
    LogCorruption {
        /// The segment file.
        path: PathBuf,
        /// Position of the first bad record.
        lsn: u64,
        /// What was wrong.
        reason: String,
    },

    /// The file is not a NeuroQuantumDB data file, or was written by an incompatible version.
    #[error("{path} is not a usable data file: {reason}")]
    IncompatibleFile {
        /// The file that was opened.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },

    /// Options passed to `create`/`open` are invalid.
    #[error("invalid storage configuration: {0}")]
    InvalidConfig(String),

    /// A key is longer than a page can hold; keys must fit inline in B+ tree nodes.
    #[error("key of {len} bytes exceeds the maximum of {max} bytes for this page size")]
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
        /// Largest key this database accepts.
        max: usize,
    },

    /// A value is larger than the engine can store.
    #[error("value of {len} bytes exceeds the maximum of {max} bytes")]
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// Largest value accepted.
        max: usize,
    },

    /// No tree with this name exists.
    #[error("tree {0:?} does not exist")]
    TreeNotFound(String),

    /// A tree with this name exists already.
    #[error("tree {0:?} already exists")]
    TreeExists(String),

    /// A tree name was empty or too long.
    #[error("invalid tree name {name:?}: {reason}")]
    InvalidTreeName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Bulk load input was not strictly ascending, or the target tree was not empty.
    #[error("bulk load rejected: {0}")]
    BulkLoad(String),

    /// Every buffer-pool frame is pinned; the configured memory budget is too small for the
    /// current concurrency.
    #[error(
        "buffer pool exhausted: all {frames} frames are pinned; raise buffer_pool_bytes or lower concurrency"
    )]
    BufferPoolExhausted {
        /// Number of frames in the pool.
        frames: usize,
    },

    /// The integrity checker found a structural problem.
    #[error("integrity check failed: {0}")]
    Integrity(String),

    /// The file is locked by another process.
    #[error("{path} is in use by another process")]
    Locked {
        /// The data file.
        path: PathBuf,
    },

    /// First committer wins: another transaction committed a write to this key after this
    /// transaction's snapshot was taken. Retry the transaction.
    #[error(
        "write conflict on key {}: committed at {conflict_ts}, after this transaction started at {start_ts}; retry the transaction",
        show_key(key)
    )]
    WriteConflict {
        /// The contended key.
        key: Vec<u8>,
        /// This transaction's start timestamp.
        start_ts: u64,
        /// Commit timestamp of the write that won.
        conflict_ts: u64,
    },

    /// The key carries a prewrite lock of an unfinished two-phase transaction; resolve it from
    /// its primary ([`crate::mvcc::MvccStore::resolve_lock`]) or retry later.
    #[error(
        "key {} is locked by transaction {lock_ts} (primary {})",
        show_key(key),
        show_key(primary)
    )]
    KeyLocked {
        /// The locked key.
        key: Vec<u8>,
        /// Start timestamp of the transaction holding the lock.
        lock_ts: u64,
        /// The primary key of that transaction.
        primary: Vec<u8>,
    },

    /// Waiting for this lock would close a cycle of transactions waiting on each other; this
    /// transaction was chosen as the victim and must be rolled back.
    #[error(
        "deadlock detected: transaction {txn} waiting for key {} held by transaction {holder}; transaction {txn} aborted",
        show_key(key)
    )]
    Deadlock {
        /// The aborted transaction (the one whose wait would have closed the cycle).
        txn: u64,
        /// The transaction holding the lock.
        holder: u64,
        /// The key waited for.
        key: Vec<u8>,
    },

    /// A lock was not granted within the lock-wait timeout.
    #[error(
        "lock wait timeout after {waited_ms} ms on key {} held by transaction {holder}",
        show_key(key)
    )]
    LockTimeout {
        /// The key waited for.
        key: Vec<u8>,
        /// The transaction holding it.
        holder: u64,
        /// How long this transaction waited.
        waited_ms: u64,
    },

    /// A two-phase commit step does not fit the transaction's recorded state (committing a
    /// rolled-back transaction, rolling back a committed one, a lock that is gone).
    #[error("transaction {start_ts}: {reason}")]
    TxnState {
        /// The transaction's start timestamp.
        start_ts: u64,
        /// What does not fit.
        reason: String,
    },
}

/// Shows a key for an error message: UTF-8 text quoted if printable, hex otherwise, cut at 64 bytes.
fn show_key(key: &[u8]) -> String {
    let cut = &key[..key.len().min(64)];
    let more = if key.len() > 64 { "…" } else { "" };
    match std::str::from_utf8(cut) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}{more}"),
        _ => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{more}")
        }
    }
}

fn page_suffix(page: Option<PageId>) -> String {
    page.map(|p| format!(" page {p}")).unwrap_or_default()
}

impl StorageError {
    /// A stable, lowercase label for metrics and logs (one per variant).
    pub fn metric_label(&self) -> &'static str {
        match self {
            StorageError::Io { .. } => "io",
            StorageError::Corruption { .. } => "corruption",
            StorageError::LogCorruption { .. } => "log_corruption",
            StorageError::IncompatibleFile { .. } => "incompatible_file",
            StorageError::InvalidConfig(_) => "invalid_config",
            StorageError::KeyTooLarge { .. } => "key_too_large",
            StorageError::ValueTooLarge { .. } => "value_too_large",
            StorageError::TreeNotFound(_) => "tree_not_found",
            StorageError::TreeExists(_) => "tree_exists",
            StorageError::InvalidTreeName { .. } => "invalid_tree_name",
            StorageError::BulkLoad(_) => "bulk_load",
            StorageError::BufferPoolExhausted { .. } => "buffer_pool_exhausted",
            StorageError::Integrity(_) => "integrity",
            StorageError::Locked { .. } => "locked",
            StorageError::WriteConflict { .. } => "write_conflict",
            StorageError::KeyLocked { .. } => "key_locked",
            StorageError::Deadlock { .. } => "deadlock",
            StorageError::LockTimeout { .. } => "lock_timeout",
            StorageError::TxnState { .. } => "txn_state",
        }
    }

    /// True if this error reports damaged data rather than a usage or environment problem.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            StorageError::Corruption { .. } | StorageError::LogCorruption { .. }
        )
    }
}
