//! Building the router, listening (plain or TLS, HTTP/1.1 and HTTP/2), and shutting down.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{AuthError, Authenticator};
use crate::backend::{Backend, ExecOptions};
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::metrics::{RequestLabels, RouteLabels};
use crate::openapi::ApiDoc;
use crate::routes::{health, keys, quantum, query, tables, transactions};
use crate::state::AppState;
use crate::ws;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration does not work.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key files could not be read.
    #[error("authentication files: {0}")]
    Auth(#[from] AuthError),
    /// Binding or serving failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// TLS certificate or key problems.
    #[error("TLS: {0}")]
    Tls(String),
    /// Flushing the database at shutdown failed.
    #[error("closing the database: {0}")]
    Shutdown(String),
}

/// The versioned API prefix.
pub const PREFIX: &str = "/api/v1";

/// The API's routes and their OpenAPI document. Routes are registered through
/// `utoipa_axum`, which takes each route's path and method from its documentation, so the
/// document cannot drift from the routes.
pub fn router(state: &AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(query::query))
        .routes(routes!(transactions::open))
        .routes(routes!(transactions::query))
        .routes(routes!(transactions::commit))
        .routes(routes!(transactions::rollback))
        .routes(routes!(tables::list))
        .routes(routes!(tables::get))
        .routes(routes!(quantum::solve))
        .routes(routes!(keys::token))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::delete))
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(ws::upgrade))
        .routes(routes!(ws::connections))
        .split_for_parts();
    crate::openapi::common_responses(&mut doc);
    let limits = &state.inner.config.limits;
    let api = api
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state.clone());
    let router = Router::new()
        .nest(PREFIX, api)
        // Serves the document at /api/v1/openapi.json and the UI reading it at /docs.
        .merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", doc.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), request_timeout))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(middleware::from_fn_with_state(state.clone(), ip_rate_limit));
    let router = match cors(&state.inner.config) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let router = router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // `otel.name` (filled in by `track` once the route is known) names the
                    // span for an OpenTelemetry exporter, if the binary installs one.
                    tracing::info_span!(
                        "request",
                        id = %id,
                        method = %req.method(),
                        path = %req.uri().path(),
                        otel.name = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    (router, doc)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; the API is under /api/v1 (see /api/v1/openapi.json)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

fn cors(config: &ServerConfig) -> Option<CorsLayer> {
    let origins = &config.cors.allowed_origins;
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // validate() checked that every origin is a valid header value.
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// Counts requests and their latency by route pattern.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    tracing::Span::current().record("otel.name", format!("{method} {route}"));
    let start = Instant::now();
    let response = next.run(req).await;
    let metrics = state.metrics();
    metrics
        .request_seconds
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Ends requests that take longer than `limits.request_timeout_ms` with 408; dropping the
/// handler cancels its statement. WebSocket upgrades are exempt (they live on their own).
async fn request_timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.headers().contains_key(axum::http::header::UPGRADE) {
        return next.run(req).await;
    }
    let limit = Duration::from_millis(state.inner.config.limits.request_timeout_ms);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request took longer than {} ms", limit.as_millis()),
        )
        .into_response(),
    }
}

async fn ip_rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(e) = state.check_ip_rate(addr.ip())
    {
        return e.into_response();
    }
    next.run(req).await
}

fn tls_config(
    config: &crate::config::TlsConfig,
) -> Result<axum_server::tls_rustls::RustlsConfig, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&config.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| ServeError::Tls(format!("tls.cert {}: {e}", config.cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "tls.cert {}: no certificate in the file",
            config.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(|e| ServeError::Tls(format!("tls.key {}: {e}", config.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(format!("the certificate and key do not fit: {e}")))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(server),
    ))
}

fn listen(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Io {
        what: format!("cannot listen on {addr}"),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Io {
            what: "configuring the listener".into(),
            source,
        })?;
    Ok(listener)
}

/// A server that is accepting requests.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    scheme: &'static str,
    state: AppState,
    handle: axum_server::Handle<SocketAddr>,
    metrics_handle: Option<axum_server::Handle<SocketAddr>>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    reaper: tokio::task::JoinHandle<()>,
}

