//! Property tests of the template engines (issue #15 item 9): goTemplate and fasttemplate
//! never panic on any template text, whether random or built from real template pieces, and
//! text without actions renders as itself. 256 cases each; `scripts/fuzz.sh` runs the long
//! loop.

use argosy_templates::{GoOptions, MissingKey, Mode, Params, apply_template_patch, render_string};
use proptest::prelude::*;
use serde_json::{Value, json};

fn params() -> Params {
    match json!({
        "name": "prod", "n": 3, "f": 1.5, "list": [1, "a", null],
        "metadata": {"labels": {"customer": "acme"}},
        "path": {"basename": "web", "segments": ["apps", "web"]},
    }) {
        Value::Object(map) => map,
        _ => Params::default(),
    }
}

fn modes() -> [Mode; 3] {
    [
        Mode::Fast,
        Mode::Go(GoOptions::default()),
        Mode::Go(GoOptions {
            missing_key: MissingKey::Error,
            ..GoOptions::default()
        }),
    ]
}

/// Template text made of pieces of real templates, delimiters and metacharacters.
fn template_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        ".",
        ".name",
        ".metadata.labels.customer",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "\"",
        "`",
        "'",
        "range",
        "if",
        "else",
        "end",
        "with",
        "define",
        "template",
        "block",
        "break",
        "continue",
        "nil",
        "true",
        "index",
        "printf",
        "\"%v\"",
        "\"%d\"",
        "upper",
        "default",
        "toYaml",
        "fromYaml",
        "len",
        "add",
        "div",
        "0",
        "1",
        "-1",
        "1e300",
        "9223372036854775808",
        "0x",
        "'a'",
        "/*",
        "*/",
        "\n",
        ",",
        "name",
        "list",
        "dict",
        "until",
        "3",
        "semverCompare",
        "regexMatch",
        "\"(a\"",
    ]);
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn any_text_never_panics(text in "\\PC{0,64}") {
        for mode in modes() {
            let _ = render_string(&text, &params(), &mode);
        }
    }

    #[test]
    fn template_pieces_never_panic(text in template_text()) {
        for mode in modes() {
            let _ = render_string(&text, &params(), &mode);
        }
    }

    #[test]
    fn text_without_actions_renders_as_itself(text in "[^{]{0,64}") {
        for mode in modes() {
            prop_assert_eq!(render_string(&text, &params(), &mode).expect("plain text"), text.clone());
        }
    }

    #[test]
    fn fasttemplate_substitutes_string_parameters(key in "[a-z]{1,8}", value in "[^{}]{0,16}", pad in " {0,2}") {
        let mut p = Params::new();
        p.insert(key.clone(), Value::String(value.clone()));
        let out = render_string(&format!("<{{{{{pad}{key}{pad}}}}}>"), &p, &Mode::Fast).expect("renders");
        prop_assert_eq!(out, format!("<{value}>"));
    }

    #[test]
    fn template_patches_never_panic(text in template_text(), yaml in "\\PC{0,64}") {
        let app = json!({"metadata": {"name": "a"}, "spec": {"project": "default"}});
        for mode in modes() {
            let _ = apply_template_patch(&app, &text, &params(), &mode);
            let _ = apply_template_patch(&app, &yaml, &params(), &mode);
        }
    }
}
