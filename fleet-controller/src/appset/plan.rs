//! Planning: which Applications to apply, delete or hold. Pure; no cluster needed.
//!
//! `plan(desired, live, policy)` compares the generated Applications with the live ones
//! and returns values for the single writer to execute. Three safety rules live here:
//!
//! * nothing is ever planned from a failed generation (the caller never calls `plan`
//!   then), and generated-but-invalid Applications count as present, so they are kept;
//! * a **deletion budget** caps how many Applications one reconcile may delete
//!   (default `max(5, 20%)` of the owned ones); above it every deletion is held until the
//!   ApplicationSet carries the approval annotation;
//! * an Application is only written when applying would change it: desired fields are
//!   compared with the live object, and fields Argosy owns (per `managedFields`) but no
//!   longer wants count as a change, so "nothing changed" means zero API writes.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use argosy_crds::Application;
use argosy_crds::consts::API_VERSION;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

use argosy_sync_engine::{jq, ssa};

/// `spec.syncPolicy.applicationsSync` of an ApplicationSet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApplicationsSync {
    CreateOnly,
    CreateUpdate,
    CreateDelete,
    #[default]
    Sync,
}

impl ApplicationsSync {
    /// Parses Argo CD's policy names; `None` means the default (`sync`).
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.unwrap_or("sync") {
            "create-only" => Ok(Self::CreateOnly),
            "create-update" => Ok(Self::CreateUpdate),
            "create-delete" => Ok(Self::CreateDelete),
            "sync" | "" => Ok(Self::Sync),
            other => Err(format!(
                "spec.syncPolicy.applicationsSync: unknown policy {other:?} (expected create-only, create-update, create-delete or sync)"
            )),
        }
    }

    fn allows_update(self) -> bool {
        matches!(self, Self::CreateUpdate | Self::Sync)
    }

    fn allows_delete(self) -> bool {
        matches!(self, Self::CreateDelete | Self::Sync)
    }
}

/// How many deletions one reconcile may make: `max(minimum, percent% of owned)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletionBudget {
    pub minimum: usize,
    pub percent: usize,
}

impl Default for DeletionBudget {
    fn default() -> Self {
        Self {
            minimum: crate::defaults::DELETION_BUDGET_MIN,
            percent: crate::defaults::DELETION_BUDGET_PERCENT,
        }
    }
}

impl DeletionBudget {
    /// Parses a per-ApplicationSet override: `"10"` (absolute) or `"30%"`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "deletion budget {value:?}: expected a count like \"10\" or a percentage like \"30%\""
            )
        };
        match value.trim().strip_suffix('%') {
            Some(p) => {
                let percent: usize = p.trim().parse().map_err(|_| bad())?;
                if percent > 100 {
                    return Err(bad());
                }
                Ok(Self {
                    minimum: 0,
                    percent,
                })
            }
            None => Ok(Self {
                minimum: value.trim().parse().map_err(|_| bad())?,
                percent: 0,
            }),
        }
    }

    /// The number of deletions allowed when `owned` Applications exist.
    pub fn limit(self, owned: usize) -> usize {
        self.minimum.max(owned * self.percent / 100)
    }
}

/// Everything `plan` needs besides the Applications themselves.
#[derive(Debug, Clone)]
pub struct PlanPolicy<'a> {
    /// The ApplicationSet that owns the Applications.
    pub owner: OwnerReference,
    pub sync: ApplicationsSync,
    pub budget: DeletionBudget,
    /// The ApplicationSet carries the one-shot approval for held deletions.
    pub deletions_approved: bool,
    /// Label and annotation keys whose live values are kept.
    pub preserved_labels: &'a BTreeSet<String>,
    pub preserved_annotations: &'a BTreeSet<String>,
    /// `ignoreApplicationDifferences`: fields whose live values are kept.
    pub ignored: &'a [IgnoredFields],
}

/// One `ignoreApplicationDifferences` entry, ready to apply.
#[derive(Debug, Default)]
pub struct IgnoredFields {
    /// Only the Application of this name; every one when `None`.
    pub name: Option<String>,
    pub json_pointers: Vec<String>,
    pub jq: Vec<jq::PathExpr>,
}

