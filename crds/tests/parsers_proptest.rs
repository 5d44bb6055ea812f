//! Property tests of the crate's parsers that take user input (issue #15 item 9): none
//! panics on any input, and each keeps the properties its callers rely on. Inputs are
//! arbitrary strings plus structured values near the real schemas. 256 cases each
//! (proptest's default), so `cargo test` stays fast; `scripts/fuzz.sh` runs the long loop.

use argosy_crds::application::ApplicationDestination;
use argosy_crds::glob::Glob;
use argosy_crds::project::normalize_repo_url;
use argosy_crds::{
    AppProject, Application, ApplicationSet, Cluster, GoDuration, ProjectPolicy,
    resolve_destination,
};
use k8s_openapi::api::core::v1::Secret;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A string field: a realistic value, glob/template metacharacters, or anything.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}",
        "https://[a-z]{1,8}\\.example/[a-z/]{0,12}(\\.git)?",
        "[*?\\[\\]{},!\\\\a-z/]{0,12}",
        "\\PC{0,16}",
    ]
}

/// An Application near the schema, with unknown fields at the top, in `spec` and in the
/// source, and values of the wrong type now and then.
fn application() -> impl Strategy<Value = Value> {
    (
        field(),
        field(),
        field(),
        field(),
        json_value(),
        json_value(),
        "[a-z]{1,8}",
        json_value(),
    )
        .prop_map(|(name, repo, path, namespace, extra, info, key, odd)| {
            json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": name, "namespace": "argocd"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": repo, "path": path, "x-unknown-source": extra,
                               "kustomize": {"namePrefix": odd}},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                    "info": info,
                    format!("unknownSpec{key}"): "kept",
                },
                format!("unknown{key}"): {"nested": [1, "two"]},
            })
        })
}

