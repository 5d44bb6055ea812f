//! Masterminds semver v3: versions and version constraints as Helm, Argo CD and Sprig read
//! them.
//!
//! All three use Masterminds semver v3 (v3.4.0 in Helm v4.1.4's build and in Argo CD's
//! `go.mod`); this module has its semantics, written from its documentation and behavior
//! (and checked against the real `helm` by `tests/tests/helm_repo.rs`). It is the one
//! implementation in Argosy: Sprig's `semver` and `semverCompare` (`funcs::semver`, with
//! Sprig's error texts) and the chart version the sync engine deploys for a `targetRevision`
//! (`argosy_sync_engine::charts::version`) both use it. Versions are [`semver::Version`]s;
//! Cargo's `VersionReq` has another syntax and other semantics. Pure: no IO.
//!
//! ## Versions ([`parse_version`])
//!
//! Looser than semantic versioning 2.0, as Masterminds' `NewVersion`: an optional leading `v`, minor and
//! patch may be left out (`1.2` is `1.2.0`, `v2` is `2.0.0`), and leading zeros in the three
//! numbers are dropped (`01.02.03` is `1.2.3`). Prerelease identifiers follow the specification (no
//! leading zero in a numeric one). Build metadata is kept but never compared ([`compare`]).
//! Prereleases compare as the specification says, except that a numeric identifier too large for 64 bits
//! compares as text, as in Masterminds.
//!
//! ## Constraints ([`Constraint`])
//!
//! Comparisons joined by spaces or commas (AND), groups joined by `||` (OR). Operators: `=`
//! (or none), `!=`, `>`, `<`, `>=` (`=>`), `<=` (`=<`), `~` (`~>`), `^`. A version in a
//! comparison may end in a wildcard, `x`, `X` or `*` (`1.2.x`, `1.*`, `*`), or stop early,
//! which is the same (`1.2` is `1.2.x`, `1` is `1.x`): with no operator or `=` that is a
//! range (`1.2` is `>=1.2.0 <1.3.0`), with `>` it is above the whole range (`>1.2` needs
//! 1.3 or later), with `<=` it includes the whole range (`<=1.2` takes 1.2.9). `~1.2.3` is
//! `>=1.2.3 <1.3.0`, `~1` is `>=1 <2`; `^1.2.3` is `>=1.2.3 <2.0.0`, `^0.2.3` is
//! `>=0.2.3 <0.3.0`, `^0.0.3` is `>=0.0.3 <0.0.4`. `A - B` (spaces around the hyphen) is
//! `>= A, <= B`; `1.2-1.4.5` is the version `1.2` with prerelease `1.4.5`.
//!
//! Prereleases: a group of comparisons matches a prerelease version only if one of its
//! comparisons names a prerelease (`>=1.0.0-0` takes every prerelease from 1.0.0 on, `*-0`
//! every version). So `>=1.0.0` never picks `2.0.0-rc.1`.
//!
//! A constraint longer than [`MAX_CONSTRAINT_BYTES`] is refused (Masterminds has no limit;
//! finding hyphen ranges here takes time quadratic in the length of a run of version
//! characters, and no real constraint is that long). Messages quote at most 128 bytes of an
//! input ([`shown`]).
//!
//! Masterminds' quirks are kept, since Helm and Argo CD have them: `!=*` matches all but
//! 0.0.0, `<=*` only 0.0.z, `^*` only 0.0.0; a hyphen range glued to what precedes it
//! (`1.5 1.0 - 2.0`, `>1.0 - 2.0`) is refused. An empty constraint is refused.
//!
//! A leaf module: it names nothing else of this crate.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

// The `semver` crate (this module shares its name: `::` names the crate).
pub use ::semver::Version;
use ::semver::{BuildMetadata, Prerelease};

/// The longest constraint [`Constraint::parse`] reads.
pub const MAX_CONSTRAINT_BYTES: usize = 1024;

/// How much of an input an error message quotes.
const SHOWN_BYTES: usize = 128;

/// `text` for a message, as this module's errors quote an input: at most 128 bytes of it
/// (cut at a character boundary), with `...` when cut.
#[must_use]
pub fn shown(text: &str) -> String {
    if text.len() <= SHOWN_BYTES {
        return text.to_owned();
    }
    let mut end = SHOWN_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", text.get(..end).unwrap_or_default())
}

