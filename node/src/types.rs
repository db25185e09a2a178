//! SQL types and values.
//!
//! Integers of every width are held as `i64` and checked against their column's range on
//! write; REAL and DOUBLE PRECISION as `f64` (REAL rounded through `f32` on write); DECIMAL as
//! `rust_decimal::Decimal` (up to 28 significant digits); DATE as days since 1970-01-01;
//! TIMESTAMP (without time zone) as microseconds since 1970-01-01 00:00:00; JSON as validated,
//! compact text.

use std::cmp::Ordering;
use std::fmt;

use rust_decimal::Decimal;

/// A column or expression type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DataType {
    /// BOOLEAN.
    Boolean,
    /// SMALLINT (16-bit).
    SmallInt,
    /// INTEGER (32-bit).
    Integer,
    /// BIGINT (64-bit).
    BigInt,
    /// REAL (32-bit float).
    Real,
    /// DOUBLE PRECISION.
    Double,
    /// DECIMAL(precision, scale); `None` precision: up to 28 digits, any scale.
    Decimal(Option<(u8, u8)>),
    /// TEXT, or VARCHAR(n) with a maximum length in characters.
    Text(Option<u32>),
    /// BLOB / BYTEA.
    Blob,
    /// DATE.
    Date,
    /// TIMESTAMP (without time zone).
    Timestamp,
    /// JSON.
    Json,
    /// The type of a bare NULL literal, before anything gives it a type.
    Null,
}

impl DataType {
    /// True for the integer, floating-point and decimal types.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            DataType::SmallInt
                | DataType::Integer
                | DataType::BigInt
                | DataType::Real
                | DataType::Double
                | DataType::Decimal(_)
        )
    }

    /// True for the integer types.
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            DataType::SmallInt | DataType::Integer | DataType::BigInt
        )
    }

    /// The range an integer type holds.
    pub fn integer_range(&self) -> Option<(i64, i64)> {
        match self {
            DataType::SmallInt => Some((i16::MIN as i64, i16::MAX as i64)),
            DataType::Integer => Some((i32::MIN as i64, i32::MAX as i64)),
            DataType::BigInt => Some((i64::MIN, i64::MAX)),
            _ => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Boolean => f.write_str("BOOLEAN"),
            DataType::SmallInt => f.write_str("SMALLINT"),
            DataType::Integer => f.write_str("INTEGER"),
            DataType::BigInt => f.write_str("BIGINT"),
            DataType::Real => f.write_str("REAL"),
            DataType::Double => f.write_str("DOUBLE PRECISION"),
            DataType::Decimal(None) => f.write_str("DECIMAL"),
            DataType::Decimal(Some((p, s))) => write!(f, "DECIMAL({p},{s})"),
            DataType::Text(None) => f.write_str("TEXT"),
            DataType::Text(Some(n)) => write!(f, "VARCHAR({n})"),
            DataType::Blob => f.write_str("BLOB"),
            DataType::Date => f.write_str("DATE"),
            DataType::Timestamp => f.write_str("TIMESTAMP"),
            DataType::Json => f.write_str("JSON"),
            DataType::Null => f.write_str("NULL"),
        }
    }
}

/// A SQL value.
#[derive(Debug, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// Any integer type.
    Int(i64),
    /// REAL or DOUBLE PRECISION.
    Float(f64),
    /// DECIMAL.
    Decimal(Decimal),
    /// TEXT / VARCHAR.
    Text(String),
    /// BLOB.
    Blob(Vec<u8>),
    /// DATE: days since 1970-01-01.
    Date(i32),
    /// TIMESTAMP: microseconds since 1970-01-01 00:00:00.
    Timestamp(i64),
    /// JSON, as compact text.
    Json(String),
}

/// Written out so that copying the fixed-size variants (every integer, float, date and
/// timestamp the executor moves between rows) inlines into the caller; the derived `clone` is
/// one out-of-line call per value, which showed in every row-at-a-time profile.
impl Clone for Value {
    #[inline]
    fn clone(&self) -> Value {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            Value::Decimal(d) => Value::Decimal(*d),
            Value::Date(d) => Value::Date(*d),
            Value::Timestamp(t) => Value::Timestamp(*t),
            heap => heap.clone_heap(),
        }
    }
}

