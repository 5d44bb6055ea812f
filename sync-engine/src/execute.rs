//! Cluster writes of a sync: server-side apply (field manager `argosy`), replace, prune
//! and hooks, step by step as [`crate::plan::steps`] ordered them; and the deletions of
//! an Application's finalizer ([`finalize`]).
//!
//! A step starts only when everything before it is healthy (hooks: complete), as Argo
//! CD's waves do; otherwise the executor stops and says what it waits for, and the next
//! reconcile continues. Applies inside a step run concurrently.
//!
//! Every request goes through a [`ClusterWriter`] (in production the cluster's
//! [`crate::clients::ClusterConn`]), so the order of the writes is tested without a
//! cluster.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use kube::api::DynamicObject;
use serde_json::Value;

use crate::health::{self, HealthCode};
use crate::plan::{DesiredObject, SyncPlan};
use crate::resource::{ObjKey, ResourceOptions, Role, is_tracked_by, may_replace, ownership_note};
use crate::writer::ClusterWriter;
pub use crate::writer::Reach;

/// Why one write of a sync or finalizer failed, named by its step. The text is what the
/// Application's status shows for the resource.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The object's kind has no entry in the reach map (sync steps).
    #[error("kind not served by the cluster")]
    KindNotServed,
    /// Server-side apply failed.
    #[error("{}", api_error(.0))]
    Apply(#[source] kube::Error),
    /// `Replace=true`: the create or PUT failed (or the manifest is not an object).
    #[error("{}", api_error(.0))]
    Replace(#[source] kube::Error),
    /// The API server's answer to an apply could not be read back as JSON.
    #[error("reading the applied object: {0}")]
    ReadApplied(#[source] serde_json::Error),
    /// Deleting an object Git no longer has failed.
    #[error("{}", api_error(.0))]
    Prune(#[source] kube::Error),
    /// A hook of a previous operation could not be deleted before creating this one's.
    #[error("deleting the previous hook: {0}")]
    DeletePreviousHook(#[source] kube::Error),
    /// A hook manifest is not a Kubernetes object.
    #[error("invalid hook manifest: {0}")]
    InvalidHookManifest(#[source] serde_json::Error),
    /// Creating this operation's hook failed.
    #[error("creating the hook: {0}")]
    CreateHook(#[source] kube::Error),
    /// A completed hook with `HookSucceeded` could not be deleted.
    #[error("{0}")]
    DeleteSucceededHook(#[source] kube::Error),
    /// The hook ran and failed (`job failed`, `pod failed`).
    #[error("{0}")]
    HookFailed(String),
    /// Reading the destination namespace failed (`CreateNamespace=true`).
    #[error("reading namespace {name}: {}", api_error(.source))]
    ReadNamespace {
        /// The namespace.
        name: String,
        /// The API server's error.
        source: kube::Error,
    },
    /// Creating the destination namespace failed (`CreateNamespace=true`).
    #[error("creating namespace {name}: {}", api_error(.source))]
    CreateNamespace {
        /// The namespace.
        name: String,
        /// The API server's error.
        source: kube::Error,
    },
    /// The kind of an object to delete on finalization is not served any more.
    #[error("kind not served")]
    DeleteKindNotServed,
    /// Deleting an object on finalization failed.
    #[error("{}", api_error(.0))]
    Delete(#[source] kube::Error),
    /// A hook's key holds an object this app does not track: replacing it (or deleting
    /// it by a hook delete policy) would destroy someone else's object, so the hook does
    /// not run and the sync fails.
    #[error(
        "hook {hook} would replace {key}, which this application does not own ({owner}); it was left untouched"
    )]
    HookNotOwned {
        /// The hook's name.
        hook: String,
        /// The object at the hook's key.
        key: ObjKey,
        /// Who tracks it ([`crate::resource::ownership_note`]).
        owner: String,
    },
    /// A prune step names an object this app does not track (the plan never does; this
    /// guards the delete itself).
    #[error(
        "would prune {key}, which this application does not own ({owner}); it was left untouched"
    )]
    PruneNotOwned {
        /// The object.
        key: ObjKey,
        /// Who tracks it, or that it was not observed.
        owner: String,
    },
}

/// Annotation put on hooks Argosy creates: the operation that created them.
pub const HOOK_OPERATION_ANNOTATION: &str = "argosy.io/sync-operation";

/// What happened to one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Applied (or created); the API server's answer.
    Applied(Value),
    /// Deleted because Git no longer has it.
    Pruned,
    /// The write failed; the error text.
    Failed(String),
    /// A hook of this operation completed (it never runs again in the operation).
    HookSucceeded,
}

/// The result of running (part of) a sync plan.
#[derive(Clone, Debug, Default)]
pub struct Executed {
    /// What happened to each object written.
    pub results: BTreeMap<ObjKey, Outcome>,
    /// Set when a step waits for an earlier one to become healthy / complete.
    pub waiting: Option<String>,
    /// A hook failed: the sync failed.
    pub hook_failed: Option<String>,
}

impl Executed {
    /// `key: error` for every object that failed.
    #[must_use]
    pub fn failures(&self) -> Vec<String> {
        self.results
            .iter()
            .filter_map(|(k, o)| match o {
                Outcome::Failed(e) => Some(format!("{k}: {e}")),
                _ => None,
            })
            .collect()
    }

    /// Why the sync failed (a hook, or resources that did not apply), if it did.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        if let Some(hook) = &self.hook_failed {
            return Some(format!("hook failed: {hook}"));
        }
        let failures = self.failures();
        (!failures.is_empty()).then(|| {
            format!(
                "{} resource(s) failed to sync: {}",
                failures.len(),
                failures
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    /// How many objects were pruned (`pruned`) or applied (otherwise).
    #[must_use]
    pub fn count(&self, pruned: bool) -> usize {
        self.results
            .values()
            .filter(|o| {
                if pruned {
                    matches!(o, Outcome::Pruned)
                } else {
                    matches!(o, Outcome::Applied(_))
                }
            })
            .count()
    }
}

/// Everything the executor needs besides the writer.
pub struct Target<'a> {
    /// The desired objects the plan's indexes point into.
    pub desired: &'a [DesiredObject],
    /// Kind reach by `(group, kind)`.
    pub reach: &'a BTreeMap<(String, String), Reach>,
    /// Live objects (tracked or at desired keys), updated with apply results.
    pub live: &'a mut BTreeMap<ObjKey, Value>,
    /// Id of the running operation (hooks are labelled with it).
    pub operation_id: &'a str,
    /// Hooks this operation already completed (from its recorded state).
    pub done_hooks: &'a BTreeSet<ObjKey>,
    /// How many writes of one step run at once.
    pub concurrency: usize,
    /// The app instance (tracking ids): hooks and prunes touch only objects it tracks.
    pub app: &'a str,
    /// The Application approved pruning `Prune=confirm` objects for this operation
    /// ([`crate::resource::deletion_approved`] against the operation's start).
    pub prune_approved: bool,
    /// The Lua health scripts that judge a wave's objects before the next wave starts.
    pub health: &'a health::HealthChecks,
}

/// Runs the plan's steps in order until one must wait or everything is done, writing
/// through `writer`.
pub async fn run(
    writer: &impl ClusterWriter,
    target: &mut Target<'_>,
    plan: &SyncPlan,
) -> Executed {
    let mut out = Executed::default();
    if let Some(why) = plan.awaiting_confirmation(target.prune_approved) {
        out.waiting = Some(why);
        return out;
    }
    let mut earlier: Vec<usize> = Vec::new();
    let mut earlier_hooks: Vec<usize> = Vec::new();
    for step in &plan.steps {
        let has_work = !(step.apply.is_empty() && step.hooks.is_empty() && step.prune.is_empty());
        if has_work && let Some(why) = not_ready(target, &earlier, &earlier_hooks) {
            out.waiting = Some(why);
            return out;
        }
        for &i in &step.hooks {
            if target.done_hooks.contains(&target.desired[i].key) {
                continue;
            }
            match run_hook(writer, target, &target.desired[i]).await {
                Ok(true) => {
                    out.results
                        .insert(target.desired[i].key.clone(), Outcome::HookSucceeded);
                }
                Ok(false) => {}
                Err(e) => {
                    out.hook_failed = Some(format!("{}: {e}", target.desired[i].key));
                    return out;
                }
            }
        }
        // Collected first: a lazily mapped stream of borrowing futures trips rustc's
        // higher-ranked `Send` inference for the reconcile future.
        let pending: Vec<_> = step
            .apply
            .iter()
            .map(|&i| {
                let d = &target.desired[i];
                let live = target.live.get(&d.key).cloned();
                Box::pin(apply_one(writer, target.reach, d, live))
            })
            .collect();
        let applied: Vec<(ObjKey, Outcome)> = futures::stream::iter(pending)
            .buffer_unordered(target.concurrency.max(1))
            .collect()
            .await;
        let failed = applied.iter().any(|(_, o)| matches!(o, Outcome::Failed(_)));
        for (key, outcome) in applied {
            if let Outcome::Applied(v) = &outcome {
                target.live.insert(key.clone(), v.clone());
            }
            out.results.insert(key, outcome);
        }
        if failed {
            // Later waves depend on this one; stop and let retry/backoff take over.
            return out;
        }
        for key in &step.prune {
            let outcome = prune_one(writer, target, key).await;
            if outcome == Outcome::Pruned {
                target.live.remove(key);
            }
            out.results.insert(key.clone(), outcome);
        }
        earlier.extend(step.apply.iter().copied());
        earlier_hooks.extend(step.hooks.iter().copied());
        // Resources of this wave that were already in sync count for the health gate too.
        earlier.extend(
            target
                .desired
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    d.role == Role::Resource
                        && step.phase == Some(crate::plan::Phase::Sync)
                        && d.wave == step.wave
                })
                .map(|(i, _)| i),
        );
    }
    out
}

/// Where the `SyncFail` hooks of a failed sync are.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncFailHooks {
    /// Every one completed (or there are none).
    Done,
    /// Created; at least one has not completed yet.
    Running,
    /// One failed, or could not be created.
    Failed(String),
}

/// Runs the plan's `SyncFail` hooks once a sync has failed: creates those this operation
/// has not created yet and reports on the others (completed ones go into `out`). Called
/// again on each pass of the operation until they are done.
pub async fn run_sync_fail_hooks(
    writer: &impl ClusterWriter,
    target: &mut Target<'_>,
    plan: &SyncPlan,
    out: &mut Executed,
) -> SyncFailHooks {
    let mut running = false;
    for &i in &plan.sync_fail {
        let hook = &target.desired[i];
        if target.done_hooks.contains(&hook.key) {
            continue;
        }
        match run_hook(writer, target, hook).await {
            Ok(true) => {
                out.results.insert(hook.key.clone(), Outcome::HookSucceeded);
            }
            Ok(false) => running = true,
            Err(e) => return SyncFailHooks::Failed(format!("{}: {e}", hook.key)),
        }
    }
    if running {
        SyncFailHooks::Running
    } else {
        SyncFailHooks::Done
    }
}

/// Why the next step cannot start yet: an earlier resource not healthy or hook running.
fn not_ready(target: &Target<'_>, earlier: &[usize], hooks: &[usize]) -> Option<String> {
    for &i in earlier {
        let d = &target.desired[i];
        let Some(live) = target.live.get(&d.key) else {
            return Some(format!("waiting for {} to exist", d.key));
        };
        if let Some(h) = health::assess_with(live, target.health)
            && matches!(h.code, HealthCode::Progressing | HealthCode::Missing)
        {
            return Some(format!("waiting for {} to become healthy", d.key));
        }
    }
    for &i in hooks {
        let d = &target.desired[i];
        if target.done_hooks.contains(&d.key) {
            continue;
        }
        match target.live.get(&d.key).map(hook_state) {
            Some(HookState::Succeeded) => {}
            _ => return Some(format!("waiting for hook {} to complete", d.key)),
        }
    }
    None
}

#[derive(Debug, PartialEq)]
enum HookState {
    Running,
    Succeeded,
    Failed(String),
}

/// Completion of a hook object: Jobs and Pods by their status, anything else at once.
fn hook_state(live: &Value) -> HookState {
    let kind = live.get("kind").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "Job" => {
            let conditions = live
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let is = |t: &str| {
                conditions.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some(t)
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            };
            if is("Complete") {
                HookState::Succeeded
            } else if is("Failed") {
                HookState::Failed("job failed".into())
            } else {
                HookState::Running
            }
        }
        "Pod" => match live.pointer("/status/phase").and_then(Value::as_str) {
            Some("Succeeded") => HookState::Succeeded,
            Some("Failed") => HookState::Failed("pod failed".into()),
            _ => HookState::Running,
        },
        _ => HookState::Succeeded,
    }
}

