//! `templatePatch` (spec §2.4, Argo's `controllers/template/patch.go`).
//!
//! The patch text is rendered once per parameter set, read as JSON when it starts with `{` and as
//! YAML otherwise, checked to decode as an Application, and applied as a Kubernetes strategic
//! merge patch with the Application's patch strategies: maps merge recursively, `null` deletes a
//! key, `$patch: replace`/`delete` directives apply, `metadata.finalizers` merges as a set and
//! `metadata.ownerReferences` by `uid` (`ObjectMeta`'s merge keys); every other list — Argo's
//! Application types declare no merge keys — is replaced. Finally `spec.project` is restored to
//! its pre-patch value, so a patch cannot move an Application to another project.

use serde_json::{Map, Value as Json};

use crate::error::PatchError;
use crate::funcs::yamlfns::json_kind;
use crate::mode::Mode;
use crate::params::Params;
use crate::template::render_string;

/// Renders `patch` against `params` in `mode` and applies it to `app`.
pub fn apply_template_patch(
    app: &Json,
    patch: &str,
    params: &Params,
    mode: &Mode,
) -> Result<Json, PatchError> {
    let rendered = render_string(patch, params, mode).map_err(PatchError::Render)?;
    let patch = parse_patch(&rendered)?;
    // A patch that renders to nothing (a conditional patch whose condition is false) is
    // YAML `null`: Go decodes it into an empty patch, so the Application is unchanged.
    if patch.is_null() {
        return Ok(app.clone());
    }
    let mut patched = merge(app, &patch, "");
    restore_project(app, &mut patched);
    Ok(patched)
}

/// Argo's `ConvertYAMLToJSON` followed by `json.Unmarshal` into an Application.
fn parse_patch(text: &str) -> Result<Json, PatchError> {
    let is_json = text.trim_start().starts_with('{');
    let (json_text, value) = if is_json {
        let value = serde_json::from_str::<Json>(text).map_err(|e| PatchError::Invalid {
            patch: text.to_string(),
            message: e.to_string(),
        })?;
        (text.to_string(), value)
    } else {
        let value = crate::yaml::parse(text).map_err(|message| PatchError::Convert {
            patch: text.to_string(),
            message,
        })?;
        (value.to_string(), value)
    };
    check_application(&value).map_err(|message| PatchError::Invalid {
        patch: json_text,
        message,
    })?;
    Ok(value)
}

fn mismatch(v: &Json, field: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        json_kind(v)
    )
}

/// The parts of Go's decoding into `v1alpha1.Application` that a patch can plausibly get wrong:
/// the document and its `metadata`/`spec` must be objects, labels and annotations string maps,
/// finalizers a string list, `spec.project` a string.
fn check_application(v: &Json) -> Result<(), String> {
    let Json::Object(app) = v else {
        if v.is_null() {
            return Ok(());
        }
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type v1alpha1.Application",
            json_kind(v)
        ));
    };
    if let Some(meta) = app.get("metadata").filter(|m| !m.is_null()) {
        let Json::Object(meta) = meta else {
            return Err(mismatch(meta, "Application.metadata", "v1.ObjectMeta"));
        };
        for field in ["labels", "annotations"] {
            match meta.get(field) {
                None | Some(Json::Null) => {}
                Some(Json::Object(m)) => {
                    if let Some(bad) = m.values().find(|x| !x.is_string() && !x.is_null()) {
                        return Err(mismatch(
                            bad,
                            &format!("Application.metadata.{field}"),
                            "string",
                        ));
                    }
                }
                Some(other) => {
                    return Err(mismatch(
                        other,
                        &format!("Application.metadata.{field}"),
                        "map[string]string",
                    ));
                }
            }
        }
        match meta.get("finalizers") {
            None | Some(Json::Null) => {}
            Some(Json::Array(items)) => {
                if let Some(bad) = items.iter().find(|x| !x.is_string()) {
                    return Err(mismatch(bad, "Application.metadata.finalizers", "string"));
                }
            }
            Some(other) => {
                return Err(mismatch(
                    other,
                    "Application.metadata.finalizers",
                    "[]string",
                ));
            }
        }
    }
    if let Some(spec) = app.get("spec").filter(|s| !s.is_null()) {
        let Json::Object(spec) = spec else {
            return Err(mismatch(
                spec,
                "Application.spec",
                "v1alpha1.ApplicationSpec",
            ));
        };
        if let Some(project) = spec
            .get("project")
            .filter(|p| !p.is_string() && !p.is_null())
        {
            return Err(mismatch(project, "Application.spec.project", "string"));
        }
    }
    Ok(())
}

/// Removes `null`s and `$` directives from a value that is inserted as a whole.
fn clean(v: &Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(
            m.iter()
                .filter(|(k, x)| !k.starts_with('$') && !x.is_null())
                .map(|(k, x)| (k.clone(), clean(x)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}

/// The strategic merge of `patch` into `original`; `field_path` is the dotted path of `original`.
fn merge(original: &Json, patch: &Json, field_path: &str) -> Json {
    let (Json::Object(orig), Json::Object(patch_map)) = (original, patch) else {
        return clean(patch);
    };
    match patch_map.get("$patch").and_then(Json::as_str) {
        Some("replace") => return clean(patch),
        Some("delete") => return Json::Object(Map::new()),
        _ => {}
    }
    let mut out = orig.clone();
    for (k, pv) in patch_map {
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            out.remove(k);
            continue;
        }
        let child = if field_path.is_empty() {
            k.clone()
        } else {
            format!("{field_path}.{k}")
        };
        let merged = match (out.get(k), pv) {
            (Some(ov @ Json::Object(_)), Json::Object(_)) => {
                if pv.get("$patch").and_then(Json::as_str) == Some("delete") {
                    out.remove(k);
                    continue;
                }
                merge(ov, pv, &child)
            }
            (Some(Json::Array(ol)), Json::Array(pl)) => merge_list(&child, ol, pl),
            _ => clean(pv),
        };
        out.insert(k.clone(), merged);
    }
    Json::Object(out)
}

/// Lists with a merge strategy in `ObjectMeta`; every other list is replaced.
fn merge_list(path: &str, original: &[Json], patch_items: &[Json]) -> Json {
    match path {
        "metadata.finalizers" => {
            let mut out = original.to_vec();
            for item in patch_items {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Json::Array(out)
        }
        "metadata.ownerReferences" => {
            let uid = |v: &Json| v.get("uid").cloned();
            let mut out = original.to_vec();
            for item in patch_items {
                match out
                    .iter_mut()
                    .find(|o| uid(o).is_some() && uid(o) == uid(item))
                {
                    Some(existing) => *existing = merge(existing, item, path),
                    None => out.push(clean(item)),
                }
            }
            Json::Array(out)
        }
        _ => Json::Array(patch_items.iter().map(clean).collect()),
    }
}

/// Puts back the pre-patch `spec.project` (or removes one the patch added).
fn restore_project(original: &Json, patched: &mut Json) {
    let before = original.pointer("/spec/project").cloned();
    let Some(spec) = patched.get_mut("spec").and_then(Json::as_object_mut) else {
        return;
    };
    match before {
        Some(p) => {
            spec.insert("project".to_string(), p);
        }
        None => {
            spec.remove("project");
        }
    }
}