impl Value {
    /// The variants that own heap memory, copied out of line.
    #[inline(never)]
    fn clone_heap(&self) -> Value {
        match self {
            Value::Text(s) => Value::Text(s.clone()),
            Value::Blob(b) => Value::Blob(b.clone()),
            Value::Json(s) => Value::Json(s.clone()),
            fixed => fixed.clone(),
        }
    }

    /// `n` NULLs: the blank a row is decoded into. Built without `Clone` (which `vec![..; n]`
    /// calls once per element, out of line), as this runs once per row scanned.
    pub fn nulls(n: usize) -> Vec<Value> {
        std::iter::repeat_with(|| Value::Null).take(n).collect()
    }

    /// True for NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The natural type of this value (integers report BIGINT, floats DOUBLE).
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Null,
            Value::Bool(_) => DataType::Boolean,
            Value::Int(_) => DataType::BigInt,
            Value::Float(_) => DataType::Double,
            Value::Decimal(_) => DataType::Decimal(None),
            Value::Text(_) => DataType::Text(None),
            Value::Blob(_) => DataType::Blob,
            Value::Date(_) => DataType::Date,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::Json(_) => DataType::Json,
        }
    }

    /// SQL comparison: `None` if either side is NULL (unknown) or the types do not compare.
    /// Numbers of different kinds compare by value.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Float(a), Float(b)) => Some(float_cmp(*a, *b)),
            (Int(a), Float(b)) => Some(float_cmp(*a as f64, *b)),
            (Float(a), Int(b)) => Some(float_cmp(*a, *b as f64)),
            (Decimal(a), Decimal(b)) => Some(a.cmp(b)),
            (Int(a), Decimal(b)) => Some(rust_decimal::Decimal::from(*a).cmp(b)),
            (Decimal(a), Int(b)) => Some(a.cmp(&rust_decimal::Decimal::from(*b))),
            (Float(a), Decimal(b)) => Some(float_cmp(*a, decimal_to_f64(b))),
            (Decimal(a), Float(b)) => Some(float_cmp(decimal_to_f64(a), *b)),
            (Text(a), Text(b)) => Some(a.cmp(b)),
            (Blob(a), Blob(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Timestamp(a), Timestamp(b)) => Some(a.cmp(b)),
            (Date(a), Timestamp(b)) => Some((*a as i64 * MICROS_PER_DAY).cmp(b)),
            (Timestamp(a), Date(b)) => Some(a.cmp(&(*b as i64 * MICROS_PER_DAY))),
            (Json(a), Json(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// A total order for sorting and grouping: NULL first, then by type, then by value (NaN
    /// after every other float). Used where SQL needs an order even for NULLs.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        if let Some(o) = self.sql_cmp(other) {
            return o;
        }
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Less,
            (_, Value::Null) => Ordering::Greater,
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Float(a), _) if a.is_nan() => Ordering::Greater,
            (_, Value::Float(b)) if b.is_nan() => Ordering::Less,
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) | Value::Decimal(_) => 2,
            Value::Text(_) => 3,
            Value::Blob(_) => 4,
            Value::Date(_) | Value::Timestamp(_) => 5,
            Value::Json(_) => 6,
        }
    }

    /// A hashable, equality-preserving key for grouping, DISTINCT and hash joins: values equal
    /// under SQL comparison (1 = 1.0 = 1.00) get the same key. NULLs get one key.
    pub fn group_key(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0),
            Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
            Value::Int(i) => {
                out.push(2);
                out.extend_from_slice(&rust_decimal::Decimal::from(*i).normalize().serialize());
            }
            Value::Decimal(d) => {
                out.push(2);
                out.extend_from_slice(&d.normalize().serialize());
            }
            Value::Float(f) => match rust_decimal::Decimal::from_f64_retain(*f) {
                Some(d) if d.to_string().parse::<f64>().ok() == Some(*f) => {
                    out.push(2);
                    out.extend_from_slice(&d.normalize().serialize());
                }
                _ => {
                    out.push(3);
                    let f = if *f == 0.0 { 0.0 } else { *f };
                    out.extend_from_slice(&f.to_bits().to_le_bytes());
                }
            },
            Value::Text(s) => {
                out.push(4);
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Blob(b) => {
                out.push(5);
                out.extend_from_slice(&(b.len() as u64).to_le_bytes());
                out.extend_from_slice(b);
            }
            Value::Date(d) => {
                out.push(6);
                out.extend_from_slice(&(*d as i64 * MICROS_PER_DAY).to_le_bytes());
            }
            Value::Timestamp(t) => {
                out.push(6);
                out.extend_from_slice(&t.to_le_bytes());
            }
            Value::Json(s) => {
                out.push(7);
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    /// Three-valued truth: `Some(bool)` for a BOOLEAN, `None` for NULL.
    pub fn truth(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Orders floats as PostgreSQL does: NaN equals NaN and is greater than every number; -0 = 0.
fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).expect("not NaN"),
    }
}

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A decimal as the nearest f64.
pub fn decimal_to_f64(d: &Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(f64::NAN)
}

