//! Random operation sequences checked against `std::collections::BTreeMap`, including closing
//! and reopening the file in the middle, across page sizes and with a pool small enough that
//! pages are constantly evicted and written back.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use nq_storage::{Database, Tree};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Range(Vec<u8>, Vec<u8>, bool),
    Reopen,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Dense small keys: many collisions, so updates and deletes hit existing entries.
        (0u16..400).prop_map(|k| k.to_be_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
        // Long keys with a shared prefix stress separators and internal splits.
        (0u16..200, 100usize..300).prop_map(|(k, len)| {
            let mut key = vec![b'p'; len];
            key.extend_from_slice(&k.to_be_bytes());
            key
        }),
        // Keys like SQL rows of a few tables: a table prefix, then an integer. Leaves store
        // the prefix their keys share once; keys of a neighbouring table, or integers
        // crossing a byte boundary, arrive without it and make a leaf lay itself out anew.
        (0u8..3, 0u32..5000, 0usize..3).prop_map(|(table, k, tail)| {
            let mut key = b"t\x00\xff\x00\xff\x00\xff".to_vec();
            key.push(table);
            key.push(b'r');
            key.extend_from_slice(&(k * 61).to_be_bytes());
            key.extend(std::iter::repeat_n(0xAB, tail));
            key
        }),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..120),
        // Right at the inline limit (cells of the maximum size for 4 KiB pages and short keys).
        1 => (960usize..1000).prop_map(|len| vec![0xA5; len]),
        // Values past the inline limit go to overflow chains.
        1 => (1000usize..20_000).prop_map(|len| (0..len).map(|i| (i % 251) as u8).collect()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        50 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        25 => key().prop_map(Op::Delete),
        10 => key().prop_map(Op::Get),
        6 => (key(), key(), any::<bool>()).prop_map(|(a, b, rev)| Op::Range(a, b, rev)),
        1 => Just(Op::Reopen),
    ]
}

fn check_range(tree: &Tree, model: &BTreeMap<Vec<u8>, Vec<u8>>, a: &[u8], b: &[u8], rev: bool) {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let expected: Vec<_> = model
        .range::<[u8], _>((Bound::Included(lo), Bound::Excluded(hi)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let range = tree.range(lo..hi);
    let got: Vec<_> = if rev {
        let mut g: Vec<_> = range.rev().map(Result::unwrap).collect();
        g.reverse();
        g
    } else {
        range.map(Result::unwrap).collect()
    };
    assert_eq!(got, expected, "range {lo:?}..{hi:?} rev={rev}");
}

fn run(page_size: usize, ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let options = common::small_options(page_size, 24);
    let mut db = common::create(dir.path(), &options);
    let mut tree = db.create_tree("t").unwrap();
    let mut model = BTreeMap::new();
    for op in ops {
        match op {
            Op::Insert(k, v) => {
                let replaced = tree.insert(&k, &v).unwrap();
                assert_eq!(replaced, model.insert(k, v).is_some());
            }
            Op::Delete(k) => {
                assert_eq!(tree.delete(&k).unwrap(), model.remove(&k).is_some());
            }
            Op::Get(k) => assert_eq!(tree.get(&k).unwrap(), model.get(&k).cloned()),
            Op::Range(a, b, rev) => check_range(&tree, &model, &a, &b, rev),
            Op::Reopen => {
                drop(tree);
                db.close().unwrap();
                db = Database::open(common::db_path(dir.path()), &options).unwrap();
                tree = db.open_tree("t").unwrap();
            }
        }
    }
    let all: Vec<_> = tree.iter().map(Result::unwrap).collect();
    let expected: Vec<_> = model.into_iter().collect();
    assert_eq!(all, expected);
    let backwards: Vec<_> = tree.iter().rev().map(Result::unwrap).collect();
    assert!(backwards.iter().rev().eq(all.iter()));
    db.check_integrity().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn test_matches_btreemap_4k(ops in prop::collection::vec(op(), 1..1500)) {
        run(4096, ops);
    }

    #[test]
    fn test_matches_btreemap_other_page_sizes(
        page_size in prop::sample::select(vec![8192usize, 16384, 32768]),
        ops in prop::collection::vec(op(), 1..1500),
    ) {
        run(page_size, ops);
    }
}

/// Inserting then deleting everything must shrink the tree back to a single empty root and
/// return every page to the free list.
#[test]
fn test_tree_shrinks_and_pages_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::create(dir.path(), &common::small_options(4096, 64));
    let tree = db.create_tree("t").unwrap();
    let keys: Vec<[u8; 8]> = (0..20_000u64)
        .map(|i| (i * 7919 % 20_000).to_be_bytes())
        .collect();
    for k in &keys {
        tree.insert(k, &[1u8; 60]).unwrap();
    }
    let grown = db.check_integrity().unwrap();
    assert!(grown.node_pages > 300, "{grown:?}");
    for k in &keys {
        assert!(tree.delete(k).unwrap());
    }
    let shrunk = db.check_integrity().unwrap();
    assert_eq!(shrunk.entries, 0);
    // Catalog root plus the tree's root are the only nodes left.
    assert_eq!(shrunk.node_pages, 2, "{shrunk:?}");
    assert_eq!(shrunk.free_pages, grown.pages - 3);
    // Refilling reuses freed pages instead of growing the file.
    for k in &keys {
        tree.insert(k, &[2u8; 60]).unwrap();
    }
    let refilled = db.check_integrity().unwrap();
    assert_eq!(refilled.pages, grown.pages);
}
