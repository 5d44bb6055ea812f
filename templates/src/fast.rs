//! fasttemplate mode (spec §2.2): Argo's `Render.Replace` with `useGoTemplate == false`.
//!
//! * A string is only processed when it matches `.*{{.*}}.*` (a `{{` and a later `}}` on one
//!   line); anything else is returned unchanged, even an unterminated `{{` on its own line.
//! * It is split like `valyala/fasttemplate` does: text up to `{{`, a tag up to the next `}}`.
//!   A `{{` without a following `}}` is an error.
//! * A tag is `TrimSpace`d and looked up as a flat key; only string values substitute. A blank
//!   tag, a missing key or a non-string value writes the literal `{{tag}}` back.
//! * Substituted values are not rendered again, so output is linear in template and parameter
//!   size and needs no cap.

use crate::error::TemplateError;
use crate::go::strconv::quote;
use crate::params::Params;

const START: &str = "{{";
const END: &str = "}}";

#[derive(Debug)]
pub(crate) struct FastTemplate {
    parts: Vec<Part>,
    /// Bytes of literal text, to size the output buffer.
    text_len: usize,
}

#[derive(Debug)]
enum Part {
    Text(Box<str>),
    /// `raw` is the text between the delimiters, `key` its trimmed form (empty = never matches).
    Tag {
        raw: Box<str>,
        key: Box<str>,
    },
}

/// Argo's `isTemplatedRegex` (`.*{{.*}}.*`; `.` does not match a newline).
fn is_templated(s: &str) -> bool {
    s.split('\n').any(|line| {
        line.find(START)
            .is_some_and(|i| line[i + START.len()..].contains(END))
    })
}

impl FastTemplate {
    /// `Ok(None)` when the string is not templated at all (it renders to itself).
    pub(crate) fn compile(src: &str) -> Result<Option<Self>, TemplateError> {
        if !is_templated(src) {
            return Ok(None);
        }
        let mut parts = Vec::new();
        let mut text_len = 0;
        let mut rest = src;
        while let Some(n) = rest.find(START) {
            if n > 0 {
                parts.push(Part::Text(rest[..n].into()));
                text_len += n;
            }
            rest = &rest[n + START.len()..];
            let Some(m) = rest.find(END) else {
                return Err(TemplateError::Invalid(format!(
                    "Cannot find end tag={} in the template={} starting from {}",
                    quote(END),
                    quote(src),
                    quote(rest)
                )));
            };
            let raw = &rest[..m];
            parts.push(Part::Tag {
                raw: raw.into(),
                key: raw.trim().into(),
            });
            rest = &rest[m + END.len()..];
        }
        if !rest.is_empty() {
            text_len += rest.len();
            parts.push(Part::Text(rest.into()));
        }
        Ok(Some(FastTemplate { parts, text_len }))
    }

    pub(crate) fn render(&self, params: &Params) -> String {
        let mut out = String::with_capacity(self.text_len + 32);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Tag { raw, key } => match params.get(&**key) {
                    Some(serde_json::Value::String(v)) if !key.is_empty() => out.push_str(v),
                    _ => {
                        out.push_str(START);
                        out.push_str(raw);
                        out.push_str(END);
                    }
                },
            }
        }
        out
    }
}
