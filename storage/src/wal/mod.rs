//! The write-ahead log: segment files of checksummed records, group commit, and the scan
//! that recovery starts from.
//!
//! # Positions
//!
//! An LSN is a byte position in the log stream. [`Wal::append`] returns the position *after*
//! the record, the value a commit waits for and a page records as its LSN: the write-ahead rule
//! is "page LSN <= durable LSN before the page is written".
//!
//! # Group commit
//!
//! Appends only encode into an in-memory buffer. [`Wal::flush`] makes the log durable up to a
//! position: the first caller that finds no flush in progress becomes the leader, takes the whole
//! buffer, writes it and syncs once; callers arriving meanwhile wait and are usually covered by
//! that single `fdatasync`. With [`SyncPolicy::Relaxed`], `flush` writes to the operating system
//! without syncing and a background thread syncs every interval: for when another log (Raft's)
//! already makes writes durable.
//!
//! # Failure
//!
//! A failed write or sync poisons the log: every later call fails until the database is reopened
//! and recovered, because after a failed `fsync` the kernel may have dropped the dirty pages and a
//! retry cannot be trusted.
//!
//! # Opening
//!
//! [`Wal::open`] reads every segment. Bytes at the end of the last segment that are not a valid
//! record are a torn tail from a crash mid-write and are cut off. Damage anywhere else (an earlier
//! segment, or a bad record followed by valid ones) is [`StorageError::LogCorruption`]: records
//! that were acknowledged cannot be read, and recovery must not silently drop them.

mod record;
mod segment;

use segment::Scan;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

pub use record::{Lsn, Record};

use crate::background::Periodic;
use crate::error::{Result, StorageError};
use crate::pager::io_error;
use crate::vfs::{StdVfs, Vfs, VfsFile};

/// When appended records become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every flush ends with `fdatasync` (concurrent flushes share one). The default.
    Fsync,
    /// Flushes hand records to the operating system; a background thread syncs every interval.
    /// A power cut can lose up to one interval of acknowledged records.
    Relaxed {
        /// Time between background syncs.
        interval: Duration,
    },
}

/// Log settings.
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// A new segment starts once the current one holds this many bytes.
    pub segment_bytes: u64,
    /// Durability of flushes.
    pub sync: SyncPolicy,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: 64 << 20,
            sync: SyncPolicy::Fsync,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended.
    pub records: u64,
    /// Bytes appended (headers included).
    pub bytes: u64,
    /// Write batches (one per group commit leader).
    pub flushes: u64,
    /// Data syncs issued.
    pub syncs: u64,
    /// Total time spent in data syncs, nanoseconds.
    pub sync_nanos: u64,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    bytes: AtomicU64,
    flushes: AtomicU64,
    syncs: AtomicU64,
    sync_nanos: AtomicU64,
}

struct State {
    /// Encoded records not yet written, starting at `buffer_start`.
    buffer: Vec<u8>,
    buffer_start: Lsn,
    next: Lsn,
    /// Positions among the buffered records where a new segment begins.
    rotations: Vec<Lsn>,
    /// Bytes assigned to the segment being filled.
    segment_fill: u64,
    /// Everything before this is in the operating system.
    written: Lsn,
    /// Everything before this is durable under the sync policy.
    durable: Lsn,
    flushing: bool,
    poisoned: Option<String>,
}

/// The segment the leader writes to. Locked only by the flush leader and the syncer.
struct Writer {
    file: Box<dyn VfsFile>,
    start: Lsn,
    /// Everything before this is synced to disk.
    synced: Lsn,
    written: Lsn,
}

