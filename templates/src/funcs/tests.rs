//! One or more assertions per template function, through the template engine.

use serde_json::json;

use crate::Library;
use crate::tests::{assert_err, go_ok};

fn t(src: &str) -> String {
    go_ok(src, json!({"x": 1}))
}

#[test]
fn every_registered_function_is_found() {
    for name in [
        "and",
        "slice",
        "default",
        "dig",
        "toYaml",
        "semverCompare",
        "regexSplit",
        "sha1sum",
        "until",
    ] {
        assert!(super::lookup(name, Library::ArgoCd).is_some(), "{name}");
    }
    for name in [
        "env",
        "expandenv",
        "getHostByName",
        "now",
        "randAlpha",
        "call",
    ] {
        assert!(
            super::lookup(name, Library::ArgoCd).is_none(),
            "{name} must not exist"
        );
    }
}

#[test]
fn strings_basic() {
    assert_eq!(t(r"{{ hello }}"), "Hello!");
    assert_eq!(
        t(r#"{{ upper "abc" }}|{{ lower "ABC" }}|{{ trim "  a b  " }}"#),
        "ABC|abc|a b"
    );
    assert_eq!(
        t(r#"{{ title "hello wide_world foo-bar" }}"#),
        "Hello Wide_world Foo-Bar"
    );
    assert_eq!(t(r#"{{ untitle "Hello World" }}"#), "hello world");
    assert_eq!(
        t(r#"{{ trimAll "$" "$$5.00$" }}|{{ trimall "-" "-a-" }}"#),
        "5.00|a"
    );
    assert_eq!(
        t(r#"{{ trimPrefix "pre-" "pre-fix" }}|{{ trimSuffix ".git" "repo.git" }}"#),
        "fix|repo"
    );
    assert_eq!(t(r#"{{ nospace "a b\tc\n" }}"#), "abc");
    assert_eq!(t(r#"{{ initials "First Try" }}"#), "FT");
    assert_eq!(t(r#"{{ swapcase "This Is" }}"#), "tHIS iS");
    assert_eq!(
        t(r#"{{ contains "cat" "catch" }} {{ hasPrefix "ca" "cat" }} {{ hasSuffix "at" "cat" }}"#),
        "true true true"
    );
    assert_eq!(t(r#"{{ replace " " "-" "a b c" }}"#), "a-b-c");
    assert_eq!(
        t(r#"{{ plural "one" "many" 1 }} {{ plural "one" "many" 2 }}"#),
        "one many"
    );
    assert_eq!(t(r#"{{ repeat 3 "ab" }}"#), "ababab");
    assert_err(
        r#"{{ repeat -1 "ab" }}"#,
        json!({"x": 1}),
        "negative Repeat count",
    );
}

#[test]
fn strings_cutting() {
    assert_eq!(
        t(r#"{{ trunc 5 "hello world" }}|{{ trunc -5 "hello world" }}|{{ trunc 50 "hi" }}"#),
        "hello|world|hi"
    );
    assert_eq!(
        t(
            r#"{{ substr 0 5 "hello world" }}|{{ substr 6 -1 "hello world" }}|{{ substr -1 2 "hello" }}"#
        ),
        "hello|world|he"
    );
    assert_err(
        r#"{{ substr 4 2 "hello" }}"#,
        json!({"x": 1}),
        "slice bounds out of range",
    );
    assert_eq!(
        t(r#"{{ abbrev 5 "hello world" }}|{{ abbrev 3 "hello" }}"#),
        "he...|hello"
    );
    assert_eq!(t(r#"{{ abbrevboth 5 10 "1234 5678 9123" }}"#), "...5678...");
}

#[test]
fn strings_case_conversion() {
    let cases = [
        ("FirstName", "first_name"),
        ("HTTPServer", "http_server"),
        ("NoHTTPS", "no_https"),
        ("GO_PATH", "go_path"),
        ("GO PATH", "go_path"),
        ("GO-PATH", "go_path"),
        ("http2xx", "http_2xx"),
        ("HTTP20xOK", "http_20x_ok"),
        ("Duration2m3s", "duration_2m3s"),
        ("Bld4Floor3rd", "bld4_floor_3rd"),
        ("a.b", "a.b"),
    ];
    for (input, want) in cases {
        assert_eq!(
            t(&format!(r#"{{{{ snakecase "{input}" }}}}"#)),
            want,
            "{input}"
        );
    }
    assert_eq!(
        t(r#"{{ kebabcase "FirstName" }}|{{ kebabcase "Bld4Floor" }}"#),
        "first-name|bld4-floor"
    );
    assert_eq!(
        t(
            r#"{{ camelcase "http_server" }}|{{ camelcase "_complex__case_" }}|{{ camelcase "GOLANG_IS_GREAT" }}|{{ camelcase "some words" }}|{{ camelcase "x" }}"#
        ),
        "httpServer|_complex_Case_|golangIsGreat|someWords|x"
    );
}

#[test]
fn strings_wrapping_and_indenting() {
    assert_eq!(t(r#"{{ wrap 5 "Hello World" }}"#), "Hello\nWorld");
    assert_eq!(t(r#"{{ wrapWith 5 "\t" "Hello World" }}"#), "Hello\tWorld");
    assert_eq!(t(r#"{{ wrapWith 3 "|" "abcdefg" }}"#), "abc|def|g");
    assert_eq!(t(r#"{{ indent 2 "a\nb" }}"#), "  a\n  b");
    assert_eq!(t(r#"{{ nindent 2 "a" }}"#), "\n  a");
}

#[test]
fn strings_quoting_and_joining() {
    let p = json!({"n": null, "f": 1.5});
    assert_eq!(
        go_ok(r#"{{ quote "a" 1 .n "b\"c" }}"#, p.clone()),
        r#""a" "1" "b\"c""#
    );
    assert_eq!(go_ok(r#"{{ squote "a" .f }}"#, p.clone()), "'a' '1.5'");
    assert_eq!(go_ok(r#"{{ cat "a" .n 2 "b" }}"#, p.clone()), "a 2 b");
    assert_eq!(
        go_ok(
            r"{{ toString .f }}|{{ toString 3 }}|{{ toString .missing }}",
            p
        ),
        "1.5|3|<nil>"
    );
    assert_eq!(
        t(r#"{{ join "," (list "a" 1 true) }}|{{ join "-" "solo" }}"#),
        "a,1,true|solo"
    );
    assert_eq!(
        t(r#"{{ toStrings (list 1 "b") | join "+" }}|{{ typeOf (toStrings (list 1)) }}"#),
        "1+b|[]string"
    );
    assert_eq!(t(r#"{{ sortAlpha (list "b" "C" "a") }}"#), "[C a b]");
}

#[test]
fn strings_splitting() {
    assert_eq!(
        t(r#"{{ $p := split "$" "foo$bar$baz" }}{{ $p._0 }}-{{ $p._2 }}"#),
        "foo-baz"
    );
    assert_eq!(
        t(r#"{{ splitList "/" "a/b/c" }}|{{ splitList "" "ab" }}"#),
        "[a b c]|[a b]"
    );
    assert_eq!(
        t(r#"{{ $p := splitn "/" 2 "a/b/c" }}{{ $p._0 }}|{{ $p._1 }}"#),
        "a|b/c"
    );
    assert_eq!(t(r#"{{ typeOf (split "," "a") }}"#), "map[string]string");
}

#[test]
fn paths() {
    assert_eq!(
        t(
            r#"{{ base "/a/b.txt" }}|{{ dir "/a/b.txt" }}|{{ ext "b.tar.gz" }}|{{ clean "a//b/../c/." }}|{{ isAbs "/x" }}"#
        ),
        "b.txt|/a|.gz|a/c|true"
    );
    assert_eq!(
        t(r#"{{ base "" }}|{{ dir "file" }}|{{ clean "/../a" }}|{{ osBase "x/y" }}"#),
        ".|.|/a|y"
    );
}

#[test]
fn lists_building() {
    assert_eq!(t(r#"{{ list 1 "a" 2.5 }}|{{ tuple }}"#), "[1 a 2.5]|[]");
    assert_eq!(
        t(r#"{{ append (list 1) 2 }}|{{ push (list) "x" }}|{{ prepend (list 2) 1 }}"#),
        "[1 2]|[x]|[1 2]"
    );
    assert_eq!(t(r"{{ concat (list 1) (list 2 3) }}"), "[1 2 3]");
    assert_err(
        r#"{{ append "s" 1 }}"#,
        json!({"x": 1}),
        "Cannot push on type string",
    );
    assert_err(
        r"{{ concat (list 1) 2 }}",
        json!({"x": 1}),
        "Cannot concat type int as list",
    );
}

#[test]
fn lists_picking() {
    let p = json!({"l": ["a", "b", "c"], "e": []});
    assert_eq!(
        go_ok(
            "{{ first .l }}|{{ last .l }}|{{ rest .l }}|{{ initial .l }}",
            p.clone()
        ),
        "a|c|[b c]|[a b]"
    );
    assert_eq!(
        go_ok("{{ first .e }}|{{ rest .e }}", p.clone()),
        "<no value>|[]"
    );
    assert_eq!(go_ok("{{ reverse .l }}", p.clone()), "[c b a]");
    assert_eq!(
        go_ok(
            "{{ slice .l 1 }}|{{ slice .l 0 2 }}|{{ slice \"hello\" 1 3 }}",
            p.clone()
        ),
        "[b c]|[a b]|el"
    );
    assert_err("{{ slice .l 2 9 }}", p.clone(), "slice index out of range");
    assert_eq!(go_ok("{{ mustFirst .l }}|{{ mustLast .l }}", p), "a|c");
}

#[test]
fn lists_filtering_and_membership() {
    let p = json!({"l": ["a", "", "a", "b", null], "nums": [1, 2]});
    assert_eq!(go_ok("{{ uniq .l }}", p.clone()), "[a  b <nil>]");
    assert_eq!(go_ok("{{ compact .l }}", p.clone()), "[a a b]");
    assert_eq!(go_ok("{{ without .l \"a\" \"\" }}", p.clone()), "[b <nil>]");
    assert_eq!(
        go_ok(
            "{{ has \"b\" .l }} {{ has \"z\" .l }} {{ has 1 .missing }}",
            p.clone()
        ),
        "true false false"
    );
    // JSON numbers are float64, so an int literal is not DeepEqual to them.
    assert_eq!(
        go_ok("{{ has 1 .nums }} {{ has 1.0 .nums }}", p.clone()),
        "false true"
    );
    assert_eq!(go_ok("{{ chunk 2 (list 1 2 3) }}", p), "[[1 2] [3]]");
}

#[test]
fn integer_sequences() {
    assert_eq!(
        t("{{ until 3 }}|{{ until -2 }}|{{ untilStep 1 10 3 }}|{{ untilStep 5 0 -2 }}"),
        "[0 1 2]|[0 -1]|[1 4 7]|[5 3 1]"
    );
    assert_eq!(
        t("{{ seq 3 }}|{{ seq 2 4 }}|{{ seq 0 2 6 }}|{{ seq 3 1 }}|{{ seq 0 }}"),
        "1 2 3|2 3 4|0 2 4 6|3 2 1|1 0"
    );
    assert_eq!(
        t("{{ range $i := until 2 }}{{ $i }}{{ end }}|{{ typeOf (until 1) }}"),
        "01|[]int"
    );
}

#[test]
fn dicts_basic() {
    let p = json!({"m": {"a": 1, "b": {"c": "d"}}});
    assert_eq!(
        go_ok(
            r#"{{ $d := dict "k" "v" "n" 1 "odd" }}{{ $d.k }}{{ $d.n }}[{{ $d.odd }}]"#,
            p.clone()
        ),
        "v1[]"
    );
    assert_eq!(
        go_ok(
            r#"{{ get .m "a" }}|{{ get .m "zz" }}|{{ hasKey .m "b" }}|{{ hasKey .m "zz" }}"#,
            p.clone()
        ),
        "1||true|false"
    );
    assert_eq!(
        go_ok(
            r#"{{ keys .m (dict "z" 1) }}|{{ values (dict "x" 1 "y" 2) }}"#,
            p.clone()
        ),
        "[a b z]|[1 2]"
    );
    assert_eq!(
        go_ok(r#"{{ pick .m "a" "nope" }}|{{ omit .m "a" }}"#, p.clone()),
        "map[a:1]|map[b:map[c:d]]"
    );
    assert_eq!(
        go_ok(r#"{{ pluck "a" .m (dict "a" 2) (dict "b" 3) }}"#, p.clone()),
        "[1 2]"
    );
    assert_eq!(go_ok(r#"{{ hasKey .missing "a" }}"#, p), "false");
}

#[test]
fn dicts_mutate_in_place() {
    let p = json!({"m": {"a": 1}});
    assert_eq!(
        go_ok(
            r#"{{ $d := dict }}{{ $_ := set $d "k" "v" }}{{ $d.k }}"#,
            p.clone()
        ),
        "v"
    );
    assert_eq!(
        go_ok(
            r#"{{ $d := dict "a" 1 "b" 2 }}{{ $_ := unset $d "a" }}{{ $d }}"#,
            p.clone()
        ),
        "map[b:2]"
    );
    // Parameters are read-only: set returns a modified copy.
    assert_eq!(
        go_ok(r#"{{ (set .m "b" 2).b }}|{{ hasKey .m "b" }}"#, p.clone()),
        "2|false"
    );
    assert_err(
        r#"{{ $d := dict }}{{ $_ := set $d "self" $d }}"#,
        p,
        "cannot store a map inside itself",
    );
}

#[test]
fn dicts_merging() {
    let p = json!({"dst": {"a": 1, "n": {"x": 1}, "e": ""}, "src": {"a": 2, "b": 3, "n": {"y": 2}, "e": "filled"}});
    assert_eq!(
        go_ok("{{ merge (deepCopy .dst) .src }}", p.clone()),
        "map[a:1 b:3 e:filled n:map[x:1 y:2]]"
    );
    assert_eq!(
        go_ok("{{ mergeOverwrite (deepCopy .dst) .src }}", p.clone()),
        "map[a:2 b:3 e:filled n:map[x:1 y:2]]"
    );
    assert_eq!(
        go_ok(
            r#"{{ $d := dict "a" 1 }}{{ $_ := merge $d (dict "b" 2) }}{{ $d }}"#,
            p.clone()
        ),
        "map[a:1 b:2]"
    );
    assert_eq!(
        go_ok(
            "{{ mustMerge (dict) .src | len }}|{{ mustMergeOverwrite (dict \"a\" 0) (dict \"a\" 5) }}",
            p
        ),
        "4|map[a:5]"
    );
}

#[test]
fn dicts_dig_and_deep_copy() {
    let p = json!({"cluster": {"inner": {"one": "1"}}, "s": "str"});
    assert_eq!(
        go_ok(
            r#"{{ dig "inner" "one" "none" .cluster }}|{{ dig "inner" "two" "none" .cluster }}"#,
            p.clone()
        ),
        "1|none"
    );
    assert_eq!(
        go_ok(r#"{{ dig "cluster" "inner" "one" "d" . }}"#, p.clone()),
        "1"
    );
    assert_err(
        r#"{{ dig "a" .s }}"#,
        p.clone(),
        "dig needs at least three arguments",
    );
    assert_err(
        r#"{{ dig "a" "d" .s }}"#,
        p.clone(),
        "interface conversion: interface {} is string, not map[string]interface {}",
    );
    assert_eq!(
        go_ok(
            r#"{{ $c := deepCopy .cluster }}{{ $_ := set $c "x" 1 }}{{ len $c }}|{{ len .cluster }}"#,
            p.clone()
        ),
        "2|1"
    );
    assert_eq!(go_ok(r"{{ mustDeepCopy (list 1 2) }}", p), "[1 2]");
}

#[test]
fn numeric_conversions() {
    let p = json!({"f": 3.7, "s": "42", "o": "010", "bad": "x"});
    assert_eq!(
        go_ok(
            "{{ atoi .s }}|{{ atoi .bad }}|{{ int .f }}|{{ int64 .s }}|{{ int .o }}|{{ float64 .s }}",
            p.clone()
        ),
        "42|0|3|42|8|42"
    );
    assert_eq!(
        go_ok(
            "{{ typeOf (int .f) }}|{{ typeOf (int64 1) }}|{{ typeOf (float64 1) }}",
            p.clone()
        ),
        "int|int64|float64"
    );
    assert_eq!(
        go_ok(
            r#"{{ int "5.00" }}|{{ int true }}|{{ toDecimal "0777" }}|{{ toDecimal "9" }}"#,
            p
        ),
        "5|1|511|0"
    );
}

#[test]
fn integer_arithmetic() {
    let p = json!({"n": 10});
    assert_eq!(
        go_ok(
            "{{ add 1 2 .n }}|{{ add1 .n }}|{{ sub .n 3 }}|{{ mul 2 3 4 }}|{{ div .n 3 }}|{{ mod .n 3 }}",
            p.clone()
        ),
        "13|11|7|24|3|1"
    );
    assert_eq!(
        go_ok(
            "{{ max 1 .n 3 }}|{{ biggest 4 2 }}|{{ min 5 .n -1 }}",
            p.clone()
        ),
        "10|4|-1"
    );
    assert_err(
        "{{ div 1 0 }}",
        p.clone(),
        "error calling div: runtime error: integer divide by zero",
    );
    assert_err("{{ mod 1 0 }}", p, "integer divide by zero");
}

#[test]
fn float_arithmetic() {
    let p = json!({"f": 2.5});
    assert_eq!(
        go_ok(
            "{{ floor .f }}|{{ ceil .f }}|{{ round 3.14159 2 }}|{{ round 2.5 0 }}|{{ round 2.4 0 0.3 }}",
            p.clone()
        ),
        "2|3|3.14|3|3"
    );
    assert_eq!(
        go_ok(
            "{{ addf 0.1 0.2 }}|{{ add1f .f }}|{{ subf 1 0.9 }}|{{ mulf 1.1 3 }}|{{ divf 10 4 }}|{{ divf 1 3 }}",
            p.clone()
        ),
        "0.3|3.5|0.1|3.3|2.5|0.3333333333333333"
    );
    assert_eq!(
        go_ok("{{ maxf 1 2.5 .f }}|{{ minf 1 -2.5 }}", p.clone()),
        "2.5|-2.5"
    );
    assert_err("{{ divf 1 0 }}", p, "decimal division by zero");
}

#[test]
fn defaults_and_flow() {
    let p = json!({"e": "", "z": 0, "v": "val", "l": [], "m": {"a": 1}});
    assert_eq!(
        go_ok(
            r#"{{ default "d" .e }}|{{ default "d" .v }}|{{ default "d" .missing }}|{{ default "d" .z }}|{{ .e | default "p" }}"#,
            p.clone()
        ),
        "d|val|d|d|p"
    );
    assert_eq!(
        go_ok(
            "{{ empty .e }} {{ empty .l }} {{ empty .m }} {{ empty .v }} {{ empty .missing }}",
            p.clone()
        ),
        "true true false false true"
    );
    assert_eq!(
        go_ok(
            r#"{{ coalesce .e .z .v "x" }}|{{ coalesce .e }}"#,
            p.clone()
        ),
        "val|<no value>"
    );
    assert_eq!(
        go_ok(
            r"{{ all .v .m }} {{ all .v .e }} {{ any .e .z }} {{ any .e .v }}",
            p.clone()
        ),
        "true false false true"
    );
    assert_eq!(
        go_ok(
            r#"{{ ternary "yes" "no" true }}|{{ true | ternary "yes" "no" }}|{{ ternary 1 2 false }}"#,
            p.clone()
        ),
        "yes|yes|2"
    );
    assert_err(
        r#"{{ fail "stop here" }}"#,
        p,
        "error calling fail: stop here",
    );
}

#[test]
fn reflection() {
    let p = json!({"m": {"a": 1}, "l": [1], "s": "x", "f": 1.5, "b": true});
    assert_eq!(
        go_ok(
            "{{ typeOf .m }}|{{ typeOf .l }}|{{ typeOf .s }}|{{ typeOf .f }}|{{ typeOf .b }}|{{ typeOf .missing }}|{{ typeOf 1 }}",
            p.clone()
        ),
        "map[string]interface {}|[]interface {}|string|float64|bool|<nil>|int"
    );
    assert_eq!(
        go_ok(
            "{{ kindOf .m }}|{{ kindOf .l }}|{{ kindOf .s }}|{{ kindOf .f }}|{{ kindOf 1 }}",
            p.clone()
        ),
        "map|slice|string|float64|int"
    );
    assert_eq!(
        go_ok(
            r#"{{ typeIs "string" .s }} {{ typeIsLike "semver.Version" (semver "1.0.0") }} {{ kindIs "map" .m }} {{ kindIs "slice" .s }}"#,
            p.clone()
        ),
        "true true true false"
    );
    assert_eq!(
        go_ok(
            "{{ deepEqual .m (dict \"a\" 1.0) }} {{ deepEqual .m (dict \"a\" 1) }} {{ deepEqual (list 1) (list 1) }}",
            p
        ),
        "true false true"
    );
}

#[test]
fn encodings() {
    assert_eq!(
        t(r#"{{ b64enc "hello" }}|{{ b64dec "aGVsbG8=" }}|{{ b64dec "!!" }}"#),
        "aGVsbG8=|hello|illegal base64 data at input byte 0"
    );
    assert_eq!(
        t(
            r#"{{ b32enc "hello" }}|{{ b32dec "NBSWY3DP" }}|{{ b32enc "a" }}|{{ b32dec "ME======" }}"#
        ),
        "NBSWY3DP|hello|ME======|a"
    );
    assert_eq!(
        t(r#"{{ sha1sum "hello" }}"#),
        "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
    );
    assert_eq!(
        t(r#"{{ sha256sum "hello" }}"#),
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(t(r#"{{ sha512sum "" | trunc 16 }}"#), "cf83e1357eefb8bd");
    assert_eq!(t(r#"{{ adler32sum "hello" }}"#), "103547413");
}

#[test]
fn json_functions() {
    let p = json!({"m": {"b": [1, 2.5, 1_000_000], "a": "<x>&", "n": null}, "s": "{\"k\": [1, {\"z\": true}]}"});
    assert_eq!(
        go_ok("{{ toJson .m }}", p.clone()),
        r#"{"a":"\u003cx\u003e\u0026","b":[1,2.5,1000000],"n":null}"#
    );
    assert_eq!(
        go_ok("{{ toRawJson .m }}", p.clone()),
        r#"{"a":"<x>&","b":[1,2.5,1000000],"n":null}"#
    );
    assert_eq!(
        go_ok("{{ mustToJson (list 1 \"a\") }}", p.clone()),
        r#"[1,"a"]"#
    );
    assert_eq!(
        go_ok(
            "{{ toPrettyJson (dict \"a\" (list 1) \"e\" (dict)) }}",
            p.clone()
        ),
        "{\n  \"a\": [\n    1\n  ],\n  \"e\": {}\n}"
    );
    assert_eq!(go_ok("{{ mustToPrettyJson 1 }}", p.clone()), "1");
    assert_eq!(
        go_ok(
            "{{ (fromJson .s).k }}|{{ index (fromJson .s).k 1 \"z\" }}|{{ fromJson \"bad\" }}",
            p.clone()
        ),
        "[1 map[z:true]]|true|<no value>"
    );
    assert_eq!(
        go_ok(
            "{{ mustFromJson \"[1]\" }}|{{ mustToRawJson \"<\" }}",
            p.clone()
        ),
        "[1]|\"<\""
    );
    assert_err("{{ mustFromJson \"{\" }}", p, "error calling mustFromJson");
}

#[test]
fn regex_functions() {
    assert_eq!(
        t(r#"{{ regexMatch "^[a-z]+$" "abc" }} {{ mustRegexMatch "\\d" "abc" }}"#),
        "true false"
    );
    assert_eq!(
        t(
            r#"{{ regexFind "[0-9]+" "ab12cd34" }}|{{ regexFindAll "[0-9]+" "ab12cd34" -1 }}|{{ regexFindAll "[0-9]" "1234" 2 }}"#
        ),
        "12|[12 34]|[1 2]"
    );
    assert_eq!(
        t(
            r#"{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}|{{ regexReplaceAllLiteral "a(x*)b" "-ab-" "$1" }}"#
        ),
        "-W-xxW-|-$1-"
    );
    assert_eq!(
        t(
            r#"{{ regexSplit "z+" "pizza" -1 }}|{{ regexSplit "z+" "pizza" 1 }}|{{ regexSplit "a" "banana" 2 }}"#
        ),
        "[pi a]|[pizza]|[b nana]"
    );
    assert_eq!(t(r#"{{ regexQuoteMeta "1.2+[x]" }}"#), r"1\.2\+\[x\]");
    assert_err(
        r#"{{ regexMatch "(" "x" }}"#,
        json!({"x": 1}),
        "error calling regexMatch: regexp: Compile",
    );
    assert_eq!(
        t(
            r#"{{ mustRegexFind "b+" "abbc" }}|{{ mustRegexFindAll "b" "bb" 0 }}|{{ mustRegexReplaceAll "b" "abc" "x" }}|{{ mustRegexReplaceAllLiteral "b" "b" "$" }}|{{ mustRegexSplit "," "a,b" -1 }}"#
        ),
        "bb|[]|axc|$|[a b]"
    );
}

#[test]
fn semver_functions() {
    assert_eq!(
        t(
            r#"{{ (semver "v1.2.3-beta.1+build").Major }}.{{ (semver "1.2.3").Minor }}|{{ (semver "1.2.3-rc1").Prerelease }}|{{ semver "1.2" }}"#
        ),
        "1.2|rc1|1.2.0"
    );
    assert_eq!(
        t(
            r#"{{ $v := semver "v01.2-rc.1+b.7" }}{{ $v.Patch }}|{{ $v.Metadata }}|{{ $v.Original }}|{{ $v.String }}|{{ printf "%q" $v }}"#
        ),
        r#"0|b.7|v01.2-rc.1+b.7|1.2.0-rc.1+b.7|"1.2.0-rc.1+b.7""#
    );
    // Masterminds' errors, in the texts Sprig's tests know.
    for (version, error) in [
        ("nope", "Invalid Semantic Version"),
        ("1.0.0-01", "Version segment starts with 0"),
        (
            "18446744073709551616.0.0",
            "Error parsing version segment: number too large to fit in target type",
        ),
    ] {
        assert_err(
            &format!(r#"{{{{ semver "{version}" }}}}"#),
            json!({"x": 1}),
            error,
        );
        assert_err(
            &format!(r#"{{{{ semverCompare "*" "{version}" }}}}"#),
            json!({"x": 1}),
            error,
        );
    }
    // The cases are `crate::semver`'s (its tests have this table and more); these check the
    // function passes them on.
    let cases = [
        (">=1.2.3", "1.2.3", true),
        (">1.2.3", "1.2.3", false),
        (">=1.0.0", "1.2.3-rc1", false),
        ("<1.0 || >=3.0", "3.1.0", true),
        ("1.1 - 1.3", "1.4.0", false),
    ];
    for (constraint, version, want) in cases {
        assert_eq!(
            t(&format!(
                r#"{{{{ semverCompare "{constraint}" "{version}" }}}}"#
            )),
            want.to_string(),
            "{constraint} {version}"
        );
    }
    assert_err(
        r#"{{ semverCompare "&&" "1.0.0" }}"#,
        json!({"x": 1}),
        "improper constraint: &&",
    );
    // A long constraint costs work quadratic in its length: a loop over one runs out of
    // budget (1,300 calls of 1,024 bytes), the same loop over a short one does not.
    let long = "1 ".repeat(512);
    let looped = |constraint: &str| {
        format!(
            r#"{{{{ range 1300 }}}}{{{{ semverCompare "{constraint}" "1.0.0" }}}}{{{{ end }}}}"#
        )
    };
    assert_err(&looped(&long), json!({"x": 1}), "work budget");
    assert!(t(&looped("1 1")).starts_with("truetrue"));
}

#[test]
fn argo_normalize_and_slugify() {
    assert_eq!(
        t(r#"{{ normalize "-.--CLUSTER/name  -./.-" }}|{{ normalize "My_Cluster.Example" }}"#),
        "cluster-name|my-cluster.example"
    );
    assert_eq!(
        t(&format!(
            r#"{{{{ normalize "{}" | len }}}}"#,
            "a".repeat(300)
        )),
        "253"
    );
    assert_eq!(
        t(
            r#"{{ slugify "Hello World.Foo" }}|{{ slugify 11 "hello-world-foo" }}|{{ slugify 11 false "hello-world-foo" }}"#
        ),
        "hello-world-foo|hello-world|hello-world"
    );
    assert_eq!(
        t(
            r#"{{ slugify 7 true "hello-world" }}|{{ slugify 7 false "hello-world" }}|{{ slugify 3 "abcdef" }}"#
        ),
        "hello|hello-w|abc"
    );
    assert_eq!(
        t(r#"[{{ slugify 0 false "abc" }}]|{{ slugify 0 "abc" }}|{{ slugify 4 false "ab-cd" }}"#),
        "[]|abc|ab-c"
    );
    assert_err(
        r#"{{ slugify -1 false "x" }}"#,
        json!({"x": 1}),
        "slice bounds out of range",
    );
    assert_err(
        r#"{{ slugify "50" "x" }}"#,
        json!({"x": 1}),
        "interface conversion: interface {} is string, not int",
    );
}

#[test]
fn argo_yaml_functions() {
    let p =
        json!({"v": "hello: world\nn: 3", "l": "- a\n- 2", "m": {"list": ["x", "y"], "s": "t"}});
    assert_eq!(
        go_ok(
            r#"{{ get (fromYaml .v) "hello" }}|{{ (fromYaml .v).n }}|{{ fromYaml "" }}"#,
            p.clone()
        ),
        "world|3|map[]"
    );
    assert_eq!(
        go_ok("{{ fromYamlArray .l }}|{{ fromYamlArray \"\" }}", p.clone()),
        "[a 2]|[]"
    );
    assert_err(
        "{{ fromYamlArray .v }}",
        p.clone(),
        "cannot unmarshal object into Go value of type []interface {}",
    );
    assert_err(
        "{{ fromYaml .l }}",
        p.clone(),
        "cannot unmarshal array into Go value of type map[string]interface {}",
    );
    // `y` is a YAML 1.1 boolean, so yaml.v2 quotes it.
    assert_eq!(
        go_ok("{{ toYaml .m }}", p.clone()),
        "list:\n- x\n- \"y\"\ns: t"
    );
    assert_eq!(
        go_ok(
            "{{ toYaml \"plain\" }}|{{ toYaml 2 }}|{{ toYaml .missing }}",
            p
        ),
        "plain|2|null"
    );
}

/// Renders in Go mode with Helm's library and `missingkey=error`.
fn helm(src: &str, p: serde_json::Value) -> Result<String, crate::TemplateError> {
    let mode = crate::Mode::Go(crate::GoOptions {
        missing_key: crate::MissingKey::Error,
        library: Library::Helm,
    });
    crate::render_string(src, &crate::tests::params(p), &mode)
}

#[test]
fn helm_functions_exist_only_in_the_helm_library() {
    for name in ["include", "required"] {
        assert!(super::lookup(name, Library::Helm).is_some(), "{name}");
        assert!(super::lookup(name, Library::ArgoCd).is_none(), "{name}");
    }
    assert_err(
        r#"{{ include "x" . }}"#,
        json!({}),
        r#"function "include" not defined"#,
    );
    // Helm's library is Argo CD's plus these two.
    assert_eq!(
        helm("{{ toYaml .m | nindent 2 }}", json!({"m": {"a": 1}})).unwrap(),
        "\n  a: 1"
    );
}

#[test]
fn include_renders_a_define_into_a_pipeable_string() {
    let src = r#"{{- define "name" -}}{{ .a }}-{{ $.b }}{{- end -}}
{{ include "name" . | upper }}|{{ include "name" .nested | quote }}|{{ template "name" . }}"#;
    let p = json!({"a": "x", "b": "y", "nested": {"a": "n", "b": "m"}});
    // `$` inside the included template is its data, as with `template`.
    assert_eq!(helm(src, p).unwrap(), "X-Y|\"n-m\"|x-y");
}

#[test]
fn include_nests_and_keeps_the_caller_output() {
    let src = r#"{{- define "inner" }}[{{ . }}]{{ end -}}
{{- define "outer" }}<{{ include "inner" . }}>{{ end -}}
a{{ include "outer" "v" | trim }}b"#;
    assert_eq!(helm(src, json!({})).unwrap(), "a<[v]>b");
}

#[test]
fn include_errors_name_the_template() {
    let err = helm(r#"{{ include "nope" . }}"#, json!({}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"error calling include: template "nope" not defined"#),
        "{err}"
    );
    // An error inside the included template names it.
    let src = r#"{{ define "t" }}{{ .missing }}{{ end }}{{ include "t" . }}"#;
    let err = helm(src, json!({})).unwrap_err().to_string();
    assert!(
        err.contains(r#"executing "t" at <.missing>: map has no entry for key "missing""#),
        "{err}"
    );
    // Unbounded recursion stops at the depth limit instead of overflowing the stack.
    let src = r#"{{ define "loop" }}{{ include "loop" . }}{{ end }}{{ include "loop" . }}"#;
    let err = helm(src, json!({})).unwrap_err().to_string();
    assert!(err.contains("exceeded maximum template depth"), "{err}");
}

#[test]
fn required_fails_on_absent_or_empty_string_only() {
    let p = json!({"s": "v", "e": "", "z": 0, "f": false, "n": null});
    assert_eq!(
        helm(
            r#"{{ required "s!" .s }}|{{ required "z!" .z }}|{{ required "f!" .f }}"#,
            p.clone()
        )
        .unwrap(),
        "v|0|false"
    );
    for (src, msg) in [
        (
            r#"{{ required "need e" .e }}"#,
            "error calling required: need e",
        ),
        (
            r#"{{ required "need n" .n }}"#,
            "error calling required: need n",
        ),
        (
            r#"{{ .n | required "need n" }}"#,
            "error calling required: need n",
        ),
    ] {
        let err = helm(src, p.clone()).unwrap_err().to_string();
        assert!(err.contains(msg), "{src}: {err}");
    }
}
