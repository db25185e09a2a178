//! Point lookups.
//!
//! Readers use latch coupling: a child is latched before its parent is released, so a
//! reader never sees a node half-way through a split or merge.

use crate::error::Result;
use crate::node;
use crate::page::PageId;
use crate::store::Store;

/// Looks up `key` in the tree rooted at `root` and replaces `out`'s contents with its value.
/// Returns false (leaving `out` empty) if the key is absent.
pub(crate) fn get_into(store: &Store, root: PageId, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
    out.clear();
    let mut page = store.read_node(root, None)?;
    loop {
        let id = page.id();
        if node::is_leaf(&page) {
            return match node::search(&page, key).map_err(store.malformed(id))? {
                Ok(i) => {
                    let (_, value) = node::leaf_entry(&page, i).map_err(store.malformed(id))?;
                    store.materialize_into(value, out)?;
                    Ok(true)
                }
                Err(_) => Ok(false),
            };
        }
        let ci = node::child_index(&page, key).map_err(store.malformed(id))?;
        let child = node::child(&page, ci).map_err(store.malformed(id))?;
        let level = node::level(&page) - 1;
        page = store.read_node(child, Some(level))?;
    }
}
