//! The ApplicationSet controller.
//!
//! `reconcile` is thin: generate (pure, on a blocking thread) → plan (pure) → write
//! (leader only) → status → requeue. A generation error writes nothing but the status
//! condition and an Event, and never deletes: the safety rules live in [`plan`].
//! User errors (bad template, unknown generator) requeue slowly; API errors go through
//! [`error_policy`] with per-object exponential backoff, so nothing loops hot.
//!
//! A refresh request (`argocd.argoproj.io/application-set-refresh`, see [`crate::refresh`])
//! makes the generation check every repository it reads against its remote first; it is
//! removed after a successful reconcile, as Argo CD does.

mod context;
pub mod plan;
mod rolling_sync;
pub mod status;
pub mod strategy;
pub mod triggers;
mod writer;

use std::collections::BTreeSet;
use std::sync::Arc;

use argosy_crds::{Application, ApplicationSet};
use argosy_generators::pipeline::Generated;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::Instrument as _;

use crate::refresh::Request;
pub(crate) use context::template_project;
pub use context::{Config, Context, ContextParts, Error};
use plan::{ApplicationsSync, DeletionBudget, IgnoredFields, PlanPolicy, owner_reference};
use status::{APPROVE_DELETIONS_ANNOTATION, DELETION_BUDGET_ANNOTATION, Outcome};
use strategy::Strategy;

/// Requeue after a user error (bad spec, unreachable repo): slow, like Argo CD's 3 minutes,
/// but starting sooner so a fixed typo is picked up quickly.
const USER_ERROR_REQUEUE: [u64; 4] = [10, 30, 90, 180];

/// Reconciles one ApplicationSet.
pub async fn reconcile(appset: Arc<ApplicationSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Every log line of this reconcile (generate, plan, write) carries the ApplicationSet.
    let span = tracing::info_span!("reconcile", appset = %ObjectRef::from_obj(appset.as_ref()));
    reconcile_appset(appset, ctx).instrument(span).await
}

/// [`reconcile`] with its panics contained ([`crate::contain`]): a panic is counted in
/// `metrics`, reported on the ApplicationSet (`ErrorOccurred` with reason
/// `ReconcileError`, best effort, and a Warning Event) and requeued with backoff; the
/// other ApplicationSets keep being reconciled.
pub async fn reconcile_contained(
    appset: Arc<ApplicationSet>,
    ctx: Arc<Context>,
    metrics: &crate::metrics::Metrics,
) -> Result<Action, Error> {
    let key = ObjectRef::from_obj(appset.as_ref());
    match crate::contain::catch(reconcile(appset.clone(), ctx.clone())).await {
        Ok(result) => {
            ctx.panics.recovered(&key.to_string());
            result
        }
        Err(message) => {
            metrics.reconcile_panicked("applicationset");
            let why = crate::contain::report(&message);
            tracing::error!(appset = %key, %why, "reconcile panicked");
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            let status =
                status::with_internal_error(&appset.status.clone().unwrap_or_default(), &why, &now);
            // Publishes the Warning Event for the changed ErrorOccurred condition.
            if let Err(e) = writer::publish_status(&appset, status, &ctx).await {
                tracing::warn!(appset = %key, error = %e, "reporting the panic in the status failed");
            }
            Ok(Action::requeue(ctx.panics.panicked(&key.to_string())))
        }
    }
}

