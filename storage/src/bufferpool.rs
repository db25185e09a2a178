//! The buffer pool: a fixed budget of page frames in front of the pager.
//!
//! # Shape
//!
//! - `frames` is allocated once; each frame has a reader-writer latch over its bytes, a pin
//!   count and a dirty flag. The bytes of all frames are one allocation ([`FrameArena`], on
//!   huge pages where the OS has them), which the kernel backs with memory only where it is
//!   touched, so the resident set grows with the working set and never beyond `budget_bytes`.
//! - One mutex guards the page table (page id to frame) and the eviction policy. It is never
//!   held across I/O: a miss picks a victim, maps the page, takes the frame's write latch while
//!   still holding the mutex, and only then releases the mutex and reads from disk. Threads
//!   asking for the same page meanwhile pin the frame and wait on its latch.
//! - A dirty victim is written back *before* its page leaves the page table, so no other thread
//!   can read the stale on-disk copy in between; if the write fails the page stays cached and
//!   dirty and the error is returned.
//! - [`PageRef`] and [`PageMut`] are RAII guards: pinned plus a shared or exclusive latch. They
//!   release the latch before the pin, so a frame with no pins is never latched.
//!
//! A background flusher writes dirty, unpinned pages in page order every `flush_interval`;
//! [`BufferPool::flush_all`] writes every dirty page and syncs the file.
//!
//! # Logging
//!
//! With a write-ahead log attached, the pool enforces the write-ahead rule: each frame knows the
//! log position of the last change to its page, and a page is written back only after the log
//! is durable up to there (the written copy carries that position in its header). The first
//! mutable access to a page inside a mini-transaction saves its original image (see
//! [`crate::mtr`]); such a page is *unlogged* until the mini-transaction's record is appended,
//! and an unlogged page is neither evicted nor written back, because its new bytes have no log
//! record yet. Mini-transactions are serialised by the store, so one set of original images
//! suffices.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use rustc_hash::FxHashMap;

use crate::arena::{FrameArena, FrameBuf, prefetch_line};
use crate::background::Periodic;
use crate::error::{Result, StorageError};
use crate::eviction::{EvictionPolicy, Evictor};
use crate::mtr::{KIND_NEW_PAGES, KIND_PAGES, PayloadBuilder};
use crate::page::{self, PageId};
use crate::pager::{Pager, io_error};
use crate::readahead::{self, ReadAhead};
use crate::store::AllocState;
use crate::wal::{Lsn, Wal};

/// Marks a frame that holds no page.
const NO_PAGE: PageId = PageId::MAX;
/// Bookkeeping bytes charged per frame against the budget (frame struct, page-table entry,
/// policy state), so the budget bounds the pool's whole footprint, not only page bytes.
pub const FRAME_OVERHEAD_BYTES: usize = 128;
/// The pool refuses budgets smaller than this many frames: a B+ tree operation pins a
/// root-to-leaf path plus siblings.
pub const MIN_FRAMES: usize = 16;
/// How many times a miss retries when every frame is pinned before giving up.
const EXHAUSTED_RETRIES: u32 = 2000;

/// Buffer pool settings.
#[derive(Debug, Clone)]
pub struct BufferPoolConfig {
    /// Memory budget in bytes for page frames and their bookkeeping.
    pub budget_bytes: usize,
    /// Eviction policy.
    pub policy: EvictionPolicy,
    /// How often the background flusher writes dirty pages; `None` disables it.
    pub flush_interval: Option<Duration>,
}

impl Default for BufferPoolConfig {
    fn default() -> Self {
        BufferPoolConfig {
            budget_bytes: 64 << 20,
            policy: EvictionPolicy::default(),
            flush_interval: Some(Duration::from_millis(500)),
        }
    }
}

/// A point-in-time copy of the pool's counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferPoolStats {
    /// Number of frames the budget allows.
    pub capacity_frames: u64,
    /// Frames currently holding a page.
    pub resident_pages: u64,
    /// Dirty frames right now.
    pub dirty_pages: u64,
    /// Page requests served from memory.
    pub hits: u64,
    /// Page requests that read from disk.
    pub misses: u64,
    /// Pages evicted to make room.
    pub evictions: u64,
    /// Pages written back to disk (eviction, flusher or flush_all).
    pub page_writes: u64,
    /// Pages loaded because of a prefetch hint.
    pub prefetched: u64,
}