/// A text that is no version ([`parse_version`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("version {input:?} is not a semantic version: {reason}")]
pub struct InvalidVersion {
    /// The text given ([`shown`]).
    pub input: String,
    /// What is wrong with it.
    pub reason: Malformed,
}

/// What is wrong with a version text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not shaped like a version at all (Masterminds' `ErrInvalidSemVer`).
    #[error(
        "expected [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD] with numbers and identifiers of [0-9A-Za-z-]"
    )]
    NotSemver,
    /// A number over 64 bits.
    #[error("a number is larger than 18446744073709551615")]
    Overflow,
    /// A numeric prerelease identifier with a leading zero.
    #[error("a numeric prerelease identifier starts with 0")]
    LeadingZero,
}

/// A text that is no constraint ([`Constraint::parse`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("constraint {input:?}: {reason}")]
pub struct InvalidConstraint {
    /// The text given ([`shown`]).
    pub input: String,
    /// Which part is wrong, and why.
    pub reason: String,
}

// ---------------------------------------------------------------------------------------
// Scanning
// ---------------------------------------------------------------------------------------

/// Go's `\s` (RE2): the only white space Masterminds' patterns know.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_space) {
        i += 1;
    }
    i
}

/// The end of the run of bytes from `i` that `class` accepts (`i` when there is none).
fn run(b: &[u8], mut i: usize, class: fn(u8) -> bool) -> usize {
    while b.get(i).copied().is_some_and(class) {
        i += 1;
    }
    i
}

/// A character of a prerelease or build identifier.
fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// A character of a number in a version.
fn is_version_part(b: u8) -> bool {
    b.is_ascii_digit()
}

/// A character of a number in a constraint: digits and wildcards. The `|` is Masterminds'
/// (its character class is written `[0-9|x|X|\*]`); such a part never parses as a number.
fn is_constraint_part(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'x' | b'X' | b'*' | b'|')
}

/// Where the pieces of a version are in the scanned text.
#[derive(Debug, Clone)]
struct Scanned {
    /// The whole version (`v` included).
    all: Range<usize>,
    major: Range<usize>,
    minor: Option<Range<usize>>,
    patch: Option<Range<usize>>,
    /// The prerelease, without its `-`.
    pre: Option<Range<usize>>,
    /// The build metadata, without its `+`.
    build: Option<Range<usize>>,
}

/// Dot-separated identifiers from `i` (at least one, none empty): their end.
fn identifiers(b: &[u8], i: usize) -> Option<usize> {
    let mut end = run(b, i, is_ident);
    if end == i {
        return None;
    }
    while b.get(end) == Some(&b'.') {
        let next = run(b, end + 1, is_ident);
        if next == end + 1 {
            break;
        }
        end = next;
    }
    Some(end)
}

/// The longest version at `start`: `v?` + part (`.` part (`.` part)?)? + (`-` identifiers)?
/// + (`+` identifiers)?, the parts made of `part` bytes. `None` when no part starts there.
fn scan(b: &[u8], start: usize, part: fn(u8) -> bool) -> Option<Scanned> {
    let mut i = start;
    if b.get(i) == Some(&b'v') {
        i += 1;
    }
    let end = run(b, i, part);
    if end == i {
        return None;
    }
    let major = i..end;
    i = end;
    let dotted = |i: &mut usize| {
        if b.get(*i) != Some(&b'.') {
            return None;
        }
        let end = run(b, *i + 1, part);
        if end == *i + 1 {
            return None;
        }
        let range = *i + 1..end;
        *i = end;
        Some(range)
    };
    let minor = dotted(&mut i);
    let patch = if minor.is_some() {
        dotted(&mut i)
    } else {
        None
    };
    let suffix = |i: &mut usize, sign: u8| {
        if b.get(*i) != Some(&sign) {
            return None;
        }
        let end = identifiers(b, *i + 1)?;
        let range = *i + 1..end;
        *i = end;
        Some(range)
    };
    let pre = suffix(&mut i, b'-');
    let build = suffix(&mut i, b'+');
    Some(Scanned {
        all: start..i,
        major,
        minor,
        patch,
        pre,
        build,
    })
}

