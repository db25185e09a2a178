//! Insert and delete: pessimistic latch crabbing, splits, merges and redistribution.
//!
//! A writer (one per tree at a time, see `Tree`) descends with exclusive latches. When the
//! child it just latched is *safe* (an insert cannot split it; a delete can neither underflow
//! it nor need room to replace a separator in it) every ancestor is released, so the root is
//! held only while a change might reach it. The held path is therefore exactly the set of nodes
//! a split or merge can touch.
//!
//! The root keeps its page id for life: a root split moves the root's contents into two new
//! children, and a root with a single child absorbs that child. The catalog never changes when
//! a tree grows or shrinks.
//!
//! Pages freed by an operation are collected and returned to the free list after every latch is
//! released, so freeing never waits on a latch while holding the allocator.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::bufferpool::PageMut;
use crate::error::{Result, StorageError};
use crate::node::{self, Limits};
use crate::page::{PageId, PageType};
use crate::store::Store;

/// What the writer is about to do; decides when a node is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Insert,
    Delete,
}

/// A latched node on the write path and which child the descent took from it.
struct Step<'a> {
    page: PageMut<'a>,
    ci: usize,
}

/// Per-operation scratch state.
pub(crate) struct WriteCtx<'a> {
    pub freed: Vec<PageId>,
    smc: &'a AtomicU64,
    /// Set once the operation changed the tree's structure.
    restructured: bool,
    /// Pages allocated before any modification, for the splits the operation may need; held
    /// latched (nobody else can reach them) so using one cannot fail half-way.
    reserved: Vec<PageMut<'a>>,
}

impl<'a> WriteCtx<'a> {
    pub fn new(smc: &'a AtomicU64) -> WriteCtx<'a> {
        WriteCtx {
            freed: Vec::new(),
            smc,
            restructured: false,
            reserved: Vec::new(),
        }
    }

    /// Allocates `n` pages up front, so that a split never fails after it started modifying
    /// pages (allocation is where I/O errors and a full pool surface).
    fn reserve(&mut self, store: &'a Store, n: usize) -> Result<()> {
        while self.reserved.len() < n {
            self.reserved.push(store.allocate(PageType::Free)?);
        }
        Ok(())
    }

    /// A reserved page (or, if the reservation ran short, a newly allocated one), initialised
    /// as an empty node at `level`.
    fn new_node(&mut self, store: &'a Store, level: u16) -> Result<PageMut<'a>> {
        let mut page = match self.reserved.pop() {
            Some(page) => page,
            None => store.allocate(PageType::Free)?,
        };
        let id = page.id();
        node::init(&mut page, id, level);
        Ok(page)
    }

    /// Records that the tree's structure is about to change: bumps the structure-modification
    /// counter while the first latches involved are held, before anything is modified. A range
    /// that copied a leaf before this point sees the counter move.
    pub fn structure_changes(&mut self) {
        self.restructured = true;
        self.smc.fetch_add(1, Ordering::SeqCst);
    }

    /// Bumps the counter again once every page of the operation is written. Nodes latched later
    /// in a structural change (a neighbour's sibling link, a sibling) may be copied by a range
    /// between the first bump and their latching; this second bump makes such a copy's counter
    /// stale too, so the range never trusts a link read mid-change.
    pub fn finish(&mut self) {
        if self.restructured {
            self.smc.fetch_add(1, Ordering::SeqCst);
        }
        // Unused reservations go back to the free list with the freed pages (after their
        // latches are released here).
        let unused: Vec<PageId> = self.reserved.drain(..).map(|page| page.id()).collect();
        self.freed.extend(unused);
    }
}

fn is_safe(limits: &Limits, buf: &[u8], key: &[u8], op: Op) -> bool {
    // Room for the largest cell and its slot: one split below can add at most that here, and a
    // separator replaced here after a redistribution below is at most that large. A leaf also
    // needs room for the prefix bytes its cells take back if `key` lacks some of them.
    let largest = limits.max_cell + node::SLOT_LEN + node::prefix_growth(buf, key);
    let room = node::free_space(buf) >= largest;
    match op {
        Op::Insert => room,
        Op::Delete => room && node::used(buf) >= limits.min_fill + largest,
    }
}

fn descend<'a>(store: &'a Store, root: PageId, key: &[u8], op: Op) -> Result<Vec<Step<'a>>> {
    let mut path = vec![Step {
        page: store.write_node(root, None)?,
        ci: 0,
    }];
    loop {
        let top = path.last_mut().expect("path is never empty");
        if node::is_leaf(&top.page) {
            return Ok(path);
        }
        let id = top.page.id();
        let ci = node::child_index(&top.page, key).map_err(store.malformed(id))?;
        let child_id = node::child(&top.page, ci).map_err(store.malformed(id))?;
        let level = node::level(&top.page) - 1;
        top.ci = ci;
        let child = store.write_node(child_id, Some(level))?;
        if is_safe(&store.limits, &child, key, op) {
            path.clear();
        }
        path.push(Step { page: child, ci: 0 });
    }
}

