//! NeuroQuantumDB's database node: QSQL (parsing, planning, execution) on the MVCC store, and
//! the `nqdb` binary.
//!
//! **Architecture invariant:** the executor reaches data only through the transaction
//! interface in [`kv`], so the cluster layer can route the same calls to shards without
//! touching the planner or executor.

pub mod arith;
pub mod bind;
pub mod cast;
pub mod catalog;
pub mod changes;
pub mod cost;
pub mod ddl;
pub mod dml;
pub mod encoding;
pub mod engine;
pub mod error;
pub mod exec;
pub mod explain;
pub mod expr;
pub mod functions;
pub mod grover;
pub mod join_order;
pub mod kv;
pub mod parse;
pub mod plan;
pub mod quantum_join;
pub mod result;
pub mod server;
pub mod session;
pub mod shell;
pub mod stats;
pub mod tablestats;
pub mod types;
pub mod write;

pub use engine::Engine;
pub use error::{Result, SqlError};
pub use result::{ColumnInfo, SqlExecutor, StatementResult};
pub use session::Session;
pub use types::{DataType, Value};
