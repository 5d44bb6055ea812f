//! Property tests of the sync engine's parsers of user input (issue #15 item 9): jq path
//! expressions, the `kustomize:` and `helm:` option blocks, repository URLs, chart versions
//! and constraints, Helm repository indexes. None panics on any input; refusals hold whatever surrounds them. 256 cases each; `scripts/fuzz.sh` runs
//! the long loop.

use argosy_sync_engine::charts::index::{ChartVersion, Index};
use argosy_sync_engine::charts::version::{Constraint, newest_matching, parse_version};
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
    kube_version: "",
    api_versions: &[],
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

/// Constraint text built from pieces of real constraints.
fn constraint_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        ">",
        "<",
        ">=",
        "<=",
        "=>",
        "=<",
        "=",
        "!=",
        "~",
        "~>",
        "^",
        "v",
        "0",
        "1",
        "12",
        "2.3",
        ".4",
        ".x",
        ".X",
        ".*",
        "*",
        "x",
        "-",
        " - ",
        "-rc.1",
        "-0",
        "-01",
        "+b.7",
        "|",
        "||",
        ",",
        ", ",
        " ",
        "\t",
        "99999999999999999999",
        "a",
        ".",
    ]);
    prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
}

/// Versions as Helm writes and reads them (`v` prefix, short forms, prereleases, builds).
fn version_text() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        0u64..30,
        prop::option::of(0u64..30),
        prop::option::of(0u64..30),
        prop::option::of(
            "(rc|beta|[a-z]{1,3}|[1-9][0-9]{0,2})(\\.(0|[1-9][0-9]?|[a-z]{1,3})){0,2}",
        ),
        prop::option::of("[a-z0-9]{1,4}"),
    )
        .prop_map(|(v, major, minor, patch, pre, build)| {
            let mut text = format!("{}{major}", if v { "v" } else { "" });
            if let Some(minor) = minor {
                text.push_str(&format!(".{minor}"));
                if let Some(patch) = patch {
                    text.push_str(&format!(".{patch}"));
                }
            }
            if let Some(pre) = pre {
                text.push_str(&format!("-{pre}"));
            }
            if let Some(build) = build {
                text.push_str(&format!("+{build}"));
            }
            text
        })
}

/// Index text built from pieces of real indexes and YAML syntax.
fn index_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "apiVersion: v1\n",
        "entries:\n",
        "  web:\n",
        "  - ",
        "    ",
        "name: web\n",
        "version: 1.2.0\n",
        "version: 1\n",
        "version: [\n",
        "urls:\n",
        "- web.tgz\n",
        "null\n",
        "digest: abc\n",
        "created: 2024-01-01T00:00:00Z\n",
        "deprecated: yes\n",
        "&a ",
        "*a ",
        "{",
        "}",
        "[",
        "]",
        ": ",
        "- ",
        "\"",
        "'",
        "#",
        "\n",
        "---\n",
        "generated: 1\n",
    ]);
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
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

    #[test]
    fn chart_versions_and_constraints_of_any_text_never_panic(text in "\\PC{0,40}") {
        let _ = parse_version(&text);
        if let Ok(constraint) = Constraint::parse(&text) {
            let _ = constraint.matches(&argosy_sync_engine::charts::version::Version::new(1, 2, 3));
        }
        let _ = newest_matching(&text, ["1.0.0", "v2.0", "3.0.0-rc.1", "latest", &text]);
    }

    #[test]
    fn chart_constraints_of_constraint_pieces_never_panic(text in constraint_text(), versions in prop::collection::vec(version_text(), 0..6)) {
        let constraint = Constraint::parse(&text);
        let chosen = newest_matching(&text, versions.iter().map(String::as_str));
        if let Ok(chosen) = chosen {
            prop_assert!(versions.iter().any(|v| v == chosen));
            // A constraint's choice satisfies it, and nothing listed that satisfies it is newer.
            if let (Ok(constraint), Err(_)) = (&constraint, parse_version(&text)) {
                let chosen = parse_version(chosen).expect("a chosen constraint match is a version");
                prop_assert!(constraint.matches(&chosen));
                for v in versions.iter().filter_map(|v| parse_version(v).ok()) {
                    prop_assert!(!constraint.matches(&v) || argosy_sync_engine::charts::version::compare(&v, &chosen).is_le());
                }
            }
        }
    }

    #[test]
    fn a_chart_version_matches_itself_and_bounds_around_it(text in version_text()) {
        let version = parse_version(&text).expect("generated versions parse");
        for (constraint, matches) in [(format!("={text}"), true), (format!(">={text}"), true), (format!("<={text}"), true), (format!("<{text}"), false), (format!("!={text}"), false)] {
            let parsed = Constraint::parse(&constraint).expect("a comparison with a version parses");
            prop_assert_eq!(parsed.matches(&version), matches, "{}", constraint);
        }
        prop_assert_eq!(newest_matching(&text, ["0.0.0-a", &text]), Ok(text.as_str()));
    }

    #[test]
    fn helm_indexes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), text in index_text(), max in 0usize..512) {
        for input in [bytes.as_slice(), text.as_bytes()] {
            if let Ok(index) = Index::parse(input, max) {
                prop_assert!(input.len() <= max);
                for (name, versions) in &index.entries {
                    let _ = index.resolve(name, "*");
                    let _ = index.resolve(name, "1.2.0");
                    for v in versions {
                        let _ = v.download_url("https://charts.example/repo?t=1");
                    }
                }
            }
        }
        let any_url = ChartVersion { urls: vec![String::from_utf8_lossy(&bytes).into_owned()], ..ChartVersion::default() };
        let _ = any_url.download_url(&text);
        let _ = any_url.download_url("https://charts.example/repo");
    }
}
