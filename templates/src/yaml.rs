//! YAML as Argo's `toYaml`/`fromYaml` see it (sigs.k8s.io/yaml over go-yaml v2).
//!
//! [`to_yaml`] reproduces `yaml.v2`'s `Marshal` of JSON data: block style, keys in yaml.v2's
//! natural order (digit runs compare numerically), sequences not indented under their key, empty
//! collections as `{}`/`[]`, strings plain when they would read back as the same string and
//! otherwise single- or double-quoted as libyaml decides, multi-line strings as literal blocks
//! (`|-`), and long plain or quoted scalars folded at column 80.
//!
//! [`parse`] reads the first YAML document into JSON, stringifying non-string keys. It parses YAML
//! 1.2 (`serde_yaml_ng`), so yaml.v2's YAML 1.1 booleans (`yes`, `on`, ...) stay strings.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::go::strconv::{format_float, json_float};

const BEST_WIDTH: usize = 80;
const INDENT: usize = 2;

/// The YAML text `yaml.v2` writes for `v` (with its trailing newline).
pub(crate) fn to_yaml(v: &Json) -> String {
    let mut e = Emitter::default();
    match v {
        Json::Object(m) if !m.is_empty() => e.mapping(m, 0),
        Json::Array(a) if !a.is_empty() => e.sequence(a, 0),
        other => {
            e.scalar_value(other, INDENT);
            e.newline();
        }
    }
    e.out
}

#[derive(Default)]
struct Emitter {
    out: String,
    column: usize,
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

impl Emitter {
    fn put(&mut self, s: &str) {
        self.out.push_str(s);
        match s.rfind('\n') {
            Some(i) => self.column = s[i + 1..].chars().count(),
            None => self.column += s.chars().count(),
        }
    }

    fn put_char(&mut self, c: char) {
        self.out.push(c);
        if c == '\n' {
            self.column = 0;
        } else {
            self.column += 1;
        }
    }

    fn newline(&mut self) {
        if self.column > 0 {
            self.put_char('\n');
        }
    }

    fn indent_to(&mut self, indent: usize) {
        while self.column < indent {
            self.put_char(' ');
        }
    }

    /// A block mapping whose keys start at column `indent`; the cursor is at the start of the
    /// first key's line (or right after a `- `).
    fn mapping(&mut self, m: &Map<String, Json>, indent: usize) {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort_by(|a, b| natural_cmp(a, b));
        for (i, k) in keys.into_iter().enumerate() {
            if i > 0 {
                self.newline();
            }
            self.indent_to(indent);
            self.scalar_str(k, indent + INDENT, true);
            self.put_char(':');
            let value = &m[k];
            match value {
                Json::Object(inner) if !inner.is_empty() => {
                    self.newline();
                    self.mapping(inner, indent + INDENT);
                }
                Json::Array(items) if !items.is_empty() => {
                    self.newline();
                    self.sequence(items, indent);
                }
                other => {
                    self.put_char(' ');
                    self.scalar_value(other, indent + INDENT);
                }
            }
        }
        self.newline();
    }