/// Creates a hook for this operation (deleting a previous run's copy first), or reports
/// on the one it already created: `Ok(true)` once it completed, `Ok(false)` while it runs.
async fn run_hook(
    writer: &impl ClusterWriter,
    target: &mut Target<'_>,
    hook: &DesiredObject,
) -> Result<bool, ExecuteError> {
    let Role::Hook { delete_policy, .. } = &hook.role else {
        return Ok(true);
    };
    let Some(reach) = target
        .reach
        .get(&(hook.key.group.clone(), hook.key.kind.clone()))
    else {
        return Err(ExecuteError::KindNotServed);
    };
    let current = target.live.get(&hook.key).cloned();
    // Whatever the delete policy, a hook replaces or deletes only what this app tracks:
    // checked once here, before any branch below can delete.
    if let Some(c) = &current
        && !may_replace(c, target.app)
    {
        return Err(ExecuteError::HookNotOwned {
            hook: hook.key.name.clone(),
            key: hook.key.clone(),
            owner: ownership_note(c),
        });
    }
    let ours = current.as_ref().is_some_and(|c| {
        crate::resource::annotation(c, HOOK_OPERATION_ANNOTATION) == Some(target.operation_id)
    });
    tracing::debug!(hook = %hook.key, ours, exists = current.is_some(), "hook");
    if ours {
        let state = current.as_ref().map(hook_state);
        match state {
            Some(HookState::Succeeded) => {
                if delete_policy.on_success {
                    writer
                        .delete(reach, &hook.key)
                        .await
                        .map_err(ExecuteError::DeleteSucceededHook)?;
                }
                return Ok(true);
            }
            Some(HookState::Failed(why)) => {
                if delete_policy.on_failure {
                    let _ = writer.delete(reach, &hook.key).await;
                }
                return Err(ExecuteError::HookFailed(why));
            }
            // Still running: the gate before the next step waits for it.
            _ => return Ok(false),
        }
    }
    if current.is_some() {
        // A previous operation's hook (BeforeHookCreation is the default policy).
        writer
            .delete(reach, &hook.key)
            .await
            .map_err(ExecuteError::DeletePreviousHook)?;
    }
    let mut object = hook.object.clone();
    object["metadata"]["annotations"][HOOK_OPERATION_ANNOTATION] =
        Value::String(target.operation_id.to_owned());
    let created: DynamicObject =
        serde_json::from_value(object).map_err(ExecuteError::InvalidHookManifest)?;
    let created = writer
        .create(reach, &hook.key, &created)
        .await
        .map_err(ExecuteError::CreateHook)?;
    if let Ok(v) = serde_json::to_value(&created) {
        target.live.insert(hook.key.clone(), v);
    }
    Ok(false)
}

