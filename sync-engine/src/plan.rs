//! Pure sync planning: compare desired manifests with live objects, then order the work.
//!
//! [`compare`] says per resource whether it is Synced or `OutOfSync` (and why, by field
//! path) and which live objects this app tracks that Git no longer has. [`steps`] turns
//! that into ordered steps: `PreSync` hooks, then the Sync phase wave by wave (Argo CD's
//! kind order inside a wave, prunes after the wave's applies, `PruneLast` at the end),
//! then `PostSync` hooks. No cluster is needed; the executor runs the steps.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::jq;
use crate::resource::{HookPhase, ObjKey, ResourceOptions, Role, is_tracked_by, kind_rank};
use crate::ssa::{self, Lists};

/// One manifest, normalized for applying: namespace defaulted, tracking id set.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    /// The object's identity on the cluster.
    pub key: ObjKey,
    /// The manifest to apply.
    pub object: Value,
    /// Resource, hook or skipped.
    pub role: Role,
    /// Sync wave (`argocd.argoproj.io/sync-wave`, 0 when absent).
    pub wave: i32,
    /// The object's sync options.
    pub options: ResourceOptions,
}

/// Sync state of one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceSync {
    /// Live matches desired.
    Synced,
    /// Live differs from desired, is missing, or should be pruned.
    OutOfSync,
}

impl ResourceSync {
    /// `Synced` or `OutOfSync`, as Argo CD writes it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceSync::Synced => "Synced",
            ResourceSync::OutOfSync => "OutOfSync",
        }
    }
}

/// The comparison of one resource.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceState {
    /// The resource's identity.
    pub key: ObjKey,
    /// Whether it is in sync.
    pub sync: ResourceSync,
    /// Field paths that differ (a few, for messages and `argosy app diff`).
    pub differences: Vec<String>,
    /// Live, tracked by this app, gone from Git.
    pub requires_pruning: bool,
    /// Not on the cluster.
    pub missing: bool,
    /// Its sync wave.
    pub wave: i32,
}

/// `spec.ignoreDifferences` entry: jsonPointers, jqPathExpressions and
/// managedFieldsManagers.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreRule {
    /// API group the rule applies to (empty: the core group).
    #[serde(default)]
    pub group: String,
    /// Kind the rule applies to.
    #[serde(default)]
    pub kind: String,
    /// Name of the object it applies to; empty for all.
    #[serde(default)]
    pub name: String,
    /// Namespace of the objects it applies to; empty for all.
    #[serde(default)]
    pub namespace: String,
    /// Fields to ignore, as JSON pointers.
    #[serde(default)]
    pub json_pointers: Vec<String>,
    /// Fields to ignore, as jq path expressions.
    #[serde(default)]
    pub jq_path_expressions: Vec<String>,
    /// Field managers whose fields are ignored.
    #[serde(default)]
    pub managed_fields_managers: Vec<String>,
}

impl IgnoreRule {
    fn matches(&self, key: &ObjKey) -> bool {
        (self.group.is_empty() || self.group == key.group || self.group == "*")
            && (self.kind.is_empty() || self.kind == key.kind || self.kind == "*")
            && (self.name.is_empty() || self.name == key.name)
            && (self.namespace.is_empty() || self.namespace == key.namespace)
    }
}

/// An ignore rule ready to apply: its jq expressions compiled (those that do not compile
/// are left out; [`invalid_ignore_expressions`] reports them).
struct Ignore<'a> {
    rule: &'a IgnoreRule,
    jq: Vec<jq::PathExpr>,
}

