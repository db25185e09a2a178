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
    /// Trace export over OpenTelemetry OTLP (off unless `otlp_endpoint` is set).
    pub telemetry: TelemetryConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("./nqdb-data"),
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            sql: SqlConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
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

/// Trace export: the spans of requests (with their request ids) and of what runs inside them,
/// sent to an OpenTelemetry collector over OTLP/HTTP with protobuf bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of the collector's OTLP/HTTP receiver (`http://localhost:4318`); spans go to
    /// its `/v1/traces` (appended unless the URL already ends with it). Absent or empty:
    /// nothing is exported and no connection is made.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the exported spans.
    pub service_name: String,
    /// Share of traces kept, 0 to 1 (by trace id; a trace is kept or dropped whole).
    pub sample_ratio: f64,
    /// Time one export request may take, milliseconds; also bounds the flush at shutdown.
    pub timeout_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "nqdb".into(),
            sample_ratio: 1.0,
            timeout_ms: 10_000,
        }
    }
}

impl TelemetryConfig {
    /// The collector's `/v1/traces` URL, or `None` when export is off. Fails on a value that
    /// is not an http(s) URL, naming the key.
    pub fn traces_url(&self) -> Result<Option<String>, ConfigError> {
        let Some(endpoint) = self
            .otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            return Ok(None);
        };
        let invalid = |why: &str| {
            ConfigError::Load(format!(
                "telemetry.otlp_endpoint: {endpoint:?} {why}, like http://localhost:4318"
            ))
        };
        let mut url = reqwest::Url::parse(endpoint).map_err(|_| invalid("is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid("is not an http(s) URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must not have a query or fragment"));
        }
        if !url.path().ends_with("/v1/traces") {
            let path = format!("{}/v1/traces", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        Ok(Some(url.to_string()))
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.traces_url()?;
        if self.service_name.trim().is_empty() {
            return Err(ConfigError::Load(
                "telemetry.service_name: must not be empty".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(ConfigError::Load(format!(
                "telemetry.sample_ratio: {} is not between 0 and 1",
                self.sample_ratio
            )));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::Load(
                "telemetry.timeout_ms: must be positive".into(),
            ));
        }
        Ok(())
    }
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
const SECTIONS: &[&str] = &["data_dir", "server", "storage", "sql", "log", "telemetry"];

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
        config.telemetry.validate()?;
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

    #[test]
    #[allow(clippy::result_large_err)]
    fn telemetry_is_off_by_default_and_checked_when_set() {
        figment::Jail::expect_with(|jail| {
            let c = NodeConfig::load(None, dict(&[])).unwrap();
            assert_eq!(c.telemetry.traces_url().unwrap(), None);
            assert_eq!(c.telemetry.service_name, "nqdb");

            jail.set_env("NQDB_TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:4318");
            jail.set_env("NQDB_TELEMETRY__SAMPLE_RATIO", "1");
            jail.set_env("NQDB_TELEMETRY__SERVICE_NAME", "db-7");
            let c = NodeConfig::load(None, dict(&[])).unwrap();
            assert_eq!(
                c.telemetry.traces_url().unwrap().as_deref(),
                Some("http://127.0.0.1:4318/v1/traces")
            );
            assert_eq!(c.telemetry.sample_ratio, 1.0);
            assert_eq!(c.telemetry.service_name, "db-7");
            for (given, url) in [
                (
                    "https://otel.example:4318/",
                    "https://otel.example:4318/v1/traces",
                ),
                ("http://c:4318/prefix", "http://c:4318/prefix/v1/traces"),
                ("http://c:4318/v1/traces", "http://c:4318/v1/traces"),
            ] {
                jail.set_env("NQDB_TELEMETRY__OTLP_ENDPOINT", given);
                let c = NodeConfig::load(None, dict(&[])).unwrap();
                assert_eq!(c.telemetry.traces_url().unwrap().as_deref(), Some(url));
            }
            jail.set_env("NQDB_TELEMETRY__OTLP_ENDPOINT", "");
            let c = NodeConfig::load(None, dict(&[])).unwrap();
            assert_eq!(c.telemetry.traces_url().unwrap(), None, "empty is off");

            for bad in [
                "localhost:4318",
                "ftp://c/",
                "http://c:4318/?x=1",
                "not a url",
            ] {
                jail.set_env("NQDB_TELEMETRY__OTLP_ENDPOINT", bad);
                let err = NodeConfig::load(None, dict(&[])).unwrap_err().to_string();
                assert!(err.contains("telemetry.otlp_endpoint"), "{bad}: {err}");
            }
            jail.set_env("NQDB_TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:4318");
            for (key, value) in [
                ("SAMPLE_RATIO", "1.5"),
                ("SAMPLE_RATIO", "-0.1"),
                ("SAMPLE_RATIO", "half"),
                ("TIMEOUT_MS", "0"),
                ("SERVICE_NAME", " "),
            ] {
                jail.set_env(format!("NQDB_TELEMETRY__{key}"), value);
                let err = NodeConfig::load(None, dict(&[])).unwrap_err().to_string();
                let name = format!("telemetry.{}", key.to_lowercase());
                assert!(err.to_lowercase().contains(&name), "{key}={value}: {err}");
                jail.clear_env();
                jail.set_env("NQDB_TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:4318");
            }

            jail.create_file(
                "nqdb.toml",
                "[telemetry]\notlp_endpoint = \"http://collector:4318\"\nsample_ratio = 0.25\n",
            )?;
            let c = NodeConfig::load(Some(Path::new("nqdb.toml")), dict(&[])).unwrap();
            assert_eq!(c.telemetry.sample_ratio, 0.25);
            assert_eq!(
                c.telemetry.otlp_endpoint.as_deref(),
                Some("http://127.0.0.1:4318"),
                "the environment beats the file"
            );
            Ok(())
        });
    }
}