// ---------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------

fn number(text: &str) -> Result<u64, Malformed> {
    // Only digits reach here; leading zeros are dropped, as Masterminds does.
    text.parse().map_err(|_| Malformed::Overflow)
}

fn parse(text: &str) -> Result<Version, Malformed> {
    let b = text.as_bytes();
    let scanned = scan(b, 0, is_version_part)
        .filter(|s| s.all.end == b.len())
        .ok_or(Malformed::NotSemver)?;
    let part = |r: &Range<usize>| text.get(r.clone()).unwrap_or_default();
    let major = number(part(&scanned.major))?;
    let minor = scanned.minor.as_ref().map_or(Ok(0), |r| number(part(r)))?;
    let patch = scanned.patch.as_ref().map_or(Ok(0), |r| number(part(r)))?;
    let pre_text = scanned.pre.as_ref().map_or("", part);
    if pre_text
        .split('.')
        .any(|id| id.len() > 1 && id.starts_with('0') && id.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(Malformed::LeadingZero);
    }
    // The scan admits only what the specification admits here; these cannot fail, but never panic.
    let pre = Prerelease::new(pre_text).map_err(|_| Malformed::NotSemver)?;
    let build = BuildMetadata::new(scanned.build.as_ref().map_or("", part))
        .map_err(|_| Malformed::NotSemver)?;
    Ok(Version {
        major,
        minor,
        patch,
        pre,
        build,
    })
}

/// Reads a version as Helm, Argo CD and Sprig do (Masterminds' `NewVersion`): `v` prefix
/// allowed, missing minor and patch are 0, leading zeros in the numbers dropped.
pub fn parse_version(text: &str) -> Result<Version, InvalidVersion> {
    parse(text).map_err(|reason| InvalidVersion {
        input: shown(text),
        reason,
    })
}

