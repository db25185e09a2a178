//! Rendering statement results as an aligned table, CSV, or JSON.
//!
//! The input is a [`ResultSet`], which both targets (an embedded database, a server) produce,
//! so their output is the same.
//!
//! - **table**: psql's aligned layout. Headers are centred, numeric columns right-aligned, the
//!   rest left-aligned; NULL is shown as `NULL` (so it differs from an empty string); a value
//!   spanning lines marks each line that continues with `+`; a `(N rows)` footer and a blank
//!   line follow. A statement without result columns prints its command tag (`CREATE TABLE`,
//!   `INSERT 0 3`, `UPDATE 2`); an INSERT, UPDATE or DELETE with RETURNING prints its table and
//!   then its tag. Widths count characters, so double-width characters misalign columns.
//! - **csv**: a header line, then one line per row, ended by `\n`; fields quoted as RFC 4180
//!   says (when they hold `,`, `"`, CR or LF, with `"` doubled). NULL is an empty field and an
//!   empty string is `""`, as in psql. Statements without result columns print nothing.
//! - **json**: one object per statement and line,
//!   `{"columns":[{"name":..,"type":..}],"rows":[[..]],"rows_affected":n}`. Integers and
//!   floating-point values are JSON numbers (NaN and infinities, which JSON lacks, are the
//!   strings `"NaN"`, `"Infinity"`, `"-Infinity"`); DECIMAL values are strings, so no digit
//!   is lost to a reader's floating point; JSON values are embedded as JSON; NULL is `null`;
//!   the other types are their text form (dates `YYYY-MM-DD`, blobs `\x0a1b`).

use std::fmt::Write as _;

use super::Format;
use super::result_set::ResultSet;
use crate::types::Value;

/// Appends `result` in `format` to `out`.
pub fn render(result: &ResultSet, format: Format, out: &mut String) {
    match format {
        Format::Table => render_table(result, out),
        Format::Csv => render_csv(result, out),
        Format::Json => render_json(result, out),
    }
}

/// The psql-style command tag of a statement: `INSERT 0 3`, `UPDATE 2`, or the tag itself.
pub fn command_tag(result: &ResultSet) -> String {
    let tag = result.tag.trim();
    let count = result.rows_affected;
    match tag.to_ascii_uppercase().as_str() {
        // The 0 is where PostgreSQL once put an OID; psql users and tools expect it.
        "INSERT" => format!("INSERT 0 {count}"),
        "UPDATE" | "DELETE" | "MERGE" => format!("{tag} {count}"),
        "SELECT" => format!("SELECT {}", result.rows.len()),
        _ => tag.to_owned(),
    }
}

fn is_data_change(result: &ResultSet) -> bool {
    matches!(
        result.tag.trim().to_ascii_uppercase().as_str(),
        "INSERT" | "UPDATE" | "DELETE" | "MERGE"
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Center,
    Right,
}

fn render_table(result: &ResultSet, out: &mut String) {
    if result.columns.is_empty() {
        let tag = command_tag(result);
        if !tag.is_empty() {
            out.push_str(&tag);
            out.push('\n');
        }
        return;
    }
    let aligns: Vec<Align> = result
        .columns
        .iter()
        .map(|c| if c.numeric { Align::Right } else { Align::Left })
        .collect();
    let header: Vec<String> = result.columns.iter().map(|c| c.name.clone()).collect();
    let rows: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|row| row.iter().map(|cell| cell.text().to_owned()).collect())
        .collect();

    let mut widths: Vec<usize> = header.iter().map(|h| text_width(h)).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(text_width(cell));
        }
    }

    let header_aligns = vec![Align::Center; header.len()];
    table_row(&header, &widths, &header_aligns, out);
    let separator: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push_str(&separator.join("+"));
    out.push('\n');
    for row in &rows {
        table_row(row, &widths, &aligns, out);
    }
    let count = result.rows.len();
    let noun = if count == 1 { "row" } else { "rows" };
    let _ = writeln!(out, "({count} {noun})");
    out.push('\n');
    if is_data_change(result) {
        out.push_str(&command_tag(result));
        out.push('\n');
    }
}

/// The widest line of `text`, in characters.
fn text_width(text: &str) -> usize {
    text.split('\n')
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
}

