//! Structured inputs near the real schemas: a small description of each object's shape
//! ([`Shape`]) and one generator that follows it with `arbitrary`, leaving fields out,
//! adding unknown ones, and now and then putting a value of the wrong type where a field
//! is, so the parsers see both valid objects and almost-valid ones.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value};

/// The shape of a JSON value.
#[derive(Debug)]
pub enum Shape {
    /// A string: one of these, a mutation of one, or arbitrary text.
    Str(&'static [&'static str]),
    /// A boolean.
    Bool,
    /// An integer (edges of every integer type included).
    Int,
    /// Any JSON value.
    Any,
    /// An object with these fields.
    Obj(&'static [(&'static str, Shape)]),
    /// A list of values of this shape.
    List(&'static Shape),
    /// A map from string keys to values of this shape.
    Map(&'static Shape),
    /// One of these shapes.
    OneOf(&'static [Shape]),
}

/// Strings that mean something to some parser, mixed into every string.
const SPICE: &[&str] = &[
    "",
    "*",
    "**",
    "{{",
    "}}",
    "{{ .x }}",
    "[",
    "\\",
    "!",
    "..",
    "/",
    "://",
    "9223372036854775808",
    "\u{0}",
    "\u{b5}s",
    "{a,b}",
    "[!a]",
    "[^a]",
    "$ENV",
    "`",
    "'",
    "\"",
];

const MAX_DEPTH: usize = 8;

/// A value of `shape`.
pub fn value(u: &mut Unstructured<'_>, shape: &Shape) -> Result<Value> {
    value_at(u, shape, 0)
}

fn value_at(u: &mut Unstructured<'_>, shape: &Shape, depth: usize) -> Result<Value> {
    // One value in sixteen has the wrong type.
    if u.ratio(1, 16)? {
        return any(u, depth);
    }
    Ok(match shape {
        Shape::Str(words) => Value::String(string(u, words)?),
        Shape::Bool => Value::Bool(u.arbitrary()?),
        Shape::Int => int(u)?,
        Shape::Any => any(u, depth)?,
        Shape::Obj(fields) => {
            let mut map = Map::new();
            for (name, field) in *fields {
                if depth < MAX_DEPTH && u.ratio(2, 3)? {
                    map.insert((*name).to_owned(), value_at(u, field, depth + 1)?);
                }
            }
            // Fields the model does not know must survive (`extra`) or be refused.
            if u.ratio(1, 8)? {
                map.insert(string(u, &["unknownField", "x-extra"])?, any(u, depth + 1)?);
            }
            Value::Object(map)
        }
        Shape::List(item) => {
            let mut items = Vec::new();
            if depth < MAX_DEPTH {
                for _ in 0..u.int_in_range(0..=4)? {
                    items.push(value_at(u, item, depth + 1)?);
                }
            }
            Value::Array(items)
        }
        Shape::Map(item) => {
            let mut map = Map::new();
            if depth < MAX_DEPTH {
                for _ in 0..u.int_in_range(0..=4)? {
                    let key = string(u, &["app", "env", "team", "a.b/c", "customer"])?;
                    map.insert(key, value_at(u, item, depth + 1)?);
                }
            }
            Value::Object(map)
        }
        Shape::OneOf(shapes) => {
            let shape = u.choose(shapes)?;
            value_at(u, shape, depth)?
        }
    })
}

/// One of `words`, a spiced variant of one, or arbitrary text.
pub fn string(u: &mut Unstructured<'_>, words: &[&str]) -> Result<String> {
    Ok(match u.int_in_range(0..=9)? {
        0..=5 if !words.is_empty() => (*u.choose(words)?).to_owned(),
        6 | 7 if !words.is_empty() => {
            let word = *u.choose(words)?;
            let spice = *u.choose(SPICE)?;
            let at = u.int_in_range(0..=word.len())?;
            let at = (0..=at)
                .rev()
                .find(|&i| word.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}{spice}{}", &word[..at], &word[at..])
        }
        _ => u.arbitrary()?,
    })
}

fn int(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=4)? {
        0 => Value::from(*u.choose(&[0, 1, -1, i64::MAX, i64::MIN, 3, 10])?),
        1 => Value::from(u.arbitrary::<u64>()?),
        2 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        _ => Value::from(u.int_in_range(-5_i64..=100)?),
    })
}

/// Any JSON value, nested at most a few levels below `depth`.
fn any(u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    let leaf = depth >= MAX_DEPTH;
    Ok(match u.int_in_range(0..=if leaf { 3 } else { 5 })? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => int(u)?,
        3 => Value::String(string(u, SPICE)?),
        4 => {
            let mut items = Vec::new();
            for _ in 0..u.int_in_range(0..=3)? {
                items.push(any(u, depth + 1)?);
            }
            Value::Array(items)
        }
        _ => {
            let mut map = Map::new();
            for _ in 0..u.int_in_range(0..=3)? {
                map.insert(string(u, SPICE)?, any(u, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}
