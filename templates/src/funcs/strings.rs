//! Sprig string functions (Go `strings`, Masterminds/goutils and huandu/xstrings semantics) and
//! Go's `path` functions.
//!
//! Sprig slices strings by bytes (`trunc`, `substr`, `abbrev`); a cut inside a UTF-8 sequence
//! yields U+FFFD here where Go would produce an invalid byte. The case conversions follow
//! xstrings v1.5 (the version Sprig 3.3 uses), whose `camelcase` yields lowerCamelCase.

use std::collections::BTreeMap;

use super::func::{FnResult, Func, Param, arg, checked_size, fixed, int_arg, str_arg, variadic};
use crate::go::budget::{Budget, go_int};
use crate::go::fmt::to_string;
use crate::go::strconv::quote as go_quote;
use crate::go::value::{Elem, Value};

use Param::{Any, Int, Str};

pub(super) const FUNCS: &[Func] = &[
    fixed("hello", &[], hello),
    fixed("abbrev", &[Int, Str], abbrev),
    fixed("abbrevboth", &[Int, Int, Str], abbrevboth),
    fixed("trunc", &[Int, Str], trunc),
    fixed("trim", &[Str], trim),
    fixed("upper", &[Str], upper),
    fixed("lower", &[Str], lower),
    fixed("title", &[Str], title),
    fixed("untitle", &[Str], untitle),
    fixed("substr", &[Int, Int, Str], substr),
    fixed("repeat", &[Int, Str], repeat),
    fixed("trimall", &[Str, Str], trim_all),
    fixed("trimAll", &[Str, Str], trim_all),
    fixed("trimSuffix", &[Str, Str], trim_suffix),
    fixed("trimPrefix", &[Str, Str], trim_prefix),
    fixed("nospace", &[Str], nospace),
    fixed("initials", &[Str], initials),
    fixed("swapcase", &[Str], swapcase),
    fixed("snakecase", &[Str], snakecase),
    fixed("camelcase", &[Str], camelcase),
    fixed("kebabcase", &[Str], kebabcase),
    fixed("wrap", &[Int, Str], wrap),
    fixed("wrapWith", &[Int, Str, Str], wrap_with),
    fixed("contains", &[Str, Str], contains),
    fixed("hasPrefix", &[Str, Str], has_prefix),
    fixed("hasSuffix", &[Str, Str], has_suffix),
    variadic("quote", &[], Any, quote),
    variadic("squote", &[], Any, squote),
    variadic("cat", &[], Any, cat),
    fixed("indent", &[Int, Str], indent),
    fixed("nindent", &[Int, Str], nindent),
    fixed("replace", &[Str, Str, Str], replace),
    fixed("plural", &[Str, Str, Int], plural),
    fixed("toString", &[Any], to_string_fn),
    fixed("split", &[Str, Str], split),
    fixed("splitList", &[Str, Str], split_list),
    fixed("splitn", &[Str, Int, Str], splitn),
    fixed("toStrings", &[Any], to_strings),
    fixed("join", &[Str, Any], join),
    fixed("sortAlpha", &[Any], sort_alpha),
    fixed("base", &[Str], base),
    fixed("dir", &[Str], dir),
    fixed("clean", &[Str], clean),
    fixed("ext", &[Str], ext),
    fixed("isAbs", &[Str], is_abs),
    fixed("osBase", &[Str], base),
    fixed("osDir", &[Str], dir),
    fixed("osClean", &[Str], clean),
    fixed("osExt", &[Str], ext),
    fixed("osIsAbs", &[Str], is_abs),
];

fn s<'a>(v: impl Into<String>) -> FnResult<'a> {
    Ok(Value::string(v.into()))
}

/// Go's byte slicing `s[from..to]`, lossy where it cuts a UTF-8 sequence.
/// `text[from:to]` on bytes, invalid UTF-8 replaced; empty when the bounds are out of range.
fn byte_slice(text: &str, from: i64, to: i64) -> String {
    let (Ok(from), Ok(to)) = (usize::try_from(from), usize::try_from(to)) else {
        return String::new();
    };
    String::from_utf8_lossy(text.as_bytes().get(from..to).unwrap_or(&[])).into_owned()
}

fn hello<'a>(_: &mut Budget, _: &[Value<'a>]) -> FnResult<'a> {
    s("Hello!")
}

