//! Scalar functions (`lower(x)`, `round(x, 2)`, `date_trunc('month', t)`, ...) and LIKE.
//!
//! [`call`] runs a function by its lowercase name, [`arity`] says how many arguments it takes
//! and [`return_type`] what it returns for given argument types, so the planner can check a
//! call before it runs. Behaviour follows PostgreSQL:
//!
//! - Functions return NULL when any argument is NULL, except `concat`, `concat_ws` (NULL
//!   arguments are skipped; a NULL separator gives NULL) and `greatest`/`least` (NULLs are
//!   ignored; all NULL gives NULL).
//! - Text functions count characters (Unicode scalar values), not bytes; `octet_length` counts
//!   bytes. Positions are 1-based.
//! - `position(string, substring)` takes its arguments in `strpos` order, as PostgreSQL's
//!   rewrite of `POSITION(substring IN string)` does; `trim(string[, characters])` is
//!   `btrim`.
//! - `round(float)` rounds half to even (as PostgreSQL's float `round` does); `round(x, n)`
//!   and the decimal `round` round half away from zero. `round`/`trunc` with a digit count
//!   turn integers into decimals.
//! - `sqrt`, `exp`, `ln`, `log`, `power` compute in DOUBLE PRECISION for every numeric input.
//! - `now()`/`current_timestamp` and `current_date` read the wall clock in UTC on every call.
//! - `date_part` returns DOUBLE PRECISION and `extract` DECIMAL (PostgreSQL 14 and later);
//!   their source and `date_trunc`'s may be a DATE, a TIMESTAMP or text that casts to one.
//!
//! Unknown functions and wrong argument counts are [`SqlError::UnknownFunction`]; arguments of
//! the wrong type are [`SqlError::TypeMismatch`]; domain errors (square root of a negative
//! number, logarithm of zero) are [`SqlError::Invalid`].

use std::cmp::Ordering;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::arith;
use crate::cast::{cast, common_type, date_to_days, days_to_date, quote, value_to_text};
use crate::error::{Result, SqlError};
use crate::types::{DataType, MICROS_PER_DAY, Value, decimal_to_f64};

/// The longest text `repeat`, `lpad` and `rpad` build, in bytes (PostgreSQL's limit too).
const MAX_RESULT_BYTES: usize = 1 << 30;

/// Every function: name, fewest arguments, most arguments (`None`: no limit).
const FUNCTIONS: &[(&str, usize, Option<usize>)] = &[
    // text
    ("lower", 1, Some(1)),
    ("upper", 1, Some(1)),
    ("length", 1, Some(1)),
    ("char_length", 1, Some(1)),
    ("character_length", 1, Some(1)),
    ("octet_length", 1, Some(1)),
    ("substr", 2, Some(3)),
    ("substring", 2, Some(3)),
    ("trim", 1, Some(2)),
    ("btrim", 1, Some(2)),
    ("ltrim", 1, Some(2)),
    ("rtrim", 1, Some(2)),
    ("replace", 3, Some(3)),
    ("concat", 1, None),
    ("concat_ws", 1, None),
    ("position", 2, Some(2)),
    ("strpos", 2, Some(2)),
    ("left", 2, Some(2)),
    ("right", 2, Some(2)),
    ("lpad", 2, Some(3)),
    ("rpad", 2, Some(3)),
    ("reverse", 1, Some(1)),
    ("repeat", 2, Some(2)),
    ("initcap", 1, Some(1)),
    ("starts_with", 2, Some(2)),
    // numbers
    ("abs", 1, Some(1)),
    ("ceil", 1, Some(1)),
    ("ceiling", 1, Some(1)),
    ("floor", 1, Some(1)),
    ("round", 1, Some(2)),
    ("trunc", 1, Some(2)),
    ("sqrt", 1, Some(1)),
    ("power", 2, Some(2)),
    ("pow", 2, Some(2)),
    ("exp", 1, Some(1)),
    ("ln", 1, Some(1)),
    ("log", 1, Some(2)),
    ("mod", 2, Some(2)),
    ("sign", 1, Some(1)),
    ("pi", 0, Some(0)),
    ("greatest", 1, None),
    ("least", 1, None),
    // dates and times
    ("now", 0, Some(0)),
    ("current_timestamp", 0, Some(0)),
    ("current_date", 0, Some(0)),
    ("date_part", 2, Some(2)),
    ("extract", 2, Some(2)),
    ("date_trunc", 2, Some(2)),
    // json
    ("json_extract_path_text", 2, None),
    ("json_typeof", 1, Some(1)),
];

/// How many arguments function `name` takes: (fewest, most), `None` for no upper limit; `None`
/// for an unknown function.
pub fn arity(name: &str) -> Option<(usize, Option<usize>)> {
    FUNCTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, min, max)| (*min, *max))
}

