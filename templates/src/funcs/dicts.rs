//! Sprig dictionary functions.
//!
//! `set`, `unset`, `merge` and `mergeOverwrite` modify a map built by the template (`dict`,
//! `fromJson`, ...) in place, as Sprig does. Parameter maps are borrowed and read-only here, so on
//! those the functions return a modified copy instead (the parameters seen by other fields stay
//! untouched, which Argo does not guarantee). Go iterates maps in random order; `keys` and `values`
//! return key order.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::func::{FnResult, Func, Param, arg, fixed, str_arg, variadic};
use crate::go::budget::{Budget, MAX_VALUE_DEPTH};
use crate::go::fmt::to_string;
use crate::go::value::{Dict, DictRef, Elem, Value};

use Param::{Any, Map, Str};

pub(super) const FUNCS: &[Func] = &[
    variadic("dict", &[], Any, dict),
    fixed("get", &[Map, Str], get),
    fixed("set", &[Map, Str, Any], set),
    fixed("unset", &[Map, Str], unset),
    fixed("hasKey", &[Map, Str], has_key),
    variadic("pluck", &[Str], Map, pluck),
    variadic("keys", &[], Map, keys),
    variadic("pick", &[Map], Str, pick),
    variadic("omit", &[Map], Str, omit),
    variadic("merge", &[Map], Map, merge),
    variadic("mustMerge", &[Map], Map, merge),
    variadic("mergeOverwrite", &[Map], Map, merge_overwrite),
    variadic("mustMergeOverwrite", &[Map], Map, merge_overwrite),
    fixed("values", &[Map], values),
    fixed("deepCopy", &[Any], deep_copy),
    fixed("mustDeepCopy", &[Any], deep_copy),
    variadic("dig", &[], Any, dig),
];

/// The map to modify: an owned map itself, or an owned copy of a borrowed one.
fn owned<'a>(v: &Value<'a>) -> DictRef<'a> {
    match v {
        Value::Map(m) => Rc::clone(m),
        other => Rc::new(RefCell::new(Dict {
            elem: Elem::Any,
            entries: other
                .map_entries()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        })),
    }
}

fn insert<'a>(d: &DictRef<'a>, key: String, value: Value<'a>) -> Result<(), String> {
    if value.reaches(d, 0) {
        return Err("cannot store a map inside itself".to_string());
    }
    d.try_borrow_mut()
        .map_err(|_| "map is being modified".to_string())?
        .entries
        .insert(key, value);
    Ok(())
}

fn dict<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut entries = BTreeMap::new();
    for pair in a.chunks(2) {
        let key = to_string(&pair[0], b)?;
        entries.insert(key, pair.get(1).cloned().unwrap_or(Value::string("")));
    }
    Ok(Value::map(Elem::Any, entries))
}

fn get<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(arg(a, 0)
        .map_get(str_arg(a, 1))
        .unwrap_or(Value::string("")))
}

fn set<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let d = owned(&arg(a, 0));
    insert(&d, str_arg(a, 1).to_string(), arg(a, 2))?;
    Ok(Value::Map(d))
}

fn unset<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let d = owned(&arg(a, 0));
    d.try_borrow_mut()
        .map_err(|_| "map is being modified".to_string())?
        .entries
        .remove(str_arg(a, 1));
    Ok(Value::Map(d))
}

fn has_key<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(arg(a, 0).map_get(str_arg(a, 1)).is_some()))
}

fn pluck<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let key = str_arg(a, 0);
    let found = a.iter().skip(1).filter_map(|d| d.map_get(key)).collect();
    Ok(Value::list(Elem::Any, found))
}

fn keys<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut all: Vec<String> = a
        .iter()
        .flat_map(|d| d.map_entries().unwrap_or_default())
        .map(|(k, _)| k.to_string())
        .collect();
    all.sort();
    Ok(Value::str_list(all))
}

fn pick<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let d = arg(a, 0);
    let entries = (1..a.len())
        .filter_map(|i| {
            let k = str_arg(a, i);
            d.map_get(k).map(|v| (k.to_string(), v))
        })
        .collect();
    Ok(Value::map(Elem::Any, entries))
}

fn omit<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let drop: Vec<&str> = (1..a.len()).map(|i| str_arg(a, i)).collect();
    let entries = arg(a, 0)
        .map_entries()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !drop.contains(&&**k))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Ok(Value::map(Elem::Any, entries))
}

/// `mergo.Merge` (`overwrite == false`) / `mergo.MergeWithOverwrite` of `src` into `dst`: nested
/// maps merge recursively; other values are taken from `src` when `dst` lacks them or holds an
/// empty value, or always when overwriting.
fn merge_into<'a>(
    dst: &DictRef<'a>,
    src: &Value<'a>,
    overwrite: bool,
    b: &mut Budget,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!("value nesting exceeds {MAX_VALUE_DEPTH} levels"));
    }
    for (k, sv) in src.map_entries().unwrap_or_default() {
        b.spend(1)?;
        let dv = dst.borrow().entries.get(&*k).cloned();
        let merged = match dv {
            Some(dv) if dv.is_map() && sv.is_map() => {
                let target = owned(&dv);
                merge_into(&target, &sv, overwrite, b, depth + 1)?;
                Value::Map(target)
            }
            Some(dv) if !overwrite && !super::types::empty(&dv) => continue,
            _ => sv,
        };
        insert(dst, k.to_string(), merged)?;
    }
    Ok(())
}

fn merge_all<'a>(a: &[Value<'a>], overwrite: bool, b: &mut Budget) -> FnResult<'a> {
    let dst = owned(&arg(a, 0));
    for src in a.iter().skip(1) {
        merge_into(&dst, src, overwrite, b, 0)?;
    }
    Ok(Value::Map(dst))
}

fn merge<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    merge_all(a, false, b)
}

fn merge_overwrite<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    merge_all(a, true, b)
}

fn values<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let vals = arg(a, 0)
        .map_entries()
        .unwrap_or_default()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    Ok(Value::list(Elem::Any, vals))
}

fn deep_copy<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    arg(a, 0).deep_copy(b, 0)
}

/// Go's message for a failed `x.(T)` type assertion.
fn conversion(v: &Value<'_>, want: &str) -> String {
    let have = if v.is_nil() {
        "nil".to_string()
    } else {
        v.go_type()
    };
    format!("interface conversion: interface {{}} is {have}, not {want}")
}

const MAP_TYPE: &str = "map[string]interface {}";

fn as_map(v: Value<'_>) -> Result<Value<'_>, String> {
    match &v {
        Value::JMap(_) => Ok(v),
        Value::Map(m) if m.borrow().elem == Elem::Any => Ok(v),
        _ => Err(conversion(&v, MAP_TYPE)),
    }
}

/// `dig "a" "b" default dict`: the nested value, or the default when a key is missing.
fn dig<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let [keys @ .., default, dict] = a else {
        return Err("dig needs at least three arguments".to_string());
    };
    if keys.is_empty() {
        return Err("dig needs at least three arguments".to_string());
    }
    let mut cur = as_map(dict.clone())?;
    for (i, k) in keys.iter().enumerate() {
        let key = k.as_str().ok_or_else(|| conversion(k, "string"))?;
        let Some(step) = cur.map_get(key) else {
            return Ok(default.clone());
        };
        if i + 1 == keys.len() {
            return Ok(step);
        }
        cur = as_map(step)?;
    }
    Ok(default.clone())
}
