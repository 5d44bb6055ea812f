//! What the sync engine knows about one Kubernetes object from its manifest alone:
//! identity, Argo CD's tracking id, sync options, hook role and sync wave.
//!
//! Annotations are Argo CD's, so manifests written for Argo CD mean the same here:
//! `argocd.argoproj.io/tracking-id` (`<app>:<group>/<kind>:<namespace>/<name>`),
//! `argocd.argoproj.io/sync-options`, `argocd.argoproj.io/sync-wave`,
//! `argocd.argoproj.io/hook` and `argocd.argoproj.io/hook-delete-policy`.

use std::fmt;

use serde_json::Value;

/// Annotation naming the app and identity an object is tracked under.
pub const TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";
/// Annotation with an object's own sync options (`Prune=false,Replace=true`).
pub const SYNC_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/sync-options";
/// Annotation with an object's sync wave.
pub const SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";
/// Annotation that makes an object a hook (`PreSync`, `Sync`, `PostSync`, `SyncFail`, `Skip`).
pub const HOOK_ANNOTATION: &str = "argocd.argoproj.io/hook";
/// Annotation saying when a hook is deleted.
pub const HOOK_DELETE_POLICY_ANNOTATION: &str = "argocd.argoproj.io/hook-delete-policy";
/// Annotation on an Application approving the pruning (`Prune=confirm`) or deletion
/// (`Delete=confirm`) of its resources: an RFC 3339 time, Argo CD's
/// `argocd app confirm-deletion`. It approves what waits since before that time.
pub const DELETION_APPROVED_ANNOTATION: &str = "argocd.argoproj.io/deletion-approved";
/// Helm's hook annotation, which Argo CD maps onto its own hooks.
const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";

/// An object's identity on a cluster (the version is not part of it: the API server
/// serves one object under every version of its group).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// API group (empty for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjKey {
    /// The identity of a manifest or live object; `None` without kind or name.
    pub fn of(object: &Value) -> Option<ObjKey> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        let meta = object.get("metadata")?;
        let name = meta.get("name")?.as_str()?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(ObjKey {
            group: group_of(api_version).to_owned(),
            kind: kind.to_owned(),
            namespace: meta
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            name: name.to_owned(),
        })
    }

    /// Argo CD's tracking id of this object for the app instance `app`.
    #[must_use]
    pub fn tracking_id(&self, app: &str) -> String {
        format!(
            "{app}:{}/{}:{}/{}",
            self.group, self.kind, self.namespace, self.name
        )
    }
}

impl fmt::Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            String::new()
        } else {
            format!(".{}", self.group)
        };
        if self.namespace.is_empty() {
            write!(f, "{}{group}/{}", self.kind, self.name)
        } else {
            write!(f, "{}{group} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// `apps` of `apps/v1`; empty for the core group (`v1`).
#[must_use]
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The app instance name in tracking ids: the Application's name in the controller's
/// namespace, `<namespace>_<name>` elsewhere (Argo CD's apps-in-any-namespace rule).
#[must_use]
pub fn app_instance(app_namespace: &str, app_name: &str, controller_namespace: &str) -> String {
    if app_namespace == controller_namespace || app_namespace.is_empty() {
        app_name.to_owned()
    } else {
        format!("{app_namespace}_{app_name}")
    }
}

/// True when the live `object` carries a tracking id for `app` that matches the object's
/// own identity (a copied object whose annotation names another identity is not ours).
#[must_use]
pub fn is_tracked_by(object: &Value, app: &str) -> bool {
    let Some(id) = annotation(object, TRACKING_ANNOTATION) else {
        return false;
    };
    ObjKey::of(object).is_some_and(|key| key.tracking_id(app) == id)
}

/// Whether a sync of `app` may replace (delete and re-create) or delete the live object
/// `live` that sits at a hook's or a prune's key. Only objects this app tracks qualify:
/// those it deployed, and hooks an earlier run created (a created hook carries the app's
/// tracking id, like every manifest the engine writes). An untracked object, or one
/// another app tracks, is someone else's: a hook manifest named like an existing
/// `Namespace payments` must not delete it.
#[must_use]
pub fn may_replace(live: &Value, app: &str) -> bool {
    is_tracked_by(live, app)
}

/// Who the live object's tracking id names, for messages: `tracked by app other`, or
/// `not tracked by any application`.
#[must_use]
pub fn ownership_note(live: &Value) -> String {
    match annotation(live, TRACKING_ANNOTATION).and_then(tracking_app) {
        Some(owner) => format!("tracked by application {owner}"),
        None => "not tracked by any application".to_owned(),
    }
}

/// Whether the Application's `argocd.argoproj.io/deletion-approved` annotation
/// (`approved`) approves what has waited since `since` (an operation's `startedAt`, or
/// the Application's `deletionTimestamp`): both RFC 3339, approval at or after `since`.
/// An unreadable time approves nothing (as in Argo CD, which ignores it).
#[must_use]
pub fn deletion_approved(approved: Option<&str>, since: &str) -> bool {
    use k8s_openapi::jiff::Timestamp;
    let (Some(approved), Ok(since)) = (approved, since.parse::<Timestamp>()) else {
        return false;
    };
    approved
        .trim()
        .parse::<Timestamp>()
        .is_ok_and(|at| at >= since)
}

/// The app instance a tracking id names.
#[must_use]
pub fn tracking_app(tracking_id: &str) -> Option<&str> {
    tracking_id.split_once(':').map(|(app, _)| app)
}

/// The annotation `key` of `object`, if it is set to a string.
#[must_use]
pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .get("metadata")?
        .get("annotations")?
        .get(key)?
        .as_str()
}

/// Sync options of one resource (its annotation) on top of the Application's.
// Each bool is one independent Argo CD sync option; there is no state machine to model.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceOptions {
    /// `Prune=false`: never prune it.
    pub no_prune: bool,
    /// `Delete=false`: keep it when the Application is deleted.
    pub no_delete: bool,
    /// `PruneLast=true`: prune after every wave.
    pub prune_last: bool,
    /// `Replace=true`: replace (PUT) instead of apply.
    pub replace: bool,
    /// `Prune=confirm`: prune only once the Application approves it
    /// ([`DELETION_APPROVED_ANNOTATION`] newer than the operation's start).
    pub prune_confirm: bool,
    /// `Delete=confirm`: delete on the Application's deletion only once it approves it
    /// ([`DELETION_APPROVED_ANNOTATION`] newer than its `deletionTimestamp`).
    pub delete_confirm: bool,
}

