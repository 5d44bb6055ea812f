//! Defaults, flow control and reflection: `default empty coalesce all any ternary fail typeOf
//! typeIs typeIsLike kindOf kindIs deepEqual`.

use super::func::{FnResult, Func, Param, arg, bool_arg, fixed, str_arg, variadic};
use crate::go::budget::Budget;
use crate::go::value::Value;

use Param::{Any, Bool, Str};

pub(super) const FUNCS: &[Func] = &[
    variadic("default", &[Any], Any, default),
    fixed("empty", &[Any], empty_fn),
    variadic("coalesce", &[], Any, coalesce),
    variadic("all", &[], Any, all),
    variadic("any", &[], Any, any),
    fixed("ternary", &[Any, Any, Bool], ternary),
    fixed("fail", &[Str], fail),
    fixed("typeOf", &[Any], type_of),
    fixed("typeIs", &[Str, Any], type_is),
    fixed("typeIsLike", &[Str, Any], type_is_like),
    fixed("kindOf", &[Any], kind_of),
    fixed("kindIs", &[Str, Any], kind_is),
    fixed("deepEqual", &[Any, Any], deep_equal),
];

/// Sprig's `empty`: nil, zero numbers, false, and empty strings, lists and maps.
pub(crate) fn empty(v: &Value<'_>) -> bool {
    match v {
        Value::Missing | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) | Value::Int64(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::Version(_) => false,
        other => other.len() == Some(0),
    }
}

/// `default DEFAULT [GIVEN]`: GIVEN unless it is empty (or absent).
fn default<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    match a.get(1) {
        Some(given) if !empty(given) => Ok(given.clone()),
        _ => Ok(arg(a, 0)),
    }
}

fn empty_fn<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(empty(&arg(a, 0))))
}

fn coalesce<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil))
}

fn all<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(a.iter().all(|v| !empty(v))))
}

fn any<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(a.iter().any(|v| !empty(v))))
}

fn ternary<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(if bool_arg(a, 2) { arg(a, 0) } else { arg(a, 1) })
}

fn fail<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Err(str_arg(a, 0).to_string())
}

fn type_of<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::string(arg(a, 0).go_type()))
}

fn type_is<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(str_arg(a, 0) == arg(a, 1).go_type()))
}

fn type_is_like<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (target, t) = (str_arg(a, 0), arg(a, 1).go_type());
    Ok(Value::Bool(target == t || format!("*{target}") == t))
}

fn kind_of<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::string(arg(a, 0).kind()))
}

fn kind_is<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(str_arg(a, 0) == arg(a, 1).kind()))
}

fn deep_equal<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(arg(a, 0).deep_equal(&arg(a, 1), b, 0)?))
}
