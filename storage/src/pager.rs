//! Positional page I/O on the data file.
//!
//! The pager knows nothing about what pages contain beyond the common header: it seals a
//! checksum on every write, verifies it on every read and grows the file in extents. Reads and
//! writes use `pread`/`pwrite` at `page_id * page_size`, so concurrent readers never queue on
//! a file-wide lock and offsets are 64-bit (files beyond 10 GB are ordinary).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::{Result, StorageError};
use crate::meta::{META_PREFIX_LEN, Meta};
use crate::page::{self, PageId, PageType};
use crate::vfs::{Vfs, VfsFile};

/// Smallest number of pages the file grows by at once.
const MIN_EXTENT_PAGES: u64 = 64;
/// Largest growth step in bytes; above this the file grows linearly.
const MAX_EXTENT_BYTES: u64 = 64 << 20;

/// Reads and writes whole pages of one data file.
#[derive(Debug)]
pub struct Pager {
    file: Box<dyn VfsFile>,
    path: PathBuf,
    page_size: usize,
    /// Pages the file currently has room for (file length / page size).
    capacity: AtomicU64,
    grow_lock: Mutex<()>,
    /// Sequence number of the last header written or read.
    meta_sequence: AtomicU64,
}

impl Pager {
    /// Creates a new data file, room for `meta.page_count` pages, and syncs its directory
    /// entry. Fails if the file exists. The header is *not* written: the caller writes it last,
    /// once the first pages are on disk, so a file whose header is missing was never finished
    /// (see `Database::open_or_create`).
    pub fn create(vfs: &dyn Vfs, path: &Path, meta: &Meta) -> Result<Pager> {
        let file = vfs
            .create_new(path)
            .map_err(|source| io_error(path, source))?;
        lock(&*file, path)?;
        let pager = Pager {
            file,
            path: path.to_path_buf(),
            page_size: meta.page_size as usize,
            capacity: AtomicU64::new(0),
            grow_lock: Mutex::new(()),
            meta_sequence: AtomicU64::new(meta.sequence),
        };
        pager.ensure_capacity(meta.page_count)?;
        pager.sync()?;
        // The new file's directory entry must survive a power cut too.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            vfs.sync_dir(dir).map_err(|source| io_error(dir, source))?;
        }
        Ok(pager)
    }

    /// Opens an existing data file, verifies and returns its header.
    pub fn open(vfs: &dyn Vfs, path: &Path) -> Result<(Pager, Meta)> {
        let file = vfs.open(path).map_err(|source| io_error(path, source))?;
        lock(&*file, path)?;
        let len = file.size().map_err(|source| io_error(path, source))?;
        if len < META_PREFIX_LEN as u64 {
            return Err(StorageError::IncompatibleFile {
                path: path.to_path_buf(),
                reason: format!("file is {len} bytes, too short for a file header"),
            });
        }
        let mut header = vec![0u8; META_PREFIX_LEN];
        file.read_exact_at(&mut header, 0)
            .map_err(|source| io_error(path, source))?;
        let meta = Meta::decode(&header, path)?;
        let page_size = meta.page_size as usize;
        let pager = Pager {
            file,
            path: path.to_path_buf(),
            page_size,
            capacity: AtomicU64::new(len / page_size as u64),
            grow_lock: Mutex::new(()),
            meta_sequence: AtomicU64::new(meta.sequence),
        };
        if meta.page_count > pager.capacity() {
            return Err(StorageError::Corruption {
                path: path.to_path_buf(),
                page: None,
                reason: format!(
                    "file truncated: header records {} pages but the file holds {} bytes ({} pages)",
                    meta.page_count,
                    len,
                    pager.capacity()
                ),
            });
        }
        Ok((pager, meta))
    }

    /// The data file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Pages the file has room for without growing.
    pub fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::Acquire)
    }

    /// Byte offset of page `id`; ids whose offset does not fit in a u64 are corruption (they can
    /// only come from a damaged pointer).
    fn offset(&self, id: PageId) -> Result<u64> {
        id.checked_mul(self.page_size as u64)
            .ok_or_else(|| StorageError::Corruption {
                path: self.path.clone(),
                page: Some(id),
                reason: "page number beyond any possible file size".into(),
            })
    }

    /// Reads page `id` into `buf` and verifies its checksum and header.
    pub fn read_page(&self, id: PageId, buf: &mut [u8]) -> Result<PageType> {
        debug_assert_eq!(buf.len(), self.page_size);
        match self.file.read_exact_at(buf, self.offset(id)?) {
            Ok(()) => page::verify(buf, id, &self.path),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                Err(StorageError::Corruption {
                    path: self.path.clone(),
                    page: Some(id),
                    reason: "page lies beyond the end of the file (file truncated)".into(),
                })
            }
            Err(source) => Err(io_error(&self.path, source)),
        }
    }

    /// Seals a copy of `data`, stamped with log position `lsn`, with its checksum and writes it
    /// as page `id`.
    pub fn write_page(&self, id: PageId, data: &[u8], lsn: u64) -> Result<()> {
        debug_assert_eq!(data.len(), self.page_size);
        debug_assert_eq!(page::page_id(data), id, "page header names another page");
        debug_assert_ne!(
            id,
            crate::meta::META_PAGE,
            "page 0 is written by write_meta"
        );
        if id >= self.capacity() {
            self.ensure_capacity(id + 1)?;
        }
        let mut sealed = data.to_vec();
        page::set_lsn(&mut sealed, lsn);
        page::seal(&mut sealed);
        self.file
            .write_all_at(&sealed, self.offset(id)?)
            .map_err(|source| io_error(&self.path, source))
    }

    /// Writes the file header into the older of page 0's two slots (see [`crate::meta`]),
    /// giving it the next sequence number. Only that slot's bytes are written.
    pub fn write_meta(&self, meta: &Meta) -> Result<()> {
        let mut meta = *meta;
        meta.sequence = self.meta_sequence.fetch_add(1, Ordering::AcqRel) + 1;
        self.file
            .write_all_at(&meta.encode_slot(), meta.slot_offset() as u64)
            .map_err(|source| io_error(&self.path, source))
    }

    /// Grows the file, in extents, until it has room for `pages` pages.
    pub fn ensure_capacity(&self, pages: u64) -> Result<()> {
        if pages <= self.capacity() {
            return Ok(());
        }
        let _guard = self.grow_lock.lock();
        let current = self.capacity();
        if pages <= current {
            return Ok(());
        }
        let max_extent = (MAX_EXTENT_BYTES / self.page_size as u64).max(MIN_EXTENT_PAGES);
        let extent = (current / 8).clamp(MIN_EXTENT_PAGES, max_extent);
        let target = pages.max(current + extent);
        self.file
            .set_len(self.offset(target)?)
            .map_err(|source| io_error(&self.path, source))?;
        self.capacity.store(target, Ordering::Release);
        Ok(())
    }

    /// Forces written pages to stable storage.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|source| io_error(&self.path, source))
    }
}

