//! Field-by-field rendering of JSON documents and Argo's finalizer rule (spec §2.1).

use serde_json::json;

use super::*;
use crate::{RenderError, ValueTemplate, render_application, render_application_with_policy};

const FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

fn template(mode: &Mode) -> ValueTemplate {
    ValueTemplate::compile(
        &json!({
            "metadata": {"name": "{{.cluster}}-app", "labels": {"{{.labelKey}}": "v", "static": "s"}},
            "spec": {
                "project": "default",
                "source": {"helm": {"valueFiles": ["a.yaml", "{{.env}}.yaml"], "skipCrds": true}},
                "destination": {"namespace": "{{.cluster}}"},
                "syncPolicy": null
            }
        }),
        mode,
    )
    .unwrap()
}

#[test]
fn renders_every_string_and_key() {
    let t = template(&go_mode(MissingKey::Default));
    let app = t
        .render(&params(
            json!({"cluster": "c1", "labelKey": "team", "env": "prod"}),
        ))
        .unwrap();
    assert_eq!(
        app,
        json!({
            "metadata": {"name": "c1-app", "labels": {"team": "v", "static": "s"}},
            "spec": {
                "project": "default",
                "source": {"helm": {"valueFiles": ["a.yaml", "prod.yaml"], "skipCrds": true}},
                "destination": {"namespace": "c1"},
                "syncPolicy": null
            }
        })
    );
}

#[test]
fn errors_name_the_field() {
    let t = template(&go_mode(MissingKey::Error));
    let err: RenderError = t
        .render(&params(json!({"cluster": "c1", "labelKey": "k"})))
        .unwrap_err();
    assert_eq!(err.path, "spec.source.helm.valueFiles[1]");
    assert!(
        err.to_string()
            .starts_with("spec.source.helm.valueFiles[1]: failed to execute go template")
    );
    let bad = ValueTemplate::compile(
        &json!({"metadata": {"annotations": {"a.b/c": "{{ nope }}"}}}),
        &go_mode(MissingKey::Default),
    )
    .unwrap();
    let err = bad.render(&params(json!({"x": 1}))).unwrap_err();
    assert_eq!(err.path, r#"metadata.annotations["a.b/c"]"#);
    assert!(err.to_string().contains(r#"function "nope" not defined"#));
}

#[test]
fn render_application_adds_the_finalizer_unless_preserved() {
    let t = ValueTemplate::compile(
        &json!({"metadata": {"name": "{{cluster}}-app"}, "spec": {"x": "{{env}}"}}),
        &Mode::Fast,
    )
    .unwrap();
    let app = render_application(&t, &params(json!({"cluster": "c1"}))).unwrap();
    assert_eq!(app["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(app["metadata"]["name"], "c1-app");
    // Unknown fasttemplate tags stay verbatim.
    assert_eq!(app["spec"]["x"], "{{env}}");

    let preserving = ValueTemplate::compile(
        &json!({"metadata": {"name": "{{x}}"}, "spec": {"syncPolicy": {"preserveResourcesOnDeletion": true}}}),
        &Mode::Fast,
    )
    .unwrap();
    let app = render_application(&preserving, &params(json!({"x": "y"}))).unwrap();
    assert!(app["metadata"].get("finalizers").is_none());
    let app =
        render_application_with_policy(&template(&Mode::Fast), &params(json!({"x": "y"})), true)
            .unwrap();
    assert!(app["metadata"].get("finalizers").is_none());

    let own = ValueTemplate::compile(&json!({"metadata": {"finalizers": ["mine"]}}), &Mode::Fast)
        .unwrap();
    let app = render_application(&own, &params(json!({"x": "y"}))).unwrap();
    assert_eq!(app["metadata"]["finalizers"], json!(["mine"]));
    let empty =
        ValueTemplate::compile(&json!({"metadata": {"finalizers": []}}), &Mode::Fast).unwrap();
    let app = render_application(&empty, &params(json!({"x": "y"}))).unwrap();
    assert_eq!(app["metadata"]["finalizers"], json!([FINALIZER]));
}

#[test]
fn empty_params_return_the_template_unchanged() {
    let src = json!({"metadata": {"name": "{{ .missing }}", "annotations": {"bad": "{{ nope }}"}}});
    let t = ValueTemplate::compile(&src, &go_mode(MissingKey::Error)).unwrap();
    assert_eq!(render_application(&t, &Params::new()).unwrap(), src);
    assert_eq!(t.source(), &src);
}

#[test]
fn duplicate_rendered_keys_keep_one_entry() {
    let t = ValueTemplate::compile(
        &json!({"{{.a}}": "1", "{{.b}}": "2"}),
        &go_mode(MissingKey::Default),
    )
    .unwrap();
    let out = t.render(&params(json!({"a": "k", "b": "k"}))).unwrap();
    assert_eq!(out.as_object().map(serde_json::Map::len), Some(1));
}

#[test]
fn constant_documents_render_to_themselves() {
    let src = json!({"a": [1, true, null, "text"], "b": {"c": 2.5}});
    for mode in [Mode::Fast, go_mode(MissingKey::Error)] {
        let t = ValueTemplate::compile(&src, &mode).unwrap();
        assert_eq!(t.render(&params(json!({"x": 1}))).unwrap(), src);
    }
}