async fn apply_one(
    writer: &impl ClusterWriter,
    reach: &BTreeMap<(String, String), Reach>,
    d: &DesiredObject,
    live: Option<Value>,
) -> (ObjKey, Outcome) {
    let key = d.key.clone();
    let Some(reach) = reach.get(&(d.key.group.clone(), d.key.kind.clone())) else {
        return (key, failed(&ExecuteError::KindNotServed));
    };
    let result = if d.options.replace {
        replace(writer, reach, d, live)
            .await
            .map_err(ExecuteError::Replace)
    } else {
        writer
            .apply(reach, &d.key, &d.object)
            .await
            .map_err(ExecuteError::Apply)
    };
    let outcome = match result {
        Ok(o) => match serde_json::to_value(&o) {
            Ok(v) => Outcome::Applied(v),
            Err(e) => failed(&ExecuteError::ReadApplied(e)),
        },
        Err(e) => failed(&e),
    };
    (key, outcome)
}

fn failed(e: &ExecuteError) -> Outcome {
    Outcome::Failed(e.to_string())
}

/// `Replace=true`: PUT over the live object (or create it), like `kubectl replace`.
async fn replace(
    writer: &impl ClusterWriter,
    reach: &Reach,
    d: &DesiredObject,
    live: Option<Value>,
) -> kube::Result<DynamicObject> {
    let mut object: DynamicObject =
        serde_json::from_value(d.object.clone()).map_err(kube::Error::SerdeError)?;
    match live.and_then(|l| {
        l.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }) {
        Some(rv) => {
            object.metadata.resource_version = Some(rv);
            writer.replace(reach, &d.key, &object).await
        }
        None => writer.create(reach, &d.key, &object).await,
    }
}

