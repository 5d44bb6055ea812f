//! The single writer: executes a plan, patches status, publishes Events. Leader only.
//!
//! Applications are written with server-side apply (field manager `argosy`, forced, as
//! Argo CD's controller owns these fields), concurrently up to `concurrent_writes`. If
//! any create/update fails, deletions are skipped for this round (Argo CD does the same).
//! Events are published on condition transitions and as one summary per reconcile that
//! changed something, not one per Application: at fleet scale per-object Events would
//! double the API writes.

use std::sync::Arc;

use crate::events::EventType;
use argosy_crds::consts::RESOURCES_FINALIZER;
use argosy_crds::{Application, ApplicationSet, ApplicationSetStatus};
use futures::{StreamExt, stream};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;
use std::fmt::Debug;

use super::context::{Context, Error};
use super::plan::{ApplicationsSync, Plan};
use super::rolling_sync::reverse_deletion;
use super::status::APPROVE_DELETIONS_ANNOTATION;
use super::strategy::RollingSync;
use crate::refresh::{self, Request};
use argosy_sync_engine::echo::version_of;
use argosy_sync_engine::ssa::FIELD_MANAGER;

/// Applies creates/updates, then (if all succeeded) deletes. Returns the first error by name.
pub(super) async fn execute(
    appset: &ApplicationSet,
    plan: &Plan,
    live: &[std::sync::Arc<Application>],
    ctx: &Context,
) -> Option<Error> {
    let namespace = appset.namespace().unwrap_or_default();
    let api: Api<Application> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    // Started lazily: 10,000 pending request futures would take ~11 MiB up front. (By
    // index: a closure over `&Application` makes the reconcile future's `Send` proof
    // ask for a higher-ranked lifetime, which rustc cannot give.)
    let apps: Vec<&Application> = plan.create.iter().chain(&plan.update).collect();
    let writes = (0..apps.len()).map(|i| apply(&ctx.client, &api, &params, apps[i]));
    let results: Vec<Result<(), Error>> = stream::iter(writes)
        .buffer_unordered(ctx.config.concurrent_writes.max(1))
        .collect()
        .await;
    let mut errors: Vec<Error> = results.into_iter().filter_map(Result::err).collect();
    let mut deleted = 0;
    if errors.is_empty() {
        let known = ctx.clusters.valid_clusters();
        for name in &plan.delete {
            let app = live
                .iter()
                .find(|a| a.metadata.name.as_deref() == Some(name.as_str()));
            if let Some(app) = app
                && !destination_known(app, &known)
                && let Err(source) = strip_resources_finalizer(&ctx.client, &api, app).await
            {
                errors.push(Error::DeleteApplication {
                    name: name.clone(),
                    source,
                });
                continue;
            }
            match api.delete(name, &DeleteParams::background()).await {
                Ok(_) => deleted += 1,
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(source) => errors.push(Error::DeleteApplication {
                    name: name.clone(),
                    source,
                }),
            }
        }
    }
    let (created, updated) = (plan.create.len(), plan.update.len());
    if created + updated + deleted > 0 {
        let note = format!("created {created}, updated {updated}, deleted {deleted} Applications");
        tracing::info!(appset = %appset.name_any(), %note);
        publish(ctx, appset, EventType::Normal, "ApplicationsChanged", &note).await;
    }
    errors.sort_by_key(|e| match e {
        Error::ApplyApplication { name, .. } | Error::DeleteApplication { name, .. } => {
            name.clone()
        }
        _ => String::new(),
    });
    errors.into_iter().next()
}

async fn apply(
    client: &Client,
    api: &Api<Application>,
    params: &PatchParams,
    app: &Application,
) -> Result<(), Error> {
    let name = app.name_any();
    send_patch(client, api, None, &name, params, &Patch::Apply(app))
        .await
        .map_err(|source| Error::ApplyApplication { name, source })
}

/// Sends a patch and discards the object the API server returns: the watch brings it into
/// the cache anyway, and decoding it is pure cost at fleet scale (10,000 Applications on
/// a cold create; the whole ApplicationSet, every generator element included, on each
/// status patch).
async fn send_patch<K: Resource, P: Serialize + Debug>(
    client: &Client,
    api: &Api<K>,
    subresource: Option<&str>,
    name: &str,
    params: &PatchParams,
    patch: &Patch<P>,
) -> Result<(), kube::Error> {
    let request = kube::core::Request::new(api.resource_url());
    let request = match subresource {
        Some(subresource) => request.patch_subresource(subresource, name, params, patch),
        None => request.patch(name, params, patch),
    }
    .map_err(kube::Error::BuildRequest)?;
    client.request_text(request).await.map(drop)
}

