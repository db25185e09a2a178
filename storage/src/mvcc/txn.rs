//! A snapshot-isolated transaction with buffered writes.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use crate::error::{Result, StorageError};

use super::keys::{self, WriteKind, WriteRecord};
use super::{AbortReason, MvccStore, VersionScan};

/// A transaction: reads see the snapshot at its start timestamp plus its own writes; writes
/// are buffered and applied atomically and durably by [`Transaction::commit`]. Dropping an
/// unfinished transaction rolls it back.
pub struct Transaction {
    store: MvccStore,
    /// The snapshot: the newest commit durable when the transaction began.
    start_ts: u64,
    /// Unique id (a fresh timestamp): the lock owner and the two-phase transaction id.
    id: u64,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    finished: bool,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("start_ts", &self.start_ts)
            .field("id", &self.id)
            .field("writes", &self.writes.len())
            .finish()
    }
}

impl Transaction {
    pub(super) fn new(store: MvccStore, start_ts: u64, id: u64) -> Transaction {
        Transaction {
            store,
            start_ts,
            id,
            writes: BTreeMap::new(),
            finished: false,
        }
    }

    /// The snapshot timestamp: the transaction sees exactly the commits at or before it.
    pub fn start_ts(&self) -> u64 {
        self.start_ts
    }

    /// The transaction's unique id (lock owner in deadlock reports).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The buffered writes, in key order: the value, or `None` for a delete. Change feeds read
    /// them just before commit.
    pub fn writes(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.writes
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
    }

    /// Reads `key` at the snapshot, ignoring this transaction's own writes: what a write
    /// replaces. Under first-committer-wins this is also the last committed value before this
    /// transaction's commit, if it commits.
    pub fn get_snapshot(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        self.store.get_at(key, self.start_ts)
    }

    fn check_open(&self) -> Result<()> {
        if self.finished {
            return Err(StorageError::TxnState {
                start_ts: self.start_ts,
                reason: "the transaction has already committed or rolled back".into(),
            });
        }
        Ok(())
    }

