//! The health scripts users keep in `argocd-cm`, read as Argo CD's `util/settings` reads
//! them (`GetResourceOverrides`): first the older `resource.customizations` YAML block
//! (`<group>/<Kind>: {health.lua: ..., useOpenLibs: ...}`), then the split keys
//! `resource.customizations.health.<group>_<Kind>` and
//! `resource.customizations.useOpenLibs.<group>_<Kind>` over it (`<Kind>` alone for the
//! core group, `all` for every kind, `*` wildcards allowed).
//!
//! Argo CD fails the whole settings read on one bad entry; Argosy skips that entry with a
//! [`Warning`] naming its key and keeps the rest. Pure.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::lua::{self, Libraries};
use super::scripts::{Overrides, Script};

/// The `ConfigMap` Argo CD's settings live in.
pub const ARGOCD_CM: &str = "argocd-cm";

/// The older block key, and the prefix of the split keys.
const BLOCK_KEY: &str = "resource.customizations";

/// Customization types that are not about health (Argosy reads them elsewhere or not at
/// all); their keys are no reason for a warning here.
const OTHER_TYPES: [&str; 4] = [
    "actions",
    "ignoreDifferences",
    "ignoreResourceUpdates",
    "knownTypeFields",
];

/// An entry of `argocd-cm` that was skipped (or a script that does not compile), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argocd-cm key {key:?}: {problem}")]
pub struct Warning {
    /// The `ConfigMap` key.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

/// One entry of the `resource.customizations` block (other fields are not about health).
#[derive(Deserialize, Default)]
struct BlockEntry {
    #[serde(rename = "health.lua", default)]
    health_lua: Option<String>,
    #[serde(rename = "useOpenLibs", default)]
    use_open_libs: Option<bool>,
}

/// What one `group/Kind` key configures so far.
#[derive(Default)]
struct Entry {
    health_lua: String,
    use_open_libs: bool,
    /// The key the script came from (names it in errors).
    origin: String,
}

/// The health scripts of `argocd-cm`'s `data`, and the entries skipped.
#[must_use]
pub fn overrides(data: &BTreeMap<String, String>) -> (Overrides, Vec<Warning>) {
    let mut warnings = Vec::new();
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    if let Some(block) = data.get(BLOCK_KEY).filter(|b| !b.trim().is_empty()) {
        match parse_block(block) {
            Ok(block) => {
                for (key, value) in block {
                    let entry = entries.entry(key.clone()).or_default();
                    if let Some(script) = value.health_lua {
                        entry.health_lua = script;
                        entry.origin = format!("{BLOCK_KEY} {key}");
                    }
                    entry.use_open_libs = value.use_open_libs.unwrap_or_default();
                }
            }
            Err(problem) => warnings.push(Warning {
                key: BLOCK_KEY.to_owned(),
                problem,
            }),
        }
    }
    for (key, value) in data {
        let Some(rest) = key
            .strip_prefix(BLOCK_KEY)
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let warn = |problem: String| Warning {
            key: key.clone(),
            problem,
        };
        // `<type>.<group_kind>`: the group kind keeps its dots.
        let Some((kind_of, group_kind)) = rest.split_once('.') else {
            continue;
        };
        let target = match override_key(group_kind) {
            Ok(target) => target,
            Err(problem) => {
                warnings.push(warn(problem));
                continue;
            }
        };
        match kind_of {
            "health" => {
                let entry = entries.entry(target).or_default();
                entry.health_lua.clone_from(value);
                entry.origin.clone_from(key);
            }
            "useOpenLibs" => match go_parse_bool(value) {
                Some(open) => entries.entry(target).or_default().use_open_libs = open,
                None => warnings.push(warn(format!(
                    "{value:?} is not a boolean (true, false, 1, 0, t, f)"
                ))),
            },
            other if OTHER_TYPES.contains(&other) => {}
            other => warnings.push(warn(format!(
                "resource customization type {other} not supported"
            ))),
        }
    }
    let mut out = Overrides::default();
    for (target, entry) in entries {
        // Argo CD skips overrides with an empty script (another customization of the kind).
        if entry.health_lua.is_empty() {
            continue;
        }
        if let Err(e) = lua::check_syntax(&entry.health_lua, &entry.origin) {
            warnings.push(Warning {
                key: entry.origin.clone(),
                problem: format!("the health script does not compile: {e}"),
            });
        }
        let libraries = if entry.use_open_libs {
            Libraries::Open
        } else {
            Libraries::Restricted
        };
        out.insert(
            &target,
            Script::new(&entry.health_lua, &entry.origin, libraries),
        );
    }
    (out, warnings)
}

fn parse_block(block: &str) -> Result<BTreeMap<String, BlockEntry>, String> {
    argosy_crds::yaml_depth::check(block).map_err(|e| e.to_string())?;
    serde_yaml_ng::from_str::<Option<BTreeMap<String, BlockEntry>>>(block)
        .map(Option::unwrap_or_default)
        .map_err(|e| format!("not a map of group/Kind to customizations: {e}"))
}

/// `group_Kind` -> `group/Kind`; `Kind` stays; `all` is every kind (Argo CD's
/// `convertToOverrideKey`).
fn override_key(group_kind: &str) -> Result<String, String> {
    let parts: Vec<&str> = group_kind.split('_').collect();
    match parts.as_slice() {
        ["all"] => Ok("*/*".to_owned()),
        [group, kind] => Ok(format!("{group}/{kind}")),
        [kind] if !kind.is_empty() => Ok((*kind).to_owned()),
        _ => Err(format!(
            "the group kind should be <group>_<Kind> or <Kind>, got {group_kind:?}"
        )),
    }
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn origins(overrides: &Overrides) -> Vec<(String, String)> {
        overrides
            .iter()
            .map(|(k, s)| (k.to_owned(), s.origin().to_owned()))
            .collect()
    }

    #[test]
    fn split_keys_and_the_block_are_read_as_argo_cd_reads_them() {
        let (overrides, warnings) = overrides(&data(&[
            (
                "resource.customizations",
                "cert-manager.io/Certificate:\n  health.lua: return nil\n  useOpenLibs: true\nexample.com/Old:\n  health.lua: return {}\n  ignoreDifferences: '{}'\n",
            ),
            (
                "resource.customizations.health.example.com_Old",
                "return nil",
            ),
            (
                "resource.customizations.health.*.example.com_*",
                "return nil",
            ),
            ("resource.customizations.health.ConfigMap", "return nil"),
            ("resource.customizations.health.all", "return nil"),
            ("resource.customizations.useOpenLibs.ConfigMap", "TRUE"),
            (
                "resource.customizations.ignoreDifferences.apps_Deployment",
                "jsonPointers: []",
            ),
            ("resource.customizations.health", "too short"),
            ("other.key", "ignored"),
        ]));
        assert_eq!(warnings, vec![]);
        assert_eq!(
            origins(&overrides),
            vec![
                (
                    "*.example.com/*".to_owned(),
                    "resource.customizations.health.*.example.com_*".to_owned()
                ),
                (
                    "*/*".to_owned(),
                    "resource.customizations.health.all".to_owned()
                ),
                (
                    "ConfigMap".to_owned(),
                    "resource.customizations.health.ConfigMap".to_owned()
                ),
                (
                    "cert-manager.io/Certificate".to_owned(),
                    "resource.customizations cert-manager.io/Certificate".to_owned()
                ),
                // The split key wins over the block.
                (
                    "example.com/Old".to_owned(),
                    "resource.customizations.health.example.com_Old".to_owned()
                ),
            ]
        );
        let libraries: Vec<(&str, Libraries)> =
            overrides.iter().map(|(k, s)| (k, s.libraries())).collect();
        assert_eq!(
            libraries,
            vec![
                ("*.example.com/*", Libraries::Restricted),
                ("*/*", Libraries::Restricted),
                ("ConfigMap", Libraries::Open),
                ("cert-manager.io/Certificate", Libraries::Open),
                ("example.com/Old", Libraries::Restricted),
            ]
        );
    }

    #[test]
    fn bad_entries_are_warnings_not_failures() {
        let (overrides, warnings) = overrides(&data(&[
            ("resource.customizations", "[not, a, map"),
            ("resource.customizations.health.a_b_c", "return nil"),
            ("resource.customizations.useOpenLibs.example.com_W", "yes"),
            ("resource.customizations.colour.example.com_W", "blue"),
            (
                "resource.customizations.health.example.com_Broken",
                "return {",
            ),
            (
                "resource.customizations.health.example.com_Good",
                "return nil",
            ),
        ]));
        let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "resource.customizations",
                "resource.customizations.colour.example.com_W",
                "resource.customizations.health.a_b_c",
                "resource.customizations.useOpenLibs.example.com_W",
                "resource.customizations.health.example.com_Broken",
            ]
        );
        assert!(
            warnings[4].to_string().contains("does not compile"),
            "{}",
            warnings[4]
        );
        // The broken script stays: running it reports the compile error, as Argo CD does.
        assert_eq!(
            origins(&overrides)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>(),
            vec!["example.com/Broken", "example.com/Good"]
        );
    }
}
