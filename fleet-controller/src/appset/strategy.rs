//! `spec.strategy` and Argosy's rollout annotations, read into a [`Strategy`]. Pure.
//!
//! Argo CD runs a progressive sync only for `type: RollingSync` with at least one step
//! (`applicationset/progressivesync/progressive_sync.go`, `RollingSyncStrategyEnabled`);
//! every other known strategy updates all Applications at once. An unknown `type` or a
//! strategy of the wrong shape is refused (a condition and an Event; no Application
//! created, updated or deleted) rather than ignored: an imported ApplicationSet that
//! relies on a rollout must never update every customer at once by accident.
//!
//! Argosy's additions to a RollingSync live in annotations Argo CD ignores (its CRD would
//! prune unknown fields under `spec.strategy`):
//!
//! | annotation | value | meaning |
//! |---|---|---|
//! | `argosy.io/rollout-bake-time` | `5m`, or `1m,10m,0s` per step (the last repeats) | a step's Applications stay Healthy this long before the next step starts |
//! | `argosy.io/rollout-failure-budget` | `0`, `2` or `25%` of the step | more failed Applications (Degraded, or their sync failed) than this halt the rollout; absent: Argo CD's behaviour, wait for Healthy forever |
//! | `argosy.io/rollout-rollback` | `false` | do not roll back on a halt (default: roll back) |
//! | `argosy.io/rollout-paused` | `true` | start no new sync (`argosy rollout pause`) |
//! | `argosy.io/rollout-abort` | a request id (a timestamp) | halt and roll back, once per id (`argosy rollout abort`) |
//! | `argosy.io/rollout-retry` | a request id | end a halt and start the failed step again, once per id (`argosy rollout retry`) |

use std::collections::BTreeMap;
use std::time::Duration;

use argosy_crds::duration::GoDuration;
use serde_json::Value;

/// Annotation: bake time, one for every step or a comma-separated list per step.
pub const BAKE_TIME_ANNOTATION: &str = "argosy.io/rollout-bake-time";
/// Annotation: how many failed Applications of a step halt the rollout.
pub const FAILURE_BUDGET_ANNOTATION: &str = "argosy.io/rollout-failure-budget";
/// Annotation: `"false"` keeps a halted rollout's Applications where they are.
pub const ROLLBACK_ANNOTATION: &str = "argosy.io/rollout-rollback";
/// Annotation: `"true"` pauses the rollout.
pub const PAUSED_ANNOTATION: &str = "argosy.io/rollout-paused";
/// Annotation: a request to abort (value: a request id, acted on once).
pub const ABORT_ANNOTATION: &str = "argosy.io/rollout-abort";
/// Annotation: a request to retry a halted rollout (value: a request id, acted on once).
pub const RETRY_ANNOTATION: &str = "argosy.io/rollout-retry";

/// What the ApplicationSet's strategy asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Strategy {
    /// Every Application is created, updated and synced at once (Argo CD's default).
    AllAtOnce,
    /// A progressive sync over labelled steps.
    RollingSync(RollingSync),
}

/// `strategy.rollingSync` with at least one step, plus Argosy's options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RollingSync {
    pub steps: Vec<Step>,
    /// `deletionOrder: Reverse` (case-insensitive, as Argo CD compares it).
    pub reverse_deletion: bool,
    pub options: RolloutOptions,
}

/// One `rollingSync.steps[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub match_expressions: Vec<MatchExpression>,
    /// `maxUpdate`; `None` is 100%.
    pub max_update: Option<MaxUpdate>,
}

/// One `matchExpressions[]` entry (only `In` and `NotIn` are valid, as in Argo CD).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MatchExpression {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// `maxUpdate`: Kubernetes' int-or-string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MaxUpdate {
    Count(i64),
    /// A string; a percentage when it parses as one (`"50%"`).
    Text(String),
}

/// Argosy's options of a RollingSync (the annotations in the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RolloutOptions {
    /// Bake time per step (the last entry repeats); empty: none.
    pub bake: Vec<Duration>,
    pub failure_budget: Option<FailureBudget>,
    pub rollback: bool,
    pub paused: bool,
    pub abort_request: Option<String>,
    pub retry_request: Option<String>,
}

/// How many failed Applications of a step are tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureBudget {
    Count(usize),
    Percent(usize),
}

impl FailureBudget {
    /// The number of failures tolerated in a step of `apps` Applications.
    pub fn tolerated(self, apps: usize) -> usize {
        match self {
            Self::Count(n) => n,
            Self::Percent(p) => apps * p / 100,
        }
    }
}

impl RolloutOptions {
    /// The bake time of 0-based step `index`.
    pub fn bake_time(&self, index: usize) -> Duration {
        self.bake
            .get(index)
            .or(self.bake.last())
            .copied()
            .unwrap_or_default()
    }
}

