//! The MVCC key-value store: versioned keys, snapshot-isolated transactions, the two-phase
//! commit primitives the cluster layer calls, pessimistic locks and garbage collection.
//!
//! # Data
//!
//! Three trees of one [`Database`]:
//!
//! - `mvcc.write`: one entry per committed version, keyed by user key and commit timestamp
//!   (newest first, see [`keys`]); the value holds the kind (put, delete, rollback marker), the
//!   writer's start timestamp (as its distance below the commit timestamp) and the value.
//! - `mvcc.lock`: prewrite locks of unfinished two-phase transactions, keyed by user key.
//! - `mvcc.meta`: the highest timestamp handed out by a commit, so timestamps stay monotonic
//!   across restarts.
//!
//! # Transactions
//!
//! [`MvccStore::begin`] takes a start timestamp; the transaction reads the newest version
//! committed at or before it (its snapshot) and buffers its writes. [`Transaction::commit`] then,
//! in one atomic, durable [`Database::batch`]: checks every written key for a version committed
//! after the start timestamp (first committer wins: [`StorageError::WriteConflict`]) or a
//! prewrite lock, takes a commit timestamp, and writes the versions. Because writes are buffered
//! until commit and applied in one mini-transaction, a crash leaves a transaction entirely
//! committed or entirely absent: recovery needs no undo pass for local transactions. Two-phase
//! transactions are different: their prewrite locks are durable and survive a crash on purpose,
//! and [`MvccStore::check_txn_status`] / [`MvccStore::resolve_lock`] finish or undo them from
//! their primary key (see `twophase.rs`).
//!
//! Snapshot visibility is tied to durability: a transaction's snapshot is the newest commit
//! whose durable batch has returned (commits are applied and logged in timestamp order, so every
//! earlier one is durable too), so no transaction ever reads data a crash could take back, and
//! `begin` never waits.
//!
//! The isolation level is snapshot isolation. Dirty reads, lost updates and read skew cannot
//! happen; write skew can (two transactions that read overlapping data and write disjoint keys
//! both commit). Use [`Transaction::lock_for_update`] on the keys a decision depends on when that
//! matters.

mod gc;
pub mod keys;
mod locks;
mod twophase;
mod txn;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::background::Periodic;
use crate::db::Database;
use crate::error::{Result, StorageError};
use crate::pager::io_error;
use crate::wal::WalStats;
use crate::{Range, Tree};

pub use gc::GcReport;
use keys::{LockRecord, WriteKind, version_key, versions_prefix};
use locks::LockManager;
pub use twophase::{Mutation, TxnStatus};
pub use txn::{Savepoint, ScanKey, Transaction, TxnScan, TxnValues};

const WRITE_TREE: &str = "mvcc.write";
const LOCK_TREE: &str = "mvcc.lock";
const META_TREE: &str = "mvcc.meta";
const TS_KEY: &[u8] = b"ts";
/// Keys per latched pass of [`MvccStore::get_many_at`]: bounds how long a batch holds the
/// version tree's path latches (and so how long a writer of the tree can wait).
const MULTI_GET_CHUNK: usize = 256;
/// TTL of the prewrite locks of a large local transaction: "owned by this process". They never
/// expire while it runs; after a crash, [`MvccStore::open`] resolves them (the undo pass).
pub const LOCAL_TTL: u64 = u64::MAX;

/// MVCC settings.
#[derive(Debug, Clone)]
pub struct MvccConfig {
    /// How long a pessimistic lock request waits before [`StorageError::LockTimeout`].
    pub lock_wait_timeout: Duration,
    /// How often the background vacuum runs; `None` runs it only when called.
    pub gc_interval: Option<Duration>,
}

impl Default for MvccConfig {
    fn default() -> Self {
        MvccConfig {
            lock_wait_timeout: Duration::from_secs(5),
            gc_interval: Some(Duration::from_secs(60)),
        }
    }
}

