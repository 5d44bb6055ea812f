//! What a notification says: the JSON body POSTed to every webhook, and which status
//! changes of an Application deserve one. Pure.
//!
//! The body carries a Slack-compatible `text` (Slack's and Mattermost's incoming webhooks
//! show it as is; `&`, `<` and `>` escaped as Slack asks, so a message cannot ping
//! `<!channel>` or forge a link) and the same facts as fields for programs: `kind`,
//! `reason`, `severity`, `namespace`, `applicationSet`/`application`, `project`,
//! `revision`, `phase`, `step`/`steps`, `message`, `time`.
//!
//! Every field comes from what the controllers already publish as Events and status (names,
//! reasons, messages, commit SHAs); no spec, annotation, URL or credential is read into it.

use argosy_crds::applicationset::{ApplicationSetApplicationStatus, RolloutState};
use argosy_crds::{Application, ApplicationSet};
use argosy_sync_engine::health::HealthCode;
use argosy_sync_engine::status::Report;
use argosy_sync_engine::target::short_commit;
use serde::Serialize;
use serde_json::Value;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// A RollingSync transition (started, step started, baking, paused, halted, rolled
    /// back, aborted, completed, ...).
    Rollout,
    /// A sync operation ended `Failed` or `Error`.
    SyncFailed,
    /// An Application's health turned `Degraded`.
    HealthDegraded,
}

/// How loud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    Info,
    Warning,
}

/// The JSON body of one notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// One line for chat (Slack's `text`).
    pub text: String,
    pub kind: Kind,
    /// The Event reason (`RolloutHalted`, `SyncFailed`, `HealthDegraded`, ...).
    pub reason: String,
    pub severity: Severity,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_set: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The commit (or chart version) concerned: the rollout's target, the failed sync's,
    /// the Degraded app's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The rollout's phase, or the failed operation's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The rollout's 1-based step (0: none under way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// The rollout's number of steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    pub message: String,
    /// When the controller saw it (RFC 3339).
    pub time: String,
}

/// One rollout Event, as the ApplicationSet controller publishes it.
#[derive(Debug, Clone, Copy)]
pub struct RolloutHappening<'a> {
    pub warning: bool,
    pub reason: &'a str,
    pub message: &'a str,
}

/// What the rollout of `appset` notifies for `event`.
pub fn rollout(
    appset: &ApplicationSet,
    project: Option<&str>,
    state: &RolloutState,
    statuses: &[ApplicationSetApplicationStatus],
    event: RolloutHappening<'_>,
    time: &str,
) -> Payload {
    let namespace = appset.metadata.namespace.clone().unwrap_or_default();
    let name = appset.metadata.name.clone().unwrap_or_default();
    let steps = crate::rollout_view::step_count(appset);
    let step = state.step.to_string();
    // The step's target, else any: every Application of one rollout goes to one commit
    // per source, so the first one found is the rollout's.
    let revision = statuses
        .iter()
        .filter(|s| s.step == step)
        .chain(statuses)
        .flat_map(|s| &s.target_revisions)
        .find(|r| !r.is_empty())
        .cloned();
    let progress = match (state.step, state.phase.as_str()) {
        (0, "") => String::new(),
        (0, phase) => format!(" ({phase})"),
        (n, phase) => format!(" (step {n} of {steps}, {phase})"),
    };
    let text = format!(
        "{} ApplicationSet {}/{}: {}{progress}: {}{}",
        icon(event.warning),
        escape(&namespace),
        escape(&name),
        escape(event.reason),
        escape(event.message),
        revision
            .as_deref()
            .map(|r| format!(" (target {})", short_commit(r)))
            .unwrap_or_default(),
    );
    Payload {
        text,
        kind: Kind::Rollout,
        reason: event.reason.to_owned(),
        severity: severity(event.warning),
        namespace,
        application_set: Some(name),
        application: None,
        project: project.map(str::to_owned),
        revision,
        phase: (!state.phase.is_empty()).then(|| state.phase.clone()),
        step: Some(state.step),
        steps: Some(steps),
        message: event.message.to_owned(),
        time: time.to_owned(),
    }
}

