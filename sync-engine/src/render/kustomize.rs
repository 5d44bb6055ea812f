//! Kustomize: `kustomize build` (or `kubectl kustomize`) of the tree on disk, with the
//! Application's options applied through a wrapper kustomization next to it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::RenderError;
use super::manifests::tool_output;
use super::paths::{Resolved, Tree, join};
use super::tools::run_tool;
use super::{Renderer, display_path, options};

/// `spec.source.kustomize`: the options Argo CD applies with `kustomize edit`.
// The bools are Argo CD's independent `kustomize` switches, decoded field for field.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KustomizeOptions {
    #[serde(default)]
    name_prefix: String,
    #[serde(default)]
    name_suffix: String,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    /// A wrapper's labels and annotations always win over the app's own, which is what
    /// `force` asks for; without it Argo CD fails on a conflict and Argosy does not.
    #[serde(default, rename = "forceCommonLabels")]
    _force_common_labels: bool,
    #[serde(default, rename = "forceCommonAnnotations")]
    _force_common_annotations: bool,
    #[serde(default)]
    label_without_selector: bool,
    #[serde(default)]
    label_include_templates: bool,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    replicas: Vec<Replica>,
    #[serde(default)]
    patches: Vec<Value>,
    #[serde(default)]
    components: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replica {
    name: String,
    count: Value,
}

impl KustomizeOptions {
    /// The wrapper kustomization applying these options to the directory `resource`
    /// (relative to the wrapper), or `None` when there is nothing to apply. `read`
    /// fetches a patch file named relative to the app directory, for inlining.
    fn wrapper(
        &self,
        resource: &str,
        mut read: impl FnMut(&str) -> Result<String, RenderError>,
    ) -> Result<Option<Value>, RenderError> {
        let mut k = serde_json::Map::new();
        let set = |k: &mut serde_json::Map<String, Value>, key: &str, v: Value| {
            k.insert(key.to_owned(), v);
        };
        if !self.name_prefix.is_empty() {
            set(&mut k, "namePrefix", json!(self.name_prefix));
        }
        if !self.name_suffix.is_empty() {
            set(&mut k, "nameSuffix", json!(self.name_suffix));
        }
        if !self.namespace.is_empty() {
            set(&mut k, "namespace", json!(self.namespace));
        }
        if !self.images.is_empty() {
            let images: Vec<Value> = self.images.iter().map(|i| kustomize_image(i)).collect();
            set(&mut k, "images", Value::Array(images));
        }
        if !self.common_labels.is_empty() {
            if self.label_without_selector {
                let labels = json!([{
                    "pairs": self.common_labels,
                    "includeSelectors": false,
                    "includeTemplates": self.label_include_templates,
                }]);
                set(&mut k, "labels", labels);
            } else {
                set(&mut k, "commonLabels", json!(self.common_labels));
            }
        }
        if !self.common_annotations.is_empty() {
            set(&mut k, "commonAnnotations", json!(self.common_annotations));
        }
        if !self.replicas.is_empty() {
            let mut replicas = Vec::new();
            for r in &self.replicas {
                let count = match &r.count {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| RenderError::Options {
                    field: format!("kustomize.replicas[{}].count", r.name),
                    message: format!("{} is not an integer", r.count),
                })?;
                replicas.push(json!({"name": r.name, "count": count}));
            }
            set(&mut k, "replicas", Value::Array(replicas));
        }
        if !self.patches.is_empty() {
            let mut patches = Vec::new();
            for (i, patch) in self.patches.iter().enumerate() {
                let mut patch = patch.clone();
                if let Some(map) = patch.as_object_mut()
                    && let Some(path) = map.remove("path")
                {
                    let file = path.as_str().ok_or_else(|| RenderError::Options {
                        field: format!("kustomize.patches[{i}].path"),
                        message: "not a string".to_owned(),
                    })?;
                    map.insert("patch".to_owned(), json!(read(file)?));
                }
                patches.push(patch);
            }
            set(&mut k, "patches", Value::Array(patches));
        }
        if !self.components.is_empty() {
            let components = self
                .components
                .iter()
                .map(|c| component_path(resource, c))
                .collect::<Result<Vec<_>, _>>()?;
            set(&mut k, "components", json!(components));
        }
        if k.is_empty() {
            return Ok(None);
        }
        k.insert(
            "apiVersion".to_owned(),
            json!("kustomize.config.k8s.io/v1beta1"),
        );
        k.insert("kind".to_owned(), json!("Kustomization"));
        k.insert("resources".to_owned(), json!([resource]));
        Ok(Some(Value::Object(k)))
    }
}

