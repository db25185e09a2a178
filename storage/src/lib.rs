//! NeuroQuantumDB's storage engine.
//!
//! One data file of fixed-size, checksummed pages ([`pager`]), cached by a buffer pool with a
//! fixed memory budget ([`bufferpool`]), holding any number of named B+ trees ([`Tree`]) that
//! map byte keys to byte values. The on-disk format is described byte by byte in
//! `docs/storage-format.md`.
//!
//! **Architecture invariant:** this crate knows nothing about SQL, Raft or HTTP. Keys and values
//! are bytes; ordering is byte order.
//!
//! ```
//! use nq_storage::{Database, Options};
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Database::create(dir.path().join("data.nqdb"), &Options::default())?;
//! let users = db.create_tree("users")?;
//! users.insert(b"alice", b"admin")?;
//! assert_eq!(users.get(b"alice")?, Some(b"admin".to_vec()));
//! let names: Vec<_> = users.range(&b"a"[..]..&b"b"[..]).map(|e| e.map(|(k, _)| k)).collect::<Result<_, _>>()?;
//! assert_eq!(names, vec![b"alice".to_vec()]);
//! db.close()?;
//! # Ok::<(), nq_storage::StorageError>(())
//! ```

mod arena;
mod background;
mod btree;
pub mod bufferpool;
mod db;
mod error;
pub mod eviction;
mod inspect;
mod integrity;
pub mod meta;
mod mtr;
pub mod mvcc;
mod node;
pub mod page;
pub mod pager;
mod readahead;
mod store;
pub mod vfs;
pub mod wal;

pub use btree::{Range, Tree};
pub use bufferpool::{BufferPoolConfig, BufferPoolStats};
pub use db::{Database, MAX_TREE_NAME, Options, wal_dir_for};
pub use error::{Result, StorageError};
pub use eviction::EvictionPolicy;
pub use inspect::{PageSummary, decode_verified, inspect_page};
pub use integrity::IntegrityReport;
pub use page::{PageId, PageType};
pub use store::RecoveryReport;
