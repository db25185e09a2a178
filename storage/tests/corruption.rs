//! Damaged files give a clear `Corruption` (or `IncompatibleFile`) error naming the file and
//! page: never a panic, never wrong data.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use nq_storage::{Database, PageSummary, StorageError, inspect_page};

const PAGE: usize = 4096;

/// Builds a file with one tree of 5,000 entries and returns the id of some leaf page.
fn build(dir: &Path) -> u64 {
    let db = common::create(dir, &common::small_options(PAGE, 64));
    let tree = db.create_tree("t").unwrap();
    for i in 0..5_000u32 {
        tree.insert(&i.to_be_bytes(), &[7u8; 50]).unwrap();
    }
    drop(tree);
    db.close().unwrap();
    let bytes = std::fs::read(common::db_path(dir)).unwrap();
    // Page 1 is the catalog root; pick a leaf of the data tree.
    (2..(bytes.len() / PAGE) as u64)
        .find(|&id| {
            let page = &bytes[id as usize * PAGE..(id as usize + 1) * PAGE];
            matches!(inspect_page(page, id), Ok(PageSummary::Node { level: 0, ref keys, .. }) if !keys.is_empty())
        })
        .expect("a leaf page")
}

fn damage(dir: &Path, offset: u64, bytes: &[u8]) {
    let file = OpenOptions::new()
        .write(true)
        .open(common::db_path(dir))
        .unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

/// Reads everything; returns the first error.
fn read_all(dir: &Path) -> Result<usize, StorageError> {
    let db = Database::open(common::db_path(dir), &common::small_options(PAGE, 64))?;
    let tree = db.open_tree("t")?;
    let mut n = 0;
    for entry in tree.iter() {
        let (k, v) = entry?;
        assert_eq!(v, vec![7u8; 50], "wrong data for key {k:?}");
        n += 1;
    }
    Ok(n)
}

fn assert_corruption_names_page(err: &StorageError, page: u64) {
    assert!(err.is_corruption(), "expected corruption, got {err}");
    let msg = err.to_string();
    assert!(
        msg.contains("test.nqdb"),
        "message must name the file: {msg}"
    );
    assert!(
        msg.contains(&format!("page {page}")),
        "message must name page {page}: {msg}"
    );
}

#[test]
fn test_undamaged_file_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    assert_eq!(read_all(dir.path()).unwrap(), 5_000);
}

#[test]
fn test_flipped_byte_in_leaf_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = build(dir.path());
    for offset in [40u64, 1000, 4095] {
        let at = leaf * PAGE as u64 + offset;
        let mut byte = [0u8];
        let file = std::fs::File::open(common::db_path(dir.path())).unwrap();
        file.read_exact_at(&mut byte, at).unwrap();
        damage(dir.path(), at, &[byte[0] ^ 0x10]);
        let err = read_all(dir.path()).unwrap_err();
        assert_corruption_names_page(&err, leaf);
        damage(dir.path(), at, &byte);
    }
    assert_eq!(read_all(dir.path()).unwrap(), 5_000);
}

#[test]
fn test_zeroed_page_is_detected_and_check_integrity_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = build(dir.path());
    damage(dir.path(), leaf * PAGE as u64, &[0u8; PAGE]);
    let err = read_all(dir.path()).unwrap_err();
    assert_corruption_names_page(&err, leaf);
    let db = Database::open(
        common::db_path(dir.path()),
        &common::small_options(PAGE, 64),
    )
    .unwrap();
    let err = db.check_integrity().unwrap_err();
    assert_corruption_names_page(&err, leaf);
}

#[test]
fn test_page_copied_to_wrong_place_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = build(dir.path());
    let bytes = std::fs::read(common::db_path(dir.path())).unwrap();
    let other = &bytes[(leaf as usize + 1) * PAGE..(leaf as usize + 2) * PAGE];
    damage(dir.path(), leaf * PAGE as u64, other);
    let err = read_all(dir.path()).unwrap_err();
    assert_corruption_names_page(&err, leaf);
    assert!(err.to_string().contains("misdirected"), "{err}");
}

