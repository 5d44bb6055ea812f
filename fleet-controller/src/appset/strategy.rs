//! `spec.strategy`: what Argosy does with an ApplicationSet's rollout strategy today.
//!
//! Argo CD runs a progressive sync only for `type: RollingSync` with at least one step
//! (`applicationset/progressivesync/progressive_sync.go`, `RollingSyncStrategyEnabled`);
//! every other strategy updates all Applications at once, an unknown `type` included.
//! Argosy does not implement RollingSync yet, and an imported ApplicationSet that relies on
//! it must not update every customer at once: such an ApplicationSet is refused (a condition
//! and an Event; no Application created, updated or deleted) until the strategy is removed
//! or Argosy implements it. An unknown `type` is refused too, rather than ignored.
//! Pure: the controller asks [`refusal`] before generating anything.

use serde_json::Value;

/// Why `strategy` (the ApplicationSet's `spec.strategy`) cannot be honoured; `None` when
/// Argosy does what it asks (no strategy, `AllAtOnce`, or a RollingSync without steps,
/// which Argo CD also runs all at once).
pub(crate) fn refusal(strategy: Option<&Value>) -> Option<String> {
    let strategy = match strategy {
        None | Some(Value::Null) => return None,
        Some(Value::Object(fields)) => fields,
        Some(other) => return Some(format!("spec.strategy must be an object, not {other}")),
    };
    let kind = match strategy.get("type") {
        None | Some(Value::Null) => "",
        Some(Value::String(kind)) => kind.as_str(),
        Some(other) => return Some(format!("spec.strategy.type must be a string, not {other}")),
    };
    match kind {
        "" | "AllAtOnce" => None,
        "RollingSync" => {
            let steps = strategy
                .get("rollingSync")
                .and_then(|r| r.get("steps"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            (steps > 0).then(|| {
                format!(
                    "spec.strategy RollingSync ({steps} step{}) is not implemented by Argosy yet: \
                     the ApplicationSet is not reconciled (no Application is created, updated or \
                     deleted) rather than updating every Application at once; remove the strategy \
                     to update them all at once",
                    if steps == 1 { "" } else { "s" }
                )
            })
        }
        other => Some(format!(
            "spec.strategy.type {other:?} is not a strategy Argo CD or Argosy knows \
             (AllAtOnce, RollingSync): the ApplicationSet is not reconciled"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn all_at_once_is_what_argosy_does() {
        for strategy in [
            None,
            Some(json!(null)),
            Some(json!({})),
            Some(json!({"type": "AllAtOnce"})),
            // Argo CD runs a RollingSync without steps all at once too.
            Some(json!({"type": "RollingSync"})),
            Some(json!({"type": "RollingSync", "rollingSync": {"steps": []}})),
        ] {
            assert_eq!(refusal(strategy.as_ref()), None, "{strategy:?}");
        }
    }

    #[test]
    fn a_rolling_sync_or_an_unknown_strategy_is_refused_never_ignored() {
        let rolling = json!({"type": "RollingSync", "rollingSync": {"steps": [
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["canary"]}]},
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}], "maxUpdate": "50%"},
        ]}, "deletionOrder": "Reverse"});
        let message = refusal(Some(&rolling)).unwrap();
        assert!(
            message.starts_with("spec.strategy RollingSync (2 steps) is not implemented"),
            "{message}"
        );
        assert!(message.contains("no Application is created, updated or deleted"));
        assert_eq!(
            refusal(Some(&json!({"type": "Canary"}))).unwrap(),
            "spec.strategy.type \"Canary\" is not a strategy Argo CD or Argosy knows \
             (AllAtOnce, RollingSync): the ApplicationSet is not reconciled"
        );
        assert!(refusal(Some(&json!("RollingSync"))).is_some());
        assert!(refusal(Some(&json!({"type": 3}))).is_some());
    }
}
