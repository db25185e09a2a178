//! What every handler shares, and the extractors that turn a request into a caller and a body.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::de::DeserializeOwned;

use crate::auth::{AuthError, Authenticator, Principal, Role};
use crate::backend::Backend;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::transactions::Transactions;

/// Shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub backend: Arc<dyn Backend>,
    pub auth: Authenticator,
    pub config: ServerConfig,
    pub metrics: Metrics,
    pub transactions: Transactions,
    pub ws: Arc<crate::ws::WsHub>,
    pub key_limiter: Option<DefaultKeyedRateLimiter<String>>,
    pub ip_limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Set when shutdown begins: `/ready` turns 503 so load balancers stop sending.
    pub draining: AtomicBool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_second: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl AppState {
    /// State for a server over `backend` with keys in `auth`.
    pub fn new(config: ServerConfig, backend: Arc<dyn Backend>, auth: Authenticator) -> AppState {
        let rl = &config.rate_limit;
        AppState {
            inner: Arc::new(Inner {
                metrics: Metrics::new(Arc::clone(&backend)),
                transactions: Transactions::new(config.transactions.clone()),
                ws: Arc::new(crate::ws::WsHub::new(config.websocket.clone())),
                key_limiter: limiter(rl.per_key_per_second, rl.per_key_burst),
                ip_limiter: limiter(rl.per_ip_per_second, rl.per_ip_burst),
                backend,
                auth,
                config,
                draining: AtomicBool::new(false),
            }),
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::Release);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    /// Refuses the request if `key` is over its rate.
    pub(crate) fn check_key_rate(&self, key: &str) -> Result<(), ApiError> {
        if let Some(limiter) = &self.inner.key_limiter
            && let Err(not_until) = limiter.check_key(&key.to_string())
        {
            self.inner.metrics.rate_limited.inc();
            return Err(rate_limited(&not_until));
        }
        Ok(())
    }

    /// Refuses the request if `ip` is over its rate.
    pub(crate) fn check_ip_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        if let Some(limiter) = &self.inner.ip_limiter
            && let Err(not_until) = limiter.check_key(&ip)
        {
            self.inner.metrics.rate_limited.inc();
            return Err(rate_limited(&not_until));
        }
        Ok(())
    }

    /// Authenticates a bearer credential (header or WebSocket parameter).
    pub(crate) fn authenticate(&self, bearer: &str) -> Result<Principal, ApiError> {
        let auth = &self.inner.auth;
        if !auth.keys.is_initialized() {
            return Err(ApiError::not_initialized());
        }
        let principal = auth.authenticate(bearer).map_err(|e| match e {
            AuthError::Io(message) => ApiError::internal(message),
            other => ApiError::unauthorized(other.to_string()),
        })?;
        self.check_key_rate(&principal.key_id)?;
        Ok(principal)
    }
}

fn rate_limited(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    use governor::clock::Clock;
    let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry in {} ms", wait.as_millis().max(1)),
    )
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            if state.inner.auth.keys.is_initialized() {
                ApiError::unauthorized("missing Authorization: Bearer <API key or token>")
            } else {
                ApiError::not_initialized()
            }
        })?;
        let bearer = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "the Authorization header must be `Bearer <API key or token>`",
                )
            })?;
        state.authenticate(bearer)
    }
}

impl Principal {
    /// Refuses callers below `role`.
    pub(crate) fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {role} role; the key has {}",
                self.role
            )))
        }
    }
}

/// A JSON body whose errors are JSON too: malformed JSON is 400, JSON of the wrong shape 422,
/// and a body over the size limit 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    status,
                    "payload_too_large",
                    "the request body is larger than the server accepts",
                )
            } else {
                ApiError::new(status, "bad_request", rejection.body_text())
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request("the request needs a JSON body"));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    format!("the JSON body does not fit the request: {e}"),
                ),
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!("malformed JSON: {e}"),
                ),
            }
        })
    }
}

/// Deserialises an optional positive integer that JSON may spell as `5` or `5.0` (JSON Schema
/// counts both as integers, and some clients send the latter). Fractions, negatives and values
/// beyond `u32` are refused.
pub(crate) fn positive_u32<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    use serde::Deserialize;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let value = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u64)
    });
    match value.and_then(|v| u32::try_from(v).ok()) {
        Some(v) if v > 0 => Ok(Some(v)),
        _ => Err(serde::de::Error::custom(format!(
            "expected a positive integer up to {}, got {n}",
            u32::MAX
        ))),
    }
}