impl ResourceOptions {
    /// Options from `app_options` (`spec.syncPolicy.syncOptions`) overridden by the
    /// object's `argocd.argoproj.io/sync-options` annotation.
    pub fn of(object: &Value, app_options: &[String]) -> ResourceOptions {
        let mut out = ResourceOptions::default();
        let own = annotation(object, SYNC_OPTIONS_ANNOTATION).unwrap_or_default();
        for option in app_options.iter().map(String::as_str).chain(own.split(',')) {
            match option.trim() {
                "Prune=false" => {
                    out.no_prune = true;
                    out.prune_confirm = false;
                }
                "Prune=true" => {
                    out.no_prune = false;
                    out.prune_confirm = false;
                }
                "Prune=confirm" => {
                    out.no_prune = false;
                    out.prune_confirm = true;
                }
                "Delete=false" => {
                    out.no_delete = true;
                    out.delete_confirm = false;
                }
                "Delete=true" => {
                    out.no_delete = false;
                    out.delete_confirm = false;
                }
                "Delete=confirm" => {
                    out.no_delete = false;
                    out.delete_confirm = true;
                }
                "PruneLast=true" => out.prune_last = true,
                "Replace=true" => out.replace = true,
                "Replace=false" => out.replace = false,
                _ => {}
            }
        }
        out
    }
}

/// When a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookPhase {
    /// Before the resources are applied.
    PreSync,
    /// With the resources.
    Sync,
    /// After a successful sync.
    PostSync,
    /// After a failed sync.
    SyncFail,
}

impl HookPhase {
    /// The annotation value (`PreSync`, `Sync`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HookPhase::PreSync => "PreSync",
            HookPhase::Sync => "Sync",
            HookPhase::PostSync => "PostSync",
            HookPhase::SyncFail => "SyncFail",
        }
    }
}

/// What a manifest is for the sync: a regular resource, a hook, or skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A regular resource.
    Resource,
    /// A hook.
    Hook {
        /// When it runs.
        phase: HookPhase,
        /// When it is deleted.
        delete_policy: HookDeletePolicy,
    },
    /// `argocd.argoproj.io/hook: Skip`: never applied.
    Skip,
}

/// `argocd.argoproj.io/hook-delete-policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HookDeletePolicy {
    /// `HookSucceeded`: delete it once it succeeded.
    pub on_success: bool,
    /// `HookFailed`: delete it once it failed.
    pub on_failure: bool,
    /// Default when no policy is given, as in Argo CD.
    pub before_creation: bool,
}

