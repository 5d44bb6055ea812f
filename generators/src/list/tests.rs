//! Tests of the `list` generator, run through the generator dispatch.

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