    /// A block sequence whose `- ` markers start at column `indent`.
    fn sequence(&mut self, items: &[Json], indent: usize) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.newline();
            }
            self.indent_to(indent);
            self.put("- ");
            match item {
                Json::Object(inner) if !inner.is_empty() => self.mapping(inner, indent + INDENT),
                Json::Array(inner) if !inner.is_empty() => self.sequence(inner, indent + INDENT),
                other => self.scalar_value(other, indent + INDENT),
            }
        }
        self.newline();
    }

    /// A scalar (or empty collection) value; continuation lines go to column `indent`.
    fn scalar_value(&mut self, v: &Json, indent: usize) {
        match v {
            Json::Null => self.put("null"),
            Json::Bool(b) => self.put(if *b { "true" } else { "false" }),
            Json::Number(n) => self.put(&yaml_number(n)),
            Json::String(s) => self.scalar_str(s, indent, false),
            Json::Array(_) => self.put("[]"),
            Json::Object(_) => self.put("{}"),
        }
    }

    fn scalar_str(&mut self, s: &str, indent: usize, key: bool) {
        match select_style(s, key) {
            Style::Plain => self.folded(s, indent, !key, None),
            Style::Single => {
                self.put_char('\'');
                self.folded(s, indent, !key, Some('\''));
                self.put_char('\'');
            }
            Style::Double => self.double_quoted(s, indent, !key),
            Style::Literal => self.literal(s, indent),
        }
    }

    /// Plain or single-quoted text, broken at a single space once past the best width.
    fn folded(&mut self, s: &str, indent: usize, allow_breaks: bool, quote: Option<char>) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let inner = quote.is_none() || (i != 0 && i + 1 != chars.len());
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && inner && !next_space {
                    self.put_char('\n');
                    self.indent_to(indent);
                } else {
                    self.put_char(' ');
                }
                spaces = true;
            } else {
                if quote == Some(c) {
                    self.put_char(c);
                }
                self.put_char(c);
                spaces = false;
            }
        }
    }

    fn double_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.put_char('"');
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i + 1 != chars.len()
                {
                    self.put_char('\n');
                    self.indent_to(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.put_char('\\');
                    }
                } else {
                    self.put_char(' ');
                }
                spaces = true;
                continue;
            }
            spaces = false;
            let esc = match c {
                '\0' => "\\0".to_string(),
                '\u{7}' => "\\a".to_string(),
                '\u{8}' => "\\b".to_string(),
                '\t' => "\\t".to_string(),
                '\n' => "\\n".to_string(),
                '\u{b}' => "\\v".to_string(),
                '\u{c}' => "\\f".to_string(),
                '\r' => "\\r".to_string(),
                '\u{1b}' => "\\e".to_string(),
                '"' => "\\\"".to_string(),
                '\\' => "\\\\".to_string(),
                '\u{85}' => "\\N".to_string(),
                '\u{2028}' => "\\L".to_string(),
                '\u{2029}' => "\\P".to_string(),
                c if is_printable(c) => {
                    self.put_char(c);
                    continue;
                }
                c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                c => format!("\\U{:08X}", c as u32),
            };
            self.put(&esc);
        }
        self.put_char('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.put_char('|');
        if s.starts_with([' ', '\n']) {
            self.put(&INDENT.to_string());
        }
        let trailing = s.len() - s.trim_end_matches('\n').len();
        match trailing {
            0 => self.put_char('-'),
            1 if s.len() > 1 => {}
            _ => self.put_char('+'),
        }
        self.put_char('\n');
        let mut at_break = true;
        for c in s.chars() {
            if c == '\n' {
                self.put_char('\n');
                at_break = true;
            } else {
                if at_break {
                    self.indent_to(indent);
                    at_break = false;
                }
                self.put_char(c);
            }
        }
    }
}

/// libyaml's printable set; it leaves out NEL, the BOM and everything beyond the BMP, so such
/// strings end up double-quoted with escapes.
fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0a | 0x20..=0x7e | 0xa0..=0xd7ff | 0xe000..=0xfffd) && c != '\u{feff}'
}

/// A number as yaml.v2 writes what it decoded from Go's JSON text: integers as written, other
/// values through `strconv.FormatFloat(f, 'g', -1, 64)`.
fn yaml_number(n: &serde_json::Number) -> String {
    if !n.is_f64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let text = json_float(f);
    if text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok() {
        text
    } else {
        format_float(f, 'g', None)
    }
}

/// yaml.v2's key order: digit runs compare as numbers, letters sort after other characters.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let (mut ai, mut bi) = (i, i);
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// Whether yaml.v2 would read the plain scalar `s` as something other than a string.
fn resolves_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    let Some(first) = s.chars().next() else {
        return true;
    };
    if first == '.' {
        return s.parse::<f64>().is_ok();
    }
    if !(first.is_ascii_digit() || first == '-' || first == '+') {
        return false;
    }
    let plain = s.replace('_', "");
    if is_timestamp(s)
        || crate::go::strconv::parse_int_literal(&plain).is_some()
        || is_yaml_float(&plain)
    {
        return true;
    }
    let bin = plain.strip_prefix('-').unwrap_or(&plain);
    bin.strip_prefix("0b")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b == b'0' || b == b'1'))
}

/// yaml.v2's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mant_ok = match mant.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mant),
    };
    let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mant_ok && exp_ok
}

/// The date/time forms yaml.v2 resolves as timestamps (`2006-1-2`, optionally with a time).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let num = |t: &str| (1..=2).contains(&t.len()) && t.bytes().all(|c| c.is_ascii_digit());
    let date_ok = date.split_once('-').is_some_and(|(m, d)| num(m) && num(d));
    let time_ok = time.is_none_or(|t| {
        let t = t.trim_end_matches('Z');
        let t = t.split(['+', '-']).next().unwrap_or(t);
        let hms: Vec<&str> = t.split(':').collect();
        hms.len() == 3 && num(hms[0]) && num(hms[1]) && {
            let sec = hms[2].split('.').next().unwrap_or("");
            num(sec)
        }
    });
    date_ok && time_ok
}

/// yaml.v2's base-60 float syntax (`1:20`), which it quotes to stay compatible with YAML 1.1.
fn is_base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut parts = int.split(':');
    let head = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && head.starts_with(|c: char| c.is_ascii_digit())
        && head.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && rest.iter().all(|p| {
            (1..=2).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || p.as_bytes()[0] <= b'5')
        })
        && frac.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}