/// Argo CD's bug #5817 workaround: an Application whose destination cluster is gone can
/// never be cleaned up by the sync engine, so its resources finalizer is removed first.
///
/// Only a destination that names no cluster at all counts as gone: an ambiguous one (two
/// Secrets for a server, two clusters with a name) still means a cluster that holds the
/// app's resources, so its finalizer stays.
fn destination_known(app: &Application, known: &[argosy_crds::Cluster]) -> bool {
    use argosy_crds::DestinationError;
    !matches!(
        argosy_crds::resolve_destination(&app.spec.destination, known),
        Err(DestinationError::UnknownServer { .. }
            | DestinationError::UnknownName { .. }
            | DestinationError::Missing)
    )
}

async fn strip_resources_finalizer(
    client: &Client,
    api: &Api<Application>,
    app: &Application,
) -> Result<(), kube::Error> {
    let finalizers: Vec<&String> = app
        .finalizers()
        .iter()
        .filter(|f| *f != RESOURCES_FINALIZER)
        .collect();
    if finalizers.len() == app.finalizers().len() {
        return Ok(());
    }
    let patch = json!({"metadata": {"finalizers": finalizers}});
    send_patch(
        client,
        api,
        None,
        &app.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
}

/// Writes `status` if it differs from the live one, and publishes an Event for each
/// error-like condition that became true or changed its message.
pub(super) async fn publish_status(
    appset: &ApplicationSet,
    status: ApplicationSetStatus,
    ctx: &Context,
) -> Result<(), Error> {
    let previous = appset.status.clone().unwrap_or_default();
    if previous == status {
        return Ok(());
    }
    let api: Api<ApplicationSet> =
        Api::namespaced(ctx.client.clone(), &appset.namespace().unwrap_or_default());
    let mut body = json!({"status": &status});
    // A merge patch keeps what it does not name: cleared rollout state is removed by name.
    if status.application_status.is_empty() && !previous.application_status.is_empty() {
        body["status"]["applicationStatus"] = serde_json::Value::Null;
    }
    if status.rollout.is_none() && previous.rollout.is_some() {
        body["status"]["rollout"] = serde_json::Value::Null;
    }
    send_patch(
        &ctx.client,
        &api,
        Some("status"),
        &appset.name_any(),
        &PatchParams::default(),
        &Patch::Merge(body),
    )
    .await
    .map_err(Error::PatchStatus)?;
    for cond in &status.conditions {
        let watched = matches!(cond.type_.as_str(), "ErrorOccurred" | "DeletionsHeld");
        let was = previous.conditions.iter().find(|c| c.type_ == cond.type_);
        let changed = was.is_none_or(|w| w.status != cond.status || w.message != cond.message);
        if watched && cond.status == "True" && changed {
            publish(ctx, appset, EventType::Warning, &cond.reason, &cond.message).await;
        }
    }
    Ok(())
}

/// Removes the one-shot deletion approval after it has been used.
/// How often a reverse deletion looks again (Argo CD's 10 s); the Applications' own
/// deletions wake it sooner.
const REVERSE_DELETION_REQUEUE: std::time::Duration = std::time::Duration::from_secs(10);

/// Adds Argo CD's resources finalizer, which `deletionOrder: Reverse` needs to delete the
/// Applications in order before the ApplicationSet goes (as Argo CD adds it).
pub(super) async fn ensure_resources_finalizer(
    appset: &ApplicationSet,
    ctx: &Context,
) -> Result<(), Error> {
    if appset.finalizers().iter().any(|f| f == RESOURCES_FINALIZER) {
        return Ok(());
    }
    let mut finalizers: Vec<String> = appset.finalizers().to_vec();
    finalizers.push(RESOURCES_FINALIZER.to_owned());
    merge_patch_appset(
        appset,
        &json!({"metadata": {"finalizers": finalizers}}),
        ctx,
    )
    .await
}

/// Sets `operation` on owned Applications (the rollout's syncs and rollbacks), as Argo CD's
/// RollingSync does; the Application controller runs them. Every one is tried; the first
/// error is returned.
pub(super) async fn start_operations(
    appset: &ApplicationSet,
    operations: &[(String, argosy_crds::operation::Operation)],
    ctx: &Context,
) -> Result<(), Error> {
    let api: Api<Application> =
        Api::namespaced(ctx.client.clone(), &appset.namespace().unwrap_or_default());
    let mut first = None;
    for (name, operation) in operations {
        let patch = Patch::Merge(json!({"operation": operation}));
        if let Err(source) = send_patch(
            &ctx.client,
            &api,
            None,
            name,
            &PatchParams::default(),
            &patch,
        )
        .await
        {
            first.get_or_insert(Error::StartRolloutSync {
                name: name.clone(),
                source,
            });
        }
    }
    first.map_or(Ok(()), Err)
}

/// Publishes the rollout's Events.
pub(super) async fn publish_rollout_events(
    appset: &ApplicationSet,
    events: &[super::rolling_sync::RolloutEvent],
    ctx: &Context,
) {
    for event in events {
        let type_ = if event.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        tracing::info!(appset = %appset.name_any(), reason = event.reason, message = %event.message, "rollout");
        publish(ctx, appset, type_, event.reason, &event.message).await;
    }
}

pub(super) async fn clear_approval(appset: &ApplicationSet, ctx: &Context) -> Result<(), Error> {
    let patch = json!({"metadata": {"annotations": {APPROVE_DELETIONS_ANNOTATION: null}}});
    merge_patch_appset(appset, &patch, ctx).await
}

/// Removes a refresh request that was acted on, as this controller's own write (its echo
/// triggers no reconcile). A request that changed meanwhile stays: its event reconciles
/// again. True when another change of the ApplicationSet arrived during the write, which
/// must be reconciled now.
pub(super) async fn remove_refresh_request(
    appset: &ApplicationSet,
    request: &Request,
    ctx: &Context,
) -> Result<bool, Error> {
    let api: Api<ApplicationSet> =
        Api::namespaced(ctx.client.clone(), &appset.namespace().unwrap_or_default());
    let params = PatchParams {
        field_manager: Some(refresh::FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    ctx.writing(appset);
    let result = api
        .patch_metadata(&appset.name_any(), &params, &request.removal())
        .await;
    let version = result
        .as_ref()
        .ok()
        .and_then(|meta| version_of(meta.metadata.resource_version.as_deref()));
    let changed_meanwhile = ctx.written(appset, version);
    match result {
        Ok(_) => Ok(changed_meanwhile),
        Err(e) if refresh::superseded(&e) => {
            tracing::debug!(appset = %appset.name_any(), error = %e, "the refresh request changed meanwhile; kept");
            Ok(changed_meanwhile)
        }
        Err(e) => Err(Error::RemoveRefreshRequest(e)),
    }
}

/// A JSON merge patch of the ApplicationSet's own metadata.
async fn merge_patch_appset(
    appset: &ApplicationSet,
    patch: &serde_json::Value,
    ctx: &Context,
) -> Result<(), Error> {
    let api: Api<ApplicationSet> =
        Api::namespaced(ctx.client.clone(), &appset.namespace().unwrap_or_default());
    send_patch(
        &ctx.client,
        &api,
        None,
        &appset.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map_err(Error::PatchApplicationSet)
}

/// Deletion of the ApplicationSet itself. Without Argo CD's resources finalizer on the
/// ApplicationSet, Kubernetes garbage collection follows the owner references. With it,
/// Argosy deletes the owned Applications (or, if the policy forbids deletes, orphans
/// them by dropping the owner reference) and then removes the finalizer.
pub(super) async fn finalize(
    appset: &Arc<ApplicationSet>,
    owned: &[&Application],
    reverse: Option<&RollingSync>,
    ctx: &Context,
) -> Result<Action, Error> {
    if !appset.finalizers().iter().any(|f| f == RESOURCES_FINALIZER) || !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    let namespace = appset.namespace().unwrap_or_default();
    let apps: Api<Application> = Api::namespaced(ctx.client.clone(), &namespace);
    let policy = ctx.config.policy_override.unwrap_or_else(|| {
        ApplicationsSync::parse(
            appset
                .spec
                .sync_policy
                .as_ref()
                .and_then(|p| p.applications_sync.as_deref()),
        )
        .unwrap_or_default()
    });
    let deletes = matches!(
        policy,
        ApplicationsSync::Sync | ApplicationsSync::CreateDelete
    );
    // `deletionOrder: Reverse`: one step at a time, from the last, each gone before the next.
    let reverse_round = reverse
        .filter(|_| deletes)
        .map(|rolling| reverse_deletion(rolling, owned));
    let to_delete: Vec<&Application> = match &reverse_round {
        Some(round) => owned
            .iter()
            .copied()
            .filter(|a| round.delete.contains(&a.name_any()))
            .collect(),
        None => owned.to_vec(),
    };
    for app in to_delete {
        let name = app.name_any();
        let result = if deletes {
            apps.delete(&name, &DeleteParams::background())
                .await
                .map(|_| ())
        } else {
            let patch = json!({"metadata": {"ownerReferences": null}});
            apps.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
        };
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => return Err(Error::DeleteApplication { name, source }),
        }
    }
    if let Some(round) = reverse_round
        && (!round.delete.is_empty() || !round.waiting.is_empty())
    {
        tracing::info!(appset = %appset.name_any(), deleting = ?round.delete, waiting = ?round.waiting, "reverse deletion");
        return Ok(Action::requeue(REVERSE_DELETION_REQUEUE));
    }
    let remaining: Vec<&String> = appset
        .finalizers()
        .iter()
        .filter(|f| *f != RESOURCES_FINALIZER)
        .collect();
    let patch = json!({"metadata": {"finalizers": remaining}});
    merge_patch_appset(appset, &patch, ctx).await?;
    Ok(Action::await_change())
}

async fn publish(
    ctx: &Context,
    appset: &ApplicationSet,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    ctx.events
        .publish(appset.object_ref(&()), type_, reason, "Reconcile", note)
        .await;
}