fn invariant(what: &str) -> StorageError {
    StorageError::Integrity(format!("b+ tree invariant violated: {what}"))
}

fn rebuild(store: &Store, buf: &mut [u8], cells: &[Vec<u8>]) -> Result<()> {
    if node::rebuild(buf, cells) {
        Ok(())
    } else {
        let id = crate::page::page_id(buf);
        Err(store.corruption(id, "cells do not fit in a node after a split"))
    }
}

/// Index of the cell that moves up when internal node `cells` split: the halves around it hold
/// about the same number of bytes. Fewer than three cells can only come from a damaged node.
fn internal_split_point(store: &Store, id: PageId, cells: &[Vec<u8>]) -> Result<usize> {
    let n = cells.len();
    if n < 3 {
        return Err(store.corruption(id, "node overflowed with too few cells to split"));
    }
    let sizes = node::RunSizes::new(cells, false);
    let total = sizes.of(0, n);
    let at = (1..n).find(|&i| sizes.of(0, i) >= total / 2).unwrap_or(n);
    Ok(at.clamp(1, n - 2))
}

/// The split of leaf cells into two nodes of `capacity` bytes that is closest to even, if any.
/// Sizes are exact: each node stores its cells' common key prefix once.
fn balanced_split(cells: &[Vec<u8>], capacity: usize) -> Option<usize> {
    let sizes = node::RunSizes::new(cells, true);
    let mut best: Option<(usize, usize)> = None;
    for at in 1..cells.len() {
        let (left, right) = (sizes.of(0, at), sizes.of(at, cells.len()));
        if left <= capacity && right <= capacity {
            let imbalance = left.abs_diff(right);
            if best.is_none_or(|(_, b)| imbalance < b) {
                best = Some((at, imbalance));
            }
        }
    }
    best.map(|(at, _)| at)
}

/// Where to split leaf cells that overflow one node into two that fit. Splitting by whole
/// cell sizes could leave a half too large once the halves' prefixes are stored, so the split
/// is chosen on exact sizes; none fitting can only come from a damaged node.
fn leaf_split_point(store: &Store, id: PageId, cells: &[Vec<u8>]) -> Result<usize> {
    balanced_split(cells, store.limits.usable)
        .ok_or_else(|| store.corruption(id, "leaf cells fit no split into two nodes"))
}

