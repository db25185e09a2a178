//! Parsing QSQL text with `sqlparser` and our dialect, with errors that name the line and
//! column and quote what was found.

use std::ops::ControlFlow;

use sqlparser::ast::{
    OptimizerHint, OptimizerHintStyle, Query, Select, SetExpr, Spanned, Statement, Visit, VisitMut,
    Visitor, VisitorMut,
};
use sqlparser::dialect::{Dialect, PostgreSqlDialect};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, Tokenizer};

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

    /// `SELECT /*+ QUANTUM_JOIN */ ...`: hints are comments starting with `+` right after the
    /// SELECT keyword, as in Oracle and MySQL.
    fn supports_comment_optimizer_hint(&self) -> bool {
        true
    }
}

/// The QSQL join keyword that asks the planner to order a FROM clause's joins with the
/// annealer. Reserved: quote it to use it as a name.
pub const QUANTUM_JOIN: &str = "QUANTUM_JOIN";

/// Parses one or more `;`-separated statements.
///
/// `a QUANTUM_JOIN b ON ...` is QSQL's own syntax: it parses as an inner `JOIN`, and the
/// SELECT whose FROM clause holds it gets the optimizer hint `/*+ QUANTUM_JOIN */`, the one
/// representation the planner reads (so both spellings plan, cache and print alike).
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let dialect = QsqlDialect::default();
    let mut tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| syntax_error(e.into(), sql))?;
    let mut quantum = Vec::new();
    for t in &mut tokens {
        if let Token::Word(w) = &t.token
            && w.quote_style.is_none()
            && w.value.eq_ignore_ascii_case(QUANTUM_JOIN)
        {
            quantum.push(t.span.start);
            t.token = Token::make_keyword("JOIN");
        }
    }
    let mut statements = Parser::new(&dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| syntax_error(e, sql))?;
    if !quantum.is_empty() {
        mark_quantum_joins(&mut statements, &quantum)?;
    }
    Ok(statements)
}

/// Whether a SELECT carries the `QUANTUM_JOIN` hint; `Some(argument)` if so (the text in
/// parentheses, e.g. the solver in `QUANTUM_JOIN(sqa)`, or empty).
///
/// # Errors
/// An unknown hint: a misspelt hint silently ignored would plan differently from what the
/// user asked for.
pub fn quantum_hint(select: &Select) -> Result<Option<String>> {
    let mut found = None;
    for hint in &select.optimizer_hints {
        if !hint.prefix.is_empty() {
            continue;
        }
        let text = hint.text.trim();
        if text.is_empty() {
            continue;
        }
        let (name, argument) = match text.split_once('(') {
            Some((name, rest)) => match rest.trim_end().strip_suffix(')') {
                Some(arg) => (name.trim(), arg.trim()),
                None => {
                    return Err(SqlError::Invalid(format!(
                        "optimizer hint {text:?} has an unclosed parenthesis"
                    )));
                }
            },
            None => (text, ""),
        };
        if !name.eq_ignore_ascii_case(QUANTUM_JOIN) {
            return Err(SqlError::Invalid(format!(
                "unknown optimizer hint {name:?}; QSQL knows QUANTUM_JOIN and QUANTUM_JOIN(swap|sa|sqa|pt)"
            )));
        }
        found = Some(argument.to_lowercase());
    }
    Ok(found)
}

/// Gives each SELECT whose FROM clause contained a `QUANTUM_JOIN` keyword (at `locations`)
/// the hint. The keyword belongs to the SELECT with the innermost FROM item whose span covers
/// it (of nested spans that cover a point, the innermost starts last); one outside every
/// FROM item is an error.
fn mark_quantum_joins(statements: &mut [Statement], locations: &[Location]) -> Result<()> {
    /// The span of each FROM item (table with its joins), with the index of its SELECT.
    struct Spans(Vec<(usize, sqlparser::tokenizer::Span)>, usize);
    impl Visitor for Spans {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            selects(&q.body, &mut |s| {
                for t in &s.from {
                    self.0.push((self.1, t.span()));
                }
                self.1 += 1;
            });
            ControlFlow::Continue(())
        }
    }
    struct Mark(Vec<bool>, usize);
    impl VisitorMut for Mark {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            selects_mut(&mut q.body, &mut |s| {
                if self.0[self.1]
                    && !s.optimizer_hints.iter().any(|h| {
                        h.prefix.is_empty() && h.text.trim().eq_ignore_ascii_case(QUANTUM_JOIN)
                    })
                {
                    s.optimizer_hints.push(OptimizerHint {
                        prefix: String::new(),
                        text: format!(" {QUANTUM_JOIN} "),
                        style: OptimizerHintStyle::MultiLine,
                    });
                }
                self.1 += 1;
            });
            ControlFlow::Continue(())
        }
    }
    let mut spans = Spans(Vec::new(), 0);
    for st in statements.iter() {
        let _ = st.visit(&mut spans);
    }
    let mut marked = vec![false; spans.1];
    for &at in locations {
        let innermost = spans
            .0
            .iter()
            .filter(|(_, s)| s.start <= at && at <= s.end)
            .max_by_key(|(_, s)| s.start)
            .map(|&(i, _)| i);
        match innermost {
            Some(i) => marked[i] = true,
            None => {
                return Err(SqlError::Syntax {
                    message: format!(
                        "{QUANTUM_JOIN} is only allowed between tables in a FROM clause"
                    ),
                    position: Position {
                        line: at.line,
                        column: at.column,
                    },
                });
            }
        }
    }
    let mut mark = Mark(marked, 0);
    for st in statements.iter_mut() {
        let _ = st.visit(&mut mark);
    }
    Ok(())
}

/// Calls `f` on every SELECT of a query body that is not inside a nested query (those are
/// visited as queries of their own).
fn selects(body: &SetExpr, f: &mut dyn FnMut(&Select)) {
    match body {
        SetExpr::Select(s) => f(s),
        SetExpr::SetOperation { left, right, .. } => {
            selects(left, f);
            selects(right, f);
        }
        _ => {}
    }
}

fn selects_mut(body: &mut SetExpr, f: &mut dyn FnMut(&mut Select)) {
    match body {
        SetExpr::Select(s) => f(s),
        SetExpr::SetOperation { left, right, .. } => {
            selects_mut(left, f);
            selects_mut(right, f);
        }
        _ => {}
    }
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
