//! `kube::Resource` for the Argo CD kinds.
//!
//! Written by hand instead of `#[derive(CustomResource)]` because Argo CD's Application
//! carries a top-level `operation` field next to `spec`/`status`, which the derive cannot
//! express, and all three kinds should share one code path.

/// Implements `kube::Resource` for a namespaced `argoproj.io/v1alpha1` kind.
macro_rules! argo_resource {
    ($ty:ident, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = kube::core::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $crate::consts::GROUP.into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                $crate::consts::VERSION.into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(
                &mut self,
            ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }

        impl $ty {
            /// The `kind` of this type.
            pub const KIND: &'static str = $kind;

            /// `kind` when a manifest omits it (serde default).
            fn default_kind() -> String {
                Self::KIND.to_owned()
            }
        }
    };
}

pub(crate) use argo_resource;

/// `apiVersion` when a manifest omits it (serde default of every Argo CD kind).
pub(crate) fn default_api_version() -> String {
    crate::consts::API_VERSION.to_owned()
}
