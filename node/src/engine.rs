//! The embedded database: one data directory, one storage engine and MVCC store, any number
//! of sessions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nq_storage::mvcc::{MvccConfig, MvccStore};
use nq_storage::{Database, Options};

use crate::dml::RowIds;
use crate::error::{Result, SqlError};
use crate::session::Session;
use crate::stats::EngineStats;

/// Settings of an embedded database.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Storage settings (page size, buffer pool, log).
    pub storage: Options,
    /// Statements slower than this are logged (target `nq_node::slow_query`); `None` logs none.
    pub slow_query: Option<std::time::Duration>,
    /// Default statement timeout of new sessions; `None` means none.
    pub statement_timeout: Option<std::time::Duration>,
    /// Bytes one statement's sorts, hash tables and buffers may hold; 0 = unlimited.
    pub memory_limit_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            storage: Options::default(),
            slow_query: Some(std::time::Duration::from_secs(1)),
            statement_timeout: None,
            memory_limit_bytes: 256 << 20,
        }
    }
}

/// File name of the data file inside the data directory.
pub const DATA_FILE: &str = "data.nqdb";

pub(crate) struct EngineInner {
    pub dir: PathBuf,
    pub db: Database,
    pub store: MvccStore,
    pub rowids: RowIds,
    pub stats: EngineStats,
    pub options: EngineOptions,
    /// Change capture, once a listener is set (the server's change feeds).
    pub capture: std::sync::OnceLock<crate::changes::ChangeCapture>,
    /// Parsed statements and their plans, shared by every session.
    pub plans: crate::plan::PlanCache,
    /// Orders catalog changes, so cached plans are used only where they are still right.
    pub catalog_clock: Arc<crate::catalog::CatalogClock>,
}

/// An open database. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens (creating if needed) the database in `dir`, recovering after a crash.
    pub fn open(dir: &Path) -> Result<Engine> {
        Engine::open_with(dir, &EngineOptions::default())
    }

    /// Like [`Engine::open`] with options.
    pub fn open_with(dir: &Path, options: &EngineOptions) -> Result<Engine> {
        std::fs::create_dir_all(dir).map_err(|e| {
            SqlError::Storage(nq_storage::StorageError::Io {
                path: dir.to_path_buf(),
                source: e,
            })
        })?;
        let db = Database::open_or_create(dir.join(DATA_FILE), &options.storage)?;
        let store = MvccStore::open(&db, MvccConfig::default())?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                dir: dir.to_path_buf(),
                db,
                store,
                rowids: RowIds::default(),
                stats: EngineStats::default(),
                options: options.clone(),
                capture: std::sync::OnceLock::new(),
                plans: crate::plan::PlanCache::default(),
                catalog_clock: Arc::default(),
            }),
        })
    }

    /// A new session (its own transaction state).
    pub fn session(&self) -> Session {
        Session::new(self.clone())
    }

    /// Delivers every later commit's row changes to `listener`, in commit order. Only one
    /// listener can be set; false if one was already.
    pub fn set_change_listener(&self, listener: Arc<dyn crate::changes::ChangeListener>) -> bool {
        self.inner
            .capture
            .set(crate::changes::ChangeCapture::new(listener))
            .is_ok()
    }

    /// Commits `txn`, capturing its changes if a listener is set.
    pub(crate) fn commit(&self, txn: Box<dyn crate::kv::KvTxn>) -> Result<u64> {
        match self.inner.capture.get() {
            Some(capture) => capture.commit(&self.inner.store, txn),
            None => txn.commit(),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Checkpoints and closes the storage (other clones keep it open until dropped).
    pub fn close(self) -> Result<()> {
        let inner = self.inner;
        let db = inner.db.clone();
        drop(inner);
        db.close().map_err(Into::into)
    }
}
