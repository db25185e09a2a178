//! `nqdb serve` and `nqdb init`: the engine behind the HTTP/WebSocket API of `nq-api`.

pub mod backend;
pub mod config;
mod feed;

use std::path::Path;
use std::sync::Arc;

pub use backend::EngineBackend;
pub use config::NodeConfig;

use crate::engine::Engine;

/// Why `nqdb serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Opening the database failed.
    #[error("cannot open the database in {dir}: {source}")]
    Open {
        /// The data directory.
        dir: String,
        /// Why.
        source: crate::SqlError,
    },
    /// The server failed to start or stop.
    #[error(transparent)]
    Api(#[from] nq_api::ServeError),
    /// The async runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Installs the log subscriber described by `config.log` (once per process).
pub fn init_logging(config: &config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match config.format {
        config::LogFormat::Text => builder.try_init(),
        config::LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs the server until SIGTERM or SIGINT, then shuts down gracefully.
pub fn serve(config: NodeConfig) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nqdb-io")
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let started = std::time::Instant::now();
        let dir = config.data_dir.clone();
        let options = config.engine_options();
        let open_dir = dir.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::open_with(&open_dir, &options))
            .await
            .map_err(|e| ServeError::Runtime(std::io::Error::other(e)))?
            .map_err(|source| ServeError::Open {
                dir: dir.display().to_string(),
                source,
            })?;
        let backend = Arc::new(EngineBackend::new(engine.clone()));
        let server = nq_api::start(config.server.clone(), &dir, backend).await?;
        tracing::info!(
            url = %server.base_url(),
            data_dir = %dir.display(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "ready"
        );
        nq_api::shutdown_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await?;
        tokio::task::spawn_blocking(move || engine.close())
            .await
            .map_err(|e| ServeError::Runtime(std::io::Error::other(e)))?
            .map_err(|source| ServeError::Open {
                dir: dir.display().to_string(),
                source,
            })?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// `nqdb init`: creates the data directory's first admin key and returns it.
pub fn init(data_dir: &Path) -> Result<(nq_api::auth::KeyInfo, String), nq_api::auth::AuthError> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        nq_api::auth::AuthError::Io(format!("creating {}: {e}", data_dir.display()))
    })?;
    nq_api::auth::init(data_dir, "admin (nqdb init)")
}
