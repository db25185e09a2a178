//! Behaviour of the public API: trees, overflow values, bulk load, bounds, errors, persistence.

mod common;

use std::ops::Bound;

use nq_storage::{Database, Options, StorageError};

#[test]
fn test_named_trees_persist_and_drop_frees_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(dir.path());
    {
        let db = Database::create(&path, &Options::default()).unwrap();
        for name in ["b", "a", "c"] {
            let tree = db.create_tree(name).unwrap();
            for i in 0..2_000u32 {
                tree.insert(&i.to_be_bytes(), name.as_bytes()).unwrap();
            }
        }
        assert!(matches!(
            db.create_tree("a"),
            Err(StorageError::TreeExists(_))
        ));
        db.close().unwrap();
    }
    let db = Database::open(&path, &Options::default()).unwrap();
    assert_eq!(db.tree_names().unwrap(), vec!["a", "b", "c"]);
    assert_eq!(
        db.open_tree("b").unwrap().get(&7u32.to_be_bytes()).unwrap(),
        Some(b"b".to_vec())
    );
    let before = db.check_integrity().unwrap();
    let stale = db.open_tree("b").unwrap();
    db.drop_tree("b").unwrap();
    assert!(matches!(
        stale.get(b"x"),
        Err(StorageError::TreeNotFound(_))
    ));
    assert!(matches!(
        db.open_tree("b"),
        Err(StorageError::TreeNotFound(_))
    ));
    let after = db.check_integrity().unwrap();
    assert_eq!(after.trees, 2);
    // Every page of the dropped tree went to the free list; the file did not shrink or leak.
    assert_eq!(after.pages, before.pages);
    assert!(
        after.free_pages > before.free_pages + 5,
        "{before:?} {after:?}"
    );
    assert_eq!(
        after.node_pages + after.free_pages,
        before.node_pages + before.free_pages
    );
    assert!(db.create_tree("").is_err());
    assert!(db.create_tree("$internal").is_err());
}

#[test]
fn test_large_values_use_overflow_pages_and_are_freed() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 32));
    let tree = db.create_tree("blobs").unwrap();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i * 31 % 256) as u8).collect();
    tree.insert(b"big", &big).unwrap();
    tree.insert(b"small", b"x").unwrap();
    assert_eq!(tree.get(b"big").unwrap().unwrap(), big);
    let report = db.check_integrity().unwrap();
    assert!(report.overflow_pages >= 1_000_000 / 4096, "{report:?}");
    // Replacing with a smaller value frees the old chain.
    let medium = vec![9u8; 10_000];
    tree.insert(b"big", &medium).unwrap();
    assert_eq!(tree.get(b"big").unwrap().unwrap(), medium);
    let report = db.check_integrity().unwrap();
    assert!(report.overflow_pages <= 3, "{report:?}");
    assert!(tree.delete(b"big").unwrap());
    assert_eq!(db.check_integrity().unwrap().overflow_pages, 0);
}

#[test]
fn test_bulk_load_builds_a_dense_valid_tree() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 64));
    let tree = db.create_tree("bulk").unwrap();
    let n = 100_000u64;
    let loaded = tree
        .bulk_load((0..n).map(|i| ((i * 2).to_be_bytes(), i.to_le_bytes())))
        .unwrap();
    assert_eq!(loaded, n);
    let report = db.check_integrity().unwrap();
    assert_eq!(report.entries, n);
    assert!(report.leaf_fill > 0.85, "{report:?}");
    assert_eq!(
        tree.get(&200u64.to_be_bytes()).unwrap(),
        Some(100u64.to_le_bytes().to_vec())
    );
    assert_eq!(tree.get(&201u64.to_be_bytes()).unwrap(), None);
    // The loaded tree keeps working for ordinary writes.
    tree.insert(&201u64.to_be_bytes(), b"odd").unwrap();
    assert!(tree.delete(&0u64.to_be_bytes()).unwrap());
    db.check_integrity().unwrap();
    assert!(matches!(
        tree.bulk_load([(b"k", b"v")]),
        Err(StorageError::BulkLoad(_))
    ));
}

