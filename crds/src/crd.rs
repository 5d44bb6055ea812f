//! CRD manifests generated from the types in this crate.
//!
//! The schema follows kube-derive's settings (inline subschemas, structural rewrite) so
//! the API server accepts it. Like Argo CD's own CRDs, Application and `AppProject` have
//! no status subresource (Argo CD writes Application status with plain updates), while
//! `ApplicationSet` does. The committed YAML under `crds/yaml/` is checked against this
//! module by a test; regenerate it with `ARGOSY_UPDATE_CRDS=1 cargo test -p argosy-crds`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceSubresourceStatus, CustomResourceSubresources,
    CustomResourceValidation, JSONSchemaProps,
};
use schemars::JsonSchema;
use serde_json::json;

use crate::application::Application;
use crate::applicationset::ApplicationSet;
use crate::appproject::AppProject;
use crate::consts::{GROUP, VERSION};

/// The three Argo CD CRDs, in apply order.
#[must_use]
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        crd::<Application>(Names {
            kind: Application::KIND,
            plural: "applications",
            short: &["app", "apps"],
            status_subresource: false,
        }),
        crd::<ApplicationSet>(Names {
            kind: ApplicationSet::KIND,
            plural: "applicationsets",
            short: &["appset", "appsets"],
            status_subresource: true,
        }),
        crd::<AppProject>(Names {
            kind: AppProject::KIND,
            plural: "appprojects",
            short: &["appproj", "appprojs"],
            status_subresource: false,
        }),
    ]
}

/// All CRDs as one multi-document YAML stream (what `argosy crds` prints); fails only if
/// YAML serialization of a CRD fails.
pub fn all_yaml() -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd)?);
    }
    Ok(out)
}

#[derive(Clone, Copy)]
struct Names {
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    status_subresource: bool,
}

fn crd<T: JsonSchema>(names: Names) -> CustomResourceDefinition {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .into_generator();
    let mut schema = serde_json::to_value(generator.into_root_schema_for::<T>())
        .unwrap_or_else(|_| json!({"type": "object"}));
    // `metadata` is validated by the API server itself, and `apiVersion`/`kind` may not
    // carry defaults: the root may only describe them by type.
    if let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        props.insert("metadata".into(), json!({"type": "object"}));
        props.insert("apiVersion".into(), json!({"type": "string"}));
        props.insert("kind".into(), json!({"type": "string"}));
    }
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("title");
        obj.remove("required");
    }
    strip_defaults(&mut schema);
    preserve_untyped(&mut schema);
    let schema: Option<JSONSchemaProps> = serde_json::from_value(schema).ok();
    let singular = names.kind.to_lowercase();
    CustomResourceDefinition {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(format!("{}.{GROUP}", names.plural)),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "argocd".to_owned())].into()),
            ..Default::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.into(),
            names: CustomResourceDefinitionNames {
                kind: names.kind.into(),
                list_kind: Some(format!("{}List", names.kind)),
                plural: names.plural.into(),
                singular: Some(singular),
                short_names: Some(names.short.iter().map(|s| (*s).to_owned()).collect()),
                ..Default::default()
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: VERSION.into(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: schema,
                }),
                subresources: names
                    .status_subresource
                    .then(|| CustomResourceSubresources {
                        status: Some(CustomResourceSubresourceStatus(json!({}))),
                        scale: None,
                    }),
                ..Default::default()
            }],
            ..Default::default()
        },
        status: None,
    }
}

