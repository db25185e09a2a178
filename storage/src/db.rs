//! The database file: creation, opening (with crash recovery), the catalog of named trees,
//! atomic durable batches, checkpoints and closing.
//!
//! The catalog is itself a B+ tree (root page recorded in the file header) mapping each tree's
//! name to its root page. Because a tree's root never moves, the catalog changes only when a
//! tree is created or dropped. Keys starting with `$` in the catalog are system entries (the
//! applied index), never tree names.
//!
//! The write-ahead log lives in the directory `<file>-wal` next to the data file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::background::Periodic;
use crate::btree::{Tree, TreeShared};
use crate::bufferpool::{BufferPool, BufferPoolConfig, BufferPoolStats};
use crate::error::{Result, StorageError};
use crate::integrity::{self, IntegrityReport};
use crate::meta::{META_PREFIX_LEN, Meta};
use crate::node;
use crate::page::{self, PageId, PageType};
use crate::pager::{Pager, io_error};
use crate::store::{RecoveryReport, Store};
use crate::vfs::{StdVfs, Vfs};
use crate::wal::{Lsn, Wal, WalConfig, WalStats};

/// Longest tree name accepted, in bytes.
pub const MAX_TREE_NAME: usize = 255;
const CATALOG_ROOT: PageId = 1;
const CATALOG_NAME: &str = "$catalog";
/// Catalog key holding the applied index (see [`Database::batch_at`]).
const APPLIED_INDEX_KEY: &[u8] = b"$applied_index";

/// Settings for creating or opening a database file.
#[derive(Debug, Clone)]
pub struct Options {
    /// The file system the data file lives on: the real one by default, a
    /// [`crate::vfs::FaultVfs`] in crash tests.
    pub vfs: Arc<dyn Vfs>,
    /// Page size for a new file: 4096, 8192, 16384 or 32768. An existing file keeps the size it
    /// was created with.
    pub page_size: usize,
    /// Buffer pool settings (memory budget, eviction policy, flusher interval).
    pub buffer_pool: BufferPoolConfig,
    /// Write-ahead log settings (segment size, sync policy).
    pub wal: WalConfig,
    /// A background checkpoint starts once this many log bytes were written since the last
    /// one; this bounds recovery time. `None` disables automatic checkpoints.
    pub checkpoint_wal_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vfs: Arc::new(StdVfs),
            page_size: 4096,
            buffer_pool: BufferPoolConfig::default(),
            wal: WalConfig::default(),
            checkpoint_wal_bytes: Some(128 << 20),
        }
    }
}

/// How often the checkpointer looks at the log size.
const CHECKPOINT_POLL: Duration = Duration::from_millis(200);

struct DbInner {
    store: Arc<Store>,
    catalog: Tree,
    /// Open trees by name, so every handle to a tree shares its writer lock.
    trees: Mutex<FxHashMap<String, Arc<TreeShared>>>,
    recovery: RecoveryReport,
    checkpointer: Mutex<Option<Periodic>>,
}

impl Drop for DbInner {
    fn drop(&mut self) {
        if let Some(checkpointer) = self.checkpointer.get_mut().take() {
            checkpointer.signal();
        }
    }
}

/// The log directory of the data file at `path`: `<file name>-wal` beside it.
pub fn wal_dir_for(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push("-wal");
    path.with_file_name(name)
}

