//! [`ValuesTemplate`]: a generator's `values`, interpolated against each parameter set.
//!
//! Shared by the generator kinds that have `values` (clusters, git); depends only on the
//! [`Context`], the parameter types and [`GeneratorError`].

use std::collections::BTreeMap;

use argosy_templates::StringTemplate;
use serde_json::Value;

use crate::context::Context;
use crate::error::GeneratorError;
use crate::params::Params;

/// A generator's `values`, each compiled once and rendered against every parameter set.
pub(crate) struct ValuesTemplate {
    /// Compile errors are kept and only reported when a parameter set needs the value,
    /// as Argo CD only parses a value when rendering it.
    entries: Vec<(String, Result<StringTemplate, String>)>,
    go_template: bool,
}

impl ValuesTemplate {
    pub fn compile(ctx: &Context<'_>, values: &BTreeMap<String, String>) -> Self {
        Self {
            entries: values
                .iter()
                .map(|(k, v)| {
                    let compiled = StringTemplate::compile(v, &ctx.mode).map_err(|e| e.to_string());
                    (k.clone(), compiled)
                })
                .collect(),
            go_template: ctx.go_template,
        }
    }

    /// Renders every value against `params` (values cannot see each other), then adds
    /// them as `values.<k>` (fasttemplate) or a `values` map (goTemplate).
    pub fn apply(&self, params: &mut Params, path: &str) -> Result<(), GeneratorError> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let mut rendered = Vec::with_capacity(self.entries.len());
        for (key, template) in &self.entries {
            let value = match template {
                Ok(t) => t.render(params).map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            let value = value.map_err(|e| {
                GeneratorError::render(
                    &format!("{path}.values.{key}"),
                    format!("failed to replace templated string: {e}"),
                )
            })?;
            rendered.push((key, value));
        }
        if self.go_template {
            let map = rendered
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::String(v)))
                .collect();
            params.insert("values".to_owned(), Value::Object(map));
        } else {
            for (k, v) in rendered {
                params.insert(format!("values.{k}"), Value::String(v));
            }
        }
        Ok(())
    }
}
