//! The template function library: Go's builtins, Sprig's `GenericFuncMap` (minus `env`,
//! `expandenv` and `getHostByName`, as in Argo) and Argo's additions.
//!
//! Each function declares the Go parameter types of the function it stands for, so the executor
//! converts and rejects arguments exactly like Go's reflection-based calls do; implementations then
//! receive already-typed [`Value`]s. A function error (or a Go panic, which `text/template`
//! recovers) becomes `error calling NAME: MESSAGE`.
//!
//! Nothing here reads the environment, files, the network or the clock. Deliberately absent:
//! `env`, `expandenv`, `getHostByName` (removed by Argo); the date functions (`now`, `date`,
//! `dateModify`, `ago`, `toDate`, ...), random ones (`randAlpha`, `uuidv4`, `shuffle`, ...), and
//! crypto functions (`genCA`, `bcrypt`, `htpasswd`, `derivePassword`, `encryptAES`, ...), which are
//! non-deterministic or need key material; `duration`/`durationRound`; `urlParse`/`urlJoin`;
//! `call`; and `tpl`, which newer Argo CD versions add but the specification does not list. Using
//! one is a parse error (`function "now" not defined`).
//!
//! [`Library::Helm`](crate::mode::Library::Helm) adds Helm's `include` and `required` (module `helm`) on top, for rendering
//! Helm charts; `ApplicationSet` templates never see them.

// Every template function has the table's `Imp` signature, whose `FnResult` lets any function
// fail; many cannot, and the helpers they end with (`any_list`, `int_list`, ...) return the
// same type.
#![allow(clippy::unnecessary_wraps)]

mod builtins;
mod dicts;
mod encoding;
pub(crate) mod func;
mod helm;
mod lists;
mod math;
mod regex;
pub(crate) mod semver;
mod strings;
mod types;
pub(crate) mod version;
pub(crate) mod yamlfns;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::mode::Library;
use func::Func;

/// Looks a function up by name in `library` (parse time).
pub(crate) fn lookup(name: &str, library: Library) -> Option<&'static Func> {
    let extra: &'static [Func] = match library {
        Library::ArgoCd => &[],
        Library::Helm => helm::FUNCS,
    };
    argo_cd(name).or_else(|| extra.iter().find(|f| f.name == name))
}

/// Argo CD's function map.
fn argo_cd(name: &str) -> Option<&'static Func> {
    static TABLE: OnceLock<HashMap<&'static str, &'static Func>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            [
                builtins::FUNCS,
                strings::FUNCS,
                lists::FUNCS,
                dicts::FUNCS,
                math::FUNCS,
                encoding::FUNCS,
                regex::FUNCS,
                semver::FUNCS,
                types::FUNCS,
                yamlfns::FUNCS,
            ]
            .into_iter()
            .flatten()
            .map(|f| (f.name, f))
            .collect()
        })
        .get(name)
        .copied()
}

#[cfg(test)]
mod tests;
