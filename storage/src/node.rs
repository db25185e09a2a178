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
//! | 56..   | leaves: the stored key prefix (`s` bytes, see below)     |
//! | 56+s.. | slot array: per cell a u16 offset and a u16 key head, in key order (nodes of files before format version 5: a u32 head, see [`SHORT_HEADS`]) |
//!
//! Bytes 22..24 of the common page header hold the node's *shared prefix length* `p`: every
//! key in the node starts with the same `p` bytes, and a slot's head is the two key bytes
//! after them (four in nodes of files before format version 5). Keys of one table or index share long prefixes (a table id, a type tag, the
//! high zero bytes of an integer), so heads taken at byte 0 would all be equal and every
//! binary-search probe would read a cell; taken after the shared prefix they tell keys apart.
//! `p` only shrinks when a key outside the prefix arrives (all heads are then rewritten) and is
//! recomputed whenever the node is rebuilt (splits, merges, compaction); 0 is always valid.
//!
//! Bytes 24..26 hold the *stored prefix length* `s <= p` (prefix truncation): the first `s`
//! bytes of every key are kept once, right after the node header (in the cache line a search
//! reads first), and left out of the cells, whose key fields hold only the rest. A leaf of SQL rows repeats a table id, a type tag
//! and the high bytes of the primary key in every cell (12 of 23 key bytes); an index leaf
//! repeats 20 of 33. Keeping them once fits more entries in a page, so a table needs fewer pages
//! and more of it stays in the buffer pool. A rebuild sets `s = p`; an insert of a key without
//! the stored prefix rebuilds the node with a shorter one (or reports that it no longer fits, and
//! the node splits). Nodes written before format version 5 have `s = 0` and full keys in their
//! cells, and keep reading that way until they are next rebuilt. Accessors hand out keys as a
//! [`NodeKey`] (the stored prefix and the cell's rest); [`collect_cells`] and the cell
//! builders deal in whole cells, with full keys, so that splits and merges can move cells
//! between nodes with different prefixes.
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
/// Stored prefix length (u16): key bytes kept once after the node header instead of in
/// every cell (see the module docs). Also in the reserved part of the common page header.
const STORED_AT: usize = 24;
/// A slot is the cell's offset (u16) followed by the key's *head*: the bytes after the node's
/// shared prefix, big endian, zero padded. Binary search compares heads inside the slot array
/// and reads a cell only when heads are equal, so most probes touch one cache line. This is
/// the older, larger slot (a four-byte head), and the most a slot takes.
pub(crate) const SLOT_LEN: usize = 6;
/// A slot of a node written since format version 5 ([`SHORT_HEADS`]): the cell's offset and
/// a two-byte head. Behind the stored prefix, two key bytes tell a leaf's keys apart about as
/// well as four did in front of it, and the two bytes saved per entry are 3 to 4% of a SQL row.
const SHORT_SLOT_LEN: usize = 4;
/// Node flags, in the reserved byte 21 of the common page header.
const FLAGS_AT: usize = 21;
/// Flag: slots are [`SHORT_SLOT_LEN`] bytes with two-byte heads. Set on every node this build
/// initialises or rebuilds; nodes of older files keep six-byte slots until rebuilt.
const SHORT_HEADS: u8 = 0x01;
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

/// A key as a node holds it: the node's stored prefix, then the bytes its cell keeps. Compares
/// and copies like the whole key without assembling it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeKey<'a> {
    prefix: &'a [u8],
    rest: &'a [u8],
}

impl<'a> NodeKey<'a> {
    pub fn len(self) -> usize {
        self.prefix.len() + self.rest.len()
    }

    /// The whole key, copied.
    pub fn to_vec(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.append_to(&mut out);
        out
    }

    /// Appends the whole key to `out`.
    pub fn append_to(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix);
        out.extend_from_slice(self.rest);
    }

    /// Replaces `out`'s contents with the whole key and returns them.
    pub fn assemble(self, out: &mut Vec<u8>) -> &[u8] {
        out.clear();
        self.append_to(out);
        out
    }

    /// Byte-order comparison with `other`, as if the key were whole.
    pub fn cmp_bytes(self, other: &[u8]) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        if self.prefix.is_empty() {
            return self.rest.cmp(other);
        }
        let n = self.prefix.len().min(other.len());
        match self.prefix[..n].cmp(&other[..n]) {
            Ordering::Equal if n < self.prefix.len() => Ordering::Greater,
            Ordering::Equal => self.rest.cmp(&other[n..]),
            unequal => unequal,
        }
    }

    /// True if the key begins with `head`.
    pub fn starts_with(self, head: &[u8]) -> bool {
        if self.prefix.is_empty() {
            return self.rest.starts_with(head);
        }
        let n = self.prefix.len().min(head.len());
        self.prefix[..n] == head[..n]
            && (head.len() <= self.prefix.len() || self.rest.starts_with(&head[n..]))
    }

    /// True if the key is `other`.
    pub fn eq_bytes(self, other: &[u8]) -> bool {
        self.len() == other.len() && self.starts_with(other)
    }
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
    buf[FLAGS_AT] = SHORT_HEADS;
}