/// One database file holding any number of named B+ trees.
///
/// Dropping the database (and every [`Tree`] handle) flushes it; [`Database::close`] does the
/// same and reports errors.
#[derive(Clone)]
pub struct Database {
    inner: Arc<DbInner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Creates a new database file. Fails if the file exists.
    #[tracing::instrument(level = "debug", skip(options), fields(path = %path.as_ref().display()))]
    pub fn create(path: impl AsRef<Path>, options: &Options) -> Result<Database> {
        let path = path.as_ref();
        if !page::is_supported_page_size(options.page_size) {
            return Err(StorageError::InvalidConfig(format!(
                "page_size {} is not one of {:?}",
                options.page_size,
                page::SUPPORTED_PAGE_SIZES
            )));
        }
        // The data file first: creating it fails if it exists, and only then may a log directory
        // left without a data file (a deleted database, or a create cut short) be emptied.
        let page_count = CATALOG_ROOT + 1;
        let mut meta = Meta {
            page_size: options.page_size as u32,
            page_count,
            free_head: 0,
            free_len: 0,
            catalog_root: CATALOG_ROOT,
            checkpoint_lsn: 0,
            sequence: 0,
        };
        let pager = Arc::new(Pager::create(&*options.vfs, path, &meta)?);
        let wal_dir = wal_dir_for(path);
        if let Ok(names) = options.vfs.list(&wal_dir) {
            for name in names {
                let stale = wal_dir.join(name);
                options
                    .vfs
                    .remove(&stale)
                    .map_err(|e| io_error(&stale, e))?;
            }
        }
        let wal = Wal::open_with(Arc::clone(&options.vfs), &wal_dir, options.wal.clone())?;
        meta.checkpoint_lsn = wal.next_lsn();
        let pool = BufferPool::new(pager, &options.buffer_pool, Some(Arc::clone(&wal)))?;
        {
            let mut root = pool.create(CATALOG_ROOT)?;
            node::init(&mut root, CATALOG_ROOT, 0);
        }
        let store = Arc::new(Store::new(pool, &meta, wal));
        // Writes the catalog root, syncs, and only then writes the header.
        store.checkpoint()?;
        Database::assemble(store, RecoveryReport::default(), options)
    }

    /// Opens an existing database file, replaying its log: every batch acknowledged before a
    /// crash is there, nothing of a batch that was not is.
    #[tracing::instrument(level = "debug", skip(options), fields(path = %path.as_ref().display()))]
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<Database> {
        let path = path.as_ref();
        let (pager, meta) = Pager::open(&*options.vfs, path)?;
        let wal_dir = wal_dir_for(path);
        let wal = Wal::open_with(Arc::clone(&options.vfs), &wal_dir, options.wal.clone())?;
        if wal.next_lsn() < meta.checkpoint_lsn {
            return Err(StorageError::LogCorruption {
                path: wal_dir,
                lsn: wal.next_lsn(),
                reason: format!(
                    "the log ends before the last checkpoint at {}: log files are missing",
                    meta.checkpoint_lsn
                ),
            });
        }
        let pool = BufferPool::new(
            Arc::new(pager),
            &options.buffer_pool,
            Some(Arc::clone(&wal)),
        )?;
        let store = Arc::new(Store::new(pool, &meta, wal));
        let report = store.recover(meta.checkpoint_lsn)?;
        if report.records > 0 {
            // No checkpoint here: the replayed pages are dirty in the pool and their log stays
            // until the background checkpointer (or close) writes them, so opening does not
            // wait for a whole checkpoint's worth of page writes.
            tracing::info!(
                records = report.records,
                pages = report.pages_applied,
                ms = report.duration.as_millis() as u64,
                "replayed the log"
            );
        }
        store.read_node(meta.catalog_root, None)?;
        Database::assemble(store, report, options)
    }

