//! The whole engine on the fault-injecting file system.
//!
//! `FaultVfs` keeps what was written apart from what was synced and can fail the N-th sync; a
//! "crash" throws away everything unsynced, optionally tearing the last write. Whatever the
//! crash point, recovery must give back every acknowledged batch and nothing partial.

use std::path::Path;
use std::sync::Arc;

use nq_storage::vfs::{FaultVfs, Vfs};
use nq_storage::{BufferPoolConfig, Database, Options, PageSummary, inspect_page};

fn options(vfs: &FaultVfs) -> Options {
    Options {
        vfs: Arc::new(vfs.clone()) as Arc<dyn Vfs>,
        buffer_pool: BufferPoolConfig {
            budget_bytes: 32 * (4096 + nq_storage::bufferpool::FRAME_OVERHEAD_BYTES),
            flush_interval: None,
            ..BufferPoolConfig::default()
        },
        ..Options::default()
    }
}

const PATH: &str = "/data/db.nqdb";

#[test]
fn test_closed_database_survives_power_loss() {
    let vfs = FaultVfs::new();
    let db = Database::create(PATH, &options(&vfs)).unwrap();
    let tree = db.create_tree("t").unwrap();
    for k in 0..5_000u32 {
        tree.insert(&k.to_be_bytes(), &[9u8; 60]).unwrap();
    }
    drop(tree);
    db.close().unwrap();
    vfs.crash(None);
    let db = Database::open(PATH, &options(&vfs)).unwrap();
    let tree = db.open_tree("t").unwrap();
    assert_eq!(tree.iter().count(), 5_000);
    assert_eq!(db.check_integrity().unwrap().entries, 5_000);
}

#[test]
fn test_a_new_database_file_survives_power_loss() {
    let vfs = FaultVfs::new();
    Database::create(PATH, &options(&vfs))
        .unwrap()
        .close()
        .unwrap();
    vfs.crash(None);
    assert!(Database::open(Path::new(PATH), &options(&vfs)).is_ok());
}

/// A power cut after any number of syncs, with or without a torn last page write: after
/// reopening, every acknowledged batch is there in full, the batch in flight is there in full or
/// not at all, nothing later exists, and the integrity check passes.
#[test]
fn test_power_loss_at_every_sync_point_keeps_acknowledged_batches() {
    const ROUNDS: u32 = 20;
    const KEYS: u32 = 300;
    let mut in_flight_survived = 0;
    for fail_after in 0..60u64 {
        for torn in [None, Some(4096), Some(512)] {
            let vfs = FaultVfs::new();
            let db = Database::create(PATH, &options(&vfs)).unwrap();
            let tree = db.create_tree("t").unwrap();
            db.sync().unwrap();
            vfs.fail_after_syncs(fail_after);
            let mut acknowledged = 0u32;
            for round in 0..ROUNDS {
                let written = db.batch_at(u64::from(round) + 1, || {
                    for k in 0..KEYS {
                        tree.insert(&(k * 7919 + round).to_be_bytes(), &[round as u8; 80])?;
                    }
                    Ok(())
                });
                if written.is_err() {
                    break;
                }
                acknowledged = round + 1;
                if round % 5 == 4 && db.checkpoint().is_err() {
                    break;
                }
            }
            drop(tree);
            drop(db);
            vfs.crash(torn);
            let db = Database::open(PATH, &options(&vfs))
                .unwrap_or_else(|e| panic!("fail_after {fail_after} torn {torn:?}: {e}"));
            let tree = db.open_tree("t").unwrap();
            let mut per_round = vec![0u32; ROUNDS as usize];
            for entry in tree.iter() {
                let (key, value) = entry.unwrap();
                let key = u32::from_be_bytes(key.try_into().unwrap());
                let round = key % 7919;
                assert_eq!(value, vec![round as u8; 80], "key {key}");
                per_round[round as usize] += 1;
            }
            for (round, &n) in per_round.iter().enumerate() {
                let round = round as u32;
                let ctx = format!("fail_after {fail_after} torn {torn:?} round {round}: {n} keys");
                if round < acknowledged {
                    assert_eq!(n, KEYS, "acknowledged batch lost: {ctx}");
                } else if round == acknowledged {
                    assert!(n == 0 || n == KEYS, "partial batch: {ctx}");
                    in_flight_survived += usize::from(n == KEYS);
                } else {
                    assert_eq!(n, 0, "batch after the failure: {ctx}");
                }
            }
            // The applied index travels with its batch.
            let present = per_round.iter().filter(|&&n| n == KEYS).count() as u64;
            let applied = db.applied_index().unwrap().unwrap_or(0);
            assert_eq!(applied, present, "fail_after {fail_after} torn {torn:?}");
            db.check_integrity()
                .unwrap_or_else(|e| panic!("fail_after {fail_after} torn {torn:?}: {e}"));
        }
    }
    // Some failed batches were durable although their caller saw an error (the sync failed
    // after the data reached the disk): allowed, as long as they are whole.
    let _ = in_flight_survived;
}

