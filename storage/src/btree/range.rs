//! Range iteration.
//!
//! A [`Range`] holds no latch between calls. For each leaf it takes the leaf's shared latch,
//! copies the page (and any overflow values in range) into a buffer it owns, and releases the
//! latch; entries are then decoded from the copy, so [`Range::next_ref`] hands out borrowed
//! slices with no allocation per entry.
//!
//! Moving to the next leaf uses the sibling link when that is provably still right, and a
//! descent from the root otherwise:
//!
//! - Every tree keeps a *structure-modification counter* that a writer bumps, while holding the
//!   latches of the nodes involved, before any split, merge, redistribution or root change.
//! - The counter is read under the leaf's latch when the leaf is copied. When the scan moves on,
//!   it latches the sibling and reads the counter again: if it is unchanged, no structural change
//!   happened since the copy, so the sibling link still points at the next leaf in key order.
//! - If it changed, the scan re-descends from the root to the position after the last key of the
//!   copied leaf (or to the separator that bounded it). Readers therefore never wait on a latch
//!   while holding another one sideways, and cannot deadlock with writers.
//!
//! Iteration is not a snapshot: each key is seen at most once and in order, but writes made while
//! a range runs may or may not be seen.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use crate::bufferpool::PageRef;
use crate::error::{Result, StorageError};
use crate::node::{self, ValueRef};
use crate::page::PageId;

use super::Tree;

/// Which way a side of the range moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

/// How to find the next leaf of one side.
#[derive(Debug, Clone)]
enum Next {
    /// Descend from the root to this position (forward: keys at or after it; backward: keys
    /// at or before it).
    Descend(Bound<Vec<u8>>),
    /// Read the sibling leaf directly if the tree's structure is unchanged since `smc`;
    /// otherwise descend to `fallback`.
    Sibling {
        id: PageId,
        smc: u64,
        fallback: Bound<Vec<u8>>,
    },
    /// This side has read its last leaf.
    End,
}

/// One side (front or back) of a range: a copied leaf and the cells not yet yielded.
#[derive(Debug)]
struct Side {
    dir: Direction,
    page: Vec<u8>,
    /// Overflow values of the copied leaf, materialised under its latch, by cell index.
    overflow: Vec<(usize, Vec<u8>)>,
    /// Cells `lo..hi` of the copy are not yet yielded.
    lo: usize,
    hi: usize,
    next: Next,
}

impl Side {
    fn new(dir: Direction, start: Bound<Vec<u8>>) -> Side {
        Side {
            dir,
            page: Vec::new(),
            overflow: Vec::new(),
            lo: 0,
            hi: 0,
            next: Next::Descend(start),
        }
    }

    fn has_cells(&self) -> bool {
        self.lo < self.hi
    }

    /// Takes the next cell in this side's direction, or from the other end when `reverse`.
    fn take(&mut self, reverse: bool) -> usize {
        let forward = (self.dir == Direction::Forward) != reverse;
        if forward {
            self.lo += 1;
            self.lo - 1
        } else {
            self.hi -= 1;
            self.hi
        }
    }

    fn entry(&self, i: usize) -> Result<(node::NodeKey<'_>, &[u8])> {
        let (key, value) = node::leaf_entry(&self.page, i)
            .map_err(|m| StorageError::Integrity(format!("copied leaf is malformed: {}", m.0)))?;
        let value = match value {
            ValueRef::Inline(bytes) => bytes,
            ValueRef::Overflow { .. } => self
                .overflow
                .iter()
                .find(|(cell, _)| *cell == i)
                .map(|(_, bytes)| bytes.as_slice())
                .ok_or_else(|| StorageError::Integrity("overflow value not copied".into()))?,
        };
        Ok((key, value))
    }