fn lock(file: &dyn VfsFile, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(true) => Ok(()),
        Ok(false) => Err(StorageError::Locked {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(io_error(path, source)),
    }
}

pub(crate) fn io_error(path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::StdVfs;

    fn meta(page_size: u32) -> Meta {
        Meta {
            page_size,
            page_count: 2,
            free_head: 0,
            free_len: 0,
            catalog_root: 1,
            checkpoint_lsn: 77,
            sequence: 0,
        }
    }

    #[test]
    fn test_pages_beyond_ten_gigabytes_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.nqdb");
        let pager = Pager::create(&StdVfs, &path, &meta(4096)).unwrap();
        // 11 GiB into the file: the file is sparse, so this costs no real disk space.
        let id: PageId = (11u64 << 30) / 4096;
        let mut page = vec![0u8; 4096];
        page::init(&mut page, id, PageType::Overflow);
        page[4000] = 0xAB;
        pager.write_page(id, &page, 5).unwrap();
        let mut back = vec![0u8; 4096];
        assert_eq!(pager.read_page(id, &mut back).unwrap(), PageType::Overflow);
        assert_eq!(back[4000], 0xAB);
        assert!(std::fs::metadata(&path).unwrap().len() > 11 << 30);
    }

    #[test]
    fn test_second_open_is_refused_while_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked.nqdb");
        let _pager = Pager::create(&StdVfs, &path, &meta(8192)).unwrap();
        let err = Pager::open(&StdVfs, &path).unwrap_err();
        assert!(matches!(err, StorageError::Locked { .. }), "{err}");
    }

    #[test]
    fn test_reopen_reads_header_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.nqdb");
        let pager = Pager::create(&StdVfs, &path, &meta(16384)).unwrap();
        pager.write_meta(&meta(16384)).unwrap();
        drop(pager);
        let (pager, back) = Pager::open(&StdVfs, &path).unwrap();
        assert_eq!(
            back,
            Meta {
                sequence: 1,
                ..meta(16384)
            }
        );
        assert_eq!(pager.page_size(), 16384);
    }

    #[test]
    fn test_foreign_file_is_incompatible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("foreign");
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        let err = Pager::open(&StdVfs, &path).unwrap_err();
        assert!(
            matches!(err, StorageError::IncompatibleFile { .. }),
            "{err}"
        );
    }
}