impl BufferPoolStats {
    /// Fraction of requests served from memory, 0 when there were none.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

struct FrameData {
    page_id: PageId,
    buf: FrameBuf,
}

struct Frame {
    latch: RwLock<FrameData>,
    pins: AtomicU32,
    dirty: AtomicBool,
    /// Log position of the last logged change to the page (its page LSN).
    lsn: AtomicU64,
    /// Changed by the running mini-transaction and not yet logged: must not be written back.
    unlogged: AtomicBool,
}

/// A page touched by the running mini-transaction.
struct Touched {
    id: PageId,
    idx: u32,
    original: Box<[u8]>,
}

/// Pages touched by the running mini-transaction, in first-touch order.
#[derive(Default)]
struct MtrPages {
    pages: Vec<Touched>,
    index: FxHashMap<PageId, usize>,
}

struct TableState {
    table: FxHashMap<PageId, u32>,
    evictor: Evictor,
    /// Frames that have never held a page.
    unused: Vec<u32>,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    page_writes: AtomicU64,
    prefetched: AtomicU64,
    dirty: AtomicU64,
}

/// Where a missing page's bytes come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Read and verify from disk.
    Disk,
    /// A newly allocated page: start from zeroes, no read.
    Fresh,
}

enum Pinned<'a> {
    /// The page was resident; the frame is pinned but not latched.
    Hit(u32),
    /// The page was loaded by this call; the frame is pinned and write-latched.
    Loaded(u32, RwLockWriteGuard<'a, FrameData>),
}

/// Fixed-size cache of pages with pinning, latching and write-back.
pub struct BufferPool {
    pager: Arc<Pager>,
    page_size: usize,
    frames: Box<[Frame]>,
    /// The frames' bytes. Declared after `frames`, so it is dropped after them.
    arena: FrameArena,
    state: Mutex<TableState>,
    counters: Counters,
    flusher: Mutex<Option<Periodic>>,
    /// This pool, for the read-ahead helper it starts on first use.
    me: Weak<BufferPool>,
    /// The read-ahead helper: `None` inside once it could not or should not start.
    read_ahead: OnceLock<Option<ReadAhead>>,
    /// Held by a pass of [`BufferPool::flush_dirty`]. A pass clears a page's dirty flag before
    /// writing it, so without this gate `flush_all` could skip a page the background flusher
    /// had claimed but not yet written, and return (and a checkpoint then sync and cut the
    /// log) before that write happened: the page would be missing from disk after a crash.
    flush_gate: Mutex<()>,
    wal: Option<Arc<Wal>>,
    /// True while changes are being captured for the log (off during recovery's redo).
    logging: AtomicBool,
    mtr: Mutex<MtrPages>,
    /// A page whose LSN is at or below this (the last checkpoint's start) is logged in full on
    /// its next change: torn-write protection.
    full_image_below: AtomicU64,
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("path", &self.pager.path())
            .field("frames", &self.frames.len())
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl BufferPool {
    /// Creates a pool over `pager` and starts its background flusher. With `wal`, page changes
    /// are logged (once [`BufferPool::set_logging`] turns capture on) and write-back follows the
    /// write-ahead rule.
    pub fn new(
        pager: Arc<Pager>,
        config: &BufferPoolConfig,
        wal: Option<Arc<Wal>>,
    ) -> Result<Arc<BufferPool>> {
        let page_size = pager.page_size();
        let frames = config.budget_bytes / (page_size + FRAME_OVERHEAD_BYTES);
        if frames < MIN_FRAMES {
            return Err(StorageError::InvalidConfig(format!(
                "buffer_pool_bytes {} holds {frames} frames of {page_size} bytes; at least {MIN_FRAMES} are needed ({} bytes)",
                config.budget_bytes,
                MIN_FRAMES * (page_size + FRAME_OVERHEAD_BYTES)
            )));
        }
        let arena = FrameArena::new(frames, page_size)?;
        let frames_vec: Vec<Frame> = arena
            .buffers()
            .into_iter()
            .map(|buf| Frame {
                latch: RwLock::new(FrameData {
                    page_id: NO_PAGE,
                    buf,
                }),
                pins: AtomicU32::new(0),
                dirty: AtomicBool::new(false),
                lsn: AtomicU64::new(0),
                unlogged: AtomicBool::new(false),
            })
            .collect();
        let pool = Arc::new_cyclic(|me| BufferPool {
            me: me.clone(),
            read_ahead: OnceLock::new(),
            pager,
            page_size,
            frames: frames_vec.into_boxed_slice(),
            arena,
            state: Mutex::new(TableState {
                table: FxHashMap::default(),
                evictor: Evictor::new(config.policy, frames),
                unused: (0..frames as u32).rev().collect(),
            }),
            counters: Counters::default(),
            flusher: Mutex::new(None),
            flush_gate: Mutex::new(()),
            wal,
            logging: AtomicBool::new(false),
            mtr: Mutex::new(MtrPages::default()),
            full_image_below: AtomicU64::new(0),
        });
        if let Some(interval) = config.flush_interval {
            let weak = Arc::downgrade(&pool);
            let flusher = Periodic::start("nq-flusher", interval, move || {
                let Some(pool) = weak.upgrade() else {
                    return false;
                };
                if let Err(err) = pool.flush_dirty(false) {
                    tracing::warn!(error = %err, "background flush failed");
                }
                true
            })
            .map_err(|e| io_error(pool.pager.path(), e))?;
            *pool.flusher.lock() = Some(flusher);
        }
        Ok(pool)
    }

    /// The pager underneath.
    pub fn pager(&self) -> &Arc<Pager> {
        &self.pager
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Pins page `id` for reading.
    pub fn read(&self, id: PageId) -> Result<PageRef<'_>> {
        loop {
            match self.pin(id, Source::Disk)? {
                Pinned::Loaded(idx, guard) => {
                    return Ok(PageRef::new(self, idx, RwLockWriteGuard::downgrade(guard)));
                }
                Pinned::Hit(idx) => {
                    let guard = self.read_latch(idx);
                    if guard.page_id == id {
                        return Ok(PageRef::new(self, idx, guard));
                    }
                    // The load we waited for failed or the frame was reassigned: start over.
                    drop(guard);
                    self.unpin(idx);
                }
            }
        }
    }

    /// Read-latches frame `idx`. While another thread holds the latch (typically the
    /// read-ahead helper, loading the very page this reader wants next), the reader loads pages
    /// from the helper's queue itself instead of waiting idle: when the lookup outruns the
    /// helper, the two then load in parallel. Loading never latches a resident page, so this
    /// cannot wait on a latch the reader holds.
    fn read_latch(&self, idx: u32) -> RwLockReadGuard<'_, FrameData> {
        let latch = &self.frames[idx as usize].latch;
        if let Some(Some(helper)) = self.read_ahead.get() {
            loop {
                if let Some(guard) = latch.try_read() {
                    return guard;
                }
                let Some(page) = helper.take() else {
                    break;
                };
                // A hint, as in the helper: an error is met by whoever needs the page.
                if self.load_absent(page).is_err() {
                    break;
                }
            }
        }
        latch.read()
    }

