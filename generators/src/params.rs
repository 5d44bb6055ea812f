//! Parameter sets and their provenance.
//!
//! A generator turns its input into [`ParamSet`]s: the [`Params`] the template is rendered
//! with, plus a [`Provenance`] that can say, for every top-level parameter, where it came
//! from (which list element, which cluster Secret field, which Git file...). That powers
//! `argosy generate --explain`.
//!
//! Provenance is built for every parameter set of every generation, including the
//! 100,000-application case, so it is kept cheap: one reference-counted node per parameter
//! set whose leaves share their generator path and repository identity. The per-key
//! [`ParamOrigin`]s are only computed when someone asks ([`ParamSet::origins`]).
//!
//! This module also owns the Go formatting rules the generators must reproduce: `%v`
//! stringification (numbers are float64 in Argo CD, so `1000000` prints as `1e+06`) and
//! the dot-style flattening used by fasttemplate parameters and post-selectors.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

pub use argosy_templates::Params;

/// One parameter set and where its parameters came from.
#[derive(Debug, Clone, Default)]
pub struct ParamSet {
    /// The parameters the template is rendered with.
    pub params: Params,
    /// Where they came from.
    pub provenance: Provenance,
}

impl ParamSet {
    /// A parameter set from its parameters and their provenance.
    #[must_use]
    pub fn new(params: Params, provenance: Provenance) -> Self {
        Self { params, provenance }
    }

    /// Where the top-level parameter `key` came from (None if it is not a parameter or
    /// the provenance was not recorded).
    #[must_use]
    pub fn origin(&self, key: &str) -> Option<ParamOrigin> {
        if self.params.contains_key(key) {
            self.provenance.origin(key)
        } else {
            None
        }
    }

    /// The origin of every top-level parameter, by key.
    #[must_use]
    pub fn origins(&self) -> BTreeMap<String, ParamOrigin> {
        self.params
            .keys()
            .filter_map(|k| Some((k.clone(), self.provenance.origin(k)?)))
            .collect()
    }
}

/// A cheap, shareable record of how a parameter set was produced. The default is "not
/// recorded" (generations that do not keep parameters do not keep provenance either).
#[derive(Debug, Clone, Default)]
pub struct Provenance(Option<Arc<Node>>);

/// Repository identity shared by every parameter set of one Git generator run.
#[derive(Debug, PartialEq, Eq)]
pub struct GitRef {
    /// The repository URL (`repoURL`).
    pub repo: String,
    /// The revision as written in the generator (branch, tag, `HEAD` or commit).
    pub revision: String,
    /// The commit the revision resolved to.
    pub commit: String,
}

#[derive(Debug)]
enum Node {
    ListElement {
        generator: Arc<str>,
        index: usize,
    },
    Cluster {
        generator: Arc<str>,
        /// `namespace/name` of the Secret; None for the implicit in-cluster.
        secret: Option<Arc<str>>,
    },
    ClusterList {
        generator: Arc<str>,
    },
    GitDirectory {
        generator: Arc<str>,
        git: Arc<GitRef>,
        path: String,
    },
    GitFile {
        generator: Arc<str>,
        git: Arc<GitRef>,
        file: String,
        index: usize,
    },
    /// Matrix/merge output: `parts` in precedence order (the first part holding a key
    /// supplied its value).
    Combined {
        generator: Arc<str>,
        kind: Combination,
        parts: Parts,
    },
}

/// Matrix results (the 100,000-set case) keep their two parts inline: one small
/// allocation per parameter set, the parts themselves being shared.
#[derive(Debug)]
enum Parts {
    Two([CombinedPart; 2]),
    Many(Box<[CombinedPart]>),
}

impl Parts {
    fn as_slice(&self) -> &[CombinedPart] {
        match self {
            Parts::Two(parts) => parts,
            Parts::Many(parts) => parts,
        }
    }
}

