//! `ApplicationSet`: generators that produce parameter sets and the template they stamp.
//!
//! Field names and nesting follow Argo CD's `applicationset_types.go`. Generator entries
//! decode leniently but lose nothing: a key that names no generator (a misspelling, a
//! generator of a newer Argo CD) stays in [`Generator::extra`], and an entry that does not
//! decode at all (a Matrix child of the wrong shape, which the CRD schema cannot check)
//! keeps its raw fields and its decode error in [`Generator::invalid`]. The generators
//! pipeline turns both into an error that names the entry, never silently nothing; and
//! one bad `ApplicationSet` never fails the decoding of a whole watch or list.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::extra::Extra;
use crate::resource::argo_resource;

/// An Argo CD `ApplicationSet`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSet {
    /// `argoproj.io/v1alpha1`.
    #[serde(default = "crate::resource::default_api_version")]
    pub api_version: String,
    /// `ApplicationSet`.
    #[serde(default = "ApplicationSet::default_kind")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Generators, template and policies.
    #[serde(default)]
    pub spec: ApplicationSetSpec,
    /// Conditions and owned Applications, as last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationSetStatus>,
}
argo_resource!(ApplicationSet, "ApplicationSet", "applicationsets");

/// `spec` of an `ApplicationSet`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetSpec {
    /// Render with Go `text/template` instead of fasttemplate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub go_template: bool,
    /// Go template options (e.g. `missingkey=error`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub go_template_options: Vec<String>,
    /// The generators; their parameter sets are concatenated.
    #[serde(default, deserialize_with = "lenient_generators")]
    pub generators: Vec<Generator>,
    /// The Application template rendered for each parameter set.
    #[serde(default)]
    pub template: ApplicationSetTemplate,
    /// A template rendered per parameter set and patched over the rendered Application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_patch: Option<String>,
    /// What the controller may do to owned Applications (create, update, delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<ApplicationSetSyncPolicy>,
    /// Annotations and labels whose live values are kept on update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserved_fields: Option<ApplicationPreservedFields>,
    /// Fields of owned Applications left as they are on update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_application_differences: Vec<ApplicationMatchExpression>,
    /// Rollout strategy (e.g. `RollingSync`), kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Value>,
    /// Argo CD's switch for selectors of nested Matrix/Merge generators, kept for round trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_nested_selectors: Option<bool>,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// The Application template: metadata plus a free-form `spec`, rendered leaf by leaf.
///
/// `spec` stays JSON because every string in it (and every map key) is a template and
/// the result is only validated as an `ApplicationSpec` after rendering.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetTemplate {
    /// Templated Application metadata.
    #[serde(default, skip_serializing_if = "TemplateMeta::is_empty")]
    pub metadata: TemplateMeta,
    /// Templated Application `spec`, as JSON.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub spec: Value,
}

impl ApplicationSetTemplate {
    /// True when nothing is set (the zero value of a generator-level template).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.metadata.is_empty() && json_is_empty(&self.spec)
    }
}

/// `template.metadata`: the only metadata fields Argo CD templates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMeta {
    /// Application name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Application namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Application labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Application annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Application finalizers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

impl TemplateMeta {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One entry of `spec.generators` (or of a Matrix/Merge child list).
///
/// Argo CD models this as a struct of optional generators: at top level several may be
/// set in one entry and all of them run; inside Matrix/Merge exactly one must be set.
///
/// The CRD keeps unknown keys of an entry (`x-kubernetes-preserve-unknown-fields`) so that
/// they reach [`Generator::extra`] and can be reported instead of being pruned away.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct Generator {
    /// `list` generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<ListGenerator>,
    /// `clusters` generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<ClusterGenerator>,
    /// `git` generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitGenerator>,
    /// `matrix` generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<CombinationGenerator>,
    /// `merge` generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<CombinationGenerator>,
    /// Recognised so that manifests parse; not generated by Argosy yet (a clear error says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub scm_provider: Option<Value>,
    /// Recognised so that manifests parse; not generated by Argosy yet (a clear error says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub cluster_decision_resource: Option<Value>,
    /// Recognised so that manifests parse; not generated by Argosy yet (a clear error says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub pull_request: Option<Value>,
    /// Recognised so that manifests parse; not generated by Argosy yet (a clear error says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub plugin: Option<Value>,
    /// Post-selector applied to the generated parameter sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Keys that name no known generator (kept verbatim; generation reports them).
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
    /// Why the entry could not be decoded (`path: error`), if it could not; its raw
    /// fields are then all in [`Self::extra`], so it serializes back unchanged.
    #[serde(skip)]
    #[schemars(skip)]
    pub invalid: Option<String>,
}

