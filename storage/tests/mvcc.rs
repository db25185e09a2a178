//! The MVCC store: snapshot isolation anomalies that must not happen (and write skew, which
//! may), first-committer-wins, pessimistic locks and deadlocks, the two-phase commit
//! primitives, vacuum, durability across reopen, and the write-record forms on disk.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use nq_storage::mvcc::keys::{WriteKind, WriteRecord, version_key};
use nq_storage::mvcc::{Mutation, MvccConfig, MvccStore, TxnStatus};
use nq_storage::{Database, StorageError, Tree};

fn config() -> MvccConfig {
    MvccConfig {
        lock_wait_timeout: Duration::from_secs(5),
        gc_interval: None,
    }
}

fn open(dir: &std::path::Path) -> (Database, MvccStore) {
    let db =
        Database::open_or_create(common::db_path(dir), &common::small_options(4096, 256)).unwrap();
    let store = MvccStore::open(&db, config()).unwrap();
    (db, store)
}

fn put(store: &MvccStore, key: &[u8], value: &[u8]) -> u64 {
    let mut t = store.begin().unwrap();
    t.put(key, value).unwrap();
    t.commit().unwrap()
}

fn int(v: Option<Vec<u8>>) -> i64 {
    i64::from_le_bytes(v.expect("value present").try_into().unwrap())
}

#[test]
fn test_no_dirty_reads_and_snapshots_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    put(&store, b"k", b"v1");
    let reader = store.begin().unwrap();
    let mut writer = store.begin().unwrap();
    writer.put(b"k", b"v2").unwrap();
    writer.put(b"new", b"x").unwrap();
    // Uncommitted writes are invisible to others, visible to their own transaction.
    assert_eq!(reader.get(b"k").unwrap(), Some(b"v1".to_vec()));
    assert_eq!(writer.get(b"k").unwrap(), Some(b"v2".to_vec()));
    assert_eq!(reader.get(b"new").unwrap(), None);
    writer.commit().unwrap();
    // Committed after the reader's snapshot: still invisible to it (repeatable reads).
    assert_eq!(reader.get(b"k").unwrap(), Some(b"v1".to_vec()));
    assert_eq!(reader.scan(b"", None, 10).unwrap().len(), 1);
    let later = store.begin().unwrap();
    assert_eq!(later.get(b"k").unwrap(), Some(b"v2".to_vec()));
    assert_eq!(later.scan(b"", None, 10).unwrap().len(), 2);
}

#[test]
fn test_rolled_back_and_dropped_transactions_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    let mut t = store.begin().unwrap();
    t.put(b"a", b"1").unwrap();
    t.rollback();
    {
        let mut t = store.begin().unwrap();
        t.put(b"b", b"1").unwrap();
    }
    let r = store.begin().unwrap();
    assert_eq!(r.get(b"a").unwrap(), None);
    assert_eq!(r.get(b"b").unwrap(), None);
    assert_eq!(store.metrics().aborts_user, 2);
}

#[test]
fn test_first_committer_wins_prevents_lost_updates() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    put(&store, b"counter", &0i64.to_le_bytes());
    let mut a = store.begin().unwrap();
    let mut b = store.begin().unwrap();
    let va = int(a.get(b"counter").unwrap());
    let vb = int(b.get(b"counter").unwrap());
    a.put(b"counter", &(va + 1).to_le_bytes()).unwrap();
    b.put(b"counter", &(vb + 1).to_le_bytes()).unwrap();
    a.commit().unwrap();
    let err = b.commit().unwrap_err();
    assert!(matches!(err, StorageError::WriteConflict { .. }), "{err}");
    assert_eq!(int(store.begin().unwrap().get(b"counter").unwrap()), 1);
    let m = store.metrics();
    assert_eq!((m.conflicts, m.aborts_conflict), (1, 1));
}

/// The conflict check walks the whole write set in one pass: a key deep inside a large write
/// set, with many versions spread over several leaves and a rolled-back attempt on top, is
/// still found, and names the right key.
#[test]
fn test_conflict_is_found_anywhere_in_a_large_write_set() {
    let dir = tempfile::tempdir().unwrap();
    // A pool large enough that 1,000 writes commit in one atomic batch (not the two-phase way
    // of write sets larger than a quarter of the pool).
    let db = Database::open_or_create(
        common::db_path(dir.path()),
        &common::small_options(4096, 8192),
    )
    .unwrap();
    let store = MvccStore::open(&db, config()).unwrap();
    let key = |i: u32| format!("row/{i:06}").into_bytes();
    // Many versions of the contested key (they span leaves), plus neighbours.
    for v in 0..200u32 {
        put(&store, &key(500), &[v as u8; 60]);
    }
    for i in (0..1000).step_by(7) {
        put(&store, &key(i), b"old");
    }
    let mut late = store.begin().unwrap();
    for i in 0..1000 {
        late.put(&key(i), b"new").unwrap();
    }
    // An attempt that rolled back leaves a Rollback record newer than any commit.
    let mut aborted = store.begin().unwrap();
    aborted.put(&key(500), b"never").unwrap();
    aborted.rollback();
    // Before the contested commit the large write set commits cleanly at a later snapshot...
    let mut clean = store.begin().unwrap();
    for i in 0..1000 {
        clean.put(&key(i), b"clean").unwrap();
    }
    clean.commit().unwrap();
    // ...and the earlier snapshot now conflicts on every key; the first in key order is named.
    match late.commit().unwrap_err() {
        StorageError::WriteConflict { key: k, .. } => assert_eq!(k, key(0)),
        other => panic!("expected a write conflict, got {other}"),
    }
    // A write set whose only stale key is in the middle.
    let mut mid = store.begin().unwrap();
    for i in 0..1000 {
        mid.put(&key(i), b"mid").unwrap();
    }
    put(&store, &key(777), b"sneaky");
    match mid.commit().unwrap_err() {
        StorageError::WriteConflict { key: k, .. } => assert_eq!(k, key(777)),
        other => panic!("expected a write conflict, got {other}"),
    }
    assert_eq!(
        store.begin().unwrap().get(&key(777)).unwrap(),
        Some(b"sneaky".to_vec())
    );
}