    /// Pins page `id` for writing.
    pub fn write(&self, id: PageId) -> Result<PageMut<'_>> {
        self.write_from(id, Source::Disk)
    }

    /// Pins page `id` for writing if its latch is free right now; `Ok(None)` if another guard
    /// holds it. For pages nobody else should be using (free-list entries), where waiting could
    /// mean waiting on oneself.
    pub fn try_write(&self, id: PageId) -> Result<Option<PageMut<'_>>> {
        match self.pin(id, Source::Disk)? {
            Pinned::Loaded(idx, guard) => Ok(Some(PageMut::new(self, idx, guard))),
            Pinned::Hit(idx) => match self.frames[idx as usize].latch.try_write() {
                Some(guard) if guard.page_id == id => Ok(Some(PageMut::new(self, idx, guard))),
                other => {
                    drop(other);
                    self.unpin(idx);
                    Ok(None)
                }
            },
        }
    }

    /// Pins a newly allocated page for writing without reading it; the buffer is zeroed.
    pub fn create(&self, id: PageId) -> Result<PageMut<'_>> {
        let mut page = self.write_from(id, Source::Fresh)?;
        page.fill(0);
        Ok(page)
    }

    fn write_from(&self, id: PageId, source: Source) -> Result<PageMut<'_>> {
        loop {
            match self.pin(id, source)? {
                Pinned::Loaded(idx, guard) => {
                    let mut page = PageMut::new(self, idx, guard);
                    if source == Source::Fresh {
                        page.modified = true;
                    }
                    return Ok(page);
                }
                Pinned::Hit(idx) => {
                    let guard = self.frames[idx as usize].latch.write();
                    if guard.page_id == id {
                        return Ok(PageMut::new(self, idx, guard));
                    }
                    drop(guard);
                    self.unpin(idx);
                }
            }
        }
    }

    /// Hints that these pages will be needed soon: loads the ones not resident. Errors are
    /// ignored (a hint must not fail the caller); a damaged page reports itself when it is
    /// actually read.
    pub fn prefetch(&self, ids: &[PageId]) {
        for &id in ids {
            if self.state.lock().table.contains_key(&id) {
                continue;
            }
            if let Ok(page) = self.read(id) {
                drop(page);
                self.counters.prefetched.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hints that the resident pages among `ids` are about to be read: starts bringing their
    /// page-table entries, frames and first `lines` cache lines of bytes into the CPU cache,
    /// and marks them referenced for eviction. A reader about to visit many pages (a batch
    /// of lookups whose leaves it already knows) calls this first, so that the cache misses
    /// of all of them overlap instead of each pin and node check waiting for memory in turn.
    /// Pages not resident are appended to `absent`, for a read-ahead helper to load.
    pub(crate) fn prefetch_memory(&self, ids: &[PageId], lines: usize, absent: &mut Vec<PageId>) {
        let mut state = self.state.lock();
        for &id in ids {
            // The look-ups are independent loads with no locked instruction between them, so
            // the CPU overlaps their misses.
            match state.table.get(&id) {
                Some(&idx) => {
                    prefetch_line((&raw const self.frames[idx as usize]).cast());
                    let bytes = self.arena.frame_addr(idx as usize);
                    for line in 0..lines {
                        prefetch_line(bytes.wrapping_add(line * 64));
                    }
                    state.evictor.touch(idx);
                }
                None => absent.push(id),
            }
        }
    }

    /// Calls `f(i, page)` for each page `ids[i]` that is resident and whose latch is free right
    /// now, under a shared latch; skips the others. Never loads a page and never waits for a
    /// latch, so a caller holding latches of its own can use it on any page: for speculative
    /// looks ahead (which cell a coming lookup will read), not for reads that must happen.
    /// The pages are pinned under one lock of the table and do not count as accesses.
    pub(crate) fn probe_resident(&self, ids: &[PageId], mut f: impl FnMut(usize, &[u8])) {
        let mut pinned: [Option<u32>; PROBE_MAX] = [None; PROBE_MAX];
        {
            let state = self.state.lock();
            for (slot, id) in pinned.iter_mut().zip(ids) {
                if let Some(&idx) = state.table.get(id) {
                    self.frames[idx as usize]
                        .pins
                        .fetch_add(1, Ordering::AcqRel);
                    *slot = Some(idx);
                }
            }
        }
        for (i, (slot, &id)) in pinned.iter().zip(ids).enumerate() {
            let Some(idx) = *slot else { continue };
            if let Some(guard) = self.frames[idx as usize].latch.try_read()
                && guard.page_id == id
            {
                f(i, &guard.buf);
            }
            self.unpin(idx);
        }
    }

    /// Loads page `id` from disk unless it is resident, for a read-ahead helper. A resident
    /// page is only pinned and unpinned, never latched, so the helper never waits for a page
    /// another thread holds (a writer, or the reader it works for); a failed read is
    /// forgotten, and the reader that needs the page meets the error itself.
    pub(crate) fn load_absent(&self, id: PageId) -> Result<()> {
        match self.pin(id, Source::Disk)? {
            Pinned::Hit(idx) => self.unpin(idx),
            Pinned::Loaded(idx, guard) => {
                drop(guard);
                self.unpin(idx);
                self.counters.prefetched.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Has a helper thread load those of `ids` that are not resident (see
    /// [`crate::readahead`]), for a reader that will visit them shortly, in this order. Does
    /// nothing on small pools and single-core machines.
    pub(crate) fn read_ahead(&self, ids: &[PageId]) {
        if ids.is_empty() {
            return;
        }
        let helper = self.read_ahead.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            if self.frames.len() < readahead::MIN_FRAMES || cores < 2 {
                return None;
            }
            ReadAhead::start(self.me.clone())
                .inspect_err(|err| tracing::warn!(error = %err, "read-ahead helper did not start"))
                .ok()
        });
        if let Some(helper) = helper {
            helper.request(ids);
        }
    }

    /// True if page `id` is cached.
    pub fn is_resident(&self, id: PageId) -> bool {
        self.state.lock().table.contains_key(&id)
    }

    fn pin(&self, id: PageId, source: Source) -> Result<Pinned<'_>> {
        debug_assert_ne!(id, NO_PAGE);
        let mut retries = 0u32;
        loop {
            let mut state = self.state.lock();
            if let Some(&idx) = state.table.get(&id) {
                self.frames[idx as usize]
                    .pins
                    .fetch_add(1, Ordering::AcqRel);
                state.evictor.touch(idx);
                drop(state);
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Pinned::Hit(idx));
            }
            let Some((idx, guard)) = self.take_victim(&mut state) else {
                drop(state);
                retries += 1;
                if retries > EXHAUSTED_RETRIES {
                    return Err(StorageError::BufferPoolExhausted {
                        frames: self.frames.len(),
                    });
                }
                std::thread::yield_now();
                continue;
            };
            let frame = &self.frames[idx as usize];
            frame.pins.store(1, Ordering::Release);
            let old = guard.page_id;
            if old != NO_PAGE && frame.dirty.load(Ordering::Acquire) {
                // Keep `old` mapped while it is written back, so nobody reads the stale disk copy.
                drop(state);
                match self.write_back(idx, &guard) {
                    Ok(()) => {
                        frame.dirty.store(false, Ordering::Release);
                        self.counters.dirty.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(err) => {
                        let mut state = self.state.lock();
                        state.evictor.insert(idx);
                        drop(state);
                        drop(guard);
                        self.unpin(idx);
                        return Err(err);
                    }
                }
                state = self.state.lock();
            }
            if old != NO_PAGE {
                state.table.remove(&old);
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(&other) = state.table.get(&id) {
                // Another thread loaded `id` while we wrote the victim back; use its frame and
                // leave ours empty for the next miss.
                let mut guard = guard;
                guard.page_id = NO_PAGE;
                state.evictor.insert(idx);
                self.frames[other as usize]
                    .pins
                    .fetch_add(1, Ordering::AcqRel);
                state.evictor.touch(other);
                drop(state);
                drop(guard);
                self.unpin(idx);
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Pinned::Hit(other));
            }
            state.table.insert(id, idx);
            state.evictor.insert(idx);
            drop(state);
            return self.fill_frame(id, idx, guard, source);
        }
    }

    /// Finds a frame to reuse: never-used frames first, then the policy's victim among
    /// unpinned frames. Returns it write-latched.
    fn take_victim<'a>(
        &'a self,
        state: &mut TableState,
    ) -> Option<(u32, RwLockWriteGuard<'a, FrameData>)> {
        if let Some(idx) = state.unused.pop() {
            return Some((idx, self.frames[idx as usize].latch.write()));
        }
        let mut latched = None;
        let victim = state.evictor.evict(|idx| {
            let frame = &self.frames[idx as usize];
            if frame.pins.load(Ordering::Acquire) != 0 || frame.unlogged.load(Ordering::Acquire) {
                return false;
            }
            match frame.latch.try_write() {
                Some(guard) => {
                    latched = Some(guard);
                    true
                }
                None => false,
            }
        })?;
        Some((victim, latched.expect("victim was latched")))
    }

    fn fill_frame<'a>(
        &'a self,
        id: PageId,
        idx: u32,
        mut guard: RwLockWriteGuard<'a, FrameData>,
        source: Source,
    ) -> Result<Pinned<'a>> {
        guard.page_id = id;
        let frame = &self.frames[idx as usize];
        let loaded = match source {
            Source::Fresh => {
                guard.buf.fill(0);
                frame.lsn.store(0, Ordering::Release);
                Ok(())
            }
            Source::Disk => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                let read = self.pager.read_page(id, &mut guard.buf).map(|_| ());
                frame.lsn.store(page::lsn(&guard.buf), Ordering::Release);
                read
            }
        };
        match loaded {
            Ok(()) => Ok(Pinned::Loaded(idx, guard)),
            Err(err) => {
                guard.page_id = NO_PAGE;
                let mut state = self.state.lock();
                if state.table.get(&id) == Some(&idx) {
                    state.table.remove(&id);
                }
                drop(state);
                drop(guard);
                self.unpin(idx);
                Err(err)
            }
        }
    }

    /// Writes a frame's page, after making the log durable up to the page's LSN.
    fn write_back(&self, idx: u32, data: &FrameData) -> Result<()> {
        let frame = &self.frames[idx as usize];
        debug_assert!(!frame.unlogged.load(Ordering::Acquire));
        let lsn = frame.lsn.load(Ordering::Acquire);
        if let Some(wal) = &self.wal {
            wal.flush_synced(lsn)?;
        }
        self.pager.write_page(data.page_id, &data.buf, lsn)?;
        self.counters.page_writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn unpin(&self, idx: u32) {
        let before = self.frames[idx as usize]
            .pins
            .fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "unpin of an unpinned frame");
    }

    fn mark_dirty(&self, idx: u32) {
        if !self.frames[idx as usize].dirty.swap(true, Ordering::AcqRel) {
            self.counters.dirty.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes dirty pages back in page order. With `wait`, every dirty page is written (waiting
    /// for writers to release them); without, pages currently latched or pinned are skipped.
    fn flush_dirty(&self, wait: bool) -> Result<usize> {
        // flush_all waits for a background pass to finish; the background flusher skips its
        // turn while flush_all runs.
        let _gate = if wait {
            self.flush_gate.lock()
        } else {
            match self.flush_gate.try_lock() {
                Some(gate) => gate,
                None => return Ok(0),
            }
        };
        let mut dirty: Vec<(PageId, u32)> = {
            let state = self.state.lock();
            state
                .table
                .iter()
                .filter(|(_, idx)| self.frames[**idx as usize].dirty.load(Ordering::Acquire))
                .map(|(id, idx)| (*id, *idx))
                .collect()
        };
        dirty.sort_unstable();
        let mut written = 0;
        for (id, idx) in dirty {
            let frame = &self.frames[idx as usize];
            if !wait && frame.pins.load(Ordering::Acquire) != 0 {
                continue;
            }
            let guard = if wait {
                // A page changed by a running mini-transaction is written once its record is
                // logged; mini-transactions are short.
                loop {
                    let guard = frame.latch.read();
                    if !frame.unlogged.load(Ordering::Acquire) {
                        break guard;
                    }
                    drop(guard);
                    std::thread::sleep(Duration::from_micros(50));
                }
            } else {
                match frame.latch.try_read() {
                    Some(guard) if !frame.unlogged.load(Ordering::Acquire) => guard,
                    _ => continue,
                }
            };
            // An evicting thread may write the page too (under its exclusive latch, so never
            // at the same time): whoever clears the flag writes the page; a failed write sets
            // it again.
            if guard.page_id != id || !frame.dirty.swap(false, Ordering::AcqRel) {
                continue;
            }
            if let Err(err) = self.write_back(idx, &guard) {
                frame.dirty.store(true, Ordering::Release);
                return Err(err);
            }
            self.counters.dirty.fetch_sub(1, Ordering::Relaxed);
            written += 1;
        }
        Ok(written)
    }

    /// Writes every dirty page and syncs the file. Called on checkpoints and clean shutdown.
    pub fn flush_all(&self) -> Result<()> {
        self.flush_dirty(true)?;
        self.pager.sync()
    }

    /// Stops the background flusher and the read-ahead helper and waits for them to exit.
    pub fn stop_flusher(&self) {
        let flusher = self.flusher.lock().take();
        if let Some(flusher) = flusher {
            flusher.stop();
        }
        if let Some(Some(helper)) = self.read_ahead.get() {
            helper.stop();
        }
    }

    /// Turns capture of page changes for the log on or off (off while recovery replays it).
    pub(crate) fn set_logging(&self, on: bool) {
        debug_assert!(self.wal.is_some() || !on);
        self.logging.store(on, Ordering::Release);
    }

    /// Sets the checkpoint position below which a page's next change is logged in full.
    pub(crate) fn set_full_image_below(&self, lsn: Lsn) {
        self.full_image_below.store(lsn, Ordering::Release);
    }

    /// Saves the original image of a page on its first change in the running mini-transaction.
    fn capture(&self, idx: u32, data: &FrameData) {
        let mut mtr = self.mtr.lock();
        if mtr.index.contains_key(&data.page_id) {
            return;
        }
        self.frames[idx as usize]
            .unlogged
            .store(true, Ordering::Release);
        let at = mtr.pages.len();
        mtr.index.insert(data.page_id, at);
        mtr.pages.push(Touched {
            id: data.page_id,
            idx,
            original: Box::from(&data.buf[..]),
        });
    }

    /// Ends the running mini-transaction: appends one log record with the change of every page
    /// it touched (in full for a page's first change since the checkpoint), stamps the pages
    /// with the record's end position and makes them eligible for write-back. Returns that
    /// position, or `None` if nothing changed. The caller must hold no page latch.
    pub(crate) fn commit_mtr(&self, alloc: AllocState) -> Result<Option<Lsn>> {
        let pages = std::mem::take(&mut *self.mtr.lock());
        if pages.pages.is_empty() {
            return Ok(None);
        }
        let Some(wal) = &self.wal else {
            unreachable!("capture is only on with a log");
        };
        let full_below = self.full_image_below.load(Ordering::Acquire);
        let mut builder = PayloadBuilder::new(alloc);
        for t in &pages.pages {
            let frame = &self.frames[t.idx as usize];
            let guard = frame.latch.read();
            debug_assert_eq!(guard.page_id, t.id, "an unlogged frame was reassigned");
            let full = frame.lsn.load(Ordering::Acquire) <= full_below;
            builder.page(t.id, (!full).then_some(&*t.original), &guard.buf);
        }
        let appended = match builder.finish() {
            Some(payload) => wal.append(KIND_PAGES, &payload).map(Some),
            None => Ok(None),
        };
        match appended {
            Ok(lsn) => {
                for t in &pages.pages {
                    let frame = &self.frames[t.idx as usize];
                    if let Some(lsn) = lsn {
                        frame.lsn.store(lsn, Ordering::Release);
                    }
                    frame.unlogged.store(false, Ordering::Release);
                }
                Ok(lsn)
            }
            Err(err) => {
                self.restore(pages);
                Err(err)
            }
        }
    }

    /// Pages the running mini-transaction holds unlogged.
    pub(crate) fn mtr_pages(&self) -> usize {
        self.mtr.lock().pages.len()
    }

    /// Logs the full images of the running mini-transaction's pages in `spillable` (pages that
    /// were free or past the high-water mark before it began) in a record of their own, so they
    /// can be written back before it ends. Should it never commit, they are still free in the
    /// recovered state, so writing them early is harmless garbage, never damage. This lets a
    /// bulk load or a large value use more pages than the pool holds. Pages still latched stay.
    pub(crate) fn spill_pages(&self, spillable: &rustc_hash::FxHashSet<PageId>) -> Result<()> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        let mut mtr = self.mtr.lock();
        let mut builder = PayloadBuilder::new(AllocState {
            page_count: 0,
            free_head: 0,
            free_len: 0,
        });
        let mut spilled = Vec::new();
        let mut kept = Vec::new();
        for t in std::mem::take(&mut mtr.pages) {
            let frame = &self.frames[t.idx as usize];
            let guard = spillable
                .contains(&t.id)
                .then(|| frame.latch.try_read())
                .flatten();
            match guard {
                Some(guard) => {
                    builder.page(t.id, None, &guard.buf);
                    spilled.push(t.idx);
                }
                None => kept.push(t),
            }
        }
        mtr.index = kept.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        mtr.pages = kept;
        drop(mtr);
        let Some(payload) = builder.finish() else {
            return Ok(());
        };
        let lsn = wal.append(KIND_NEW_PAGES, &payload)?;
        for idx in spilled {
            let frame = &self.frames[idx as usize];
            frame.lsn.store(lsn, Ordering::Release);
            frame.unlogged.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// Abandons the running mini-transaction: puts every touched page back as it was.
    pub(crate) fn rollback_mtr(&self) {
        let pages = std::mem::take(&mut *self.mtr.lock());
        self.restore(pages);
    }

    fn restore(&self, pages: MtrPages) {
        for t in pages.pages.into_iter().rev() {
            let frame = &self.frames[t.idx as usize];
            let mut guard = frame.latch.write();
            debug_assert_eq!(guard.page_id, t.id);
            frame.unlogged.store(false, Ordering::Release);
            if page::page_id(&t.original) != t.id {
                // A page created blank by this mini-transaction: forget it rather than keep a
                // frame of zeroes that does not even name its page.
                let mut state = self.state.lock();
                if state.table.get(&t.id) == Some(&t.idx) {
                    state.table.remove(&t.id);
                }
                guard.page_id = NO_PAGE;
                if frame.dirty.swap(false, Ordering::AcqRel) {
                    self.counters.dirty.fetch_sub(1, Ordering::Relaxed);
                }
                continue;
            }
            guard.buf.copy_from_slice(&t.original);
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> BufferPoolStats {
        let resident = self.state.lock().table.len() as u64;
        let c = &self.counters;
        BufferPoolStats {
            capacity_frames: self.frames.len() as u64,
            resident_pages: resident,
            dirty_pages: c.dirty.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            page_writes: c.page_writes.load(Ordering::Relaxed),
            prefetched: c.prefetched.load(Ordering::Relaxed),
        }
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        if let Some(Some(helper)) = self.read_ahead.get() {
            helper.stop();
        }
        if let Some(flusher) = self.flusher.get_mut().take() {
            flusher.signal();
        }
    }
}

/// Most pages [`BufferPool::probe_resident`] looks at per call.
pub(crate) const PROBE_MAX: usize = 16;

/// A pinned page under a shared latch.
pub struct PageRef<'a> {
    pool: &'a BufferPool,
    idx: u32,
    guard: ManuallyDrop<RwLockReadGuard<'a, FrameData>>,
}

impl<'a> PageRef<'a> {
    fn new(pool: &'a BufferPool, idx: u32, guard: RwLockReadGuard<'a, FrameData>) -> Self {
        PageRef {
            pool,
            idx,
            guard: ManuallyDrop::new(guard),
        }
    }

    /// The page's id.
    pub fn id(&self) -> PageId {
        self.guard.page_id
    }
}

impl Deref for PageRef<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.guard.buf
    }
}

impl Drop for PageRef<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard is dropped exactly once, here, before the frame is unpinned.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        self.pool.unpin(self.idx);
    }
}

