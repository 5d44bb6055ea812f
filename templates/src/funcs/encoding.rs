//! Encodings and digests: base64/base32, `sha1sum`/`sha256sum`/`sha512sum`/`adler32sum`, and
//! JSON in both directions with Go's `encoding/json` output (sorted keys, `<>&` escaped except in
//! `toRawJson`, float64 without a trailing `.0`).

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value as Json;
use sha1::Digest;

use super::func::{FnResult, Func, Param, arg, fixed, str_arg};
use crate::go::budget::Budget;
use crate::go::strconv::json_float;
use crate::go::value::Value;

use Param::{Any, Str};

pub(super) const FUNCS: &[Func] = &[
    fixed("b64enc", &[Str], b64enc),
    fixed("b64dec", &[Str], b64dec),
    fixed("b32enc", &[Str], b32enc),
    fixed("b32dec", &[Str], b32dec),
    fixed("sha1sum", &[Str], sha1sum),
    fixed("sha256sum", &[Str], sha256sum),
    fixed("sha512sum", &[Str], sha512sum),
    fixed("adler32sum", &[Str], adler32sum),
    fixed("toJson", &[Any], to_json),
    fixed("mustToJson", &[Any], must_to_json),
    fixed("toPrettyJson", &[Any], to_pretty_json),
    fixed("mustToPrettyJson", &[Any], must_to_pretty_json),
    fixed("toRawJson", &[Any], to_raw_json),
    fixed("mustToRawJson", &[Any], to_raw_json),
    fixed("fromJson", &[Str], from_json),
    fixed("mustFromJson", &[Str], must_from_json),
];

fn s<'a>(v: impl Into<String>) -> FnResult<'a> {
    Ok(Value::string(v.into()))
}

fn b64enc<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(STANDARD.encode(str_arg(a, 0)))
}

/// Decodes, or returns Go's error text as the result (Sprig does not fail).
fn b64dec<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    // Go's decoder skips line breaks.
    let input: String = str_arg(a, 0)
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    match STANDARD.decode(&input) {
        Ok(bytes) => s(String::from_utf8_lossy(&bytes)),
        Err(
            base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _),
        ) => s(format!("illegal base64 data at input byte {at}")),
        Err(_) => s(format!("illegal base64 data at input byte {}", input.len())),
    }
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn b32enc<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let mut out = String::new();
    for chunk in str_arg(a, 0).as_bytes().chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(B32[((bits >> (35 - 5 * i)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    s(out)
}

fn b32dec<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let input: Vec<u8> = str_arg(a, 0)
        .bytes()
        .filter(|c| *c != b'\r' && *c != b'\n')
        .collect();
    let corrupt = |at: usize| s(format!("illegal base32 data at input byte {at}"));
    if !input.len().is_multiple_of(8) {
        return corrupt(input.len() / 8 * 8);
    }
    let mut out = Vec::new();
    for (n, chunk) in input.chunks(8).enumerate() {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        let data = &chunk[..8 - pad];
        if !matches!(pad, 0 | 1 | 3 | 4 | 6) || (pad > 0 && n + 1 != input.len() / 8) {
            return corrupt(n * 8 + data.len());
        }
        let mut bits = 0u64;
        for (i, c) in data.iter().enumerate() {
            let Some(v) = B32.iter().position(|x| x == c) else {
                return corrupt(n * 8 + i);
            };
            bits |= (v as u64) << (35 - 5 * i);
        }
        // The group's 40 bits are the low five bytes of `bits`.
        let bytes = data.len() * 5 / 8;
        out.extend_from_slice(&bits.to_be_bytes()[3..3 + bytes]);
    }
    s(String::from_utf8_lossy(&out))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn sha1sum<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(hex(&sha1::Sha1::digest(str_arg(a, 0).as_bytes())))
}

fn sha256sum<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(hex(&sha2::Sha256::digest(str_arg(a, 0).as_bytes())))
}

fn sha512sum<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(hex(&sha2::Sha512::digest(str_arg(a, 0).as_bytes())))
}

fn adler32sum<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    const MOD: u32 = 65521;
    let (mut x, mut y) = (1u32, 0u32);
    for &byte in str_arg(a, 0).as_bytes() {
        x = (x + u32::from(byte)) % MOD;
        y = (y + x) % MOD;
    }
    s(((y << 16) | x).to_string())
}

/// Go's `encoding/json` string escaping.
fn json_string(out: &mut String, text: &str, escape_html: bool) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if escape_html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `json.Marshal` (`indent == None`) or `json.MarshalIndent(v, "", indent)`.
pub(crate) fn go_json(v: &Json, escape_html: bool, indent: Option<&str>) -> String {
    let mut out = String::new();
    write_json(&mut out, v, escape_html, indent, 0);
    out
}

fn newline(out: &mut String, indent: Option<&str>, level: usize) {
    if let Some(ind) = indent {
        out.push('\n');
        out.push_str(&ind.repeat(level));
    }
}

fn write_json(out: &mut String, v: &Json, escape_html: bool, indent: Option<&str>, level: usize) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) if !n.is_f64() => out.push_str(&i.to_string()),
            (_, Some(u), _) if !n.is_f64() => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Json::String(s) => json_string(out, s, escape_html),
        Json::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, level + 1);
                write_json(out, item, escape_html, indent, level + 1);
            }
            newline(out, indent, level);
            out.push(']');
        }
        Json::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in crate::go::value::sorted_entries(map)
                .into_iter()
                .enumerate()
            {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, level + 1);
                json_string(out, k, escape_html);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(out, item, escape_html, indent, level + 1);
            }
            newline(out, indent, level);
            out.push('}');
        }
    }
}

fn marshal(
    b: &mut Budget,
    a: &[Value<'_>],
    escape_html: bool,
    indent: Option<&str>,
) -> Result<String, String> {
    let json = arg(a, 0).to_json(b, 0)?;
    let text = go_json(&json, escape_html, indent);
    b.spend(text.len() as u64 / 64)?;
    Ok(text)
}

/// Sprig's `toJson` swallows encoding errors (the result is empty).
fn to_json<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(marshal(b, a, true, None).unwrap_or_default())
}

fn must_to_json<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(marshal(b, a, true, None)?)
}

fn to_pretty_json<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(marshal(b, a, true, Some("  ")).unwrap_or_default())
}

fn must_to_pretty_json<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(marshal(b, a, true, Some("  "))?)
}

fn to_raw_json<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    s(marshal(b, a, false, None)?)
}

fn parse_json(text: &str) -> Result<Json, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Sprig's `fromJson` yields nil on invalid input.
fn from_json<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(parse_json(str_arg(a, 0)).map_or(Value::Nil, Value::from_owned_json))
}

fn must_from_json<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::from_owned_json(parse_json(str_arg(a, 0))?))
}
