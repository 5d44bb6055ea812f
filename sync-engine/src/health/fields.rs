//! Typed reads of an object's JSON fields with Go's zero values for absent ones, and the
//! error naming a field of the wrong type.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// A field that is present but not of the type Kubernetes gives it.
#[derive(Debug, thiserror::Error)]
#[error("field {path} is not {expected}")]
pub(super) struct Malformed {
    pub(super) path: &'static str,
    pub(super) expected: &'static str,
}

/// The value at a dotted path; None when any step is absent or null (Go's nil).
pub(super) fn field<'a>(
    obj: &'a Value,
    path: &'static str,
) -> Result<Option<&'a Value>, Malformed> {
    let mut current = obj;
    for step in path.split('.') {
        match current {
            Value::Object(map) => match map.get(step) {
                None | Some(Value::Null) => return Ok(None),
                Some(next) => current = next,
            },
            _ => {
                return Err(Malformed {
                    path,
                    expected: "inside an object",
                });
            }
        }
    }
    Ok(Some(current))
}

pub(super) fn opt_int(obj: &Value, path: &'static str) -> Result<Option<i64>, Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_i64().ok_or(Malformed {
                path,
                expected: "an integer",
            })
        })
        .transpose()
}

pub(super) fn int(obj: &Value, path: &'static str) -> Result<i64, Malformed> {
    Ok(opt_int(obj, path)?.unwrap_or_default())
}

pub(super) fn string<'a>(obj: &'a Value, path: &'static str) -> Result<&'a str, Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_str().ok_or(Malformed {
                path,
                expected: "a string",
            })
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

pub(super) fn boolean(obj: &Value, path: &'static str) -> Result<bool, Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_bool().ok_or(Malformed {
                path,
                expected: "a boolean",
            })
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

pub(super) fn list<'a>(obj: &'a Value, path: &'static str) -> Result<&'a [Value], Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_array().map(Vec::as_slice).ok_or(Malformed {
                path,
                expected: "a list",
            })
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

pub(super) fn opt_time(obj: &Value, path: &'static str) -> Result<Option<Timestamp>, Malformed> {
    field(obj, path)?
        .map(|v| {
            v.as_str()
                .and_then(|s| s.parse::<Timestamp>().ok())
                .ok_or(Malformed {
                    path,
                    expected: "an RFC 3339 time",
                })
        })
        .transpose()
}

/// `metadata.name`, for the messages Argo words with the object's name.
pub(super) fn name(obj: &Value) -> Result<&str, Malformed> {
    string(obj, "metadata.name")
}
