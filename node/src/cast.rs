//! Conversions between SQL types: `CAST(x AS t)`, `x::t`, and the implicit conversions of
//! writes, comparisons and set operations.
//!
//! [`cast`] converts one value to a target type, checking the target's range and length, and
//! [`common_type`] picks the type two expressions meet at (numeric promotion runs integer <
//! decimal < floating point). Rules follow PostgreSQL where the types overlap:
//!
//! - NULL casts to NULL for every target.
//! - Text parses to every type (surrounding whitespace ignored for everything but text); every
//!   type formats to text ([`value_to_text`]).
//! - Float to integer and decimal to integer round half away from zero; NaN and infinities do
//!   not convert to integers or decimals.
//! - `DECIMAL(p,s)` rounds to `s` decimal places (half away from zero) and refuses values with
//!   more than `p - s` integer digits.
//! - `VARCHAR(n)` refuses text longer than `n` characters, except that trailing spaces past the
//!   limit are cut off silently (as PostgreSQL does on insert).
//! - REAL rounds through `f32` and refuses values outside its range.
//! - JSON text is validated and stored compact; object keys come out sorted, duplicate keys
//!   keep the last value, and numbers beyond `f64` precision lose digits.
//!
//! Invalid input is [`SqlError::InvalidCast`] with the value quoted; a value out of its type's
//! range is [`SqlError::Overflow`] naming the type; a pair of types with no conversion at all is
//! [`SqlError::TypeMismatch`].

use std::str::FromStr;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::{Result, SqlError};
use crate::types::{DataType, EPOCH_DAYS_FROM_CE, MICROS_PER_DAY, Value, decimal_to_f64};

/// The longest value an error message quotes in full, in characters.
const QUOTE_LIMIT: usize = 64;

/// Converts `value` to `target`.
///
/// # Errors
///
/// [`SqlError::InvalidCast`] for input that does not parse or does not fit the target's
/// length, [`SqlError::Overflow`] for a number outside the target's range, and
/// [`SqlError::TypeMismatch`] when there is no conversion between the two types.
pub fn cast(value: &Value, target: &DataType) -> Result<Value> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match target {
        DataType::Null => Ok(value.clone()),
        DataType::Boolean => to_bool(value, target),
        DataType::SmallInt | DataType::Integer | DataType::BigInt => to_int(value, target),
        DataType::Real | DataType::Double => to_float(value, target),
        DataType::Decimal(typmod) => to_decimal(value, target, *typmod),
        DataType::Text(limit) => to_text(value, target, *limit),
        DataType::Blob => to_blob(value, target),
        DataType::Date => to_date(value, target),
        DataType::Timestamp => to_timestamp(value, target),
        DataType::Json => to_json(value, target),
    }
}

/// The type two expressions of types `a` and `b` meet at, for arithmetic, comparisons, UNION,
/// CASE and COALESCE; `None` if they do not meet.
///
/// Numbers promote integer < decimal < floating point (integers to the wider integer, mixed
/// decimals to an unconstrained DECIMAL, REAL with anything else numeric to DOUBLE). Text meets
/// text as unbounded TEXT. DATE meets TIMESTAMP as TIMESTAMP. Text meets BOOLEAN, DATE,
/// TIMESTAMP and JSON as that type, because values of those types are written as string
/// literals (`d > '2024-01-01'`); the text is cast when the statement runs. NULL meets
/// anything as the other type.
pub fn common_type(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    match (a, b) {
        (Null, other) | (other, Null) => Some(other.clone()),
        (x, y) if x.is_integer() && y.is_integer() => Some(wider_integer(x, y)),
        (Real | Double, y) | (y, Real | Double) if y.is_numeric() => Some(Double),
        (Decimal(_), y) | (y, Decimal(_)) if y.is_numeric() => Some(Decimal(None)),
        (Text(_), Text(_)) => Some(Text(None)),
        (Date, Timestamp) | (Timestamp, Date) => Some(Timestamp),
        (Text(_), other @ (Boolean | Date | Timestamp | Json))
        | (other @ (Boolean | Date | Timestamp | Json), Text(_)) => Some(other.clone()),
        _ => None,
    }
}

fn wider_integer(a: &DataType, b: &DataType) -> DataType {
    let rank = |t: &DataType| match t {
        DataType::SmallInt => 0,
        DataType::Integer => 1,
        _ => 2,
    };
    if rank(a) >= rank(b) {
        a.clone()
    } else {
        b.clone()
    }
}