/// Calls function `name` (lowercase) on `args`.
///
/// # Errors
///
/// [`SqlError::UnknownFunction`] for an unknown name or a wrong argument count,
/// [`SqlError::TypeMismatch`] for an argument of the wrong type, and the function's own
/// errors (overflow, invalid input, domain errors).
pub fn call(name: &str, args: &[Value]) -> Result<Value> {
    check_arity(name, args)?;
    let lenient = matches!(name, "concat" | "concat_ws" | "greatest" | "least");
    if !lenient && args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let a = Args { name, args };
    match name {
        "lower" => Ok(Value::Text(a.text(0)?.to_lowercase())),
        "upper" => Ok(Value::Text(a.text(0)?.to_uppercase())),
        "length" | "char_length" | "character_length" => match &args[0] {
            Value::Blob(b) => Ok(count(b.len())),
            _ => Ok(count(a.text(0)?.chars().count())),
        },
        "octet_length" => match &args[0] {
            Value::Blob(b) => Ok(count(b.len())),
            _ => Ok(count(a.text(0)?.len())),
        },
        "substr" | "substring" => substr(&a),
        "trim" | "btrim" => trim(&a, true, true),
        "ltrim" => trim(&a, true, false),
        "rtrim" => trim(&a, false, true),
        "replace" => {
            let (s, from, to) = (a.text(0)?, a.text(1)?, a.text(2)?);
            let out = if from.is_empty() {
                s.to_string()
            } else {
                s.replace(from, to)
            };
            Ok(Value::Text(out))
        }
        "concat" => Ok(Value::Text(args.iter().filter_map(value_to_text).collect())),
        "concat_ws" => {
            let Some(separator) = value_to_text(&args[0]) else {
                return Ok(Value::Null);
            };
            let parts: Vec<String> = args[1..].iter().filter_map(value_to_text).collect();
            Ok(Value::Text(parts.join(&separator)))
        }
        "position" | "strpos" => {
            let (s, needle) = (a.text(0)?, a.text(1)?);
            let found = s
                .find(needle)
                .map_or(0, |byte| s[..byte].chars().count() + 1);
            Ok(count(found))
        }
        "left" | "right" => left_right(&a, name == "left"),
        "lpad" | "rpad" => pad(&a, name == "lpad"),
        "reverse" => Ok(Value::Text(a.text(0)?.chars().rev().collect())),
        "repeat" => {
            let (s, n) = (a.text(0)?, a.int(1)?);
            let n = usize::try_from(n).unwrap_or(0);
            check_size(s.len().saturating_mul(n))?;
            Ok(Value::Text(s.repeat(n)))
        }
        "initcap" => Ok(Value::Text(initcap(a.text(0)?))),
        "starts_with" => Ok(Value::Bool(a.text(0)?.starts_with(a.text(1)?))),
        "abs" => match a.num(0)? {
            Num::Int(i) => i
                .checked_abs()
                .map(Value::Int)
                .ok_or_else(|| SqlError::Overflow(DataType::BigInt.to_string())),
            Num::Dec(d) => Ok(Value::Decimal(d.abs())),
            Num::Float(x) => Ok(Value::Float(x.abs())),
        },
        "ceil" | "ceiling" => Ok(match a.num(0)? {
            Num::Int(i) => Value::Int(i),
            Num::Dec(d) => Value::Decimal(d.ceil()),
            Num::Float(x) => Value::Float(x.ceil()),
        }),
        "floor" => Ok(match a.num(0)? {
            Num::Int(i) => Value::Int(i),
            Num::Dec(d) => Value::Decimal(d.floor()),
            Num::Float(x) => Value::Float(x.floor()),
        }),
        "round" => round_or_trunc(&a, RoundingStrategy::MidpointAwayFromZero),
        "trunc" => round_or_trunc(&a, RoundingStrategy::ToZero),
        "sqrt" => {
            let x = a.float(0)?;
            if x < 0.0 {
                return Err(domain("cannot take square root of a negative number"));
            }
            Ok(Value::Float(x.sqrt()))
        }
        "exp" => {
            let x = a.float(0)?;
            finite_result(x.exp(), x.is_finite())
        }
        "ln" => {
            let x = a.float(0)?;
            check_log_argument(x)?;
            Ok(Value::Float(x.ln()))
        }
        "log" => {
            if args.len() == 1 {
                let x = a.float(0)?;
                check_log_argument(x)?;
                return Ok(Value::Float(x.log10()));
            }
            let (base, x) = (a.float(0)?, a.float(1)?);
            check_log_argument(base)?;
            check_log_argument(x)?;
            if base == 1.0 {
                return Err(SqlError::DivisionByZero);
            }
            Ok(Value::Float(x.ln() / base.ln()))
        }
        "power" | "pow" => {
            let (x, y) = (a.float(0)?, a.float(1)?);
            if x == 0.0 && y < 0.0 {
                return Err(domain("zero raised to a negative power is undefined"));
            }
            if x < 0.0 && y.is_finite() && y.fract() != 0.0 {
                return Err(domain(
                    "a negative number raised to a non-integer power yields a complex result",
                ));
            }
            finite_result(x.powf(y), x.is_finite() && y.is_finite())
        }
        "mod" => {
            a.num(0)?;
            a.num(1)?;
            arith::rem(&args[0], &args[1])
        }
        "sign" => Ok(match a.num(0)? {
            Num::Int(i) => Value::Int(i.signum()),
            Num::Dec(d) => Value::Decimal(if d.is_zero() {
                Decimal::ZERO
            } else if d.is_sign_negative() {
                Decimal::NEGATIVE_ONE
            } else {
                Decimal::ONE
            }),
            Num::Float(x) => Value::Float(if x == 0.0 || x.is_nan() {
                x
            } else {
                x.signum()
            }),
        }),
        "pi" => Ok(Value::Float(std::f64::consts::PI)),
        "greatest" => extreme(&a, Ordering::Greater),
        "least" => extreme(&a, Ordering::Less),
        "now" | "current_timestamp" => Ok(Value::Timestamp(chrono::Utc::now().timestamp_micros())),
        "current_date" => Ok(Value::Date(date_to_days(chrono::Utc::now().date_naive()))),
        "date_part" => Ok(Value::Float(decimal_to_f64(&date_part(&a)?))),
        "extract" => Ok(Value::Decimal(date_part(&a)?)),
        "date_trunc" => date_trunc(&a),
        "json_extract_path_text" => json_extract_path_text(&a),
        "json_typeof" => {
            let json = a.json(0)?;
            Ok(Value::Text(
                match json {
                    serde_json::Value::Null => "null",
                    serde_json::Value::Bool(_) => "boolean",
                    serde_json::Value::Number(_) => "number",
                    serde_json::Value::String(_) => "string",
                    serde_json::Value::Array(_) => "array",
                    serde_json::Value::Object(_) => "object",
                }
                .to_string(),
            ))
        }
        _ => unreachable!("check_arity refuses names missing from FUNCTIONS: {name}"),
    }
}

/// The type function `name` returns for arguments of types `args`; `None` if the function is
/// unknown, the argument count is wrong, or an argument's type does not fit. NULL-typed
/// arguments fit anywhere.
pub fn return_type(name: &str, args: &[DataType]) -> Option<DataType> {
    use DataType::*;
    use Kind::{Any, Int, Json as J, Num as N, Temporal, Text as T, TextOrBlob as TB};
    let (min, max) = arity(name)?;
    if args.len() < min || max.is_some_and(|max| args.len() > max) {
        return None;
    }
    let fits = |kinds: &[Kind], result: DataType| signature_fits(args, kinds).then_some(result);
    let first = args.first().cloned().unwrap_or(Null);
    match name {
        "lower" | "upper" | "reverse" | "initcap" | "trim" | "btrim" | "ltrim" | "rtrim"
        | "replace" => fits(&[T], Text(None)),
        "length" | "char_length" | "character_length" | "octet_length" => fits(&[TB], Integer),
        "substr" | "substring" if first == Blob => fits(&[TB, Int], Blob),
        "substr" | "substring" => fits(&[T, Int], Text(None)),
        "concat" | "concat_ws" => fits(&[Any], Text(None)),
        "position" | "strpos" => fits(&[T], Integer),
        "left" | "right" | "repeat" => fits(&[T, Int], Text(None)),
        "lpad" | "rpad" => fits(&[T, Int, T], Text(None)),
        "starts_with" => fits(&[T], Boolean),
        "abs" | "ceil" | "ceiling" | "floor" | "sign" => fits(&[N], same_number(&first)),
        "round" | "trunc" if args.len() == 1 => fits(&[N], same_number(&first)),
        "round" | "trunc" => {
            let result = if matches!(first, Real | Double) {
                Double
            } else {
                Decimal(None)
            };
            fits(&[N, Int], result)
        }
        "sqrt" | "power" | "pow" | "exp" | "ln" | "log" | "pi" => fits(&[N], Double),
        "mod" => {
            let result = args.iter().try_fold(Null, |acc, t| common_type(&acc, t))?;
            fits(&[N], same_number(&result))
        }
        "greatest" | "least" => args.iter().try_fold(Null, |acc, t| common_type(&acc, t)),
        "now" | "current_timestamp" => Some(Timestamp),
        "current_date" => Some(Date),
        "date_part" => fits(&[T, Temporal], Double),
        "extract" => fits(&[T, Temporal], Decimal(None)),
        "date_trunc" => fits(&[T, Temporal], Timestamp),
        "json_extract_path_text" => fits(&[J, Any], Text(None)),
        "json_typeof" => fits(&[J], Text(None)),
        _ => None,
    }
}

/// The result type of a numeric function that keeps its argument's kind of number.
fn same_number(t: &DataType) -> DataType {
    match t {
        t if t.is_integer() => DataType::BigInt,
        DataType::Decimal(_) => DataType::Decimal(None),
        DataType::Real => DataType::Real,
        DataType::Null => DataType::Null,
        _ => DataType::Double,
    }
}

