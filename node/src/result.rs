//! What running a statement returns, and the interface front ends (the shell, the HTTP API)
//! execute SQL through.

use std::time::Duration;

use crate::error::SqlError;
use crate::types::{DataType, Value};

/// A result column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    /// Column name (the alias or expression text).
    pub name: String,
    /// Its type.
    pub data_type: DataType,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementResult {
    /// Columns of the returned rows (empty for statements that return none).
    pub columns: Vec<ColumnInfo>,
    /// Returned rows (SELECT, RETURNING, EXPLAIN, SHOW).
    pub rows: Vec<Vec<Value>>,
    /// Rows inserted, updated or deleted (0 for others).
    pub rows_affected: u64,
    /// A short tag naming what ran: "SELECT", "INSERT", "CREATE TABLE", "BEGIN", ...
    pub tag: String,
    /// Wall time of the statement.
    pub elapsed: Duration,
}

/// Something that runs SQL text: a session on an embedded database today, a remote server
/// later (`nqdb sql --url`). A script of several statements returns one result per statement;
/// execution stops at the first error.
pub trait SqlExecutor {
    /// Runs `sql` (one or more statements separated by `;`) with positional `params` (`$1`...).
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<Vec<StatementResult>, SqlError>;

    /// Describes a table for the shell's `\d NAME`: columns, types, nullability, defaults, and
    /// indexes, as a result set.
    fn describe(&mut self, table: &str) -> Result<StatementResult, SqlError>;

    /// Lists the tables for the shell's `\d` without a name.
    fn list_tables(&mut self) -> Result<StatementResult, SqlError>;
}
