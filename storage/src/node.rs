//! B+ tree node layout: a slotted page.
//!
//! After the common page header (bytes 0..32) a node has:
//!
//! | bytes  | field                                             |
//! |--------|---------------------------------------------------|
//! | 32..34 | number of cells                                   |
//! | 34..36 | heap start: cells occupy `heap_start..page_size`  |
//! | 36..38 | fragmented bytes inside the heap (deleted cells)  |
//! | 38..40 | level: 0 for leaves, parent = child level + 1     |
//! | 40..48 | leaves: right sibling (0 = none); internal nodes: leftmost child |
//! | 48..56 | leaves: left sibling (0 = none); internal nodes: zero |
//! | 56..   | slot array: per cell a u16 offset and a u32 key head, in key order |
//!
//! Bytes 22..24 of the common page header hold the node's *shared prefix length* `p`: every
//! key in the node starts with the same `p` bytes, and a slot's head is the four key bytes
//! after them. Keys of one table or index share long prefixes (a table id, a type tag, the
//! high zero bytes of an integer), so heads taken at byte 0 would all be equal and every
//! binary-search probe would read a cell; taken after the shared prefix they tell keys apart.
//! `p` only shrinks when a key outside the prefix arrives (all heads are then rewritten) and is
//! recomputed whenever the node is rebuilt (splits, merges, compaction); 0 is always valid.
//!
//! Leaf cell: `key_len u16 | value_len u16 | key | value`. A value length of exactly `0x8000`
//! marks a value stored in an overflow chain; the cell then ends with
//! `first_overflow_page u64 | total_length u32` instead of the value.
//! Internal cell: `key_len u16 | child u64 | key`; the child holds keys `>=` the cell's key and
//! `<` the next cell's key; keys below the first cell's key live under the leftmost child.
//!
//! Every accessor checks offsets and lengths against the page, so a malformed page (a bug, or
//! damage that kept a valid checksum) yields [`Malformed`] instead of a panic.

use crate::page::{self, PageId, PageType, read_u16, read_u32, read_u64, write_u16, write_u64};

pub(crate) const NKEYS_AT: usize = 32;
const HEAP_AT: usize = 34;
const FRAG_AT: usize = 36;
const LEVEL_AT: usize = 38;
const RIGHT_AT: usize = 40;
const LEFT_AT: usize = 48;
/// Internal nodes keep no sibling links, so their leftmost child shares the right-sibling field.
const LEFTMOST_AT: usize = 40;
/// First byte of the slot array.
pub(crate) const HEADER_END: usize = 56;
/// Shared prefix length (u16), in the reserved part of the common page header so that the
/// node header keeps its layout.
const PREFIX_AT: usize = 22;
/// A slot is the cell's offset (u16) followed by the key's *head*: the four bytes after the
/// node's shared prefix, big endian, zero padded. Binary search compares heads inside the slot
/// array and reads a cell only when heads are equal, so most probes touch one cache line.
pub(crate) const SLOT_LEN: usize = 6;
pub(crate) const LEAF_CELL_HEADER: usize = 4;
pub(crate) const INTERNAL_CELL_HEADER: usize = 10;
/// Set in a leaf cell's value-length field when the value lives in an overflow chain. Inline
/// values are at most a quarter page (8,170 bytes at 32 KiB), so 15 bits always hold them.
const OVERFLOW_FLAG: u16 = 0x8000;
/// Body of an overflow leaf cell: first overflow page (u64) and total value length (u32).
const OVERFLOW_REF_LEN: usize = 12;

/// A node's bytes do not form a valid node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed(pub &'static str);

pub(crate) type NodeResult<T> = Result<T, Malformed>;

/// Size limits derived from the page size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub page_size: usize,
    /// Bytes available for slots and cells.
    pub usable: usize,
    /// Largest cell (excluding its slot); four always fit in a node, so a split always succeeds.
    pub max_cell: usize,
    /// Largest key accepted.
    pub max_key: usize,
    /// A non-root node holding fewer bytes than this is rebalanced after a delete.
    pub min_fill: usize,
}

impl Limits {
    pub fn new(page_size: usize) -> Limits {
        let usable = page_size - HEADER_END;
        let max_cell = usable / 4 - SLOT_LEN;
        Limits {
            page_size,
            usable,
            max_cell,
            // Room for a leaf cell header plus an overflow reference, or an internal header.
            max_key: max_cell - LEAF_CELL_HEADER - OVERFLOW_REF_LEN - 1,
            min_fill: usable / 4,
        }
    }
}