/// Why a transaction was aborted, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    /// First committer wins.
    Conflict,
    /// Deadlock victim.
    Deadlock,
    /// Lock wait timed out.
    LockTimeout,
    /// A two-phase lock was in the way.
    Locked,
    /// The caller rolled back (or dropped the transaction).
    User,
    /// Any other error (I/O, ...).
    Error,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    aborts: [AtomicU64; 6],
    conflicts: AtomicU64,
    lock_waits: AtomicU64,
    lock_wait_nanos: AtomicU64,
    deadlocks: AtomicU64,
    gc_runs: AtomicU64,
    gc_versions: AtomicU64,
    gc_bytes: AtomicU64,
}

/// A snapshot of the store's counters, with the log and checkpoint figures of its database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MvccMetrics {
    /// Transactions committed (read-only ones included).
    pub commits: u64,
    /// Aborts by reason: conflict, deadlock, lock timeout, locked, user, error.
    pub aborts_conflict: u64,
    /// See `aborts_conflict`.
    pub aborts_deadlock: u64,
    /// See `aborts_conflict`.
    pub aborts_lock_timeout: u64,
    /// See `aborts_conflict`.
    pub aborts_locked: u64,
    /// See `aborts_conflict`.
    pub aborts_user: u64,
    /// See `aborts_conflict`.
    pub aborts_error: u64,
    /// Write-write conflicts detected (commit or lock_for_update).
    pub conflicts: u64,
    /// Lock requests that had to wait.
    pub lock_waits: u64,
    /// Total time spent waiting for locks, nanoseconds.
    pub lock_wait_nanos: u64,
    /// Deadlocks detected.
    pub deadlocks: u64,
    /// Vacuum runs.
    pub gc_runs: u64,
    /// Versions removed by vacuum.
    pub gc_versions_removed: u64,
    /// Key and value bytes removed by vacuum.
    pub gc_bytes_reclaimed: u64,
    /// The database's write-ahead log counters (bytes written, syncs, sync time).
    pub wal: WalStats,
    /// Checkpoints run since the database was opened.
    pub checkpoints: u64,
    /// Their total duration, nanoseconds.
    pub checkpoint_nanos: u64,
}

struct Shared {
    db: Database,
    write: Tree,
    lock: Tree,
    meta: Tree,
    config: MvccConfig,
    /// The last timestamp handed out.
    last_ts: AtomicU64,
    /// The newest commit timestamp whose commit is durable, together with every commit before
    /// it (commits are logged in timestamp order): new transactions read at this snapshot.
    visible_ts: AtomicU64,
    locks: LockManager,
    /// Start timestamps of running transactions (with counts), for the vacuum's safe point.
    active: Mutex<BTreeMap<u64, usize>>,
    counters: Counters,
    gc: Mutex<Option<Periodic>>,
}

/// A multi-version, transactional key-value store on top of a [`Database`].
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct MvccStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MvccStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MvccStore")
            .field("last_ts", &self.shared.last_ts.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(gc) = self.gc.get_mut().take() {
            gc.signal();
        }
    }
}

fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch (lock creation times and TTLs).
pub fn now_ms() -> u64 {
    wall_micros() / 1000
}

impl MvccStore {
    /// Opens the store in `db`, creating its trees on first use, and starts the background
    /// vacuum if configured.
    pub fn open(db: &Database, config: MvccConfig) -> Result<MvccStore> {
        let write = db.tree(WRITE_TREE)?;
        let lock = db.tree(LOCK_TREE)?;
        let meta = db.tree(META_TREE)?;
        let mut last = match meta.get(TS_KEY)? {
            Some(raw) => u64::from_le_bytes(
                raw.as_slice()
                    .try_into()
                    .map_err(|_| StorageError::Integrity("MVCC timestamp is not a u64".into()))?,
            ),
            None => 0,
        };
        // Prewrite locks carry start timestamps from before the restart.
        for entry in lock.iter() {
            let (_, raw) = entry?;
            last = last.max(LockRecord::decode(&raw)?.start_ts);
        }
        let store = MvccStore {
            shared: Arc::new(Shared {
                db: db.clone(),
                write,
                lock,
                meta,
                last_ts: AtomicU64::new(last),
                visible_ts: AtomicU64::new(last),
                locks: LockManager::default(),
                active: Mutex::new(BTreeMap::new()),
                counters: Counters::default(),
                gc: Mutex::new(None),
                config,
            }),
        };
        store.recover_local_locks()?;
        if let Some(interval) = store.shared.config.gc_interval {
            let weak = Arc::downgrade(&store.shared);
            let gc = Periodic::start("nq-mvcc-gc", interval, move || {
                let Some(shared) = weak.upgrade() else {
                    return false;
                };
                let store = MvccStore { shared };
                let safe_point = store.safe_point();
                if let Err(err) = store.vacuum(safe_point) {
                    tracing::warn!(error = %err, "background vacuum failed");
                }
                true
            })
            .map_err(|e| io_error(&db.path(), e))?;
            *store.shared.gc.lock() = Some(gc);
        }
        Ok(store)
    }