#[test]
fn test_bulk_load_rejects_unsorted_input_and_leaves_no_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 64));
    let tree = db.create_tree("bulk").unwrap();
    let mut keys: Vec<u64> = (0..20_000).collect();
    keys.swap(15_000, 15_001);
    let err = tree
        .bulk_load(keys.iter().map(|k| (k.to_be_bytes(), [0u8; 20])))
        .unwrap_err();
    assert!(matches!(err, StorageError::BulkLoad(_)), "{err}");
    assert!(tree.is_empty().unwrap());
    let report = db.check_integrity().unwrap();
    assert_eq!(report.entries, 0);
}

#[test]
fn test_range_bounds_and_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 64));
    let tree = db.create_tree("r").unwrap();
    for i in 0..1_000u32 {
        tree.insert(format!("key{i:04}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    fn keys(r: impl Iterator<Item = nq_storage::Result<(Vec<u8>, Vec<u8>)>>) -> Vec<String> {
        r.map(|e| String::from_utf8(e.unwrap().0).unwrap())
            .collect()
    }
    let incl = keys(tree.range(&b"key0010"[..]..=&b"key0012"[..]));
    assert_eq!(incl, ["key0010", "key0011", "key0012"]);
    let excl = keys(tree.range::<&[u8], _>((
        Bound::Excluded(&b"key0010"[..]),
        Bound::Excluded(&b"key0012"[..]),
    )));
    assert_eq!(excl, ["key0011"]);
    let back: Vec<_> = keys(tree.range(&b"key0998"[..]..).rev());
    assert_eq!(back, ["key0999", "key0998"]);
    assert_eq!(keys(tree.prefix(b"key012")).len(), 10);
    assert_eq!(keys(tree.range(&b"z"[..]..&b"a"[..])).len(), 0);
    // Both ends of one iterator meet without repeating an entry.
    let mut it = tree.range(&b"key0100"[..]..&b"key0200"[..]);
    let mut seen = Vec::new();
    loop {
        match (it.next(), it.next_back()) {
            (Some(a), Some(b)) => {
                seen.push(a.unwrap().0);
                seen.push(b.unwrap().0);
            }
            (Some(a), None) | (None, Some(a)) => seen.push(a.unwrap().0),
            (None, None) => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 100);
    assert_eq!(tree.first().unwrap().unwrap().0, b"key0000");
    assert_eq!(tree.last().unwrap().unwrap().0, b"key0999");
}

#[test]
fn test_oversized_keys_and_bad_options_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &Options::default());
    let tree = db.create_tree("t").unwrap();
    let max = db.max_key_len();
    tree.insert(&vec![1u8; max], b"ok").unwrap();
    let err = tree.insert(&vec![1u8; max + 1], b"no").unwrap_err();
    assert!(matches!(err, StorageError::KeyTooLarge { .. }), "{err}");
    let bad_page = Options {
        page_size: 1000,
        ..Options::default()
    };
    let err = Database::create(dir.path().join("x"), &bad_page).unwrap_err();
    assert!(matches!(err, StorageError::InvalidConfig(_)), "{err}");
    let mut tiny = Options::default();
    tiny.buffer_pool.budget_bytes = 10_000;
    let err = Database::create(dir.path().join("y"), &tiny).unwrap_err();
    assert!(matches!(err, StorageError::InvalidConfig(_)), "{err}");
    assert!(err.to_string().contains("buffer_pool_bytes"), "{err}");
}

