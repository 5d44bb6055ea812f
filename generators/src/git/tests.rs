//! Tests of the `git` generator, run through the generator dispatch.

use super::*;
use crate::testing::{Fixture, appset};
use serde_json::json;

const REPO: &str = "https://git.example/repo.git";

fn fixture(files: &[(&str, &str)]) -> Fixture {
    Fixture::default().repo(REPO, "HEAD", files)
}

fn dirs(items: &Value) -> Value {
    json!({"git": {"repoURL": REPO, "revision": "HEAD", "directories": items}})
}

fn paths(params: &[Value], key: &str) -> Vec<String> {
    params
        .iter()
        .map(|p| p[key].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn directory_filter_exclude_wins() {
    let f = fixture(&[("d/e/k", ""), ("d/f/k", ""), ("d/g/k", "")]);
    let set = appset(json!({"generators": []}));
    let generator = dirs(&json!([{"path": "d/*"}, {"path": "d/[fg]", "exclude": true}]));
    let params = f.run(&set, generator).unwrap();
    assert_eq!(paths(&params, "path"), ["d/e"]);
    assert_eq!(params[0]["path[1]"], "e");
    assert_eq!(params[0]["path.basenameNormalized"], "e");
    // A malformed pattern is an error (Argo CD skips it, which can empty the result
    // and delete every Application), naming the field and the pattern.
    let err = f
        .run(&set, dirs(&json!([{"path": "d/*"}, {"path": "d/["}])))
        .unwrap_err()
        .clone();
    assert!(err.contains("directories[1].path"), "{err}");
    assert!(err.contains("invalid pattern \"d/[\""), "{err}");
}

#[test]
fn gotemplate_directory_params_with_prefix() {
    let f = fixture(&[("apps/my_app/k", "")]);
    let set = appset(json!({"goTemplate": true, "generators": []}));
    let generator = json!({"git": {"repoURL": REPO, "revision": "HEAD",
            "directories": [{"path": "apps/*"}], "pathParamPrefix": "repo",
            "values": {"v": "{{.repo.path.basename}}"}}});
    let params = f.run(&set, generator).unwrap();
    assert_eq!(
        params[0],
        json!({"repo": {"path": {"path": "apps/my_app", "basename": "my_app",
                "basenameNormalized": "my-app", "segments": ["apps", "my_app"]}},
                "values": {"v": "my_app"}})
    );
}

#[test]
fn files_fasttemplate_flattened_and_path_params() {
    let f = fixture(&[
        (
            "c/prod/config.json",
            r#"{"cluster": {"name": "prod"}, "n": 1000000, "on": true}"#,
        ),
        ("c/list/config.json", "- {name: a}\n- {name: b}\n"),
        ("c/empty/config.json", ""),
        ("c/skip/config.json", "{}"),
    ]);
    let set = appset(json!({"generators": []}));
    let generator = json!({"git": {"repoURL": REPO, "revision": "HEAD",
            "files": [{"path": "c/**/config.json"}, {"path": "c/skip/*", "exclude": true}]}});
    let params = f.run(&set, generator).unwrap();
    assert_eq!(
        paths(&params, "path"),
        ["c/empty", "c/list", "c/list", "c/prod"]
    );
    assert_eq!(params[1]["name"], "a");
    let prod = &params[3];
    assert_eq!(prod["cluster.name"], "prod");
    assert_eq!(prod["n"], "1e+06");
    assert_eq!(prod["on"], "true");
    assert_eq!(prod["path.filename"], "config.json");
    assert_eq!(prod["path[0]"], "c");
    assert_eq!(params[0].as_object().unwrap().len(), 7, "{}", params[0]);
}

#[test]
fn invalid_file_names_the_file() {
    let f = fixture(&[("x/config.json", "invalid json file\n")]);
    let set = appset(json!({"generators": []}));
    let generator = json!({"git": {"repoURL": REPO, "revision": "HEAD", "files": [{"path": "**/config.json"}]}});
    let err = f.run(&set, generator).unwrap_err();
    assert!(
        err.contains("unable to process file 'x/config.json'"),
        "{err}"
    );
}

#[test]
fn missing_project_and_missing_repo_are_errors() {
    let f = fixture(&[("a/b", "")]);
    let set = appset(json!({"generators": [], "template": {"spec": {"project": "nope"}}}));
    let err = f.run(&set, dirs(&json!([{"path": "*"}]))).unwrap_err();
    assert!(err.contains("error getting project nope"), "{err}");

    let set = appset(json!({"generators": []}));
    let generator = json!({"git": {"repoURL": "https://missing", "revision": "HEAD", "directories": [{"path": "*"}]}});
    let err = f.run(&set, generator).unwrap_err();
    assert!(err.contains("repository https://missing"), "{err}");
}
