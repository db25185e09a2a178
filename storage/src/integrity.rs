//! The integrity checker behind [`crate::Database::check_integrity`].

use crate::error::{Result, StorageError};
use crate::node::{self, ValueRef};
use crate::page::PageId;
use crate::store::Store;

/// What the integrity checker found in a healthy file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntegrityReport {
    /// Named trees (the catalog not included).
    pub trees: usize,
    /// Pages in the file, including the header page.
    pub pages: u64,
    /// Pages on the free list.
    pub free_pages: u64,
    /// B+ tree nodes, the catalog included.
    pub node_pages: u64,
    /// Overflow pages.
    pub overflow_pages: u64,
    /// Key-value entries in named trees.
    pub entries: u64,
    /// Mean fraction of usable bytes in use across leaves.
    pub leaf_fill: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Unused,
    Meta,
    Node,
    Overflow,
    Free,
}

/// A child page with the key bounds its parent imposes.
type ChildBounds = (PageId, Option<Vec<u8>>, Option<Vec<u8>>);

struct Checker<'a> {
    store: &'a Store,
    uses: Vec<Use>,
    leaves: Vec<(PageId, PageId, PageId)>,
    entries: u64,
    leaf_bytes: u64,
    leaf_count: u64,
}

fn fail(msg: String) -> StorageError {
    StorageError::Integrity(msg)
}

impl Checker<'_> {
    fn claim(&mut self, id: PageId, kind: Use, owner: &str) -> Result<()> {
        let slot = self
            .uses
            .get_mut(id as usize)
            .ok_or_else(|| fail(format!("{owner}: page {id} is beyond the end of the file")))?;
        if *slot != Use::Unused {
            return Err(fail(format!("{owner}: page {id} is referenced twice")));
        }
        *slot = kind;
        Ok(())
    }

    /// Checks the subtree at `id` whose keys must lie in `[lo, hi)`.
    fn node(
        &mut self,
        tree: &str,
        id: PageId,
        level: Option<u16>,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        is_root: bool,
    ) -> Result<u64> {
        self.claim(id, Use::Node, tree)?;
        let page = self.store.read_node(id, level)?;
        let malformed = self.store.malformed(id);
        let n = node::nkeys(&page);
        let leaf = node::is_leaf(&page);
        if !is_root && n == 0 {
            return Err(fail(format!("{tree}: non-root node {id} is empty")));
        }
        node::verify_heads(&page).map_err(&malformed)?;
        let mut prev: Option<Vec<u8>> = lo.map(<[u8]>::to_vec);
        for i in 0..n {
            let key = node::key(&page, i).map_err(&malformed)?;
            let in_order = match &prev {
                None => true,
                // The first key may equal the lower bound (a separator is <= its right subtree).
                Some(p) if i == 0 => key.cmp_bytes(p).is_ge(),
                Some(p) => key.cmp_bytes(p).is_gt(),
            };
            if !in_order {
                return Err(fail(format!(
                    "{tree}: keys out of order in page {id} at cell {i}"
                )));
            }
            if hi.is_some_and(|h| key.cmp_bytes(h).is_ge()) {
                return Err(fail(format!(
                    "{tree}: key in page {id} cell {i} above its bound"
                )));
            }
            prev = Some(key.to_vec());
        }
        if leaf {
            self.leaves
                .push((id, node::left(&page), node::right(&page)));
            self.leaf_bytes += node::used(&page) as u64;
            self.leaf_count += 1;
            for i in 0..n {
                if let (_, ValueRef::Overflow { first, len }) =
                    node::leaf_entry(&page, i).map_err(&malformed)?
                {
                    for overflow in self.store.walk_overflow(first, len, None)? {
                        self.claim(overflow, Use::Overflow, tree)?;
                    }
                }
            }
            return Ok(n as u64);
        }
        let child_level = Some(node::level(&page) - 1);
        let mut bounds: Vec<ChildBounds> = Vec::with_capacity(n + 1);
        for ci in 0..=n {
            let child = node::child(&page, ci).map_err(&malformed)?;
            let child_lo = if ci == 0 {
                lo.map(<[u8]>::to_vec)
            } else {
                Some(node::key(&page, ci - 1).map_err(&malformed)?.to_vec())
            };
            let child_hi = if ci == n {
                hi.map(<[u8]>::to_vec)
            } else {
                Some(node::key(&page, ci).map_err(&malformed)?.to_vec())
            };
            bounds.push((child, child_lo, child_hi));
        }
        drop(page);
        let mut entries = 0;
        for (child, child_lo, child_hi) in bounds {
            entries += self.node(
                tree,
                child,
                child_level,
                child_lo.as_deref(),
                child_hi.as_deref(),
                false,
            )?;
        }
        Ok(entries)
    }

    fn tree(&mut self, name: &str, root: PageId) -> Result<u64> {
        self.leaves.clear();
        let entries = self.node(name, root, None, None, None, true)?;
        let leaves = std::mem::take(&mut self.leaves);
        for (i, &(id, left, right)) in leaves.iter().enumerate() {
            let want_left = if i == 0 { 0 } else { leaves[i - 1].0 };
            let want_right = leaves.get(i + 1).map_or(0, |l| l.0);
            if left != want_left || right != want_right {
                return Err(fail(format!(
                    "{name}: leaf {id} links ({left}, {right}), expected ({want_left}, {want_right})"
                )));
            }
        }
        Ok(entries)
    }
}

