//! fasttemplate mode (spec §2.2).

use serde_json::json;

use super::*;

fn fast(src: &str, p: Json) -> Result<String, TemplateError> {
    render_string(src, &params(p), &Mode::Fast)
}

#[test]
fn substitutes_trimmed_flat_string_keys() {
    let p = json!({"one": "two", "three": "four", "path[0]": "p1", "values.foo": "bar"});
    assert_eq!(fast("{{one}}", p.clone()).unwrap(), "two");
    assert_eq!(fast("{{ one }}", p.clone()).unwrap(), "two");
    assert_eq!(fast("{{one}}{{three}}", p.clone()).unwrap(), "twofour");
    assert_eq!(
        fast("a-{{path[0]}}-{{values.foo}}", p.clone()).unwrap(),
        "a-p1-bar"
    );
    assert_eq!(fast("{{ONE}}", p).unwrap(), "{{ONE}}");
}

#[test]
fn missing_non_string_and_blank_tags_stay_verbatim() {
    let p = json!({"n": 3, "b": true, " ": "space", "": "empty", "s": "x"});
    assert_eq!(
        fast("{{n}}-{{b}}-{{ nope }}", p.clone()).unwrap(),
        "{{n}}-{{b}}-{{ nope }}"
    );
    assert_eq!(fast("{{ }}", p.clone()).unwrap(), "{{ }}");
    assert_eq!(fast("{{}}", p).unwrap(), "{{}}");
}

#[test]
fn values_are_not_rendered_again() {
    let p = json!({"one": "{{ }}", "two": "{{three}}", "three": "x", "quote": "\"hello\" world"});
    assert_eq!(fast("{{one}}", p.clone()).unwrap(), "{{ }}");
    assert_eq!(fast("{{two}}", p.clone()).unwrap(), "{{three}}");
    assert_eq!(fast("{{quote}} {{three}}", p).unwrap(), "\"hello\" world x");
}

#[test]
fn only_strings_with_braces_on_one_line_are_processed() {
    let p = json!({"a": "A"});
    assert_eq!(fast("}} {{", p.clone()).unwrap(), "}} {{");
    // `{{` and `}}` on different lines: not a template, even though fasttemplate would match it.
    assert_eq!(fast("{{a\n}}", p.clone()).unwrap(), "{{a\n}}");
    // The tag runs from the first `{{` to the next `}}`, across the newline.
    assert_eq!(fast("{{\n{{a}}", p.clone()).unwrap(), "{{\n{{a}}");
    assert_eq!(fast("plain", p).unwrap(), "plain");
}

#[test]
fn unterminated_tag_is_an_error() {
    let err = fast(
        "{{properly.closed}} {{improperly.closed}",
        json!({"properly": "x"}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid template: Cannot find end tag="}}" in the template="{{properly.closed}} {{improperly.closed}" starting from "improperly.closed}""#
    );
}
