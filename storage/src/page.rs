//! The common page header and its checksum.
//!
//! Every page of the data file starts with the same 32-byte header (see `docs/storage-format.md`):
//!
//! | bytes  | field      | meaning                                            |
//! |--------|------------|----------------------------------------------------|
//! | 0..4   | checksum   | CRC32C of bytes 4..page_size, little endian        |
//! | 4..12  | page id    | the page's own number, catches misdirected writes  |
//! | 12..20 | lsn        | log sequence number of the last change (WAL)       |
//! | 20     | page type  | [`PageType`]                                       |
//! | 21     | node flags | B+ tree nodes: slot layout (`node`)                 |
//! | 22..24 | prefix len | B+ tree nodes: key bytes all cells share (`node`)  |
//! | 24..26 | stored len | B+ tree leaves: shared key bytes kept once (`node`) |
//! | 26..32 | reserved   | zero                                               |
//!
//! The checksum is computed when a page is written back and verified on every read from disk,
//! so a flipped bit, a zeroed page or a page written to the wrong offset is reported as
//! corruption rather than returned to a caller.

use std::path::Path;

use crate::error::{Result, StorageError};

/// Number of a page in the data file; page `n` starts at byte `n * page_size`.
pub type PageId = u64;

/// Size of the common page header in bytes.
pub const PAGE_HEADER_LEN: usize = 32;

/// Page sizes a data file may be created with.
pub const SUPPORTED_PAGE_SIZES: [usize; 4] = [4096, 8192, 16384, 32768];

const CHECKSUM: std::ops::Range<usize> = 0..4;
const PAGE_ID: std::ops::Range<usize> = 4..12;
const LSN: std::ops::Range<usize> = 12..20;
const PAGE_TYPE: usize = 20;

/// What a page holds. Stored as one byte; zero is deliberately not a valid type so that a
/// zero-filled page can never pass as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PageType {
    /// Page 0: the file header.
    Meta = 1,
    /// A page on the free list.
    Free = 2,
    /// A B+ tree leaf node.
    Leaf = 3,
    /// A B+ tree internal node.
    Internal = 4,
    /// Part of a value too large to store inline in a leaf.
    Overflow = 5,
}

impl PageType {
    /// Decodes the type byte.
    pub fn from_byte(byte: u8) -> Option<PageType> {
        Some(match byte {
            1 => PageType::Meta,
            2 => PageType::Free,
            3 => PageType::Leaf,
            4 => PageType::Internal,
            5 => PageType::Overflow,
            _ => return None,
        })
    }
}

/// Returns true if `size` is a supported page size.
pub fn is_supported_page_size(size: usize) -> bool {
    SUPPORTED_PAGE_SIZES.contains(&size)
}

pub(crate) fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4-byte slice"))
}

pub(crate) fn read_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8-byte slice"))
}

pub(crate) fn write_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn write_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn write_u64(buf: &mut [u8], at: usize, value: u64) {
    buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// The page id recorded in a page's header.
pub fn page_id(page: &[u8]) -> PageId {
    read_u64(page, PAGE_ID.start)
}

/// The log sequence number recorded in a page's header.
pub fn lsn(page: &[u8]) -> u64 {
    read_u64(page, LSN.start)
}

/// The raw page-type byte.
pub fn page_type_byte(page: &[u8]) -> u8 {
    page[PAGE_TYPE]
}

/// Writes a fresh header (checksum left zero until [`seal`]) and zeroes the rest of the page.
pub fn init(page: &mut [u8], id: PageId, page_type: PageType) {
    page.fill(0);
    write_u64(page, PAGE_ID.start, id);
    page[PAGE_TYPE] = page_type as u8;
}

/// Sets the page type without touching the rest of the page.
pub fn set_page_type(page: &mut [u8], page_type: PageType) {
    page[PAGE_TYPE] = page_type as u8;
}

/// Sets the page's log sequence number.
pub fn set_lsn(page: &mut [u8], lsn: u64) {
    write_u64(page, LSN.start, lsn);
}

fn compute_checksum(page: &[u8]) -> u32 {
    crc32c::crc32c(&page[CHECKSUM.end..])
}

/// Computes and stores the checksum; called right before a page is written to disk.
pub fn seal(page: &mut [u8]) {
    let sum = compute_checksum(page);
    write_u32(page, CHECKSUM.start, sum);
}

/// Verifies a page read from disk: the checksum matches, the header names the page that was
/// asked for, and the type byte is known. Returns the page type.
pub fn verify(page: &[u8], expected: PageId, path: &Path) -> Result<PageType> {
    let corruption = |reason: String| StorageError::Corruption {
        path: path.to_path_buf(),
        page: Some(expected),
        reason,
    };
    if page.len() < PAGE_HEADER_LEN {
        return Err(corruption(format!("page is only {} bytes", page.len())));
    }
    let stored = read_u32(page, CHECKSUM.start);
    let actual = compute_checksum(page);
    if stored != actual {
        return Err(corruption(format!(
            "checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        )));
    }
    let recorded = page_id(page);
    if recorded != expected {
        return Err(corruption(format!(
            "page header names page {recorded} (misdirected write)"
        )));
    }
    PageType::from_byte(page[PAGE_TYPE])
        .ok_or_else(|| corruption(format!("unknown page type {}", page[PAGE_TYPE])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_seal_then_verify_round_trips() {
        let mut page = vec![0u8; 4096];
        init(&mut page, 7, PageType::Leaf);
        page[100] = 42;
        seal(&mut page);
        assert_eq!(verify(&page, 7, Path::new("f")).unwrap(), PageType::Leaf);
    }

    #[test]
    fn test_every_single_bit_flip_is_detected() {
        let mut page = vec![0u8; 4096];
        init(&mut page, 3, PageType::Internal);
        page[500] = 9;
        seal(&mut page);
        for byte in [0usize, 3, 4, 20, 33, 500, 4095] {
            for bit in 0..8 {
                let mut damaged = page.clone();
                damaged[byte] ^= 1 << bit;
                let err = verify(&damaged, 3, Path::new("f")).unwrap_err();
                assert!(err.is_corruption(), "byte {byte} bit {bit}: {err}");
            }
        }
    }

    #[test]
    fn test_zero_page_and_wrong_id_are_corruption() {
        let zero = vec![0u8; 4096];
        assert!(
            verify(&zero, 1, Path::new("f"))
                .unwrap_err()
                .is_corruption()
        );
        let mut page = vec![0u8; 4096];
        init(&mut page, 5, PageType::Leaf);
        seal(&mut page);
        let err = verify(&page, 6, Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("misdirected"), "{err}");
    }
}
