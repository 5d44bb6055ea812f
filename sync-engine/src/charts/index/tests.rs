use std::fmt::Write as _;

use super::*;

/// Shaped as `helm repo index` writes it (newest first), with fields Argosy does not read.
const INDEX: &str = r#"apiVersion: v1
entries:
  web:
  - annotations:
      category: Web
    apiVersion: v2
    appVersion: 1.16.0
    created: "2024-03-01T10:00:00.000000000Z"
    dependencies:
    - name: redis
      repository: https://charts.example/redis
      version: ^18
    description: A web app
    digest: 5d0b3c6e2a
    maintainers:
    - name: ops
    name: web
    type: application
    urls:
    - web-2.0.0-rc.1.tgz
    version: 2.0.0-rc.1
  - apiVersion: v2
    appVersion: "1.15"
    created: "2024-02-01T10:00:00.000000000Z"
    digest: 9a8b7c
    name: web
    urls:
    - charts/web-1.2.0.tgz
    - https://mirror.example/web-1.2.0.tgz
    version: 1.2.0
  - apiVersion: v2
    appVersion: 1.14
    name: web
    urls:
    - https://cdn.example/web-1.1.0.tgz
    version: 1.1.0
    deprecated: true
  - apiVersion: v2
    name: web
    urls:
    - /abs/web-1.0.0.tgz
    version: 1.0.0
  lib:
  - apiVersion: v2
    name: lib
    type: library
    urls: []
    version: 0.1.0
generated: "2024-03-01T10:00:01.000000000Z"
serverInfo:
  contextPath: /charts
"#;

fn index() -> Index {
    Index::parse(INDEX.as_bytes(), INDEX.len()).unwrap()
}

#[test]
fn an_index_as_helm_writes_it_parses_in_order_with_unknown_fields_ignored() {
    let index = index();
    assert_eq!(index.api_version, "v1");
    assert_eq!(
        index.generated.as_deref(),
        Some("2024-03-01T10:00:01.000000000Z")
    );
    assert_eq!(index.entries.keys().collect::<Vec<_>>(), ["lib", "web"]);
    let web = &index.entries["web"];
    let versions: Vec<&str> = web.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["2.0.0-rc.1", "1.2.0", "1.1.0", "1.0.0"]);
    assert_eq!(
        web[0],
        ChartVersion {
            name: "web".into(),
            version: "2.0.0-rc.1".into(),
            urls: vec!["web-2.0.0-rc.1.tgz".into()],
            digest: Some("5d0b3c6e2a".into()),
            created: Some("2024-03-01T10:00:00.000000000Z".into()),
            api_version: Some("v2".into()),
            app_version: Some("1.16.0".into()),
            description: Some("A web app".into()),
            chart_type: Some("application".into()),
            kube_version: None,
            deprecated: false,
            removed: false,
        }
    );
    // Unquoted numbers are text, as Helm reads them.
    assert_eq!(web[1].app_version.as_deref(), Some("1.15"));
    assert_eq!(web[2].app_version.as_deref(), Some("1.14"));
    assert!(web[2].deprecated);
    assert_eq!(
        index.entries["lib"][0].chart_type.as_deref(),
        Some("library")
    );
}

#[test]
fn json_indexes_and_null_entries_are_read_as_helm_reads_them() {
    let json = br#"{"apiVersion":"v1","entries":{"a":[{"name":"a","version":"1.0.0","urls":["a-1.0.0.tgz"]},null],"b":null},"generated":"2024-01-01T00:00:00Z"}"#;
    let index = Index::parse(json, 1024).unwrap();
    assert_eq!(index.entries["a"].len(), 1);
    assert!(index.entries["b"].is_empty());
    let index = Index::parse(b"apiVersion: v1\nentries:\n", 1024).unwrap();
    assert!(index.entries.is_empty());
    let index = Index::parse(
        b"apiVersion: v1\nentries:\n  x:\n  - null\n  - version: 1\n    urls: [null, u.tgz]\n",
        1024,
    )
    .unwrap();
    assert_eq!(index.entries["x"][0].version, "1");
    assert_eq!(index.entries["x"][0].urls, ["u.tgz"]);
}