/// Where a leaf sits under its parent: the parent's id, the child index the descent took, and
/// the parent's number of separators. `None` if the parent is not on the held path.
fn leaf_position(path: &[Step<'_>]) -> Option<(PageId, usize, usize)> {
    let li = path.len() - 1;
    let parent = &path.get(li.checked_sub(1)?)?.page;
    Some((parent.id(), path[li - 1].ci, node::nkeys(parent)))
}

/// The cells of `leaf` with `cell` inserted at `idx`, and the sibling's cells, in key order.
fn combined_leaf_cells(
    store: &Store,
    leaf: &[u8],
    sibling: &[u8],
    idx: usize,
    cell: &[u8],
    leaf_is_left: bool,
) -> Result<Vec<Vec<u8>>> {
    let leaf_id = crate::page::page_id(leaf);
    let sibling_id = crate::page::page_id(sibling);
    let mut own = node::collect_cells(leaf).map_err(store.malformed(leaf_id))?;
    own.insert(idx, cell.to_vec());
    let theirs = node::collect_cells(sibling).map_err(store.malformed(sibling_id))?;
    Ok(if leaf_is_left {
        own.into_iter().chain(theirs).collect()
    } else {
        theirs.into_iter().chain(own).collect()
    })
}

/// A full leaf first tries to shed cells to a sibling with room (under the same parent)
/// instead of splitting, so leaves end up fuller than the 50 % a split leaves behind; this is
/// what keeps random-insert workloads near 80 % page fill. Returns false if no sibling could
/// take the load.
fn shift_to_sibling<'a>(
    store: &'a Store,
    root: PageId,
    path: &mut [Step<'a>],
    idx: usize,
    cell: &[u8],
    ctx: &mut WriteCtx<'a>,
) -> Result<bool> {
    let li = path.len() - 1;
    let Some((parent_id, ci, pn)) = leaf_position(path) else {
        return Ok(false);
    };
    let limits = store.limits;
    let candidates = [(ci < pn).then_some(ci + 1), (ci > 0).then(|| ci - 1)];
    for sibling_ci in candidates.into_iter().flatten() {
        let sibling_id =
            node::child(&path[li - 1].page, sibling_ci).map_err(store.malformed(parent_id))?;
        let mut sibling = store.write_node(sibling_id, Some(0))?;
        if node::free_space(&sibling) < 2 * node::cell_size(cell) {
            continue;
        }
        let leaf = &mut path[li].page;
        let leaf_is_left = sibling_ci > ci;
        let all = combined_leaf_cells(store, leaf, &sibling, idx, cell, leaf_is_left)?;
        let Some(at) = balanced_split(&all, limits.usable) else {
            continue;
        };
        ctx.structure_changes();
        let (left, right) = if leaf_is_left {
            (&mut **leaf, &mut *sibling)
        } else {
            (&mut *sibling, &mut **leaf)
        };
        rebuild(store, left, &all[..at])?;
        rebuild(store, right, &all[at..])?;
        let right_id = crate::page::page_id(right);
        let sep = node::shortest_separator(
            node::key_of(&all[at - 1], true),
            node::key_of(&all[at], true),
        );
        drop(sibling);
        let sep_idx = if leaf_is_left { ci } else { ci - 1 };
        node::remove_cell(&mut path[li - 1].page, sep_idx).map_err(store.malformed(parent_id))?;
        put_internal(
            store,
            root,
            path,
            li - 1,
            sep_idx,
            node::internal_cell(&sep, right_id),
            ctx,
        )?;
        return Ok(true);
    }
    Ok(false)
}

/// Cut points that divide `cells` into three runs of about equal bytes, each fitting
/// `capacity`, if there are such.
fn three_way_split(cells: &[Vec<u8>], capacity: usize) -> Option<(usize, usize)> {
    let sizes = node::RunSizes::new(cells, true);
    let n = cells.len();
    let total = sizes.of(0, n);
    let first = (1..n).find(|&i| sizes.of(0, i) >= total / 3)?;
    let second = (first + 1..n).find(|&i| sizes.of(0, i) >= 2 * total / 3)?;
    let fits = |a: usize, b: usize| sizes.of(a, b) <= capacity;
    (fits(0, first) && fits(first, second) && fits(second, n)).then_some((first, second))
}

/// B*-tree split: when a full leaf's sibling is full too, the two leaves and the new cell are
/// spread over three pages at about two thirds each, instead of leaving two half-empty pages.
/// Needs room in the parent for one more separator; returns false (nothing changed) otherwise.
fn split_three<'a>(
    store: &'a Store,
    path: &mut [Step<'a>],
    idx: usize,
    cell: &[u8],
    ctx: &mut WriteCtx<'a>,
) -> Result<bool> {
    let li = path.len() - 1;
    let Some((parent_id, ci, pn)) = leaf_position(path) else {
        return Ok(false);
    };
    let limits = store.limits;
    let Some(sibling_ci) = (ci < pn).then_some(ci + 1).or((ci > 0).then(|| ci - 1)) else {
        return Ok(false);
    };
    let leaf_is_left = sibling_ci > ci;
    let sep_idx = if leaf_is_left { ci } else { ci - 1 };
    let sibling_id =
        node::child(&path[li - 1].page, sibling_ci).map_err(store.malformed(parent_id))?;
    let mut sibling = store.write_node(sibling_id, Some(0))?;
    let (upper, lower) = path.split_at_mut(li);
    let parent = &mut upper[li - 1].page;
    let leaf = &mut lower[0].page;
    let all = combined_leaf_cells(store, leaf, &sibling, idx, cell, leaf_is_left)?;
    let Some((a, b)) = three_way_split(&all, limits.usable) else {
        return Ok(false);
    };
    let sep_ab =
        node::shortest_separator(node::key_of(&all[a - 1], true), node::key_of(&all[a], true));
    let sep_bc =
        node::shortest_separator(node::key_of(&all[b - 1], true), node::key_of(&all[b], true));
    let old = node::cell(parent, sep_idx).map_err(store.malformed(parent_id))?;
    let needed = node::cell_size(&node::internal_cell(&sep_ab, 0))
        + node::cell_size(&node::internal_cell(&sep_bc, 0));
    if node::free_space(parent) + node::cell_size(old) < needed {
        return Ok(false);
    }

    ctx.structure_changes();
    let mut middle = ctx.new_node(store, 0)?;
    let middle_id = middle.id();
    let (left, right) = if leaf_is_left {
        (&mut **leaf, &mut *sibling)
    } else {
        (&mut *sibling, &mut **leaf)
    };
    let (left_id, right_id) = (crate::page::page_id(left), crate::page::page_id(right));
    rebuild(store, left, &all[..a])?;
    rebuild(store, &mut middle, &all[a..b])?;
    rebuild(store, right, &all[b..])?;
    node::set_right(left, middle_id);
    node::set_left(&mut middle, left_id);
    node::set_right(&mut middle, right_id);
    node::set_left(right, middle_id);
    drop(middle);
    drop(sibling);
    node::remove_cell(parent, sep_idx).map_err(store.malformed(parent_id))?;
    for (at, sep, child) in [
        (sep_idx, &sep_ab, middle_id),
        (sep_idx + 1, &sep_bc, right_id),
    ] {
        if !node::insert_cell(parent, at, &node::internal_cell(sep, child))
            .map_err(store.malformed(parent_id))?
        {
            return Err(invariant(
                "parent lost room checked before a three-way split",
            ));
        }
    }
    Ok(true)
}

/// Builds the cell for a value: inline, or a reference to a new overflow chain.
fn leaf_cell(store: &Store, key: &[u8], value: &[u8]) -> Result<Vec<u8>> {
    if node::LEAF_CELL_HEADER + key.len() + value.len() <= store.limits.max_cell {
        return Ok(node::leaf_cell_inline(key, value));
    }
    let len = u32::try_from(value.len()).map_err(|_| StorageError::ValueTooLarge {
        len: value.len(),
        max: u32::MAX as usize,
    })?;
    let first = store.write_overflow(value)?;
    Ok(node::leaf_cell_overflow(key, first, len))
}

/// Queues the overflow pages of leaf cell `i` (if any) for freeing.
fn release_value(store: &Store, page: &[u8], i: usize, ctx: &mut WriteCtx) -> Result<()> {
    let id = crate::page::page_id(page);
    let (_, value) = node::leaf_entry(page, i).map_err(store.malformed(id))?;
    if let node::ValueRef::Overflow { first, len } = value {
        ctx.freed.extend(store.walk_overflow(first, len, None)?);
    }
    Ok(())
}

/// Inserts or replaces `key`. Returns true if it replaced a value.
pub(crate) fn insert<'a>(
    store: &'a Store,
    root: PageId,
    key: &[u8],
    value: &[u8],
    ctx: &mut WriteCtx<'a>,
) -> Result<bool> {
    let cell = leaf_cell(store, key, value)?;
    let mut path = match prepare_insert(store, root, key, &cell, ctx) {
        Ok(path) => path,
        Err(err) => {
            // Nothing was modified; the new value's overflow chain is unreachable.
            queue_cell_overflow(store, &cell, ctx);
            return Err(err);
        }
    };
    // From here on pages change; every page a split can need is reserved already.
    let leaf = &mut path.last_mut().expect("path is never empty").page;
    let id = leaf.id();
    let (replaced, idx) = match node::search(leaf, key).map_err(store.malformed(id))? {
        Ok(i) => {
            release_value(store, leaf, i, ctx)?;
            node::remove_cell(leaf, i).map_err(store.malformed(id))?;
            (true, i)
        }
        Err(i) => (false, i),
    };
    if node::insert_cell(leaf, idx, &cell).map_err(store.malformed(id))? {
        return Ok(replaced);
    }
    // Past the end of the rightmost leaf: an ascending insert, handled by `split_leaf` alone.
    let appending = idx == node::nkeys(leaf) && node::right(leaf) == 0;
    if appending
        || !(shift_to_sibling(store, root, &mut path, idx, &cell, ctx)?
            || split_three(store, &mut path, idx, &cell, ctx)?)
    {
        split_leaf(store, root, &mut path, idx, cell, ctx)?;
    }
    Ok(replaced)
}