#[test]
fn test_truncated_file_is_detected_at_open() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let path = common::db_path(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    let err = read_all(dir.path()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn test_file_cut_inside_a_page_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let path = common::db_path(dir.path());
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(PAGE as u64 + 100).unwrap();
    assert!(read_all(dir.path()).unwrap_err().is_corruption());
}

#[test]
fn test_damaged_header_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // One damaged header slot: the other copy (the previous checkpoint) still opens the file
    // and the log brings it up to date.
    damage(dir.path(), 60, &[0xEE]);
    assert_eq!(read_all(dir.path()).unwrap(), 5_000);
    // Both slots damaged: a clear error naming page 0.
    damage(dir.path(), 60, &[0xEE]);
    damage(dir.path(), 2048 + 60, &[0xEE]);
    let err = read_all(dir.path()).unwrap_err();
    assert_corruption_names_page(&err, 0);
}

#[test]
fn test_foreign_and_empty_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(dir.path());
    std::fs::write(
        &path,
        b"SQLite format 3\0 and then some more bytes to pass the header length",
    )
    .unwrap();
    let err = Database::open(&path, &Default::default()).unwrap_err();
    assert!(
        matches!(err, StorageError::IncompatibleFile { .. }),
        "{err}"
    );
    std::fs::write(&path, b"").unwrap();
    let err = Database::open(&path, &Default::default()).unwrap_err();
    assert!(
        matches!(err, StorageError::IncompatibleFile { .. }),
        "{err}"
    );
}

#[test]
fn test_random_page_bytes_never_panic_the_decoder() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let dir = tempfile::tempdir().unwrap();
    let leaf = build(dir.path());
    let bytes = std::fs::read(common::db_path(dir.path())).unwrap();
    let page = &bytes[leaf as usize * PAGE..(leaf as usize + 1) * PAGE];
    for _ in 0..2_000 {
        let mut damaged = page.to_vec();
        for _ in 0..rng.random_range(1..20) {
            let at = rng.random_range(32..PAGE);
            damaged[at] ^= rng.random_range(1..=255u8);
        }
        // Skip the checksum so the node parser itself sees the garbage.
        let _ = nq_storage::decode_verified(&damaged, leaf, nq_storage::PageType::Leaf);
        let _ = nq_storage::decode_verified(&damaged, leaf, nq_storage::PageType::Internal);
        assert!(inspect_page(&damaged, leaf).is_err());
    }
}

/// A damaged leaf met by the read-ahead helper of a batch lookup is still reported to the
/// lookup (the helper forgets its failed load; the lookup reads the page and fails).
#[test]
fn test_damaged_leaf_under_read_ahead_is_reported_by_the_lookup() {
    const ENTRIES: u32 = 200_000;
    const FRAMES: usize = 1_024;
    let dir = tempfile::tempdir().unwrap();
    let options = common::small_options(PAGE, FRAMES);
    {
        let db = common::create(dir.path(), &options);
        let tree = db.create_tree("t").unwrap();
        tree.bulk_load((0..ENTRIES).map(|k| (k.to_be_bytes(), [7u8; 40])))
            .unwrap();
        db.close().unwrap();
    }
    // A leaf holding a key from the middle of the tree.
    let bytes = std::fs::read(common::db_path(dir.path())).unwrap();
    let middle = (ENTRIES / 2).to_be_bytes().to_vec();
    let leaf = (2..(bytes.len() / PAGE) as u64)
        .find(|&id| {
            let page = &bytes[id as usize * PAGE..(id as usize + 1) * PAGE];
            matches!(inspect_page(page, id), Ok(PageSummary::Node { level: 0, ref keys, .. }) if keys.contains(&middle))
        })
        .expect("the leaf of the middle key");
    damage(dir.path(), leaf * PAGE as u64 + 1000, &[0xA5; 8]);
    let db = Database::open(common::db_path(dir.path()), &options).unwrap();
    let tree = db.open_tree("t").unwrap();
    let asked: Vec<[u8; 4]> = (0..ENTRIES).step_by(5).map(u32::to_be_bytes).collect();
    let err = tree.get_many(&asked).unwrap_err();
    assert_corruption_names_page(&err, leaf);
    // Keys before the damage still read.
    let before: Vec<[u8; 4]> = (0..ENTRIES / 4).step_by(5).map(u32::to_be_bytes).collect();
    assert!(tree.get_many(&before).unwrap().iter().all(Option::is_some));
}
