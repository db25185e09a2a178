//! [`FaultVfs`]: an in-memory file system that separates written from synced.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Vfs, VfsFile};

#[derive(Debug, Default, Clone)]
struct Contents {
    /// What reads see: every write so far.
    written: Vec<u8>,
    /// What survives a crash: the contents at the last `sync_data`.
    synced: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, Arc<Mutex<Contents>>>,
    /// Directory entries as they would be found after a crash.
    synced_entries: BTreeSet<PathBuf>,
    /// Removed files whose removal is not yet durable (their directory was not synced since).
    unlinked: BTreeMap<PathBuf, Arc<Mutex<Contents>>>,
    dirs: BTreeSet<PathBuf>,
    /// Syncs left before one fails; `None` means syncs never fail.
    syncs_left: Option<u64>,
    /// Set once a sync failed: from then on every write and sync fails too, as after a real
    /// crash of the device.
    failed: bool,
    syncs: u64,
}

/// An in-memory file system for crash tests. Cloning shares the same files.
#[derive(Debug, Clone, Default)]
pub struct FaultVfs {
    state: Arc<Mutex<State>>,
}

fn injected() -> io::Error {
    io::Error::other("injected fault: the device failed")
}

impl FaultVfs {
    /// An empty file system.
    pub fn new() -> FaultVfs {
        FaultVfs::default()
    }

    /// Lets `n` more syncs succeed; the next one fails, and the device fails for good.
    pub fn fail_after_syncs(&self, n: u64) {
        self.state.lock().syncs_left = Some(n);
    }

    /// Syncs performed so far.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// Simulates a power cut: every file returns to its synced contents, plus, with
    /// `torn_bytes`, up to that many of the bytes written after its synced length (a torn write
    /// that partly reached the disk); files whose directory entry was never synced vanish and
    /// removed files whose removal was never synced return. Faults are cleared.
    pub fn crash(&self, torn_bytes: Option<usize>) {
        let mut st = self.state.lock();
        let entries = st.synced_entries.clone();
        st.files.retain(|path, _| entries.contains(path));
        let unlinked = std::mem::take(&mut st.unlinked);
        for (path, contents) in unlinked {
            if entries.contains(&path) {
                st.files.insert(path, contents);
            }
        }
        for path in &entries {
            let contents = st.files.entry(path.clone()).or_default();
            let mut c = contents.lock();
            let mut survived = c.synced.clone();
            if let Some(extra) = torn_bytes
                && c.written.len() > survived.len()
                && c.written[..survived.len()] == survived[..]
            {
                let end = (survived.len() + extra).min(c.written.len());
                survived.extend_from_slice(&c.written[c.synced.len()..end]);
            }
            c.written = survived.clone();
            c.synced = survived;
        }
        st.syncs_left = None;
        st.failed = false;
    }

    fn sync_point(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        if st.failed {
            return Err(injected());
        }
        if let Some(left) = st.syncs_left {
            if left == 0 {
                st.failed = true;
                return Err(injected());
            }
            st.syncs_left = Some(left - 1);
        }
        st.syncs += 1;
        Ok(())
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.state.lock().failed {
            Err(injected())
        } else {
            Ok(())
        }
    }
}

#[derive(Debug)]
struct FaultFile {
    vfs: FaultVfs,
    contents: Arc<Mutex<Contents>>,
}

impl VfsFile for FaultFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.contents.lock().written.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let c = self.contents.lock();
        let start = offset as usize;
        let bytes = c
            .written
            .get(start..start + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.vfs.check_alive()?;
        let mut c = self.contents.lock();
        let start = offset as usize;
        if c.written.len() < start + buf.len() {
            c.written.resize(start + buf.len(), 0);
        }
        c.written[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.vfs.check_alive()?;
        self.contents.lock().written.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.vfs.sync_point()?;
        let mut c = self.contents.lock();
        c.synced = c.written.clone();
        Ok(())
    }

    fn try_lock(&self) -> io::Result<bool> {
        // One process: nothing else can hold the lock.
        Ok(true)
    }
}

impl Vfs for FaultVfs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state.lock().dirs.insert(dir.to_path_buf());
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state.lock();
        Ok(st
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let st = self.state.lock();
        let contents = st
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Box::new(FaultFile {
            vfs: self.clone(),
            contents,
        }))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.check_alive()?;
        let mut st = self.state.lock();
        if st.files.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let contents = Arc::new(Mutex::new(Contents::default()));
        st.files.insert(path.to_path_buf(), Arc::clone(&contents));
        Ok(Box::new(FaultFile {
            vfs: self.clone(),
            contents,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check_alive()?;
        let mut st = self.state.lock();
        let contents = st
            .files
            .remove(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.unlinked.insert(path.to_path_buf(), contents);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.sync_point()?;
        let mut st = self.state.lock();
        let current: Vec<PathBuf> = st
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect();
        st.synced_entries.retain(|p| p.parent() != Some(dir));
        st.synced_entries.extend(current);
        st.unlinked.retain(|p, _| p.parent() != Some(dir));
        Ok(())
    }
}
