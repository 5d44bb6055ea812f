//! Which Lua health script judges a kind, in Argo CD's lookup order (`GetHealthScript`):
//! an exact `argocd-cm` override for the group/kind, then a wildcard override, then the
//! built-in script for the group/kind, then a built-in wildcard group (`_.crossplane.io`).
//! A kind no script covers falls back to Argosy's native checks (see [`super::assess_with`]).
//!
//! [`HealthChecks`] is an immutable snapshot: the controller builds a new one when
//! `argocd-cm` changes and swaps it in, so a changed script needs no restart.

use std::collections::BTreeMap;
use std::sync::Arc;

use argosy_crds::glob::Glob;
use serde_json::Value;

use super::lua::{self, Libraries, Limits, LuaError};
use super::verdict::Health;

/// One health script and where it came from.
#[derive(Clone, Debug)]
pub struct Script {
    source: Arc<str>,
    /// Names the chunk in error messages: the file or the `argocd-cm` key.
    origin: Arc<str>,
    libraries: Libraries,
}

impl Script {
    /// A script from `origin` (a file path or an `argocd-cm` key).
    #[must_use]
    pub fn new(source: &str, origin: &str, libraries: Libraries) -> Script {
        Script {
            source: source.into(),
            origin: origin.into(),
            libraries,
        }
    }

    /// Where the script came from.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The script's source.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The libraries it runs with.
    #[must_use]
    pub fn libraries(&self) -> Libraries {
        self.libraries
    }

    /// Runs the script on `live` (see [`lua::run`]).
    pub fn run(&self, live: &Value, limits: Limits) -> Result<Option<Health>, LuaError> {
        lua::run(&self.source, &self.origin, self.libraries, live, limits)
    }
}

/// Argo CD's key for a group and kind: `group/Kind`, or `Kind` for the core group.
#[must_use]
pub fn group_kind_key(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{group}/{kind}")
    }
}

/// Built-in scripts (a `--resource-customizations` directory), by exact `group/Kind` and by
/// wildcard group directories (`_.example.com/_` matches `*.example.com/*`), the wildcards
/// tried in sorted order as Argo CD sorts them.
#[derive(Clone, Debug, Default)]
pub struct BuiltinScripts {
    exact: BTreeMap<String, Script>,
    /// By directory path, sorted.
    wildcards: Vec<(String, Glob, Script)>,
}

impl BuiltinScripts {
    /// Adds the script of directory `key` (`group/Kind`, `Kind`, or with `_` wildcards).
    /// Built-in scripts run with the full libraries, as Argo CD runs its own.
    pub fn insert(&mut self, key: &str, source: &str, origin: &str) {
        let script = Script::new(source, origin, Libraries::Open);
        if key.contains('_') {
            // Argo CD: every `_` of the directory path is a `*` (not crossing `/`).
            let pattern = key.replace('_', "*");
            let at = self.wildcards.partition_point(|(k, _, _)| k.as_str() < key);
            self.wildcards
                .insert(at, (key.to_owned(), Glob::filepath(&pattern), script));
        } else {
            self.exact.insert(key.to_owned(), script);
        }
    }

    /// How many scripts there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcards.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn script_for(&self, key: &str) -> Option<&Script> {
        self.exact.get(key).or_else(|| {
            self.wildcards
                .iter()
                .find(|(_, glob, _)| glob.is_match(key))
                .map(|(_, _, script)| script)
        })
    }
}

/// Health scripts from `argocd-cm`, keyed `group/Kind` (`*` wildcards allowed, Argo CD's
/// gobwas globs). Argo CD tries wildcard keys in map order (it documents overlapping
/// wildcards as non-deterministic); Argosy tries them in key order.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    entries: BTreeMap<String, (Glob, Script)>,
}

impl Overrides {
    /// Sets the script of `key` (`group/Kind`, `Kind` or a pattern).
    pub fn insert(&mut self, key: &str, script: Script) {
        self.entries
            .insert(key.to_owned(), (Glob::gobwas(key, None), script));
    }

