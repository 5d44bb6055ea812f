//! The Lua health scripts the sync engine runs: the `--resource-customizations` directory
//! (read once at start) under the overrides users keep in `argocd-cm` (the control plane's
//! ConfigMap store, the one `repo_credentials` reads). A snapshot
//! ([`HealthChecks`]) is built when `argocd-cm` changes and shared until the next change,
//! so an edited script is used by the next reconcile without a restart. Entries that
//! cannot be used are logged once per version of `argocd-cm`, naming their key.

use std::sync::{Arc, Mutex, PoisonError};

use argosy_sync_engine::health::HealthChecks;
use argosy_sync_engine::health::argocd_cm::{self, ARGOCD_CM};
use argosy_sync_engine::health::scripts::BuiltinScripts;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::Store;

/// Where the scripts come from, and the snapshot last built.
#[derive(Clone, Default)]
pub struct HealthCheckRegistry {
    builtins: Arc<BuiltinScripts>,
    /// The control plane's ConfigMaps; `None`: no `argocd-cm` (the CLI, tests).
    config_maps: Option<Store<ConfigMap>>,
    built: Arc<Mutex<Option<Built>>>,
}

struct Built {
    /// `uid/resourceVersion` of the `argocd-cm` it was built from (empty: none).
    version: String,
    checks: Arc<HealthChecks>,
}

impl std::fmt::Debug for HealthCheckRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheckRegistry")
            .field("builtins", &self.builtins.len())
            .field("watches_argocd_cm", &self.config_maps.is_some())
            .finish_non_exhaustive()
    }
}

impl HealthCheckRegistry {
    /// `builtins` (the directory's scripts) under the `argocd-cm` of `config_maps`.
    #[must_use]
    pub fn new(builtins: Arc<BuiltinScripts>, config_maps: Option<Store<ConfigMap>>) -> Self {
        Self {
            builtins,
            config_maps,
            built: Arc::default(),
        }
    }

    /// The scripts as of now: rebuilt when `argocd-cm` changed since the last call.
    #[must_use]
    pub fn current(&self) -> Arc<HealthChecks> {
        let argocd_cm = self.config_maps.as_ref().and_then(|store| {
            store
                .state()
                .into_iter()
                .find(|cm| cm.metadata.name.as_deref() == Some(ARGOCD_CM))
        });
        let version = argocd_cm.as_ref().map_or_else(String::new, |cm| {
            format!(
                "{}/{}",
                cm.metadata.uid.as_deref().unwrap_or_default(),
                cm.metadata.resource_version.as_deref().unwrap_or_default()
            )
        });
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = built.as_ref()
            && b.version == version
        {
            return b.checks.clone();
        }
        let data = argocd_cm.and_then(|cm| cm.data.clone()).unwrap_or_default();
        let (overrides, warnings) = argocd_cm::overrides(&data);
        for warning in &warnings {
            tracing::warn!(key = %warning.key, problem = %warning.problem, "argocd-cm health customization skipped or broken");
        }
        let checks = Arc::new(HealthChecks::new(self.builtins.clone(), overrides));
        *built = Some(Built {
            version,
            checks: checks.clone(),
        });
        checks
    }
}

/// Whether a watch event of the control plane's ConfigMaps touches `argocd-cm` (its health
/// scripts may have changed: every Application's health is assessed again).
#[must_use]
pub fn touches_argocd_cm(event: &kube::runtime::watcher::Event<ConfigMap>) -> bool {
    use kube::runtime::watcher::Event;
    match event {
        Event::Apply(cm) | Event::Delete(cm) | Event::InitApply(cm) => {
            cm.metadata.name.as_deref() == Some(ARGOCD_CM)
        }
        Event::Init | Event::InitDone => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;

    fn argocd_cm(rv: &str, script: &str) -> ConfigMap {
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(ARGOCD_CM.to_owned()),
                uid: Some("u".to_owned()),
                resource_version: Some(rv.to_owned()),
                ..Default::default()
            },
            data: Some(
                [(
                    "resource.customizations.health.example.com_Widget".to_owned(),
                    script.to_owned(),
                )]
                .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn an_edited_script_is_used_without_a_restart() {
        let (reader, mut writer) = store::<ConfigMap>();
        let registry = HealthCheckRegistry::new(Arc::default(), Some(reader));
        assert!(
            registry
                .current()
                .script_for("example.com", "Widget")
                .is_none()
        );
        writer.apply_watcher_event(&Event::Apply(argocd_cm(
            "1",
            "return {status = 'Degraded'}",
        )));
        let first = registry.current();
        let source = |c: &HealthChecks| {
            c.script_for("example.com", "Widget")
                .map(|s| s.source().to_owned())
        };
        assert_eq!(
            source(&first).as_deref(),
            Some("return {status = 'Degraded'}")
        );
        // Unchanged: the same snapshot.
        assert!(Arc::ptr_eq(&first, &registry.current()));
        writer.apply_watcher_event(&Event::Apply(argocd_cm("2", "return {status = 'Healthy'}")));
        assert_eq!(
            source(&registry.current()).as_deref(),
            Some("return {status = 'Healthy'}")
        );
        assert!(touches_argocd_cm(&Event::Apply(argocd_cm("3", ""))));
        assert!(!touches_argocd_cm(&Event::Init));
    }
}
