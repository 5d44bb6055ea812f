//! Go `text/template` builtins: `and or not len index print printf println eq ne lt le gt ge
//! html js urlquery` (`slice` is Sprig's, which replaces Go's in Argo's function map).

use std::fmt::Write as _;

use super::func::{Eval, FnResult, Func, Param, fixed, str_arg, variadic};
use crate::go::budget::{Budget, go_int};
use crate::go::fmt::{sprint, sprintf, sprintln};
use crate::go::strconv::is_print;
use crate::go::value::{Elem, Value};

use Param::{Any, Reflect, Str};

pub(super) const FUNCS: &[Func] = &[
    Func {
        name: "and",
        params: &[Reflect],
        variadic: Some(Reflect),
        eval: Eval::ShortCircuit { is_or: false },
    },
    Func {
        name: "or",
        params: &[Reflect],
        variadic: Some(Reflect),
        eval: Eval::ShortCircuit { is_or: true },
    },
    fixed("not", &[Reflect], not),
    fixed("len", &[Reflect], len),
    variadic("index", &[Reflect], Reflect, index),
    variadic("print", &[], Any, print),
    variadic("printf", &[Str], Any, printf),
    variadic("println", &[], Any, println),
    variadic("eq", &[Reflect], Reflect, eq),
    fixed("ne", &[Reflect, Reflect], ne),
    fixed("lt", &[Reflect, Reflect], lt),
    fixed("le", &[Reflect, Reflect], le),
    fixed("gt", &[Reflect, Reflect], gt),
    fixed("ge", &[Reflect, Reflect], ge),
    variadic("html", &[], Any, html),
    variadic("js", &[], Any, js),
    variadic("urlquery", &[], Any, urlquery),
];

fn not<'a>(_: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(!args.first().is_some_and(Value::truth)))
}

fn len<'a>(_: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    let v = args.first().unwrap_or(&Value::Missing);
    match v.len() {
        Some(n) => Ok(Value::Int(go_int(n))),
        None if v.is_nil() => Err("len of nil pointer".to_string()),
        None => Err(format!("len of type {}", v.go_type())),
    }
}

/// An index for a list or string (Go's `indexArg`).
fn index_arg(i: &Value<'_>, len: usize) -> Result<usize, String> {
    let x = match i {
        Value::Int(x) | Value::Int64(x) => *x,
        Value::Missing | Value::Nil => return Err("cannot index slice/array with nil".to_string()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.go_type()
            ));
        }
    };
    match usize::try_from(x) {
        Ok(u) if u < len => Ok(u),
        _ => Err(format!("index out of range: {x}")),
    }
}

fn index<'a>(_: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    let mut item = args.first().cloned().unwrap_or(Value::Missing);
    if item.is_nil() {
        return Err("index of untyped nil".to_string());
    }
    for i in args.iter().skip(1) {
        item = match &item {
            Value::Nil => return Err("index of nil pointer".to_string()),
            Value::JList(_) | Value::List(_) => {
                let x = index_arg(i, item.len().unwrap_or(0))?;
                item.seq_get(x).unwrap_or(Value::Nil)
            }
            Value::Str(s) => {
                let x = index_arg(i, s.len())?;
                Value::Int(i64::from(s.as_bytes().get(x).copied().unwrap_or(0)))
            }
            Value::JMap(_) | Value::Map(_) => {
                let key = match i {
                    Value::Str(k) => k,
                    Value::Missing | Value::Nil => {
                        return Err("value is nil; should be of type string".to_string());
                    }
                    other => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.go_type()
                        ));
                    }
                };
                // A missing key gives the element type's zero value: nil for interface{}.
                item.map_get(key).unwrap_or(match item.elem() {
                    Elem::Str => Value::string(""),
                    _ => Value::Nil,
                })
            }
            other => return Err(format!("can't index item of type {}", other.go_type())),
        };
    }
    Ok(item)
}

fn print<'a>(b: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::string(sprint(args, b)?))
}

fn printf<'a>(b: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::string(sprintf(
        str_arg(args, 0),
        args.get(1..).unwrap_or(&[]),
        b,
    )?))
}

fn println<'a>(b: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::string(sprintln(args, b)?))
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
}

fn basic_kind(v: &Value<'_>) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

/// `a == b` with Go template rules: basic kinds must match (int and int64 are both "int").
// Go compares float64s exactly.
#[allow(clippy::float_cmp)]
fn equal(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 != k2 {
        if a.is_nil() || b.is_nil() {
            return Ok(false);
        }
        return Err("incompatible types for comparison".to_string());
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => **x == **y,
        _ if a.is_nil() || b.is_nil() => a.is_nil() && b.is_nil(),
        (Value::Version(x), Value::Version(y)) => std::rc::Rc::ptr_eq(x, y),
        _ => return Err(format!("non-comparable type {}", b.go_type())),
    })
}

fn eq<'a>(_: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    let Some((first, rest)) = args.split_first() else {
        return Err("missing argument for comparison".to_string());
    };
    if rest.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    for other in rest {
        if equal(first, other)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn ne<'a>(b: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    match eq(b, args)? {
        Value::Bool(x) => Ok(Value::Bool(!x)),
        other => Ok(other),
    }
}

fn less(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".to_string());
    }
    if k1 != k2 {
        return Err("incompatible types for comparison".to_string());
    }
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(**x < **y),
        _ => Err("invalid type for comparison".to_string()),
    }
}

fn pair<'v, 'a>(args: &'v [Value<'a>]) -> (&'v Value<'a>, &'v Value<'a>) {
    (
        args.first().unwrap_or(&Value::Missing),
        args.get(1).unwrap_or(&Value::Missing),
    )
}

fn lt<'a>(_: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    let (a, b) = pair(args);
    Ok(Value::Bool(less(a, b)?))
}

fn le<'a>(_: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    let (a, b) = pair(args);
    Ok(Value::Bool(less(a, b)? || equal(a, b)?))
}

fn gt<'a>(_: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    let (a, b) = pair(args);
    Ok(Value::Bool(!(less(a, b)? || equal(a, b)?)))
}

fn ge<'a>(_: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    let (a, b) = pair(args);
    Ok(Value::Bool(!less(a, b)?))
}

/// Go's `evalArgs`: the arguments as one string, with a nil argument as `<no value>`.
fn eval_args(b: &mut Budget, args: &[Value<'_>]) -> Result<String, String> {
    if let [Value::Str(s)] = args {
        return Ok(s.to_string());
    }
    let shown: Vec<Value<'_>> = args
        .iter()
        .map(|a| {
            if a.is_nil() {
                Value::string("<no value>")
            } else {
                a.clone()
            }
        })
        .collect();
    sprint(&shown, b)
}

fn html<'a>(b: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    let s = eval_args(b, args)?;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Ok(Value::string(out))
}

fn js<'a>(b: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    let s = eval_args(b, args)?;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || (!c.is_ascii() && !is_print(c)) => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    Ok(Value::string(out))
}

/// `url.QueryEscape`.
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn urlquery<'a>(b: &mut Budget, args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::string(query_escape(&eval_args(b, args)?)))
}
