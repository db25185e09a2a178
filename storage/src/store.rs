//! Page-level services shared by every tree in a file: node access with validation, page
//! allocation over a persistent free list, and overflow chains for large values.
//!
//! # Free list
//!
//! Free pages are listed in *trunk* pages (type `Free`): bytes 32..40 link to the next trunk,
//! 40..44 count the ids that follow from byte 44. The file header records the first trunk and
//! the number of free pages (trunks included). Freeing appends to the head trunk, so freeing a
//! thousand pages changes two or three pages, not a thousand; a listed page's own bytes are
//! never read. Allocation pops the head trunk's last id, hands out an empty trunk itself, or,
//! when the list is empty, takes the next page past the high-water mark (the file grows in
//! extents, see the pager).
//!
//! # Mini-transactions, checkpoints and redo
//!
//! Every change runs inside [`Store::atomic`]: one store-wide reentrant lock serialises them, so
//! log records come in exactly the order the changes were made, allocator state included, and
//! the record's allocator fields are always consistent with its pages. Readers never take it.
//! A failed mini-transaction puts back every page it touched and the allocator state.
//!
//! A checkpoint notes the log position and allocator state at a mini-transaction boundary,
//! writes every dirty page, syncs, and stores both in the file header; recovery replays the log
//! from there ([`Store::recover`]).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, ReentrantMutex, ReentrantMutexGuard};
use rustc_hash::FxHashSet;

use crate::bufferpool::{BufferPool, PageMut, PageRef};
use crate::error::{Result, StorageError};
use crate::meta::Meta;
use crate::mtr::{self, KIND_NEW_PAGES, KIND_PAGES};
use crate::node::{self, Limits, Malformed};
use crate::page::{self, PageId, PageType, read_u32, read_u64, write_u32, write_u64};
use crate::wal::{Lsn, Wal};

const TRUNK_NEXT_AT: usize = 32;
const TRUNK_COUNT_AT: usize = 40;
const TRUNK_IDS_AT: usize = 44;
const OVERFLOW_NEXT_AT: usize = 32;
const OVERFLOW_LEN_AT: usize = 40;
const OVERFLOW_DATA_AT: usize = 44;
/// Cache lines of a node [`Store::prefetch_nodes`] hints: the header and the slots of a
/// leaf of up to 44 cells (a 4 KiB leaf of ~90-byte entries), which binary search reads.
const NODE_PREFETCH_LINES: usize = 5;

/// Allocation state mirrored into the file header on flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub wal: Arc<Wal>,
    /// Serialises mini-transactions; the cell counts nesting on the owning thread.
    mtr_lock: ReentrantMutex<Cell<u32>>,
    /// Serialises checkpoints.
    checkpoint_lock: Mutex<()>,
    /// Pages allocated and freed by the running mini-transaction.
    mtr_sets: Mutex<MtrSets>,
    pub checkpoints: CheckpointStats,
}

/// Pages the running mini-transaction took from outside every structure (safe to write back
/// before it ends) and pages it freed (live before it, so never safe).
#[derive(Debug, Default)]
struct MtrSets {
    spillable: FxHashSet<PageId>,
    freed: FxHashSet<PageId>,
    /// Unlogged pages at which the next spill is tried.
    next_spill: usize,
}

/// Counters of checkpoints, for metrics.
#[derive(Debug, Default)]
pub(crate) struct CheckpointStats {
    pub count: AtomicU64,
    pub nanos: AtomicU64,
    pub last_lsn: AtomicU64,
}

/// What recovery did when the database was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Log position replay started from (the last checkpoint).
    pub from_lsn: Lsn,
    /// Log position replay ended at.
    pub to_lsn: Lsn,
    /// Records replayed.
    pub records: u64,
    /// Page changes applied (entries skipped because the page was newer are not counted).
    pub pages_applied: u64,
    /// Page changes skipped because the page on disk already had them.
    pub pages_skipped: u64,
    /// Wall time of the replay.
    pub duration: Duration,
}