    /// Reads `key`: this transaction's own write if it made one, else the snapshot.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        if let Some(own) = self.writes.get(key) {
            return Ok(own.clone());
        }
        self.store.get_at(key, self.start_ts)
    }

    /// Reads every key of `keys` like [`Transaction::get`] (own writes, deletes included, win
    /// over the snapshot) and returns the values in the order of `keys`. The keys this
    /// transaction has not written are read from the snapshot in one pass
    /// ([`MvccStore::get_many_at`]).
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        self.get_many_with(keys, |i, v| {
            out[i] = Some(v.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    /// [`Transaction::get_many`] without copying values: `found(i, value)` sees the value of
    /// each `keys[i]` that has one (own writes first, then the snapshot's in key order; see
    /// [`MvccStore::get_many_at_with`]).
    pub fn get_many_with<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        mut found: impl FnMut(usize, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.check_open()?;
        if self.writes.is_empty() {
            return self.store.get_many_at_with(keys, self.start_ts, found);
        }
        let mut snapshot: Vec<usize> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match self.writes.get(key.as_ref()) {
                Some(Some(own)) => found(i, own)?,
                Some(None) => {}
                None => snapshot.push(i),
            }
        }
        let wanted: Vec<&[u8]> = snapshot.iter().map(|&i| keys[i].as_ref()).collect();
        self.store
            .get_many_at_with(&wanted, self.start_ts, |j, v| found(snapshot[j], v))
    }

    /// Reads up to `limit` keys of `[start, end)` in order, own writes included.
    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.check_open()?;
        let upper = match end {
            Some(end) => Bound::Excluded(end.to_vec()),
            None => Bound::Unbounded,
        };
        let own: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = self
            .writes
            .range::<Vec<u8>, _>((Bound::Included(start.to_vec()), upper))
            .collect();
        // Own deletes can hide snapshot rows, so read enough snapshot rows to still fill `limit`.
        let base =
            self.store
                .scan_at(start, end, self.start_ts, limit.saturating_add(own.len()))?;
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = base.into_iter().collect();
        for (key, value) in own {
            match value {
                Some(v) => merged.insert(key.clone(), v.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    /// Like [`Transaction::scan_iter`], but yields only `f(key, value)` of each entry. Where
    /// the transaction has no own writes left in the range, `f` reads the value in place (no
    /// copy of it) and the key as the version tree holds it, decoded only if `f` asks
    /// ([`ScanKey::decode_into`]): the common full-table scan.
    pub fn scan_values<T, F: FnMut(ScanKey<'_>, &[u8]) -> T>(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        f: F,
    ) -> Result<TxnValues<'_, F>> {
        Ok(TxnValues {
            scan: self.scan_iter(start, end)?,
            f,
        })
    }

    /// Streams the keys of `[start, end)` in order, own writes included, one leaf of versions
    /// at a time: nothing is materialised.
    pub fn scan_iter(&self, start: &[u8], end: Option<&[u8]>) -> Result<TxnScan<'_>> {
        self.check_open()?;
        self.store.check_range_locks(start, end, self.start_ts)?;
        let upper = match end {
            Some(end) => Bound::Excluded(end.to_vec()),
            None => Bound::Unbounded,
        };
        Ok(TxnScan {
            snapshot: VersionScan::new(&self.store.shared.write, start, end),
            ts: self.start_ts,
            own: self
                .writes
                .range::<Vec<u8>, _>((Bound::Included(start.to_vec()), upper))
                .peekable(),
            pending: None,
            snapshot_done: false,
        })
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        let encoded = keys::version_key(key, 0).len();
        let max = self.store.shared.db.max_key_len();
        if encoded > max {
            return Err(StorageError::KeyTooLarge {
                len: key.len(),
                max: max.saturating_sub(10) / 2,
            });
        }
        Ok(())
    }

    /// Buffers a write of `value` under `key`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_open()?;
        self.check_key(key)?;
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    /// Buffers a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.check_open()?;
        self.check_key(key)?;
        self.writes.insert(key.to_vec(), None);
        Ok(())
    }

    /// Takes the pessimistic lock on `key` (`SELECT ... FOR UPDATE`), waiting up to the lock-wait
    /// timeout; fails with [`StorageError::Deadlock`] if waiting would deadlock, and with
    /// [`StorageError::WriteConflict`] if another transaction committed `key` after this one
    /// started (the lock would protect a stale read). Either error aborts the transaction.
    pub fn lock_for_update(&mut self, key: &[u8]) -> Result<()> {
        self.check_open()?;
        let result = self
            .lock_key(key)
            .and_then(|()| match self.store.latest_commit_ts(key)? {
                Some(ts) if ts > self.start_ts => {
                    self.store
                        .shared
                        .counters
                        .conflicts
                        .fetch_add(1, Ordering::Relaxed);
                    Err(StorageError::WriteConflict {
                        key: key.to_vec(),
                        start_ts: self.start_ts,
                        conflict_ts: ts,
                    })
                }
                _ => Ok(()),
            });
        if let Err(err) = &result {
            self.abort(reason_of(err));
        }
        result
    }

    fn lock_key(&self, key: &[u8]) -> Result<()> {
        let shared = &self.store.shared;
        let acquired = shared
            .locks
            .acquire(key, self.id, shared.config.lock_wait_timeout);
        match &acquired {
            Ok(a) if !a.waited.is_zero() => {
                shared.counters.lock_waits.fetch_add(1, Ordering::Relaxed);
                shared
                    .counters
                    .lock_wait_nanos
                    .fetch_add(a.waited.as_nanos() as u64, Ordering::Relaxed);
            }
            Err(StorageError::Deadlock { .. }) => {
                shared.counters.deadlocks.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        acquired.map(|_| ())
    }

    /// Commits: locks the written keys (waiting for `FOR UPDATE` holders), then in one atomic,
    /// durable batch checks first-committer-wins and prewrite locks, takes a commit timestamp
    /// and writes the versions. Returns the commit timestamp (the start timestamp for a
    /// read-only transaction). On error the transaction is rolled back.
    pub fn commit(mut self) -> Result<u64> {
        self.check_open()?;
        if self.writes.is_empty() {
            self.finish();
            self.store
                .shared
                .counters
                .commits
                .fetch_add(1, Ordering::Relaxed);
            return Ok(self.start_ts);
        }
        let result = self.commit_writes();
        match &result {
            Ok(commit_ts) => {
                self.store.publish(*commit_ts);
                self.finish();
                self.store
                    .shared
                    .counters
                    .commits
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => self.abort(reason_of(err)),
        }
        result
    }

    fn commit_writes(&self) -> Result<u64> {
        for key in self.writes.keys() {
            self.lock_key(key)?;
        }
        let frames = self.store.shared.db.stats().capacity_frames as usize;
        // A commit's pages must fit in the pool until its record is logged; keys of one
        // transaction usually share leaves, so a quarter of the frames is a safe bound.
        if self.writes.len() > (frames / 4).max(8) {
            return self.commit_large((frames / 4).max(8));
        }
        let store = &self.store;
        let shared = &store.shared;
        shared.db.batch(|| {
            // The write set is a sorted map, so both checks walk their trees once in key order.
            let keys: Vec<&[u8]> = self.writes.keys().map(Vec::as_slice).collect();
            let order: Vec<usize> = (0..keys.len()).collect();
            store.check_locks_sorted(&keys, &order, u64::MAX)?;
            let latest = store.latest_commit_ts_sorted(&keys)?;
            for (key, ts) in keys.iter().zip(latest) {
                if let Some(ts) = ts
                    && ts > self.start_ts
                {
                    shared.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                    return Err(StorageError::WriteConflict {
                        key: key.to_vec(),
                        start_ts: self.start_ts,
                        conflict_ts: ts,
                    });
                }
            }
            let commit_ts = store.next_timestamp();
            for (key, value) in &self.writes {
                // The record's start timestamp is the transaction's id, not its snapshot:
                // unique per transaction, as the two-phase path of a large commit needs (it
                // prewrites under the id). The id was handed out before `commit_ts`, so the
                // compact record's distance is never negative.
                let record = match value {
                    Some(v) => WriteRecord::encode(WriteKind::Put, self.id, commit_ts, v)?,
                    None => WriteRecord::encode(WriteKind::Delete, self.id, commit_ts, &[])?,
                };
                shared
                    .write
                    .insert(&keys::version_key(key, commit_ts), &record)?;
            }
            store.persist_ts(commit_ts)?;
            Ok(commit_ts)
        })
    }

    /// Commits a write set too large for one atomic batch (its pages might not fit the buffer
    /// pool) the two-phase way, locally: prewrite locks in batches of `chunk` keys, then the
    /// primary key's commit (the commit point, one small batch), then the other keys. The
    /// locks carry [`super::LOCAL_TTL`]: readers are never blocked by them, and after a crash
    /// [`MvccStore::open`] commits or rolls back whatever is left according to the primary.
    fn commit_large(&self, chunk: usize) -> Result<u64> {
        use super::twophase::Mutation;
        let store = &self.store;
        let muts: Vec<Mutation> = self
            .writes
            .iter()
            .map(|(k, v)| match v {
                Some(v) => Mutation::Put(k.clone(), v.clone()),
                None => Mutation::Delete(k.clone()),
            })
            .collect();
        let keys: Vec<Vec<u8>> = self.writes.keys().cloned().collect();
        let primary = keys[0].clone();
        // The keys are locked against other local transactions; check what committed between
        // the snapshot and the locking (prewrite itself checks against the id, a later time).
        for key in &keys {
            if let Some(ts) = store.latest_commit_ts(key)?
                && ts > self.start_ts
            {
                store
                    .shared
                    .counters
                    .conflicts
                    .fetch_add(1, Ordering::Relaxed);
                return Err(StorageError::WriteConflict {
                    key: key.clone(),
                    start_ts: self.start_ts,
                    conflict_ts: ts,
                });
            }
        }
        let mut prewritten = 0;
        for part in muts.chunks(chunk) {
            if let Err(err) = store.prewrite(part, &primary, self.id, super::LOCAL_TTL) {
                if matches!(err, StorageError::WriteConflict { .. }) {
                    store
                        .shared
                        .counters
                        .conflicts
                        .fetch_add(1, Ordering::Relaxed);
                }
                // Best effort: whatever is left is rolled back at the next open.
                for done in keys[..prewritten].chunks(chunk) {
                    let _ = store.rollback_keys(done, self.id);
                }
                return Err(err);
            }
            prewritten += part.len();
        }
        let commit_ts = store.shared.db.batch(|| {
            let commit_ts = store.next_timestamp();
            store.commit_keys(std::slice::from_ref(&primary), self.id, commit_ts)?;
            Ok(commit_ts)
        })?;
        // Committed. A failure from here on leaves locks that readers and the next open resolve.
        for part in keys[1..].chunks(chunk) {
            if let Err(err) = store.commit_keys(part, self.id, commit_ts) {
                tracing::warn!(error = %err, "committing secondary keys failed; they resolve later");
                break;
            }
        }
        Ok(commit_ts)
    }

    /// A savepoint: the buffered writes as they are now (`SAVEPOINT`).
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            writes: self.writes.clone(),
        }
    }

    /// Discards the writes made since `savepoint` (`ROLLBACK TO SAVEPOINT`). Locks taken since
    /// stay held until the transaction ends, as in PostgreSQL.
    pub fn rollback_to(&mut self, savepoint: &Savepoint) -> Result<()> {
        self.check_open()?;
        self.writes = savepoint.writes.clone();
        Ok(())
    }

    /// Rolls back: discards the buffered writes and releases the locks.
    pub fn rollback(mut self) {
        self.abort(AbortReason::User);
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.store.shared.locks.release_all(self.id);
            self.store.end_active(self.start_ts);
        }
    }

    fn abort(&mut self, reason: AbortReason) {
        if !self.finished {
            self.store.count_abort(reason);
            self.finish();
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.abort(AbortReason::User);
    }
}

fn reason_of(err: &StorageError) -> AbortReason {
    match err {
        StorageError::WriteConflict { .. } => AbortReason::Conflict,
        StorageError::Deadlock { .. } => AbortReason::Deadlock,
        StorageError::LockTimeout { .. } => AbortReason::LockTimeout,
        StorageError::KeyLocked { .. } => AbortReason::Locked,
        _ => AbortReason::Error,
    }
}

/// A transaction's streaming range scan (see [`Transaction::scan_iter`]).
pub struct TxnScan<'a> {
    snapshot: VersionScan,
    ts: u64,
    own: std::iter::Peekable<std::collections::btree_map::Range<'a, Vec<u8>, Option<Vec<u8>>>>,
    pending: Option<(Vec<u8>, Vec<u8>)>,
    snapshot_done: bool,
}

impl std::fmt::Debug for TxnScan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnScan")
            .field("ts", &self.ts)
            .finish_non_exhaustive()
    }
}

