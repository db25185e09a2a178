//! Running statements and backslash commands, and printing what they return.

use std::io;
use std::io::Write;
use std::ops::Range;

use super::connection::{Connection, ShellError};
use super::format::render;
use super::interrupt::Interrupt;
use super::report::describe_error;
use super::result_set::ResultSet;
use super::split::{Chunk, split};
use super::{Format, Settings};

/// Help for `\?`.
const HELP: &str = "\
Statements end with ; (a ; inside quotes, dollar quotes or comments does not count).

  \\q                     quit
  \\timing [on|off]       toggle (or set) printing each statement's run time
  \\d                     list tables
  \\d NAME                describe a table: columns, types, indexes
  \\format [table|csv|json]
                         show or set the output format
  \\?                     this help
";

/// What to do after a chunk of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next one.
    Continue,
    /// `\q`: stop reading input.
    Quit,
}

/// What the shell prints when Ctrl-C stopped a statement.
pub const CANCELLED_MESSAGE: &str = "query cancelled";

/// Why a chunk of input failed.
#[derive(Debug)]
pub enum Failure {
    /// A statement or command failed; the error has been printed to standard error.
    Reported,
    /// Ctrl-C cancelled a statement or command; "query cancelled" has been printed.
    Cancelled,
    /// Writing the output failed (a closed pipe, a full disk).
    Output(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Output(error)
    }
}

