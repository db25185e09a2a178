//! Crash consistency of the write-ahead log at every sync point, on a file system that keeps
//! written and synced data apart (`FaultVfs`): the workload runs until the k-th sync fails (the
//! device dies), then the machine "loses power" (unsynced data is dropped, optionally keeping a
//! torn prefix of the last writes), and the log is reopened. For every k, and for several tear
//! sizes: reopening succeeds, every acknowledged record is there in order, at most the batch in
//! flight appears beyond them, and the log accepts new records. Records are flushed in batches
//! of one to three, so batches straddle segment boundaries.

use std::path::Path;
use std::sync::Arc;

use nq_storage::vfs::{FaultVfs, Vfs};
use nq_storage::wal::{SyncPolicy, Wal, WalConfig};

fn config() -> WalConfig {
    WalConfig {
        segment_bytes: 4096,
        sync: SyncPolicy::Fsync,
    }
}

fn payload(i: u32) -> Vec<u8> {
    let mut p = i.to_le_bytes().to_vec();
    p.resize(30 + (i as usize * 53) % 250, (i % 251) as u8);
    p
}

/// Largest batch of records flushed together.
const MAX_BATCH: u32 = 3;

/// Appends records in batches and flushes each batch, until something fails; returns how many
/// records were acknowledged.
fn run_until_failure(vfs: &FaultVfs, dir: &Path, fail_after: u64) -> Option<u32> {
    let wal = Wal::open_with(Arc::new(vfs.clone()) as Arc<dyn Vfs>, dir, config()).unwrap();
    vfs.fail_after_syncs(fail_after);
    let mut acked = 0u32;
    while acked < 150 {
        let batch = 1 + acked % MAX_BATCH;
        let mut end = 0;
        for i in acked..acked + batch {
            match wal.append(1, &payload(i)) {
                Ok(e) => end = e,
                Err(_) => return Some(acked),
            }
        }
        if wal.flush(end).is_err() {
            return Some(acked);
        }
        acked += batch;
    }
    None
}

#[test]
fn test_crash_at_every_sync_point_keeps_acknowledged_records() {
    let dir = Path::new("/log");
    let mut crash_points = 0;
    for torn in [None, Some(5), Some(40), Some(100_000)] {
        for fail_after in 0.. {
            let vfs = FaultVfs::new();
            let Some(acked) = run_until_failure(&vfs, dir, fail_after) else {
                break; // the whole workload ran without reaching this sync point
            };
            crash_points += 1;
            vfs.crash(torn);
            let wal = Wal::open_with(Arc::new(vfs.clone()) as Arc<dyn Vfs>, dir, config())
                .unwrap_or_else(|e| {
                    panic!("reopen after crash at sync {fail_after}, torn {torn:?}: {e}")
                });
            let records: Vec<Vec<u8>> = wal
                .read_from(0)
                .unwrap()
                .map(|r| r.unwrap().payload)
                .collect();
            let context = format!("crash at sync {fail_after}, torn {torn:?}, acked {acked}");
            assert!(
                records.len() as u32 >= acked,
                "{context}: acknowledged records lost"
            );
            assert!(
                records.len() as u32 <= acked + MAX_BATCH,
                "{context}: records nobody wrote ({} read)",
                records.len()
            );
            for (i, rec) in records.iter().enumerate() {
                assert_eq!(rec, &payload(i as u32), "{context}: record {i} differs");
            }
            // The recovered log keeps working and keeps what it is given.
            let end = wal.append(2, b"after the crash").unwrap();
            wal.flush(end).unwrap();
            drop(wal);
            let wal = Wal::open_with(Arc::new(vfs.clone()) as Arc<dyn Vfs>, dir, config()).unwrap();
            let last = wal.read_from(0).unwrap().last().unwrap().unwrap();
            assert_eq!(last.payload, b"after the crash", "{context}");
        }
    }
    // 150 records over 4 KiB segments: several hundred sync points in all.
    assert!(
        crash_points > 400,
        "only {crash_points} crash points were exercised"
    );
}