/// goutils `AbbreviateFull`.
fn abbreviate_full(text: &str, offset: i64, width: i64) -> String {
    let len = go_int(text.len());
    if text.is_empty() || width < 4 || len <= width {
        return text.to_string();
    }
    let mut offset = offset.min(len);
    if len - offset < width - 3 {
        offset = len - (width - 3);
    }
    if offset <= 4 {
        return byte_slice(text, 0, width - 3) + "...";
    }
    if width < 7 {
        // goutils returns an error here, which Sprig discards.
        return String::new();
    }
    if offset + width - 3 < len {
        let tail = byte_slice(text, offset, len);
        return "...".to_string() + &abbreviate_full(&tail, 0, width - 3);
    }
    "...".to_string() + &byte_slice(text, len - (width - 3), len)
}

fn abbrev<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(abbreviate_full(str_arg(a, 1), 0, int_arg(a, 0)))
}

fn abbrevboth<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (left, right, text) = (int_arg(a, 0), int_arg(a, 1), str_arg(a, 2));
    if right < 4 || (left > 0 && right < 7) {
        return s(text);
    }
    s(abbreviate_full(text, left, right))
}

fn trunc<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (c, text) = (int_arg(a, 0), str_arg(a, 1));
    let len = go_int(text.len());
    if c < 0 && len + c > 0 {
        return s(byte_slice(text, len + c, len));
    }
    if c >= 0 && len > c {
        return s(byte_slice(text, 0, c));
    }
    s(text)
}

fn trim<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(str_arg(a, 0).trim())
}

fn upper<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(str_arg(a, 0).to_uppercase())
}

fn lower<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(str_arg(a, 0).to_lowercase())
}

/// Go's `strings.Title` word separators.
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    !(c.is_alphabetic() || c.is_numeric()) && c.is_whitespace()
}

fn upper_char(c: char) -> char {
    c.to_uppercase().next().unwrap_or(c)
}

fn lower_char(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn title<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut prev = ' ';
    let out: String = str_arg(a, 0)
        .chars()
        .map(|c| {
            let r = if is_separator(prev) { upper_char(c) } else { c };
            prev = c;
            r
        })
        .collect();
    s(out)
}

fn untitle<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut next = true;
    let out: String = str_arg(a, 0)
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                next = true;
                c
            } else if next {
                next = false;
                lower_char(c)
            } else {
                c
            }
        })
        .collect();
    s(out)
}

fn substr<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (start, end, text) = (int_arg(a, 0), int_arg(a, 1), str_arg(a, 2));
    let len = go_int(text.len());
    let (from, to) = if start < 0 {
        (0, end)
    } else if end < 0 || end > len {
        (start, len)
    } else {
        (start, end)
    };
    if to < 0 || to > len || from > to {
        return Err(format!(
            "runtime error: slice bounds out of range [{from}:{to}] with length {len}"
        ));
    }
    s(byte_slice(text, from, to))
}

fn repeat<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (count, text) = (int_arg(a, 0), str_arg(a, 1));
    if count < 0 {
        return Err("strings: negative Repeat count".to_string());
    }
    let n = checked_size(count, text.len())?;
    s(text.repeat(n))
}

fn trim_all<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let cutset: Vec<char> = str_arg(a, 0).chars().collect();
    s(str_arg(a, 1).trim_matches(|c| cutset.contains(&c)))
}

fn trim_suffix<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let text = str_arg(a, 1);
    s(text.strip_suffix(str_arg(a, 0)).unwrap_or(text))
}

fn trim_prefix<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let text = str_arg(a, 1);
    s(text.strip_prefix(str_arg(a, 0)).unwrap_or(text))
}

fn nospace<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(str_arg(a, 0)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>())
}

fn initials<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut gap = true;
    let mut out = String::new();
    for c in str_arg(a, 0).chars() {
        if c.is_whitespace() {
            gap = true;
        } else if gap {
            out.push(c);
            gap = false;
        }
    }
    s(out)
}

fn swapcase<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let out: String = str_arg(a, 0)
        .chars()
        .map(|c| {
            if c.is_uppercase() {
                lower_char(c)
            } else if c.is_lowercase() {
                upper_char(c)
            } else {
                c
            }
        })
        .collect();
    s(out)
}

