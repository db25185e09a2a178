//! Mini-transactions: the unit of atomic change to pages, and its log record.
//!
//! Every write (one tree operation, or a whole [`crate::Database::batch`]) runs as one
//! mini-transaction. The buffer pool remembers the original image of each page the first time
//! it is modified; when the mini-transaction ends, one log record describes the change of every
//! page it touched, and only then may those pages be written back. Recovery replays records
//! whole, so a crash leaves each mini-transaction either entirely applied or not at all.
//!
//! # Record payload (kind [`KIND_PAGES`])
//!
//! | bytes | field |
//! |-------|-------|
//! | 0..8  | page count after the change (allocator high-water mark) |
//! | 8..16 | free-list head after the change |
//! | 16..24| free-list length after the change |
//! | 24..28| number of page entries `n` |
//! | ...   | `n` entries |
//!
//! Entry: page id (u64), flags (u8: bit 0 = full image), range count (u16), then per range an
//! offset (u16), a length (u16) and the bytes. A *delta* entry's ranges overwrite bytes of the
//! page as it was before the change; a *full* entry's ranges are applied to a zeroed page, so
//! redo never needs the old copy (this is the torn-page protection: the first change to a page
//! after a checkpoint is logged in full). Bytes 0..20 of a page (checksum, page id, LSN) are never
//! logged; redo sets them.

use crate::page::{PageId, read_u16, read_u64};
use crate::store::AllocState;

/// Log record kind of a mini-transaction.
pub const KIND_PAGES: u8 = 1;
/// Log record kind of full images of pages past the high-water mark, written early by a large
/// mini-transaction (same layout; the allocator fields are unused).
pub const KIND_NEW_PAGES: u8 = 2;
/// Bytes of a page header not covered by diffs: checksum, page id and LSN.
pub const LOGGED_FROM: usize = 20;
const HEADER_LEN: usize = 28;

/// Appends the ranges where `new` differs from `old` (from [`LOGGED_FROM`] on) to `out`,
/// returning how many ranges were written. `old = None` means a zeroed page.
///
/// Pages are compared eight bytes at a time (this runs for every page of every
/// mini-transaction, so it is on the write path of every commit). A range runs from its first
/// differing byte to its last; it ends at the first whole equal word, so equal gaps shorter
/// than eight bytes stay inside a range (a range header costs four bytes).
pub fn encode_diff(old: Option<&[u8]>, new: &[u8], out: &mut Vec<u8>) -> u16 {
    let n = new.len();
    let old_word = |i: usize| old.map_or(0, |o| word(o, i));
    let old_byte = |i: usize| old.map_or(0, |o| o[i]);
    let mut count = 0u16;
    let mut i = LOGGED_FROM;
    while i < n {
        // Skip equal words, then find the first differing byte.
        while i + 8 <= n && old_word(i) == word(new, i) {
            i += 8;
        }
        let diff = if i + 8 <= n {
            i + first_diff_byte(old_word(i) ^ word(new, i))
        } else {
            match (i..n).find(|&k| old_byte(k) != new[k]) {
                Some(k) => k,
                None => break,
            }
        };
        let start = diff;
        // Extend over unequal words; the range ends after the last differing byte before the
        // first equal word (or the page end).
        let mut j = start;
        while j + 8 <= n && old_word(j) != word(new, j) {
            j += 8;
        }
        let end = if j + 8 <= n {
            // [j, j + 8) is equal: the last differing byte is before j.
            last_diff_end(old, new, start, j)
        } else {
            last_diff_end(old, new, start, n)
        };
        out.extend_from_slice(&(start as u16).to_le_bytes());
        out.extend_from_slice(&((end - start) as u16).to_le_bytes());
        out.extend_from_slice(&new[start..end]);
        count += 1;
        i = end.max(j);
    }
    count
}

/// The eight bytes at `i`, in memory order (compared for equality only).
fn word(buf: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(buf[i..i + 8].try_into().expect("eight bytes"))
}

/// Index of the first differing byte in a nonzero XOR of two little-endian words.
fn first_diff_byte(xor: u64) -> usize {
    (xor.trailing_zeros() / 8) as usize
}

/// One past the last byte in `start..limit` where `new` differs from `old`; `start` differs.
fn last_diff_end(old: Option<&[u8]>, new: &[u8], start: usize, limit: usize) -> usize {
    let mut end = limit;
    while end > start + 1 && old.map_or(0, |o| o[end - 1]) == new[end - 1] {
        end -= 1;
    }
    end
}

/// Builds a record payload; entries are added with [`PayloadBuilder::page`].
pub struct PayloadBuilder {
    buf: Vec<u8>,
    entries: u32,
}

impl PayloadBuilder {
    pub fn new(alloc: AllocState) -> PayloadBuilder {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&alloc.page_count.to_le_bytes());
        buf.extend_from_slice(&alloc.free_head.to_le_bytes());
        buf.extend_from_slice(&alloc.free_len.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        PayloadBuilder { buf, entries: 0 }
    }