    /// The scripts by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Script)> {
        self.entries.iter().map(|(k, (_, s))| (k.as_str(), s))
    }

    fn script_for(&self, key: &str) -> Option<&Script> {
        self.entries.get(key).map(|(_, s)| s).or_else(|| {
            self.entries
                .values()
                .find(|(glob, _)| glob.is_match(key))
                .map(|(_, script)| script)
        })
    }
}

/// Every health script the controller knows, and the limits each run gets.
#[derive(Clone, Debug, Default)]
pub struct HealthChecks {
    overrides: Overrides,
    builtins: Arc<BuiltinScripts>,
    limits: Limits,
}

impl HealthChecks {
    /// `argocd-cm`'s overrides over the built-in scripts.
    #[must_use]
    pub fn new(builtins: Arc<BuiltinScripts>, overrides: Overrides) -> HealthChecks {
        HealthChecks {
            overrides,
            builtins,
            limits: Limits::default(),
        }
    }

    /// The same scripts with other limits per run.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> HealthChecks {
        self.limits = limits;
        self
    }

    /// The limits of each run.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The script for a group and kind, in Argo CD's lookup order; None: no script.
    #[must_use]
    pub fn script_for(&self, group: &str, kind: &str) -> Option<&Script> {
        let key = group_kind_key(group, kind);
        self.overrides
            .script_for(&key)
            .or_else(|| self.builtins.script_for(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(origin: &str) -> Script {
        Script::new("return nil", origin, Libraries::Restricted)
    }

    #[test]
    fn lookup_follows_argo_cds_order() {
        let mut builtins = BuiltinScripts::default();
        builtins.insert("example.com/Widget", "", "builtin example.com/Widget");
        builtins.insert("_.example.com/_", "", "builtin _.example.com/_");
        builtins.insert("_.b.example.com/_", "", "builtin _.b.example.com/_");
        builtins.insert("ConfigMap", "", "builtin ConfigMap");
        let builtins = Arc::new(builtins);
        let origin = |checks: &HealthChecks, group: &str, kind: &str| {
            checks
                .script_for(group, kind)
                .map(|s| s.origin().to_owned())
        };

        let none = HealthChecks::new(builtins.clone(), Overrides::default());
        assert_eq!(
            origin(&none, "example.com", "Widget").as_deref(),
            Some("builtin example.com/Widget")
        );
        // Wildcard directories in sorted order: `_.b.example.com` before `_.example.com`.
        assert_eq!(
            origin(&none, "a.b.example.com", "Gadget").as_deref(),
            Some("builtin _.b.example.com/_")
        );
        assert_eq!(
            origin(&none, "x.example.com", "Gadget").as_deref(),
            Some("builtin _.example.com/_")
        );
        // `*` does not cross `/`, and the group must have a dot before example.com.
        assert_eq!(origin(&none, "example.com", "Gadget"), None);
        assert_eq!(
            origin(&none, "", "ConfigMap").as_deref(),
            Some("builtin ConfigMap")
        );
        assert_eq!(origin(&none, "apps", "Deployment"), None);

        let mut overrides = Overrides::default();
        overrides.insert("*.example.com/*", user("cm wildcard"));
        overrides.insert("x.example.com/Gadget", user("cm exact"));
        let checks = HealthChecks::new(builtins, overrides);
        // Exact override, then wildcard override, both before any built-in.
        assert_eq!(
            origin(&checks, "x.example.com", "Gadget").as_deref(),
            Some("cm exact")
        );
        assert_eq!(
            origin(&checks, "y.example.com", "Gadget").as_deref(),
            Some("cm wildcard")
        );
        assert_eq!(
            origin(&checks, "a.b.example.com", "Widget").as_deref(),
            Some("cm wildcard")
        );
        // gobwas `*` crosses `/`: the wildcard key does not cover the bare group.
        assert_eq!(
            origin(&checks, "example.com", "Widget").as_deref(),
            Some("builtin example.com/Widget")
        );
    }
}
