//! The `nqdb sql` command line.

use std::path::Path;
use std::path::PathBuf;

use clap::ValueEnum;

use super::Settings;

/// Where `nqdb sql` runs its statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// An embedded database in this directory.
    Embedded(&'a Path),
    /// A server at this URL (`--url`), reached over its HTTP API.
    Remote(&'a str),
}

/// What the shell reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Scripts to run in order (each `-c`, a `-f` file, or standard input), stopping at the
    /// first error.
    Scripts(Vec<String>),
    /// An interactive shell on the terminal.
    Interactive,
}

/// Output formats of result sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table, as psql prints it.
    Table,
    /// RFC 4180 CSV: a header line, then one line per row.
    Csv,
    /// One JSON object per statement and line.
    Json,
}

impl Format {
    /// The format's name, as `--format` and `\format` take it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    /// Parses a format name (any case).
    pub fn parse(name: &str) -> Option<Format> {
        <Format as ValueEnum>::from_str(name, true).ok()
    }
}

/// Arguments of `nqdb sql`.
#[derive(Debug, Clone, clap::Args)]
pub struct SqlArgs {
    /// Directory of the embedded database; the interactive shell keeps its history there, in
    /// .nqdb_history
    #[arg(long, value_name = "DIR", default_value = "./nqdb-data")]
    pub data_dir: PathBuf,

    /// Run on the server `nqdb serve` runs at URL (http://HOST:PORT or https://HOST:PORT)
    /// instead of opening a directory
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    pub url: Option<String>,

    /// API key for --url [default: the NQDB_API_KEY environment variable]
    #[arg(long, value_name = "KEY", requires = "url")]
    pub key: Option<String>,

    /// Also trust the certificates in this PEM file for an https --url (a self-signed server
    /// certificate, a private CA)
    #[arg(long, value_name = "FILE", requires = "url")]
    pub ca_cert: Option<PathBuf>,

    /// Run these statements and exit (repeatable; each is a script of one or more statements)
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SQL",
        conflicts_with = "file"
    )]
    pub commands: Vec<String>,

    /// Run the statements in FILE and exit ("-" reads standard input)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Output format of result sets
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub format: Format,

    /// Print each statement's run time (to standard error with csv and json output)
    #[arg(long)]
    pub timing: bool,
}

impl SqlArgs {
    /// Where to run statements.
    pub fn target(&self) -> Target<'_> {
        match &self.url {
            Some(url) => Target::Remote(url),
            None => Target::Embedded(&self.data_dir),
        }
    }

    /// The API key for a server: `--key`, else the `NQDB_API_KEY` environment variable.
    pub fn api_key(&self) -> Option<String> {
        self.key
            .clone()
            .or_else(|| std::env::var(super::remote::KEY_ENV).ok())
            .filter(|key| !key.is_empty())
    }

    /// The shell's starting settings.
    pub fn settings(&self) -> Settings {
        Settings {
            format: self.format,
            timing: self.timing,
        }
    }

    /// Reads what to run: the `-c` scripts, the `-f` file, standard input when it is not a
    /// terminal, or else nothing (an interactive shell). Fails if the file cannot be read.
    pub fn input(&self, stdin_is_terminal: bool) -> Result<Input, String> {
        if !self.commands.is_empty() {
            return Ok(Input::Scripts(self.commands.clone()));
        }
        match &self.file {
            Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(path)
                .map(|text| Input::Scripts(vec![text]))
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            Some(_) => read_stdin(),
            None if stdin_is_terminal => Ok(Input::Interactive),
            None => read_stdin(),
        }
    }
}

fn read_stdin() -> Result<Input, String> {
    std::io::read_to_string(std::io::stdin())
        .map(|text| Input::Scripts(vec![text]))
        .map_err(|e| format!("cannot read standard input: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        sql: SqlArgs,
    }

    fn parse(args: &[&str]) -> Result<SqlArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("nqdb").chain(args.iter().copied())).map(|c| c.sql)
    }

    #[test]
    fn test_defaults() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.target(), Target::Embedded(Path::new("./nqdb-data")));
        assert_eq!(args.format, Format::Table);
        assert!(!args.timing);
        assert_eq!(args.input(true).unwrap(), Input::Interactive);
    }

    #[test]
    fn test_commands_repeat_and_keep_their_order() {
        let args = parse(&[
            "-c",
            "select 1",
            "--command",
            "select 2",
            "--format",
            "json",
        ])
        .unwrap();
        assert_eq!(
            args.input(true).unwrap(),
            Input::Scripts(vec!["select 1".into(), "select 2".into()])
        );
        assert_eq!(args.settings().format, Format::Json);
    }

    #[test]
    fn test_url_is_a_remote_target() {
        let args = parse(&["--url", "http://localhost:8080"]).unwrap();
        assert_eq!(args.target(), Target::Remote("http://localhost:8080"));
        assert!(parse(&["--url", "http://x", "--data-dir", "d"]).is_err());
        let args = parse(&["--url", "http://x", "--key", "nqk_a_b"]).unwrap();
        assert_eq!(args.api_key().as_deref(), Some("nqk_a_b"));
        // A key means nothing without a server.
        assert!(parse(&["--key", "nqk_a_b"]).is_err());
    }

    #[test]
    fn test_bad_usage_is_rejected() {
        assert!(parse(&["--format", "xml"]).is_err());
        assert!(parse(&["-c", "select 1", "-f", "x.sql"]).is_err());
        let missing = parse(&["-f", "/nonexistent/nqdb/script.sql"]).unwrap();
        assert!(missing.input(true).unwrap_err().contains("cannot read"));
    }

    #[test]
    fn test_format_names() {
        assert_eq!(Format::parse("CSV"), Some(Format::Csv));
        assert_eq!(Format::parse("xml"), None);
        assert_eq!(Format::Json.name(), "json");
    }
}
