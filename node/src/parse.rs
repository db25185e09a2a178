//! Parsing QSQL text with `sqlparser` and our dialect, with errors that name the line and
//! column and quote what was found.

use sqlparser::ast::Statement;
use sqlparser::dialect::{Dialect, PostgreSqlDialect};
use sqlparser::parser::{Parser, ParserError};

use crate::error::{Position, Result, SqlError};

/// QSQL: PostgreSQL's syntax, which our grammar follows, under our own name so extensions
/// (QUANTUM_JOIN, NEUROMATCH) have a place to go.
#[derive(Debug, Default)]
pub struct QsqlDialect {
    pg: PostgreSqlDialect,
}

impl Dialect for QsqlDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        self.pg.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.pg.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.pg.is_delimited_identifier_start(ch)
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_group_by_expr(&self) -> bool {
        true
    }
}

/// Parses one or more `;`-separated statements.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    Parser::parse_sql(&QsqlDialect::default(), sql).map_err(|e| syntax_error(e, sql))
}

fn syntax_error(e: ParserError, sql: &str) -> SqlError {
    let text = match e {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => {
            return SqlError::Syntax {
                message: "statement nested too deeply".into(),
                position: Position { line: 1, column: 1 },
            };
        }
    };
    // sqlparser appends " at Line: L, Column: C" to its messages.
    let (message, position) = match text.rfind(" at Line: ") {
        Some(at) => {
            let tail = &text[at + " at Line: ".len()..];
            let mut parts = tail.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let column = parts.next().and_then(|c| c.trim().parse().ok());
            match (line, column) {
                (Some(line), Some(column)) => (text[..at].to_string(), Position { line, column }),
                _ => (text.clone(), end_position(sql)),
            }
        }
        None => (text.clone(), end_position(sql)),
    };
    let message = message
        .strip_prefix("sql parser error: ")
        .unwrap_or(&message)
        .to_string();
    SqlError::Syntax { message, position }
}

/// The position just after the last character (for "unexpected end of input").
fn end_position(sql: &str) -> Position {
    let line = sql.lines().count().max(1) as u64;
    let column = sql.lines().last().map_or(0, |l| l.chars().count()) as u64 + 1;
    Position { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_syntax_errors_name_line_column_and_token() {
        let err = parse("SELECT 1;\nSELEC x FROM t").unwrap_err();
        let SqlError::Syntax { message, position } = &err else {
            panic!("{err}")
        };
        assert_eq!(position.line, 2, "{err}");
        assert_eq!(position.column, 1, "{err}");
        assert!(message.contains("SELEC"), "{message}");
        let err = parse("SELECT * FROM t WHERE").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert_eq!(err.code(), "syntax_error");
        assert_eq!(parse("SELECT 1; SELECT 2").unwrap().len(), 2);
    }
}
