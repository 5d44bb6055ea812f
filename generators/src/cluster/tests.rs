//! Tests of the `cluster` generator, run through the generator dispatch.

use super::*;
use crate::testing::{Fixture, appset};
use serde_json::json;

fn fixture() -> Fixture {
    Fixture::default()
        .cluster("staging", "https://staging", &[("env", "staging")])
        .cluster("prod_1", "https://prod", &[("env", "prod")])
}

fn names(params: &[Value]) -> Vec<&str> {
    params.iter().map(|p| p["name"].as_str().unwrap()).collect()
}

#[test]
fn all_clusters_plus_in_cluster_without_selector() {
    let set = appset(json!({"generators": []}));
    let params = fixture().run(&set, json!({"clusters": {}})).unwrap();
    assert_eq!(names(&params), ["staging", "prod_1", "in-cluster"]);
    assert_eq!(params[1]["nameNormalized"], "prod-1");
    assert_eq!(params[1]["metadata.labels.env"], "prod");
    assert_eq!(
        params[2],
        json!({"name": "in-cluster", "nameNormalized": "in-cluster",
            "server": "https://kubernetes.default.svc", "project": ""})
    );
}

#[test]
fn selector_excludes_in_cluster_and_values_interpolate() {
    let set = appset(json!({"goTemplate": true, "generators": []}));
    let generator = json!({"clusters": {
        "selector": {"matchLabels": {"env": "prod"}},
        "values": {"env": "{{.metadata.labels.env}}", "n": "{{.name}}"}
    }});
    let params = fixture().run(&set, generator).unwrap();
    assert_eq!(names(&params), ["prod_1"]);
    assert_eq!(params[0]["values"], json!({"env": "prod", "n": "prod_1"}));
    assert_eq!(params[0]["metadata"]["labels"]["env"], "prod");
}

#[test]
fn secret_for_local_server_replaces_in_cluster_and_flat_list() {
    let set = appset(json!({"goTemplate": true, "generators": []}));
    let f = Fixture::default().cluster("local", IN_CLUSTER_SERVER, &[]);
    let params = f
        .run(&set, json!({"clusters": {"flatList": true}}))
        .unwrap();
    assert_eq!(params.len(), 1);
    assert_eq!(names(params[0]["clusters"].as_array().unwrap()), ["local"]);
}

#[test]
fn invalid_matching_secret_is_an_error() {
    let set = appset(json!({"generators": []}));
    let f = fixture().invalid_cluster("broken", &[("env", "prod")]);
    let err = f
        .run(
            &set,
            json!({"clusters": {"selector": {"matchLabels": {"env": "prod"}}}}),
        )
        .unwrap_err();
    assert!(err.contains("argocd/broken"), "{err}");
    // Not selected: ignored.
    let ok = f.run(
        &set,
        json!({"clusters": {"selector": {"matchLabels": {"env": "staging"}}}}),
    );
    assert_eq!(names(&ok.unwrap()), ["staging"]);
}

#[test]
fn duplicate_names_collapse_last_wins() {
    let set = appset(json!({"generators": []}));
    let f = fixture().cluster("staging", "https://other", &[]);
    let params = f.run(&set, json!({"clusters": {}})).unwrap();
    assert_eq!(names(&params), ["staging", "prod_1", "in-cluster"]);
    assert_eq!(params[0]["server"], "https://other");
}

#[test]
fn bad_selector_value_is_a_spec_error() {
    let set = appset(json!({"generators": []}));
    let generator = json!({"clusters": {"selector": {"matchLabels": {"env": "{{.x}}"}}}});
    let err = fixture().run(&set, generator).unwrap_err();
    assert!(
        err.contains("spec.generators[0].clusters.selector"),
        "{err}"
    );
}
