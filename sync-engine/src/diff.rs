//! The text of `argosy app diff`: for each resource the sync engine finds out of sync, a
//! unified diff of the live object against the desired one. Pure: it formats a
//! [`Comparison`] the engine already made.
//!
//! Both sides show what the engine compares, so a diff shows the differences that make a
//! resource `OutOfSync` and not the API server's additions: `status` and server-populated
//! metadata are left out (metadata keeps name, namespace, labels and annotations), and the
//! live object is cut down to the fields the desired one sets plus the fields Argosy's
//! apply owns (`managedFields`) but Git no longer sets, which the next sync removes.
//! Secret values never show: every distinct value becomes a run of `+` of its own length,
//! so a changed key is still visible (Argo CD masks them the same way).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::plan::{DesiredObject, ResourceState, ResourceSync};
use crate::resource::ObjKey;
use crate::ssa;

/// The engine's comparison of an Application with its spec (what `argosy app diff` shows).
pub struct Comparison {
    /// The desired objects, normalized.
    pub desired: Vec<DesiredObject>,
    /// Live objects at the desired keys and every live object the app tracks.
    pub live: BTreeMap<ObjKey, Value>,
    /// The comparison of each resource.
    pub states: Vec<ResourceState>,
    /// What the comparison could not cover (invalid ignore rules, kinds not served yet).
    pub warnings: Vec<String>,
}

/// The diff of one out-of-sync resource.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceDiff {
    /// The resource.
    pub key: ObjKey,
    /// `===== group/Kind namespace/name ======` and a unified diff (`--- live`, `+++ desired`).
    pub text: String,
}

/// One diff per out-of-sync resource of `comparison`, in its order.
#[must_use]
pub fn resource_diffs(comparison: &Comparison) -> Vec<ResourceDiff> {
    comparison
        .states
        .iter()
        .filter(|s| s.sync == ResourceSync::OutOfSync)
        .map(|state| {
            let desired = comparison
                .desired
                .iter()
                .find(|d| d.key == state.key && !state.requires_pruning)
                .map(|d| &d.object);
            let live = comparison.live.get(&state.key).filter(|_| !state.missing);
            let (live_text, desired_text) = shown(&state.key, live, desired);
            let mut text = format!("===== {} ======\n", title(&state.key));
            let unified = similar::TextDiff::from_lines(&live_text, &desired_text)
                .unified_diff()
                .context_radius(3)
                .header("live", "desired")
                .to_string();
            if unified.is_empty() {
                // The engine's comparison is finer than text (a number against its
                // string form, a list item's defaulted key): name its paths.
                // Writing to a String cannot fail.
                let _ = writeln!(text, "differs at: {}", state.differences.join(", "));
            } else {
                text.push_str(&unified);
            }
            ResourceDiff {
                key: state.key.clone(),
                text,
            }
        })
        .collect()
}

/// `apps/Deployment shop/web`, as Argo CD titles a resource diff.
fn title(key: &ObjKey) -> String {
    format!("{}/{} {}/{}", key.group, key.kind, key.namespace, key.name)
}

/// YAML of the live and the desired side ("" for an absent side).
fn shown(key: &ObjKey, live: Option<&Value>, desired: Option<&Value>) -> (String, String) {
    let want = desired.map(view);
    let mut have = live.map(|l| {
        let mut have = view(l);
        // Objects from a watch's list carry no apiVersion and kind.
        if let Some(o) = have.as_object_mut() {
            o.entry("kind").or_insert_with(|| json!(key.kind));
            if let Some(api_version) = want.as_ref().and_then(|w| w.get("apiVersion")) {
                o.entry("apiVersion").or_insert_with(|| api_version.clone());
            }
        }
        match &want {
            Some(w) => project(&have, w, ssa::owned_fields_json(l).as_deref()),
            None => have,
        }
    });
    let mut want = want;
    if key.group.is_empty() && key.kind == "Secret" {
        mask_secret_values(have.as_mut(), want.as_mut());
    }
    let yaml = |v: Option<Value>| {
        v.map(|v| serde_yaml_ng::to_string(&v).unwrap_or_else(|e| format!("# {e}\n")))
            .unwrap_or_default()
    };
    (yaml(have), yaml(want))
}