impl IgnoredFields {
    /// Compiles the ApplicationSet's entries; the error names an invalid or refused jq
    /// expression.
    pub fn compile(
        rules: &[argosy_crds::applicationset::ApplicationMatchExpression],
    ) -> Result<Vec<IgnoredFields>, String> {
        rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let jq = rule
                    .jq_path_expressions
                    .iter()
                    .map(|e| jq::PathExpr::compile(e))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| format!("spec.ignoreApplicationDifferences[{i}]: {e}"))?;
                Ok(IgnoredFields {
                    name: rule.name.clone(),
                    json_pointers: rule.json_pointers.clone(),
                    jq,
                })
            })
            .collect()
    }

    fn applies_to(&self, name: Option<&str>) -> bool {
        self.name.is_none() || self.name.as_deref() == name
    }

    /// Makes `want` carry `have`'s values at the ignored fields (and lack what `have`
    /// lacks there).
    fn keep_live(&self, want: &mut Value, have: &Value) {
        for pointer in &self.json_pointers {
            let pointer = pointer.trim_end_matches('/');
            match have.pointer(pointer) {
                Some(live) => set_pointer(want, pointer, live.clone()),
                None => remove_pointer(want, pointer),
            }
        }
        for expr in &self.jq {
            for path in expr.paths(want) {
                if jq::get(have, &path).is_none() {
                    jq::delete(want, &path);
                }
            }
            let mut paths = expr.paths(have);
            // Set outer items first, so that a list grows in order.
            paths.reverse();
            for path in paths {
                if let Some(live) = jq::get(have, &path) {
                    jq::set(want, &path, live.clone());
                }
            }
        }
    }
}

/// What one reconcile should do.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Applications to create (server-side apply of a new object).
    pub create: Vec<Application>,
    /// Applications to update (server-side apply over an existing object).
    pub update: Vec<Application>,
    /// Names to delete now.
    pub delete: Vec<String>,
    /// Names that would be deleted but are held by the deletion budget.
    pub held: Vec<String>,
    /// The budget that held them (for the condition message).
    pub held_limit: usize,
    /// Desired names that exist but belong to another controller: `(name, owner)`.
    pub conflicts: Vec<(String, String)>,
    /// Desired Applications already up to date.
    pub unchanged: usize,
}

