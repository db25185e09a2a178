//! Readers running alongside writers, with a pool small enough that pages are evicted and
//! written back while latched neighbours are in use.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

fn value_for(key: u64, version: u64) -> Vec<u8> {
    let mut v = key.to_be_bytes().to_vec();
    v.extend_from_slice(&version.to_be_bytes());
    v.resize(40 + (key % 60) as usize, (key % 251) as u8);
    v
}

#[test]
fn test_readers_see_consistent_data_while_a_writer_churns() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 48));
    let tree = db.create_tree("t").unwrap();
    // Even keys are stable; odd keys are inserted, updated and deleted by the writer.
    const N: u64 = 6_000;
    for k in (0..N).step_by(2) {
        tree.insert(&k.to_be_bytes(), &value_for(k, 0)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for r in 0..3u64 {
        let (tree, stop, reads) = (tree.clone(), Arc::clone(&stop), Arc::clone(&reads));
        readers.push(thread::spawn(move || {
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (i >> 33) % N;
                let stable = i & !1;
                let _ = r;
                let got = tree.get(&stable.to_be_bytes()).unwrap();
                assert_eq!(got, Some(value_for(stable, 0)), "stable key {stable} lost");
                // A scan must be ordered, hold every stable key in range, and only valid values.
                let start = stable.saturating_sub(200);
                let mut prev: Option<u64> = None;
                let mut stable_seen = 0;
                for entry in tree.range(start.to_be_bytes()..(start + 300).to_be_bytes()) {
                    let (k, v) = entry.unwrap();
                    let k = u64::from_be_bytes(k.try_into().unwrap());
                    assert!(prev.is_none_or(|p| p < k), "scan out of order");
                    prev = Some(k);
                    assert_eq!(v[..8], k.to_be_bytes(), "value belongs to another key");
                    if k % 2 == 0 {
                        assert_eq!(v, value_for(k, 0));
                        stable_seen += 1;
                    }
                }
                let expected = (start..(start + 300).min(N)).filter(|k| k % 2 == 0).count();
                assert_eq!(
                    stable_seen, expected,
                    "scan from {start} missed stable keys"
                );
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let writer = {
        let tree = tree.clone();
        thread::spawn(move || {
            for round in 1..=20u64 {
                for k in (1..N).step_by(2) {
                    tree.insert(&k.to_be_bytes(), &value_for(k, round)).unwrap();
                }
                for k in (1..N).step_by(4) {
                    assert!(tree.delete(&k.to_be_bytes()).unwrap());
                }
            }
        })
    };
    writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 0);
    let report = db.check_integrity().unwrap();
    assert_eq!(report.entries, N / 2 + N / 4);
    let stats = db.stats();
    assert!(
        stats.evictions > 0,
        "the pool must have been under pressure: {stats:?}"
    );
    assert!(stats.resident_pages <= stats.capacity_frames);
}

#[test]
fn test_writers_on_different_trees_run_together() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 64));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let tree = db.create_tree(&format!("t{t}")).unwrap();
            thread::spawn(move || {
                for k in 0..4_000u32 {
                    tree.insert(&k.to_be_bytes(), &[t as u8; 30]).unwrap();
                }
                for k in (0..4_000u32).step_by(3) {
                    tree.delete(&k.to_be_bytes()).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for t in 0..4u8 {
        let tree = db.open_tree(&format!("t{t}")).unwrap();
        let entries: Vec<_> = tree.iter().map(Result::unwrap).collect();
        assert_eq!(entries.len(), 4_000 - 1_334);
        assert!(entries.iter().all(|(_, v)| v == &vec![t; 30]));
    }
    db.check_integrity().unwrap();
}

/// Dropping trees while other threads write to them, drop them too, and check integrity must
/// neither deadlock nor free a page twice.
#[test]
fn test_drop_tree_races_writers_other_drops_and_integrity_checks() {
    for round in 0..20u32 {
        let dir = tempfile::tempdir().unwrap();
        let db = common::create(dir.path(), &common::small_options(4096, 64));
        let tree = db.create_tree("victim").unwrap();
        for k in 0..2_000u32 {
            tree.insert(&k.to_be_bytes(), &[1u8; 50]).unwrap();
        }
        let writer = {
            let tree = tree.clone();
            thread::spawn(move || {
                for k in 0..2_000u32 {
                    match tree.insert(&(k + round).to_be_bytes(), &[2u8; 50]) {
                        Ok(_) => {}
                        Err(nq_storage::StorageError::TreeNotFound(_)) => return,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        };
        let droppers: Vec<_> = (0..2)
            .map(|_| {
                let db = db.clone();
                thread::spawn(move || db.drop_tree("victim"))
            })
            .collect();
        let checker = {
            let db = db.clone();
            thread::spawn(move || db.check_integrity().map(|_| ()))
        };
        writer.join().unwrap();
        let outcomes: Vec<_> = droppers.into_iter().map(|d| d.join().unwrap()).collect();
        let dropped = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(dropped, 1, "exactly one drop succeeds: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Ok(()) | Err(nq_storage::StorageError::TreeNotFound(_)))),
            "{outcomes:?}"
        );
        checker.join().unwrap().unwrap();
        // A new tree reuses the freed pages; the integrity check proves none is used twice.
        let again = db.create_tree("victim").unwrap();
        for k in 0..3_000u32 {
            again.insert(&k.to_be_bytes(), &[3u8; 50]).unwrap();
        }
        db.check_integrity().unwrap();
    }
}
