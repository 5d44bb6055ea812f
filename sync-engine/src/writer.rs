//! The writes a sync and a finalizer make on a destination cluster, as one trait.
//!
//! [`crate::execute`] is written against [`ClusterWriter`] rather than a `kube::Client`, so
//! the order of its requests (waves, hooks, prunes, deletions) is tested with a fake
//! writer and no cluster. [`ClusterConn`] is the real writer: every method is one request
//! through the connection's (fenced) request client.

use std::future::Future;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy,
};
use serde_json::Value;

use crate::clients::{ClusterConn, Scope};
use crate::execute::Reach;
use crate::resource::ObjKey;
use crate::ssa::FIELD_MANAGER;

/// The cluster requests of a sync and of an Application's finalizer. Each method is one
/// request and returns the API server's answer as is: the callers decide what a 404 or
/// a conflict means for their step.
///
/// `reach` says how `key`'s kind is served (resource and scope); an object of a
/// namespaced kind with an empty namespace is addressed cluster-wide, as `kubectl` would.
pub trait ClusterWriter: Send + Sync {
    /// Server-side apply of `object` at `key`, field manager [`FIELD_MANAGER`], conflicts
    /// forced (Argosy owns what it applies).
    fn apply(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &Value,
    ) -> impl Future<Output = kube::Result<DynamicObject>> + Send;

    /// Creates `object` (hooks; `Replace=true` objects that do not exist yet).
    fn create(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &DynamicObject,
    ) -> impl Future<Output = kube::Result<DynamicObject>> + Send;

    /// Replaces (PUT) the object at `key` with `object`, whose `resourceVersion` is the
    /// live one (`Replace=true`).
    fn replace(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &DynamicObject,
    ) -> impl Future<Output = kube::Result<DynamicObject>> + Send;

    /// Deletes the object at `key` with background propagation: the API server deletes
    /// it at once and the garbage collector its dependents.
    fn delete(&self, reach: &Reach, key: &ObjKey) -> impl Future<Output = kube::Result<()>> + Send;

    /// Whether namespace `name` exists.
    fn namespace_exists(&self, name: &str) -> impl Future<Output = kube::Result<bool>> + Send;

    /// Creates namespace `name` by server-side apply (field manager [`FIELD_MANAGER`],
    /// not forced: a namespace someone else manages is left to them).
    fn apply_namespace(&self, name: &str) -> impl Future<Output = kube::Result<()>> + Send;
}

impl ClusterConn {
    fn api_for(&self, reach: &Reach, namespace: &str) -> Api<DynamicObject> {
        match reach.scope {
            Scope::Namespaced if !namespace.is_empty() => {
                Api::namespaced_with(self.client.clone(), namespace, &reach.resource)
            }
            _ => Api::all_with(self.client.clone(), &reach.resource),
        }
    }
}

/// Background propagation.
fn background() -> DeleteParams {
    DeleteParams {
        // Foreground deletion waits on the garbage collector's finalizer; background
        // deletes at once and lets the collector clean up dependents.
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    }
}

impl ClusterWriter for ClusterConn {
    async fn apply(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &Value,
    ) -> kube::Result<DynamicObject> {
        self.api_for(reach, &key.namespace)
            .patch(
                &key.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
    }

    async fn create(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &DynamicObject,
    ) -> kube::Result<DynamicObject> {
        self.api_for(reach, &key.namespace)
            .create(&PostParams::default(), object)
            .await
    }

    async fn replace(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &DynamicObject,
    ) -> kube::Result<DynamicObject> {
        self.api_for(reach, &key.namespace)
            .replace(&key.name, &PostParams::default(), object)
            .await
    }

    async fn delete(&self, reach: &Reach, key: &ObjKey) -> kube::Result<()> {
        self.api_for(reach, &key.namespace)
            .delete(&key.name, &background())
            .await
            .map(|_| ())
    }

    async fn namespace_exists(&self, name: &str) -> kube::Result<bool> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        api.get_opt(name).await.map(|ns| ns.is_some())
    }

    async fn apply_namespace(&self, name: &str) -> kube::Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        api.patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&ns))
            .await
            .map(|_| ())
    }
}
