//! Runtime values of the Go template engine.
//!
//! Parameters stay borrowed: `JList`/`JMap` point into the caller's JSON, so field access and
//! `range` never copy. Functions build owned values (`List`, `Map`) when they must; maps are
//! shared and mutable because Sprig's `set`, `unset` and `merge` modify their argument in place
//! and templates rely on that (`{{ $_ := set $d "k" "v" }}`).
//!
//! The variants keep the Go distinctions a template can observe: `int` vs `int64` vs `float64`
//! (printing, `eq`, typed function parameters), `[]string` vs `[]interface{}` (`typeOf`,
//! `deepEqual`), and Go's two kinds of nothing: the invalid value of a missing key (`Missing`,
//! printed `<no value>`) and a nil `interface{}` (`Nil`, printed `<nil>`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Deref;
use std::rc::Rc;

use serde_json::{Map as JsonMap, Number, Value as Json};

use super::budget::{Budget, MAX_VALUE_DEPTH};
use super::strconv::float_v;
use crate::funcs::version::Version;

#[derive(Clone, Debug)]
pub(crate) enum Str<'a> {
    Borrowed(&'a str),
    Owned(Rc<str>),
}

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Owned(s) => s,
        }
    }
}

/// Element type of an owned list or map: `interface{}`, `string` or `int`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    Any,
    Str,
    Int,
}

impl Elem {
    fn name(self) -> &'static str {
        match self {
            Elem::Any => "interface {}",
            Elem::Str => "string",
            Elem::Int => "int",
        }
    }
}

#[derive(Debug)]
pub(crate) struct List<'a> {
    pub(crate) elem: Elem,
    pub(crate) items: Vec<Value<'a>>,
}

#[derive(Debug)]
pub(crate) struct Dict<'a> {
    pub(crate) elem: Elem,
    pub(crate) entries: BTreeMap<String, Value<'a>>,
}

pub(crate) type DictRef<'a> = Rc<RefCell<Dict<'a>>>;

