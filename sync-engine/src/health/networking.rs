//! `networking.k8s.io` (and the legacy `extensions`): Ingress.

use serde_json::Value;

use super::core::load_balancer;
use super::fields::Malformed;
use super::verdict::Health;

pub(super) fn ingress(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    load_balancer(obj)
}
