//! Server-side apply bookkeeping shared by the `ApplicationSet` writer and the sync engine:
//! would applying `want` change `have`, and where? Also how much of it a cached object
//! keeps ([`trim_for_cache`]).
//!
//! Two facts decide it. Every field `want` sets must be present and equal in `have`
//! (maps compared by the keys `want` sets, since other managers and the API server's
//! defaulting add more), and every field Argosy's apply owns on `have` (per
//! `managedFields`) must still be wanted: a field we own but no longer send is removed
//! by the next apply, which is a change. Both walks are cheap and need no request, which
//! is how "nothing changed" costs zero API writes.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use serde_json::Value;

/// The field manager Argosy applies with, for Applications and workload objects alike.
pub const FIELD_MANAGER: &str = "argosy";

/// `kubectl apply`'s copy of the whole object, which no cache of Argosy reads.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How lists compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lists {
    /// Elements must match both ways (no server defaults inside; Argo CD's own types).
    Atomic,
    /// Each live element must contain the wanted one at the same index: the API server
    /// defaults fields inside list items (`protocol: TCP`, `imagePullPolicy`, ...).
    Granular,
}

/// JSON-pointer-like paths where `have` does not contain `want`, at most `limit` of them.
/// Empty/null wanted values match absent live ones (serializers omit them), and a wanted
/// number matches a live string of the same text (int-or-string fields, quantities).
#[must_use]
pub fn differences(have: &Value, want: &Value, lists: Lists, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = String::new();
    walk(have, want, lists, &mut path, &mut out, limit);
    out
}

/// True when `have` contains everything `want` sets (see [`differences`]).
#[must_use]
pub fn contains(have: &Value, want: &Value, lists: Lists) -> bool {
    differences(have, want, lists, 1).is_empty()
}