impl Store {
    pub fn new(pool: Arc<BufferPool>, meta: &Meta, wal: Arc<Wal>) -> Store {
        let path = pool.pager().path().to_path_buf();
        Store {
            wal,
            mtr_lock: ReentrantMutex::new(Cell::new(0)),
            checkpoint_lock: Mutex::new(()),
            mtr_sets: Mutex::new(MtrSets::default()),
            checkpoints: CheckpointStats::default(),
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

    fn set_alloc_state(&self, state: AllocState) {
        *self.alloc.lock() = state;
        self.page_count.store(state.page_count, Ordering::Release);
    }

    /// The header for a checkpoint at `checkpoint_lsn` with allocator state `a`.
    fn meta(&self, a: AllocState, checkpoint_lsn: Lsn) -> Meta {
        Meta {
            page_size: self.limits.page_size as u32,
            page_count: a.page_count,
            free_head: a.free_head,
            free_len: a.free_len,
            catalog_root: self.catalog_root,
            checkpoint_lsn,
            sequence: 0,
        }
    }

    /// Runs `f` as one mini-transaction: all its page changes are logged in one record, or, if
    /// it fails, undone. Nested calls on the same thread join the outermost one. Returns the
    /// record's end position (`None` when nested or when nothing changed).
    pub fn atomic<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<(T, Option<Lsn>)> {
        let guard = self.mtr_lock.lock();
        let depth = guard.get();
        guard.set(depth + 1);
        let before = (depth == 0).then(|| self.alloc_state());
        if before.is_some() {
            let mut sets = self.mtr_sets.lock();
            sets.spillable.clear();
            sets.freed.clear();
            sets.next_spill = 0;
        }
        let result = f();
        guard.set(depth);
        let Some(before) = before else {
            return result.map(|v| (v, None));
        };
        match result {
            Ok(value) => match self.pool.commit_mtr(self.alloc_state()) {
                Ok(lsn) => Ok((value, lsn)),
                Err(err) => {
                    self.set_alloc_state(before);
                    Err(err)
                }
            },
            Err(err) => {
                self.pool.rollback_mtr();
                self.set_alloc_state(before);
                Err(err)
            }
        }
    }

    /// Holds off every mini-transaction while the guard lives (the integrity checker).
    pub fn atomic_guard(&self) -> ReentrantMutexGuard<'_, Cell<u32>> {
        self.mtr_lock.lock()
    }

    /// Called by long mini-transactions between steps: once they hold many unlogged pages,
    /// the new ones are logged early so the pool can write them back (see
    /// `BufferPool::spill_new_pages`). The caller holds no latch it still needs to modify.
    pub fn spill_if_large(&self) -> Result<()> {
        let frames = self.pool.stats().capacity_frames as usize;
        let step = (frames / 4).clamp(8, 512);
        let pages = self.pool.mtr_pages();
        let mut sets = self.mtr_sets.lock();
        if pages >= step.max(sets.next_spill) {
            self.pool.spill_pages(&sets.spillable)?;
            // Pages that could not be spilled stay; look again only after `step` more, so a
            // long batch of changes to existing pages does not rescan them on every write.
            sets.next_spill = self.pool.mtr_pages() + step;
        }
        Ok(())
    }

    /// Makes the log durable up to `lsn` under the configured sync policy.
    pub fn commit_durable(&self, lsn: Option<Lsn>) -> Result<()> {
        match lsn {
            Some(lsn) => self.wal.flush(lsn),
            None => Ok(()),
        }
    }

    /// Fuzzy checkpoint: notes the log position and allocator state between two
    /// mini-transactions, writes every dirty page (writers keep running; pages they change are
    /// written once logged), syncs the file, records the position in the file header, and
    /// removes log segments wholly before it. Returns the position.
    pub fn checkpoint(&self) -> Result<Lsn> {
        let _one = self.checkpoint_lock.lock();
        let began = Instant::now();
        let (redo, alloc) = {
            let guard = self.mtr_lock.lock();
            if guard.get() > 0 {
                return Err(StorageError::InvalidConfig(
                    "a checkpoint cannot run inside an atomic batch".into(),
                ));
            }
            let redo = self.wal.next_lsn();
            // From here on, a page's first change is logged in full.
            self.pool.set_full_image_below(redo);
            (redo, self.alloc_state())
        };
        self.pool.flush_all()?;
        let pager = self.pool.pager();
        pager.write_meta(&self.meta(alloc, redo))?;
        pager.sync()?;
        self.wal.remove_before(redo)?;
        let c = &self.checkpoints;
        c.count.fetch_add(1, Ordering::Relaxed);
        c.nanos
            .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        c.last_lsn.store(redo, Ordering::Relaxed);
        Ok(redo)
    }

    /// Log bytes written since the last checkpoint started.
    pub fn log_since_checkpoint(&self) -> u64 {
        self.wal
            .next_lsn()
            .saturating_sub(self.checkpoints.last_lsn.load(Ordering::Relaxed))
    }

    /// Redo: replays every mini-transaction record from `from` into the pages. A change is
    /// applied only to a page whose LSN is older than the record (so replay is idempotent); a
    /// full image is applied without reading the page, which may be torn. Capture must be off.
    pub fn recover(&self, from: Lsn) -> Result<RecoveryReport> {
        let began = Instant::now();
        let mut report = RecoveryReport {
            from_lsn: from,
            to_lsn: from,
            ..RecoveryReport::default()
        };
        self.checkpoints.last_lsn.store(from, Ordering::Relaxed);
        // Pages last changed at or before the checkpoint get a full image on their next change,
        // exactly as if the checkpoint had just run in this process.
        self.pool.set_full_image_below(from);
        let corrupt = |lsn: Lsn, reason: String| StorageError::LogCorruption {
            path: self.wal.dir().to_path_buf(),
            lsn,
            reason,
        };
        for record in self.wal.read_from(from)? {
            let record = record?;
            let end = record.end();
            if record.kind != KIND_PAGES && record.kind != KIND_NEW_PAGES {
                return Err(corrupt(
                    record.lsn,
                    format!("unknown record kind {}", record.kind),
                ));
            }
            let decoded = mtr::decode(&record.payload).map_err(|r| corrupt(record.lsn, r))?;
            let pages_needed = match decoded.entries.iter().map(|e| e.page + 1).max() {
                Some(top) => top.max(decoded.alloc.page_count),
                None => decoded.alloc.page_count,
            };
            self.pool.pager().ensure_capacity(pages_needed)?;
            for entry in &decoded.entries {
                let mut page = if entry.full {
                    self.pool.create(entry.page)?
                } else {
                    let page = self.pool.write(entry.page)?;
                    if page.lsn() >= end {
                        report.pages_skipped += 1;
                        continue;
                    }
                    page
                };
                entry.apply(&mut page).map_err(|r| corrupt(record.lsn, r))?;
                // Bytes 0..20 are not logged: a full image starts from zeroes.
                write_u64(&mut page, 4, entry.page);
                page.set_lsn(end);
                report.pages_applied += 1;
            }
            if record.kind == KIND_PAGES {
                self.set_alloc_state(decoded.alloc);
            }
            report.records += 1;
            report.to_lsn = end;
        }
        report.duration = began.elapsed();
        Ok(report)
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

    /// Hints that the nodes `ids` are about to be read (see [`BufferPool::prefetch_memory`]),
    /// bringing the headers and the start of the slot arrays of the resident ones into the
    /// CPU cache; appends the others to `absent`.
    pub fn prefetch_nodes(&self, ids: &[PageId], absent: &mut Vec<PageId>) {
        self.pool.prefetch_memory(ids, NODE_PREFETCH_LINES, absent);
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

    /// Pages one trunk page of the free list can list.
    fn trunk_capacity(&self) -> usize {
        (self.limits.page_size - TRUNK_IDS_AT) / 8
    }

    /// Allocates a page and returns it write-latched and zeroed, with its header written.
    ///
    /// A page listed in a trunk is handed out without being read: its old bytes do not matter,
    /// and being blank in memory it is logged in full. An emptied trunk is handed out itself.
    pub fn allocate(&self, page_type: PageType) -> Result<PageMut<'_>> {
        let mut alloc = self.alloc.lock();
        let mut page = if alloc.free_head != 0 {
            let trunk_id = alloc.free_head;
            let mut trunk = self.latch_free_page(trunk_id)?;
            if page::page_type_byte(&trunk) != PageType::Free as u8 {
                return Err(self.corruption(trunk_id, "free-list trunk is not a free page"));
            }
            let count = read_u32(&trunk, TRUNK_COUNT_AT) as usize;
            if count > self.trunk_capacity() {
                return Err(
                    self.corruption(trunk_id, format!("free-list trunk lists {count} pages"))
                );
            }
            if count == 0 {
                let next = read_u64(&trunk, TRUNK_NEXT_AT);
                if next >= alloc.page_count {
                    return Err(
                        self.corruption(trunk_id, format!("free-list link {next} outside file"))
                    );
                }
                alloc.free_head = next;
                alloc.free_len = alloc.free_len.saturating_sub(1);
                trunk
            } else {
                let id = read_u64(&trunk, TRUNK_IDS_AT + (count - 1) * 8);
                if id == 0 || id >= alloc.page_count {
                    return Err(
                        self.corruption(trunk_id, format!("free-list entry {id} outside file"))
                    );
                }
                let page = self.pool.create(id)?;
                write_u32(&mut trunk, TRUNK_COUNT_AT, (count - 1) as u32);
                alloc.free_len = alloc.free_len.saturating_sub(1);
                self.note_allocated(id);
                page
            }
        } else {
            let id = alloc.page_count;
            self.pool.pager().ensure_capacity(id + 1)?;
            let page = self.pool.create(id)?;
            alloc.page_count += 1;
            self.page_count.store(alloc.page_count, Ordering::Release);
            self.note_allocated(id);
            page
        };
        let id = page.id();
        page::init(&mut page, id, page_type);
        Ok(page)
    }

    /// Remembers a page this mini-transaction took from outside every structure (past the
    /// high-water mark or from a trunk's list): its disk bytes are garbage in the state before
    /// the mini-transaction, so it may be written back early (see [`Store::spill_if_large`]).
    fn note_allocated(&self, id: PageId) {
        let mut sets = self.mtr_sets.lock();
        if !sets.freed.contains(&id) {
            sets.spillable.insert(id);
        }
    }

    /// Latches a free-list trunk. Nobody but the allocator (which holds its mutex) uses free
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
    /// unreachable from every tree. Usually only the head trunk changes; the freed page itself
    /// is not touched unless it becomes the new head trunk.
    pub fn free(&self, id: PageId) -> Result<()> {
        let mut alloc = self.alloc.lock();
        {
            let mut sets = self.mtr_sets.lock();
            sets.spillable.remove(&id);
            sets.freed.insert(id);
        }
        if alloc.free_head != 0 {
            let mut trunk = self.latch_free_page(alloc.free_head)?;
            let count = read_u32(&trunk, TRUNK_COUNT_AT) as usize;
            if count < self.trunk_capacity() {
                write_u64(&mut trunk, TRUNK_IDS_AT + count * 8, id);
                write_u32(&mut trunk, TRUNK_COUNT_AT, (count + 1) as u32);
                alloc.free_len += 1;
                return Ok(());
            }
        }
        // The page becomes the new head trunk. It is read first, not created blank, so that a
        // rolled-back mini-transaction can put its old bytes back.
        let mut page = self.pool.write(id)?;
        page::init(&mut page, id, PageType::Free);
        write_u64(&mut page, TRUNK_NEXT_AT, alloc.free_head);
        write_u32(&mut page, TRUNK_COUNT_AT, 0);
        alloc.free_head = id;
        alloc.free_len += 1;
        Ok(())
    }

    /// Frees pages collected during an operation, after all its latches are released.
    pub fn free_all(&self, ids: &[PageId]) -> Result<()> {
        ids.iter().try_for_each(|&id| self.free(id))
    }

    /// Walks the free list, returning its pages, trunks included (for the integrity checker).
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
                return Err(self.corruption(next, "free-list trunk is not a free page"));
            }
            pages.push(next);
            let count = read_u32(&page, TRUNK_COUNT_AT) as usize;
            if count > self.trunk_capacity() {
                return Err(self.corruption(next, format!("free-list trunk lists {count} pages")));
            }
            for i in 0..count {
                pages.push(read_u64(&page, TRUNK_IDS_AT + i * 8));
            }
            next = read_u64(&page, TRUNK_NEXT_AT);
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
                self.spill_if_large()?;
            }
            for (i, chunk) in chunks.iter().enumerate() {
                let mut page = self.pool.write(ids[i])?;
                let next = ids.get(i + 1).copied().unwrap_or(0);
                write_u64(&mut page, OVERFLOW_NEXT_AT, next);
                write_u32(&mut page, OVERFLOW_LEN_AT, chunk.len() as u32);
                page[OVERFLOW_DATA_AT..OVERFLOW_DATA_AT + chunk.len()].copy_from_slice(chunk);
                drop(page);
                self.spill_if_large()?;
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

    /// Makes everything durable: flushes the log, then checkpoints.
    pub fn flush(&self) -> Result<()> {
        self.wal.flush_all()?;
        self.checkpoint().map(|_| ())
    }
}
