//! Page-frame memory: one zeroed allocation holding every frame of a buffer pool, which on
//! Linux is asked to be backed by transparent huge pages.
//!
//! Why one allocation: a B+ tree lookup touches a few random pages, and with each frame its
//! own 4 KiB heap block every one of those touches also misses the TLB (the CPU's cache of
//! address translations covers a few MiB of 4 KiB pages, far less than a pool). Backed by
//! 2 MiB pages the whole pool is covered. In the SQL benchmark's index range select with the
//! whole database cached, running the engine's heap on huge pages took the time per select
//! from 1.79 to 1.43 ms (`docs/benchmarks.md`).
//!
//! The allocation is zeroed by the kernel as it is first touched (a large zeroed allocation is
//! a fresh anonymous mapping), so frames that were never used cost no memory: the resident set
//! still grows with the working set, in steps of at most one huge page.
//!
//! Each frame's bytes are handed out once, as a [`FrameBuf`] owned by that frame and only
//! reached through the frame's latch; the arena outlives every `FrameBuf` because the pool
//! drops its frames before its arena.

use std::alloc::Layout;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crate::error::{Result, StorageError};

/// Huge-page size the frames are aligned to (x86-64 and AArch64 with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// The memory of all frames.
pub(crate) struct FrameArena {
    /// The whole allocation, freed on drop.
    raw: NonNull<[u8]>,
    /// First frame: the first huge-page boundary inside the allocation.
    base: NonNull<u8>,
    frame_len: usize,
    frames: usize,
}

// SAFETY: the arena only hands out disjoint frames (each used under its frame's latch) and
// frees the memory when dropped; it has no other interior state.
unsafe impl Send for FrameArena {}
unsafe impl Sync for FrameArena {}

impl FrameArena {
    /// Zeroed memory for `frames` frames of `frame_len` bytes each. Fails, instead of
    /// aborting the process, when the system will not reserve that much address space (a
    /// budget far beyond the machine's memory).
    pub(crate) fn new(frames: usize, frame_len: usize) -> Result<FrameArena> {
        let too_large = || {
            StorageError::InvalidConfig(format!(
                "a buffer pool of {frames} frames of {frame_len} bytes cannot be allocated; \
                 lower buffer_pool_bytes"
            ))
        };
        let len = frames
            .checked_mul(frame_len)
            .and_then(|n| n.checked_add(HUGE_PAGE))
            .ok_or_else(too_large)?;
        let layout = Layout::array::<u8>(len).map_err(|_| too_large())?;
        // SAFETY: `layout` has a non-zero size. A zeroed allocation this large is a fresh
        // mapping: the allocator does not write the zeroes, so nothing is touched yet.
        let start =
            NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).ok_or_else(too_large)?;
        let raw = NonNull::slice_from_raw_parts(start, len);
        let skip = start.as_ptr().align_offset(HUGE_PAGE).min(HUGE_PAGE);
        // SAFETY: `skip <= HUGE_PAGE`, and the allocation is `HUGE_PAGE` longer than the frames.
        let base = unsafe { NonNull::new_unchecked(start.as_ptr().add(skip)) };
        advise_huge_pages(base.as_ptr(), frames * frame_len);
        Ok(FrameArena {
            raw,
            base,
            frame_len,
            frames,
        })
    }

    /// Every frame's buffer, in frame order. Called once, by the pool that owns the arena.
    pub(crate) fn buffers(&self) -> Vec<FrameBuf> {
        (0..self.frames)
            .map(|i| FrameBuf {
                // SAFETY: frame `i` lies inside the allocation (see `new`).
                ptr: unsafe { NonNull::new_unchecked(self.base.as_ptr().add(i * self.frame_len)) },
                len: self.frame_len,
            })
            .collect()
    }

    /// Where frame `idx`'s bytes start, for cache hints only: the pointer is never read
    /// through outside the frame's latch.
    pub(crate) fn frame_addr(&self, idx: usize) -> *const u8 {
        debug_assert!(idx < self.frames);
        self.base.as_ptr().wrapping_add(idx * self.frame_len)
    }
}

/// Asks the CPU to start loading the cache line holding `addr`. Only a hint: it never faults,
/// whatever the address, and changes no state, so a stale or racing address is harmless. A
/// lookup that walks many pages one after another otherwise waits for memory once per page
/// and per structure (page table, frame, page header); hinting a batch of pages first lets
/// those waits overlap.
#[inline(always)]
pub(crate) fn prefetch_line(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint with no architectural effect; SSE is baseline on x86-64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr.cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is a hint with no architectural effect and never faults.
    unsafe {
        std::arch::asm!(
            "prfm pldl1keep, [{0}]",
            in(reg) addr,
            options(nostack, readonly, preserves_flags)
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = addr;
}

impl Drop for FrameArena {
    fn drop(&mut self) {
        let layout = Layout::array::<u8>(self.raw.len()).expect("the layout `new` allocated");
        // SAFETY: `raw` was allocated in `new` with this layout and is freed only here.
        unsafe { std::alloc::dealloc(self.raw.as_ptr().cast(), layout) };
    }
}

/// Asks the kernel to back `[ptr, ptr + len)` with huge pages. Only a hint: where they are
/// unavailable (disabled, or another OS) the pages stay small and everything works the same.
#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    // SAFETY: the range lies inside a live allocation of this process; MADV_HUGEPAGE changes
    // no contents.
    let _ = unsafe { libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _len: usize) {}

/// One frame's bytes inside a [`FrameArena`].
pub(crate) struct FrameBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `FrameBuf` is the only handle to its bytes; the pool keeps it inside its frame's
// reader-writer latch, which orders every access.
unsafe impl Send for FrameBuf {}
unsafe impl Sync for FrameBuf {}

impl Deref for FrameBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is this frame's part of a live, initialised (zeroed)
        // allocation, and no other `FrameBuf` overlaps it.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for FrameBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_frames_are_zeroed_aligned_and_disjoint() {
        let arena = FrameArena::new(600, 4096).unwrap();
        let mut bufs = arena.buffers();
        assert_eq!(bufs.len(), 600);
        assert_eq!(bufs[0].as_ptr().align_offset(HUGE_PAGE), 0);
        for (i, b) in bufs.iter_mut().enumerate() {
            assert_eq!(b.len(), 4096);
            assert!(b.iter().all(|&x| x == 0), "frame {i} starts zeroed");
            b.fill(i as u8);
        }
        for (i, b) in bufs.iter().enumerate() {
            assert!(
                b.iter().all(|&x| x == i as u8),
                "frame {i} kept its own bytes"
            );
        }
    }

    #[test]
    fn test_an_impossible_size_is_an_error_not_an_abort() {
        for (frames, len) in [(usize::MAX / 2, 4096), (1 << 40, 1 << 20)] {
            assert!(matches!(
                FrameArena::new(frames, len),
                Err(StorageError::InvalidConfig(_))
            ));
        }
    }
}
