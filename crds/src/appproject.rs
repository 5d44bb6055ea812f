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

/// `spec` of an `AppProject` (Argo CD's field names; `roles`, `signatureKeys` and the rest
/// are kept in `extra`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct AppProjectSpec {
    /// Repository URLs (or globs, `!` to deny) the project's Applications may deploy from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_repos: Vec<String>,
    /// Cluster/namespace pairs (or globs, `!` to deny) the project's Applications may
    /// deploy to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<ApplicationDestination>,
    /// Cluster-scoped kinds the project may deploy; empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_resource_whitelist: Vec<ClusterResourceRestrictionItem>,
    /// Cluster-scoped kinds the project may not deploy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_resource_blacklist: Vec<ClusterResourceRestrictionItem>,
    /// Namespaced kinds the project may deploy. Absent: every kind; an empty list: none
    /// (Argo CD tells the two apart, so this is an `Option`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_resource_whitelist: Option<Vec<GroupKind>>,
    /// Namespaced kinds the project may not deploy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_resource_blacklist: Vec<GroupKind>,
    /// Namespaces (globs, or `/regex/`) besides the control plane's whose Applications may
    /// use this project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_namespaces: Vec<String>,
    /// Only clusters whose Secret names this project (`project` field) are destinations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub permit_only_project_scoped_clusters: bool,
    /// Reporting of objects in the project's namespaces that no Application tracks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned_resources: Option<OrphanedResources>,
    /// When the project's Applications may sync: `allow` and `deny` windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_windows: Vec<SyncWindow>,
    /// Free-form description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// One of `spec.syncWindows`: from each firing of `schedule` (in `timeZone`) for
/// `duration`, syncs of the Applications it matches are allowed or denied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct SyncWindow {
    /// `allow` or `deny`.
    #[serde(default, skip_serializing_if = "WindowKind::is_unset")]
    pub kind: WindowKind,
    /// When the window opens: five cron fields (minute hour day-of-month month
    /// day-of-week), robfig/cron's dialect.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule: String,
    /// How long it stays open: a Go duration (`1h30m`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub duration: String,
    /// Application name globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    /// Destination namespace globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Destination cluster globs, matched against the destination's `name` and `server`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Manual syncs may run while this window would block them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual_sync: bool,
    /// IANA time zone of `schedule` (empty: UTC).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_zone: String,
    /// Match only when every list that is set matches (default: any).
    #[serde(
        default,
        rename = "andOperator",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub and_operator: bool,
    /// Free-form text (a change ticket, say), shown when the window blocks.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A sync that started while syncs were allowed may finish inside a deny window, or
    /// after an allow window closed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync_overrun: bool,
    /// Fields not modelled here.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// A sync window's `kind`. Argo CD's API refuses other values; one that reaches the
/// controller anyway neither allows nor denies anything (as in Argo CD), and is kept as
/// written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(from = "String", into = "String")]
#[schemars(with = "String")]
pub enum WindowKind {
    /// `allow`: syncs run only while some allow window is active.
    Allow,
    /// `deny`: no sync runs while it is active.
    Deny,
    /// Anything else, as written (empty when absent).
    Other(String),
}

impl Default for WindowKind {
    fn default() -> Self {
        WindowKind::Other(String::new())
    }
}

impl WindowKind {
    fn is_unset(&self) -> bool {
        *self == WindowKind::Other(String::new())
    }

    /// The kind as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            WindowKind::Allow => "allow",
            WindowKind::Deny => "deny",
            WindowKind::Other(other) => other,
        }
    }
}

impl From<String> for WindowKind {
    fn from(kind: String) -> Self {
        match kind.as_str() {
            "allow" => WindowKind::Allow,
            "deny" => WindowKind::Deny,
            _ => WindowKind::Other(kind),
        }
    }
}

impl From<WindowKind> for String {
    fn from(kind: WindowKind) -> Self {
        kind.as_str().to_owned()
    }
}

/// A kind of a namespace white/blacklist (`group` and `kind` are Go `filepath.Match` globs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupKind {
    /// API group (`""` for the core group).
    #[serde(default)]
    pub group: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
}

/// A kind of a cluster white/blacklist, optionally narrowed to object names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterResourceRestrictionItem {
    /// API group (`""` for the core group).
    #[serde(default)]
    pub group: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
    /// Object name glob; empty: every name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// `spec.orphanedResources`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrphanedResources {
    /// Whether orphaned objects raise an `OrphanedResourceWarning` condition (only when
    /// `true`, as in Argo CD's `IsWarn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<bool>,
    /// Objects never reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<OrphanedResourceKey>,
}

/// An object (pattern) `orphanedResources` leaves out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrphanedResourceKey {
    /// API group glob.
    #[serde(default)]
    pub group: String,
    /// Kind glob.
    #[serde(default)]
    pub kind: String,
    /// Name glob.
    #[serde(default)]
    pub name: String,
}

impl AppProject {
    /// The project Argo CD's install creates as `default`, which an Application naming
    /// `default` gets when no such `AppProject` exists: every repository, every
    /// destination, every kind; no other namespace may use it.
    #[must_use]
    pub fn builtin_default() -> AppProject {
        let any = || "*".to_owned();
        AppProject {
            api_version: crate::resource::default_api_version(),
            kind: AppProject::default_kind(),
            metadata: ObjectMeta {
                name: Some("default".to_owned()),
                ..ObjectMeta::default()
            },
            spec: AppProjectSpec {
                source_repos: vec![any()],
                destinations: vec![ApplicationDestination {
                    server: any(),
                    namespace: any(),
                    name: any(),
                }],
                cluster_resource_whitelist: vec![ClusterResourceRestrictionItem {
                    group: any(),
                    kind: any(),
                    name: String::new(),
                }],
                ..AppProjectSpec::default()
            },
        }
    }
}