impl Generator {
    /// Decodes one generator entry; never fails (see [`Self::invalid`]).
    #[must_use]
    pub fn from_value(value: Value) -> Generator {
        match serde_path_to_error::deserialize::<_, Generator>(&value) {
            Ok(generator) => generator,
            Err(e) => {
                let path = e.path().to_string();
                let error = e.into_inner();
                let invalid = if path.is_empty() || path == "." {
                    error.to_string()
                } else {
                    format!("{path}: {error}")
                };
                let extra = match value {
                    Value::Object(map) => map.into_iter().collect(),
                    _ => Extra::new(),
                };
                Generator {
                    extra,
                    invalid: Some(invalid),
                    ..Generator::default()
                }
            }
        }
    }
}

/// Decodes a generator list entry by entry, so one bad entry is reported by generation
/// instead of failing the decoding of the whole object (and of every watch event or list
/// it is part of).
fn lenient_generators<'de, D>(deserializer: D) -> Result<Vec<Generator>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw: Option<Vec<Value>> = Option::deserialize(deserializer)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(Generator::from_value)
        .collect())
}

/// `list` generator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListGenerator {
    /// The parameter sets, one element each.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub elements: Vec<Value>,
    /// The parameter sets as a YAML list (usually a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elements_yaml: Option<String>,
    /// Template overriding the `ApplicationSet`'s for these parameter sets.
    #[serde(default, skip_serializing_if = "ApplicationSetTemplate::is_empty")]
    pub template: ApplicationSetTemplate,
}

/// `clusters` generator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGenerator {
    /// Label selector over cluster Secrets; `None` selects all clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Template overriding the `ApplicationSet`'s for these parameter sets.
    #[serde(default, skip_serializing_if = "ApplicationSetTemplate::is_empty")]
    pub template: ApplicationSetTemplate,
    /// Extra parameters, as `values.<key>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// Produce one parameter set listing all clusters instead of one per cluster.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flat_list: bool,
}

/// `git` generator (directories or files).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitGenerator {
    /// URL of the Git repository.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Directory patterns: one parameter set per matching directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directories: Vec<GitPathItem>,
    /// File patterns: parameter sets read from each matching JSON/YAML file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<GitPathItem>,
    /// Branch, tag or commit to read.
    #[serde(default)]
    pub revision: String,
    /// How often to read the repository again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<i64>,
    /// Template overriding the `ApplicationSet`'s for these parameter sets.
    #[serde(default, skip_serializing_if = "ApplicationSetTemplate::is_empty")]
    pub template: ApplicationSetTemplate,
    /// Prefix for the `path` parameters.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_param_prefix: String,
    /// Extra parameters, as `values.<key>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
}

/// One `directories[]` or `files[]` entry of the git generator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitPathItem {
    /// Glob pattern of the path.
    pub path: String,
    /// Exclude matching paths instead of including them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude: bool,
}

/// `matrix` and `merge` generators (merge uses `mergeKeys`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CombinationGenerator {
    /// The child generators.
    #[serde(default, deserialize_with = "lenient_generators")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    #[schemars(with = "Vec<serde_json::Map<String, Value>>")]
    pub generators: Vec<Generator>,
    /// Parameters that identify a set across children (`merge` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merge_keys: Vec<String>,
    /// Template overriding the `ApplicationSet`'s for these parameter sets.
    #[serde(default, skip_serializing_if = "ApplicationSetTemplate::is_empty")]
    pub template: ApplicationSetTemplate,
}

/// `spec.syncPolicy` of an `ApplicationSet`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetSyncPolicy {
    /// Keep the resources of owned Applications when the `ApplicationSet` is deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preserve_resources_on_deletion: bool,
    /// `create-only`, `create-update`, `create-delete` or `sync` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications_sync: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// `spec.preservedFields`: label/annotation keys whose live values are kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPreservedFields {
    /// Annotation keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<String>,
    /// Label keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// One `spec.ignoreApplicationDifferences` entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationMatchExpression {
    /// Name of the Application it applies to; `None` for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields to ignore, as JSON pointers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    /// Fields to ignore, as jq path expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
}

