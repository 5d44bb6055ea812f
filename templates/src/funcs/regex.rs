//! Sprig regular-expression functions. Go's RE2 syntax and Rust's `regex` agree on nearly all
//! patterns; one difference remains: `\d`, `\w`, `\s` and `\b` are Unicode-aware here and ASCII-only
//! in Go. Compiled patterns are cached per thread, since templates call these once per render.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

use super::func::{FnResult, Func, Param, fixed, int_arg, str_arg};
use crate::go::budget::{Budget, go_int};
use crate::go::value::Value;

use Param::{Int, Str};

pub(super) const FUNCS: &[Func] = &[
    fixed("regexMatch", &[Str, Str], regex_match),
    fixed("mustRegexMatch", &[Str, Str], regex_match),
    fixed("regexFindAll", &[Str, Str, Int], regex_find_all),
    fixed("mustRegexFindAll", &[Str, Str, Int], regex_find_all),
    fixed("regexFind", &[Str, Str], regex_find),
    fixed("mustRegexFind", &[Str, Str], regex_find),
    fixed("regexReplaceAll", &[Str, Str, Str], regex_replace_all),
    fixed("mustRegexReplaceAll", &[Str, Str, Str], regex_replace_all),
    fixed(
        "regexReplaceAllLiteral",
        &[Str, Str, Str],
        regex_replace_all_literal,
    ),
    fixed(
        "mustRegexReplaceAllLiteral",
        &[Str, Str, Str],
        regex_replace_all_literal,
    ),
    fixed("regexSplit", &[Str, Str, Int], regex_split),
    fixed("mustRegexSplit", &[Str, Str, Int], regex_split),
    fixed("regexQuoteMeta", &[Str], regex_quote_meta),
];

const CACHE_LIMIT: usize = 64;

fn compile(pattern: &str) -> Result<Regex, String> {
    thread_local! {
        static CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|cache| {
        if let Some(re) = cache.borrow().get(pattern) {
            return Ok(re.clone());
        }
        let re = Regex::new(pattern).map_err(|e| {
            format!(
                "regexp: Compile({}): error parsing regexp: {e}",
                crate::go::strconv::quote(pattern)
            )
        })?;
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(pattern.to_string(), re.clone());
        Ok(re)
    })
}

/// Go's `n` argument: negative means all.
fn limit(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn regex_match<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(compile(str_arg(a, 0))?.is_match(str_arg(a, 1))))
}

fn regex_find_all<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let re = compile(str_arg(a, 0))?;
    let found = re
        .find_iter(str_arg(a, 1))
        .take(limit(int_arg(a, 2)))
        .map(|m| m.as_str().to_string());
    Ok(Value::str_list(found))
}

fn regex_find<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let re = compile(str_arg(a, 0))?;
    let found = re.find(str_arg(a, 1)).map_or("", |m| m.as_str());
    Ok(Value::string(found))
}

fn regex_replace_all<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let re = compile(str_arg(a, 0))?;
    Ok(Value::string(
        re.replace_all(str_arg(a, 1), str_arg(a, 2)).into_owned(),
    ))
}

fn regex_replace_all_literal<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let re = compile(str_arg(a, 0))?;
    let out = re.replace_all(str_arg(a, 1), regex::NoExpand(str_arg(a, 2)));
    Ok(Value::string(out.into_owned()))
}

/// Go's `Regexp.Split`.
fn regex_split<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (re, text, n) = (compile(str_arg(a, 0))?, str_arg(a, 1), int_arg(a, 2));
    if n == 0 {
        return Ok(Value::str_list([]));
    }
    if !str_arg(a, 0).is_empty() && text.is_empty() {
        return Ok(Value::str_list([String::new()]));
    }
    let mut parts = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for m in re.find_iter(text).take(limit(n)) {
        if n > 0 && go_int(parts.len()) == n - 1 {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            parts.push(text[beg..end].to_string());
        }
        beg = m.end();
    }
    if end != text.len() {
        parts.push(text[beg..].to_string());
    }
    Ok(Value::str_list(parts))
}

/// Go's `regexp.QuoteMeta`.
fn regex_quote_meta<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut out = String::new();
    for c in str_arg(a, 0).chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(Value::string(out))
}
