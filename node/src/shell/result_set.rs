//! The results the shell prints, whichever target produced them.
//!
//! An embedded session returns engine values ([`StatementResult`]); a server returns JSON. Both
//! become a [`ResultSet`] whose cells carry their text (what the table and CSV formats print)
//! and their JSON form (what the JSON format prints), so [`super::format`] has one code path
//! and the two targets print the same bytes for the same data.

use std::time::Duration;

use serde_json::Value as Json;

use super::format::json_value;
use crate::result::StatementResult;
use crate::types::Value;

/// One statement's outcome, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSet {
    /// Result columns (empty for statements that return no rows).
    pub columns: Vec<ResultColumn>,
    /// Rows of cells, in column order.
    pub rows: Vec<Vec<Cell>>,
    /// Rows inserted, updated or deleted.
    pub rows_affected: u64,
    /// What ran: `SELECT`, `INSERT`, `CREATE TABLE`, ...
    pub tag: String,
    /// Run time of the statement.
    pub elapsed: Duration,
    /// True when a server cut the rows short (its `limits.max_rows`).
    pub truncated: bool,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultColumn {
    /// Column name.
    pub name: String,
    /// SQL type name, as the engine writes it (`INTEGER`, `DECIMAL(10,2)`, `TEXT`).
    pub type_name: String,
    /// Whether the table format aligns the column to the right.
    pub numeric: bool,
}

impl ResultColumn {
    /// A column named `name` of the type `type_name`.
    pub fn new(name: impl Into<String>, type_name: impl Into<String>) -> ResultColumn {
        let type_name = type_name.into();
        ResultColumn {
            name: name.into(),
            numeric: is_numeric_type(&type_name),
            type_name,
        }
    }
}

/// True for the names of the integer, floating-point and decimal types (the ones
/// `DataType::is_numeric` accepts, as `DataType`'s `Display` writes them).
pub fn is_numeric_type(type_name: &str) -> bool {
    let name = type_name.trim().to_ascii_uppercase();
    matches!(
        name.as_str(),
        "SMALLINT" | "INTEGER" | "BIGINT" | "REAL" | "DOUBLE PRECISION" | "DECIMAL"
    ) || name.starts_with("DECIMAL(")
}

/// JSON null, for [`Cell::json`] of a NULL cell.
static JSON_NULL: Json = Json::Null;

/// One value of a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A value: its text (tables, CSV) and its JSON form (`--format json`).
    Value {
        /// The text form, as `Value`'s `Display` writes it.
        text: String,
        /// The JSON form (see [`super::format`] for the mapping).
        json: Json,
    },
}

impl Cell {
    /// The cell of an engine value.
    pub fn from_value(value: &Value) -> Cell {
        match value {
            Value::Null => Cell::Null,
            other => Cell::Value {
                text: other.to_string(),
                json: json_value(other),
            },
        }
    }

    /// The cell of a value a server sent as `json`, in a column of the type `type_name`.
    ///
    /// The server encodes values as [`json_value`] does; this undoes it for the text form, so
    /// that the table and CSV formats print what they print for an embedded database:
    /// integers as they are, floats as the engine writes them (`2.0`, `NaN`), JSON values as
    /// compact JSON, and strings (decimals, dates, timestamps, blobs, text) as they are.
    /// (A JSON `null` in a JSON column cannot be told from SQL NULL on the wire; it is NULL.)
    pub fn from_json(json: Json, type_name: &str) -> Cell {
        let text = match &json {
            Json::Null => return Cell::Null,
            _ if type_name.eq_ignore_ascii_case("JSON") => json.to_string(),
            Json::String(s) => s.clone(),
            Json::Bool(b) => b.to_string(),
            Json::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(u)) => u.to_string(),
                (None, None) => Value::Float(n.as_f64().unwrap_or(f64::NAN)).to_string(),
            },
            Json::Array(_) | Json::Object(_) => json.to_string(),
        };
        Cell::Value { text, json }
    }

    /// True for NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    /// The text form; `NULL` for NULL.
    pub fn text(&self) -> &str {
        match self {
            Cell::Null => "NULL",
            Cell::Value { text, .. } => text,
        }
    }

    /// The JSON form; `null` for NULL.
    pub fn json(&self) -> &Json {
        match self {
            Cell::Null => &JSON_NULL,
            Cell::Value { json, .. } => json,
        }
    }
}

