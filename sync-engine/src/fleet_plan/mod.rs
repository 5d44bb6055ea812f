//! The fleet plan: before a merge, what a revision range changes across the fleet. For
//! each destination (grouped by a cluster label such as `customer`, else the cluster's
//! name): which Applications appear, disappear, change or stay, and for each changed one
//! which objects are added, removed or changed, with a unified diff of each.
//!
//! * this module: the pure comparison of two rendered sides ([`compare`]) and the plan's
//!   shape (serialized as is by `argosy plan -o json` and the controller's API);
//! * [`revisions`]: the pure rewrite of an `ApplicationSet` and its Applications to one
//!   revision of the repositories under review;
//! * [`collect`]: generating and rendering both sides (Git, the renderer), writing nothing.
//!
//! Objects are compared by group, kind, namespace and name, as parsed values (key order
//! and YAML formatting never show as changes); diffs are of their YAML with sorted keys,
//! Secret values masked (as `argosy app diff` masks them).

pub mod collect;
pub mod revisions;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::resource::ObjKey;

/// Where an Application deploys, as the plan groups it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Destination {
    /// The value of the grouping label on the cluster (`customer: acme`), else the
    /// cluster's name (else the destination as written, for an unregistered cluster).
    pub group: String,
    /// The cluster's name.
    pub cluster: String,
    /// The cluster's server URL.
    pub server: String,
}

/// One generated Application on one side of the range, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedApp {
    /// The Application's name.
    pub name: String,
    /// Where it deploys.
    pub destination: Destination,
    /// The Application as the `ApplicationSet` controller would write it (see
    /// [`application_view`]).
    pub application: Value,
    /// Its rendered objects, or why it could not be rendered.
    pub objects: Result<Vec<Value>, String>,
}

/// How much of each diff a plan keeps (a fleet of hundreds of clusters must not make a
/// plan of hundreds of megabytes).
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Lines of each unified diff kept; the rest is counted in one closing line.
    pub max_diff_lines: usize,
    /// Header of the old side in each diff (`--- <from>`).
    pub from_label: String,
    /// Header of the new side in each diff (`+++ <to>`).
    pub to_label: String,
}

/// What happened to an Application or an object between the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// Only on the new side.
    Added,
    /// Only on the old side.
    Removed,
    /// On both sides, different.
    Changed,
    /// On both sides, the same.
    Unchanged,
    /// A side could not be rendered: nothing can be said about its objects.
    Failed,
}

/// One object that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectPlan {
    /// API group (empty: core).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace as rendered (empty: none set).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Added, removed or changed.
    pub change: Change,
    /// The unified diff of its YAML, old side to new side.
    pub diff: String,
}

/// One Application of one destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppPlan {
    /// The Application's name.
    pub name: String,
    /// What happened to it.
    pub change: Change,
    /// The diff of the Application itself (labels, sync policy, sources...), when it
    /// changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_diff: Option<String>,
    /// The objects added, removed or changed (the unchanged ones are only counted).
    pub objects: Vec<ObjectPlan>,
    /// Objects the same on both sides.
    pub unchanged_objects: usize,
    /// Why a side could not be rendered (`from: ...`, `to: ...`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The Applications of one destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationPlan {
    /// The destination.
    #[serde(flatten)]
    pub destination: Destination,
    /// Its Applications, by name.
    pub applications: Vec<AppPlan>,
}

impl DestinationPlan {
    /// Whether anything of this destination differs (or failed).
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.applications
            .iter()
            .any(|a| a.change != Change::Unchanged)
    }
}

/// Counts over the whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Destinations with at least one Application.
    pub destinations: usize,
    /// Destinations where something differs.
    pub changed_destinations: usize,
    /// Applications only on the new side.
    pub apps_added: usize,
    /// Applications only on the old side.
    pub apps_removed: usize,
    /// Applications that differ.
    pub apps_changed: usize,
    /// Applications the same on both sides.
    pub apps_unchanged: usize,
    /// Applications a side of which could not be rendered.
    pub apps_failed: usize,
    /// Objects added (in added and changed Applications).
    pub objects_added: usize,
    /// Objects removed (in removed and changed Applications).
    pub objects_removed: usize,
    /// Objects changed.
    pub objects_changed: usize,
}

