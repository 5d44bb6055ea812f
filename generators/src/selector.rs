//! Label selectors: the cluster generator's Secret selector and generator post-selectors.
//!
//! Both use `matchLabels` + `matchExpressions` (`In`, `NotIn`, `Exists`, `DoesNotExist`)
//! with Kubernetes semantics (`NotIn` and `DoesNotExist` match a missing key). They
//! differ in validation, as in Argo CD: the cluster selector goes through the standard
//! Kubernetes validation (label values at most 63 characters of a restricted alphabet),
//! while post-selectors (`utils/selector.go`) accept any value, since they match
//! parameters such as server URLs. Keys must be qualified names in both.
//!
//! A selector is compiled once per generator run and then matched against every Secret or
//! parameter set.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Which validation rules a selector is compiled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Kubernetes label selector (cluster Secrets).
    Labels,
    /// Argo CD post-selector: values unrestricted.
    Params,
}

/// A compiled selector. The empty selector matches everything.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// A selector that cannot be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid label selector: {0}")]
pub struct SelectorError(String);

impl Selector {
    /// Compiles `selector`, plus `extra` as additional `matchLabels` entries.
    pub fn compile(
        selector: &LabelSelector,
        extra: &[(&str, &str)],
        validation: Validation,
    ) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        let labels = selector.match_labels.iter().flatten();
        let extra = extra.iter().map(|(k, v)| (*k, *v));
        for (key, value) in labels.map(|(k, v)| (k.as_str(), v.as_str())).chain(extra) {
            requirements.push(Requirement::new(
                key,
                "In",
                vec![value.to_owned()],
                validation,
            )?);
        }
        for expr in selector.match_expressions.iter().flatten() {
            let values = expr.values.clone().unwrap_or_default();
            requirements.push(Requirement::new(
                &expr.key,
                &expr.operator,
                values,
                validation,
            )?);
        }
        Ok(Selector { requirements })
    }

    /// True when the selector has no requirement (matches everything).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether the labels answered by `get` satisfy every requirement.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| {
            let value = get(&r.key);
            match r.op {
                Op::In => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotIn => value.is_none_or(|v| !r.values.iter().any(|x| x == v)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
            }
        })
    }
}

impl Requirement {
    fn new(
        key: &str,
        operator: &str,
        values: Vec<String>,
        validation: Validation,
    ) -> Result<Requirement, SelectorError> {
        validate_qualified_name(key).map_err(|why| SelectorError(format!("key {key:?}: {why}")))?;
        let op = match operator {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            other => {
                return Err(SelectorError(format!(
                    "{other:?} is not a valid label selector operator (In, NotIn, Exists, DoesNotExist)"
                )));
            }
        };
        match op {
            Op::In | Op::NotIn if values.is_empty() => {
                return Err(SelectorError(format!(
                    "key {key:?}: for 'in', 'notin' operators, values set can't be empty"
                )));
            }
            Op::Exists | Op::DoesNotExist if !values.is_empty() => {
                return Err(SelectorError(format!(
                    "key {key:?}: values set must be empty for exists and does not exist"
                )));
            }
            _ => {}
        }
        if validation == Validation::Labels {
            for value in &values {
                validate_label_value(value)
                    .map_err(|why| SelectorError(format!("value {value:?}: {why}")))?;
            }
        }
        Ok(Requirement {
            key: key.to_owned(),
            op,
            values,
        })
    }
}

const NAME_RULE: &str = "must be 63 characters or less, consist of alphanumeric characters, '-', '_' or '.', and start and end with an alphanumeric character";

/// Kubernetes `IsQualifiedName`: `[prefix/]name`, prefix a DNS-1123 subdomain.
fn validate_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if name.is_empty() || !is_label_name(name) {
        return Err(format!("name part {NAME_RULE}"));
    }
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(
            "prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters".into(),
        );
    }
    Ok(())
}

/// Kubernetes `IsValidLabelValue`: empty, or a label name.
fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!("a label value {NAME_RULE}"))
    }
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let inner = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(inner)
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b.first().is_some_and(|c| *c != b'-')
                && b.last().is_some_and(|c| *c != b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use std::collections::BTreeMap;

    fn selector(labels: &[(&str, &str)], exprs: &[(&str, &str, &[&str])]) -> LabelSelector {
        LabelSelector {
            match_labels: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            }),
            match_expressions: (!exprs.is_empty()).then(|| {
                exprs
                    .iter()
                    .map(|(k, op, vs)| LabelSelectorRequirement {
                        key: (*k).to_owned(),
                        operator: (*op).to_owned(),
                        values: (!vs.is_empty())
                            .then(|| vs.iter().map(|v| (*v).to_owned()).collect()),
                    })
                    .collect()
            }),
        }
    }

    fn matches(s: &Selector, labels: &[(&str, &str)]) -> bool {
        let map: BTreeMap<&str, &str> = labels.iter().copied().collect();
        s.matches(|k| map.get(k).copied())
    }

    #[test]
    fn operators() {
        let s = Selector::compile(
            &selector(
                &[("org", "foo")],
                &[
                    ("env", "In", &["prod", "staging"]),
                    ("tier", "NotIn", &["x"]),
                ],
            ),
            &[],
            Validation::Labels,
        )
        .unwrap();
        assert!(matches(&s, &[("org", "foo"), ("env", "prod")]));
        assert!(!matches(
            &s,
            &[("org", "foo"), ("env", "prod"), ("tier", "x")]
        ));
        assert!(!matches(&s, &[("org", "bar"), ("env", "prod")]));
        assert!(!matches(&s, &[("org", "foo")]));

        let s = Selector::compile(
            &selector(&[], &[("a", "Exists", &[]), ("b", "DoesNotExist", &[])]),
            &[],
            Validation::Labels,
        )
        .unwrap();
        assert!(matches(&s, &[("a", "")]));
        assert!(!matches(&s, &[("a", ""), ("b", "")]));
        assert!(Selector::default().is_empty());
    }

    #[test]
    fn extra_labels_are_anded() {
        let s = Selector::compile(&LabelSelector::default(), &[("t", "c")], Validation::Labels)
            .unwrap();
        assert!(!s.is_empty());
        assert!(matches(&s, &[("t", "c")]));
        assert!(!matches(&s, &[]));
    }

    #[test]
    fn validation() {
        let url = "https://some-really-long-url-that-will-exceed-63-characters.com";
        let sel = selector(&[("server", url)], &[]);
        assert!(Selector::compile(&sel, &[], Validation::Labels).is_err());
        assert!(Selector::compile(&sel, &[], Validation::Params).is_ok());
        let slash = selector(
            &[("metadata.labels.argocd.argoproj.io/secret-type", "c")],
            &[],
        );
        assert!(Selector::compile(&slash, &[], Validation::Params).is_ok());
        for bad in ["", "a b", "-a", "Upper.Case/x", "a/b/c"] {
            let sel = selector(&[(bad, "v")], &[]);
            assert!(
                Selector::compile(&sel, &[], Validation::Params).is_err(),
                "{bad:?}"
            );
        }
        let empty_in = selector(&[], &[("a", "In", &[])]);
        assert!(Selector::compile(&empty_in, &[], Validation::Params).is_err());
        let bad_op = selector(&[], &[("a", "Gt", &["1"])]);
        let err = Selector::compile(&bad_op, &[], Validation::Params).unwrap_err();
        assert!(err.to_string().contains("not a valid"), "{err}");
    }
}
