//! Sprig's `semver` and `semverCompare`, with Masterminds/semver v3 semantics: lenient versions
//! (`v1.2` is 1.2.0), constraints with `= != > < >= <= ~ ~> ^`, `x`/`*` wildcards, hyphen ranges,
//! `,`/space for AND and `||` for OR, and pre-releases matching only constraints that name one.

use std::cmp::Ordering;

use super::func::{FnResult, Func, Param, fixed, str_arg};
use super::version::Version;
use crate::go::budget::Budget;
use crate::go::value::Value;

use Param::Str;

pub(crate) const FUNCS: &[Func] = &[
    fixed("semver", &[Str], semver),
    fixed("semverCompare", &[Str, Str], semver_compare),
];

// The template-visible methods live here, beside the `semver` functions, because they
// produce engine values: `version` stays a leaf that `go::value` can hold.
impl Version {
    /// The methods a template can call on a version (`(semver "1.2.3").Major`).
    // Go's `Major()` etc. return `uint64`; the engine has no unsigned value, so a segment above
    // `i64::MAX` (never seen in real versions) wraps, where Go would print it unchanged.
    #[allow(clippy::cast_possible_wrap)]
    pub(crate) fn method<'a>(&self, name: &str) -> Option<Value<'a>> {
        Some(match name {
            "Major" => Value::Int64(self.major as i64),
            "Minor" => Value::Int64(self.minor as i64),
            "Patch" => Value::Int64(self.patch as i64),
            "Prerelease" => Value::string(self.pre.as_str()),
            "Metadata" => Value::string(self.metadata.as_str()),
            "Original" => Value::string(self.original.as_str()),
            "String" => Value::string(self.to_string()),
            _ => return None,
        })
    }
}

/// One comparison of a constraint; `minor_dirty`/`patch_dirty` mark wildcard parts.
struct Constraint {
    op: &'static str,
    con: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

fn parse_constraint(op: &'static str, text: &str) -> Result<Constraint, String> {
    let improper = || format!("improper constraint: {op}{text}");
    let body = text.strip_prefix('v').unwrap_or(text);
    let split = body.find(['-', '+']).unwrap_or(body.len());
    let (core, tail) = body.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !(is_x(p) || p.bytes().all(|b| b.is_ascii_digit())))
    {
        return Err(improper());
    }
    let part = |i: usize| parts.get(i).copied().unwrap_or("");
    let (mut minor_dirty, mut patch_dirty, mut dirty) = (false, false, false);
    let ver = if is_x(part(0)) {
        dirty = true;
        format!("0.0.0{tail}")
    } else if is_x(part(1)) || part(1).is_empty() {
        minor_dirty = true;
        dirty = true;
        format!("{}.0.0{tail}", part(0))
    } else if is_x(part(2)) || part(2).is_empty() {
        patch_dirty = true;
        dirty = true;
        format!("{}.{}.0{tail}", part(0), part(1))
    } else {
        format!("{core}{tail}")
    };
    Ok(Constraint {
        op,
        con: Version::parse(&ver).map_err(|_| improper())?,
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

impl Constraint {
    fn check(&self, v: &Version) -> bool {
        let c = &self.con;
        // Pre-releases only satisfy constraints that mention one (plain `!=` excepted).
        if !v.pre.is_empty() && c.pre.is_empty() && (self.op != "!=" || self.dirty) {
            return false;
        }
        match self.op {
            "" | "=" if !self.dirty => v.compare(c) == Ordering::Equal,
            "" | "=" | "~" => self.tilde(v),
            "!=" => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if self.minor_dirty {
                        return false;
                    }
                    if c.minor != v.minor {
                        return true;
                    }
                    if self.patch_dirty {
                        return false;
                    }
                }
                v.compare(c) != Ordering::Equal
            }
            ">" => {
                if !self.dirty {
                    return v.compare(c) == Ordering::Greater;
                }
                match v.major.cmp(&c.major) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal if self.minor_dirty => false,
                    Ordering::Equal if self.patch_dirty => v.minor > c.minor,
                    Ordering::Equal => v.compare(c) == Ordering::Greater,
                }
            }
            "<" => v.compare(c) == Ordering::Less,
            ">=" => v.compare(c) != Ordering::Less,
            "<=" => {
                if !self.dirty {
                    return v.compare(c) != Ordering::Greater;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            _ => self.caret(v),
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        c.patch == v.patch
    }
}

const OPS: [&str; 11] = [">=", "=>", "<=", "=<", "!=", "~>", "=", ">", "<", "~", "^"];

fn canonical(op: &'static str) -> &'static str {
    match op {
        "=>" => ">=",
        "=<" => "<=",
        "~>" => "~",
        other => other,
    }
}

fn is_version_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '*')
}

/// Parses `>= 1.2, < 2 || ~3.1` into OR-groups of AND-ed constraints.
fn parse_constraints(input: &str) -> Result<Vec<Vec<Constraint>>, String> {
    input
        .split("||")
        .map(|group| {
            let improper = || format!("improper constraint: {group}");
            let mut out = Vec::new();
            let mut rest = group.trim_start();
            while !rest.is_empty() {
                let op = OPS
                    .iter()
                    .find(|op| rest.starts_with(**op))
                    .copied()
                    .unwrap_or("");
                rest = rest[op.len()..].trim_start();
                let end = rest
                    .find(|c: char| !is_version_char(c))
                    .unwrap_or(rest.len());
                let (ver, after) = rest.split_at(end);
                if ver.is_empty() {
                    return Err(improper());
                }
                let after_trim = after.trim_start();
                // Hyphen range `a - b` means `>= a, <= b`.
                if op.is_empty() && after.len() > after_trim.len() && after_trim.starts_with("- ") {
                    let tail = after_trim[2..].trim_start();
                    let end2 = tail
                        .find(|c: char| !is_version_char(c))
                        .unwrap_or(tail.len());
                    let (hi, after2) = tail.split_at(end2);
                    out.push(parse_constraint(">=", ver)?);
                    out.push(parse_constraint("<=", hi)?);
                    rest = after2.trim_start().trim_start_matches(',').trim_start();
                    continue;
                }
                out.push(parse_constraint(canonical(op), ver)?);
                rest = after_trim
                    .strip_prefix(',')
                    .unwrap_or(after_trim)
                    .trim_start();
            }
            if out.is_empty() {
                return Err(improper());
            }
            Ok(out)
        })
        .collect()
}

fn semver<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Version(std::rc::Rc::new(Version::parse(str_arg(
        a, 0,
    ))?)))
}

fn semver_compare<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let groups = parse_constraints(str_arg(a, 0))?;
    let v = Version::parse(str_arg(a, 1))?;
    Ok(Value::Bool(
        groups.iter().any(|g| g.iter().all(|c| c.check(&v))),
    ))
}