/// Reads `spec.strategy` and the rollout annotations; the error is the condition message
/// of a strategy that cannot be honoured (nothing is reconciled then).
pub(crate) fn parse(
    strategy: Option<&Value>,
    annotations: &BTreeMap<String, String>,
) -> Result<Strategy, String> {
    let strategy = match strategy {
        None | Some(Value::Null) => return Ok(Strategy::AllAtOnce),
        Some(Value::Object(fields)) => fields,
        Some(other) => return Err(format!("spec.strategy must be an object, not {other}")),
    };
    let kind = match strategy.get("type") {
        None | Some(Value::Null) => "",
        Some(Value::String(kind)) => kind.as_str(),
        Some(other) => return Err(format!("spec.strategy.type must be a string, not {other}")),
    };
    match kind {
        "" | "AllAtOnce" => Ok(Strategy::AllAtOnce),
        "RollingSync" => {
            let steps = match strategy.get("rollingSync").and_then(|r| r.get("steps")) {
                None | Some(Value::Null) => return Ok(Strategy::AllAtOnce),
                Some(Value::Array(steps)) => steps,
                Some(other) => {
                    return Err(format!(
                        "spec.strategy.rollingSync.steps must be a list, not {other}"
                    ));
                }
            };
            if steps.is_empty() {
                // Argo CD runs a RollingSync without steps all at once too.
                return Ok(Strategy::AllAtOnce);
            }
            let steps = steps
                .iter()
                .enumerate()
                .map(|(i, step)| {
                    parse_step(step)
                        .map_err(|e| format!("spec.strategy.rollingSync.steps[{i}]: {e}"))
                })
                .collect::<Result<Vec<Step>, String>>()?;
            let reverse_deletion = strategy
                .get("deletionOrder")
                .and_then(Value::as_str)
                .is_some_and(|order| order.eq_ignore_ascii_case("Reverse"));
            Ok(Strategy::RollingSync(RollingSync {
                steps,
                reverse_deletion,
                options: parse_options(annotations)?,
            }))
        }
        other => Err(format!(
            "spec.strategy.type {other:?} is not a strategy Argo CD or Argosy knows \
             (AllAtOnce, RollingSync): the ApplicationSet is not reconciled"
        )),
    }
}