/// Appends one table row, as many lines high as its tallest cell.
fn table_row(cells: &[String], widths: &[usize], aligns: &[Align], out: &mut String) {
    let lines: Vec<Vec<&str>> = cells.iter().map(|c| c.split('\n').collect()).collect();
    let height = lines.iter().map(Vec::len).max().unwrap_or(1);
    for line_index in 0..height {
        let mut line = String::new();
        for (column, cell_lines) in lines.iter().enumerate() {
            let text = cell_lines.get(line_index).copied().unwrap_or("");
            let continues = line_index + 1 < cell_lines.len();
            let last = column + 1 == lines.len();
            if column > 0 {
                line.push('|');
            }
            // No trailing spaces after the last column.
            if last && text.is_empty() && !continues {
                break;
            }
            line.push(' ');
            let padding = widths[column] - text.chars().count();
            let (before, after) = match aligns[column] {
                Align::Left => (0, padding),
                Align::Right => (padding, 0),
                Align::Center => (padding / 2, padding - padding / 2),
            };
            push_spaces(&mut line, before);
            line.push_str(text);
            if continues {
                push_spaces(&mut line, after);
                line.push('+');
            } else if !last {
                push_spaces(&mut line, after);
                line.push(' ');
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
}

fn push_spaces(line: &mut String, count: usize) {
    line.extend(std::iter::repeat_n(' ', count));
}

fn render_csv(result: &ResultSet, out: &mut String) {
    if result.columns.is_empty() {
        return;
    }
    for (i, column) in result.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&column.name, out);
    }
    out.push('\n');
    for row in &result.rows {
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if !cell.is_null() {
                csv_field(cell.text(), out);
            }
        }
        out.push('\n');
    }
}

/// Appends a CSV field, quoted if it must be (and when empty, so that it differs from NULL).
fn csv_field(text: &str, out: &mut String) {
    let needs_quotes = text.is_empty() || text.contains([',', '"', '\n', '\r']);
    if !needs_quotes {
        out.push_str(text);
        return;
    }
    out.push('"');
    out.push_str(&text.replace('"', "\"\""));
    out.push('"');
}

fn render_json(result: &ResultSet, out: &mut String) {
    out.push_str("{\"columns\":[");
    for (i, column) in result.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_string(&column.name, out);
        out.push_str(",\"type\":");
        json_string(&column.type_name, out);
        out.push('}');
    }
    out.push_str("],\"rows\":[");
    for (i, row) in result.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, cell) in row.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&cell.json().to_string());
        }
        out.push(']');
    }
    let _ = writeln!(out, "],\"rows_affected\":{}}}", result.rows_affected);
}

fn json_string(text: &str, out: &mut String) {
    out.push_str(&serde_json::Value::from(text).to_string());
}