    /// Adds page `id`'s change from `old` (`None`: log the full image) to `new`. An unchanged
    /// page adds nothing.
    pub fn page(&mut self, id: PageId, old: Option<&[u8]>, new: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.buf.push(u8::from(old.is_none()));
        self.buf.extend_from_slice(&[0, 0]);
        let ranges = encode_diff(old, new, &mut self.buf);
        if ranges == 0 && old.is_some() {
            self.buf.truncate(start);
            return;
        }
        self.buf[start + 9..start + 11].copy_from_slice(&ranges.to_le_bytes());
        self.entries += 1;
    }

    /// The payload, or `None` if no page changed.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        if self.entries == 0 {
            return None;
        }
        self.buf[24..28].copy_from_slice(&self.entries.to_le_bytes());
        Some(self.buf)
    }
}

/// One page's change in a decoded record.
#[derive(Debug)]
pub struct PageEntry<'a> {
    pub page: PageId,
    pub full: bool,
    ranges: &'a [u8],
    count: u16,
}

impl PageEntry<'_> {
    /// Applies the change to `page` (zeroing it first for a full image). The caller sets the
    /// header fields.
    pub fn apply(&self, page: &mut [u8]) -> Result<(), String> {
        if self.full {
            page.fill(0);
        }
        let mut at = 0;
        for _ in 0..self.count {
            let off = read_u16(self.ranges, at) as usize;
            let len = read_u16(self.ranges, at + 2) as usize;
            at += 4;
            if off < LOGGED_FROM || off + len > page.len() {
                return Err(format!(
                    "range {off}+{len} outside page {} of {} bytes",
                    self.page,
                    page.len()
                ));
            }
            page[off..off + len].copy_from_slice(&self.ranges[at..at + len]);
            at += len;
        }
        Ok(())
    }
}

/// A decoded mini-transaction record.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub alloc: AllocState,
    pub entries: Vec<PageEntry<'a>>,
}

/// Decodes a payload, checking every length against the bytes present (the record's checksum
/// already matched, so a failure here means a bug or a forged log, reported as corruption).
pub fn decode(payload: &[u8]) -> Result<Decoded<'_>, String> {
    if payload.len() < HEADER_LEN {
        return Err(format!("payload of {} bytes is too short", payload.len()));
    }
    let alloc = AllocState {
        page_count: read_u64(payload, 0),
        free_head: read_u64(payload, 8),
        free_len: read_u64(payload, 16),
    };
    let n = u32::from_le_bytes(payload[24..28].try_into().expect("4 bytes"));
    let mut entries = Vec::with_capacity(n.min(4096) as usize);
    let mut at = HEADER_LEN;
    for _ in 0..n {
        if at + 11 > payload.len() {
            return Err("entry header past the end of the record".into());
        }
        let page = read_u64(payload, at);
        let full = payload[at + 8] & 1 == 1;
        let count = read_u16(payload, at + 9);
        at += 11;
        let start = at;
        for _ in 0..count {
            if at + 4 > payload.len() {
                return Err("range header past the end of the record".into());
            }
            let len = read_u16(payload, at + 2) as usize;
            at += 4 + len;
            if at > payload.len() {
                return Err("range bytes past the end of the record".into());
            }
        }
        if page == 0 || (alloc.page_count != 0 && page >= alloc.page_count) {
            return Err(format!(
                "entry for page {page} outside the recorded page count {}",
                alloc.page_count
            ));
        }
        entries.push(PageEntry {
            page,
            full,
            ranges: &payload[start..at],
            count,
        });
    }
    if at != payload.len() {
        return Err(format!("{} trailing bytes", payload.len() - at));
    }
    Ok(Decoded { alloc, entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn alloc() -> AllocState {
        AllocState {
            page_count: 100,
            free_head: 0,
            free_len: 0,
        }
    }

    proptest! {
        #[test]
        fn test_delta_and_full_entries_reproduce_the_new_page(
            old in proptest::collection::vec(any::<u8>(), 4096),
            edits in proptest::collection::vec((0usize..4096, any::<u8>()), 0..60),
        ) {
            let mut new = old.clone();
            for (i, b) in edits {
                new[i] = b;
            }
            let mut builder = PayloadBuilder::new(alloc());
            builder.page(5, Some(&old), &new);
            builder.page(6, None, &new);
            let payload = builder.finish().expect("the full image is never empty");
            let decoded = decode(&payload).unwrap();
            for entry in &decoded.entries {
                let mut page = if entry.full { vec![0xAB; 4096] } else { old.clone() };
                entry.apply(&mut page).unwrap();
                prop_assert_eq!(&page[LOGGED_FROM..], &new[LOGGED_FROM..]);
            }
        }
    }

    #[test]
    fn test_small_change_costs_little_and_truncated_payload_is_an_error() {
        let old = vec![0u8; 4096];
        let mut new = old.clone();
        new[100] = 1;
        new[104] = 2;
        new[3000] = 3;
        let mut builder = PayloadBuilder::new(alloc());
        builder.page(9, Some(&old), &new);
        let payload = builder.finish().unwrap();
        // Two ranges: 100..105 merged across the short gap, and 3000.
        assert_eq!(payload.len(), HEADER_LEN + 11 + (4 + 5) + (4 + 1));
        for cut in 1..payload.len() - HEADER_LEN {
            assert!(
                decode(&payload[..payload.len() - cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut unchanged = PayloadBuilder::new(alloc());
        unchanged.page(9, Some(&old), &old);
        assert!(unchanged.finish().is_none());
    }
}