/// `status` of an `ApplicationSet`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetStatus {
    /// Status conditions (`ErrorOccurred`, `ResourcesUpToDate`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ApplicationSetCondition>,
    /// Owned Applications and their statuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceStatus>,
    /// Number of owned Applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_count: Option<i64>,
    /// Owned Applications by sync and health status (Argosy's; `resources` is capped,
    /// these counts are not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_status_counts: Option<ApplicationStatusCounts>,
    /// Argo CD's progressive sync progress of each owned Application (`RollingSync` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub application_status: Vec<ApplicationSetApplicationStatus>,
    /// Argosy's rollout state beyond Argo CD's (bake time, failure budget, rollback,
    /// pause/abort/retry); Argo CD ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutState>,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// One `status.applicationStatus[]` entry (Argo CD's `ApplicationSetApplicationStatus`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetApplicationStatus {
    /// The Application's name.
    pub application: String,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Why the status is what it is.
    #[serde(default)]
    pub message: String,
    /// `Waiting`, `Pending`, `Progressing` or `Healthy`.
    #[serde(default)]
    pub status: String,
    /// The 1-based step that selects the Application (`"-1"` for none).
    #[serde(default)]
    pub step: String,
    /// The revisions the Application's status compares against (`status.sync.revision(s)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_revisions: Vec<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// `status.rollout`: what Argosy adds to a `RollingSync` (not in Argo CD).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutState {
    /// `Progressing`, `Baking`, `Paused`, `Halted`, `Aborted` or `Completed`.
    #[serde(default)]
    pub phase: String,
    /// The 1-based step in progress (0 when none).
    #[serde(default)]
    pub step: u32,
    /// Why the rollout is in this phase.
    #[serde(default)]
    pub message: String,
    /// When `phase` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub since: String,
    /// Applications this rollout started a sync of, with when (RFC 3339): the ones a
    /// rollback returns to the revision they ran before.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub synced: BTreeMap<String, String>,
    /// Applications whose rollback sync was requested.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolled_back: Vec<String>,
    /// The Applications whose failure halted the rollout, with the revisions they failed
    /// at; the halt ends when their target revisions change (a new commit) or on retry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<String, Vec<String>>,
    /// The abort and retry requests (annotation values) already acted on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub handled_abort: String,
    /// See `handled_abort`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub handled_retry: String,
}

/// Applications counted by `status.sync.status` and `status.health.status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatusCounts {
    /// All owned Applications.
    #[serde(default)]
    pub total: u64,
    /// Count per sync status.
    #[serde(default)]
    pub by_sync: BTreeMap<String, u64>,
    /// Count per health status.
    #[serde(default)]
    pub by_health: BTreeMap<String, u64>,
}

impl ApplicationStatusCounts {
    /// Counts one Application with these statuses.
    pub fn add(&mut self, sync: &str, health: &str) {
        self.total += 1;
        *self.by_sync.entry(sync.to_owned()).or_default() += 1;
        *self.by_health.entry(health.to_owned()).or_default() += 1;
    }
}

/// One `ApplicationSet` status condition (Argo CD's shape, not `metav1.Condition`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetCondition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Human-readable details.
    #[serde(default)]
    pub message: String,
    /// Machine-readable reason.
    #[serde(default)]
    pub reason: String,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// One `status.resources[]` entry: an Application owned by the `ApplicationSet`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// API group of the Application (`argoproj.io`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// API version of the Application (`v1alpha1`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// `Application`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Namespace of the Application.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name of the Application.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Sync status of the Application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Health of the Application, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// True for the values Go's `mergo` treats as empty: null, "", false, 0, [] and {}.
#[must_use]
pub fn json_is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_generator_entries_decode_and_round_trip() {
        let manifest = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {"name": "a", "namespace": "argocd"},
            "spec": {
                "generators": [
                    {"foo": {"bar": 1}},
                    {"matrix": {"generators": [
                        {"list": {"elements": "not-a-list"}},
                        {"list": {"elements": [{"a": "b"}]}}
                    ]}}
                ],
                "template": {}
            }
        });
        let appset: ApplicationSet = serde_json::from_value(manifest.clone()).unwrap();
        let unknown = &appset.spec.generators[0];
        assert_eq!(unknown.extra.keys().collect::<Vec<_>>(), ["foo"]);
        assert!(unknown.invalid.is_none());
        let children = &appset.spec.generators[1]
            .matrix
            .as_ref()
            .unwrap()
            .generators;
        let invalid = children[0].invalid.as_deref().unwrap();
        assert!(
            invalid.starts_with("list.elements: invalid type"),
            "{invalid}"
        );
        assert!(children[1].invalid.is_none());
        let again = serde_json::to_value(&appset).unwrap();
        assert_eq!(again["spec"]["generators"], manifest["spec"]["generators"]);
    }
}