/// A value as text, the way `CAST(value AS TEXT)` and `||` write it; `None` for NULL.
///
/// Differs from the `Display` of [`Value`] only for floats, which follow PostgreSQL's output:
/// shortest exact digits, no trailing `.0`, exponent form below 1e-4 and from 1e15 (`1e+20`).
pub fn value_to_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Float(x) => Some(format_float(*x)),
        other => Some(other.to_string()),
    }
}

/// Formats a float as PostgreSQL does: `NaN`, `Infinity`, the shortest digits that read back
/// exactly, and exponent form (`1.5e-05`, `1e+20`) for exponents below -4 or from 15.
pub fn format_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("the LowerExp form of a finite float has an exponent");
    let exponent: i32 = exponent
        .parse()
        .expect("the LowerExp exponent is an integer");
    if x != 0.0 && !(-4..15).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        format!("{x}")
    }
}

/// Parses a boolean the way PostgreSQL does: `true`, `t`, `yes`, `y`, `on`, `1` and the
/// false forms `false`, `f`, `no`, `n`, `off`, `0`, in any case, surrounded by any whitespace.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Parses a date `YYYY-MM-DD` (a timestamp's date part is accepted too) to days since the
/// epoch.
pub fn parse_date(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date_to_days(date));
    }
    let micros = parse_timestamp(text)?;
    i32::try_from(micros.div_euclid(MICROS_PER_DAY)).ok()
}

/// Parses a timestamp `YYYY-MM-DD HH:MM[:SS[.ffffff]]`, with a space or `T` between date and
/// time, or a bare date (midnight), to microseconds since the epoch. Digits past the
/// microsecond round.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    let text = text.trim();
    for format in FORMATS {
        if let Ok(timestamp) = NaiveDateTime::parse_from_str(text, format) {
            return naive_to_micros(timestamp);
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    i64::from(date_to_days(date)).checked_mul(MICROS_PER_DAY)
}

/// Days since the epoch of a calendar date.
pub(crate) fn date_to_days(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// The calendar date of a day count, if chrono can represent it.
pub(crate) fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_DAYS_FROM_CE)?)
}

/// Microseconds since the epoch of a calendar date and time, rounding nanoseconds.
pub(crate) fn naive_to_micros(timestamp: NaiveDateTime) -> Option<i64> {
    let seconds = timestamp.and_utc().timestamp();
    // A leap second shows as a nanosecond count of a second or more; it simply adds on.
    let nanos = i64::from(timestamp.nanosecond());
    seconds
        .checked_mul(1_000_000)?
        .checked_add((nanos + 500) / 1000)
}

/// True for a date chrono can represent (and so format and take apart).
pub(crate) fn date_in_range(days: i64) -> bool {
    i32::try_from(days).ok().and_then(days_to_date).is_some()
}

/// A float's exact-shortest decimal, or `None` for NaN, infinities and values beyond DECIMAL's
/// range. Digits past DECIMAL's 28 decimal places round.
pub(crate) fn f64_to_decimal(x: f64) -> Option<Decimal> {
    if !x.is_finite() {
        return None;
    }
    Decimal::from_str(&format!("{x}")).ok()
}

