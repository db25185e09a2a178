//! The arithmetic operators `+ - * / %`, unary minus, and `||`.
//!
//! Every operator returns NULL when an operand is NULL. Numbers promote integer < decimal <
//! floating point: integer with integer stays integer (64-bit, checked, overflow is an error),
//! integer with decimal is decimal, and anything with a float is a float. Integer division
//! truncates toward zero, and the remainder takes the dividend's sign, as in PostgreSQL.
//! Division or remainder by zero is [`SqlError::DivisionByZero`] for every kind of number.
//! A float result that overflows to infinity from finite operands is [`SqlError::Overflow`].
//!
//! Dates take whole days: `date + n`, `n + date`, `date - n` are dates, `date - date` is the
//! number of days between them.

use rust_decimal::Decimal;

use crate::cast::{date_in_range, value_to_text};
use crate::error::{Result, SqlError};
use crate::types::{DataType, Value, decimal_to_f64};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Rem => "%",
        }
    }
}

/// `a + b`: numbers, or a date and a number of days.
///
/// # Errors
///
/// [`SqlError::Overflow`] when the result does not fit, [`SqlError::TypeMismatch`] for
/// operands that do not add.
pub fn add(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Date(d), Value::Int(n)) | (Value::Int(n), Value::Date(d)) => add_days(*d, *n),
        _ => numeric(Op::Add, a, b),
    }
}

/// `a - b`: numbers, a date minus days (a date), or a date minus a date (days).
///
/// # Errors
///
/// As [`add`].
pub fn sub(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Date(d), Value::Int(n)) => {
            let n = n.checked_neg().ok_or_else(|| overflow(&DataType::Date))?;
            add_days(*d, n)
        }
        (Value::Date(x), Value::Date(y)) => Ok(Value::Int(i64::from(*x) - i64::from(*y))),
        _ => numeric(Op::Sub, a, b),
    }
}

/// `a * b`.
///
/// # Errors
///
/// As [`add`].
pub fn mul(a: &Value, b: &Value) -> Result<Value> {
    numeric(Op::Mul, a, b)
}

/// `a / b`; integer division truncates toward zero.
///
/// # Errors
///
/// [`SqlError::DivisionByZero`] for a zero divisor, otherwise as [`add`]
/// (`i64::MIN / -1` overflows).
pub fn div(a: &Value, b: &Value) -> Result<Value> {
    numeric(Op::Div, a, b)
}

/// `a % b`, the remainder of truncating division (its sign is the dividend's).
///
/// # Errors
///
/// [`SqlError::DivisionByZero`] for a zero divisor, otherwise as [`add`].
pub fn rem(a: &Value, b: &Value) -> Result<Value> {
    numeric(Op::Rem, a, b)
}

/// Unary `-a`.
///
/// # Errors
///
/// [`SqlError::Overflow`] for `-i64::MIN`, [`SqlError::TypeMismatch`] for a non-number.
pub fn neg(a: &Value) -> Result<Value> {
    match a {
        Value::Null => Ok(Value::Null),
        Value::Int(i) => i
            .checked_neg()
            .map(Value::Int)
            .ok_or_else(|| overflow(&DataType::BigInt)),
        Value::Decimal(d) => Ok(Value::Decimal(-*d)),
        Value::Float(x) => Ok(Value::Float(-*x)),
        other => Err(SqlError::TypeMismatch(format!(
            "operator does not exist: - {}",
            other.data_type()
        ))),
    }
}

/// `a || b`: text with anything is text (the other side written as by `CAST(.. AS TEXT)`),
/// blob with blob is a blob; NULL if either side is NULL.
///
/// # Errors
///
/// [`SqlError::TypeMismatch`] when neither side is text and they are not both blobs.
pub fn concat(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
        (Value::Blob(x), Value::Blob(y)) => Ok(Value::Blob([x.as_slice(), y].concat())),
        (Value::Text(_), _) | (_, Value::Text(_)) => {
            let mut out = value_to_text(a).unwrap_or_default();
            out.push_str(&value_to_text(b).unwrap_or_default());
            Ok(Value::Text(out))
        }
        _ => Err(mismatch("||", a, b)),
    }
}

