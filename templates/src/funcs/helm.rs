//! Helm's own functions beyond Sprig: `include` and `required` (only in
//! [`Library::Helm`](crate::Library::Helm)).

use super::func::{Eval, FnResult, Func, Param, arg, fixed, str_arg};
use crate::go::budget::Budget;
use crate::go::value::Value;

use Param::{Any, Str};

pub(super) const FUNCS: &[Func] = &[
    Func {
        name: "include",
        params: &[Str, Any],
        variadic: None,
        eval: Eval::Include,
    },
    fixed("required", &[Str, Any], required),
];

/// `required MESSAGE VALUE`: VALUE, or the error MESSAGE when VALUE is nil (absent) or the empty
/// string. As in Helm, other empty values (`0`, `false`, `[]`) pass.
fn required<'a>(_: &mut Budget, a: &[Value<'a>]) -> FnResult<'a> {
    let value = arg(a, 1);
    if value.is_nil() || value.as_str() == Some("") {
        return Err(str_arg(a, 0).to_string());
    }
    Ok(value)
}