async fn prune_one(writer: &impl ClusterWriter, target: &Target<'_>, key: &ObjKey) -> Outcome {
    let Some(reach) = target.reach.get(&(key.group.clone(), key.kind.clone())) else {
        return failed(&ExecuteError::KindNotServed);
    };
    match target.live.get(key) {
        Some(live) if may_replace(live, target.app) => {}
        other => {
            return failed(&ExecuteError::PruneNotOwned {
                key: key.clone(),
                owner: other.map_or_else(|| "not observed".to_owned(), ownership_note),
            });
        }
    }
    match writer.delete(reach, key).await {
        Ok(()) => Outcome::Pruned,
        Err(kube::Error::Api(e)) if e.code == 404 => Outcome::Pruned,
        Err(e) => failed(&ExecuteError::Prune(e)),
    }
}

/// What the finalizer of a deleted Application did on its cluster.
#[derive(Debug, Default)]
pub struct FinalizeOutcome {
    /// Deleted (or found already gone), in the order they were given.
    pub deleted: Vec<ObjKey>,
    /// Kept because they are marked `Delete=false`.
    pub kept: Vec<ObjKey>,
    /// Left alone: their tracking id does not name the app and themselves.
    pub not_tracked: Vec<ObjKey>,
    /// Marked `Delete=confirm` and not approved yet: kept, and the finalizer stays until
    /// the Application approves their deletion.
    pub awaiting_confirmation: Vec<ObjKey>,
    /// Could not be deleted: the finalizer stays and the next pass tries again.
    pub failed: Vec<(ObjKey, ExecuteError)>,
}

impl FinalizeOutcome {
    /// One line per object that could not be deleted: `KEY: why`.
    #[must_use]
    pub fn failures(&self) -> Vec<String> {
        self.failed
            .iter()
            .map(|(key, e)| format!("{key}: {e}"))
            .collect()
    }
}

/// The cluster side of a deleted Application's finalizer: deletes every object in
/// `tracked` (live objects by key) whose tracking id names `app`, except those marked
/// `Delete=false`, at most 16 requests at once. An object already gone counts as
/// deleted; a failed deletion does not stop the others. Objects marked `Delete=confirm`
/// are deleted only when `delete_approved` (the Application's
/// `argocd.argoproj.io/deletion-approved` is not older than its deletion).
pub async fn finalize(
    writer: &impl ClusterWriter,
    reach: &BTreeMap<(String, String), Reach>,
    tracked: &[(ObjKey, Value)],
    app: &str,
    delete_approved: bool,
) -> FinalizeOutcome {
    let mut out = FinalizeOutcome::default();
    let mut deletions = Vec::new();
    for (key, live) in tracked {
        if !is_tracked_by(live, app) {
            out.not_tracked.push(key.clone());
        } else if ResourceOptions::of(live, &[]).no_delete {
            out.kept.push(key.clone());
        } else if ResourceOptions::of(live, &[]).delete_confirm && !delete_approved {
            out.awaiting_confirmation.push(key.clone());
        } else {
            deletions.push(Box::pin(delete_one(writer, reach, key)));
        }
    }
    let results: Vec<(ObjKey, Result<(), ExecuteError>)> = futures::stream::iter(deletions)
        .buffered(16)
        .collect()
        .await;
    for (key, result) in results {
        match result {
            Ok(()) => out.deleted.push(key),
            Err(e) => out.failed.push((key, e)),
        }
    }
    out
}

async fn delete_one(
    writer: &impl ClusterWriter,
    reach: &BTreeMap<(String, String), Reach>,
    key: &ObjKey,
) -> (ObjKey, Result<(), ExecuteError>) {
    let Some(reach) = reach.get(&(key.group.clone(), key.kind.clone())) else {
        return (key.clone(), Err(ExecuteError::DeleteKindNotServed));
    };
    let result = match writer.delete(reach, key).await {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(ExecuteError::Delete(e)),
    };
    (key.clone(), result)
}

/// Makes sure namespace `name` exists (`CreateNamespace=true`).
pub async fn ensure_namespace(writer: &impl ClusterWriter, name: &str) -> Result<(), ExecuteError> {
    match writer.namespace_exists(name).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            writer
                .apply_namespace(name)
                .await
                .map_err(|source| ExecuteError::CreateNamespace {
                    name: name.to_owned(),
                    source,
                })
        }
        Err(source) => Err(ExecuteError::ReadNamespace {
            name: name.to_owned(),
            source,
        }),
    }
}

