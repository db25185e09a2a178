//! The interactive shell: line editing, multi-line statements, and history.
//!
//! Lines accumulate until they hold complete statements, which run as soon as their `;` is
//! typed; an error is printed and the shell goes on. At the prompt Ctrl-C drops the statement
//! being typed; while a statement runs, Ctrl-C cancels it ("query cancelled", and the rest of
//! that input is skipped); Ctrl-D (or `\q`) quits.
//!
//! Each complete input (a statement typed over several lines is one entry) goes into the
//! history, which is saved to the history file after every entry. rustyline is built without
//! its file-history feature, so the file is read and written here: one entry per line, with
//! `\` written as `\\` and a line break as `\n`.

use std::path::Path;

use rustyline::Config;
use rustyline::Editor;
use rustyline::error::ReadlineError;
use rustyline::history::History;
use rustyline::history::MemHistory;

use super::Status;
use super::runner::{Failure, Flow, Shell};
use super::split::split;

/// Prompt at the start of a statement.
const PROMPT: &str = "nqdb=> ";
/// Prompt on the continuation lines of a statement.
const CONTINUATION_PROMPT: &str = "nqdb-> ";
/// History entries kept.
const HISTORY_SIZE: usize = 1000;

/// Runs the interactive shell until `\q`, end of input, or a failure to write output. Saves
/// the history to `history_file` if given.
pub fn run(shell: &mut Shell<'_>, history_file: Option<&Path>) -> Status {
    let mut editor = match new_editor() {
        Ok(editor) => editor,
        Err(error) => {
            eprintln!("error: cannot start the line editor: {error}");
            return Status::Failed;
        }
    };
    let mut history = HistoryFile::new(history_file);
    history.load(&mut editor);
    println!(
        "nqdb {} (type \\? for help, \\q to quit)",
        env!("CARGO_PKG_VERSION")
    );

    // Text of the statement being typed, and the whole input since the last history entry.
    let mut pending = String::new();
    let mut entry = String::new();
    loop {
        let prompt = if pending.is_empty() {
            PROMPT
        } else {
            CONTINUATION_PROMPT
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                entry.clear();
                continue;
            }
            Err(ReadlineError::Eof) => return Status::Success,
            Err(error) => {
                eprintln!("error: reading input: {error}");
                return Status::Failed;
            }
        };
        pending.push_str(&line);
        pending.push('\n');
        entry.push_str(&line);
        entry.push('\n');

        let split = split(&pending);
        let mut quit = false;
        let mut cancelled = false;
        for chunk in &split.chunks {
            match shell.run_chunk(&pending, chunk) {
                Ok(Flow::Continue) | Err(Failure::Reported) => {}
                // Ctrl-C also drops the statements typed after the cancelled one.
                Err(Failure::Cancelled) => {
                    cancelled = true;
                    break;
                }
                Ok(Flow::Quit) => {
                    quit = true;
                    break;
                }
                Err(Failure::Output(error)) => {
                    eprintln!("error: writing output: {error}");
                    return Status::Failed;
                }
            }
        }
        pending = match split.rest {
            Some(rest) if !quit && !cancelled => pending[rest.start..].to_owned(),
            _ => String::new(),
        };
        if pending.is_empty() {
            history.add(&mut editor, entry.trim());
            entry.clear();
        }
        if quit {
            return Status::Success;
        }
    }
}

fn new_editor() -> rustyline::Result<Editor<(), MemHistory>> {
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)?
        .history_ignore_dups(true)?
        .auto_add_history(false)
        .build();
    let history = MemHistory::with_config(&config);
    Editor::with_history(config, history)
}

/// The history file, if there is one; warns once if it cannot be written.
struct HistoryFile<'a> {
    path: Option<&'a Path>,
    warned: bool,
}

impl<'a> HistoryFile<'a> {
    fn new(path: Option<&'a Path>) -> Self {
        HistoryFile {
            path,
            warned: false,
        }
    }

    /// Loads the saved entries; a missing or unreadable file is an empty history.
    fn load(&self, editor: &mut Editor<(), MemHistory>) {
        let Some(text) = self.path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            return;
        };
        for line in text.lines().filter(|l| !l.is_empty()) {
            let _ = editor.add_history_entry(decode_entry(line));
        }
    }

    /// Adds `entry` to the history and saves it.
    fn add(&mut self, editor: &mut Editor<(), MemHistory>, entry: &str) {
        if entry.is_empty() || !editor.add_history_entry(entry).unwrap_or(false) {
            return;
        }
        let Some(path) = self.path else {
            return;
        };
        let mut text = String::new();
        for saved in editor.history() {
            text.push_str(&encode_entry(saved));
            text.push('\n');
        }
        if let Err(error) = std::fs::write(path, text)
            && !self.warned
        {
            self.warned = true;
            eprintln!(
                "warning: cannot save history to {}: {error}",
                path.display()
            );
        }
        debug_assert!(editor.history().len() <= HISTORY_SIZE);
    }
}

/// An entry as one line of the history file.
fn encode_entry(entry: &str) -> String {
    entry.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The entry a line of the history file holds.
fn decode_entry(line: &str) -> String {
    let mut entry = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            entry.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => entry.push('\n'),
            Some(other) => entry.push(other),
            None => entry.push('\\'),
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_history_entries_round_trip_through_one_line() {
        for entry in [
            "select 1;",
            "select 'a\\nb'\n  from t;",
            "\\d users",
            "trailing \\",
            "",
        ] {
            let line = encode_entry(entry);
            assert!(!line.contains('\n'));
            assert_eq!(decode_entry(&line), entry);
        }
    }

    #[test]
    fn test_history_file_is_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".nqdb_history");
        let mut editor = new_editor().unwrap();
        let mut file = HistoryFile::new(Some(&path));
        file.add(&mut editor, "select 1;");
        file.add(&mut editor, "select\n  2;");
        file.add(&mut editor, "select\n  2;");

        let mut reloaded = new_editor().unwrap();
        HistoryFile::new(Some(&path)).load(&mut reloaded);
        let entries: Vec<&String> = reloaded.history().into_iter().collect();
        assert_eq!(entries, ["select 1;", "select\n  2;"]);
    }
}
