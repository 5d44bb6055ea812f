//! Renders Argosy's Helm chart (`charts/argosy`) without a `helm` binary, as
//! `helm template` would, so tests can check and apply what the chart produces.
//!
//! * Templates: every file under `templates/` not starting with `_` (and not
//!   `NOTES.txt`) is one manifest file; the `define`s of the `_*.tpl` partials
//!   are visible to all of them, as in Helm's shared template set.
//! * Engine: Argosy's Go template engine with [`Library::Helm`], i.e. Go's
//!   builtins, Sprig as in Argo CD, `toYaml`, and Helm's `include` and
//!   `required`. Not supported: `tpl`, `lookup`, `.Files`, `.Capabilities`,
//!   `.Template`, and the Sprig functions the templates crate leaves out
//!   (dates, randomness, crypto); a chart using one fails to parse here.
//! * Stricter than Helm: a value missing from `values.yaml` is an error
//!   (`missingkey=error`, Helm's `--strict` lint), so every value a template
//!   reads must be declared (and documented) there.
//! * Values: `values.yaml` with the overrides deep-merged in as `helm -f`
//!   does (maps merge, anything else replaces, `null` deletes the key).
//! * `.Release`: `Name`, `Namespace`, `Service` ("Helm"), `IsInstall`,
//!   `IsUpgrade`, `Revision`. `.Chart`: the keys of `Chart.yaml` capitalised
//!   (`Name`, `Version`, `AppVersion`, ...), as Helm's chart metadata.
//! * `crds/`: returned as they are (Helm installs them before the templates
//!   and never templates them).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use argosy_templates::{GoOptions, Library, MissingKey, Mode, StringTemplate};
use serde::Deserialize as _;
use serde_json::{Map, Value, json};

/// `charts/argosy` of this workspace.
pub fn argosy_chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("charts")
        .join("argosy")
}

/// A chart loaded from a directory.
#[derive(Debug)]
pub struct Chart {
    /// `Chart.yaml`, keys capitalised (what `.Chart` sees).
    metadata: Value,
    /// `values.yaml`.
    defaults: Value,
    /// Manifest templates: path relative to the chart, source.
    templates: Vec<(String, String)>,
    /// The partials' sources, concatenated.
    partials: String,
    /// `crds/*.yaml`: path relative to the chart, text.
    crds: Vec<(String, String)>,
}

/// Where the release goes.
#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    pub namespace: String,
}

impl Release {
    pub fn new(name: &str, namespace: &str) -> Release {
        Release {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        }
    }
}

/// The output of [`Chart::render`]: each manifest template's text, by path.
#[derive(Debug)]
pub struct Rendered {
    pub files: BTreeMap<String, String>,
}

/// Helm's install order of kinds (`releaseutil.InstallOrder`), for the kinds a
/// chart like this one uses; other kinds go last.
const INSTALL_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

impl Chart {
    /// Argosy's chart, `charts/argosy`.
    pub fn argosy() -> Result<Chart> {
        Chart::load(&argosy_chart_dir())
    }

    /// Loads `Chart.yaml`, `values.yaml`, `templates/` and `crds/` of `dir`.
    pub fn load(dir: &Path) -> Result<Chart> {
        let chart_yaml: Value = read_yaml(&dir.join("Chart.yaml"))?;
        let Value::Object(fields) = chart_yaml else {
            bail!("{}/Chart.yaml is not a map", dir.display());
        };
        let metadata: Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (capitalise(&k), v))
            .collect();
        let defaults = match read_yaml(&dir.join("values.yaml"))? {
            Value::Null => json!({}),
            v => v,
        };
        let mut templates = Vec::new();
        let mut partials = String::new();
        for path in files_under(&dir.join("templates"))? {
            let rel = relative(dir, &path);
            let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            if file.starts_with('_') {
                partials.push('\n');
                partials.push_str(&text);
            } else if file != "NOTES.txt" {
                templates.push((rel, text));
            }
        }
        let crds_dir = dir.join("crds");
        let mut crds = Vec::new();
        if crds_dir.is_dir() {
            for path in files_under(&crds_dir)? {
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                crds.push((relative(dir, &path), text));
            }
        }
        Ok(Chart {
            metadata: Value::Object(metadata),
            defaults,
            templates,
            partials,
            crds,
        })
    }

    /// `values.yaml` as loaded.
    pub fn default_values(&self) -> &Value {
        &self.defaults
    }

    /// `crds/` files: path relative to the chart, text.
    pub fn crd_files(&self) -> &[(String, String)] {
        &self.crds
    }

    /// The objects of `crds/`, in file order.
    pub fn crds(&self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for (path, text) in &self.crds {
            out.extend(yaml_documents(text).with_context(|| format!("parsing {path}"))?);
        }
        Ok(out)
    }

    /// Renders every manifest template with `values.yaml` plus `overrides`
    /// (a map, deep-merged as `helm -f` merges a values file).
    pub fn render(&self, release: &Release, overrides: &Value) -> Result<Rendered> {
        let mut values = self.defaults.clone();
        merge_values(&mut values, overrides);
        let top = json!({
            "Values": values,
            "Release": {
                "Name": release.name,
                "Namespace": release.namespace,
                "Service": "Helm",
                "IsInstall": true,
                "IsUpgrade": false,
                "Revision": 1,
            },
            "Chart": self.metadata,
        });
        let Value::Object(params) = top else {
            bail!("template data is not a map");
        };
        let mode = Mode::Go(GoOptions {
            missing_key: MissingKey::Error,
            library: Library::Helm,
        });
        let mut files = BTreeMap::new();
        for (path, source) in &self.templates {
            // The partials go after the file, so error positions (`template: :LINE:COL`)
            // are the file's own lines.
            let full = format!("{source}\n{}", self.partials);
            let template =
                StringTemplate::compile(&full, &mode).with_context(|| format!("parsing {path}"))?;
            let text = template
                .render(&params)
                .with_context(|| format!("rendering {path}"))?;
            files.insert(path.clone(), text);
        }
        Ok(Rendered { files })
    }
}