/// Orders versions by precedence as Masterminds' `Compare`: build metadata is ignored, a
/// prerelease is below its release, prerelease identifiers compare numerically when both
/// are numbers that fit 64 bits, numbers are below text, text compares by bytes, and a
/// longer list of identifiers is higher when the shorter is its prefix.
#[must_use]
pub fn compare(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare_prerelease(a.pre.as_str(), b.pre.as_str()),
        })
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => match compare_identifier(x.unwrap_or(""), y.unwrap_or("")) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if a.is_empty() {
        return Ordering::Less;
    }
    if b.is_empty() {
        return Ordering::Greater;
    }
    let numeric = |s: &str| {
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse::<u64>().ok()
        } else {
            None
        }
    };
    match (numeric(a), numeric(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

// ---------------------------------------------------------------------------------------
// Constraints
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// `=` or no operator: equal, or a tilde range when the version has a wildcard.
    Equal,
    NotEqual,
    Greater,
    Less,
    GreaterEq,
    LessEq,
    Tilde,
    Caret,
}

/// Where a comparison's version stops being exact (Masterminds' `dirty` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wildcard {
    None,
    /// `1.2`, `1.2.x`.
    Patch,
    /// `1`, `1.x`, `1.x.x`.
    Minor,
    /// `*`, `x`, `x.1.2` (the major part decides).
    All,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Comparator {
    op: Op,
    /// The version with its wildcards as 0 (`1.2.x-beta` is 1.2.0-beta).
    version: Version,
    wildcard: Wildcard,
}

impl Comparator {
    fn minor_wild(&self) -> bool {
        self.wildcard == Wildcard::Minor
    }

    fn patch_wild(&self) -> bool {
        self.wildcard == Wildcard::Patch
    }

    fn exact(&self) -> bool {
        self.wildcard == Wildcard::None
    }

    fn check(&self, v: &Version, prerelease: bool) -> bool {
        if !v.pre.is_empty() && !prerelease {
            return false;
        }
        let c = &self.version;
        match self.op {
            Op::Equal if self.exact() => compare(v, c) == Ordering::Equal,
            Op::Equal | Op::Tilde => self.tilde(v),
            Op::NotEqual => self.not_equal(v),
            Op::Greater => self.greater(v),
            Op::Less => compare(v, c) == Ordering::Less,
            Op::GreaterEq => compare(v, c) != Ordering::Less,
            Op::LessEq => self.less_eq(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.version;
        if !self.exact() {
            if v.major != c.major {
                return true;
            }
            if v.minor != c.minor && !self.minor_wild() {
                return true;
            }
            if self.minor_wild() {
                return false;
            }
            if v.patch != c.patch && !self.patch_wild() {
                return true;
            }
            if self.patch_wild() {
                return (!v.pre.is_empty() || !c.pre.is_empty())
                    && compare_prerelease(v.pre.as_str(), c.pre.as_str()) != Ordering::Equal;
            }
            // `*` with 0.0.z: compared as a whole below.
        }
        compare(v, c) != Ordering::Equal
    }

    fn greater(&self, v: &Version) -> bool {
        let c = &self.version;
        if self.exact() {
            return compare(v, c) == Ordering::Greater;
        }
        match v.major.cmp(&c.major) {
            Ordering::Greater => true,
            Ordering::Less => false,
            // `>1` needs 2 or later; `>1.2` needs 1.3 or later.
            Ordering::Equal if self.minor_wild() => false,
            Ordering::Equal if self.patch_wild() => v.minor > c.minor,
            Ordering::Equal => compare(v, c) == Ordering::Greater,
        }
    }

    fn less_eq(&self, v: &Version) -> bool {
        let c = &self.version;
        if self.exact() {
            return compare(v, c) != Ordering::Greater;
        }
        if v.major > c.major {
            return false;
        }
        !(v.major == c.major && v.minor > c.minor && !self.minor_wild())
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if compare(v, c) == Ordering::Less {
            return false;
        }
        // `~0.0.0` and `~*`: anything from 0.0.0 on.
        if (c.major, c.minor, c.patch) == (0, 0, 0) && !self.minor_wild() && !self.patch_wild() {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_wild())
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if compare(v, c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_wild() {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_wild() {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == c.patch
    }
}

/// Comparisons that must all hold; prereleases match only when one of them names one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Group {
    comparators: Vec<Comparator>,
    prerelease: bool,
}

/// A version constraint as Helm and Argo CD read it (see the module docs for the syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    text: String,
    groups: Vec<Group>,
}

impl Constraint {
    /// Reads a constraint (Masterminds' `NewConstraint`). The error names the part that
    /// does not parse.
    pub fn parse(text: &str) -> Result<Constraint, InvalidConstraint> {
        let fail = |reason: String| InvalidConstraint {
            input: shown(text),
            reason,
        };
        if text.len() > MAX_CONSTRAINT_BYTES {
            return Err(fail(format!(
                "{} bytes, more than the {MAX_CONSTRAINT_BYTES} a constraint may have",
                text.len()
            )));
        }
        let rewritten = rewrite_ranges(text);
        let groups = rewritten
            .split("||")
            .map(|segment| {
                let comparators = parse_group(segment).map_err(fail)?;
                let prerelease = comparators.iter().any(|c| !c.version.pre.is_empty());
                Ok(Group {
                    comparators,
                    prerelease,
                })
            })
            .collect::<Result<Vec<_>, InvalidConstraint>>()?;
        Ok(Constraint {
            text: text.to_owned(),
            groups,
        })
    }

    /// Whether `version` satisfies the constraint (Masterminds' `Check`): all comparisons of
    /// one `||` group hold.
    #[must_use]
    pub fn matches(&self, version: &Version) -> bool {
        self.groups.iter().any(|group| {
            group
                .comparators
                .iter()
                .all(|c| c.check(version, group.prerelease))
        })
    }

    /// The text it was read from.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Constraint {
    type Err = InvalidConstraint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Constraint::parse(s)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A hyphen range `A - B` (white space on both sides of the hyphen) at `i`, white space
/// before and after included: its end and the two versions.
fn range_at(s: &str, i: usize) -> Option<(usize, &str, &str)> {
    let b = s.as_bytes();
    let from = scan(b, skip_space(b, i), is_constraint_part)?.all;
    let hyphen = skip_space(b, from.end);
    if hyphen == from.end || b.get(hyphen) != Some(&b'-') {
        return None;
    }
    let to_start = skip_space(b, hyphen + 1);
    if to_start == hyphen + 1 {
        return None;
    }
    let to = scan(b, to_start, is_constraint_part)?.all;
    Some((skip_space(b, to.end), s.get(from)?, s.get(to)?))
}

/// Masterminds' first step: each hyphen range, found left to right where it starts first,
/// becomes `>= A, <= B ` in place (the white space around it included). Whatever is glued
/// to its left stays glued, which then fails to parse.
fn rewrite_ranges(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut copied, mut i) = (0, 0);
    while i < s.len() {
        match range_at(s, i) {
            Some((end, from, to)) => {
                out.push_str(s.get(copied..i).unwrap_or_default());
                out.push_str(">= ");
                out.push_str(from);
                out.push_str(", <= ");
                out.push_str(to);
                out.push(' ');
                copied = end;
                i = end;
            }
            None => i += 1,
        }
    }
    out.push_str(s.get(copied..).unwrap_or_default());
    out
}

/// The operator at `i` (the longest that fits) and where it ends.
fn op_at(b: &[u8], i: usize) -> (Op, usize) {
    let two = b.get(i..i + 2);
    let op2 = match two {
        Some(b"!=") => Some(Op::NotEqual),
        Some(b">=" | b"=>") => Some(Op::GreaterEq),
        Some(b"<=" | b"=<") => Some(Op::LessEq),
        Some(b"~>") => Some(Op::Tilde),
        _ => None,
    };
    if let Some(op) = op2 {
        return (op, i + 2);
    }
    match b.get(i) {
        Some(b'=') => (Op::Equal, i + 1),
        Some(b'>') => (Op::Greater, i + 1),
        Some(b'<') => (Op::Less, i + 1),
        Some(b'~') => (Op::Tilde, i + 1),
        Some(b'^') => (Op::Caret, i + 1),
        _ => (Op::Equal, i),
    }
}

/// One `||` group: comparisons separated by white space or a comma.
fn parse_group(segment: &str) -> Result<Vec<Comparator>, String> {
    let b = segment.as_bytes();
    let improper = |at: usize| {
        let rest = segment.get(at..).unwrap_or_default();
        if segment.trim().is_empty() {
            "an empty constraint (between `||`, or none at all)".to_owned()
        } else {
            format!(
                "{:?} is no list of comparisons (expected [OPERATOR]VERSION at {:?})",
                shown(segment),
                shown(rest)
            )
        }
    };
    let mut comparators = Vec::new();
    let mut i = skip_space(b, 0);
    loop {
        let (op, after_op) = op_at(b, i);
        let start = skip_space(b, after_op);
        let scanned = scan(b, start, is_constraint_part).ok_or_else(|| improper(i))?;
        comparators.push(comparator(segment, op, &scanned)?);
        let after = scanned.all.end;
        i = skip_space(b, after);
        if i == b.len() {
            return Ok(comparators);
        }
        if b.get(i) == Some(&b',') {
            i = skip_space(b, i + 1);
        } else if i == after {
            return Err(improper(i));
        }
    }
}

fn is_x(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

fn comparator(segment: &str, op: Op, s: &Scanned) -> Result<Comparator, String> {
    let text = |r: &Range<usize>| segment.get(r.clone()).unwrap_or_default();
    let pre = s
        .pre
        .as_ref()
        .map(|r| format!("-{}", text(r)))
        .unwrap_or_default();
    let major = text(&s.major);
    let minor = s.minor.as_ref().map(text);
    let patch = s.patch.as_ref().map(text);
    let (wildcard, version) = if is_x(major) {
        (Wildcard::All, format!("0.0.0{pre}"))
    } else if minor.is_none_or(is_x) {
        (Wildcard::Minor, format!("{major}.0.0{pre}"))
    } else if patch.is_none_or(is_x) {
        let minor = minor.unwrap_or_default();
        (Wildcard::Patch, format!("{major}.{minor}.0{pre}"))
    } else {
        (Wildcard::None, text(&s.all).to_owned())
    };
    let version = parse(&version).map_err(|m| {
        let reason = match m {
            Malformed::NotSemver => "its numbers are not numbers or wildcards (x, X, *)".to_owned(),
            other => other.to_string(),
        };
        format!("version {:?}: {reason}", shown(text(&s.all)))
    })?;
    Ok(Comparator {
        op,
        version,
        wildcard,
    })
}

#[cfg(test)]
mod tests;
