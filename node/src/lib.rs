//! NeuroQuantumDB's database node: QSQL (parsing, planning, execution) on the MVCC store, and
//! the `nqdb` binary.
//!
//! **Architecture invariant:** the executor reaches data only through the transaction
//! interface in [`kv`], so the cluster layer can route the same calls to shards without
//! touching the planner or executor.

pub mod encoding;
pub mod error;
pub mod result;
pub mod types;

pub use error::{Result, SqlError};
pub use result::{ColumnInfo, SqlExecutor, StatementResult};
pub use types::{DataType, Value};
