//! The whole engine on the fault-injecting file system.
//!
//! There is no write-ahead log in the engine yet, so a crash between flushes is allowed to leave
//! an unusable file. What must hold already: a database that was flushed and closed survives a
//! power cut intact, and a crash at any point never makes opening or checking the file panic;
//! damage surfaces as a typed error.

use std::path::Path;
use std::sync::Arc;

use nq_storage::vfs::{FaultVfs, Vfs};
use nq_storage::{BufferPoolConfig, Database, Options};

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

#[test]
fn test_crash_at_any_sync_point_gives_typed_errors_not_panics() {
    let mut outcomes = [0usize; 3]; // opened and consistent, opened but damaged, refused
    for fail_after in 0..40u64 {
        for torn in [None, Some(4096)] {
            let vfs = FaultVfs::new();
            let db = Database::create(PATH, &options(&vfs)).unwrap();
            let tree = db.create_tree("t").unwrap();
            vfs.fail_after_syncs(fail_after);
            'work: for round in 0..20u32 {
                for k in 0..300u32 {
                    let key = (k * 7919 + round).to_be_bytes();
                    if tree.insert(&key, &[round as u8; 80]).is_err() {
                        break 'work;
                    }
                }
                if db.flush().is_err() {
                    break;
                }
            }
            drop(tree);
            drop(db);
            vfs.crash(torn);
            match Database::open(PATH, &options(&vfs)) {
                Ok(db) => match db.check_integrity() {
                    Ok(_) => outcomes[0] += 1,
                    Err(err) => {
                        assert!(
                            err.is_corruption()
                                || matches!(err, nq_storage::StorageError::Integrity(_)),
                            "{err}"
                        );
                        outcomes[1] += 1;
                    }
                },
                Err(err) => {
                    assert!(
                        err.is_corruption()
                            || matches!(err, nq_storage::StorageError::IncompatibleFile { .. }),
                        "unexpected error kind: {err}"
                    );
                    outcomes[2] += 1;
                }
            }
        }
    }
    // Both kinds of outcome occur: some crash points leave a consistent file, others damage it
    // (which the write-ahead log will fix).
    assert!(outcomes[0] > 0, "{outcomes:?}");
    assert!(outcomes[1] + outcomes[2] > 0, "{outcomes:?}");
}