/// The comparison of two sides, per destination (sorted by group, cluster, server).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// Counts.
    pub summary: Summary,
    /// Every destination with an Application on either side.
    pub destinations: Vec<DestinationPlan>,
}

/// Compares the Applications of the old side (`from`) with those of the new side (`to`).
/// An Application is the same Application on both sides when its name and destination
/// are: one that moves to another cluster is removed from one and added to the other,
/// which is what each cluster sees.
#[must_use]
pub fn compare(from: Vec<PlannedApp>, to: Vec<PlannedApp>, options: &DiffOptions) -> Comparison {
    type Pair = (Option<PlannedApp>, Option<PlannedApp>);
    let mut by_destination: BTreeMap<Destination, BTreeMap<String, Pair>> = BTreeMap::new();
    for app in from {
        let slot = by_destination
            .entry(app.destination.clone())
            .or_default()
            .entry(app.name.clone())
            .or_default();
        slot.0 = Some(app);
    }
    for app in to {
        let slot = by_destination
            .entry(app.destination.clone())
            .or_default()
            .entry(app.name.clone())
            .or_default();
        slot.1 = Some(app);
    }
    let mut summary = Summary::default();
    let destinations: Vec<DestinationPlan> = by_destination
        .into_iter()
        .map(|(destination, apps)| {
            let applications: Vec<AppPlan> = apps
                .into_iter()
                .map(|(name, (old, new))| compare_app(name, old.as_ref(), new.as_ref(), options))
                .collect();
            DestinationPlan {
                destination,
                applications,
            }
        })
        .collect();
    for destination in &destinations {
        summary.destinations += 1;
        if destination.has_changes() {
            summary.changed_destinations += 1;
        }
        for app in &destination.applications {
            match app.change {
                Change::Added => summary.apps_added += 1,
                Change::Removed => summary.apps_removed += 1,
                Change::Changed => summary.apps_changed += 1,
                Change::Unchanged => summary.apps_unchanged += 1,
                Change::Failed => summary.apps_failed += 1,
            }
            for object in &app.objects {
                match object.change {
                    Change::Added => summary.objects_added += 1,
                    Change::Removed => summary.objects_removed += 1,
                    _ => summary.objects_changed += 1,
                }
            }
        }
    }
    Comparison {
        summary,
        destinations,
    }
}

fn compare_app(
    name: String,
    old: Option<&PlannedApp>,
    new: Option<&PlannedApp>,
    options: &DiffOptions,
) -> AppPlan {
    let mut plan = AppPlan {
        name,
        change: Change::Unchanged,
        application_diff: None,
        objects: Vec::new(),
        unchanged_objects: 0,
        errors: Vec::new(),
    };
    for (side, app) in [("from", old), ("to", new)] {
        if let Some(Err(e)) = app.map(|a| &a.objects) {
            plan.errors.push(format!("{side}: {e}"));
        }
    }
    if !plan.errors.is_empty() {
        plan.change = Change::Failed;
        return plan;
    }
    let (old_objects, new_objects) = (keyed(objects_of(old)), keyed(objects_of(new)));
    let mut keys: Vec<&ObjKey> = old_objects.keys().chain(new_objects.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (before, after) = (old_objects.get(key), new_objects.get(key));
        let change = match (before, after) {
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (Some(b), Some(a)) if b == a => {
                plan.unchanged_objects += 1;
                continue;
            }
            _ => Change::Changed,
        };
        let (mut before, mut after) = (before.cloned(), after.cloned());
        if key.group.is_empty() && key.kind == "Secret" {
            crate::diff::mask_secret_values(before.as_mut(), after.as_mut());
        }
        plan.objects.push(ObjectPlan {
            group: key.group.clone(),
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            change,
            diff: unified(before.as_ref(), after.as_ref(), options),
        });
    }
    plan.change = match (old, new) {
        (None, _) => Change::Added,
        (_, None) => Change::Removed,
        (Some(o), Some(n)) => {
            if o.application != n.application {
                plan.application_diff =
                    Some(unified(Some(&o.application), Some(&n.application), options));
            }
            if plan.objects.is_empty() && plan.application_diff.is_none() {
                Change::Unchanged
            } else {
                Change::Changed
            }
        }
    };
    plan
}

