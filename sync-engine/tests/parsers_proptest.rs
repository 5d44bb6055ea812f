//! Property tests of the sync engine's parsers of user input (issue #15 item 9): jq path
//! expressions, the `kustomize:` and `helm:` option blocks, repository URLs. None panics on
//! any input; refusals hold whatever surrounds them. 256 cases each; `scripts/fuzz.sh` runs
//! the long loop.

use argosy_sync_engine::jq::{self, PathExpr};
use argosy_sync_engine::render::RenderTarget;
use argosy_sync_engine::render::helm::helm_template_args;
use argosy_sync_engine::render::kustomize::kustomize_wrapper;
use argosy_sync_engine::repo::{normalize_repo_url, redact_url};
use proptest::prelude::*;
use serde_json::{Value, json};

const TARGET: RenderTarget<'static> = RenderTarget {
    app_name: "web",
    namespace: "prod",
};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// jq text built from pieces of real path expressions and jq syntax.
fn jq_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        ".",
        "..",
        ".spec",
        ".containers",
        "[]",
        "[0]",
        "[-1]",
        "[1:]",
        "?",
        "|",
        " ",
        "select(",
        ")",
        ".name",
        "==",
        "\"istio-proxy\"",
        "and",
        "or",
        "not",
        "(",
        ",",
        "$x",
        "as",
        "reduce",
        "foreach",
        "if",
        "then",
        "else",
        "end",
        "try",
        "catch",
        "error",
        "path(",
        "getpath(",
        "[\"a\"]",
        "1e300",
        "9223372036854775808",
        "{",
        "}",
        ":",
        "//",
        "label",
        "$__loc__",
        "@base64d",
        "tojson",
        "fromjson",
        "splits(",
        "test(",
        "\"(a+)+$\"",
        ";",
    ]);
    prop::collection::vec(piece, 0..16).prop_map(|p| p.concat())
}

fn deployment() -> Value {
    json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"name": "web", "env": [{"name": "A"}]}, {"name": "istio-proxy"}]}}}})
}

fn check_paths(expr: &PathExpr) {
    let mut doc = deployment();
    for path in expr.paths(&doc.clone()) {
        let _ = jq::pointer(&path);
        let _ = jq::get(&doc, &path);
        let _ = jq::set(&mut doc, &path, Value::Null);
    }
}

proptest! {
    #[test]
    fn jq_of_any_text_never_panics(text in "\\PC{0,48}") {
        if let Ok(expr) = PathExpr::compile(&text) {
            check_paths(&expr);
        }
    }

    #[test]
    fn jq_of_jq_pieces_never_panics(text in jq_text()) {
        if let Ok(expr) = PathExpr::compile(&text) {
            check_paths(&expr);
        }
    }

    #[test]
    fn jq_loops_are_refused_wherever_they_appear(
        before in jq_text(), after in jq_text(),
        word in prop::sample::select(vec!["def", "recurse", "repeat", "while", "until", "range", "limit", "input", "env", "$ENV"]),
    ) {
        let text = format!("{before} {word} {after}");
        prop_assert!(PathExpr::compile(&text).is_err(), "{text:?}");
    }

    #[test]
    fn kustomize_blocks_never_panic(block in json_value(), fields in prop::collection::btree_map(
        prop::sample::select(vec!["namePrefix", "images", "commonLabels", "replicas", "patches", "components", "namespace", "labelWithoutSelector"]),
        json_value(), 0..4)) {
        let near: Value = Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        for b in [&block, &near] {
            let _ = kustomize_wrapper(Some(b), "apps/web", |p| Ok(format!("patch {p}")));
        }
    }

    #[test]
    fn kustomize_components_stay_in_the_repository(components in prop::collection::vec("(\\.\\./|\\./|[a-z]{1,3}/){0,6}[a-z]{0,3}", 1..4), app in "([a-z]{1,3}/){0,3}[a-z]{1,3}") {
        let block = json!({"components": components});
        if let Ok(Some(wrapper)) = kustomize_wrapper(Some(&block), &app, |_| Ok(String::new())) {
            for c in wrapper["components"].as_array().expect("components") {
                let c = c.as_str().expect("a string");
                prop_assert!(c.starts_with("../repo/") || c == "../repo/", "{c}");
                prop_assert!(!c["../repo/".len().min(c.len())..].split('/').any(|p| p == ".."), "{c}");
            }
        }
    }

    #[test]
    fn helm_blocks_never_panic(block in json_value(), fields in prop::collection::btree_map(
        prop::sample::select(vec!["valueFiles", "values", "valuesObject", "parameters", "releaseName", "apiVersions", "skipCrds"]),
        json_value(), 0..4)) {
        let near: Value = Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        for b in [&block, &near] {
            let _ = helm_template_args(Some(b), "charts/web", TARGET);
        }
    }

    #[test]
    fn helm_value_files_outside_the_repository_are_refused(prefix in prop::sample::select(vec!["https://", "$values/", "/"]), rest in "\\PC{0,16}") {
        let block = json!({"valueFiles": ["ok.yaml", format!("{prefix}{rest}")]});
        prop_assert!(helm_template_args(Some(&block), "charts/web", TARGET).is_err());
    }

    #[test]
    fn repo_urls_never_panic_and_redaction_hides_the_password(url in "\\PC{0,40}", user in "[a-z]{1,8}", password in "[a-zA-Z0-9]{6,12}", host in "[a-z]{1,10}\\.example") {
        let _ = normalize_repo_url(&url);
        let _ = redact_url(&url);
        let with_secret = format!("https://{user}:{password}@{host}/org/repo.git");
        prop_assert!(!redact_url(&with_secret).contains(&password));
        prop_assert!(!normalize_repo_url(&with_secret).contains(&password));
    }

    #[test]
    fn redaction_removes_the_userinfo_itself(scheme in prop::sample::select(vec!["https", "http", "ssh", "git+ssh"]), userinfo in "[a-z]{1,6}(:[a-z0-9]{1,6})?", host in "[a-z]{1,8}") {
        let url = format!("{scheme}://{userinfo}@{host}/org/repo");
        // An SSH user name alone (`git@`) is no secret and stays; anything with a password,
        // and any userinfo of another scheme (often a token), goes.
        let expected = if scheme == "ssh" && !userinfo.contains(':') {
            url.clone()
        } else {
            format!("{scheme}://***@{host}/org/repo")
        };
        prop_assert_eq!(redact_url(&url), expected);
    }
}
