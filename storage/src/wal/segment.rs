//! Log segment files: naming, the segment header, and scanning a directory of segments.
//!
//! A segment is named by the LSN of its first record (`00000000000000000000.wal`, 20 decimal
//! digits so names sort like LSNs) and starts with a 16-byte header: the magic `NQDBWAL1` and
//! that start LSN. Records follow back to back; a record never spans two segments.

use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::pager::io_error;
use crate::vfs::{Vfs, VfsFile};

use super::record::{self, Invalid, Lsn, Record};

/// Identifies a segment file.
pub const MAGIC: &[u8; 8] = b"NQDBWAL1";
/// Bytes before the first record of a segment.
pub const HEADER_LEN: u64 = 16;

/// Path of the segment that starts at `start`.
pub fn path_for(dir: &Path, start: Lsn) -> PathBuf {
    dir.join(format!("{start:020}.wal"))
}

/// Start LSNs of the segments in `dir`, ascending.
pub fn list(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<Lsn>> {
    let mut starts = Vec::new();
    for name in vfs.list(dir).map_err(|e| io_error(dir, e))? {
        let Some(stem) = name.strip_suffix(".wal") else {
            continue;
        };
        if stem.len() == 20
            && let Ok(start) = stem.parse::<Lsn>()
        {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// Creates a new segment file with its header, synced.
pub fn create(vfs: &dyn Vfs, dir: &Path, start: Lsn) -> Result<Box<dyn VfsFile>> {
    let path = path_for(dir, start);
    let file = vfs.create_new(&path).map_err(|e| io_error(&path, e))?;
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&start.to_le_bytes());
    file.write_all_at(&header, 0)
        .map_err(|e| io_error(&path, e))?;
    file.sync_data().map_err(|e| io_error(&path, e))?;
    // The new name must survive a crash too.
    sync_dir(vfs, dir)?;
    Ok(file)
}

/// Makes directory entries (created or removed segments) durable.
pub fn sync_dir(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    vfs.sync_dir(dir).map_err(|e| io_error(dir, e))
}

/// The result of reading one segment.
pub struct Scan {
    pub records: Vec<Record>,
    /// LSN just past the last valid record.
    pub end: Lsn,
    /// Set if the segment ends in bytes that are not a valid record.
    pub damage: Option<(Lsn, String)>,
}

/// Reads every record of the segment starting at `start`, stopping at the first invalid one.
/// With `keep` false, records are only validated, not returned.
pub fn scan(vfs: &dyn Vfs, dir: &Path, start: Lsn, keep: bool) -> Result<Scan> {
    let path = path_for(dir, start);
    let bytes = vfs.read(&path).map_err(|e| io_error(&path, e))?;
    if bytes.len() < HEADER_LEN as usize
        || &bytes[..8] != MAGIC
        || bytes[8..16] != start.to_le_bytes()
    {
        return Ok(Scan {
            records: Vec::new(),
            end: start,
            damage: Some((start, "segment header missing or wrong".into())),
        });
    }
    let mut records = Vec::new();
    let mut at = HEADER_LEN as usize;
    let mut lsn = start;
    while at < bytes.len() {
        match record::decode(&bytes[at..], lsn) {
            Ok(rec) => {
                let len = (rec.end() - rec.lsn) as usize;
                at += len;
                lsn = rec.end();
                if keep {
                    records.push(rec);
                }
            }
            Err(invalid) => {
                let reason = match invalid {
                    Invalid::Truncated => "record cut short".to_string(),
                    Invalid::Checksum => "record checksum mismatch".to_string(),
                    Invalid::WrongLsn(found) => format!("record names LSN {found}"),
                };
                return Ok(Scan {
                    records,
                    end: lsn,
                    damage: Some((lsn, reason)),
                });
            }
        }
    }
    Ok(Scan {
        records,
        end: lsn,
        damage: None,
    })
}

/// Cuts the segment starting at `start` so it ends at `end` (dropping a torn tail).
pub fn truncate(vfs: &dyn Vfs, dir: &Path, start: Lsn, end: Lsn) -> Result<()> {
    let path = path_for(dir, start);
    let file = vfs.open(&path).map_err(|e| io_error(&path, e))?;
    file.set_len(HEADER_LEN + (end - start))
        .and_then(|()| file.sync_data())
        .map_err(|e| io_error(&path, e))
}

/// The error for damage that recovery must not paper over.
pub fn corruption(dir: &Path, start: Lsn, lsn: Lsn, reason: &str) -> StorageError {
    StorageError::LogCorruption {
        path: path_for(dir, start),
        lsn,
        reason: reason.to_string(),
    }
}

/// Length of the segment file starting at `start`.
pub fn file_len(vfs: &dyn Vfs, dir: &Path, start: Lsn) -> Result<u64> {
    let path = path_for(dir, start);
    vfs.open(&path)
        .and_then(|f| f.size())
        .map_err(|e| io_error(&path, e))
}

/// True if the segment's 16-byte header is missing or does not name this segment.
pub fn header_is_damaged(vfs: &dyn Vfs, dir: &Path, start: Lsn) -> Result<bool> {
    let path = path_for(dir, start);
    let file = vfs.open(&path).map_err(|e| io_error(&path, e))?;
    let mut header = [0u8; HEADER_LEN as usize];
    match file.read_exact_at(&mut header, 0) {
        Ok(()) => Ok(&header[..8] != MAGIC || header[8..] != start.to_le_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(true),
        Err(e) => Err(io_error(&path, e)),
    }
}

/// True if a valid record exists anywhere after position `bad` in the segment. A torn write
/// only ever damages the end of the log, so a valid record after a bad one means the bad one
/// is real corruption, not a crash artefact.
pub fn valid_record_after(vfs: &dyn Vfs, dir: &Path, start: Lsn, bad: Lsn) -> Result<bool> {
    let path = path_for(dir, start);
    let bytes = vfs.read(&path).map_err(|e| io_error(&path, e))?;
    let first = (HEADER_LEN + (bad - start)) as usize + 1;
    for at in first..bytes.len().saturating_sub(record::HEADER_LEN - 1) {
        let lsn = start + (at as u64 - HEADER_LEN);
        // Cheap filter before the checksum: the record must name its own position.
        if bytes[at + 8..at + 16] == lsn.to_le_bytes() && record::decode(&bytes[at..], lsn).is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}
