//! NeuroQuantumDB's HTTP and WebSocket API (`nqdb serve`).
//!
//! The crate is the network face of a node and nothing else: it authenticates callers,
//! enforces roles and limits, turns requests into calls on a [`backend::Backend`] (which the
//! `nqdb` binary implements over the engine), and turns results and failures into JSON. See
//! `docs/api.md` for the endpoints and `docs/configuration.md` for the settings.

pub mod auth;
pub mod backend;
pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
mod transactions;
pub mod ws;

pub use backend::{Backend, BackendSession};
pub use config::ServerConfig;
pub use error::ApiError;
pub use server::{RunningServer, ServeError, shutdown_signal, start};