/// What an argument position accepts, for [`return_type`].
#[derive(Clone, Copy)]
enum Kind {
    Text,
    TextOrBlob,
    /// A whole number; decimals and floats pass the type check and are checked by value.
    Int,
    Num,
    /// A DATE, a TIMESTAMP, or text that casts to one.
    Temporal,
    /// JSON, or text that parses as JSON.
    Json,
    Any,
}

/// True if every argument fits the kind at its position (the last kind repeats).
fn signature_fits(args: &[DataType], kinds: &[Kind]) -> bool {
    args.iter().enumerate().all(|(i, t)| {
        let kind = kinds.get(i).or(kinds.last()).copied().unwrap_or(Kind::Any);
        *t == DataType::Null
            || match kind {
                Kind::Text => matches!(t, DataType::Text(_)),
                Kind::TextOrBlob => matches!(t, DataType::Text(_) | DataType::Blob),
                Kind::Int | Kind::Num => t.is_numeric(),
                Kind::Temporal => {
                    matches!(t, DataType::Date | DataType::Timestamp | DataType::Text(_))
                }
                Kind::Json => matches!(t, DataType::Json | DataType::Text(_)),
                Kind::Any => true,
            }
    })
}

fn check_arity(name: &str, args: &[Value]) -> Result<()> {
    let Some((min, max)) = arity(name) else {
        let types: Vec<String> = args.iter().map(|v| v.data_type().to_string()).collect();
        return Err(SqlError::UnknownFunction(format!(
            "{name}({}) does not exist",
            types.join(", ")
        )));
    };
    let n = args.len();
    if n >= min && max.is_none_or(|max| n <= max) {
        return Ok(());
    }
    let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
    let expected = match max {
        Some(max) if max == min => format!("{min} {}", plural(min)),
        Some(max) => format!("{min} to {max} arguments"),
        None => format!("at least {min} {}", plural(min)),
    };
    Err(SqlError::UnknownFunction(format!(
        "{name} takes {expected}, got {n}"
    )))
}

fn count(n: usize) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn domain(message: &str) -> SqlError {
    SqlError::Invalid(message.to_string())
}

fn check_size(bytes: usize) -> Result<()> {
    if bytes > MAX_RESULT_BYTES {
        return Err(domain("requested length too large"));
    }
    Ok(())
}

/// A float result, refusing infinity computed from finite inputs.
fn finite_result(x: f64, inputs_finite: bool) -> Result<Value> {
    if x.is_infinite() && inputs_finite {
        return Err(SqlError::Overflow(DataType::Double.to_string()));
    }
    Ok(Value::Float(x))
}

fn check_log_argument(x: f64) -> Result<()> {
    if x == 0.0 {
        return Err(domain("cannot take logarithm of zero"));
    }
    if x < 0.0 {
        return Err(domain("cannot take logarithm of a negative number"));
    }
    Ok(())
}

/// A number argument.
enum Num {
    Int(i64),
    Dec(Decimal),
    Float(f64),
}

/// A call's arguments, with typed accessors that report the function and position on a
/// type error. Callers have already returned NULL for NULL arguments where the function is
/// strict.
struct Args<'a> {
    name: &'a str,
    args: &'a [Value],
}

impl<'a> Args<'a> {
    fn mismatch(&self, i: usize, expected: &str) -> SqlError {
        SqlError::TypeMismatch(format!(
            "argument {} of {} must be {expected}, not {}",
            i + 1,
            self.name,
            self.args[i].data_type()
        ))
    }

    fn text(&self, i: usize) -> Result<&'a str> {
        match &self.args[i] {
            Value::Text(s) => Ok(s),
            _ => Err(self.mismatch(i, "TEXT")),
        }
    }

    /// A whole number: an integer, or a decimal or float with no fraction.
    fn int(&self, i: usize) -> Result<i64> {
        let whole = match &self.args[i] {
            Value::Int(n) => Some(*n),
            Value::Decimal(d) if d.fract().is_zero() => d.to_i64(),
            // Every whole float in (-2^63, 2^63) converts exactly.
            Value::Float(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => Some(*x as i64),
            _ => None,
        };
        whole.ok_or_else(|| self.mismatch(i, "an integer"))
    }

    fn num(&self, i: usize) -> Result<Num> {
        match &self.args[i] {
            Value::Int(n) => Ok(Num::Int(*n)),
            Value::Decimal(d) => Ok(Num::Dec(*d)),
            Value::Float(x) => Ok(Num::Float(*x)),
            _ => Err(self.mismatch(i, "a number")),
        }
    }

    fn float(&self, i: usize) -> Result<f64> {
        Ok(match self.num(i)? {
            Num::Int(n) => n as f64,
            Num::Dec(d) => decimal_to_f64(&d),
            Num::Float(x) => x,
        })
    }

    /// A DATE or TIMESTAMP (text casts to a timestamp) as microseconds since the epoch, and
    /// whether it was a date.
    fn temporal(&self, i: usize) -> Result<(i64, bool)> {
        match &self.args[i] {
            Value::Date(d) => Ok((i64::from(*d) * MICROS_PER_DAY, true)),
            Value::Timestamp(t) => Ok((*t, false)),
            text @ Value::Text(_) => match cast(text, &DataType::Timestamp)? {
                Value::Timestamp(t) => Ok((t, false)),
                _ => unreachable!("a cast to TIMESTAMP gives a timestamp"),
            },
            _ => Err(self.mismatch(i, "a DATE or TIMESTAMP")),
        }
    }

    fn json(&self, i: usize) -> Result<serde_json::Value> {
        match &self.args[i] {
            Value::Json(s) | Value::Text(s) => {
                serde_json::from_str(s).map_err(|_| SqlError::InvalidCast {
                    value: quote(s),
                    target: DataType::Json.to_string(),
                })
            }
            _ => Err(self.mismatch(i, "JSON")),
        }
    }
}

/// The character range `[start, start + len)`, 1-based, clipped to `[1, n]`, as 0-based
/// indexes.
fn substr_range(n: usize, start: i64, len: Option<i64>) -> Result<(usize, usize)> {
    let n = n as i128;
    let start = i128::from(start);
    let end = match len {
        Some(len) if len < 0 => {
            return Err(domain("negative substring length not allowed"));
        }
        Some(len) => start + i128::from(len),
        None => n + 1,
    };
    let from = start.clamp(1, n + 1) - 1;
    let to = end.clamp(1, n + 1) - 1;
    Ok((from as usize, to.max(from) as usize))
}

fn substr(a: &Args<'_>) -> Result<Value> {
    let start = a.int(1)?;
    let len = if a.args.len() == 3 {
        Some(a.int(2)?)
    } else {
        None
    };
    if let Value::Blob(bytes) = &a.args[0] {
        let (from, to) = substr_range(bytes.len(), start, len)?;
        return Ok(Value::Blob(bytes[from..to].to_vec()));
    }
    let s = a.text(0)?;
    let (from, to) = substr_range(s.chars().count(), start, len)?;
    Ok(Value::Text(s.chars().skip(from).take(to - from).collect()))
}

fn trim(a: &Args<'_>, left: bool, right: bool) -> Result<Value> {
    let s = a.text(0)?;
    let characters: Vec<char> = if a.args.len() == 2 {
        a.text(1)?.chars().collect()
    } else {
        vec![' ']
    };
    let strip = |c: char| characters.contains(&c);
    let mut out = s;
    if left {
        out = out.trim_start_matches(strip);
    }
    if right {
        out = out.trim_end_matches(strip);
    }
    Ok(Value::Text(out.to_string()))
}

