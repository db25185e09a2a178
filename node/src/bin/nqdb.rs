//! `nqdb`, NeuroQuantumDB's command-line tool.
//!
//! `nqdb sql` runs SQL on an embedded database (see [`nq_node::shell`]). Connecting to a server
//! (`nqdb sql --url`) arrives with `nqdb serve`: an executor over HTTP then takes the place of
//! the embedded session, and the shell stays as it is.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use clap::Subcommand;
use nq_node::engine::Engine;
use nq_node::shell;
use nq_node::shell::{Input, SqlArgs, Status, Target};

/// NeuroQuantumDB: an SQL database for small machines and clusters.
#[derive(Debug, Parser)]
#[command(
    name = "nqdb",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run SQL: the statements of -c or -f, a script piped on standard input, or an
    /// interactive shell
    #[command(after_help = SQL_AFTER_HELP)]
    Sql(SqlArgs),
}

const SQL_AFTER_HELP: &str = "\
Without -c or -f, nqdb sql reads a script from standard input when it is not a terminal, and
otherwise starts an interactive shell (type \\? there for its commands).

Exit status: 0 on success, 1 when a statement fails, 2 for a bad command line.";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Sql(args) => sql(args).into(),
    }
}

fn sql(args: &SqlArgs) -> Status {
    let dir = match args.target() {
        Target::Embedded(dir) => dir,
        Target::Remote(_) => {
            eprintln!("error: not supported yet: connecting to a server arrives with nqdb serve");
            return Status::Usage;
        }
    };
    let input = match args.input(std::io::stdin().is_terminal()) {
        Ok(input) => input,
        Err(message) => {
            eprintln!("error: {message}");
            return Status::Usage;
        }
    };
    run_embedded(dir, input, args)
}

/// Runs `input` on a session of the database in `dir`.
fn run_embedded(dir: &Path, input: Input, args: &SqlArgs) -> Status {
    let engine = match Engine::open(dir) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!(
                "ERROR [{}]: cannot open the database in {}: {error}",
                error.code(),
                dir.display()
            );
            return Status::Failed;
        }
    };
    let mut session = engine.session();
    let history_file = dir.join(shell::HISTORY_FILE);
    let status = shell::run(input, args.settings(), &mut session, Some(&history_file));
    drop(session);
    if let Err(error) = engine.close() {
        eprintln!(
            "ERROR [{}]: closing the database in {}: {error}",
            error.code(),
            dir.display()
        );
        return Status::Failed;
    }
    status
}
