//! The SQL layer's error type.
//!
//! Every failure a client can see is one of these variants, each with a stable code
//! ([`SqlError::code`]) that the HTTP API and the shell report, and, for errors tied to a place
//! in the statement, a line and column ([`SqlError::position`]).

use nq_storage::StorageError;

/// Result alias of the SQL layer.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

/// A position in the statement text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

/// Which constraint a write violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    /// NOT NULL.
    NotNull,
    /// PRIMARY KEY (duplicate key).
    PrimaryKey,
    /// UNIQUE (column constraint or unique index).
    Unique,
    /// CHECK.
    Check,
}

impl std::fmt::Display for ConstraintKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConstraintKind::NotNull => "NOT NULL",
            ConstraintKind::PrimaryKey => "PRIMARY KEY",
            ConstraintKind::Unique => "UNIQUE",
            ConstraintKind::Check => "CHECK",
        })
    }
}

/// Errors of parsing, planning and running SQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The statement does not parse.
    #[error("syntax error at line {}, column {}: {message}", .position.line, .position.column)]
    Syntax {
        /// What the parser expected and found.
        message: String,
        /// Where.
        position: Position,
    },

    /// A table that does not exist.
    #[error("table {0:?} does not exist")]
    UnknownTable(String),

    /// A column that does not exist in the tables in scope.
    #[error("column {0:?} does not exist")]
    UnknownColumn(String),

    /// A column name that more than one table in scope has.
    #[error("column reference {0:?} is ambiguous")]
    AmbiguousColumn(String),

    /// An index that does not exist.
    #[error("index {0:?} does not exist")]
    UnknownIndex(String),

    /// A function that does not exist, or was called with the wrong number of arguments.
    #[error("function {0}")]
    UnknownFunction(String),

    /// CREATE of something that exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// "table" or "index".
        kind: &'static str,
        /// Its name.
        name: String,
    },

    /// An operation on values of types it does not accept.
    #[error("type mismatch: {0}")]
    TypeMismatch(String),

    /// A cast that cannot be done for this value (`'abc'::INTEGER`).
    #[error("invalid value for {target}: {value}")]
    InvalidCast {
        /// The value, as text.
        value: String,
        /// The target type.
        target: String,
    },

    /// A number out of its type's range.
    #[error("{0} out of range")]
    Overflow(String),

    /// Division (or modulo) by zero.
    #[error("division by zero")]
    DivisionByZero,

    /// A write broke a constraint; names the constraint.
    #[error("{kind} constraint {constraint:?} violated: {detail}")]
    Constraint {
        /// Which kind of constraint.
        kind: ConstraintKind,
        /// The constraint's name.
        constraint: String,
        /// What happened (the offending key or column).
        detail: String,
    },

    /// A statement that is valid SQL but that QSQL does not support (yet).
    #[error("not supported: {0}")]
    Unsupported(String),

    /// Invalid use of a construct (aggregate in WHERE, wrong number of values, ...).
    #[error("{0}")]
    Invalid(String),

    /// A transaction command that does not fit the session's state (COMMIT without BEGIN).
    #[error("transaction: {0}")]
    Transaction(String),

    /// A parameter (`$n`) without a value, or a value of the wrong shape.
    #[error("parameter: {0}")]
    Parameter(String),

    /// The statement was cancelled or ran past its timeout.
    #[error("statement cancelled: {0}")]
    Cancelled(String),

    /// The statement needed more memory than its limit.
    #[error("statement exceeded its memory limit of {limit} bytes ({what})")]
    MemoryLimit {
        /// The limit.
        limit: usize,
        /// Which operator hit it.
        what: String,
    },

    /// The storage engine failed (I/O, corruption, conflicts, locks).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl SqlError {
    /// A stable, lowercase code per kind of error, for APIs and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            SqlError::Syntax { .. } => "syntax_error",
            SqlError::UnknownTable(_) => "undefined_table",
            SqlError::UnknownColumn(_) => "undefined_column",
            SqlError::AmbiguousColumn(_) => "ambiguous_column",
            SqlError::UnknownIndex(_) => "undefined_index",
            SqlError::UnknownFunction(_) => "undefined_function",
            SqlError::AlreadyExists { .. } => "duplicate_object",
            SqlError::TypeMismatch(_) => "type_mismatch",
            SqlError::InvalidCast { .. } => "invalid_value",
            SqlError::Overflow(_) => "numeric_out_of_range",
            SqlError::DivisionByZero => "division_by_zero",
            SqlError::Constraint { kind, .. } => match kind {
                ConstraintKind::NotNull => "not_null_violation",
                ConstraintKind::PrimaryKey | ConstraintKind::Unique => "unique_violation",
                ConstraintKind::Check => "check_violation",
            },
            SqlError::Unsupported(_) => "feature_not_supported",
            SqlError::Invalid(_) => "invalid_statement",
            SqlError::Transaction(_) => "invalid_transaction_state",
            SqlError::Parameter(_) => "invalid_parameter",
            SqlError::Cancelled(_) => "query_canceled",
            SqlError::MemoryLimit { .. } => "out_of_memory",
            SqlError::Storage(e) => match e {
                StorageError::WriteConflict { .. } => "serialization_failure",
                StorageError::Deadlock { .. } => "deadlock_detected",
                StorageError::LockTimeout { .. } | StorageError::KeyLocked { .. } => {
                    "lock_not_available"
                }
                e if e.is_corruption() => "data_corrupted",
                _ => "storage_error",
            },
        }
    }

    /// Where in the statement the error is, if it is tied to a place.
    pub fn position(&self) -> Option<Position> {
        match self {
            SqlError::Syntax { position, .. } => Some(*position),
            _ => None,
        }
    }

    /// True for errors caused by the statement or its data (a client error), false for
    /// failures of the server or storage.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, SqlError::Storage(e) if !matches!(e,
            StorageError::WriteConflict { .. }
                | StorageError::Deadlock { .. }
                | StorageError::LockTimeout { .. }
                | StorageError::KeyLocked { .. }
                | StorageError::KeyTooLarge { .. }
                | StorageError::ValueTooLarge { .. }))
    }
}
