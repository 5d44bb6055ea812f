//! jq path expressions, as Argo CD's `ignoreDifferences[].jqPathExpressions` and
//! `ApplicationSet` `ignoreApplicationDifferences[].jqPathExpressions` use them.
//!
//! Argo CD runs `del(EXPR)` with gojq on each document before comparing. This module
//! finds the same places, the paths `path(EXPR)` yields, with jaq (a jq implementation
//! in Rust), so that callers can delete them (the sync engine's compare) or copy the
//! live values over them (the `ApplicationSet` writer). Paths come sorted so that deleting
//! them in order never shifts an array index still to be deleted.
//!
//! Bounded, as Argo CD had to learn (GHSA-9m6p-x4h2-6frq: a jq expression in an
//! Application could hang its controller): expressions are at most 1 KiB, may not define
//! functions or use the constructs that loop without end (`def`, `recurse`, `repeat`,
//! `while`, `until`, `range`, `limit`, `input`), and yield at most 10,000 paths (`..`,
//! every path of the document, stays allowed: it is finite). What is
//! left walks the document at most a bounded number of times.

use serde_json::Value;

/// One step of a path into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// An array index.
    Index(usize),
    /// An object key.
    Key(String),
}

/// A path into a JSON document, outermost step first.
pub type Path = Vec<Step>;

type Filter = jaq_core::Filter<jaq_core::data::JustLut<jaq_json::Val>>;

/// Longest expression accepted.
const MAX_EXPRESSION: usize = 1024;
/// Most paths one evaluation yields.
const MAX_PATHS: usize = 10_000;
/// Words that define functions or loop without a bound; refused.
/// (`env` and `$ENV` too: the controller's environment is none of a manifest's business.)
const REFUSED_WORDS: &[&str] = &[
    "def", "recurse", "repeat", "while", "until", "range", "limit", "input", "inputs", "env",
    "$ENV",
];

/// A compiled path expression.
pub struct PathExpr {
    expr: String,
    filter: Filter,
}

impl std::fmt::Debug for PathExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PathExpr").field(&self.expr).finish()
    }
}

/// Why `expr` is refused before compiling, if it is.
fn refusal(expr: &str) -> Option<String> {
    if expr.len() > MAX_EXPRESSION {
        return Some(format!(
            "jq expression of {} bytes refused (at most {MAX_EXPRESSION})",
            expr.len()
        ));
    }
    let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'));
    for word in words {
        if REFUSED_WORDS.contains(&word) {
            return Some(format!(
                "jq expression {expr:?} refused: `{word}` can loop without end (use a path with select(...))"
            ));
        }
    }
    None
}

impl PathExpr {
    /// Compiles `expr` (for example `.spec.containers[] | select(.name == "istio-proxy")`);
    /// the error says why it is not a jq expression.
    pub fn compile(expr: &str) -> Result<PathExpr, String> {
        use jaq_core::load::{Arena, File, Loader};
        if let Some(why) = refusal(expr) {
            return Err(why);
        }
        let code = format!("path({expr})");
        let arena = Arena::default();
        let loader = Loader::new(
            jaq_core::defs()
                .chain(jaq_std::defs())
                .chain(jaq_json::defs()),
        );
        let modules = loader
            .load(
                &arena,
                File {
                    code: code.as_str(),
                    path: (),
                },
            )
            .map_err(|errors| format!("invalid jq expression {expr:?}: {errors:?}"))?;
        let filter = jaq_core::Compiler::default()
            .with_funs(
                jaq_core::funs()
                    .chain(jaq_std::funs())
                    .chain(jaq_json::funs()),
            )
            .compile(modules)
            .map_err(|errors| format!("invalid jq expression {expr:?}: {errors:?}"))?;
        Ok(PathExpr {
            expr: expr.to_owned(),
            filter,
        })
    }

    /// The paths the expression selects in `doc`, deepest array index first among
    /// siblings (safe to delete in order). A document the expression cannot walk (jq
    /// errors such as iterating over `null`) yields the paths found before the error, as
    /// gojq's `del` leaves such a document alone.
    pub fn paths(&self, doc: &Value) -> Vec<Path> {
        use jaq_core::{Ctx, Vars, unwrap_valr};
        let Ok(input) = jaq_json::read::parse_single(doc.to_string().as_bytes()) else {
            return Vec::new();
        };
        let ctx =
            Ctx::<jaq_core::data::JustLut<jaq_json::Val>>::new(&self.filter.lut, Vars::new([]));
        let mut paths: Vec<Path> = self
            .filter
            .id
            .run((ctx, input))
            .map(unwrap_valr)
            .map_while(Result::ok)
            .take(MAX_PATHS)
            .filter_map(|path| to_path(&path.to_string()))
            .collect();
        paths.sort();
        paths.dedup();
        paths.reverse();
        paths
    }
}

/// A path from jq's `path(...)` output (a JSON array of keys and indexes).
fn to_path(text: &str) -> Option<Path> {
    let Ok(Value::Array(steps)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    steps
        .into_iter()
        .map(|step| match step {
            Value::String(key) => Some(Step::Key(key)),
            Value::Number(n) => n
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .map(Step::Index),
            _ => None,
        })
        .collect()
}

/// The JSON pointer (RFC 6901) of a path.
#[must_use]
pub fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Index(i) => format!("/{i}"),
            Step::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
        })
        .collect()
}

