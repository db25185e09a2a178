//! Error messages for the shell's standard error, with the place of the error shown under the
//! statement line.

use std::fmt::Write as _;

use super::connection::ShellError;
use crate::error::Position;

/// Lines longer than this many characters are shown as a window around the error.
const MAX_SHOWN_LINE: usize = 120;
/// Characters shown on each side of the error in a long line.
const WINDOW_SIDE: usize = 50;

/// Formats `error` from running the statement that starts at byte `offset` of `script`:
///
/// ```text
/// ERROR [syntax_error] at line 2, column 8: Expected: end of statement, found: FORM
/// LINE 2: select * FORM t
///                  ^
/// ```
///
/// The engine and the server report positions within the statement; they are translated to
/// positions in the script. Errors without a position are one line, `ERROR [code]: message`.
pub fn describe_error(error: &ShellError, script: &str, offset: usize) -> String {
    let ShellError {
        code,
        message,
        position,
    } = error;
    let Some(position) = *position else {
        return format!("ERROR [{code}]: {message}\n");
    };
    let Position { line, column } = script_position(script, offset, position);
    let mut out = format!("ERROR [{code}] at line {line}, column {column}: {message}\n");
    if let Some(text) = usize::try_from(line - 1)
        .ok()
        .and_then(|index| script.lines().nth(index))
    {
        show_line(text, line, column, &mut out);
    }
    out
}

/// Translates `position` within the statement starting at `offset` into a position in
/// `script`.
fn script_position(script: &str, offset: usize, position: Position) -> Position {
    let before = &script[..offset.min(script.len())];
    let start_line = before.matches('\n').count() as u64 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let start_column = before[line_start..].chars().count() as u64 + 1;
    if position.line <= 1 {
        Position {
            line: start_line,
            column: start_column + position.column.max(1) - 1,
        }
    } else {
        Position {
            line: start_line + position.line - 1,
            column: position.column,
        }
    }
}

/// Appends `LINE n: text` and a caret under `column` (a window around it for long lines).
fn show_line(text: &str, line: u64, column: u64, out: &mut String) {
    let chars: Vec<char> = text.trim_end_matches('\r').chars().collect();
    let caret_at = usize::try_from(column.max(1) - 1)
        .unwrap_or(usize::MAX)
        .min(chars.len());
    let (from, to) = if chars.len() <= MAX_SHOWN_LINE {
        (0, chars.len())
    } else {
        let from = caret_at.saturating_sub(WINDOW_SIDE);
        (from, (caret_at + WINDOW_SIDE).min(chars.len()))
    };
    let mut prefix = format!("LINE {line}: ");
    let mut shown: String = chars[from..to].iter().collect();
    if from > 0 {
        prefix.push_str("...");
    }
    if to < chars.len() {
        shown.push_str("...");
    }
    let _ = writeln!(out, "{prefix}{shown}");
    // Tabs stay tabs so the caret lines up however the terminal expands them.
    let indent: String = std::iter::repeat_n(' ', prefix.chars().count())
        .chain(
            chars[from..caret_at]
                .iter()
                .map(|&c| if c == '\t' { '\t' } else { ' ' }),
        )
        .collect();
    let _ = writeln!(out, "{indent}^");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SqlError;

    fn syntax(line: u64, column: u64) -> ShellError {
        ShellError::from(SqlError::Syntax {
            message: "Expected: end of statement, found: FORM".into(),
            position: Position { line, column },
        })
    }

    #[test]
    fn test_error_without_position_is_one_line() {
        let error = ShellError::from(SqlError::UnknownTable("t".into()));
        assert_eq!(
            describe_error(&error, "select * from t", 0),
            "ERROR [undefined_table]: table \"t\" does not exist\n"
        );
    }

    #[test]
    fn test_caret_under_the_column() {
        let script = "select * FORM t";
        assert_eq!(
            describe_error(&syntax(1, 10), script, 0),
            "ERROR [syntax_error] at line 1, column 10: Expected: end of statement, found: FORM
LINE 1: select * FORM t
                 ^
"
        );
    }

    #[test]
    fn test_positions_are_translated_to_the_script() {
        // The statement starts on line 2, column 11 of the script.
        let script = "select 1;\nselect 2; select *\n\tFORM t;";
        let offset = script.find("select *").unwrap();
        assert_eq!(
            describe_error(&syntax(1, 3), script, offset),
            "ERROR [syntax_error] at line 2, column 13: Expected: end of statement, found: FORM
LINE 2: select 2; select *
                    ^
"
        );
        assert_eq!(
            describe_error(&syntax(2, 2), script, offset),
            "ERROR [syntax_error] at line 3, column 2: Expected: end of statement, found: FORM
LINE 3: \tFORM t;
        \t^
"
        );
    }

    #[test]
    fn test_long_lines_show_a_window() {
        let script = format!("select {} FORM t", "x, ".repeat(100));
        let column = script.find("FORM").unwrap() as u64 + 1;
        let text = describe_error(&syntax(1, column), &script, 0);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("LINE 1: ..."));
        assert!(lines[1].len() < 130);
        assert!(lines[1].ends_with(" FORM t"));
        let caret = lines[2].find('^').unwrap();
        assert_eq!(&lines[1][caret..caret + 4], "FORM");
    }

    #[test]
    fn test_position_past_the_end_still_prints() {
        let text = describe_error(&syntax(1, 99), "select", 0);
        assert!(
            text.ends_with("LINE 1: select\n              ^\n"),
            "{text}"
        );
    }
}
