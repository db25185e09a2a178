//! What the report says about the machine, and the peak RSS a child process reports.
//!
//! Linux only (`/proc`); elsewhere the fields read "unknown" rather than a made-up figure.

use std::fs;
use std::path::Path;

use crate::Result;

/// One line describing the machine: CPU model, usable cores and RAM.
pub fn machine_line() -> String {
    let cpu = cpu_model().unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let ram = meminfo_kib("MemTotal:").map_or_else(
        || "unknown".to_owned(),
        |kib| format!("{:.1} GiB", kib as f64 / 1048576.0),
    );
    format!(
        "machine: {cpu}, {cores} cores available, {ram} RAM, {}",
        std::env::consts::OS
    )
}

fn cpu_model() -> Option<String> {
    let text = fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

fn meminfo_kib(field: &str) -> Option<u64> {
    kib_field("/proc/meminfo", field)
}

/// This process's peak resident set size (`VmHWM`) in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    kib_field("/proc/self/status", "VmHWM:").map(|kib| kib * 1024)
}

/// Reads a `Name:   1234 kB` line from a /proc file.
fn kib_field(path: &str, field: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    let line = text.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// Disk space used by write-ahead logs in `dir`: every file or directory whose name ends in
/// `-wal` (ours `data.nqdb-wal/`, SQLite `data.sqlite-wal`).
pub fn log_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().ends_with("-wal") {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += dir_size(&entry.path())?;
        } else if meta.is_file() {
            total += std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
        }
    }
    Ok(total)
}

/// Disk space used by the regular files inside `dir` and its subdirectories (our log segments
/// live in `data.nqdb-wal/`).
pub fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += dir_size(&entry.path())?;
        } else if meta.is_file() {
            // Bytes allocated on disk, not the logical length: our file grows in sparse extents
            // (`set_len`) whose unwritten tail occupies no disk space. For the peers' files,
            // which are written densely, the two agree.
            total += std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
        }
    }
    Ok(total)
}
