//! Bulk loading from sorted input: leaves are filled left to right to a target fill, then each
//! internal level is built over the one below, bottom-up. Far fewer page writes than inserting
//! one key at a time, and the result is densely packed.

use crate::error::{Result, StorageError};
use crate::node;
use crate::page::{PageId, PageType};
use crate::store::Store;

use super::WriteCtx;

/// Leaves and internal nodes are filled to this fraction of their usable space, leaving room
/// for later inserts without an immediate split.
const FILL_PERCENT: usize = 90;

/// Loads ascending `(key, value)` pairs into the empty tree rooted at `root`. Returns the number
/// of entries loaded. On error every page it allocated is freed and the tree stays empty.
pub(crate) fn bulk_load<I, K, V>(
    store: &Store,
    root: PageId,
    entries: I,
    ctx: &mut WriteCtx,
) -> Result<u64>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    {
        let root_page = store.read_node(root, None)?;
        if !node::is_leaf(&root_page) || node::nkeys(&root_page) != 0 {
            return Err(StorageError::BulkLoad(
                "the target tree is not empty".into(),
            ));
        }
    }
    let mut allocated: Vec<PageId> = Vec::new();
    let result = build(store, root, entries, &mut allocated, ctx);
    if result.is_err() {
        // Best effort: the build error is what the caller needs to see.
        let _ = store.free_all(&allocated);
    }
    result
}

fn build<I, K, V>(
    store: &Store,
    root: PageId,
    entries: I,
    allocated: &mut Vec<PageId>,
    ctx: &mut WriteCtx,
) -> Result<u64>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let limits = store.limits;
    let target = limits.usable * FILL_PERCENT / 100;
    // (first key, page) of every node on the level being built.
    let mut level: Vec<(Vec<u8>, PageId)> = Vec::new();
    let mut cells: Vec<Vec<u8>> = Vec::new();
    let mut first_key: Vec<u8> = Vec::new();
    let mut prev_key: Option<Vec<u8>> = None;
    let mut prev_leaf: PageId = 0;
    let mut count = 0u64;

    let mut flush_leaf =
        |cells: &mut Vec<Vec<u8>>, first_key: &[u8], allocated: &mut Vec<PageId>| -> Result<()> {
            if cells.is_empty() {
                return Ok(());
            }
            let mut page = store.allocate(PageType::Leaf)?;
            let id = page.id();
            allocated.push(id);
            node::init(&mut page, id, 0);
            if !node::rebuild(&mut page, cells) {
                return Err(store.corruption(id, "bulk-load leaf overflowed"));
            }
            node::set_left(&mut page, prev_leaf);
            drop(page);
            if prev_leaf != 0 {
                let mut prev = store.write_node(prev_leaf, Some(0))?;
                node::set_right(&mut prev, id);
            }
            prev_leaf = id;
            level.push((first_key.to_vec(), id));
            cells.clear();
            store.spill_if_large()
        };

    for (key, value) in entries {
        let (key, value) = (key.as_ref(), value.as_ref());
        if key.len() > limits.max_key {
            return Err(StorageError::KeyTooLarge {
                len: key.len(),
                max: limits.max_key,
            });
        }
        if let Some(prev) = &prev_key
            && prev.as_slice() >= key
        {
            return Err(StorageError::BulkLoad(format!(
                "keys must be strictly ascending; entry {count} is not above its predecessor"
            )));
        }
        let cell = if node::LEAF_CELL_HEADER + key.len() + value.len() <= limits.max_cell {
            node::leaf_cell_inline(key, value)
        } else {
            let len = u32::try_from(value.len()).map_err(|_| StorageError::ValueTooLarge {
                len: value.len(),
                max: u32::MAX as usize,
            })?;
            let first = store.write_overflow(value)?;
            allocated.extend(store.walk_overflow(first, len as u64, None)?);
            node::leaf_cell_overflow(key, first, len)
        };
        // Exact bytes with the new cell: each cell leaves out the prefix the leaf's keys share
        // (keys ascend, so the first and the new key's common prefix is everyone's).
        let packed = node::cells_size(&cells) + node::cells_size(&[&cell])
            - node::common_prefix(&first_key, key) * cells.len();
        if !cells.is_empty() && packed > target {
            flush_leaf(&mut cells, &first_key, allocated)?;
        }
        if cells.is_empty() {
            first_key = key.to_vec();
        }
        cells.push(cell);
        prev_key = Some(key.to_vec());
        count += 1;
    }
    flush_leaf(&mut cells, &first_key, allocated)?;
    if count == 0 {
        return Ok(0);
    }

    let mut height = 0u16;
    while level.len() > 1 {
        height += 1;
        let mut parents: Vec<(Vec<u8>, PageId)> = Vec::new();
        for group in group_children(level, target) {
            let mut page = store.allocate(PageType::Internal)?;
            let id = page.id();
            allocated.push(id);
            node::init(&mut page, id, height);
            let mut children = group.into_iter();
            let (first, leftmost) = children.next().expect("groups are never empty");
            node::set_leftmost(&mut page, leftmost);
            let node_cells: Vec<Vec<u8>> = children
                .map(|(key, child)| node::internal_cell(&key, child))
                .collect();
            if !node::rebuild(&mut page, &node_cells) {
                return Err(store.corruption(id, "bulk-load internal node overflowed"));
            }
            drop(page);
            store.spill_if_large()?;
            parents.push((first, id));
        }
        level = parents;
    }

    // Move the top node into the root's fixed page. This is the commit point: from here on the
    // tree owns every page built, so nothing below may free them.
    let top = level[0].1;
    {
        let source = store.read_node(top, Some(height))?;
        let mut root_page = store.write_node(root, None)?;
        ctx.structure_changes();
        node::copy_body(&source, &mut root_page);
    }
    allocated.clear();
    ctx.freed.push(top);
    Ok(count)
}

/// Splits one level's nodes `(first key, page)` into the child lists of their parents, each
/// filling at most `target` bytes. The first child of a list becomes the parent's leftmost
/// child; the others become cells. The last list always gets at least two children, so no
/// internal node is left without a separator.
fn group_children(level: Vec<(Vec<u8>, PageId)>, target: usize) -> Vec<Vec<(Vec<u8>, PageId)>> {
    let mut groups: Vec<Vec<(Vec<u8>, PageId)>> = Vec::new();
    let mut bytes = 0;
    for (key, child) in level {
        let cell = node::cell_size(&node::internal_cell(&key, child));
        match groups.last_mut() {
            Some(group) if bytes + cell <= target => {
                bytes += cell;
                group.push((key, child));
            }
            _ => {
                bytes = 0;
                groups.push(vec![(key, child)]);
            }
        }
    }
    if groups.len() > 1 && groups[groups.len() - 1].len() == 1 {
        // A full group holds at least four children (cells are at most a quarter page), so
        // giving one away leaves it at least three.
        let n = groups.len();
        let moved = groups[n - 2].pop().expect("previous group is full");
        groups[n - 1].insert(0, moved);
    }
    groups
}