/// libyaml's scalar analysis: which styles can represent `s`.
struct Analysis {
    block_plain: bool,
    single_quoted: bool,
    block: bool,
}

fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Analysis {
            block_plain: true,
            single_quoted: true,
            block: false,
        };
    }
    let blankz = |c: Option<&char>| {
        matches!(
            c,
            None | Some(' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
        )
    };
    let is_break = |c: char| matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let mut block_ind = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_ws = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_ws = blankz(chars.get(i + 1));
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c)
                || (c == '-' && followed_ws)
                || ((c == '?' || c == ':') && followed_ws)
            {
                block_ind = true;
            }
        } else if (c == ':' && followed_ws) || (c == '#' && preceded_ws) {
            block_ind = true;
        }
        if !is_printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        let last = i + 1 == chars.len();
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= prev_break;
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= prev_space;
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = blankz(Some(&c));
    }
    let mut a = Analysis {
        block_plain: true,
        single_quoted: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single_quoted = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single_quoted = false;
        a.block = false;
    }
    if line_breaks || block_ind {
        a.block_plain = false;
    }
    a
}

/// yaml.v2's requested style, then libyaml's fallback when the content does not allow it.
fn select_style(s: &str, key: bool) -> Style {
    let requested = if s.contains('\n') {
        Style::Literal
    } else if !resolves_non_string(s) && !is_base60_float(s) {
        Style::Plain
    } else {
        Style::Double
    };
    let a = analyze(s);
    match requested {
        Style::Plain if a.block_plain => Style::Plain,
        Style::Plain if a.single_quoted => Style::Single,
        Style::Literal if a.block && !key => Style::Literal,
        _ => Style::Double,
    }
}

/// The first YAML document of `text` as JSON (`null` when there is none).
pub(crate) fn parse(text: &str) -> Result<Json, String> {
    argosy_crds::yaml_depth::check(text)
        .map_err(|e| format!("error converting YAML to JSON: yaml: {e}"))?;
    let Some(doc) = serde_yaml_ng::Deserializer::from_str(text).next() else {
        return Ok(Json::Null);
    };
    let mut value = serde_yaml_ng::Value::deserialize(doc)
        .map_err(|e| format!("error converting YAML to JSON: yaml: {e}"))?;
    value
        .apply_merge()
        .map_err(|e| format!("error converting YAML to JSON: yaml: {e}"))?;
    to_json(value, 0)
}