/// Removes every `default` schemars derives from `#[serde(default)]`. Argo CD's CRDs have
/// none, and the API server would otherwise write them into every stored object (so
/// objects would not read back as written); the 1.20 API server even rejects the CRD, as
/// it validates an empty-string default as `null`.
fn strip_defaults(node: &mut serde_json::Value) {
    match node {
        serde_json::Value::Object(obj) => {
            obj.remove("default");
            for (key, value) in obj.iter_mut() {
                // `properties` maps field names to schemas: a field may be named `default`.
                if key == "properties" {
                    for schema in value
                        .as_object_mut()
                        .into_iter()
                        .flat_map(|p| p.values_mut())
                    {
                        strip_defaults(schema);
                    }
                } else {
                    strip_defaults(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_defaults),
        _ => {}
    }
}

/// A structural schema needs a `type` on every field and array item, except on nodes
/// marked `x-kubernetes-preserve-unknown-fields` (or int-or-string). schemars renders a
/// `serde_json::Value` as `{}`, which the API server rejects ("must not be empty for
/// specified array items"); such nodes are marked as preserving anything, as in Argo
/// CD's own CRDs. So are free-form maps (`additionalProperties: true`), whose nested
/// values would otherwise be pruned.
fn preserve_untyped(node: &mut serde_json::Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    let mut children: Vec<&mut serde_json::Value> = Vec::new();
    for (key, value) in obj.iter_mut() {
        match key.as_str() {
            "properties" => children.extend(
                value
                    .as_object_mut()
                    .into_iter()
                    .flat_map(|p| p.values_mut()),
            ),
            "items" | "additionalProperties" if value.is_object() => children.push(value),
            _ => {}
        }
    }
    for child in children {
        // `additionalProperties: true` (a `Map<String, Value>`) admits any key, but the
        // API server still prunes everything below those keys' values: a matrix child
        // `{list: {elements: [..]}}` was stored as `{list: {}}`.
        if let Some(o) = child.as_object_mut()
            && o.get("additionalProperties") == Some(&json!(true))
        {
            o.remove("additionalProperties");
            o.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
        }
        if let Some(o) = child.as_object_mut()
            && !o.contains_key("type")
            && !o.contains_key("x-kubernetes-int-or-string")
            && !o.contains_key("x-kubernetes-preserve-unknown-fields")
        {
            o.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
        }
        preserve_untyped(child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml/argo-cd-crds.yaml")
    }

    /// What the 1.20 API server rejected or silently pruned (see `strip_defaults` and
    /// `preserve_untyped`).
    #[test]
    fn schemas_are_structural_without_defaults_or_pruned_maps() {
        fn check(node: &serde_json::Value, path: &str, problems: &mut Vec<String>) {
            let Some(obj) = node.as_object() else { return };
            if obj.contains_key("default") {
                problems.push(format!("{path}: default"));
            }
            if obj.get("additionalProperties") == Some(&json!(true)) {
                problems.push(format!("{path}: additionalProperties: true"));
            }
            let typed = obj.contains_key("type")
                || obj.contains_key("x-kubernetes-preserve-unknown-fields")
                || obj.contains_key("x-kubernetes-int-or-string");
            if !typed && !path.is_empty() {
                problems.push(format!("{path}: no type"));
            }
            for (name, child) in obj
                .get("properties")
                .and_then(|p| p.as_object())
                .into_iter()
                .flatten()
            {
                check(child, &format!("{path}.{name}"), problems);
            }
            for key in ["items", "additionalProperties"] {
                if let Some(child) = obj.get(key).filter(|c| c.is_object()) {
                    check(child, &format!("{path}[{key}]"), problems);
                }
            }
        }
        let mut problems = Vec::new();
        for crd in all() {
            let schema = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref());
            let schema = serde_json::to_value(schema).unwrap();
            check(&schema, "", &mut problems);
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn every_crd_has_a_schema() {
        for crd in all() {
            let v = &crd.spec.versions[0];
            let schema = v
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref());
            let props = schema.and_then(|s| s.properties.as_ref()).expect("schema");
            assert!(props.contains_key("spec"), "{}", crd.spec.names.kind);
        }
    }

    #[test]
    fn committed_crd_yaml_is_up_to_date() {
        let generated = all_yaml().unwrap();
        let path = committed_path();
        if std::env::var_os("ARGOSY_UPDATE_CRDS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale: run `ARGOSY_UPDATE_CRDS=1 cargo test -p argosy-crds`",
            path.display()
        );
    }
}