impl Iterator for TxnScan<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.pending.is_none() && !self.snapshot_done {
                match self.snapshot.next_visible(self.ts) {
                    Ok(Some(item)) => self.pending = Some(item),
                    Ok(None) => self.snapshot_done = true,
                    Err(e) => return Some(Err(e)),
                }
            }
            let own_first = match (self.own.peek(), &self.pending) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((ok, _)), Some((pk, _))) => ok.as_slice() <= pk.as_slice(),
            };
            if own_first {
                let (key, value) = self.own.next().expect("peeked");
                if self.pending.as_ref().is_some_and(|(pk, _)| pk == key) {
                    self.pending = None;
                }
                match value {
                    Some(v) => return Some(Ok((key.clone(), v.clone()))),
                    None => continue,
                }
            }
            return self.pending.take().map(Ok);
        }
    }
}

/// A transaction's streaming scan of values (see [`Transaction::scan_values`]).
pub struct TxnValues<'a, F> {
    scan: TxnScan<'a>,
    f: F,
}

impl<F> std::fmt::Debug for TxnValues<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnValues")
            .field("scan", &self.scan)
            .finish_non_exhaustive()
    }
}

/// The key of an entry [`Transaction::scan_values`] yields, in the form the scan holds it.
#[derive(Debug, Clone, Copy)]
pub struct ScanKey<'a>(KeyForm<'a>);