/// What one child generator's parameter set contributes to combined sets: the child's
/// index, the set's top-level keys and its provenance. Built once per child set and
/// shared by every combination it takes part in.
#[derive(Debug, Clone)]
pub struct CombinedPart(Arc<Part>);

#[derive(Debug)]
struct Part {
    child: usize,
    keys: Box<[String]>,
    provenance: Provenance,
}

impl CombinedPart {
    /// What child generator `child` contributes with its parameter set `set`.
    #[must_use]
    pub fn new(child: usize, set: &ParamSet) -> Self {
        Self(Arc::new(Part {
            child,
            keys: set.params.keys().cloned().collect(),
            provenance: set.provenance.clone(),
        }))
    }
}

/// The two combination generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Combination {
    /// The matrix generator (every combination of its two children's sets).
    Matrix,
    /// The merge generator (its children's sets merged by `mergeKeys`).
    Merge,
}

impl Combination {
    /// The generator's key in the `ApplicationSet` (`matrix`, `merge`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Combination::Matrix => "matrix",
            Combination::Merge => "merge",
        }
    }
}

/// Where one top-level parameter came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "from", rename_all = "camelCase")]
pub enum ParamOrigin {
    /// `list.elements[index]` (or `elementsYaml`, counted after `elements`).
    ListElement {
        /// Field path of the generator.
        generator: String,
        /// Index of the element.
        index: usize,
    },
    /// A field of a cluster Secret (`secret` is None for the implicit in-cluster).
    ClusterSecret {
        /// Field path of the generator.
        generator: String,
        /// `namespace/name` of the Secret.
        secret: Option<String>,
        /// Which part of the Secret.
        field: ClusterField,
    },
    /// `flatList: true`: the list of all selected clusters.
    ClusterList {
        /// Field path of the generator.
        generator: String,
    },
    /// A directory matched by the Git directory generator.
    GitDirectory {
        /// Field path of the generator.
        generator: String,
        /// The repository URL.
        repo: String,
        /// The revision as written in the generator.
        revision: String,
        /// The commit the revision resolved to.
        commit: String,
        /// The directory, repo-relative.
        path: String,
    },
    /// A file (array element `index`) matched by the Git files generator, or the path
    /// parameters derived from its name.
    GitFile {
        /// Field path of the generator.
        generator: String,
        /// The repository URL.
        repo: String,
        /// The revision as written in the generator.
        revision: String,
        /// The commit the revision resolved to.
        commit: String,
        /// The file, repo-relative.
        file: String,
        /// Index of the object among those the file holds.
        index: usize,
    },
    /// The generator's `values`, interpolated against the rest of the parameter set.
    Values {
        /// Field path of the generator.
        generator: String,
    },
    /// Supplied by child `child` of a matrix or merge generator.
    Combined {
        /// Field path of the matrix or merge generator.
        generator: String,
        /// Matrix or merge.
        kind: Combination,
        /// Index of the child generator that supplied the parameter.
        child: usize,
        /// Where the child got it.
        origin: Box<ParamOrigin>,
    },
}

/// Which part of a cluster Secret a cluster parameter comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ClusterField {
    /// `name`.
    Name,
    /// `nameNormalized`: the name, sanitized.
    NameNormalized,
    /// `server`.
    Server,
    /// `project`.
    Project,
    /// goTemplate `metadata` map (labels and annotations).
    Metadata,
    /// `metadata.labels.<key>`: the label `key`.
    Label(String),
    /// `metadata.annotations.<key>`: the annotation `key`.
    Annotation(String),
}

impl Provenance {
    /// Element `index` of the list generator at `generator`.
    #[must_use]
    pub fn list_element(generator: &Arc<str>, index: usize) -> Self {
        Self::node(Node::ListElement {
            generator: generator.clone(),
            index,
        })
    }

    /// A cluster of the clusters generator at `generator`, from Secret `secret`
    /// (`namespace/name`; None for the implicit in-cluster).
    #[must_use]
    pub fn cluster(generator: &Arc<str>, secret: Option<Arc<str>>) -> Self {
        Self::node(Node::Cluster {
            generator: generator.clone(),
            secret,
        })
    }

