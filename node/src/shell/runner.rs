//! Running statements and backslash commands, and printing what they return.

use std::io;
use std::io::Write;
use std::ops::Range;

use super::format::render;
use super::report::describe_error;
use super::split::{Chunk, split};
use super::{Format, Settings};
use crate::error::SqlError;
use crate::result::{SqlExecutor, StatementResult};

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

/// Why a chunk of input failed.
#[derive(Debug)]
pub enum Failure {
    /// A statement or command failed; the error has been printed to standard error.
    Reported,
    /// Writing the output failed (a closed pipe, a full disk).
    Output(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Output(error)
    }
}

/// The shell: runs input on an executor and prints to `out` (results) and `err` (errors).
pub struct Shell<'a> {
    executor: &'a mut dyn SqlExecutor,
    settings: Settings,
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
    /// A shell over `executor`.
    pub fn new(
        executor: &'a mut dyn SqlExecutor,
        settings: Settings,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
    ) -> Self {
        Shell {
            executor,
            settings,
            out,
            err,
        }
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
        match self.executor.execute(statement, &[]) {
            Ok(results) => self.print_results(&results, self.settings.timing),
            Err(error) => self.fail(&describe_error(&error, script, range.start)),
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
            "\\d" if argument.is_empty() => {
                let result = self.executor.list_tables();
                self.print_outcome(result)?;
            }
            "\\d" => {
                let result = self.executor.describe(&unquote(argument));
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

    fn print_outcome(&mut self, outcome: Result<StatementResult, SqlError>) -> Result<(), Failure> {
        match outcome {
            Ok(result) => self.print_results(std::slice::from_ref(&result), false),
            Err(error) => self.fail(&describe_error(&error, "", 0)),
        }
    }

    /// Prints `results`, each followed by its run time if `timed`.
    fn print_results(&mut self, results: &[StatementResult], timed: bool) -> Result<(), Failure> {
        for result in results {
            let mut text = String::new();
            render(result, self.settings.format, &mut text);
            self.out.write_all(text.as_bytes())?;
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

    /// Prints `message` to standard error and fails with [`Failure::Reported`].
    fn fail(&mut self, message: &str) -> Result<(), Failure> {
        self.out.flush()?;
        self.err.write_all(message.as_bytes())?;
        self.err.flush()?;
        Err(Failure::Reported)
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
    use std::time::Duration;

    use super::*;
    use crate::error::Position;
    use crate::result::ColumnInfo;
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
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let flow = Shell::new(&mut executor, settings, &mut out, &mut err).run_script(script);
        let flow = match flow {
            Ok(Flow::Continue) => "continue",
            Ok(Flow::Quit) => "quit",
            Err(Failure::Reported) => "error",
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
}
