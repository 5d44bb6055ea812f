//! Go text/template semantics: syntax, control flow, variables, printing, missing keys, errors.

use serde_json::json;

use super::*;
use crate::StringTemplate;

#[test]
fn substitution_and_field_chains() {
    let p = json!({"one": "two", "image": {"name": "busybox", "version": "latest"}});
    assert_eq!(go_ok("{{ .one }}", p.clone()), "two");
    assert_eq!(go_ok("{{.one}}{{.one}}", p.clone()), "twotwo");
    assert_eq!(
        go_ok("{{ .image.name }}:{{ .image.version }}", p.clone()),
        "busybox:latest"
    );
    assert_eq!(go_ok("x{{$.image.name}}y", p.clone()), "xbusyboxy");
    assert_eq!(go_ok("{{ (.image).version }}", p.clone()), "latest");
    assert_eq!(go_ok("no template at all", p), "no template at all");
}

#[test]
fn substituted_values_are_not_rendered_again() {
    assert_eq!(go_ok("{{ .one }}", json!({"one": "{{two}}"})), "{{two}}");
}

#[test]
fn number_formatting_follows_go_percent_v() {
    let p = json!({"small": 123_456, "big": 1_000_000, "ratio": 2.5, "huge": 1e21,
                   "seven": 1_234_567, "tiny": 0.00001, "neg": -0.5, "zero": 0, "flag": true});
    assert_eq!(go_ok("{{.small}}", p.clone()), "123456");
    assert_eq!(go_ok("{{.big}}", p.clone()), "1e+06");
    assert_eq!(go_ok("{{.ratio}}", p.clone()), "2.5");
    assert_eq!(go_ok("{{.huge}}", p.clone()), "1e+21");
    assert_eq!(go_ok("{{.seven}}", p.clone()), "1.234567e+06");
    assert_eq!(go_ok("{{.tiny}}", p.clone()), "1e-05");
    assert_eq!(go_ok("{{.neg}}", p.clone()), "-0.5");
    assert_eq!(go_ok("{{.zero}}", p.clone()), "0");
    assert_eq!(go_ok("{{.flag}}", p.clone()), "true");
    assert_eq!(go_ok(r#"{{printf "%.0f" .big}}"#, p.clone()), "1000000");
    // Integers made by functions are Go ints and print as such.
    assert_eq!(go_ok("{{ add .big 1 }}", p.clone()), "1000001");
    assert_eq!(go_ok("{{ len \"abcdefghij\" }}", p.clone()), "10");
    assert_eq!(go_ok("{{ 1000000 }}", p.clone()), "1000000");
    assert_eq!(go_ok("{{ 1.5e6 }}", p), "1.5e+06");
}

#[test]
fn missing_keys_per_option() {
    let p = json!({"a": {"b": 1}, "n": null});
    assert_eq!(
        go_ok("--> {{.doesnotexist}} <--", p.clone()),
        "--> <no value> <--"
    );
    assert_eq!(go_ok("{{.a.missing}}", p.clone()), "<no value>");
    assert_eq!(go_ok("{{.missing.deeper}}", p.clone()), "<no value>");
    assert_eq!(go_ok("{{.n}}", p.clone()), "<no value>");
    let zero = render_string("{{.nope}}", &params(p.clone()), &go_mode(MissingKey::Zero));
    assert_eq!(zero.as_deref(), Ok("<no value>"));
    let zero_chain = render_string(
        "{{.nope.x}}",
        &params(p.clone()),
        &go_mode(MissingKey::Zero),
    );
    assert!(
        zero_chain
            .unwrap_err()
            .to_string()
            .contains("nil pointer evaluating interface {}.x")
    );
    let err = render_string(
        "--> {{.doesnotexist}} <--",
        &params(p.clone()),
        &go_mode(MissingKey::Error),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        r#"failed to execute go template --> {{.doesnotexist}} <--: template: :1:6: executing "" at <.doesnotexist>: map has no entry for key "doesnotexist""#
    );
    // `default` cannot rescue a missing key under missingkey=error (template-017)...
    let err = render_string(
        r#"{{ default "none" .nameSuffix }}"#,
        &params(p.clone()),
        &go_mode(MissingKey::Error),
    );
    assert!(
        err.unwrap_err()
            .to_string()
            .contains(r#"map has no entry for key "nameSuffix""#)
    );
    // ...but `dig` can, and `default` works without the option.
    let dig = render_string(
        r#"{{ dig "nameSuffix" "none" . }}"#,
        &params(p.clone()),
        &go_mode(MissingKey::Error),
    );
    assert_eq!(dig.as_deref(), Ok("none"));
    assert_eq!(go_ok(r#"{{ default "none" .nameSuffix }}"#, p), "none");
}

#[test]
fn field_of_non_map_is_an_error_with_go_wording() {
    let p = json!({"data": "a data string", "list": [1]});
    assert_eq!(
        go_err("{{.data.test}}", p.clone()),
        r#"failed to execute go template {{.data.test}}: template: :1:7: executing "" at <.data.test>: can't evaluate field test in type interface {}"#
    );
    assert_err(
        "{{ $d := .data }}{{ $d.test }}",
        p.clone(),
        "can't evaluate field test in type string",
    );
    assert_err(
        "{{ with .data }}{{ .test }}{{ end }}",
        p.clone(),
        "can't evaluate field test in type string",
    );
    assert_err(
        "{{ .list.x }}",
        p,
        "can't evaluate field x in type interface {}",
    );
}

#[test]
fn parse_errors_use_go_messages() {
    let p = json!({"data": "x"});
    assert_eq!(
        go_err("{{functiondoesnotexist}}", p.clone()),
        r#"failed to parse template {{functiondoesnotexist}}: template: :1: function "functiondoesnotexist" not defined"#
    );
    assert_err("{{ .a ", p.clone(), "unclosed action");
    assert_err("{{ if .a }}x", p.clone(), "unexpected EOF");
    assert_err("{{ end }}", p.clone(), "unexpected {{end}}");
    assert_err("{{ $x }}", p.clone(), r#"undefined variable "$x""#);
    assert_err("{{ }}", p.clone(), "missing value for command");
    assert_err(r#"{{ "a }}"#, p.clone(), "unterminated quoted string");
    assert_err(
        "{{ .a | 3 }}",
        p.clone(),
        "non executable command in pipeline stage 2",
    );
    assert_err("{{ break }}", p.clone(), "{{break}} outside {{range}}");
    assert_err("{{ /* x */ }}", p.clone(), r#"unexpected "/" in command"#);
    assert_err(
        "{{/* x */ .a }}",
        p.clone(),
        "comment ends before closing delimiter",
    );
    assert_err("{{ .a+ }}", p.clone(), "bad character U+002B '+'");
    assert_err(
        "line1\n{{ nope }}",
        p,
        "template: :2: function \"nope\" not defined",
    );
}

#[test]
fn whitespace_trimming_and_comments() {
    let p = json!({"a": "A"});
    assert_eq!(go_ok("x  {{- .a -}}  y", p.clone()), "xAy");
    assert_eq!(go_ok("x \n {{- .a }} \n y", p.clone()), "xA \n y");
    assert_eq!(go_ok("x {{ .a -}} \n\t y", p.clone()), "x Ay");
    assert_eq!(go_ok("a {{/* comment */}} b", p.clone()), "a  b");
    assert_eq!(go_ok("a {{- /* comment */ -}} b", p.clone()), "ab");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(go_ok("{{-3}}", p.clone()), "-3");
    // Actions may span lines.
    assert_eq!(go_ok("{{ .a\n }}", p), "A");
}

#[test]
fn if_else_chains_and_truthiness() {
    let p = json!({"t": true, "f": false, "zero": 0, "s": "", "l": [], "m": {}, "n": 2});
    let t = |cond: &str| {
        go_ok(
            &format!("{{{{ if {cond} }}}}yes{{{{ else }}}}no{{{{ end }}}}"),
            p.clone(),
        )
    };
    assert_eq!(t(".t"), "yes");
    assert_eq!(t(".f"), "no");
    assert_eq!(t(".zero"), "no");
    assert_eq!(t(".s"), "no");
    assert_eq!(t(".l"), "no");
    assert_eq!(t(".m"), "no");
    assert_eq!(t(".missing"), "no");
    assert_eq!(t(".n"), "yes");
    assert_eq!(
        go_ok(
            "{{ if .f }}a{{ else if .zero }}b{{ else if .n }}c{{ else }}d{{ end }}",
            p.clone()
        ),
        "c"
    );
    assert_eq!(
        go_ok("{{ with .n }}{{ . }}{{ else }}none{{ end }}", p.clone()),
        "2"
    );
    assert_eq!(
        go_ok("{{ with .s }}{{ . }}{{ else }}none{{ end }}", p.clone()),
        "none"
    );
    assert_eq!(
        go_ok("{{ with .f }}x{{ else with .n }}{{ . }}{{ end }}", p),
        "2"
    );
}

#[test]
fn range_over_lists_maps_and_ints() {
    let p = json!({"volumes": [{"name": "one"}, {"name": "two"}], "m": {"b": 2, "a": 1}, "e": []});
    assert_eq!(
        go_ok("{{ range .volumes }}[{{ .name }}]{{ end }}", p.clone()),
        "[one][two]"
    );
    assert_eq!(
        go_ok(
            "{{ range $i, $v := .volumes }}{{$i}}={{$v.name}};{{ end }}",
            p.clone()
        ),
        "0=one;1=two;"
    );
    assert_eq!(
        go_ok("{{ range $k, $v := .m }}{{$k}}:{{$v}} {{ end }}", p.clone()),
        "a:1 b:2 "
    );
    assert_eq!(
        go_ok("{{ range $v := .m }}{{$v}}{{ end }}", p.clone()),
        "12"
    );
    assert_eq!(
        go_ok("{{ range .e }}x{{ else }}empty{{ end }}", p.clone()),
        "empty"
    );
    assert_eq!(
        go_ok("{{ range .missing }}x{{ else }}empty{{ end }}", p.clone()),
        "empty"
    );
    assert_eq!(go_ok("{{ range 3 }}{{ . }}{{ end }}", p.clone()), "012");
    assert_eq!(
        go_ok(
            "{{ range $i, $v := .volumes }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $v.name }}{{ end }}",
            p.clone()
        ),
        "one"
    );
    assert_eq!(
        go_ok(
            "{{ range $i, $v := .volumes }}{{ if eq $i 0 }}{{ continue }}{{ end }}{{ $v.name }}{{ end }}",
            p.clone()
        ),
        "two"
    );
    // Variables declared in the body do not leak out of it.
    assert_err(
        "{{ range .volumes }}{{ $x := 1 }}{{ end }}{{ $x }}",
        p.clone(),
        r#"undefined variable "$x""#,
    );
    assert_err(
        "{{ range .volumes.x }}{{ end }}",
        p.clone(),
        "can't evaluate field x",
    );
    assert_err(
        "{{ range true }}{{ end }}",
        p,
        "range can't iterate over true",
    );
}

#[test]
fn variables_declare_assign_and_scope() {
    let p = json!({"clusters": [{"name": "b"}, {"name": "a"}]});
    assert_eq!(
        go_ok(
            r#"{{ $n := list }}{{ range .clusters }}{{ $n = append $n .name }}{{ end }}{{ $n | sortAlpha | join "," }}"#,
            p.clone()
        ),
        "a,b"
    );
    assert_eq!(
        go_ok(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            p.clone()
        ),
        "2"
    );
    assert_eq!(
        go_ok(
            "{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ end }}{{ $x }}",
            p.clone()
        ),
        "1"
    );
    assert_eq!(
        go_ok(
            "{{ $ := . }}{{ with .clusters }}{{ len $.clusters }}{{ end }}",
            p
        ),
        "2"
    );
}

#[test]
fn pipelines_parens_and_final_argument() {
    let p = json!({"s": "Hello", "n": 3});
    assert_eq!(go_ok("{{ .s | upper | lower }}", p.clone()), "hello");
    assert_eq!(
        go_ok(r#"{{ "abc" | printf "%s-%s" "x" }}"#, p.clone()),
        "x-abc"
    );
    assert_eq!(go_ok("{{ (len .s) }}", p.clone()), "5");
    assert_eq!(
        go_ok("{{ upper (printf \"%s!\" .s) }}", p.clone()),
        "HELLO!"
    );
    assert_err(
        "{{ .s 1 }}",
        p.clone(),
        "s is not a method but has arguments",
    );
    assert_err(
        "{{ 1 2 }}",
        p.clone(),
        "can't give argument to non-function 1",
    );
    assert_err("{{ nil }}", p, "nil is not a command");
}

#[test]
fn literals() {
    let p = json!({});
    assert_eq!(go_ok(r#"{{ "a\tb\u00e9" }}"#, json!({"x": 1})), "a\tbé");
    assert_eq!(go_ok("{{ `raw\\n` }}", json!({"x": 1})), "raw\\n");
    assert_eq!(go_ok("{{ 'a' }}", json!({"x": 1})), "97");
    assert_eq!(
        go_ok(
            "{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ -7 }}",
            json!({"x": 1})
        ),
        "31 15 5 1000 -7"
    );
    assert_eq!(
        go_ok("{{ true }} {{ false }}", json!({"x": 1})),
        "true false"
    );
    assert_eq!(go_ok("{{ print nil }}", json!({"x": 1})), "<nil>");
    assert!(go("{{ 99999999999999999999 }}", p).is_err());
}

#[test]
fn comparisons_follow_go_rules() {
    let p = json!({"n": 3, "s": "a", "l": [1]});
    assert_eq!(
        go_ok(
            "{{ eq .s \"a\" }} {{ eq .s \"b\" \"a\" }} {{ ne .s \"a\" }}",
            p.clone()
        ),
        "true true false"
    );
    assert_eq!(
        go_ok(
            "{{ eq .n 3.0 }} {{ lt .n 4.5 }} {{ ge 2 2 }} {{ gt \"b\" \"a\" }} {{ le 1 2 }}",
            p.clone()
        ),
        "true true true true true"
    );
    // float64 params never compare equal to int literals: Go reports incompatible types.
    assert_err(
        "{{ eq .n 3 }}",
        p.clone(),
        "error calling eq: incompatible types for comparison",
    );
    assert_eq!(go_ok("{{ eq .missing \"x\" }}", p.clone()), "false");
    assert_err(
        "{{ lt .missing 1 }}",
        p.clone(),
        "invalid type for comparison",
    );
    assert_err("{{ eq .l .l }}", p.clone(), "non-comparable type");
    assert_err("{{ eq 1 }}", p, "missing argument for comparison");
}

#[test]
fn and_or_not_short_circuit() {
    let p = json!({"a": "x", "e": ""});
    assert_eq!(
        go_ok(
            "{{ and .a .e }}|{{ and .a 1 }}|{{ or .e .a }}|{{ or .e 0 }}",
            p.clone()
        ),
        "|1|x|0"
    );
    assert_eq!(go_ok("{{ not .e }} {{ not .a }}", p.clone()), "true false");
    // The failing call is never evaluated.
    assert_eq!(go_ok("{{ or .a (fail \"boom\") }}", p.clone()), "x");
    assert_eq!(go_ok("{{ and .e (fail \"boom\") }}", p.clone()), "");
    assert_err(
        "{{ and }}",
        p,
        "wrong number of args for and: want at least 1 got 0",
    );
}

#[test]
fn index_len_and_builtin_errors() {
    let p =
        json!({"admin": {"admin-ca": "ca", "admin-jks": "jks"}, "l": ["a", ["b", "c"]], "n": 1});
    assert_eq!(
        go_ok(
            r#"{{ index .admin "admin-ca" }}, {{ index .admin "admin-jks" }}"#,
            p.clone()
        ),
        "ca, jks"
    );
    assert_eq!(go_ok("{{ index .l 1 0 }}", p.clone()), "b");
    assert_eq!(
        go_ok(r#"{{ index .admin "nope" }}"#, p.clone()),
        "<no value>"
    );
    assert_eq!(go_ok("{{ len .l }} {{ len .admin }}", p.clone()), "2 2");
    assert_err(
        "{{ index .l 5 }}",
        p.clone(),
        "error calling index: index out of range: 5",
    );
    assert_err(
        "{{ index .l .n }}",
        p.clone(),
        "cannot index slice/array with type float64",
    );
    assert_err("{{ index .missing 0 }}", p.clone(), "index of untyped nil");
    assert_err("{{ len .n }}", p.clone(), "len of type float64");
    assert_err(
        "{{ len 1 2 }}",
        p,
        "wrong number of args for len: want 1 got 2",
    );
}

#[test]
fn typed_parameters_reject_wrong_types_like_go() {
    let p = json!({"n": 3, "s": "abcdef"});
    assert_err(
        "{{ trunc .n .s }}",
        p.clone(),
        "wrong type for value; expected int; got float64",
    );
    assert_err(
        "{{ trunc (add 1 2) .s }}",
        p.clone(),
        "expected int; got int64",
    );
    assert_eq!(go_ok("{{ trunc (int .n) .s }}", p.clone()), "abc");
    assert_eq!(go_ok("{{ trunc 3.0 .s }}", p.clone()), "abc");
    assert_err(
        "{{ upper .missing }}",
        p.clone(),
        "invalid value; expected string",
    );
    assert_err("{{ upper .n }}", p.clone(), "expected string; got float64");
    assert_err("{{ upper 3 }}", p.clone(), "expected string; found 3");
    assert_err(
        "{{ repeat \"x\" .s }}",
        p.clone(),
        "expected integer; found \"x\"",
    );
    assert_err("{{ upper nil }}", p, "cannot assign nil to string");
}

#[test]
fn print_family_uses_go_fmt() {
    let p = json!({"m": {"b": 2, "a": "x"}, "l": ["a", 1, null], "f": 3.25});
    assert_eq!(go_ok("{{ .m }}", p.clone()), "map[a:x b:2]");
    assert_eq!(go_ok("{{ .l }}", p.clone()), "[a 1 <nil>]");
    assert_eq!(go_ok("{{ print 1 2 \"a\" 3 }}", p.clone()), "1 2a3");
    assert_eq!(go_ok("{{ println 1 \"a\" }}", p.clone()), "1 a\n");
    assert_eq!(
        go_ok(
            r#"{{ printf "%d|%5s|%-5s|%05.1f|%x|%q|%t|%v|%%" 42 "ab" "cd" .f 255 "q" true .l }}"#,
            p.clone()
        ),
        "42|   ab|cd   |003.2|ff|\"q\"|true|[a 1 <nil>]|%"
    );
    assert_eq!(
        go_ok(r#"{{ printf "%d" .f }}"#, p.clone()),
        "%!d(float64=3.25)"
    );
    assert_eq!(
        go_ok(r#"{{ printf "%s %s" "a" }}"#, p.clone()),
        "a %!s(MISSING)"
    );
    assert_eq!(
        go_ok(r#"{{ printf "%s" "a" "b" }}"#, p.clone()),
        "a%!(EXTRA string=b)"
    );
    assert_eq!(
        go_ok(r#"{{ printf "%v %T %T" .missing .f .l }}"#, p.clone()),
        "<nil> float64 []interface {}"
    );
    assert_eq!(
        go_ok(
            r#"{{ printf "%.2f %e %g %.3g %+d %x %X %o %b %c" 3.14159 1234.5 0.000012 1234.5678 5 "hi" 3054 8 5 65 }}"#,
            p
        ),
        "3.14 1.234500e+03 1.2e-05 1.23e+03 +5 6869 BEE 10 101 A"
    );
}

#[test]
fn html_js_urlquery() {
    let p = json!({"x": 1});
    assert_eq!(
        go_ok(r#"{{ html "<a href='x'>&</a>" }}"#, p.clone()),
        "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
    );
    assert_eq!(
        go_ok(r#"{{ js "it's <b>" }}"#, p.clone()),
        "it\\'s \\u003Cb\\u003E"
    );
    assert_eq!(go_ok("{{ js \"a\u{2028}é\" }}", p.clone()), "a\\u2028é");
    assert_eq!(
        go_ok(r#"{{ urlquery "a b&c=d/é" }}"#, p.clone()),
        "a+b%26c%3Dd%2F%C3%A9"
    );
    assert_eq!(go_ok("{{ html .missing }}", p), "&lt;no value&gt;");
}

#[test]
fn define_template_and_block() {
    let p = json!({"name": "world", "items": [1, 2]});
    assert_eq!(
        go_ok(
            r#"{{ define "hi" }}hello {{ . }}{{ end }}{{ template "hi" .name }}!"#,
            p.clone()
        ),
        "hello world!"
    );
    assert_eq!(
        go_ok(r#"{{ block "b" .items }}{{ len . }}{{ end }}"#, p.clone()),
        "2"
    );
    assert_eq!(
        go_ok(
            r#"{{ define "t" }}{{ $ }}{{ end }}{{ template "t" "x" }}"#,
            p.clone()
        ),
        "x"
    );
    assert_err(
        r#"{{ template "nope" }}"#,
        p.clone(),
        r#"template "nope" not defined"#,
    );
    // Runaway recursion is an error, not a stack overflow.
    assert_err(
        r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#,
        p,
        "exceeded maximum template depth",
    );
}

#[test]
fn error_context_is_truncated_like_go() {
    let err = go_err(r#"{{ fail "boom" }}"#, json!({"x": 1}));
    assert!(
        err.ends_with(r#"template: :1:3: executing "" at <fail "boom">: error calling fail: boom"#),
        "{err}"
    );
    let long = go_err(r"{{ range $i, $element := 5.5 }}{{ end }}", json!({"x": 1}));
    assert!(
        long.contains("at <{{range $i, $element...>: range can't iterate over 5.5"),
        "{long}"
    );
}

#[test]
fn guards_against_runaway_templates() {
    let p = json!({"x": 1});
    assert_err(
        r#"{{ repeat 100000000 "abcdefghij" }}"#,
        p.clone(),
        "exceed",
    );
    assert_err("{{ until 100000000 }}", p.clone(), "exceeds");
    assert_err(
        r"{{ range 100000 }}{{ range 100000 }}{{ end }}{{ end }}",
        p.clone(),
        "work budget",
    );
    assert_err(
        r"{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}",
        p.clone(),
        "memory budget",
    );
    assert_err(r#"{{ printf "%100000000d" 1 }}"#, p.clone(), "exceeds");
    assert_err(r#"{{ indent 100000000 "x" }}"#, p.clone(), "exceed");
    let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    assert_err(&format!("{{{{ {deep} }}}}"), p.clone(), "nesting");
    assert_err(
        r#"{{ $l := list }}{{ range until 100 }}{{ $l = append $l (repeat 5000000 "x") }}{{ end }}"#,
        p.clone(),
        "memory budget",
    );
    assert_err(
        r#"{{ $s := repeat 5000000 "x" }}{{ $l := list }}{{ range until 100 }}{{ $l = append $l $s }}{{ end }}{{ join "" $l }}"#,
        p.clone(),
        "memory budget",
    );
    let mut s = String::from("{{ $s := \"xxxxxxxxxxxxxxxx\" }}");
    for _ in 0..30 {
        s.push_str("{{ $s = cat $s $s }}");
    }
    assert_err(&s, p, "exceed");
}

#[test]
fn nesting_just_below_the_limits_works() {
    let p = json!({"x": 1});
    let parens = format!("{}1{}", "(".repeat(95), ")".repeat(95));
    assert_eq!(go_ok(&format!("{{{{ {parens} }}}}"), p.clone()), "1");
    let ifs = format!("{}x{}", "{{ if true }}".repeat(95), "{{ end }}".repeat(95));
    assert_eq!(go_ok(&ifs, p), "x");
}

#[test]
fn zero_option_uses_the_element_type() {
    let src = r#"{{ $m := split "," "a" }}[{{ $m._0 }}][{{ $m._5 }}]"#;
    let zero = render_string(src, &params(json!({"x": 1})), &go_mode(MissingKey::Zero));
    assert_eq!(zero.as_deref(), Ok("[a][]"));
    assert_eq!(go_ok(src, json!({"x": 1})), "[a][<no value>]");
}

#[test]
fn compiled_templates_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<StringTemplate>();
    assert_send_sync::<crate::ValueTemplate>();
}

#[test]
fn compiled_templates_render_repeatedly() {
    let t = StringTemplate::compile("{{ .name }}-{{ len .name }}", &go_mode(MissingKey::Default))
        .unwrap();
    assert_eq!(t.render(&params(json!({"name": "ab"}))).unwrap(), "ab-2");
    assert_eq!(t.render(&params(json!({"name": "abc"}))).unwrap(), "abc-3");
}

#[test]
fn mode_from_spec_options() {
    assert_eq!(
        Mode::from_spec(false, &["bogus".to_string()]),
        Ok(Mode::Fast)
    );
    assert_eq!(Mode::from_spec(true, &[]), Ok(go_mode(MissingKey::Default)));
    assert_eq!(
        Mode::from_spec(true, &["missingkey=error".to_string()]),
        Ok(go_mode(MissingKey::Error))
    );
    assert_eq!(
        Mode::from_spec(true, &["missingkey=zero".to_string()]),
        Ok(go_mode(MissingKey::Zero))
    );
    assert_eq!(
        Mode::from_spec(true, &["missingkey=invalid".to_string()]),
        Ok(go_mode(MissingKey::Default))
    );
    assert_eq!(
        Mode::from_spec(true, &["missingkey=nope".to_string()])
            .unwrap_err()
            .to_string(),
        "unrecognized option: missingkey=nope"
    );
    assert_eq!(
        Mode::from_spec(true, &[String::new()])
            .unwrap_err()
            .to_string(),
        "empty option string"
    );
}

#[test]
fn arbitrary_input_never_panics() {
    let p = json!({"a": {"b": [1, "x", null, {"c": true}]}, "s": "str"});
    let pieces = [
        "{{", "}}", "{{-", "-}}", "(", ")", "|", ".a", ".b", "$", "$x", ":=", "=", " ", "\"s\"",
        "`r`", "'c'", "1", "-1.5e3", "nil", "if", "else", "end", "range", "with", "define",
        "template", "block", "break", "index", "len", "printf", "\"%d\"", ",", "/*", "*/", "\n",
        "é", "dict", "toYaml", "fromYaml", "slice", "add", "0x", "'", "\"", "\\",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut src = String::new();
        for _ in 0..12 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            src.push_str(pieces[usize::try_from(seed % pieces.len() as u64).unwrap()]);
        }
        // Any result is fine; a panic fails the test.
        let _ = go(&src, p.clone());
        let _ = render_string(&src, &params(p.clone()), &Mode::Fast);
    }
}