/// The value quoted for an error message: in single quotes (inner quotes doubled), cut short
/// past [`QUOTE_LIMIT`] characters.
pub(crate) fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len().min(QUOTE_LIMIT * 4) + 2);
    quoted.push('\'');
    for (i, c) in text.chars().enumerate() {
        if i == QUOTE_LIMIT {
            quoted.push_str("...");
            break;
        }
        if c == '\'' {
            quoted.push('\'');
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

fn invalid(text: &str, target: &DataType) -> SqlError {
    SqlError::InvalidCast {
        value: quote(text),
        target: target.to_string(),
    }
}

fn invalid_value(value: &Value, target: &DataType) -> SqlError {
    invalid(&value_to_text(value).unwrap_or_default(), target)
}

fn overflow(target: &DataType) -> SqlError {
    SqlError::Overflow(target.to_string())
}

fn no_cast(value: &Value, target: &DataType) -> SqlError {
    SqlError::TypeMismatch(format!("cannot cast {} to {target}", value.data_type()))
}

fn to_bool(value: &Value, target: &DataType) -> Result<Value> {
    match value {
        Value::Bool(b) => Ok(Value::Bool(*b)),
        Value::Int(i) => Ok(Value::Bool(*i != 0)),
        Value::Text(s) => parse_bool(s)
            .map(Value::Bool)
            .ok_or_else(|| invalid(s, target)),
        Value::Json(s) => match serde_json::from_str(s) {
            Ok(serde_json::Value::Bool(b)) => Ok(Value::Bool(b)),
            _ => Err(invalid(s, target)),
        },
        other => Err(no_cast(other, target)),
    }
}

fn to_int(value: &Value, target: &DataType) -> Result<Value> {
    let (min, max) = target
        .integer_range()
        .expect("to_int is only called for integer types");
    let wide = match value {
        Value::Int(i) => *i,
        Value::Bool(b) => i64::from(*b),
        Value::Float(x) => {
            if x.is_nan() || x.is_infinite() {
                return Err(invalid_value(value, target));
            }
            let rounded = x.round();
            // i64 holds [-2^63, 2^63); i64::MAX as f64 rounds up to 2^63, so the bounds are
            // written as the exact powers of two.
            if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&rounded) {
                return Err(overflow(target));
            }
            rounded as i64
        }
        Value::Decimal(d) => decimal_to_i64(d).ok_or_else(|| overflow(target))?,
        Value::Text(s) => parse_integer(s, target)?,
        Value::Json(s) => {
            let number = json_number(s).ok_or_else(|| invalid(s, target))?;
            decimal_to_i64(&number).ok_or_else(|| overflow(target))?
        }
        other => return Err(no_cast(other, target)),
    };
    if wide < min || wide > max {
        return Err(overflow(target));
    }
    Ok(Value::Int(wide))
}

fn decimal_to_i64(d: &Decimal) -> Option<i64> {
    d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
}

/// Parses an integer literal: optional sign, decimal digits, surrounding whitespace.
fn parse_integer(text: &str, target: &DataType) -> Result<i64> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(text, target));
    }
    // The syntax is right, so the only way to fail is a number too large for 64 bits.
    trimmed.parse::<i64>().map_err(|_| overflow(target))
}

/// True for a decimal number literal: sign, digits with an optional point (at least one
/// digit), optional exponent.
fn is_number_literal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut digits = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == bytes.len()
}

/// Parses a decimal literal (plain or with an exponent); `Ok(None)` when the syntax is right
/// but the number does not fit DECIMAL.
fn parse_decimal_literal(text: &str) -> Option<Option<Decimal>> {
    if !is_number_literal(text) {
        return None;
    }
    if text.contains(['e', 'E']) {
        // Decimal::from_scientific refuses more than 28 decimal places, which a float-style
        // literal like 1.5e-30 asks for; fall back to the nearest float's digits.
        let exact = Decimal::from_scientific(text).ok();
        return Some(exact.or_else(|| text.parse::<f64>().ok().and_then(f64_to_decimal)));
    }
    Some(Decimal::from_str(text).ok())
}

fn json_number(json: &str) -> Option<Decimal> {
    match serde_json::from_str(json).ok()? {
        serde_json::Value::Number(n) => parse_decimal_literal(&n.to_string()).flatten(),
        _ => None,
    }
}

fn to_float(value: &Value, target: &DataType) -> Result<Value> {
    let x = match value {
        Value::Float(x) => *x,
        Value::Int(i) => *i as f64,
        Value::Decimal(d) => decimal_to_f64(d),
        Value::Text(s) => parse_float(s).ok_or_else(|| invalid(s, target))?,
        Value::Json(s) => match serde_json::from_str(s) {
            Ok(serde_json::Value::Number(n)) => n.as_f64().ok_or_else(|| invalid(s, target))?,
            _ => return Err(invalid(s, target)),
        },
        other => return Err(no_cast(other, target)),
    };
    // A finite input that becomes infinite (1e400, or 1e300 as REAL) is out of range.
    let input_finite = !matches!(value, Value::Float(f) if !f.is_finite())
        && !matches!(value, Value::Text(s) if is_infinity_word(s));
    if input_finite && x.is_infinite() {
        return Err(overflow(target));
    }
    if *target == DataType::Real {
        let narrowed = f64::from(x as f32);
        if x.is_finite() && (narrowed.is_infinite() || (narrowed == 0.0 && x != 0.0)) {
            return Err(overflow(target));
        }
        return Ok(Value::Float(narrowed));
    }
    Ok(Value::Float(x))
}

fn is_infinity_word(text: &str) -> bool {
    let word = text.trim().to_ascii_lowercase();
    let word = word.strip_prefix(['+', '-']).unwrap_or(&word);
    word == "infinity" || word == "inf"
}

