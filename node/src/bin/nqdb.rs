//! `nqdb`, NeuroQuantumDB's command-line tool.
//!
//! `nqdb serve` runs the HTTP/WebSocket server, `nqdb init` creates its first API key, and
//! `nqdb sql` runs SQL on an embedded database or, with `--url`, on a server (see
//! [`nq_node::shell`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use clap::Subcommand;
use nq_node::engine::Engine;
use nq_node::server::{self, NodeConfig};
use nq_node::shell;
use nq_node::shell::report::describe_error;
use nq_node::shell::{Embedded, Input, Remote, SqlArgs, Status, Target};

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
    /// Serve the database over HTTP and WebSocket (REST under /api/v1)
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
    /// Create the first admin API key of a data directory and print it once
    Init(InitArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (see docs/configuration.md)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory [default: ./nqdb-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Also serve /metrics on this address
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// TLS certificate chain (PEM); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log filter (`info`, `debug`, `warn,nq_api=debug`)
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Data directory
    #[arg(long, value_name = "DIR", default_value = "./nqdb-data")]
    data_dir: PathBuf,
    /// Print only the key, for scripts
    #[arg(long, short)]
    quiet: bool,
}

const SERVE_AFTER_HELP: &str = "\
Configuration is layered; later layers win:
  1. built-in defaults
  2. the TOML file given with --config
  3. environment variables NQDB_<SECTION>__<KEY>, e.g. NQDB_DATA_DIR=/var/lib/nqdb,
     NQDB_SERVER__LISTEN=0.0.0.0:8080, NQDB_SERVER__LIMITS__MAX_ROWS=10000,
     NQDB_STORAGE__BUFFER_POOL_MB=64, NQDB_LOG__LEVEL=debug
  4. the flags above
Every key is listed in docs/configuration.md. An unknown key or a bad value stops the server
at start with a message naming the key.

Until `nqdb init` has created the first API key, every endpoint but /api/v1/health answers
503 not_initialized. SIGTERM or Ctrl-C shuts down gracefully.";

const SQL_AFTER_HELP: &str = "\
Without -c or -f, nqdb sql reads a script from standard input when it is not a terminal, and
otherwise starts an interactive shell (type \\? there for its commands).

With --url, statements run on a server (nqdb serve) over its HTTP API, authenticated with
--key or the NQDB_API_KEY environment variable. BEGIN ... COMMIT opens an HTTP transaction;
one still open at exit is rolled back.

Ctrl-C cancels the running statement (\"query cancelled\"); in the interactive shell it
clears the line at the prompt, and Ctrl-D quits.

Exit status: 0 on success, 1 when a statement fails or is cancelled, 2 for a bad command line,
130 when Ctrl-C stops a script between statements.";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Sql(args) => sql(args).into(),
        Command::Serve(args) => serve(args),
        Command::Init(args) => init(args),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    use figment::value::{Dict, Value};
    let mut flags = Dict::new();
    let mut server = Dict::new();
    if let Some(dir) = &args.data_dir {
        flags.insert("data_dir".into(), Value::from(dir.display().to_string()));
    }
    if let Some(listen) = args.listen {
        server.insert("listen".into(), Value::from(listen.to_string()));
    }
    if let Some(listen) = args.metrics_listen {
        server.insert("metrics_listen".into(), Value::from(listen.to_string()));
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let mut tls = Dict::new();
        tls.insert("cert".into(), Value::from(cert.display().to_string()));
        tls.insert("key".into(), Value::from(key.display().to_string()));
        server.insert("tls".into(), Value::from(tls));
    }
    if !server.is_empty() {
        flags.insert("server".into(), Value::from(server));
    }
    if let Some(level) = &args.log_level {
        let mut log = Dict::new();
        log.insert("level".into(), Value::from(level.clone()));
        flags.insert("log".into(), Value::from(log));
    }
    let config = match NodeConfig::load(args.config.as_deref(), flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    server::init_logging(&config.log);
    match server::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init(args: &InitArgs) -> ExitCode {
    match server::init(&args.data_dir) {
        Ok((info, key)) => {
            if args.quiet {
                println!("{key}");
            } else {
                println!(
                    "Created admin API key {} in {}.",
                    info.id,
                    args.data_dir.display()
                );
                println!();
                println!("    {key}");
                println!();
                println!("This is the only time the key is shown: store it now. The server keeps");
                println!("only its argon2id hash. Use it as `Authorization: Bearer <key>`.");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn sql(args: &SqlArgs) -> Status {
    let input = match args.input(std::io::stdin().is_terminal()) {
        Ok(input) => input,
        Err(message) => {
            eprintln!("error: {message}");
            return Status::Usage;
        }
    };
    match args.target() {
        Target::Embedded(dir) => run_embedded(dir, input, args),
        Target::Remote(url) => run_remote(url, input, args),
    }
}

/// Runs `input` on the server at `url`.
fn run_remote(url: &str, input: Input, args: &SqlArgs) -> Status {
    let mut remote = match Remote::connect(url, args.api_key(), args.ca_cert.as_deref()) {
        Ok(remote) => remote,
        Err(error) => {
            eprint!("{}", describe_error(&error, "", 0));
            return if error.code == "invalid_url" || error.code == "invalid_certificate" {
                Status::Usage
            } else {
                Status::Failed
            };
        }
    };
    let history_file = home_dir().map(|home| home.join(shell::HISTORY_FILE));
    let status = shell::run(input, args.settings(), &mut remote, history_file.as_deref());
    if let Err(error) = remote.rollback_open_transaction() {
        eprint!(
            "{}",
            describe_error(
                &shell::ShellError::new(
                    error.code,
                    format!("rolling back the open transaction: {}", error.message)
                ),
                "",
                0
            )
        );
        return Status::Failed;
    }
    status
}

/// The user's home directory, for the history of remote sessions.
fn home_dir() -> Option<PathBuf> {
    ["HOME", "USERPROFILE"]
        .iter()
        .filter_map(std::env::var_os)
        .find(|dir| !dir.is_empty())
        .map(PathBuf::from)
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
    let mut connection = Embedded::session(&mut session);
    let status = shell::run(input, args.settings(), &mut connection, Some(&history_file));
    drop(connection);
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
