//! The file header kept in page 0.
//!
//! Layout after the common 32-byte page header (all integers little endian):
//!
//! | bytes  | field          |
//! |--------|----------------|
//! | 32..40 | magic `NQDBFILE` |
//! | 40..44 | format version |
//! | 44..48 | page size      |
//! | 48..56 | page count (high-water mark, including page 0) |
//! | 56..64 | free-list head (0 = empty) |
//! | 64..72 | free-list length |
//! | 72..80 | catalog tree root page |

use std::path::Path;

use crate::error::{Result, StorageError};
use crate::page::{self, PageId, PageType, read_u32, read_u64, write_u32, write_u64};

/// Identifies a NeuroQuantumDB data file.
pub const MAGIC: &[u8; 8] = b"NQDBFILE";
/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Page 0 holds the file header.
pub const META_PAGE: PageId = 0;

const MAGIC_AT: usize = 32;
const VERSION_AT: usize = 40;
const PAGE_SIZE_AT: usize = 44;
const PAGE_COUNT_AT: usize = 48;
const FREE_HEAD_AT: usize = 56;
const FREE_LEN_AT: usize = 64;
const CATALOG_ROOT_AT: usize = 72;
/// Bytes of page 0 needed to learn the page size before the whole page can be read.
pub const META_PREFIX_LEN: usize = 48;

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
}

impl Meta {
    /// Encodes the header into a full page buffer (checksum not yet sealed).
    pub fn encode(&self, buf: &mut [u8]) {
        page::init(buf, META_PAGE, PageType::Meta);
        buf[MAGIC_AT..MAGIC_AT + 8].copy_from_slice(MAGIC);
        write_u32(buf, VERSION_AT, FORMAT_VERSION);
        write_u32(buf, PAGE_SIZE_AT, self.page_size);
        write_u64(buf, PAGE_COUNT_AT, self.page_count);
        write_u64(buf, FREE_HEAD_AT, self.free_head);
        write_u64(buf, FREE_LEN_AT, self.free_len);
        write_u64(buf, CATALOG_ROOT_AT, self.catalog_root);
    }

    /// Reads the page size out of the first [`META_PREFIX_LEN`] bytes of a file, checking the
    /// magic number and version so a foreign file is rejected before anything else is read.
    pub fn peek_page_size(prefix: &[u8], path: &Path) -> Result<usize> {
        let incompatible = |reason: String| StorageError::IncompatibleFile {
            path: path.to_path_buf(),
            reason,
        };
        if prefix.len() < META_PREFIX_LEN {
            return Err(incompatible("file is shorter than a file header".into()));
        }
        if &prefix[MAGIC_AT..MAGIC_AT + 8] != MAGIC {
            return Err(incompatible("missing NQDBFILE magic number".into()));
        }
        let version = read_u32(prefix, VERSION_AT);
        if version != FORMAT_VERSION {
            return Err(incompatible(format!(
                "format version {version}, this build reads version {FORMAT_VERSION}"
            )));
        }
        let page_size = read_u32(prefix, PAGE_SIZE_AT) as usize;
        if !page::is_supported_page_size(page_size) {
            return Err(StorageError::Corruption {
                path: path.to_path_buf(),
                page: Some(META_PAGE),
                reason: format!("unsupported page size {page_size} in file header"),
            });
        }
        Ok(page_size)
    }

    /// Decodes a verified page 0.
    pub fn decode(buf: &[u8], path: &Path) -> Result<Meta> {
        let page_size = Meta::peek_page_size(buf, path)? as u32;
        let meta = Meta {
            page_size,
            page_count: read_u64(buf, PAGE_COUNT_AT),
            free_head: read_u64(buf, FREE_HEAD_AT),
            free_len: read_u64(buf, FREE_LEN_AT),
            catalog_root: read_u64(buf, CATALOG_ROOT_AT),
        };
        let corrupt = |reason: String| StorageError::Corruption {
            path: path.to_path_buf(),
            page: Some(META_PAGE),
            reason,
        };
        if meta.page_count < 2 {
            return Err(corrupt(format!(
                "page count {} is below 2",
                meta.page_count
            )));
        }
        if meta.catalog_root == META_PAGE || meta.catalog_root >= meta.page_count {
            return Err(corrupt(format!(
                "catalog root {} out of range",
                meta.catalog_root
            )));
        }
        if meta.free_head >= meta.page_count || meta.free_len >= meta.page_count {
            return Err(corrupt("free list head or length out of range".into()));
        }
        Ok(meta)
    }
}
