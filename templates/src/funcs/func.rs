//! What a template function is: its Go parameter types ([`Param`]), how the executor
//! calls it ([`Eval`], [`Imp`], [`FnResult`]), the table entry ([`Func`], built with
//! [`fixed`] and [`variadic`]), and the argument accessors the implementations share.
//!
//! A leaf of the function library (it names only the Go engine's value and budget types):
//! every function group and the executor use it without depending on `funcs`' table.

use crate::go::budget::Budget;
use crate::go::value::Value;
use crate::limits::MAX_OUTPUT_BYTES;

pub(crate) type FnResult<'a> = Result<Value<'a>, String>;
pub(crate) type Imp = for<'a> fn(&mut Budget, &[Value<'a>]) -> FnResult<'a>;

/// The Go type of a function parameter, which decides how arguments are converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    /// `interface{}`: anything; a missing value arrives as nil.
    Any,
    /// `reflect.Value` (Go's builtins): anything, a missing value stays missing.
    Reflect,
    Str,
    Int,
    Float,
    Bool,
    /// `map[string]interface{}`; a missing value arrives as an empty (nil) map.
    Map,
}

impl Param {
    pub(crate) fn go_type(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Reflect => "reflect.Value",
            Param::Str => "string",
            Param::Int => "int",
            Param::Float => "float64",
            Param::Bool => "bool",
            Param::Map => "map[string]interface {}",
        }
    }
}

/// How the executor evaluates a call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Eval {
    /// Evaluate every argument, then call the implementation.
    Call(Imp),
    /// `and`/`or`: arguments are evaluated left to right until one's truth decides the result
    /// (`true` decides `or`, `false` decides `and`).
    ShortCircuit { is_or: bool },
    /// Helm's `include NAME DATA`: executes a named template into a string, which needs the
    /// executor (the program's templates, its depth and output limits), not a plain function.
    Include,
}

#[derive(Debug)]
pub(crate) struct Func {
    pub(crate) name: &'static str,
    pub(crate) params: &'static [Param],
    pub(crate) variadic: Option<Param>,
    pub(crate) eval: Eval,
}

impl Func {
    /// The type of the `i`-th argument.
    pub(crate) fn param(&self, i: usize) -> Param {
        self.params
            .get(i)
            .copied()
            .or(self.variadic)
            .unwrap_or(Param::Any)
    }
}

/// A function with fixed parameters.
pub(crate) const fn fixed(name: &'static str, params: &'static [Param], imp: Imp) -> Func {
    Func {
        name,
        params,
        variadic: None,
        eval: Eval::Call(imp),
    }
}

/// A function whose last parameter is variadic (`...variadic`).
pub(crate) const fn variadic(
    name: &'static str,
    params: &'static [Param],
    rest: Param,
    imp: Imp,
) -> Func {
    Func {
        name,
        params,
        variadic: Some(rest),
        eval: Eval::Call(imp),
    }
}

// Argument accessors. The executor has already converted each argument to its declared type, so
// the fallbacks are unreachable in practice.

pub(crate) fn str_arg<'v>(args: &'v [Value<'_>], i: usize) -> &'v str {
    args.get(i).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn int_arg(args: &[Value<'_>], i: usize) -> i64 {
    match args.get(i) {
        Some(Value::Int(n) | Value::Int64(n)) => *n,
        _ => 0,
    }
}

pub(crate) fn bool_arg(args: &[Value<'_>], i: usize) -> bool {
    matches!(args.get(i), Some(Value::Bool(true)))
}

pub(crate) fn arg<'a>(args: &[Value<'a>], i: usize) -> Value<'a> {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

/// A count that sizes an allocation, checked against the output cap (`repeat`, `indent`, ...).
pub(crate) fn checked_size(count: i64, unit: usize) -> Result<usize, String> {
    let n = usize::try_from(count.max(0)).unwrap_or(usize::MAX);
    if n.saturating_mul(unit.max(1)) > MAX_OUTPUT_BYTES {
        return Err(format!("result would exceed {MAX_OUTPUT_BYTES} bytes"));
    }
    Ok(n)
}