    /// Copies `page` (a latched leaf) and positions the cursor in it.
    /// `reached_by` is the position this leaf was reached from; it stays the fallback if the
    /// leaf is empty, so a re-descent never restarts before keys already yielded.
    fn load(
        &mut self,
        tree: &Tree,
        page: &PageRef<'_>,
        from: Bound<&[u8]>,
        smc: u64,
        reached_by: &Bound<Vec<u8>>,
    ) -> Result<()> {
        let store = &tree.store;
        let id = page.id();
        let n = node::nkeys(page);
        let position = |k: &[u8]| node::search(page, k).map_err(store.malformed(id));
        let (lo, hi) = match (self.dir, from) {
            (_, Bound::Unbounded) => (0, n),
            (Direction::Forward, Bound::Included(k)) => (position(k)?.unwrap_or_else(|i| i), n),
            (Direction::Forward, Bound::Excluded(k)) => {
                (position(k)?.map_or_else(|i| i, |i| i + 1), n)
            }
            (Direction::Backward, Bound::Included(k)) => {
                (0, position(k)?.map_or_else(|i| i, |i| i + 1))
            }
            (Direction::Backward, Bound::Excluded(k)) => (0, position(k)?.unwrap_or_else(|i| i)),
        };
        self.page.clear();
        self.page.extend_from_slice(page);
        self.overflow.clear();
        for i in lo..hi {
            if let (_, ValueRef::Overflow { .. }) =
                node::leaf_entry(page, i).map_err(store.malformed(id))?
            {
                let (_, value) = node::leaf_entry(page, i).map_err(store.malformed(id))?;
                self.overflow.push((i, store.materialize(value)?));
            }
        }
        self.lo = lo;
        self.hi = hi;
        // Where the leaf ends in this direction: the fallback position if the sibling link
        // cannot be trusted next time.
        let (sibling, edge) = match self.dir {
            Direction::Forward => (node::right(page), n.checked_sub(1)),
            Direction::Backward => (node::left(page), (n > 0).then_some(0)),
        };
        self.next = match (sibling, edge) {
            (0, _) => Next::End,
            (id, Some(edge)) => Next::Sibling {
                id,
                smc,
                fallback: Bound::Excluded(
                    node::key(page, edge).map_err(store.malformed(id))?.to_vec(),
                ),
            },
            // An empty leaf has no last key to resume after; resume where it was reached from.
            (id, None) => Next::Sibling {
                id,
                smc,
                fallback: reached_by.clone(),
            },
        };
        Ok(())
    }

    /// Reads the next leaf; returns false if this side has none left.
    fn advance(&mut self, tree: &Tree) -> Result<bool> {
        loop {
            match std::mem::replace(&mut self.next, Next::End) {
                Next::End => return Ok(false),
                Next::Sibling { id, smc, fallback } => {
                    tree.store.check_page_id(id)?;
                    let page = tree.store.pool.read(id)?;
                    let now = tree.shared.smc.load(Ordering::SeqCst);
                    if now != smc {
                        drop(page);
                        self.next = Next::Descend(fallback);
                        continue;
                    }
                    tree.store.check_leaf(&page, id)?;
                    self.load(tree, &page, Bound::Unbounded, now, &fallback)?;
                    return Ok(true);
                }
                Next::Descend(position) => {
                    self.descend(tree, &position)?;
                    return Ok(true);
                }
            }
        }
    }

    fn descend(&mut self, tree: &Tree, position: &Bound<Vec<u8>>) -> Result<()> {
        let store = &tree.store;
        let from = position.as_ref().map(Vec::as_slice);
        let mut page = store.read_node(tree.shared.root, None)?;
        let mut fence: Option<Vec<u8>> = None;
        while !node::is_leaf(&page) {
            let id = page.id();
            let n = node::nkeys(&page);
            let ci = match (self.dir, from) {
                (Direction::Forward, Bound::Unbounded) => Ok(0),
                (Direction::Backward, Bound::Unbounded) => Ok(n),
                (Direction::Forward, Bound::Included(k) | Bound::Excluded(k))
                | (Direction::Backward, Bound::Included(k)) => node::child_index(&page, k),
                (Direction::Backward, Bound::Excluded(k)) => node::child_index_before(&page, k),
            }
            .map_err(store.malformed(id))?;
            // The nearest separator beyond this child bounds the leaf we end up in.
            let fence_cell = match self.dir {
                Direction::Forward if ci < n => Some(ci),
                Direction::Backward if ci > 0 => Some(ci - 1),
                _ => None,
            };
            if let Some(cell) = fence_cell {
                fence = Some(
                    node::internal_key(&page, cell)
                        .map_err(store.malformed(id))?
                        .to_vec(),
                );
            }
            let child = node::child(&page, ci).map_err(store.malformed(id))?;
            let level = node::level(&page) - 1;
            page = store.read_node(child, Some(level))?;
        }
        let smc = tree.shared.smc.load(Ordering::SeqCst);
        self.load(tree, &page, from, smc, position)?;
        // The separator found on the way down is a better fallback than the leaf's last key: it
        // always lies beyond this leaf, so a descent to it makes progress.
        if let Next::Sibling { fallback, .. } = &mut self.next {
            *fallback = match (self.dir, fence) {
                (Direction::Forward, Some(f)) => Bound::Included(f),
                (Direction::Backward, Some(f)) => Bound::Excluded(f),
                (_, None) => return Ok(()),
            };
        } else if let Some(f) = fence {
            self.next = Next::Descend(match self.dir {
                Direction::Forward => Bound::Included(f),
                Direction::Backward => Bound::Excluded(f),
            });
        }
        Ok(())
    }
}

