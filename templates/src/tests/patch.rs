//! templatePatch: parsing, validation, strategic merge, project restore (spec §2.4).

use serde_json::json;

use super::*;
use crate::{PatchError, apply_template_patch};

fn app() -> Json {
    json!({
        "metadata": {"name": "a", "namespace": "argocd", "finalizers": ["f1"], "labels": {"keep": "1", "drop": "2"}},
        "spec": {"project": "default", "source": {"repoURL": "r", "helm": {"valueFiles": ["a.yaml"]}}}
    })
}

fn patch(text: &str) -> Result<Json, PatchError> {
    apply_template_patch(
        &app(),
        text,
        &params(json!({"v": "x"})),
        &go_mode(MissingKey::Default),
    )
}

#[test]
fn maps_merge_lists_replace_nulls_delete() {
    let out = patch("metadata:\n  labels:\n    drop: null\n    new: '{{ .v }}'\nspec:\n  source:\n    helm:\n      valueFiles: [b.yaml]\n").unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"keep": "1", "new": "x"}));
    assert_eq!(
        out["spec"]["source"],
        json!({"repoURL": "r", "helm": {"valueFiles": ["b.yaml"]}})
    );
}

#[test]
fn finalizers_merge_as_a_set() {
    let out = patch(r#"{"metadata": {"finalizers": ["f2", "f1"]}}"#).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["f1", "f2"]));
}

#[test]
fn patch_directives() {
    let out = patch("spec:\n  source:\n    $patch: replace\n    path: p\n").unwrap();
    assert_eq!(out["spec"]["source"], json!({"path": "p"}));
    let out = patch("metadata:\n  labels:\n    $patch: delete\n").unwrap();
    assert!(out["metadata"].get("labels").is_none());
}

#[test]
fn project_is_restored_or_not_added() {
    assert_eq!(
        patch("spec:\n  project: other\n").unwrap()["spec"]["project"],
        "default"
    );
    let bare = json!({"metadata": {"name": "a"}, "spec": {}});
    let out = apply_template_patch(
        &bare,
        "spec:\n  project: other\n",
        &params(json!({"v": 1})),
        &Mode::Fast,
    )
    .unwrap();
    assert!(out["spec"].get("project").is_none());
}

#[test]
fn invalid_patches_are_rejected_with_argo_messages() {
    let err = patch("hello world").unwrap_err().to_string();
    assert!(err.starts_with("invalid templatePatch \"\\\"hello world\\\"\": json: cannot unmarshal string into Go value of type v1alpha1.Application"), "{err}");
    assert!(
        patch("{ not json")
            .unwrap_err()
            .to_string()
            .starts_with("invalid templatePatch \"{ not json\"")
    );
    assert!(
        patch("metadata:\n  labels: [a]\n")
            .unwrap_err()
            .to_string()
            .contains("cannot unmarshal array into Go struct field Application.metadata.labels")
    );
    assert!(
        patch("spec: 3\n")
            .unwrap_err()
            .to_string()
            .contains("Application.spec")
    );
    assert!(
        patch("key: [unclosed\n")
            .unwrap_err()
            .to_string()
            .starts_with("error while converting template to json")
    );
    let err = patch("{{ fail \"boom\" }}").unwrap_err();
    assert!(matches!(err, PatchError::Render(_)));
    assert!(
        err.to_string()
            .starts_with("error replacing values in templatePatch: failed to execute go template")
    );
}

#[test]
fn fasttemplate_patches_render_too() {
    let out = apply_template_patch(
        &app(),
        "metadata:\n  annotations:\n    a: '{{v}}'\n",
        &params(json!({"v": "x"})),
        &Mode::Fast,
    )
    .unwrap();
    assert_eq!(out["metadata"]["annotations"], json!({"a": "x"}));
}

#[test]
fn a_patch_that_renders_to_nothing_changes_nothing() {
    let out = patch("{{- if eq .v \"not-x\" }}\nspec:\n  project: other\n{{- end }}\n").unwrap();
    assert_eq!(out, app());
    assert_eq!(patch("   \n").unwrap(), app());
}
