//! The `nqdb sql` front end: runs scripts (`-c`, `-f`, piped standard input) or an
//! interactive shell, and prints results as a table, CSV, or JSON.
//!
//! Everything here works on a `&mut dyn SqlExecutor`, so the same shell drives a session on an
//! embedded database today and a client of a remote server (`--url`) later; the binary
//! (`src/bin/nqdb.rs`) only chooses and opens the executor.
//!
//! - [`args`]: the command line of `nqdb sql`, and what to read.
//! - [`split`]: cuts input into statements (at `;` outside quotes and comments) and backslash
//!   commands.
//! - [`runner`]: runs statements and backslash commands on the executor and prints the results.
//! - [`format`]: the output formats.
//! - [`report`]: error messages with the error's place marked.
//! - [`repl`]: the interactive loop, with line editing and history.
//!
//! Exit status ([`Status`]): 0 on success, 1 when a statement or command fails, 2 for a bad
//! command line.

pub mod args;
pub mod format;
pub mod repl;
pub mod report;
pub mod runner;
pub mod split;

use std::io;
use std::path::Path;
use std::process::ExitCode;

pub use args::{Format, Input, SqlArgs, Target};
pub use runner::{Failure, Flow, Shell};

use crate::result::SqlExecutor;

/// Name of the interactive shell's history file, in the data directory.
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

/// Runs `input` on `executor`, printing to standard output and errors to standard error. The
/// interactive shell keeps its history in `history_file`.
pub fn run(
    input: Input,
    settings: Settings,
    executor: &mut dyn SqlExecutor,
    history_file: Option<&Path>,
) -> Status {
    let mut out = io::stdout();
    let mut err = io::stderr();
    let mut shell = Shell::new(executor, settings, &mut out, &mut err);
    match input {
        Input::Interactive => repl::run(&mut shell, history_file),
        Input::Scripts(scripts) => {
            for script in &scripts {
                match shell.run_script(script) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Quit) => break,
                    Err(Failure::Reported) => return Status::Failed,
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