/// Parses a float literal, `NaN`, `Infinity`/`inf` (signed, any case). Finite literals too
/// large for `f64` come back infinite; the caller reports them out of range.
fn parse_float(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let unsigned = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    if unsigned == "nan" {
        return (unsigned.len() == lower.len()).then_some(f64::NAN);
    }
    if is_infinity_word(trimmed) {
        return Some(if lower.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if !is_number_literal(trimmed) {
        return None;
    }
    trimmed.parse().ok()
}

fn to_decimal(value: &Value, target: &DataType, typmod: Option<(u8, u8)>) -> Result<Value> {
    let d = match value {
        Value::Decimal(d) => *d,
        Value::Int(i) => Decimal::from(*i),
        Value::Float(x) => {
            if !x.is_finite() {
                return Err(invalid_value(value, target));
            }
            f64_to_decimal(*x).ok_or_else(|| overflow(target))?
        }
        Value::Text(s) => parse_decimal_literal(s.trim())
            .ok_or_else(|| invalid(s, target))?
            .ok_or_else(|| overflow(target))?,
        Value::Json(s) => json_number(s).ok_or_else(|| invalid(s, target))?,
        other => return Err(no_cast(other, target)),
    };
    match typmod {
        None => Ok(Value::Decimal(d)),
        Some((precision, scale)) => apply_typmod(d, precision, scale, target).map(Value::Decimal),
    }
}

/// Rounds `d` to `scale` places and checks it has at most `precision - scale` integer digits.
fn apply_typmod(d: Decimal, precision: u8, scale: u8, target: &DataType) -> Result<Decimal> {
    let scale = u32::from(scale);
    let mut rounded = d.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    let integer_digits = u32::from(precision).saturating_sub(scale);
    // 10^28 is the largest power of ten DECIMAL holds; anything it holds is below 10^29.
    if integer_digits <= 28 {
        let limit = Decimal::from_i128_with_scale(10_i128.pow(integer_digits), 0);
        if rounded.abs() >= limit {
            return Err(overflow(target));
        }
    }
    // Show the declared scale (1.5 as DECIMAL(5,2) is 1.50), as far as 28 digits allow.
    rounded.rescale(scale.min(28));
    Ok(rounded)
}

fn to_text(value: &Value, target: &DataType, limit: Option<u32>) -> Result<Value> {
    let text = value_to_text(value).unwrap_or_default();
    let Some(limit) = limit else {
        return Ok(Value::Text(text));
    };
    let limit = limit as usize;
    let Some((cut, _)) = text.char_indices().nth(limit) else {
        return Ok(Value::Text(text));
    };
    if text[cut..].chars().all(|c| c == ' ') {
        return Ok(Value::Text(text[..cut].to_string()));
    }
    Err(SqlError::InvalidCast {
        value: format!(
            "{} is {} characters, longer than {limit}",
            quote(&text),
            text.chars().count()
        ),
        target: target.to_string(),
    })
}

fn to_blob(value: &Value, target: &DataType) -> Result<Value> {
    match value {
        Value::Blob(b) => Ok(Value::Blob(b.clone())),
        Value::Text(s) => match s.strip_prefix("\\x") {
            Some(hex) => parse_hex(hex)
                .map(Value::Blob)
                .ok_or_else(|| invalid(s, target)),
            None => Ok(Value::Blob(s.as_bytes().to_vec())),
        },
        other => Err(no_cast(other, target)),
    }
}

fn parse_hex(hex: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = hex
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| (b as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    Some(
        digits
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect(),
    )
}

fn to_date(value: &Value, target: &DataType) -> Result<Value> {
    match value {
        Value::Date(d) => Ok(Value::Date(*d)),
        Value::Timestamp(t) => i32::try_from(t.div_euclid(MICROS_PER_DAY))
            .map(Value::Date)
            .map_err(|_| overflow(target)),
        Value::Text(s) => parse_date(s)
            .map(Value::Date)
            .ok_or_else(|| invalid(s, target)),
        other => Err(no_cast(other, target)),
    }
}

fn to_timestamp(value: &Value, target: &DataType) -> Result<Value> {
    match value {
        Value::Timestamp(t) => Ok(Value::Timestamp(*t)),
        Value::Date(d) => i64::from(*d)
            .checked_mul(MICROS_PER_DAY)
            .map(Value::Timestamp)
            .ok_or_else(|| overflow(target)),
        Value::Text(s) => parse_timestamp(s)
            .map(Value::Timestamp)
            .ok_or_else(|| invalid(s, target)),
        other => Err(no_cast(other, target)),
    }
}

fn to_json(value: &Value, target: &DataType) -> Result<Value> {
    match value {
        Value::Json(s) => Ok(Value::Json(s.clone())),
        Value::Text(s) => serde_json::from_str::<serde_json::Value>(s)
            .map(|json| Value::Json(json.to_string()))
            .map_err(|_| invalid(s, target)),
        Value::Bool(b) => Ok(Value::Json(b.to_string())),
        Value::Int(i) => Ok(Value::Json(i.to_string())),
        Value::Decimal(d) => Ok(Value::Json(d.to_string())),
        Value::Float(x) if x.is_finite() => {
            Ok(Value::Json(serde_json::Value::from(*x).to_string()))
        }
        Value::Float(_) => Err(invalid_value(value, target)),
        other => Err(no_cast(other, target)),
    }
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

    fn dec_type(p: u8, s: u8) -> DataType {
        DataType::Decimal(Some((p, s)))
    }

    #[test]
    fn test_null_casts_to_null_for_every_target() {
        for target in [
            DataType::Boolean,
            DataType::SmallInt,
            DataType::Double,
            dec_type(5, 2),
            DataType::Text(Some(1)),
            DataType::Blob,
            DataType::Date,
            DataType::Timestamp,
            DataType::Json,
        ] {
            assert_eq!(cast(&Value::Null, &target).unwrap(), Value::Null);
        }
    }

    #[test]
    fn test_text_to_integers_with_range_errors_naming_the_type() {
        assert_eq!(
            cast(&text(" -42 "), &DataType::Integer).unwrap(),
            Value::Int(-42)
        );
        assert_eq!(
            cast(&text("+7"), &DataType::SmallInt).unwrap(),
            Value::Int(7)
        );
        let err = cast(&text("40000"), &DataType::SmallInt).unwrap_err();
        assert!(
            matches!(err, SqlError::Overflow(ref t) if t == "SMALLINT"),
            "{err}"
        );
        assert_eq!(err.to_string(), "SMALLINT out of range");
        let err = cast(&text("99999999999999999999"), &DataType::BigInt).unwrap_err();
        assert!(matches!(err, SqlError::Overflow(ref t) if t == "BIGINT"));
        assert_eq!(
            cast(&text("-9223372036854775808"), &DataType::BigInt).unwrap(),
            Value::Int(i64::MIN)
        );
        for bad in ["1.5", "abc", "", "-", "1_000", "1e3"] {
            let err = cast(&text(bad), &DataType::Integer).unwrap_err();
            match err {
                SqlError::InvalidCast { value, target } => {
                    assert_eq!(value, format!("'{bad}'"));
                    assert_eq!(target, "INTEGER");
                }
                other => panic!("{bad}: {other}"),
            }
        }
        assert!(matches!(
            cast(&Value::Int(2_147_483_648), &DataType::Integer),
            Err(SqlError::Overflow(t)) if t == "INTEGER"
        ));
        assert_eq!(
            cast(&Value::Int(-2_147_483_648), &DataType::Integer).unwrap(),
            Value::Int(-2_147_483_648)
        );
    }

    #[test]
    fn test_float_and_decimal_to_int_round_half_away_from_zero() {
        let int = DataType::Integer;
        assert_eq!(cast(&Value::Float(2.5), &int).unwrap(), Value::Int(3));
        assert_eq!(cast(&Value::Float(-2.5), &int).unwrap(), Value::Int(-3));
        assert_eq!(cast(&Value::Float(2.4999), &int).unwrap(), Value::Int(2));
        assert_eq!(cast(&dec("-0.5"), &int).unwrap(), Value::Int(-1));
        assert_eq!(cast(&dec("1.49"), &int).unwrap(), Value::Int(1));
        assert!(matches!(
            cast(&Value::Float(f64::NAN), &int),
            Err(SqlError::InvalidCast { .. })
        ));
        assert!(matches!(
            cast(&Value::Float(f64::INFINITY), &DataType::BigInt),
            Err(SqlError::InvalidCast { .. })
        ));
        assert!(matches!(
            cast(&Value::Float(9.3e18), &DataType::BigInt),
            Err(SqlError::Overflow(t)) if t == "BIGINT"
        ));
        assert!(matches!(
            cast(&Value::Float(32767.5), &DataType::SmallInt),
            Err(SqlError::Overflow(t)) if t == "SMALLINT"
        ));
        assert!(matches!(
            cast(&dec("1e20"), &DataType::BigInt),
            Err(SqlError::Overflow(_))
        ));
    }

    #[test]
    fn test_text_to_floats_including_special_values() {
        let double = DataType::Double;
        assert_eq!(cast(&text("1.5e3"), &double).unwrap(), Value::Float(1500.0));
        assert_eq!(cast(&text(" .5 "), &double).unwrap(), Value::Float(0.5));
        assert_eq!(
            cast(&text("Infinity"), &double).unwrap(),
            Value::Float(f64::INFINITY)
        );
        assert_eq!(
            cast(&text("-infinity"), &double).unwrap(),
            Value::Float(f64::NEG_INFINITY)
        );
        assert!(matches!(cast(&text("NaN"), &double).unwrap(), Value::Float(x) if x.is_nan()));
        assert!(matches!(cast(&text("nan"), &double).unwrap(), Value::Float(x) if x.is_nan()));
        assert!(matches!(
            cast(&text("1e400"), &double),
            Err(SqlError::Overflow(t)) if t == "DOUBLE PRECISION"
        ));
        for bad in ["abc", "1.2.3", "-NaN", "infinit", "1e", ""] {
            assert!(
                matches!(cast(&text(bad), &double), Err(SqlError::InvalidCast { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn test_real_rounds_through_f32_and_checks_its_range() {
        let real = DataType::Real;
        assert_eq!(
            cast(&Value::Float(0.1), &real).unwrap(),
            Value::Float(f64::from(0.1_f32))
        );
        assert_eq!(
            cast(&Value::Int(16_777_217), &real).unwrap(),
            Value::Float(16_777_216.0)
        );
        assert!(matches!(
            cast(&Value::Float(1e300), &real),
            Err(SqlError::Overflow(t)) if t == "REAL"
        ));
        assert!(matches!(
            cast(&Value::Float(1e-300), &real),
            Err(SqlError::Overflow(_))
        ));
        assert_eq!(
            cast(&Value::Float(f64::NEG_INFINITY), &real).unwrap(),
            Value::Float(f64::NEG_INFINITY)
        );
    }

    #[test]
    fn test_decimal_typmod_rounds_and_checks_integer_digits() {
        let t = dec_type(5, 2);
        assert_eq!(cast(&text("123.456"), &t).unwrap(), dec("123.46"));
        assert_eq!(cast(&text("123.455"), &t).unwrap(), dec("123.46"));
        assert_eq!(cast(&text("-123.455"), &t).unwrap(), dec("-123.46"));
        assert_eq!(cast(&Value::Int(7), &t).unwrap().to_string(), "7.00");
        assert_eq!(cast(&Value::Float(0.1), &t).unwrap().to_string(), "0.10");
        assert_eq!(cast(&text("999.994"), &t).unwrap(), dec("999.99"));
        let err = cast(&text("999.995"), &t).unwrap_err();
        assert!(
            matches!(err, SqlError::Overflow(ref n) if n == "DECIMAL(5,2)"),
            "{err}"
        );
        assert!(matches!(
            cast(&Value::Int(1000), &t),
            Err(SqlError::Overflow(_))
        ));
        // No integer digits at all: only |x| < 1 fits.
        let fraction = dec_type(2, 2);
        assert_eq!(
            cast(&text("0.999"), &fraction).unwrap_err().code(),
            "numeric_out_of_range"
        );
        assert_eq!(cast(&text("-0.994"), &fraction).unwrap(), dec("-0.99"));
        // Scale 0 rounds to an integer.
        assert_eq!(cast(&dec("2.5"), &dec_type(3, 0)).unwrap(), dec("3"));
        // Unconstrained keeps the written scale.
        assert_eq!(
            cast(&text("1.50"), &DataType::Decimal(None))
                .unwrap()
                .to_string(),
            "1.50"
        );
        assert_eq!(
            cast(&text("1.5e2"), &DataType::Decimal(None)).unwrap(),
            dec("150")
        );
        assert!(matches!(
            cast(&text("1e40"), &DataType::Decimal(None)),
            Err(SqlError::Overflow(_))
        ));
        assert!(matches!(
            cast(&text("1_000"), &DataType::Decimal(None)),
            Err(SqlError::InvalidCast { .. })
        ));
        assert!(matches!(
            cast(&Value::Float(f64::NAN), &DataType::Decimal(None)),
            Err(SqlError::InvalidCast { .. })
        ));
        assert_eq!(
            cast(&Value::Float(2.675), &DataType::Decimal(None)).unwrap(),
            dec("2.675")
        );
    }

    #[test]
    fn test_varchar_limit_counts_characters_and_forgives_trailing_spaces() {
        let t = DataType::Text(Some(3));
        assert_eq!(cast(&text("abc"), &t).unwrap(), text("abc"));
        assert_eq!(cast(&text("äöü"), &t).unwrap(), text("äöü"));
        assert_eq!(cast(&text("ab   "), &t).unwrap(), text("ab "));
        let err = cast(&text("abcd"), &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for VARCHAR(3): 'abcd' is 4 characters, longer than 3"
        );
        assert_eq!(err.code(), "invalid_value");
        assert!(cast(&Value::Int(1234), &t).is_err());
        assert_eq!(cast(&Value::Int(123), &t).unwrap(), text("123"));
    }

    #[test]
    fn test_booleans_from_text_and_integers() {
        for yes in ["true", "T", "Yes", "on", "1", " y "] {
            assert_eq!(
                cast(&text(yes), &DataType::Boolean).unwrap(),
                Value::Bool(true)
            );
        }
        for no in ["FALSE", "f", "no", "OFF", "0", "n"] {
            assert_eq!(
                cast(&text(no), &DataType::Boolean).unwrap(),
                Value::Bool(false)
            );
        }
        assert!(matches!(
            cast(&text("maybe"), &DataType::Boolean),
            Err(SqlError::InvalidCast { .. })
        ));
        assert_eq!(
            cast(&Value::Int(5), &DataType::Boolean).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            cast(&Value::Bool(true), &DataType::Integer).unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            cast(&Value::Bool(false), &DataType::Text(None)).unwrap(),
            text("false")
        );
        assert!(matches!(
            cast(&Value::Bool(true), &DataType::Date),
            Err(SqlError::TypeMismatch(_))
        ));
    }

    #[test]
    fn test_dates_and_timestamps() {
        assert_eq!(
            cast(&text("1970-01-02"), &DataType::Date).unwrap(),
            Value::Date(1)
        );
        assert_eq!(
            cast(&text("1969-12-31"), &DataType::Date).unwrap(),
            Value::Date(-1)
        );
        assert_eq!(
            cast(&text("2024-02-29 23:59:59"), &DataType::Date).unwrap(),
            cast(&text("2024-02-29"), &DataType::Date).unwrap()
        );
        assert!(matches!(
            cast(&text("2023-02-29"), &DataType::Date),
            Err(SqlError::InvalidCast { .. })
        ));
        let ts = DataType::Timestamp;
        assert_eq!(
            cast(&text("1970-01-01 00:00:01.5"), &ts).unwrap(),
            Value::Timestamp(1_500_000)
        );
        assert_eq!(
            cast(&text("1970-01-01T00:01:00"), &ts).unwrap(),
            Value::Timestamp(60_000_000)
        );
        assert_eq!(
            cast(&text("1970-01-02"), &ts).unwrap(),
            Value::Timestamp(MICROS_PER_DAY)
        );
        assert_eq!(
            cast(&text("1970-01-01 00:00:00.0000005"), &ts).unwrap(),
            Value::Timestamp(1)
        );
        assert!(matches!(
            cast(&text("1970-01-01 25:00:00"), &ts),
            Err(SqlError::InvalidCast { .. })
        ));
        // Before the epoch a timestamp's date is the day it falls in, not the one after.
        assert_eq!(
            cast(&Value::Timestamp(-1), &DataType::Date).unwrap(),
            Value::Date(-1)
        );
        assert_eq!(
            cast(&Value::Date(2), &ts).unwrap(),
            Value::Timestamp(2 * MICROS_PER_DAY)
        );
        assert_eq!(
            cast(&Value::Timestamp(1_500_000), &DataType::Text(None)).unwrap(),
            text("1970-01-01 00:00:01.500000")
        );
        assert_eq!(
            cast(&Value::Date(0), &DataType::Text(None)).unwrap(),
            text("1970-01-01")
        );
        assert!(matches!(
            cast(&Value::Int(1), &ts),
            Err(SqlError::TypeMismatch(_))
        ));
    }

    #[test]
    fn test_json_is_validated_and_compacted() {
        assert_eq!(
            cast(&text(r#"{ "a" : [1, 2 ,"x"] }"#), &DataType::Json).unwrap(),
            Value::Json(r#"{"a":[1,2,"x"]}"#.to_string())
        );
        let err = cast(&text("{not json"), &DataType::Json).unwrap_err();
        assert!(matches!(err, SqlError::InvalidCast { ref target, .. } if target == "JSON"));
        assert_eq!(
            cast(&Value::Int(3), &DataType::Json).unwrap(),
            Value::Json("3".into())
        );
        assert_eq!(
            cast(&Value::Json("12".into()), &DataType::Integer).unwrap(),
            Value::Int(12)
        );
        assert_eq!(
            cast(&Value::Json("true".into()), &DataType::Boolean).unwrap(),
            Value::Bool(true)
        );
        assert!(cast(&Value::Json("\"12\"".into()), &DataType::Integer).is_err());
        assert_eq!(
            cast(&Value::Json("[1]".into()), &DataType::Text(None)).unwrap(),
            text("[1]")
        );
    }

    #[test]
    fn test_numbers_between_kinds_and_to_text() {
        assert_eq!(
            cast(&Value::Int(3), &DataType::Double).unwrap(),
            Value::Float(3.0)
        );
        assert_eq!(
            cast(&dec("1.25"), &DataType::Double).unwrap(),
            Value::Float(1.25)
        );
        assert_eq!(
            cast(&Value::Int(3), &DataType::Decimal(None)).unwrap(),
            dec("3")
        );
        assert_eq!(
            cast(&Value::Float(2.0), &DataType::Text(None)).unwrap(),
            text("2")
        );
        assert_eq!(format_float(1e20), "1e+20");
        assert_eq!(format_float(1.5e-5), "1.5e-05");
        assert_eq!(format_float(123_456.75), "123456.75");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(-0.0), "-0");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(
            cast(&dec("1.50"), &DataType::Text(None)).unwrap(),
            text("1.50")
        );
    }

    #[test]
    fn test_blobs() {
        assert_eq!(
            cast(&text("\\x01aB"), &DataType::Blob).unwrap(),
            Value::Blob(vec![1, 0xab])
        );
        assert_eq!(
            cast(&text("hi"), &DataType::Blob).unwrap(),
            Value::Blob(b"hi".to_vec())
        );
        assert!(matches!(
            cast(&text("\\x0"), &DataType::Blob),
            Err(SqlError::InvalidCast { .. })
        ));
        assert_eq!(
            cast(&Value::Blob(vec![0xff]), &DataType::Text(None)).unwrap(),
            text("\\xff")
        );
    }

    #[test]
    fn test_error_messages_quote_and_shorten_the_value() {
        let err = cast(&text("it's"), &DataType::Integer).unwrap_err();
        assert_eq!(err.to_string(), "invalid value for INTEGER: 'it''s'");
        let long = "x".repeat(200);
        let err = cast(&text(&long), &DataType::Integer).unwrap_err();
        assert!(err.to_string().ends_with("...'"), "{err}");
        assert!(err.to_string().len() < 120);
    }

    #[test]
    fn test_common_type_promotes_numbers_and_meets_string_literals() {
        use DataType::*;
        assert_eq!(common_type(&SmallInt, &BigInt), Some(BigInt));
        assert_eq!(common_type(&Integer, &SmallInt), Some(Integer));
        assert_eq!(
            common_type(&Integer, &Decimal(Some((5, 2)))),
            Some(Decimal(None))
        );
        assert_eq!(
            common_type(&Decimal(Some((5, 2))), &Decimal(Some((5, 2)))),
            Some(Decimal(Some((5, 2))))
        );
        assert_eq!(common_type(&Decimal(None), &Real), Some(Double));
        assert_eq!(common_type(&Real, &Real), Some(Real));
        assert_eq!(common_type(&BigInt, &Double), Some(Double));
        assert_eq!(common_type(&Null, &Date), Some(Date));
        assert_eq!(
            common_type(&Text(Some(3)), &Text(Some(5))),
            Some(Text(None))
        );
        assert_eq!(common_type(&Date, &Timestamp), Some(Timestamp));
        assert_eq!(common_type(&Text(None), &Date), Some(Date));
        assert_eq!(common_type(&Text(None), &Integer), None);
        assert_eq!(common_type(&Boolean, &Integer), None);
        assert_eq!(common_type(&Blob, &Text(None)), None);
    }
}