fn walk(
    have: &Value,
    want: &Value,
    lists: Lists,
    path: &mut String,
    out: &mut Vec<String>,
    limit: usize,
) {
    if out.len() >= limit {
        return;
    }
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => {
            for (k, wv) in w {
                let len = path.len();
                path.push('/');
                path.push_str(k);
                match h.get(k) {
                    Some(hv) => walk(hv, wv, lists, path, out, limit),
                    None if is_empty(wv) => {}
                    None => out.push(path.clone()),
                }
                path.truncate(len);
                if out.len() >= limit {
                    return;
                }
            }
        }
        (Value::Array(h), Value::Array(w)) => {
            if h.len() != w.len() {
                out.push(path.clone());
                return;
            }
            for (i, (hv, wv)) in h.iter().zip(w).enumerate() {
                let equal = match lists {
                    Lists::Atomic => contains(hv, wv, lists) && contains(wv, hv, lists),
                    Lists::Granular => contains(hv, wv, lists),
                };
                if !equal {
                    out.push(format!("{path}/{i}"));
                    if out.len() >= limit {
                        return;
                    }
                }
            }
        }
        (Value::Number(h), Value::Number(w)) => {
            if h.as_f64() != w.as_f64() {
                out.push(path.clone());
            }
        }
        (Value::String(h), Value::Number(w)) => {
            if *h != w.to_string() {
                out.push(path.clone());
            }
        }
        (Value::Null, w) if is_empty(w) => {}
        _ => {
            if have != want {
                out.push(path.clone());
            }
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn is_own_apply(entry: &ManagedFieldsEntry) -> bool {
    entry.manager.as_deref() == Some(FIELD_MANAGER) && entry.operation.as_deref() == Some("Apply")
}

/// The `fieldsV1` tree of Argosy's apply entry in `managedFields` (also when
/// [`trim_for_cache`] kept it as JSON text).
pub fn owned_fields(managed: Option<&[ManagedFieldsEntry]>) -> Option<Cow<'_, Value>> {
    match &managed?
        .iter()
        .find(|m| is_own_apply(m))?
        .fields_v1
        .as_ref()?
        .0
    {
        Value::String(text) => serde_json::from_str(text).ok().map(Cow::Owned),
        tree => Some(Cow::Borrowed(tree)),
    }
}

/// Trims the metadata of an object kept in a cache to what Argosy reads of it.
///
/// Other managers' `managedFields` entries only matter to the API server and go; Argosy's
/// own apply entry stays (it tells which fields a new apply would drop), with its
/// `fieldsV1` tree kept as JSON text: a `serde_json` tree allocates a B-tree node of
/// ~640 bytes per JSON object, about 6 KiB for one Application against ~0.5 KiB of text,
/// so 60 MiB of a 10,000-Application cache. `kubectl.kubernetes.io/last-applied-configuration`,
/// a second copy of the object, goes too. A trimmed object is never sent back whole:
/// Argosy writes patches built from its own values.
pub fn trim_for_cache(meta: &mut ObjectMeta) {
    trim_for_cache_keeping(meta, |_| false);
}

/// [`trim_for_cache`], keeping besides Argosy's apply entry the entries of the managers
/// `keep` names (an `ignoreDifferences` rule's `managedFieldsManagers` reads them), also
/// as JSON text.
pub fn trim_for_cache_keeping(meta: &mut ObjectMeta, keep: impl Fn(&str) -> bool) {
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
    if let Some(entries) = meta.managed_fields.as_mut() {
        entries.retain(|e| is_own_apply(e) || e.manager.as_deref().is_some_and(&keep));
        for entry in entries.iter_mut() {
            if let Some(FieldsV1(fields)) = entry.fields_v1.as_mut()
                && !fields.is_string()
            {
                *fields = Value::String(fields.to_string());
            }
        }
        if entries.is_empty() {
            meta.managed_fields = None;
        }
    }
}

/// Paths of the `owned` fieldsV1 tree that `want` no longer sets, at most `limit`.
///
/// `f:name` is a map field; `k:{...}` a list item identified by its key fields (matched
/// against `want`'s items, a key field `want` omits counting as a match because the API
/// server defaulted it, e.g. a port's `protocol`); `v:`/`i:` set members and `.` the node
/// itself are covered by the list comparison in [`differences`].
#[must_use]
pub fn dropped_fields(owned: &Value, want: &Value, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = String::new();
    dropped(owned, want, &mut path, &mut out, limit);
    out
}

fn dropped(owned: &Value, want: &Value, path: &mut String, out: &mut Vec<String>, limit: usize) {
    let Value::Object(fields) = owned else { return };
    for (key, sub) in fields {
        if out.len() >= limit {
            return;
        }
        let len = path.len();
        if let Some(name) = key.strip_prefix("f:") {
            path.push('/');
            path.push_str(name);
            match want.get(name) {
                Some(child) => dropped(sub, child, path, out, limit),
                None => out.push(path.clone()),
            }
        } else if let Some(item_key) = key.strip_prefix("k:") {
            path.push('/');
            path.push_str(item_key);
            let Ok(Value::Object(item_key)) = serde_json::from_str::<Value>(item_key) else {
                path.truncate(len);
                continue;
            };
            let item = want.as_array().and_then(|items| {
                items.iter().find(|item| {
                    item_key
                        .iter()
                        .all(|(k, v)| item.get(k).is_none_or(|iv| contains(iv, v, Lists::Atomic)))
                })
            });
            match item {
                Some(item) => dropped(sub, item, path, out, limit),
                None => out.push(path.clone()),
            }
        }
        path.truncate(len);
    }
}

/// The `fieldsV1` tree of Argosy's apply entry in a live object's JSON `metadata` (also
/// when [`trim_for_cache`] kept it as JSON text).
#[must_use]
pub fn owned_fields_json(object: &Value) -> Option<Cow<'_, Value>> {
    managed_fields_json(object, |m| {
        m.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
            && m.get("operation").and_then(Value::as_str) == Some("Apply")
    })
}

/// The `fieldsV1` tree of `manager`'s first entry in a live object's JSON `metadata`
/// (also as JSON text).
#[must_use]
pub fn fields_of_manager_json<'a>(object: &'a Value, manager: &str) -> Option<Cow<'a, Value>> {
    managed_fields_json(object, |m| {
        m.get("manager").and_then(Value::as_str) == Some(manager)
    })
}

fn managed_fields_json(object: &Value, entry: impl Fn(&Value) -> bool) -> Option<Cow<'_, Value>> {
    match object
        .get("metadata")?
        .get("managedFields")?
        .as_array()?
        .iter()
        .find(|m| entry(m))?
        .get("fieldsV1")?
    {
        Value::String(text) => serde_json::from_str(text).ok().map(Cow::Owned),
        tree => Some(Cow::Borrowed(tree)),
    }
}