proptest! {
    /// Any schedule, duration and time zone: parsing and evaluating a window never panics,
    /// and a blocked verdict's opening (when found) is later than now and allows.
    #[test]
    fn sync_windows_never_panic(
        schedule in prop_oneof!["\\PC{0,30}", "([0-9*/,?-]{1,6} ){4}[0-9a-zA-Z*/,?-]{1,6}"],
        duration in prop_oneof!["\\PC{0,10}", "-?[0-9]{1,4}(s|m|h)"],
        time_zone in prop::sample::select(vec!["", "UTC", "Europe/Paris", "Nope/Nowhere", "../etc"]),
        deny in any::<bool>(),
        manual in any::<bool>(),
        secs in 0i64..4_000_000_000,
    ) {
        let _ = argosy_crds::cron::Schedule::parse(&schedule);
        let window = argosy_crds::appproject::SyncWindow {
            kind: argosy_crds::appproject::WindowKind::from(if deny { "deny" } else { "allow" }.to_owned()),
            schedule,
            duration,
            time_zone: time_zone.to_owned(),
            applications: vec!["*".into()],
            ..Default::default()
        };
        let now = jiff::Timestamp::from_second(secs).unwrap();
        let dest = ApplicationDestination::default();
        let windows = argosy_crds::sync_window::MatchedWindows::of(&[window], "app", &dest);
        if let Some(blocked) = windows.blocked(manual, None, now)
            && let Some(opens) = blocked.opens_at
        {
            prop_assert!(opens > now);
            prop_assert_eq!(windows.can_sync(manual, None, opens), Ok(true));
        }
    }

    #[test]
    fn durations_never_panic(text in "\\PC{0,40}") {
        let _ = GoDuration::parse(&text);
        let _ = GoDuration::parse_seconds_or_duration(&text);
    }

    #[test]
    fn durations_of_units_parse_or_overflow_and_print_back(
        terms in prop::collection::vec(
            ("[0-9]{1,20}", prop::option::of("[0-9]{0,12}"),
             prop::sample::select(vec!["h", "m", "s", "ms", "us", "\u{b5}s", "\u{3bc}s", "ns"])),
            1..5),
        sign in prop::sample::select(vec!["", "-", "+"]),
    ) {
        let text: String = std::iter::once(sign.to_owned())
            .chain(terms.iter().map(|(int, frac, unit)| match frac {
                Some(f) => format!("{int}.{f}{unit}"),
                None => format!("{int}{unit}"),
            }))
            .collect();
        match GoDuration::parse(&text) {
            Ok(d) => prop_assert_eq!(GoDuration::parse(&d.to_string()), Ok(d)),
            Err(e) => prop_assert!(
                matches!(e, argosy_crds::DurationError::Overflow { .. }),
                "{text:?}: {e}"
            ),
        }
    }

    #[test]
    fn every_duration_prints_as_go_and_parses_back(nanos in any::<i64>()) {
        let d = GoDuration::from_nanos(nanos);
        prop_assert_eq!(GoDuration::parse(&d.to_string()), Ok(d));
        let json = serde_json::to_value(d).expect("serializes");
        prop_assert_eq!(serde_json::from_value::<GoDuration>(json).expect("parses"), d);
    }

    #[test]
    fn duration_arithmetic_saturates(a in any::<i64>(), b in any::<i64>(), f in any::<f64>(), secs in any::<i64>()) {
        let (da, db) = (GoDuration::from_nanos(a), GoDuration::from_nanos(b));
        prop_assert_eq!(da.saturating_add(db).as_nanos(), a.saturating_add(b));
        prop_assert_eq!(da.saturating_mul(b).as_nanos(), a.saturating_mul(b));
        prop_assert_eq!(
            GoDuration::from_secs_saturating(secs).as_nanos(),
            secs.saturating_mul(1_000_000_000)
        );
        let product = da.mul_f64(f);
        if f.is_nan() || a == 0 {
            prop_assert_eq!(product.as_nanos(), 0);
        }
        if f >= 0.0 && a >= 0 {
            prop_assert!(!product.is_negative());
        }
        prop_assert!(da.to_std().as_nanos() == u128::try_from(a.max(0)).expect("non-negative"));
    }

    #[test]
    fn globs_never_panic(pattern in "\\PC{0,24}", text in "\\PC{0,24}") {
        let _ = Glob::gobwas(&pattern, Some('/')).is_match(&text);
        let _ = Glob::gobwas(&pattern, None).is_match(&text);
        let _ = Glob::filepath(&pattern).is_match(&text);
    }

    #[test]
    fn glob_metacharacters_never_panic(
        pattern in "[*?\\[\\]{},!^\\\\a/-]{0,16}", text in "[a/\\]*?-]{0,12}",
    ) {
        let _ = Glob::gobwas(&pattern, Some('/')).is_match(&text);
        let _ = Glob::filepath(&pattern).is_match(&text);
    }

    #[test]
    fn a_pattern_without_metacharacters_matches_exactly_itself(
        pattern in "[^*?\\[\\]{}\\\\]{0,24}", other in "\\PC{0,24}",
    ) {
        for glob in [Glob::gobwas(&pattern, Some('/')), Glob::gobwas(&pattern, None), Glob::filepath(&pattern)] {
            prop_assert!(glob.is_match(&pattern), "{pattern:?}");
            prop_assert_eq!(glob.is_match(&other), other == pattern);
        }
    }

    #[test]
    fn star_matches_any_string_without_a_separator(text in "[^/]{0,24}", with_slash in "\\PC{0,8}/\\PC{0,8}") {
        prop_assert!(Glob::gobwas("*", Some('/')).is_match(&text));
        prop_assert!(Glob::filepath("*").is_match(&text));
        prop_assert!(!Glob::gobwas("*", Some('/')).is_match(&with_slash));
        prop_assert!(!Glob::filepath("*").is_match(&with_slash));
        // Without a separator, and `**` with one, cross everything.
        prop_assert!(Glob::gobwas("*", None).is_match(&with_slash));
        prop_assert!(Glob::gobwas("**", Some('/')).is_match(&with_slash));
        let prefixed = format!("team-{text}");
        prop_assert!(Glob::gobwas("team-*", None).is_match(&prefixed));
    }

    #[test]
    fn repo_urls_normalize_without_panic(url in "\\PC{0,40}") {
        let _ = normalize_repo_url(&url);
    }

    #[test]
    fn source_repos_star_permits_every_url(url in "\\PC{0,40}", server in "https://[a-z0-9.:]{1,20}", ns in "\\PC{0,12}") {
        let project: AppProject = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]}
        })).expect("an AppProject");
        let cluster = Cluster { server, ..Cluster::default() };
        let policy = ProjectPolicy::new(&project, [&cluster]);
        prop_assert!(policy.check_source(&url).is_ok(), "{url:?}");
        prop_assert!(policy.check_destination(&cluster, &ns, false).is_ok());
    }

    #[test]
    fn project_policies_of_any_spec_never_panic(
        repos in prop::collection::vec(field(), 0..4),
        dests in prop::collection::vec((field(), field(), field()), 0..3),
        kinds in prop::collection::vec((field(), field(), field()), 0..3),
        namespaces in prop::collection::vec(field(), 0..3),
        probe in field(),
    ) {
        let project: Result<AppProject, _> = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "sourceRepos": repos,
                "destinations": dests.iter().map(|(s, n, ns)| json!({"server": s, "name": n, "namespace": ns})).collect::<Vec<_>>(),
                "clusterResourceWhitelist": kinds.iter().map(|(g, k, n)| json!({"group": g, "kind": k, "name": n})).collect::<Vec<_>>(),
                "namespaceResourceBlacklist": kinds.iter().map(|(g, k, _)| json!({"group": g, "kind": k})).collect::<Vec<_>>(),
                "sourceNamespaces": namespaces,
            }
        }));
        let project = project.expect("strings in the right places always parse");
        let cluster = Cluster { name: probe.clone(), server: probe.clone(), project: "p".to_owned(), ..Cluster::default() };
        let policy = ProjectPolicy::new(&project, [&cluster]);
        let _ = policy.check_source(&probe);
        let _ = policy.check_app_namespace(&probe, "argocd");
        let _ = policy.check_destination(&cluster, &probe, true);
        let _ = policy.check_resource(&probe, &probe, &probe, Some(&probe), &cluster);
        let _ = policy.check_resource(&probe, &probe, &probe, None, &cluster);
    }

    #[test]
    fn cluster_secret_config_never_panics(config in "\\PC{0,64}", bytes in prop::collection::vec(any::<u8>(), 0..64), structured in json_value()) {
        for text in [config, structured.to_string(), json!({"tlsClientConfig": structured, "bearerToken": "t"}).to_string()] {
            let secret: Secret = serde_json::from_value(json!({
                "metadata": {"name": "c", "namespace": "argocd"},
                "stringData": {"server": "https://x", "config": text, "namespaces": text},
            })).expect("a Secret");
            let _ = Cluster::from_secret(&secret);
        }
        let secret = Secret {
            data: Some([("server".to_owned(), k8s_openapi::ByteString(bytes.clone())),
                        ("config".to_owned(), k8s_openapi::ByteString(bytes))].into()),
            ..Secret::default()
        };
        let _ = Cluster::from_secret(&secret);
    }

    #[test]
    fn destinations_resolve_without_panic_and_ignore_trailing_slashes(
        name in field(), server in field(), slashes in "/{0,3}",
    ) {
        let clusters = vec![
            Cluster { name: "prod".into(), server: "https://10.0.0.1".into(), secret: Some("argocd/prod".into()), ..Cluster::default() },
            Cluster { name: name.clone(), server: server.clone(), secret: Some("argocd/x".into()), ..Cluster::default() },
        ];
        let _ = resolve_destination(&ApplicationDestination { name: name.clone(), server: server.clone(), namespace: String::new() }, &clusters);
        let by_server = ApplicationDestination { server: format!("https://10.0.0.1{slashes}"), ..Default::default() };
        if server.trim_end_matches('/') != "https://10.0.0.1" {
            let found = resolve_destination(&by_server, &clusters).expect("prod resolves");
            prop_assert_eq!(found.name.as_str(), "prod");
        }
    }

    #[test]
    fn application_yaml_of_any_text_never_panics(text in "\\PC{0,200}") {
        let _ = serde_yaml_ng::from_str::<Application>(&text);
        let _ = serde_yaml_ng::from_str::<ApplicationSet>(&text);
        let _ = serde_yaml_ng::from_str::<AppProject>(&text);
    }

    #[test]
    fn application_yaml_round_trips_and_keeps_unknown_fields(doc in application()) {
        let yaml = serde_yaml_ng::to_string(&doc).expect("YAML");
        let Ok(app) = serde_yaml_ng::from_str::<Application>(&yaml) else {
            // A wrong-typed known field is an error, never a panic.
            return Ok(());
        };
        let written = serde_yaml_ng::to_string(&app).expect("YAML");
        let again: Application = serde_yaml_ng::from_str(&written).expect("Argosy's own YAML parses");
        prop_assert_eq!(&again, &app);
        let value = serde_json::to_value(&again).expect("JSON");
        for (pointer, original) in [
            ("/spec/source/x-unknown-source", doc.pointer("/spec/source/x-unknown-source")),
            ("/spec/info", doc.pointer("/spec/info")),
        ] {
            let original = original.expect("generated");
            // YAML has no distinct float for integral values: compare as JSON numbers do.
            prop_assert!(same(value.pointer(pointer).unwrap_or(&Value::Null), original), "{pointer}");
        }
        // Unknown fields of `spec` are kept (the top level has none to keep: the API server
        // prunes fields outside apiVersion/kind/metadata/spec/status/operation).
        let spec = doc["spec"].as_object().expect("spec");
        for key in spec.keys().filter(|k| k.starts_with("unknownSpec")) {
            prop_assert_eq!(value["spec"].get(key.as_str()), spec.get(key.as_str()));
        }
    }

    #[test]
    fn applicationset_of_near_schema_values_never_panics(
        generators in prop::collection::vec(json_value(), 0..3),
        template in json_value(),
        go in any::<bool>(),
        options in prop::collection::vec("\\PC{0,16}", 0..3),
    ) {
        let doc = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
            "metadata": {"name": "a"},
            "spec": {"goTemplate": go, "goTemplateOptions": options,
                     "generators": generators.iter().map(|g| json!({"list": {"elements": [g]}})).chain(generators.iter().cloned()).collect::<Vec<_>>(),
                     "template": template},
        });
        let yaml = serde_yaml_ng::to_string(&doc).expect("YAML");
        if let Ok(set) = serde_yaml_ng::from_str::<ApplicationSet>(&yaml) {
            let _ = serde_yaml_ng::to_string(&set).expect("serializes");
        }
    }
}

/// Equal as JSON, numbers compared by value (YAML may turn `1.0` into `1`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
