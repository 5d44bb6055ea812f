//! Sprig's `semver` and `semverCompare`: Masterminds semver v3 as [`crate::semver`] reads it
//! (lenient versions, constraints with `= != > < >= <= ~ ~> ^`, wildcards, hyphen ranges, `,`
//! or space for AND, `||` for OR, prereleases only for groups that name one), with Sprig's
//! error texts.

use super::func::{FnResult, Func, Param, fixed, str_arg};
use super::version::Version;
use crate::go::budget::Budget;
use crate::go::value::Value;
use crate::semver::{Constraint, MAX_CONSTRAINT_BYTES};

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
            "Major" => Value::Int64(self.version.major as i64),
            "Minor" => Value::Int64(self.version.minor as i64),
            "Patch" => Value::Int64(self.version.patch as i64),
            "Prerelease" => Value::string(self.version.pre.as_str()),
            "Metadata" => Value::string(self.version.build.as_str()),
            "Original" => Value::string(self.original.as_str()),
            "String" => Value::string(self.to_string()),
            _ => return None,
        })
    }
}

fn semver<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Version(std::rc::Rc::new(Version::parse(str_arg(
        a, 0,
    ))?)))
}

fn semver_compare<'a>(b: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let text = str_arg(a, 0);
    // Reading a constraint takes time quadratic in its length (up to
    // `MAX_CONSTRAINT_BYTES`, then it is refused): work spent alike, so a loop over a long
    // constraint runs out of budget, not of time.
    let len = text.len().min(MAX_CONSTRAINT_BYTES + 1) as u64;
    b.spend(len * len / 64)?;
    // Masterminds names the `||` group that fails (or says "constraint parser error" when
    // a comparison's version does not parse); the whole text names it too.
    let constraint = Constraint::parse(text).map_err(|_| format!("improper constraint: {text}"))?;
    let v = Version::parse(str_arg(a, 1))?;
    Ok(Value::Bool(constraint.matches(&v.version)))
}