/// Where a leaf value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueRef<'a> {
    Inline(&'a [u8]),
    Overflow { first: PageId, len: u64 },
}

pub(crate) fn init(buf: &mut [u8], id: PageId, level: u16) {
    let page_type = if level == 0 {
        PageType::Leaf
    } else {
        PageType::Internal
    };
    page::init(buf, id, page_type);
    let size = buf.len();
    set_heap_start(buf, size);
    write_u16(buf, LEVEL_AT, level);
}

pub(crate) fn is_leaf(buf: &[u8]) -> bool {
    page::page_type_byte(buf) == PageType::Leaf as u8
}

pub(crate) fn nkeys(buf: &[u8]) -> usize {
    read_u16(buf, NKEYS_AT) as usize
}

fn set_nkeys(buf: &mut [u8], n: usize) {
    write_u16(buf, NKEYS_AT, n as u16);
}

fn heap_start(buf: &[u8]) -> usize {
    // 0 encodes a full 64 KiB page; page sizes up to 32 KiB never store it.
    read_u16(buf, HEAP_AT) as usize
}

fn set_heap_start(buf: &mut [u8], at: usize) {
    write_u16(buf, HEAP_AT, at as u16);
}

/// Length of the prefix every key of the node shares (see the module docs).
pub(crate) fn prefix_len(buf: &[u8]) -> usize {
    read_u16(buf, PREFIX_AT) as usize
}

fn set_prefix_len(buf: &mut [u8], p: usize) {
    write_u16(buf, PREFIX_AT, p as u16);
}

/// Length of the common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn frag(buf: &[u8]) -> usize {
    read_u16(buf, FRAG_AT) as usize
}

fn set_frag(buf: &mut [u8], bytes: usize) {
    write_u16(buf, FRAG_AT, bytes as u16);
}

pub(crate) fn level(buf: &[u8]) -> u16 {
    read_u16(buf, LEVEL_AT)
}

pub(crate) fn right(buf: &[u8]) -> PageId {
    read_u64(buf, RIGHT_AT)
}

pub(crate) fn set_right(buf: &mut [u8], id: PageId) {
    write_u64(buf, RIGHT_AT, id);
}

pub(crate) fn left(buf: &[u8]) -> PageId {
    read_u64(buf, LEFT_AT)
}

pub(crate) fn set_left(buf: &mut [u8], id: PageId) {
    write_u64(buf, LEFT_AT, id);
}

pub(crate) fn leftmost(buf: &[u8]) -> PageId {
    read_u64(buf, LEFTMOST_AT)
}

pub(crate) fn set_leftmost(buf: &mut [u8], id: PageId) {
    write_u64(buf, LEFTMOST_AT, id);
}

/// Checks the header fields that every other accessor relies on.
pub(crate) fn validate_header(buf: &[u8]) -> NodeResult<()> {
    let n = nkeys(buf);
    let heap = heap_start(buf);
    let slots_end = HEADER_END + n * SLOT_LEN;
    if slots_end > buf.len() {
        return Err(Malformed("cell count exceeds page"));
    }
    if heap < slots_end || heap > buf.len() {
        return Err(Malformed("heap start out of range"));
    }
    if frag(buf) > buf.len() - heap {
        return Err(Malformed("fragmented byte count exceeds heap"));
    }
    let is_leaf_type = is_leaf(buf);
    if is_leaf_type != (level(buf) == 0) {
        return Err(Malformed("page type and level disagree"));
    }
    Ok(())
}

fn cell_len_at(buf: &[u8], off: usize) -> NodeResult<usize> {
    let len = if is_leaf(buf) {
        let header = buf
            .get(off..off + LEAF_CELL_HEADER)
            .ok_or(Malformed("cell header beyond page"))?;
        let klen = read_u16(header, 0) as usize;
        let vlen = read_u16(header, 2);
        let body = match vlen {
            OVERFLOW_FLAG => OVERFLOW_REF_LEN,
            v if v & OVERFLOW_FLAG == 0 => v as usize,
            _ => return Err(Malformed("overflow cell with an inline length")),
        };
        LEAF_CELL_HEADER + klen + body
    } else {
        let header = buf
            .get(off..off + INTERNAL_CELL_HEADER)
            .ok_or(Malformed("cell header beyond page"))?;
        INTERNAL_CELL_HEADER + read_u16(header, 0) as usize
    };
    if off + len > buf.len() {
        return Err(Malformed("cell extends beyond page"));
    }
    Ok(len)
}