fn mismatch(op: &str, a: &Value, b: &Value) -> SqlError {
    SqlError::TypeMismatch(format!(
        "operator does not exist: {} {op} {}",
        a.data_type(),
        b.data_type()
    ))
}

fn overflow(t: &DataType) -> SqlError {
    SqlError::Overflow(t.to_string())
}

fn add_days(days: i32, n: i64) -> Result<Value> {
    let result = i64::from(days)
        .checked_add(n)
        .filter(|d| date_in_range(*d))
        .ok_or_else(|| overflow(&DataType::Date))?;
    Ok(Value::Date(
        i32::try_from(result).expect("date_in_range keeps days within i32"),
    ))
}

fn numeric(op: Op, a: &Value, b: &Value) -> Result<Value> {
    use Value::{Decimal as Dec, Float, Int, Null};
    match (a, b) {
        (Null, _) | (_, Null) => Ok(Null),
        (Int(x), Int(y)) => int_op(op, *x, *y),
        (Int(_) | Dec(_), Int(_) | Dec(_)) => decimal_op(op, to_decimal(a), to_decimal(b)),
        (Int(_) | Dec(_) | Float(_), Int(_) | Dec(_) | Float(_)) => {
            float_op(op, to_f64(a), to_f64(b))
        }
        _ => Err(mismatch(op.symbol(), a, b)),
    }
}

fn to_decimal(v: &Value) -> Decimal {
    match v {
        Value::Int(i) => Decimal::from(*i),
        Value::Decimal(d) => *d,
        _ => unreachable!("only integers and decimals reach decimal arithmetic"),
    }
}

fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Decimal(d) => decimal_to_f64(d),
        Value::Float(x) => *x,
        _ => unreachable!("only numbers reach float arithmetic"),
    }
}

fn int_op(op: Op, x: i64, y: i64) -> Result<Value> {
    if matches!(op, Op::Div | Op::Rem) && y == 0 {
        return Err(SqlError::DivisionByZero);
    }
    let result = match op {
        Op::Add => x.checked_add(y),
        Op::Sub => x.checked_sub(y),
        Op::Mul => x.checked_mul(y),
        Op::Div => x.checked_div(y),
        // i64::MIN % -1 is 0 mathematically; Rust's checked_rem reports it as overflow.
        Op::Rem if y == -1 => Some(0),
        Op::Rem => x.checked_rem(y),
    };
    result
        .map(Value::Int)
        .ok_or_else(|| overflow(&DataType::BigInt))
}

fn decimal_op(op: Op, x: Decimal, y: Decimal) -> Result<Value> {
    if matches!(op, Op::Div | Op::Rem) && y.is_zero() {
        return Err(SqlError::DivisionByZero);
    }
    let result = match op {
        Op::Add => x.checked_add(y),
        Op::Sub => x.checked_sub(y),
        Op::Mul => x.checked_mul(y),
        Op::Div => x.checked_div(y),
        Op::Rem => x.checked_rem(y),
    };
    result
        .map(Value::Decimal)
        .ok_or_else(|| overflow(&DataType::Decimal(None)))
}