#[test]
fn test_buffer_pool_respects_budget_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 40));
    let tree = db.create_tree("t").unwrap();
    for i in 0..30_000u32 {
        tree.insert(&i.to_be_bytes(), &[3u8; 80]).unwrap();
        if i % 5_000 == 0 {
            let s = db.stats();
            assert!(s.resident_pages <= s.capacity_frames, "{s:?}");
        }
    }
    // Reading everything back through a 40-frame pool must miss and evict.
    for i in (0..30_000u32).rev() {
        assert_eq!(tree.get(&i.to_be_bytes()).unwrap(), Some(vec![3u8; 80]));
    }
    let s = db.stats();
    assert_eq!(s.capacity_frames, 40);
    assert!(
        s.evictions > 0 && s.page_writes > 0 && s.misses > 0 && s.hits > s.misses,
        "{s:?}"
    );
    db.flush().unwrap();
    assert_eq!(db.stats().dirty_pages, 0);
    // A prefetch hint loads pages that were not resident.
    let report = db.check_integrity().unwrap();
    let before = db.stats().prefetched;
    db.prefetch(&(2..report.pages.min(30)).collect::<Vec<_>>());
    assert!(db.stats().prefetched > before);
}

/// A range paused half-way while the tree is restructured around it (splits, merges, a new
/// root level) must resume in order, without repeats, and still deliver every key that was
/// never touched.
#[test]
fn test_range_survives_structural_changes_between_calls() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 64));
    let tree = db.create_tree("t").unwrap();
    // Stable keys are multiples of 10; the churn touches only other keys.
    for k in (0..50_000u32).step_by(10) {
        tree.insert(&k.to_be_bytes(), &[1u8; 40]).unwrap();
    }
    for rev in [false, true] {
        let mut range = tree.iter();
        let mut seen: Vec<u32> = Vec::new();
        let pull = |range: &mut nq_storage::Range, n: usize, seen: &mut Vec<u32>| {
            for _ in 0..n {
                let next = if rev { range.next_back() } else { range.next() };
                let Some(entry) = next else { break };
                seen.push(u32::from_be_bytes(entry.unwrap().0.try_into().unwrap()));
            }
        };
        pull(&mut range, 1_000, &mut seen);
        // Split every leaf several times over, then merge most of it away again.
        for k in 0..50_000u32 {
            if k % 10 != 0 {
                tree.insert(&k.to_be_bytes(), &[2u8; 40]).unwrap();
            }
        }
        pull(&mut range, 5_000, &mut seen);
        for k in 0..50_000u32 {
            if k % 10 != 0 {
                tree.delete(&k.to_be_bytes()).unwrap();
            }
        }
        pull(&mut range, usize::MAX, &mut seen);
        if rev {
            seen.reverse();
        }
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "out of order or repeated (rev={rev})"
        );
        let stable: Vec<u32> = seen.iter().copied().filter(|k| k % 10 == 0).collect();
        assert_eq!(
            stable,
            (0..50_000u32).step_by(10).collect::<Vec<_>>(),
            "rev={rev}"
        );
    }
    db.check_integrity().unwrap();
}

/// `next_ref` hands out borrowed entries equal to what the owning iterator yields.
#[test]
fn test_borrowed_and_owned_iteration_agree() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 64));
    let tree = db.create_tree("t").unwrap();
    for i in 0..3_000u32 {
        let value = if i % 500 == 0 {
            vec![9u8; 9_000]
        } else {
            i.to_le_bytes().to_vec()
        };
        tree.insert(&i.to_be_bytes(), &value).unwrap();
    }
    let owned: Vec<_> = tree
        .range(&100u32.to_be_bytes()[..]..)
        .map(Result::unwrap)
        .collect();
    let mut borrowed = Vec::new();
    let mut range = tree.range(&100u32.to_be_bytes()[..]..);
    while let Some(entry) = range.next_ref() {
        let (k, v) = entry.unwrap();
        borrowed.push((k.to_vec(), v.to_vec()));
    }
    assert_eq!(owned, borrowed);
    assert_eq!(owned.len(), 2_900);
    let mut out = Vec::new();
    assert!(tree.get_into(&1000u32.to_be_bytes(), &mut out).unwrap());
    assert_eq!(out, vec![9u8; 9_000]);
    assert!(!tree.get_into(&5000u32.to_be_bytes(), &mut out).unwrap());
    assert!(out.is_empty());
}

