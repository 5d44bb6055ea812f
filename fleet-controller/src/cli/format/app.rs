//! Text views of Applications for `argosy app list` and `argosy app get`, read from the
//! Application JSON as Argo CD (and Argosy's sync engine) write it. Pure: no cluster.

use argosy_crds::sync_window::MatchedWindows;
use argosy_sync_engine::target::short_commit;
use k8s_openapi::jiff;
use serde_json::Value;

/// The string at `pointer`, or "".
pub fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The short commit(s) recorded at `object`: its `revision`, or for a multi-source app
/// its `revisions`, comma-separated; "" when neither is there.
pub fn short_revisions(object: &Value) -> String {
    match object.get("revision").and_then(Value::as_str) {
        Some(revision) if !revision.is_empty() => short_commit(revision).to_owned(),
        _ => object
            .get("revisions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(short_commit)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

/// Left-aligned columns, two spaces apart, like `kubectl get` and `argocd app list`.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let width = widths.get(i).copied().unwrap_or(0);
            line.extend(std::iter::repeat_n(
                ' ',
                width.saturating_sub(cell.chars().count()),
            ));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `destination.server`, or `destination.name` when the app names its cluster.
fn cluster(app: &Value) -> &str {
    match text(app, "/spec/destination/server") {
        "" => text(app, "/spec/destination/name"),
        server => server,
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "Unknown" } else { s }
}

/// `argosy app list`: NAME, PROJECT, CLUSTER, NAMESPACE, SYNC, HEALTH, REVISION.
pub fn list_table(apps: &[Value]) -> String {
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|app| {
            vec![
                text(app, "/metadata/name").to_owned(),
                match text(app, "/spec/project") {
                    "" => "default".to_owned(),
                    p => p.to_owned(),
                },
                cluster(app).to_owned(),
                text(app, "/spec/destination/namespace").to_owned(),
                or_unknown(text(app, "/status/sync/status")).to_owned(),
                or_unknown(text(app, "/status/health/status")).to_owned(),
                short_revisions(at(app, "/status/sync")),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "PROJECT",
            "CLUSTER",
            "NAMESPACE",
            "SYNC",
            "HEALTH",
            "REVISION",
        ],
        &rows,
    )
}

/// True when the app syncs itself (`syncPolicy.automated` present and not disabled), as
/// the sync engine decides it.
pub fn is_automated(app: &Value) -> bool {
    app.pointer("/spec/syncPolicy/automated")
        .is_some_and(|a| a.is_object() && a.get("enabled").and_then(Value::as_bool) != Some(false))
}

fn sync_policy(app: &Value) -> String {
    if !is_automated(app) {
        return "Manual".to_owned();
    }
    let flags: Vec<&str> = [("prune", "Prune"), ("selfHeal", "SelfHeal")]
        .into_iter()
        .filter(|(key, _)| {
            app.pointer(&format!("/spec/syncPolicy/automated/{key}"))
                .and_then(Value::as_bool)
                == Some(true)
        })
        .map(|(_, label)| label)
        .collect();
    if flags.is_empty() {
        "Automated".to_owned()
    } else {
        format!("Automated ({})", flags.join(", "))
    }
}

/// The app's sources: `spec.source` and then `spec.sources`.
fn sources(app: &Value) -> Vec<&Value> {
    let spec = app.get("spec");
    spec.and_then(|s| s.get("source"))
        .filter(|s| s.is_object())
        .into_iter()
        .chain(
            spec.and_then(|s| s.get("sources"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .collect()
}

/// `argosy app get`: summary (with `window` lines, [`sync_window_fields`]), conditions,
/// last operation, resources and history.
pub fn app_summary(app: &Value, window: &[(&str, String)]) -> String {
    let mut fields: Vec<(&str, String)> = vec![
        (
            "Name",
            format!(
                "{}/{}",
                text(app, "/metadata/namespace"),
                text(app, "/metadata/name")
            ),
        ),
        (
            "Project",
            match text(app, "/spec/project") {
                "" => "default".to_owned(),
                p => p.to_owned(),
            },
        ),
        ("Cluster", cluster(app).to_owned()),
        (
            "Namespace",
            text(app, "/spec/destination/namespace").to_owned(),
        ),
    ];
    for source in sources(app) {
        fields.push(("Repo", text(source, "/repoURL").to_owned()));
        fields.push(("Target", text(source, "/targetRevision").to_owned()));
        let path = match text(source, "/chart") {
            "" => text(source, "/path"),
            chart => chart,
        };
        fields.push(("Path", path.to_owned()));
    }
    fields.push(("Sync Policy", sync_policy(app)));
    fields.extend(window.iter().cloned());
    let status = or_unknown(text(app, "/status/sync/status"));
    let revision = short_revisions(at(app, "/status/sync"));
    let target = sources(app)
        .first()
        .map(|s| text(s, "/targetRevision"))
        .filter(|t| !t.is_empty())
        .unwrap_or("HEAD");
    fields.push((
        "Sync Status",
        if revision.is_empty() {
            status.to_owned()
        } else {
            format!("{status} to {target} ({revision})")
        },
    ));
    let health = or_unknown(text(app, "/status/health/status"));
    fields.push((
        "Health Status",
        match text(app, "/status/health/message") {
            "" => health.to_owned(),
            message => format!("{health} ({message})"),
        },
    ));
    let mut out = key_values(&fields);

    let conditions = rows_of(app, "/status/conditions", |c| {
        vec![
            text(c, "/type").to_owned(),
            text(c, "/message").to_owned(),
            text(c, "/lastTransitionTime").to_owned(),
        ]
    });
    if !conditions.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &["CONDITION", "MESSAGE", "LAST TRANSITION"],
            &conditions,
        ));
    }

    if let Some(op) = app
        .pointer("/status/operationState")
        .filter(|o| o.is_object())
    {
        out.push('\n');
        out.push_str(&key_values(&[
            ("Operation", "Sync".to_owned()),
            ("Sync Revision", short_revisions(at(op, "/syncResult"))),
            ("Phase", text(op, "/phase").to_owned()),
            ("Start", text(op, "/startedAt").to_owned()),
            ("Finished", text(op, "/finishedAt").to_owned()),
            ("Message", text(op, "/message").to_owned()),
        ]));
    }

    let resources = rows_of(app, "/status/resources", |r| {
        vec![
            text(r, "/kind").to_owned(),
            text(r, "/namespace").to_owned(),
            text(r, "/name").to_owned(),
            text(r, "/status").to_owned(),
            text(r, "/health/status").to_owned(),
        ]
    });
    out.push('\n');
    out.push_str(&table(
        &["KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH"],
        &resources,
    ));

    let history = history_rows(app);
    if !history.is_empty() {
        out.push('\n');
        out.push_str(&table(&["ID", "DATE", "REVISION"], &history));
    }
    out
}

/// The sync window lines of `argosy app get` (Argo CD's `SyncWindow:` status and
/// `Assigned Windows:`), plus which window blocks and when it opens: `Sync Allowed`,
/// `Manual Allowed` (automated syncs blocked, manual ones not) or `Sync Denied`.
pub fn sync_window_fields(
    windows: &MatchedWindows,
    now: jiff::Timestamp,
) -> Vec<(&'static str, String)> {
    if windows.is_empty() {
        return vec![("Sync Window", "Sync Allowed".to_owned())];
    }
    let automated = windows.blocked(false, None, now);
    let manual = windows.blocked(true, None, now);
    let status = match (&automated, &manual) {
        (None, _) => "Sync Allowed",
        (Some(_), None) => "Manual Allowed",
        (Some(_), Some(_)) => "Sync Denied",
    };
    let mut fields = vec![("Sync Window", status.to_owned())];
    if let Some(blocked) = manual.as_ref().or(automated.as_ref()) {
        fields.push(("Blocked", blocked.to_string()));
    }
    fields.push(("Assigned Windows", windows.describe().join(", ")));
    fields
}

/// `status.history` as ID, DATE, REVISION rows (`argocd app history`).
fn history_rows(app: &Value) -> Vec<Vec<String>> {
    rows_of(app, "/status/history", |h| {
        let revision = short_revisions(h);
        let target = text(h, "/source/targetRevision");
        vec![
            h.get("id").map(Value::to_string).unwrap_or_default(),
            text(h, "/deployedAt").to_owned(),
            if target.is_empty() {
                revision
            } else {
                format!("{target} ({revision})")
            },
        ]
    })
}

fn rows_of(app: &Value, pointer: &str, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    app.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(row)
        .collect()
}

/// `Key:   value` lines with the values aligned.
pub fn key_values(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| {
            let line = format!("{:<width$}  {v}", format!("{k}:"));
            format!("{}\n", line.trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app() -> Value {
        json!({
            "metadata": {"name": "shop", "namespace": "argocd"},
            "spec": {
                "project": "retail",
                "source": {"repoURL": "https://git.example/shop.git", "path": "deploy",
                           "targetRevision": "main"},
                "destination": {"name": "eu-1", "namespace": "shop"},
                "syncPolicy": {"automated": {"prune": true}},
            },
            "status": {
                "sync": {"status": "OutOfSync", "revision": "0123456789abcdef"},
                "health": {"status": "Degraded", "message": "apps/Deployment shop/web: 0/2 ready"},
                "conditions": [{"type": "SyncError", "message": "boom",
                                "lastTransitionTime": "2025-01-01T00:00:00Z"}],
                "operationState": {"phase": "Failed", "message": "1 resource(s) failed to sync",
                                   "startedAt": "2025-01-01T00:00:00Z",
                                   "syncResult": {"revision": "0123456789abcdef"}},
                "resources": [
                    {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop",
                     "name": "web", "status": "OutOfSync", "health": {"status": "Degraded"}},
                    {"version": "v1", "kind": "Namespace", "name": "shop", "status": "Synced"},
                ],
                "history": [{"id": 0, "revision": "fedcba9876543210",
                             "deployedAt": "2024-12-31T00:00:00Z",
                             "source": {"targetRevision": "main"}}],
            },
        })
    }

    #[test]
    fn table_aligns_columns_and_trims_line_ends() {
        let t = table(
            &["A", "LONG HEADER", "C"],
            &[vec!["wide-cell".into(), "x".into(), String::new()]],
        );
        assert_eq!(t, "A          LONG HEADER  C\nwide-cell  x\n");
    }

    #[test]
    fn multi_source_apps_show_every_revision() {
        let app = json!({"metadata": {"name": "multi"}, "spec": {}, "status": {
            "sync": {"status": "Synced", "revisions": ["0123456789", "abcdef0123"]}}});
        assert!(list_table(&[app]).contains("0123456, abcdef0"));
        assert_eq!(
            short_revisions(&json!({"revision": "fedcba9876"})),
            "fedcba9"
        );
        assert_eq!(short_revisions(&json!({})), "");
    }

    #[test]
    fn list_shows_cluster_name_when_no_server_and_short_revision() {
        let mut bare = json!({"metadata": {"name": "new"},
                              "spec": {"destination": {"server": "https://k8s:6443", "name": "x"}}});
        let t = list_table(&[app(), bare.take()]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "NAME",
                "PROJECT",
                "CLUSTER",
                "NAMESPACE",
                "SYNC",
                "HEALTH",
                "REVISION"
            ]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "shop",
                "retail",
                "eu-1",
                "shop",
                "OutOfSync",
                "Degraded",
                "0123456"
            ]
        );
        // Server wins over name; no status yet reads Unknown; project defaults.
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["new", "default", "https://k8s:6443", "Unknown", "Unknown"]
        );
    }

    #[test]
    fn automated_unless_disabled() {
        assert!(is_automated(&app()));
        assert!(!is_automated(&json!({"spec": {"syncPolicy": {}}})));
        assert!(!is_automated(
            &json!({"spec": {"syncPolicy": {"automated": {"enabled": false}}}})
        ));
        assert!(is_automated(
            &json!({"spec": {"syncPolicy": {"automated": {}}}})
        ));
    }

    #[test]
    fn summary_has_source_status_operation_resources_and_history() {
        let s = app_summary(&app(), &[]);
        for expected in [
            "Name:           argocd/shop\n",
            "Repo:           https://git.example/shop.git\n",
            "Path:           deploy\n",
            "Sync Policy:    Automated (Prune)\n",
            "Sync Status:    OutOfSync to main (0123456)\n",
            "Health Status:  Degraded (apps/Deployment shop/web: 0/2 ready)\n",
            "Phase:          Failed\n",
            "Message:        1 resource(s) failed to sync\n",
        ] {
            assert!(s.contains(expected), "{expected:?} missing in\n{s}");
        }
        let rows: Vec<Vec<&str>> = s.lines().map(|l| l.split_whitespace().collect()).collect();
        assert!(rows.contains(&vec!["SyncError", "boom", "2025-01-01T00:00:00Z"]));
        assert!(rows.contains(&vec!["Deployment", "shop", "web", "OutOfSync", "Degraded"]));
        // A cluster-scoped resource without health keeps its columns (blank namespace).
        assert!(s.contains("Namespace              shop  Synced"), "{s}");
        assert!(rows.contains(&vec!["0", "2024-12-31T00:00:00Z", "main", "(fedcba9)"]));
    }

    #[test]
    fn summary_of_a_new_app_has_no_operation_or_history() {
        let s = app_summary(
            &json!({"metadata": {"name": "a", "namespace": "argocd"},
                                    "spec": {"source": {"repoURL": "r", "path": "p"}}}),
            &[],
        );
        assert!(s.contains("Sync Status:    Unknown\n"), "{s}");
        assert!(!s.contains("Phase:"));
        assert!(!s.contains("ID  DATE"));
        assert!(s.contains("KIND  NAMESPACE  NAME  STATUS  HEALTH\n"));
    }

    #[test]
    fn sync_window_lines_say_which_window_blocks_and_when_it_opens() {
        let windows = |manual: bool| {
            let w: argosy_crds::appproject::SyncWindow = serde_json::from_value(json!({
                "kind": "deny", "schedule": "0 22 * * *", "duration": "1h",
                "clusters": ["gold"], "manualSync": manual, "description": "freeze"}))
            .unwrap();
            let dest =
                serde_json::from_value(json!({"name": "gold", "namespace": "shop"})).unwrap();
            MatchedWindows::of(&[w], "web", &dest)
        };
        let during: jiff::Timestamp = "2026-12-07T22:30:00Z".parse().unwrap();
        let s = app_summary(&app(), &sync_window_fields(&windows(false), during));
        assert!(s.contains("Sync Window:       Sync Denied\n"), "{s}");
        assert!(
            s.contains("Blocked:           blocked by deny sync window deny:0 22 * * *:1h \"freeze\"; opens at 2026-12-07T23:00:00Z\n"),
            "{s}"
        );
        assert!(
            s.contains("Assigned Windows:  deny:0 22 * * *:1h \"freeze\"\n"),
            "{s}"
        );
        let manual = sync_window_fields(&windows(true), during);
        assert_eq!(manual[0].1, "Manual Allowed");
        let after: jiff::Timestamp = "2026-12-07T23:00:00Z".parse().unwrap();
        let open = sync_window_fields(&windows(false), after);
        assert_eq!(open[0].1, "Sync Allowed");
        assert!(!open.iter().any(|(k, _)| *k == "Blocked"));
        assert_eq!(
            sync_window_fields(&MatchedWindows::default(), after),
            vec![("Sync Window", "Sync Allowed".to_owned())]
        );
    }
}