fn slot(buf: &[u8], i: usize) -> NodeResult<usize> {
    if i >= nkeys(buf) {
        return Err(Malformed("slot index out of range"));
    }
    let at = HEADER_END + i * SLOT_LEN;
    let bytes = buf
        .get(at..at + SLOT_LEN)
        .ok_or(Malformed("slot beyond page"))?;
    let off = read_u16(bytes, 0) as usize;
    if off < heap_start(buf) || off >= buf.len() {
        return Err(Malformed("cell offset outside heap"));
    }
    Ok(off)
}

/// The raw bytes of cell `i`.
pub(crate) fn cell(buf: &[u8], i: usize) -> NodeResult<&[u8]> {
    let off = slot(buf, i)?;
    let len = cell_len_at(buf, off)?;
    Ok(&buf[off..off + len])
}

/// The key of a cell given its raw bytes and whether it is a leaf cell.
pub(crate) fn key_of(cell: &[u8], leaf: bool) -> &[u8] {
    let klen = read_u16(cell, 0) as usize;
    let start = if leaf {
        LEAF_CELL_HEADER
    } else {
        INTERNAL_CELL_HEADER
    };
    &cell[start..start + klen]
}

/// The key of cell `i`. Cheaper than [`cell`]: only the key's bytes are bounds-checked, which
/// is all a binary search needs.
pub(crate) fn key(buf: &[u8], i: usize) -> NodeResult<&[u8]> {
    let off = slot(buf, i)?;
    let header = if is_leaf(buf) {
        LEAF_CELL_HEADER
    } else {
        INTERNAL_CELL_HEADER
    };
    let klen = buf
        .get(off..off + 2)
        .ok_or(Malformed("cell header beyond page"))?;
    let klen = read_u16(klen, 0) as usize;
    buf.get(off + header..off + header + klen)
        .ok_or(Malformed("key extends beyond page"))
}

/// The four bytes of `key` after its first `p`, big endian, zero padded. Among keys sharing
/// their first `p` bytes heads order like the keys: if `a < b` then `head(a) <= head(b)`.
pub(crate) fn head(key: &[u8], p: usize) -> u32 {
    let rest = key.get(p..).unwrap_or(&[]);
    let mut bytes = [0u8; 4];
    let n = rest.len().min(4);
    bytes[..n].copy_from_slice(&rest[..n]);
    u32::from_be_bytes(bytes)
}

fn slot_head(buf: &[u8], i: usize) -> NodeResult<u32> {
    let at = HEADER_END + i * SLOT_LEN + 2;
    let bytes = buf.get(at..at + 4).ok_or(Malformed("slot beyond page"))?;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn write_slot(buf: &mut [u8], at: usize, offset: usize, key: &[u8], p: usize) {
    write_u16(buf, at, offset as u16);
    buf[at + 2..at + 6].copy_from_slice(&head(key, p).to_be_bytes());
}

/// Checks that every key has the node's shared prefix and every slot's head matches its
/// cell's key (the integrity checker's view).
pub(crate) fn verify_heads(buf: &[u8]) -> NodeResult<()> {
    let p = prefix_len(buf);
    let n = nkeys(buf);
    if n == 0 {
        return Ok(());
    }
    let first = key(buf, 0)?;
    let prefix = first
        .get(..p)
        .ok_or(Malformed("key shorter than the node's shared prefix"))?;
    for i in 0..n {
        let k = key(buf, i)?;
        if k.get(..p) != Some(prefix) {
            return Err(Malformed(
                "key does not start with the node's shared prefix",
            ));
        }
        if slot_head(buf, i)? != head(k, p) {
            return Err(Malformed("slot key head does not match its cell"));
        }
    }
    Ok(())
}

/// Binary search for `key`: `Ok(i)` if cell `i` has it, `Err(i)` for the insertion point.
pub(crate) fn search(buf: &[u8], target: &[u8]) -> NodeResult<Result<usize, usize>> {
    let (mut lo, mut hi) = (0, nkeys(buf));
    let p = prefix_len(buf);
    if p > 0 && hi > 0 {
        // A target outside the shared prefix sorts before or after every key.
        let prefix = key(buf, 0)?
            .get(..p)
            .ok_or(Malformed("key shorter than the node's shared prefix"))?;
        match target[..p.min(target.len())].cmp(prefix) {
            std::cmp::Ordering::Less => return Ok(Err(0)),
            std::cmp::Ordering::Greater => return Ok(Err(hi)),
            std::cmp::Ordering::Equal => {}
        }
    }
    let target_head = head(target, p);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let order = match slot_head(buf, mid)?.cmp(&target_head) {
            std::cmp::Ordering::Equal => key(buf, mid)?.cmp(target),
            unequal => unequal,
        };
        match order {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Ok(Ok(mid)),
        }
    }
    Ok(Err(lo))
}

