//! Sprig list functions and integer sequences. Lists built here are `[]interface{}` like Sprig's;
//! membership tests use `reflect.DeepEqual`, so `has 3 .list` is false for a JSON list (whose
//! numbers are float64) exactly as in Argo.

use super::func::{FnResult, Func, Param, arg, fixed, int_arg, variadic};
use super::math::to_int64;
use crate::go::budget::{Budget, go_int};
use crate::go::value::{Elem, Value};
use crate::limits::MAX_LIST_LEN;

use Param::{Any, Int};

pub(super) const FUNCS: &[Func] = &[
    variadic("list", &[], Any, list),
    variadic("tuple", &[], Any, list),
    fixed("append", &[Any, Any], push),
    fixed("push", &[Any, Any], push),
    fixed("mustAppend", &[Any, Any], push),
    fixed("mustPush", &[Any, Any], push),
    fixed("prepend", &[Any, Any], prepend),
    fixed("mustPrepend", &[Any, Any], prepend),
    fixed("first", &[Any], first),
    fixed("mustFirst", &[Any], first),
    fixed("last", &[Any], last),
    fixed("mustLast", &[Any], last),
    fixed("rest", &[Any], rest),
    fixed("mustRest", &[Any], rest),
    fixed("initial", &[Any], initial),
    fixed("mustInitial", &[Any], initial),
    fixed("reverse", &[Any], reverse),
    fixed("mustReverse", &[Any], reverse),
    fixed("uniq", &[Any], uniq),
    fixed("mustUniq", &[Any], uniq),
    variadic("without", &[Any], Any, without),
    variadic("mustWithout", &[Any], Any, without),
    fixed("has", &[Any, Any], has),
    fixed("mustHas", &[Any, Any], has),
    variadic("slice", &[Any], Any, slice),
    variadic("mustSlice", &[Any], Any, slice),
    variadic("concat", &[], Any, concat),
    fixed("chunk", &[Int, Any], chunk),
    fixed("mustChunk", &[Int, Any], chunk),
    fixed("compact", &[Any], compact),
    fixed("mustCompact", &[Any], compact),
    fixed("until", &[Int], until),
    fixed("untilStep", &[Int, Int, Int], until_step),
    variadic("seq", &[], Int, seq),
];

/// What Go reports when Sprig calls `reflect.TypeOf(nil).Kind()`.
const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

/// The elements of a list argument, or Sprig's error (`Cannot <what> type <kind>`).
fn items<'a>(v: &Value<'a>, what: &str) -> Result<Vec<Value<'a>>, String> {
    match v.seq_items() {
        Some(items) => Ok(items),
        None if v.is_nil() => Err(NIL_DEREF.to_string()),
        None => Err(format!("Cannot {what} type {}", v.kind())),
    }
}

fn any_list(items: Vec<Value<'_>>) -> FnResult<'_> {
    Ok(Value::list(Elem::Any, items))
}

fn list<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    any_list(a.to_vec())
}

fn push<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut l = items(&arg(a, 0), "push on")?;
    l.push(arg(a, 1));
    any_list(l)
}

fn prepend<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut l = items(&arg(a, 0), "prepend on")?;
    l.insert(0, arg(a, 1));
    any_list(l)
}

fn first<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(items(&arg(a, 0), "find first on")?
        .into_iter()
        .next()
        .unwrap_or(Value::Nil))
}

fn last<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(items(&arg(a, 0), "find last on")?
        .pop()
        .unwrap_or(Value::Nil))
}

fn rest<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    any_list(
        items(&arg(a, 0), "find rest on")?
            .into_iter()
            .skip(1)
            .collect(),
    )
}

fn initial<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut l = items(&arg(a, 0), "find initial on")?;
    l.pop();
    any_list(l)
}

fn reverse<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut l = items(&arg(a, 0), "find reverse on")?;
    l.reverse();
    any_list(l)
}

fn contains(haystack: &[Value<'_>], needle: &Value<'_>, b: &mut Budget) -> Result<bool, String> {
    for h in haystack {
        if needle.deep_equal(h, b, 0)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn uniq<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut out: Vec<Value<'a>> = Vec::new();
    for item in items(&arg(a, 0), "find uniq on")? {
        if !contains(&out, &item, b)? {
            out.push(item);
        }
    }
    any_list(out)
}

fn without<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let omit = a.get(1..).unwrap_or(&[]);
    let mut out = Vec::new();
    for item in items(&arg(a, 0), "find without on")? {
        if !contains(omit, &item, b)? {
            out.push(item);
        }
    }
    any_list(out)
}

fn has<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let haystack = arg(a, 1);
    if haystack.is_nil() {
        return Ok(Value::Bool(false));
    }
    let l = items(&haystack, "find has on")?;
    Ok(Value::Bool(contains(&l, &arg(a, 0), b)?))
}