/// `left(s, n)`: the first `n` characters, or all but the last `-n`; `right` mirrors it.
fn left_right(a: &Args<'_>, left: bool) -> Result<Value> {
    let (s, n) = (a.text(0)?, a.int(1)?);
    let len = s.chars().count();
    let magnitude = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    let keep = if n >= 0 {
        magnitude.min(len)
    } else {
        len.saturating_sub(magnitude)
    };
    let out = if left {
        s.chars().take(keep).collect()
    } else {
        s.chars().skip(len - keep).collect()
    };
    Ok(Value::Text(out))
}

/// `lpad(s, n[, fill])`: `s` filled on the left to `n` characters (cut to `n` if longer);
/// `rpad` fills on the right.
fn pad(a: &Args<'_>, left: bool) -> Result<Value> {
    let (s, n) = (a.text(0)?, a.int(1)?);
    let fill = if a.args.len() == 3 { a.text(2)? } else { " " };
    let target = usize::try_from(n).unwrap_or(0);
    let len = s.chars().count();
    if target <= len {
        return Ok(Value::Text(s.chars().take(target).collect()));
    }
    if fill.is_empty() {
        return Ok(Value::Text(s.to_string()));
    }
    let pad_chars = target - len;
    let fill_chars = fill.chars().count();
    let partial: usize = fill
        .chars()
        .take(pad_chars % fill_chars)
        .map(char::len_utf8)
        .sum();
    check_size(
        (pad_chars / fill_chars)
            .saturating_mul(fill.len())
            .saturating_add(partial)
            .saturating_add(s.len()),
    )?;
    let padding: String = fill.chars().cycle().take(pad_chars).collect();
    let out = if left {
        padding + s
    } else {
        format!("{s}{padding}")
    };
    Ok(Value::Text(out))
}

/// Upper-cases the first letter of each run of letters and digits, lower-cases the rest.
fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        if in_word {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        in_word = c.is_alphanumeric();
    }
    out
}

fn round_or_trunc(a: &Args<'_>, strategy: RoundingStrategy) -> Result<Value> {
    let rounding = strategy == RoundingStrategy::MidpointAwayFromZero;
    if a.args.len() == 1 {
        return Ok(match a.num(0)? {
            Num::Int(i) => Value::Int(i),
            Num::Dec(d) => Value::Decimal(d.round_dp_with_strategy(0, strategy)),
            Num::Float(x) if rounding => Value::Float(x.round_ties_even()),
            Num::Float(x) => Value::Float(x.trunc()),
        });
    }
    let digits = a.int(1)?;
    match a.num(0)? {
        Num::Int(i) => round_decimal(Decimal::from(i), digits, strategy).map(Value::Decimal),
        Num::Dec(d) => round_decimal(d, digits, strategy).map(Value::Decimal),
        Num::Float(x) if !x.is_finite() => Ok(Value::Float(x)),
        Num::Float(x) => round_float(x, digits, strategy).map(Value::Float),
    }
}

/// Rounds (or truncates) a finite float to `digits` decimal places in decimal arithmetic, so
/// `round(2.675, 2)` is 2.68 as written rather than 2.67 as stored in binary.
fn round_float(x: f64, digits: i64, strategy: RoundingStrategy) -> Result<f64> {
    // x = mantissa * 10^exponent with the shortest mantissa that reads back as x, so rounding
    // x to n places is rounding the mantissa to n + exponent places.
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("the LowerExp form of a finite float has an exponent");
    let exponent: i64 = exponent
        .parse()
        .expect("the LowerExp exponent is an integer");
    let mantissa = Decimal::from_str(mantissa).expect("a float mantissa has at most 17 digits");
    let rounded = round_decimal(mantissa, digits.saturating_add(exponent), strategy)?;
    Ok(format!("{rounded}e{exponent}")
        .parse()
        .expect("a decimal with an exponent parses as a float"))
}

/// Rounds (or truncates) `d` to `digits` decimal places; negative `digits` round to tens,
/// hundreds, ... Non-negative `digits` also set the scale (`round(2.5, 2)` is `2.50`).
fn round_decimal(d: Decimal, digits: i64, strategy: RoundingStrategy) -> Result<Decimal> {
    if digits >= 0 {
        let places = u32::try_from(digits.min(28)).expect("at most 28");
        let mut rounded = d.round_dp_with_strategy(places, strategy);
        if rounded.scale() < places {
            rounded.rescale(places);
        }
        return Ok(rounded);
    }
    // Work on the mantissa: d = m / 10^s, and the result is round(m / 10^(s + k)) * 10^k.
    let k = u32::try_from(digits.unsigned_abs()).unwrap_or(u32::MAX);
    let shift = d.scale().saturating_add(k);
    if shift > 38 {
        // |m| < 2^96 < 10^29, so m / 10^(s + k) is far below a half.
        return Ok(Decimal::ZERO);
    }
    let m = d.mantissa();
    let divisor = 10_i128.pow(shift);
    let mut q = m / divisor;
    let r = m % divisor;
    if strategy == RoundingStrategy::MidpointAwayFromZero && r.abs() * 2 >= divisor {
        q += m.signum();
    }
    let overflow = || SqlError::Overflow(DataType::Decimal(None).to_string());
    let scaled = 10_i128
        .checked_pow(k)
        .and_then(|p| q.checked_mul(p))
        .ok_or_else(overflow)?;
    Decimal::try_from_i128_with_scale(scaled, 0).map_err(|_| overflow())
}

/// `greatest` (`want` Greater) or `least` (Less): NULLs ignored, the others compared at their
/// common type.
fn extreme(a: &Args<'_>, want: Ordering) -> Result<Value> {
    let present: Vec<&Value> = a.args.iter().filter(|v| !v.is_null()).collect();
    let Some(first) = present.first() else {
        return Ok(Value::Null);
    };
    let mut common = first.data_type();
    for v in &present[1..] {
        let t = v.data_type();
        common = common_type(&common, &t).ok_or_else(|| {
            SqlError::TypeMismatch(format!("{} cannot compare {common} and {t}", a.name))
        })?;
    }
    let mut best = cast(first, &common)?;
    for v in &present[1..] {
        let v = cast(v, &common)?;
        if v.total_cmp(&best) == want {
            best = v;
        }
    }
    Ok(best)
}

/// One field of a date or timestamp, for `date_part` and `extract`; fields are named in the
/// singular or plural, in any case.
fn date_part(a: &Args<'_>) -> Result<Decimal> {
    let field = a.text(0)?.to_ascii_lowercase();
    let (micros, is_date) = a.temporal(1)?;
    let unknown = || SqlError::InvalidCast {
        value: quote(&field),
        target: format!("{} unit", a.name),
    };
    let days = micros.div_euclid(MICROS_PER_DAY);
    let date = i32::try_from(days)
        .ok()
        .and_then(days_to_date)
        .ok_or_else(|| SqlError::Overflow(DataType::Timestamp.to_string()))?;
    // Microseconds into the current minute, hour and day.
    let in_minute = micros.rem_euclid(60_000_000);
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let whole = |n: i64| Decimal::from(n);
    Ok(match field.as_str() {
        "year" | "years" => whole(pg_year(date)),
        "quarter" => whole(i64::from((date.month() - 1) / 3 + 1)),
        "month" | "months" => whole(i64::from(date.month())),
        "week" | "weeks" => whole(i64::from(date.iso_week().week())),
        "day" | "days" => whole(i64::from(date.day())),
        "dow" => whole(i64::from(date.weekday().num_days_from_sunday())),
        "isodow" => whole(i64::from(date.weekday().number_from_monday())),
        "doy" => whole(i64::from(date.ordinal())),
        "hour" | "hours" => whole(in_day / 3_600_000_000),
        "minute" | "minutes" => whole(in_day / 60_000_000 % 60),
        "second" | "seconds" if is_date => whole(0),
        "second" | "seconds" => Decimal::new(in_minute, 6),
        "millisecond" | "milliseconds" => Decimal::new(in_minute, 3),
        "microsecond" | "microseconds" => whole(in_minute),
        "epoch" if is_date => whole(days * 86_400),
        "epoch" => Decimal::new(micros, 6),
        _ => return Err(unknown()),
    })
}

