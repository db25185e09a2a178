//! The `nqdb sql` front end: runs scripts (`-c`, `-f`, piped standard input) or an
//! interactive shell, and prints results as a table, CSV, or JSON.
//!
//! Everything here works on a `&mut dyn Connection`, so the same shell drives a session on an
//! embedded database (`--data-dir`) and a server (`--url`); the binary (`src/bin/nqdb.rs`)
//! only chooses and opens the connection.
//!
//! - [`args`]: the command line of `nqdb sql`, and what to read.
//! - [`connection`]: the [`Connection`] trait and the embedded connection.
//! - [`remote`]: the connection to a server over its HTTP API, with HTTP transactions for
//!   `BEGIN` ... `COMMIT`.
//! - [`split`]: cuts input into statements (at `;` outside quotes and comments) and backslash
//!   commands.
//! - [`runner`]: runs statements and backslash commands on the connection and prints the
//!   results.
//! - [`result_set`]: results as both targets return them, for printing.
//! - [`format`]: the output formats.
//! - [`report`]: error messages with the error's place marked.
//! - [`interrupt`]: Ctrl-C cancels the running statement.
//! - [`repl`]: the interactive loop, with line editing and history.
//!
//! Exit status ([`Status`]): 0 on success, 1 when a statement or command fails (or Ctrl-C
//! cancelled one), 2 for a bad command line, 130 when Ctrl-C ends a script between statements.

pub mod args;
pub mod connection;
pub mod format;
pub mod interrupt;
pub mod remote;
pub mod repl;
pub mod report;
pub mod result_set;
pub mod runner;
pub mod split;

use std::io;
use std::path::Path;
use std::process::ExitCode;

pub use args::{Format, Input, SqlArgs, Target};
pub use connection::{Connection, Embedded, ShellError};
pub use remote::Remote;
pub use result_set::{Cell, ResultColumn, ResultSet};
pub use runner::{Failure, Flow, Shell};

use interrupt::Idle;

/// Name of the interactive shell's history file: in the data directory for an embedded
/// database, in the home directory for a server.
pub const HISTORY_FILE: &str = ".nqdb_history";

/// Output settings, changed in the shell by `\format` and `\timing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How result sets are printed.
    pub format: Format,
    /// Whether each statement's run time is printed after it.
    pub timing: bool,
}

/// How `nqdb` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything ran (exit status 0).
    Success,
    /// A statement or command failed, or output could not be written (exit status 1).
    Failed,
    /// The command line was wrong (exit status 2).
    Usage,
}

impl Status {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::Failed => 1,
            Status::Usage => 2,
        }
    }
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        ExitCode::from(status.code())
    }
}

/// Runs `input` on `connection`, printing to standard output and errors to standard error. The
/// interactive shell keeps its history in `history_file`.
///
/// Ctrl-C cancels the running statement ("query cancelled"); the interactive shell goes on,
/// a script stops with status 1 (and exits at once with 130 when Ctrl-C comes between
/// statements).
pub fn run(
    input: Input,
    settings: Settings,
    connection: &mut dyn Connection,
    history_file: Option<&Path>,
) -> Status {
    let mut out = io::stdout();
    let mut err = io::stderr();
    let mut shell = Shell::new(connection, settings, &mut out, &mut err);
    let idle = match input {
        Input::Interactive => Idle::Ignore,
        Input::Scripts(_) => Idle::Exit,
    };
    shell.interrupt().set_idle(idle);
    if let Err(error) = shell.interrupt().listen() {
        eprintln!("warning: Ctrl-C will not cancel statements: {error}");
    }
    match input {
        Input::Interactive => repl::run(&mut shell, history_file),
        Input::Scripts(scripts) => {
            for script in &scripts {
                match shell.run_script(script) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Quit) => break,
                    Err(Failure::Reported | Failure::Cancelled) => return Status::Failed,
                    Err(Failure::Output(error)) => {
                        // A reader that went away (`nqdb sql ... | head`) needs no message.
                        if error.kind() != io::ErrorKind::BrokenPipe {
                            eprintln!("error: writing output: {error}");
                        }
                        return Status::Failed;
                    }
                }
            }
            Status::Success
        }
    }
}
