//! The B+ tree and its handle.
//!
//! # Concurrency
//!
//! Any number of readers run alongside one writer per tree. Readers use latch coupling from
//! the root down and never hold a latch between calls (`Range` copies one leaf at a time and
//! re-descends for the next), so a slow consumer never blocks the writer. Writers are
//! serialised per tree by a mutex and use pessimistic latch crabbing (see `write.rs`), so
//! readers are blocked only on the few nodes a write is changing. Every write is also a
//! mini-transaction of the store (`Store::atomic`), and those run one at a time across the file,
//! so the log records changes in the order they were made.
//!
//! Iteration is not a snapshot: a range sees each key at most once and in order, but may or
//! may not see keys written while it runs. Snapshots are the MVCC layer's job.

mod bulk;
mod range;
mod read;
mod write;

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::{Mutex, RwLock};

use crate::error::{Result, StorageError};
use crate::page::PageId;
use crate::store::Store;
pub use range::Range;
pub(crate) use read::LeafView;
pub(crate) use write::WriteCtx;

/// State shared by every handle to one tree.
#[derive(Debug)]
pub(crate) struct TreeShared {
    pub name: String,
    pub root: PageId,
    /// Serialises writers.
    pub writer: Mutex<()>,
    /// False once the tree is dropped; held shared by every operation, exclusively by drop.
    pub alive: RwLock<bool>,
    /// Structure-modification counter: bumped before every split, merge, redistribution or
    /// root change, while the writer holds the latches involved. Range scans use it to know
    /// when a sibling link can be followed without a descent (see `range.rs`).
    pub smc: AtomicU64,
}

impl TreeShared {
    pub fn new(name: String, root: PageId) -> Arc<TreeShared> {
        Arc::new(TreeShared {
            name,
            root,
            writer: Mutex::new(()),
            alive: RwLock::new(true),
            smc: AtomicU64::new(0),
        })
    }
}

/// A handle to one named B+ tree: an ordered map from byte keys to byte values.
///
/// Cheap to clone; clones share the tree. Handles stay valid until the tree is dropped, after
/// which every call returns [`StorageError::TreeNotFound`].
#[derive(Clone)]
pub struct Tree {
    shared: Arc<TreeShared>,
    store: Arc<Store>,
}

impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tree")
            .field("name", &self.shared.name)
            .field("root", &self.shared.root)
            .finish()
    }
}

impl Tree {
    pub(crate) fn new(shared: Arc<TreeShared>, store: Arc<Store>) -> Tree {
        Tree { shared, store }
    }

    /// The tree's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The tree's root page (fixed for its lifetime).
    pub fn root_page(&self) -> PageId {
        self.shared.root
    }

    fn gone(&self) -> StorageError {
        StorageError::TreeNotFound(self.shared.name.clone())
    }