/// Decodes leaf cell `i` into its key and value reference.
pub(crate) fn leaf_entry(buf: &[u8], i: usize) -> NodeResult<(&[u8], ValueRef<'_>)> {
    let cell = cell(buf, i)?;
    Ok(decode_leaf_cell(cell))
}

pub(crate) fn decode_leaf_cell(cell: &[u8]) -> (&[u8], ValueRef<'_>) {
    let klen = read_u16(cell, 0) as usize;
    let key = &cell[LEAF_CELL_HEADER..LEAF_CELL_HEADER + klen];
    let body = &cell[LEAF_CELL_HEADER + klen..];
    let value = if read_u16(cell, 2) == OVERFLOW_FLAG {
        ValueRef::Overflow {
            first: read_u64(body, 0),
            len: read_u32(body, 8) as u64,
        }
    } else {
        ValueRef::Inline(body)
    };
    (key, value)
}

/// Child pointer of internal cell bytes.
pub(crate) fn child_of(cell: &[u8]) -> PageId {
    read_u64(cell, 2)
}

/// Child number `ci` of an internal node: 0 is the leftmost child, `ci` is cell `ci - 1`'s.
pub(crate) fn child(buf: &[u8], ci: usize) -> NodeResult<PageId> {
    let id = if ci == 0 {
        leftmost(buf)
    } else {
        child_of(cell(buf, ci - 1)?)
    };
    if id == 0 {
        return Err(Malformed("null child pointer"));
    }
    Ok(id)
}

/// Which child of an internal node covers `key`.
pub(crate) fn child_index(buf: &[u8], target: &[u8]) -> NodeResult<usize> {
    Ok(match search(buf, target)? {
        Ok(i) => i + 1,
        Err(i) => i,
    })
}

/// Which child holds the largest keys strictly below `key`.
pub(crate) fn child_index_before(buf: &[u8], target: &[u8]) -> NodeResult<usize> {
    Ok(match search(buf, target)? {
        Ok(i) | Err(i) => i,
    })
}

/// Free bytes, counting space reclaimable by compaction.
pub(crate) fn free_space(buf: &[u8]) -> usize {
    let slots_end = HEADER_END + nkeys(buf) * SLOT_LEN;
    heap_start(buf).saturating_sub(slots_end) + frag(buf)
}

/// Bytes used by cells and their slots.
pub(crate) fn used(buf: &[u8]) -> usize {
    buf.len() - HEADER_END - free_space(buf)
}

/// Inserts `cell` as cell `idx`; returns false if it does not fit even after compaction.
pub(crate) fn insert_cell(buf: &mut [u8], idx: usize, cell: &[u8]) -> NodeResult<bool> {
    let n = nkeys(buf);
    debug_assert!(idx <= n);
    let needed = cell.len() + SLOT_LEN;
    if free_space(buf) < needed {
        return Ok(false);
    }
    let slots_end = HEADER_END + n * SLOT_LEN;
    if heap_start(buf) - slots_end < needed {
        compact(buf)?;
        // A fragment count that overstated the free space shows up here.
        if heap_start(buf).saturating_sub(slots_end) < needed {
            return Err(Malformed(
                "fragmented byte count exceeds the real free space",
            ));
        }
    }
    let new_key = key_of(cell, is_leaf(buf));
    let p = shrink_prefix(buf, new_key)?;
    let heap = heap_start(buf) - cell.len();
    buf[heap..heap + cell.len()].copy_from_slice(cell);
    set_heap_start(buf, heap);
    let at = HEADER_END + idx * SLOT_LEN;
    buf.copy_within(at..slots_end, at + SLOT_LEN);
    write_slot(buf, at, heap, new_key, p);
    set_nkeys(buf, n + 1);
    Ok(true)
}

