//! Kubernetes Events (`events.k8s.io/v1`), written directly.
//!
//! kube-runtime's `Recorder` folds events with the same reason and action into one
//! series whose note stays the first one's, so "updated 2 Applications" after "created 6"
//! showed as `created 6 ... (x2)`, and a second, different error as the first one's text.
//! Argosy only emits Events on transitions and as one summary per changing reconcile, so
//! each Event is created as it is, with its own note.

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};

/// `<object>.<hex>`, as client-go names Events: unique per process by time and a
/// counter. (`generateName` cannot be used: its prefix `<object>.` must itself be a valid
/// name, and a name cannot end with a dot.)
fn event_name(object: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let object: String = object.chars().take(200).collect();
    format!("{object}.{nanos:x}{n:x}")
}

/// Event type: `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Creates Events on behalf of one controller instance.
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    controller: String,
    instance: String,
}

impl EventPublisher {
    pub fn new(client: Client, controller: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            client,
            controller: controller.into(),
            instance: instance.into(),
        }
    }

    /// Publishes one Event about `regarding`; failures are logged, never fatal.
    pub async fn publish(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        self.publish_through(&self.client, regarding, type_, reason, action, note)
            .await;
    }

    /// [`Self::publish`] through `client` (an Application's writes go through the gate of
    /// its cluster's shard).
    pub async fn publish_through(
        &self,
        client: &Client,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(event_name(regarding.name.as_deref().unwrap_or("argosy"))),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            reason: Some(reason.chars().take(128).collect()),
            action: Some(action.chars().take(128).collect()),
            note: Some(note.chars().take(1000).collect()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.chars().take(128).collect()),
            regarding: Some(regarding),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(error = %e, reason, "publishing event failed");
        }
    }
}