    /// Returns the value stored under `key`.
    #[tracing::instrument(level = "trace", skip_all)]
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let alive = self.shared.alive.read();
        if !*alive {
            return Err(self.gone());
        }
        let mut value = Vec::new();
        let found = read::get_into(&self.store, self.shared.root, key, &mut value)?;
        Ok(found.then_some(value))
    }

    /// Looks up `key` and replaces `out`'s contents with its value, reusing `out`'s allocation.
    /// Returns false, leaving `out` empty, if the key is absent.
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        let alive = self.shared.alive.read();
        if !*alive {
            return Err(self.gone());
        }
        read::get_into(&self.store, self.shared.root, key, out)
    }

    /// Looks up every key of `keys` in one pass and returns their values in the same order.
    /// The keys are visited in ascending order with the path from the root kept latched, so
    /// keys sharing a leaf or a subtree pay for its descent once (see `read::seek_sorted`).
    /// Writers of this tree wait while a batch runs: keep batches to a few thousand keys.
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| keys[a].as_ref().cmp(keys[b].as_ref()));
        let mut out = vec![None; keys.len()];
        self.seek_sorted(order.iter().map(|&i| keys[i].as_ref()), |j, leaf| {
            let pos = leaf.position();
            if pos < leaf.len() {
                let (k, v) = leaf.entry(pos)?;
                let i = order[j];
                if k.eq_bytes(keys[i].as_ref()) {
                    let mut value = Vec::new();
                    leaf.value_into(v, &mut value)?;
                    out[i] = Some(value);
                }
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// [`read::seek_sorted`] on this tree.
    pub(crate) fn seek_sorted<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        visit: impl FnMut(usize, &read::LeafView<'_>) -> Result<bool>,
    ) -> Result<()> {
        let alive = self.shared.alive.read();
        if !*alive {
            return Err(self.gone());
        }
        read::seek_sorted(&self.store, self.shared.root, keys, visit)
    }

    /// True if `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> Result<bool> {
        self.get(key).map(|v| v.is_some())
    }

    fn write_op<T>(
        &self,
        op: impl for<'a> FnOnce(&'a Store, PageId, &mut WriteCtx<'a>) -> Result<T>,
    ) -> Result<T> {
        // The mini-transaction lock comes first, before the tree's own locks: a batch holds it
        // across operations on several trees.
        let (value, _lsn) = self.store.atomic(|| {
            let alive = self.shared.alive.read();
            if !*alive {
                return Err(self.gone());
            }
            let _writer = self.shared.writer.lock();
            let mut ctx = WriteCtx::new(&self.shared.smc);
            let result = op(&self.store, self.shared.root, &mut ctx);
            ctx.finish();
            // Every latch of the operation is released by now; return its pages to the free list.
            let freed = self.store.free_all(&ctx.freed);
            let value = result?;
            freed?;
            // Inside a long batch, let pages this batch took from outside every structure be
            // written back early, so the batch is not limited by the pool's size.
            self.store.spill_if_large()?;
            Ok(value)
        })?;
        Ok(value)
    }

    /// Inserts or replaces the value under `key`. Returns true if a value was replaced.
    #[tracing::instrument(level = "trace", skip_all)]
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<bool> {
        let max = self.store.limits.max_key;
        if key.len() > max {
            return Err(StorageError::KeyTooLarge {
                len: key.len(),
                max,
            });
        }
        self.write_op(|store, root, ctx| write::insert(store, root, key, value, ctx))
    }

    /// Removes `key`. Returns true if it was present.
    #[tracing::instrument(level = "trace", skip_all)]
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        if key.len() > self.store.limits.max_key {
            return Ok(false);
        }
        self.write_op(|store, root, ctx| write::delete(store, root, key, ctx))
    }

    /// Loads strictly ascending entries into this tree, which must be empty. Much faster than
    /// inserting one by one and packs pages to 90 %. Returns the number of entries loaded.
    pub fn bulk_load<I, K, V>(&self, entries: I) -> Result<u64>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.write_op(|store, root, ctx| bulk::bulk_load(store, root, entries, ctx))
    }

    /// Iterates over keys within `range`, in ascending order (or descending with `.rev()`).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Range {
        let own = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        Range::new(
            self.clone(),
            own(range.start_bound()),
            own(range.end_bound()),
        )
    }

    /// Iterates over the whole tree.
    pub fn iter(&self) -> Range {
        Range::new(self.clone(), Bound::Unbounded, Bound::Unbounded)
    }

    /// Iterates over keys starting with `prefix`.
    pub fn prefix(&self, prefix: &[u8]) -> Range {
        let end = match prefix_successor(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        Range::new(self.clone(), Bound::Included(prefix.to_vec()), end)
    }

    /// The smallest entry.
    pub fn first(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.iter().next().transpose()
    }

    /// The largest entry.
    pub fn last(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.iter().next_back().transpose()
    }

    /// True if the tree holds no entries.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.first()?.is_none())
    }

    pub(crate) fn shared(&self) -> &Arc<TreeShared> {
        &self.shared
    }
}

/// The smallest key greater than every key that starts with `prefix`, if there is one.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;
    use crate::{Database, Options};

    /// `seek_sorted` puts every key on the leaf and position a lone search finds, for keys
    /// ascending (where each descent starts from the child the previous key took), descending
    /// and scrambled, across a three-level tree.
    #[test]
    fn test_seek_sorted_positions_keys_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.nqdb"), &Options::default()).unwrap();
        let tree = db.create_tree("t").unwrap();
        for k in (0..60_000u32).step_by(2) {
            tree.insert(&k.to_be_bytes(), &[7u8; 40]).unwrap();
        }
        let ascending: Vec<[u8; 4]> = (0..61_000u32).step_by(7).map(u32::to_be_bytes).collect();
        let descending: Vec<[u8; 4]> = ascending.iter().rev().copied().collect();
        let scrambled: Vec<[u8; 4]> = (0..9_000u32)
            .map(|i| (i.wrapping_mul(7_919) % 61_000).to_be_bytes())
            .collect();
        for keys in [ascending, descending, scrambled] {
            let mut found = Vec::new();
            tree.seek_sorted(keys.iter().map(|k| &k[..]), |i, leaf| {
                let pos = leaf.position();
                let at = if pos < leaf.len() {
                    Some(leaf.entry(pos)?.0.to_vec())
                } else {
                    None
                };
                found.push((i, at));
                Ok(false)
            })
            .unwrap();
            assert_eq!(found.len(), keys.len());
            for (i, at) in found {
                let k = u32::from_be_bytes(keys[i]);
                // The first key at or after `k` in its leaf: `k` itself if present, else the
                // next even key, unless `k` is past the leaf's last key.
                if k % 2 == 0 && k < 60_000 {
                    assert_eq!(at, Some(k.to_be_bytes().to_vec()), "key {k}");
                } else if let Some(at) = at {
                    assert_eq!(at, (k + 1).to_be_bytes().to_vec(), "key {k}");
                }
            }
        }
    }

    #[test]
    fn test_prefix_successor() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
