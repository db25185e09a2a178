//! Read-ahead: a helper thread that loads pages into the buffer pool before a reader gets to
//! them.
//!
//! A batch of sorted lookups whose working set exceeds the pool spends most of its time
//! reading leaves one at a time (a system call, a copy from the OS page cache and a checksum
//! each). The lookup learns the leaves of its next keys early (it reads their ids from the
//! parent it holds), so it hands the absent ones to this helper, which loads them on another
//! core meanwhile. The helper only loads pages into frames: it never latches a resident page
//! (see `BufferPool::load_absent`), so it waits neither for the reader nor for a writer, and a
//! failed load is forgotten: the reader that needs the page meets the error and reports it.
//!
//! One helper per pool, started on first use, and only where it can help: pools of at least
//! [`MIN_FRAMES`] frames on machines with more than one core. Between batches it spins for
//! [`SPIN`] before it parks, because waking a parked thread costs a system call on the
//! reader's side and, on virtual machines, tens of microseconds before the thread runs; a
//! lookup sends a batch every few microseconds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::bufferpool::BufferPool;
use crate::page::PageId;

/// Pools smaller than this do not read ahead: the helper's pages would crowd out the ones
/// readers hold or are about to use.
pub(crate) const MIN_FRAMES: usize = 1024;
/// Pages waiting at most; hints beyond are dropped (the helper is behind anyway).
const MAX_QUEUED: usize = 256;
/// Queued pages beyond which a waiting reader helps the helper (see [`ReadAhead::take`]).
const BEHIND: usize = 8;
/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_micros(100);
/// How long a parked helper sleeps before it checks whether its pool is gone.
const PARK: Duration = Duration::from_secs(1);

struct Shared {
    queue: Mutex<VecDeque<PageId>>,
    /// `queue.len()`, readable without the lock by the spinning helper.
    queued: AtomicUsize,
    /// Set by the helper just before it parks.
    parked: AtomicBool,
    stop: AtomicBool,
}

/// A pool's read-ahead helper. The thread ends when [`ReadAhead::stop`] or
/// [`ReadAhead::signal`] is called or its pool is dropped.
pub(crate) struct ReadAhead {
    shared: Arc<Shared>,
    thread: std::thread::Thread,
    /// Taken by [`ReadAhead::stop`], which waits for the thread.
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl ReadAhead {
    /// Starts the helper for `pool`.
    pub(crate) fn start(pool: Weak<BufferPool>) -> std::io::Result<ReadAhead> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::with_capacity(MAX_QUEUED)),
            queued: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let theirs = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("nq-readahead".into())
            .spawn(move || run(&theirs, &pool))?;
        Ok(ReadAhead {
            shared,
            thread: handle.thread().clone(),
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Queues `pages` for loading, in order; drops them if the helper is too far behind.
    pub(crate) fn request(&self, pages: &[PageId]) {
        if pages.is_empty() {
            return;
        }
        {
            let mut queue = self.shared.queue.lock();
            if queue.len() + pages.len() > MAX_QUEUED {
                return;
            }
            queue.extend(pages.iter().copied());
            self.shared.queued.store(queue.len(), Ordering::SeqCst);
        }
        // Paired with the helper's store of `parked` and load of `queued`: either it sees
        // the pages, or this sees it parked and wakes it.
        if self.shared.parked.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
    }

    /// Takes the next queued page, for a reader that would otherwise wait for the helper, if
    /// the helper is behind: more than [`BEHIND`] pages queued. With fewer, the helper keeps up
    /// and the page the reader waits for is ready sooner than one it would load itself.
    pub(crate) fn take(&self) -> Option<PageId> {
        if self.shared.queued.load(Ordering::Acquire) <= BEHIND {
            return None;
        }
        let mut queue = self.shared.queue.lock();
        let next = queue.pop_front();
        self.shared.queued.store(queue.len(), Ordering::SeqCst);
        next
    }

    /// Asks the helper to end without waiting for it.
    pub(crate) fn signal(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }

    /// Ends the helper and waits until it has (it finishes the page it is loading), so that
    /// it holds no reference to the pool, and through it to the file, once this returns.
    /// From the helper itself (when it held the pool's last reference) it only signals.
    pub(crate) fn stop(&self) {
        self.signal();
        let handle = self.handle.lock().take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }
}

fn run(shared: &Shared, pool: &Weak<BufferPool>) {
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    while !shared.stop.load(Ordering::Acquire) {
        if shared.queued.load(Ordering::Acquire) > 0 {
            let next = {
                let mut queue = shared.queue.lock();
                let next = queue.pop_front();
                shared.queued.store(queue.len(), Ordering::SeqCst);
                next
            };
            if let Some(id) = next {
                let Some(pool) = pool.upgrade() else {
                    return;
                };
                // A hint: an error here is met again by the reader, which reports it.
                let _ = pool.load_absent(id);
            }
            idle_since = Instant::now();
            continue;
        }
        // The clock is read every 64 rounds only: on some virtual machines it is a system call.
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(64) || idle_since.elapsed() < SPIN {
            std::hint::spin_loop();
            continue;
        }
        shared.parked.store(true, Ordering::SeqCst);
        if shared.queued.load(Ordering::SeqCst) == 0 && !shared.stop.load(Ordering::SeqCst) {
            std::thread::park_timeout(PARK);
        }
        shared.parked.store(false, Ordering::SeqCst);
        if pool.strong_count() == 0 {
            return;
        }
        idle_since = Instant::now();
    }
}