impl<'a> Ignore<'a> {
    fn compile(rules: &'a [IgnoreRule]) -> Vec<Ignore<'a>> {
        rules
            .iter()
            .map(|rule| Ignore {
                rule,
                jq: rule
                    .jq_path_expressions
                    .iter()
                    .filter_map(|e| jq::PathExpr::compile(e).ok())
                    .collect(),
            })
            .collect()
    }

    /// Removes the ignored fields from `doc`.
    fn strip(&self, doc: &mut Value) {
        for pointer in &self.rule.json_pointers {
            remove_pointer(doc, pointer);
        }
        for expr in &self.jq {
            for path in expr.paths(doc) {
                jq::delete(doc, &path);
            }
        }
    }

    /// Removes the ignored fields of `live` from `owned`, Argosy's fieldsV1 tree. A path
    /// into a list stops at the list: fieldsV1 names list items by key, not by index.
    fn strip_owned(&self, live: &Value, owned: &mut Value) {
        for pointer in &self.rule.json_pointers {
            remove_pointer(owned, &fields_pointer(pointer));
        }
        for expr in &self.jq {
            for path in expr.paths(live) {
                let keys: Vec<jq::Step> = path
                    .into_iter()
                    .take_while(|s| matches!(s, jq::Step::Key(_)))
                    .collect();
                remove_pointer(owned, &fields_pointer(&jq::pointer(&keys)));
            }
        }
    }
}

/// Messages for the jq expressions in `rules` that are not valid jq (reported as a
/// condition; the rest of the rule still applies).
#[must_use]
pub fn invalid_ignore_expressions(rules: &[IgnoreRule]) -> Vec<String> {
    rules
        .iter()
        .flat_map(|r| &r.jq_path_expressions)
        .filter_map(|e| jq::PathExpr::compile(e).err())
        .collect()
}

/// Compares every desired object with its live counterpart and finds the tracked live
/// objects Git no longer has. `live` holds the live objects at the desired keys and every
/// live object tracked by `app` (JSON, with `metadata.managedFields`).
#[must_use]
pub fn compare(
    desired: &[DesiredObject],
    live: &BTreeMap<ObjKey, Value>,
    app: &str,
    ignore: &[IgnoreRule],
) -> Vec<ResourceState> {
    let ignore = Ignore::compile(ignore);
    let mut out: Vec<ResourceState> = desired
        .iter()
        .filter(|d| d.role == Role::Resource)
        .map(|d| compare_one(d, live.get(&d.key), &ignore))
        .collect();
    let wanted: BTreeSet<&ObjKey> = desired.iter().map(|d| &d.key).collect();
    for (key, object) in live {
        if wanted.contains(key) || !is_tracked_by(object, app) || is_hook(object) {
            continue;
        }
        out.push(ResourceState {
            key: key.clone(),
            sync: ResourceSync::OutOfSync,
            differences: Vec::new(),
            requires_pruning: true,
            missing: false,
            wave: crate::resource::wave_of(object),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn is_hook(object: &Value) -> bool {
    matches!(crate::resource::role_of(object), Role::Hook { .. })
}

fn compare_one(d: &DesiredObject, live: Option<&Value>, ignore: &[Ignore<'_>]) -> ResourceState {
    let mut state = ResourceState {
        key: d.key.clone(),
        sync: ResourceSync::Synced,
        differences: Vec::new(),
        requires_pruning: false,
        missing: false,
        wave: d.wave,
    };
    let Some(live) = live else {
        state.sync = ResourceSync::OutOfSync;
        state.missing = true;
        return state;
    };
    let want = comparable(&d.object);
    let rules: Vec<&Ignore<'_>> = ignore.iter().filter(|r| r.rule.matches(&d.key)).collect();
    let owned = ssa::owned_fields_json(live);
    let (want, have, owned) = if rules.is_empty() {
        (want, None, owned.map(std::borrow::Cow::into_owned))
    } else {
        let mut want = want;
        let mut have = live.clone();
        let mut owned = owned.map(std::borrow::Cow::into_owned);
        for rule in &rules {
            rule.strip(&mut want);
            rule.strip(&mut have);
            for manager in &rule.rule.managed_fields_managers {
                if let Some(theirs) = ssa::fields_of_manager_json(live, manager) {
                    remove_fields(&mut want, &theirs);
                }
            }
            if let Some(o) = owned.as_mut() {
                rule.strip_owned(live, o);
            }
        }
        (want, Some(have), owned)
    };
    let have = have.as_ref().unwrap_or(live);
    let mut differences = ssa::differences(have, &want, Lists::Granular, 5);
    if let Some(owned) = owned.as_ref() {
        differences.extend(ssa::dropped_fields(
            owned,
            &want,
            5 - differences.len().min(5),
        ));
    }
    if !differences.is_empty() {
        state.sync = ResourceSync::OutOfSync;
        state.differences = differences;
    }
    state
}

/// The parts of a desired object that are compared: everything but `status`, and of
/// `metadata` only labels and annotations (the rest is the API server's).
fn comparable(object: &Value) -> Value {
    let mut want = object.clone();
    if let Some(o) = want.as_object_mut() {
        o.remove("status");
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| k == "labels" || k == "annotations");
        }
    }
    want
}

/// Removes from `want` every map field present in the fieldsV1 tree `fields`.
fn remove_fields(want: &mut Value, fields: &Value) {
    let (Value::Object(w), Value::Object(f)) = (want, fields) else {
        return;
    };
    for (key, sub) in f {
        let Some(name) = key.strip_prefix("f:") else {
            continue;
        };
        let leaf = sub.as_object().is_none_or(serde_json::Map::is_empty);
        if leaf {
            w.remove(name);
        } else if let Some(child) = w.get_mut(name) {
            remove_fields(child, sub);
        }
    }
}

/// `/spec/replicas` -> `/f:spec/f:replicas` (the same path inside a fieldsV1 tree).
fn fields_pointer(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .fold(String::new(), |mut out, p| {
            out.push_str("/f:");
            out.push_str(p);
            out
        })
}

fn remove_pointer(doc: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.trim_end_matches('/').rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent) {
        Some(Value::Object(o)) => {
            o.remove(&last);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// Where a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Before the resources are applied (`PreSync` hooks).
    PreSync,
    /// With the resources.
    Sync,
    /// After every resource is healthy (`PostSync` hooks).
    PostSync,
}

/// One ordered unit of sync work; the executor waits for a step's resources to be
/// healthy (hooks: complete) before the next step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// The phase; `None` for the final step that prunes `PruneLast` resources.
    pub phase: Option<Phase>,
    /// The sync wave.
    pub wave: i32,
    /// Indexes into the desired objects, in apply order.
    pub apply: Vec<usize>,
    /// Hooks to run (indexes into the desired objects).
    pub hooks: Vec<usize>,
    /// Live objects to delete.
    pub prune: Vec<ObjKey>,
}

/// What a sync should do, given the comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Tracked objects Git no longer has that are kept (prune disabled or `Prune=false`).
    pub prune_skipped: Vec<ObjKey>,
    /// `SyncFail` hooks (indexes into the desired objects, by wave then name): they run
    /// only once the sync has failed.
    pub sync_fail: Vec<usize>,
    /// Objects the steps prune that are marked `Prune=confirm`: the sync waits for the
    /// Application's approval before it runs any step ([`SyncPlan::awaiting_confirmation`]).
    pub prune_confirm: Vec<ObjKey>,
}

impl SyncPlan {
    /// Why the sync must wait instead of running, when it prunes `Prune=confirm` objects
    /// and the Application has not approved that (`approved`: its
    /// `argocd.argoproj.io/deletion-approved` is not older than the operation's start).
    /// As in Argo CD the whole sync waits, so nothing is half-applied meanwhile; the
    /// operation stays Running with this message.
    #[must_use]
    pub fn awaiting_confirmation(&self, approved: bool) -> Option<String> {
        if approved || self.prune_confirm.is_empty() {
            return None;
        }
        let names: Vec<String> = self.prune_confirm.iter().map(ToString::to_string).collect();
        Some(format!(
            "waiting for pruning confirmation of {} (argosy app confirm-deletion)",
            names.join(", ")
        ))
    }

    /// True when the plan applies, prunes or runs nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps
            .iter()
            .all(|s| s.apply.is_empty() && s.hooks.is_empty() && s.prune.is_empty())
    }
}

/// Orders the work of one sync: every out-of-sync resource, hooks when `with_hooks`
/// (a sync operation, not a self-heal of one drifted field), prunes when `prune`.
/// `live_options` gives the sync options of tracked live objects to prune.
pub fn steps(
    desired: &[DesiredObject],
    states: &[ResourceState],
    prune: bool,
    with_hooks: bool,
    live_options: &dyn Fn(&ObjKey) -> ResourceOptions,
) -> SyncPlan {
    fn step(waves: &mut BTreeMap<(Phase, i32), Step>, phase: Phase, wave: i32) -> &mut Step {
        waves.entry((phase, wave)).or_insert_with(|| Step {
            phase: Some(phase),
            wave,
            ..Step::default()
        })
    }
    let by_key: BTreeMap<&ObjKey, &ResourceState> = states.iter().map(|s| (&s.key, s)).collect();
    let mut waves: BTreeMap<(Phase, i32), Step> = BTreeMap::new();
    let mut sync_fail = Vec::new();
    for (i, d) in desired.iter().enumerate() {
        match &d.role {
            Role::Resource => {
                let out_of_sync = by_key
                    .get(&d.key)
                    .is_none_or(|s| s.sync == ResourceSync::OutOfSync);
                let wave = step(&mut waves, Phase::Sync, d.wave);
                if out_of_sync {
                    wave.apply.push(i);
                }
            }
            Role::Hook { phase, .. } if with_hooks => {
                let phase = match phase {
                    HookPhase::PreSync => Phase::PreSync,
                    HookPhase::Sync => Phase::Sync,
                    HookPhase::PostSync => Phase::PostSync,
                    HookPhase::SyncFail => {
                        sync_fail.push(i);
                        continue;
                    }
                };
                step(&mut waves, phase, d.wave).hooks.push(i);
            }
            // Skipped manifests, and hooks when hooks are not run.
            Role::Skip | Role::Hook { .. } => {}
        }
    }
    sync_fail.sort_by(|a, b| {
        let (a, b) = (&desired[*a], &desired[*b]);
        (a.wave, &a.key.name).cmp(&(b.wave, &b.key.name))
    });
    let mut plan = SyncPlan {
        sync_fail,
        ..SyncPlan::default()
    };
    let mut prune_last = Vec::new();
    for s in states.iter().filter(|s| s.requires_pruning) {
        let options = live_options(&s.key);
        if !prune || options.no_prune {
            plan.prune_skipped.push(s.key.clone());
        } else {
            if options.prune_confirm {
                plan.prune_confirm.push(s.key.clone());
            }
            if options.prune_last {
                prune_last.push(s.key.clone());
            } else {
                step(&mut waves, Phase::Sync, s.wave)
                    .prune
                    .push(s.key.clone());
            }
        }
    }
    for ((_, _), mut s) in waves {
        s.apply.sort_by(|a, b| {
            let (a, b) = (&desired[*a].key, &desired[*b].key);
            (kind_rank(&a.kind), a).cmp(&(kind_rank(&b.kind), b))
        });
        s.hooks
            .sort_by(|a, b| desired[*a].key.name.cmp(&desired[*b].key.name));
        // Dependents go first when deleting: reverse kind order.
        s.prune
            .sort_by(|a, b| (kind_rank(&b.kind), b).cmp(&(kind_rank(&a.kind), a)));
        plan.steps.push(s);
    }
    if !prune_last.is_empty() {
        prune_last.sort_by(|a, b| (kind_rank(&b.kind), b).cmp(&(kind_rank(&a.kind), a)));
        // Argo CD prunes `PruneLast` resources in a final step after every other one.
        plan.steps.push(Step {
            phase: None,
            wave: i32::MAX,
            prune: prune_last,
            ..Step::default()
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{TRACKING_ANNOTATION, role_of, wave_of};
    use serde_json::json;

    fn desired(kind: &str, name: &str, extra: Value) -> DesiredObject {
        let mut object = json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": "ns"}});
        json_merge(&mut object, extra);
        let key = ObjKey::of(&object).unwrap();
        let tracking = key.tracking_id("app");
        object["metadata"]["annotations"][TRACKING_ANNOTATION] = json!(tracking);
        DesiredObject {
            role: role_of(&object),
            wave: wave_of(&object),
            options: ResourceOptions::of(&object, &[]),
            key,
            object,
        }
    }

    fn json_merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    json_merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn live_of(d: &DesiredObject, extra: Value) -> (ObjKey, Value) {
        let mut object = d.object.clone();
        json_merge(&mut object, extra);
        (d.key.clone(), object)
    }

    #[test]
    fn synced_out_of_sync_missing_and_prunable() {
        let cm = desired("ConfigMap", "a", json!({"data": {"k": "v"}}));
        let drifted = desired("ConfigMap", "b", json!({"data": {"k": "v"}}));
        let missing = desired("ConfigMap", "c", json!({}));
        let gone = desired("ConfigMap", "old", json!({}));
        let foreign = desired("ConfigMap", "foreign", json!({}));
        let mut live: BTreeMap<ObjKey, Value> = [
            live_of(
                &cm,
                json!({"metadata": {"uid": "1", "resourceVersion": "5"}}),
            ),
            live_of(&drifted, json!({"data": {"k": "changed"}})),
            live_of(&gone, json!({})),
        ]
        .into_iter()
        .collect();
        let (k, mut v) = live_of(&foreign, json!({}));
        v["metadata"]["annotations"][TRACKING_ANNOTATION] = json!("other:/ConfigMap:ns/foreign");
        live.insert(k, v);

        let states = compare(&[cm, drifted, missing], &live, "app", &[]);
        let by_name = |n: &str| states.iter().find(|s| s.key.name == n).unwrap();
        assert_eq!(by_name("a").sync, ResourceSync::Synced);
        assert_eq!(by_name("b").sync, ResourceSync::OutOfSync);
        assert_eq!(by_name("b").differences, vec!["/data/k"]);
        assert!(by_name("c").missing);
        assert!(by_name("old").requires_pruning);
        assert!(states.iter().all(|s| s.key.name != "foreign"));
    }

    #[test]
    fn ignore_differences_by_pointer_jq_and_manager() {
        let d = desired(
            "Deployment",
            "web",
            json!({"apiVersion": "apps/v1",
            "spec": {"replicas": 2, "paused": false}}),
        );
        let mut d = d;
        d.key.group = "apps".into();
        let (k, mut v) = live_of(&d, json!({"spec": {"replicas": 5, "paused": true}}));
        v["metadata"]["managedFields"] = json!([
            {"manager": "hpa", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        let live: BTreeMap<ObjKey, Value> = [(k, v)].into_iter().collect();
        let rule = |r: Value| -> IgnoreRule { serde_json::from_value(r).unwrap() };

        let states = compare(std::slice::from_ref(&d), &live, "app", &[]);
        assert_eq!(
            states[0].differences,
            vec!["/spec/paused", "/spec/replicas"]
        );
        let by_pointer = [rule(json!({"group": "apps", "kind": "Deployment",
            "jsonPointers": ["/spec/replicas", "/spec/paused"]}))];
        let states = compare(std::slice::from_ref(&d), &live, "app", &by_pointer);
        assert_eq!(states[0].sync, ResourceSync::Synced);
        let by_jq_and_manager = [rule(json!({"group": "apps", "kind": "Deployment",
            "jqPathExpressions": [".spec.paused"], "managedFieldsManagers": ["hpa"]}))];
        let states = compare(std::slice::from_ref(&d), &live, "app", &by_jq_and_manager);
        assert_eq!(states[0].sync, ResourceSync::Synced);
        let other_kind = [rule(
            json!({"kind": "StatefulSet", "jsonPointers": ["/spec"]}),
        )];
        let states = compare(std::slice::from_ref(&d), &live, "app", &other_kind);
        assert_eq!(states[0].sync, ResourceSync::OutOfSync);
        let invalid = [rule(
            json!({"jqPathExpressions": [".spec.x | select(", ".spec.ok"]}),
        )];
        let errors = invalid_ignore_expressions(&invalid);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains(".spec.x | select("), "{errors:?}");
    }

    #[test]
    fn ignore_differences_by_jq_selecting_list_items() {
        // A sidecar injected on the cluster, and its image bumped there: ignored by a jq
        // selection, while a change to the app's own container still counts.
        let d = desired(
            "Pod",
            "web",
            json!({"spec": {"containers": [{"name": "app", "image": "app:1"}]}}),
        );
        let drift = |app_image: &str| {
            live_of(
                &d,
                json!({"spec": {"containers": [
                    {"name": "app", "image": app_image},
                    {"name": "istio-proxy", "image": "proxy:9"}]}}),
            )
        };
        let rule: IgnoreRule = serde_json::from_value(json!({"kind": "Pod",
            "jqPathExpressions": [".spec.containers[] | select(.name == \"istio-proxy\")"]}))
        .unwrap();
        let live: BTreeMap<ObjKey, Value> = [drift("app:1")].into_iter().collect();
        let states = compare(std::slice::from_ref(&d), &live, "app", &[]);
        assert_eq!(states[0].sync, ResourceSync::OutOfSync);
        let states = compare(
            std::slice::from_ref(&d),
            &live,
            "app",
            std::slice::from_ref(&rule),
        );
        assert_eq!(
            states[0].sync,
            ResourceSync::Synced,
            "{:?}",
            states[0].differences
        );
        let live: BTreeMap<ObjKey, Value> = [drift("app:2")].into_iter().collect();
        let states = compare(std::slice::from_ref(&d), &live, "app", &[rule]);
        assert_eq!(states[0].sync, ResourceSync::OutOfSync);
    }

    #[test]
    fn steps_order_waves_kinds_hooks_and_prunes() {
        let desired = vec![
            desired("Deployment", "web", json!({})),
            desired("ConfigMap", "cfg", json!({})),
            desired("Namespace", "ns", json!({"metadata": {"namespace": null}})),
            desired(
                "ConfigMap",
                "late",
                json!({"metadata": {"annotations": {
                "argocd.argoproj.io/sync-wave": "2"}}}),
            ),
            desired(
                "Job",
                "migrate",
                json!({"metadata": {"annotations": {
                "argocd.argoproj.io/hook": "PreSync"}}}),
            ),
            desired(
                "Job",
                "smoke",
                json!({"metadata": {"annotations": {
                "argocd.argoproj.io/hook": "PostSync"}}}),
            ),
            desired(
                "Job",
                "page-oncall",
                json!({"metadata": {"annotations": {
                "argocd.argoproj.io/hook": "SyncFail"}}}),
            ),
        ];
        let mut states = compare(&desired, &BTreeMap::new(), "app", &[]);
        let stale = |name: &str| ResourceState {
            key: ObjKey {
                group: String::new(),
                kind: "Secret".into(),
                namespace: "ns".into(),
                name: name.into(),
            },
            sync: ResourceSync::OutOfSync,
            differences: vec![],
            requires_pruning: true,
            missing: false,
            wave: 0,
        };
        states.push(stale("gone"));
        states.push(stale("keep"));
        states.push(stale("last"));
        let options = |k: &ObjKey| ResourceOptions {
            no_prune: k.name == "keep",
            prune_last: k.name == "last",
            ..ResourceOptions::default()
        };
        let plan = steps(&desired, &states, true, true, &options);
        let names = |idx: &[usize]| -> Vec<&str> {
            idx.iter().map(|i| desired[*i].key.name.as_str()).collect()
        };
        assert_eq!(plan.steps.len(), 5);
        assert_eq!(plan.steps[0].phase, Some(Phase::PreSync));
        assert_eq!(names(&plan.steps[0].hooks), vec!["migrate"]);
        assert_eq!(names(&plan.steps[1].apply), vec!["ns", "cfg", "web"]);
        assert_eq!(plan.steps[1].prune[0].name, "gone");
        assert_eq!(
            (plan.steps[2].wave, names(&plan.steps[2].apply)),
            (2, vec!["late"])
        );
        assert_eq!(names(&plan.steps[3].hooks), vec!["smoke"]);
        assert_eq!(plan.steps[4].prune[0].name, "last");
        assert_eq!(plan.prune_skipped[0].name, "keep");
        // SyncFail hooks are in no step: they run only after a failure.
        assert_eq!(names(&plan.sync_fail), vec!["page-oncall"]);
        assert!(
            plan.steps
                .iter()
                .all(|s| !names(&s.hooks).contains(&"page-oncall"))
        );

        let no_prune = steps(&desired, &states, false, false, &options);
        assert!(
            no_prune
                .steps
                .iter()
                .all(|s| s.prune.is_empty() && s.hooks.is_empty())
        );
        assert!(no_prune.sync_fail.is_empty());
        assert_eq!(no_prune.prune_skipped.len(), 3);
    }

    #[test]
    fn in_sync_resources_plan_nothing() {
        let d = desired("ConfigMap", "a", json!({"data": {"k": "v"}}));
        let live: BTreeMap<ObjKey, Value> = [live_of(&d, json!({}))].into_iter().collect();
        let desired = vec![d];
        let states = compare(&desired, &live, "app", &[]);
        let plan = steps(&desired, &states, true, false, &|_| {
            ResourceOptions::default()
        });
        assert!(plan.is_empty());
    }
}
