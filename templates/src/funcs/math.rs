//! Sprig numeric conversions (spf13/cast semantics: failures are 0, strings parse with Go's
//! `ParseInt(s, 0, 0)` so `"010"` is 8) and arithmetic. Integer arithmetic is int64 and wraps like
//! Go; division by zero is Go's runtime error. The `...f` functions use shopspring/decimal in
//! Sprig; they are computed here in exact decimal on the operands' shortest representations (so
//! `addf 0.1 0.2` is `0.3`), falling back to float64 arithmetic beyond 38 digits.

use super::func::{FnResult, Func, Param, fixed, int_arg, str_arg, variadic};
use crate::go::budget::Budget;
use crate::go::fmt::to_string;
use crate::go::strconv::format_float;
use crate::go::strconv::parse_int_literal;
use crate::go::value::Value;

use Param::{Any, Float, Int, Str};

pub(super) const FUNCS: &[Func] = &[
    fixed("atoi", &[Str], atoi),
    fixed("int", &[Any], int),
    fixed("int64", &[Any], int64),
    fixed("float64", &[Any], float64),
    fixed("toDecimal", &[Any], to_decimal),
    fixed("add1", &[Any], add1),
    variadic("add", &[], Any, add),
    fixed("sub", &[Any, Any], sub),
    fixed("div", &[Any, Any], div),
    fixed("mod", &[Any, Any], modulo),
    variadic("mul", &[Any], Any, mul),
    variadic("max", &[Any], Any, max),
    variadic("biggest", &[Any], Any, max),
    variadic("min", &[Any], Any, min),
    variadic("maxf", &[Any], Any, maxf),
    variadic("minf", &[Any], Any, minf),
    fixed("floor", &[Any], floor),
    fixed("ceil", &[Any], ceil),
    variadic("round", &[Any, Int], Float, round),
    fixed("add1f", &[Any], add1f),
    variadic("addf", &[], Any, addf),
    variadic("subf", &[Any], Any, subf),
    variadic("mulf", &[Any], Any, mulf),
    variadic("divf", &[Any], Any, divf),
];

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, u) = parse_int_literal(s)?;
    if neg {
        0i64.checked_sub_unsigned(u)
    } else {
        i64::try_from(u).ok()
    }
}

/// cast's `trimZeroDecimal`: `"5.00"` → `"5"`.
fn trim_zero_decimal(s: &str) -> &str {
    let mut found_zero = false;
    for (i, c) in s.char_indices().rev() {
        match c {
            '.' if found_zero => return &s[..i],
            '0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

/// `cast.ToInt64`.
// A float converts like Go's `int64(f)`: truncated toward zero (out of range Go's result is
// platform-defined; Rust's `as` saturates).
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn to_int64(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Str(s) => parse_int(trim_zero_decimal(s)).unwrap_or(0),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

/// `cast.ToFloat64`.
// An integer converts like Go's `float64(i)`: rounded to the nearest float.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn to_float64(v: &Value<'_>) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Str(s) => s.parse().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

fn atoi<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let s = str_arg(a, 0);
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    Ok(Value::Int(if ok { s.parse().unwrap_or(0) } else { 0 }))
}

fn int<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int(a.first().map_or(0, to_int64)))
}

fn int64<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int64(a.first().map_or(0, to_int64)))
}

fn float64<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(a.first().map_or(0.0, to_float64)))
}

fn to_decimal<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let text = to_string(a.first().unwrap_or(&Value::Nil), b)?;
    Ok(Value::Int64(i64::from_str_radix(&text, 8).unwrap_or(0)))
}

fn add1<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int64(a.first().map_or(0, to_int64).wrapping_add(1)))
}

fn add<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int64(
        a.iter().map(to_int64).fold(0, i64::wrapping_add),
    ))
}

fn two(a: &[Value<'_>]) -> (i64, i64) {
    (a.first().map_or(0, to_int64), a.get(1).map_or(0, to_int64))
}

fn sub<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (x, y) = two(a);
    Ok(Value::Int64(x.wrapping_sub(y)))
}

const DIVIDE_BY_ZERO: &str = "runtime error: integer divide by zero";

fn div<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (x, y) = two(a);
    if y == 0 {
        return Err(DIVIDE_BY_ZERO.to_string());
    }
    Ok(Value::Int64(x.wrapping_div(y)))
}

fn modulo<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (x, y) = two(a);
    if y == 0 {
        return Err(DIVIDE_BY_ZERO.to_string());
    }
    Ok(Value::Int64(x.wrapping_rem(y)))
}

fn mul<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int64(
        a.iter()
            .map(to_int64)
            .reduce(i64::wrapping_mul)
            .unwrap_or(0),
    ))
}

fn max<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
}

fn min<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int64(a.iter().map(to_int64).min().unwrap_or(0)))
}