    /// Opens the file if it exists, creates it otherwise. A file without a header whose first
    /// page is all zeroes is a create that was cut short (the header is written last) and is
    /// created again.
    pub fn open_or_create(path: impl AsRef<Path>, options: &Options) -> Result<Database> {
        let path = path.as_ref();
        match options.vfs.open(path) {
            Ok(file) => {
                let unfinished = matches!(file.size(), Ok(len) if len >= META_PREFIX_LEN as u64)
                    && {
                        let mut head = vec![0u8; META_PREFIX_LEN];
                        file.read_exact_at(&mut head, 0).is_ok() && head.iter().all(|&b| b == 0)
                    };
                drop(file);
                if unfinished {
                    tracing::warn!(path = %path.display(), "finishing an interrupted create");
                    options.vfs.remove(path).map_err(|e| io_error(path, e))?;
                    return Database::create(path, options);
                }
                Database::open(path, options)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Database::create(path, options),
            Err(source) => Err(StorageError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn assemble(
        store: Arc<Store>,
        recovery: RecoveryReport,
        options: &Options,
    ) -> Result<Database> {
        store.pool.set_logging(true);
        let catalog_shared = TreeShared::new(CATALOG_NAME.into(), store.catalog_root);
        let catalog = Tree::new(catalog_shared, Arc::clone(&store));
        let db = Database {
            inner: Arc::new(DbInner {
                store,
                catalog,
                trees: Mutex::new(FxHashMap::default()),
                recovery,
                checkpointer: Mutex::new(None),
            }),
        };
        if let Some(limit) = options.checkpoint_wal_bytes {
            let weak = Arc::downgrade(&db.inner.store);
            let checkpointer = Periodic::start("nq-checkpoint", CHECKPOINT_POLL, move || {
                let Some(store) = weak.upgrade() else {
                    return false;
                };
                if store.log_since_checkpoint() >= limit
                    && let Err(err) = store.checkpoint()
                {
                    tracing::warn!(error = %err, "background checkpoint failed");
                }
                true
            })
            .map_err(|e| io_error(&db.path(), e))?;
            *db.inner.checkpointer.lock() = Some(checkpointer);
        }
        Ok(db)
    }

    /// The data file's path.
    pub fn path(&self) -> PathBuf {
        self.inner.store.path().to_path_buf()
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> usize {
        self.inner.store.limits.page_size
    }

    /// The largest key this database accepts.
    pub fn max_key_len(&self) -> usize {
        self.inner.store.limits.max_key
    }

    fn validate_name(name: &str) -> Result<()> {
        let reason = if name.is_empty() {
            "name is empty"
        } else if name.len() > MAX_TREE_NAME {
            "name is longer than 255 bytes"
        } else if name.starts_with('$') {
            "names starting with '$' are reserved"
        } else {
            return Ok(());
        };
        Err(StorageError::InvalidTreeName {
            name: name.chars().take(64).collect(),
            reason,
        })
    }

    fn root_of(&self, name: &str) -> Result<Option<PageId>> {
        let Some(value) = self.inner.catalog.get(name.as_bytes())? else {
            return Ok(None);
        };
        let root = <[u8; 8]>::try_from(value.as_slice())
            .map(u64::from_le_bytes)
            .map_err(|_| {
                self.inner.store.corruption(
                    self.inner.store.catalog_root,
                    "catalog entry is not a page id",
                )
            })?;
        Ok(Some(root))
    }

    fn handle(&self, shared: Arc<TreeShared>) -> Tree {
        Tree::new(shared, Arc::clone(&self.inner.store))
    }

    /// Creates a new, empty tree.
    pub fn create_tree(&self, name: &str) -> Result<Tree> {
        Database::validate_name(name)?;
        let (tree, _) = self.inner.store.atomic(|| self.create_tree_locked(name))?;
        Ok(tree)
    }

    fn create_tree_locked(&self, name: &str) -> Result<Tree> {
        let mut trees = self.inner.trees.lock();
        if self.root_of(name)?.is_some() {
            return Err(StorageError::TreeExists(name.into()));
        }
        let root = {
            let mut page = self.inner.store.allocate(PageType::Leaf)?;
            let id = page.id();
            node::init(&mut page, id, 0);
            id
        };
        self.inner
            .catalog
            .insert(name.as_bytes(), &root.to_le_bytes())?;
        let shared = TreeShared::new(name.into(), root);
        trees.insert(name.into(), Arc::clone(&shared));
        Ok(self.handle(shared))
    }

    /// The shared state of tree `name`, loaded from the catalog if no handle is open yet.
    /// The caller holds the `trees` map lock.
    fn shared_for(
        &self,
        trees: &mut FxHashMap<String, Arc<TreeShared>>,
        name: &str,
    ) -> Result<Arc<TreeShared>> {
        if let Some(shared) = trees.get(name) {
            return Ok(Arc::clone(shared));
        }
        let root = self
            .root_of(name)?
            .ok_or_else(|| StorageError::TreeNotFound(name.into()))?;
        self.inner.store.read_node(root, None)?;
        let shared = TreeShared::new(name.into(), root);
        trees.insert(name.into(), Arc::clone(&shared));
        Ok(shared)
    }

    /// Opens an existing tree.
    pub fn open_tree(&self, name: &str) -> Result<Tree> {
        let mut trees = self.inner.trees.lock();
        let shared = self.shared_for(&mut trees, name)?;
        Ok(self.handle(shared))
    }

    /// Opens a tree, creating it if it does not exist.
    pub fn tree(&self, name: &str) -> Result<Tree> {
        match self.open_tree(name) {
            Err(StorageError::TreeNotFound(_)) => self.create_tree(name),
            other => other,
        }
    }

    /// Deletes a tree and returns all its pages to the free list. Existing handles to it fail
    /// with [`StorageError::TreeNotFound`] from then on.
    ///
    /// Lock order, here and everywhere: the `trees` map, then the catalog tree, then a named
    /// tree. The tree's `alive` lock is taken exclusively, which waits for every operation in
    /// flight on it (each holds it shared) and is released before the catalog is touched.
    pub fn drop_tree(&self, name: &str) -> Result<()> {
        self.inner
            .store
            .atomic(|| self.drop_tree_locked(name))
            .map(|_| ())
    }

    fn drop_tree_locked(&self, name: &str) -> Result<()> {
        let mut trees = self.inner.trees.lock();
        let shared = self.shared_for(&mut trees, name)?;
        let pages = {
            let mut alive = shared.alive.write();
            if !*alive {
                return Err(StorageError::TreeNotFound(name.into()));
            }
            let pages = integrity::tree_pages(&self.inner.store, shared.root)?;
            *alive = false;
            pages
        };
        trees.remove(name);
        if !self.inner.catalog.delete(name.as_bytes())? {
            return Err(StorageError::Integrity(format!(
                "tree {name:?} was open but has no catalog entry"
            )));
        }
        drop(trees);
        self.inner.store.free_all(&pages)
    }

    /// Names of all trees, in byte order.
    pub fn tree_names(&self) -> Result<Vec<String>> {
        self.inner
            .catalog
            .iter()
            .filter(|entry| !matches!(entry, Ok((key, _)) if key.starts_with(b"$")))
            .map(|entry| {
                let (key, _) = entry?;
                String::from_utf8(key).map_err(|_| {
                    self.inner
                        .store
                        .corruption(self.inner.store.catalog_root, "tree name is not utf-8")
                })
            })
            .collect()
    }

    /// Runs `f` as one atomic, durable batch: every change it makes to any tree survives a
    /// crash, or none does, and when `batch` returns `Ok` the batch is durable under the sync
    /// policy (with [`crate::wal::SyncPolicy::Fsync`], on disk; concurrent batches share
    /// fsyncs). If `f` fails, its changes are undone and its error returned. Batches are
    /// serialised with each other and with single tree writes; readers are not blocked.
    ///
    /// Single tree operations outside a batch are atomic too, but durable only once a later
    /// batch, [`Database::sync`] or a checkpoint has flushed the log.
    pub fn batch<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let (value, lsn) = self.inner.store.atomic(f)?;
        self.inner.store.commit_durable(lsn)?;
        Ok(value)
    }

    /// Like [`Database::batch`], and stores `applied_index` (the position in a replicated log
    /// this batch came from) atomically with it, so a replica restarts exactly after the last
    /// batch it applied. Read it back with [`Database::applied_index`].
    pub fn batch_at<T>(&self, applied_index: u64, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.batch(|| {
            let value = f()?;
            self.inner
                .catalog
                .insert(APPLIED_INDEX_KEY, &applied_index.to_le_bytes())?;
            Ok(value)
        })
    }

    /// The applied index stored by the last [`Database::batch_at`], if any.
    pub fn applied_index(&self) -> Result<Option<u64>> {
        match self.inner.catalog.get(APPLIED_INDEX_KEY)? {
            None => Ok(None),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(|b| Some(u64::from_le_bytes(b)))
                .map_err(|_| {
                    self.inner
                        .store
                        .corruption(self.inner.store.catalog_root, "applied index is not a u64")
                }),
        }
    }

    /// Makes every change so far durable (flushes the log under the sync policy).
    pub fn sync(&self) -> Result<()> {
        self.inner.store.wal.flush_all()
    }

    /// Runs a checkpoint now (see [`Database::flush`]); returns the log position recovery
    /// would start from.
    pub fn checkpoint(&self) -> Result<Lsn> {
        self.inner.store.wal.flush_all()?;
        self.inner.store.checkpoint()
    }

    /// Makes everything durable and checkpoints: every dirty page written, the file synced, the
    /// header updated, and log segments before the checkpoint removed.
    pub fn flush(&self) -> Result<()> {
        self.inner.store.flush()
    }

    /// Flushes and stops background work. Other clones and tree handles keep the file open
    /// until they are dropped.
    pub fn close(self) -> Result<()> {
        if Arc::strong_count(&self.inner) == 1
            && let Some(checkpointer) = self.inner.checkpointer.lock().take()
        {
            checkpointer.stop();
        }
        self.inner.store.flush()?;
        if Arc::strong_count(&self.inner) == 1 {
            self.inner.store.pool.stop_flusher();
            self.inner.store.wal.close()?;
        }
        Ok(())
    }

    /// What recovery replayed when this database was opened.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.recovery
    }

    /// Write-ahead log counters.
    pub fn wal_stats(&self) -> WalStats {
        self.inner.store.wal.stats()
    }

    /// Checkpoints run since opening and their total time.
    pub fn checkpoint_stats(&self) -> (u64, Duration) {
        let c = &self.inner.store.checkpoints;
        (
            c.count.load(Ordering::Relaxed),
            Duration::from_nanos(c.nanos.load(Ordering::Relaxed)),
        )
    }

    /// Buffer pool counters.
    pub fn stats(&self) -> BufferPoolStats {
        self.inner.store.pool.stats()
    }

    /// Hints that these pages will be read soon (see [`BufferPool::prefetch`]).
    pub fn prefetch(&self, pages: &[PageId]) {
        self.inner.store.pool.prefetch(pages);
    }

    /// Verifies the whole file: every page's checksum, every tree's ordering, key bounds, fill,
    /// sibling links and overflow chains, the free list, and that every page is used exactly
    /// once. Blocks writers while it runs.
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        // No mini-transaction runs meanwhile, so the allocator and every tree are at rest.
        let _mtr = self.inner.store.atomic_guard();
        // The map lock keeps trees from being created or dropped meanwhile (both hold it).
        let mut trees = self.inner.trees.lock();
        let names = self.tree_names()?;
        let shared: Vec<Arc<TreeShared>> = names
            .iter()
            .map(|name| self.shared_for(&mut trees, name))
            .collect::<Result<_>>()?;
        let _catalog_writer = self.inner.catalog.shared().writer.lock();
        let _alive: Vec<_> = shared.iter().map(|t| t.alive.read()).collect();
        let _writers: Vec<_> = shared.iter().map(|t| t.writer.lock()).collect();
        let roots: Vec<(String, PageId)> =
            shared.iter().map(|t| (t.name.clone(), t.root)).collect();
        integrity::check(&self.inner.store, &roots)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(err) = self.flush() {
            tracing::error!(error = %err, path = %self.path().display(), "flush on close failed");
        }
        self.pool.stop_flusher();
        if let Err(err) = self.wal.close() {
            tracing::error!(error = %err, path = %self.path().display(), "closing the log failed");
        }
    }
}
