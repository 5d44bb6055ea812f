//! What an Application deploys: its source or sources, the revision each is rendered at,
//! and, once rendered, the commit each resolved to.
//!
//! Argo CD records a single-source app (`spec.source`) as `source` / `revision` and a
//! multi-source app (`spec.sources`) as `sources` / `revisions`: in `status.sync`, the
//! operation's `syncResult`, `status.history` and `operation.sync`. [`Deployed`] writes
//! whichever form applies and compares itself with a recorded one, so the rest of the
//! engine never asks how many sources there are.

use argosy_crds::Application;
use argosy_crds::application::ApplicationSource;
use serde_json::{Map, Value, json};

/// The sources to render and the revision each is wanted at.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    /// `(source, revision)`: the operation's revision when it names one, else the
    /// source's `targetRevision`.
    pub sources: Vec<(ApplicationSource, String)>,
    /// From `spec.sources` (or an operation's `sources`): recorded in the plural fields.
    pub multi: bool,
}

impl Wanted {
    /// The sources to deploy: an operation's own (`source` or `sources`, as a rollback
    /// sets them), else the spec's; an operation's `revision` / `revisions` override the
    /// target revisions. The error says what is missing.
    pub fn of(app: &Application, operation: Option<&Value>) -> Result<Wanted, String> {
        let sync = operation.and_then(|o| o.get("sync"));
        let field = |name: &str| sync.and_then(|s| s.get(name)).filter(|v| !v.is_null());
        let parse = |v: &Value| serde_json::from_value::<ApplicationSource>(v.clone());
        let (sources, multi) = if let Some(list) = field("sources").and_then(Value::as_array) {
            let sources = list
                .iter()
                .map(parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("operation.sync.sources is invalid: {e}"))?;
            (sources, true)
        } else if let Some(one) = field("source") {
            let source =
                parse(one).map_err(|e| format!("operation.sync.source is invalid: {e}"))?;
            (vec![source], false)
        } else {
            match (&app.spec.source, app.spec.sources.as_slice()) {
                (Some(s), _) => (vec![s.clone()], false),
                (None, []) => return Err("spec.source is missing".to_owned()),
                (None, many) => (many.to_vec(), true),
            }
        };
        let single_revision = field("revision")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty());
        let revisions: Vec<&str> = field("revisions")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(|r| r.as_str().unwrap_or_default()).collect())
            .unwrap_or_default();
        let sources = sources
            .into_iter()
            .enumerate()
            .map(|(i, source)| {
                let chosen = if multi {
                    revisions.get(i).copied().filter(|r| !r.is_empty())
                } else {
                    single_revision
                };
                let revision = chosen.map_or_else(|| source.target_revision.clone(), str::to_owned);
                (source, revision)
            })
            .collect();
        Ok(Wanted { sources, multi })
    }
}

/// True when a source only names a repository for others to reference (`ref` without a
/// path or chart): it is resolved but renders nothing, as in Argo CD.
#[must_use]
pub fn is_reference_only(source: &ApplicationSource) -> bool {
    source.path.is_empty()
        && source.chart.is_empty()
        && source.extra.get("ref").is_some_and(|r| !r.is_null())
}

/// The resolved sources of one reconcile: each source and the commit it rendered from.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployed {
    sources: Vec<Value>,
    revisions: Vec<String>,
    multi: bool,
}

impl Deployed {
    /// `sources[i]` resolved to commit `revisions[i]`; `multi` as in [`Wanted`].
    #[must_use]
    pub fn new(sources: Vec<Value>, revisions: Vec<String>, multi: bool) -> Deployed {
        Deployed {
            sources,
            revisions,
            multi,
        }
    }

    /// `("revision", "abc…")` or `("revisions", ["abc…", "def…"])`.
    #[must_use]
    pub fn revision_field(&self) -> (&'static str, Value) {
        if self.multi {
            ("revisions", json!(self.revisions))
        } else {
            (
                "revision",
                json!(self.revisions.first().cloned().unwrap_or_default()),
            )
        }
    }

    /// `("source", {...})` or `("sources", [...])`.
    #[must_use]
    pub fn source_field(&self) -> (&'static str, Value) {
        if self.multi {
            ("sources", Value::Array(self.sources.clone()))
        } else {
            (
                "source",
                self.sources.first().cloned().unwrap_or(Value::Null),
            )
        }
    }

