//! Notifications: on rollout transitions, sync failures and health turning Degraded, a
//! JSON payload POSTed to the webhooks the ApplicationSet's or the AppProject's
//! `argosy.io/notify-webhooks` annotation names.
//!
//! * [`config`] (pure): the annotation, the URL check, what logs may show of a URL.
//! * [`payload`] (pure): the JSON body, and which status changes of an Application are
//!   news (transitions, not states).
//! * [`send`]: the sender task (timeout, retries with backoff; one lane per webhook, so a
//!   receiver that hangs delays only its own notifications, which it gets in order).
//!
//! The controllers hold a [`Notifier`] and call it after they published the status or the
//! Events a notification repeats. It resolves the webhooks from the watch caches (no API
//! request), queues one delivery per webhook and returns at once: the queue is bounded
//! (`try_send`, drops counted in `argosy_queue_dropped_total{queue="notifications"}`), so
//! a reconcile never waits for a receiver. Rollouts are notified by the leader only
//! (followers never reach the call sites, and the notifier checks again; a delivery whose
//! replica lost the Lease meanwhile is dropped, not retried); an Application's notices by
//! the replica that wrote its status (with sharding, the one holding its cluster).
//!
//! Which webhooks: an Application's notifications go to its AppProject's and its owning
//! ApplicationSet's; a rollout's go to the ApplicationSet's and its project's (the
//! template's project, or, when that is templated, every project of its Applications).
//!
//! Argo CD's notifications controller is configured differently
//! (`notifications.argoproj.io/subscribe.<trigger>.<service>` annotations naming triggers,
//! templates and services of the `argocd-notifications-cm` ConfigMap, with `expr`
//! conditions and Go templates): reading a subset would send other payloads than the
//! same configuration sends in Argo CD, so Argosy keeps its own annotation and does not
//! read those.

pub mod config;
pub mod payload;
pub mod send;

use std::collections::BTreeSet;
use std::sync::Arc;

use argosy_crds::applicationset::{ApplicationSetApplicationStatus, RolloutState};
use argosy_crds::{Application, ApplicationSet};
use argosy_generators::source::ProjectSource as _;
use argosy_sync_engine::status::Report;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::Value;

use crate::metrics::Metrics;
use crate::queue::{TriggerSender, trigger_queue};
use crate::registry::ProjectRegistry;
pub use config::WEBHOOKS_ANNOTATION;
pub use payload::{Payload, RolloutHappening};
pub use send::{Delivery, NotifySettings};

/// The controllers' handle: cheap to clone; [`Notifier::disabled`] sends nothing.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    queue: TriggerSender<Delivery>,
    projects: ProjectRegistry,
    appsets: Store<ApplicationSet>,
    leader: Option<tokio::sync::watch::Receiver<bool>>,
    settings: NotifySettings,
    metrics: Metrics,
}

/// What the notifier reads webhooks from and reports to.
pub struct NotifierParts {
    pub projects: ProjectRegistry,
    pub appsets: Store<ApplicationSet>,
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    pub settings: NotifySettings,
    pub metrics: Metrics,
}

impl Notifier {
    /// A notifier that sends nothing (tests, the CLI).
    pub fn disabled() -> Notifier {
        Notifier::default()
    }

    /// The notifier and its sender task (to be spawned; it ends when every clone of the
    /// notifier is dropped).
    pub fn start(
        parts: NotifierParts,
    ) -> (
        Notifier,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let NotifierParts {
            projects,
            appsets,
            leader,
            settings,
            metrics,
        } = parts;
        let dropped = metrics.queue_dropped("notifications");
        let (queue, deliveries) = trigger_queue(settings.queue, dropped.clone());
        let task = send::run(
            deliveries,
            settings,
            leader.clone(),
            metrics.clone(),
            dropped,
        );
        let inner = Inner {
            queue,
            projects,
            appsets,
            leader,
            settings,
            metrics,
        };
        (
            Notifier {
                inner: Some(Arc::new(inner)),
            },
            task,
        )
    }