    /// The `flatList` parameter set of the clusters generator at `generator`.
    #[must_use]
    pub fn cluster_list(generator: &Arc<str>) -> Self {
        Self::node(Node::ClusterList {
            generator: generator.clone(),
        })
    }

    /// Directory `path` matched by the Git generator at `generator` in `git`.
    #[must_use]
    pub fn git_directory(generator: &Arc<str>, git: &Arc<GitRef>, path: &str) -> Self {
        Self::node(Node::GitDirectory {
            generator: generator.clone(),
            git: git.clone(),
            path: path.to_owned(),
        })
    }

    /// Object `index` of file `file` matched by the Git generator at `generator` in `git`.
    #[must_use]
    pub fn git_file(generator: &Arc<str>, git: &Arc<GitRef>, file: &str, index: usize) -> Self {
        Self::node(Node::GitFile {
            generator: generator.clone(),
            git: git.clone(),
            file: file.to_owned(),
            index,
        })
    }

    /// A combined parameter set; `parts` in precedence order (the first part holding a
    /// key supplied its value).
    pub fn combined(
        generator: &Arc<str>,
        kind: Combination,
        parts: impl IntoIterator<Item = CombinedPart>,
    ) -> Self {
        Self::node(Node::Combined {
            generator: generator.clone(),
            kind,
            parts: Parts::Many(parts.into_iter().collect()),
        })
    }

    /// A combination of exactly two parts (a matrix result), in precedence order.
    #[must_use]
    pub fn pair(
        generator: &Arc<str>,
        kind: Combination,
        first: &CombinedPart,
        second: &CombinedPart,
    ) -> Self {
        Self::node(Node::Combined {
            generator: generator.clone(),
            kind,
            parts: Parts::Two([first.clone(), second.clone()]),
        })
    }

    fn node(node: Node) -> Self {
        Self(Some(Arc::new(node)))
    }

    /// The origin of top-level key `key`, assuming the parameter set has it; None when
    /// the provenance was not recorded.
    pub fn origin(&self, key: &str) -> Option<ParamOrigin> {
        let values = |generator: &Arc<str>| ParamOrigin::Values {
            generator: generator.to_string(),
        };
        let node = self.0.as_deref()?;
        Some(match node {
            Node::ListElement { generator, index } => ParamOrigin::ListElement {
                generator: generator.to_string(),
                index: *index,
            },
            Node::Cluster { generator, secret } => match cluster_field(key) {
                Some(field) => ParamOrigin::ClusterSecret {
                    generator: generator.to_string(),
                    secret: secret.as_deref().map(str::to_owned),
                    field,
                },
                None => values(generator),
            },
            Node::ClusterList { generator } => ParamOrigin::ClusterList {
                generator: generator.to_string(),
            },
            Node::GitDirectory { generator, .. } | Node::GitFile { generator, .. }
                if is_values_key(key) =>
            {
                values(generator)
            }
            Node::GitDirectory {
                generator,
                git,
                path,
            } => ParamOrigin::GitDirectory {
                generator: generator.to_string(),
                repo: git.repo.clone(),
                revision: git.revision.clone(),
                commit: git.commit.clone(),
                path: path.clone(),
            },
            Node::GitFile {
                generator,
                git,
                file,
                index,
            } => ParamOrigin::GitFile {
                generator: generator.to_string(),
                repo: git.repo.clone(),
                revision: git.revision.clone(),
                commit: git.commit.clone(),
                file: file.clone(),
                index: *index,
            },
            Node::Combined {
                generator,
                kind,
                parts,
            } => {
                let parts = parts.as_slice();
                let part = parts
                    .iter()
                    .map(|p| &*p.0)
                    .find(|p| p.keys.iter().any(|k| k == key))
                    .or(parts.first().map(|p| &*p.0));
                let part = part?;
                ParamOrigin::Combined {
                    generator: generator.to_string(),
                    kind: *kind,
                    child: part.child,
                    origin: Box::new(part.provenance.origin(key)?),
                }
            }
        })
    }
}

