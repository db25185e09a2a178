//! The file header kept in page 0.
//!
//! Page 0 is not an ordinary page: it holds two copies ("slots") of the header, at byte 0 and
//! byte 2048, each with its own CRC32C and a sequence number. A header write replaces only the
//! older slot and touches no other byte, so a torn write (a crash mid-write, where some
//! 512-byte sectors hold new bytes and some old) damages at most the slot being written; the
//! other still describes the previous checkpoint. Opening picks the valid slot with the higher
//! sequence number.
//!
//! Slot layout (all integers little endian):
//!
//! | bytes  | field |
//! |--------|-------|
//! | 0..4   | CRC32C of bytes 4..128 |
//! | 4..12  | magic `NQDBFILE` |
//! | 12..16 | format version |
//! | 16..20 | page size |
//! | 20..28 | sequence number (grows by one per header write) |
//! | 28..36 | page count (high-water mark, including page 0) |
//! | 36..44 | free-list head (0 = empty) |
//! | 44..52 | free-list length |
//! | 52..60 | catalog tree root page |
//! | 60..68 | checkpoint LSN: where redo starts |
//! | 68..128| zero |

use std::path::Path;

use crate::error::{Result, StorageError};
use crate::page::{self, PageId, read_u32, read_u64, write_u32, write_u64};
use crate::wal::Lsn;

/// Identifies a NeuroQuantumDB data file.
pub const MAGIC: &[u8; 8] = b"NQDBFILE";
/// The on-disk format version this build writes. Version 6 changes no page: it marks files
/// whose SQL tables may hold bare row values (no slot count, see `nq_node::encoding`), which an
/// older build would misread. Version 5 stores the key prefix a leaf's keys share once,
/// instead of in every cell (see [`crate::node`]); version 4 added the compact MVCC write
/// record (see [`crate::mvcc::keys`]). An older build would open such a file and then misread
/// the pages or records written by this one, so the version moves and older builds refuse the
/// file at open instead.
pub const FORMAT_VERSION: u32 = 6;
/// The oldest format version this build reads. Every older version is a subset of version 6:
/// version 5 files hold only counted SQL rows, which version 6 still reads; version 4 nodes
/// have a stored prefix length of 0 (bytes 24..26 of a node are zero) and whole keys in their
/// cells, which version 5 still reads, and converts when it next rebuilds the node; version 3
/// files hold only legacy MVCC write records (9-byte header), which version 4 still reads;
/// version 2 files in addition never use a shared key prefix in B+ tree nodes (bytes 22..24 of
/// a node are zero), read as a prefix of length 0. The header is rewritten as the current
/// version at the next checkpoint.
pub const OLDEST_READABLE_VERSION: u32 = 2;
/// Page 0 holds the file header.
pub const META_PAGE: PageId = 0;
/// Byte offsets of the two header slots in page 0 (in different disk sectors).
pub const SLOT_OFFSETS: [usize; 2] = [0, 2048];
/// Bytes in one header slot.
pub const SLOT_LEN: usize = 128;
/// Bytes of the file needed to read both slots (every page size is at least this).
pub const META_PREFIX_LEN: usize = 4096;

const CHECKSUM_AT: usize = 0;
const MAGIC_AT: usize = 4;
const VERSION_AT: usize = 12;
const PAGE_SIZE_AT: usize = 16;
const SEQUENCE_AT: usize = 20;
const PAGE_COUNT_AT: usize = 28;
const FREE_HEAD_AT: usize = 36;
const FREE_LEN_AT: usize = 44;
const CATALOG_ROOT_AT: usize = 52;
const CHECKPOINT_AT: usize = 60;

/// The decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Size of every page in bytes.
    pub page_size: u32,
    /// Number of pages in use, including page 0 and free-list pages.
    pub page_count: u64,
    /// First page of the free list, 0 if the list is empty.
    pub free_head: PageId,
    /// Number of pages on the free list.
    pub free_len: u64,
    /// Root page of the catalog tree that maps tree names to their roots.
    pub catalog_root: PageId,
    /// Log position recovery replays from: every change logged before it is in the data file.
    pub checkpoint_lsn: Lsn,
    /// Header writes so far; the slot with the higher number is the current one.
    pub sequence: u64,
}

impl Meta {
    /// The slot this header is written to: slots alternate with the sequence number.
    pub fn slot_offset(&self) -> usize {
        SLOT_OFFSETS[(self.sequence % 2) as usize]
    }

    /// Encodes the header into one slot's bytes, checksum included.
    pub fn encode_slot(&self) -> [u8; SLOT_LEN] {
        let mut buf = [0u8; SLOT_LEN];
        buf[MAGIC_AT..MAGIC_AT + 8].copy_from_slice(MAGIC);
        write_u32(&mut buf, VERSION_AT, FORMAT_VERSION);
        write_u32(&mut buf, PAGE_SIZE_AT, self.page_size);
        write_u64(&mut buf, SEQUENCE_AT, self.sequence);
        write_u64(&mut buf, PAGE_COUNT_AT, self.page_count);
        write_u64(&mut buf, FREE_HEAD_AT, self.free_head);
        write_u64(&mut buf, FREE_LEN_AT, self.free_len);
        write_u64(&mut buf, CATALOG_ROOT_AT, self.catalog_root);
        write_u64(&mut buf, CHECKPOINT_AT, self.checkpoint_lsn);
        let crc = crc32c::crc32c(&buf[4..]);
        write_u32(&mut buf, CHECKSUM_AT, crc);
        buf
    }