impl fmt::Debug for PageRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageRef").field("page", &self.id()).finish()
    }
}

/// A pinned page under an exclusive latch. Mutable access marks it dirty.
pub struct PageMut<'a> {
    pool: &'a BufferPool,
    idx: u32,
    modified: bool,
    /// The original image was saved for the log (or logging is off).
    captured: bool,
    guard: ManuallyDrop<RwLockWriteGuard<'a, FrameData>>,
}

impl<'a> PageMut<'a> {
    fn new(pool: &'a BufferPool, idx: u32, guard: RwLockWriteGuard<'a, FrameData>) -> Self {
        PageMut {
            pool,
            idx,
            modified: false,
            captured: false,
            guard: ManuallyDrop::new(guard),
        }
    }

    /// The page's id.
    pub fn id(&self) -> PageId {
        self.guard.page_id
    }

    /// The page's LSN as the pool knows it.
    pub(crate) fn lsn(&self) -> Lsn {
        self.pool.frames[self.idx as usize]
            .lsn
            .load(Ordering::Acquire)
    }

    /// Sets the page's LSN (recovery, after replaying a record into it).
    pub(crate) fn set_lsn(&mut self, lsn: Lsn) {
        self.pool.frames[self.idx as usize]
            .lsn
            .store(lsn, Ordering::Release);
        page::set_lsn(&mut self.guard.buf, lsn);
        self.modified = true;
    }
}

