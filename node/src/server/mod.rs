//! `nqdb serve` and `nqdb init`: the engine behind the HTTP/WebSocket API of `nq-api`.

pub mod backend;
pub mod config;
mod feed;
pub mod telemetry;

use std::path::Path;
use std::sync::Arc;

pub use backend::EngineBackend;
pub use config::NodeConfig;
pub use telemetry::Telemetry;

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
    /// Closing the database (its last checkpoint) failed.
    #[error("cannot close the database in {dir}: {source}")]
    Close {
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
    /// Trace export (`[telemetry]`) could not start.
    #[error("telemetry: {0}")]
    Telemetry(#[from] telemetry::TelemetryError),
}

/// Installs the log subscriber described by `config.log` (once per process), with a place for
/// the trace exporter that [`serve`] (or [`Telemetry::start`]) plugs in when `[telemetry]`
/// asks for one.
pub fn init_logging(config: &config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (exporter, handle) = telemetry::slot();
    let base = tracing_subscriber::registry().with(filter).with(exporter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let installed = match config.format {
        config::LogFormat::Text => base.with(fmt).try_init(),
        config::LogFormat::Json => base.with(fmt.json()).try_init(),
    };
    if installed.is_ok() {
        telemetry::register(handle);
    }
}

/// Runs the server until SIGTERM or SIGINT, then shuts down gracefully.
pub fn serve(config: NodeConfig) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nqdb-io")
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let telemetry = Telemetry::start(&config.telemetry)?;
        let result = run(config).await;
        if let Some(telemetry) = telemetry {
            // Sends the spans of the last requests; blocks, so off the async threads.
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        }
        result
    })
}

async fn run(config: NodeConfig) -> Result<(), ServeError> {
    let started = std::time::Instant::now();
    let dir = config.data_dir.clone();
    let options = config.engine_options();
    let open_dir = dir.clone();
    let engine = blocking(move || Engine::open_with(&open_dir, &options))
        .await?
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
    blocking(move || engine.close())
        .await?
        .map_err(|source| ServeError::Close {
            dir: dir.display().to_string(),
            source,
        })?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs storage work (opening, closing: file I/O and recovery) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServeError::Runtime(std::io::Error::other(e)))
}

/// `nqdb init`: creates the data directory's first admin key and returns it.
pub fn init(data_dir: &Path) -> Result<(nq_api::auth::KeyInfo, String), nq_api::auth::AuthError> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        nq_api::auth::AuthError::Io(format!("creating {}: {e}", data_dir.display()))
    })?;
    nq_api::auth::init(data_dir, "admin (nqdb init)")
}
