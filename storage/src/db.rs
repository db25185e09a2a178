//! The database file: creation, opening, the catalog of named trees, flushing and closing.
//!
//! The catalog is itself a B+ tree (root page recorded in the file header) mapping each tree's
//! name to its root page. Because a tree's root never moves, the catalog changes only when a
//! tree is created or dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::btree::{Tree, TreeShared};
use crate::bufferpool::{BufferPool, BufferPoolConfig, BufferPoolStats};
use crate::error::{Result, StorageError};
use crate::integrity::{self, IntegrityReport};
use crate::meta::Meta;
use crate::node;
use crate::page::{self, PageId, PageType};
use crate::pager::Pager;
use crate::store::Store;
use crate::vfs::{StdVfs, Vfs};

/// Longest tree name accepted, in bytes.
pub const MAX_TREE_NAME: usize = 255;
const CATALOG_ROOT: PageId = 1;
const CATALOG_NAME: &str = "$catalog";

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vfs: Arc::new(StdVfs),
            page_size: 4096,
            buffer_pool: BufferPoolConfig::default(),
        }
    }
}

struct DbInner {
    store: Arc<Store>,
    catalog: Tree,
    /// Open trees by name, so every handle to a tree shares its writer lock.
    trees: Mutex<FxHashMap<String, Arc<TreeShared>>>,
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
        let meta = Meta {
            page_size: options.page_size as u32,
            page_count: CATALOG_ROOT + 1,
            free_head: 0,
            free_len: 0,
            catalog_root: CATALOG_ROOT,
        };
        let pager = Arc::new(Pager::create(&*options.vfs, path, &meta)?);
        let pool = BufferPool::new(pager, &options.buffer_pool)?;
        {
            let mut root = pool.create(CATALOG_ROOT)?;
            node::init(&mut root, CATALOG_ROOT, 0);
        }
        let store = Arc::new(Store::new(pool, &meta));
        store.flush()?;
        Ok(Database::assemble(store))
    }

    /// Opens an existing database file.
    #[tracing::instrument(level = "debug", skip(options), fields(path = %path.as_ref().display()))]
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<Database> {
        let (pager, meta) = Pager::open(&*options.vfs, path.as_ref())?;
        let pool = BufferPool::new(Arc::new(pager), &options.buffer_pool)?;
        let store = Arc::new(Store::new(pool, &meta));
        store.read_node(meta.catalog_root, None)?;
        Ok(Database::assemble(store))
    }

    /// Opens the file if it exists, creates it otherwise.
    pub fn open_or_create(path: impl AsRef<Path>, options: &Options) -> Result<Database> {
        match options.vfs.open(path.as_ref()) {
            Ok(_) => Database::open(path, options),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Database::create(path, options),
            Err(source) => Err(StorageError::Io {
                path: path.as_ref().to_path_buf(),
                source,
            }),
        }
    }

    fn assemble(store: Arc<Store>) -> Database {
        let catalog_shared = TreeShared::new(CATALOG_NAME.into(), store.catalog_root);
        let catalog = Tree::new(catalog_shared, Arc::clone(&store));
        Database {
            inner: Arc::new(DbInner {
                store,
                catalog,
                trees: Mutex::new(FxHashMap::default()),
            }),
        }
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

    /// Writes every dirty page and the file header, then syncs the file.
    pub fn flush(&self) -> Result<()> {
        self.inner.store.flush()
    }

    /// Flushes and stops background work. Other clones and tree handles keep the file open
    /// until they are dropped.
    pub fn close(self) -> Result<()> {
        self.inner.store.flush()?;
        if Arc::strong_count(&self.inner) == 1 {
            self.inner.store.pool.stop_flusher();
        }
        Ok(())
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
    }
}