#[test]
fn test_concurrent_increments_with_retries_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    put(&store, b"counter", &0i64.to_le_bytes());
    let threads = 4;
    let per_thread = 25;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let store = store.clone();
            thread::spawn(move || {
                for _ in 0..per_thread {
                    loop {
                        let mut t = store.begin().unwrap();
                        let v = int(t.get(b"counter").unwrap());
                        t.put(b"counter", &(v + 1).to_le_bytes()).unwrap();
                        match t.commit() {
                            Ok(_) => break,
                            Err(StorageError::WriteConflict { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = int(store.begin().unwrap().get(b"counter").unwrap());
    assert_eq!(total, threads * per_thread);
}

#[test]
fn test_no_read_skew_across_a_concurrent_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    let mut t = store.begin().unwrap();
    t.put(b"x", &50i64.to_le_bytes()).unwrap();
    t.put(b"y", &50i64.to_le_bytes()).unwrap();
    t.commit().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let transfers = {
        let (store, stop, done) = (store.clone(), Arc::clone(&stop), Arc::clone(&done));
        thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut t = store.begin().unwrap();
                let x = int(t.get(b"x").unwrap());
                let y = int(t.get(b"y").unwrap());
                t.put(b"x", &(x - 1).to_le_bytes()).unwrap();
                t.put(b"y", &(y + 1).to_le_bytes()).unwrap();
                if t.commit().is_ok() {
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    // At least 300 reads, and keep reading until transfers have committed concurrently (on a
    // loaded machine the writer may not get a commit in during the first 300).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut reads = 0;
    while reads < 300
        || (done.load(std::sync::atomic::Ordering::Relaxed) < 3
            && std::time::Instant::now() < deadline)
    {
        reads += 1;
        let r = store.begin().unwrap();
        let x = int(r.get(b"x").unwrap());
        thread::yield_now();
        let y = int(r.get(b"y").unwrap());
        assert_eq!(x + y, 100, "read skew: x={x} y={y}");
        let rows = r.scan(b"x", Some(b"z"), 10).unwrap();
        let sum: i64 = rows
            .iter()
            .map(|(_, v)| i64::from_le_bytes(v.as_slice().try_into().unwrap()))
            .sum();
        assert_eq!(sum, 100);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    transfers.join().unwrap();
    assert!(done.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// Snapshot isolation allows write skew: both transactions read both keys, each writes a
/// different one, both commit. Documented in docs/transactions.md; `lock_for_update` prevents it.
#[test]
fn test_write_skew_is_allowed_under_si_and_prevented_by_locking() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    let mut t = store.begin().unwrap();
    t.put(b"alice_on_call", b"1").unwrap();
    t.put(b"bob_on_call", b"1").unwrap();
    t.commit().unwrap();
    let on_call = |t: &nq_storage::mvcc::Transaction| {
        [&b"alice_on_call"[..], b"bob_on_call"]
            .iter()
            .filter(|k| t.get(k).unwrap() == Some(b"1".to_vec()))
            .count()
    };
    let mut a = store.begin().unwrap();
    let mut b = store.begin().unwrap();
    assert_eq!((on_call(&a), on_call(&b)), (2, 2));
    a.put(b"alice_on_call", b"0").unwrap();
    b.put(b"bob_on_call", b"0").unwrap();
    a.commit().unwrap();
    b.commit().unwrap();
    assert_eq!(
        on_call(&store.begin().unwrap()),
        0,
        "write skew happened, as SI allows"
    );

    // With both rows locked FOR UPDATE, the second transaction waits for the first and then
    // sees that its snapshot is stale.
    put(&store, b"alice_on_call", b"1");
    put(&store, b"bob_on_call", b"1");
    let mut a = store.begin().unwrap();
    let mut b = store.begin().unwrap();
    a.lock_for_update(b"alice_on_call").unwrap();
    a.lock_for_update(b"bob_on_call").unwrap();
    a.put(b"alice_on_call", b"0").unwrap();
    let waiter = thread::spawn(move || b.lock_for_update(b"alice_on_call"));
    thread::sleep(Duration::from_millis(50));
    a.commit().unwrap();
    let err = waiter.join().unwrap().unwrap_err();
    assert!(matches!(err, StorageError::WriteConflict { .. }), "{err}");
}

#[test]
fn test_deadlock_is_detected_and_one_victim_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    let barrier = Arc::new(Barrier::new(2));
    let run = |first: &'static [u8], second: &'static [u8]| {
        let (store, barrier) = (store.clone(), Arc::clone(&barrier));
        thread::spawn(move || {
            let mut t = store.begin().unwrap();
            t.lock_for_update(first).unwrap();
            barrier.wait();
            let got = t.lock_for_update(second);
            if got.is_ok() {
                t.put(second, b"winner").unwrap();
                t.commit().unwrap();
            }
            got
        })
    };
    let a = run(b"a", b"b");
    let b = run(b"b", b"a");
    let results = [a.join().unwrap(), b.join().unwrap()];
    let deadlocks = results
        .iter()
        .filter(|r| matches!(r, Err(StorageError::Deadlock { .. })))
        .count();
    assert_eq!(deadlocks, 1, "{results:?}");
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let m = store.metrics();
    assert_eq!((m.deadlocks, m.aborts_deadlock), (1, 1));
    assert!(m.lock_waits >= 1, "{m:?}");
}

#[test]
fn test_two_phase_commit_and_resolution_from_the_primary() {
    let dir = tempfile::tempdir().unwrap();
    let (db, store) = open(dir.path());
    let start = store.next_timestamp();
    let muts = [
        Mutation::Put(b"p".to_vec(), b"primary".to_vec()),
        Mutation::Put(b"s1".to_vec(), b"one".to_vec()),
        Mutation::Delete(b"s2".to_vec()),
    ];
    put(&store, b"s2", b"old");
    let start = start.max(store.next_timestamp());
    store.prewrite(&muts, b"p", start, 60_000).unwrap();
    // Idempotent retry.
    store.prewrite(&muts, b"p", start, 60_000).unwrap();
    // Readers at or after the start meet the lock.
    let err = store.get_at(b"s1", u64::MAX).unwrap_err();
    assert!(matches!(err, StorageError::KeyLocked { .. }), "{err}");
    // Another transaction cannot prewrite a locked key.
    let other = store.next_timestamp();
    let err = store
        .prewrite(
            &[Mutation::Put(b"s1".to_vec(), b"x".to_vec())],
            b"s1",
            other,
            1000,
        )
        .unwrap_err();
    assert!(matches!(err, StorageError::KeyLocked { .. }), "{err}");
    let status = store.check_txn_status(b"p", start).unwrap();
    assert!(
        matches!(status, TxnStatus::Locked { ttl_left_ms } if ttl_left_ms > 0 && ttl_left_ms <= 60_000),
        "{status:?}"
    );
    // Commit only the primary (the coordinator then "dies"), and survive a restart.
    let commit = store.next_timestamp();
    store.commit_keys(&[b"p".to_vec()], start, commit).unwrap();
    drop(store);
    db.close().unwrap();
    let (_db, store) = open(dir.path());
    assert!(store.next_timestamp() > commit);
    assert_eq!(
        store.check_txn_status(b"p", start).unwrap(),
        TxnStatus::Committed(commit)
    );
    // A reader resolves the secondaries from the primary.
    assert_eq!(
        store.resolve_lock(b"s1").unwrap(),
        Some(TxnStatus::Committed(commit))
    );
    assert_eq!(
        store.resolve_lock(b"s2").unwrap(),
        Some(TxnStatus::Committed(commit))
    );
    assert_eq!(store.resolve_lock(b"s2").unwrap(), None);
    let t = store.begin().unwrap();
    assert_eq!(t.get(b"p").unwrap(), Some(b"primary".to_vec()));
    assert_eq!(t.get(b"s1").unwrap(), Some(b"one".to_vec()));
    assert_eq!(t.get(b"s2").unwrap(), None);
    // Committing again is a no-op; rolling back a committed transaction is refused.
    store.commit_keys(&[b"s1".to_vec()], start, commit).unwrap();
    let err = store.rollback_keys(&[b"s1".to_vec()], start).unwrap_err();
    assert!(matches!(err, StorageError::TxnState { .. }), "{err}");
}

#[test]
fn test_abandoned_two_phase_transaction_is_rolled_back_after_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    let start = store.next_timestamp();
    store
        .prewrite(
            &[
                Mutation::Put(b"p".to_vec(), b"1".to_vec()),
                Mutation::Put(b"s".to_vec(), b"2".to_vec()),
            ],
            b"p",
            start,
            1,
        )
        .unwrap();
    thread::sleep(Duration::from_millis(5));
    assert_eq!(
        store.resolve_lock(b"s").unwrap(),
        Some(TxnStatus::RolledBack)
    );
    assert_eq!(
        store.check_txn_status(b"p", start).unwrap(),
        TxnStatus::RolledBack
    );
    assert_eq!(store.get_at(b"s", u64::MAX).unwrap(), None);
    // The coordinator wakes up too late: its commit and a delayed prewrite are refused.
    let commit = store.next_timestamp();
    let err = store
        .commit_keys(&[b"p".to_vec()], start, commit)
        .unwrap_err();
    assert!(matches!(err, StorageError::TxnState { .. }), "{err}");
    let err = store
        .prewrite(
            &[Mutation::Put(b"p".to_vec(), b"1".to_vec())],
            b"p",
            start,
            1000,
        )
        .unwrap_err();
    assert!(matches!(err, StorageError::TxnState { .. }), "{err}");
    // A primary that never saw its prewrite is marked rolled back by the status check.
    let ghost = store.next_timestamp();
    assert_eq!(
        store.check_txn_status(b"ghost", ghost).unwrap(),
        TxnStatus::RolledBack
    );
}

#[test]
fn test_vacuum_keeps_visible_versions_and_frees_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (db, store) = open(dir.path());
    let value = vec![5u8; 200];
    for round in 0..10u8 {
        let mut t = store.begin().unwrap();
        for k in 0..400u32 {
            let mut v = value.clone();
            v[0] = round;
            t.put(&k.to_be_bytes(), &v).unwrap();
        }
        t.commit().unwrap();
    }
    let old_reader = store.begin().unwrap();
    let mut t = store.begin().unwrap();
    for k in 0..200u32 {
        t.delete(&k.to_be_bytes()).unwrap();
    }
    t.commit().unwrap();
    let before = db.check_integrity().unwrap();
    // A running transaction holds the safe point back: its snapshot stays readable, so the
    // newest value under each tombstone stays too; the nine older values of every key go.
    let report = store.vacuum(store.safe_point()).unwrap();
    assert_eq!(report.removed, 400 * 9, "{report:?}");
    assert_eq!(
        old_reader.get(&300u32.to_be_bytes()).unwrap().unwrap()[0],
        9
    );
    assert_eq!(
        old_reader.get(&100u32.to_be_bytes()).unwrap().unwrap()[0],
        9
    );
    drop(old_reader);
    let after_first = db.check_integrity().unwrap();
    // Nobody reads that old any more: each deleted key's tombstone and last value go.
    let report2 = store.vacuum(store.safe_point()).unwrap();
    assert_eq!(report2.removed, 400, "{report2:?}");
    let after = db.check_integrity().unwrap();
    assert!(
        after.free_pages > before.free_pages && after_first.free_pages > before.free_pages,
        "vacuum must return pages to the free list: {before:?} -> {after:?}"
    );
    let t = store.begin().unwrap();
    assert_eq!(t.scan(b"", None, 1000).unwrap().len(), 200);
    assert_eq!(t.get(&399u32.to_be_bytes()).unwrap().unwrap()[0], 9);
    let m = store.metrics();
    assert_eq!(m.gc_versions_removed, report.removed + report2.removed);
    assert!(m.gc_bytes_reclaimed > 400 * 9 * 200, "{m:?}");
}

#[test]
fn test_commits_survive_reopen_and_timestamps_keep_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let last = {
        let (db, store) = open(dir.path());
        for i in 0..50u32 {
            put(&store, &i.to_be_bytes(), b"v");
        }
        let last = put(&store, b"last", b"v");
        drop(store);
        db.close().unwrap();
        last
    };
    let (_db, store) = open(dir.path());
    let t = store.begin().unwrap();
    assert!(t.start_ts() >= last && t.id() > last);
    assert_eq!(t.scan(b"", None, 100).unwrap().len(), 51);
    assert!(store.metrics().wal.bytes > 0 || store.metrics().commits == 0);
}

#[test]
fn test_oversized_keys_are_rejected_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    let mut t = store.begin().unwrap();
    let err = t.put(&vec![0u8; 900], b"v").unwrap_err();
    assert!(matches!(err, StorageError::KeyTooLarge { .. }), "{err}");
    t.put(&vec![1u8; 400], b"v").unwrap();
    t.commit().unwrap();
}

/// The undo pass: locks of a large local transaction interrupted by a crash are rolled back at
/// open if its primary never committed, and committed if it did.
#[test]
fn test_interrupted_large_transactions_are_resolved_at_open() {
    use nq_storage::mvcc::LOCAL_TTL;
    let dir = tempfile::tempdir().unwrap();
    let (loser, winner, commit) = {
        let (db, store) = open(dir.path());
        let loser = store.next_timestamp();
        let keys = |p: &str| -> Vec<Mutation> {
            (0..50u32)
                .map(|i| Mutation::Put(format!("{p}{i:03}").into_bytes(), b"v".to_vec()))
                .collect()
        };
        store
            .prewrite(&keys("l"), b"l000", loser, LOCAL_TTL)
            .unwrap();
        let winner = store.next_timestamp();
        store
            .prewrite(&keys("w"), b"w000", winner, LOCAL_TTL)
            .unwrap();
        let commit = store.next_timestamp();
        store
            .commit_keys(&[b"w000".to_vec()], winner, commit)
            .unwrap();
        // A reader is not blocked by either transaction's locks.
        assert_eq!(store.get_at(b"l007", u64::MAX).unwrap(), None);
        assert_eq!(store.get_at(b"w007", commit).unwrap(), Some(b"v".to_vec()));
        drop(store);
        db.close().unwrap();
        (loser, winner, commit)
    };
    let (_db, store) = open(dir.path());
    assert_eq!(
        store.check_txn_status(b"l000", loser).unwrap(),
        TxnStatus::RolledBack
    );
    assert_eq!(
        store.check_txn_status(b"w000", winner).unwrap(),
        TxnStatus::Committed(commit)
    );
    let t = store.begin().unwrap();
    assert_eq!(t.scan(b"l", Some(b"m"), 100).unwrap().len(), 0);
    assert_eq!(t.scan(b"w", Some(b"x"), 100).unwrap().len(), 50);
    assert_eq!(
        store.resolve_lock(b"w049").unwrap(),
        None,
        "no lock may remain"
    );
}

#[test]
fn test_streaming_scan_merges_own_writes_with_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    let mut t = store.begin().unwrap();
    for k in [b"a", b"c", b"e", b"g"] {
        t.put(k, b"old").unwrap();
    }
    t.commit().unwrap();
    let mut t = store.begin().unwrap();
    t.put(b"b", b"new").unwrap();
    t.put(b"c", b"new").unwrap();
    t.delete(b"e").unwrap();
    t.put(b"h", b"new").unwrap();
    let got: Vec<(Vec<u8>, Vec<u8>)> = t
        .scan_iter(b"a", Some(b"h"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expect: Vec<(Vec<u8>, Vec<u8>)> = [("a", "old"), ("b", "new"), ("c", "new"), ("g", "old")]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, expect);
    assert_eq!(t.scan_iter(b"", None).unwrap().count(), 5);
    // The value-only scan agrees, both where own writes are merged and after the last one
    // (where it reads values in place), and sees versions, deletes and other snapshots right.
    let values = |t: &nq_storage::mvcc::Transaction, start: &[u8], end: Option<&[u8]>| {
        t.scan_values(start, end, |_, v| String::from_utf8(v.to_vec()).unwrap())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    assert_eq!(values(&t, b"a", Some(b"h")), ["old", "new", "new", "old"]);
    assert_eq!(values(&t, b"", None), ["old", "new", "new", "old", "new"]);
    assert_eq!(values(&t, b"d", None), ["old", "new"]);
    // Keys decode on request to what the keyed scan yields, on both paths.
    let keys = |t: &nq_storage::mvcc::Transaction, start: &[u8]| {
        t.scan_values(start, None, |k, _| {
            let mut out = vec![0xEE];
            k.decode_into(&mut out).unwrap();
            out
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
    };
    for start in [&b""[..], b"d"] {
        let keyed: Vec<Vec<u8>> = t
            .scan_iter(start, None)
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(keys(&t, start), keyed);
    }
    t.commit().unwrap();
    let mut later = store.begin().unwrap();
    let reader = store.begin().unwrap();
    later.delete(b"a").unwrap();
    later.put(b"g", b"newer").unwrap();
    later.commit().unwrap();
    assert_eq!(
        values(&reader, b"", None),
        ["old", "new", "new", "old", "new"]
    );
    let now = store.begin().unwrap();
    assert_eq!(values(&now, b"", None), ["new", "new", "newer", "new"]);
}

/// `Transaction::get_many` answers exactly like `get` per key: the snapshot (not later
/// commits), own writes and own deletes over it, deleted and absent keys, overflow values, and
/// versions that run past the leaf they start in (an old snapshot of a hot key).
#[test]
fn test_get_many_sees_snapshot_own_writes_and_deletes_like_get() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    let key = |i: u32| format!("k{i:05}").into_bytes();
    let big = vec![5u8; 5_000];
    let mut t = store.begin().unwrap();
    for i in 0..2_000 {
        t.put(&key(i), format!("v1-{i}").as_bytes()).unwrap();
    }
    t.put(b"big", &big).unwrap();
    t.put(b"hot", b"hot-0").unwrap();
    t.commit().unwrap();
    // Deleted before any reader starts.
    let mut t = store.begin().unwrap();
    for i in (0..2_000).step_by(7) {
        t.delete(&key(i)).unwrap();
    }
    t.commit().unwrap();

    let old = store.begin().unwrap();
    // Later commits: new values, deletes, new keys, and many versions of one key (more than a
    // leaf holds, so `old`'s version of it lies leaves away from the newest).
    let mut t = store.begin().unwrap();
    for i in (0..2_000).step_by(5) {
        t.put(&key(i), format!("v2-{i}").as_bytes()).unwrap();
    }
    for i in (1..2_000).step_by(11) {
        t.delete(&key(i)).unwrap();
    }
    t.put(&key(5_000), b"new").unwrap();
    t.commit().unwrap();
    for n in 1..=300 {
        put(
            &store,
            b"hot",
            format!("hot-{n}-{}", "x".repeat(80)).as_bytes(),
        );
    }

    let mut own = store.begin().unwrap();
    own.put(&key(3), b"own").unwrap();
    own.delete(&key(4)).unwrap();
    own.delete(&key(5_000)).unwrap();
    own.put(&key(6_000), b"own-new").unwrap();
    own.delete(&key(6_001)).unwrap();

    let mut asked: Vec<Vec<u8>> = (0..2_100u32).rev().map(key).collect();
    asked.extend([key(5_000), key(6_000), key(6_001), key(3), b"big".to_vec()]);
    asked.extend([
        b"hot".to_vec(),
        b"hot".to_vec(),
        Vec::new(),
        b"zzz".to_vec(),
    ]);
    for txn in [&old, &own] {
        // Two oracles: `get` per key, and a scan (a separate code path) of the whole store.
        let scanned: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = txn
            .scan_iter(b"", None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let per_key: Vec<Option<Vec<u8>>> = asked.iter().map(|k| txn.get(k).unwrap()).collect();
        let by_scan: Vec<Option<Vec<u8>>> = asked.iter().map(|k| scanned.get(k).cloned()).collect();
        assert!(per_key == by_scan, "get disagrees with scan_iter");
        let many = txn.get_many(&asked).unwrap();
        assert_eq!(many.len(), asked.len());
        let wrong: Vec<String> = (0..asked.len())
            .filter(|&i| many[i] != per_key[i])
            .map(|i| String::from_utf8_lossy(&asked[i]).into_owned())
            .collect();
        assert!(wrong.is_empty(), "get_many differs from get for {wrong:?}");
    }
    // Spot checks that the per-key answers are the ones intended.
    let got = old
        .get_many(&[key(0), key(1), key(5), key(7), key(5_000)])
        .unwrap();
    assert_eq!(
        got,
        vec![
            None,
            Some(b"v1-1".to_vec()),
            Some(b"v1-5".to_vec()),
            None,
            None
        ]
    );
    assert_eq!(
        old.get_many(&[b"hot"]).unwrap(),
        vec![Some(b"hot-0".to_vec())]
    );
    assert_eq!(old.get_many(&[b"big"]).unwrap(), vec![Some(big.clone())]);
    let got = own
        .get_many(&[
            key(3),
            key(4),
            key(5),
            key(12),
            key(5_000),
            key(6_000),
            key(6_001),
        ])
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(b"own".to_vec()),
            None,
            Some(b"v2-5".to_vec()),
            None,
            None,
            Some(b"own-new".to_vec()),
            None
        ]
    );
    let newest = own.get_many(&[b"hot"]).unwrap().pop().unwrap().unwrap();
    assert!(newest.starts_with(b"hot-300-"));
    // The store-level call reads at any timestamp.
    assert_eq!(
        store
            .get_many_at(&[key(0), key(1)], old.start_ts())
            .unwrap(),
        vec![None, Some(b"v1-1".to_vec())]
    );
}

/// A prewrite lock that hides a key's value fails `get_many` as it fails `get`; a reader whose
/// snapshot predates the lock reads past it; rolled-back keys keep their old values.
#[test]
fn test_get_many_respects_prewrite_locks_and_rollbacks() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store) = open(dir.path());
    put(&store, b"a", b"a0");
    put(&store, b"m", b"m0");
    put(&store, b"z", b"z0");
    let before = store.begin().unwrap();
    let start = store.next_timestamp();
    store
        .prewrite(
            &[Mutation::Put(b"m".to_vec(), b"m1".to_vec())],
            b"m",
            start,
            60_000,
        )
        .unwrap();
    let err = store
        .get_many_at(&[b"a".as_slice(), b"m", b"z"], u64::MAX)
        .unwrap_err();
    assert!(matches!(err, StorageError::KeyLocked { .. }), "{err}");
    // Keys around the locked one are unaffected.
    assert_eq!(
        store
            .get_many_at(&[b"z".as_slice(), b"a"], u64::MAX)
            .unwrap(),
        vec![Some(b"z0".to_vec()), Some(b"a0".to_vec())]
    );
    assert_eq!(
        before.get_many(&[b"a".as_slice(), b"m", b"z"]).unwrap(),
        vec![
            Some(b"a0".to_vec()),
            Some(b"m0".to_vec()),
            Some(b"z0".to_vec())
        ]
    );
    store.rollback_keys(&[b"m".to_vec()], start).unwrap();
    let after = store.begin().unwrap();
    assert_eq!(
        after.get_many(&[b"m".as_slice(), b"a"]).unwrap(),
        vec![Some(b"m0".to_vec()), Some(b"a0".to_vec())]
    );
}

/// The version tree, for writing records the way other builds did, or damaged ones.
fn write_tree(db: &Database) -> Tree {
    db.open_tree("mvcc.write").unwrap()
}

/// A write record in the legacy form earlier builds wrote: kind (1 put, 2 delete, 3 rollback
/// marker, 4 lock-only commit), start timestamp (u64 little endian), value.
fn legacy_record(kind: u8, start_ts: u64, value: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&start_ts.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn is_integrity<T>(result: Result<T, StorageError>) -> bool {
    result.is_err_and(|e| matches!(e, StorageError::Integrity(_)))
}

/// Records already on disk in the legacy 9-byte-header form serve every path of the store:
/// point, batched and streaming reads, the first-committer-wins checks, the two-phase status
/// checks (which match the stored start timestamp) and vacuum, also mixed with new records.
#[test]
fn test_legacy_write_records_still_serve_reads_commits_and_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let (db, store) = open(dir.path());
    let write = write_tree(&db);
    let legacy: [(&[u8], u64, Vec<u8>); 9] = [
        (b"a", 100, legacy_record(1, 90, b"a1")),
        (b"b", 100, legacy_record(1, 95, b"b1")),
        (b"b", 110, legacy_record(2, 105, b"")),
        (b"c", 100, legacy_record(1, 99, b"c1")),
        (b"c", 120, legacy_record(3, 120, b"")),
        (b"d", 100, legacy_record(1, 98, b"d1")),
        (b"d", 130, legacy_record(4, 125, b"")),
        (b"p", 200, legacy_record(1, 150, b"p1")),
        (b"q", 160, legacy_record(3, 160, b"")),
    ];
    for (key, commit_ts, record) in &legacy {
        write.insert(&version_key(key, *commit_ts), record).unwrap();
    }
    let v = |s: &[u8]| Some(s.to_vec());
    assert_eq!(store.get_at(b"a", 99).unwrap(), None);
    assert_eq!(store.get_at(b"a", 100).unwrap(), v(b"a1"));
    assert_eq!(store.get_at(b"b", 109).unwrap(), v(b"b1"));
    assert_eq!(store.get_at(b"b", 110).unwrap(), None);
    // Past a rollback marker and a lock-only commit to the value below.
    assert_eq!(store.get_at(b"c", 125).unwrap(), v(b"c1"));
    assert_eq!(store.get_at(b"d", 135).unwrap(), v(b"d1"));
    assert_eq!(
        store
            .get_many_at(&[b"d".as_slice(), b"a", b"b", b"c"], 135)
            .unwrap(),
        vec![v(b"d1"), v(b"a1"), None, v(b"c1")]
    );
    assert_eq!(
        store.scan_at(b"", None, 135, 10).unwrap(),
        vec![
            (b"a".to_vec(), b"a1".to_vec()),
            (b"c".to_vec(), b"c1".to_vec()),
            (b"d".to_vec(), b"d1".to_vec())
        ]
    );
    // A new (compact) commit next to them; a transaction's in-place value scan reads both forms.
    put(&store, b"x", b"x1");
    let t = store.begin().unwrap();
    assert_eq!(t.get(b"p").unwrap(), v(b"p1"));
    let values: Vec<Vec<u8>> = t
        .scan_values(b"", None, |_, v| v.to_vec())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(values, [&b"a1"[..], b"c1", b"d1", b"p1", b"x1"]);
    drop(t);

    // Two-phase status checks find a transaction by the start timestamp in its record.
    assert_eq!(
        store.check_txn_status(b"p", 150).unwrap(),
        TxnStatus::Committed(200)
    );
    store.commit_keys(&[b"p".to_vec()], 150, 200).unwrap();
    let err = store.rollback_keys(&[b"p".to_vec()], 150).unwrap_err();
    assert!(matches!(err, StorageError::TxnState { .. }), "{err}");
    assert_eq!(
        store.check_txn_status(b"q", 160).unwrap(),
        TxnStatus::RolledBack
    );
    let err = store
        .prewrite(
            &[Mutation::Put(b"q".to_vec(), b"q1".to_vec())],
            b"q",
            160,
            1000,
        )
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::TxnState { reason, .. } if reason.contains("rolled back")),
        "{err}"
    );

    // First committer wins against a legacy record committed after the snapshot.
    let mut first = store.begin().unwrap();
    let mut second = store.begin().unwrap();
    let later = first.start_ts() + 1;
    write
        .insert(
            &version_key(b"a", later),
            &legacy_record(1, first.start_ts(), b"a2"),
        )
        .unwrap();
    first.put(b"a", b"mine").unwrap();
    let err = first.commit().unwrap_err();
    assert!(
        matches!(err, StorageError::WriteConflict { conflict_ts, .. } if conflict_ts == later),
        "{err}"
    );
    let err = second.lock_for_update(b"a").unwrap_err();
    assert!(
        matches!(err, StorageError::WriteConflict { conflict_ts, .. } if conflict_ts == later),
        "{err}"
    );
    drop(second);

    // Vacuum at 125: b's tombstone and the value under it go, and c's rollback marker; the
    // newest values at or below 125 and everything newer stay.
    let report = store.vacuum(125).unwrap();
    assert_eq!(report.removed, 3, "{report:?}");
    assert_eq!(store.get_at(b"a", 125).unwrap(), v(b"a1"));
    assert_eq!(store.get_at(b"b", 105).unwrap(), None);
    assert_eq!(store.get_at(b"c", 125).unwrap(), v(b"c1"));
    assert_eq!(store.get_at(b"d", 135).unwrap(), v(b"d1"));
    assert_eq!(store.get_at(b"a", later).unwrap(), v(b"a2"));
}

/// Every write path stores the compact record: kind with the flag bit, the distance from the
/// start to the commit timestamp, the value; it decodes to the transaction's start timestamp.
#[test]
fn test_new_writes_store_compact_records() {
    let dir = tempfile::tempdir().unwrap();
    let (db, store) = open(dir.path());
    let write = write_tree(&db);
    put(&store, b"gone", b"soon");
    let mut t = store.begin().unwrap();
    let id = t.id();
    t.put(b"k", b"value").unwrap();
    t.delete(b"gone").unwrap();
    let commit_ts = t.commit().unwrap();
    let raw = write.get(&version_key(b"k", commit_ts)).unwrap().unwrap();
    assert_eq!(raw[0], 0x81, "{raw:?}");
    assert!(
        raw.len() - b"value".len() < 9,
        "header not compact: {raw:?}"
    );
    assert_eq!(
        WriteRecord::decode(&raw, commit_ts).unwrap(),
        WriteRecord {
            kind: WriteKind::Put,
            start_ts: id,
            value: b"value".to_vec()
        }
    );
    let raw = write
        .get(&version_key(b"gone", commit_ts))
        .unwrap()
        .unwrap();
    assert_eq!(raw[0], 0x82, "{raw:?}");
    assert_eq!(
        WriteRecord::decode(&raw, commit_ts).unwrap(),
        WriteRecord {
            kind: WriteKind::Delete,
            start_ts: id,
            value: Vec::new()
        }
    );

    // Two-phase: a put and a lock-only key committed, another transaction rolled back.
    let start = store.next_timestamp();
    store
        .prewrite(
            &[
                Mutation::Put(b"p".to_vec(), b"pv".to_vec()),
                Mutation::Lock(b"l".to_vec()),
            ],
            b"p",
            start,
            60_000,
        )
        .unwrap();
    let commit = store.next_timestamp();
    store
        .commit_keys(&[b"p".to_vec(), b"l".to_vec()], start, commit)
        .unwrap();
    let raw = write.get(&version_key(b"p", commit)).unwrap().unwrap();
    assert_eq!(raw[0], 0x81, "{raw:?}");
    assert_eq!(
        WriteRecord::decode(&raw, commit).unwrap(),
        WriteRecord {
            kind: WriteKind::Put,
            start_ts: start,
            value: b"pv".to_vec()
        }
    );
    let raw = write.get(&version_key(b"l", commit)).unwrap().unwrap();
    assert_eq!(raw[0], 0x84, "{raw:?}");
    assert_eq!(WriteRecord::decode(&raw, commit).unwrap().start_ts, start);
    let other = store.next_timestamp();
    store.rollback_keys(&[b"r".to_vec()], other).unwrap();
    // A rollback marker sits at its own start: distance 0, two bytes in all.
    assert_eq!(
        write.get(&version_key(b"r", other)).unwrap(),
        Some(vec![0x83, 0x00])
    );
    assert_eq!(
        store.check_txn_status(b"p", start).unwrap(),
        TxnStatus::Committed(commit)
    );
    assert_eq!(
        store.check_txn_status(b"l", start).unwrap(),
        TxnStatus::Committed(commit)
    );
    assert_eq!(
        store.check_txn_status(b"r", other).unwrap(),
        TxnStatus::RolledBack
    );
    assert_eq!(
        store.begin().unwrap().get(b"p").unwrap(),
        Some(b"pv".to_vec())
    );
}

/// A damaged write record is an integrity error on every path that meets it, never a panic or
/// a wrong answer.
#[test]
fn test_damaged_write_records_are_integrity_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (db, store) = open(dir.path());
    let write = write_tree(&db);
    put(&store, b"fine", b"1");
    let ts = store.snapshot_timestamp();
    // A compact record cut inside its varint.
    write.insert(&version_key(b"t", 50), &[0x81, 0x80]).unwrap();
    assert!(is_integrity(store.get_at(b"t", ts)));
    assert!(is_integrity(
        store.get_many_at(&[b"fine".as_slice(), b"t"], ts)
    ));
    assert!(is_integrity(store.scan_at(b"", None, ts, 10)));
    let t = store.begin().unwrap();
    assert!(is_integrity(
        t.scan_values(b"", None, |_, v| v.to_vec())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
    ));
    drop(t);
    let mut t = store.begin().unwrap();
    t.put(b"t", b"new").unwrap();
    assert!(is_integrity(t.commit()));
    assert!(is_integrity(store.vacuum(ts)));
    write.delete(&version_key(b"t", 50)).unwrap();
    // A legacy record shorter than its header, and an unknown kind.
    write.insert(&version_key(b"t", 50), &[0x01, 0, 0]).unwrap();
    assert!(is_integrity(store.get_at(b"t", ts)));
    write.insert(&version_key(b"t", 50), &[0x86, 0x00]).unwrap();
    assert!(is_integrity(store.get_at(b"t", ts)));
    assert!(is_integrity(store.check_txn_status(b"t", 50)));
    // A distance larger than the commit timestamp names no start timestamp.
    write
        .insert(&version_key(b"u", 50), &[0x81, 0x40, b'v'])
        .unwrap();
    assert!(is_integrity(store.check_txn_status(b"u", 10)));
    assert!(is_integrity(store.commit_keys(&[b"u".to_vec()], 10, 60)));
    assert_eq!(store.get_at(b"fine", ts).unwrap(), Some(b"1".to_vec()));
}