/// The fallible, non-modifying part of an insert: descends, and if the new cell will not fit
/// the leaf, reserves a page for every level that may split plus one for a new root.
fn prepare_insert<'a>(
    store: &'a Store,
    root: PageId,
    key: &[u8],
    cell: &[u8],
    ctx: &mut WriteCtx<'a>,
) -> Result<Vec<Step<'a>>> {
    let path = descend(store, root, key, Op::Insert)?;
    let leaf = &path.last().expect("path is never empty").page;
    let id = leaf.id();
    let freed_by_replace = match node::search(leaf, key).map_err(store.malformed(id))? {
        Ok(i) => node::cell_size(node::cell(leaf, i).map_err(store.malformed(id))?),
        Err(_) => 0,
    };
    if node::free_space(leaf) + freed_by_replace
        < node::cell_size(cell) + node::prefix_growth(leaf, key)
    {
        ctx.reserve(store, path.len() + 1)?;
    }
    Ok(path)
}

fn queue_cell_overflow(store: &Store, cell: &[u8], ctx: &mut WriteCtx<'_>) {
    if let (_, node::ValueRef::Overflow { first, len }) = node::decode_leaf_cell(cell)
        && let Ok(pages) = store.walk_overflow(first, len, None)
    {
        ctx.freed.extend(pages);
    }
}

