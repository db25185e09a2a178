//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nq_storage::{BufferPoolConfig, Database, EvictionPolicy, Options};

/// Options with a small pool so tests exercise eviction and write-back.
pub fn small_options(page_size: usize, frames: usize) -> Options {
    Options {
        page_size,
        buffer_pool: BufferPoolConfig {
            budget_bytes: frames * (page_size + nq_storage::bufferpool::FRAME_OVERHEAD_BYTES),
            policy: EvictionPolicy::Sieve,
            flush_interval: Some(Duration::from_millis(20)),
        },
        ..Options::default()
    }
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("test.nqdb")
}

pub fn create(dir: &Path, options: &Options) -> Database {
    Database::create(db_path(dir), options).expect("create database")
}