/// xstrings' word classes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    Invalid,
    Number,
    Upper,
    Alpha,
    Connector,
    Punct,
    Other,
}

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

/// A letter that is not a CJK ideograph (xstrings' `isAlphabet`).
fn is_alpha(c: char) -> bool {
    c.is_alphabetic()
        && !matches!(c, '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' | '\u{20000}'..='\u{2fa1f}')
}

/// Go's `unicode.IsPunct` (ASCII symbols such as `$+<=>^|~` are not punctuation).
fn is_punct(c: char) -> bool {
    matches!(c, '!'..='#' | '%'..='*' | ','..='/' | ':' | ';' | '?' | '@' | '['..=']' | '_' | '{' | '}'
        | '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205e}' | '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{3011}')
}

/// xstrings' `nextWord`: the class and text of the word at the start of `s`, and the rest.
fn next_word(s: &str) -> (Word, &str, &str) {
    let mut it = s.char_indices().peekable();
    let Some((_, first)) = it.next() else {
        return (Word::Invalid, "", "");
    };
    let take_while = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
                      f: &dyn Fn(char) -> bool| {
        while it.next_if(|&(_, c)| f(c)).is_some() {}
    };
    let wt = if is_connector(first) {
        take_while(&mut it, &is_connector);
        Word::Connector
    } else if is_punct(first) {
        take_while(&mut it, &is_punct);
        Word::Punct
    } else if first.is_uppercase() {
        match it.peek().map(|&(_, c)| c) {
            Some(c) if c.is_uppercase() => {
                let mut last_upper = 0;
                while let Some((i, _)) = it.next_if(|&(_, c)| c.is_uppercase()) {
                    last_upper = i;
                }
                // "HTTPStatus" splits into "HTTP" and "Status".
                if it.peek().is_some_and(|&(_, c)| is_alpha(c)) {
                    return (Word::Upper, &s[..last_upper], &s[last_upper..]);
                }
            }
            Some(c) if is_alpha(c) => take_while(&mut it, &|c| is_alpha(c) && !c.is_uppercase()),
            _ => {}
        }
        Word::Upper
    } else if is_alpha(first) {
        take_while(&mut it, &|c| is_alpha(c) && !c.is_uppercase());
        Word::Alpha
    } else if first.is_numeric() {
        take_while(&mut it, &char::is_numeric);
        Word::Number
    } else {
        take_while(&mut it, &|c| {
            !(is_connector(c) || is_alpha(c) || c.is_numeric() || is_punct(c))
        });
        Word::Other
    };
    let end = it.peek().map_or(s.len(), |&(i, _)| i);
    (wt, &s[..end], &s[end..])
}

/// xstrings' `toLower`: upper-case words are lowered and connectors replaced.
fn push_lower(out: &mut String, wt: Word, word: &str, connector: char) {
    if wt != Word::Upper && wt != Word::Connector {
        out.push_str(word);
        return;
    }
    for c in word.chars() {
        if is_connector(c) {
            out.push(connector);
        } else {
            out.push(lower_char(c));
        }
    }
}

/// xstrings' `camelCaseToLowerCase` (`ToSnakeCase`/`ToKebabCase`): `HTTPServer` → `http_server`,
/// `Bld4Floor` → `bld4_floor`, `HTTP2xx` → `http_2xx`.
fn joined_lower(text: &str, connector: char) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let (mut wt, mut word, mut rest) = next_word(text);
    while !rest.is_empty() {
        if wt != Word::Connector {
            push_lower(&mut out, wt, word, connector);
        }
        let (prev, last) = (wt, word);
        (wt, word, rest) = next_word(rest);
        match prev {
            Word::Number => {
                while matches!(wt, Word::Alpha | Word::Number) {
                    push_lower(&mut out, wt, word, connector);
                    (wt, word, rest) = next_word(rest);
                }
                if !matches!(wt, Word::Invalid | Word::Punct | Word::Connector) {
                    out.push(connector);
                }
            }
            Word::Connector => push_lower(&mut out, prev, last, connector),
            Word::Punct => {}
            _ if wt != Word::Number => {
                if !matches!(wt, Word::Connector | Word::Punct) {
                    out.push(connector);
                }
            }
            _ if rest.is_empty() => {}
            _ => {
                let number = word;
                (wt, word, rest) = next_word(rest);
                if wt != Word::Alpha {
                    // A number ends the previous word ("Bld4Floor" → "bld4_floor").
                    push_lower(&mut out, Word::Number, number, connector);
                    if !matches!(wt, Word::Connector | Word::Punct) {
                        out.push(connector);
                    }
                    continue;
                }
                // Lower-case letters after a number start a new word ("HTTP2xx" → "http_2xx").
                out.push(connector);
                push_lower(&mut out, Word::Number, number, connector);
                while matches!(wt, Word::Alpha | Word::Number) {
                    push_lower(&mut out, wt, word, connector);
                    (wt, word, rest) = next_word(rest);
                }
                if !matches!(wt, Word::Invalid | Word::Connector | Word::Punct) {
                    out.push(connector);
                }
            }
        }
    }
    push_lower(&mut out, wt, word, connector);
    out
}