    /// `("sourceType", "Kustomize")` or `("sourceTypes", ["Kustomize", "Directory"])`,
    /// from the types of the rendered sources.
    #[must_use]
    pub fn source_type_field(&self, types: &[&'static str]) -> (&'static str, Value) {
        if self.multi {
            ("sourceTypes", json!(types))
        } else {
            (
                "sourceType",
                json!(types.first().copied().unwrap_or("Directory")),
            )
        }
    }

    /// Both fields, as a `syncResult` or a history entry holds them.
    #[must_use]
    pub fn fields(&self) -> Map<String, Value> {
        [self.revision_field(), self.source_field()]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    /// True when `recorded` (a `syncResult` or history entry) holds exactly these
    /// sources at these revisions.
    #[must_use]
    pub fn is_recorded_in(&self, recorded: Option<&Value>) -> bool {
        let Some(recorded) = recorded else {
            return false;
        };
        let (rk, rv) = self.revision_field();
        let (sk, sv) = self.source_field();
        recorded.get(rk) == Some(&rv) && recorded.get(sk) == Some(&sv)
    }

    /// Short commit ids for messages: `abc1234`, or `abc1234, def5678`.
    #[must_use]
    pub fn short(&self) -> String {
        self.revisions
            .iter()
            .map(|r| short_commit(r))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A commit id as messages and tables show it: its first 7 characters (Git's short form);
/// anything shorter (a tag, a chart version) as it is.
#[must_use]
pub fn short_commit(revision: &str) -> &str {
    revision.get(..7).unwrap_or(revision)
}

#[cfg(test)]
// The fixture builders take `json!` values, built in place for each call.
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;

    fn app(spec: Value) -> Application {
        serde_json::from_value(json!({"metadata": {"name": "a"}, "spec": spec})).unwrap()
    }

    fn source(path: &str, revision: &str) -> Value {
        json!({"repoURL": "https://git.example.com/r.git", "path": path, "targetRevision": revision})
    }

    #[test]
    fn spec_sources_and_operation_revisions() {
        let single = app(json!({"source": source("a", "main")}));
        let wanted = Wanted::of(&single, None).unwrap();
        assert!(!wanted.multi);
        assert_eq!(wanted.sources[0].1, "main");
        let op = json!({"sync": {"revision": "v2"}});
        assert_eq!(Wanted::of(&single, Some(&op)).unwrap().sources[0].1, "v2");

        let multi = app(json!({"sources": [source("a", "main"), source("b", "v1")]}));
        let wanted = Wanted::of(&multi, None).unwrap();
        assert!(wanted.multi);
        let revisions: Vec<&str> = wanted.sources.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(revisions, ["main", "v1"]);
        let op = json!({"sync": {"revisions": ["", "v2"]}});
        let wanted = Wanted::of(&multi, Some(&op)).unwrap();
        let revisions: Vec<&str> = wanted.sources.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            revisions,
            ["main", "v2"],
            "an empty revision keeps the target"
        );

        // A rollback names its own sources and revisions.
        let op = json!({"sync": {"sources": [source("old", "x")], "revisions": ["c0ffee"]}});
        let wanted = Wanted::of(&multi, Some(&op)).unwrap();
        assert_eq!(wanted.sources.len(), 1);
        assert_eq!(wanted.sources[0].0.path, "old");
        assert_eq!(wanted.sources[0].1, "c0ffee");

        assert!(Wanted::of(&app(json!({})), None).is_err());
    }

    #[test]
    fn fields_follow_the_number_of_sources() {
        let one = Deployed::new(vec![source("a", "main")], vec!["abcdef0123".into()], false);
        let fields = one.fields();
        assert_eq!(fields["revision"], "abcdef0123");
        assert_eq!(fields["source"]["path"], "a");
        assert!(one.is_recorded_in(Some(&Value::Object(fields))));
        assert_eq!(one.short(), "abcdef0");

        let two = Deployed::new(
            vec![source("a", "main"), source("b", "v1")],
            vec!["abcdef0123".into(), "9876543210".into()],
            true,
        );
        let fields = Value::Object(two.fields());
        assert_eq!(fields["revisions"], json!(["abcdef0123", "9876543210"]));
        assert_eq!(fields["sources"][1]["path"], "b");
        assert!(two.is_recorded_in(Some(&fields)));
        assert!(!one.is_recorded_in(Some(&fields)));
        assert!(!two.is_recorded_in(None));
        assert_eq!(two.short(), "abcdef0, 9876543");
    }

    #[test]
    fn a_ref_only_source_renders_nothing() {
        let values: ApplicationSource =
            serde_json::from_value(json!({"repoURL": "https://r", "ref": "values"})).unwrap();
        assert!(is_reference_only(&values));
        let chart: ApplicationSource =
            serde_json::from_value(json!({"repoURL": "https://r", "path": "chart", "ref": "x"}))
                .unwrap();
        assert!(!is_reference_only(&chart));
    }
}