async fn reconcile_appset(appset: Arc<ApplicationSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = appset
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let name = appset
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("name"))?;
    let uid = appset
        .metadata
        .uid
        .clone()
        .ok_or(Error::MissingMetadata("uid"))?;
    let started = std::time::Instant::now();
    if !ctx.config.appset_namespaces.contains(&namespace) {
        return Ok(Action::await_change());
    }
    ctx.caches_ready().await?;
    let key = ObjectRef::from_obj(appset.as_ref());
    let owner = owner_reference(&name, &uid);
    let live: Vec<Arc<Application>> = ctx
        .applications
        .state()
        .into_iter()
        .filter(|a| a.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .collect();
    let owned: Vec<&Application> = live
        .iter()
        .map(AsRef::as_ref)
        .filter(|a| plan::is_owned_by(a, &owner))
        .collect();

    let annotations = appset.metadata.annotations.clone().unwrap_or_default();
    let parsed_strategy = strategy::parse(appset.spec.strategy.as_ref(), &annotations);
    if appset.metadata.deletion_timestamp.is_some() {
        let reverse = match &parsed_strategy {
            Ok(Strategy::RollingSync(rolling)) if rolling.reverse_deletion => Some(rolling),
            _ => None,
        };
        return writer::finalize(&appset, &owned, reverse, &ctx).await;
    }

    // A strategy Argosy cannot honour: refused before anything is generated.
    let strategy = match parsed_strategy {
        Ok(strategy) => strategy,
        Err(message) => {
            tracing::warn!(appset = %key, error = %message, "strategy refused; nothing is created, updated or deleted");
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            let outcome = Outcome::GenerationFailed {
                reason: "UnsupportedStrategy",
                message: &message,
            };
            let new_status = status::compute(appset.status.as_ref(), &outcome, &owned, &now);
            if ctx.is_leader() {
                writer::publish_status(&appset, new_status, &ctx).await?;
            }
            return Ok(Action::requeue(ctx.backoff(key, &USER_ERROR_REQUEUE)));
        }
    };

    if let Strategy::RollingSync(rolling) = &strategy
        && rolling.reverse_deletion
        && ctx.is_leader()
    {
        writer::ensure_resources_finalizer(&appset, &ctx).await?;
    }

    // A refresh request: every repository the generation reads is checked at once.
    let refresh = Request::of_appset(&appset);
    let generated = {
        let (appset, ctx) = (appset.clone(), ctx.clone());
        let refreshed = refresh.is_some();
        // A span does not follow work onto another thread by itself.
        let span = tracing::info_span!("generate", refreshed);
        tokio::task::spawn_blocking(move || {
            let _in_span = span.enter();
            if refreshed {
                ctx.generate_refreshed(&appset)
            } else {
                ctx.generate(&appset)
            }
        })
        .await
        .map_err(Error::GenerationTask)?
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());

    let mut generated: Generated = match generated {
        Ok(g) => g,
        Err(e) => {
            let message = e.to_string();
            tracing::warn!(appset = %key, error = %message, "generation failed; nothing is created, updated or deleted");
            let outcome = Outcome::GenerationFailed {
                reason: generation_reason(e.category()),
                message: &message,
            };
            let new_status = status::compute(appset.status.as_ref(), &outcome, &owned, &now);
            if ctx.is_leader() {
                writer::publish_status(&appset, new_status, &ctx).await?;
            }
            return Ok(Action::requeue(ctx.backoff(key, &USER_ERROR_REQUEUE)));
        }
    };

    let sync_policy = appset.spec.sync_policy.as_ref();
    let sync = match ctx.config.policy_override {
        Some(p) => Ok(p),
        None => ApplicationsSync::parse(sync_policy.and_then(|p| p.applications_sync.as_deref())),
    };
    let budget = annotations
        .get(DELETION_BUDGET_ANNOTATION)
        .map(|v| {
            DeletionBudget::parse(v)
                .map_err(|e| format!("annotation {DELETION_BUDGET_ANNOTATION}: {e}"))
        })
        .transpose();
    let ignored = IgnoredFields::compile(&appset.spec.ignore_application_differences);
    let (sync, budget, ignored) = match (sync, budget, ignored) {
        (Ok(s), Ok(b), Ok(i)) => (s, b.unwrap_or(ctx.config.budget), i),
        (Err(message), _, _) | (_, Err(message), _) | (_, _, Err(message)) => {
            let outcome = Outcome::GenerationFailed {
                reason: "InvalidSpec",
                message: &message,
            };
            let new_status = status::compute(appset.status.as_ref(), &outcome, &owned, &now);
            if ctx.is_leader() {
                writer::publish_status(&appset, new_status, &ctx).await?;
            }
            return Ok(Action::requeue(ctx.backoff(key, &USER_ERROR_REQUEUE)));
        }
    };
    let preserved = appset.spec.preserved_fields.clone().unwrap_or_default();
    let preserved_labels: BTreeSet<String> = preserved.labels.into_iter().collect();
    let preserved_annotations: BTreeSet<String> = preserved
        .annotations
        .into_iter()
        .chain(
            argosy_crds::consts::ALWAYS_PRESERVED_ANNOTATIONS
                .iter()
                .map(|s| (*s).to_owned()),
        )
        .collect();
    let policy = PlanPolicy {
        owner,
        sync,
        budget,
        deletions_approved: annotations
            .get(APPROVE_DELETIONS_ANNOTATION)
            .map(String::as_str)
            == Some("true"),
        preserved_labels: &preserved_labels,
        preserved_annotations: &preserved_annotations,
        ignored: &ignored,
    };
    let keep: BTreeSet<String> = generated.invalid_app_names.iter().cloned().collect();
    let mut desired: Vec<Application> = std::mem::take(&mut generated.applications)
        .into_iter()
        .map(|g| g.application)
        .collect();
    // A RollingSync starts every sync itself: generated Applications get automated sync
    // turned off, as in Argo CD (their prune setting goes into the rollout's syncs).
    let (prune, members) = match &strategy {
        Strategy::RollingSync(_) => (
            rolling_sync::disable_automated_sync(&mut desired),
            rolling_sync::Member::of(&desired),
        ),
        Strategy::AllAtOnce => Default::default(),
    };
    let the_plan =
        tracing::info_span!("plan").in_scope(|| plan::plan(desired, &keep, &live, &policy));

    if !ctx.is_leader() {
        // Followers keep their caches warm; the new leader reconciles everything.
        return Ok(Action::await_change());
    }
    let write_error = writer::execute(&appset, &the_plan, &live, &ctx)
        .instrument(tracing::info_span!("write"))
        .await;
    let validation_errors: Vec<String> = generated
        .validation_errors
        .iter()
        .map(|e| e.message.clone())
        .chain(
            the_plan
                .conflicts
                .iter()
                .map(|(n, o)| format!("Application {n} already exists and is owned by {o}")),
        )
        .collect();
    let write_error_text = write_error.as_ref().map(ToString::to_string);
    let outcome = Outcome::Planned {
        validation_errors: &validation_errors,
        write_error: write_error_text.as_deref(),
        held: &the_plan.held,
        held_limit: the_plan.held_limit,
    };
    let mut new_status = status::compute(appset.status.as_ref(), &outcome, &owned, &now);
    let mut requeue_rollout = None;
    match &strategy {
        Strategy::RollingSync(rolling) => {
            let spec_changed: BTreeSet<String> = the_plan
                .create
                .iter()
                .chain(&the_plan.update)
                .filter_map(|a| a.metadata.name.clone())
                .collect();
            let previous = appset.status.as_ref();
            let progress = rolling_sync::advance(&rolling_sync::Input {
                rolling,
                previous: previous.map_or(&[], |p| p.application_status.as_slice()),
                previous_rollout: previous.and_then(|p| p.rollout.as_ref()),
                owned: &owned,
                desired: &members,
                spec_changed: &spec_changed,
                prune: &prune,
                now: now.0,
            });
            let operations: Vec<_> = progress
                .syncs
                .iter()
                .chain(&progress.rollbacks)
                .cloned()
                .collect();
            // The operations go first: a status that says "synced" for a sync that was
            // never requested would never request it again.
            writer::start_operations(&appset, &operations, &ctx).await?;
            for event in &progress.events {
                ctx.metrics.rollout_event(&appset, event.reason);
            }
            status::with_rollout(&mut new_status, &progress, &now);
            writer::publish_status(&appset, new_status, &ctx).await?;
            writer::publish_rollout_events(&appset, &progress.events, &ctx).await;
            let happenings: Vec<_> = progress
                .events
                .iter()
                .map(|e| crate::notify::RolloutHappening {
                    warning: e.warning,
                    reason: e.reason,
                    message: &e.message,
                })
                .collect();
            ctx.notifier.rollout(
                &appset,
                &template_project(&appset),
                &owned,
                &progress.rollout,
                &progress.application_status,
                &happenings,
            );
            requeue_rollout = progress.requeue;
        }
        Strategy::AllAtOnce => {
            status::without_rollout(&mut new_status);
            writer::publish_status(&appset, new_status, &ctx).await?;
        }
    }
    if policy.deletions_approved && !the_plan.delete.is_empty() {
        writer::clear_approval(&appset, &ctx).await?;
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    // As Argo CD: the request is removed after a successful reconcile only.
    let changed_meanwhile = match &refresh {
        Some(request) => writer::remove_refresh_request(&appset, request, &ctx).await?,
        None => false,
    };
    ctx.reset_backoff(&key);
    tracing::info!(
        appset = %key,
        elapsed_ms = started.elapsed().as_millis() as u64,
        created = the_plan.create.len(),
        updated = the_plan.update.len(),
        deleted = the_plan.delete.len(),
        held = the_plan.held.len(),
        unchanged = the_plan.unchanged,
        "reconciled"
    );
    let requeue_after = match (generated.requeue_after, requeue_rollout) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(match requeue_after {
        _ if changed_meanwhile => Action::requeue(std::time::Duration::ZERO),
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// Argo CD's condition reasons for generation failures.
fn generation_reason(category: &str) -> &'static str {
    match category {
        "RenderError" => "RenderTemplateParamsError",
        _ => "ApplicationGenerationFromParamsError",
    }
}

/// Backoff for API errors: 5 s doubling to 5 minutes, per ApplicationSet.
pub fn error_policy(appset: Arc<ApplicationSet>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(appset = %ObjectRef::from_obj(appset.as_ref()), category = error.category(), %error, "reconcile failed");
    Action::requeue(ctx.backoff(
        ObjectRef::from_obj(appset.as_ref()),
        &[5, 10, 20, 40, 80, 160, 300],
    ))
}
