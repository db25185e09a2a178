//! Bound expressions and their evaluation with SQL's three-valued logic.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::error::{Result, SqlError};
use crate::plan::Plan;
use crate::types::{DataType, Value};

/// A comparison or logical operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `||`
    Concat,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
}

impl BinOp {
    /// The SQL spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Concat => "||",
            BinOp::Eq => "=",
            BinOp::NotEq => "<>",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
        }
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn flip(self) -> BinOp {
        match self {
            BinOp::Lt => BinOp::Gt,
            BinOp::LtEq => BinOp::GtEq,
            BinOp::Gt => BinOp::Lt,
            BinOp::GtEq => BinOp::LtEq,
            other => other,
        }
    }

    /// True for the six comparisons.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
        )
    }
}

/// How a subquery is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubqueryKind {
    /// `(SELECT ...)`: one value (NULL for no rows, an error for several).
    Scalar,
    /// `EXISTS (SELECT ...)`.
    Exists,
}

/// An expression bound to the columns of its input row.
#[derive(Debug, Clone)]
pub enum Expr {
    /// Column `i` of the input row.
    Column(usize),
    /// Column `i` of the row `depth` levels out (a correlated subquery's reference; depth 1 is
    /// the immediately enclosing query).
    Outer(usize, usize),
    /// A constant.
    Literal(Value),
    /// Positional parameter `$n` (0-based here).
    Param(usize),
    /// A binary operator.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `NOT`.
    Not(Box<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// `IS [NOT] NULL`.
    IsNull(Box<Expr>, bool),
    /// `IS [NOT] DISTINCT FROM`.
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    /// `x [NOT] IN (list)`.
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `x [NOT] IN (subquery)`.
    InSubquery(Box<Expr>, Arc<Plan>, bool),
    /// `[NOT] LIKE` / `ILIKE`.
    Like {
        /// The text.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Box<Expr>,
        /// Escape character.
        escape: Option<char>,
        /// ILIKE.
        case_insensitive: bool,
        /// NOT.
        negated: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. ELSE .. END`.
    Case {
        /// Simple CASE operand.
        operand: Option<Box<Expr>>,
        /// (condition or value, result) pairs.
        whens: Vec<(Expr, Expr)>,
        /// ELSE.
        otherwise: Option<Box<Expr>>,
    },
    /// `CAST(x AS t)`.
    Cast(Box<Expr>, DataType),
    /// A scalar function call.
    Func(String, Vec<Expr>),
    /// `COALESCE(...)`: lazy.
    Coalesce(Vec<Expr>),
    /// `NULLIF(a, b)`.
    NullIf(Box<Expr>, Box<Expr>),
    /// A scalar or EXISTS subquery.
    Subquery(SubqueryKind, Arc<Plan>, bool),
}

impl Expr {
    /// A literal.
    pub fn lit(v: Value) -> Expr {
        Expr::Literal(v)
    }

    /// True if the expression reads no column and no parameter (it can be folded).
    pub fn is_constant(&self) -> bool {
        let mut constant = true;
        self.visit(&mut |e| {
            if matches!(
                e,
                Expr::Column(_)
                    | Expr::Outer(..)
                    | Expr::Param(_)
                    | Expr::Subquery(..)
                    | Expr::InSubquery(..)
            ) {
                constant = false;
            }
            if let Expr::Func(name, _) = e
                && matches!(
                    name.as_str(),
                    "now" | "current_timestamp" | "current_date" | "random"
                )
            {
                constant = false;
            }
        });
        constant
    }

    /// True if the expression reads no column of its own row (parameters and outer columns
    /// are fine): it has one value per execution, usable as an index key.
    pub fn is_row_independent(&self) -> bool {
        let mut independent = true;
        self.visit(&mut |e| {
            if matches!(
                e,
                Expr::Column(_) | Expr::Subquery(..) | Expr::InSubquery(..)
            ) {
                independent = false;
            }
        });
        independent
    }

    /// Calls `f` on this expression and every sub-expression (not into subquery plans).
    pub fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Column(_) | Expr::Outer(..) | Expr::Literal(_) | Expr::Param(_) => {}
            Expr::Binary(_, a, b) | Expr::IsDistinct(a, b, _) | Expr::NullIf(a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::Not(a) | Expr::Neg(a) | Expr::IsNull(a, _) | Expr::Cast(a, _) => a.visit(f),
            Expr::InList(a, list, _) => {
                a.visit(f);
                list.iter().for_each(|e| e.visit(f));
            }
            Expr::InSubquery(a, _, _) => a.visit(f),
            Expr::Like { expr, pattern, .. } => {
                expr.visit(f);
                pattern.visit(f);
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.visit(f);
                }
                for (w, t) in whens {
                    w.visit(f);
                    t.visit(f);
                }
                if let Some(o) = otherwise {
                    o.visit(f);
                }
            }
            Expr::Func(_, args) | Expr::Coalesce(args) => args.iter().for_each(|e| e.visit(f)),
            Expr::Subquery(..) => {}
        }
    }

    /// Rewrites column references through `map` (column `i` becomes `map(i)`).
    pub fn remap(&self, map: &dyn Fn(usize) -> usize) -> Expr {
        let r = |e: &Expr| Box::new(e.remap(map));
        match self {
            Expr::Column(i) => Expr::Column(map(*i)),
            Expr::Outer(..) | Expr::Literal(_) | Expr::Param(_) | Expr::Subquery(..) => {
                self.clone()
            }
            Expr::Binary(op, a, b) => Expr::Binary(*op, r(a), r(b)),
            Expr::Not(a) => Expr::Not(r(a)),
            Expr::Neg(a) => Expr::Neg(r(a)),
            Expr::IsNull(a, n) => Expr::IsNull(r(a), *n),
            Expr::IsDistinct(a, b, n) => Expr::IsDistinct(r(a), r(b), *n),
            Expr::InList(a, l, n) => {
                Expr::InList(r(a), l.iter().map(|e| e.remap(map)).collect(), *n)
            }
            Expr::InSubquery(a, p, n) => Expr::InSubquery(r(a), Arc::clone(p), *n),
            Expr::Like {
                expr,
                pattern,
                escape,
                case_insensitive,
                negated,
            } => Expr::Like {
                expr: r(expr),
                pattern: r(pattern),
                escape: *escape,
                case_insensitive: *case_insensitive,
                negated: *negated,
            },
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => Expr::Case {
                operand: operand.as_ref().map(|o| r(o)),
                whens: whens
                    .iter()
                    .map(|(w, t)| (w.remap(map), t.remap(map)))
                    .collect(),
                otherwise: otherwise.as_ref().map(|o| r(o)),
            },
            Expr::Cast(a, t) => Expr::Cast(r(a), t.clone()),
            Expr::Func(n, args) => {
                Expr::Func(n.clone(), args.iter().map(|e| e.remap(map)).collect())
            }
            Expr::Coalesce(args) => Expr::Coalesce(args.iter().map(|e| e.remap(map)).collect()),
            Expr::NullIf(a, b) => Expr::NullIf(r(a), r(b)),
        }
    }

    /// The columns this expression reads.
    pub fn columns(&self) -> Vec<usize> {
        let mut cols = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Column(i) = e {
                cols.push(*i);
            }
        });
        cols
    }

    /// Splits a conjunction into its parts.
    pub fn conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::Binary(BinOp::And, a, b) => {
                let mut v = a.conjuncts();
                v.extend(b.conjuncts());
                v
            }
            other => vec![other],
        }
    }

    /// Joins parts into a conjunction (`None` for no parts).
    pub fn and_all(parts: Vec<Expr>) -> Option<Expr> {
        parts
            .into_iter()
            .reduce(|a, b| Expr::Binary(BinOp::And, Box::new(a), Box::new(b)))
    }
}

/// Compares with SQL semantics: NULL when either side is NULL.
pub fn compare(op: BinOp, a: &Value, b: &Value) -> Result<Value> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let ord = match a.sql_cmp(b) {
        Some(o) => o,
        None => {
            // Text against another type: compare after casting the text (a literal '2024-01-01'
            // against a DATE column).
            match (a, b) {
                (Value::Text(_), _) => {
                    let a2 = crate::cast::cast(a, &b.data_type())?;
                    a2.sql_cmp(b).ok_or_else(|| incomparable(op, a, b))?
                }
                (_, Value::Text(_)) => {
                    let b2 = crate::cast::cast(b, &a.data_type())?;
                    a.sql_cmp(&b2).ok_or_else(|| incomparable(op, a, b))?
                }
                (Value::Float(x), Value::Float(y)) if x.is_nan() || y.is_nan() => {
                    // NaN equals itself and sorts above every number, as in PostgreSQL.
                    x.total_cmp(y)
                }
                _ => return Err(incomparable(op, a, b)),
            }
        }
    };
    Ok(Value::Bool(match op {
        BinOp::Eq => ord == Ordering::Equal,
        BinOp::NotEq => ord != Ordering::Equal,
        BinOp::Lt => ord == Ordering::Less,
        BinOp::LtEq => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        BinOp::GtEq => ord != Ordering::Less,
        _ => unreachable!("compare called with a non-comparison"),
    }))
}

fn incomparable(op: BinOp, a: &Value, b: &Value) -> SqlError {
    SqlError::TypeMismatch(format!(
        "operator does not exist: {} {} {}",
        a.data_type(),
        op.symbol(),
        b.data_type()
    ))
}

/// Applies a binary operator to two values (logical operators included, with 3VL).
pub fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value> {
    match op {
        BinOp::Add => crate::arith::add(a, b),
        BinOp::Sub => crate::arith::sub(a, b),
        BinOp::Mul => crate::arith::mul(a, b),
        BinOp::Div => crate::arith::div(a, b),
        BinOp::Rem => crate::arith::rem(a, b),
        BinOp::Concat => crate::arith::concat(a, b),
        BinOp::And => Ok(match (truth(a)?, truth(b)?) {
            (Some(false), _) | (_, Some(false)) => Value::Bool(false),
            (Some(true), Some(true)) => Value::Bool(true),
            _ => Value::Null,
        }),
        BinOp::Or => Ok(match (truth(a)?, truth(b)?) {
            (Some(true), _) | (_, Some(true)) => Value::Bool(true),
            (Some(false), Some(false)) => Value::Bool(false),
            _ => Value::Null,
        }),
        _ => compare(op, a, b),
    }
}

/// The truth of a value used as a condition: BOOLEAN or NULL, anything else is an error.
pub fn truth(v: &Value) -> Result<Option<bool>> {
    match v {
        Value::Bool(b) => Ok(Some(*b)),
        Value::Null => Ok(None),
        other => Err(SqlError::TypeMismatch(format!(
            "argument of a condition must be BOOLEAN, not {}",
            other.data_type()
        ))),
    }
}