/// The shell: runs input on a connection and prints to `out` (results) and `err` (errors).
pub struct Shell<'a> {
    connection: &'a mut dyn Connection,
    settings: Settings,
    interrupt: Interrupt,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl std::fmt::Debug for Shell<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<'a> Shell<'a> {
    /// A shell over `connection`.
    pub fn new(
        connection: &'a mut dyn Connection,
        settings: Settings,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
    ) -> Self {
        Shell {
            connection,
            settings,
            interrupt: Interrupt::new(),
            out,
            err,
        }
    }

    /// Where Ctrl-C goes: the statement or command that runs (see [`Interrupt::listen`]).
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// The current settings (`\timing` and `\format` change them).
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Runs every statement and command of `script`, a statement without a final `;`
    /// included, and stops at the first failure or `\q`.
    pub fn run_script(&mut self, script: &str) -> Result<Flow, Failure> {
        let split = split(script);
        for chunk in &split.chunks {
            if self.run_chunk(script, chunk)? == Flow::Quit {
                return Ok(Flow::Quit);
            }
        }
        if let Some(rest) = split.rest.filter(|rest| rest.has_content) {
            let end = script.trim_end().len();
            self.run_statement(script, rest.start..end)?;
        }
        Ok(Flow::Continue)
    }

    /// Runs one chunk of `text` (a statement or a command).
    pub fn run_chunk(&mut self, text: &str, chunk: &Chunk) -> Result<Flow, Failure> {
        match chunk {
            Chunk::Statement(range) => self
                .run_statement(text, range.clone())
                .map(|()| Flow::Continue),
            Chunk::Command(range) => self.run_command(&text[range.clone()]),
        }
    }

    /// Runs the statement at `range` of `script` and prints its results, or its error with
    /// the position translated to `script`.
    pub fn run_statement(&mut self, script: &str, range: Range<usize>) -> Result<(), Failure> {
        let statement = &script[range.clone()];
        let outcome = {
            let _armed = self.interrupt.arm(self.connection.canceller());
            self.connection.execute(statement)
        };
        match outcome {
            Ok(results) => self.print_results(&results, self.settings.timing),
            Err(error) => self.fail_with(&error, script, range.start),
        }
    }

    /// Runs a backslash command line (`\d users`).
    pub fn run_command(&mut self, line: &str) -> Result<Flow, Failure> {
        let line = line.trim();
        let (name, argument) = match line.split_once(char::is_whitespace) {
            Some((name, argument)) => (name, argument.trim()),
            None => (line, ""),
        };
        match name {
            "\\q" | "\\quit" => return Ok(Flow::Quit),
            "\\?" => self.out.write_all(HELP.as_bytes())?,
            "\\timing" => self.timing(argument)?,
            "\\format" => self.format(argument)?,
            "\\d" => {
                let result = {
                    let _armed = self.interrupt.arm(self.connection.canceller());
                    if argument.is_empty() {
                        self.connection.list_tables()
                    } else {
                        self.connection.describe(&unquote(argument))
                    }
                };
                self.print_outcome(result)?;
            }
            _ => self.fail(&format!(
                "invalid command {name}: try \\? for the list of commands\n"
            ))?,
        }
        self.out.flush()?;
        Ok(Flow::Continue)
    }

    fn timing(&mut self, argument: &str) -> Result<(), Failure> {
        self.settings.timing = match argument {
            "" => !self.settings.timing,
            "on" => true,
            "off" => false,
            _ => {
                return self.fail(&format!(
                    "invalid value for \\timing: {argument} (expected on or off)\n"
                ));
            }
        };
        let state = if self.settings.timing { "on" } else { "off" };
        writeln!(self.out, "Timing is {state}.")?;
        Ok(())
    }

    fn format(&mut self, argument: &str) -> Result<(), Failure> {
        if !argument.is_empty() {
            match Format::parse(argument) {
                Some(format) => self.settings.format = format,
                None => {
                    return self.fail(&format!(
                        "invalid format: {argument} (expected table, csv or json)\n"
                    ));
                }
            }
        }
        writeln!(
            self.out,
            "Output format is {}.",
            self.settings.format.name()
        )?;
        Ok(())
    }

    fn print_outcome(&mut self, outcome: Result<ResultSet, ShellError>) -> Result<(), Failure> {
        match outcome {
            Ok(result) => self.print_results(std::slice::from_ref(&result), false),
            Err(error) => self.fail_with(&error, "", 0),
        }
    }

    /// Prints `results`, each followed by its run time if `timed`.
    fn print_results(&mut self, results: &[ResultSet], timed: bool) -> Result<(), Failure> {
        for result in results {
            let mut text = String::new();
            render(result, self.settings.format, &mut text);
            self.out.write_all(text.as_bytes())?;
            if result.truncated {
                self.out.flush()?;
                writeln!(
                    self.err,
                    "warning: the server returned only the first {} rows (its limits.max_rows)",
                    result.rows.len()
                )?;
            }
            if timed {
                let line = format!("Time: {:.3} ms\n", result.elapsed.as_secs_f64() * 1000.0);
                // Keep machine-readable output parseable.
                match self.settings.format {
                    Format::Table => self.out.write_all(line.as_bytes())?,
                    Format::Csv | Format::Json => self.err.write_all(line.as_bytes())?,
                }
            }
        }
        self.out.flush()?;
        Ok(())
    }

    /// Reports `error` of the statement at `offset` of `script`: "query cancelled" if Ctrl-C
    /// stopped it ([`Failure::Cancelled`]), else the error with its place.
    fn fail_with(
        &mut self,
        error: &ShellError,
        script: &str,
        offset: usize,
    ) -> Result<(), Failure> {
        if self.interrupt.fired() && error.is_cancellation() {
            self.write_error(&format!("{CANCELLED_MESSAGE}\n"))?;
            return Err(Failure::Cancelled);
        }
        self.fail(&describe_error(error, script, offset))
    }

    /// Prints `message` to standard error and fails with [`Failure::Reported`].
    fn fail(&mut self, message: &str) -> Result<(), Failure> {
        self.write_error(message)?;
        Err(Failure::Reported)
    }

    /// Prints `message` to standard error, after the output so far.
    fn write_error(&mut self, message: &str) -> Result<(), Failure> {
        self.out.flush()?;
        self.err.write_all(message.as_bytes())?;
        self.err.flush()?;
        Ok(())
    }
}