fn snakecase<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(joined_lower(str_arg(a, 0), '_'))
}

fn kebabcase<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(joined_lower(str_arg(a, 0), '-'))
}

/// xstrings (v1.5) `ToCamelCase`: words separated by connectors become lowerCamelCase
/// (`http_server` → `httpServer`, `GOLANG_IS_GREAT` → `golangIsGreat`); leading connectors stay.
fn camelcase<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut chars = str_arg(a, 0).chars();
    let mut out = String::new();
    let mut r0 = None;
    let mut first_upper = false;
    for c in chars.by_ref() {
        if !is_connector(c) {
            first_upper = c.is_uppercase();
            r0 = Some(lower_char(c));
            break;
        }
        out.push(c);
    }
    let Some(mut r0) = r0 else {
        return s(out);
    };
    for c in chars {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = r0.is_uppercase();
            r0 = upper_char(r0);
        } else {
            if first_upper {
                if r0.is_uppercase() {
                    r0 = lower_char(r0);
                } else {
                    first_upper = false;
                }
            }
            out.push(r1);
        }
    }
    if first_upper {
        r0 = lower_char(r0);
    }
    out.push(r0);
    s(out)
}

/// goutils `WrapCustom` (byte based, like Go).
fn wrap_custom(text: &str, width: i64, newline: &str, long_words: bool) -> String {
    if text.is_empty() {
        return String::new();
    }
    let newline = if newline.is_empty() { "\n" } else { newline };
    let width = usize::try_from(width.max(1)).unwrap_or(usize::MAX);
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + 16);
    let mut offset = 0;
    while b.len() - offset > width {
        if b[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = (offset + width + 1).min(b.len());
        match b[offset..end].iter().rposition(|&c| c == b' ') {
            Some(sp) => {
                out.extend_from_slice(&b[offset..offset + sp]);
                out.extend_from_slice(newline.as_bytes());
                offset += sp + 1;
            }
            None if long_words => {
                out.extend_from_slice(&b[offset..offset + width]);
                out.extend_from_slice(newline.as_bytes());
                offset += width;
            }
            None => {
                let end = offset + width;
                match b[end..].iter().position(|&c| c == b' ') {
                    None => {
                        out.extend_from_slice(&b[offset..]);
                        offset = b.len();
                    }
                    Some(i) => {
                        out.extend_from_slice(&b[offset..end + i]);
                        out.extend_from_slice(newline.as_bytes());
                        offset = end + i + 1;
                    }
                }
            }
        }
    }
    out.extend_from_slice(&b[offset..]);
    String::from_utf8_lossy(&out).into_owned()
}

fn wrap<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(wrap_custom(str_arg(a, 1), int_arg(a, 0), "", false))
}

fn wrap_with<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (text, sep) = (str_arg(a, 2), str_arg(a, 1));
    checked_size(go_int(text.len()), sep.len().max(1))?;
    s(wrap_custom(text, int_arg(a, 0), sep, true))
}

fn contains<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(str_arg(a, 1).contains(str_arg(a, 0))))
}

fn has_prefix<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(str_arg(a, 1).starts_with(str_arg(a, 0))))
}

fn has_suffix<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(str_arg(a, 1).ends_with(str_arg(a, 0))))
}

fn quote<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut out = Vec::new();
    for v in a.iter().filter(|v| !v.is_nil()) {
        out.push(go_quote(&to_string(v, b)?));
    }
    s(out.join(" "))
}