/// The pure half of a Kustomize render: the Application's `kustomize` block parsed and
/// turned into the wrapper kustomization for the app directory `app` (`None`: no options
/// to apply). `read_patch` reads a patch file named relative to the app directory. Public
/// so the option parsing can be tested on arbitrary blocks without a tree or a binary.
pub fn kustomize_wrapper(
    options_value: Option<&Value>,
    app: &str,
    read_patch: impl FnMut(&str) -> Result<String, RenderError>,
) -> Result<Option<Value>, RenderError> {
    let opts: KustomizeOptions = options("kustomize", options_value)?;
    opts.wrapper(&wrapper_resource(app), read_patch)
}

/// The app directory as the wrapper kustomization (next to `repo`) names it.
fn wrapper_resource(app: &str) -> String {
    format!("../repo/{app}")
}

/// A component of the app directory, as seen from the wrapper: remote components pass
/// through, local ones must stay inside the repository.
fn component_path(resource: &str, component: &str) -> Result<String, RenderError> {
    if component.contains("://") {
        return Ok(component.to_owned());
    }
    let bad = || RenderError::Options {
        field: "kustomize.components".to_owned(),
        message: format!("{component:?} leaves the repository"),
    };
    if component.starts_with('/') {
        return Err(bad());
    }
    // `resource` is `../repo/<app>`: normalize below `repo`.
    let app = resource
        .trim_start_matches("../repo")
        .trim_start_matches('/');
    let mut parts: Vec<&str> = app.split('/').filter(|p| !p.is_empty()).collect();
    for part in component.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(bad)?;
            }
            p => parts.push(p),
        }
    }
    Ok(format!("../repo/{}", parts.join("/")))
}

/// `kustomize edit set image` syntax -> a kustomization `images` entry:
/// `name[:tag|@digest]` or `name=newName[:tag|@digest]`.
fn kustomize_image(spec: &str) -> Value {
    let (name, new) = match spec.split_once('=') {
        Some((name, new)) => (name.to_owned(), Some(new)),
        None => (split_image(spec).0.to_owned(), None),
    };
    let mut image = serde_json::Map::new();
    image.insert("name".to_owned(), json!(name));
    let (new_name, tag, digest) = split_image(new.unwrap_or(spec));
    if new.is_some() {
        image.insert("newName".to_owned(), json!(new_name));
    }
    if let Some(tag) = tag {
        image.insert("newTag".to_owned(), json!(tag));
    }
    if let Some(digest) = digest {
        image.insert("digest".to_owned(), json!(digest));
    }
    Value::Object(image)
}

/// `name[:tag][@digest]`; a `:` before the last `/` is a registry port, not a tag.
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

