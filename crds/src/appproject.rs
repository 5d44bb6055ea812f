//! `AppProject`: which sources and destinations Applications of a project may use.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::application::ApplicationDestination;
use crate::extra::Extra;
use crate::resource::argo_resource;

/// An Argo CD `AppProject`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppProject {
    /// `argoproj.io/v1alpha1`.
    #[serde(default = "crate::resource::default_api_version")]
    pub api_version: String,
    /// `AppProject`.
    #[serde(default = "AppProject::default_kind")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Allowed sources and destinations.
    #[serde(default)]
    pub spec: AppProjectSpec,
}
argo_resource!(AppProject, "AppProject", "appprojects");

/// `spec` of an `AppProject`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct AppProjectSpec {
    /// Repository URLs (or patterns) the project's Applications may deploy from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_repos: Vec<String>,
    /// Cluster/namespace pairs (or patterns) the project's Applications may deploy to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<ApplicationDestination>,
    /// Free-form description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}