    /// After a status write of `app` from `previous` to `report`: notifies a sync attempt
    /// that ended Failed or Error and health turning Degraded.
    pub fn app_status_written(&self, app: &Application, previous: &Value, report: &Report) {
        // Not `leading()`: the status write passed the gate of the app's cluster, so this
        // replica syncs the app (with sharding, that is often not the leader).
        let Some(inner) = self.inner.as_deref() else {
            return;
        };
        let notices = payload::app_notices(app, previous, report, &now());
        if notices.is_empty() {
            return;
        }
        let namespace = app.metadata.namespace.as_deref().unwrap_or_default();
        let project = project_of(app);
        let appset =
            crate::fleet::owning_appset(app).and_then(|name| inner.appset(namespace, name));
        let urls = inner.webhooks(appset.as_deref(), [project]);
        for notice in &notices {
            inner.enqueue(&urls, notice);
        }
    }

    /// After the rollout of `appset` published `events`. `template_project` is the project
    /// its template names (maybe templated).
    pub fn rollout(
        &self,
        appset: &ApplicationSet,
        template_project: &str,
        owned: &[&Application],
        state: &RolloutState,
        statuses: &[ApplicationSetApplicationStatus],
        events: &[RolloutHappening<'_>],
    ) {
        let Some(inner) = self.leading() else {
            return;
        };
        if events.is_empty() {
            return;
        }
        let projects: BTreeSet<&str> = if template_project.contains("{{") {
            owned.iter().map(|a| project_of(a)).collect()
        } else if template_project.is_empty() {
            BTreeSet::from(["default"])
        } else {
            BTreeSet::from([template_project])
        };
        let urls = inner.webhooks(Some(appset), projects.iter().copied());
        let single_project = (projects.len() == 1)
            .then(|| projects.first().copied())
            .flatten();
        let time = now();
        for event in events {
            let body = payload::rollout(appset, single_project, state, statuses, *event, &time);
            inner.enqueue(&urls, &body);
        }
    }

    fn leading(&self) -> Option<&Inner> {
        self.inner
            .as_deref()
            .filter(|inner| inner.leader.as_ref().is_none_or(|rx| *rx.borrow()))
    }
}

impl Inner {
    fn appset(&self, namespace: &str, name: &str) -> Option<Arc<ApplicationSet>> {
        self.appsets.get(&ObjectRef::new(name).within(namespace))
    }

    /// The webhooks of `appset` and `projects`, refused ones logged (redacted) and counted.
    fn webhooks<'a>(
        &self,
        appset: Option<&ApplicationSet>,
        projects: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let projects: Vec<_> = projects
            .into_iter()
            .filter_map(|name| self.projects.project(name))
            .collect();
        let values = appset
            .map(|a| &a.metadata)
            .into_iter()
            .chain(projects.iter().map(|p| &p.metadata))
            .filter_map(|meta| meta.annotations.as_ref()?.get(WEBHOOKS_ANNOTATION))
            .map(String::as_str);
        let (urls, refused) = config::webhooks(values, self.settings.allow_internal_hosts);
        for error in refused {
            self.metrics.notification("any", "refused");
            tracing::warn!(%error, "webhook refused");
        }
        urls
    }

    fn enqueue(&self, urls: &[String], notice: &Payload) {
        if urls.is_empty() {
            return;
        }
        let kind = match notice.kind {
            payload::Kind::Rollout => "rollout",
            payload::Kind::SyncFailed => "syncFailed",
            payload::Kind::HealthDegraded => "healthDegraded",
        };
        let body: Arc<[u8]> = match serde_json::to_vec(notice) {
            Ok(bytes) => bytes.into(),
            Err(e) => {
                tracing::warn!(error = %e, "notification not serialized");
                return;
            }
        };
        for url in urls {
            self.queue.send(Delivery {
                url: url.clone(),
                body: body.clone(),
                kind,
            });
        }
    }
}

fn project_of(app: &Application) -> &str {
    if app.spec.project.is_empty() {
        "default"
    } else {
        &app.spec.project
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map_or_else(
            |_| k8s_openapi::jiff::Timestamp::now().to_string(),
            |t| t.to_string(),
        )
}
