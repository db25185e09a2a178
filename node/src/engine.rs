//! The embedded database: one data directory, one storage engine and MVCC store, any number
//! of sessions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nq_storage::mvcc::{MvccConfig, MvccStore};
use nq_storage::{Database, Options};

use crate::dml::RowIds;
use crate::error::{Result, SqlError};
use crate::session::Session;

/// File name of the data file inside the data directory.
pub const DATA_FILE: &str = "data.nqdb";

pub(crate) struct EngineInner {
    pub dir: PathBuf,
    pub db: Database,
    pub store: MvccStore,
    pub rowids: RowIds,
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
        Engine::open_with(dir, &Options::default())
    }

    /// Like [`Engine::open`] with storage options.
    pub fn open_with(dir: &Path, options: &Options) -> Result<Engine> {
        std::fs::create_dir_all(dir).map_err(|e| {
            SqlError::Storage(nq_storage::StorageError::Io {
                path: dir.to_path_buf(),
                source: e,
            })
        })?;
        let db = Database::open_or_create(dir.join(DATA_FILE), options)?;
        let store = MvccStore::open(&db, MvccConfig::default())?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                dir: dir.to_path_buf(),
                db,
                store,
                rowids: RowIds::default(),
            }),
        })
    }

    /// A new session (its own transaction state).
    pub fn session(&self) -> Session {
        Session::new(self.clone())
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