fn squote<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut out = Vec::new();
    for v in a.iter().filter(|v| !v.is_nil()) {
        out.push(format!("'{}'", to_string(v, b)?));
    }
    s(out.join(" "))
}

fn cat<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut out = Vec::new();
    for v in a.iter().filter(|v| !v.is_nil()) {
        out.push(to_string(v, b)?);
    }
    s(out.join(" "))
}

fn indent_by(spaces: i64, text: &str) -> Result<String, String> {
    if spaces < 0 {
        return Err("strings: negative Repeat count".to_string());
    }
    let lines = text.matches('\n').count() + 1;
    let n = checked_size(spaces, lines)?;
    checked_size(go_int(text.len() + n * lines), 1)?;
    let pad = " ".repeat(n);
    Ok(pad.clone() + &text.replace('\n', &format!("\n{pad}")))
}

fn indent<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(indent_by(int_arg(a, 0), str_arg(a, 1))?)
}

fn nindent<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s("\n".to_string() + &indent_by(int_arg(a, 0), str_arg(a, 1))?)
}

fn replace<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let (old, new, src) = (str_arg(a, 0), str_arg(a, 1), str_arg(a, 2));
    let count = if old.is_empty() {
        src.chars().count() + 1
    } else {
        src.matches(old).count()
    };
    checked_size(go_int(src.len() + count * new.len()), 1)?;
    s(src.replace(old, new))
}

fn plural<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(if int_arg(a, 2) == 1 {
        str_arg(a, 0)
    } else {
        str_arg(a, 1)
    })
}

fn to_string_fn<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(to_string(&arg(a, 0), b)?)
}

/// Go's `strings.SplitN` (`n < 0`: all parts; an empty separator splits into runes).
fn split_n(text: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    if sep.is_empty() {
        let chars: Vec<char> = text.chars().collect();
        let mut out: Vec<String> = Vec::new();
        for (i, c) in chars.iter().enumerate() {
            if out.len() + 1 == limit {
                out.push(chars[i..].iter().collect());
                return out;
            }
            out.push(c.to_string());
        }
        return out;
    }
    text.splitn(limit, sep).map(str::to_string).collect()
}

fn indexed_map<'a>(parts: Vec<String>) -> FnResult<'a> {
    let entries: BTreeMap<String, Value<'a>> = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| (format!("_{i}"), Value::string(p)))
        .collect();
    Ok(Value::map(Elem::Str, entries))
}

fn split<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    indexed_map(split_n(str_arg(a, 1), str_arg(a, 0), -1))
}

fn split_list<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::str_list(split_n(str_arg(a, 1), str_arg(a, 0), -1)))
}

fn splitn<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    indexed_map(split_n(str_arg(a, 2), str_arg(a, 0), int_arg(a, 1)))
}

/// Sprig's `strslice`: list elements as strings (nils dropped); a nil is empty; anything else a
/// one-element list.
pub(super) fn strslice(v: &Value<'_>, b: &mut Budget) -> Result<Vec<String>, String> {
    match v.seq_items() {
        Some(items) => items
            .iter()
            .filter(|i| !i.is_nil())
            .map(|i| to_string(i, b))
            .collect(),
        None if v.is_nil() => Ok(Vec::new()),
        None => Ok(vec![to_string(v, b)?]),
    }
}

fn to_strings<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::str_list(strslice(&arg(a, 0), b)?))
}

fn join<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(strslice(&arg(a, 1), b)?.join(str_arg(a, 0)))
}

fn sort_alpha<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let v = arg(a, 0);
    if !v.is_seq() {
        return Ok(Value::str_list([to_string(&v, b)?]));
    }
    let mut items = strslice(&v, b)?;
    items.sort();
    Ok(Value::str_list(items))
}

/// Go's `path.Clean`.
pub(super) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn base<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let p = str_arg(a, 0);
    if p.is_empty() {
        return s(".");
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return s("/");
    }
    s(trimmed.rsplit('/').next().unwrap_or(trimmed))
}

fn dir<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let p = str_arg(a, 0);
    let d = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    s(clean_path(d))
}

fn clean<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(clean_path(str_arg(a, 0)))
}

fn ext<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let p = str_arg(a, 0);
    let last = p.rsplit('/').next().unwrap_or(p);
    s(last.rfind('.').map_or("", |i| &last[i..]))
}

fn is_abs<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(str_arg(a, 0).starts_with('/')))
}