fn to_json(v: serde_yaml_ng::Value, depth: usize) -> Result<Json, String> {
    use serde_yaml_ng::Value as Y;
    if depth > crate::go::budget::MAX_VALUE_DEPTH {
        return Err("error converting YAML to JSON: document nested too deeply".to_string());
    }
    Ok(match v {
        Y::Null => Json::Null,
        Y::Bool(b) => Json::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Json::Number(serde_json::Number::from_f64(f).ok_or_else(|| {
                    format!(
                        "error converting YAML to JSON: json: unsupported value: {}",
                        format_float(f, 'g', None)
                    )
                })?)
            }
        }
        Y::String(s) => Json::String(s),
        Y::Sequence(items) => Json::Array(
            items
                .into_iter()
                .map(|i| to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    Y::Number(n) => match n.as_i64() {
                        Some(i) => i.to_string(),
                        None => format_float(n.as_f64().unwrap_or(0.0), 'g', None),
                    },
                    other => {
                        return Err(format!(
                            "error converting YAML to JSON: unsupported map key of type {other:?}"
                        ));
                    }
                };
                out.insert(key, to_json(v, depth + 1)?);
            }
            Json::Object(out)
        }
        Y::Tagged(t) => to_json(t.value, depth + 1)?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn y(v: &Json) -> String {
        to_yaml(v)
    }

    #[test]
    fn strings_that_read_back_differently_are_double_quoted() {
        for s in [
            "true",
            "y",
            "Off",
            "123",
            "1e+06",
            "",
            "null",
            "~",
            "2024-01-01",
            "2024-1-2T10:20:30Z",
            "1:20",
            "0x1F",
            ".5",
            "1_000",
            "-1",
            "<<",
            ".inf",
        ] {
            assert_eq!(y(&json!({ "k": s })), format!("k: \"{s}\"\n"), "{s:?}");
        }
        for s in [
            "hello",
            "a:b",
            "it's",
            "héllo",
            "1.2.3",
            "v1",
            "2024-01",
            "yes-please",
            "-x",
        ] {
            assert_eq!(y(&json!({ "k": s })), format!("k: {s}\n"), "{s:?}");
        }
    }

    #[test]
    fn indicators_and_edge_spaces_use_single_quotes() {
        assert_eq!(y(&json!({"k": "hello: world"})), "k: 'hello: world'\n");
        assert_eq!(y(&json!({"k": "- item"})), "k: '- item'\n");
        assert_eq!(y(&json!({"k": "#x"})), "k: '#x'\n");
        assert_eq!(y(&json!({"k": "a #b"})), "k: 'a #b'\n");
        assert_eq!(y(&json!({"k": "*alias"})), "k: '*alias'\n");
        assert_eq!(y(&json!({"k": " lead"})), "k: ' lead'\n");
        assert_eq!(y(&json!({"k": "trail "})), "k: 'trail '\n");
        assert_eq!(y(&json!({"k": "'q"})), "k: '''q'\n");
        assert_eq!(y(&json!({"k": "{a}"})), "k: '{a}'\n");
    }

    #[test]
    fn special_characters_use_double_quotes_with_escapes() {
        assert_eq!(y(&json!({"k": "tab\there"})), "k: \"tab\\there\"\n");
        assert_eq!(y(&json!({"k": "smile 😀"})), "k: \"smile \\U0001F600\"\n");
        assert_eq!(y(&json!({"k": "a \"q\" \\"})), "k: a \"q\" \\\n");
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        assert_eq!(y(&json!({"k": "a\nb"})), "k: |-\n  a\n  b\n");
        assert_eq!(y(&json!({"k": "a\n\nb\n"})), "k: |\n  a\n\n  b\n");
        assert_eq!(y(&json!({"k": "a\n\n"})), "k: |+\n  a\n\n");
        assert_eq!(y(&json!({"k": " a\nb"})), "k: |2-\n   a\n  b\n");
        assert_eq!(
            y(&json!({"m": {"k": "x\ny"}})),
            "m:\n  k: |-\n    x\n    y\n"
        );
        // A space before a line break rules the block style out.
        assert_eq!(y(&json!({"k": "a \nb"})), "k: \"a \\nb\"\n");
        // Keys cannot be blocks.
        assert_eq!(y(&json!({"a\nb": 1})), "\"a\\nb\": 1\n");
        assert_eq!(y(&json!("top\nlevel")), "|-\n  top\n  level\n");
    }

    #[test]
    fn long_scalars_fold_at_column_80() {
        let words = vec!["word"; 30].join(" ");
        let out = y(&json!({ "key": words }));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1, "{out}");
        assert!(lines[1].starts_with("  word"), "{out}");
        assert_eq!(parse(&out).unwrap(), json!({ "key": words }));
        let url = "x".repeat(120);
        assert_eq!(y(&json!({ "k": url })), format!("k: {url}\n"));
    }

    #[test]
    fn layout_matches_yaml_v2() {
        let v = json!({
            "b": [1, "two", {"x": 1, "y": [true, null]}, [3, 4], [], {}],
            "a": {"nested": {"deep": 1.5}, "empty": {}, "list": []},
        });
        assert_eq!(
            y(&v),
            "a:\n  empty: {}\n  list: []\n  nested:\n    deep: 1.5\nb:\n- 1\n- two\n- x: 1\n  \"y\":\n  - true\n  - null\n- - 3\n  - 4\n- []\n- {}\n"
        );
        assert_eq!(y(&json!([])), "[]\n");
        assert_eq!(y(&json!({})), "{}\n");
        assert_eq!(y(&json!([{"a": 1}])), "- a: 1\n");
    }

    #[test]
    fn keys_sort_naturally() {
        let out = y(&json!({"a10": 1, "a2": 2, "b": 3, "A": 4, "_x": 5, "1": 6}));
        // Non-letters sort before letters; "_x" holds the number 0, which is less than 1.
        assert_eq!(out, "_x: 5\n\"1\": 6\nA: 4\na2: 2\na10: 1\nb: 3\n");
    }

    #[test]
    fn numbers_round_trip_through_go_json() {
        assert_eq!(
            y(&json!({"f": 1_000_000.0, "g": 1.5, "h": 1e21, "i": 1_234_567.5, "j": 7})),
            "f: 1000000\ng: 1.5\nh: 1e+21\ni: 1.2345675e+06\nj: 7\n"
        );
    }

    #[test]
    fn parse_first_document_with_string_keys() {
        assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap(), json!({"a": 1}));
        assert_eq!(parse("").unwrap(), Json::Null);
        assert_eq!(
            parse("1: x\ntrue: y\n").unwrap(),
            json!({"1": "x", "true": "y"})
        );
        assert_eq!(
            parse("base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n").unwrap()["derived"],
            json!({"x": 1, "y": 2})
        );
        assert!(
            parse("a: [")
                .unwrap_err()
                .starts_with("error converting YAML to JSON")
        );
    }
}