#[test]
fn a_bad_index_is_refused_at_the_step_that_fails() {
    let cases: &[(&[u8], usize, &str)] = &[
        (
            b"apiVersion: v1\n",
            10,
            "index.yaml is 15 bytes, more than the 10 allowed",
        ),
        (b"", 10, "index.yaml is empty"),
        (b"# only a comment\n", 100, "index.yaml has no apiVersion"),
        (b"entries: {}\n", 100, "index.yaml has no apiVersion"),
        (
            b"apiVersion: v1\nentries: [1, 2]\n",
            100,
            "index.yaml does not parse: entries: invalid type",
        ),
        (
            b"apiVersion: v1\nentries:\n  web: {version: 1}\n",
            100,
            "index.yaml does not parse: entries.web: invalid type",
        ),
        (b"apiVersion: [v1\n", 100, "index.yaml does not parse"),
        (b"\xff\xfe", 100, "index.yaml does not parse"),
        (b"a: 1\n---\nb: 2\n", 100, "index.yaml does not parse"),
    ];
    for (bytes, max, want) in cases {
        let got = Index::parse(bytes, *max).unwrap_err().to_string();
        assert!(
            got.starts_with(want),
            "{:?}: {got}",
            String::from_utf8_lossy(bytes)
        );
    }
    // At the limit is allowed.
    assert!(Index::parse(b"apiVersion: v1\n", 15).is_ok());
    let deep = format!("apiVersion: v1\nentries: {}", "[".repeat(10_000));
    let got = Index::parse(deep.as_bytes(), deep.len()).unwrap_err();
    assert!(got.to_string().contains("deeper than"), "{got}");
}

#[test]
fn an_alias_bomb_is_refused_not_expanded() {
    let mut bomb = String::from("apiVersion: v1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        let list = vec![format!("*a{prev}"); 10].join(", ");
        writeln!(bomb, "a{i}: &a{i} [{list}]").unwrap();
    }
    bomb.push_str("entries:\n  web:\n  - version: 1.0.0\n    urls: *a11\n");
    let got = Index::parse(bomb.as_bytes(), bomb.len()).unwrap_err();
    assert!(matches!(got, IndexError::Parse { .. }), "{got}");
}

#[test]
fn resolve_picks_what_argo_cd_deploys() {
    let index = index();
    let cases = [
        ("1.2.0", "1.2.0"),
        ("1.1", "1.1.0"),
        ("*", "1.2.0"),
        (">=1.0.0 <2.0.0", "1.2.0"),
        ("~1.1", "1.1.0"),
        ("^1.0.0-0", "1.2.0"),
        (">=1.0.0-0", "2.0.0-rc.1"),
        ("2.0.0-rc.1", "2.0.0-rc.1"),
    ];
    for (wanted, want) in cases {
        assert_eq!(
            index.resolve("web", wanted).unwrap().version,
            want,
            "{wanted}"
        );
    }
}

#[test]
fn resolve_errors_name_the_chart_and_list_the_newest_versions() {
    let index = index();
    assert_eq!(
        index.resolve("api", "1.0.0").unwrap_err(),
        IndexError::ChartNotFound {
            chart: "api".into()
        }
    );
    let err = index.resolve("web", "^3").unwrap_err();
    assert_eq!(
        err,
        IndexError::NoMatchingVersion {
            chart: "web".into(),
            wanted: "^3".into(),
            newest: vec![
                "2.0.0-rc.1".into(),
                "1.2.0".into(),
                "1.1.0".into(),
                "1.0.0".into()
            ],
            count: 4,
        }
    );
    assert_eq!(
        err.to_string(),
        "chart \"web\" has no version matching \"^3\" (newest of 4: 2.0.0-rc.1, 1.2.0, 1.1.0, 1.0.0)"
    );
    let many = Index {
        api_version: "v1".into(),
        generated: None,
        entries: BTreeMap::from([(
            "c".to_owned(),
            [
                "0.1.0", "0.3.0", "nightly", "0.10.0", "0.2.0", "0.9.0", "0.4.0",
            ]
            .iter()
            .map(|v| ChartVersion {
                version: (*v).to_owned(),
                ..ChartVersion::default()
            })
            .collect(),
        )]),
    };
    assert_eq!(
        many.resolve("c", ">=1").unwrap_err().to_string(),
        "chart \"c\" has no version matching \">=1\" (newest of 7: 0.10.0, 0.9.0, 0.4.0, 0.3.0, 0.2.0)"
    );
    assert_eq!(many.resolve("c", "nightly").unwrap().version, "nightly");
    match index.resolve("web", "") {
        Err(IndexError::Version { chart, source }) => {
            assert_eq!((chart.as_str(), source), ("web", VersionError::Empty));
        }
        other => panic!("{other:?}"),
    }
    let err = index.resolve("web", "stable").unwrap_err().to_string();
    assert!(
        err.starts_with("chart \"web\": \"stable\" is neither a version nor a constraint"),
        "{err}"
    );
    let err = index.resolve("lib", "^1").unwrap_err().to_string();
    assert_eq!(
        err,
        "chart \"lib\" has no version matching \"^1\" (newest of 1: 0.1.0)"
    );
    let empty = Index {
        api_version: "v1".into(),
        generated: None,
        entries: BTreeMap::from([("e".to_owned(), Vec::new())]),
    };
    let err = empty.resolve("e", "*").unwrap_err().to_string();
    assert_eq!(
        err,
        "chart \"e\" has no version matching \"*\" (it lists no versions)"
    );
}

