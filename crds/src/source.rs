//! [`ApplicationSource`]: one source of an Application (a Git path or a Helm chart).
//!
//! Its own module because both `application` (an Application's `spec`) and `operation`
//! (the source an operation synced, and the history) use it; it depends only on
//! [`Extra`], so neither of them has to depend on the other for it.
//! `crate::application::ApplicationSource` re-exports it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::extra::Extra;

/// One source: a Git path (plain manifests, Kustomize or Helm) or a Helm chart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ApplicationSource {
    /// URL of the Git or Helm repository.
    #[serde(rename = "repoURL", default)]
    pub repo_url: String,
    /// Directory inside a Git repository (empty for a Helm chart).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Branch, tag, commit or chart version (empty means `HEAD` / latest).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_revision: String,
    /// Helm chart name, for a Helm repository source.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chart: String,
    /// Helm options (values, parameters, release name), kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub helm: Option<Value>,
    /// Kustomize options, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub kustomize: Option<Value>,
    /// Options for a directory of plain manifests, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub directory: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}
