//! Point lookups.
//!
//! Readers use latch coupling: a child is latched before its parent is released, so a
//! reader never sees a node half-way through a split or merge.

use crate::bufferpool::PageRef;
use crate::error::Result;
use crate::node;
use crate::page::PageId;
use crate::store::Store;

/// Looks up `key` in the tree rooted at `root` and replaces `out`'s contents with its value.
/// Returns false (leaving `out` empty) if the key is absent.
pub(crate) fn get_into(store: &Store, root: PageId, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
    out.clear();
    let mut page = store.read_node(root, None)?;
    loop {
        let id = page.id();
        if node::is_leaf(&page) {
            return match node::search(&page, key).map_err(store.malformed(id))? {
                Ok(i) => {
                    let (_, value) = node::leaf_entry(&page, i).map_err(store.malformed(id))?;
                    store.materialize_into(value, out)?;
                    Ok(true)
                }
                Err(_) => Ok(false),
            };
        }
        let ci = node::child_index(&page, key).map_err(store.malformed(id))?;
        let child = node::child(&page, ci).map_err(store.malformed(id))?;
        let level = node::level(&page) - 1;
        page = store.read_node(child, Some(level))?;
    }
}

/// The leaf [`seek_sorted`] found for one key, read-latched while the visitor runs.
pub(crate) struct LeafView<'a> {
    store: &'a Store,
    page: &'a [u8],
    id: PageId,
    position: usize,
}

impl LeafView<'_> {
    /// The first cell whose key is at or after the key sought (`len()` if none in this leaf).
    pub fn position(&self) -> usize {
        self.position
    }

    /// Cells in the leaf.
    pub fn len(&self) -> usize {
        node::nkeys(self.page)
    }

    /// Cell `i`'s key and value reference.
    pub fn entry(&self, i: usize) -> Result<(node::NodeKey<'_>, node::ValueRef<'_>)> {
        node::leaf_entry(self.page, i).map_err(self.store.malformed(self.id))
    }

    /// Appends a value (inline, or read from its overflow chain) to `out`.
    pub fn value_into(&self, value: node::ValueRef<'_>, out: &mut Vec<u8>) -> Result<()> {
        self.store.materialize_into(value, out)
    }

    /// A value's bytes: in place when inline, else read from its overflow chain into
    /// `scratch` (cleared first).
    pub fn value_bytes<'v>(
        &self,
        value: node::ValueRef<'v>,
        scratch: &'v mut Vec<u8>,
    ) -> Result<&'v [u8]> {
        match value {
            node::ValueRef::Inline(bytes) => Ok(bytes),
            overflow => {
                scratch.clear();
                self.value_into(overflow, scratch)?;
                Ok(scratch)
            }
        }
    }
}

/// One bound of a path node's key range: unbounded, or the key of a cell of a node higher up
/// the (latched) path, read in place.
#[derive(Debug, Clone, Copy)]
enum Fence {
    Open,
    Cell { depth: usize, cell: usize },
}

/// One node on the path [`seek_sorted`] keeps latched, with the key range it covers (`low`
/// inclusive, `high` exclusive), given by its ancestors' separators.
struct PathNode<'s> {
    page: PageRef<'s>,
    low: Fence,
    high: Fence,
    /// Which child of the node above this is (0 for the root).
    index: usize,
}

fn fence_key<'p>(
    store: &Store,
    path: &'p [PathNode<'_>],
    fence: Fence,
) -> Result<Option<&'p [u8]>> {
    match fence {
        Fence::Open => Ok(None),
        Fence::Cell { depth, cell } => {
            let page = &path[depth].page;
            node::internal_key(page, cell)
                .map(Some)
                .map_err(store.malformed(page.id()))
        }
    }
}