#[test]
fn download_urls_resolve_as_helm_resolves_them() {
    // Helm's own cases (pkg/repo/v1/chartrepo_test.go, TestResolveReferenceURL).
    let helm = [
        (
            "http://localhost:8123/",
            "/nginx-0.2.0.tgz",
            "http://localhost:8123/nginx-0.2.0.tgz",
        ),
        (
            "http://localhost:8123/charts/",
            "nginx-0.2.0.tgz",
            "http://localhost:8123/charts/nginx-0.2.0.tgz",
        ),
        (
            "http://localhost:8123/charts/",
            "/nginx-0.2.0.tgz",
            "http://localhost:8123/nginx-0.2.0.tgz",
        ),
        (
            "http://localhost:8123/charts-with-no-trailing-slash",
            "nginx-0.2.0.tgz",
            "http://localhost:8123/charts-with-no-trailing-slash/nginx-0.2.0.tgz",
        ),
        (
            "http://localhost:8123",
            "https://charts.helm.sh/stable/nginx-0.2.0.tgz",
            "https://charts.helm.sh/stable/nginx-0.2.0.tgz",
        ),
        (
            "http://localhost:8123/charts%2fwith%2fescaped%2fslash",
            "nginx-0.2.0.tgz",
            "http://localhost:8123/charts%2fwith%2fescaped%2fslash/nginx-0.2.0.tgz",
        ),
        (
            "http://localhost:8123/charts%2fwith%2fescaped%2fslash",
            "/nginx-0.2.0.tgz",
            "http://localhost:8123/nginx-0.2.0.tgz",
        ),
        (
            "http://localhost:8123/charts?with=queryparameter",
            "nginx-0.2.0.tgz",
            "http://localhost:8123/charts/nginx-0.2.0.tgz?with=queryparameter",
        ),
        (
            "http://localhost:8123/charts?with=queryparameter",
            "/nginx-0.2.0.tgz",
            "http://localhost:8123/nginx-0.2.0.tgz?with=queryparameter",
        ),
    ];
    // And more: the entry's own query gives way to the repository's, `..` is resolved,
    // any scheme is absolute, credentials stay.
    let more = [
        (
            "https://h/charts",
            "web-1.0.0.tgz?x=1",
            "https://h/charts/web-1.0.0.tgz",
        ),
        (
            "https://h/charts?token=t",
            "web-1.0.0.tgz?x=1",
            "https://h/charts/web-1.0.0.tgz?token=t",
        ),
        ("https://h/a/b", "../web.tgz", "https://h/a/web.tgz"),
        ("https://h/a/b//", "web.tgz", "https://h/a/b//web.tgz"),
        (
            "https://h/charts",
            "//other.example/web.tgz",
            "https://other.example/web.tgz",
        ),
        (
            "https://h/charts",
            "oci://registry.example/web:1.0.0",
            "oci://registry.example/web:1.0.0",
        ),
        (
            "https://h/charts",
            "s3+https://bucket/web.tgz",
            "s3+https://bucket/web.tgz",
        ),
        (
            "https://u:p@h/charts",
            "web 1.tgz",
            "https://u:p@h/charts/web%201.tgz",
        ),
    ];
    for (base, reference, want) in helm.iter().chain(&more) {
        let version = ChartVersion {
            urls: vec![(*reference).to_owned(), "ignored.tgz".to_owned()],
            ..ChartVersion::default()
        };
        assert_eq!(
            version.download_url(base).unwrap(),
            *want,
            "{base} + {reference}"
        );
    }
    assert_eq!(
        index_url("https://h/charts?t=1").unwrap(),
        "https://h/charts/index.yaml?t=1"
    );
    assert_eq!(index_url("https://h/").unwrap(), "https://h/index.yaml");
}

#[test]
fn download_url_errors_name_the_chart_and_hide_credentials() {
    let index = index();
    let lib = index.resolve("lib", "0.1.0").unwrap();
    assert_eq!(
        lib.download_url("https://h/").unwrap_err(),
        IndexError::NoUrl {
            chart: "lib".into(),
            version: "0.1.0".into()
        }
    );
    let web = index.resolve("web", "1.2.0").unwrap();
    assert_eq!(
        web.download_url("https://h/repo").unwrap(),
        "https://h/repo/charts/web-1.2.0.tgz"
    );
    for base in [
        "not a url",
        "https://user:s3cret@[::1",
        "mailto:ops@example",
    ] {
        let err = web.download_url(base).unwrap_err();
        assert!(matches!(err, IndexError::Url { .. }), "{base}: {err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