/// Formats a DATE (days since the epoch) as `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    match chrono::NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_FROM_CE) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => format!("<date {days}>"),
    }
}

/// Formats a TIMESTAMP (microseconds since the epoch) as `YYYY-MM-DD HH:MM:SS[.ffffff]`.
pub fn format_timestamp(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => {
            let t = t.naive_utc();
            if micros.rem_euclid(1_000_000) == 0 {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
            }
        }
        None => format!("<timestamp {micros}>"),
    }
}

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
pub const EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => {
                if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 {
                    write!(f, "{x:.1}")
                } else if x.is_nan() {
                    f.write_str("NaN")
                } else if x.is_infinite() {
                    f.write_str(if *x > 0.0 { "Infinity" } else { "-Infinity" })
                } else {
                    write!(f, "{x}")
                }
            }
            Value::Decimal(d) => write!(f, "{d}"),
            Value::Text(s) => f.write_str(s),
            Value::Blob(b) => {
                f.write_str("\\x")?;
                b.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
            Value::Date(d) => f.write_str(&format_date(*d)),
            Value::Timestamp(t) => f.write_str(&format_timestamp(*t)),
            Value::Json(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_numbers_compare_across_kinds_and_group_together() {
        let one_dec = Value::Decimal(Decimal::new(100, 2));
        assert_eq!(
            Value::Int(1).sql_cmp(&Value::Float(1.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(Value::Int(1).sql_cmp(&one_dec), Some(Ordering::Equal));
        assert_eq!(
            Value::Int(2).sql_cmp(&Value::Float(1.5)),
            Some(Ordering::Greater)
        );
        assert_eq!(Value::Null.sql_cmp(&Value::Int(1)), None);
        let key = |v: &Value| {
            let mut k = Vec::new();
            v.group_key(&mut k);
            k
        };
        assert_eq!(key(&Value::Int(1)), key(&one_dec));
        assert_eq!(key(&Value::Int(1)), key(&Value::Float(1.0)));
        assert_ne!(key(&Value::Int(1)), key(&Value::Float(1.5)));
        assert_ne!(key(&Value::Text("1".into())), key(&Value::Int(1)));
        assert_eq!(Value::Null.total_cmp(&Value::Int(-5)), Ordering::Less);
    }

    #[test]
    fn test_display_of_dates_and_timestamps() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(19_000), "2022-01-08");
        assert_eq!(format_timestamp(1_500_000), "1970-01-01 00:00:01.500000");
        assert_eq!(format_timestamp(-MICROS_PER_DAY), "1969-12-31 00:00:00");
        assert_eq!(Value::Float(2.0).to_string(), "2.0");
        assert_eq!(Value::Blob(vec![1, 0xab]).to_string(), "\\x01ab");
    }
}