    /// The database underneath.
    pub fn database(&self) -> &Database {
        &self.shared.db
    }

    /// Hands out a new timestamp: above every earlier one, and at least the wall clock in
    /// microseconds, so timestamps stay monotonic across restarts even before the first commit
    /// persists the high-water mark.
    pub fn next_timestamp(&self) -> u64 {
        let now = wall_micros();
        let prev = self
            .shared
            .last_ts
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(last.saturating_add(1).max(now))
            })
            .expect("the closure always returns Some");
        prev.saturating_add(1).max(now)
    }

    /// The newest timestamp handed out so far; every later one is greater.
    pub fn last_timestamp(&self) -> u64 {
        self.shared.last_ts.load(Ordering::Acquire)
    }

    /// Makes later timestamps exceed `ts` (one handed out by another node's oracle).
    pub fn observe_timestamp(&self, ts: u64) {
        self.shared.last_ts.fetch_max(ts, Ordering::AcqRel);
    }

    /// The snapshot new transactions read at: every commit acknowledged so far, and only
    /// durable ones. No waiting: commits publish their timestamp once durable, and since they
    /// are applied and logged in timestamp order, everything at or below it is durable too.
    pub fn snapshot_timestamp(&self) -> u64 {
        self.shared.visible_ts.load(Ordering::Acquire)
    }

    /// Makes a durable commit visible to transactions that begin from now on.
    fn publish(&self, commit_ts: u64) {
        self.shared
            .visible_ts
            .fetch_max(commit_ts, Ordering::AcqRel);
    }

    /// Starts a transaction.
    pub fn begin(&self) -> Result<Transaction> {
        let start_ts = self.snapshot_timestamp();
        let id = self.next_timestamp();
        *self.shared.active.lock().entry(start_ts).or_insert(0) += 1;
        Ok(Transaction::new(self.clone(), start_ts, id))
    }

    fn end_active(&self, start_ts: u64) {
        let mut active = self.shared.active.lock();
        if let Some(n) = active.get_mut(&start_ts) {
            *n -= 1;
            if *n == 0 {
                active.remove(&start_ts);
            }
        }
    }

    /// The oldest timestamp any running transaction may still read at: versions older than
    /// the newest one at or below it are garbage.
    pub fn safe_point(&self) -> u64 {
        let oldest = self.shared.active.lock().keys().next().copied();
        match oldest {
            Some(ts) => ts,
            None => self.snapshot_timestamp(),
        }
    }

    /// Reads `key` as of timestamp `ts`. A prewrite lock of a transaction that started at or
    /// before `ts` makes the answer unknown: [`StorageError::KeyLocked`].
    pub fn get_at(&self, key: &[u8], ts: u64) -> Result<Option<Vec<u8>>> {
        self.check_lock(key, ts)?;
        let target = version_key(key, ts);
        let mut out = None;
        let mut raw = Vec::new();
        self.shared
            .write
            .seek_sorted(std::iter::once(target.as_slice()), |_, leaf| {
                visible_version(leaf, &target, &mut raw, |v| {
                    out = Some(v.to_vec());
                    Ok(())
                })
            })?;
        Ok(out)
    }

    /// Reads every key of `keys` as of timestamp `ts`, in one pass over the version tree:
    /// the values come back in the order of `keys`. Same answers and errors as
    /// [`MvccStore::get_at`] per key (a prewrite lock that hides a key's value fails the whole
    /// call with [`StorageError::KeyLocked`]), but the keys are looked up in ascending order
    /// with the tree path kept latched, so neighbouring keys share descents and leaves.
    pub fn get_many_at<K: AsRef<[u8]>>(&self, keys: &[K], ts: u64) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        self.get_many_at_with(keys, ts, |i, v| {
            out[i] = Some(v.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    /// [`MvccStore::get_many_at`] without copying the values: `found(i, value)` sees the value
    /// of `keys[i]` where it lies (in the page, or assembled from an overflow chain), in key
    /// order, and is not called for keys without a value. A caller that decodes each value
    /// (a row) saves an allocation and a copy per key. An error of `found` ends the call.
    pub fn get_many_at_with<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        ts: u64,
        mut found: impl FnMut(usize, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| keys[a].as_ref().cmp(keys[b].as_ref()));
        self.check_locks_sorted(keys, &order, ts)?;
        // The version keys of a chunk, back to back in one buffer: `ends[j]` is where the
        // `j`th ends.
        let mut targets: Vec<u8> = Vec::new();
        let mut ends: Vec<usize> = Vec::with_capacity(MULTI_GET_CHUNK);
        let mut raw = Vec::new();
        for chunk in order.chunks(MULTI_GET_CHUNK) {
            targets.clear();
            ends.clear();
            for &i in chunk {
                keys::push_version_key(keys[i].as_ref(), ts, &mut targets);
                ends.push(targets.len());
            }
            let target = |j: usize| &targets[if j == 0 { 0 } else { ends[j - 1] }..ends[j]];
            self.shared
                .write
                .seek_sorted((0..chunk.len()).map(&target), |j, leaf| {
                    visible_version(leaf, target(j), &mut raw, |v| found(chunk[j], v))
                })?;
        }
        Ok(())
    }

    /// [`MvccStore::check_lock`] for every key of `keys` (`order` sorts them), with one scan of
    /// the lock tree over their span.
    fn check_locks_sorted<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        order: &[usize],
        ts: u64,
    ) -> Result<()> {
        let (Some(&first), Some(&last)) = (order.first(), order.last()) else {
            return Ok(());
        };
        let (first, last) = (keys[first].as_ref(), keys[last].as_ref());
        if first == last {
            return self.check_lock(first, ts);
        }
        let locks: Vec<(Vec<u8>, Vec<u8>)> = self
            .shared
            .lock
            .range(first..=last)
            .collect::<Result<_>>()?;
        for (key, raw) in locks {
            let wanted = order
                .binary_search_by(|&i| keys[i].as_ref().cmp(key.as_slice()))
                .is_ok();
            if wanted {
                self.check_lock_record(&key, LockRecord::decode(&raw)?, ts)?;
            }
        }
        Ok(())
    }

    fn check_lock(&self, key: &[u8], ts: u64) -> Result<()> {
        if let Some(raw) = self.shared.lock.get(key)? {
            self.check_lock_record(key, LockRecord::decode(&raw)?, ts)?;
        }
        Ok(())
    }

    /// Decides whether a reader at `ts` may read past `lock`. A lock of a large local
    /// transaction never blocks: if its primary committed at or before `ts` the key is
    /// committed on the spot, otherwise the transaction's commit timestamp is (or will be)
    /// after `ts` and the older version is the right answer. Any other lock of a transaction
    /// that started at or before `ts` makes the answer unknown.
    fn check_lock_record(&self, key: &[u8], lock: LockRecord, ts: u64) -> Result<()> {
        if lock.start_ts > ts || lock.kind == WriteKind::Lock {
            return Ok(());
        }
        if lock.ttl_ms == LOCAL_TTL {
            if let Some(commit_ts) = self.committed_at(&lock.primary, lock.start_ts)?
                && commit_ts <= ts
            {
                self.commit_keys(&[key.to_vec()], lock.start_ts, commit_ts)?;
            }
            return Ok(());
        }
        Err(StorageError::KeyLocked {
            key: key.to_vec(),
            lock_ts: lock.start_ts,
            primary: lock.primary,
        })
    }

    /// Reads the keys in `[start, end)` (`end = None`: to the end) as of `ts`, in key order, at
    /// most `limit` of them. Streams: versions are read one leaf at a time.
    pub fn scan_at(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        ts: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.check_range_locks(start, end, ts)?;
        let mut out = Vec::new();
        let mut scan = VersionScan::new(&self.shared.write, start, end);
        while out.len() < limit {
            let Some(item) = scan.next_visible(ts)? else {
                break;
            };
            out.push(item);
        }
        Ok(out)
    }

    /// Fails if a prewrite lock in `[start, end)` hides what a reader at `ts` should see.
    fn check_range_locks(&self, start: &[u8], end: Option<&[u8]>, ts: u64) -> Result<()> {
        let upper = match end {
            Some(end) => Bound::Excluded(end.to_vec()),
            None => Bound::Unbounded,
        };
        let locks: Vec<(Vec<u8>, Vec<u8>)> = self
            .shared
            .lock
            .range::<Vec<u8>, _>((Bound::Included(start.to_vec()), upper))
            .collect::<Result<_>>()?;
        for (key, raw) in locks {
            self.check_lock_record(&key, LockRecord::decode(&raw)?, ts)?;
        }
        Ok(())
    }

    /// Commit timestamp of the newest committed put or delete of `key`.
    fn latest_commit_ts(&self, key: &[u8]) -> Result<Option<u64>> {
        let prefix = versions_prefix(key);
        let mut range = self.shared.write.prefix(&prefix);
        while let Some(entry) = range.next_ref() {
            let (k, v) = entry?;
            if matches!(keys::record_kind(v)?, WriteKind::Put | WriteKind::Delete) {
                return Ok(Some(keys::decode_version_key(k)?.1));
            }
        }
        Ok(None)
    }

    /// [`MvccStore::latest_commit_ts`] of each of `keys` (ascending), walking the version tree
    /// once per [`MULTI_GET_CHUNK`] keys instead of descending from the root per key: the
    /// first-committer-wins check of a commit runs this over its whole write set.
    fn latest_commit_ts_sorted(&self, keys: &[&[u8]]) -> Result<Vec<Option<u64>>> {
        debug_assert!(keys.is_sorted());
        let mut out = vec![None; keys.len()];
        let mut prefixes: Vec<Vec<u8>> = Vec::with_capacity(MULTI_GET_CHUNK.min(keys.len()));
        let mut raw = Vec::new();
        for (c, chunk) in keys.chunks(MULTI_GET_CHUNK).enumerate() {
            prefixes.clear();
            prefixes.extend(chunk.iter().map(|k| versions_prefix(k)));
            let base = c * MULTI_GET_CHUNK;
            self.shared
                .write
                .seek_sorted(prefixes.iter().map(Vec::as_slice), |j, leaf| {
                    let prefix = prefixes[j].as_slice();
                    for cell in leaf.position()..leaf.len() {
                        let (k, v) = leaf.entry(cell)?;
                        if !k.starts_with(prefix) {
                            return Ok(false);
                        }
                        let record = leaf.value_bytes(v, &mut raw)?;
                        if matches!(
                            keys::record_kind(record)?,
                            WriteKind::Put | WriteKind::Delete
                        ) {
                            out[base + j] = Some(keys::version_ts(&k.to_vec())?);
                            return Ok(false);
                        }
                    }
                    // The key's versions may go on in the next leaf.
                    Ok(true)
                })?;
        }
        Ok(out)
    }

    fn persist_ts(&self, ts: u64) -> Result<()> {
        self.shared
            .meta
            .insert(TS_KEY, &ts.to_le_bytes())
            .map(|_| ())
    }

    fn count_abort(&self, reason: AbortReason) {
        let i = match reason {
            AbortReason::Conflict => 0,
            AbortReason::Deadlock => 1,
            AbortReason::LockTimeout => 2,
            AbortReason::Locked => 3,
            AbortReason::User => 4,
            AbortReason::Error => 5,
        };
        self.shared.counters.aborts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counters, with the database's log and checkpoint figures.
    pub fn metrics(&self) -> MvccMetrics {
        let c = &self.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (checkpoints, checkpoint_time) = self.shared.db.checkpoint_stats();
        MvccMetrics {
            commits: load(&c.commits),
            aborts_conflict: load(&c.aborts[0]),
            aborts_deadlock: load(&c.aborts[1]),
            aborts_lock_timeout: load(&c.aborts[2]),
            aborts_locked: load(&c.aborts[3]),
            aborts_user: load(&c.aborts[4]),
            aborts_error: load(&c.aborts[5]),
            conflicts: load(&c.conflicts),
            lock_waits: load(&c.lock_waits),
            lock_wait_nanos: load(&c.lock_wait_nanos),
            deadlocks: load(&c.deadlocks),
            gc_runs: load(&c.gc_runs),
            gc_versions_removed: load(&c.gc_versions),
            gc_bytes_reclaimed: load(&c.gc_bytes),
            wal: self.shared.db.wal_stats(),
            checkpoints,
            checkpoint_nanos: checkpoint_time.as_nanos() as u64,
        }
    }
}

/// Reads the version visible at the timestamp of `target` (a [`version_key`]) from the leaf
/// positioned at `target`: the first put or delete among the key's versions from there on
/// (newest first), skipping rollback and lock records, and hands a put's value to `found`.
/// True when the leaf ended undecided: the key's older versions continue in the next leaf
/// (what [`crate::btree::Tree::seek_sorted`] visits when told `true`). `raw` is scratch space
/// for overflow records.
fn visible_version(
    leaf: &crate::btree::LeafView<'_>,
    target: &[u8],
    raw: &mut Vec<u8>,
    found: impl FnOnce(&[u8]) -> Result<()>,
) -> Result<bool> {
    let prefix = &target[..target.len() - 8];
    for cell in leaf.position()..leaf.len() {
        let (k, v) = leaf.entry(cell)?;
        if !k.starts_with(prefix) {
            return Ok(false);
        }
        let record = leaf.value_bytes(v, raw)?;
        match keys::split_record(record)? {
            (WriteKind::Put, value) => {
                found(value)?;
                return Ok(false);
            }
            (WriteKind::Delete, _) => return Ok(false),
            (WriteKind::Rollback | WriteKind::Lock, _) => continue,
        }
    }
    // Every version from `target` on was a rollback or lock record: the answer may be on the
    // next leaf.
    Ok(true)
}

/// Walks the version tree over a user-key range and yields, per user key, the version visible
/// at a timestamp.
pub(crate) struct VersionScan {
    range: Range,
    end_prefix: Option<Vec<u8>>,
    /// The user key (encoded prefix) whose visible version was already decided, if
    /// `has_decided`; the buffer is reused from key to key.
    decided: Vec<u8>,
    has_decided: bool,
}

impl VersionScan {
    pub(crate) fn new(write: &Tree, start: &[u8], end: Option<&[u8]>) -> VersionScan {
        VersionScan {
            range: write.range(versions_prefix(start).as_slice()..),
            end_prefix: end.map(versions_prefix),
            decided: Vec::new(),
            has_decided: false,
        }
    }

    /// Like [`VersionScan::next_visible`], but hands the visible value to `f` where it lies
    /// (in the range's copy of the leaf) instead of returning the user key and a copy of the
    /// value: a scan that needs neither saves two allocations and the key's unescaping per row.
    pub(crate) fn next_visible_with<T>(
        &mut self,
        ts: u64,
        f: impl FnOnce(txn::ScanKey<'_>, &[u8]) -> T,
    ) -> Result<Option<T>> {
        while let Some(entry) = self.range.next_ref() {
            let (k, v) = entry?;
            if let Some(end) = &self.end_prefix
                && k >= end.as_slice()
            {
                return Ok(None);
            }
            let body = &k[..k.len() - 8.min(k.len())];
            if self.has_decided && self.decided == body {
                continue;
            }
            if keys::version_ts(k)? > ts {
                continue;
            }
            let (kind, value) = keys::split_record(v)?;
            if matches!(kind, WriteKind::Rollback | WriteKind::Lock) {
                continue;
            }
            self.decided.clear();
            self.decided.extend_from_slice(body);
            self.has_decided = true;
            if kind == WriteKind::Put {
                return Ok(Some(f(txn::ScanKey::escaped(&self.decided), value)));
            }
        }
        Ok(None)
    }

    pub(crate) fn next_visible(&mut self, ts: u64) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        // The user key is the decided body, unescaped; it is decoded only for a returned row.
        let Some(value) = self.next_visible_with(ts, |_, value| value.to_vec())? else {
            return Ok(None);
        };
        Ok(Some((keys::decode_user_key(&self.decided)?, value)))
    }
}
