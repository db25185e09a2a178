//! The server's settings: listen address, TLS, limits, authentication, WebSocket.
//!
//! The `nqdb` binary layers them (defaults, TOML file, `NQDB_*` variables, flags) and hands
//! the result here; [`ServerConfig::validate`] rejects combinations that cannot work, naming
//! the key, so a bad setting fails at start instead of at the first request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the HTTP/WebSocket server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Serve `/metrics` on this address as well (a separate port for scrapers); `None`: only
    /// on the main listener.
    pub metrics_listen: Option<SocketAddr>,
    /// TLS from certificate files; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// Request and statement limits.
    pub limits: LimitsConfig,
    /// Tokens.
    pub auth: AuthConfig,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// Cross-origin requests.
    pub cors: CorsConfig,
    /// HTTP transactions.
    pub transactions: TransactionsConfig,
    /// WebSocket connections and change feeds.
    pub websocket: WebSocketConfig,
    /// Time in-flight requests get to finish after SIGTERM/SIGINT, in milliseconds.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            tls: None,
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
            rate_limit: RateLimitConfig::default(),
            cors: CorsConfig::default(),
            transactions: TransactionsConfig::default(),
            websocket: WebSocketConfig::default(),
            shutdown_grace_ms: 10_000,
        }
    }
}

/// Certificate and key files (PEM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Request and statement limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Default statement timeout, milliseconds (0: none). Requests may ask for less.
    pub statement_timeout_ms: u64,
    /// Whole-request timeout, milliseconds.
    pub request_timeout_ms: u64,
    /// Most rows one statement returns in a non-streamed response.
    pub max_rows: usize,
    /// Most spin updates one `POST /quantum/solve` may ask for (reads × sweeps × variables,
    /// times Trotter slices or replicas); 413 beyond.
    pub quantum_max_work: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 1 << 20,
            statement_timeout_ms: 30_000,
            request_timeout_ms: 60_000,
            max_rows: 100_000,
            quantum_max_work: 500_000_000,
        }
    }
}

/// Token settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Lifetime of tokens from `POST /auth/token`, seconds.
    pub token_ttl_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_ttl_seconds: 900,
        }
    }
}

/// Rate limits (token buckets); 0 disables one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second per API key (or token's key).
    pub per_key_per_second: u32,
    /// Burst per key.
    pub per_key_burst: u32,
    /// Requests per second per client IP.
    pub per_ip_per_second: u32,
    /// Burst per IP.
    pub per_ip_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_key_per_second: 2_000,
            per_key_burst: 4_000,
            per_ip_per_second: 2_000,
            per_ip_burst: 4_000,
        }
    }
}

/// Cross-origin resource sharing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Allowed origins (`https://app.example.com`), or `["*"]` for any; empty: no CORS headers.
    pub allowed_origins: Vec<String>,
}

/// HTTP transactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransactionsConfig {
    /// A transaction unused for this long is rolled back, milliseconds.
    pub idle_timeout_ms: u64,
    /// Most transactions open at once.
    pub max_open: usize,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        TransactionsConfig {
            idle_timeout_ms: 60_000,
            max_open: 1_000,
        }
    }
}

/// WebSocket connections and change feeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Most connections at once; more are refused with a close reason.
    pub max_connections: usize,
    /// Ping interval, milliseconds.
    pub heartbeat_ms: u64,
    /// A connection silent for this long is closed, milliseconds.
    pub idle_timeout_ms: u64,
    /// Messages queued per connection before it counts as slow.
    pub queue_len: usize,
    /// Messages kept per pub/sub channel and sent on subscribe.
    pub channel_history: usize,
    /// Change events kept for clients that resume after a gap.
    pub change_retention: usize,
    /// Events a change-feed subscriber may fall behind the newest before it gets `lagged`.
    pub max_lag: u64,
    /// Rows per batch when streaming a query.
    pub batch_rows: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            max_connections: 10_000,
            heartbeat_ms: 15_000,
            idle_timeout_ms: 60_000,
            queue_len: 1_024,
            channel_history: 100,
            change_retention: 100_000,
            max_lag: 20_000,
            batch_rows: 500,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    /// The key, dotted (`limits.max_rows`).
    pub key: String,
    /// Why.
    pub message: String,
}

fn check(ok: bool, key: &str, message: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            key: key.to_string(),
            message: message.to_string(),
        })
    }
}

impl ServerConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.limits.max_body_bytes >= 1024,
            "limits.max_body_bytes",
            "must be at least 1024",
        )?;
        check(
            self.limits.max_rows > 0,
            "limits.max_rows",
            "must be positive",
        )?;
        check(
            self.limits.quantum_max_work > 0,
            "limits.quantum_max_work",
            "must be positive",
        )?;
        check(
            self.limits.request_timeout_ms > 0,
            "limits.request_timeout_ms",
            "must be positive",
        )?;
        check(
            self.auth.token_ttl_seconds > 0,
            "auth.token_ttl_seconds",
            "must be positive",
        )?;
        check(
            self.rate_limit.per_key_per_second == 0 || self.rate_limit.per_key_burst > 0,
            "rate_limit.per_key_burst",
            "must be positive when per_key_per_second is set",
        )?;
        check(
            self.rate_limit.per_ip_per_second == 0 || self.rate_limit.per_ip_burst > 0,
            "rate_limit.per_ip_burst",
            "must be positive when per_ip_per_second is set",
        )?;
        check(
            self.transactions.idle_timeout_ms > 0,
            "transactions.idle_timeout_ms",
            "must be positive",
        )?;
        check(
            self.websocket.queue_len >= 2,
            "websocket.queue_len",
            "must be at least 2",
        )?;
        check(
            self.websocket.max_lag > 0
                && self.websocket.max_lag as usize <= self.websocket.change_retention,
            "websocket.max_lag",
            "must be positive and at most websocket.change_retention",
        )?;
        check(
            self.websocket.batch_rows > 0,
            "websocket.batch_rows",
            "must be positive",
        )?;
        check(
            self.websocket.heartbeat_ms > 0
                && self.websocket.heartbeat_ms < self.websocket.idle_timeout_ms,
            "websocket.heartbeat_ms",
            "must be positive and below websocket.idle_timeout_ms",
        )?;
        for origin in &self.cors.allowed_origins {
            check(
                origin == "*" || origin.starts_with("http://") || origin.starts_with("https://"),
                "cors.allowed_origins",
                &format!("{origin:?} is not \"*\" or an http(s) origin"),
            )?;
            check(
                axum::http::HeaderValue::from_str(origin).is_ok(),
                "cors.allowed_origins",
                &format!("{origin:?} is not a valid header value"),
            )?;
        }
        if let Some(tls) = &self.tls {
            check(
                tls.cert.is_file(),
                "tls.cert",
                &format!("{} is not a file", tls.cert.display()),
            )?;
            check(
                tls.key.is_file(),
                "tls.key",
                &format!("{} is not a file", tls.key.display()),
            )?;
        }
        Ok(())
    }

    /// The default statement timeout.
    pub fn statement_timeout(&self) -> Option<Duration> {
        (self.limits.statement_timeout_ms > 0)
            .then(|| Duration::from_millis(self.limits.statement_timeout_ms))
    }
}