fn short_heads(buf: &[u8]) -> bool {
    buf[FLAGS_AT] & SHORT_HEADS != 0
}

/// Bytes per slot in this node.
fn slot_len(buf: &[u8]) -> usize {
    if short_heads(buf) {
        SHORT_SLOT_LEN
    } else {
        SLOT_LEN
    }
}

/// [`head`] as this node's slots hold it: the first two of the four bytes in a node with
/// short heads. Either way, among keys sharing the node's prefix heads order like the keys.
fn node_head(buf: &[u8], key: &[u8], p: usize) -> u32 {
    let h = head(key, p);
    if short_heads(buf) { h >> 16 } else { h }
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

/// Length of the key prefix kept once at the end of the page (see the module docs).
pub(crate) fn stored_len(buf: &[u8]) -> usize {
    read_u16(buf, STORED_AT) as usize
}

fn set_stored_len(buf: &mut [u8], s: usize) {
    write_u16(buf, STORED_AT, s as u16);
}

/// The key bytes every cell leaves out: the [`stored_len`] bytes after the node header.
fn stored_prefix(buf: &[u8]) -> NodeResult<&[u8]> {
    buf.get(HEADER_END..HEADER_END + stored_len(buf))
        .ok_or(Malformed("stored key prefix exceeds the page"))
}

/// First byte of the slot array: after the node header and the stored prefix.
fn slots_at(buf: &[u8]) -> usize {
    HEADER_END + stored_len(buf)
}

/// Length of the common prefix of `a` and `b`.
pub(crate) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
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
    if buf[FLAGS_AT] & !SHORT_HEADS != 0 {
        return Err(Malformed("unknown node flags"));
    }
    let slots_end = slots_at(buf) + n * slot_len(buf);
    if slots_end > buf.len() {
        return Err(Malformed("cell count exceeds page"));
    }
    if heap < slots_end || heap > buf.len() {
        return Err(Malformed("heap start out of range"));
    }
    if frag(buf) > buf.len() - heap {
        return Err(Malformed("fragmented byte count exceeds heap"));
    }
    if stored_len(buf) > prefix_len(buf) {
        return Err(Malformed("stored key prefix longer than the shared prefix"));
    }
    if !is_leaf(buf) && stored_len(buf) != 0 {
        return Err(Malformed("internal node with a stored key prefix"));
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
    let at = slots_at(buf) + i * slot_len(buf);
    let bytes = buf.get(at..at + 2).ok_or(Malformed("slot beyond page"))?;
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
pub(crate) fn key(buf: &[u8], i: usize) -> NodeResult<NodeKey<'_>> {
    Ok(NodeKey {
        prefix: stored_prefix(buf)?,
        rest: cell_key(buf, i)?,
    })
}

/// The key of internal cell `i`, whole: internal nodes never store a prefix (see [`rebuild`]),
/// so descents compare separators in place.
pub(crate) fn internal_key(buf: &[u8], i: usize) -> NodeResult<&[u8]> {
    if stored_len(buf) != 0 {
        return Err(Malformed("internal node with a stored key prefix"));
    }
    cell_key(buf, i)
}

/// The key bytes cell `i` itself holds (without the stored prefix).
fn cell_key(buf: &[u8], i: usize) -> NodeResult<&[u8]> {
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
    if short_heads(buf) {
        let at = slots_at(buf) + i * SHORT_SLOT_LEN + 2;
        let bytes = buf.get(at..at + 2).ok_or(Malformed("slot beyond page"))?;
        return Ok(u32::from(u16::from_be_bytes([bytes[0], bytes[1]])));
    }
    let at = slots_at(buf) + i * SLOT_LEN + 2;
    let bytes = buf.get(at..at + 4).ok_or(Malformed("slot beyond page"))?;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Writes the slot at byte `at`: the cell offset and the head of `key` after its first `p`
/// bytes, in this node's head width.
fn write_slot(buf: &mut [u8], at: usize, offset: usize, key: &[u8], p: usize) {
    write_u16(buf, at, offset as u16);
    write_head(buf, at, node_head(buf, key, p));
}

fn write_head(buf: &mut [u8], at: usize, h: u32) {
    if short_heads(buf) {
        buf[at + 2..at + 4].copy_from_slice(&(h as u16).to_be_bytes());
    } else {
        buf[at + 2..at + 6].copy_from_slice(&h.to_be_bytes());
    }
}

/// The bytes of `first` (a node's first key) after its stored prefix up to the shared prefix
/// length `p`: with the stored prefix, the `p` bytes every key of the node starts with.
fn shared_tail<'a>(first: &NodeKey<'a>, p: usize) -> NodeResult<&'a [u8]> {
    p.checked_sub(first.prefix.len())
        .and_then(|n| first.rest.get(..n))
        .ok_or(Malformed("key shorter than the node's shared prefix"))
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
    let tail = shared_tail(&first, p)?;
    let skip = tail.len();
    for i in 0..n {
        let rest = cell_key(buf, i)?;
        if rest.get(..skip) != Some(tail) {
            return Err(Malformed(
                "key does not start with the node's shared prefix",
            ));
        }
        if slot_head(buf, i)? != node_head(buf, rest, skip) {
            return Err(Malformed("slot key head does not match its cell"));
        }
    }
    Ok(())
}