fn is_values_key(key: &str) -> bool {
    key == "values" || key.starts_with("values.")
}

/// The Secret field a cluster parameter key comes from (None: `values`).
fn cluster_field(key: &str) -> Option<ClusterField> {
    Some(match key {
        "name" => ClusterField::Name,
        "nameNormalized" => ClusterField::NameNormalized,
        "server" => ClusterField::Server,
        "project" => ClusterField::Project,
        "metadata" => ClusterField::Metadata,
        _ => {
            if let Some(label) = key.strip_prefix("metadata.labels.") {
                ClusterField::Label(label.to_owned())
            } else if let Some(annotation) = key.strip_prefix("metadata.annotations.") {
                ClusterField::Annotation(annotation.to_owned())
            } else {
                return None;
            }
        }
    })
}

impl fmt::Display for ParamOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamOrigin::ListElement { generator, index } => {
                write!(f, "{generator} element {index}")
            }
            ParamOrigin::ClusterSecret {
                generator,
                secret,
                field,
            } => {
                let secret = secret.as_deref().unwrap_or("the implicit in-cluster");
                write!(f, "{generator}: cluster Secret {secret}, ")?;
                match field {
                    ClusterField::Name => f.write_str("field name"),
                    ClusterField::NameNormalized => f.write_str("field name (normalized)"),
                    ClusterField::Server => f.write_str("field server"),
                    ClusterField::Project => f.write_str("field project"),
                    ClusterField::Metadata => f.write_str("labels and annotations"),
                    ClusterField::Label(l) => write!(f, "label {l}"),
                    ClusterField::Annotation(a) => write!(f, "annotation {a}"),
                }
            }
            ParamOrigin::ClusterList { generator } => {
                write!(f, "{generator}: all selected clusters (flatList)")
            }
            ParamOrigin::GitDirectory {
                generator,
                repo,
                revision,
                commit,
                path,
            } => write!(
                f,
                "{generator}: directory {path} of {repo} at {revision} ({commit})"
            ),
            ParamOrigin::GitFile {
                generator,
                repo,
                revision,
                commit,
                file,
                index,
            } => write!(
                f,
                "{generator}: file {file} (item {index}) of {repo} at {revision} ({commit})"
            ),
            ParamOrigin::Values { generator } => write!(f, "{generator}.values (interpolated)"),
            ParamOrigin::Combined { origin, .. } => write!(f, "{origin}"),
        }
    }
}

/// Go's `fmt.Sprintf("%v", v)` for a JSON-decoded value (numbers are float64 in Go).
#[must_use]
pub fn go_string(value: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, value);
    out
}

fn write_go(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_float(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_go(out, v);
            }
            out.push(']');
        }
    }
}

/// Go's `%v` of a float64: the shortest representation, in exponent form when the
/// decimal exponent is below -4 or at least 6 (`1e+06`, `1.5e-05`, `123456`).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "-1.2345e6".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let point = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= point {
            out.push_str(&digits);
            for _ in digits.len()..point {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

/// `jeremywohl/flatten` dot style + `%v`: nested maps and arrays become `a.b`, `a.0`
/// keys; empty maps and arrays disappear. Calls `emit` for every leaf.
pub fn flatten(params: &Params, mut emit: impl FnMut(String, String)) {
    fn walk(prefix: &str, value: &Value, emit: &mut dyn FnMut(String, String)) {
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_owned()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(&join(k), v, emit);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&join(&i.to_string()), v, emit);
                }
            }
            leaf => emit(prefix.to_owned(), go_string(leaf)),
        }
    }
    for (k, v) in params {
        match v {
            Value::Object(_) | Value::Array(_) => walk(k, v, &mut emit),
            leaf => emit(k.clone(), go_string(leaf)),
        }
    }
}

