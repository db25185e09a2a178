//! Page-level services shared by every tree in a file: node access with validation, page
//! allocation over a persistent free list, and overflow chains for large values.
//!
//! # Free list
//!
//! Freed pages form a singly linked list through their bodies: a free page has type `Free`
//! and the next free page's id at bytes 32..40. The head and length live in the file header.
//! Allocation pops the head or, when the list is empty, takes the next page past the
//! high-water mark (the file itself grows in extents, see the pager).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::bufferpool::{BufferPool, PageMut, PageRef};
use crate::error::{Result, StorageError};
use crate::meta::Meta;
use crate::node::{self, Limits, Malformed};
use crate::page::{self, PageId, PageType, read_u32, read_u64, write_u32, write_u64};

const FREE_NEXT_AT: usize = 32;
const OVERFLOW_NEXT_AT: usize = 32;
const OVERFLOW_LEN_AT: usize = 40;
const OVERFLOW_DATA_AT: usize = 44;

/// Allocation state mirrored into the file header on flush.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AllocState {
    pub page_count: u64,
    pub free_head: PageId,
    pub free_len: u64,
}

/// Everything tree operations need from the file.
#[derive(Debug)]
pub(crate) struct Store {
    pub pool: Arc<BufferPool>,
    pub limits: Limits,
    pub catalog_root: PageId,
    alloc: Mutex<AllocState>,
    /// Copy of `alloc.page_count` readable without the mutex, for pointer checks on every read.
    page_count: AtomicU64,
    path: PathBuf,
}

impl Store {
    pub fn new(pool: Arc<BufferPool>, meta: &Meta) -> Store {
        let path = pool.pager().path().to_path_buf();
        Store {
            limits: Limits::new(pool.page_size()),
            catalog_root: meta.catalog_root,
            alloc: Mutex::new(AllocState {
                page_count: meta.page_count,
                free_head: meta.free_head,
                free_len: meta.free_len,
            }),
            page_count: AtomicU64::new(meta.page_count),
            pool,
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn corruption(&self, page: PageId, reason: impl Into<String>) -> StorageError {
        StorageError::Corruption {
            path: self.path.clone(),
            page: Some(page),
            reason: reason.into(),
        }
    }

    pub fn malformed(&self, page: PageId) -> impl Fn(Malformed) -> StorageError + '_ {
        move |m| self.corruption(page, m.0)
    }

    /// Current allocation state (for the header and the integrity checker).
    pub fn alloc_state(&self) -> AllocState {
        *self.alloc.lock()
    }

    /// The header as it should be written now.
    pub fn meta(&self) -> Meta {
        let a = self.alloc_state();
        Meta {
            page_size: self.limits.page_size as u32,
            page_count: a.page_count,
            free_head: a.free_head,
            free_len: a.free_len,
            catalog_root: self.catalog_root,
        }
    }

    fn check_node(&self, buf: &[u8], id: PageId, level: Option<u16>) -> Result<()> {
        let kind = page::page_type_byte(buf);
        if kind != PageType::Leaf as u8 && kind != PageType::Internal as u8 {
            return Err(
                self.corruption(id, format!("expected a tree node, found page type {kind}"))
            );
        }
        node::validate_header(buf).map_err(self.malformed(id))?;
        if let Some(expected) = level
            && node::level(buf) != expected
        {
            return Err(self.corruption(
                id,
                format!(
                    "node level {} where {expected} was expected",
                    node::level(buf)
                ),
            ));
        }
        Ok(())
    }

    /// Checks that an already latched page is a leaf.
    pub fn check_leaf(&self, buf: &[u8], id: PageId) -> Result<()> {
        self.check_node(buf, id, Some(0))
    }

    /// Latches a tree node for reading and checks it is one.
    pub fn read_node(&self, id: PageId, level: Option<u16>) -> Result<PageRef<'_>> {
        self.check_page_id(id)?;
        let page = self.pool.read(id)?;
        self.check_node(&page, id, level)?;
        Ok(page)
    }