impl Renderer {
    pub(super) fn kustomize(
        &self,
        tree: &Tree<'_>,
        app: &str,
        options_value: Option<&Value>,
    ) -> Result<Vec<Value>, RenderError> {
        let opts: KustomizeOptions = options("kustomize", options_value)?;
        let Some(tool) = &self.tools.kustomize else {
            return Err(RenderError::KustomizeUnavailable {
                path: display_path(app),
            });
        };
        let resource = wrapper_resource(app);
        let read_patch = |path: &str| {
            let file = match tree.resolve(&join(app, path))? {
                Resolved::Inside(f) if tree.is_file(&f) => f,
                _ => {
                    return Err(RenderError::Options {
                        field: "kustomize.patches".to_owned(),
                        message: format!("patch file {path:?} is not a file in the repository"),
                    });
                }
            };
            String::from_utf8(tree.snap.read(&file)?).map_err(|_| RenderError::Options {
                field: "kustomize.patches".to_owned(),
                message: format!("patch file {path:?} is not UTF-8"),
            })
        };
        let wrapper = opts.wrapper(&resource, read_patch)?;
        let dir = self.materialize(tree)?;
        // The wrapper lives next to `repo`, never inside it: kustomize refuses a
        // resource directory that contains the kustomization referring to it.
        let wrap_dir = match &wrapper {
            Some(w) => {
                let tmp = tempfile::Builder::new()
                    .prefix("wrapper-")
                    .tempdir_in(&dir)
                    .map_err(|e| RenderError::Materialize {
                        commit: tree.snap.commit().to_owned(),
                        message: e.to_string(),
                    })?;
                std::fs::write(tmp.path().join("kustomization.yaml"), w.to_string()).map_err(
                    |e| RenderError::Materialize {
                        commit: tree.snap.commit().to_owned(),
                        message: e.to_string(),
                    },
                )?;
                Some(tmp)
            }
            None => None,
        };
        let build_dir = match &wrap_dir {
            Some(w) => w.path().to_path_buf(),
            None => dir.join("repo").join(app),
        };
        let mut args = tool.args.clone();
        args.push(build_dir.to_string_lossy().into_owned());
        let out = run_tool("kustomize", &tool.program, &args, &dir, &self.limits)?;
        tool_output("kustomize", &out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testing::*;

    #[test]
    fn kustomize_images_parse_like_kustomize_edit_set_image() {
        let cases = [
            ("nginx:1.2", json!({"name": "nginx", "newTag": "1.2"})),
            (
                "nginx=reg.io:5000/team/nginx:2",
                json!({"name": "nginx", "newName": "reg.io:5000/team/nginx", "newTag": "2"}),
            ),
            ("reg.io:5000/nginx", json!({"name": "reg.io:5000/nginx"})),
            (
                "nginx@sha256:abc",
                json!({"name": "nginx", "digest": "sha256:abc"}),
            ),
            (
                "nginx=other@sha256:abc",
                json!({"name": "nginx", "newName": "other", "digest": "sha256:abc"}),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(kustomize_image(spec), want, "{spec}");
        }
    }

    #[test]
    fn kustomize_wrapper_carries_the_application_options() {
        let opts: KustomizeOptions = options(
            "kustomize",
            Some(&json!({
                "namePrefix": "p-", "nameSuffix": "-s", "namespace": "ns",
                "commonLabels": {"team": "a"}, "labelWithoutSelector": true,
                "commonAnnotations": {"x": "y"},
                "replicas": [{"name": "web", "count": "3"}],
                "patches": [{"path": "patch.yaml", "target": {"kind": "Deployment"}}],
                "components": ["../comp"],
            })),
        )
        .unwrap();
        let wrapper = opts
            .wrapper("../repo/apps/web", |p| Ok(format!("content of {p}")))
            .unwrap()
            .unwrap();
        assert_eq!(
            wrapper,
            json!({
                "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                "resources": ["../repo/apps/web"],
                "namePrefix": "p-", "nameSuffix": "-s", "namespace": "ns",
                "labels": [{"pairs": {"team": "a"}, "includeSelectors": false, "includeTemplates": false}],
                "commonAnnotations": {"x": "y"},
                "replicas": [{"name": "web", "count": 3}],
                "patches": [{"patch": "content of patch.yaml", "target": {"kind": "Deployment"}}],
                "components": ["../repo/apps/comp"],
            })
        );
        let empty: KustomizeOptions = options("kustomize", Some(&json!({}))).unwrap();
        assert!(
            empty
                .wrapper("../repo/x", |_| unreachable!())
                .unwrap()
                .is_none()
        );
        let err =
            options::<KustomizeOptions>("kustomize", Some(&json!({"version": "v4"}))).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kustomize: unknown field `version`"),
            "{err}"
        );
        let escape: KustomizeOptions =
            options("kustomize", Some(&json!({"components": ["../../../x"]}))).unwrap();
        let err = escape
            .wrapper("../repo/a/b", |_| unreachable!())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "kustomize.components: \"../../../x\" leaves the repository"
        );
    }

    const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1.0}]}