/// An object without `status` and with only the metadata a manifest sets.
fn view(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                matches!(k.as_str(), "name" | "namespace" | "labels" | "annotations")
            });
        }
    }
    object
}

/// `live` cut down to the fields `want` sets, plus fields Argosy's apply owns (`owned`,
/// a fieldsV1 tree) that `want` no longer sets. List items are compared by position, as
/// the engine does; live items past the wanted ones are kept whole.
fn project(live: &Value, want: &Value, owned: Option<&Value>) -> Value {
    match (live, want) {
        (Value::Object(l), Value::Object(w)) => {
            let mut out = Map::new();
            for (k, lv) in l {
                let owned_child = owned.and_then(|o| o.get(format!("f:{k}")));
                match w.get(k) {
                    Some(wv) => {
                        out.insert(k.clone(), project(lv, wv, owned_child));
                    }
                    None if owned_child.is_some() => {
                        out.insert(k.clone(), lv.clone());
                    }
                    None => {}
                }
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(w)) => Value::Array(
            l.iter()
                .enumerate()
                .map(|(i, lv)| match w.get(i) {
                    Some(wv) => project(lv, wv, None),
                    None => lv.clone(),
                })
                .collect(),
        ),
        _ => live.clone(),
    }
}

/// Replaces Secret `data` and `stringData` values on both sides by masks (a rendered
/// manifest may carry its values in clear): equal values get equal masks.
pub(crate) fn mask_secret_values(live: Option<&mut Value>, desired: Option<&mut Value>) {
    let mut masks: BTreeMap<String, String> = BTreeMap::new();
    for side in [live, desired].into_iter().flatten() {
        for field in ["data", "stringData"] {
            let Some(values) = side.get_mut(field).and_then(Value::as_object_mut) else {
                continue;
            };
            for value in values.values_mut() {
                let key = value.to_string();
                let next = masks.len();
                let mask = masks
                    .entry(key)
                    .or_insert_with(|| "+".repeat(8 + next))
                    .clone();
                *value = json!(mask);
            }
        }
    }
}

#[cfg(test)]
// The fixture builders take `json!` values by value so that the cases read as data.
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;

    use crate::resource::{ResourceOptions, Role};

    fn key(kind: &str, name: &str) -> ObjKey {
        ObjKey {
            group: String::new(),
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    fn state(key: ObjKey, sync: ResourceSync) -> ResourceState {
        ResourceState {
            key,
            sync,
            differences: vec!["/data/k".into()],
            requires_pruning: false,
            missing: false,
            wave: 0,
        }
    }

    fn desired(key: &ObjKey, object: Value) -> DesiredObject {
        DesiredObject {
            key: key.clone(),
            object,
            role: Role::Resource,
            wave: 0,
            options: ResourceOptions::default(),
        }
    }

    fn cm(name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "shop"}, "data": data})
    }

    #[test]
    fn live_is_cut_to_the_wanted_and_owned_fields() {
        let live = json!({
            "metadata": {"name": "web", "uid": "1", "resourceVersion": "7",
                         "labels": {"a": "1", "other": "x"},
                         "managedFields": []},
            "spec": {"replicas": 3, "strategy": {"type": "RollingUpdate"},
                     "ports": [{"port": 80, "protocol": "TCP"}, {"port": 81}],
                     "paused": true},
            "status": {"ready": 1},
        });
        let want = json!({"metadata": {"name": "web", "labels": {"a": "1"}},
                          "spec": {"replicas": 2, "ports": [{"port": 80}]}});
        let owned = json!({"f:spec": {"f:paused": {}, "f:replicas": {}}});
        assert_eq!(
            project(&view(&live), &view(&want), Some(&owned)),
            // Server defaults (strategy, a port's protocol) and others' labels are hidden;
            // the owned but no longer wanted `paused` and the extra port show.
            json!({"metadata": {"name": "web", "labels": {"a": "1"}},
                   "spec": {"replicas": 3, "paused": true,
                            "ports": [{"port": 80}, {"port": 81}]}})
        );
    }

    #[test]
    fn unified_diff_per_out_of_sync_resource() {
        let changed = key("ConfigMap", "a");
        let synced = key("ConfigMap", "b");
        let missing = key("ConfigMap", "c");
        let pruned = key("ConfigMap", "d");
        let mut missing_state = state(missing.clone(), ResourceSync::OutOfSync);
        missing_state.missing = true;
        let mut pruned_state = state(pruned.clone(), ResourceSync::OutOfSync);
        pruned_state.requires_pruning = true;
        let comparison = Comparison {
            desired: vec![
                desired(&changed, cm("a", json!({"k": "v2", "same": "s"}))),
                desired(&synced, cm("b", json!({"k": "v"}))),
                desired(&missing, cm("c", json!({"k": "new"}))),
            ],
            live: BTreeMap::from([
                (changed.clone(), cm("a", json!({"k": "v1", "same": "s"}))),
                (synced.clone(), cm("b", json!({"k": "v"}))),
                (pruned.clone(), cm("d", json!({"k": "old"}))),
            ]),
            states: vec![
                state(changed.clone(), ResourceSync::OutOfSync),
                state(synced, ResourceSync::Synced),
                missing_state,
                pruned_state,
            ],
            warnings: vec![],
        };
        let diffs = resource_diffs(&comparison);
        let keys: Vec<&ObjKey> = diffs.iter().map(|d| &d.key).collect();
        assert_eq!(keys, [&changed, &missing, &pruned]);
        let text = &diffs[0].text;
        assert!(text.starts_with("===== /ConfigMap shop/a ======\n--- live\n+++ desired\n"));
        assert!(text.contains("\n-  k: v1\n+  k: v2\n"), "{text}");
        assert!(text.contains("\n   same: s\n"), "{text}");
        let changed_lines = |text: &str, sign: char| {
            text.lines()
                .filter(|l| l.starts_with(sign) && !l.starts_with("---") && !l.starts_with("+++"))
                .count()
        };
        assert!(diffs[1].text.contains("+  k: new\n"), "{}", diffs[1].text);
        assert_eq!(changed_lines(&diffs[1].text, '-'), 0, "{}", diffs[1].text);
        assert!(diffs[2].text.contains("-  k: old\n"), "{}", diffs[2].text);
        assert_eq!(changed_lines(&diffs[2].text, '+'), 0, "{}", diffs[2].text);
    }

    #[test]
    fn a_live_object_without_type_fields_takes_them_from_the_desired_one() {
        let k = key("ConfigMap", "a");
        let mut live = cm("a", json!({"k": "v"}));
        let o = live.as_object_mut().unwrap();
        o.remove("apiVersion");
        o.remove("kind");
        let (have, want) = shown(&k, Some(&live), Some(&cm("a", json!({"k": "v"}))));
        assert_eq!(have, want);
        let (pruned, _) = shown(&k, Some(&live), None);
        assert!(pruned.contains("kind: ConfigMap\n"), "{pruned}");
    }

    #[test]
    fn text_identical_but_different_names_the_paths() {
        let k = key("ConfigMap", "a");
        let comparison = Comparison {
            desired: vec![desired(&k, cm("a", json!({"k": "v"})))],
            live: BTreeMap::from([(k.clone(), cm("a", json!({"k": "v"})))]),
            states: vec![state(k, ResourceSync::OutOfSync)],
            warnings: vec![],
        };
        assert!(
            resource_diffs(&comparison)[0]
                .text
                .ends_with("differs at: /data/k\n")
        );
    }

    #[test]
    fn secret_values_are_masked_but_changes_show() {
        let k = key("Secret", "s");
        let secret = |data: Value| {
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "s", "namespace": "shop"}, "data": data})
        };
        let (live, want) = shown(
            &k,
            Some(&secret(json!({"user": "YWRtaW4=", "password": "b2xk"}))),
            Some(&secret(json!({"user": "YWRtaW4=", "password": "bmV3"}))),
        );
        for text in [&live, &want] {
            assert!(!text.contains("YWRtaW4=") && !text.contains("b2xk") && !text.contains("bmV3"));
        }
        let line_of = |text: &str, key: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(key))
                .unwrap()
                .to_owned()
        };
        assert_eq!(line_of(&live, "user:"), line_of(&want, "user:"));
        assert_ne!(line_of(&live, "password:"), line_of(&want, "password:"));
    }
}
