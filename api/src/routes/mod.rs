//! The REST endpoints under `/api/v1`.

pub mod health;
pub mod keys;
pub mod quantum;
pub mod query;
pub mod tables;
pub mod transactions;