/// Argo CD's `SanitizeName`: lowercase, every character outside `[-a-z0-9.]` becomes
/// `-`, at most 253 characters, leading/trailing `-` and `.` trimmed (one implementation,
/// shared with the templates' `normalize`).
pub use argosy_templates::sanitize_name;

/// Go's `path.Base`.
#[must_use]
pub fn go_base(path: &str) -> &str {
    if path.is_empty() {
        return ".";
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Go's `path.Dir` for the clean, relative paths Git lists (`a/b/c` -> `a/b`, `c` -> `.`).
#[must_use]
pub fn go_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_float_formatting() {
        for (f, s) in [
            (1_000_000.0, "1e+06"),
            (123_456.0, "123456"),
            (2.5, "2.5"),
            (0.5, "0.5"),
            (1_234_567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-3.0, "-3"),
            (1e21, "1e+21"),
            (100.0, "100"),
            (0.0, "0"),
            (1.5e300, "1.5e+300"),
        ] {
            assert_eq!(go_float(f), s, "{f}");
        }
    }

    #[test]
    fn go_string_of_values() {
        assert_eq!(go_string(&json!(true)), "true");
        assert_eq!(go_string(&json!(null)), "<nil>");
        assert_eq!(go_string(&json!(1_000_000)), "1e+06");
        assert_eq!(go_string(&json!(["a", 1])), "[a 1]");
        assert_eq!(go_string(&json!({"b": 1, "a": "x"})), "map[a:x b:1]");
    }

    #[test]
    fn flatten_dot_style() {
        let params = json!({"a": {"b": {"c": 1}, "l": ["x", {"y": true}], "e": {}}, "s": "v"});
        let mut out = BTreeMap::new();
        flatten(params.as_object().unwrap(), |k, v| {
            out.insert(k, v);
        });
        let expected: BTreeMap<String, String> = [
            ("a.b.c", "1"),
            ("a.l.0", "x"),
            ("a.l.1.y", "true"),
            ("s", "v"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn sanitize() {
        assert_eq!(sanitize_name("production_01/west"), "production-01-west");
        assert_eq!(sanitize_name("-.--CLUSTER/name  -./.-"), "cluster-name");
        assert_eq!(sanitize_name("My_Cluster.Example"), "my-cluster.example");
        assert_eq!(sanitize_name("."), "");
    }

    #[test]
    fn go_paths() {
        assert_eq!(go_base("a/b/c"), "c");
        assert_eq!(go_base(""), ".");
        assert_eq!(go_base("."), ".");
        assert_eq!(go_dir("a/b/c.yaml"), "a/b");
        assert_eq!(go_dir("c.yaml"), ".");
    }

    #[test]
    fn combined_provenance_attributes_keys_to_the_winning_child() {
        let list: Arc<str> = "spec.generators[0].matrix.generators[0].list".into();
        let clusters: Arc<str> = "spec.generators[0].matrix.generators[1].clusters".into();
        let matrix: Arc<str> = "spec.generators[0].matrix".into();
        let set = |key: &str, provenance| {
            let params = Params::from_iter([(key.to_owned(), Value::String("v".into()))]);
            ParamSet::new(params, provenance)
        };
        let a = set("app", Provenance::list_element(&list, 3));
        let b = set(
            "server",
            Provenance::cluster(&clusters, Some("argocd/prod".into())),
        );
        let combined = Provenance::pair(
            &matrix,
            Combination::Matrix,
            &CombinedPart::new(0, &a),
            &CombinedPart::new(1, &b),
        );
        let Some(ParamOrigin::Combined { child, origin, .. }) = combined.origin("server") else {
            panic!("not combined")
        };
        assert_eq!(child, 1);
        assert_eq!(
            *origin,
            ParamOrigin::ClusterSecret {
                generator: clusters.to_string(),
                secret: Some("argocd/prod".into()),
                field: ClusterField::Server
            }
        );
        assert!(
            combined
                .origin("app")
                .unwrap()
                .to_string()
                .contains("element 3")
        );
        assert_eq!(Provenance::default().origin("app"), None);
    }
}