fn float_op(op: Op, x: f64, y: f64) -> Result<Value> {
    if matches!(op, Op::Div | Op::Rem) && y == 0.0 {
        return Err(SqlError::DivisionByZero);
    }
    let result = match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div => x / y,
        Op::Rem => x % y,
    };
    if result.is_infinite() && x.is_finite() && y.is_finite() {
        return Err(overflow(&DataType::Double));
    }
    Ok(Value::Float(result))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn dec(s: &str) -> Value {
        Value::Decimal(Decimal::from_str(s).unwrap())
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    #[test]
    fn test_null_propagates_through_every_operator() {
        for f in [add, sub, mul, div, rem, concat] {
            assert_eq!(f(&Value::Null, &Value::Int(1)).unwrap(), Value::Null);
            assert_eq!(f(&text("x"), &Value::Null).unwrap(), Value::Null);
        }
        assert_eq!(neg(&Value::Null).unwrap(), Value::Null);
        // NULL divided by zero is NULL, not an error.
        assert_eq!(div(&Value::Null, &Value::Int(0)).unwrap(), Value::Null);
    }

    #[test]
    fn test_integer_arithmetic_is_checked() {
        assert_eq!(add(&Value::Int(2), &Value::Int(3)).unwrap(), Value::Int(5));
        assert_eq!(
            mul(&Value::Int(-4), &Value::Int(3)).unwrap(),
            Value::Int(-12)
        );
        let err = add(&Value::Int(i64::MAX), &Value::Int(1)).unwrap_err();
        assert!(
            matches!(err, SqlError::Overflow(ref t) if t == "BIGINT"),
            "{err}"
        );
        assert!(matches!(
            sub(&Value::Int(i64::MIN), &Value::Int(1)),
            Err(SqlError::Overflow(_))
        ));
        assert!(matches!(
            mul(&Value::Int(i64::MAX / 2 + 1), &Value::Int(2)),
            Err(SqlError::Overflow(_))
        ));
        assert!(matches!(
            div(&Value::Int(i64::MIN), &Value::Int(-1)),
            Err(SqlError::Overflow(_))
        ));
        assert_eq!(
            rem(&Value::Int(i64::MIN), &Value::Int(-1)).unwrap(),
            Value::Int(0)
        );
        assert!(matches!(
            neg(&Value::Int(i64::MIN)),
            Err(SqlError::Overflow(_))
        ));
        assert_eq!(neg(&Value::Int(5)).unwrap(), Value::Int(-5));
    }

    #[test]
    fn test_integer_division_truncates_toward_zero() {
        assert_eq!(div(&Value::Int(7), &Value::Int(2)).unwrap(), Value::Int(3));
        assert_eq!(
            div(&Value::Int(-7), &Value::Int(2)).unwrap(),
            Value::Int(-3)
        );
        assert_eq!(
            div(&Value::Int(7), &Value::Int(-2)).unwrap(),
            Value::Int(-3)
        );
        assert_eq!(
            rem(&Value::Int(-7), &Value::Int(2)).unwrap(),
            Value::Int(-1)
        );
        assert_eq!(rem(&Value::Int(7), &Value::Int(-2)).unwrap(), Value::Int(1));
    }

    #[test]
    fn test_division_by_zero_for_every_kind_of_number() {
        let zeros = [
            Value::Int(0),
            dec("0.00"),
            Value::Float(0.0),
            Value::Float(-0.0),
        ];
        for zero in &zeros {
            for f in [div, rem] {
                assert!(matches!(
                    f(&Value::Int(1), zero),
                    Err(SqlError::DivisionByZero)
                ));
                assert!(matches!(
                    f(&dec("1.5"), zero),
                    Err(SqlError::DivisionByZero)
                ));
                assert!(matches!(
                    f(&Value::Float(1.5), zero),
                    Err(SqlError::DivisionByZero)
                ));
            }
        }
    }

    #[test]
    fn test_numeric_promotion() {
        assert_eq!(add(&Value::Int(1), &dec("0.5")).unwrap(), dec("1.5"));
        assert_eq!(mul(&dec("1.5"), &dec("2")).unwrap(), dec("3.0"));
        assert_eq!(div(&dec("1"), &Value::Int(4)).unwrap(), dec("0.25"));
        assert_eq!(rem(&dec("7.5"), &Value::Int(2)).unwrap(), dec("1.5"));
        assert_eq!(
            add(&Value::Int(1), &Value::Float(0.5)).unwrap(),
            Value::Float(1.5)
        );
        assert_eq!(
            sub(&dec("1.5"), &Value::Float(0.5)).unwrap(),
            Value::Float(1.0)
        );
        assert_eq!(
            div(&Value::Float(1.0), &Value::Int(4)).unwrap(),
            Value::Float(0.25)
        );
        assert!(matches!(
            mul(&Value::Decimal(Decimal::MAX), &Value::Int(2)),
            Err(SqlError::Overflow(ref t)) if t == "DECIMAL"
        ));
        assert!(matches!(
            mul(&Value::Float(1e300), &Value::Float(1e300)),
            Err(SqlError::Overflow(ref t)) if t == "DOUBLE PRECISION"
        ));
        // Infinity in gives infinity out without an error.
        assert_eq!(
            add(&Value::Float(f64::INFINITY), &Value::Int(1)).unwrap(),
            Value::Float(f64::INFINITY)
        );
        assert_eq!(neg(&dec("1.5")).unwrap(), dec("-1.5"));
    }

    #[test]
    fn test_date_arithmetic_in_days() {
        assert_eq!(
            add(&Value::Date(10), &Value::Int(5)).unwrap(),
            Value::Date(15)
        );
        assert_eq!(
            add(&Value::Int(-5), &Value::Date(10)).unwrap(),
            Value::Date(5)
        );
        assert_eq!(
            sub(&Value::Date(10), &Value::Int(15)).unwrap(),
            Value::Date(-5)
        );
        assert_eq!(
            sub(&Value::Date(10), &Value::Date(3)).unwrap(),
            Value::Int(7)
        );
        assert_eq!(
            sub(&Value::Date(3), &Value::Date(10)).unwrap(),
            Value::Int(-7)
        );
        assert!(matches!(
            add(&Value::Date(0), &Value::Int(i64::MAX)),
            Err(SqlError::Overflow(ref t)) if t == "DATE"
        ));
        assert!(matches!(
            sub(&Value::Date(0), &Value::Int(i64::MIN)),
            Err(SqlError::Overflow(_))
        ));
        assert!(matches!(
            add(&Value::Date(0), &Value::Int(1_000_000_000)),
            Err(SqlError::Overflow(_))
        ));
        assert!(matches!(
            add(&Value::Date(1), &Value::Date(2)),
            Err(SqlError::TypeMismatch(_))
        ));
        assert!(matches!(
            sub(&Value::Int(1), &Value::Date(2)),
            Err(SqlError::TypeMismatch(_))
        ));
    }

    #[test]
    fn test_type_errors_name_the_operator_and_both_types() {
        let err = add(&text("a"), &Value::Int(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "type mismatch: operator does not exist: TEXT + BIGINT"
        );
        let err = rem(&Value::Bool(true), &Value::Float(1.0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "type mismatch: operator does not exist: BOOLEAN % DOUBLE PRECISION"
        );
        let err = concat(&Value::Int(1), &Value::Int(2)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "type mismatch: operator does not exist: BIGINT || BIGINT"
        );
        let err = neg(&text("a")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "type mismatch: operator does not exist: - TEXT"
        );
    }

    #[test]
    fn test_concat_writes_the_other_side_as_text() {
        assert_eq!(concat(&text("a"), &text("b")).unwrap(), text("ab"));
        assert_eq!(concat(&text("n="), &Value::Int(5)).unwrap(), text("n=5"));
        assert_eq!(concat(&Value::Float(2.0), &text("x")).unwrap(), text("2x"));
        assert_eq!(
            concat(&text("d "), &Value::Date(0)).unwrap(),
            text("d 1970-01-01")
        );
        assert_eq!(concat(&text(""), &Value::Bool(true)).unwrap(), text("true"));
        assert_eq!(concat(&text("ä"), &text("ö")).unwrap(), text("äö"));
        assert_eq!(
            concat(&Value::Blob(vec![1]), &Value::Blob(vec![2])).unwrap(),
            Value::Blob(vec![1, 2])
        );
    }
}
