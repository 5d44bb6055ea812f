//! The List generator (`generators/list.go`): one parameter set per element.
//!
//! In goTemplate mode elements are used as they are. In fasttemplate mode they must be
//! flat maps of strings, except `values`, a map of strings that becomes `values.<key>`.
//! `elementsYaml` (a YAML list in a string, usually fed by a matrix sibling) is parsed and
//! appended raw in both modes: not flattened and not checked.

use std::sync::Arc;

use argosy_crds::applicationset::ListGenerator;
use serde_json::Value;

use crate::context::Context;
use crate::error::GeneratorError;
use crate::params::{ParamSet, Params, Provenance};

pub(crate) fn generate(
    ctx: &Context<'_>,
    list: &ListGenerator,
    path: &Arc<str>,
) -> Result<Vec<ParamSet>, GeneratorError> {
    let mut out = Vec::with_capacity(list.elements.len());
    let empty = Params::new();
    for (index, element) in list.elements.iter().enumerate() {
        let element = match element {
            Value::Object(map) => map,
            Value::Null => &empty,
            other => {
                return Err(GeneratorError::data(
                    &format!("{path}.elements[{index}]"),
                    format!(
                        "error unmarshling list element: expected an object, got {}",
                        kind(other)
                    ),
                ));
            }
        };
        let params = if ctx.go_template {
            element.clone()
        } else {
            flat_strings(element)
                .map_err(|e| GeneratorError::data(&format!("{path}.elements[{index}]"), e))?
        };
        out.push(ParamSet::new(params, Provenance::list_element(path, index)));
    }
    if let Some(yaml) = list.elements_yaml.as_deref().filter(|y| !y.is_empty()) {
        argosy_crds::yaml_depth::check(yaml)
            .map_err(|e| GeneratorError::data(&format!("{path}.elementsYaml"), e.to_string()))?;
        let elements: Option<Vec<Option<Params>>> = serde_yaml_ng::from_str(yaml).map_err(|e| {
            GeneratorError::data(
                &format!("{path}.elementsYaml"),
                format!("error unmarshling decoded ElementsYaml: {e}"),
            )
        })?;
        let first = out.len();
        for (i, element) in elements.into_iter().flatten().enumerate() {
            let provenance = Provenance::list_element(path, first + i);
            out.push(ParamSet::new(element.unwrap_or_default(), provenance));
        }
    }
    Ok(out)
}

/// A fasttemplate element: string values only, `values` flattened one level.
fn flat_strings(element: &Params) -> Result<Params, String> {
    let not_string = |key: &str, v: &Value| {
        format!(
            "error parsing value as string: key {key:?} is {} (fasttemplate list elements must be maps of strings; use goTemplate for nested values)",
            kind(v)
        )
    };
    let mut params = Params::new();
    for (key, value) in element {
        match (key.as_str(), value) {
            ("values", Value::Object(values)) => {
                for (k, v) in values {
                    let Value::String(s) = v else {
                        return Err(not_string(&format!("values.{k}"), v));
                    };
                    params.insert(format!("values.{k}"), Value::String(s.clone()));
                }
            }
            ("values", other) => {
                return Err(format!(
                    "error parsing values map: `values` is {}, not a map",
                    kind(other)
                ));
            }
            (_, Value::String(s)) => {
                params.insert(key.clone(), Value::String(s.clone()));
            }
            (_, other) => return Err(not_string(key, other)),
        }
    }
    Ok(params)
}

/// A JSON type name for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests;