/// Builds a database of 3,000 rows, checkpoints, rewrites every row (so every page's first change
/// after the checkpoint is logged in full) and makes the log durable. Returns the vfs with the
/// database still open; the caller damages files, then `crash_without_checkpoint`.
fn rewritten_after_checkpoint() -> (FaultVfs, Database) {
    let vfs = FaultVfs::new();
    let db = Database::create(PATH, &options(&vfs)).unwrap();
    let tree = db.create_tree("t").unwrap();
    db.batch(|| {
        for k in 0..3_000u32 {
            tree.insert(&k.to_be_bytes(), &[1u8; 60])?;
        }
        Ok(())
    })
    .unwrap();
    db.checkpoint().unwrap();
    // Reopen (nothing to replay): the reopened process must still log each page's first change
    // after the checkpoint in full.
    drop(tree);
    db.close().unwrap();
    let db = Database::open(PATH, &options(&vfs)).unwrap();
    let tree = db.open_tree("t").unwrap();
    for chunk in 0..30u32 {
        db.batch(|| {
            for k in chunk * 100..(chunk + 1) * 100 {
                tree.insert(&k.to_be_bytes(), &[2u8; 60])?;
            }
            Ok(())
        })
        .unwrap();
    }
    (vfs, db)
}

/// Drops the database with every later sync failing, then loses everything unsynced: the data
/// file is as the last checkpoint (plus any damage the test synced), the log as last flushed.
fn crash_without_checkpoint(vfs: &FaultVfs, db: Database) {
    vfs.fail_after_syncs(0);
    drop(db);
    vfs.crash(None);
}

#[test]
fn test_torn_pages_are_rebuilt_from_full_images_in_the_log() {
    let (vfs, db) = rewritten_after_checkpoint();
    // Tear every leaf (each was rewritten after the checkpoint, so each could be caught by a
    // power cut mid-write): its second half is zeroed, as if only the first sectors landed.
    let file = vfs.open(Path::new(PATH)).unwrap();
    let pages = file.size().unwrap() / 4096;
    let mut torn = 0;
    for id in 2..pages {
        let mut page = vec![0u8; 4096];
        file.read_exact_at(&mut page, id * 4096).unwrap();
        if matches!(
            inspect_page(&page, id),
            Ok(PageSummary::Node { level: 0, .. })
        ) {
            file.write_all_at(&[0u8; 2048], id * 4096 + 2048).unwrap();
            torn += 1;
        }
    }
    assert!(torn > 20, "{torn} leaves torn");
    file.sync_data().unwrap();
    drop(file);
    crash_without_checkpoint(&vfs, db);
    let db = Database::open(PATH, &options(&vfs)).unwrap();
    let report = db.recovery_report();
    assert!(
        report.records >= 30 && report.pages_applied > 0,
        "{report:?}"
    );
    let tree = db.open_tree("t").unwrap();
    let values: Vec<Vec<u8>> = tree.iter().map(|e| e.unwrap().1).collect();
    assert_eq!(values.len(), 3_000);
    assert!(values.iter().all(|v| v == &vec![2u8; 60]));
    db.check_integrity().unwrap();
}

#[test]
fn test_damage_in_the_middle_of_the_log_refuses_to_open() {
    let (vfs, db) = rewritten_after_checkpoint();
    crash_without_checkpoint(&vfs, db);
    let dir = nq_storage::wal_dir_for(Path::new(PATH));
    let names = vfs.list(&dir).unwrap();
    let segment = dir.join(names.iter().max().unwrap());
    let file = vfs.open(&segment).unwrap();
    let len = file.size().unwrap();
    file.write_all_at(&[0xA5; 16], len / 3).unwrap();
    file.sync_data().unwrap();
    drop(file);
    let err = Database::open(PATH, &options(&vfs)).unwrap_err();
    assert!(
        matches!(err, nq_storage::StorageError::LogCorruption { .. }),
        "{err}"
    );
}

/// A power cut at any point of creating a database leaves either nothing or a file that
/// `open_or_create` finishes: never a database that cannot be opened.
#[test]
fn test_power_loss_during_create_never_bricks_the_path() {
    for n in 0..10u64 {
        let vfs = FaultVfs::new();
        vfs.fail_after_syncs(n);
        let _ = Database::create(PATH, &options(&vfs)).map(drop);
        vfs.crash(None);
        let db = Database::open_or_create(PATH, &options(&vfs))
            .unwrap_or_else(|e| panic!("after {n} syncs: {e}"));
        let tree = db.tree("t").unwrap();
        db.batch(|| tree.insert(b"k", b"v")).unwrap();
        drop(tree);
        db.close().unwrap();
        let db = Database::open(PATH, &options(&vfs)).unwrap();
        assert_eq!(
            db.open_tree("t").unwrap().get(b"k").unwrap(),
            Some(b"v".to_vec())
        );
        db.check_integrity().unwrap();
    }
}