fn split_leaf<'a>(
    store: &'a Store,
    root: PageId,
    path: &mut [Step<'a>],
    idx: usize,
    cell: Vec<u8>,
    ctx: &mut WriteCtx<'a>,
) -> Result<()> {
    let li = path.len() - 1;
    let node_id = path[li].page.id();
    if node_id != root && li == 0 {
        return Err(invariant("leaf split reached a released parent"));
    }
    let mut cells = node::collect_cells(&path[li].page).map_err(store.malformed(node_id))?;
    let appending = idx == cells.len() && node::right(&path[li].page) == 0;
    cells.insert(idx, cell);
    // Ascending inserts (auto-increment keys) only ever add to the rightmost leaf: leave the
    // full leaf full and start the new one with just the new cell.
    let at = if appending {
        cells.len() - 1
    } else {
        leaf_split_point(store, node_id, &cells)?
    };
    let (left, right) = cells.split_at(at);
    let sep = node::shortest_separator(
        node::key_of(&left[left.len() - 1], true),
        node::key_of(&right[0], true),
    );
    ctx.structure_changes();
    if node_id == root {
        let mut a = ctx.new_node(store, 0)?;
        let mut b = ctx.new_node(store, 0)?;
        let (a_id, b_id) = (a.id(), b.id());
        rebuild(store, &mut a, left)?;
        rebuild(store, &mut b, right)?;
        node::set_right(&mut a, b_id);
        node::set_left(&mut b, a_id);
        let page = &mut path[li].page;
        node::init(page, root, 1);
        node::set_leftmost(page, a_id);
        if !node::insert_cell(page, 0, &node::internal_cell(&sep, b_id))
            .map_err(store.malformed(root))?
        {
            return Err(invariant("new root cannot hold one separator"));
        }
        return Ok(());
    }
    let old_right = node::right(&path[li].page);
    // Latch the right neighbour before changing anything, so a failure to read it changes
    // nothing.
    let mut neighbour = match old_right {
        0 => None,
        id => Some(store.write_node(id, Some(0))?),
    };
    let mut new = ctx.new_node(store, 0)?;
    let new_id = new.id();
    rebuild(store, &mut new, right)?;
    let page = &mut path[li].page;
    node::set_right(&mut new, old_right);
    node::set_left(&mut new, node_id);
    node::set_right(page, new_id);
    rebuild(store, page, left)?;
    if let Some(neighbour) = neighbour.as_mut() {
        node::set_left(neighbour, new_id);
    }
    drop(neighbour);
    drop(new);
    let ci = path[li - 1].ci;
    put_internal(
        store,
        root,
        path,
        li - 1,
        ci,
        node::internal_cell(&sep, new_id),
        ctx,
    )
}

