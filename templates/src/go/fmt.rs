//! Go's `fmt` formatting as templates see it: `%v` printing of values (floats in `strconv`
//! shortest `'g'` form, so `1000000` prints `1e+06`), `Sprint`/`Sprintln` and `Sprintf` with
//! flags, width and precision. The `strconv` parts (quoting, float text) are in
//! [`strconv`](super::strconv).

use std::fmt::Write as _;

use super::budget::{Budget, MAX_VALUE_DEPTH};
use super::strconv::{format_float, push_quoted_char, quote_with};
use super::value::Value;
use crate::limits::MAX_OUTPUT_BYTES;

type R = Result<(), String>;

/// Flags, width and precision of one `%` directive.
// The five flags are Go's `fmt` flags (`+ - # space 0`), each independently on or off.
#[allow(clippy::struct_excessive_bools)]
#[derive(Default, Clone)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Writes formatted values with Go's `fmt` rules, bounded in size and depth.
struct Printer<'b> {
    out: String,
    budget: &'b mut Budget,
}

impl Printer<'_> {
    fn push(&mut self, s: &str) -> R {
        self.out.push_str(s);
        if self.out.len() > MAX_OUTPUT_BYTES {
            return Err(format!("output exceeds {MAX_OUTPUT_BYTES} bytes"));
        }
        Ok(())
    }

    fn pad(&mut self, s: &str, spec: &Spec) -> R {
        let n = s.chars().count();
        let Some(w) = spec.width.filter(|&w| w > n) else {
            return self.push(s);
        };
        let fill = if spec.zero && !spec.minus { "0" } else { " " }.repeat(w - n);
        if spec.minus {
            self.push(s)?;
            self.push(&fill)
        } else {
            self.push(&fill)?;
            self.push(s)
        }
    }

    fn bad_verb(&mut self, v: &Value<'_>, verb: char, depth: usize) -> R {
        self.push(&format!("%!{verb}("))?;
        if v.is_nil() {
            self.push("<nil>")?;
        } else {
            self.push(&v.go_type())?;
            self.push("=")?;
            self.value(v, 'v', &Spec::default(), depth)?;
        }
        self.push(")")
    }

    /// One operand with one verb (Go's `printArg`/`printValue`).
    fn value(&mut self, v: &Value<'_>, verb: char, spec: &Spec, depth: usize) -> R {
        self.budget.spend(1)?;
        if depth > MAX_VALUE_DEPTH {
            return Err(format!("value nesting exceeds {MAX_VALUE_DEPTH} levels"));
        }
        if verb == 'T' {
            return self.pad(&v.go_type(), spec);
        }
        match v {
            Value::Missing | Value::Nil => {
                if depth == 0 && verb != 'v' {
                    return self.bad_verb(v, verb, depth);
                }
                self.pad("<nil>", spec)
            }
            Value::Bool(b) => match verb {
                'v' | 't' => self.pad(if *b { "true" } else { "false" }, spec),
                _ => self.bad_verb(v, verb, depth),
            },
            Value::Int(i) | Value::Int64(i) => self.integer(v, *i, verb, spec, depth),
            Value::Float(f) => match verb {
                'v' => self.float(*f, 'g', spec),
                'e' | 'E' | 'f' | 'F' | 'g' | 'G' => self.float(*f, verb, spec),
                _ => self.bad_verb(v, verb, depth),
            },
            Value::Str(s) => self.string(v, s, verb, spec, depth),
            Value::Version(ver) => match verb {
                'v' | 's' | 'q' | 'x' | 'X' => self.string(v, &ver.to_string(), verb, spec, depth),
                _ => self.bad_verb(v, verb, depth),
            },
            Value::JList(_) | Value::List(_) => {
                self.push("[")?;
                for (i, item) in v.seq_items().unwrap_or_default().iter().enumerate() {
                    if i > 0 {
                        self.push(" ")?;
                    }
                    self.value(item, verb, spec, depth + 1)?;
                }
                self.push("]")
            }
            Value::JMap(_) | Value::Map(_) => {
                self.push("map[")?;
                for (i, (k, item)) in v.map_entries().unwrap_or_default().iter().enumerate() {
                    if i > 0 {
                        self.push(" ")?;
                    }
                    self.string(&Value::Nil, k, verb, spec, depth + 1)?;
                    self.push(":")?;
                    self.value(item, verb, spec, depth + 1)?;
                }
                self.push("]")
            }
        }
    }

    fn string(&mut self, v: &Value<'_>, s: &str, verb: char, spec: &Spec, depth: usize) -> R {
        let s = match spec.prec {
            Some(p) => s.chars().take(p).collect::<String>(),
            None => s.to_string(),
        };
        match verb {
            'v' | 's' => self.pad(&s, spec),
            'q' => self.pad(&quote_with(&s, spec.plus), spec),
            'x' | 'X' => {
                let mut hex = String::new();
                for (i, b) in s.bytes().enumerate() {
                    if spec.space && i > 0 {
                        hex.push(' ');
                    }
                    if spec.sharp && (spec.space || i == 0) {
                        hex.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    let _ = if verb == 'x' {
                        write!(hex, "{b:02x}")
                    } else {
                        write!(hex, "{b:02X}")
                    };
                }
                self.pad(&hex, spec)
            }
            _ if v.is_nil() => self.bad_verb(&Value::string(s), verb, depth),
            _ => self.bad_verb(v, verb, depth),
        }
    }

    fn integer(&mut self, v: &Value<'_>, i: i64, verb: char, spec: &Spec, depth: usize) -> R {
        let (base, upper) = match verb {
            'v' | 'd' => (10, false),
            'b' => (2, false),
            'o' | 'O' => (8, false),
            'x' => (16, false),
            'X' => (16, true),
            'c' => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                return self.pad(&c.to_string(), spec);
            }
            'q' => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                let mut q = String::from("'");
                push_quoted_char(&mut q, c, '\'', spec.plus);
                q.push('\'');
                return self.pad(&q, spec);
            }
            'U' => {
                return self.pad(&format!("U+{i:04X}"), spec);
            }
            _ => return self.bad_verb(v, verb, depth),
        };
        let neg = i < 0;
        let u = i.unsigned_abs();
        let mut digits = match base {
            2 => format!("{u:b}"),
            8 => format!("{u:o}"),
            16 if upper => format!("{u:X}"),
            16 => format!("{u:x}"),
            _ => u.to_string(),
        };
        let mut zero_width = 0;
        if let Some(p) = spec.prec {
            if p == 0 && u == 0 {
                digits.clear();
            }
            zero_width = p;
        } else if spec.zero
            && !spec.minus
            && let Some(w) = spec.width
        {
            zero_width = if neg || spec.plus || spec.space {
                w.saturating_sub(1)
            } else {
                w
            };
        }
        if digits.len() < zero_width {
            digits = "0".repeat(zero_width - digits.len()) + &digits;
        }
        let mut prefix = String::new();
        if neg {
            prefix.push('-');
        } else if spec.plus {
            prefix.push('+');
        } else if spec.space {
            prefix.push(' ');
        }
        if spec.sharp {
            match base {
                2 => prefix.push_str("0b"),
                8 if !digits.starts_with('0') => prefix.push('0'),
                16 => prefix.push_str(if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        if verb == 'O' {
            prefix.push_str("0o");
        }
        let body = prefix + &digits;
        let spaces_only = Spec {
            zero: false,
            ..spec.clone()
        };
        self.pad(&body, &spaces_only)
    }

    fn float(&mut self, f: f64, verb: char, spec: &Spec) -> R {
        let prec = match (verb, spec.prec) {
            (_, Some(p)) => Some(p),
            ('e' | 'E' | 'f' | 'F', None) => Some(6),
            _ => None,
        };
        let num = format_float(f, verb, prec);
        let (sign, digits) = match num.strip_prefix('-') {
            Some(rest) => ("-", rest.to_string()),
            None => (
                if num.starts_with('+') {
                    ""
                } else if spec.plus {
                    "+"
                } else if spec.space {
                    " "
                } else {
                    ""
                },
                num.clone(),
            ),
        };
        if !f.is_finite() {
            let body = if f.is_nan() && !spec.plus && !spec.space {
                "NaN".to_string()
            } else if f.is_nan() {
                format!("{}NaN", if spec.plus { "+" } else { " " })
            } else if f > 0.0 && !spec.plus {
                format!("{}Inf", if spec.space { " " } else { "+" })
            } else {
                num.clone()
            };
            return self.pad(
                &body,
                &Spec {
                    zero: false,
                    ..spec.clone()
                },
            );
        }
        match spec.width {
            Some(w) if spec.zero && !spec.minus && w > sign.len() + digits.len() => {
                let fill = "0".repeat(w - sign.len() - digits.len());
                self.push(&format!("{sign}{fill}{digits}"))
            }
            _ => self.pad(&format!("{sign}{digits}"), spec),
        }
    }
}

/// Writes `v` as `{{ . }}` does: `%v`, with a missing value as `<no value>`.
pub(crate) fn write_value(out: &mut String, v: &Value<'_>, budget: &mut Budget) -> R {
    if let Value::Missing = v {
        out.push_str("<no value>");
        return Ok(());
    }
    if let Value::Str(s) = v {
        out.push_str(s);
    } else {
        let mut p = Printer {
            out: String::new(),
            budget,
        };
        p.value(v, 'v', &Spec::default(), 0)?;
        out.push_str(&p.out);
    }
    if out.len() > MAX_OUTPUT_BYTES {
        return Err(format!("output exceeds {MAX_OUTPUT_BYTES} bytes"));
    }
    Ok(())
}

/// `fmt.Sprintf("%v", v)` (Sprig's `toString`/`strval`).
pub(crate) fn to_string(v: &Value<'_>, budget: &mut Budget) -> Result<String, String> {
    if let Value::Str(s) = v {
        budget.alloc(s.len())?;
        return Ok(s.to_string());
    }
    let mut p = Printer {
        out: String::new(),
        budget,
    };
    p.value(v, 'v', &Spec::default(), 0)?;
    p.budget.alloc(p.out.len())?;
    Ok(p.out)
}

/// `fmt.Sprint`: operands separated by a space when neither side is a string.
pub(crate) fn sprint(args: &[Value<'_>], budget: &mut Budget) -> Result<String, String> {
    let mut p = Printer {
        out: String::new(),
        budget,
    };
    for (i, a) in args.iter().enumerate() {
        if i > 0 && a.as_str().is_none() && args[i - 1].as_str().is_none() {
            p.push(" ")?;
        }
        p.value(a, 'v', &Spec::default(), 0)?;
    }
    Ok(p.out)
}

/// `fmt.Sprintln`: operands always separated by spaces, newline appended.
pub(crate) fn sprintln(args: &[Value<'_>], budget: &mut Budget) -> Result<String, String> {
    let mut p = Printer {
        out: String::new(),
        budget,
    };
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.push(" ")?;
        }
        p.value(a, 'v', &Spec::default(), 0)?;
    }
    p.push("\n")?;
    Ok(p.out)
}

/// Reads a decimal number at `chars[*i..]`.
fn parse_num(chars: &[char], i: &mut usize) -> Option<usize> {
    let start = *i;
    let mut n: usize = 0;
    while let Some(d) = chars.get(*i).and_then(|c| c.to_digit(10)) {
        n = n.saturating_mul(10).saturating_add(d as usize);
        *i += 1;
    }
    (*i > start).then_some(n)
}

/// `fmt.Sprintf`, including Go's `%!verb(type=value)`, `%!v(MISSING)` and `%!(EXTRA ...)` forms.
pub(crate) fn sprintf(
    format: &str,
    args: &[Value<'_>],
    budget: &mut Budget,
) -> Result<String, String> {
    let mut p = Printer {
        out: String::new(),
        budget,
    };
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut arg = 0;
    let mut reordered = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            let mut buf = [0u8; 4];
            p.push(c.encode_utf8(&mut buf))?;
            continue;
        }
        let mut spec = Spec::flags(&chars, &mut i);
        // Explicit argument index `[n]`.
        let mut arg_index = |i: &mut usize, arg: &mut usize| {
            if chars.get(*i) == Some(&'[') {
                let mut j = *i + 1;
                if let Some(n) = parse_num(&chars, &mut j)
                    && chars.get(j) == Some(&']')
                    && n >= 1
                {
                    *arg = n - 1;
                    *i = j + 1;
                    reordered = true;
                }
            }
        };
        arg_index(&mut i, &mut arg);
        if chars.get(i) == Some(&'*') {
            i += 1;
            match args.get(arg) {
                Some(Value::Int(n) | Value::Int64(n)) => {
                    if *n < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX));
                }
                _ => p.push("%!(BADWIDTH)")?,
            }
            arg += 1;
        } else {
            spec.width = parse_num(&chars, &mut i);
        }
        if chars.get(i) == Some(&'.') {
            i += 1;
            arg_index(&mut i, &mut arg);
            if chars.get(i) == Some(&'*') {
                i += 1;
                match args.get(arg) {
                    Some(Value::Int(n) | Value::Int64(n)) if *n >= 0 => {
                        spec.prec = Some(usize::try_from(*n).unwrap_or(usize::MAX));
                    }
                    _ => p.push("%!(BADPREC)")?,
                }
                arg += 1;
            } else {
                spec.prec = Some(parse_num(&chars, &mut i).unwrap_or(0));
            }
        }
        arg_index(&mut i, &mut arg);
        if spec.width.is_some_and(|w| w > MAX_OUTPUT_BYTES)
            || spec.prec.is_some_and(|w| w > MAX_OUTPUT_BYTES)
        {
            return Err(format!("output exceeds {MAX_OUTPUT_BYTES} bytes"));
        }
        let Some(&verb) = chars.get(i) else {
            p.push("%!(NOVERB)")?;
            break;
        };
        i += 1;
        if verb == '%' {
            p.push("%")?;
            continue;
        }
        match args.get(arg) {
            None => p.push(&format!("%!{verb}(MISSING)"))?,
            Some(a) => p.value(a, verb, &spec, 0)?,
        }
        arg += 1;
    }
    if !reordered && arg < args.len() {
        p.extra(&args[arg..])?;
    }
    Ok(p.out)
}

impl Spec {
    /// Reads the flags at `chars[*i..]`.
    fn flags(chars: &[char], i: &mut usize) -> Spec {
        let mut spec = Spec::default();
        while let Some(&f) = chars.get(*i) {
            match f {
                '+' => spec.plus = true,
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            *i += 1;
        }
        spec
    }
}

impl Printer<'_> {
    /// `%!(EXTRA type=value, ...)` for the arguments no verb used.
    fn extra(&mut self, args: &[Value<'_>]) -> R {
        self.push("%!(EXTRA ")?;
        for (k, a) in args.iter().enumerate() {
            if k > 0 {
                self.push(", ")?;
            }
            if a.is_nil() {
                self.push("<nil>")?;
            } else {
                self.push(&a.go_type())?;
                self.push("=")?;
                self.value(a, 'v', &Spec::default(), 0)?;
            }
        }
        self.push(")")
    }
}