fn parse_step(step: &Value) -> Result<Step, String> {
    let expressions = match step.get("matchExpressions") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(format!("matchExpressions must be a list, not {other}")),
    };
    let match_expressions = expressions
        .iter()
        .map(|e| {
            let text = |field: &str| match e.get(field) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(format!(
                    "matchExpressions[].{field} must be a string, not {other}"
                )),
            };
            let values = match e.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(values)) => values
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(format!(
                            "matchExpressions[].values must be strings, not {other}"
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => {
                    return Err(format!(
                        "matchExpressions[].values must be a list, not {other}"
                    ));
                }
            };
            Ok(MatchExpression {
                key: text("key")?,
                operator: text("operator")?,
                values,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let max_update = match step.get("maxUpdate") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(MaxUpdate::Count(
            n.as_i64()
                .ok_or_else(|| format!("maxUpdate {n} is not an integer"))?,
        )),
        Some(Value::String(s)) => Some(MaxUpdate::Text(s.clone())),
        Some(other) => {
            return Err(format!(
                "maxUpdate must be a number or a percentage, not {other}"
            ));
        }
    };
    Ok(Step {
        match_expressions,
        max_update,
    })
}

fn parse_options(annotations: &BTreeMap<String, String>) -> Result<RolloutOptions, String> {
    let bake = annotations
        .get(BAKE_TIME_ANNOTATION)
        .map(|value| {
            value
                .split(',')
                .map(|part| {
                    GoDuration::parse(part.trim())
                        .map(GoDuration::to_std)
                        .map_err(|_| {
                            format!(
                                "annotation {BAKE_TIME_ANNOTATION}: {:?} is not a duration like \"5m\" (one, or one per step separated by commas)",
                                part.trim()
                            )
                        })
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .transpose()?
        .unwrap_or_default();
    let failure_budget = annotations
        .get(FAILURE_BUDGET_ANNOTATION)
        .map(|value| {
            let bad = || {
                format!(
                    "annotation {FAILURE_BUDGET_ANNOTATION}: {value:?} is not a count like \"0\" or a percentage like \"25%\""
                )
            };
            match value.trim().strip_suffix('%') {
                Some(p) => p
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|p| *p <= 100)
                    .map(FailureBudget::Percent)
                    .ok_or_else(bad),
                None => value.trim().parse().map(FailureBudget::Count).map_err(|_| bad()),
            }
        })
        .transpose()?;
    let flag = |key: &str, default: bool| -> Result<bool, String> {
        match annotations.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!(
                "annotation {key}: {other:?} is neither \"true\" nor \"false\""
            )),
        }
    };
    let request = |key: &str| {
        annotations
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    Ok(RolloutOptions {
        bake,
        failure_budget,
        rollback: flag(ROLLBACK_ANNOTATION, true)?,
        paused: flag(PAUSED_ANNOTATION, false)?,
        abort_request: request(ABORT_ANNOTATION),
        retry_request: request(RETRY_ANNOTATION),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn no_annotations() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn all_at_once_is_the_default_and_a_rolling_sync_without_steps() {
        for strategy in [
            None,
            Some(json!(null)),
            Some(json!({})),
            Some(json!({"type": "AllAtOnce"})),
            // Argo CD runs a RollingSync without steps all at once too.
            Some(json!({"type": "RollingSync"})),
            Some(json!({"type": "RollingSync", "rollingSync": {"steps": []}})),
        ] {
            assert_eq!(
                parse(strategy.as_ref(), &no_annotations()),
                Ok(Strategy::AllAtOnce),
                "{strategy:?}"
            );
        }
    }

    #[test]
    fn a_rolling_sync_is_read_with_its_steps_and_options() {
        let rolling = json!({"type": "RollingSync", "rollingSync": {"steps": [
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["canary"]}]},
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}], "maxUpdate": "50%"},
            {"maxUpdate": 2},
        ]}, "deletionOrder": "reverse"});
        let annotations: BTreeMap<String, String> = [
            (BAKE_TIME_ANNOTATION, "1m, 5m"),
            (FAILURE_BUDGET_ANNOTATION, "25%"),
            (PAUSED_ANNOTATION, "true"),
            (ABORT_ANNOTATION, "2026-12-07T10:00:00Z"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let Ok(Strategy::RollingSync(rs)) = parse(Some(&rolling), &annotations) else {
            panic!("not a rolling sync");
        };
        assert_eq!(rs.steps.len(), 3);
        assert!(rs.reverse_deletion);
        assert_eq!(rs.steps[0].match_expressions[0].values, ["canary"]);
        assert_eq!(rs.steps[1].max_update, Some(MaxUpdate::Text("50%".into())));
        assert_eq!(rs.steps[2].max_update, Some(MaxUpdate::Count(2)));
        let options = &rs.options;
        assert_eq!(options.bake_time(0), Duration::from_secs(60));
        assert_eq!(options.bake_time(1), Duration::from_secs(300));
        assert_eq!(
            options.bake_time(2),
            Duration::from_secs(300),
            "the last repeats"
        );
        assert_eq!(options.failure_budget, Some(FailureBudget::Percent(25)));
        assert_eq!(FailureBudget::Percent(25).tolerated(9), 2);
        assert!(options.paused && options.rollback);
        assert_eq!(
            options.abort_request.as_deref(),
            Some("2026-12-07T10:00:00Z")
        );
        assert_eq!(options.retry_request, None);
    }

    #[test]
    fn an_unknown_or_malformed_strategy_is_refused_never_ignored() {
        let refused = |strategy: Value| parse(Some(&strategy), &no_annotations()).unwrap_err();
        assert_eq!(
            refused(json!({"type": "Canary"})),
            "spec.strategy.type \"Canary\" is not a strategy Argo CD or Argosy knows \
             (AllAtOnce, RollingSync): the ApplicationSet is not reconciled"
        );
        assert!(refused(json!("RollingSync")).contains("must be an object"));
        assert!(refused(json!({"type": 3})).contains("must be a string"));
        assert!(
            refused(json!({"type": "RollingSync", "rollingSync": {"steps": {"a": 1}}}))
                .contains("steps must be a list")
        );
        assert!(
            refused(json!({"type": "RollingSync", "rollingSync": {"steps": [{"maxUpdate": 1.5}]}}))
                .starts_with("spec.strategy.rollingSync.steps[0]: maxUpdate 1.5")
        );
        assert!(
            refused(json!({"type": "RollingSync", "rollingSync": {"steps": [{"matchExpressions": [{"key": 1}]}]}}))
                .contains("must be a string")
        );
    }

    #[test]
    fn bad_rollout_annotations_are_refused_with_their_name() {
        let rolling = json!({"type": "RollingSync", "rollingSync": {"steps": [{}]}});
        for (key, value) in [
            (BAKE_TIME_ANNOTATION, "soon"),
            (FAILURE_BUDGET_ANNOTATION, "101%"),
            (FAILURE_BUDGET_ANNOTATION, "-1"),
            (ROLLBACK_ANNOTATION, "yes"),
        ] {
            let annotations = [(key.to_owned(), value.to_owned())].into_iter().collect();
            let error = parse(Some(&rolling), &annotations).unwrap_err();
            assert!(error.starts_with(&format!("annotation {key}")), "{error}");
        }
    }
}