/// Inserts `cell` at index `idx` of internal node `path[level]`, splitting upwards as needed.
fn put_internal<'a>(
    store: &'a Store,
    root: PageId,
    path: &mut [Step<'a>],
    level: usize,
    idx: usize,
    cell: Vec<u8>,
    ctx: &mut WriteCtx<'a>,
) -> Result<()> {
    let node_id = path[level].page.id();
    if node::insert_cell(&mut path[level].page, idx, &cell).map_err(store.malformed(node_id))? {
        return Ok(());
    }
    if node_id != root && level == 0 {
        return Err(invariant("internal split reached a released parent"));
    }
    ctx.structure_changes();
    let page = &mut path[level].page;
    let mut cells = node::collect_cells(page).map_err(store.malformed(node_id))?;
    cells.insert(idx, cell);
    let m = internal_split_point(store, node_id, &cells)?;
    let sep = node::key_of(&cells[m], false).to_vec();
    let mid_child = node::child_of(&cells[m]);
    let node_level = node::level(page);
    if node_id == root {
        let mut a = ctx.new_node(store, node_level)?;
        let mut b = ctx.new_node(store, node_level)?;
        let (a_id, b_id) = (a.id(), b.id());
        node::set_leftmost(&mut a, node::leftmost(page));
        rebuild(store, &mut a, &cells[..m])?;
        node::set_leftmost(&mut b, mid_child);
        rebuild(store, &mut b, &cells[m + 1..])?;
        node::init(page, root, node_level + 1);
        node::set_leftmost(page, a_id);
        if !node::insert_cell(page, 0, &node::internal_cell(&sep, b_id))
            .map_err(store.malformed(root))?
        {
            return Err(invariant("new root cannot hold one separator"));
        }
        return Ok(());
    }
    let mut new = ctx.new_node(store, node_level)?;
    let new_id = new.id();
    node::set_leftmost(&mut new, mid_child);
    rebuild(store, &mut new, &cells[m + 1..])?;
    rebuild(store, page, &cells[..m])?;
    drop(new);
    let ci = path[level - 1].ci;
    put_internal(
        store,
        root,
        path,
        level - 1,
        ci,
        node::internal_cell(&sep, new_id),
        ctx,
    )
}

/// Removes `key`. Returns true if it was present.
pub(crate) fn delete<'a>(
    store: &'a Store,
    root: PageId,
    key: &[u8],
    ctx: &mut WriteCtx<'a>,
) -> Result<bool> {
    let mut path = descend(store, root, key, Op::Delete)?;
    let li = path.len() - 1;
    let leaf = &path[li].page;
    let id = leaf.id();
    let Ok(i) = node::search(leaf, key).map_err(store.malformed(id))? else {
        return Ok(false);
    };
    let removed = node::cell_size(node::cell(leaf, i).map_err(store.malformed(id))?);
    if id != root && node::used(leaf).saturating_sub(removed) < store.limits.min_fill {
        // A redistribution can grow a separator and split ancestors: reserve before changing.
        ctx.reserve(store, path.len())?;
    }
    let leaf = &mut path[li].page;
    release_value(store, leaf, i, ctx)?;
    node::remove_cell(leaf, i).map_err(store.malformed(id))?;
    if id != root && node::used(leaf) < store.limits.min_fill {
        rebalance(store, root, &mut path, li, ctx)?;
    }
    Ok(true)
}

