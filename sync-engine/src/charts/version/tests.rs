use super::*;

#[test]
fn versions_are_texts_that_parse_as_versions() {
    for text in [
        "1.2.3",
        "v1.2",
        "01.02.03",
        "1.0.0-rc.1+build.5",
        "2024.03-LTS-RC19",
    ] {
        assert!(is_version(text), "{text}");
    }
    for text in [
        "",
        "latest",
        "1.x",
        "^1",
        "1.0.0-01",
        "18446744073709551616.0.0",
    ] {
        assert!(!is_version(text), "{text}");
    }
}

/// Argo CD's own cases for `MaxVersion` (`util/versions/tags_test.go`) and Helm's exact-text
/// rule, on the same tags.
#[test]
fn newest_matching_chooses_what_argo_cd_deploys() {
    let tags = [
        "0.7.1",
        "0.5.4",
        "0.5.3",
        "0.7.2",
        "0.5.2",
        "0.5.1",
        "0.5.0",
        "2024.03-LTS-RC19",
    ];
    let cases = [
        ("0.5.3", "0.5.3"),
        ("2024.03-LTS-RC19", "2024.03-LTS-RC19"),
        ("> 0.5.3", "0.7.2"),
        ("> 0.0.0", "0.7.2"),
        (">0.5.0,<0.7.0", "0.5.4"),
        ("0.7.*", "0.7.2"),
        ("*", "0.7.2"),
        ("^0.5", "0.5.4"),
        ("~0.5.1", "0.5.4"),
        ("0.5.1 - 0.5.3", "0.5.3"),
        // A version that is not listed is a constraint for Helm: `0.5` is the newest 0.5.x.
        ("0.5", "0.5.4"),
        ("v0.7", "0.7.2"),
        // The prerelease is taken only when asked for.
        (">=0.0.0-0", "2024.03-LTS-RC19"),
        (">=2024.0.0-0", "2024.03-LTS-RC19"),
    ];
    for (wanted, want) in cases {
        assert_eq!(
            newest_matching(wanted, tags.iter().copied()),
            Ok(want),
            "{wanted:?}"
        );
    }
    assert_eq!(
        newest_matching(">=2024.0.0", tags.iter().copied()),
        Err(VersionError::NoMatch {
            wanted: ">=2024.0.0".into(),
            available: 8
        })
    );
}

#[test]
fn newest_matching_handles_prefixes_builds_prereleases_and_names() {
    let tags = [
        "v1.0.0",
        "1.1.0+build.1",
        "1.1.0",
        "1.2.0-rc.1",
        "2.0.0-alpha",
        "latest",
        "not a version",
    ];
    let cases = [
        ("*", "1.1.0+build.1"),
        ("^1", "1.1.0+build.1"),
        ("1.1.0", "1.1.0"),
        ("1.1.0+build.1", "1.1.0+build.1"),
        ("1.0.0", "v1.0.0"),
        ("v1.0.0", "v1.0.0"),
        ("=1.0", "v1.0.0"),
        // 2.0.0-alpha is below 2.0.0: a prerelease range reaches into the next major.
        (">=1.2.0-0 <2.0.0", "2.0.0-alpha"),
        (">=1.2.0-0 <2.0.0-0", "1.2.0-rc.1"),
        ("^1.2.0-0", "1.2.0-rc.1"),
        ("*-0", "2.0.0-alpha"),
        ("2.0.0-alpha", "2.0.0-alpha"),
        ("latest", "latest"),
        ("not a version", "not a version"),
    ];
    for (wanted, want) in cases {
        assert_eq!(
            newest_matching(wanted, tags.iter().copied()),
            Ok(want),
            "{wanted:?}"
        );
    }
    // The first of equal versions wins, and the result is the listed text.
    let equal = ["1.0.0+a", "1.0.0", "v1.0.0+b"];
    assert_eq!(newest_matching(">=1", equal), Ok("1.0.0+a"));
    let equal = ["v1.0.0+b", "1.0.0", "1.0.0+a"];
    assert_eq!(newest_matching(">=1", equal), Ok("v1.0.0+b"));
    let same = ["1.0.0", "1.0.0"];
    assert_eq!(select("1.0.0", &same), Ok(0));
}

#[test]
fn newest_matching_refuses_what_argo_cd_refuses() {
    assert_eq!(newest_matching("", ["1.0.0"]), Err(VersionError::Empty));
    match newest_matching("stable", ["1.0.0", "latest"]) {
        Err(VersionError::UnknownRevision {
            wanted,
            reason,
            available,
        }) => {
            assert_eq!((wanted.as_str(), available), ("stable", 2));
            assert!(reason.contains("no list of comparisons"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A malformed version fails a constraint's resolution, as in Argo CD's MaxVersion...
    let with_malformed = ["1.0.0", "1.1.0-01", "0.9.0"];
    assert_eq!(
        newest_matching("^1", with_malformed),
        Err(VersionError::MalformedAvailable {
            wanted: "^1".into(),
            version: "1.1.0-01".into(),
            reason: Malformed::LeadingZero
        })
    );
    // ... but not an exact version, which goes to Helm, and Helm skips it.
    assert_eq!(newest_matching("1.0", with_malformed), Ok("1.0.0"));
    assert_eq!(
        newest_matching("2.0.0", ["1.0.0"]),
        Err(VersionError::NoMatch {
            wanted: "2.0.0".into(),
            available: 1
        })
    );
    assert_eq!(
        newest_matching("^1", std::iter::empty()),
        Err(VersionError::NoMatch {
            wanted: "^1".into(),
            available: 0
        })
    );
}

#[test]
fn oci_tags_hold_build_metadata_with_an_underscore() {
    assert_eq!(oci_tag("1.0.0+build.5"), "1.0.0_build.5");
    assert_eq!(oci_tag_version("1.0.0_build.5"), "1.0.0+build.5");
    let tags: Vec<String> = ["1.0.0", "1.0.1_b1", "latest"]
        .iter()
        .map(|t| oci_tag_version(t))
        .collect();
    assert_eq!(
        newest_matching("~1.0", tags.iter().map(String::as_str)),
        Ok("1.0.1+b1")
    );
}

#[test]
fn long_inputs_are_quoted_short() {
    let long = "9".repeat(MAX_CONSTRAINT_BYTES + 1);
    let err = newest_matching(&long, ["1.0.0"]).unwrap_err().to_string();
    assert!(err.len() < 400, "{err}");
    // A version too long to be a constraint.
    let version = format!("1.0.0-{}", "a".repeat(MAX_CONSTRAINT_BYTES));
    match newest_matching(&version, ["1.0.0"]) {
        Err(VersionError::Constraint(e)) => assert!(e.reason.contains("more than the 1024")),
        other => panic!("{other:?}"),
    }
}