fn maxf<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(
        a.iter().map(to_float64).reduce(f64::max).unwrap_or(0.0),
    ))
}

fn minf<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(
        a.iter().map(to_float64).reduce(f64::min).unwrap_or(0.0),
    ))
}

fn floor<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(a.first().map_or(0.0, to_float64).floor()))
}

fn ceil<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(a.first().map_or(0.0, to_float64).ceil()))
}

/// Sprig's `round value places [roundOn]`.
// `places` converts like Sprig's `float64(places)`: rounded to the nearest float.
#[allow(clippy::cast_precision_loss)]
fn round<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let round_on = match a.get(2) {
        Some(Value::Float(f)) => *f,
        _ => 0.5,
    };
    let val = a.first().map_or(0.0, to_float64);
    let pow = 10f64.powf(int_arg(a, 1) as f64);
    let digit = pow * val;
    let r = if digit.fract() >= round_on {
        digit.ceil()
    } else {
        digit.floor()
    };
    Ok(Value::Float(r / pow))
}

/// An exact decimal `m × 10^e`, from a float's shortest representation.
#[derive(Clone, Copy)]
struct Dec {
    m: i128,
    e: i32,
}

fn dec(f: f64) -> Option<Dec> {
    if !f.is_finite() {
        return None;
    }
    let text = format_float(f, 'e', None);
    let (mant, exp) = text.split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    let frac_digits = i32::try_from(mant.split_once('.').map_or(0, |(_, f)| f.len())).ok()?;
    let m: i128 = mant.replace('.', "").parse().ok()?;
    Some(Dec {
        m,
        e: exp - frac_digits,
    })
}

fn scale(m: i128, by: i32) -> Option<i128> {
    10i128
        .checked_pow(u32::try_from(by).ok()?)
        .and_then(|p| m.checked_mul(p))
}

fn dec_to_f64(d: Dec) -> f64 {
    format!("{}e{}", d.m, d.e).parse().unwrap_or(f64::NAN)
}

fn dec_add(x: Dec, y: Dec) -> Option<Dec> {
    let e = x.e.min(y.e);
    let x_m = scale(x.m, x.e - e)?;
    let y_m = scale(y.m, y.e - e)?;
    Some(Dec {
        m: x_m.checked_add(y_m)?,
        e,
    })
}

/// Decimal division rounded to 16 fractional digits (shopspring's `DivisionPrecision`).
fn dec_div(x: Dec, y: Dec) -> Option<Dec> {
    const PREC: i32 = 16;
    // x/y × 10^PREC = (x.m × 10^(x.e - y.e + PREC)) / y.m
    let shift = x.e - y.e + PREC;
    let (num, den) = if shift >= 0 {
        (scale(x.m, shift)?, y.m)
    } else {
        (x.m, scale(y.m, -shift)?)
    };
    let q = num / den;
    let r = num % den;
    let q = if (r.checked_mul(2)?).abs() >= den.abs() {
        q + num.signum() * den.signum()
    } else {
        q
    };
    Some(Dec { m: q, e: -PREC })
}

/// Folds the operands with a decimal operation, or the float64 one when exact arithmetic
/// overflows.
fn decimal_fold(
    vals: &[f64],
    exact: fn(Dec, Dec) -> Option<Dec>,
    float: fn(f64, f64) -> f64,
) -> f64 {
    let Some((&first, rest)) = vals.split_first() else {
        return 0.0;
    };
    let mut acc = dec(first);
    let mut approx = first;
    for &v in rest {
        approx = float(approx, v);
        acc = acc.and_then(|a| dec(v).and_then(|b| exact(a, b)));
    }
    acc.map_or(approx, dec_to_f64)
}

fn floats(a: &[Value<'_>]) -> Vec<f64> {
    a.iter().map(to_float64).collect()
}

fn add1f<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let vals = [a.first().map_or(0.0, to_float64), 1.0];
    Ok(Value::Float(decimal_fold(&vals, dec_add, |x, y| x + y)))
}

fn addf<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut vals = vec![0.0];
    vals.extend(floats(a));
    Ok(Value::Float(decimal_fold(&vals, dec_add, |x, y| x + y)))
}

fn subf<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let neg = |x: Dec, y: Dec| dec_add(x, Dec { m: -y.m, e: y.e });
    Ok(Value::Float(decimal_fold(&floats(a), neg, |x, y| x - y)))
}

fn mulf<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let times = |x: Dec, y: Dec| {
        Some(Dec {
            m: x.m.checked_mul(y.m)?,
            e: x.e + y.e,
        })
    };
    Ok(Value::Float(decimal_fold(&floats(a), times, |x, y| x * y)))
}

fn divf<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let vals = floats(a);
    if vals.iter().skip(1).any(|v| *v == 0.0) {
        return Err("decimal division by zero".to_string());
    }
    Ok(Value::Float(decimal_fold(&vals, dec_div, |x, y| x / y)))
}