/// PostgreSQL numbers years before 1 AD from -1 down (there is no year 0).
fn pg_year(date: NaiveDate) -> i64 {
    let year = i64::from(date.year());
    if year <= 0 { year - 1 } else { year }
}

fn date_trunc(a: &Args<'_>) -> Result<Value> {
    let field = a.text(0)?.to_ascii_lowercase();
    let (micros, _) = a.temporal(1)?;
    let unit = |step: i64| micros - micros.rem_euclid(step);
    let days = micros.div_euclid(MICROS_PER_DAY);
    let date = || {
        i32::try_from(days)
            .ok()
            .and_then(days_to_date)
            .ok_or_else(|| SqlError::Overflow(DataType::Timestamp.to_string()))
    };
    let start_of = |year: i32, month: u32| -> Result<Value> {
        let first = NaiveDate::from_ymd_opt(year, month, 1)
            .ok_or_else(|| SqlError::Overflow(DataType::Timestamp.to_string()))?;
        Ok(Value::Timestamp(
            i64::from(date_to_days(first)) * MICROS_PER_DAY,
        ))
    };
    match field.as_str() {
        "microsecond" | "microseconds" => Ok(Value::Timestamp(micros)),
        "millisecond" | "milliseconds" => Ok(Value::Timestamp(unit(1_000))),
        "second" | "seconds" => Ok(Value::Timestamp(unit(1_000_000))),
        "minute" | "minutes" => Ok(Value::Timestamp(unit(60_000_000))),
        "hour" | "hours" => Ok(Value::Timestamp(unit(3_600_000_000))),
        "day" | "days" => Ok(Value::Timestamp(unit(MICROS_PER_DAY))),
        "week" | "weeks" => {
            let monday = days - i64::from(date()?.weekday().num_days_from_monday());
            Ok(Value::Timestamp(monday * MICROS_PER_DAY))
        }
        "month" | "months" => {
            let d = date()?;
            start_of(d.year(), d.month())
        }
        "quarter" => {
            let d = date()?;
            start_of(d.year(), (d.month() - 1) / 3 * 3 + 1)
        }
        "year" | "years" => start_of(date()?.year(), 1),
        _ => Err(SqlError::InvalidCast {
            value: quote(&field),
            target: "date_trunc unit".to_string(),
        }),
    }
}

/// Follows object keys and array indexes (negative counts from the end); a string result
/// comes back unquoted, JSON null and a missing path as NULL, anything else as JSON text.
fn json_extract_path_text(a: &Args<'_>) -> Result<Value> {
    let json = a.json(0)?;
    let mut current = &json;
    for key in &a.args[1..] {
        let key = value_to_text(key).unwrap_or_default();
        let next = match current {
            serde_json::Value::Object(map) => map.get(&key),
            serde_json::Value::Array(items) => key.trim().parse::<i64>().ok().and_then(|i| {
                let len = items.len() as i64;
                let i = if i < 0 { len + i } else { i };
                usize::try_from(i).ok().and_then(|i| items.get(i))
            }),
            _ => None,
        };
        let Some(next) = next else {
            return Ok(Value::Null);
        };
        current = next;
    }
    Ok(match current {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    })
}

/// One element of a compiled LIKE pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    /// A character that must match (itself, or case-insensitively).
    Literal(char),
    /// `_`: any one character.
    One,
    /// `%`: any run of characters, empty included.
    Many,
}

fn compile_like(pattern: &str, escape: Option<char>) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let token = if Some(c) == escape {
            // A trailing escape character stands for itself.
            Token::Literal(chars.next().unwrap_or(c))
        } else if c == '%' {
            if tokens.last() == Some(&Token::Many) {
                continue;
            }
            Token::Many
        } else if c == '_' {
            Token::One
        } else {
            Token::Literal(c)
        };
        tokens.push(token);
    }
    tokens
}

fn same_char(a: char, b: char, case_insensitive: bool) -> bool {
    a == b
        || (case_insensitive
            && if a.is_ascii() && b.is_ascii() {
                a.eq_ignore_ascii_case(&b)
            } else {
                a.to_lowercase().eq(b.to_lowercase())
            })
}