/// The notifications of a status write of `app`: from its `previous` status (as JSON) to
/// `report`. Transitions only: health turning `Degraded` (not staying so), an operation
/// attempt ending `Failed` or `Error` (each attempt once: a retry is a new attempt, with
/// its own `startedAt`/`finishedAt`).
pub fn app_notices(
    app: &Application,
    previous: &Value,
    report: &Report,
    time: &str,
) -> Vec<Payload> {
    let mut out = Vec::new();
    let was_degraded =
        previous.pointer("/health/status").and_then(Value::as_str) == Some("Degraded");
    if report.health == HealthCode::Degraded && !was_degraded {
        let revision = report.revision.as_ref().and_then(|(_, v)| first_string(v));
        out.push(app_payload(
            app,
            Kind::HealthDegraded,
            "HealthDegraded",
            "health turned Degraded",
            &report.health_message,
            revision,
            None,
            time,
        ));
    }
    if let Some(state) = &report.operation_state
        && let Some(phase) = failed_phase(state)
        && !same_attempt(previous.get("operationState"), state)
    {
        let text = |key: &str| state.get(key).and_then(Value::as_str).unwrap_or_default();
        let revision = state
            .pointer("/syncResult/revision")
            .or_else(|| state.pointer("/syncResult/revisions"))
            .and_then(first_string);
        out.push(app_payload(
            app,
            Kind::SyncFailed,
            "SyncFailed",
            if phase == "Error" {
                "sync errored"
            } else {
                "sync failed"
            },
            text("message"),
            revision,
            Some(phase),
            time,
        ));
    }
    out
}

/// `Failed` or `Error`, if that is how the operation ended.
fn failed_phase(state: &Value) -> Option<&'static str> {
    match state.get("phase").and_then(Value::as_str) {
        Some("Failed") => Some("Failed"),
        Some("Error") => Some("Error"),
        _ => None,
    }
}

/// Whether `previous` is already this failed attempt (a status write for another reason).
fn same_attempt(previous: Option<&Value>, state: &Value) -> bool {
    previous.is_some_and(|p| {
        failed_phase(p).is_some()
            && ["startedAt", "finishedAt", "retryCount"]
                .iter()
                .all(|key| p.get(key) == state.get(key))
    })
}

#[allow(clippy::too_many_arguments)]
fn app_payload(
    app: &Application,
    kind: Kind,
    reason: &str,
    what: &str,
    message: &str,
    revision: Option<String>,
    phase: Option<&str>,
    time: &str,
) -> Payload {
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    let name = app.metadata.name.clone().unwrap_or_default();
    let project = if app.spec.project.is_empty() {
        "default".to_owned()
    } else {
        app.spec.project.clone()
    };
    let application_set = crate::fleet::owning_appset(app).map(str::to_owned);
    let text = format!(
        "{} Application {}/{} (project {}): {what}{}{}",
        icon(true),
        escape(&namespace),
        escape(&name),
        escape(&project),
        revision
            .as_deref()
            .map(|r| format!(" at {}", short_commit(r)))
            .unwrap_or_default(),
        if message.is_empty() {
            String::new()
        } else {
            format!(": {}", escape(message))
        },
    );
    Payload {
        text,
        kind,
        reason: reason.to_owned(),
        severity: Severity::Warning,
        namespace,
        application_set,
        application: Some(name),
        project: Some(project),
        revision,
        phase: phase.map(str::to_owned),
        step: None,
        steps: None,
        message: message.to_owned(),
        time: time.to_owned(),
    }
}

fn first_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Array(items) => items.iter().find_map(first_string),
        _ => None,
    }
}

fn icon(warning: bool) -> &'static str {
    if warning {
        ":warning:"
    } else {
        ":information_source:"
    }
}

fn severity(warning: bool) -> Severity {
    if warning {
        Severity::Warning
    } else {
        Severity::Info
    }
}

