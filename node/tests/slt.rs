//! Runs the sqllogictest files in `tests/slt/` against an embedded database: each file gets a
//! fresh database; `connection` records open more sessions on it (for transaction tests).
//! Expected errors may name our stable error code (`statement error serialization_failure`) or
//! a message fragment.

use std::path::Path;

use nq_node::{DataType, Engine, Session, SqlError, SqlExecutor, Value};
use sqllogictest::{DB, DBOutput, DefaultColumnType, Runner};

struct Slt {
    session: Session,
}

fn render(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Text(s) if s.is_empty() => "(empty)".into(),
        Value::Text(s) if s.contains(" ms") => mask_times(s),
        other => other.to_string(),
    }
}

/// Replaces the figure before every " ms" with `<t>`, so EXPLAIN ANALYZE lines compare.
fn mask_times(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(" ms") {
        let head = &rest[..at];
        let start = head
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(0, |i| i + 1);
        out.push_str(&head[..start]);
        out.push_str("<t> ms");
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

impl DB for Slt {
    type Error = SlError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SlError> {
        let mut results = self.session.execute(sql, &[]).map_err(SlError)?;
        let r = results
            .pop()
            .ok_or_else(|| SlError(SqlError::Invalid("empty statement".into())))?;
        if r.columns.is_empty() {
            return Ok(DBOutput::StatementComplete(r.rows_affected));
        }
        Ok(DBOutput::Rows {
            types: r
                .columns
                .iter()
                .map(|c| match c.data_type {
                    DataType::SmallInt | DataType::Integer | DataType::BigInt => {
                        DefaultColumnType::Integer
                    }
                    DataType::Real | DataType::Double | DataType::Decimal(_) => {
                        DefaultColumnType::FloatingPoint
                    }
                    DataType::Text(_) => DefaultColumnType::Text,
                    _ => DefaultColumnType::Any,
                })
                .collect(),
            rows: r
                .rows
                .iter()
                .map(|row| row.iter().map(render).collect())
                .collect(),
        })
    }

    fn error_sql_state(err: &SlError) -> Option<String> {
        Some(err.0.code().to_string())
    }
}

/// The error as sqllogictest sees it: the code first, so `statement error <code>` matches,
/// then the message.
#[derive(Debug)]
struct SlError(SqlError);

impl std::fmt::Display for SlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code(), self.0)
    }
}

impl std::error::Error for SlError {}

fn run_file(path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let mut runner = Runner::new(move || {
        let session = engine.session();
        async move { Ok::<_, SlError>(Slt { session }) }
    });
    if let Err(e) = runner.run_file(path) {
        panic!("{}: {}", path.display(), e.display(true));
    }
}

#[test]
fn test_sqllogictest_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", root.display());
    let only = std::env::var("SLT_FILE").ok();
    for f in files {
        if only
            .as_deref()
            .is_some_and(|o| !f.to_string_lossy().contains(o))
        {
            continue;
        }
        run_file(&f);
    }
}
