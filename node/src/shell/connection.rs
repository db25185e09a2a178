//! What the shell runs statements on: an embedded database ([`Embedded`]) or a server
//! ([`super::remote::Remote`]), behind one trait, [`Connection`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::result_set::ResultSet;
use crate::error::{Position, SqlError};
use crate::result::SqlExecutor;

/// Cancels the statement running on a connection; called from another thread (Ctrl-C).
pub type Canceller = Arc<dyn Fn() + Send + Sync>;

/// A failed statement or command, as the shell reports it: a stable code, a message, and for
/// errors tied to a place in the statement, its line and column within the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError {
    /// Stable lowercase code (`syntax_error`, `unauthorized`, `connection_failed`, ...).
    pub code: String,
    /// What went wrong (for syntax errors without the position, which is given apart).
    pub message: String,
    /// Where in the statement, from 1.
    pub position: Option<Position>,
}

impl ShellError {
    /// An error without a position.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ShellError {
        ShellError {
            code: code.into(),
            message: message.into(),
            position: None,
        }
    }

    /// True if the statement was cancelled (Ctrl-C, or a statement timeout).
    pub fn is_cancellation(&self) -> bool {
        self.code == QUERY_CANCELED
    }
}

/// The code of a cancelled statement, as the engine and the server name it.
pub const QUERY_CANCELED: &str = "query_canceled";

impl From<&SqlError> for ShellError {
    fn from(error: &SqlError) -> ShellError {
        let message = match error {
            // The position is given separately, so the message goes without it.
            SqlError::Syntax { message, .. } => message.clone(),
            other => other.to_string(),
        };
        ShellError {
            code: error.code().to_owned(),
            message,
            position: error.position(),
        }
    }
}

impl From<SqlError> for ShellError {
    fn from(error: SqlError) -> ShellError {
        ShellError::from(&error)
    }
}

/// Where the shell runs statements. The runner and the interactive shell use only this, so they
/// work the same on an embedded database and on a server.
pub trait Connection {
    /// Runs `sql`, one statement (the shell splits scripts), and returns its results.
    fn execute(&mut self, sql: &str) -> Result<Vec<ResultSet>, ShellError>;

    /// Describes a table for `\d NAME`: one row per column, then one per index.
    fn describe(&mut self, table: &str) -> Result<ResultSet, ShellError>;

    /// Lists the tables for `\d`.
    fn list_tables(&mut self) -> Result<ResultSet, ShellError>;

    /// A canceller for the next call of the methods above: calling it (from any thread) while
    /// that call runs makes it fail soon with [`QUERY_CANCELED`].
    fn canceller(&mut self) -> Canceller;
}

/// An embedded database: a session, or any [`SqlExecutor`].
pub struct Embedded<'a> {
    executor: &'a mut dyn SqlExecutor,
    cancel: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Embedded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("cancellable", &self.cancel.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> Embedded<'a> {
    /// Runs statements on `executor`; `cancel`, if given, is the flag that cancels its running
    /// statement (see [`crate::Session::cancel_handle`]).
    pub fn new(executor: &'a mut dyn SqlExecutor, cancel: Option<Arc<AtomicBool>>) -> Self {
        Embedded { executor, cancel }
    }

    /// Runs statements on `session`, cancellable.
    pub fn session(session: &'a mut crate::Session) -> Self {
        let cancel = session.cancel_handle();
        Embedded::new(session, Some(cancel))
    }
}

impl Connection for Embedded<'_> {
    fn execute(&mut self, sql: &str) -> Result<Vec<ResultSet>, ShellError> {
        let results = self.executor.execute(sql, &[])?;
        Ok(results.into_iter().map(ResultSet::from).collect())
    }

    fn describe(&mut self, table: &str) -> Result<ResultSet, ShellError> {
        Ok(self.executor.describe(table)?.into())
    }

    fn list_tables(&mut self) -> Result<ResultSet, ShellError> {
        Ok(self.executor.list_tables()?.into())
    }

    fn canceller(&mut self) -> Canceller {
        // The session clears the flag when a statement starts, so a stale cancel does not
        // reach the next statement.
        match &self.cancel {
            Some(flag) => {
                let flag = Arc::clone(flag);
                Arc::new(move || flag.store(true, Ordering::Relaxed))
            }
            None => Arc::new(|| {}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sql_errors_keep_code_message_and_position() {
        let syntax = SqlError::Syntax {
            message: "found: FORM".into(),
            position: Position { line: 2, column: 3 },
        };
        assert_eq!(
            ShellError::from(&syntax),
            ShellError {
                code: "syntax_error".into(),
                message: "found: FORM".into(),
                position: Some(Position { line: 2, column: 3 }),
            }
        );
        let cancelled = ShellError::from(SqlError::Cancelled("by user".into()));
        assert!(cancelled.is_cancellation());
        assert_eq!(cancelled.message, "statement cancelled: by user");
    }

    #[test]
    fn test_embedded_sessions_are_cancellable() {
        let engine_dir = tempfile::tempdir().unwrap();
        let engine = crate::Engine::open(engine_dir.path()).unwrap();
        let mut session = engine.session();
        let flag = session.cancel_handle();
        let mut conn = Embedded::session(&mut session);
        let results = conn.execute("SELECT 1 AS one").unwrap();
        assert_eq!(results[0].rows[0][0].text(), "1");
        conn.canceller()();
        assert!(flag.load(Ordering::Relaxed));
        // The next statement starts afresh.
        assert_eq!(conn.execute("SELECT 2").unwrap()[0].rows[0][0].text(), "2");
        drop(conn);
        drop(session);
        engine.close().unwrap();
    }
}