/// The role of a manifest from its hook annotations (Argo CD's, else Helm's).
#[must_use]
pub fn role_of(object: &Value) -> Role {
    let argo = annotation(object, HOOK_ANNOTATION);
    let helm = annotation(object, HELM_HOOK_ANNOTATION);
    let phases: Vec<HookPhase> = match (argo, helm) {
        (Some(hooks), _) => hooks
            .split(',')
            .filter_map(|h| match h.trim() {
                "PreSync" => Some(HookPhase::PreSync),
                "Sync" => Some(HookPhase::Sync),
                "PostSync" => Some(HookPhase::PostSync),
                "SyncFail" => Some(HookPhase::SyncFail),
                _ => None,
            })
            .collect(),
        (None, Some(hooks)) => hooks
            .split(',')
            .filter_map(|h| match h.trim() {
                "pre-install" | "pre-upgrade" => Some(HookPhase::PreSync),
                "post-install" | "post-upgrade" => Some(HookPhase::PostSync),
                _ => None,
            })
            .collect(),
        (None, None) => return Role::Resource,
    };
    if argo.is_some_and(|h| h.split(',').any(|p| p.trim() == "Skip")) {
        return Role::Skip;
    }
    let Some(phase) = phases.into_iter().min() else {
        return Role::Resource;
    };
    let policy = annotation(object, HOOK_DELETE_POLICY_ANNOTATION).unwrap_or_default();
    let mut delete_policy = HookDeletePolicy::default();
    for p in policy.split(',') {
        match p.trim() {
            "HookSucceeded" | "hook-succeeded" => delete_policy.on_success = true,
            "HookFailed" | "hook-failed" => delete_policy.on_failure = true,
            "BeforeHookCreation" | "before-hook-creation" => delete_policy.before_creation = true,
            _ => {}
        }
    }
    if delete_policy == HookDeletePolicy::default() {
        delete_policy.before_creation = true;
    }
    Role::Hook {
        phase,
        delete_policy,
    }
}

/// `argocd.argoproj.io/sync-wave` (0 when absent or not a number).
#[must_use]
pub fn wave_of(object: &Value) -> i32 {
    annotation(object, SYNC_WAVE_ANNOTATION)
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0)
}

/// Apply order within a wave: Argo CD's kind order (namespaces and config before
/// workloads, webhooks' `APIServices` last), unknown kinds after the known ones.
#[must_use]
pub fn kind_rank(kind: &str) -> usize {
    const ORDER: &[&str] = &[
        "Namespace",
        "NetworkPolicy",
        "ResourceQuota",
        "LimitRange",
        "PodSecurityPolicy",
        "PodDisruptionBudget",
        "ServiceAccount",
        "Secret",
        "SecretList",
        "ConfigMap",
        "StorageClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleList",
        "ClusterRoleBinding",
        "ClusterRoleBindingList",
        "Role",
        "RoleList",
        "RoleBinding",
        "RoleBindingList",
        "Service",
        "DaemonSet",
        "Pod",
        "ReplicationController",
        "ReplicaSet",
        "Deployment",
        "HorizontalPodAutoscaler",
        "StatefulSet",
        "Job",
        "CronJob",
        "IngressClass",
        "Ingress",
        "APIService",
    ];
    ORDER.iter().position(|k| *k == kind).unwrap_or(ORDER.len())
}