/// The objects of a side's Application (none when it is not on that side or failed).
fn objects_of(app: Option<&PlannedApp>) -> &[Value] {
    match app.map(|a| &a.objects) {
        Some(Ok(objects)) => objects,
        _ => &[],
    }
}

/// The objects of one side by key, normalized; the first of two with one key wins (as
/// the sync engine applies it), and objects without kind or name are left out (the sync
/// engine refuses them; the plan has nothing to call them by).
fn keyed(objects: &[Value]) -> BTreeMap<ObjKey, Value> {
    let mut out = BTreeMap::new();
    for object in objects {
        if let Some(key) = ObjKey::of(object) {
            out.entry(key).or_insert_with(|| normalized(object));
        }
    }
    out
}

/// What of an object is compared: everything but `status` (a manifest's `status` is not
/// applied).
fn normalized(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    object
}

/// The parts of a generated Application its `ApplicationSet` controller writes and a
/// reviewer cares about: name, namespace, labels, annotations, finalizers and `spec`.
#[must_use]
pub fn application_view(application: &Value) -> Value {
    let mut view = Map::new();
    if let Some(meta) = application.get("metadata").and_then(Value::as_object) {
        let kept: Map<String, Value> = meta
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "name" | "namespace" | "labels" | "annotations" | "finalizers"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        view.insert("metadata".to_owned(), Value::Object(kept));
    }
    if let Some(spec) = application.get("spec") {
        view.insert("spec".to_owned(), spec.clone());
    }
    Value::Object(view)
}

/// The unified diff of two sides' YAML (an absent side is empty), at most
/// `max_diff_lines` lines.
fn unified(before: Option<&Value>, after: Option<&Value>, options: &DiffOptions) -> String {
    let yaml = |v: Option<&Value>| {
        v.map(|v| serde_yaml_ng::to_string(v).unwrap_or_else(|e| format!("# {e}\n")))
            .unwrap_or_default()
    };
    let (before, after) = (yaml(before), yaml(after));
    let text = similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&options.from_label, &options.to_label)
        .to_string();
    truncate_lines(&text, options.max_diff_lines)
}

/// The first `max` lines of `text`, and a line counting the rest.
fn truncate_lines(text: &str, max: usize) -> String {
    let total = text.lines().count();
    if total <= max {
        return text.to_owned();
    }
    let mut out: String = text.lines().take(max).flat_map(|l| [l, "\n"]).collect();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "... {} more lines", total - max);
    out
}

