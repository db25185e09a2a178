//! Point lookups and leaf scans.
//!
//! Readers use latch coupling: a child is latched before its parent is released, so a
//! reader never sees a node half-way through a split or merge. Readers never move sideways
//! between leaves; a scan that leaves a leaf re-descends from the root using the leaf's fence
//! key (the separator that bounds it), so readers take latches top-down only and cannot
//! deadlock with the writer.

use std::ops::Bound;

use crate::error::Result;
use crate::node;
use crate::page::PageId;
use crate::store::Store;

/// Key-value pairs copied out of one leaf.
pub(crate) type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Looks up `key` in the tree rooted at `root`.
pub(crate) fn get(store: &Store, root: PageId, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut page = store.read_node(root, None)?;
    loop {
        let id = page.id();
        if node::is_leaf(&page) {
            return match node::search(&page, key).map_err(store.malformed(id))? {
                Ok(i) => {
                    let (_, value) = node::leaf_entry(&page, i).map_err(store.malformed(id))?;
                    store.materialize(value).map(Some)
                }
                Err(_) => Ok(None),
            };
        }
        let ci = node::child_index(&page, key).map_err(store.malformed(id))?;
        let child = node::child(&page, ci).map_err(store.malformed(id))?;
        let level = node::level(&page) - 1;
        page = store.read_node(child, Some(level))?;
    }
}

/// Which way a scan moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Forward,
    Backward,
}

/// One leaf's worth of a scan: the entries within bounds, in scan order, and where to continue.
pub(crate) struct LeafScan {
    pub entries: Entries,
    /// Position for the next leaf, or `None` if the scan reached its bound or the tree's end.
    pub next: Option<Bound<Vec<u8>>>,
}

/// Reads the leaf holding `from` and returns its entries up to `until`, moving in `dir`.
/// For a forward scan `from` is the lower bound and `until` the upper; backward, the reverse.
pub(crate) fn scan_leaf(
    store: &Store,
    root: PageId,
    from: Bound<&[u8]>,
    until: Bound<&[u8]>,
    dir: Direction,
) -> Result<LeafScan> {
    let mut page = store.read_node(root, None)?;
    let mut fence: Option<Vec<u8>> = None;
    while !node::is_leaf(&page) {
        let id = page.id();
        let n = node::nkeys(&page);
        let ci = match (dir, from) {
            (Direction::Forward, Bound::Unbounded) => Ok(0),
            (Direction::Backward, Bound::Unbounded) => Ok(n),
            (Direction::Forward, Bound::Included(k) | Bound::Excluded(k))
            | (Direction::Backward, Bound::Included(k)) => node::child_index(&page, k),
            (Direction::Backward, Bound::Excluded(k)) => node::child_index_before(&page, k),
        }
        .map_err(store.malformed(id))?;
        // The nearest separator beyond this child bounds the leaf we end up in.
        let fence_cell = match dir {
            Direction::Forward if ci < n => Some(ci),
            Direction::Backward if ci > 0 => Some(ci - 1),
            _ => None,
        };
        if let Some(cell) = fence_cell {
            fence = Some(
                node::key(&page, cell)
                    .map_err(store.malformed(id))?
                    .to_vec(),
            );
        }
        let child = node::child(&page, ci).map_err(store.malformed(id))?;
        let level = node::level(&page) - 1;
        page = store.read_node(child, Some(level))?;
    }

    let id = page.id();
    let n = node::nkeys(&page);
    let position = |k: &[u8]| node::search(&page, k).map_err(store.malformed(id));
    let mut entries = Vec::new();
    match dir {
        Direction::Forward => {
            let start = match from {
                Bound::Unbounded => 0,
                Bound::Included(k) => position(k)?.unwrap_or_else(|i| i),
                Bound::Excluded(k) => position(k)?.map_or_else(|i| i, |i| i + 1),
            };
            for i in start..n {
                let (key, value) = node::leaf_entry(&page, i).map_err(store.malformed(id))?;
                let within = match until {
                    Bound::Unbounded => true,
                    Bound::Included(end) => key <= end,
                    Bound::Excluded(end) => key < end,
                };
                if !within {
                    return Ok(LeafScan {
                        entries,
                        next: None,
                    });
                }
                entries.push((key.to_vec(), store.materialize(value)?));
            }
            Ok(LeafScan {
                entries,
                next: fence.map(Bound::Included),
            })
        }
        Direction::Backward => {
            let end = match from {
                Bound::Unbounded => n,
                Bound::Included(k) => position(k)?.map_or_else(|i| i, |i| i + 1),
                Bound::Excluded(k) => position(k)?.unwrap_or_else(|i| i),
            };
            for i in (0..end).rev() {
                let (key, value) = node::leaf_entry(&page, i).map_err(store.malformed(id))?;
                let within = match until {
                    Bound::Unbounded => true,
                    Bound::Included(start) => key >= start,
                    Bound::Excluded(start) => key > start,
                };
                if !within {
                    return Ok(LeafScan {
                        entries,
                        next: None,
                    });
                }
                entries.push((key.to_vec(), store.materialize(value)?));
            }
            Ok(LeafScan {
                entries,
                next: fence.map(Bound::Excluded),
            })
        }
    }
}
