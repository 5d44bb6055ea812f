use super::*;

fn v(text: &str) -> Version {
    match parse_version(text) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn c(text: &str) -> Constraint {
    match Constraint::parse(text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// Major, minor, patch, prerelease, build.
type Parts = (u64, u64, u64, &'static str, &'static str);

#[test]
fn versions_read_as_masterminds_new_version() {
    let cases: &[(&str, Parts)] = &[
        ("1.2.3", (1, 2, 3, "", "")),
        ("v1.2.3", (1, 2, 3, "", "")),
        ("1.2", (1, 2, 0, "", "")),
        ("v2", (2, 0, 0, "", "")),
        ("01.02.03", (1, 2, 3, "", "")),
        ("1.0.0-rc.1", (1, 0, 0, "rc.1", "")),
        ("1.0.0-rc.1+build.5", (1, 0, 0, "rc.1", "build.5")),
        ("1.0.0+001", (1, 0, 0, "", "001")),
        ("1.2-3.4", (1, 2, 0, "3.4", "")),
        ("1-x-y", (1, 0, 0, "x-y", "")),
        ("2024.03-LTS-RC19", (2024, 3, 0, "LTS-RC19", "")),
        ("20260309-192056-549", (20_260_309, 0, 0, "192056-549", "")),
        ("18446744073709551615.0.0", (u64::MAX, 0, 0, "", "")),
    ];
    for (text, (major, minor, patch, pre, build)) in cases {
        let got = v(text);
        assert_eq!(
            (
                got.major,
                got.minor,
                got.patch,
                got.pre.as_str(),
                got.build.as_str()
            ),
            (*major, *minor, *patch, *pre, *build),
            "{text}"
        );
    }
}

#[test]
fn malformed_versions_are_refused_with_the_reason() {
    let cases = [
        ("", "expected [v]MAJOR"),
        ("latest", "expected [v]MAJOR"),
        ("V1.2.3", "expected [v]MAJOR"),
        ("1.2.3.4", "expected [v]MAJOR"),
        ("1.2.", "expected [v]MAJOR"),
        ("1.2.3-", "expected [v]MAJOR"),
        ("1.2.3-a..b", "expected [v]MAJOR"),
        ("1.2.3+", "expected [v]MAJOR"),
        ("1.2.3_build", "expected [v]MAJOR"),
        (" 1.2.3", "expected [v]MAJOR"),
        ("1.x", "expected [v]MAJOR"),
        ("1.0.0-01", "starts with 0"),
        ("1.0.0-rc.01", "starts with 0"),
        ("18446744073709551616.0.0", "larger than"),
    ];
    for (text, reason) in cases {
        match parse_version(text) {
            Err(InvalidVersion { input, reason: got }) => {
                assert_eq!(input, text);
                assert!(got.to_string().contains(reason), "{text}: {got}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn precedence_ignores_build_and_orders_prereleases() {
    let ascending = [
        "0.0.0-0",
        "0.0.0-alpha",
        "0.0.0",
        "1.0.0-0",
        "1.0.0-2",
        "1.0.0-10",
        // Numbers are below text; text compares by bytes (upper case first).
        "1.0.0-BETA",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
        "10.0.0",
    ];
    for pair in ascending.windows(2) {
        assert_eq!(
            compare(&v(pair[0]), &v(pair[1])),
            Ordering::Less,
            "{pair:?}"
        );
        assert_eq!(
            compare(&v(pair[1]), &v(pair[0])),
            Ordering::Greater,
            "{pair:?}"
        );
    }
    assert_eq!(compare(&v("1.0.0+a"), &v("1.0.0+b")), Ordering::Equal);
    assert_eq!(compare(&v("v1.0"), &v("1.0.0")), Ordering::Equal);
    // A numeric identifier over 64 bits compares as text, so above any number.
    assert_eq!(
        compare(&v("1.0.0-99999999999999999999"), &v("1.0.0-5")),
        Ordering::Greater
    );
    assert_eq!(
        compare(&v("1.0.0-99999999999999999999"), &v("1.0.0-a")),
        Ordering::Less
    );
}

/// Masterminds' documented examples (README), the cases of its own test tables
/// (`TestConstraintCheck`, `TestConstraintsCheck`, v3.4.0) and of Sprig's `semverCompare`,
/// plus the quirks this module keeps; `tests/tests/helm_repo.rs` checks a table like this
/// against the real `helm`.
const CONSTRAINT_CASES: &[(&str, &str, bool)] = &[
    // Equality, with and without operator; a short version is a range.
    ("=2.0.0", "1.2.3", false),
    ("=2.0.0", "2.0.0", true),
    ("2.0.0", "2.0.0+build", true),
    ("=2.0", "2.0.1", true),
    ("= 2.0", "1.2.3", false),
    ("4.1", "4.1.0", true),
    ("2", "2.1.1", true),
    ("2", "3.4.5", false),
    ("2.1", "2.2.1", false),
    ("v1.2", "1.2.7", true),
    ("=1.2.3", "1.2.3", true),
    ("v1.2.3", "1.2.3", true),
    // Not equal.
    ("!=4.1.0", "4.1.0", false),
    ("!=4.1.0", "4.1.1", true),
    ("!=4.1", "4.1.0", false),
    ("!=4.1", "4.1.1", false),
    ("!=4.1", "5.1.0", true),
    ("!=4.1-alpha", "4.1.0", true),
    ("!=4.1-alpha", "4.1.0-alpha", false),
    ("!=4.x", "4.1.0", false),
    ("!=4.x", "5.1.0", true),
    ("!=4.1.x", "4.2.0", true),
    ("!=4.2.x", "4.2.3", false),
    ("!=4.1", "5.1.0-alpha.1", false),
    ("!=1.2.3", "1.2.4", true),
    // A prerelease matches no group that names none, `!=` included.
    ("!=1.2.3", "1.2.4-beta", false),
    // Greater and less, with short versions.
    (">1.1", "4.1.0", true),
    (">1.1", "1.1.0", false),
    (">1.2.3", "1.2.3", false),
    (">1.x", "2.0.0", true),
    (">11", "11.1.0", false),
    (">11.1", "11.1.1", false),
    (">11.1", "11.2.1", true),
    (">0", "1.0.0", true),
    (">0", "0.0.0", false),
    (">0.0.0-0", "0.0.0-alpha", true),
    (">1.2.3-alpha.1", "1.2.3-alpha.2", true),
    (">1.2.3-alpha.1", "1.3.3-alpha.2", true),
    ("<11", "0.1.0", true),
    ("<11", "11.1.0", false),
    ("<2.0.0", "1.9.9", true),
    ("<1.1", "1.1.0", false),
    ("<1.x", "0.1.1", true),
    ("<1.x", "1.1.1", false),
    ("<1.1.x", "1.0.500", true),
    ("<0-z", "0.0.0-alpha", true),
    (">=11", "11.1.2", true),
    (">=1.2.3", "1.2.3", true),
    (">=1.0.0", "1.2.3-rc1", false),
    (">=1.2.3-alpha", "1.2.3-beta", true),
    (">=11.1", "11.0.2", false),
    ("=> 1.2", "1.2.0", true),
    (">=1.1", "4.1.0-beta", false),
    (">=0-0", "0.0.1-alpha", true),
    (">=0.0.0-0", "3.4.5-beta.1", true),
    ("<=11", "11.2.3", true),
    ("<=11", "12.2.3", false),
    ("<=1.1", "1.1.1", true),
    ("<=1.1", "1.2.3", false),
    ("<=1.2", "1.2.9", true),
    ("=< 1.2", "1.2.9", true),
    ("<=1.1-a", "0.1.0-alpha", true),
    ("<=1.1", "0.1.0-alpha", false),
    ("<=2.x", "3.0.0", false),
    ("<=1.1.x", "1.2.500", false),
    ("<=4.5", "4.6.3", false),
    // Wildcards.
    ("*", "4.5.6", true),
    ("*", "1.2.3-alpha.1", false),
    ("*-0", "1.2.3-alpha.1", true),
    ("x", "0.0.1", true),
    ("2.*", "2.1.1", true),
    ("2.*", "3.4.5", false),
    ("2.1.*", "2.2.1", false),
    ("1.2.x", "1.2.9", true),
    ("1.2.X", "1.3.0", false),
    ("1.2.x", "1.3.0", false),
    ("1.x", "1.4.0", true),
    (">= 1.2.x", "9.0.0", true),
    ("<= 2.x", "2.9.9", true),
    ("<= 2.x", "3.0.0", false),
    ("0.x.x", "1.2.3", false),
    ("0.0.x", "1.2.3", false),
    // Tilde.
    ("~1.2.3", "1.2.4", true),
    ("~1.2.3", "1.3.4", false),
    ("~1.2.3", "1.2.2", false),
    ("~1.2.3", "1.2.9", true),
    ("~1.2.3", "1.3.0", false),
    ("~1.2", "1.2.4", true),
    ("~1.2", "1.3.4", false),
    ("~1", "1.2.4", true),
    ("~1", "2.3.4", false),
    ("~>1.2", "1.2.9", true),
    ("~1.x", "1.3.5", true),
    ("~1.2.x", "1.3.0", false),
    ("~0.2.3", "0.2.5", true),
    ("~0.2.3", "0.3.5", false),
    ("~0.0.0", "1.2.3", true),
    ("~*", "2.1.1", true),
    ("~1.2.3-beta.2", "1.2.3-beta.4", true),
    ("~1.2.3-beta.2", "1.2.4-beta.2", true),
    ("~1.2.3-beta.2", "1.3.4-beta.2", false),
    ("~1.1", "1.1.1-alpha", false),
    ("~1.1-alpha", "1.1.1-beta", true),
    ("~1.1.1-beta", "1.1.1-alpha", false),
    ("~1.1.1-beta", "1.1.1", true),
    // Caret.
    ("^1.2.3", "1.8.9", true),
    ("^1.2.3", "2.8.9", false),
    ("^1.2.3", "1.2.1", false),
    ("^1.2.3", "1.9.0", true),
    ("^1.2.3", "2.0.0", false),
    ("^1.2.0", "1.2.1-alpha.1", false),
    ("^1.2.0-alpha.0", "1.2.1-alpha.1", true),
    ("^1.2.0-alpha.2", "1.2.0-alpha.1", false),
    ("^1.2", "1.8.9", true),
    ("^1.2.x", "1.9.0", true),
    ("^1", "2.8.9", false),
    ("^1.x", "1.1.1-beta1", false),
    ("^0.2.3", "0.2.5", true),
    ("^0.2.3", "0.5.6", false),
    ("^0.2.3", "0.2.9", true),
    ("^0.2.3", "0.3.0", false),
    ("^0.2", "0.2.5", true),
    ("^0.0.3", "0.0.3", true),
    ("^0.0.3", "0.0.4", false),
    ("^0.0", "0.0.3", true),
    ("^0.0", "0.1.4", false),
    ("^0", "0.2.3", true),
    ("^0", "1.1.4", false),
    ("^0.0.0", "1.2.3", false),
    ("^0.2.3-beta.2", "0.2.4-beta.2", true),
    ("^0.2.3-beta.2", "0.3.4-beta.2", false),
    // AND by spaces or commas, OR by ||.
    (">1.1, <2", "1.2.1", true),
    (">1.1, <2", "1.1.1", false),
    (">1.1 <2", "1.2.1", true),
    (">1.1    <3", "4.3.2", false),
    (">   1.1, <2", "1.2.1", true),
    (">= 1.2, < 2", "1.5.0", true),
    (">= 1.2, < 2", "2.1.0", false),
    ("<1.0 || >=3.0", "3.1.0", true),
    ("<1.0 || >=3.0", "2.0.0", false),
    (">= 1.1 <2 != 1.2.3", "1.2.3", false),
    (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
    (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
    (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true),
    (">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true),
    (">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", false),
    (
        ">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3",
        "1.0.1-beta",
        false,
    ),
    (">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", true),
    (">=1.0.0 <2.0.0", "2.0.0-rc.1", false),
    (">=1.0.0-0 <2.0.0-0", "2.0.0-rc.1", false),
    // A prerelease of 2.0.0 is below 2.0.0.
    (">=1.0.0-0 <2.0.0", "2.0.0-rc.1", true),
    // One comparison naming a prerelease opens the whole group to prereleases.
    (">=1.0.0-0 <2.0.0", "1.5.0-rc.1", true),
    // Hyphen ranges.
    ("1.1 - 2", "1.1.1", true),
    ("1.5.0 - 4.5", "3.7.0", true),
    ("1.2 - 1.4.5", "1.4.5", true),
    ("1.2 - 1.4.5", "1.4.6", false),
    ("1.1 - 1.3", "1.3.0", true),
    ("1.1 - 1.3", "1.4.0", false),
    ("1.0 -\t2.0", "1.5.0", true),
    ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true),
    ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true),
    ("1.5, 1.0 - 2.0", "1.5.3", true),
    ("3 - 4 || 6", "6.1.0", true),
    // Without spaces the hyphen starts a prerelease: `1.1.0-3`, a tilde range.
    ("1.1-3", "4.3.2", false),
    ("1.1-3", "1.1.5", true),
    ("1.1-3", "1.1.0-4", true),
    // Masterminds' quirks: kept because Helm and Argo CD have them.
    ("!=*", "1.2.3", true),
    ("!=*", "0.0.0", false),
    ("<=*", "0.0.7", true),
    ("<=*", "1.0.0", false),
    ("^*", "0.0.0", true),
    ("^*", "0.0.3", false),
    ("^*", "1.0.0", false),
    ("*.5.7", "9.9.9", true),
    ("1.x.3", "1.7.0", true),
];

#[test]
fn constraints_match_as_masterminds_documents() {
    for (constraint, version, want) in CONSTRAINT_CASES {
        assert_eq!(
            c(constraint).matches(&v(version)),
            *want,
            "{constraint:?} {version:?}"
        );
    }
}

#[test]
fn improper_constraints_are_refused_naming_the_part() {
    let cases = [
        ("", "empty constraint"),
        ("   ", "empty constraint"),
        ("1.0 ||", "empty constraint"),
        ("|| 1.0", "empty constraint"),
        ("foo", "is no list of comparisons"),
        ("&&", "is no list of comparisons"),
        (">= bar", "is no list of comparisons"),
        ("BAR >= 1.2.3", "is no list of comparisons"),
        ("latest", "is no list of comparisons"),
        ("12.3.4.1234", "is no list of comparisons"),
        ("12.3.34~ 1.2.3", "is no list of comparisons"),
        (">=1.0<2.0", "is no list of comparisons"),
        ("==1.0", "is no list of comparisons"),
        ("! 1.0", "is no list of comparisons"),
        ("1.0, ,2.0", "is no list of comparisons"),
        ("1.0,", "is no list of comparisons"),
        ("1.0~2.0", "is no list of comparisons"),
        ("1.2.3 -2.0.0", "is no list of comparisons"),
        // Glued hyphen ranges (Masterminds rewrites them in place, which fails).
        (">1.0 - 2.0", "is no list of comparisons"),
        ("1.5 1.0 - 2.0", "is no list of comparisons"),
        ("1.0 - 2.0 - 3.0", "is no list of comparisons"),
        // Shaped like a comparison, but its numbers do not parse.
        ("1x", "numbers are not numbers"),
        ("1.0 | 2.0", "numbers are not numbers"),
        ("1|2", "numbers are not numbers"),
        ("1.0.0-01", "starts with 0"),
        ("1.x-01", "starts with 0"),
        (">99999999999999999999", "larger than"),
    ];
    for (text, reason) in cases {
        match Constraint::parse(text) {
            Err(InvalidConstraint { input, reason: got }) => {
                assert_eq!(input, text);
                assert!(got.contains(reason), "{text:?}: {got}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn constraints_parse_into_groups_and_keep_their_text() {
    let cases = [
        (">= 1.1", vec![1]),
        (">40.50.60, < 50.70", vec![2]),
        ("v2.3.5-20161202202307-sha.e8fc5e5", vec![1]),
        (">= 1.2.3 < 2.0 || => 3.0 < 4", vec![2, 2]),
        ("3 - 4 || => 3.0, < 4", vec![2, 2]),
        ("12.3.34 ~1.2.3", vec![2]),
        ("1.0.0 - 2.0.0, <=2.0.0", vec![3]),
        ("\t>=1\n<2\r", vec![2]),
    ];
    for (text, sizes) in cases {
        let constraint = c(text);
        let got: Vec<usize> = constraint
            .groups
            .iter()
            .map(|g| g.comparators.len())
            .collect();
        assert_eq!(got, sizes, "{text:?}");
        assert_eq!(constraint.to_string(), text);
        assert_eq!(text.parse::<Constraint>().as_ref(), Ok(&constraint));
    }
}

#[test]
fn hyphen_ranges_are_rewritten_in_place() {
    let cases = [
        ("1.2 - 1.4.5", ">= 1.2, <= 1.4.5 "),
        ("  1.2   -  3  ", ">= 1.2, <= 3 "),
        ("1 - 2 || 3 - 4", ">= 1, <= 2 ||>= 3, <= 4 "),
        ("1.5, 1.0 - 2.0", "1.5,>= 1.0, <= 2.0 "),
        ("1.5 1.0 - 2.0", "1.5>= 1.0, <= 2.0 "),
        (">1.0 - 2.0", ">>= 1.0, <= 2.0 "),
        ("1.2-1.4.5", "1.2-1.4.5"),
        ("1.2 -1.4.5", "1.2 -1.4.5"),
        ("1.2 - ", "1.2 - "),
    ];
    for (text, want) in cases {
        assert_eq!(rewrite_ranges(text), want, "{text:?}");
    }
}

#[test]
fn errors_say_the_input() {
    let e = Constraint::parse(">= 1.x, <2 || wat").unwrap_err();
    assert_eq!(
        e.to_string(),
        "constraint \">= 1.x, <2 || wat\": \" wat\" is no list of comparisons (expected [OPERATOR]VERSION at \"wat\")"
    );
    let e = parse_version("1.2.3.4").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("version \"1.2.3.4\" is not a semantic version"),
        "{e}"
    );
}

#[test]
fn long_inputs_are_refused_or_read_in_linear_time_and_quoted_short() {
    // A run of version characters is where hyphen ranges would cost quadratic time.
    let long = "9".repeat(MAX_CONSTRAINT_BYTES + 1);
    match Constraint::parse(&long) {
        Err(InvalidConstraint { input, reason }) => {
            assert_eq!(input, format!("{}...", "9".repeat(128)));
            assert!(reason.contains("more than the 1024"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let at_limit = format!("1.0.0-{}", "x".repeat(MAX_CONSTRAINT_BYTES - 6));
    assert!(c(&at_limit).matches(&v(&at_limit)));
    // Versions have no limit (their parse is linear); errors quote them short.
    let version = format!("1.0.0-{}", "a.".repeat(50_000));
    let err = parse_version(&version).unwrap_err().to_string();
    assert!(err.len() < 400, "{err}");
    // Cut at a character boundary.
    assert_eq!(shown(&"é".repeat(100)), format!("{}...", "é".repeat(64)));
}
