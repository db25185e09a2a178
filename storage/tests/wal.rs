//! The write-ahead log: durability across reopen, segment rotation, torn tails, corruption,
//! group commit.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nq_storage::StorageError;
use nq_storage::wal::{Record, SyncPolicy, Wal, WalConfig};

fn small_segments() -> WalConfig {
    WalConfig {
        segment_bytes: 4096,
        sync: SyncPolicy::Fsync,
    }
}

fn payload(i: u32) -> Vec<u8> {
    let mut p = i.to_le_bytes().to_vec();
    p.resize(20 + (i as usize * 37) % 300, (i % 251) as u8);
    p
}

fn write(dir: &Path, n: u32) -> Vec<u64> {
    let wal = Wal::open(dir, small_segments()).unwrap();
    let ends: Vec<u64> = (0..n)
        .map(|i| wal.append((i % 7) as u8, &payload(i)).unwrap())
        .collect();
    wal.flush_all().unwrap();
    ends
}

fn read_all(dir: &Path) -> Result<Vec<Record>, StorageError> {
    let wal = Wal::open(dir, small_segments())?;
    wal.read_from(0)?.collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

#[test]
fn test_records_survive_reopen_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let ends = write(dir.path(), 500);
    assert!(
        segments(dir.path()).len() > 10,
        "small segments must rotate"
    );
    let records = read_all(dir.path()).unwrap();
    assert_eq!(records.len(), 500);
    for (i, rec) in records.iter().enumerate() {
        assert_eq!(rec.payload, payload(i as u32));
        assert_eq!(rec.kind, (i % 7) as u8);
        assert_eq!(rec.end(), ends[i]);
    }
    // Appending after reopen continues the stream.
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(wal.next_lsn(), *ends.last().unwrap());
    let end = wal.append(9, b"after").unwrap();
    wal.flush(end).unwrap();
    drop(wal);
    let records = read_all(dir.path()).unwrap();
    assert_eq!(records.last().unwrap().payload, b"after");
    // Reading from a position skips what came before.
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    let tail: Vec<Record> = wal
        .read_from(ends[399])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tail.len(), 101);
    assert_eq!(tail[0].payload, payload(400));
}

#[test]
fn test_old_segments_are_removed_after_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ends = write(dir.path(), 500);
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    let before = segments(dir.path()).len();
    let removed = wal.remove_before(ends[300]).unwrap();
    assert!(removed > 5, "removed {removed} of {before}");
    let rest: Vec<Record> = wal
        .read_from(ends[300])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rest.len(), 199);
    assert_eq!(rest[0].payload, payload(301));
    drop(wal);
    // The shortened log still opens.
    assert_eq!(
        Wal::open(dir.path(), small_segments()).unwrap().next_lsn(),
        ends[499]
    );
}

#[test]
fn test_torn_tail_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 100);
    let last = segments(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let file = OpenOptions::new().write(true).open(&last).unwrap();
    // Cut the last record in half, as a crash during the write would.
    file.set_len(len - 10).unwrap();
    let records = read_all(dir.path()).unwrap();
    assert_eq!(records.len(), 99);
    // Garbage appended after the last record (a partly written batch) is cut off too.
    let len = std::fs::metadata(&last).unwrap().len();
    file.write_all_at(&[0xAB; 300], len).unwrap();
    assert_eq!(read_all(dir.path()).unwrap().len(), 99);
    // And the log keeps working.
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    let end = wal.append(1, b"new").unwrap();
    wal.flush(end).unwrap();
    drop(wal);
    assert_eq!(read_all(dir.path()).unwrap().len(), 100);
}

#[test]
fn test_damage_before_valid_records_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 100);
    let last = segments(dir.path()).pop().unwrap();
    let file = OpenOptions::new().write(true).open(&last).unwrap();
    // The first record of the last segment; valid records follow it.
    file.write_all_at(&[0xFF], 16 + 20).unwrap();
    let err = read_all(dir.path()).unwrap_err();
    assert!(matches!(err, StorageError::LogCorruption { .. }), "{err}");
    assert!(err.to_string().contains("valid records follow"), "{err}");
}

#[test]
fn test_damage_in_an_older_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 200);
    let older = segments(dir.path())[2].clone();
    let file = OpenOptions::new().write(true).open(&older).unwrap();
    file.write_all_at(&[0x00, 0x00], 16 + 100).unwrap();
    let err = read_all(dir.path()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(
        err.to_string()
            .contains(older.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn test_missing_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 200);
    std::fs::remove_file(&segments(dir.path())[3]).unwrap();
    let err = read_all(dir.path()).unwrap_err();
    assert!(matches!(err, StorageError::LogCorruption { .. }), "{err}");
}

#[test]
fn test_half_created_segment_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let ends = write(dir.path(), 50);
    let next = ends.last().unwrap();
    // A crash right after creating the next segment, before its header was complete.
    std::fs::write(dir.path().join(format!("{next:020}.wal")), b"NQDB").unwrap();
    assert_eq!(read_all(dir.path()).unwrap().len(), 50);
}

#[test]
fn test_concurrent_committers_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), WalConfig::default()).unwrap();
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..100u32 {
                    let end = wal.append(1, &payload(t * 1000 + i)).unwrap();
                    wal.flush(end).unwrap();
                    assert!(wal.durable_lsn() >= end);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.records, 800);
    assert!(stats.syncs < 800, "800 commits must share syncs: {stats:?}");
    drop(wal);
    let wal = Wal::open(dir.path(), WalConfig::default()).unwrap();
    let mut got: Vec<Vec<u8>> = wal
        .read_from(0)
        .unwrap()
        .map(|r| r.unwrap().payload)
        .collect();
    let mut want: Vec<Vec<u8>> = (0..8u32)
        .flat_map(|t| (0..100u32).map(move |i| payload(t * 1000 + i)))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn test_relaxed_policy_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        segment_bytes: 1 << 20,
        // Long enough that the syncer cannot run between the flush and the first assertion.
        sync: SyncPolicy::Relaxed {
            interval: Duration::from_millis(300),
        },
    };
    let wal = Wal::open(dir.path(), config).unwrap();
    let end = wal.append(1, b"relaxed").unwrap();
    wal.flush(end).unwrap();
    assert_eq!(wal.stats().syncs, 0, "a relaxed flush does not sync");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal.stats().syncs == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "background sync never ran"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    wal.close().unwrap();
}