impl From<&StatementResult> for ResultSet {
    fn from(result: &StatementResult) -> ResultSet {
        ResultSet {
            columns: result
                .columns
                .iter()
                .map(|c| ResultColumn::new(c.name.clone(), c.data_type.to_string()))
                .collect(),
            rows: result
                .rows
                .iter()
                .map(|row| row.iter().map(Cell::from_value).collect())
                .collect(),
            rows_affected: result.rows_affected,
            tag: result.tag.clone(),
            elapsed: result.elapsed,
            truncated: false,
        }
    }
}

impl From<StatementResult> for ResultSet {
    fn from(result: StatementResult) -> ResultSet {
        ResultSet::from(&result)
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::types::DataType;

    #[test]
    fn test_numeric_type_names_match_the_engine() {
        let types = [
            DataType::Boolean,
            DataType::SmallInt,
            DataType::Integer,
            DataType::BigInt,
            DataType::Real,
            DataType::Double,
            DataType::Decimal(None),
            DataType::Decimal(Some((10, 2))),
            DataType::Text(None),
            DataType::Text(Some(20)),
            DataType::Blob,
            DataType::Date,
            DataType::Timestamp,
            DataType::Json,
            DataType::Null,
        ];
        for t in types {
            assert_eq!(is_numeric_type(&t.to_string()), t.is_numeric(), "{t}");
        }
    }

    /// What the server sends for `value` (a column of type `data_type`) must print as the
    /// value does: the text and JSON of the cell built from the wire match the engine's.
    #[test]
    fn test_json_from_a_server_renders_as_the_engine_value() {
        let cases = [
            (Value::Bool(true), DataType::Boolean),
            (Value::Bool(false), DataType::Boolean),
            (Value::Int(-42), DataType::BigInt),
            (Value::Int(i64::MAX), DataType::BigInt),
            (Value::Float(2.0), DataType::Double),
            (Value::Float(2.5), DataType::Double),
            (Value::Float(-0.125), DataType::Real),
            (Value::Float(1e16), DataType::Double),
            (Value::Float(1.5e300), DataType::Double),
            (Value::Float(f64::NAN), DataType::Double),
            (Value::Float(f64::INFINITY), DataType::Double),
            (Value::Float(f64::NEG_INFINITY), DataType::Double),
            (
                Value::Decimal(Decimal::new(150, 2)),
                DataType::Decimal(None),
            ),
            (Value::Text("hello, \"world\"".into()), DataType::Text(None)),
            (Value::Text("42".into()), DataType::Text(None)),
            (Value::Text(String::new()), DataType::Text(None)),
            (Value::Blob(vec![0x0a, 0xff]), DataType::Blob),
            (Value::Date(19_000), DataType::Date),
            (Value::Timestamp(1_700_000_000_123_456), DataType::Timestamp),
            (Value::Json(r#"{"a":[1,2.5,"x"]}"#.into()), DataType::Json),
            (Value::Json(r#""just a string""#.into()), DataType::Json),
            (Value::Json("3".into()), DataType::Json),
            (Value::Null, DataType::Integer),
        ];
        for (value, data_type) in cases {
            let engine = Cell::from_value(&value);
            // Through the wire as the server sends it: serialised and parsed again.
            let wire: Json = serde_json::from_str(&json_value(&value).to_string()).unwrap();
            let remote = Cell::from_json(wire, &data_type.to_string());
            assert_eq!(remote.text(), engine.text(), "{value:?}");
            assert_eq!(remote.json(), engine.json(), "{value:?}");
        }
    }

    #[test]
    fn test_null_cells() {
        assert_eq!(Cell::from_json(Json::Null, "TEXT"), Cell::Null);
        assert_eq!(Cell::from_value(&Value::Null), Cell::Null);
        assert_eq!(Cell::Null.text(), "NULL");
        assert_eq!(Cell::Null.json(), &Json::Null);
        assert!(Cell::Null.is_null());
    }

    #[test]
    fn test_statement_results_convert() {
        let result = StatementResult {
            columns: vec![crate::result::ColumnInfo {
                name: "price".into(),
                data_type: DataType::Decimal(Some((10, 2))),
            }],
            rows: vec![vec![Value::Decimal(Decimal::new(5, 0))], vec![Value::Null]],
            rows_affected: 0,
            tag: "SELECT".into(),
            elapsed: Duration::from_millis(3),
        };
        let set = ResultSet::from(&result);
        assert_eq!(set.columns, [ResultColumn::new("price", "DECIMAL(10,2)")]);
        assert!(set.columns[0].numeric);
        assert_eq!(set.rows[0][0].text(), "5");
        assert_eq!(set.rows[0][0].json(), &Json::from("5"));
        assert!(set.rows[1][0].is_null());
        assert_eq!(set.elapsed, Duration::from_millis(3));
    }
}