/// True when applying `want` (a full object) would change `have` (its live JSON), whose
/// Argosy-owned fields are `owned` (from [`owned_fields`] or [`owned_fields_json`]).
#[must_use]
pub fn needs_apply(want: &Value, have: &Value, owned: Option<&Value>, lists: Lists) -> bool {
    !contains(have, want, lists)
        || owned.is_some_and(|owned| !dropped_fields(owned, want, 1).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn managed(fields: Value) -> Vec<ManagedFieldsEntry> {
        vec![ManagedFieldsEntry {
            manager: Some(FIELD_MANAGER.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }]
    }

    #[test]
    fn server_defaults_inside_list_items_are_not_differences() {
        let want = json!({"spec": {"ports": [{"port": 80}]}});
        let have =
            json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}], "clusterIP": "10.0.0.1"}});
        assert!(contains(&have, &want, Lists::Granular));
        assert!(!contains(&have, &want, Lists::Atomic));
    }

    #[test]
    fn differences_name_the_paths() {
        let want =
            json!({"spec": {"replicas": 2, "template": {"image": "a:2"}}, "data": {"k": "v"}});
        let have = json!({"spec": {"replicas": 3, "template": {"image": "a:2"}}});
        assert_eq!(
            differences(&have, &want, Lists::Granular, 10),
            vec!["/data", "/spec/replicas"]
        );
        assert_eq!(differences(&have, &want, Lists::Granular, 1).len(), 1);
    }

    #[test]
    fn numbers_match_their_string_form_and_empty_matches_absent() {
        let want = json!({"cpu": 1, "port": 8080, "labels": {}, "x": null});
        let have = json!({"cpu": "1", "port": 8080.0});
        assert!(contains(&have, &want, Lists::Granular));
        assert!(!contains(
            &json!({"cpu": "2"}),
            &json!({"cpu": 1}),
            Lists::Granular
        ));
    }

    #[test]
    fn list_length_change_is_a_difference() {
        let want = json!({"env": [{"name": "A"}]});
        let have = json!({"env": [{"name": "A"}, {"name": "B"}]});
        assert_eq!(differences(&have, &want, Lists::Granular, 5), vec!["/env"]);
    }

    #[test]
    fn a_dropped_owned_field_needs_an_apply() {
        let have = json!({"data": {"a": "1", "b": "2"}});
        let want = json!({"data": {"a": "1"}});
        let fields = managed(json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}}));
        let owned = |m: &[ManagedFieldsEntry]| owned_fields(Some(m)).map(Cow::into_owned);
        assert!(needs_apply(
            &want,
            &have,
            owned(&fields).as_ref(),
            Lists::Granular
        ));
        let fields = managed(json!({"f:data": {".": {}, "f:a": {}}}));
        assert!(!needs_apply(
            &want,
            &have,
            owned(&fields).as_ref(),
            Lists::Granular
        ));
        // Another manager's entry is not ours to drop.
        let mut other = managed(json!({"f:data": {"f:b": {}}}));
        other[0].manager = Some("kubectl".into());
        assert!(owned(&other).is_none());
        // The same entry read from a live object's JSON.
        let live = json!({"metadata": {"managedFields": [
            {"manager": "argosy", "operation": "Apply", "fieldsV1": {"f:data": {"f:b": {}}}}]}});
        assert_eq!(
            owned_fields_json(&live).as_deref(),
            Some(&json!({"f:data": {"f:b": {}}}))
        );
    }

    #[test]
    fn a_trimmed_cache_entry_keeps_only_argosy_apply_fields_with_the_same_meaning() {
        let tree = json!({"f:metadata": {"f:labels": {"f:team": {}}}, "f:spec": {"f:a": {}}});
        let mut entries = managed(tree.clone());
        entries.push(ManagedFieldsEntry {
            manager: Some("argocd-application-controller".into()),
            operation: Some("Update".into()),
            fields_v1: Some(FieldsV1(json!({"f:status": {}}))),
            ..Default::default()
        });
        entries.push(ManagedFieldsEntry {
            operation: Some("Update".into()),
            ..managed(json!({"f:spec": {"f:b": {}}})).remove(0)
        });
        let mut meta = ObjectMeta {
            annotations: Some(
                [(LAST_APPLIED_ANNOTATION, "{...}"), ("team", "a")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            managed_fields: Some(entries),
            ..Default::default()
        };
        trim_for_cache(&mut meta);
        let kept = meta.managed_fields.as_deref().unwrap();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].fields_v1.as_ref().unwrap().0.is_string());
        assert_eq!(owned_fields(Some(kept)).unwrap().as_ref(), &tree);
        assert_eq!(
            meta.annotations
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["team"]
        );
        // Trimming twice changes nothing.
        let once = meta.clone();
        trim_for_cache(&mut meta);
        assert_eq!(meta, once);
    }

    #[test]
    fn keyed_list_items_match_by_key_with_defaulted_key_fields() {
        let owned = json!({"f:ports": {
            "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:name": {}}
        }});
        let want = json!({"ports": [{"port": 80, "name": "http"}]});
        assert!(dropped_fields(&owned, &want, 5).is_empty());
        let want_renamed_gone = json!({"ports": [{"port": 80}]});
        assert_eq!(
            dropped_fields(&owned, &want_renamed_gone, 5),
            vec!["/ports/{\"port\":80,\"protocol\":\"TCP\"}/name"]
        );
        let want_other_port = json!({"ports": [{"port": 81, "name": "http"}]});
        assert_eq!(dropped_fields(&owned, &want_other_port, 5).len(), 1);
    }
}
