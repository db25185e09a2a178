//! `nqdb serve`'s configuration, in layers: built-in defaults, then a TOML file (`--config`),
//! then `NQDB_*` environment variables, then command-line flags. Every key is documented in
//! `docs/configuration.md`; a key that does not exist or a value of the wrong type fails at
//! start with a message naming the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use nq_api::ServerConfig;
use serde::{Deserialize, Serialize};

use crate::engine::EngineOptions;

/// Everything `nqdb serve` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The HTTP/WebSocket server.
    pub server: ServerConfig,
    /// Storage engine.
    pub storage: StorageConfig,
    /// SQL engine.
    pub sql: SqlConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("./nqdb-data"),
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            sql: SqlConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// Storage settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Buffer pool memory, MiB.
    pub buffer_pool_mb: usize,
    /// `fsync` (every commit durable when acknowledged) or `relaxed` (synced every
    /// `relaxed_sync_ms`; a power cut can lose that much).
    pub sync: SyncMode,
    /// Interval of background syncs under `relaxed`, milliseconds.
    pub relaxed_sync_ms: u64,
    /// Log bytes between automatic checkpoints, MiB.
    pub checkpoint_wal_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            buffer_pool_mb: 16,
            sync: SyncMode::Fsync,
            relaxed_sync_ms: 100,
            checkpoint_wal_mb: 64,
        }
    }
}

/// WAL sync policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fdatasync per commit (shared by concurrent commits).
    Fsync,
    /// Periodic background sync.
    Relaxed,
}

/// SQL engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlConfig {
    /// Statements slower than this are logged, milliseconds (0: none).
    pub slow_query_ms: u64,
    /// Memory one statement's sorts and hash tables may hold, MiB (0: unlimited).
    pub memory_limit_mb: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            slow_query_ms: 1000,
            memory_limit_mb: 256,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `warn,nq_api=debug`, ...
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A configuration that does not load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key of the wrong type, an unknown key, a missing file.
    #[error("invalid configuration: {0}")]
    Load(String),
    /// A value the server cannot work with.
    #[error(transparent)]
    Invalid(#[from] nq_api::config::ConfigError),
}

/// Top-level sections an `NQDB_` variable may address; other `NQDB_*` variables (tests use a
/// few) are not configuration.
const SECTIONS: &[&str] = &["data_dir", "server", "storage", "sql", "log"];

impl NodeConfig {
    /// Loads the layers. `file` is `--config`; `overrides` are the flags, as a partial
    /// configuration (only the keys given).
    pub fn load(
        file: Option<&Path>,
        overrides: figment::value::Dict,
    ) -> Result<NodeConfig, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(NodeConfig::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Load(format!(
                    "the configuration file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("NQDB_").split("__").filter(|key| {
            // Keys keep the variable's case until figment lowercases them later.
            let key = key.as_str().to_ascii_lowercase();
            SECTIONS.iter().any(|section| {
                key.strip_prefix(section).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with("__") || rest.starts_with('.')
                })
            })
        });
        figment = figment.merge(env).merge(Serialized::defaults(overrides));
        let config: NodeConfig = figment.extract().map_err(|e| {
            // figment names the key and the source (file or variable) of the bad value.
            ConfigError::Load(e.to_string())
        })?;
        config.server.validate()?;
        if config.storage.buffer_pool_mb < 1 {
            return Err(ConfigError::Load(
                "storage.buffer_pool_mb: must be at least 1".into(),
            ));
        }
        Ok(config)
    }

    /// The engine options these settings mean.
    pub fn engine_options(&self) -> EngineOptions {
        let mut options = EngineOptions::default();
        options.storage.buffer_pool.budget_bytes = self.storage.buffer_pool_mb << 20;
        options.storage.wal.sync = match self.storage.sync {
            SyncMode::Fsync => nq_storage::wal::SyncPolicy::Fsync,
            SyncMode::Relaxed => nq_storage::wal::SyncPolicy::Relaxed {
                interval: Duration::from_millis(self.storage.relaxed_sync_ms.max(1)),
            },
        };
        options.storage.checkpoint_wal_bytes = Some(self.storage.checkpoint_wal_mb.max(1) << 20);
        options.slow_query =
            (self.sql.slow_query_ms > 0).then(|| Duration::from_millis(self.sql.slow_query_ms));
        options.statement_timeout = self.server.statement_timeout();
        options.memory_limit_bytes = self.sql.memory_limit_mb << 20;
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: &[(&str, figment::value::Value)]) -> figment::value::Dict {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    // figment's Jail fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    fn layers_apply_in_order_and_errors_name_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "nqdb.toml",
                "data_dir = \"/from/file\"\n[server]\nlisten = \"127.0.0.1:9000\"\n[server.limits]\nmax_rows = 5\n",
            )?;
            jail.set_env("NQDB_SERVER__LIMITS__MAX_ROWS", "7");
            jail.set_env("NQDB_ENGINE_CRASH_ROUNDS", "3");
            let c = NodeConfig::load(Some(Path::new("nqdb.toml")), dict(&[])).unwrap();
            assert_eq!(c.data_dir, PathBuf::from("/from/file"));
            assert_eq!(c.server.listen.port(), 9000);
            assert_eq!(
                c.server.limits.max_rows, 7,
                "the environment beats the file"
            );
            let flags = dict(&[("data_dir", "/from/flag".into())]);
            let c = NodeConfig::load(Some(Path::new("nqdb.toml")), flags).unwrap();
            assert_eq!(
                c.data_dir,
                PathBuf::from("/from/flag"),
                "flags beat everything"
            );

            jail.set_env("NQDB_SERVER__LIMITS__MAX_ROWS", "many");
            let err = NodeConfig::load(None, dict(&[])).unwrap_err().to_string();
            assert!(err.to_lowercase().contains("limits.max_rows"), "{err}");
            jail.set_env("NQDB_SERVER__LIMITS__MAX_ROWS", "0");
            let err = NodeConfig::load(None, dict(&[])).unwrap_err().to_string();
            assert!(err.contains("limits.max_rows"), "{err}");
            jail.set_env("NQDB_SERVER__LIMITS__MAX_ROWS", "10");

            jail.create_file("bad.toml", "[server]\nlisen = \"127.0.0.1:1\"\n")?;
            let err = NodeConfig::load(Some(Path::new("bad.toml")), dict(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("lisen"), "{err}");
            let err = NodeConfig::load(Some(Path::new("missing.toml")), dict(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("does not exist"), "{err}");
            Ok(())
        });
    }
}