/// True if the node at `depth` covers `key`.
fn covers(store: &Store, path: &[PathNode<'_>], depth: usize, key: &[u8]) -> Result<bool> {
    let node = &path[depth];
    Ok(
        fence_key(store, path, node.low)?.is_none_or(|low| low <= key)
            && fence_key(store, path, node.high)?.is_none_or(|high| key < high),
    )
}

/// Finds the leaf position of each of `keys` in one pass and calls `visit(i, leaf)` for the
/// `i`-th key with that leaf latched. If `visit` returns true it is called again (same `i`)
/// with the next leaf, positioned at its start, until it returns false or the tree ends.
///
/// The path from the root to the current leaf stays read-latched between keys; the next key
/// (or the next leaf) climbs only as far as the lowest node whose key range covers it and
/// descends from there, so keys given in ascending order (the efficient order; any order is
/// correct) that share a leaf or a subtree pay for it once. Latches are only ever taken
/// downwards from a latched node (the root, or a node on the path), never towards an ancestor
/// or sideways, as in [`get_into`]; writers of the tree wait for the path's latches, so callers
/// should keep batches bounded. `visit` must not touch the tree.
pub(crate) fn seek_sorted<'k>(
    store: &Store,
    root: PageId,
    keys: impl IntoIterator<Item = &'k [u8]>,
    mut visit: impl FnMut(usize, &LeafView<'_>) -> Result<bool>,
) -> Result<()> {
    let keys: Vec<&[u8]> = keys.into_iter().collect();
    let mut ahead = Lookahead::new();
    let mut path: Vec<PathNode<'_>> = Vec::with_capacity(8);
    // The upper fence of the last leaf, when `visit` asked for the next one.
    let mut next_leaf: Vec<u8> = Vec::new();
    for (i, &key) in keys.iter().enumerate() {
        let mut continued = false;
        loop {
            let target = if continued { next_leaf.as_slice() } else { key };
            // The child of the node the climb stops at that the path went through: ascending
            // keys go to it or one after it.
            let mut near = None;
            while let Some(depth) = path.len().checked_sub(1) {
                if covers(store, &path, depth, target)? {
                    break;
                }
                near = path.pop().map(|node| node.index);
            }
            if path.is_empty() {
                near = None;
                path.push(PathNode {
                    page: store.read_node(root, None)?,
                    low: Fence::Open,
                    high: Fence::Open,
                    index: 0,
                });
            }
            descend_path(store, &mut path, target, 1, &mut near)?;
            if !continued {
                ahead.hint(store, &path, &keys, i)?;
            }
            descend_path(store, &mut path, target, 0, &mut near)?;
            let top = path.last().expect("the path ends in a leaf");
            let leaf = &top.page;
            let id = leaf.id();
            if !continued {
                ahead.probe(store, &keys, i);
            }
            let position = match node::search(leaf, target).map_err(store.malformed(id))? {
                Ok(i) | Err(i) => i,
            };
            let more = visit(
                i,
                &LeafView {
                    store,
                    page: leaf,
                    id,
                    position,
                },
            )?;
            // The next leaf starts at this one's upper fence.
            let high = top.high;
            match (more, fence_key(store, &path, high)?) {
                (true, Some(h)) => {
                    next_leaf.clear();
                    next_leaf.extend_from_slice(h);
                    continued = true;
                }
                _ => break,
            }
        }
    }
    Ok(())
}

/// Keys whose leaves [`seek_sorted`] announces at a time (see `Lookahead::hint`).
const PREFETCH_KEYS: usize = 64;
/// Keys from the current one whose leaves the caller reads itself rather than a helper.
const OWN_KEYS: usize = 4;
/// Keys after the current one whose cells [`Lookahead::probe`] brings into the CPU cache at a
/// time.
const PROBE_KEYS: usize = 8;

/// The leaves [`seek_sorted`] announces ahead of its descents: resident ones to the CPU
/// cache, absent ones to a read-ahead helper.
struct Lookahead {
    /// Keys before this one had their leaves announced.
    until: usize,
    /// The last leaf announced, so that keys sharing it announce it once.
    last: Option<PageId>,
    leaves: Vec<PageId>,
    absent: Vec<PageId>,
    /// Leaves of the keys right after the current one, which the caller reads itself.
    own: Vec<PageId>,
    /// The leaf announced for key `j`, at `j % PREFETCH_KEYS`, with `j`.
    window: [(usize, PageId); PREFETCH_KEYS],
    /// Keys before this one had their cells probed.
    probed: usize,
    probe_ids: Vec<PageId>,
    probe_keys: Vec<usize>,
}

impl Lookahead {
    fn new() -> Self {
        Lookahead {
            until: 0,
            last: None,
            leaves: Vec::with_capacity(PREFETCH_KEYS),
            absent: Vec::with_capacity(PREFETCH_KEYS),
            own: Vec::with_capacity(OWN_KEYS),
            window: [(usize::MAX, 0); PREFETCH_KEYS],
            probed: 0,
            probe_ids: Vec::with_capacity(PROBE_KEYS),
            probe_keys: Vec::with_capacity(PROBE_KEYS),
        }
    }

    /// Called with key `i`'s leaf latched, before it is searched. Once the keys probed run out,
    /// finds where the cells of the next [`PROBE_KEYS`] keys lie in their (announced, resident,
    /// unlatched by writers) leaves from the slot arrays alone, which the announcement brought
    /// into the CPU cache, and prefetches those cells: the binary search of a leaf reads its
    /// slots from the cache but the one cell it ends on from memory, and the key's value is in
    /// that cell too, so fetching it a few keys early takes the wait off the lookup. Only a
    /// hint: leaves that moved, are absent or latched are skipped, and the lookups search as
    /// always.
    fn probe(&mut self, store: &Store, keys: &[&[u8]], i: usize) {
        if i < self.probed {
            return;
        }
        let end = keys.len().min(self.until).min(i + 1 + PROBE_KEYS);
        self.probe_ids.clear();
        self.probe_keys.clear();
        for j in i + 1..end {
            let (announced, leaf) = self.window[j % PREFETCH_KEYS];
            if announced == j {
                self.probe_ids.push(leaf);
                self.probe_keys.push(j);
            }
        }
        self.probed = end.max(i + 1);
        let probe_keys = &self.probe_keys;
        store.pool.probe_resident(&self.probe_ids, |k, page| {
            if !node::is_leaf(page) {
                return;
            }
            if let Some(offset) = node::probe_cell(page, keys[probe_keys[k]]) {
                // A cell of a few dozen bytes may straddle two lines.
                let cell = page.as_ptr().wrapping_add(offset);
                crate::arena::prefetch_line(cell);
                crate::arena::prefetch_line(cell.wrapping_add(63));
            }
        });
    }

    /// Called with the path ending above key `i`'s leaf. Once fewer than half a window of
    /// keys ahead of `i` are announced, announces the leaves of the next [`PREFETCH_KEYS`]
    /// keys: under the path's last node when it is a parent of leaves, or under its siblings,
    /// found through the node above it and latched from there (downwards, like a descent).
    fn hint(
        &mut self,
        store: &Store,
        path: &[PathNode<'_>],
        keys: &[&[u8]],
        i: usize,
    ) -> Result<()> {
        if i + PREFETCH_KEYS / 2 < self.until {
            return Ok(());
        }
        let depth = path.len() - 1;
        let page = &path[depth].page;
        if node::is_leaf(page) || node::level(page) != 1 {
            return Ok(());
        }
        let from = self.until.max(i);
        let end = keys.len().min(from + PREFETCH_KEYS);
        self.leaves.clear();
        // A sibling parent of leaves, latched through the node above.
        let mut sibling: Option<PageRef<'_>> = None;
        // The leaves of the next few keys are read by the caller before a helper could load
        // them; handing them over would only make the two wait for each other.
        let own_until = i + OWN_KEYS;
        self.own.clear();
        // The parent and child index of the previous key: sorted keys often share a leaf (or
        // go to one of the next), which two separator comparisons tell.
        let mut near: Option<(PageId, usize)> = None;
        let mut j = from;
        while j < end {
            let key = keys[j];
            let child = if covers(store, path, depth, key)? {
                child_under_near(store, page, key, &mut near)?
            } else if depth > 0 && covers(store, path, depth - 1, key)? {
                let id = child_under(store, &path[depth - 1].page, key)?;
                if sibling.as_ref().is_none_or(|s| s.id() != id) {
                    // Release the previous sibling before latching the next.
                    drop(sibling.take());
                    sibling = Some(store.read_node(id, Some(1))?);
                }
                child_under_near(store, sibling.as_ref().expect("set above"), key, &mut near)?
            } else {
                break;
            };
            if j < own_until {
                self.own.push(child);
            }
            self.window[j % PREFETCH_KEYS] = (j, child);
            if self.last != Some(child) {
                self.leaves.push(child);
                self.last = Some(child);
            }
            j += 1;
        }
        drop(sibling);
        self.until = j;
        self.absent.clear();
        store.prefetch_nodes(&self.leaves, &mut self.absent);
        let own = &self.own;
        self.absent.retain(|leaf| !own.contains(leaf));
        store.pool.read_ahead(&self.absent);
        Ok(())
    }
}

/// The child of the inner node `parent` whose range holds `key`.
fn child_under(store: &Store, parent: &PageRef<'_>, key: &[u8]) -> Result<PageId> {
    let id = parent.id();
    let ci = node::child_index(parent, key).map_err(store.malformed(id))?;
    node::child(parent, ci).map_err(store.malformed(id))
}

/// [`child_under`] starting from the child the previous key went to under the same `parent`
/// (`near`, updated): if `key` lies between that child's separators, it is that child; if it
/// lies beyond, only the separators after it are searched. Correct for keys in any order;
/// cheaper for ascending ones.
fn child_under_near(
    store: &Store,
    parent: &PageRef<'_>,
    key: &[u8],
    near: &mut Option<(PageId, usize)>,
) -> Result<PageId> {
    let id = parent.id();
    let from = near.and_then(|(p, c)| (p == id).then_some(c));
    let ci = child_index_near(store, parent, key, from)?;
    *near = Some((id, ci));
    node::child(parent, ci).map_err(store.malformed(id))
}

/// [`node::child_index`] of `key` in the inner node `page`, trying child `near` first: if `key`
/// lies between its separators, it is that child; if it lies beyond, only the separators after
/// it are searched. Correct for any `near`; cheaper when keys ascend.
fn child_index_near(
    store: &Store,
    page: &PageRef<'_>,
    key: &[u8],
    near: Option<usize>,
) -> Result<usize> {
    let malformed = store.malformed(page.id());
    let n = node::nkeys(page);
    match near {
        Some(c) if c <= n => {
            if c == n || key < node::internal_key(page, c).map_err(&malformed)? {
                if c == 0 || node::internal_key(page, c - 1).map_err(&malformed)? <= key {
                    Ok(c)
                } else {
                    node::child_index(page, key).map_err(malformed)
                }
            } else {
                // At or beyond separator `c`: child `c + 1` or later.
                node::child_index_from(page, key, c + 1).map_err(malformed)
            }
        }
        _ => node::child_index(page, key).map_err(malformed),
    }
}

/// Extends `path` (whose last node covers `target`) down towards `target` until its last
/// node is at level `stop` or below (0: the leaf covering `target`). `near` is a child of the
/// last node to try first (see [`child_index_near`]); the first node searched takes it.
fn descend_path<'s>(
    store: &'s Store,
    path: &mut Vec<PathNode<'s>>,
    target: &[u8],
    stop: u16,
    near: &mut Option<usize>,
) -> Result<()> {
    loop {
        let depth = path.len() - 1;
        let top = &path[depth];
        let page = &top.page;
        // A leaf ends every descent (whatever its level field says; `check_node` checks
        // that against the parent's), an inner node at `stop` ends a partial one.
        if node::is_leaf(page) || (stop > 0 && node::level(page) <= stop) {
            return Ok(());
        }
        let id = page.id();
        let n = node::nkeys(page);
        let ci = child_index_near(store, page, target, near.take())?;
        let child = node::child(page, ci).map_err(store.malformed(id))?;
        let low = match ci {
            0 => top.low,
            _ => Fence::Cell {
                depth,
                cell: ci - 1,
            },
        };
        let high = if ci == n {
            top.high
        } else {
            Fence::Cell { depth, cell: ci }
        };
        let level = node::level(page) - 1;
        let page = store.read_node(child, Some(level))?;
        path.push(PathNode {
            page,
            low,
            high,
            index: ci,
        });
    }
}