/// Fixes an underfull node `path[level]` by merging with or borrowing from a sibling.
fn rebalance<'a>(
    store: &'a Store,
    root: PageId,
    path: &mut [Step<'a>],
    level: usize,
    ctx: &mut WriteCtx<'a>,
) -> Result<()> {
    if level == 0 {
        // The parent was released because the node was judged safe; nothing to fix.
        return Ok(());
    }
    let (upper, lower) = path.split_at_mut(level);
    let parent = &mut upper[level - 1];
    let parent_id = parent.page.id();
    let pn = node::nkeys(&parent.page);
    if pn == 0 {
        return Ok(());
    }
    ctx.structure_changes();
    let ci = parent.ci;
    // Prefer the right sibling; the last child borrows from its left one.
    let node_is_left = ci < pn;
    let sep_idx = if node_is_left { ci } else { ci - 1 };
    let sibling_ci = if node_is_left { ci + 1 } else { ci - 1 };
    let sibling_id = node::child(&parent.page, sibling_ci).map_err(store.malformed(parent_id))?;
    let node_page = &mut lower[0].page;
    let child_level = node::level(node_page);
    let mut sibling = store.write_node(sibling_id, Some(child_level))?;
    let (left, right) = if node_is_left {
        (node_page, &mut sibling)
    } else {
        (&mut sibling, node_page)
    };
    let (left_id, right_id) = (left.id(), right.id());
    let left_cells = node::collect_cells(left).map_err(store.malformed(left_id))?;
    let right_cells = node::collect_cells(right).map_err(store.malformed(right_id))?;
    let leaf = child_level == 0;
    let mut all = left_cells;
    if !leaf {
        let sep = node::internal_key(&parent.page, sep_idx).map_err(store.malformed(parent_id))?;
        all.push(node::internal_cell(sep, node::leftmost(right)));
    }
    all.extend(right_cells);

    if node::layout_size(&all, leaf) <= store.limits.usable {
        // Merge right into left and drop the separator between them. The leaf beyond `right`
        // is latched before anything changes.
        let far_right = if leaf { node::right(right) } else { 0 };
        let mut neighbour = match far_right {
            0 => None,
            id => Some(store.write_node(id, Some(0))?),
        };
        rebuild(store, left, &all)?;
        if leaf {
            node::set_right(left, far_right);
            if let Some(neighbour) = neighbour.as_mut() {
                node::set_left(neighbour, left_id);
            }
        }
        drop(neighbour);
        ctx.freed.push(right_id);
        node::remove_cell(&mut parent.page, sep_idx).map_err(store.malformed(parent_id))?;
        if parent_id == root {
            if node::nkeys(&parent.page) == 0 {
                // The root has one child left: pull it up so the tree gets shorter.
                node::copy_body(left, &mut parent.page);
                ctx.freed.push(left_id);
            }
            return Ok(());
        }
        drop(sibling);
        if node::used(&path[level - 1].page) < store.limits.min_fill {
            return rebalance(store, root, path, level - 1, ctx);
        }
        return Ok(());
    }

    // Redistribute: split the combined cells evenly and replace the separator.
    let new_sep = if leaf {
        let at = leaf_split_point(store, left_id, &all)?;
        rebuild(store, left, &all[..at])?;
        rebuild(store, right, &all[at..])?;
        node::shortest_separator(
            node::key_of(&all[at - 1], true),
            node::key_of(&all[at], true),
        )
    } else {
        let m = internal_split_point(store, left_id, &all)?;
        rebuild(store, left, &all[..m])?;
        node::set_leftmost(right, node::child_of(&all[m]));
        rebuild(store, right, &all[m + 1..])?;
        node::key_of(&all[m], false).to_vec()
    };
    drop(sibling);
    let parent_page = &mut path[level - 1].page;
    node::remove_cell(parent_page, sep_idx).map_err(store.malformed(parent_id))?;
    put_internal(
        store,
        root,
        path,
        level - 1,
        sep_idx,
        node::internal_cell(&new_sep, right_id),
        ctx,
    )
}
