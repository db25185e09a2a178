//! `grover_search(table, column, predicate [, max_rows])`: a table function that finds rows by
//! simulating Grover's quantum search over the entries of an index.
//!
//! The items are the table's rows in the order of the index on `column`; the oracle marks the
//! rows for which `predicate` holds. Each answer row is found by the exponential search of
//! Boyer, Brassard, Høyer and Tapp (unknown number of marked items) on a state vector of
//! ⌈log₂ N⌉ qubits, then removed from the marked set for the next search.
//!
//! This is a classical simulation and is *slower* than scanning: building the oracle evaluates
//! the predicate on every row, and each Grover iteration touches all 2^q amplitudes. It exists
//! to show the algorithm's behaviour inside a query (oracle calls against √N) honestly, not to
//! speed anything up; `docs/quantum.md` says so.

use nq_quantum::grover::{ExponentialSearch, qubits_for};
use sqlparser::ast::{self, FunctionArg, FunctionArgExpr};

use crate::error::{Result, SqlError};
use crate::exec::{Ctx, Row, holds};
use crate::expr::Expr;

/// The table function's name.
pub const NAME: &str = "grover_search";

/// Seed of the first search; search `k` uses `SEED + k`, so a query returns the same rows
/// every time it runs on the same data.
const SEED: u64 = 0x6705_7E12;

/// Bytes of one simulated amplitude (`Complex<f64>`).
const AMPLITUDE_BYTES: usize = 16;

/// The literal arguments of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct GroverArgs {
    /// The table searched.
    pub table: String,
    /// The indexed column whose index orders the items.
    pub column: String,
    /// The predicate, as SQL over the table's columns.
    pub predicate: String,
    /// Most rows to find.
    pub max_rows: u64,
}

fn string_arg(arg: &FunctionArg, what: &str) -> Result<String> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(ast::Expr::Value(v))) => match &v.value {
            ast::Value::SingleQuotedString(s) => Ok(s.clone()),
            other => Err(SqlError::Invalid(format!(
                "{NAME}: the {what} must be a string literal, not {other}"
            ))),
        },
        other => Err(SqlError::Invalid(format!(
            "{NAME}: the {what} must be a string literal, not {other}"
        ))),
    }
}

impl GroverArgs {
    /// Reads `(table, column, predicate [, max_rows])`, all literals.
    ///
    /// # Errors
    /// Another number of arguments, or arguments that are not literals of the right kind.
    pub fn parse(args: &[FunctionArg]) -> Result<GroverArgs> {
        if !(3..=4).contains(&args.len()) {
            return Err(SqlError::Invalid(format!(
                "{NAME} takes (table, column, predicate [, max_rows]), got {} arguments",
                args.len()
            )));
        }
        let max_rows = match args.get(3) {
            None => 1,
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(ast::Expr::Value(v)))) => {
                match &v.value {
                    ast::Value::Number(n, _) => n.parse::<u64>().ok().filter(|&k| k >= 1),
                    _ => None,
                }
                .ok_or_else(|| {
                    SqlError::Invalid(format!(
                        "{NAME}: max_rows must be a positive integer literal, not {v}"
                    ))
                })?
            }
            Some(other) => {
                return Err(SqlError::Invalid(format!(
                    "{NAME}: max_rows must be a positive integer literal, not {other}"
                )));
            }
        };
        Ok(GroverArgs {
            table: string_arg(&args[0], "table name")?,
            column: string_arg(&args[1], "column name")?,
            predicate: string_arg(&args[2], "predicate")?,
            max_rows,
        })
    }
}

/// What one run did, for EXPLAIN ANALYZE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroverStats {
    /// Items searched (rows in the index).
    pub items: usize,
    /// Items the oracle marks.
    pub marked: usize,
    /// Qubits simulated.
    pub qubits: u32,
    /// Grover iterations (oracle calls) over all searches.
    pub oracle_calls: u64,
    /// Measurements over all searches.
    pub rounds: u64,
    /// Classical checks of measured items.
    pub classical_checks: u64,
    /// Searches run (one per row found, plus a last one that found nothing, if any).
    pub searches: u64,
}

