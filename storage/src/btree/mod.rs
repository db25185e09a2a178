//! The B+ tree and its handle.
//!
//! # Concurrency
//!
//! Any number of readers run alongside one writer per tree. Readers use latch coupling from
//! the root down and never hold a latch between calls (`Range` copies one leaf at a time and
//! re-descends for the next), so a slow consumer never blocks the writer. Writers are
//! serialised per tree by a mutex and use pessimistic latch crabbing (see `write.rs`), so
//! readers are blocked only on the few nodes a write is changing. Different trees in one file
//! are written concurrently; they share only the page allocator.
//!
//! Iteration is not a snapshot: a range sees each key at most once and in order, but may or
//! may not see keys written while it runs. Snapshots are the MVCC layer's job.

mod bulk;
mod read;
mod write;

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::{Result, StorageError};
use crate::page::PageId;
use crate::store::Store;
use read::Direction;
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
}

impl TreeShared {
    pub fn new(name: String, root: PageId) -> Arc<TreeShared> {
        Arc::new(TreeShared {
            name,
            root,
            writer: Mutex::new(()),
            alive: RwLock::new(true),
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
        read::get(&self.store, self.shared.root, key)
    }

    /// True if `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> Result<bool> {
        self.get(key).map(|v| v.is_some())
    }

    fn write_op<T>(
        &self,
        op: impl FnOnce(&Store, PageId, &mut WriteCtx) -> Result<T>,
    ) -> Result<T> {
        let alive = self.shared.alive.read();
        if !*alive {
            return Err(self.gone());
        }
        let _writer = self.shared.writer.lock();
        let mut ctx = WriteCtx::default();
        let result = op(&self.store, self.shared.root, &mut ctx);
        // Every latch of the operation is released by now; return its pages to the free list.
        let freed = self.store.free_all(&ctx.freed);
        let value = result?;
        freed?;
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
        self.write_op(|store, root, _| bulk::bulk_load(store, root, entries))
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

/// An iterator over a key range; yields `Result<(key, value)>`.
///
/// It copies one leaf at a time and holds no latch between calls. After an error it ends.
pub struct Range {
    tree: Tree,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    front: VecDeque<(Vec<u8>, Vec<u8>)>,
    back: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Where the next forward leaf read starts; `None` once the forward scan reached its end.
    front_pos: Option<Bound<Vec<u8>>>,
    back_pos: Option<Bound<Vec<u8>>>,
    front_last: Option<Vec<u8>>,
    back_last: Option<Vec<u8>>,
    finished: bool,
}

impl fmt::Debug for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Range")
            .field("tree", &self.tree.name())
            .field("lo", &self.lo)
            .field("hi", &self.hi)
            .finish_non_exhaustive()
    }
}

type Item = Result<(Vec<u8>, Vec<u8>)>;

impl Range {
    fn new(tree: Tree, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Range {
        let empty = match (&lo, &hi) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
            _ => false,
        };
        Range {
            front_pos: Some(lo.clone()),
            back_pos: Some(hi.clone()),
            tree,
            lo,
            hi,
            front: VecDeque::new(),
            back: VecDeque::new(),
            front_last: None,
            back_last: None,
            finished: empty,
        }
    }

    fn fail(&mut self, err: StorageError) -> Option<Item> {
        self.finished = true;
        Some(Err(err))
    }

    /// Reads the next leaf in `dir`; returns false when that direction has no more leaves.
    fn refill(&mut self, dir: Direction) -> Result<bool> {
        let pos = match dir {
            Direction::Forward => self.front_pos.take(),
            Direction::Backward => self.back_pos.take(),
        };
        let Some(pos) = pos else { return Ok(false) };
        let alive = self.tree.shared.alive.read();
        if !*alive {
            return Err(self.tree.gone());
        }
        let until = match dir {
            Direction::Forward => self.hi.as_ref().map(Vec::as_slice),
            Direction::Backward => self.lo.as_ref().map(Vec::as_slice),
        };
        let scan = read::scan_leaf(
            &self.tree.store,
            self.tree.shared.root,
            pos.as_ref().map(Vec::as_slice),
            until,
            dir,
        )?;
        match dir {
            Direction::Forward => {
                self.front.extend(scan.entries);
                self.front_pos = scan.next;
            }
            Direction::Backward => {
                self.back.extend(scan.entries);
                self.back_pos = scan.next;
            }
        }
        Ok(true)
    }
}

impl Iterator for Range {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if self.finished {
                return None;
            }
            // Entries the backward side buffered but never yielded come last, in reverse.
            let candidate = match self.front.pop_front() {
                Some(entry) => Some(entry),
                None if self.front_pos.is_none() => self.back.pop_back(),
                None => None,
            };
            if let Some((key, value)) = candidate {
                if self.back_last.as_ref().is_some_and(|b| &key >= b) {
                    self.finished = true;
                    return None;
                }
                self.front_last = Some(key.clone());
                return Some(Ok((key, value)));
            }
            if self.front_pos.is_none() {
                self.finished = true;
                return None;
            }
            if let Err(err) = self.refill(Direction::Forward) {
                return self.fail(err);
            }
        }
    }
}

impl DoubleEndedIterator for Range {
    fn next_back(&mut self) -> Option<Item> {
        loop {
            if self.finished {
                return None;
            }
            let candidate = match self.back.pop_front() {
                Some(entry) => Some(entry),
                None if self.back_pos.is_none() => self.front.pop_back(),
                None => None,
            };
            if let Some((key, value)) = candidate {
                if self.front_last.as_ref().is_some_and(|f| &key <= f) {
                    self.finished = true;
                    return None;
                }
                self.back_last = Some(key.clone());
                return Some(Ok((key, value)));
            }
            if self.back_pos.is_none() {
                self.finished = true;
                return None;
            }
            if let Err(err) = self.refill(Direction::Backward) {
                return self.fail(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn test_prefix_successor() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