/// Slack's escaping of the three characters its markup gives meaning to.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use argosy_sync_engine::status::AppSync;
    use serde_json::json;

    const NOW: &str = "2026-12-07T10:00:00Z";

    fn app() -> Application {
        serde_json::from_value(json!({
            "metadata": {"name": "web-acme", "namespace": "argocd", "ownerReferences": [
                {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "name": "web",
                 "uid": "u", "controller": true}]},
            "spec": {"project": "", "destination": {"name": "acme", "namespace": "web"}},
        }))
        .unwrap()
    }

    fn report(health: HealthCode, operation_state: Option<Value>) -> Report {
        Report {
            sync: AppSync::Synced,
            revision: Some(("revision", json!("aaaaaaaaaaaa"))),
            compared_to: Value::Null,
            health,
            health_message: "Deployment web: <!channel> exceeded its progress deadline".to_owned(),
            resources: Vec::new(),
            conditions: Vec::new(),
            source_type: None,
            operation_state,
            history_entry: None,
        }
    }

    fn failed(started: &str, finished: &str, retries: u32) -> Value {
        json!({"phase": "Failed", "message": "one or more objects failed to apply",
               "startedAt": started, "finishedAt": finished, "retryCount": retries,
               "syncResult": {"revision": "bbbbbbbbbbbb"}})
    }

    #[test]
    fn health_turning_degraded_notifies_once() {
        let healthy = json!({"health": {"status": "Healthy"}});
        let notices = app_notices(&app(), &healthy, &report(HealthCode::Degraded, None), NOW);
        assert_eq!(notices.len(), 1);
        let n = &notices[0];
        assert_eq!(
            (n.kind, n.reason.as_str()),
            (Kind::HealthDegraded, "HealthDegraded")
        );
        assert_eq!(n.application.as_deref(), Some("web-acme"));
        assert_eq!(n.application_set.as_deref(), Some("web"));
        assert_eq!(n.project.as_deref(), Some("default"));
        assert_eq!(n.revision.as_deref(), Some("aaaaaaaaaaaa"));
        assert_eq!(
            n.text,
            ":warning: Application argocd/web-acme (project default): health turned Degraded at aaaaaaa: \
             Deployment web: &lt;!channel&gt; exceeded its progress deadline"
        );
        let degraded = json!({"health": {"status": "Degraded"}});
        assert!(
            app_notices(&app(), &degraded, &report(HealthCode::Degraded, None), NOW).is_empty(),
            "staying Degraded is no news"
        );
        assert!(
            app_notices(
                &app(),
                &healthy,
                &report(HealthCode::Progressing, None),
                NOW
            )
            .is_empty()
        );
        assert_eq!(
            app_notices(
                &app(),
                &Value::Null,
                &report(HealthCode::Degraded, None),
                NOW
            )
            .len(),
            1,
            "a first status that is Degraded"
        );
    }

    #[test]
    fn each_failed_attempt_notifies_once() {
        let first = failed("T1", "T2", 1);
        let notices = app_notices(
            &app(),
            &json!({}),
            &report(HealthCode::Healthy, Some(first.clone())),
            NOW,
        );
        assert_eq!(notices.len(), 1);
        let n = &notices[0];
        assert_eq!(
            (n.kind, n.phase.as_deref()),
            (Kind::SyncFailed, Some("Failed"))
        );
        assert_eq!(n.revision.as_deref(), Some("bbbbbbbbbbbb"));
        assert_eq!(n.message, "one or more objects failed to apply");
        assert!(
            n.text.contains("sync failed at bbbbbbb: one or more"),
            "{}",
            n.text
        );

        let previous = json!({"operationState": first});
        assert!(
            app_notices(
                &app(),
                &previous,
                &report(HealthCode::Healthy, Some(first.clone())),
                NOW
            )
            .is_empty(),
            "the same attempt written again"
        );
        let retry = failed("T3", "T4", 2);
        assert_eq!(
            app_notices(
                &app(),
                &previous,
                &report(HealthCode::Healthy, Some(retry)),
                NOW
            )
            .len(),
            1
        );
        let running = json!({"phase": "Running", "startedAt": "T5"});
        assert!(
            app_notices(
                &app(),
                &previous,
                &report(HealthCode::Healthy, Some(running)),
                NOW
            )
            .is_empty()
        );
        let errored = json!({"phase": "Error", "message": "no cluster", "startedAt": "T6", "finishedAt": "T6"});
        let n = app_notices(
            &app(),
            &previous,
            &report(HealthCode::Healthy, Some(errored)),
            NOW,
        );
        assert_eq!(n[0].phase.as_deref(), Some("Error"));
        assert!(
            n[0].text.contains("sync errored: no cluster"),
            "{}",
            n[0].text
        );
    }

    #[test]
    fn a_rollout_event_names_its_step_and_target() {
        let appset: ApplicationSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "argocd"},
            "spec": {"generators": [], "template": {},
                     "strategy": {"type": "RollingSync", "rollingSync": {"steps": [{}, {}, {}]}}},
        }))
        .unwrap();
        let state = RolloutState {
            phase: "Halted".to_owned(),
            step: 1,
            message: "m".to_owned(),
            ..RolloutState::default()
        };
        let statuses: Vec<ApplicationSetApplicationStatus> = serde_json::from_value(json!([
            {"application": "web-globex", "status": "Waiting", "step": "2", "targetRevisions": ["ccccccc1"]},
            {"application": "web-acme", "status": "Progressing", "step": "1", "targetRevisions": ["bbbbbbb1"]},
        ]))
        .unwrap();
        let event = RolloutHappening {
            warning: true,
            reason: "RolloutHalted",
            message: "1 of 1 Application(s) failed",
        };
        let p = rollout(&appset, Some("default"), &state, &statuses, event, NOW);
        assert_eq!(p.revision.as_deref(), Some("bbbbbbb1"), "the step's target");
        assert_eq!((p.step, p.steps), (Some(1), Some(3)));
        assert_eq!(
            p.text,
            ":warning: ApplicationSet argocd/web: RolloutHalted (step 1 of 3, Halted): 1 of 1 Application(s) failed (target bbbbbbb)"
        );
        let body = serde_json::to_value(&p).unwrap();
        assert_eq!(body["kind"], "rollout");
        assert_eq!(body["severity"], "warning");
        assert_eq!(body["applicationSet"], "web");
        assert_eq!(body["time"], NOW);
        assert!(body.get("application").is_none());
    }
}
