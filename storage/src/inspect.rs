//! Decoding a single page from raw bytes, without a database around it.
//!
//! This is the entry point of the page-decoding fuzz target (`fuzz/`) and of tools that look
//! at a damaged file: whatever the bytes, it returns a description or an error, never panics.

use std::path::Path;

use crate::error::{Result, StorageError};
use crate::meta::Meta;
use crate::node::{self, ValueRef};
use crate::page::{self, PageId, PageType};

/// What a page holds, as far as its bytes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageSummary {
    /// The file header.
    Meta(Meta),
    /// A free-list page.
    Free,
    /// A B+ tree node with its level and keys.
    Node {
        /// 0 for leaves.
        level: u16,
        /// Keys in order.
        keys: Vec<Vec<u8>>,
        /// Total bytes of values stored inline (leaves).
        inline_value_bytes: u64,
    },
    /// An overflow page.
    Overflow,
}

/// Verifies and decodes `bytes` as page `id` of a file with `bytes.len()` page size.
pub fn inspect_page(bytes: &[u8], id: PageId) -> Result<PageSummary> {
    check_size(bytes, id)?;
    if id == crate::meta::META_PAGE {
        // Page 0 carries two checksummed header slots instead of a page checksum.
        return Meta::decode(bytes, Path::new("<page>")).map(PageSummary::Meta);
    }
    let kind = page::verify(bytes, id, Path::new("<page>"))?;
    decode_verified(bytes, id, kind)
}

/// Decodes page content whose checksum is already trusted (or deliberately ignored, as the
/// fuzzer does to reach the node parser).
pub fn decode_verified(bytes: &[u8], id: PageId, kind: PageType) -> Result<PageSummary> {
    check_size(bytes, id)?;
    let path = Path::new("<page>");
    let malformed = |m: node::Malformed| StorageError::Corruption {
        path: path.into(),
        page: Some(id),
        reason: m.0.into(),
    };
    match kind {
        PageType::Meta => Meta::decode(bytes, path).map(PageSummary::Meta),
        PageType::Free => Ok(PageSummary::Free),
        PageType::Overflow => Ok(PageSummary::Overflow),
        PageType::Leaf | PageType::Internal => {
            node::validate_header(bytes).map_err(malformed)?;
            node::verify_heads(bytes).map_err(malformed)?;
            let mut keys = Vec::new();
            let mut inline_value_bytes = 0u64;
            for i in 0..node::nkeys(bytes) {
                if node::is_leaf(bytes) {
                    let (key, value) = node::leaf_entry(bytes, i).map_err(malformed)?;
                    if let ValueRef::Inline(v) = value {
                        inline_value_bytes += v.len() as u64;
                    }
                    keys.push(key.to_vec());
                } else {
                    node::child(bytes, i + 1).map_err(malformed)?;
                    keys.push(node::key(bytes, i).map_err(malformed)?.to_vec());
                }
            }
            Ok(PageSummary::Node {
                level: node::level(bytes),
                keys,
                inline_value_bytes,
            })
        }
    }
}

fn check_size(bytes: &[u8], id: PageId) -> Result<()> {
    if page::is_supported_page_size(bytes.len()) {
        return Ok(());
    }
    Err(StorageError::Corruption {
        path: Path::new("<page>").into(),
        page: Some(id),
        reason: format!("{} bytes is not a page size", bytes.len()),
    })
}
