//! The template function library: Go's builtins, Sprig's `GenericFuncMap` (minus `env`,
//! `expandenv` and `getHostByName`, as in Argo) and Argo's additions.
//!
//! Each function declares the Go parameter types of the function it stands for, so the executor
//! converts and rejects arguments exactly like Go's reflection-based calls do; implementations then
//! receive already-typed [`Value`]s. A function error (or a Go panic, which `text/template`
//! recovers) becomes `error calling NAME: MESSAGE`.
//!
//! Nothing here reads the environment, files, the network or the clock. Deliberately absent:
//! `env`, `expandenv`, `getHostByName` (removed by Argo); the date functions (`now`, `date`,
//! `dateModify`, `ago`, `toDate`, ...), random ones (`randAlpha`, `uuidv4`, `shuffle`, ...), and
//! crypto functions (`genCA`, `bcrypt`, `htpasswd`, `derivePassword`, `encryptAES`, ...), which are
//! non-deterministic or need key material; `duration`/`durationRound`; `urlParse`/`urlJoin`;
//! `call`; and `tpl`, which newer Argo CD versions add but the specification does not list. Using
//! one is a parse error (`function "now" not defined`).
//!
//! [`Library::Helm`] adds Helm's `include` and `required` (module `helm`) on top, for rendering
//! Helm charts; `ApplicationSet` templates never see them.

// Every template function has the table's `Imp` signature, whose `FnResult` lets any function
// fail; many cannot, and the helpers they end with (`any_list`, `int_list`, ...) return the
// same type.
#![allow(clippy::unnecessary_wraps)]

mod builtins;
mod dicts;
mod encoding;
mod helm;
mod lists;
mod math;
mod regex;
pub(crate) mod semver;
mod strings;
mod types;
pub(crate) mod yamlfns;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::Library;
use crate::go::Budget;
use crate::go::value::Value;

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

/// Looks a function up by name in `library` (parse time).
pub(crate) fn lookup(name: &str, library: Library) -> Option<&'static Func> {
    let extra: &'static [Func] = match library {
        Library::ArgoCd => &[],
        Library::Helm => helm::FUNCS,
    };
    argo_cd(name).or_else(|| extra.iter().find(|f| f.name == name))
}

/// Argo CD's function map.
fn argo_cd(name: &str) -> Option<&'static Func> {
    static TABLE: OnceLock<HashMap<&'static str, &'static Func>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            [
                builtins::FUNCS,
                strings::FUNCS,
                lists::FUNCS,
                dicts::FUNCS,
                math::FUNCS,
                encoding::FUNCS,
                regex::FUNCS,
                semver::FUNCS,
                types::FUNCS,
                yamlfns::FUNCS,
            ]
            .into_iter()
            .flatten()
            .map(|f| (f.name, f))
            .collect()
        })
        .get(name)
        .copied()
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
    if n.saturating_mul(unit.max(1)) > crate::MAX_OUTPUT_BYTES {
        return Err(format!(
            "result would exceed {} bytes",
            crate::MAX_OUTPUT_BYTES
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