/// Sprig's `slice list [start [end]]`, on lists and strings.
fn slice<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let v = arg(a, 0);
    let len = match &v {
        Value::Str(s) => s.len(),
        v if v.is_seq() => v.len().unwrap_or(0),
        v if v.is_nil() => return Err(NIL_DEREF.to_string()),
        other => {
            return Err(format!(
                "list should be type of string, slice or array but {}",
                other.kind()
            ));
        }
    };
    if len == 0 {
        return Ok(Value::Nil);
    }
    let start = a.get(1).map_or(0, to_int64);
    let end = a.get(2).map_or(go_int(len), to_int64);
    let (Ok(from), Ok(to)) = (usize::try_from(start), usize::try_from(end)) else {
        return Err("reflect: slice index out of range".to_string());
    };
    if from > to || to > len {
        return Err("reflect: slice index out of range".to_string());
    }
    Ok(match &v {
        Value::Str(s) => {
            Value::string(String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned())
        }
        _ => Value::list(
            v.elem(),
            v.seq_items().unwrap_or_default()[from..to].to_vec(),
        ),
    })
}

fn concat<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut out = Vec::new();
    for v in a {
        match v.seq_items() {
            Some(items) => {
                if out.len() + items.len() > MAX_LIST_LEN {
                    return Err(format!("result exceeds {MAX_LIST_LEN} elements"));
                }
                out.extend(items);
            }
            None if v.is_nil() => return Err(NIL_DEREF.to_string()),
            None => return Err(format!("Cannot concat type {} as list", v.kind())),
        }
    }
    any_list(out)
}

fn chunk<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let size = int_arg(a, 0);
    let l = items(&arg(a, 1), "chunk")?;
    let Ok(size) = usize::try_from(size) else {
        return Err("runtime error: makeslice: len out of range".to_string());
    };
    if size == 0 {
        return Err("runtime error: integer divide by zero".to_string());
    }
    any_list(
        l.chunks(size)
            .map(|c| Value::list(Elem::Any, c.to_vec()))
            .collect(),
    )
}

fn compact<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    any_list(
        items(&arg(a, 0), "compact")?
            .into_iter()
            .filter(|v| !super::types::empty(v))
            .collect(),
    )
}

/// Sprig's `untilStep`, bounded to [`MAX_LIST_LEN`] elements.
fn int_range(start: i64, end: i64, step: i64) -> Result<Vec<i64>, String> {
    let count = if (end < start && step < 0) || (end > start && step > 0) {
        (i128::from(end) - i128::from(start))
            .unsigned_abs()
            .div_ceil(i128::from(step).unsigned_abs())
    } else {
        0
    };
    let count = match i64::try_from(count) {
        Ok(count) if count <= go_int(MAX_LIST_LEN) => count,
        _ => return Err(format!("result exceeds {MAX_LIST_LEN} elements")),
    };
    Ok((0..count).map(|i| start + i * step).collect())
}

fn int_list<'a>(v: Vec<i64>) -> FnResult<'a> {
    Ok(Value::list(
        Elem::Int,
        v.into_iter().map(Value::Int).collect(),
    ))
}

fn until<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let count = int_arg(a, 0);
    int_list(int_range(0, count, if count < 0 { -1 } else { 1 })?)
}

fn until_step<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    int_list(int_range(int_arg(a, 0), int_arg(a, 1), int_arg(a, 2))?)
}

fn seq<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let p: Vec<i64> = (0..a.len()).map(|i| int_arg(a, i)).collect();
    let nums = match p.as_slice() {
        [end] => {
            let inc = if *end < 1 { -1 } else { 1 };
            int_range(1, end.saturating_add(inc), inc)?
        }
        [start, end] => {
            let step = if end < start { -1 } else { 1 };
            int_range(*start, end.saturating_add(step), step)?
        }
        [start, step, end] => {
            if end < start && *step > 0 {
                Vec::new()
            } else {
                let inc = if end < start { -1 } else { 1 };
                int_range(*start, end.saturating_add(inc), *step)?
            }
        }
        _ => Vec::new(),
    };
    Ok(Value::string(
        nums.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    ))
}