/// Random inserts keep leaves well filled (sibling shifts and three-way splits), and ascending
/// inserts fill them almost completely.
#[test]
fn test_leaf_fill_after_random_and_sequential_inserts() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &Options::default());
    let random = db.create_tree("random").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for _ in 0..100_000 {
        random
            .insert(&rng.random::<u64>().to_be_bytes(), &[5u8; 100])
            .unwrap();
    }
    let sequential = db.create_tree("sequential").unwrap();
    for i in 0..100_000u64 {
        sequential.insert(&i.to_be_bytes(), &[5u8; 100]).unwrap();
    }
    db.drop_tree("sequential").unwrap();
    let random_fill = db.check_integrity().unwrap().leaf_fill;
    let seq = db.create_tree("sequential").unwrap();
    for i in 0..100_000u64 {
        seq.insert(&i.to_be_bytes(), &[5u8; 100]).unwrap();
    }
    db.drop_tree("random").unwrap();
    let sequential_fill = db.check_integrity().unwrap().leaf_fill;
    println!("leaf fill: random {random_fill:.3}, sequential {sequential_fill:.3}");
    assert!(
        random_fill > 0.80,
        "random inserts left leaves {random_fill:.3} full"
    );
    assert!(
        sequential_fill > 0.95,
        "sequential inserts left leaves {sequential_fill:.3} full"
    );
}

/// Bulk loads of many sizes: every internal node, including the last of each level, gets at
/// least one separator, and the result passes the integrity check.
#[test]
fn test_bulk_load_of_every_size_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 64));
    for (i, n) in (1..=40u64).map(|i| i * 397).enumerate() {
        let tree = db.create_tree(&format!("t{i}")).unwrap();
        tree.bulk_load((0..n).map(|k| (k.to_be_bytes(), [7u8; 100])))
            .unwrap();
        db.check_integrity()
            .unwrap_or_else(|e| panic!("bulk load of {n} entries: {e}"));
        db.drop_tree(&format!("t{i}")).unwrap();
    }
}

/// `Tree::get_many` answers like `get` per key, in the order asked, whatever that order
/// (duplicates, absent keys and overflow values included), also while a writer splits and
/// merges the tree underneath.
#[test]
fn test_get_many_matches_get_per_key_under_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 64));
    let tree = db.create_tree("t").unwrap();
    let value = |k: u32| -> Vec<u8> {
        let len = if k.is_multiple_of(997) {
            10_000
        } else {
            20 + (k % 50) as usize
        };
        (0..len).map(|i| (k as usize + i) as u8).collect()
    };
    // Stable keys are multiples of 3; the writer touches only the others.
    for k in (0..30_000u32).step_by(3) {
        tree.insert(&k.to_be_bytes(), &value(k)).unwrap();
    }
    let mut asked: Vec<Vec<u8>> = Vec::new();
    for i in 0..3_000u32 {
        // Scrambled order, absent keys (not multiples of 3, or beyond the end), duplicates.
        let k = (i.wrapping_mul(7_919)) % 33_000;
        asked.push(k.to_be_bytes().to_vec());
        if i % 10 == 0 {
            asked.push(k.to_be_bytes().to_vec());
        }
    }
    asked.push(Vec::new());
    asked.push(vec![0xFF; 9]);
    let expect = |asked: &[Vec<u8>]| -> Vec<Option<Vec<u8>>> {
        asked
            .iter()
            .map(|k| {
                let k4: [u8; 4] = k.as_slice().try_into().ok()?;
                let k = u32::from_be_bytes(k4);
                (k.is_multiple_of(3) && k < 30_000).then(|| value(k))
            })
            .collect()
    };
    assert_eq!(tree.get_many(&asked).unwrap(), expect(&asked));
    let per_key: Vec<Option<Vec<u8>>> = asked.iter().map(|k| tree.get(k).unwrap()).collect();
    assert_eq!(tree.get_many(&asked).unwrap(), per_key);
    assert!(tree.get_many::<Vec<u8>>(&[]).unwrap().is_empty());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let tree = tree.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut round = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for k in (0..30_000u32).filter(|k| k % 3 != 0) {
                    if round.is_multiple_of(2) {
                        tree.insert(&k.to_be_bytes(), &[7u8; 60]).unwrap();
                    } else {
                        tree.delete(&k.to_be_bytes()).unwrap();
                    }
                }
                round += 1;
            }
        })
    };
    let stable: Vec<Vec<u8>> = asked
        .iter()
        .filter(|k| k.len() == 4 && u32::from_be_bytes(k[..].try_into().unwrap()) % 3 == 0)
        .cloned()
        .collect();
    for _ in 0..30 {
        assert_eq!(tree.get_many(&stable).unwrap(), expect(&stable));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    db.check_integrity().unwrap();
}