/// Checks the catalog and the given trees; see [`crate::Database::check_integrity`].
pub(crate) fn check(store: &Store, trees: &[(String, PageId)]) -> Result<IntegrityReport> {
    store.flush()?;
    let alloc = store.alloc_state();
    // Every page on disk must carry a valid checksum, cached or not.
    let pager = store.pool.pager();
    let mut buf = vec![0u8; pager.page_size()];
    // Page 0's two header slots carry their own checksums, verified when the file was opened.
    for id in 1..alloc.page_count {
        pager.read_page(id, &mut buf)?;
    }
    let mut checker = Checker {
        store,
        uses: vec![Use::Unused; alloc.page_count as usize],
        leaves: Vec::new(),
        entries: 0,
        leaf_bytes: 0,
        leaf_count: 0,
    };
    checker.uses[0] = Use::Meta;
    checker.tree("$catalog", store.catalog_root)?;
    for (name, root) in trees {
        checker.entries += checker.tree(name, *root)?;
    }
    let free = store.free_list()?;
    for &id in &free {
        checker.claim(id, Use::Free, "free list")?;
    }
    if let Some(leaked) = checker.uses.iter().position(|u| *u == Use::Unused) {
        return Err(fail(format!(
            "page {leaked} is neither in a tree nor on the free list"
        )));
    }
    let count = |kind: Use| checker.uses.iter().filter(|u| **u == kind).count() as u64;
    Ok(IntegrityReport {
        trees: trees.len(),
        pages: alloc.page_count,
        free_pages: free.len() as u64,
        node_pages: count(Use::Node),
        overflow_pages: count(Use::Overflow),
        entries: checker.entries,
        leaf_fill: if checker.leaf_count == 0 {
            0.0
        } else {
            checker.leaf_bytes as f64 / (checker.leaf_count as f64 * store.limits.usable as f64)
        },
    })
}

/// Every page of a tree (nodes and overflow chains), for dropping it. Levels are checked and
/// every page may appear once, so a damaged tree (a cycle, a shared child) is reported instead of
/// looping or freeing a page twice.
pub(crate) fn tree_pages(store: &Store, root: PageId) -> Result<Vec<PageId>> {
    let mut pages = Vec::new();
    let mut seen = rustc_hash::FxHashSet::default();
    let mut stack = vec![(root, None)];
    while let Some((id, level)) = stack.pop() {
        if !seen.insert(id) {
            return Err(store.corruption(id, "page is referenced twice in one tree"));
        }
        let page = store.read_node(id, level)?;
        let malformed = store.malformed(id);
        pages.push(id);
        if node::is_leaf(&page) {
            for i in 0..node::nkeys(&page) {
                if let (_, ValueRef::Overflow { first, len }) =
                    node::leaf_entry(&page, i).map_err(&malformed)?
                {
                    for overflow in store.walk_overflow(first, len, None)? {
                        if !seen.insert(overflow) {
                            return Err(store.corruption(overflow, "overflow page shared"));
                        }
                        pages.push(overflow);
                    }
                }
            }
        } else {
            let child_level = Some(node::level(&page) - 1);
            for ci in 0..=node::nkeys(&page) {
                stack.push((node::child(&page, ci).map_err(&malformed)?, child_level));
            }
        }
    }
    // The root goes back to the free list last.
    pages.retain(|&id| id != root);
    pages.push(root);
    Ok(pages)
}