/// An iterator over a key range; yields `Result<(key, value)>` in key order, or in reverse with
/// `.rev()`. [`Range::next_ref`] and [`Range::next_back_ref`] yield borrowed slices instead.
///
/// It holds no latch between calls. After an error it ends.
#[derive(Debug)]
pub struct Range {
    tree: Tree,
    hi: Bound<Vec<u8>>,
    lo: Bound<Vec<u8>>,
    front: Side,
    back: Side,
    /// Last key yielded from each end, for the point where the ends meet.
    front_last: Option<Vec<u8>>,
    back_last: Option<Vec<u8>>,
    finished: bool,
}

impl Range {
    pub(super) fn new(tree: Tree, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Range {
        let empty = match (&lo, &hi) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
            _ => false,
        };
        Range {
            front: Side::new(Direction::Forward, lo.clone()),
            back: Side::new(Direction::Backward, hi.clone()),
            tree,
            lo,
            hi,
            front_last: None,
            back_last: None,
            finished: empty,
        }
    }

    /// The next entry in ascending order, borrowed from the range's buffer.
    pub fn next_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        self.step(Direction::Forward)
    }

    /// The next entry in descending order, borrowed from the range's buffer.
    pub fn next_back_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        self.step(Direction::Backward)
    }

    fn step(&mut self, dir: Direction) -> Option<Result<(&[u8], &[u8])>> {
        // Find the cell to yield: from this side's leaf, or, once this side has no leaves
        // left, from the other side's unread cells (they come last).
        let (own, cell) = loop {
            if self.finished {
                return None;
            }
            let (side, other) = match dir {
                Direction::Forward => (&mut self.front, &mut self.back),
                Direction::Backward => (&mut self.back, &mut self.front),
            };
            if side.has_cells() {
                break (true, side.take(false));
            }
            if matches!(side.next, Next::End) {
                if other.has_cells() {
                    break (false, other.take(true));
                }
                self.finished = true;
                return None;
            }
            let alive = self.tree.shared.alive.read();
            let advanced = if *alive {
                side.advance(&self.tree)
            } else {
                Err(self.tree.gone())
            };
            drop(alive);
            if let Err(err) = advanced {
                self.finished = true;
                return Some(Err(err));
            }
        };
        let holder = match (dir, own) {
            (Direction::Forward, true) | (Direction::Backward, false) => &self.front,
            _ => &self.back,
        };
        let (key, value) = match holder.entry(cell) {
            Ok(entry) => entry,
            Err(err) => {
                self.finished = true;
                return Some(Err(err));
            }
        };
        // The key is put together (the node's stored prefix and the cell's rest) in this
        // side's last-key buffer, from which it is yielded; the checks compare whole keys.
        let (bound, met, last) = match dir {
            Direction::Forward => (&self.hi, &self.back_last, &mut self.front_last),
            Direction::Backward => (&self.lo, &self.front_last, &mut self.back_last),
        };
        let key = key.assemble(last.get_or_insert_with(Vec::new));
        let within = match (dir, bound) {
            (_, Bound::Unbounded) => true,
            (Direction::Forward, Bound::Included(end)) => key <= end.as_slice(),
            (Direction::Forward, Bound::Excluded(end)) => key < end.as_slice(),
            (Direction::Backward, Bound::Included(start)) => key >= start.as_slice(),
            (Direction::Backward, Bound::Excluded(start)) => key > start.as_slice(),
        };
        let crossed = met.as_ref().is_some_and(|m| match dir {
            Direction::Forward => key >= m.as_slice(),
            Direction::Backward => key <= m.as_slice(),
        });
        if !within || crossed {
            self.finished = true;
            return None;
        }
        Some(Ok((key, value)))
    }
}

impl Iterator for Range {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref()
            .map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }
}

impl DoubleEndedIterator for Range {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.next_back_ref()
            .map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }
}