/// A table name as typed after `\d`: a double-quoted name loses its quotes (`""` stands for
/// `"`), others are passed on as they are.
fn unquote(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::error::{Position, SqlError};
    use crate::result::{ColumnInfo, SqlExecutor, StatementResult};
    use crate::shell::connection::{Canceller, Embedded, QUERY_CANCELED};
    use crate::types::{DataType, Value};

    /// A stand-in executor: answers from a fixed table of statements and records the calls.
    /// It tests the shell, not the database.
    #[derive(Debug, Default)]
    pub(crate) struct FakeExecutor {
        pub(crate) calls: Vec<String>,
    }

    pub(crate) fn rows(values: &[i64]) -> StatementResult {
        StatementResult {
            columns: vec![ColumnInfo {
                name: "n".into(),
                data_type: DataType::Integer,
            }],
            rows: values.iter().map(|v| vec![Value::Int(*v)]).collect(),
            rows_affected: 0,
            tag: "SELECT".into(),
            elapsed: Duration::from_micros(1234),
        }
    }

    fn tag(tag: &str, rows_affected: u64) -> StatementResult {
        StatementResult {
            columns: vec![],
            rows: vec![],
            rows_affected,
            tag: tag.into(),
            elapsed: Duration::from_micros(500),
        }
    }

    impl SqlExecutor for FakeExecutor {
        fn execute(
            &mut self,
            sql: &str,
            _params: &[Value],
        ) -> Result<Vec<StatementResult>, SqlError> {
            self.calls.push(sql.to_owned());
            match sql {
                "select 1" => Ok(vec![rows(&[1])]),
                "select 1, 2" => Ok(vec![rows(&[1]), rows(&[2])]),
                "insert" => Ok(vec![tag("INSERT", 3)]),
                "create table t (a int)" => Ok(vec![tag("CREATE TABLE", 0)]),
                _ if sql.contains("FORM") => {
                    let line = sql[..sql.find("FORM").unwrap()].matches('\n').count() as u64 + 1;
                    Err(SqlError::Syntax {
                        message: "found: FORM".into(),
                        position: Position { line, column: 3 },
                    })
                }
                _ => Err(SqlError::UnknownTable(sql.to_owned())),
            }
        }

        fn describe(&mut self, table: &str) -> Result<StatementResult, SqlError> {
            self.calls.push(format!("describe {table}"));
            if table == "My T" {
                Ok(tag("DESCRIBE", 0))
            } else {
                Err(SqlError::UnknownTable(table.to_owned()))
            }
        }

        fn list_tables(&mut self) -> Result<StatementResult, SqlError> {
            self.calls.push("list".into());
            Ok(rows(&[]))
        }
    }

    /// Runs `script` with `settings`; returns the flow (or "error"), standard output, standard
    /// error, and the executor's calls.
    fn run(script: &str, settings: Settings) -> (String, String, String, Vec<String>) {
        let mut executor = FakeExecutor::default();
        let mut connection = Embedded::new(&mut executor, None);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let flow = Shell::new(&mut connection, settings, &mut out, &mut err).run_script(script);
        let flow = match flow {
            Ok(Flow::Continue) => "continue",
            Ok(Flow::Quit) => "quit",
            Err(Failure::Reported) => "error",
            Err(Failure::Cancelled) => "cancelled",
            Err(Failure::Output(e)) => panic!("{e}"),
        };
        (
            flow.to_owned(),
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            executor.calls,
        )
    }

    fn table() -> Settings {
        Settings {
            format: Format::Table,
            timing: false,
        }
    }

    #[test]
    fn test_script_runs_statements_in_order() {
        let (flow, out, err, calls) = run("create table t (a int);\ninsert;\nselect 1", table());
        assert_eq!(flow, "continue");
        assert_eq!(out, "CREATE TABLE\nINSERT 0 3\n n\n---\n 1\n(1 row)\n\n");
        assert_eq!(err, "");
        assert_eq!(calls, ["create table t (a int)", "insert", "select 1"]);
    }

    #[test]
    fn test_script_stops_at_the_first_error_with_its_position() {
        let (flow, out, err, calls) = run("insert;\n  select *\n FORM t;\nselect 1;", table());
        assert_eq!(flow, "error");
        assert_eq!(out, "INSERT 0 3\n");
        assert_eq!(
            err,
            "ERROR [syntax_error] at line 3, column 3: found: FORM\nLINE 3:  FORM t;\n          ^\n"
        );
        assert_eq!(calls, ["insert", "select *\n FORM t"]);
    }

    #[test]
    fn test_every_result_of_a_statement_is_printed_with_its_time() {
        let settings = Settings {
            format: Format::Csv,
            timing: true,
        };
        let (_, out, err, _) = run("select 1, 2;", settings);
        assert_eq!(out, "n\n1\nn\n2\n");
        assert_eq!(err, "Time: 1.234 ms\nTime: 1.234 ms\n");
        let (_, out, _, _) = run("\\timing\ninsert;", table());
        assert_eq!(out, "Timing is on.\nINSERT 0 3\nTime: 0.500 ms\n");
        // Backslash commands are not timed.
        let (_, out, _, _) = run("\\timing on\n\\d", table());
        assert_eq!(out, "Timing is on.\n n\n---\n(0 rows)\n\n");
    }

    #[test]
    fn test_backslash_commands() {
        let (flow, out, _, calls) = run("\\d\n\\d \"My T\"\n\\format json\nselect 1;", table());
        assert_eq!(flow, "continue");
        assert_eq!(
            out,
            " n\n---\n(0 rows)\n\nDESCRIBE\nOutput format is json.\n\
             {\"columns\":[{\"name\":\"n\",\"type\":\"INTEGER\"}],\"rows\":[[1]],\"rows_affected\":0}\n"
        );
        assert_eq!(calls, ["list", "describe My T", "select 1"]);

        let (flow, _, err, _) = run("\\d nope", table());
        assert_eq!(flow, "error");
        assert_eq!(
            err,
            "ERROR [undefined_table]: table \"nope\" does not exist\n"
        );

        let (_, out, _, _) = run("\\?", table());
        assert!(out.contains("\\timing"));
    }

    #[test]
    fn test_quit_stops_the_script() {
        let (flow, _, _, calls) = run("insert;\n\\q\nselect 1;", table());
        assert_eq!(flow, "quit");
        assert_eq!(calls, ["insert"]);
    }

    #[test]
    fn test_bad_commands_are_errors() {
        for script in ["\\nope", "\\format xml", "\\timing maybe"] {
            let (flow, _, err, calls) = run(script, table());
            assert_eq!(flow, "error", "{script}");
            assert!(err.starts_with("invalid "), "{err}");
            assert!(calls.is_empty());
        }
    }

    /// A connection whose statements run until cancelled, or fail as timed out when asked.
    #[derive(Default)]
    struct SlowConnection {
        cancel: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Connection for SlowConnection {
        fn execute(&mut self, sql: &str) -> Result<Vec<ResultSet>, ShellError> {
            if sql == "timeout" {
                return Err(ShellError::new(QUERY_CANCELED, "statement timeout"));
            }
            let (flag, woken) = &*self.cancel;
            let mut cancelled = flag.lock().unwrap();
            while !*cancelled {
                cancelled = woken.wait(cancelled).unwrap();
            }
            Err(ShellError::new(QUERY_CANCELED, "cancelled"))
        }

        fn describe(&mut self, _table: &str) -> Result<ResultSet, ShellError> {
            unreachable!()
        }

        fn list_tables(&mut self) -> Result<ResultSet, ShellError> {
            unreachable!()
        }

        fn canceller(&mut self) -> Canceller {
            let cancel = Arc::new((Mutex::new(false), Condvar::new()));
            self.cancel = Arc::clone(&cancel);
            Arc::new(move || {
                *cancel.0.lock().unwrap() = true;
                cancel.1.notify_all();
            })
        }
    }

    #[test]
    fn test_ctrl_c_cancels_the_running_statement() {
        let mut connection = SlowConnection::default();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut shell = Shell::new(&mut connection, table(), &mut out, &mut err);
        let interrupt = shell.interrupt().clone();
        let presser = std::thread::spawn(move || {
            // Ctrl-C until the statement is running and has been cancelled.
            while !interrupt.fired() {
                interrupt.fire();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let flow = shell.run_script("select pg_sleep(1000); select 1;");
        presser.join().unwrap();
        assert!(matches!(flow, Err(Failure::Cancelled)), "{flow:?}");
        drop(shell);
        assert_eq!(String::from_utf8(err).unwrap(), "query cancelled\n");
        assert!(out.is_empty());
    }

    #[test]
    fn test_a_timeout_without_ctrl_c_is_an_ordinary_error() {
        let mut connection = SlowConnection::default();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let flow = Shell::new(&mut connection, table(), &mut out, &mut err).run_script("timeout");
        assert!(matches!(flow, Err(Failure::Reported)), "{flow:?}");
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "ERROR [query_canceled]: statement timeout\n"
        );
    }
}
