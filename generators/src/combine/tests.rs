//! Tests of the `combine` generator, run through the generator dispatch.

use super::*;
use crate::testing::{Fixture, appset, run_generator};
use serde_json::json;

#[test]
fn merge_override_is_deep_and_src_wins() {
    let mut dst = json!({"a": "1", "m": {"x": "1", "y": "1"}, "l": [1, 2], "e": {}, "t": true});
    let src = json!({"a": "", "m": {"y": "2"}, "l": [3], "e": {"k": "v"}, "t": false, "n": null});
    // The matrix direction: src is the first child and wins.
    let mut laid = src.as_object().unwrap().clone();
    let undo = overlay(&mut laid, dst.as_object().unwrap());
    merge_override(dst.as_object_mut().unwrap(), src.as_object().unwrap());
    assert_eq!(
        dst,
        json!({"a": "", "m": {"x": "1", "y": "2"}, "l": [3], "e": {"k": "v"}, "t": false, "n": null})
    );
    assert_eq!(Value::Object(laid.clone()), dst);
    undo.revert(&mut laid);
    assert_eq!(Value::Object(laid), src);
}

#[test]
fn matrix_cartesian_product_and_errors() {
    let set = appset(json!({"generators": []}));
    let generator = json!({"matrix": {"generators": [
        {"list": {"elements": [{"a": "1"}, {"a": "2"}]}},
        {"list": {"elements": [{"b": "{{a}}x"}]}}
    ]}});
    let params = run_generator(&set, generator).unwrap();
    assert_eq!(
        params,
        [json!({"a": "1", "b": "1x"}), json!({"a": "2", "b": "2x"})]
    );

    let generator = json!({"matrix": {"generators": [
        {"list": {"elements": [{"a": "1"}]}},
        {"list": {"elements": [{"a": "2"}]}}
    ]}});
    let err = run_generator(&set, generator).unwrap_err();
    assert!(
        err.contains("found duplicate key a with different value"),
        "{err}"
    );

    let generator = json!({"matrix": {"generators": [{"list": {"elements": []}}]}});
    let err = run_generator(&set, generator).unwrap_err();
    assert!(err.contains("found less than two generators"), "{err}");

    let generator = json!({"matrix": {"generators": [
        {"list": {"elements": [{"a": "1"}]}, "clusters": {}},
        {"list": {"elements": []}}
    ]}});
    let err = run_generator(&set, generator).unwrap_err();
    assert!(err.contains("found more than one generator"), "{err}");
}

#[test]
fn matrix_gotemplate_first_child_wins_and_values_are_pre_resolved() {
    let set = appset(
        json!({"goTemplate": true, "goTemplateOptions": ["missingkey=error"], "generators": []}),
    );
    let f = Fixture::default().cluster("c1", "https://c1", &[("env", "dev")]);
    let generator = json!({"matrix": {"generators": [
        {"list": {"elements": [{"env": "dev", "server": "first"}]}},
        {"clusters": {
            "selector": {"matchLabels": {"env": "{{.env}}"}},
            "values": {"from-a": "{{.env}}", "from-cluster": "{{.name}}"}
        }}
    ]}});
    let params = f.run(&set, generator).unwrap();
    assert_eq!(params.len(), 1);
    assert_eq!(params[0]["server"], "first");
    assert_eq!(
        params[0]["values"],
        json!({"from-a": "dev", "from-cluster": "c1"})
    );
}

#[test]
fn nesting_limit_drops_third_level() {
    let set = appset(json!({"generators": []}));
    let generator = json!({"matrix": {"generators": [
        {"matrix": {"generators": [
            {"matrix": {"generators": [{"list": {"elements": [{"a": "1"}]}}, {"list": {"elements": [{"b": "1"}]}}]}},
            {"list": {"elements": [{"c": "1"}]}}
        ]}},
        {"list": {"elements": [{"d": "1"}]}}
    ]}});
    let err = run_generator(&set, generator).unwrap_err();
    assert!(
        err.contains("child generator generated no parameters"),
        "{err}"
    );
    assert!(
        err.contains("spec.generators[0].matrix.generators[0].matrix.generators[0]"),
        "{err}"
    );
}

#[test]
fn merge_later_generators_override_matching_sets() {
    let set = appset(json!({"generators": []}));
    let generator = json!({"merge": {"mergeKeys": ["b"], "generators": [
        {"list": {"elements": [{"a": "1", "b": "same", "c": "1"}, {"a": "x", "b": "other"}]}},
        {"list": {"elements": [{"a": "2", "b": "same"}, {"a": "3", "b": "unmatched"}]}}
    ]}});
    let params = run_generator(&set, generator).unwrap();
    assert_eq!(
        params,
        [
            json!({"a": "2", "b": "same", "c": "1"}),
            json!({"a": "x", "b": "other"})
        ]
    );

    let generator = json!({"merge": {"mergeKeys": ["b"], "generators": [
        {"list": {"elements": [{"b": "1"}, {"b": "1"}]}},
        {"list": {"elements": []}}
    ]}});
    let err = run_generator(&set, generator).unwrap_err();
    assert!(err.contains("not unique by the given mergeKeys"), "{err}");
}