#[derive(Clone, Debug)]
pub(crate) enum Value<'a> {
    /// Go's invalid `reflect.Value`: a missing map key.
    Missing,
    /// A nil `interface{}` (JSON null, `nil`, a function's nil result).
    Nil,
    Bool(bool),
    /// Go `int` (literals, `len`, `atoi`, `int`).
    Int(i64),
    /// Go `int64` (Sprig arithmetic).
    Int64(i64),
    /// Go `float64` (every JSON number).
    Float(f64),
    Str(Str<'a>),
    JList(&'a [Json]),
    JMap(&'a JsonMap<String, Json>),
    List(Rc<List<'a>>),
    Map(DictRef<'a>),
    /// Sprig's `*semver.Version`.
    Version(Rc<Version>),
}

/// A JSON object's entries in key order (`serde_json` keeps them sorted unless another crate in the
/// build enables `preserve_order`, so sort only when needed).
pub(crate) fn sorted_entries(m: &JsonMap<String, Json>) -> Vec<(&String, &Json)> {
    let mut v: Vec<_> = m.iter().collect();
    if !v.is_sorted_by(|a, b| a.0 <= b.0) {
        v.sort_by(|a, b| a.0.cmp(b.0));
    }
    v
}

fn check_depth(depth: usize) -> Result<(), String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!("value nesting exceeds {MAX_VALUE_DEPTH} levels"));
    }
    Ok(())
}

impl<'a> Value<'a> {
    pub(crate) fn string(s: impl Into<Rc<str>>) -> Self {
        Value::Str(Str::Owned(s.into()))
    }

    pub(crate) fn list(elem: Elem, items: Vec<Value<'a>>) -> Self {
        Value::List(Rc::new(List { elem, items }))
    }

    pub(crate) fn map(elem: Elem, entries: BTreeMap<String, Value<'a>>) -> Self {
        Value::Map(Rc::new(RefCell::new(Dict { elem, entries })))
    }

    pub(crate) fn str_list(items: impl IntoIterator<Item = String>) -> Self {
        Value::list(Elem::Str, items.into_iter().map(Value::string).collect())
    }

    /// A view of borrowed JSON (no copy).
    pub(crate) fn from_json(j: &'a Json) -> Self {
        match j {
            Json::Null => Value::Nil,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            Json::String(s) => Value::Str(Str::Borrowed(s)),
            Json::Array(a) => Value::JList(a),
            Json::Object(o) => Value::JMap(o),
        }
    }

    /// Owned values for JSON produced at run time (`fromJson`, `fromYaml`); numbers are float64
    /// as after Go's `json.Unmarshal`.
    pub(crate) fn from_owned_json(j: Json) -> Self {
        match j {
            Json::Null => Value::Nil,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            Json::String(s) => Value::string(s),
            Json::Array(a) => Value::list(
                Elem::Any,
                a.into_iter().map(Value::from_owned_json).collect(),
            ),
            Json::Object(o) => Value::map(
                Elem::Any,
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_owned_json(v)))
                    .collect(),
            ),
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn is_nil(&self) -> bool {
        matches!(self, Value::Missing | Value::Nil)
    }

    /// Go's `isTrue`: the value is not the zero value of its type.
    pub(crate) fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Version(_) => true,
            _ => self.len().unwrap_or(0) > 0,
        }
    }

    /// `fmt.Sprintf("%T")`.
    pub(crate) fn go_type(&self) -> String {
        match self {
            Value::Missing | Value::Nil => "<nil>".to_string(),
            Value::Bool(_) => "bool".to_string(),
            Value::Int(_) => "int".to_string(),
            Value::Int64(_) => "int64".to_string(),
            Value::Float(_) => "float64".to_string(),
            Value::Str(_) => "string".to_string(),
            Value::JList(_) => "[]interface {}".to_string(),
            Value::JMap(_) => "map[string]interface {}".to_string(),
            Value::List(l) => format!("[]{}", l.elem.name()),
            Value::Map(m) => format!("map[string]{}", m.borrow().elem.name()),
            Value::Version(_) => "*semver.Version".to_string(),
        }
    }

    /// `reflect.Kind.String()`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::JList(_) | Value::List(_) => "slice",
            Value::JMap(_) | Value::Map(_) => "map",
            Value::Version(_) => "ptr",
        }
    }

    /// Length of strings (bytes), lists and maps.
    pub(crate) fn len(&self) -> Option<usize> {
        match self {
            Value::Str(s) => Some(s.len()),
            Value::JList(l) => Some(l.len()),
            Value::JMap(m) => Some(m.len()),
            Value::List(l) => Some(l.items.len()),
            Value::Map(m) => Some(m.borrow().entries.len()),
            _ => None,
        }
    }

    pub(crate) fn is_seq(&self) -> bool {
        matches!(self, Value::JList(_) | Value::List(_))
    }

    pub(crate) fn is_map(&self) -> bool {
        matches!(self, Value::JMap(_) | Value::Map(_))
    }

    /// Element type of a list or map; borrowed JSON containers hold `interface{}`.
    pub(crate) fn elem(&self) -> Elem {
        match self {
            Value::List(l) => l.elem,
            Value::Map(m) => m.borrow().elem,
            _ => Elem::Any,
        }
    }

    pub(crate) fn seq_get(&self, i: usize) -> Option<Value<'a>> {
        match self {
            Value::JList(l) => l.get(i).map(Value::from_json),
            Value::List(l) => l.items.get(i).cloned(),
            _ => None,
        }
    }

    pub(crate) fn seq_items(&self) -> Option<Vec<Value<'a>>> {
        match self {
            Value::JList(l) => Some(l.iter().map(Value::from_json).collect()),
            Value::List(l) => Some(l.items.clone()),
            _ => None,
        }
    }

    pub(crate) fn map_get(&self, key: &str) -> Option<Value<'a>> {
        match self {
            Value::JMap(m) => m.get(key).map(Value::from_json),
            Value::Map(m) => m.borrow().entries.get(key).cloned(),
            _ => None,
        }
    }

    /// Entries in key order (Go sorts map keys when printing and ranging).
    pub(crate) fn map_entries(&self) -> Option<Vec<(Str<'a>, Value<'a>)>> {
        match self {
            Value::JMap(m) => Some(
                sorted_entries(m)
                    .into_iter()
                    .map(|(k, v)| (Str::Borrowed(k.as_str()), Value::from_json(v)))
                    .collect(),
            ),
            Value::Map(m) => Some(
                m.borrow()
                    .entries
                    .iter()
                    .map(|(k, v)| (Str::Owned(k.as_str().into()), v.clone()))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// `json.Marshal` input: the value as JSON (Go ints stay integers, floats stay floats).
    pub(crate) fn to_json(&self, budget: &mut Budget, depth: usize) -> Result<Json, String> {
        budget.spend(1)?;
        check_depth(depth)?;
        Ok(match self {
            Value::Missing | Value::Nil => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) | Value::Int64(i) => Json::Number(Number::from(*i)),
            Value::Float(f) => Json::Number(
                Number::from_f64(*f)
                    .ok_or_else(|| format!("json: unsupported value: {}", float_v(*f)))?,
            ),
            Value::Str(s) => {
                budget.alloc(s.len())?;
                Json::String(s.to_string())
            }
            Value::JList(_) | Value::List(_) => Json::Array(
                self.seq_items()
                    .unwrap_or_default()
                    .iter()
                    .map(|v| v.to_json(budget, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::JMap(_) | Value::Map(_) => {
                let mut out = JsonMap::new();
                for (k, v) in self.map_entries().unwrap_or_default() {
                    out.insert(k.to_string(), v.to_json(budget, depth + 1)?);
                }
                Json::Object(out)
            }
            Value::Version(v) => Json::String(v.to_string()),
        })
    }

    /// `reflect.DeepEqual`: same dynamic type and deeply equal contents.
    // Go compares float64s exactly.
    #[allow(clippy::float_cmp)]
    pub(crate) fn deep_equal(
        &self,
        other: &Value<'_>,
        budget: &mut Budget,
        depth: usize,
    ) -> Result<bool, String> {
        budget.spend(1)?;
        check_depth(depth)?;
        if self.is_nil() || other.is_nil() {
            return Ok(self.is_nil() && other.is_nil());
        }
        if self.go_type() != other.go_type() {
            return Ok(false);
        }
        Ok(match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a) | Value::Int64(a), Value::Int(b) | Value::Int64(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => **a == **b,
            (Value::Version(a), Value::Version(b)) => Rc::ptr_eq(a, b) || a == b,
            _ if self.is_seq() => {
                let (a, b) = (
                    self.seq_items().unwrap_or_default(),
                    other.seq_items().unwrap_or_default(),
                );
                if a.len() != b.len() {
                    return Ok(false);
                }
                for (x, y) in a.iter().zip(&b) {
                    if !x.deep_equal(y, budget, depth + 1)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => {
                let (a, b) = (
                    self.map_entries().unwrap_or_default(),
                    other.map_entries().unwrap_or_default(),
                );
                if a.len() != b.len() {
                    return Ok(false);
                }
                for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
                    if **ka != **kb || !va.deep_equal(vb, budget, depth + 1)? {
                        return Ok(false);
                    }
                }
                true
            }
        })
    }

    /// A copy whose lists and maps are all fresh and owned (Sprig's `deepCopy`).
    pub(crate) fn deep_copy(&self, budget: &mut Budget, depth: usize) -> Result<Value<'a>, String> {
        budget.spend(1)?;
        check_depth(depth)?;
        Ok(match self {
            Value::JList(_) | Value::List(_) => Value::list(
                self.elem(),
                self.seq_items()
                    .unwrap_or_default()
                    .iter()
                    .map(|v| v.deep_copy(budget, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::JMap(_) | Value::Map(_) => {
                let mut entries = BTreeMap::new();
                for (k, v) in self.map_entries().unwrap_or_default() {
                    entries.insert(k.to_string(), v.deep_copy(budget, depth + 1)?);
                }
                Value::map(self.elem(), entries)
            }
            other => other.clone(),
        })
    }

    /// Whether `target` is reachable from this value; storing a map inside itself would create a
    /// reference cycle (Go would recurse forever printing it), so `set`/`merge` refuse.
    pub(crate) fn reaches(&self, target: &DictRef<'_>, depth: usize) -> bool {
        if depth > MAX_VALUE_DEPTH {
            return true;
        }
        match self {
            Value::Map(m) => {
                std::ptr::eq(Rc::as_ptr(m).cast::<()>(), Rc::as_ptr(target).cast::<()>())
                    || m.borrow()
                        .entries
                        .values()
                        .any(|v| v.reaches(target, depth + 1))
            }
            Value::List(l) => l.items.iter().any(|v| v.reaches(target, depth + 1)),
            _ => false,
        }
    }
}