impl Rendered {
    /// Every object of every file (empty documents dropped), in Helm's install
    /// order of kinds, file order within a kind.
    pub fn manifests(&self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for (path, text) in &self.files {
            out.extend(yaml_documents(text).with_context(|| format!("parsing rendered {path}"))?);
        }
        out.sort_by_key(|m| {
            let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
            INSTALL_ORDER
                .iter()
                .position(|k| *k == kind)
                .unwrap_or(INSTALL_ORDER.len())
        });
        Ok(out)
    }

    /// The one object of `kind` named `name` (in any namespace).
    pub fn object(&self, kind: &str, name: &str) -> Result<Value> {
        let mut found: Vec<Value> = self
            .manifests()?
            .into_iter()
            .filter(|m| {
                m.get("kind").and_then(Value::as_str) == Some(kind)
                    && m.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
            })
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            n => bail!("{n} objects of kind {kind} named {name} rendered"),
        }
    }

    /// `(kind, namespace, name)` of every object, in install order.
    pub fn identities(&self) -> Result<Vec<(String, String, String)>> {
        let field = |m: &Value, p: &str| {
            m.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(self
            .manifests()?
            .iter()
            .map(|m| {
                (
                    field(m, "/kind"),
                    field(m, "/metadata/namespace"),
                    field(m, "/metadata/name"),
                )
            })
            .collect())
    }
}

/// Helm's values merge (`chartutil.CoalesceTables` for a user file): maps merge
/// key by key, a `null` deletes the key, anything else replaces.
pub fn merge_values(base: &mut Value, overrides: &Value) {
    match (base, overrides) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match value {
                    Value::Null => {
                        base.remove(key);
                    }
                    Value::Object(_) if base.get(key).is_some_and(Value::is_object) => {
                        if let Some(slot) = base.get_mut(key) {
                            merge_values(slot, value);
                        }
                    }
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The non-empty documents of a multi-document YAML text.
pub fn yaml_documents(text: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Files under `dir`, recursively, sorted by path (Helm sorts templates by name).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn relative(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// `appVersion` -> `AppVersion`.
fn capitalise(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_merge_like_helm() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": 1});
        merge_values(
            &mut base,
            &json!({"a": {"c": [3], "n": true}, "d": {"m": 1}, "e": null}),
        );
        assert_eq!(
            base,
            json!({"a": {"b": 1, "c": [3], "n": true}, "d": {"m": 1}})
        );
    }

    #[test]
    fn renders_a_chart_with_shared_defines_and_drops_empty_documents() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("templates")).unwrap();
        fs::write(
            root.join("Chart.yaml"),
            "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"9\"\n",
        )
        .unwrap();
        fs::write(
            root.join("values.yaml"),
            "n: 2\nlabels: {a: b}\nextra: false\n",
        )
        .unwrap();
        fs::write(
            root.join("templates/_h.tpl"),
            "{{- define \"demo.name\" -}}{{ .Release.Name }}-{{ .Chart.Name }}{{- end -}}\n",
        )
        .unwrap();
        fs::write(
            root.join("templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include \"demo.name\" . }}\n  labels:\n    {{- toYaml .Values.labels | nindent 4 }}\ndata:\n  n: {{ .Values.n | quote }}\n  v: {{ .Chart.AppVersion }}\n",
        )
        .unwrap();
        fs::write(
            root.join("templates/off.yaml"),
            "{{- if .Values.extra }}\nkind: Never\n{{- end }}\n",
        )
        .unwrap();
        fs::write(root.join("templates/NOTES.txt"), "{{ .Nope }}").unwrap();
        let chart = Chart::load(root).unwrap();
        let rendered = chart
            .render(&Release::new("rel", "ns"), &json!({"n": 3}))
            .unwrap();
        assert_eq!(
            rendered.manifests().unwrap(),
            [json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "rel-demo", "labels": {"a": "b"}},
                "data": {"n": "3", "v": 9},
            })]
        );
        // A value the chart does not declare is an error naming the file.
        fs::write(root.join("templates/bad.yaml"), "x: {{ .Values.typo }}\n").unwrap();
        let err = Chart::load(root)
            .unwrap()
            .render(&Release::new("rel", "ns"), &json!({}))
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("rendering templates/bad.yaml"), "{text}");
        assert!(
            text.contains(r#"map has no entry for key "typo""#),
            "{text}"
        );
    }
}
