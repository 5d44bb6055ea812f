//! `apiextensions.k8s.io`: `CustomResourceDefinition`.

use serde_json::Value;

use super::conditions::status_conditions;
use super::fields::Malformed;
use super::verdict::{Health, HealthCode};

pub(super) fn crd(obj: &Value, _version: &str) -> Result<Health, Malformed> {
    use HealthCode::{Degraded, Healthy, Progressing};
    let conditions = status_conditions(obj)?;
    if conditions.is_empty() {
        return Ok(Health::new(Progressing, "Status conditions not found"));
    }
    let find = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
    if let Some(c) = find("Terminating").filter(|c| c.is_true()) {
        return Ok(Health::new(
            Progressing,
            format!("CRD is being terminated: {}", c.message),
        ));
    }
    if let Some(c) = find("NamesAccepted").filter(|c| c.status == "False") {
        return Ok(Health::new(
            Degraded,
            format!("CRD names have not been accepted: {}", c.message),
        ));
    }
    match find("Established") {
        Some(c) if c.is_true() => {}
        established => {
            return Ok(Health::new(
                Degraded,
                format!(
                    "CRD is not established: {}",
                    established.map(|c| c.message).unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(c) = find("NonStructuralSchema").filter(|c| c.is_true()) {
        return Ok(Health::new(
            Degraded,
            format!("Schema violations found: {}", c.message),
        ));
    }
    Ok(Health::new(Healthy, "CRD is healthy"))
}