/// What tests of the plan compare: its shape without the diffs.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Change, Comparison};

    /// `(group, app, change, [(kind/name, change)])` of a comparison, to compare whole.
    pub(crate) type Shape = Vec<(String, String, Change, Vec<(String, Change)>)>;

    pub(crate) fn shape(plan: &Comparison) -> Shape {
        plan.destinations
            .iter()
            .flat_map(|d| {
                d.applications.iter().map(|a| {
                    (
                        d.destination.group.clone(),
                        a.name.clone(),
                        a.change,
                        a.objects
                            .iter()
                            .map(|o| (format!("{}/{}", o.kind, o.name), o.change))
                            .collect(),
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options() -> DiffOptions {
        DiffOptions {
            max_diff_lines: 200,
            from_label: "old".into(),
            to_label: "new".into(),
        }
    }

    fn destination(group: &str) -> Destination {
        Destination {
            group: group.into(),
            cluster: format!("{group}-prod"),
            server: format!("https://{group}.example:6443"),
        }
    }

    fn app(name: &str, group: &str, objects: Vec<Value>) -> PlannedApp {
        PlannedApp {
            name: name.into(),
            destination: destination(group),
            application: json!({"metadata": {"name": name}, "spec": {"project": "default"}}),
            objects: Ok(objects),
        }
    }

    fn deployment(name: &str, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "labels": {"a": "1", "b": "2"}},
               "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    fn config_map(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
    }

    use super::testing::shape;

    #[test]
    fn applications_and_objects_are_compared_per_destination() {
        let from = vec![
            app("web-acme", "acme", vec![deployment("web", "nginx:1.27")]),
            app(
                "web-globex",
                "globex",
                vec![deployment("web", "nginx:1.27")],
            ),
            app(
                "old-globex",
                "globex",
                vec![config_map("gone"), config_map("kept")],
            ),
        ];
        let to = vec![
            app(
                "web-acme",
                "acme",
                vec![deployment("web", "nginx:1.28"), config_map("settings")],
            ),
            app(
                "web-globex",
                "globex",
                vec![deployment("web", "nginx:1.27")],
            ),
            app("new-initech", "initech", vec![config_map("x")]),
        ];
        let plan = compare(from, to, &options());
        let s = |v: &str| v.to_owned();
        assert_eq!(
            shape(&plan),
            vec![
                (
                    s("acme"),
                    s("web-acme"),
                    Change::Changed,
                    vec![
                        (s("ConfigMap/settings"), Change::Added),
                        (s("Deployment/web"), Change::Changed)
                    ]
                ),
                (
                    s("globex"),
                    s("old-globex"),
                    Change::Removed,
                    vec![
                        (s("ConfigMap/gone"), Change::Removed),
                        (s("ConfigMap/kept"), Change::Removed)
                    ]
                ),
                (s("globex"), s("web-globex"), Change::Unchanged, vec![]),
                (
                    s("initech"),
                    s("new-initech"),
                    Change::Added,
                    vec![(s("ConfigMap/x"), Change::Added)]
                ),
            ]
        );
        assert_eq!(
            plan.summary,
            Summary {
                destinations: 3,
                changed_destinations: 3,
                apps_added: 1,
                apps_removed: 1,
                apps_changed: 1,
                apps_unchanged: 1,
                apps_failed: 0,
                objects_added: 2,
                objects_removed: 2,
                objects_changed: 1,
            }
        );
        let acme = &plan.destinations[0].applications[0];
        let diff = &acme.objects[1].diff;
        assert!(diff.starts_with("--- old\n+++ new\n"), "{diff}");
        assert!(
            diff.contains("-      - image: nginx:1.27")
                && diff.contains("+      - image: nginx:1.28"),
            "{diff}"
        );
        assert!(acme.application_diff.is_none());
        let added = &plan.destinations[0].applications[0].objects[0].diff;
        assert!(added.contains("+  name: settings"), "{added}");
        assert!(!added.lines().any(|l| l.starts_with("- ")), "{added}");
    }

    #[test]
    fn key_order_and_formatting_are_no_change() {
        let one: Value = serde_yaml_ng::from_str(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {x: '1', y: '2'}}\ndata: {k: v}\n",
        )
        .unwrap();
        let two: Value = serde_yaml_ng::from_str(
            "kind: ConfigMap\ndata:\n  k: \"v\"\nmetadata:\n  labels:\n    y: \"2\"\n    x: \"1\"\n  name: a\napiVersion: v1\nstatus: {}\n",
        )
        .unwrap();
        let plan = compare(
            vec![app("a", "acme", vec![one])],
            vec![app("a", "acme", vec![two])],
            &options(),
        );
        let a = &plan.destinations[0].applications[0];
        assert_eq!((a.change, a.unchanged_objects), (Change::Unchanged, 1));
        assert!(!plan.destinations[0].has_changes());
    }

    #[test]
    fn objects_are_told_apart_by_group_kind_namespace_and_name() {
        let in_ns = |ns: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": ns}});
        let other_group = json!({"apiVersion": "example.com/v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "x"}});
        let plan = compare(
            vec![app("a", "acme", vec![in_ns("x")])],
            vec![app("a", "acme", vec![in_ns("y"), other_group])],
            &options(),
        );
        let objects: Vec<(String, String, Change)> = plan.destinations[0].applications[0]
            .objects
            .iter()
            .map(|o| (o.group.clone(), o.namespace.clone(), o.change))
            .collect();
        assert_eq!(
            objects,
            vec![
                (String::new(), "x".into(), Change::Removed),
                (String::new(), "y".into(), Change::Added),
                ("example.com".into(), "x".into(), Change::Added),
            ]
        );
    }

    #[test]
    fn an_application_change_without_object_changes_is_a_change() {
        let old = app("a", "acme", vec![config_map("c")]);
        let mut new = old.clone();
        new.application["spec"]["syncPolicy"] = json!({"automated": {}});
        let plan = compare(vec![old], vec![new], &options());
        let a = &plan.destinations[0].applications[0];
        assert_eq!(a.change, Change::Changed);
        assert!(a.objects.is_empty());
        let diff = a.application_diff.as_deref().unwrap_or_default();
        assert!(diff.contains("+  syncPolicy:"), "{diff}");
    }

    #[test]
    fn a_side_that_does_not_render_fails_the_application_only() {
        let mut broken = app("a", "acme", vec![]);
        broken.objects = Err("kustomize build failed".into());
        let plan = compare(
            vec![
                app("a", "acme", vec![config_map("c")]),
                app("b", "acme", vec![]),
            ],
            vec![broken, app("b", "acme", vec![])],
            &options(),
        );
        let apps = &plan.destinations[0].applications;
        assert_eq!(apps[0].change, Change::Failed);
        assert_eq!(apps[0].errors, vec!["to: kustomize build failed"]);
        assert!(apps[0].objects.is_empty());
        assert_eq!(apps[1].change, Change::Unchanged);
        assert_eq!(plan.summary.apps_failed, 1);
    }

    #[test]
    fn a_moved_application_leaves_one_destination_and_enters_another() {
        let old = app("a", "acme", vec![config_map("c")]);
        let new = app("a", "globex", vec![config_map("c")]);
        let plan = compare(vec![old], vec![new], &options());
        let changes: Vec<(String, Change)> = plan
            .destinations
            .iter()
            .map(|d| (d.destination.group.clone(), d.applications[0].change))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("acme".into(), Change::Removed),
                ("globex".into(), Change::Added)
            ]
        );
    }

    #[test]
    fn secret_values_never_show() {
        let secret = |v: &str| {
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "data": {"password": v}, "stringData": {"token": format!("t-{v}")}})
        };
        let plan = compare(
            vec![app("a", "acme", vec![secret("aHVudGVyMg==")])],
            vec![app("a", "acme", vec![secret("c3dvcmRmaXNo")])],
            &options(),
        );
        let object = &plan.destinations[0].applications[0].objects[0];
        assert_eq!(object.change, Change::Changed);
        for value in [
            "aHVudGVyMg==",
            "c3dvcmRmaXNo",
            "t-aHVudGVyMg==",
            "t-c3dvcmRmaXNo",
        ] {
            assert!(!object.diff.contains(value), "{}", object.diff);
        }
        assert!(object.diff.contains("-  password: "), "{}", object.diff);
    }

    #[test]
    fn long_diffs_are_cut_with_a_count() {
        let big = |n: usize| {
            let data: Map<String, Value> = (0..n).map(|i| (format!("k{i:03}"), json!(i))).collect();
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": data})
        };
        let plan = compare(
            vec![],
            vec![app("a", "acme", vec![big(100)])],
            &DiffOptions {
                max_diff_lines: 10,
                ..options()
            },
        );
        let diff = &plan.destinations[0].applications[0].objects[0].diff;
        assert_eq!(diff.lines().count(), 11, "{diff}");
        let rest = diff.lines().last().unwrap_or_default();
        // 2 headers + 1 hunk line + 105 YAML lines, 10 kept.
        assert_eq!(rest, "... 98 more lines");
    }

    #[test]
    fn application_view_keeps_what_the_controller_writes() {
        let app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "argocd", "labels": {"x": "1"},
                         "resourceVersion": "9", "uid": "u", "finalizers": ["f"]},
            "spec": {"project": "p"}, "status": {"sync": {}}});
        assert_eq!(
            application_view(&app),
            json!({"metadata": {"name": "a", "namespace": "argocd", "labels": {"x": "1"}, "finalizers": ["f"]},
                   "spec": {"project": "p"}})
        );
    }
}