impl GroverStats {
    /// The EXPLAIN ANALYZE annotation.
    pub fn describe(&self) -> String {
        format!(
            "items={} marked={} qubits={} searches={} oracle_calls={} measurements={} classical_checks={}",
            self.items,
            self.marked,
            self.qubits,
            self.searches,
            self.oracle_calls,
            self.rounds,
            self.classical_checks
        )
    }
}

/// Runs the searches over `rows` (the index's rows in order): up to `max_rows` rows for which
/// `predicate` holds, in the order they were found.
///
/// # Errors
/// The predicate's evaluation errors, the memory limit (rows plus the state vector),
/// cancellation between searches, and more items than the simulator's qubit limit allows.
pub fn search(
    rows: Vec<Row>,
    predicate: &Expr,
    max_rows: u64,
    ctx: &Ctx<'_>,
) -> Result<(Vec<Row>, GroverStats)> {
    let mut stats = GroverStats {
        items: rows.len(),
        ..GroverStats::default()
    };
    if rows.is_empty() {
        return Ok((Vec::new(), stats));
    }
    let mut marked = Vec::with_capacity(rows.len());
    for row in &rows {
        ctx.check()?;
        marked.push(holds(predicate, row, ctx)?);
    }
    stats.marked = marked.iter().filter(|&&m| m).count();
    let qubits = qubits_for(rows.len())
        .map_err(|e| SqlError::Unsupported(format!("{NAME} over {} rows: {e}", rows.len())))?;
    stats.qubits = qubits;
    // One state vector is alive at a time: each search allocates its own and frees it.
    ctx.charge(AMPLITUDE_BYTES << qubits, "Grover state vector")?;
    let mut found = vec![false; rows.len()];
    let mut out = Vec::new();
    for k in 0..max_rows {
        ctx.check()?;
        let search = ExponentialSearch {
            seed: SEED.wrapping_add(k),
            ..ExponentialSearch::default()
        };
        let outcome = search
            .run(rows.len(), |i| marked[i] && !found[i])
            .map_err(|e| SqlError::Unsupported(format!("{NAME}: {e}")))?;
        stats.searches += 1;
        stats.oracle_calls += outcome.oracle_calls;
        stats.rounds += outcome.rounds;
        stats.classical_checks += outcome.classical_checks;
        match outcome.found {
            Some(i) => {
                found[i] = true;
                out.push(i);
            }
            None => break,
        }
    }
    let mut rows: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
    let out: Vec<Row> = out.into_iter().filter_map(|i| rows[i].take()).collect();
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(sql: &str) -> Result<GroverArgs> {
        let stmt = crate::parse::parse(&format!("SELECT * FROM {NAME}({sql})"))
            .unwrap()
            .remove(0);
        let ast::Statement::Query(q) = stmt else {
            panic!()
        };
        let ast::SetExpr::Select(s) = *q.body else {
            panic!()
        };
        let ast::TableFactor::Table { args, .. } = &s.from[0].relation else {
            panic!()
        };
        GroverArgs::parse(&args.as_ref().unwrap().args)
    }

    #[test]
    fn test_arguments_are_literals() {
        let a = args("'t', 'email', 'id > 3', 5").unwrap();
        assert_eq!(
            a,
            GroverArgs {
                table: "t".into(),
                column: "email".into(),
                predicate: "id > 3".into(),
                max_rows: 5
            }
        );
        assert_eq!(args("'t', 'c', 'true'").unwrap().max_rows, 1);
        for bad in [
            "'t', 'c'",
            "t, 'c', 'p'",
            "'t', 'c', 'p', 0",
            "'t', 'c', 'p', 'x'",
        ] {
            assert!(args(bad).is_err(), "{bad}");
        }
    }
}