/// Makes the node's shared prefix one that `new_key` has too, rewriting every head if it has
/// to shrink, and returns it.
fn shrink_prefix(buf: &mut [u8], new_key: &[u8]) -> NodeResult<usize> {
    let p = prefix_len(buf);
    if p == 0 {
        return Ok(0);
    }
    let n = nkeys(buf);
    let shared = if n == 0 {
        0
    } else {
        common_prefix(key(buf, 0)?, new_key).min(p)
    };
    if shared < p {
        set_prefix_len(buf, shared);
        for i in 0..n {
            let at = HEADER_END + i * SLOT_LEN;
            let h = head(key(buf, i)?, shared);
            buf[at + 2..at + 6].copy_from_slice(&h.to_be_bytes());
        }
    }
    Ok(shared)
}

/// Removes cell `idx`; its bytes become fragmented free space.
pub(crate) fn remove_cell(buf: &mut [u8], idx: usize) -> NodeResult<()> {
    let n = nkeys(buf);
    let off = slot(buf, idx)?;
    let len = cell_len_at(buf, off)?;
    let at = HEADER_END + idx * SLOT_LEN;
    let slots_end = HEADER_END + n * SLOT_LEN;
    buf.copy_within(at + SLOT_LEN..slots_end, at);
    set_nkeys(buf, n - 1);
    if off == heap_start(buf) {
        set_heap_start(buf, off + len);
    } else {
        set_frag(buf, frag(buf) + len);
    }
    Ok(())
}

/// Rewrites the heap without gaps.
fn compact(buf: &mut [u8]) -> NodeResult<()> {
    let cells = collect_cells(buf)?;
    // Check before touching the page: a failed rebuild would leave the node empty.
    if cells_size(&cells) > buf.len() - HEADER_END {
        return Err(Malformed(
            "cells overlap: they do not fit the page when compacted",
        ));
    }
    if rebuild(buf, &cells) {
        Ok(())
    } else {
        Err(Malformed(
            "cells overlap: they do not fit the page when compacted",
        ))
    }
}

/// Copies out every cell in order.
pub(crate) fn collect_cells(buf: &[u8]) -> NodeResult<Vec<Vec<u8>>> {
    (0..nkeys(buf))
        .map(|i| cell(buf, i).map(<[u8]>::to_vec))
        .collect()
}

/// Replaces all cells, keeping the node's header fields. Returns false if they do not fit
/// (the node is then left empty).
pub(crate) fn rebuild<C: AsRef<[u8]>>(buf: &mut [u8], cells: &[C]) -> bool {
    let size = buf.len();
    let leaf = is_leaf(buf);
    set_nkeys(buf, 0);
    set_heap_start(buf, size);
    set_frag(buf, 0);
    // Cells come in key order, so the first and last keys' common prefix is everyone's.
    let p = match (cells.first(), cells.last()) {
        (Some(a), Some(b)) => {
            common_prefix(key_of(a.as_ref(), leaf), key_of(b.as_ref(), leaf)).min(u16::MAX as usize)
        }
        _ => 0,
    };
    set_prefix_len(buf, p);
    let mut heap = size;
    let mut slot_at = HEADER_END;
    for cell in cells {
        let cell = cell.as_ref();
        if heap < slot_at + SLOT_LEN + cell.len() {
            set_nkeys(buf, 0);
            set_heap_start(buf, size);
            set_prefix_len(buf, 0);
            return false;
        }
        heap -= cell.len();
        buf[heap..heap + cell.len()].copy_from_slice(cell);
        write_slot(buf, slot_at, heap, key_of(cell, leaf), p);
        slot_at += SLOT_LEN;
    }
    // Zero the gap so stale bytes never reach disk.
    buf[slot_at..heap].fill(0);
    set_nkeys(buf, cells.len());
    set_heap_start(buf, heap);
    true
}

/// Bytes one cell needs in a node (cell plus slot).
pub(crate) fn cell_size(cell: &[u8]) -> usize {
    cell.len() + SLOT_LEN
}

/// Bytes a list of cells needs in a node (cells plus slots).
pub(crate) fn cells_size<C: AsRef<[u8]>>(cells: &[C]) -> usize {
    cells.iter().map(|c| cell_size(c.as_ref())).sum()
}

