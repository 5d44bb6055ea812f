//! Argo CD's additions to the function map (`applicationset/utils`): `normalize` (`SanitizeName`),
//! `slugify` (`SanitizeName` + gosimple/slug), `toYaml`, `fromYaml`, `fromYamlArray`.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::func::{FnResult, Func, Param, arg, fixed, str_arg, variadic};
use crate::go::budget::Budget;
use crate::go::value::{Elem, Value};
use crate::yaml;

use Param::{Any, Str};

pub(super) const FUNCS: &[Func] = &[
    fixed("normalize", &[Str], normalize),
    variadic("slugify", &[], Any, slugify),
    fixed("toYaml", &[Any], to_yaml),
    fixed("fromYaml", &[Str], from_yaml),
    fixed("fromYamlArray", &[Str], from_yaml_array),
];

/// Argo's `SanitizeName`: lowercase, `[^-a-z0-9.]` → `-`, at most 253 bytes, `-`/`.` trimmed.
pub fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .flat_map(char::to_lowercase) // per character, like Go's strings.ToLower
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    // Every character is ASCII now, so any byte index is a boundary.
    out.truncate(253);
    out.trim_matches(['-', '.']).to_string()
}

fn normalize<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::string(sanitize_name(str_arg(a, 0))))
}

/// gosimple/slug `Make` of an already sanitized name: `.` becomes `-`, dashes collapse, and the
/// result is cut to `max` bytes: at the last `-` before the limit when `smart` (and `max > 0`),
/// otherwise bluntly, as gosimple/slug does even for `max == 0`.
fn slug(sanitized: &str, max: i64, smart: bool) -> Result<String, String> {
    let mut s = String::with_capacity(sanitized.len());
    for c in sanitized.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && s.ends_with('-')) {
            s.push(c);
        }
    }
    let mut s = s.trim_matches(['-', '_']).to_string();
    let limit = usize::try_from(max);
    match limit {
        Ok(max) if smart && max > 0 && s.len() > max => {
            match s.as_bytes()[..=max].iter().rposition(|&b| b == b'-') {
                Some(i) => s.truncate(i),
                None => s.truncate(max),
            }
        }
        Ok(max) if !smart => s.truncate(max),
        Err(_) if !smart => {
            return Err(format!("runtime error: slice bounds out of range [:{max}]"));
        }
        _ => {}
    }
    Ok(s)
}

/// Go's message for a failed type assertion on a `slugify` argument.
fn wrong(v: &Value<'_>, want: &str) -> String {
    let have = if v.is_nil() {
        "nil".to_string()
    } else {
        v.go_type()
    };
    format!("interface conversion: interface {{}} is {have}, not {want}")
}

/// `slugify [maxSize=50] [smartTruncate=true] name`.
fn slugify<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (mut max, mut smart, mut name) = (50, true, String::new());
    for (i, v) in a.iter().enumerate() {
        if i + 1 == a.len() {
            name = v.as_str().ok_or_else(|| wrong(v, "string"))?.to_string();
        } else if i == 0 {
            max = match v {
                Value::Int(n) => *n,
                other => return Err(wrong(other, "int")),
            };
        } else if i == 1 {
            smart = match v {
                Value::Bool(b) => *b,
                other => return Err(wrong(other, "bool")),
            };
        }
    }
    Ok(Value::string(slug(&sanitize_name(&name), max, smart)?))
}

fn to_yaml<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let json = arg(a, 0).to_json(b, 0)?;
    let text = yaml::to_yaml(&json);
    Ok(Value::string(text.strip_suffix('\n').unwrap_or(&text)))
}

/// The Go type word `json.Unmarshal` uses in "cannot unmarshal X into ...".
pub(crate) fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn unmarshal_error(j: &Json, into: &str) -> String {
    format!(
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type {into}",
        json_kind(j)
    )
}

fn from_yaml<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    match yaml::parse(str_arg(a, 0))? {
        Json::Null => Ok(Value::map(Elem::Any, BTreeMap::default())),
        j @ Json::Object(_) => Ok(Value::from_owned_json(j)),
        other => Err(unmarshal_error(&other, "map[string]interface {}")),
    }
}

fn from_yaml_array<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    match yaml::parse(str_arg(a, 0))? {
        Json::Null => Ok(Value::list(Elem::Any, Vec::new())),
        j @ Json::Array(_) => Ok(Value::from_owned_json(j)),
        other => Err(unmarshal_error(&other, "[]interface {}")),
    }
}