/// A value as JSON (see the module documentation for the mapping).
pub fn json_value(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(x) => serde_json::Number::from_f64(*x)
            .map_or_else(|| Json::String(value.to_string()), Json::Number),
        Value::Json(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone()))
        }
        Value::Decimal(_)
        | Value::Text(_)
        | Value::Blob(_)
        | Value::Date(_)
        | Value::Timestamp(_) => Json::String(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rust_decimal::Decimal;

    use super::*;
    use crate::result::{ColumnInfo, StatementResult};
    use crate::types::DataType;

    fn result(columns: &[(&str, DataType)], rows: Vec<Vec<Value>>) -> StatementResult {
        StatementResult {
            columns: columns
                .iter()
                .map(|(name, data_type)| ColumnInfo {
                    name: (*name).to_owned(),
                    data_type: data_type.clone(),
                })
                .collect(),
            rows,
            rows_affected: 0,
            tag: "SELECT".into(),
            elapsed: Duration::ZERO,
        }
    }

    fn command(tag: &str, rows_affected: u64) -> StatementResult {
        StatementResult {
            rows_affected,
            tag: tag.into(),
            ..result(&[], vec![])
        }
    }

    fn check(result: &StatementResult, format: Format, expected: &str) {
        let mut out = String::new();
        render(&ResultSet::from(result), format, &mut out);
        assert_eq!(out, expected, "\n{out}");
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn sample() -> StatementResult {
        result(
            &[
                ("id", DataType::Integer),
                ("name", DataType::Text(None)),
                ("price", DataType::Decimal(Some((10, 2)))),
            ],
            vec![
                vec![
                    Value::Int(1),
                    text("apple"),
                    Value::Decimal(Decimal::new(150, 2)),
                ],
                vec![Value::Int(20), Value::Null, Value::Null],
                vec![
                    Value::Int(300),
                    text(""),
                    Value::Decimal(Decimal::new(5, 0)),
                ],
            ],
        )
    }

    #[test]
    fn test_table_aligns_numbers_right_and_shows_null() {
        check(
            &sample(),
            Format::Table,
            " id  | name  | price
-----+-------+-------
   1 | apple |  1.50
  20 | NULL  |  NULL
 300 |       |     5
(3 rows)

",
        );
    }

    #[test]
    fn test_table_with_one_row_and_with_none() {
        let one = result(&[("n", DataType::BigInt)], vec![vec![Value::Int(7)]]);
        check(&one, Format::Table, " n\n---\n 7\n(1 row)\n\n");
        let none = result(&[("name", DataType::Text(None))], vec![]);
        check(&none, Format::Table, " name\n------\n(0 rows)\n\n");
    }

    #[test]
    fn test_table_marks_lines_that_continue() {
        let multi = result(
            &[("a", DataType::Text(None)), ("b", DataType::Text(None))],
            vec![vec![text("x\nlonger"), text("p\nq")]],
        );
        check(
            &multi,
            Format::Table,
            "   a    | b\n--------+---\n x     +| p+\n longer | q\n(1 row)\n\n",
        );
        let ragged = result(
            &[("a", DataType::Text(None)), ("n", DataType::Integer)],
            vec![vec![text("x\ny"), Value::Int(10)]],
        );
        check(
            &ragged,
            Format::Table,
            " a | n\n---+----\n x+| 10\n y |\n(1 row)\n\n",
        );
    }

    #[test]
    fn test_table_prints_command_tags() {
        check(&command("CREATE TABLE", 0), Format::Table, "CREATE TABLE\n");
        check(&command("INSERT", 3), Format::Table, "INSERT 0 3\n");
        check(&command("DELETE", 2), Format::Table, "DELETE 2\n");
        check(&command("", 0), Format::Table, "");
        let mut returning = result(&[("id", DataType::Integer)], vec![vec![Value::Int(4)]]);
        returning.tag = "INSERT".into();
        returning.rows_affected = 1;
        check(
            &returning,
            Format::Table,
            " id\n----\n  4\n(1 row)\n\nINSERT 0 1\n",
        );
    }

    #[test]
    fn test_csv_quotes_as_rfc_4180_says() {
        check(
            &sample(),
            Format::Csv,
            "id,name,price\n1,apple,1.50\n20,,\n300,\"\",5\n",
        );
        let tricky = result(
            &[("a,b", DataType::Text(None))],
            vec![
                vec![text("say \"hi\"")],
                vec![text("two\nlines")],
                vec![text("cr\r")],
                vec![text("plain text")],
            ],
        );
        check(
            &tricky,
            Format::Csv,
            "\"a,b\"\n\"say \"\"hi\"\"\"\n\"two\nlines\"\n\"cr\r\"\nplain text\n",
        );
        check(&command("INSERT", 3), Format::Csv, "");
    }

    #[test]
    fn test_json_keeps_types() {
        check(
            &sample(),
            Format::Json,
            concat!(
                r#"{"columns":[{"name":"id","type":"INTEGER"},{"name":"name","type":"TEXT"},"#,
                r#"{"name":"price","type":"DECIMAL(10,2)"}],"rows":[[1,"apple","1.50"],"#,
                r#"[20,null,null],[300,"","5"]],"rows_affected":0}"#,
                "\n"
            ),
        );
        check(
            &command("INSERT", 3),
            Format::Json,
            "{\"columns\":[],\"rows\":[],\"rows_affected\":3}\n",
        );
    }

    #[test]
    fn test_json_values() {
        let cases = [
            (Value::Bool(true), "true"),
            (Value::Int(-5), "-5"),
            (Value::Float(2.5), "2.5"),
            (Value::Float(f64::NAN), r#""NaN""#),
            (Value::Float(f64::NEG_INFINITY), r#""-Infinity""#),
            (Value::Decimal(Decimal::new(12345, 4)), r#""1.2345""#),
            (Value::Json(r#"{"a":[1,2]}"#.into()), r#"{"a":[1,2]}"#),
            (Value::Blob(vec![0x0a, 0xff]), r#""\\x0aff""#),
            (Value::Date(0), r#""1970-01-01""#),
            (Value::Timestamp(1_000_000), r#""1970-01-01 00:00:01""#),
            (text("quote \" and \\"), r#""quote \" and \\""#),
        ];
        for (value, expected) in cases {
            assert_eq!(json_value(&value).to_string(), expected, "{value:?}");
        }
    }
}