impl Plan {
    /// True when executing the plan writes nothing.
    pub fn is_noop(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Plans the writes that make `live` match `desired`.
///
/// * `desired`: the valid generated Applications (namespace already forced);
/// * `keep`: names that were generated but failed validation; never deleted;
/// * `live`: every Application in the ApplicationSet's namespace.
pub fn plan<L: Borrow<Application>>(
    desired: Vec<Application>,
    keep: &BTreeSet<String>,
    live: &[L],
    policy: &PlanPolicy<'_>,
) -> Plan {
    // `live` is borrowed straight from the cache (`Arc`s): at 10,000 Applications a copy
    // would be tens of MiB per reconcile.
    let live: Vec<&Application> = live.iter().map(Borrow::borrow).collect();
    let live_by_name: BTreeMap<&str, &Application> = live
        .iter()
        .filter_map(|a| a.metadata.name.as_deref().map(|n| (n, *a)))
        .collect();
    let mut out = Plan::default();

    if policy.sync.allows_delete() {
        let wanted: BTreeSet<&str> = desired
            .iter()
            .filter_map(|a| a.metadata.name.as_deref())
            .chain(keep.iter().map(String::as_str))
            .collect();
        let owned: Vec<&Application> = live
            .iter()
            .copied()
            .filter(|a| is_owned_by(a, &policy.owner))
            .collect();
        // Sorted: `live` comes from a cache in no particular order, and the held names
        // end up in a condition message, which must not change between reconciles.
        let mut stale: Vec<String> = owned
            .iter()
            .filter(|a| a.metadata.deletion_timestamp.is_none())
            .filter_map(|a| a.metadata.name.clone())
            .filter(|n| !wanted.contains(n.as_str()))
            .collect();
        stale.sort();
        let limit = policy.budget.limit(owned.len());
        if stale.len() > limit && !policy.deletions_approved {
            out.held = stale;
            out.held_limit = limit;
        } else {
            out.delete = stale;
        }
    }

    // The desired Applications move into the plan, not copies: a cold create plans
    // 10,000 of them, ~1 KiB each before their strings, and a growing `Vec` of them
    // would briefly hold twice its size.
    let is_new = |a: &&Application| {
        a.metadata
            .name
            .as_deref()
            .is_some_and(|n| !live_by_name.contains_key(n))
    };
    out.create = Vec::with_capacity(desired.iter().filter(is_new).count());
    for want in desired {
        let Some(name) = want.metadata.name.as_deref() else {
            continue;
        };
        let Some(have) = live_by_name.get(name).copied() else {
            out.create.push(with_owner(want, &policy.owner));
            continue;
        };
        if let Some(other) = foreign_controller(have, &policy.owner) {
            out.conflicts
                .push((want.metadata.name.clone().unwrap_or_default(), other));
            continue;
        }
        let adopted = !is_owned_by(have, &policy.owner);
        let wanted = with_owner(keep_live_fields(want, have, policy), &policy.owner);
        if !policy.sync.allows_update() && !adopted {
            out.unchanged += 1;
        } else if adopted || needs_apply(&wanted, have) {
            out.update.push(wanted);
        } else {
            out.unchanged += 1;
        }
    }
    out
}

/// True when `app` has a controller ownerReference to `owner` (by kind, name and uid).
pub fn is_owned_by(app: &Application, owner: &OwnerReference) -> bool {
    controller_ref(app)
        .is_some_and(|r| r.kind == owner.kind && r.name == owner.name && r.uid == owner.uid)
}

fn controller_ref(app: &Application) -> Option<&OwnerReference> {
    app.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// The `kind/name` of another controller that owns `app`, if any.
fn foreign_controller(app: &Application, owner: &OwnerReference) -> Option<String> {
    let r = controller_ref(app)?;
    (!is_owned_by(app, owner)).then(|| format!("{}/{}", r.kind, r.name))
}

fn with_owner(mut app: Application, owner: &OwnerReference) -> Application {
    app.metadata.owner_references = Some(vec![owner.clone()]);
    app.metadata.resource_version = None;
    app.metadata.managed_fields = None;
    app
}

/// Builds the owner reference of an ApplicationSet.
pub fn owner_reference(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_owned(),
        kind: "ApplicationSet".to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Applies the "keep live values" rules: preserved labels/annotations and ignored pointers.
fn keep_live_fields(
    mut want: Application,
    have: &Application,
    policy: &PlanPolicy<'_>,
) -> Application {
    keep_keys(
        &mut want.metadata.labels,
        have.metadata.labels.as_ref(),
        policy.preserved_labels,
    );
    keep_keys(
        &mut want.metadata.annotations,
        have.metadata.annotations.as_ref(),
        policy.preserved_annotations,
    );
    let name = want.metadata.name.clone();
    let rules: Vec<&IgnoredFields> = policy
        .ignored
        .iter()
        .filter(|r| r.applies_to(name.as_deref()))
        .collect();
    if rules.is_empty() {
        return want;
    }
    let (Ok(mut want_json), Ok(have_json)) =
        (serde_json::to_value(&want), serde_json::to_value(have))
    else {
        return want;
    };
    for rule in rules {
        rule.keep_live(&mut want_json, &have_json);
    }
    // As Argo CD: an ignore rule never renames or moves the Application.
    match serde_json::from_value::<Application>(want_json) {
        Ok(mut kept) => {
            kept.metadata.name = name;
            kept.metadata.namespace = want.metadata.namespace;
            kept
        }
        Err(_) => want,
    }
}

fn keep_keys(
    want: &mut Option<BTreeMap<String, String>>,
    have: Option<&BTreeMap<String, String>>,
    preserved: &BTreeSet<String>,
) {
    let Some(have) = have else { return };
    for key in preserved {
        if let Some(v) = have.get(key) {
            want.get_or_insert_with(BTreeMap::new)
                .insert(key.clone(), v.clone());
        }
    }
}

fn set_pointer(doc: &mut Value, pointer: &str, value: Value) {
    let mut parts: Vec<String> = pointer.split('/').skip(1).map(unescape).collect();
    let Some(last) = parts.pop() else { return };
    let mut cur = doc;
    for part in parts {
        let Value::Object(o) = cur else { return };
        cur = o
            .entry(part)
            .or_insert_with(|| Value::Object(Default::default()));
    }
    if let Value::Object(o) = cur {
        o.insert(last, value);
    }
}

fn remove_pointer(doc: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(Value::Object(o)) = doc.pointer_mut(parent) {
        o.remove(&unescape(last));
    }
}

fn unescape(part: &str) -> String {
    part.replace("~1", "/").replace("~0", "~")
}

/// True when server-side applying `want` would change `have` (see [`argosy_sync_engine::ssa`];
/// Application lists are atomic: Argo CD's types carry no server defaults inside items).
pub fn needs_apply(want: &Application, have: &Application) -> bool {
    let (Ok(mut want_fields), Ok(have_json)) =
        (serde_json::to_value(want), serde_json::to_value(have))
    else {
        return true;
    };
    for transient in ["status", "operation"] {
        if let Some(o) = want_fields.as_object_mut() {
            o.remove(transient);
        }
    }
    if let Some(meta) = want_fields
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    {
        meta.retain(|k, _| {
            matches!(
                k.as_str(),
                "labels" | "annotations" | "finalizers" | "ownerReferences"
            )
        });
    }
    ssa::needs_apply(
        &want_fields,
        &have_json,
        ssa::owned_fields(have.metadata.managed_fields.as_deref()).as_deref(),
        ssa::Lists::Atomic,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
    use serde_json::json;

    fn app(name: &str, path: &str) -> Application {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "argocd", "labels": {"team": "a"}},
            "spec": {"project": "default", "source": {"repoURL": "https://r", "path": path},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"}}
        }))
        .unwrap()
    }

    fn owner() -> OwnerReference {
        owner_reference("set", "uid-1")
    }

    fn live(name: &str, path: &str) -> Application {
        with_owner(app(name, path), &owner())
    }

    struct Fixture {
        labels: BTreeSet<String>,
        annotations: BTreeSet<String>,
        ignored: Vec<IgnoredFields>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                labels: BTreeSet::new(),
                annotations: BTreeSet::new(),
                ignored: Vec::new(),
            }
        }
        fn policy(&self, sync: ApplicationsSync) -> PlanPolicy<'_> {
            PlanPolicy {
                owner: owner(),
                sync,
                budget: DeletionBudget::default(),
                deletions_approved: false,
                preserved_labels: &self.labels,
                preserved_annotations: &self.annotations,
                ignored: &self.ignored,
            }
        }
    }

    fn names(apps: &[Application]) -> Vec<&str> {
        apps.iter()
            .filter_map(|a| a.metadata.name.as_deref())
            .collect()
    }

    #[test]
    fn creates_missing_updates_changed_and_deletes_stale() {
        let f = Fixture::new();
        let desired = [app("a", "p"), app("b", "new")];
        let live = [live("b", "old"), live("c", "p")];
        let p = plan(
            desired.to_vec(),
            &BTreeSet::new(),
            &live,
            &f.policy(ApplicationsSync::Sync),
        );
        assert_eq!(names(&p.create), ["a"]);
        assert_eq!(names(&p.update), ["b"]);
        assert_eq!(p.delete, ["c"]);
        assert_eq!(
            p.create[0].metadata.owner_references.as_ref().unwrap()[0].uid,
            "uid-1"
        );
    }

    #[test]
    fn unchanged_apps_plan_no_writes() {
        let f = Fixture::new();
        let desired = [app("a", "p")];
        let mut have = live("a", "p");
        // Fields set by the API server or other managers do not count as a change.
        have.metadata.resource_version = Some("42".into());
        have.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("other".into(), "x".into());
        let p = plan(
            desired.to_vec(),
            &BTreeSet::new(),
            &[have],
            &f.policy(ApplicationsSync::Sync),
        );
        assert!(p.is_noop(), "{p:?}");
        assert_eq!(p.unchanged, 1);
    }

    #[test]
    fn dropping_an_owned_field_is_a_change() {
        let f = Fixture::new();
        let mut have = live("a", "p");
        have.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some(ssa::FIELD_MANAGER.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(
                json!({"f:metadata": {"f:labels": {"f:team": {}, "f:gone": {}}}}),
            )),
            ..Default::default()
        }]);
        have.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("gone".into(), "1".into());
        let p = plan(
            vec![app("a", "p")],
            &BTreeSet::new(),
            &[have],
            &f.policy(ApplicationsSync::Sync),
        );
        assert_eq!(names(&p.update), ["a"]);
    }

    #[test]
    fn policies_gate_updates_and_deletes() {
        let f = Fixture::new();
        let desired = [app("b", "new")];
        let live = [live("b", "old"), live("c", "p")];
        let only = plan(
            desired.to_vec(),
            &BTreeSet::new(),
            &live,
            &f.policy(ApplicationsSync::CreateOnly),
        );
        assert!(only.update.is_empty() && only.delete.is_empty());
        let cu = plan(
            desired.to_vec(),
            &BTreeSet::new(),
            &live,
            &f.policy(ApplicationsSync::CreateUpdate),
        );
        assert_eq!(names(&cu.update), ["b"]);
        assert!(cu.delete.is_empty());
        let cd = plan(
            desired.to_vec(),
            &BTreeSet::new(),
            &live,
            &f.policy(ApplicationsSync::CreateDelete),
        );
        assert!(cd.update.is_empty());
        assert_eq!(cd.delete, ["c"]);
    }

    #[test]
    fn invalid_generated_apps_are_kept() {
        let f = Fixture::new();
        let live = [live("broken", "p")];
        let keep = BTreeSet::from(["broken".to_owned()]);
        let p = plan(Vec::new(), &keep, &live, &f.policy(ApplicationsSync::Sync));
        assert!(p.delete.is_empty() && p.held.is_empty());
    }

    #[test]
    fn budget_holds_mass_deletion_until_approved() {
        let f = Fixture::new();
        let live: Vec<Application> = (0..50).map(|i| live(&format!("app-{i:02}"), "p")).collect();
        let p = plan(
            Vec::new(),
            &BTreeSet::new(),
            &live,
            &f.policy(ApplicationsSync::Sync),
        );
        assert!(p.delete.is_empty());
        assert_eq!(p.held.len(), 50);
        assert_eq!(p.held_limit, 10, "20% of 50");

        let mut approved = f.policy(ApplicationsSync::Sync);
        approved.deletions_approved = true;
        assert_eq!(
            plan(Vec::new(), &BTreeSet::new(), &live, &approved)
                .delete
                .len(),
            50
        );

        // Within budget: 10 of 50 go at once.
        let desired: Vec<Application> =
            (10..50).map(|i| app(&format!("app-{i:02}"), "p")).collect();
        let p = plan(
            desired.to_vec(),
            &BTreeSet::new(),
            &live,
            &f.policy(ApplicationsSync::Sync),
        );
        assert_eq!(p.delete.len(), 10);
        assert!(p.held.is_empty());
    }

    #[test]
    fn held_and_deleted_names_are_sorted_whatever_the_cache_order() {
        let f = Fixture::new();
        let live: Vec<Application> = [7, 2, 9, 0, 4, 1, 8, 3, 6, 5]
            .iter()
            .map(|i| live(&format!("app-{i}"), "p"))
            .collect();
        let sorted: Vec<String> = (0..10).map(|i| format!("app-{i}")).collect();
        let held = plan(
            Vec::new(),
            &BTreeSet::new(),
            &live,
            &f.policy(ApplicationsSync::Sync),
        );
        assert_eq!(held.held, sorted);
        let mut approved = f.policy(ApplicationsSync::Sync);
        approved.deletions_approved = true;
        assert_eq!(
            plan(Vec::new(), &BTreeSet::new(), &live, &approved).delete,
            sorted
        );
    }

    #[test]
    fn budget_parsing_and_limits() {
        assert_eq!(DeletionBudget::default().limit(3), 5);
        assert_eq!(DeletionBudget::default().limit(100), 20);
        assert_eq!(DeletionBudget::parse("30%").unwrap().limit(10), 3);
        assert_eq!(DeletionBudget::parse("7").unwrap().limit(1000), 7);
        assert!(DeletionBudget::parse("lots").is_err());
        assert!(DeletionBudget::parse("150%").is_err());
    }

    #[test]
    fn foreign_owner_is_a_conflict_and_unowned_is_adopted() {
        let f = Fixture::new();
        let mut foreign = app("a", "p");
        foreign.metadata.owner_references = Some(vec![owner_reference("other-set", "uid-2")]);
        let unowned = app("b", "p");
        let p = plan(
            vec![app("a", "p"), app("b", "p")],
            &BTreeSet::new(),
            &[foreign, unowned],
            &f.policy(ApplicationsSync::Sync),
        );
        assert_eq!(
            p.conflicts,
            [("a".to_owned(), "ApplicationSet/other-set".to_owned())]
        );
        assert_eq!(
            names(&p.update),
            ["b"],
            "adoption writes the owner reference"
        );
    }

    #[test]
    fn preserved_keys_and_ignored_pointers_keep_live_values() {
        let mut f = Fixture::new();
        f.annotations.insert("note".into());
        f.ignored.push(IgnoredFields {
            json_pointers: vec!["/spec/source/path".into()],
            ..IgnoredFields::default()
        });
        let mut have = live("a", "live-path");
        have.metadata.annotations = Some(BTreeMap::from([("note".into(), "live".into())]));
        let p = plan(
            vec![app("a", "git-path")],
            &BTreeSet::new(),
            &[have],
            &f.policy(ApplicationsSync::Sync),
        );
        assert!(p.is_noop(), "only ignored/preserved fields differ: {p:?}");
    }

    #[test]
    fn ignored_jq_paths_and_named_rules_keep_live_values() {
        let with_params = |name: &str, revision: &str, replicas: &str| {
            let mut a = app(name, "p");
            let source = a.spec.source.as_mut().unwrap();
            source.target_revision = revision.to_owned();
            source.helm = Some(json!({"parameters": [
                {"name": "image", "value": "v1"}, {"name": "replicas", "value": replicas}]}));
            a
        };
        let mut f = Fixture::new();
        // People may pin app `a` to a revision by hand, and scale any app themselves.
        f.ignored = IgnoredFields::compile(&[
            serde_json::from_value(json!({"name": "a",
                "jsonPointers": ["/spec/source/targetRevision"]}))
            .unwrap(),
            serde_json::from_value(json!({"jqPathExpressions": [
                ".spec.source.helm.parameters[] | select(.name == \"replicas\") | .value"]}))
            .unwrap(),
        ])
        .unwrap();
        let desired = vec![with_params("a", "HEAD", "2"), with_params("b", "HEAD", "2")];
        let live = [
            with_owner(with_params("a", "v1.2.0", "5"), &owner()),
            with_owner(with_params("b", "HEAD", "7"), &owner()),
        ];
        let p = plan(
            desired.clone(),
            &BTreeSet::new(),
            &live,
            &f.policy(ApplicationsSync::Sync),
        );
        assert!(p.is_noop(), "only ignored fields differ: {p:?}");

        // The named rule is `a`'s only: `b` pinned by hand is put back.
        let live_b_pinned = [
            with_owner(with_params("a", "v1.2.0", "5"), &owner()),
            with_owner(with_params("b", "v1.2.0", "7"), &owner()),
        ];
        let p = plan(
            desired,
            &BTreeSet::new(),
            &live_b_pinned,
            &f.policy(ApplicationsSync::Sync),
        );
        assert_eq!(names(&p.update), ["b"]);
        let source = p.update[0].spec.source.as_ref().unwrap();
        assert_eq!(source.target_revision, "HEAD");
        assert_eq!(source.helm.as_ref().unwrap()["parameters"][1]["value"], "7");

        let refused = IgnoredFields::compile(&[serde_json::from_value(
            json!({"jqPathExpressions": [".spec | repeat(.)"]}),
        )
        .unwrap()]);
        assert!(
            refused
                .unwrap_err()
                .contains("ignoreApplicationDifferences[0]")
        );
    }

    #[test]
    fn unknown_policy_is_a_user_error() {
        assert!(ApplicationsSync::parse(Some("delete-everything")).is_err());
        assert_eq!(
            ApplicationsSync::parse(None).unwrap(),
            ApplicationsSync::Sync
        );
    }
}
