//! Vacuum: removes versions no snapshot can see any more.
//!
//! For a safe point `s` (no running or future reader uses a timestamp below it), each key
//! keeps every version newer than `s` and the newest version at or below `s` if it is a value;
//! a tombstone at or below `s`, every older version, and rollback and lock markers at or below
//! `s` are deleted. The work runs in chunks, each its own short atomic batch, so writers
//! interleave with a long vacuum; the B+ tree merges emptied leaves and returns their pages to
//! the free list.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use crate::error::Result;

use super::MvccStore;
use super::keys::{self, WriteKind};

/// Deletions per batch.
const CHUNK: usize = 512;

/// What a vacuum run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The safe point used.
    pub safe_point: u64,
    /// Version entries examined.
    pub examined: u64,
    /// Version entries removed.
    pub removed: u64,
    /// Key and value bytes removed.
    pub bytes: u64,
}

impl MvccStore {
    /// Removes versions invisible at and after `safe_point`. Pass [`MvccStore::safe_point`]
    /// unless a larger system (the cluster's minimum read timestamp) knows better.
    pub fn vacuum(&self, safe_point: u64) -> Result<GcReport> {
        let shared = &self.shared;
        let mut report = GcReport {
            safe_point,
            ..GcReport::default()
        };
        let mut resume: Bound<Vec<u8>> = Bound::Unbounded;
        // Encoded user key being walked and whether its visible version was already found.
        let mut current: Vec<u8> = Vec::new();
        let mut settled = false;
        loop {
            let mut doomed: Vec<Vec<u8>> = Vec::new();
            let mut last: Option<Vec<u8>> = None;
            let mut range = shared
                .write
                .range::<Vec<u8>, _>((resume.clone(), Bound::Unbounded));
            while doomed.len() < CHUNK {
                let Some(entry) = range.next_ref() else {
                    break;
                };
                let (k, v) = entry?;
                report.examined += 1;
                last = Some(k.to_vec());
                let body = &k[..k.len().saturating_sub(8)];
                if body != current.as_slice() {
                    current = body.to_vec();
                    settled = false;
                }
                let (_, commit_ts) = keys::decode_version_key(k)?;
                if commit_ts > safe_point {
                    continue;
                }
                let remove = match keys::record_kind(v)? {
                    _ if settled => true,
                    WriteKind::Put => {
                        settled = true;
                        false
                    }
                    WriteKind::Delete => {
                        settled = true;
                        true
                    }
                    WriteKind::Rollback | WriteKind::Lock => true,
                };
                if remove {
                    report.bytes += (k.len() + v.len()) as u64;
                    doomed.push(k.to_vec());
                }
            }
            drop(range);
            if !doomed.is_empty() {
                shared.db.batch(|| {
                    for key in &doomed {
                        shared.write.delete(key)?;
                    }
                    Ok(())
                })?;
                report.removed += doomed.len() as u64;
            }
            match last {
                Some(key) if doomed.len() >= CHUNK => resume = Bound::Excluded(key),
                _ => break,
            }
        }
        let c = &shared.counters;
        c.gc_runs.fetch_add(1, Ordering::Relaxed);
        c.gc_versions.fetch_add(report.removed, Ordering::Relaxed);
        c.gc_bytes.fetch_add(report.bytes, Ordering::Relaxed);
        Ok(report)
    }
}