impl Deref for PageMut<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.guard.buf
    }
}

impl DerefMut for PageMut<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        if !self.captured {
            self.captured = true;
            if self.pool.logging.load(Ordering::Acquire) {
                self.pool.capture(self.idx, &self.guard);
            }
        }
        self.modified = true;
        &mut self.guard.buf
    }
}

impl Drop for PageMut<'_> {
    fn drop(&mut self) {
        if self.modified {
            self.pool.mark_dirty(self.idx);
        }
        // SAFETY: the guard is dropped exactly once, here, before the frame is unpinned.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        self.pool.unpin(self.idx);
    }
}

impl fmt::Debug for PageMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageMut").field("page", &self.id()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Meta;
    use crate::page::PageType;
    use crate::vfs::StdVfs;

    /// A probe sees resident pages whose latch is free, and skips pages that are absent (it
    /// loads nothing) or write-latched (it waits for nothing), in the order asked.
    #[test]
    fn test_probe_resident_skips_absent_and_latched_pages() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta {
            page_size: 4096,
            page_count: 8,
            free_head: 0,
            free_len: 0,
            catalog_root: 1,
            checkpoint_lsn: 0,
            sequence: 0,
        };
        let pager = Pager::create(&StdVfs, &dir.path().join("p.nqdb"), &meta).unwrap();
        let config = BufferPoolConfig {
            flush_interval: None,
            ..BufferPoolConfig::default()
        };
        let pool = BufferPool::new(Arc::new(pager), &config, None).unwrap();
        for id in 1..4 {
            let mut page = pool.create(id).unwrap();
            crate::page::init(&mut page, id, PageType::Overflow);
            page[100] = id as u8;
        }
        pool.flush_all().unwrap();
        let latched = pool.write(2).unwrap();
        let misses = pool.stats().misses;
        let mut seen = Vec::new();
        pool.probe_resident(&[3, 2, 7, 1], |i, page| seen.push((i, page[100])));
        assert_eq!(seen, [(0, 3), (3, 1)]);
        assert!(!pool.is_resident(7), "the probe loaded nothing");
        assert_eq!(pool.stats().misses, misses);
        drop(latched);
        seen.clear();
        pool.probe_resident(&[2], |i, page| seen.push((i, page[100])));
        assert_eq!(seen, [(0, 2)]);
        // Every pin was given back, so the frames can be evicted again.
        assert!(
            pool.frames
                .iter()
                .all(|f| f.pins.load(Ordering::Acquire) == 0)
        );
    }
}