/// Encodes a leaf cell with an inline value (shorter than 32 KiB; callers keep inline cells
/// within `Limits::max_cell`).
pub(crate) fn leaf_cell_inline(key: &[u8], value: &[u8]) -> Vec<u8> {
    debug_assert!(value.len() < OVERFLOW_FLAG as usize);
    let mut cell = Vec::with_capacity(LEAF_CELL_HEADER + key.len() + value.len());
    cell.extend_from_slice(&(key.len() as u16).to_le_bytes());
    cell.extend_from_slice(&(value.len() as u16).to_le_bytes());
    cell.extend_from_slice(key);
    cell.extend_from_slice(value);
    cell
}

/// Encodes a leaf cell whose value lives in an overflow chain.
pub(crate) fn leaf_cell_overflow(key: &[u8], first: PageId, len: u32) -> Vec<u8> {
    let mut cell = Vec::with_capacity(LEAF_CELL_HEADER + key.len() + OVERFLOW_REF_LEN);
    cell.extend_from_slice(&(key.len() as u16).to_le_bytes());
    cell.extend_from_slice(&OVERFLOW_FLAG.to_le_bytes());
    cell.extend_from_slice(key);
    cell.extend_from_slice(&first.to_le_bytes());
    cell.extend_from_slice(&len.to_le_bytes());
    cell
}

/// Encodes an internal cell.
pub(crate) fn internal_cell(key: &[u8], child: PageId) -> Vec<u8> {
    let mut cell = Vec::with_capacity(INTERNAL_CELL_HEADER + key.len());
    cell.extend_from_slice(&(key.len() as u16).to_le_bytes());
    cell.extend_from_slice(&child.to_le_bytes());
    cell.extend_from_slice(key);
    cell
}

/// The shortest key `s` with `left < s <= right`, used as a leaf split separator so internal
/// nodes hold short keys.
pub(crate) fn shortest_separator(left: &[u8], right: &[u8]) -> Vec<u8> {
    debug_assert!(left < right);
    let common = left.iter().zip(right).take_while(|(a, b)| a == b).count();
    right[..(common + 1).min(right.len())].to_vec()
}

