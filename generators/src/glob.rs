//! The two path pattern languages of the Git generator.
//!
//! * Directories use Go's `path.Match`: `*` and `?` never match `/`, `[...]` classes
//!   (negated with `^`) with ranges, `\` escapes. A malformed pattern is an error (Argo CD
//!   logs it and treats it as "no match"; Argosy refuses it, see `git.rs`).
//! * Files use Git pathspecs as `git ls-files -- <pattern>` applies them by default: a
//!   pattern without wildcards matches the path itself or anything below it; with
//!   wildcards it is `fnmatch` without `FNM_PATHNAME`, so `*` (and `**`) also match `/`.

/// A `path.Match` pattern that is not well formed (Go's `ErrBadPattern`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern")]
pub struct BadPattern;

/// Go's `path.Match(pattern, name)`.
pub fn go_path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let mut pat: &[char] = &pattern;
    let mut name: &[char] = &name;
    'outer: while !pat.is_empty() {
        let (star, chunk, rest) = scan_chunk(pat);
        pat = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest of the name unless it has a `/`.
            return Ok(!name.contains(&'/'));
        }
        // Match the chunk at the current position.
        match match_chunk(chunk, name) {
            Ok(Some(t)) if t.is_empty() || !pat.is_empty() => {
                name = t;
                continue;
            }
            Err(e) => return Err(e),
            _ => {}
        }
        if star {
            // Retry after skipping 1..n characters, never skipping a `/`.
            let mut i = 0;
            while i < name.len() && name[i] != '/' {
                match match_chunk(chunk, &name[i + 1..]) {
                    Ok(Some(t)) => {
                        if pat.is_empty() && !t.is_empty() {
                            i += 1;
                            continue;
                        }
                        name = t;
                        continue 'outer;
                    }
                    Err(e) => return Err(e),
                    Ok(None) => {}
                }
                i += 1;
            }
        }
        // No match: report a syntax error in the rest of the pattern, if any.
        while !pat.is_empty() {
            let (_, chunk, rest) = scan_chunk(pat);
            pat = rest;
            match_chunk(chunk, &[])?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the chunk up to the next unbracketed, unescaped `*`.
fn scan_chunk(pattern: &[char]) -> (bool, &[char], &[char]) {
    let mut star = false;
    let mut p = pattern;
    while let Some(('*', rest)) = p.split_first() {
        star = true;
        p = rest;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            // Skip an escaped character (a missing one is reported later).
            '\\' if i + 1 < p.len() => i += 1,
            '[' => in_range = true,
            ']' => in_range = false,
            '*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &p[..i], &p[i..])
}

/// Matches `chunk` (no `*`) against the start of `s`; returns the rest of `s`. The whole
/// chunk is parsed even after a mismatch, so that syntax errors are always reported.
fn match_chunk<'a>(chunk: &[char], s: &'a [char]) -> Result<Option<&'a [char]>, BadPattern> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some((&c, rest)) = chunk.split_first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            '[' => {
                let r = if failed {
                    None
                } else {
                    let r = s[0];
                    s = &s[1..];
                    Some(r)
                };
                chunk = rest;
                let negated = chunk.first() == Some(&'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if r.is_some_and(|r| lo <= r && r <= hi) {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    if s[0] == '/' {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = rest;
            }
            '\\' => {
                let Some((&escaped, rest)) = rest.split_first() else {
                    return Err(BadPattern);
                };
                if !failed {
                    if escaped != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = rest;
            }
            _ => {
                if !failed {
                    if c != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = rest;
            }
        }
    }
    Ok((!failed).then_some(s))
}

/// One (possibly escaped) character of a class; `-`, `]` and end of pattern are errors.
fn get_esc(chunk: &[char]) -> Result<(char, &[char]), BadPattern> {
    let (&c, mut rest) = chunk.split_first().ok_or(BadPattern)?;
    if c == '-' || c == ']' {
        return Err(BadPattern);
    }
    let mut c = c;
    if c == '\\' {
        let (&e, r) = rest.split_first().ok_or(BadPattern)?;
        c = e;
        rest = r;
    }
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((c, rest))
}

/// Whether `path` (a tracked file) is selected by the Git pathspec `pattern`.
#[must_use]
pub fn pathspec_match(pattern: &str, path: &str) -> bool {
    let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
    if pattern.is_empty() {
        return true;
    }
    // Literal (and leading-directory) match, as Git tries before wildcards.
    if let Some(rest) = path.strip_prefix(pattern)
        && (rest.is_empty() || pattern.ends_with('/') || rest.starts_with('/'))
    {
        return true;
    }
    pattern.contains(['*', '?', '[', '\\']) && wildmatch(pattern, path)
}

#[derive(Debug)]
enum Token {
    Char(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// `fnmatch` without `FNM_PATHNAME` (Git's `wildmatch` without `WM_PATHNAME`).
/// An unterminated `[` makes the pattern match nothing, as in Git.
fn wildmatch(pattern: &str, text: &str) -> bool {
    let Some(tokens) = tokenize(pattern) else {
        return false;
    };
    let text: Vec<char> = text.chars().collect();
    let one = |t: &Token, c: char| match t {
        Token::Char(x) => *x == c,
        Token::Any => true,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
        }
        Token::Star => false,
    };
    // Classic backtracking over the last star: linear in practice.
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Star) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(tok) if one(tok, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    backtrack = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|t| matches!(t, Token::Star))
}

fn tokenize(pattern: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Any),
            '\\' => {
                i += 1;
                tokens.push(Token::Char(*chars.get(i)?));
            }
            '[' => {
                i += 1;
                let negated = matches!(chars.get(i), Some('!' | '^'));
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let mut c = *chars.get(i)?;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    if c == '\\' {
                        i += 1;
                        c = *chars.get(i)?;
                    }
                    if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|n| *n != ']')
                    {
                        let mut hi = *chars.get(i + 2)?;
                        i += 2;
                        if hi == '\\' {
                            i += 1;
                            hi = *chars.get(i)?;
                        }
                        ranges.push((c, hi));
                    } else {
                        ranges.push((c, c));
                    }
                    i += 1;
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    Some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match() {
        for (p, n, want) in [
            ("*", "abc", true),
            ("*", "a/b", false),
            ("*/*", "a/b", true),
            ("*guestbook*", "helm-guestbook", true),
            ("*guestbook*", "plugins/kasane/guestbook", false),
            ("p1/*", "p1/app2", true),
            ("p1/*", "p1/app2/x", false),
            ("d/[fg]", "d/f", true),
            ("d/[fg]", "d/e", false),
            ("d/[^fg]", "d/e", true),
            ("d/[a-c]x", "d/bx", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("app*", "app_3", true),
            ("app*", "p1/app4", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b", "ab/b", false),
            ("/apps/*", "apps/x", false),
        ] {
            assert_eq!(go_path_match(p, n), Ok(want), "{p} {n}");
        }
        for bad in ["[", "a[", "[]", "a\\", "[a-]", "[^]"] {
            assert_eq!(go_path_match(bad, "a"), Err(BadPattern), "{bad}");
        }
        // An error later in the pattern is reported even when an earlier chunk fails.
        assert_eq!(go_path_match("x*[", "abc"), Err(BadPattern));
    }

    #[test]
    fn pathspec() {
        for (p, n, want) in [
            (
                "**/config.yaml",
                "cluster-config/production/config.yaml",
                true,
            ),
            ("**/config.yaml", "config.yaml", false),
            ("apps/*.json", "apps/app-one.json", true),
            ("apps/*.json", "apps/sub/x.json", true),
            ("config/*.json", "config/numbers.json", true),
            ("global.values.yaml", "global.values.yaml", true),
            ("global.values.yaml", "x/global.values.yaml", false),
            ("path/dir", "path/dir/file.yaml", true),
            ("path/dir", "path/dirx/file.yaml", false),
            (
                "cluster-config/**/config.json",
                "cluster-config/a/b/config.json",
                true,
            ),
            ("[ab]/x", "b/x", true),
            ("[!ab]/x", "b/x", false),
            ("[", "[", true),
            ("[a", "b", false),
        ] {
            assert_eq!(pathspec_match(p, n), want, "{p} {n}");
        }
    }
}