/// Starts serving `backend` with the keys of `data_dir`. Returns once the listeners are bound.
pub async fn start(
    config: ServerConfig,
    data_dir: &Path,
    backend: Arc<dyn Backend>,
) -> Result<RunningServer, ServeError> {
    config.validate()?;
    let auth = Authenticator::open(data_dir)?;
    if !auth.keys.is_initialized() {
        tracing::warn!(
            "no API key exists yet: every endpoint but /health answers 503 until `nqdb init --data-dir {}` runs",
            data_dir.display()
        );
    }
    let tls = config.tls.as_ref().map(tls_config).transpose()?;
    let listener = listen(config.listen)?;
    let addr = listener.local_addr().map_err(|source| ServeError::Io {
        what: "reading the listen address".into(),
        source,
    })?;
    let metrics_listener = config.metrics_listen.map(listen).transpose()?;
    let state = AppState::new(config, Arc::clone(&backend), auth);
    backend.attach_changes(Arc::clone(&state.inner.ws.changes));
    let (app, _) = router(&state);
    let handle = axum_server::Handle::new();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut tasks = Vec::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = axum_server::from_tcp(listener).map_err(|source| ServeError::Io {
        what: "starting the server".into(),
        source,
    })?;
    let h = handle.clone();
    // Small responses and WebSocket events go out at once instead of waiting on Nagle.
    let nodelay = axum_server::accept::NoDelayAcceptor::new();
    tasks.push(match tls {
        Some(tls) => {
            let server = server
                .acceptor(axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(nodelay));
            tokio::spawn(async move { server.handle(h).serve(service).await })
        }
        None => {
            let server = server.acceptor(nodelay);
            tokio::spawn(async move { server.handle(h).serve(service).await })
        }
    });
    let mut metrics_addr = None;
    let mut metrics_handle = None;
    if let Some(listener) = metrics_listener {
        metrics_addr = listener.local_addr().ok();
        let app = Router::new()
            .route("/metrics", axum::routing::get(health::metrics))
            .with_state(state.clone());
        let h = axum_server::Handle::new();
        let server = axum_server::from_tcp(listener).map_err(|source| ServeError::Io {
            what: "starting the metrics server".into(),
            source,
        })?;
        let h2 = h.clone();
        tasks.push(tokio::spawn(async move {
            server.handle(h2).serve(app.into_make_service()).await
        }));
        metrics_handle = Some(h);
    }
    let reaper = tokio::spawn(transactions::reap_idle(state.clone()));
    tracing::info!(%addr, scheme, "serving the API under {PREFIX}");
    Ok(RunningServer {
        addr,
        metrics_addr,
        scheme,
        state,
        handle,
        metrics_handle,
        tasks,
        reaper,
    })
}

impl RunningServer {
    /// The address the API listens on (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The separate metrics listener, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `http://addr` or `https://addr`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The shared state (metrics, for tests and the binary).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Graceful shutdown: `/ready` turns 503, no new connections are accepted, in-flight
    /// requests get the configured grace period, open transactions are rolled back, and the
    /// database is flushed and closed.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let state = self.state;
        state.start_draining();
        let grace = Duration::from_millis(state.inner.config.shutdown_grace_ms);
        self.handle.graceful_shutdown(Some(grace));
        if let Some(h) = &self.metrics_handle {
            h.graceful_shutdown(Some(grace));
        }
        for task in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("server task ended with {e}"),
                Err(e) => tracing::warn!("server task failed: {e}"),
            }
        }
        // Wait for the reaper to be gone too: it holds the state, and with it the database.
        self.reaper.abort();
        let _ = self.reaper.await;
        let open = state.inner.transactions.take_all();
        let backend = Arc::clone(&state.inner.backend);
        tokio::task::spawn_blocking(move || {
            for slot in open {
                slot.session
                    .lock()
                    .cancel_handle()
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = slot
                    .session
                    .lock()
                    .execute("ROLLBACK", &[], &ExecOptions::default());
            }
            backend.shutdown()
        })
        .await
        .map_err(|e| ServeError::Shutdown(e.to_string()))?
        .map_err(ServeError::Shutdown)
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
