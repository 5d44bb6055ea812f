//! Manifest parsing: JSON and YAML files and tool output to Kubernetes objects, `List`
//! kinds expanded, with Argo CD's leniency for YAML that is not a manifest.

use serde::Deserialize;
use serde_json::Value;

use super::error::RenderError;

/// One object per JSON file, as in Argo CD.
pub(super) fn json_file(file: &str, data: &[u8]) -> Result<Vec<Value>, RenderError> {
    let value: Value =
        serde_json::from_slice(strip_bom(data)).map_err(|e| RenderError::ParseManifest {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
    check_object(value)
        .map(|o| vec![o])
        .map_err(|message| RenderError::ParseManifest {
            file: file.to_owned(),
            message,
        })
}

/// The documents of a YAML file, with Argo CD's leniency: a file that yields no object
/// and does not look like a manifest (lacks `apiVersion:`, `kind:` or `metadata:`) is
/// some other YAML (Helm values, configuration) and is skipped; otherwise the first bad
/// document is an error naming the file.
pub(super) fn yaml_file(file: &str, data: &[u8]) -> Result<Vec<Value>, RenderError> {
    match yaml_objects(data) {
        Ok(objects) => Ok(objects),
        Err((found, message)) => {
            let text = String::from_utf8_lossy(data);
            let looks_like_manifest = ["apiVersion:", "kind:", "metadata:"]
                .iter()
                .all(|k| text.contains(k));
            if found == 0 && !looks_like_manifest {
                tracing::debug!(file, %message, "skipping a YAML file that is not a manifest");
                return Ok(Vec::new());
            }
            Err(RenderError::ParseManifest {
                file: file.to_owned(),
                message,
            })
        }
    }
}

/// Every non-empty document as an object; on failure, how many came before and why.
fn yaml_objects(data: &[u8]) -> Result<Vec<Value>, (usize, String)> {
    let mut objects = Vec::new();
    argosy_crds::yaml_depth::check_bytes(data).map_err(|e| (0, e.to_string()))?;
    for (index, document) in serde_yaml_ng::Deserializer::from_slice(strip_bom(data)).enumerate() {
        let fail = |message: String| (objects.len(), format!("document {}: {message}", index + 1));
        let value = Value::deserialize(document).map_err(|e| fail(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let object = check_object(value).map_err(fail)?;
        objects.push(object);
    }
    Ok(objects)
}

fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data)
}

/// A Kubernetes object needs to be a mapping with a non-empty `apiVersion` and `kind`.
fn check_object(value: Value) -> Result<Value, String> {
    let Value::Object(map) = &value else {
        return Err("not a Kubernetes object (expected a mapping)".to_owned());
    };
    for field in ["apiVersion", "kind"] {
        if map
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!("object has no {field}"));
        }
    }
    Ok(value)
}

/// Appends `object`, or the items of a `List`/`*List` (an `items: null` list is empty).
pub(super) fn expand_list(
    file: &str,
    object: Value,
    out: &mut Vec<Value>,
) -> Result<(), RenderError> {
    let is_list = object
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    match object.get("items") {
        Some(Value::Array(_)) if is_list => {}
        Some(Value::Null)
            if is_list && object.get("spec").is_none() && object.get("status").is_none() =>
        {
            return Ok(());
        }
        _ => {
            out.push(object);
            return Ok(());
        }
    }
    let Value::Object(mut map) = object else {
        return Ok(());
    };
    let Some(Value::Array(items)) = map.remove("items") else {
        return Ok(());
    };
    for (i, item) in items.into_iter().enumerate() {
        let item = check_object(item).map_err(|m| RenderError::ParseManifest {
            file: file.to_owned(),
            message: format!("items[{i}]: {m}"),
        })?;
        out.push(item);
    }
    Ok(())
}

/// Parses a tool's YAML output strictly: every document must be an object.
pub(super) fn tool_output(tool: &'static str, data: &[u8]) -> Result<Vec<Value>, RenderError> {
    let docs = yaml_objects(data).map_err(|(_, message)| RenderError::ParseManifest {
        file: format!("{tool} output"),
        message,
    })?;
    let mut objects = Vec::new();
    for doc in docs {
        expand_list(tool, doc, &mut objects)?;
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use crate::render::testing::*;
    use std::fmt::Write as _;

    #[test]
    fn lists_are_expanded() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}",
            r"{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}",
            r"{apiVersion: v1, kind: ConfigMap, metadata: {name: b}}"
        );
        let typed = "apiVersion: v1\nkind: ConfigMapList\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n";
        let null = "apiVersion: v1\nkind: ConfigMapList\nitems: null\n";
        let bad_item = "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n- {kind: ConfigMap}\n";
        let snap = snapshot(
            &[
                ("a/1.yaml", &list),
                ("a/2.yaml", typed),
                ("a/3.yaml", null),
                ("b/x.yaml", bad_item),
            ],
            &[],
        );
        assert_eq!(
            names(&render(&snap, &source("a", json!({}))).unwrap()),
            ["a", "b", "c"]
        );
        let err = render(&snap, &source("b", json!({})))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "b/x.yaml: items[0]: object has no apiVersion");
    }

    #[test]
    fn bad_manifests_are_errors_naming_the_file() {
        let cases = [
            // A YAML syntax error in something that looks like a manifest.
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [}\n",
                "document 1",
            ),
            // A good document, then one without a kind.
            (
                &*format!("{}---\napiVersion: v1\nmetadata: {{}}\n", cm("a")),
                "document 2: object has no kind",
            ),
            // apiVersion missing although the file looks like a manifest.
            (
                "kind: ConfigMap\nmetadata: {name: x}\n# apiVersion: v1\n",
                "document 1: object has no apiVersion",
            ),
        ];
        for (content, want) in cases {
            let snap = snapshot(
                &[("app/bad.yaml", content), ("app/ok.yaml", &cm("ok"))],
                &[],
            );
            let err = render(&snap, &source("app", json!({}))).unwrap_err();
            assert_eq!(err.category(), "manifest");
            let err = err.to_string();
            assert!(err.starts_with("app/bad.yaml: "), "{err}");
            assert!(err.contains(want), "{err} lacks {want}");
        }
        let snap = snapshot(&[("app/x.json", "[1, 2]")], &[]);
        let err = render(&snap, &source("app", json!({})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "app/x.json: not a Kubernetes object (expected a mapping)"
        );
    }

    #[test]
    fn alias_bombs_do_not_blow_up() {
        let mut bomb = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for i in 1..12 {
            let p = i - 1;
            let _ = writeln!(
                bomb,
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]"
            );
        }
        let snap = snapshot(&[("app/bomb.yaml", &bomb)], &[]);
        let err = render(&snap, &source("app", json!({})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("repetition limit exceeded"), "{err}");
    }
}