/// The write-ahead log of one database.
pub struct Wal {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    config: WalConfig,
    state: Mutex<State>,
    flushed: Condvar,
    writer: Mutex<Writer>,
    counters: Counters,
    syncer: Mutex<Option<Periodic>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`, cutting off a torn tail.
    pub fn open(dir: impl AsRef<Path>, config: WalConfig) -> Result<Arc<Wal>> {
        Wal::open_with(Arc::new(StdVfs), dir, config)
    }

    /// Like [`Wal::open`], on the given file system (a [`crate::vfs::FaultVfs`] in crash tests).
    pub fn open_with(
        vfs: Arc<dyn Vfs>,
        dir: impl AsRef<Path>,
        config: WalConfig,
    ) -> Result<Arc<Wal>> {
        let dir = dir.as_ref().to_path_buf();
        if config.segment_bytes < 4096 {
            return Err(StorageError::InvalidConfig(format!(
                "wal segment_bytes {} is below 4096",
                config.segment_bytes
            )));
        }
        vfs.create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let (start, end) = recover_segments(&*vfs, &dir)?;
        let path = segment::path_for(&dir, start);
        let file = vfs.open(&path).map_err(|e| io_error(&path, e))?;
        let wal = Arc::new(Wal {
            state: Mutex::new(State {
                buffer: Vec::new(),
                buffer_start: end,
                next: end,
                rotations: Vec::new(),
                segment_fill: end - start,
                written: end,
                durable: end,
                flushing: false,
                poisoned: None,
            }),
            flushed: Condvar::new(),
            writer: Mutex::new(Writer {
                file,
                start,
                synced: end,
                written: end,
            }),
            counters: Counters::default(),
            syncer: Mutex::new(None),
            vfs,
            dir,
            config,
        });
        if let SyncPolicy::Relaxed { interval } = wal.config.sync {
            let weak = Arc::downgrade(&wal);
            let syncer = Periodic::start("nq-wal-sync", interval, move || {
                let Some(wal) = weak.upgrade() else {
                    return false;
                };
                if let Err(err) = wal.sync() {
                    wal.state.lock().poisoned = Some(err.to_string());
                    tracing::error!(error = %err, "background log sync failed");
                }
                true
            })
            .map_err(|e| io_error(&wal.dir, e))?;
            *wal.syncer.lock() = Some(syncer);
        }
        Ok(wal)
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Position after the last appended record.
    pub fn next_lsn(&self) -> Lsn {
        self.state.lock().next
    }

    /// Everything before this position is durable (under the sync policy).
    pub fn durable_lsn(&self) -> Lsn {
        self.state.lock().durable
    }

    /// Appends a record and returns the position just after it. The record is durable once
    /// [`Wal::flush`] has been called with that position (or a later one).
    pub fn append(&self, kind: u8, payload: &[u8]) -> Result<Lsn> {
        if payload.len() > u32::MAX as usize {
            return Err(StorageError::ValueTooLarge {
                len: payload.len(),
                max: u32::MAX as usize,
            });
        }
        let len = (record::HEADER_LEN + payload.len()) as u64;
        let mut st = self.state.lock();
        if let Some(reason) = &st.poisoned {
            return Err(self.poisoned_error(reason));
        }
        let lsn = st.next;
        if st.segment_fill > 0 && st.segment_fill + len > self.config.segment_bytes {
            st.rotations.push(lsn);
            st.segment_fill = 0;
        }
        record::encode(&mut st.buffer, lsn, kind, payload);
        st.segment_fill += len;
        st.next = lsn + len;
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(st.next)
    }

    fn poisoned_error(&self, reason: &str) -> StorageError {
        StorageError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(format!(
                "write-ahead log failed earlier ({reason}); reopen the database to recover"
            )),
        }
    }

    /// Makes every record before `upto` durable, sharing the write and sync with concurrent
    /// callers.
    pub fn flush(&self, upto: Lsn) -> Result<()> {
        let mut st = self.state.lock();
        loop {
            if let Some(reason) = &st.poisoned {
                return Err(self.poisoned_error(reason));
            }
            if st.durable >= upto.min(st.next) {
                return Ok(());
            }
            if st.flushing {
                self.flushed.wait(&mut st);
                continue;
            }
            // Lead: take everything buffered so far, including later callers' records.
            st.flushing = true;
            let data = std::mem::take(&mut st.buffer);
            let start = st.buffer_start;
            let end = st.next;
            st.buffer_start = end;
            let rotations = std::mem::take(&mut st.rotations);
            drop(st);
            let sync = self.config.sync == SyncPolicy::Fsync;
            let result = self.write_out(start, &data, &rotations, sync);
            st = self.state.lock();
            st.flushing = false;
            match result {
                Ok(()) => {
                    // Under the relaxed policy "durable" means handed to the operating system;
                    // the syncer makes it survive a power cut within one interval.
                    st.written = end;
                    st.durable = end;
                }
                Err(err) => {
                    st.poisoned = Some(err.to_string());
                    self.flushed.notify_all();
                    return Err(err);
                }
            }
            self.flushed.notify_all();
        }
    }

    /// Like [`Wal::flush`], but synced to disk whatever the policy: before a data page is
    /// written, the log records describing it must survive a power cut, or the page could
    /// hold half of a change whose record is lost.
    pub fn flush_synced(&self, upto: Lsn) -> Result<()> {
        self.flush(upto)?;
        if self.config.sync != SyncPolicy::Fsync {
            let mut writer = self.writer.lock();
            if writer.synced < upto {
                self.sync_writer(&mut writer)?;
            }
        }
        Ok(())
    }

    /// The sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.config.sync
    }

    /// Flushes everything appended so far.
    pub fn flush_all(&self) -> Result<()> {
        let next = self.next_lsn();
        self.flush(next)
    }

    fn write_out(&self, start: Lsn, data: &[u8], rotations: &[Lsn], sync: bool) -> Result<()> {
        let mut writer = self.writer.lock();
        let mut lsn = start;
        for &boundary in rotations
            .iter()
            .chain(std::iter::once(&(start + data.len() as Lsn)))
        {
            let chunk = &data[(lsn - start) as usize..(boundary - start) as usize];
            if !chunk.is_empty() {
                let at = segment::HEADER_LEN + (lsn - writer.start);
                let path = segment::path_for(&self.dir, writer.start);
                writer
                    .file
                    .write_all_at(chunk, at)
                    .map_err(|e| io_error(&path, e))?;
                writer.written = boundary;
            }
            lsn = boundary;
            if rotations.contains(&boundary) {
                // The finished segment is synced before records go to the next one, so the log
                // on disk never has a hole, whatever the policy.
                self.sync_writer(&mut writer)?;
                writer.file = segment::create(&*self.vfs, &self.dir, boundary)?;
                writer.start = boundary;
            }
        }
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        if sync {
            self.sync_writer(&mut writer)?;
        }
        Ok(())
    }

    fn sync_writer(&self, writer: &mut Writer) -> Result<()> {
        if writer.synced >= writer.written {
            return Ok(());
        }
        let began = Instant::now();
        let path = segment::path_for(&self.dir, writer.start);
        writer.file.sync_data().map_err(|e| io_error(&path, e))?;
        writer.synced = writer.written;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        self.counters
            .sync_nanos
            .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs whatever was written (the relaxed policy's background work; also used on close).
    pub fn sync(&self) -> Result<()> {
        let mut writer = self.writer.lock();
        self.sync_writer(&mut writer)
    }

    /// Reads the durable records at or after `from`, one segment in memory at a time.
    pub fn read_from(&self, from: Lsn) -> Result<WalReader> {
        let segments = segment::list(&*self.vfs, &self.dir)?;
        Ok(WalReader {
            vfs: Arc::clone(&self.vfs),
            dir: self.dir.clone(),
            segments,
            next_segment: 0,
            from,
            until: self.durable_lsn(),
            pending: Vec::new().into_iter(),
        })
    }

    /// Deletes segments that hold only records before `lsn` (everything older than the last
    /// checkpoint). The segment being written is never deleted. Returns how many were removed.
    pub fn remove_before(&self, lsn: Lsn) -> Result<usize> {
        let current = self.writer.lock().start;
        let starts = segment::list(&*self.vfs, &self.dir)?;
        let mut removed = 0;
        for pair in starts.windows(2) {
            let (start, next_start) = (pair[0], pair[1]);
            if next_start <= lsn && start < current {
                let path = segment::path_for(&self.dir, start);
                self.vfs.remove(&path).map_err(|e| io_error(&path, e))?;
                removed += 1;
            }
        }
        if removed > 0 {
            segment::sync_dir(&*self.vfs, &self.dir)?;
        }
        Ok(removed)
    }

    /// Counters for metrics.
    pub fn stats(&self) -> WalStats {
        let c = &self.counters;
        WalStats {
            records: c.records.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            sync_nanos: c.sync_nanos.load(Ordering::Relaxed),
        }
    }

    /// Flushes and syncs everything and stops the background syncer.
    pub fn close(&self) -> Result<()> {
        if let Some(syncer) = self.syncer.lock().take() {
            syncer.stop();
        }
        self.flush_all()?;
        self.sync()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some(syncer) = self.syncer.get_mut().take() {
            syncer.signal();
        }
    }
}

/// Validates every segment in `dir`, cuts a torn tail off the last one, and returns the start
/// of the last segment and the end of the log. Creates the first segment of an empty log.
fn recover_segments(vfs: &dyn Vfs, dir: &Path) -> Result<(Lsn, Lsn)> {
    let mut starts = segment::list(vfs, dir)?;
    // A crash while creating a segment can leave it without a complete header, and then it
    // holds no records: drop it (the previous segment is the last again).
    while let Some(&last) = starts.last()
        && segment::header_is_damaged(vfs, dir, last)?
    {
        if starts.len() == 1 && segment::file_len(vfs, dir, last)? > segment::HEADER_LEN {
            return Err(segment::corruption(
                dir,
                last,
                last,
                "segment header damaged",
            ));
        }
        let path = segment::path_for(dir, last);
        vfs.remove(&path).map_err(|e| io_error(&path, e))?;
        segment::sync_dir(vfs, dir)?;
        starts.pop();
        if starts.is_empty() {
            segment::create(vfs, dir, last)?;
            return Ok((last, last));
        }
    }
    let Some(&last) = starts.last() else {
        segment::create(vfs, dir, 0)?;
        return Ok((0, 0));
    };
    let mut prev_end: Option<Lsn> = None;
    for &start in &starts {
        if let Some(end) = prev_end
            && end != start
        {
            return Err(segment::corruption(
                dir,
                start,
                end,
                &format!("segment starts at {start} but the previous one ends at {end}"),
            ));
        }
        if start != last {
            // A finished segment was synced before the next one began, so it ends exactly at
            // its length. Its records are checked when they are read (recovery reads every
            // segment it needs anyway), so opening does not read the whole log twice.
            if segment::header_is_damaged(vfs, dir, start)? {
                return Err(segment::corruption(
                    dir,
                    start,
                    start,
                    "segment header damaged",
                ));
            }
            let len = segment::file_len(vfs, dir, start)?;
            prev_end = Some(start + len.saturating_sub(segment::HEADER_LEN));
            continue;
        }
        let scan = segment::scan(vfs, dir, start, false)?;
        if let Some((lsn, reason)) = scan.damage {
            if start != last {
                return Err(segment::corruption(dir, start, lsn, &reason));
            }
            if segment::valid_record_after(vfs, dir, start, lsn)? {
                return Err(segment::corruption(
                    dir,
                    start,
                    lsn,
                    &format!("{reason}, and valid records follow it"),
                ));
            }
            tracing::warn!(
                segment = start,
                lsn,
                reason,
                "cutting torn tail off the log"
            );
            segment::truncate(vfs, dir, start, scan.end)?;
        }
        prev_end = Some(scan.end);
    }
    Ok((last, prev_end.unwrap_or(last)))
}

/// Iterates over log records at or after a position, in order.
pub struct WalReader {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    segments: Vec<Lsn>,
    next_segment: usize,
    from: Lsn,
    until: Lsn,
    pending: std::vec::IntoIter<Record>,
}

impl std::fmt::Debug for WalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalReader")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Iterator for WalReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(rec) = self.pending.next() {
                if rec.lsn >= self.until {
                    return None;
                }
                return Some(Ok(rec));
            }
            let start = *self.segments.get(self.next_segment)?;
            self.next_segment += 1;
            // Skip segments that end before `from`.
            if let Some(&next_start) = self.segments.get(self.next_segment)
                && next_start <= self.from
            {
                continue;
            }
            match segment::scan(&*self.vfs, &self.dir, start, true) {
                Ok(Scan {
                    damage: Some((lsn, reason)),
                    end,
                    ..
                }) if end < self.until => {
                    // Opening cut any torn tail off, so damage before the durable end is real.
                    return Some(Err(segment::corruption(&self.dir, start, lsn, &reason)));
                }
                Ok(scan) => {
                    let from = self.from;
                    let records: Vec<Record> =
                        scan.records.into_iter().filter(|r| r.lsn >= from).collect();
                    self.pending = records.into_iter();
                }
                Err(err) => return Some(Err(err)),
            }
        }
    }
}
