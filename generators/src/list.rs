//! The List generator (`generators/list.go`): one parameter set per element.
//!
//! In goTemplate mode elements are used as they are. In fasttemplate mode they must be
//! flat maps of strings, except `values`, a map of strings that becomes `values.<key>`.
//! `elementsYaml` (a YAML list in a string, usually fed by a matrix sibling) is parsed and
//! appended raw in both modes: not flattened and not checked.

use std::sync::Arc;

use argosy_crds::applicationset::ListGenerator;
use serde_json::Value;

use crate::generator::{Context, GeneratorError};
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
mod tests {
    use crate::testing::{appset, run_generator};
    use serde_json::json;

    #[test]
    fn fasttemplate_flattens_values_and_rejects_non_strings() {
        let set = appset(json!({"generators": []}));
        let generator = json!({"list": {"elements": [
            {"cluster": "a", "values": {"foo": "bar"}},
            {}
        ]}});
        let params = run_generator(&set, generator).unwrap();
        assert_eq!(params[0], json!({"cluster": "a", "values.foo": "bar"}));
        assert_eq!(params[1], json!({}));

        let generator = json!({"list": {"elements": [{"cluster": "a", "replicas": 3}]}});
        let err = run_generator(&set, generator).unwrap_err();
        assert!(err.contains("error parsing value as string"), "{err}");
        assert!(err.contains("spec.generators[0].list.elements[0]"), "{err}");
    }

    #[test]
    fn gotemplate_keeps_elements_and_appends_elements_yaml_raw() {
        let set = appset(json!({"goTemplate": true, "generators": []}));
        let generator = json!({"list": {
            "elements": [{"a": {"b": 1}}],
            "elementsYaml": "- x: 1\n  values: {y: z}\n"
        }});
        let params = run_generator(&set, generator).unwrap();
        assert_eq!(
            params,
            [
                json!({"a": {"b": 1}}),
                json!({"x": 1, "values": {"y": "z"}})
            ]
        );

        // Raw in fasttemplate mode too: not flattened, numbers allowed.
        let fast = appset(json!({"generators": []}));
        let generator = json!({"list": {"elementsYaml": "- x: 1\n"}});
        assert_eq!(run_generator(&fast, generator).unwrap(), [json!({"x": 1})]);

        let generator = json!({"list": {"elementsYaml": "not: [a list"}});
        let err = run_generator(&fast, generator).unwrap_err();
        assert!(err.contains("elementsYaml"), "{err}");
    }
}