#[cfg(test)]
// The fixture builders take `json!` values by value so that the cases read as data.
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "namespace": "ns", "annotations": annotations}})
    }

    #[test]
    fn tracking_ids_follow_argo_cd_format() {
        let key = ObjKey::of(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}}))
        .unwrap();
        assert_eq!(
            key.tracking_id("guestbook"),
            "guestbook:apps/Deployment:shop/web"
        );
        let ns = ObjKey::of(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop"}}))
        .unwrap();
        assert_eq!(ns.tracking_id("a"), "a:/Namespace:/shop");
        assert_eq!(app_instance("argocd", "a", "argocd"), "a");
        assert_eq!(app_instance("team", "a", "argocd"), "team_a");
        assert_eq!(tracking_app("team_a:/Namespace:/shop"), Some("team_a"));
    }

    #[test]
    fn a_copied_object_is_not_tracked() {
        let own = cm(json!({TRACKING_ANNOTATION: "app:/ConfigMap:ns/c"}));
        assert!(is_tracked_by(&own, "app"));
        assert!(!is_tracked_by(&own, "other"));
        let copy = cm(json!({TRACKING_ANNOTATION: "app:/ConfigMap:ns/original"}));
        assert!(!is_tracked_by(&copy, "app"));
        assert!(!is_tracked_by(&cm(json!({})), "app"));
    }

    #[test]
    fn only_objects_this_app_tracks_may_be_replaced() {
        // An existing namespace nobody tracks: a hook named like it must not replace it.
        let untracked = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "payments"}});
        assert!(!may_replace(&untracked, "app"));
        assert_eq!(ownership_note(&untracked), "not tracked by any application");
        // Another app's object.
        let theirs = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "payments",
                "annotations": {TRACKING_ANNOTATION: "other:/Namespace:/payments"}}});
        assert!(!may_replace(&theirs, "app"));
        assert_eq!(ownership_note(&theirs), "tracked by application other");
        // A copy of our tracking id on another object is not ours either.
        assert!(!may_replace(
            &cm(json!({TRACKING_ANNOTATION: "app:/ConfigMap:ns/original"})),
            "app"
        ));
        // Our own (a resource we deployed, or a hook an earlier run created).
        let hook = cm(json!({TRACKING_ANNOTATION: "app:/ConfigMap:ns/c",
            HOOK_ANNOTATION: "PreSync", "argosy.io/sync-operation": "earlier"}));
        assert!(may_replace(&hook, "app"));
    }

    #[test]
    fn deletion_is_approved_only_at_or_after_the_wait_began() {
        let since = "2026-01-01T10:00:00Z";
        assert!(deletion_approved(Some("2026-01-01T10:00:00Z"), since));
        assert!(deletion_approved(Some("2026-01-01T10:00:01Z"), since));
        assert!(!deletion_approved(Some("2026-01-01T09:59:59Z"), since));
        assert!(!deletion_approved(None, since));
        assert!(!deletion_approved(Some("yes"), since));
        assert!(!deletion_approved(
            Some("2026-01-01T10:00:01Z"),
            "not a time"
        ));
    }

    #[test]
    fn confirm_options_parse_and_reset() {
        let o = ResourceOptions::of(
            &cm(json!({SYNC_OPTIONS_ANNOTATION: "Prune=confirm,Delete=confirm"})),
            &[],
        );
        assert!(o.prune_confirm && o.delete_confirm && !o.no_prune && !o.no_delete);
        // The app level sets it, the resource's own annotation wins.
        let o = ResourceOptions::of(
            &cm(json!({SYNC_OPTIONS_ANNOTATION: "Prune=true"})),
            &["Prune=confirm".into()],
        );
        assert!(!o.prune_confirm);
        let o = ResourceOptions::of(&cm(json!({})), &["Prune=confirm".into()]);
        assert!(o.prune_confirm);
    }

    #[test]
    fn options_combine_app_and_resource_annotation() {
        let o = ResourceOptions::of(
            &cm(json!({SYNC_OPTIONS_ANNOTATION: "Prune=false, Replace=true"})),
            &["PruneLast=true".into()],
        );
        assert!(o.no_prune && o.replace && o.prune_last && !o.no_delete);
        let o = ResourceOptions::of(
            &cm(json!({SYNC_OPTIONS_ANNOTATION: "Prune=true"})),
            &["Prune=false".into()],
        );
        assert!(!o.no_prune);
    }

    #[test]
    fn hooks_waves_and_kind_order() {
        assert_eq!(role_of(&cm(json!({}))), Role::Resource);
        assert_eq!(role_of(&cm(json!({HOOK_ANNOTATION: "Skip"}))), Role::Skip);
        let Role::Hook {
            phase,
            delete_policy,
        } = role_of(&cm(json!({HOOK_ANNOTATION: "PostSync",
            HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded"})))
        else {
            panic!("a hook")
        };
        assert_eq!(phase, HookPhase::PostSync);
        assert!(delete_policy.on_success && !delete_policy.before_creation);
        let Role::Hook { phase, .. } = role_of(&cm(json!({HELM_HOOK_ANNOTATION: "pre-install"})))
        else {
            panic!("a helm hook")
        };
        assert_eq!(phase, HookPhase::PreSync);
        assert_eq!(wave_of(&cm(json!({SYNC_WAVE_ANNOTATION: "-2"}))), -2);
        assert_eq!(wave_of(&cm(json!({SYNC_WAVE_ANNOTATION: "x"}))), 0);
        assert!(kind_rank("Namespace") < kind_rank("ConfigMap"));
        assert!(kind_rank("ConfigMap") < kind_rank("Deployment"));
        assert!(kind_rank("Deployment") < kind_rank("Widget"));
    }
}