/// Orders `target`'s first `p` bytes against the `p` bytes every key of the node starts with:
/// the stored prefix, then `tail` (the rest of the first key's shared part).
fn cmp_shared(stored: &[u8], tail: &[u8], p: usize, target: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let t = &target[..p.min(target.len())];
    let n = t.len().min(stored.len());
    match t[..n].cmp(&stored[..n]) {
        Ordering::Equal if t.len() <= stored.len() => {
            if t.len() < p {
                Ordering::Less
            } else {
                Ordering::Equal
            }
        }
        Ordering::Equal => t[stored.len()..].cmp(tail),
        unequal => unequal,
    }
}

/// Binary search for `key`: `Ok(i)` if cell `i` has it, `Err(i)` for the insertion point.
pub(crate) fn search(buf: &[u8], target: &[u8]) -> NodeResult<Result<usize, usize>> {
    search_from(buf, target, 0)
}

/// [`search`] among cells `from..`, for a caller that knows every key before `from` is below
/// `target`.
fn search_from(buf: &[u8], target: &[u8], from: usize) -> NodeResult<Result<usize, usize>> {
    let (mut lo, mut hi) = (from, nkeys(buf));
    if lo >= hi {
        return Ok(Err(hi));
    }
    let p = prefix_len(buf);
    let stored = stored_prefix(buf)?;
    let s = stored.len();
    if s > p {
        return Err(Malformed("stored key prefix longer than the shared prefix"));
    }
    if p > 0 {
        // A target outside the shared prefix sorts before or after every key. With the whole
        // shared prefix stored (the usual case) this reads no cell.
        let tail = if s == p {
            &[][..]
        } else {
            shared_tail(&key(buf, 0)?, p)?
        };
        match cmp_shared(stored, tail, p, target) {
            std::cmp::Ordering::Less => return Ok(Err(0)),
            std::cmp::Ordering::Greater => return Ok(Err(hi)),
            std::cmp::Ordering::Equal => {}
        }
    }
    // The target has the node's first `p >= s` bytes: compare the rest with the cells' rest.
    let rest = &target[s..];
    let target_head = node_head(buf, target, p);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let order = match slot_head(buf, mid)?.cmp(&target_head) {
            std::cmp::Ordering::Equal => cell_key(buf, mid)?.cmp(rest),
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

/// Where the cell [`search`] would end on for `target` most likely lies: the byte offset of the
/// first cell whose slot head is not below the target's, found from the slot array alone (no
/// cell is read, so calling this on a node whose cells are not in the CPU cache does not wait
/// for them). `None` when the target falls outside the node's shared prefix, the node is
/// empty or malformed. A hint for prefetching, never for finding keys.
pub(crate) fn probe_cell(buf: &[u8], target: &[u8]) -> Option<usize> {
    let n = nkeys(buf);
    let p = prefix_len(buf);
    let stored = stored_prefix(buf).ok()?;
    if n == 0 || stored.len() != p || target.get(..p)? != stored {
        return None;
    }
    let target_head = node_head(buf, target, p);
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if slot_head(buf, mid).ok()? < target_head {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    slot(buf, lo.min(n - 1)).ok()
}

/// Decodes leaf cell `i` into its key and value reference.
pub(crate) fn leaf_entry(buf: &[u8], i: usize) -> NodeResult<(NodeKey<'_>, ValueRef<'_>)> {
    let prefix = stored_prefix(buf)?;
    let (rest, value) = decode_leaf_cell(cell(buf, i)?);
    Ok((NodeKey { prefix, rest }, value))
}

/// Splits a leaf cell's bytes into the key bytes it holds and its value reference.
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
    child_index_from(buf, target, 0)
}

/// [`child_index`] for a caller that knows `target` is at least separator `from - 1` (so the
/// child is `from` or later): searches only the separators from `from` on.
pub(crate) fn child_index_from(buf: &[u8], target: &[u8], from: usize) -> NodeResult<usize> {
    Ok(match search_from(buf, target, from)? {
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
    let slots_end = slots_at(buf) + nkeys(buf) * slot_len(buf);
    heap_start(buf).saturating_sub(slots_end) + frag(buf)
}

/// Bytes used by cells and their slots.
pub(crate) fn used(buf: &[u8]) -> usize {
    buf.len() - HEADER_END - free_space(buf)
}

/// Inserts `cell` (a whole cell, full key) as cell `idx`; returns false if it does not fit
/// even after compaction, leaving the node unchanged.
pub(crate) fn insert_cell(buf: &mut [u8], idx: usize, cell: &[u8]) -> NodeResult<bool> {
    let n = nkeys(buf);
    if idx > n {
        return Err(Malformed("insert position beyond the last cell"));
    }
    let leaf = is_leaf(buf);
    let new_key = key_of(cell, leaf);
    let s = stored_len(buf);
    if s > 0 && (n == 0 || !new_key.starts_with(stored_prefix(buf)?)) {
        // The stored prefix must shrink: every cell grows, so lay the node out anew.
        return relayout_with(buf, idx, cell);
    }
    let stored = cell.len() - s;
    let slot = slot_len(buf);
    let needed = stored + slot;
    if free_space(buf) < needed {
        return Ok(false);
    }
    let slots_end = slots_at(buf) + n * slot;
    if heap_start(buf) - slots_end < needed {
        return relayout_with(buf, idx, cell);
    }
    let p = shrink_prefix(buf, new_key)?;
    let heap = heap_start(buf) - stored;
    write_stored_cell(&mut buf[heap..heap + stored], cell, s, leaf);
    set_heap_start(buf, heap);
    let at = slots_at(buf) + idx * slot;
    buf.copy_within(at..slots_end, at + slot);
    write_slot(buf, at, heap, &new_key[s..], p - s);
    set_nkeys(buf, n + 1);
    Ok(true)
}

/// Inserts `cell` by rebuilding the node with all its cells (compacting the heap and fitting
/// the stored prefix to the new key set); returns false, unchanged, if they do not fit.
fn relayout_with(buf: &mut [u8], idx: usize, cell: &[u8]) -> NodeResult<bool> {
    let mut cells = collect_cells(buf)?;
    cells.insert(idx, cell.to_vec());
    if layout_size(&cells, is_leaf(buf)) > buf.len() - HEADER_END {
        return Ok(false);
    }
    if rebuild(buf, &cells) {
        Ok(true)
    } else {
        Err(Malformed(
            "cells do not fit the page they were measured for",
        ))
    }
}

/// Writes whole cell `cell` into `dst` without the first `s` bytes of its key.
fn write_stored_cell(dst: &mut [u8], cell: &[u8], s: usize, leaf: bool) {
    let header = if leaf {
        LEAF_CELL_HEADER
    } else {
        INTERNAL_CELL_HEADER
    };
    let klen = read_u16(cell, 0) as usize;
    write_u16(dst, 0, (klen - s) as u16);
    dst[2..header].copy_from_slice(&cell[2..header]);
    dst[header..].copy_from_slice(&cell[header + s..]);
}

/// Makes the node's shared prefix one that `new_key` has too, rewriting every head if it has
/// to shrink, and returns it. `new_key` has the node's stored prefix.
fn shrink_prefix(buf: &mut [u8], new_key: &[u8]) -> NodeResult<usize> {
    let p = prefix_len(buf);
    let s = stored_len(buf);
    if p == 0 {
        return Ok(0);
    }
    let n = nkeys(buf);
    let shared = if n == 0 {
        0
    } else {
        let first = cell_key(buf, 0)?;
        s + common_prefix(first, &new_key[s..]).min(p - s)
    };
    if shared < p {
        set_prefix_len(buf, shared);
        let (base, slot) = (slots_at(buf), slot_len(buf));
        for i in 0..n {
            let at = base + i * slot;
            let h = node_head(buf, cell_key(buf, i)?, shared - s);
            write_head(buf, at, h);
        }
    }
    Ok(shared)
}

/// Removes cell `idx`; its bytes become fragmented free space.
pub(crate) fn remove_cell(buf: &mut [u8], idx: usize) -> NodeResult<()> {
    let n = nkeys(buf);
    let off = slot(buf, idx)?;
    let len = cell_len_at(buf, off)?;
    let slot = slot_len(buf);
    let at = slots_at(buf) + idx * slot;
    let slots_end = slots_at(buf) + n * slot;
    buf.copy_within(at + slot..slots_end, at);
    set_nkeys(buf, n - 1);
    if off == heap_start(buf) {
        set_heap_start(buf, off + len);
    } else {
        set_frag(buf, frag(buf) + len);
    }
    Ok(())
}

/// Copies out every cell in order, whole: with the stored prefix put back into its key.
pub(crate) fn collect_cells(buf: &[u8]) -> NodeResult<Vec<Vec<u8>>> {
    let prefix = stored_prefix(buf)?;
    let header = if is_leaf(buf) {
        LEAF_CELL_HEADER
    } else {
        INTERNAL_CELL_HEADER
    };
    (0..nkeys(buf))
        .map(|i| {
            let cell = cell(buf, i)?;
            if prefix.is_empty() {
                return Ok(cell.to_vec());
            }
            let klen = read_u16(cell, 0) as usize + prefix.len();
            let klen = u16::try_from(klen).map_err(|_| Malformed("key too long"))?;
            let mut whole = Vec::with_capacity(cell.len() + prefix.len());
            whole.extend_from_slice(&klen.to_le_bytes());
            whole.extend_from_slice(&cell[2..header]);
            whole.extend_from_slice(prefix);
            whole.extend_from_slice(&cell[header..]);
            Ok(whole)
        })
        .collect()
}

/// The prefix all `cells` (whole, in key order) share: the first and last keys' common prefix
/// is everyone's.
fn common_of<C: AsRef<[u8]>>(cells: &[C], leaf: bool) -> usize {
    match (cells.first(), cells.last()) {
        (Some(a), Some(b)) => {
            common_prefix(key_of(a.as_ref(), leaf), key_of(b.as_ref(), leaf)).min(u16::MAX as usize)
        }
        _ => 0,
    }
}

/// Replaces all cells (whole, in key order), keeping the node's header fields; a leaf stores
/// their common key prefix once. Returns false if they do not fit (the node is then left
/// empty).
///
/// Internal nodes keep whole keys: the separator a child's split pushes up may lie anywhere in
/// the node's key range, outside the prefix its current keys share, and a node on a writer's
/// path must know in advance that such an insert fits ([`prefix_growth`] answers that for a
/// leaf, whose insert key is known). Internal nodes are few; the bytes are in the leaves.
pub(crate) fn rebuild<C: AsRef<[u8]>>(buf: &mut [u8], cells: &[C]) -> bool {
    let size = buf.len();
    let leaf = is_leaf(buf);
    let empty = |buf: &mut [u8]| {
        set_nkeys(buf, 0);
        set_heap_start(buf, size);
        set_frag(buf, 0);
        set_prefix_len(buf, 0);
        set_stored_len(buf, 0);
    };
    empty(buf);
    // A rebuilt node takes this build's layout, whatever it had.
    buf[FLAGS_AT] = SHORT_HEADS;
    let p = common_of(cells, leaf);
    let s = if leaf { p } else { 0 };
    if s > size - HEADER_END {
        return false;
    }
    let mut heap = size;
    if let Some(first) = cells.first() {
        buf[HEADER_END..HEADER_END + s].copy_from_slice(&key_of(first.as_ref(), leaf)[..s]);
    }
    set_prefix_len(buf, p);
    set_stored_len(buf, s);
    let mut slot_at = HEADER_END + s;
    for cell in cells {
        let cell = cell.as_ref();
        let stored = cell.len() - s;
        if heap < slot_at + SHORT_SLOT_LEN + stored {
            empty(buf);
            return false;
        }
        heap -= stored;
        write_stored_cell(&mut buf[heap..heap + stored], cell, s, leaf);
        write_slot(buf, slot_at, heap, &key_of(cell, leaf)[s..], p - s);
        slot_at += SHORT_SLOT_LEN;
    }
    // Zero the gap so stale bytes never reach disk.
    buf[slot_at..heap].fill(0);
    set_nkeys(buf, cells.len());
    set_heap_start(buf, heap);
    true
}

/// Bytes one whole cell needs at most in a node without stored prefix (cell plus the larger,
/// older slot): what checks against a node of either layout count.
pub(crate) fn cell_size(cell: &[u8]) -> usize {
    cell.len() + SLOT_LEN
}

/// Bytes one whole cell takes in a node [`rebuild`] lays out without stored prefix.
fn laid_out_size(cell: &[u8]) -> usize {
    cell.len() + SHORT_SLOT_LEN
}

/// Bytes a list of whole cells takes in a node [`rebuild`] lays out without stored prefix.
pub(crate) fn cells_size<C: AsRef<[u8]>>(cells: &[C]) -> usize {
    cells.iter().map(|c| laid_out_size(c.as_ref())).sum()
}

/// Bytes [`rebuild`] needs for `cells` (whole, in key order): cells and slots, and in a leaf
/// each cell without the common key prefix, which is stored once.
pub(crate) fn layout_size<C: AsRef<[u8]>>(cells: &[C], leaf: bool) -> usize {
    RunSizes::new(cells, leaf).of(0, cells.len())
}

/// Exact bytes runs of consecutive whole cells need in one node, for choosing split points:
/// prefix sums of the whole sizes, less the common key prefix a leaf stores once.
pub(crate) struct RunSizes<'c, C> {
    cells: &'c [C],
    sums: Vec<usize>,
    leaf: bool,
}

impl<'c, C: AsRef<[u8]>> RunSizes<'c, C> {
    pub fn new(cells: &'c [C], leaf: bool) -> RunSizes<'c, C> {
        let mut sums = Vec::with_capacity(cells.len() + 1);
        sums.push(0);
        for cell in cells {
            sums.push(sums[sums.len() - 1] + laid_out_size(cell.as_ref()));
        }
        RunSizes { cells, sums, leaf }
    }

    /// Bytes of `cells[a..b]`.
    pub fn of(&self, a: usize, b: usize) -> usize {
        if a >= b {
            return 0;
        }
        let whole = self.sums[b] - self.sums[a];
        if !self.leaf {
            return whole;
        }
        let first = key_of(self.cells[a].as_ref(), true);
        let last = key_of(self.cells[b - 1].as_ref(), true);
        whole - common_prefix(first, last) * (b - a - 1)
    }
}

/// Bytes beyond its own cell that inserting `key` into a node costs: a key without the whole
/// stored prefix shrinks it, and every cell takes back the bytes it no longer shares.
/// Callers that must know an insert fits before they start (a writer releasing the latches
/// above a leaf) add this to the cell's size.
pub(crate) fn prefix_growth(buf: &[u8], key: &[u8]) -> usize {
    let Ok(prefix) = stored_prefix(buf) else {
        // A damaged node: claim no room, so the writer keeps its parent; the insert reports it.
        return buf.len();
    };
    (prefix.len() - common_prefix(prefix, key)) * nkeys(buf)
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
    set_stored_len(dst, stored_len(src));
    dst[FLAGS_AT] = src[FLAGS_AT];
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
        let keys: Vec<u8> = (0..nkeys(&buf))
            .map(|i| key(&buf, i).unwrap().to_vec()[0])
            .collect();
        assert_eq!(keys, vec![1, 3, 5, 9]);
        assert_eq!(search(&buf, &[5]).unwrap(), Ok(2));
        remove_cell(&mut buf, 1).unwrap();
        assert_eq!(search(&buf, &[3]).unwrap(), Err(1));
        let (k, v) = leaf_entry(&buf, 1).unwrap();
        assert_eq!((k.to_vec(), v), (vec![5u8], ValueRef::Inline(&[5u8; 10])));
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

    /// Searching only the separators from `c + 1` on finds the same child as a whole search
    /// for every key at or beyond separator `c`, including keys equal to a separator.
    #[test]
    fn test_child_index_from_agrees_with_child_index() {
        let mut buf = vec![0u8; 4096];
        init(&mut buf, 9, 1);
        let seps: Vec<Vec<u8>> = (0..40u8).map(|i| vec![b'k', i * 4, 7]).collect();
        for (i, sep) in seps.iter().enumerate() {
            assert!(insert_cell(&mut buf, i, &internal_cell(sep, 100 + i as PageId)).unwrap());
        }
        for probe in 0..=170u8 {
            for tail in [&[][..], &[7][..], &[7, 1][..], &[9][..]] {
                let mut key = vec![b'k', probe];
                key.extend_from_slice(tail);
                let whole = child_index(&buf, &key).unwrap();
                for (c, sep) in seps.iter().enumerate() {
                    if key.as_slice() >= sep.as_slice() {
                        assert_eq!(
                            child_index_from(&buf, &key, c + 1).unwrap(),
                            whole,
                            "{key:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(child_index_from(&buf, b"z", 40).unwrap(), 40);
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
        // An emptied node takes the prefix of what arrives next.
        while nkeys(&buf) > 0 {
            remove_cell(&mut buf, 0).unwrap();
        }
        assert!(insert_cell(&mut buf, 0, &leaf_cell_inline(b"zz", b"")).unwrap());
        assert_eq!(search(&buf, b"zz").unwrap(), Ok(0));
        assert!(insert_cell(&mut buf, 0, &leaf_cell_inline(b"az", b"")).unwrap());
        assert_eq!(prefix_len(&buf), 0);
        assert_eq!(search(&buf, b"az").unwrap(), Ok(0));
        assert_eq!(search(&buf, b"zz").unwrap(), Ok(1));
        validate_header(&buf).unwrap();
        verify_heads(&buf).unwrap();
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

    fn keys_of(buf: &[u8]) -> Vec<Vec<u8>> {
        (0..nkeys(buf))
            .map(|i| key(buf, i).unwrap().to_vec())
            .collect()
    }

    #[test]
    fn test_leaf_stores_the_shared_prefix_once() {
        let mut buf = leaf();
        let cells: Vec<Vec<u8>> = (0..50)
            .map(|i| leaf_cell_inline(&prefixed(i), b"value"))
            .collect();
        assert!(rebuild(&mut buf, &cells));
        let p = prefixed(0).len() - 2;
        assert_eq!((prefix_len(&buf), stored_len(&buf)), (p, p));
        // Every cell is `p` bytes shorter; the prefix is stored once.
        assert_eq!(used(&buf), cells_size(&cells) - 49 * p);
        assert_eq!(used(&buf), layout_size(&cells, true));
        // Cells come back whole, keys compare whole, and a search finds each key.
        assert_eq!(collect_cells(&buf).unwrap(), cells);
        for i in 0..50u32 {
            let (k, v) = leaf_entry(&buf, i as usize).unwrap();
            assert_eq!(k.to_vec(), prefixed(i));
            assert_eq!(v, ValueRef::Inline(b"value"));
            assert!(k.eq_bytes(&prefixed(i)));
            assert!(k.starts_with(&prefixed(i)[..3]));
            assert!(k.starts_with(&prefixed(i)[..p + 1]));
            assert!(!k.starts_with(b"u"));
            assert_eq!(k.cmp_bytes(&prefixed(i)), std::cmp::Ordering::Equal);
            assert_eq!(k.cmp_bytes(b"t"), std::cmp::Ordering::Greater);
            assert_eq!(k.cmp_bytes(&prefixed(i + 1)), std::cmp::Ordering::Less);
            assert_eq!(search(&buf, &prefixed(i)).unwrap(), Ok(i as usize));
        }
        verify_heads(&buf).unwrap();
        validate_header(&buf).unwrap();
    }

    /// The probe finds, from the slots alone, the cell a search for a key (present, or a
    /// version-like extension of it) ends on, and nothing for keys outside the node's prefix.
    #[test]
    fn test_probe_cell_points_at_the_cell_search_ends_on() {
        let mut buf = leaf();
        let cells: Vec<Vec<u8>> = (0..50)
            .map(|i| leaf_cell_inline(&prefixed(i * 2), b"value"))
            .collect();
        assert!(rebuild(&mut buf, &cells));
        for i in 0..50u32 {
            let found = search(&buf, &prefixed(i * 2)).unwrap().unwrap();
            assert_eq!(
                probe_cell(&buf, &prefixed(i * 2)),
                Some(slot(&buf, found).unwrap())
            );
            // A longer key sorting right after the stored one still lands on its cell.
            let mut longer = prefixed(i * 2);
            longer.push(0x01);
            assert_eq!(probe_cell(&buf, &longer), Some(slot(&buf, found).unwrap()));
        }
        assert_eq!(probe_cell(&buf, b"a"), None);
        assert_eq!(probe_cell(&buf, b"zzzzzzzz"), None);
        assert_eq!(probe_cell(&leaf(), &prefixed(0)), None);
        // Garbage is no panic.
        let mut bad = buf.clone();
        let at = slots_at(&bad);
        bad[at..at + 8].fill(0xFF);
        let _ = probe_cell(&bad, &prefixed(2));
    }

    #[test]
    fn test_key_without_the_stored_prefix_relays_the_node_out_or_does_not_fit() {
        let mut buf = leaf();
        // Values sized so that the node is nearly full with its prefix stored once.
        let mut cells: Vec<Vec<u8>> = Vec::new();
        let mut i = 0;
        loop {
            let cell = leaf_cell_inline(&prefixed(i), &[1u8; 40]);
            let mut next = cells.clone();
            next.push(cell);
            if layout_size(&next, true) > 4096 - HEADER_END - 30 {
                break;
            }
            cells = next;
            i += 1;
        }
        assert!(rebuild(&mut buf, &cells));
        let n = nkeys(&buf);
        // A key sharing only the table byte: every cell would take its prefix back.
        let outsider = b"t\x01".to_vec();
        let growth = prefix_growth(&buf, &outsider);
        assert_eq!(growth, n * (stored_len(&buf) - 1));
        let cell = leaf_cell_inline(&outsider, b"x");
        assert!(free_space(&buf) >= cell_size(&cell));
        assert!(free_space(&buf) < cell_size(&cell) + growth);
        let before = buf.clone();
        assert!(!insert_cell(&mut buf, n, &cell).unwrap());
        assert_eq!(buf, before, "a refused insert leaves the node as it was");
        // After room is made, the same insert relays the node out with a one-byte prefix.
        let mut few = leaf();
        assert!(rebuild(&mut few, &cells[..10]));
        assert!(free_space(&few) >= cell_size(&cell) + prefix_growth(&few, &outsider));
        assert!(insert_cell(&mut few, 10, &cell).unwrap());
        assert_eq!(stored_len(&few), 1);
        let mut expected: Vec<Vec<u8>> = (0..10).map(prefixed).collect();
        expected.push(outsider.clone());
        assert_eq!(keys_of(&few), expected);
        verify_heads(&few).unwrap();
        // A key sharing the prefix costs no more than its own cell.
        assert_eq!(prefix_growth(&few, &prefixed(3)), 0);
    }

    #[test]
    fn test_legacy_leaf_with_whole_keys_reads_and_converts_on_rebuild() {
        // A node as format 4 wrote it: six-byte slots with four-byte heads, whole keys in the
        // cells, a shared prefix for the heads only, nothing stored after the header.
        let mut buf = leaf();
        buf[FLAGS_AT] = 0;
        let keys: Vec<Vec<u8>> = (0..20).map(prefixed).collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(insert_cell(&mut buf, i, &leaf_cell_inline(k, b"v")).unwrap());
        }
        let p = prefixed(0).len() - 2;
        set_prefix_len(&mut buf, p);
        for (i, k) in keys.iter().enumerate() {
            let at = HEADER_END + i * SLOT_LEN;
            buf[at + 2..at + 6].copy_from_slice(&head(k, p).to_be_bytes());
        }
        assert_eq!(stored_len(&buf), 0);
        verify_heads(&buf).unwrap();
        assert_eq!(keys_of(&buf), keys);
        assert_eq!(search(&buf, &prefixed(7)).unwrap(), Ok(7));
        // Inserts keep the layout; a compaction (here: after a removal fragments the heap)
        // rebuilds the node with its prefix stored.
        let extra = {
            let mut k = prefixed(7);
            k.push(1);
            k
        };
        assert!(insert_cell(&mut buf, 8, &leaf_cell_inline(&extra, b"w")).unwrap());
        assert_eq!(stored_len(&buf), 0);
        assert!(!short_heads(&buf));
        verify_heads(&buf).unwrap();
        let all = collect_cells(&buf).unwrap();
        let before = used(&buf);
        assert!(rebuild(&mut buf, &all));
        assert!(short_heads(&buf));
        assert_eq!(used(&buf), layout_size(&all, true));
        assert!(used(&buf) < before);
        // Keys 0..133 differ in their last byte only.
        assert_eq!(stored_len(&buf), p + 1);
        assert_eq!(collect_cells(&buf).unwrap(), all);
        assert_eq!(search(&buf, &extra).unwrap(), Ok(8));
    }

    #[test]
    fn test_damaged_stored_prefix_is_malformed_not_a_panic() {
        let mut buf = leaf();
        let cells: Vec<Vec<u8>> = (0..5)
            .map(|i| leaf_cell_inline(&prefixed(i), b""))
            .collect();
        assert!(rebuild(&mut buf, &cells));
        // Longer than the shared prefix.
        let p = prefix_len(&buf);
        set_stored_len(&mut buf, p + 1);
        assert!(validate_header(&buf).is_err());
        assert!(search(&buf, &prefixed(1)).is_err());
        // Longer than the page.
        set_stored_len(&mut buf, 60_000);
        assert!(key(&buf, 0).is_err());
        assert!(leaf_entry(&buf, 0).is_err());
        assert!(collect_cells(&buf).is_err());
        assert!(search(&buf, &prefixed(1)).is_err());
        assert!(insert_cell(&mut buf, 0, &leaf_cell_inline(b"a", b"")).is_err());
        assert_eq!(prefix_growth(&buf, b"a"), buf.len());
        // Internal nodes keep whole keys: a stored prefix there is damage.
        let mut inner = vec![0u8; 4096];
        init(&mut inner, 4, 1);
        let cells: Vec<Vec<u8>> = (0..5).map(|i| internal_cell(&prefixed(i), 7)).collect();
        assert!(rebuild(&mut inner, &cells));
        assert_eq!(stored_len(&inner), 0);
        assert_eq!(internal_key(&inner, 2).unwrap(), prefixed(2).as_slice());
        set_stored_len(&mut inner, 1);
        assert!(validate_header(&inner).is_err());
        assert!(internal_key(&inner, 2).is_err());
    }

    #[test]
    fn test_run_sizes_match_the_layout_of_every_run() {
        let cells: Vec<Vec<u8>> = (0..40u32)
            .map(|i| leaf_cell_inline(&prefixed(i * 300), &vec![0u8; (i % 7) as usize]))
            .collect();
        let sizes = RunSizes::new(&cells, true);
        for a in 0..cells.len() {
            for b in a + 1..=cells.len() {
                let mut buf = leaf();
                assert!(rebuild(&mut buf, &cells[a..b]));
                assert_eq!(sizes.of(a, b), used(&buf), "run {a}..{b}");
            }
        }
        let internal: Vec<Vec<u8>> = (0..5).map(|i| internal_cell(&prefixed(i), 9)).collect();
        assert_eq!(
            RunSizes::new(&internal, false).of(0, 5),
            cells_size(&internal)
        );
    }

    #[test]
    fn test_short_heads_tell_keys_apart_and_ties_read_cells() {
        let mut buf = leaf();
        assert!(short_heads(&buf));
        // Keys that share the two head bytes after their prefix and differ only later: every
        // probe between them ties on the head and compares the cells.
        let key = |i: u8| {
            let mut k = b"table\x01\x02".to_vec();
            k.extend_from_slice(&[0xAA, 0xBB, i, 0x10]);
            k
        };
        let mut cells: Vec<Vec<u8>> = (0..40u8)
            .map(|i| leaf_cell_inline(&key(i * 3), b"v"))
            .collect();
        cells.push(leaf_cell_inline(b"tablf", b"w"));
        assert!(rebuild(&mut buf, &cells));
        assert_eq!(prefix_len(&buf), 4);
        verify_heads(&buf).unwrap();
        for i in 0..40u8 {
            assert_eq!(search(&buf, &key(i * 3)).unwrap(), Ok(i as usize));
            assert_eq!(search(&buf, &key(i * 3 + 1)).unwrap(), Err(i as usize + 1));
        }
        assert_eq!(search(&buf, b"tablf").unwrap(), Ok(40));
        // Inserts into a short-head node keep the layout; a damaged flag byte is reported.
        let at = search(&buf, &key(4)).unwrap().unwrap_err();
        assert!(insert_cell(&mut buf, at, &leaf_cell_inline(&key(4), b"x")).unwrap());
        verify_heads(&buf).unwrap();
        assert_eq!(search(&buf, &key(4)).unwrap(), Ok(at));
        buf[FLAGS_AT] = 0x80;
        assert!(validate_header(&buf).is_err());
    }
}