/// SQL `text LIKE pattern` (or ILIKE when `case_insensitive`): `%` matches any run of
/// characters, `_` any one character, and `escape` (when given) makes the next character
/// literal. `None` means no escape character; PostgreSQL's default for a LIKE without ESCAPE
/// is a backslash, so pass `Some('\\')` there. An escape character at the very end of the
/// pattern matches itself.
///
/// Runs in O(text × pattern) time whatever the pattern: a mismatch backtracks only to the
/// latest `%`, which is enough because an earlier `%` could only match less.
pub fn like(text: &str, pattern: &str, escape: Option<char>, case_insensitive: bool) -> bool {
    let tokens = compile_like(pattern, escape);
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0, 0);
    // After the latest `%`: the pattern position past it and the text position it resumes at.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Many) => {
                resume = Some((p + 1, t));
                p += 1;
            }
            Some(Token::One) => {
                t += 1;
                p += 1;
            }
            Some(Token::Literal(c)) if same_char(*c, text[t], case_insensitive) => {
                t += 1;
                p += 1;
            }
            _ => match resume {
                Some((after_many, from)) => {
                    // Let the `%` swallow one more character and retry.
                    resume = Some((after_many, from + 1));
                    p = after_many;
                    t = from + 1;
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|token| *token == Token::Many)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    fn dec(s: &str) -> Value {
        Value::Decimal(Decimal::from_str(s).unwrap())
    }

    fn ts(s: &str) -> Value {
        cast(&text(s), &DataType::Timestamp).unwrap()
    }

    fn run(name: &str, args: &[Value]) -> Value {
        call(name, args).unwrap_or_else(|e| panic!("{name}({args:?}): {e}"))
    }

    #[test]
    fn test_every_function_has_consistent_arity_and_return_type() {
        for (name, min, max) in FUNCTIONS {
            assert_eq!(arity(name), Some((*min, *max)));
            let nulls = vec![DataType::Null; *min];
            assert!(
                return_type(name, &nulls).is_some(),
                "{name} with NULL arguments has a type"
            );
            // Every strict function returns NULL for NULL arguments.
            if *min > 0 && !matches!(*name, "concat" | "concat_ws" | "greatest" | "least") {
                let args = vec![Value::Null; *min];
                assert_eq!(run(name, &args), Value::Null, "{name}");
            }
        }
        assert_eq!(arity("nope"), None);
        assert_eq!(return_type("nope", &[]), None);
    }

    #[test]
    fn test_unknown_functions_and_wrong_counts() {
        let err = call("frobnicate", &[Value::Int(1), text("a")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "function frobnicate(BIGINT, TEXT) does not exist"
        );
        assert_eq!(err.code(), "undefined_function");
        let err = call("lower", &[]).unwrap_err();
        assert_eq!(err.to_string(), "function lower takes 1 argument, got 0");
        let err = call("substr", &[text("a")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "function substr takes 2 to 3 arguments, got 1"
        );
        let err = call("concat", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "function concat takes at least 1 argument, got 0"
        );
        let err = call("pi", &[Value::Int(1)]).unwrap_err();
        assert_eq!(err.to_string(), "function pi takes 0 arguments, got 1");
        assert_eq!(return_type("lower", &[]), None);
    }

    #[test]
    fn test_type_errors_name_the_argument() {
        let err = call("upper", &[Value::Int(1)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "type mismatch: argument 1 of upper must be TEXT, not BIGINT"
        );
        assert!(matches!(
            call("abs", &[text("1")]),
            Err(SqlError::TypeMismatch(_))
        ));
        assert!(matches!(
            call("left", &[text("abc"), Value::Float(1.5)]),
            Err(SqlError::TypeMismatch(_))
        ));
        assert_eq!(run("left", &[text("abc"), Value::Float(2.0)]), text("ab"));
        assert_eq!(return_type("upper", &[DataType::Integer]), None);
        assert_eq!(return_type("abs", &[DataType::Text(None)]), None);
    }

    #[test]
    fn test_case_and_length_count_characters() {
        assert_eq!(run("lower", &[text("ÄBC")]), text("äbc"));
        assert_eq!(run("upper", &[text("straße")]), text("STRASSE"));
        assert_eq!(run("length", &[text("héllo🎉")]), Value::Int(6));
        assert_eq!(run("char_length", &[text("")]), Value::Int(0));
        assert_eq!(run("octet_length", &[text("é")]), Value::Int(2));
        assert_eq!(run("length", &[Value::Blob(vec![1, 2, 3])]), Value::Int(3));
        assert_eq!(run("reverse", &[text("añb🎉")]), text("🎉bña"));
        assert_eq!(
            run("initcap", &[text("hELLO wORLD-foo_bar 9x")]),
            text("Hello World-Foo_Bar 9x")
        );
    }

    #[test]
    fn test_substr_uses_sql_positions() {
        let s = text("héllo");
        let sub = |args: &[Value]| run("substr", args);
        assert_eq!(sub(&[s.clone(), Value::Int(2)]), text("éllo"));
        assert_eq!(sub(&[s.clone(), Value::Int(2), Value::Int(3)]), text("éll"));
        // A start before 1 still counts the characters before position 1.
        assert_eq!(sub(&[s.clone(), Value::Int(0), Value::Int(3)]), text("hé"));
        assert_eq!(sub(&[s.clone(), Value::Int(-5), Value::Int(3)]), text(""));
        assert_eq!(sub(&[s.clone(), Value::Int(10)]), text(""));
        assert_eq!(
            sub(&[s.clone(), Value::Int(5), Value::Int(i64::MAX)]),
            text("o")
        );
        assert_eq!(
            sub(&[s.clone(), Value::Int(i64::MIN), Value::Int(i64::MAX)]),
            text("")
        );
        assert_eq!(sub(&[s.clone(), Value::Int(3), Value::Int(0)]), text(""));
        let err = call("substring", &[s, Value::Int(1), Value::Int(-1)]).unwrap_err();
        assert_eq!(err.to_string(), "negative substring length not allowed");
        assert_eq!(
            sub(&[Value::Blob(vec![1, 2, 3]), Value::Int(2)]),
            Value::Blob(vec![2, 3])
        );
        assert_eq!(
            sub(&[text("🎉🎊🎈"), Value::Int(2), Value::Int(1)]),
            text("🎊")
        );
    }

    #[test]
    fn test_trim_replace_position_and_friends() {
        assert_eq!(run("trim", &[text("  a b  ")]), text("a b"));
        assert_eq!(run("ltrim", &[text("  a  ")]), text("a  "));
        assert_eq!(run("rtrim", &[text("  a  ")]), text("  a"));
        assert_eq!(run("btrim", &[text("xyaxy"), text("yx")]), text("a"));
        assert_eq!(run("ltrim", &[text("ééa"), text("é")]), text("a"));
        assert_eq!(
            run("replace", &[text("abcabc"), text("b"), text("XY")]),
            text("aXYcaXYc")
        );
        assert_eq!(
            run("replace", &[text("abc"), text(""), text("X")]),
            text("abc")
        );
        assert_eq!(
            run("position", &[text("héllo"), text("llo")]),
            Value::Int(3)
        );
        assert_eq!(run("strpos", &[text("abc"), text("z")]), Value::Int(0));
        assert_eq!(run("strpos", &[text("abc"), text("")]), Value::Int(1));
        assert_eq!(run("left", &[text("héllo"), Value::Int(2)]), text("hé"));
        assert_eq!(run("left", &[text("héllo"), Value::Int(-2)]), text("hél"));
        assert_eq!(run("left", &[text("abc"), Value::Int(i64::MIN)]), text(""));
        assert_eq!(run("right", &[text("héllo"), Value::Int(2)]), text("lo"));
        assert_eq!(run("right", &[text("héllo"), Value::Int(-2)]), text("llo"));
        assert_eq!(run("right", &[text("abc"), Value::Int(10)]), text("abc"));
        assert_eq!(
            run("lpad", &[text("hi"), Value::Int(5), text("xy")]),
            text("xyxhi")
        );
        assert_eq!(run("rpad", &[text("hi"), Value::Int(4)]), text("hi  "));
        assert_eq!(run("lpad", &[text("hello"), Value::Int(2)]), text("he"));
        assert_eq!(
            run("rpad", &[text("hi"), Value::Int(5), text("")]),
            text("hi")
        );
        assert_eq!(run("lpad", &[text("hi"), Value::Int(-1)]), text(""));
        assert_eq!(run("repeat", &[text("ab"), Value::Int(3)]), text("ababab"));
        assert_eq!(run("repeat", &[text("ab"), Value::Int(-3)]), text(""));
        assert!(matches!(
            call("repeat", &[text("ab"), Value::Int(i64::MAX)]),
            Err(SqlError::Invalid(_))
        ));
        assert!(matches!(
            call("lpad", &[text("a"), Value::Int(i64::MAX)]),
            Err(SqlError::Invalid(_))
        ));
        assert_eq!(
            run("starts_with", &[text("abc"), text("ab")]),
            Value::Bool(true)
        );
        assert_eq!(
            run("starts_with", &[text("abc"), text("b")]),
            Value::Bool(false)
        );
    }

    #[test]
    fn test_concat_skips_nulls() {
        assert_eq!(
            run(
                "concat",
                &[text("a"), Value::Null, Value::Int(1), Value::Float(1.5)]
            ),
            text("a11.5")
        );
        assert_eq!(run("concat", &[Value::Null]), text(""));
        assert_eq!(
            run(
                "concat_ws",
                &[text(", "), text("a"), Value::Null, text("b")]
            ),
            text("a, b")
        );
        assert_eq!(run("concat_ws", &[Value::Null, text("a")]), Value::Null);
        assert_eq!(run("concat_ws", &[text("-")]), text(""));
    }

    #[test]
    fn test_abs_ceil_floor_sign() {
        assert_eq!(run("abs", &[Value::Int(-3)]), Value::Int(3));
        assert!(matches!(
            call("abs", &[Value::Int(i64::MIN)]),
            Err(SqlError::Overflow(_))
        ));
        assert_eq!(run("abs", &[dec("-1.50")]), dec("1.50"));
        assert_eq!(run("ceil", &[dec("-1.5")]), dec("-1"));
        assert_eq!(run("ceiling", &[Value::Float(1.2)]), Value::Float(2.0));
        assert_eq!(run("floor", &[dec("-1.5")]), dec("-2"));
        assert_eq!(run("floor", &[Value::Int(7)]), Value::Int(7));
        assert_eq!(run("sign", &[Value::Int(-7)]), Value::Int(-1));
        assert_eq!(run("sign", &[dec("0.00")]), dec("0"));
        assert_eq!(run("sign", &[Value::Float(0.0)]), Value::Float(0.0));
        assert_eq!(run("sign", &[Value::Float(2.5)]), Value::Float(1.0));
    }

    #[test]
    fn test_round_and_trunc() {
        assert_eq!(run("round", &[dec("2.5")]), dec("3"));
        assert_eq!(run("round", &[dec("-2.5")]), dec("-3"));
        assert_eq!(run("round", &[Value::Float(2.5)]), Value::Float(2.0));
        assert_eq!(run("round", &[Value::Float(3.5)]), Value::Float(4.0));
        assert_eq!(run("round", &[Value::Int(5)]), Value::Int(5));
        assert_eq!(run("round", &[dec("2.345"), Value::Int(2)]), dec("2.35"));
        assert_eq!(
            run("round", &[dec("2.5"), Value::Int(2)]).to_string(),
            "2.50"
        );
        assert_eq!(
            run("round", &[Value::Float(2.675), Value::Int(2)]),
            Value::Float(2.68)
        );
        assert_eq!(
            run("round", &[Value::Int(1250), Value::Int(-2)]),
            dec("1300")
        );
        assert_eq!(
            run("round", &[Value::Int(-1250), Value::Int(-2)]),
            dec("-1300")
        );
        assert_eq!(run("round", &[dec("149.5"), Value::Int(-2)]), dec("100"));
        assert_eq!(run("round", &[dec("150"), Value::Int(-2)]), dec("200"));
        assert_eq!(run("round", &[dec("12.5"), Value::Int(-40)]), dec("0"));
        assert_eq!(
            run("round", &[Value::Float(1e30), Value::Int(-29)]),
            Value::Float(1e30)
        );
        assert_eq!(run("trunc", &[dec("-2.99")]), dec("-2"));
        assert_eq!(run("trunc", &[Value::Float(-2.99)]), Value::Float(-2.0));
        assert_eq!(run("trunc", &[dec("2.999"), Value::Int(2)]), dec("2.99"));
        assert_eq!(
            run("trunc", &[Value::Int(1299), Value::Int(-2)]),
            dec("1200")
        );
        assert!(matches!(
            call("round", &[Value::Decimal(Decimal::MAX), Value::Int(-1)]),
            Err(SqlError::Overflow(_))
        ));
        assert_eq!(
            return_type("round", &[DataType::Integer, DataType::Integer]),
            Some(DataType::Decimal(None))
        );
        assert_eq!(
            return_type("round", &[DataType::Integer]),
            Some(DataType::BigInt)
        );
    }

    #[test]
    fn test_powers_roots_and_logarithms() {
        assert_eq!(run("sqrt", &[Value::Int(16)]), Value::Float(4.0));
        let err = call("sqrt", &[Value::Float(-1.0)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot take square root of a negative number"
        );
        assert_eq!(
            run("power", &[Value::Int(2), Value::Int(10)]),
            Value::Float(1024.0)
        );
        assert_eq!(
            run("pow", &[Value::Int(-8), Value::Int(3)]),
            Value::Float(-512.0)
        );
        assert!(call("power", &[Value::Int(0), Value::Int(-1)]).is_err());
        assert!(call("power", &[Value::Int(-8), dec("0.5")]).is_err());
        assert!(matches!(
            call("power", &[Value::Int(10), Value::Int(400)]),
            Err(SqlError::Overflow(_))
        ));
        assert_eq!(run("exp", &[Value::Int(0)]), Value::Float(1.0));
        assert!(matches!(
            call("exp", &[Value::Int(1000)]),
            Err(SqlError::Overflow(_))
        ));
        assert_eq!(
            run("ln", &[Value::Float(std::f64::consts::E)]),
            Value::Float(1.0)
        );
        assert!(call("ln", &[Value::Int(0)]).is_err());
        assert!(call("ln", &[Value::Int(-1)]).is_err());
        assert_eq!(run("log", &[Value::Int(1000)]), Value::Float(3.0));
        assert_eq!(
            run("log", &[Value::Int(2), Value::Int(8)]),
            Value::Float(3.0)
        );
        assert!(matches!(
            call("log", &[Value::Int(1), Value::Int(8)]),
            Err(SqlError::DivisionByZero)
        ));
        assert!(matches!(run("sqrt", &[Value::Float(f64::NAN)]), Value::Float(x) if x.is_nan()));
        assert_eq!(run("pi", &[]), Value::Float(std::f64::consts::PI));
    }

    #[test]
    fn test_mod_follows_the_operator() {
        assert_eq!(run("mod", &[Value::Int(-7), Value::Int(3)]), Value::Int(-1));
        assert_eq!(run("mod", &[dec("7.5"), Value::Int(2)]), dec("1.5"));
        assert!(matches!(
            call("mod", &[Value::Int(1), Value::Int(0)]),
            Err(SqlError::DivisionByZero)
        ));
        assert!(matches!(
            call("mod", &[text("7"), Value::Int(2)]),
            Err(SqlError::TypeMismatch(_))
        ));
    }

    #[test]
    fn test_greatest_and_least_ignore_nulls_and_promote() {
        assert_eq!(
            run("greatest", &[Value::Int(1), Value::Null, Value::Int(3)]),
            Value::Int(3)
        );
        assert_eq!(
            run("least", &[Value::Null, Value::Int(2), dec("1.5")]),
            dec("1.5")
        );
        assert_eq!(
            run("greatest", &[Value::Int(1), Value::Float(0.5)]),
            Value::Float(1.0)
        );
        assert_eq!(run("greatest", &[Value::Null, Value::Null]), Value::Null);
        assert_eq!(run("least", &[text("b"), text("a")]), text("a"));
        assert!(matches!(
            run("greatest", &[Value::Float(f64::NAN), Value::Float(1.0)]),
            Value::Float(x) if x.is_nan()
        ));
        assert!(matches!(
            call("greatest", &[Value::Int(1), text("a")]),
            Err(SqlError::TypeMismatch(_))
        ));
        assert_eq!(
            return_type(
                "least",
                &[DataType::Integer, DataType::Null, DataType::Decimal(None)]
            ),
            Some(DataType::Decimal(None))
        );
    }

    #[test]
    fn test_date_part_and_extract() {
        let t = ts("2024-03-15 13:45:30.25");
        let part = |field: &str| run("date_part", &[text(field), t.clone()]);
        assert_eq!(part("year"), Value::Float(2024.0));
        assert_eq!(part("MONTH"), Value::Float(3.0));
        assert_eq!(part("day"), Value::Float(15.0));
        assert_eq!(part("hour"), Value::Float(13.0));
        assert_eq!(part("minute"), Value::Float(45.0));
        assert_eq!(part("second"), Value::Float(30.25));
        assert_eq!(part("dow"), Value::Float(5.0));
        assert_eq!(part("isodow"), Value::Float(5.0));
        assert_eq!(part("doy"), Value::Float(75.0));
        assert_eq!(part("quarter"), Value::Float(1.0));
        assert_eq!(part("milliseconds"), Value::Float(30_250.0));
        assert_eq!(part("epoch"), Value::Float(1_710_510_330.25));
        assert_eq!(
            run("extract", &[text("second"), t.clone()]).to_string(),
            "30.250000"
        );
        assert_eq!(
            run("extract", &[text("year"), t.clone()]).to_string(),
            "2024"
        );
        let d = Value::Date(19_797); // 2024-03-15
        assert_eq!(
            run("extract", &[text("epoch"), d.clone()]).to_string(),
            "1710460800"
        );
        assert_eq!(
            run("extract", &[text("dow"), Value::Date(3)]).to_string(),
            "0"
        );
        assert_eq!(
            run("date_part", &[text("day"), text("2024-02-29")]),
            Value::Float(29.0)
        );
        // Before the epoch the time of day still counts forward from midnight.
        let before = ts("1969-12-31 23:59:59.5");
        assert_eq!(
            run("date_part", &[text("hour"), before.clone()]),
            Value::Float(23.0)
        );
        assert_eq!(
            run("date_part", &[text("second"), before]),
            Value::Float(59.5)
        );
        assert_eq!(
            run("date_part", &[text("year"), ts("0000-06-01")]),
            Value::Float(-1.0)
        );
        let err = call("date_part", &[text("fortnight"), t]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for date_part unit: 'fortnight'"
        );
        assert!(matches!(
            call("date_part", &[text("year"), Value::Int(1)]),
            Err(SqlError::TypeMismatch(_))
        ));
    }

    #[test]
    fn test_date_trunc() {
        let t = ts("2024-05-15 13:45:30.25");
        let trunc = |field: &str| run("date_trunc", &[text(field), t.clone()]).to_string();
        assert_eq!(trunc("year"), "2024-01-01 00:00:00");
        assert_eq!(trunc("quarter"), "2024-04-01 00:00:00");
        assert_eq!(trunc("month"), "2024-05-01 00:00:00");
        assert_eq!(trunc("week"), "2024-05-13 00:00:00");
        assert_eq!(trunc("day"), "2024-05-15 00:00:00");
        assert_eq!(trunc("hour"), "2024-05-15 13:00:00");
        assert_eq!(trunc("minute"), "2024-05-15 13:45:00");
        assert_eq!(trunc("second"), "2024-05-15 13:45:30");
        assert_eq!(trunc("milliseconds"), "2024-05-15 13:45:30.250000");
        assert_eq!(
            run("date_trunc", &[text("day"), ts("1969-12-31 23:00:00")]).to_string(),
            "1969-12-31 00:00:00"
        );
        assert_eq!(
            run("date_trunc", &[text("month"), Value::Date(19_797)]).to_string(),
            "2024-03-01 00:00:00"
        );
        assert!(matches!(
            call("date_trunc", &[text("eon"), t]),
            Err(SqlError::InvalidCast { .. })
        ));
    }

    #[test]
    fn test_clock_functions() {
        let Value::Timestamp(now) = run("now", &[]) else {
            panic!("now() is a timestamp");
        };
        let Value::Date(today) = run("current_date", &[]) else {
            panic!("current_date is a date");
        };
        // Within a day of each other even across midnight.
        assert!((now.div_euclid(MICROS_PER_DAY) - i64::from(today)).abs() <= 1);
        assert!(now > 1_700_000_000_000_000);
    }

    #[test]
    fn test_json_functions() {
        let doc = Value::Json(r#"{"a":{"b":[10,"x",{"c":null}]},"s":"hi","n":1.5}"#.into());
        let path = |keys: &[&str]| {
            let mut args = vec![doc.clone()];
            args.extend(keys.iter().map(|k| text(k)));
            run("json_extract_path_text", &args)
        };
        assert_eq!(path(&["s"]), text("hi"));
        assert_eq!(path(&["n"]), text("1.5"));
        assert_eq!(path(&["a", "b", "0"]), text("10"));
        assert_eq!(path(&["a", "b", "-2"]), text("x"));
        assert_eq!(path(&["a", "b"]), text(r#"[10,"x",{"c":null}]"#));
        assert_eq!(path(&["a", "b", "2", "c"]), Value::Null);
        assert_eq!(path(&["missing"]), Value::Null);
        assert_eq!(path(&["a", "b", "9"]), Value::Null);
        assert_eq!(path(&["s", "deeper"]), Value::Null);
        assert_eq!(
            run("json_extract_path_text", &[doc.clone(), Value::Null]),
            Value::Null
        );
        assert_eq!(run("json_typeof", &[doc]), text("object"));
        assert_eq!(run("json_typeof", &[text("[1]")]), text("array"));
        assert_eq!(
            run("json_typeof", &[Value::Json("null".into())]),
            text("null")
        );
        assert!(matches!(
            call("json_typeof", &[text("{bad")]),
            Err(SqlError::InvalidCast { .. })
        ));
    }

    #[test]
    fn test_like_wildcards() {
        assert!(like("hello", "h%o", None, false));
        assert!(like("hello", "h_llo", None, false));
        assert!(like("hello", "%", None, false));
        assert!(like("", "%", None, false));
        assert!(!like("", "_", None, false));
        assert!(like("hello", "%l%", None, false));
        assert!(!like("hello", "h_o", None, false));
        assert!(!like("hello", "hello_", None, false));
        assert!(like("héllo", "h_llo", None, false));
        assert!(like("abcabd", "%abd", None, false));
        assert!(like("mississippi", "%iss%ppi", None, false));
        assert!(!like("mississippi", "%iss%ppx", None, false));
        assert!(like("a%b", "a%%b", None, false));
    }

    #[test]
    fn test_like_escapes() {
        assert!(like("100%", "100\\%", Some('\\'), false));
        assert!(!like("1000", "100\\%", Some('\\'), false));
        assert!(like("a_b", "a\\_b", Some('\\'), false));
        assert!(!like("axb", "a\\_b", Some('\\'), false));
        assert!(like("a\\b", "a\\\\b", Some('\\'), false));
        assert!(like("a%b", "a#%b", Some('#'), false));
        assert!(like("a#", "a##", Some('#'), false));
        // Without an escape character a backslash is an ordinary character.
        assert!(like("a\\xb", "a\\_b", None, false));
        // A trailing escape character stands for itself.
        assert!(like("ab\\", "ab\\", Some('\\'), false));
    }

    #[test]
    fn test_ilike() {
        assert!(like("HeLLo", "hello", None, true));
        assert!(!like("HeLLo", "hello", None, false));
        assert!(like("ÄRGER", "är%", None, true));
        assert!(like("Straße", "STRA_E", None, true));
    }

    #[test]
    fn test_like_has_no_exponential_blowup() {
        let text = "a".repeat(5_000);
        let pattern = "%a".repeat(50) + "%b";
        let started = std::time::Instant::now();
        assert!(!like(&text, &pattern, None, false));
        assert!(like(&(text.clone() + "b"), &pattern, None, false));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