    /// Decodes page 0 (at least [`META_PREFIX_LEN`] bytes): the valid slot with the higher
    /// sequence number. A file whose slots both fail is foreign (no magic anywhere), from
    /// another version, or damaged, and the error says which.
    pub fn decode(buf: &[u8], path: &Path) -> Result<Meta> {
        let incompatible = |reason: String| StorageError::IncompatibleFile {
            path: path.to_path_buf(),
            reason,
        };
        if buf.len() < META_PREFIX_LEN {
            return Err(incompatible("file is shorter than a file header".into()));
        }
        let mut best: Option<Meta> = None;
        let mut problems = Vec::new();
        for (i, &at) in SLOT_OFFSETS.iter().enumerate() {
            match decode_slot(&buf[at..at + SLOT_LEN]) {
                Ok(meta) => {
                    if best.is_none_or(|b| meta.sequence > b.sequence) {
                        best = Some(meta);
                    }
                }
                Err(problem) => problems.push((i, problem)),
            }
        }
        if let Some(meta) = best {
            return Ok(meta);
        }
        if problems
            .iter()
            .all(|(_, p)| matches!(p, SlotProblem::NoMagic))
        {
            return Err(incompatible("missing NQDBFILE magic number".into()));
        }
        if let Some((_, SlotProblem::Version(v))) = problems
            .iter()
            .find(|(_, p)| matches!(p, SlotProblem::Version(_)))
        {
            return Err(incompatible(format!(
                "format version {v}, this build reads versions {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}"
            )));
        }
        let reasons: Vec<String> = problems
            .iter()
            .map(|(i, p)| format!("slot {i}: {}", p.describe()))
            .collect();
        Err(StorageError::Corruption {
            path: path.to_path_buf(),
            page: Some(META_PAGE),
            reason: format!("no valid file header ({})", reasons.join("; ")),
        })
    }
}

enum SlotProblem {
    NoMagic,
    Version(u32),
    Checksum,
    Invalid(String),
}

impl SlotProblem {
    fn describe(&self) -> String {
        match self {
            SlotProblem::NoMagic => "no magic number".into(),
            SlotProblem::Version(v) => format!("format version {v}"),
            SlotProblem::Checksum => "checksum mismatch".into(),
            SlotProblem::Invalid(reason) => reason.clone(),
        }
    }
}

fn decode_slot(slot: &[u8]) -> std::result::Result<Meta, SlotProblem> {
    if &slot[MAGIC_AT..MAGIC_AT + 8] != MAGIC {
        return Err(SlotProblem::NoMagic);
    }
    if read_u32(slot, CHECKSUM_AT) != crc32c::crc32c(&slot[4..]) {
        return Err(SlotProblem::Checksum);
    }
    let version = read_u32(slot, VERSION_AT);
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(SlotProblem::Version(version));
    }
    let meta = Meta {
        page_size: read_u32(slot, PAGE_SIZE_AT),
        sequence: read_u64(slot, SEQUENCE_AT),
        page_count: read_u64(slot, PAGE_COUNT_AT),
        free_head: read_u64(slot, FREE_HEAD_AT),
        free_len: read_u64(slot, FREE_LEN_AT),
        catalog_root: read_u64(slot, CATALOG_ROOT_AT),
        checkpoint_lsn: read_u64(slot, CHECKPOINT_AT),
    };
    let invalid = |r: String| Err(SlotProblem::Invalid(r));
    if !page::is_supported_page_size(meta.page_size as usize) {
        return invalid(format!("unsupported page size {}", meta.page_size));
    }
    if meta.page_count < 2 {
        return invalid(format!("page count {} is below 2", meta.page_count));
    }
    if meta.catalog_root == META_PAGE || meta.catalog_root >= meta.page_count {
        return invalid(format!("catalog root {} out of range", meta.catalog_root));
    }
    if meta.free_head >= meta.page_count || meta.free_len >= meta.page_count {
        return invalid("free list head or length out of range".into());
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(sequence: u64) -> Meta {
        Meta {
            page_size: 4096,
            page_count: 10 + sequence,
            free_head: 0,
            free_len: 0,
            catalog_root: 1,
            checkpoint_lsn: 100 * sequence,
            sequence,
        }
    }

    fn page_with(metas: &[Meta]) -> Vec<u8> {
        let mut page = vec![0u8; 4096];
        for m in metas {
            let at = m.slot_offset();
            page[at..at + SLOT_LEN].copy_from_slice(&m.encode_slot());
        }
        page
    }

    #[test]
    fn test_newer_slot_wins_and_a_torn_slot_falls_back_to_the_other() {
        let page = page_with(&[meta(6), meta(7)]);
        assert_eq!(Meta::decode(&page, Path::new("f")).unwrap(), meta(7));
        let mut torn = page.clone();
        let at = meta(7).slot_offset();
        torn[at + 30] ^= 0x40;
        assert_eq!(Meta::decode(&torn, Path::new("f")).unwrap(), meta(6));
        // Both damaged: corruption naming both slots.
        let other = meta(6).slot_offset();
        torn[other + 70] ^= 1;
        let err = Meta::decode(&torn, Path::new("f")).unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert!(err.to_string().contains("slot 0"), "{err}");
    }

    #[test]
    fn test_foreign_and_old_files_are_incompatible() {
        let err = Meta::decode(&vec![7u8; 4096], Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("magic"), "{err}");
        let mut page = page_with(&[meta(1)]);
        let at = meta(1).slot_offset();
        write_u32(&mut page[at..], VERSION_AT, 1);
        let crc = crc32c::crc32c(&page[at + 4..at + SLOT_LEN]);
        write_u32(&mut page[at..], CHECKSUM_AT, crc);
        let err = Meta::decode(&page, Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("version 1"), "{err}");
    }
}