";

    fn kubectl_renderer(dir: &Path) -> Renderer {
        let tools = Tools {
            kustomize: Some(KustomizeCommand {
                program: "/usr/bin/kubectl".into(),
                args: vec!["kustomize".into()],
            }),
            helm: None,
        };
        Renderer::with_tools(dir.join("work"), Limits::default(), tools)
    }

    #[test]
    fn kustomize_overlay_with_application_options() {
        let dir = tempfile::tempdir().unwrap();
        let snap = git_snapshot(
            dir.path(),
            &[
                (
                    "base/kustomization.yaml",
                    file("resources: [deploy.yaml]\n"),
                ),
                ("base/deploy.yaml", file(DEPLOYMENT)),
                (
                    "overlays/prod/kustomization.yaml",
                    file(
                        "resources: [../../base]\nnameSuffix: -prod\npatches: [{path: replicas.yaml}]\n",
                    ),
                ),
                (
                    "overlays/prod/replicas.yaml",
                    file(
                        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n",
                    ),
                ),
                (
                    "overlays/prod/extra.yaml",
                    file("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"),
                ),
                (
                    "overlays/prod/link.yaml",
                    TreeEntry::Symlink("extra.yaml".into()),
                ),
            ],
        );
        let r = kubectl_renderer(dir.path());
        let plain = r
            .render(URL, &*snap, &source("overlays/prod", json!({})), TARGET)
            .unwrap();
        assert_eq!(plain.source_type, SourceType::Kustomize);
        assert_eq!(names(&plain), ["web-prod"]);
        assert_eq!(plain.objects[0]["spec"]["replicas"], 2);

        let options = json!({"kustomize": {
            "images": ["nginx=registry.example.com/nginx:2.0"],
            "namePrefix": "team-",
            "namespace": "shop",
            "commonLabels": {"team": "shop"},
            "replicas": [{"name": "web", "count": 5}],
        }});
        let r2 = r
            .render(URL, &*snap, &source("overlays/prod", options), TARGET)
            .unwrap();
        let web = &r2.objects[0];
        assert_eq!(web["metadata"]["name"], "team-web-prod");
        assert_eq!(web["metadata"]["namespace"], "shop");
        assert_eq!(web["metadata"]["labels"]["team"], "shop");
        assert_eq!(web["spec"]["selector"]["matchLabels"]["team"], "shop");
        assert_eq!(web["spec"]["replicas"], 5);
        assert_eq!(
            web["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example.com/nginx:2.0"
        );
        // The user's tree is untouched and shared: the plain render is unchanged.
        let tree = dir
            .path()
            .join("work/trees")
            .join(snap.commit())
            .join("repo");
        assert_eq!(
            std::fs::read_to_string(tree.join("base/kustomization.yaml")).unwrap(),
            "resources: [deploy.yaml]\n"
        );
        let again = kubectl_renderer(dir.path())
            .render(URL, &*snap, &source("overlays/prod", json!({})), TARGET)
            .unwrap();
        assert_eq!(again, plain);
        // In-repo symlinks are materialized as symlinks.
        assert!(tree.join("overlays/prod/link.yaml").is_symlink());

        // Options on a base that has no overlay (the wrapper sits next to the tree).
        let base = source("base", json!({"kustomize": {"namePrefix": "x-"}}));
        assert_eq!(
            names(&r.render(URL, &*snap, &base, TARGET).unwrap()),
            ["x-web"]
        );
    }

    #[test]
    fn kustomize_errors_and_symlinks_out_of_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let snap = git_snapshot(
            dir.path(),
            &[
                ("app/kustomization.yaml", file("resources: [secret.yaml]\n")),
                (
                    "app/secret.yaml",
                    TreeEntry::Symlink("../../../../etc/passwd".into()),
                ),
                (
                    "broken/kustomization.yaml",
                    file("resources: [missing.yaml]\n"),
                ),
            ],
        );
        let r = kubectl_renderer(dir.path());
        let err = r
            .render(URL, &*snap, &source("app", json!({})), TARGET)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "symlink app/secret.yaml: points outside the repository"
        );
        // Nothing was written for the refused tree.
        assert!(!dir.path().join("work/trees").join(snap.commit()).exists());

        let ok = git_snapshot(
            &dir.path().join("2"),
            &[(
                "broken/kustomization.yaml",
                file("resources: [missing.yaml]\n"),
            )],
        );
        let err = r
            .render(URL, &*ok, &source("broken", json!({})), TARGET)
            .unwrap_err();
        assert_eq!(err.category(), "tool");
        let err = err.to_string();
        assert!(
            err.starts_with("kustomize failed: exit status: 1: "),
            "{err}"
        );
        assert!(
            err.contains("<repo>/broken/missing.yaml") && !err.contains("/work/"),
            "{err}"
        );
    }
}
