//! Clients for remote annealing back-ends (feature `hardware`, off by default).
//!
//! Both clients implement [`Sampler`](crate::solve::Sampler), so a caller can swap a
//! simulator for a remote device without other changes. They are built only from an explicit
//! [`Endpoint`] (or from environment variables via [`Endpoint::from_env`], which returns
//! `None` when they are unset): nothing is ever contacted unless configured.
//!
//! The wire formats are deliberately small JSON dialects modelled on the vendors' REST flows
//! (submit, poll by id, fetch the answer); see each client's docs. Returned samples are
//! re-scored locally against the submitted model, so a misbehaving service cannot report an
//! energy its bits do not have. Embedding onto a device's qubit graph is the service's job.

mod dwave;
mod quera;
mod rest;

use std::time::Duration;

pub use dwave::DWaveClient;
pub use quera::QuEraClient;

/// Where a back-end lives and how to authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL, e.g. `https://cloud.example/sapi/v2` (no trailing slash needed).
    pub url: String,
    /// API token sent with every request.
    pub token: String,
    /// Give up on a problem that has not completed after this long.
    pub timeout: Duration,
    /// Pause between status polls.
    pub poll_interval: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

impl Endpoint {
    /// An endpoint with a 5-minute timeout and 1-second polling.
    #[must_use]
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
        }
    }

    /// Reads `{prefix}_URL` and `{prefix}_TOKEN` (e.g. `NQ_DWAVE_URL`); `None` unless both are
    /// set and non-empty.
    #[must_use]
    pub fn from_env(prefix: &str) -> Option<Self> {
        let url = std::env::var(format!("{prefix}_URL")).ok()?;
        let token = std::env::var(format!("{prefix}_TOKEN")).ok()?;
        (!url.is_empty() && !token.is_empty()).then(|| Self::new(url, token))
    }
}
