//! Crate-level tests: the public API, Go template semantics, rendering of JSON documents,
//! templatePatch, and cases derived from the conformance suite. Function-library tests live in
//! `funcs/tests.rs`.

mod conformance;
mod engine;
mod fast;
mod patch;
mod render;

use serde_json::Value as Json;

use crate::{GoOptions, MissingKey, Mode, Params, TemplateError, render_string};

/// A parameter set from a JSON object literal.
pub(crate) fn params(v: Json) -> Params {
    match v {
        Json::Object(m) => m,
        other => panic!("params must be an object, got {other}"),
    }
}

pub(crate) fn go_mode(missing_key: MissingKey) -> Mode {
    Mode::Go(GoOptions {
        missing_key,
        ..GoOptions::default()
    })
}

/// Renders `src` in Go mode with `missingkey=default`.
pub(crate) fn go(src: &str, p: Json) -> Result<String, TemplateError> {
    render_string(src, &params(p), &go_mode(MissingKey::Default))
}

pub(crate) fn go_ok(src: &str, p: Json) -> String {
    match go(src, p) {
        Ok(s) => s,
        Err(e) => panic!("{src}: unexpected error: {e}"),
    }
}

pub(crate) fn go_err(src: &str, p: Json) -> String {
    match go(src, p) {
        Ok(s) => panic!("{src}: expected an error, rendered {s:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that rendering fails with a message containing `needle`.
pub(crate) fn assert_err(src: &str, p: Json, needle: &str) {
    let msg = go_err(src, p);
    assert!(
        msg.contains(needle),
        "{src}: error {msg:?} does not contain {needle:?}"
    );
}