/// The value at `path` in `doc`, if there is one.
#[must_use]
pub fn get<'a>(doc: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |cur, step| match (cur, step) {
        (Value::Object(o), Step::Key(k)) => o.get(k),
        (Value::Array(a), Step::Index(i)) => a.get(*i),
        _ => None,
    })
}

/// Sets `path` in `doc` to `value`, creating missing objects on the way; an array index
/// may be an existing item or the next one. Returns false when the path cannot be made
/// (a step into a scalar, an index past the end).
pub fn set(doc: &mut Value, path: &[Step], value: Value) -> bool {
    let Some((first, rest)) = path.split_first() else {
        *doc = value;
        return true;
    };
    if doc.is_null() {
        *doc = match first {
            Step::Key(_) => Value::Object(serde_json::Map::default()),
            Step::Index(_) => Value::Array(Vec::new()),
        };
    }
    let child = match (doc, first) {
        (Value::Object(o), Step::Key(k)) => o.entry(k.clone()).or_insert(Value::Null),
        (Value::Array(a), Step::Index(i)) if *i < a.len() => &mut a[*i],
        (Value::Array(a), Step::Index(i)) if *i == a.len() => {
            a.push(Value::Null);
            &mut a[*i]
        }
        _ => return false,
    };
    set(child, rest, value)
}

/// Deletes `path` from `doc`; a path that is not there is a no-op.
pub fn delete(doc: &mut Value, path: &[Step]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = doc;
    for step in parent {
        let next = match (cur, step) {
            (Value::Object(o), Step::Key(k)) => o.get_mut(k),
            (Value::Array(a), Step::Index(i)) => a.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return };
        cur = next;
    }
    match (cur, last) {
        (Value::Object(o), Step::Key(k)) => {
            o.remove(k);
        }
        (Value::Array(a), Step::Index(i)) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"spec": {"containers": [
            {"name": "app", "image": "app:1"},
            {"name": "istio-proxy", "image": "proxy:1"},
            {"name": "other", "image": "x"},
            {"name": "istio-proxy", "image": "proxy:2"}
        ], "replicas": 3}})
    }

    #[test]
    fn select_finds_matching_elements_deepest_index_first() {
        let expr =
            PathExpr::compile(r#".spec.containers[] | select(.name == "istio-proxy")"#).unwrap();
        let paths = expr.paths(&pod());
        let pointers: Vec<String> = paths.iter().map(|p| pointer(p)).collect();
        assert_eq!(pointers, vec!["/spec/containers/3", "/spec/containers/1"]);
        let mut doc = pod();
        for p in &paths {
            delete(&mut doc, p);
        }
        let names: Vec<&str> = doc["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["app", "other"]);
    }

    #[test]
    fn plain_paths_keys_with_slashes_and_missing_parts() {
        let expr = PathExpr::compile(".spec.replicas").unwrap();
        assert_eq!(pointer(&expr.paths(&pod())[0]), "/spec/replicas");
        let annotation =
            PathExpr::compile(r#".metadata.annotations["example.com/owner"]"#).unwrap();
        let doc = json!({"metadata": {"annotations": {"example.com/owner": "x"}}});
        assert_eq!(
            pointer(&annotation.paths(&doc)[0]),
            "/metadata/annotations/example.com~1owner"
        );
        // Iterating over a missing list is a jq error: nothing is selected.
        let missing = PathExpr::compile(".spec.initContainers[] | select(.name == \"x\")").unwrap();
        assert!(missing.paths(&pod()).is_empty());
        let mut doc = pod();
        delete(&mut doc, &[Step::Key("nope".into()), Step::Index(4)]);
        assert_eq!(doc, pod());
    }

    #[test]
    fn get_and_set_follow_paths() {
        let mut doc = pod();
        let path = [
            Step::Key("spec".into()),
            Step::Key("containers".into()),
            Step::Index(1),
        ];
        assert_eq!(get(&doc, &path).unwrap()["name"], "istio-proxy");
        let next = [
            Step::Key("spec".into()),
            Step::Key("containers".into()),
            Step::Index(4),
        ];
        assert!(set(&mut doc, &next, json!({"name": "added"})));
        assert_eq!(get(&doc, &next).unwrap()["name"], "added");
        let past = [
            Step::Key("spec".into()),
            Step::Key("containers".into()),
            Step::Index(9),
        ];
        assert!(!set(&mut doc, &past, json!(1)));
        let fresh = [
            Step::Key("metadata".into()),
            Step::Key("labels".into()),
            Step::Key("a".into()),
        ];
        assert!(set(&mut doc, &fresh, json!("b")));
        assert_eq!(doc["metadata"]["labels"]["a"], "b");
    }

    #[test]
    fn unbounded_expressions_are_refused() {
        for expr in [
            "def f: f; path(f)",
            ".spec | repeat(.)",
            "range(100000000) as $i | .spec",
            ".a | recurse(.b)",
            &format!(".{}", "a".repeat(2000)),
        ] {
            let err = PathExpr::compile(expr).err().unwrap_or_default();
            assert!(err.contains("refused"), "{expr}: {err}");
        }
        // `..` (every path) is finite, and capped.
        let all = PathExpr::compile("..").unwrap();
        assert_eq!(all.paths(&pod()).len(), 16);
    }

    #[test]
    fn invalid_expressions_say_so() {
        let err = PathExpr::compile(".spec.containers[ | select(")
            .err()
            .unwrap();
        assert!(err.contains("invalid jq expression"), "{err}");
        assert!(PathExpr::compile("no_such_function(1)").is_err());
    }
}
