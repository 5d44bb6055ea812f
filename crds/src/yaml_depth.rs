//! A guard run before every YAML parse of untrusted text (manifests from Git, generator
//! files and `elementsYaml`, template output, CLI inputs).
//!
//! Why: `serde_yaml_ng` (libyaml's scanner) is quadratic in the nesting depth of flow
//! collections and scans a whole document before its own recursion limit (128) applies:
//! 32,000 unclosed `[` take 1.9 s, 32,000 `{{ ` 5.3 s, so one 10 MiB manifest in a tenant's
//! repository would hold a render thread for tens of minutes (found by `scripts/fuzz.sh`).
//! A document nested deeper than that limit fails to parse anyway, so refusing it first
//! loses nothing the parser would have accepted.
//!
//! The scan is linear and deliberately simple: brackets inside quotes on the same line and
//! in comments do not count; quote state ends with the line (a quote opened in a plain
//! scalar such as `it's` cannot hide the brackets of the following lines). Brackets inside
//! block scalars do count: a false refusal needs more than [`MAX_FLOW_DEPTH`] unclosed `[`
//! or `{` in a document's text, which no real manifest has.

/// The deepest flow-collection nesting accepted: the parser's own recursion limit.
pub const MAX_FLOW_DEPTH: usize = 128;

/// The text nests flow collections deeper than the parser accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "YAML nests flow collections ('[' or '{{') deeper than {MAX_FLOW_DEPTH} levels (line {line})"
)]
pub struct TooDeep {
    /// The 1-based line where the limit was passed.
    pub line: usize,
}

/// Refuses `text` when its flow collections nest deeper than [`MAX_FLOW_DEPTH`].
pub fn check(text: &str) -> Result<(), TooDeep> {
    check_bytes(text.as_bytes())
}

/// [`check`] for bytes (manifests are read as bytes; only ASCII matters to the scan).
pub fn check_bytes(text: &[u8]) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let mut quote: Option<u8> = None;
        let mut previous = b' ';
        let mut bytes = line.iter().copied().peekable();
        while let Some(b) = bytes.next() {
            match (quote, b) {
                (Some(b'"'), b'\\') => {
                    bytes.next();
                }
                (Some(q), b) if b == q => quote = None,
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b'#') if previous == b' ' || previous == b'\t' => break,
                (None, b'[' | b'{') => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Err(TooDeep { line: index + 1 });
                    }
                }
                (None, b']' | b'}') => depth = depth.saturating_sub(1),
                // Inside quotes, and every other byte outside them.
                _ => {}
            }
            previous = b;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_documents_pass() {
        let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: {a: b}}\ndata:\n  list: '[[[['\n  note: \"{{{\" # [[[[\n  script: |\n    if [[ -f x ]]; then echo ok; fi\n";
        assert_eq!(check(manifest), Ok(()));
        let nested = format!(
            "{}{}",
            "[".repeat(MAX_FLOW_DEPTH),
            "]".repeat(MAX_FLOW_DEPTH)
        );
        assert_eq!(check(&nested), Ok(()));
        // Balanced nesting repeated many times never accumulates.
        assert_eq!(check(&"[[[]]]\n".repeat(10_000)), Ok(()));
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_parsing() {
        let deep = "[".repeat(32_000);
        assert_eq!(check(&deep), Err(TooDeep { line: 1 }));
        assert!(check(&"{ ".repeat(200)).is_err());
        // Spread over lines, and after an apostrophe that opens no quote for the next line.
        let text = format!("a: it's\n{}", "[\n".repeat(200));
        assert_eq!(check(&text), Err(TooDeep { line: 130 }));
        // The parser itself refuses the same depth, so nothing it accepts is lost.
        let too_deep = format!(
            "{}{}",
            "[".repeat(MAX_FLOW_DEPTH + 1),
            "]".repeat(MAX_FLOW_DEPTH + 1)
        );
        assert!(check(&too_deep).is_err());
        assert!(serde_yaml_ng::from_str::<serde_json::Value>(&too_deep).is_err());
    }
}
