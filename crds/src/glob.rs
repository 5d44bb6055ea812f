//! The two glob dialects Argo CD's project rules use, matched exactly as Argo CD does.
//!
//! - [`Glob::gobwas`]: `github.com/gobwas/glob`, used for `sourceRepos` (with `/` as
//!   separator), `destinations` and `sourceNamespaces` (no separator): `*` any run of
//!   non-separator characters, `**` any run of characters, `?` one non-separator character,
//!   `[abc]`/`[a-z]`/`[!abc]` classes, `{a,b}` alternatives (nestable), `\` escapes.
//! - [`Glob::filepath`]: Go's `path/filepath.Match`, used for the `group`, `kind` and
//!   `name` of resource white/blacklists: `*` any run of non-`/` characters, `?`, classes
//!   negated with `^`, `\` escapes; no alternatives (`{` is literal). A malformed pattern
//!   matches nothing, as Go's `Match` returns an error and Argo CD treats it as no match.
//!
//! Why not `globset`: its `**` follows gitignore (`a/**/b` matches `a/b`, `a**b` is `a*b`),
//! so `sourceRepos: ["https://git.example/team/**"]` and friends would permit other URLs
//! than Argo CD permits. A permission check must not be more generous than the original,
//! so each dialect is translated to an anchored regular expression (the `regex` crate
//! matches it, in linear time whatever the input).

use regex::Regex;

/// A compiled pattern; one that failed to compile matches nothing.
#[derive(Clone, Debug)]
pub struct Glob {
    regex: Option<Regex>,
}

impl Glob {
    /// A gobwas glob; `separator` is the character `*` and `?` do not cross (`None`: none).
    #[must_use]
    pub fn gobwas(pattern: &str, separator: Option<char>) -> Glob {
        Glob {
            regex: gobwas_regex(pattern, separator).and_then(|r| Regex::new(&r).ok()),
        }
    }

    /// A Go `filepath.Match` pattern.
    #[must_use]
    pub fn filepath(pattern: &str) -> Glob {
        Glob {
            regex: filepath_regex(pattern).and_then(|r| Regex::new(&r).ok()),
        }
    }

    /// Whether `text` matches the whole pattern.
    #[must_use]
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(text))
    }
}

/// `[^/]` or `.` for one character that may not be a separator.
fn not_separator(separator: Option<char>) -> String {
    match separator {
        Some(c) => format!("[^{}]", regex::escape(&c.to_string())),
        None => "(?s:.)".to_owned(),
    }
}

fn gobwas_regex(pattern: &str, separator: Option<char>) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from("^(?:");
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push_str("(?s:.*)");
                i += 1;
            }
            '*' => {
                out.push_str(&not_separator(separator));
                out.push('*');
            }
            '?' => out.push_str(&not_separator(separator)),
            '[' => i = class(&chars, i, '!', &mut out)?,
            '{' => {
                depth += 1;
                out.push_str("(?:");
            }
            ',' if depth > 0 => out.push('|'),
            '}' if depth > 0 => {
                depth -= 1;
                out.push(')');
            }
            '\\' => {
                i += 1;
                out.push_str(&regex::escape(&chars.get(i)?.to_string()));
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    if depth > 0 {
        return None;
    }
    out.push_str(")$");
    Some(out)
}

fn filepath_regex(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from("^(?:");
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => i = class(&chars, i, '^', &mut out)?,
            '\\' => {
                i += 1;
                out.push_str(&regex::escape(&chars.get(i)?.to_string()));
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    out.push_str(")$");
    Some(out)
}

/// Translates the character class starting at `chars[start] == '['`; returns the index of
/// its closing `]`, or `None` when it is malformed (unclosed or empty).
fn class(chars: &[char], start: usize, negation: char, out: &mut String) -> Option<usize> {
    let mut i = start + 1;
    let negated = chars.get(i) == Some(&negation);
    if negated {
        i += 1;
    }
    let mut body = String::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            break;
        }
        first = false;
        let literal = |c: char| regex::escape(&c.to_string());
        let (lo, next) = if c == '\\' {
            (*chars.get(i + 1)?, i + 2)
        } else {
            (c, i + 1)
        };
        if chars.get(next) == Some(&'-') && chars.get(next + 1).is_some_and(|&c| c != ']') {
            let (hi, after) = if chars[next + 1] == '\\' {
                (*chars.get(next + 2)?, next + 3)
            } else {
                (chars[next + 1], next + 2)
            };
            if hi < lo {
                return None;
            }
            body.push_str(&literal(lo));
            body.push('-');
            body.push_str(&literal(hi));
            i = after;
        } else {
            body.push_str(&literal(lo));
            i = next;
        }
    }
    out.push('[');
    if negated {
        out.push('^');
    }
    out.push_str(&body);
    out.push(']');
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gob(p: &str, sep: Option<char>, text: &str) -> bool {
        Glob::gobwas(p, sep).is_match(text)
    }

    #[test]
    fn gobwas_star_stops_at_the_separator_and_double_star_does_not() {
        let slash = Some('/');
        assert!(gob(
            "https://git.example/team/*",
            slash,
            "https://git.example/team/app"
        ));
        assert!(!gob(
            "https://git.example/team/*",
            slash,
            "https://git.example/team/a/b"
        ));
        assert!(gob(
            "https://git.example/team/**",
            slash,
            "https://git.example/team/a/b"
        ));
        // Unlike gitignore globs: `**` does not match an empty directory level.
        assert!(!gob("a/**/b", slash, "a/b"));
        assert!(gob("a**b", slash, "a/x/b"));
        // Without a separator `*` crosses everything.
        assert!(gob("*", None, "a/b"));
        assert!(gob("team-*", None, "team-a"));
        assert!(!gob("team-*", None, "teamb"));
    }

    #[test]
    fn gobwas_classes_alternatives_and_escapes() {
        assert!(gob("{dev,prod}-*", None, "prod-eu"));
        assert!(!gob("{dev,prod}-*", None, "qa-eu"));
        assert!(gob("{a,{b,c}}x", None, "cx"));
        assert!(gob("[!a]x", None, "bx"));
        assert!(!gob("[!a]x", None, "ax"));
        assert!(gob("[a-c]", None, "b"));
        assert!(gob(r"\*", None, "*"));
        assert!(!gob(r"\*", None, "a"));
        // Regex metacharacters are literal.
        assert!(gob("a.b", None, "a.b"));
        assert!(!gob("a.b", None, "axb"));
        assert!(!gob("(a|b)", None, "a"));
    }

    #[test]
    fn malformed_patterns_match_nothing() {
        assert!(!gob("{a,b", None, "a"));
        assert!(!gob("[abc", None, "a"));
        assert!(!Glob::filepath("[z-a]").is_match("b"));
        assert!(!Glob::filepath("abc\\").is_match("abc"));
    }

    #[test]
    fn filepath_match_as_go() {
        assert!(Glob::filepath("*").is_match("ClusterRoleBinding"));
        assert!(Glob::filepath("").is_match(""));
        assert!(!Glob::filepath("").is_match("apps"));
        assert!(Glob::filepath("*.k8s.io").is_match("rbac.authorization.k8s.io"));
        assert!(!Glob::filepath("*").is_match("a/b"));
        assert!(Glob::filepath("[^C]*").is_match("Role"));
        assert!(!Glob::filepath("[^C]*").is_match("ClusterRole"));
        // `{` is literal in Go's filepath.Match.
        assert!(!Glob::filepath("{Role,ClusterRole}").is_match("Role"));
        assert!(Glob::filepath("Cluster?ole").is_match("ClusterRole"));
    }
}
