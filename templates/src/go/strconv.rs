//! Go's `strconv` as templates see it: `Quote` (and `IsPrint`), `FormatFloat` (with the
//! `%v` and `encoding/json` float forms) and `ParseInt`-style integer literals.
//!
//! A leaf module (it names only [`go_int`] of `budget`), so the lexer, parser, value
//! printing, YAML and the function library use it without depending on each other.

use std::fmt::Write as _;

use super::budget::go_int;

/// `strconv.IsPrint` for the characters Go would escape when quoting.
pub(crate) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c,
            '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{180e}'
            | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e000}'..='\u{f8ff}'))
}

pub(crate) fn push_quoted_char(out: &mut String, c: char, quote: char, ascii_only: bool) {
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if is_print(c) && (c.is_ascii() || !ascii_only) => out.push(c),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    quote_with(s, false)
}

pub(crate) fn quote_with(s: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_quoted_char(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

/// `%#U`: `U+0041 'A'`.
pub(crate) fn char_u(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

/// Decimal digits of a float: value = 0.DIGITS × 10^dp; zero has no digits (as in strconv).
struct Digits {
    neg: bool,
    d: Vec<u8>,
    dp: i32,
}

fn digits_from_exp(neg: bool, s: &str) -> Digits {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    let dp = if d.is_empty() { 0 } else { exp + 1 };
    Digits { neg, d, dp }
}

/// Shortest digits that round-trip.
fn shortest(f: f64) -> Digits {
    digits_from_exp(f.is_sign_negative(), &format!("{:e}", f.abs()))
}

/// Digits rounded to `sig` significant digits, trailing zeros dropped.
fn rounded(f: f64, sig: usize) -> Digits {
    digits_from_exp(
        f.is_sign_negative(),
        &format!("{:.*e}", sig.saturating_sub(1), f.abs()),
    )
}

fn fmt_e(d: &Digits, prec: usize, e: char) -> String {
    let mut s = String::new();
    if d.neg {
        s.push('-');
    }
    s.push(d.d.first().map_or('0', |&b| b as char));
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(d.d.get(i).map_or('0', |&b| b as char));
        }
    }
    s.push(e);
    let exp = if d.d.is_empty() { 0 } else { d.dp - 1 };
    s.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(s, "{:02}", exp.unsigned_abs());
    s
}

fn fmt_f(d: &Digits, prec: usize) -> String {
    let mut s = String::new();
    if d.neg {
        s.push('-');
    }
    if let Ok(dp @ 1..) = usize::try_from(d.dp) {
        for i in 0..dp {
            s.push(d.d.get(i).map_or('0', |&b| b as char));
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            // Digit `dp + i - 1`; the ones before the first digit are zeros.
            let j = i64::from(d.dp) + go_int(i) - 1;
            let c = usize::try_from(j)
                .ok()
                .and_then(|j| d.d.get(j))
                .map_or('0', |&b| b as char);
            s.push(c);
        }
    }
    s
}

/// `strconv.FormatFloat(f, fmt, prec, 64)` for `e E f F g G`; `prec == None` is `-1` (shortest).
pub(crate) fn format_float(f: f64, fmt: char, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let upper = fmt.is_ascii_uppercase();
    let exp_letter = if upper { 'E' } else { 'e' };
    let out = match (fmt.to_ascii_lowercase(), prec) {
        ('e', Some(p)) => fmt_e(&rounded(f, p + 1), p, exp_letter),
        ('e', None) => {
            let d = shortest(f);
            let p = d.d.len().saturating_sub(1);
            fmt_e(&d, p, exp_letter)
        }
        ('f', Some(p)) => format!("{f:.p$}"),
        ('f', None) => {
            let d = shortest(f);
            fmt_f(&d, digits_after_point(d.d.len(), d.dp))
        }
        (_, prec) => {
            let (d, mut p, eprec) = match prec {
                None => {
                    let d = shortest(f);
                    let n = d.d.len();
                    (d, n, 6)
                }
                Some(p) => {
                    let p = p.max(1);
                    let d = rounded(f, p);
                    let n = d.d.len();
                    let eprec = if p > n && go_int(n) >= i64::from(d.dp) {
                        n
                    } else {
                        p
                    };
                    (d, p, eprec)
                }
            };
            let exp = i64::from(d.dp) - 1;
            if exp < -4 || exp >= go_int(eprec) {
                p = p.min(d.d.len());
                fmt_e(&d, p.saturating_sub(1), exp_letter)
            } else {
                if go_int(p) > i64::from(d.dp) {
                    p = d.d.len();
                }
                fmt_f(&d, digits_after_point(p, d.dp))
            }
        }
    };
    if upper { out.to_uppercase() } else { out }
}

/// How many of `digits` significant digits fall after the decimal point when the point is
/// after digit `dp` (none when all are before it).
fn digits_after_point(digits: usize, dp: i32) -> usize {
    usize::try_from(go_int(digits) - i64::from(dp)).unwrap_or(0)
}

/// `%v` of a float64.
pub(crate) fn float_v(f: f64) -> String {
    format_float(f, 'g', None)
}

/// `encoding/json` text of a float64 (`1e+21` and up, and below `1e-6`, use exponents).
pub(crate) fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format_float(f, 'e', None);
        // Go shortens a two-digit negative exponent: e-07 -> e-7.
        match s.split_once("e-0") {
            Some((m, x)) if x.len() == 1 => format!("{m}e-{x}"),
            _ => s,
        }
    } else {
        format_float(f, 'f', None)
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`-style integer parsing (sign, base prefixes, `_`, leading-0
/// octal), returning the magnitude and sign.
pub(crate) fn parse_int_literal(text: &str) -> Option<(bool, u64)> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    // Underscores may only separate digits (or follow a base prefix).
    if (digits.starts_with('_') && !prefixed) || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok().map(|u| (neg, u))
}