/// Entries of the read-ahead tests: enough 4 KiB leaves (about 2,600) to outgrow a pool of
/// 1,024 frames, the smallest that reads ahead.
const READ_AHEAD_ENTRIES: u32 = 200_000;
const READ_AHEAD_FRAMES: usize = 1_024;

fn read_ahead_value(k: u32) -> Vec<u8> {
    (0..40).map(|i| (k as usize * 31 + i) as u8).collect()
}

/// A batch lookup over a tree larger than the pool, from a cold pool: answers like `get`,
/// and (on a machine with a second core) has the read-ahead helper load leaves for it.
#[test]
fn test_get_many_beyond_the_pool_reads_ahead_and_matches_get() {
    let dir = tempfile::tempdir().unwrap();
    let options = common::small_options(4096, READ_AHEAD_FRAMES);
    {
        let db = common::create(dir.path(), &options);
        let tree = db.create_tree("t").unwrap();
        let loaded = tree
            .bulk_load((0..READ_AHEAD_ENTRIES).map(|k| (k.to_be_bytes(), read_ahead_value(k))))
            .unwrap();
        assert_eq!(loaded, u64::from(READ_AHEAD_ENTRIES));
        db.close().unwrap();
    }
    let db = Database::open(common::db_path(dir.path()), &options).unwrap();
    let tree = db.open_tree("t").unwrap();
    // Every 7th key (one or two per leaf), plus absent keys between and beyond.
    let mut asked: Vec<Vec<u8>> = (0..READ_AHEAD_ENTRIES + 700)
        .step_by(7)
        .map(|k| k.to_be_bytes().to_vec())
        .collect();
    asked.push(vec![0x7F]);
    let expect: Vec<Option<Vec<u8>>> = asked
        .iter()
        .map(|k| {
            let k4: [u8; 4] = k.as_slice().try_into().ok()?;
            let k = u32::from_be_bytes(k4);
            (k < READ_AHEAD_ENTRIES).then(|| read_ahead_value(k))
        })
        .collect();
    assert_eq!(tree.get_many(&asked).unwrap(), expect);
    let stats = db.stats();
    assert!(stats.misses > READ_AHEAD_FRAMES as u64, "{stats:?}");
    let mut read_ahead = stats.prefetched;
    // Once more, warm: the same answers.
    assert_eq!(tree.get_many(&asked).unwrap(), expect);
    db.check_integrity().unwrap();
    // Closing waits for the helper, which then holds nothing of the file: reopening right
    // after a lookup that kept it busy works, every time. Each reopen starts cold again.
    drop(tree);
    let mut db = db;
    for _ in 0..3 {
        db.close().unwrap();
        db = Database::open(common::db_path(dir.path()), &options).unwrap();
        let tree = db.open_tree("t").unwrap();
        assert_eq!(tree.get_many(&asked).unwrap(), expect);
        read_ahead += db.stats().prefetched;
    }
    // Over four cold lookups the helper must have loaded pages (unless there is no second
    // core to run it; a busy machine may starve it in one lookup, hardly in all four).
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cores > 1 {
        assert!(read_ahead > 0, "no page was read ahead");
    }
}