/// A Kubernetes error as one line (the API's own message where there is one).
#[must_use]
pub fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::Scope;
    use crate::plan;
    use crate::resource::{TRACKING_ANNOTATION, role_of, wave_of};
    use crate::writer::fake::{FakeWriter, merge};
    use kube::api::ApiResource;
    use serde_json::json;

    const APP: &str = "app";
    const OPERATION: &str = "2026-01-01T00:00:00Z";

    fn api_version(kind: &str) -> &'static str {
        match kind {
            "Deployment" => "apps/v1",
            "Job" => "batch/v1",
            _ => "v1",
        }
    }

    /// A manifest of `kind`/`name` in namespace `ns` tracked by [`APP`], with `extra`
    /// merged in.
    fn manifest(kind: &str, name: &str, extra: Value) -> Value {
        let mut object = json!({"apiVersion": api_version(kind), "kind": kind,
            "metadata": {"name": name, "namespace": "ns"}});
        merge(&mut object, extra);
        let key = ObjKey::of(&object).unwrap();
        object["metadata"]["annotations"][TRACKING_ANNOTATION] = json!(key.tracking_id(APP));
        object
    }

    fn desired(kind: &str, name: &str, extra: Value) -> DesiredObject {
        let object = manifest(kind, name, extra);
        DesiredObject {
            key: ObjKey::of(&object).unwrap(),
            role: role_of(&object),
            wave: wave_of(&object),
            options: ResourceOptions::of(&object, &[]),
            object,
        }
    }

    fn live(objects: &[Value]) -> BTreeMap<ObjKey, Value> {
        objects
            .iter()
            .map(|o| (ObjKey::of(o).unwrap(), o.clone()))
            .collect()
    }

    fn annotated(key: &str, value: &str) -> Value {
        json!({"metadata": {"annotations": {key: value}}})
    }

    fn wave(n: i32) -> Value {
        annotated("argocd.argoproj.io/sync-wave", &n.to_string())
    }

    fn sync_options(options: &str) -> Value {
        annotated("argocd.argoproj.io/sync-options", options)
    }

    /// Every kind of these tests, served namespaced.
    fn reach() -> BTreeMap<(String, String), Reach> {
        ["ConfigMap", "Deployment", "Job"]
            .into_iter()
            .map(|kind| {
                let api_version = api_version(kind);
                let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
                let resource = ApiResource {
                    group: group.into(),
                    version: version.into(),
                    api_version: api_version.into(),
                    kind: kind.into(),
                    plural: format!("{}s", kind.to_lowercase()),
                };
                let reach = Reach {
                    resource,
                    scope: Scope::Namespaced,
                };
                ((group.to_owned(), kind.to_owned()), reach)
            })
            .collect()
    }

    /// The plan a reconcile makes: compare, then order (hooks included).
    fn plan_for(
        desired: &[DesiredObject],
        live: &BTreeMap<ObjKey, Value>,
        prune: bool,
    ) -> SyncPlan {
        let states = plan::compare(desired, live, APP, &[]);
        let options = |key: &ObjKey| {
            live.get(key)
                .map(|l| ResourceOptions::of(l, &[]))
                .unwrap_or_default()
        };
        plan::steps(desired, &states, prune, true, &options)
    }

    /// One sync pass through `writer`, pruning.
    async fn sync(
        writer: &FakeWriter,
        desired: &[DesiredObject],
        live: &mut BTreeMap<ObjKey, Value>,
        done_hooks: &BTreeSet<ObjKey>,
    ) -> (SyncPlan, Executed) {
        let plan = plan_for(desired, live, true);
        let reach = reach();
        let mut target = Target {
            desired,
            reach: &reach,
            live,
            operation_id: OPERATION,
            done_hooks,
            concurrency: 4,
            app: APP,
            prune_approved: false,
            health: &health::HealthChecks::default(),
        };
        let executed = run(writer, &mut target, &plan).await;
        (plan, executed)
    }

    fn healthy_deployment() -> Value {
        json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
            "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1}})
    }

    fn key(kind: &str, name: &str) -> ObjKey {
        ObjKey::of(&manifest(kind, name, json!({}))).unwrap()
    }

    #[tokio::test]
    async fn waves_apply_in_order() {
        let desired = vec![
            desired("ConfigMap", "late", wave(1)),
            desired("Deployment", "web", json!({"spec": {"replicas": 1}})),
        ];
        let writer = FakeWriter::default().respond("web", healthy_deployment());
        let (_, executed) = sync(&writer, &desired, &mut BTreeMap::new(), &BTreeSet::new()).await;
        assert_eq!(
            writer.requests(),
            ["apply Deployment/web", "apply ConfigMap/late"]
        );
        assert_eq!(executed.waiting, None);
        assert_eq!(executed.failure(), None);
        assert_eq!(executed.count(false), 2);
    }

    #[tokio::test]
    async fn a_wave_that_is_not_healthy_holds_the_next() {
        let desired = vec![
            desired("ConfigMap", "late", wave(1)),
            desired("Deployment", "web", json!({"spec": {"replicas": 1}})),
        ];
        let writer = FakeWriter::default();
        let mut live = BTreeMap::new();
        let (_, executed) = sync(&writer, &desired, &mut live, &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["apply Deployment/web"]);
        assert_eq!(
            executed.waiting.as_deref(),
            Some("waiting for Deployment.apps ns/web to become healthy")
        );
        assert!(!executed.results.contains_key(&key("ConfigMap", "late")));
        // The applied object is what the next pass compares with.
        assert!(live.contains_key(&key("Deployment", "web")));

        // Next pass: the Deployment rolled out; only the later wave is applied.
        merge(
            live.get_mut(&key("Deployment", "web")).unwrap(),
            healthy_deployment(),
        );
        let writer = FakeWriter::default();
        let (_, executed) = sync(&writer, &desired, &mut live, &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["apply ConfigMap/late"]);
        assert_eq!(executed.waiting, None);
    }

    #[tokio::test]
    async fn pre_sync_hook_runs_before_the_sync_wave() {
        let desired = vec![
            desired("ConfigMap", "cfg", json!({})),
            desired(
                "Job",
                "migrate",
                annotated("argocd.argoproj.io/hook", "PreSync"),
            ),
        ];
        let writer = FakeWriter::default();
        let mut live = BTreeMap::new();
        let (_, executed) = sync(&writer, &desired, &mut live, &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["create Job/migrate"]);
        assert_eq!(
            executed.waiting.as_deref(),
            Some("waiting for hook Job.batch ns/migrate to complete")
        );
        let created = &live[&key("Job", "migrate")];
        assert_eq!(
            crate::resource::annotation(created, HOOK_OPERATION_ANNOTATION),
            Some(OPERATION)
        );

        // Next pass: the Job completed; the sync wave follows.
        merge(
            live.get_mut(&key("Job", "migrate")).unwrap(),
            json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
        );
        let writer = FakeWriter::default();
        let (_, executed) = sync(&writer, &desired, &mut live, &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["apply ConfigMap/cfg"]);
        assert_eq!(
            executed.results[&key("Job", "migrate")],
            Outcome::HookSucceeded
        );
        assert_eq!(executed.waiting, None);
    }

    #[tokio::test]
    async fn before_hook_creation_deletes_the_previous_hook_first() {
        let hook = annotated("argocd.argoproj.io/hook", "PreSync");
        let desired = vec![desired("Job", "migrate", hook.clone())];
        let previous = manifest(
            "Job",
            "migrate",
            json!({"metadata": {"annotations": {
                "argocd.argoproj.io/hook": "PreSync",
                HOOK_OPERATION_ANNOTATION: "an earlier operation"}},
                "status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
        );
        let writer = FakeWriter::default();
        let mut live = live(std::slice::from_ref(&previous));
        sync(&writer, &desired, &mut live, &BTreeSet::new()).await;
        assert_eq!(
            writer.requests(),
            ["delete Job/migrate", "create Job/migrate"]
        );

        // The old copy cannot be deleted: no new one is created, the sync fails.
        let writer = FakeWriter::default().fail("delete Job/migrate", 403, "forbidden");
        let mut live = self::live(&[previous]);
        let (_, executed) = sync(&writer, &desired, &mut live, &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["delete Job/migrate"]);
        // kube's own text of the error, as before the writer trait.
        assert_eq!(
            executed.failure().as_deref(),
            Some(
                "hook failed: Job.batch ns/migrate: deleting the previous hook: ApiError: \
                 forbidden: Test (Status { status: Some(Failure), code: 403, message: \
                 \"forbidden\", metadata: None, reason: \"Test\", details: None })"
            )
        );
    }

    /// A live object at `kind`/`name` that `owner` tracks (`None`: nobody).
    fn foreign(kind: &str, name: &str, owner: Option<&str>, extra: Value) -> Value {
        let mut object = manifest(kind, name, extra);
        let key = ObjKey::of(&object).unwrap();
        let annotations = object["metadata"]["annotations"].as_object_mut().unwrap();
        match owner {
            Some(owner) => {
                annotations.insert(TRACKING_ANNOTATION.into(), json!(key.tracking_id(owner)));
            }
            None => {
                annotations.remove(TRACKING_ANNOTATION);
            }
        }
        object
    }

    #[tokio::test]
    async fn a_hook_never_replaces_or_deletes_an_object_this_app_does_not_track() {
        let hook = json!({"metadata": {"annotations": {
            "argocd.argoproj.io/hook": "PreSync",
            "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation,HookSucceeded,HookFailed"}}});
        let desired = vec![desired("Job", "migrate", hook)];
        // Untracked, tracked by another app, and another app's object that even carries
        // this operation's hook annotation (so it looks like "ours" to the hook logic).
        let cases = [
            (
                foreign("Job", "migrate", None, json!({})),
                "not tracked by any application",
            ),
            (
                foreign("Job", "migrate", Some("other"), json!({})),
                "tracked by application other",
            ),
            (
                foreign(
                    "Job",
                    "migrate",
                    Some("other"),
                    json!({"metadata": {"annotations": {HOOK_OPERATION_ANNOTATION: OPERATION}},
                        "status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
                ),
                "tracked by application other",
            ),
        ];
        for (existing, owner) in cases {
            let writer = FakeWriter::default();
            let mut live = live(std::slice::from_ref(&existing));
            let (_, executed) = sync(&writer, &desired, &mut live, &BTreeSet::new()).await;
            assert_eq!(writer.requests(), Vec::<String>::new(), "{owner}");
            assert_eq!(
                executed.failure().as_deref(),
                Some(
                    format!(
                        "hook failed: Job.batch ns/migrate: hook migrate would replace \
                         Job.batch ns/migrate, which this application does not own ({owner}); \
                         it was left untouched"
                    )
                    .as_str()
                )
            );
            assert_eq!(live[&key("Job", "migrate")], existing, "untouched");
        }
    }

    #[tokio::test]
    async fn prune_refuses_an_object_this_app_does_not_track() {
        let theirs = foreign("ConfigMap", "theirs", Some("other"), json!({}));
        let plan = SyncPlan {
            steps: vec![plan::Step {
                phase: Some(plan::Phase::Sync),
                prune: vec![key("ConfigMap", "theirs"), key("ConfigMap", "unseen")],
                ..plan::Step::default()
            }],
            ..SyncPlan::default()
        };
        let writer = FakeWriter::default();
        let reach = reach();
        let mut live = live(&[theirs]);
        let mut target = Target {
            desired: &[],
            reach: &reach,
            live: &mut live,
            operation_id: OPERATION,
            done_hooks: &BTreeSet::new(),
            concurrency: 4,
            app: APP,
            prune_approved: false,
            health: &health::HealthChecks::default(),
        };
        let executed = run(&writer, &mut target, &plan).await;
        assert_eq!(writer.requests(), Vec::<String>::new());
        assert_eq!(
            executed.failures(),
            [
                "ConfigMap ns/theirs: would prune ConfigMap ns/theirs, which this application \
                 does not own (tracked by application other); it was left untouched",
                "ConfigMap ns/unseen: would prune ConfigMap ns/unseen, which this application \
                 does not own (not observed); it was left untouched"
            ]
        );
    }

    #[tokio::test]
    async fn prune_confirm_waits_for_approval_and_then_prunes() {
        let desired = vec![desired("ConfigMap", "cfg", json!({"data": {"k": "v"}}))];
        let objects = [
            manifest("ConfigMap", "precious", sync_options("Prune=confirm")),
            manifest("ConfigMap", "old", json!({})),
        ];
        let live = live(&objects);
        let plan = plan_for(&desired, &live, true);
        assert_eq!(plan.prune_confirm, [key("ConfigMap", "precious")]);
        let reach = reach();
        for approved in [false, true] {
            let writer = FakeWriter::default();
            let mut live = live.clone();
            let mut target = Target {
                desired: &desired,
                reach: &reach,
                live: &mut live,
                operation_id: OPERATION,
                done_hooks: &BTreeSet::new(),
                concurrency: 4,
                app: APP,
                prune_approved: approved,
                health: &health::HealthChecks::default(),
            };
            let executed = run(&writer, &mut target, &plan).await;
            if approved {
                assert_eq!(
                    writer.requests(),
                    [
                        "apply ConfigMap/cfg",
                        "delete ConfigMap/precious",
                        "delete ConfigMap/old"
                    ]
                );
                assert_eq!(executed.waiting, None);
            } else {
                // The whole sync waits: nothing is applied or pruned meanwhile.
                assert_eq!(writer.requests(), Vec::<String>::new());
                assert_eq!(
                    executed.waiting.as_deref(),
                    Some(
                        "waiting for pruning confirmation of ConfigMap ns/precious \
                         (argosy app confirm-deletion)"
                    )
                );
            }
        }
        // Without prune, Prune=confirm objects are simply skipped: nothing to wait for.
        let plan = plan_for(&desired, &live, false);
        assert!(plan.prune_confirm.is_empty());
        assert_eq!(plan.awaiting_confirmation(false), None);
    }

    #[tokio::test]
    async fn finalize_waits_for_approval_of_delete_confirm() {
        let tracked: Vec<(ObjKey, Value)> = live(&[
            manifest("ConfigMap", "a", json!({})),
            manifest("ConfigMap", "precious", sync_options("Delete=confirm")),
        ])
        .into_iter()
        .collect();
        let writer = FakeWriter::default();
        let outcome = finalize(&writer, &reach(), &tracked, APP, false).await;
        assert_eq!(writer.requests(), ["delete ConfigMap/a"]);
        assert_eq!(
            outcome.awaiting_confirmation,
            [key("ConfigMap", "precious")]
        );
        let writer = FakeWriter::default();
        let outcome = finalize(&writer, &reach(), &tracked, APP, true).await;
        assert_eq!(
            writer.requests(),
            ["delete ConfigMap/a", "delete ConfigMap/precious"]
        );
        assert!(outcome.awaiting_confirmation.is_empty());
    }

    #[tokio::test]
    async fn sync_fail_hooks_run_only_after_a_failure_and_hook_succeeded_deletes() {
        let desired = vec![
            desired("ConfigMap", "a", json!({})),
            desired(
                "Job",
                "page",
                json!({"metadata": {"annotations": {
                    "argocd.argoproj.io/hook": "SyncFail",
                    "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}}}),
            ),
        ];
        let writer = FakeWriter::default().fail("apply ConfigMap/a", 500, "boom");
        let mut live = BTreeMap::new();
        let (plan, mut executed) = sync(&writer, &desired, &mut live, &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["apply ConfigMap/a"]);
        assert!(executed.failure().is_some());

        let reach = reach();
        let done = BTreeSet::new();
        let mut target = Target {
            desired: &desired,
            reach: &reach,
            live: &mut live,
            operation_id: OPERATION,
            done_hooks: &done,
            concurrency: 4,
            app: APP,
            prune_approved: false,
            health: &health::HealthChecks::default(),
        };
        let hooks = run_sync_fail_hooks(&writer, &mut target, &plan, &mut executed).await;
        assert_eq!(hooks, SyncFailHooks::Running);
        assert_eq!(writer.requests(), ["apply ConfigMap/a", "create Job/page"]);

        // It completed: HookSucceeded deletes it.
        merge(
            target.live.get_mut(&key("Job", "page")).unwrap(),
            json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
        );
        let hooks = run_sync_fail_hooks(&writer, &mut target, &plan, &mut executed).await;
        assert_eq!(hooks, SyncFailHooks::Done);
        assert_eq!(
            writer.requests(),
            ["apply ConfigMap/a", "create Job/page", "delete Job/page"]
        );
        assert_eq!(
            executed.results[&key("Job", "page")],
            Outcome::HookSucceeded
        );
    }

    #[tokio::test]
    async fn a_failed_apply_fails_the_sync_and_later_waves_wait() {
        let desired = vec![
            desired("ConfigMap", "a", json!({})),
            desired("ConfigMap", "b", json!({})),
            desired("ConfigMap", "late", wave(1)),
        ];
        let writer = FakeWriter::default().fail("apply ConfigMap/a", 422, "data is invalid");
        let (_, executed) = sync(&writer, &desired, &mut BTreeMap::new(), &BTreeSet::new()).await;
        assert_eq!(
            writer.requests(),
            ["apply ConfigMap/a", "apply ConfigMap/b"]
        );
        assert_eq!(
            executed.results[&key("ConfigMap", "a")],
            Outcome::Failed("data is invalid (422)".into())
        );
        assert_eq!(
            executed.failure().as_deref(),
            Some("1 resource(s) failed to sync: ConfigMap ns/a: data is invalid (422)")
        );
        assert!(!executed.results.contains_key(&key("ConfigMap", "late")));
    }

    #[tokio::test]
    async fn prune_deletes_only_what_the_plan_prunes() {
        let cfg = desired("ConfigMap", "cfg", json!({"data": {"k": "v"}}));
        let mut foreign = manifest("ConfigMap", "foreign", json!({}));
        foreign["metadata"]["annotations"][TRACKING_ANNOTATION] =
            json!(key("ConfigMap", "foreign").tracking_id("other-app"));
        let objects = [
            cfg.object.clone(),
            manifest("ConfigMap", "old", json!({})),
            foreign,
        ];
        let desired = vec![cfg];

        let writer = FakeWriter::default();
        let (plan, executed) = sync(&writer, &desired, &mut live(&objects), &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["delete ConfigMap/old"]);
        assert_eq!(executed.results[&key("ConfigMap", "old")], Outcome::Pruned);
        assert!(plan.prune_skipped.is_empty());

        // A sync without prune deletes nothing.
        let writer = FakeWriter::default();
        let live = live(&objects);
        let plan = plan_for(&desired, &live, false);
        let reach = reach();
        let mut live = live;
        let mut target = Target {
            desired: &desired,
            reach: &reach,
            live: &mut live,
            operation_id: OPERATION,
            done_hooks: &BTreeSet::new(),
            concurrency: 4,
            app: APP,
            prune_approved: false,
            health: &health::HealthChecks::default(),
        };
        run(&writer, &mut target, &plan).await;
        assert_eq!(writer.requests(), Vec::<String>::new());
        assert_eq!(plan.prune_skipped, [key("ConfigMap", "old")]);
    }

    #[tokio::test]
    async fn prune_false_objects_are_not_deleted() {
        let objects = [
            manifest("ConfigMap", "keep", sync_options("Prune=false")),
            manifest("ConfigMap", "old", json!({})),
        ];
        let writer = FakeWriter::default();
        let (plan, executed) = sync(&writer, &[], &mut live(&objects), &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["delete ConfigMap/old"]);
        assert_eq!(plan.prune_skipped, [key("ConfigMap", "keep")]);
        assert!(!executed.results.contains_key(&key("ConfigMap", "keep")));
    }

    #[tokio::test]
    async fn prune_last_prunes_after_the_last_wave() {
        let desired = vec![desired("ConfigMap", "late", wave(1))];
        let objects = [
            manifest("ConfigMap", "last", sync_options("PruneLast=true")),
            manifest("ConfigMap", "old", json!({})),
        ];
        let writer = FakeWriter::default();
        sync(&writer, &desired, &mut live(&objects), &BTreeSet::new()).await;
        assert_eq!(
            writer.requests(),
            [
                "delete ConfigMap/old",
                "apply ConfigMap/late",
                "delete ConfigMap/last"
            ]
        );
    }

    #[tokio::test]
    async fn replace_true_creates_or_replaces_instead_of_applying() {
        let desired = vec![desired(
            "ConfigMap",
            "r",
            json!({"metadata": {"annotations": {
                "argocd.argoproj.io/sync-options": "Replace=true"}}, "data": {"k": "new"}}),
        )];
        let writer = FakeWriter::default();
        let (_, executed) = sync(&writer, &desired, &mut BTreeMap::new(), &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["create ConfigMap/r"]);
        assert!(matches!(
            executed.results[&key("ConfigMap", "r")],
            Outcome::Applied(_)
        ));

        // Live at resourceVersion 7 with other data: PUT over it at that version.
        let mut old = desired[0].object.clone();
        old["data"]["k"] = json!("old");
        old["metadata"]["resourceVersion"] = json!("7");
        let writer = FakeWriter::default().fail("replace ConfigMap/r@7", 409, "conflict");
        let (_, executed) = sync(&writer, &desired, &mut live(&[old]), &BTreeSet::new()).await;
        assert_eq!(writer.requests(), ["replace ConfigMap/r@7"]);
        assert_eq!(
            executed.results[&key("ConfigMap", "r")],
            Outcome::Failed("conflict (409)".into())
        );
    }

    #[tokio::test]
    async fn finalize_deletes_tracked_objects_except_delete_false() {
        let mut foreign = manifest("ConfigMap", "foreign", json!({}));
        foreign["metadata"]["annotations"][TRACKING_ANNOTATION] =
            json!(key("ConfigMap", "foreign").tracking_id("other-app"));
        let tracked: Vec<(ObjKey, Value)> = live(&[
            manifest("ConfigMap", "a", json!({})),
            manifest("ConfigMap", "kept", sync_options("Delete=false")),
            manifest("Deployment", "web", json!({})),
            foreign,
        ])
        .into_iter()
        .collect();
        let writer = FakeWriter::default();
        let outcome = finalize(&writer, &reach(), &tracked, APP, false).await;
        assert_eq!(
            writer.requests(),
            ["delete ConfigMap/a", "delete Deployment/web"]
        );
        assert_eq!(
            outcome.deleted,
            [key("ConfigMap", "a"), key("Deployment", "web")]
        );
        assert_eq!(outcome.kept, [key("ConfigMap", "kept")]);
        assert_eq!(outcome.not_tracked, [key("ConfigMap", "foreign")]);
        assert!(outcome.failures().is_empty());
    }

    #[tokio::test]
    async fn finalize_reports_a_failed_delete_and_deletes_the_rest() {
        let tracked: Vec<(ObjKey, Value)> = live(&[
            manifest("ConfigMap", "a", json!({})),
            manifest("ConfigMap", "b", json!({})),
            manifest("ConfigMap", "gone", json!({})),
        ])
        .into_iter()
        .collect();
        let writer = FakeWriter::default()
            .fail("delete ConfigMap/a", 403, "forbidden")
            .fail("delete ConfigMap/gone", 404, "not found");
        let outcome = finalize(&writer, &reach(), &tracked, APP, false).await;
        assert_eq!(
            writer.requests(),
            [
                "delete ConfigMap/a",
                "delete ConfigMap/b",
                "delete ConfigMap/gone"
            ]
        );
        assert_eq!(outcome.failures(), ["ConfigMap ns/a: forbidden (403)"]);
        // Already gone counts as deleted.
        assert_eq!(
            outcome.deleted,
            [key("ConfigMap", "b"), key("ConfigMap", "gone")]
        );
    }

    #[tokio::test]
    async fn ensure_namespace_creates_only_a_missing_namespace() {
        let writer = FakeWriter::default().with_namespace("there");
        ensure_namespace(&writer, "there").await.unwrap();
        ensure_namespace(&writer, "new").await.unwrap();
        assert_eq!(
            writer.requests(),
            [
                "get Namespace/there",
                "get Namespace/new",
                "apply Namespace/new"
            ]
        );
        let writer = FakeWriter::default().fail("apply Namespace/new", 403, "forbidden");
        let e = ensure_namespace(&writer, "new").await.unwrap_err();
        assert_eq!(e.to_string(), "creating namespace new: forbidden (403)");
    }
}
