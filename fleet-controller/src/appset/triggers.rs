//! Which ApplicationSets a cluster Secret change concerns.
//!
//! Argo CD requeues every ApplicationSet with a cluster generator on any cluster Secret
//! event. Argosy requeues only those whose cluster generators can select the Secret,
//! before or after the change (a relabelled Secret must also reach the ApplicationSets
//! that selected its old labels, so they can drop it). A selector whose values are
//! templated (a Matrix child interpolated per parameter set) cannot be evaluated up
//! front and always counts as a match.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use argosy_crds::{ApplicationSet, Generator};
use argosy_generators::selector::{Selector, Validation};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

type Labels = BTreeMap<String, String>;

/// Remembers each Secret's last labels so a relabel reaches old and new selectors.
#[derive(Default)]
pub struct SecretTrigger {
    last_labels: Mutex<HashMap<String, Labels>>,
}

impl SecretTrigger {
    /// The ApplicationSets (of `appsets`) a change of `secret` concerns.
    pub fn map(
        &self,
        secret: &Secret,
        appsets: &[std::sync::Arc<ApplicationSet>],
    ) -> Vec<ObjectRef<ApplicationSet>> {
        let key = format!(
            "{}/{}",
            secret.namespace().unwrap_or_default(),
            secret.name_any()
        );
        let labels = secret.labels().clone();
        let previous = {
            let mut last = self.last_labels.lock().unwrap_or_else(|e| e.into_inner());
            if secret.metadata.deletion_timestamp.is_some() {
                last.remove(&key)
            } else {
                last.insert(key, labels.clone())
            }
        };
        appsets
            .iter()
            .filter(|a| {
                may_select(a, &labels) || previous.as_ref().is_some_and(|p| may_select(a, p))
            })
            .map(|a| ObjectRef::from_obj(a.as_ref()))
            .collect()
    }
}

/// True if any cluster generator of `appset` could select a Secret with `labels`.
pub fn may_select(appset: &ApplicationSet, labels: &Labels) -> bool {
    appset
        .spec
        .generators
        .iter()
        .any(|g| generator_may_select(g, labels))
}

fn generator_may_select(generator: &Generator, labels: &Labels) -> bool {
    let own = generator
        .clusters
        .as_ref()
        .is_some_and(|c| selector_may_match(c.selector.as_ref(), labels));
    let children = [&generator.matrix, &generator.merge]
        .into_iter()
        .flatten()
        .flat_map(|c| &c.generators)
        .any(|g| generator_may_select(g, labels));
    own || children
}

fn selector_may_match(selector: Option<&LabelSelector>, labels: &Labels) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let templated = serde_json::to_string(selector).map_or(true, |s| s.contains("{{"));
    if templated {
        return true;
    }
    match Selector::compile(selector, &[], Validation::Labels) {
        Ok(s) => s.matches(|k| labels.get(k).map(String::as_str)),
        // An invalid selector fails generation; reconciling reports it.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn appset(name: &str, generators: serde_json::Value) -> Arc<ApplicationSet> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "argocd"},
                "spec": {"generators": generators, "template": {}}
            }))
            .unwrap(),
        )
    }

    /// An ApplicationSet whose cluster generator selects `env: <env>`.
    fn selecting_env(name: &str, env: &str) -> Arc<ApplicationSet> {
        appset(
            name,
            serde_json::json!([{"clusters": {"selector": {"matchLabels": {"env": env}}}}]),
        )
    }

    fn secret(name: &str, labels: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some("argocd".into());
        s.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        );
        s
    }

    fn names(refs: Vec<ObjectRef<ApplicationSet>>) -> Vec<String> {
        refs.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn only_matching_selectors_are_triggered() {
        let sets = [
            selecting_env("prod", "prod"),
            selecting_env("dev", "dev"),
            appset("all", serde_json::json!([{"clusters": {}}])),
            appset("list-only", serde_json::json!([{"list": {"elements": []}}])),
            appset(
                "nested",
                serde_json::json!([{"matrix": {"generators": [
                    {"list": {"elements": []}},
                    {"clusters": {"selector": {"matchLabels": {"env": "{{.env}}"}}}}
                ]}}]),
            ),
        ];
        let trigger = SecretTrigger::default();
        let hit = names(trigger.map(&secret("c1", &[("env", "prod")]), &sets));
        assert_eq!(hit, ["prod", "all", "nested"]);
    }

    #[test]
    fn relabel_reaches_old_and_new_selectors() {
        let sets = [selecting_env("prod", "prod"), selecting_env("dev", "dev")];
        let trigger = SecretTrigger::default();
        assert_eq!(
            names(trigger.map(&secret("c1", &[("env", "prod")]), &sets)),
            ["prod"]
        );
        assert_eq!(
            names(trigger.map(&secret("c1", &[("env", "dev")]), &sets)),
            ["prod", "dev"]
        );
        assert_eq!(
            names(trigger.map(&secret("c1", &[("env", "dev")]), &sets)),
            ["dev"]
        );
    }
}