/// Copies a node's body (everything after the common header) from `src` into `dst`, so a
/// node can move to another page id (the tree root never changes its page).
pub(crate) fn copy_body(src: &[u8], dst: &mut [u8]) {
    dst[page::PAGE_HEADER_LEN..].copy_from_slice(&src[page::PAGE_HEADER_LEN..]);
    set_prefix_len(dst, prefix_len(src));
    let page_type = if level(src) == 0 {
        PageType::Leaf
    } else {
        PageType::Internal
    };
    page::set_page_type(dst, page_type);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        init(&mut buf, 9, 0);
        buf
    }

    #[test]
    fn test_insert_search_remove_keep_order() {
        let mut buf = leaf();
        for k in [5u8, 1, 9, 3] {
            let cell = leaf_cell_inline(&[k], &[k; 10]);
            let idx = search(&buf, &[k]).unwrap().unwrap_err();
            assert!(insert_cell(&mut buf, idx, &cell).unwrap());
        }
        let keys: Vec<u8> = (0..nkeys(&buf)).map(|i| key(&buf, i).unwrap()[0]).collect();
        assert_eq!(keys, vec![1, 3, 5, 9]);
        assert_eq!(search(&buf, &[5]).unwrap(), Ok(2));
        remove_cell(&mut buf, 1).unwrap();
        assert_eq!(search(&buf, &[3]).unwrap(), Err(1));
        let (k, v) = leaf_entry(&buf, 1).unwrap();
        assert_eq!((k, v), (&[5u8][..], ValueRef::Inline(&[5u8; 10])));
    }

    #[test]
    fn test_fragmented_space_is_reused_by_compaction() {
        let mut buf = leaf();
        let cell = leaf_cell_inline(b"k", &[7u8; 500]);
        let mut n = 0;
        while insert_cell(&mut buf, n, &cell).unwrap() {
            n += 1;
        }
        // Removing a middle cell fragments the heap; the next insert must compact and fit.
        remove_cell(&mut buf, 2).unwrap();
        assert!(insert_cell(&mut buf, 2, &cell).unwrap());
        assert_eq!(nkeys(&buf), n);
        validate_header(&buf).unwrap();
    }

    #[test]
    fn test_shortest_separator_lies_between_keys() {
        for (l, r) in [
            (&b"abc"[..], &b"abd"[..]),
            (b"ab", b"abzz"),
            (b"a", b"b"),
            (b"", b"x"),
        ] {
            let s = shortest_separator(l, r);
            assert!(l < s.as_slice() && s.as_slice() <= r, "{l:?} {s:?} {r:?}");
        }
    }

    #[test]
    fn test_garbage_offsets_are_malformed_not_panics() {
        let mut buf = leaf();
        assert!(insert_cell(&mut buf, 0, &leaf_cell_inline(b"a", b"b")).unwrap());
        write_u16(&mut buf, HEADER_END, 4095);
        assert!(cell(&buf, 0).is_err());
        write_u16(&mut buf, NKEYS_AT, 5000);
        assert!(validate_header(&buf).is_err());
    }

    /// Keys like the SQL layer's: a long common head, differing only near the end.
    fn prefixed(i: u32) -> Vec<u8> {
        let mut k = b"t\x00\xff\x00\xff\x00\xff\x03r\x20\x80".to_vec();
        k.extend_from_slice(&(i * 7).to_be_bytes());
        k
    }

    #[test]
    fn test_shared_prefix_heads_find_every_key_and_shrink_for_outsiders() {
        let mut buf = leaf();
        let cells: Vec<Vec<u8>> = (100..160)
            .map(|i| leaf_cell_inline(&prefixed(i), b"v"))
            .collect();
        assert!(rebuild(&mut buf, &cells));
        // The keys share everything but the last two bytes of the integer.
        assert_eq!(prefix_len(&buf), prefixed(0).len() - 2);
        verify_heads(&buf).unwrap();
        for i in 100..160 {
            assert_eq!(search(&buf, &prefixed(i)).unwrap(), Ok((i - 100) as usize));
            // Between two keys, and outside the prefix on either side.
            let mut between = prefixed(i);
            between.push(0);
            assert_eq!(search(&buf, &between).unwrap(), Err((i - 99) as usize));
        }
        assert_eq!(search(&buf, b"a").unwrap(), Err(0));
        assert_eq!(search(&buf, b"t").unwrap(), Err(0));
        assert_eq!(search(&buf, b"u").unwrap(), Err(60));
        // A key without the prefix shrinks it; every key is still found.
        let outsider = b"t\x00\xff\x00\xff\x00\xff\x04".to_vec();
        let at = search(&buf, &outsider).unwrap().unwrap_err();
        assert_eq!(at, 60);
        assert!(insert_cell(&mut buf, at, &leaf_cell_inline(&outsider, b"w")).unwrap());
        assert_eq!(prefix_len(&buf), 7);
        verify_heads(&buf).unwrap();
        for i in 100..160 {
            assert_eq!(search(&buf, &prefixed(i)).unwrap(), Ok((i - 100) as usize));
        }
        assert_eq!(search(&buf, &outsider).unwrap(), Ok(60));
        // An empty node forgets its prefix on the next insert.
        while nkeys(&buf) > 0 {
            remove_cell(&mut buf, 0).unwrap();
        }
        assert!(insert_cell(&mut buf, 0, &leaf_cell_inline(b"zz", b"")).unwrap());
        assert_eq!(prefix_len(&buf), 0);
        assert_eq!(search(&buf, b"zz").unwrap(), Ok(0));
    }

    #[test]
    fn test_copy_body_keeps_the_shared_prefix() {
        let mut src = leaf();
        let cells: Vec<Vec<u8>> = (0..10)
            .map(|i| leaf_cell_inline(&prefixed(i), b""))
            .collect();
        assert!(rebuild(&mut src, &cells));
        let mut dst = vec![0u8; 4096];
        init(&mut dst, 3, 0);
        copy_body(&src, &mut dst);
        assert_eq!(prefix_len(&dst), prefix_len(&src));
        assert_eq!(search(&dst, &prefixed(4)).unwrap(), Ok(4));
    }

    #[test]
    fn test_prefix_longer_than_a_key_is_malformed_not_a_panic() {
        let mut buf = leaf();
        assert!(insert_cell(&mut buf, 0, &leaf_cell_inline(b"ab", b"")).unwrap());
        set_prefix_len(&mut buf, 40);
        assert!(search(&buf, b"abc").is_err());
        assert!(verify_heads(&buf).is_err());
        set_prefix_len(&mut buf, 1);
        // The prefix fits, but the slot head was taken at byte 0.
        assert!(verify_heads(&buf).is_err());
    }
}