    /// Latches a tree node for writing and checks it is one.
    pub fn write_node(&self, id: PageId, level: Option<u16>) -> Result<PageMut<'_>> {
        self.check_page_id(id)?;
        let page = self.pool.write(id)?;
        self.check_node(&page, id, level)?;
        Ok(page)
    }

    /// Rejects page pointers outside the file (0 is the header, never a tree page).
    pub fn check_page_id(&self, id: PageId) -> Result<()> {
        let count = self.page_count.load(Ordering::Acquire);
        if id == 0 || id >= count {
            return Err(self.corruption(id, format!("page pointer outside file ({count} pages)")));
        }
        Ok(())
    }

    /// Allocates a page and returns it write-latched and zeroed, with its header written.
    pub fn allocate(&self, page_type: PageType) -> Result<PageMut<'_>> {
        let mut alloc = self.alloc.lock();
        let mut page = if alloc.free_head != 0 {
            let id = alloc.free_head;
            let page = self.latch_free_page(id)?;
            if page::page_type_byte(&page) != PageType::Free as u8 {
                return Err(self.corruption(id, "free-list entry is not a free page"));
            }
            let next = read_u64(&page, FREE_NEXT_AT);
            if next >= alloc.page_count {
                return Err(self.corruption(id, format!("free-list link {next} outside file")));
            }
            alloc.free_head = next;
            alloc.free_len = alloc.free_len.saturating_sub(1);
            page
        } else {
            let id = alloc.page_count;
            self.pool.pager().ensure_capacity(id + 1)?;
            let page = self.pool.create(id)?;
            alloc.page_count += 1;
            self.page_count.store(alloc.page_count, Ordering::Release);
            page
        };
        let id = page.id();
        page::init(&mut page, id, page_type);
        Ok(page)
    }

    /// Latches the free-list head. Nobody but the allocator (which holds its mutex) uses free
    /// pages, apart from the flusher's brief read latch while writing one back; a latch held any
    /// longer means a tree still points at the page, and waiting could mean waiting on oneself.
    fn latch_free_page(&self, id: PageId) -> Result<PageMut<'_>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            if let Some(page) = self.pool.try_write(id)? {
                return Ok(page);
            }
            if std::time::Instant::now() > deadline {
                return Err(self.corruption(id, "free-list entry is in use by a tree"));
            }
            std::thread::yield_now();
        }
    }

    /// Puts a page on the free list. The caller must hold no latch on it and it must be
    /// unreachable from every tree.
    pub fn free(&self, id: PageId) -> Result<()> {
        let mut alloc = self.alloc.lock();
        let mut page = self.pool.create(id)?;
        page::init(&mut page, id, PageType::Free);
        write_u64(&mut page, FREE_NEXT_AT, alloc.free_head);
        alloc.free_head = id;
        alloc.free_len += 1;
        Ok(())
    }

    /// Frees pages collected during an operation, after all its latches are released.
    pub fn free_all(&self, ids: &[PageId]) -> Result<()> {
        ids.iter().try_for_each(|&id| self.free(id))
    }

    /// Walks the free list, returning its pages (for the integrity checker).
    pub fn free_list(&self) -> Result<Vec<PageId>> {
        let state = self.alloc_state();
        let mut pages = Vec::new();
        let mut next = state.free_head;
        while next != 0 {
            if pages.len() as u64 >= state.free_len || next >= state.page_count {
                return Err(self.corruption(next, "free list longer than recorded or out of range"));
            }
            let page = self.pool.read(next)?;
            if page::page_type_byte(&page) != PageType::Free as u8 {
                return Err(self.corruption(next, "free-list entry is not a free page"));
            }
            pages.push(next);
            next = read_u64(&page, FREE_NEXT_AT);
        }
        if pages.len() as u64 != state.free_len {
            return Err(StorageError::Integrity(format!(
                "free list holds {} pages, header records {}",
                pages.len(),
                state.free_len
            )));
        }
        Ok(pages)
    }

    fn overflow_capacity(&self) -> usize {
        self.limits.page_size - OVERFLOW_DATA_AT
    }

    /// Writes `value` to a new chain of overflow pages and returns the first page.
    pub fn write_overflow(&self, value: &[u8]) -> Result<PageId> {
        let chunks: Vec<&[u8]> = value.chunks(self.overflow_capacity()).collect();
        let mut ids = Vec::with_capacity(chunks.len());
        let written = (|| {
            for _ in &chunks {
                // Latches are released at once: nothing else can reach these pages yet, and
                // holding them all could pin the whole pool for a large value.
                ids.push(self.allocate(PageType::Overflow)?.id());
            }
            for (i, chunk) in chunks.iter().enumerate() {
                let mut page = self.pool.write(ids[i])?;
                let next = ids.get(i + 1).copied().unwrap_or(0);
                write_u64(&mut page, OVERFLOW_NEXT_AT, next);
                write_u32(&mut page, OVERFLOW_LEN_AT, chunk.len() as u32);
                page[OVERFLOW_DATA_AT..OVERFLOW_DATA_AT + chunk.len()].copy_from_slice(chunk);
            }
            Ok(())
        })();
        match written {
            Ok(()) => Ok(ids[0]),
            Err(err) => {
                // Best effort: give the pages back; the original error is what matters.
                let _ = self.free_all(&ids);
                Err(err)
            }
        }
    }

    /// Follows an overflow chain; with `into`, appends its bytes. Returns the chain's pages.
    pub fn walk_overflow(
        &self,
        first: PageId,
        len: u64,
        mut into: Option<&mut Vec<u8>>,
    ) -> Result<Vec<PageId>> {
        let cap = self.overflow_capacity() as u64;
        let expected_pages = len.div_ceil(cap).max(1);
        let mut pages = Vec::with_capacity(expected_pages as usize);
        let mut remaining = len;
        let mut next = first;
        while next != 0 {
            if pages.len() as u64 >= expected_pages {
                return Err(self.corruption(next, "overflow chain longer than its value"));
            }
            self.check_page_id(next)?;
            let page = self.pool.read(next)?;
            if page::page_type_byte(&page) != PageType::Overflow as u8 {
                return Err(self.corruption(next, "expected an overflow page"));
            }
            let used = read_u32(&page, OVERFLOW_LEN_AT) as u64;
            if used > cap || used > remaining || (used < cap && used != remaining) {
                return Err(self.corruption(next, format!("overflow page holds {used} bytes")));
            }
            if let Some(out) = into.as_deref_mut() {
                out.extend_from_slice(&page[OVERFLOW_DATA_AT..OVERFLOW_DATA_AT + used as usize]);
            }
            remaining -= used;
            pages.push(next);
            next = read_u64(&page, OVERFLOW_NEXT_AT);
        }
        if remaining != 0 {
            return Err(self.corruption(first, "overflow chain shorter than its value"));
        }
        Ok(pages)
    }

    /// Reads a whole value, inline or from its overflow chain.
    pub fn materialize(&self, value: node::ValueRef<'_>) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.materialize_into(value, &mut out)?;
        Ok(out)
    }

    /// Appends a whole value, inline or from its overflow chain, to `out`.
    pub fn materialize_into(&self, value: node::ValueRef<'_>, out: &mut Vec<u8>) -> Result<()> {
        match value {
            node::ValueRef::Inline(bytes) => out.extend_from_slice(bytes),
            node::ValueRef::Overflow { first, len } => {
                out.reserve(len as usize);
                self.walk_overflow(first, len, Some(out))?;
            }
        }
        Ok(())
    }

    /// Writes all dirty pages, then the header, then syncs.
    pub fn flush(&self) -> Result<()> {
        self.pool.flush_all()?;
        self.pool.pager().write_meta(&self.meta())?;
        self.pool.pager().sync()
    }
}