#[derive(Debug, Clone, Copy)]
enum KeyForm<'a> {
    /// A user key.
    Plain(&'a [u8]),
    /// The escaped body of a version key (see [`keys`](super::keys)).
    Escaped(&'a [u8]),
}

impl<'a> ScanKey<'a> {
    /// A user key as it is (for scans that hold keys decoded already).
    pub fn plain(key: &'a [u8]) -> ScanKey<'a> {
        ScanKey(KeyForm::Plain(key))
    }

    pub(crate) fn escaped(body: &'a [u8]) -> ScanKey<'a> {
        ScanKey(KeyForm::Escaped(body))
    }

    /// Replaces `out`'s contents with the user key.
    pub fn decode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        match self.0 {
            KeyForm::Plain(key) => {
                out.clear();
                out.extend_from_slice(key);
                Ok(())
            }
            KeyForm::Escaped(body) => super::keys::decode_user_key_into(body, out),
        }
    }
}

impl<T, F: FnMut(ScanKey<'_>, &[u8]) -> T> Iterator for TxnValues<'_, F> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        let scan = &mut self.scan;
        if scan.own.peek().is_some() || scan.pending.is_some() {
            // Own writes to merge: the keyed path decides the order.
            let f = &mut self.f;
            return scan
                .next()
                .map(|r| r.map(|(k, v)| f(ScanKey::plain(&k), &v)));
        }
        if scan.snapshot_done {
            return None;
        }
        match scan.snapshot.next_visible_with(scan.ts, &mut self.f) {
            Ok(Some(t)) => Some(Ok(t)),
            Ok(None) => {
                scan.snapshot_done = true;
                None
            }
            Err(e) => Some(Err(e)),
        }
    }
}

/// The state a transaction can roll back to (see [`Transaction::savepoint`]).
#[derive(Debug, Clone)]
pub struct Savepoint {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}
