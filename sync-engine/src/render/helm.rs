//! Helm: `helm template` of a chart (in a Git tree, or a package from a Helm repository or
//! an OCI registry) with Argo CD's `helm` options. Value files and file parameters are
//! files of the chart's own tree (confined to it, symlinks followed inside only) or, as
//! `$ref/path`, of another source of the Application with that `ref`; URLs and absolute
//! paths are refused. A chart whose `dependencies` are not in its `charts/` gets them from
//! [`Inputs::dependencies`] first (`helm_deps`).

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::error::RenderError;
use super::manifests::tool_output;
use super::paths::{Resolved, Tree, join};
use super::tools::run_tool;
use super::{Inputs, RenderTarget, Renderer, display_path, options};

/// `spec.source.helm`, the options Argo CD passes to `helm template`.
#[derive(Debug, Default, Deserialize)]
// Argo CD's own switches, one field each.
#[allow(clippy::struct_excessive_bools)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct HelmOptions {
    #[serde(default)]
    value_files: Vec<String>,
    #[serde(default)]
    values: String,
    #[serde(default)]
    values_object: Option<Value>,
    #[serde(default)]
    parameters: Vec<HelmParameter>,
    #[serde(default)]
    file_parameters: Vec<HelmFileParameter>,
    #[serde(default)]
    release_name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    ignore_missing_value_files: bool,
    #[serde(default)]
    skip_crds: bool,
    #[serde(default)]
    skip_tests: bool,
    #[serde(default)]
    skip_schema_validation: bool,
    #[serde(default)]
    kube_version: String,
    #[serde(default)]
    api_versions: Vec<String>,
    /// Send the repository's credentials to every host (chart downloads, dependencies).
    #[serde(default)]
    pub(super) pass_credentials: bool,
    /// Argo CD's Helm major version (`v3`); Argosy runs the `helm` it has.
    #[serde(default)]
    #[allow(dead_code)]
    version: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HelmParameter {
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    force_string: bool,
}

/// `--set-file name=path`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HelmFileParameter {
    name: String,
    path: String,
}

/// Files handed to `helm template`, resolved to paths on disk.
struct ResolvedFiles {
    value_files: Vec<String>,
    /// (parameter name, path).
    set_files: Vec<(String, String)>,
}

/// The `helm template` arguments for `chart`: `files` resolved, `inline_values` the file
/// holding `values`/`valuesObject`.
fn helm_args(
    chart: &str,
    opts: &HelmOptions,
    target: RenderTarget<'_>,
    files: &ResolvedFiles,
    inline_values: Option<&str>,
) -> Vec<String> {
    let release = if opts.release_name.is_empty() {
        target.app_name
    } else {
        &opts.release_name
    };
    let namespace = if opts.namespace.is_empty() {
        target.namespace
    } else {
        &opts.namespace
    };
    let mut args = vec![
        "template".to_owned(),
        chart.to_owned(),
        "--name-template".to_owned(),
        release.to_owned(),
    ];
    if !namespace.is_empty() {
        args.extend(["--namespace".to_owned(), namespace.to_owned()]);
    }
    // The source's own settings win over the destination's, as in Argo CD.
    let kube_version = if opts.kube_version.is_empty() {
        target.kube_version
    } else {
        &opts.kube_version
    };
    if !kube_version.is_empty() {
        args.extend(["--kube-version".to_owned(), kube_version.to_owned()]);
    }
    for file in files
        .value_files
        .iter()
        .map(String::as_str)
        .chain(inline_values)
    {
        args.extend(["--values".to_owned(), file.to_owned()]);
    }
    for p in &opts.parameters {
        let flag = if p.force_string {
            "--set-string"
        } else {
            "--set"
        };
        args.extend([flag.to_owned(), format!("{}={}", p.name, p.value)]);
    }
    for (name, path) in &files.set_files {
        args.extend(["--set-file".to_owned(), format!("{name}={path}")]);
    }
    let api_versions = if opts.api_versions.is_empty() {
        target.api_versions
    } else {
        &opts.api_versions
    };
    for v in api_versions {
        args.extend(["--api-versions".to_owned(), v.clone()]);
    }
    if !opts.skip_crds {
        args.push("--include-crds".to_owned());
    }
    if opts.skip_tests {
        args.push("--skip-tests".to_owned());
    }
    if opts.skip_schema_validation {
        args.push("--skip-schema-validation".to_owned());
    }
    args
}

/// Where a value file or file parameter lives: this tree, or the tree of the source with
/// `ref` `name` (`$name/path`). URLs and absolute paths are refused.
enum FileRef<'f> {
    Own(&'f str),
    Ref { name: &'f str, path: &'f str },
}

fn file_ref<'f>(field: &str, file: &'f str) -> Result<FileRef<'f>, RenderError> {
    if file.contains("://") || file.starts_with('/') {
        return Err(RenderError::Unsupported {
            what: format!("{field} entry {file:?} (only files of the Application's sources)"),
        });
    }
    match file.strip_prefix('$') {
        Some(rest) => {
            let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
            Ok(FileRef::Ref { name, path })
        }
        None => Ok(FileRef::Own(file)),
    }
}

/// The pure half of a Helm render: the Application's `helm` block parsed, its files checked
/// as the render checks them (taken as files of the chart directory `app`, with no source
/// to reference, without looking at a tree) and turned into `helm template` arguments.
/// Public so the option parsing can be tested on arbitrary blocks without a tree or a binary.
pub fn helm_template_args(
    options_value: Option<&Value>,
    app: &str,
    target: RenderTarget<'_>,
) -> Result<Vec<String>, RenderError> {
    let opts: HelmOptions = options("helm", options_value)?;
    let own = |field: &str, file: &str| match file_ref(field, file)? {
        FileRef::Own(file) => Ok(format!("repo/{}", join(app, file))),
        FileRef::Ref { name, .. } => Err(no_such_ref(field, file, name)),
    };
    let files = ResolvedFiles {
        value_files: opts
            .value_files
            .iter()
            .map(|f| own("helm.valueFiles", f))
            .collect::<Result<_, _>>()?,
        set_files: opts
            .file_parameters
            .iter()
            .map(|p| Ok((p.name.clone(), own("helm.fileParameters", &p.path)?)))
            .collect::<Result<_, RenderError>>()?,
    };
    let inline = (opts.values_object.as_ref().is_some_and(|v| !v.is_null())
        || !opts.values.is_empty())
    .then_some("values.yaml");
    Ok(helm_args(
        &format!("repo/{}", display_path(app)),
        &opts,
        target,
        &files,
        inline,
    ))
}

/// `message` with the controller's own directories cut out of the paths helm names, as
/// Argo CD redacts its checkout paths: `<work>/trees/<commit>/repo/customers/a.yaml` reads
/// `customers/a.yaml` (a path of its repository), a chart copied with its dependencies
/// reads `<chart>`. Temporary paths would also change the message on every retry.
fn without_work_paths(message: &str, work_dir: &std::path::Path) -> String {
    let mut out = message.to_owned();
    for (root, end, replacement) in [
        ("trees", "/repo/", ""),
        ("dependencies", "/chart", "<chart>"),
    ] {
        let prefix = format!("{}/", work_dir.join(root).display());
        while let Some(start) = out.find(&prefix) {
            let rest = &out[start + prefix.len()..];
            let Some(cut) = rest.find(end) else { break };
            let tail = rest[cut + end.len()..].to_owned();
            out = format!("{}{replacement}{tail}", &out[..start]);
        }
    }
    out
}

fn no_such_ref(field: &str, file: &str, name: &str) -> RenderError {
    RenderError::Options {
        field: field.to_owned(),
        message: format!("{file:?}: no source of this Application has `ref: {name}`"),
    }
}

impl Renderer {
    pub(super) fn helm(
        &self,
        tree: &Tree<'_>,
        app: &str,
        options_value: Option<&Value>,
        target: RenderTarget<'_>,
        inputs: Inputs<'_>,
    ) -> Result<Vec<Value>, RenderError> {
        let opts: HelmOptions = options("helm", options_value)?;
        let Some(helm) = &self.tools.helm else {
            return Err(RenderError::HelmUnavailable {
                path: display_path(app),
            });
        };
        let mut files = ResolvedFiles {
            value_files: Vec::new(),
            set_files: Vec::new(),
        };
        for file in &opts.value_files {
            let path = self.file_on_disk(tree, app, "helm.valueFiles", file, inputs)?;
            match path {
                Some(path) => files.value_files.push(path),
                None if opts.ignore_missing_value_files => {}
                None => {
                    return Err(RenderError::Options {
                        field: "helm.valueFiles".to_owned(),
                        message: format!("{file:?} is not a file in the repository"),
                    });
                }
            }
        }
        for p in &opts.file_parameters {
            let path = self
                .file_on_disk(tree, app, "helm.fileParameters", &p.path, inputs)?
                .ok_or_else(|| RenderError::Options {
                    field: "helm.fileParameters".to_owned(),
                    message: format!("{:?} is not a file in the repository", p.path),
                })?;
            files.set_files.push((p.name.clone(), path));
        }
        let dir = self.materialize(tree)?;
        // A chart whose dependencies are missing is rendered from a copy with them.
        let with_dependencies = self.with_dependencies(tree, app, &opts, inputs)?;
        let chart_dir = with_dependencies
            .as_ref()
            .map_or_else(|| dir.join("repo").join(app), |d| d.chart.clone());
        let materialize_err = |e: std::io::Error| RenderError::Materialize {
            commit: tree.snap.commit().to_owned(),
            message: e.to_string(),
        };
        // `valuesObject` wins over `values`, as in Argo CD.
        let inline = match (&opts.values_object, opts.values.is_empty()) {
            (Some(v), _) if !v.is_null() => Some(v.to_string()),
            (_, false) => Some(opts.values.clone()),
            _ => None,
        };
        let values_file = match inline {
            Some(text) => {
                let mut file = tempfile::Builder::new()
                    .prefix("values-")
                    .suffix(".yaml")
                    .tempfile_in(&dir)
                    .map_err(materialize_err)?;
                std::io::Write::write_all(&mut file, text.as_bytes()).map_err(materialize_err)?;
                Some(file)
            }
            None => None,
        };
        let values_name = values_file
            .as_ref()
            .and_then(|f| f.path().file_name())
            .map(|n| n.to_string_lossy().into_owned());
        let args = helm_args(
            &chart_dir.to_string_lossy(),
            &opts,
            target,
            &files,
            values_name.as_deref(),
        );
        let out = run_tool("helm", helm, &args, &dir, &self.limits).map_err(|e| match e {
            RenderError::Tool { tool, message } => RenderError::Tool {
                tool,
                message: without_work_paths(&message, &self.work_dir),
            },
            other => other,
        })?;
        tool_output("helm", &out)
    }

    /// A value file or file parameter as a path on disk (the tree it belongs to written
    /// out), `None` when it is not a file; an error when it leaves its tree or names no
    /// source.
    fn file_on_disk(
        &self,
        tree: &Tree<'_>,
        app: &str,
        field: &str,
        file: &str,
        inputs: Inputs<'_>,
    ) -> Result<Option<String>, RenderError> {
        let (in_tree, path) = match file_ref(field, file)? {
            FileRef::Own(path) => (Tree { snap: tree.snap }, join(app, path)),
            FileRef::Ref { name, path } => {
                let snap = inputs
                    .refs
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, snap)| snap.as_ref())
                    .ok_or_else(|| no_such_ref(field, file, name))?;
                (Tree { snap }, path.to_owned())
            }
        };
        match in_tree.resolve(&path)? {
            Resolved::Inside(f) if in_tree.is_file(&f) => {
                let root: PathBuf = self.materialize(&in_tree)?.join("repo");
                Ok(Some(root.join(f).to_string_lossy().into_owned()))
            }
            Resolved::Outside => Err(RenderError::Options {
                field: field.to_owned(),
                message: format!("{file:?} leaves the repository"),
            }),
            Resolved::Inside(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testing::*;

    #[test]
    fn helm_arguments_follow_argo() {
        let opts: HelmOptions = options(
            "helm",
            Some(&json!({
                "parameters": [{"name": "a", "value": "1"}, {"name": "b", "value": "x,y", "forceString": true}],
                "kubeVersion": "1.30", "apiVersions": ["v1"], "skipTests": true,
                "skipSchemaValidation": true, "passCredentials": true, "version": "v3",
            })),
        )
        .unwrap();
        let args = helm_args(
            "repo/chart",
            &opts,
            TARGET,
            &ResolvedFiles {
                value_files: vec!["repo/chart/v.yaml".to_owned()],
                set_files: vec![("cert".to_owned(), "repo/chart/c.pem".to_owned())],
            },
            Some("values-1.yaml"),
        );
        assert_eq!(
            args,
            [
                "template",
                "repo/chart",
                "--name-template",
                "app",
                "--namespace",
                "ns",
                "--kube-version",
                "1.30",
                "--values",
                "repo/chart/v.yaml",
                "--values",
                "values-1.yaml",
                "--set",
                "a=1",
                "--set-string",
                "b=x,y",
                "--set-file",
                "cert=repo/chart/c.pem",
                "--api-versions",
                "v1",
                "--include-crds",
                "--skip-tests",
                "--skip-schema-validation",
            ]
        );
        let opts: HelmOptions = options(
            "helm",
            Some(&json!({"releaseName": "r", "namespace": "n2", "skipCrds": true})),
        )
        .unwrap();
        assert_eq!(
            helm_args(
                "repo/c",
                &opts,
                TARGET,
                &ResolvedFiles {
                    value_files: vec![],
                    set_files: vec![]
                },
                None
            ),
            [
                "template",
                "repo/c",
                "--name-template",
                "r",
                "--namespace",
                "n2"
            ]
        );
    }

    #[test]
    fn helm_runs_the_helm_binary_with_the_materialized_chart() {
        let dir = tempfile::tempdir().unwrap();
        let snap = git_snapshot(
            dir.path(),
            &[
                ("chart/Chart.yaml", file("name: c\nversion: 1.0.0\n")),
                ("chart/values-prod.yaml", file("replicas: 3\n")),
            ],
        );
        // A stand-in `helm` that proves it ran in the tree: it reports its arguments and
        // the value files it could read.
        let fake = script(
            dir.path(),
            "helm",
            r#"echo "apiVersion: v1
kind: ConfigMap
metadata: {name: $4}
data:
  args: \"$*\"
  chart: \"$(cat $2/Chart.yaml | head -1)\"
  values: \"$(cat $8)\"
  inline: '$(cat ${10})'""#,
        );
        let tools = Tools {
            kustomize: None,
            helm: Some(fake),
        };
        let r = Renderer::with_tools(dir.path().join("work"), Limits::default(), tools);
        let src = source(
            "chart",
            json!({"helm": {"valueFiles": ["values-prod.yaml"], "valuesObject": {"a": 1}}}),
        );
        let out = r.render(URL, &*snap, &src, TARGET).unwrap();
        assert_eq!(out.source_type, SourceType::Helm);
        let data = &out.objects[0]["data"];
        assert_eq!(out.objects[0]["metadata"]["name"], "app");
        assert_eq!(data["chart"], "name: c");
        assert_eq!(data["values"], "replicas: 3");
        assert_eq!(data["inline"], r#"{"a":1}"#);
        // The chart and the value files are absolute paths into the materialized tree.
        let args = data["args"].as_str().unwrap();
        let work = dir.path().join("work").join("trees");
        let chart = format!("{}/{}/repo/chart", work.display(), snap.commit());
        assert!(
            args.starts_with(&format!(
                "template {chart} --name-template app --namespace ns --values {chart}/values-prod.yaml --values values-"
            )),
            "{args}"
        );

        let missing = source("chart", json!({"helm": {"valueFiles": ["nope.yaml"]}}));
        let err = r
            .render(URL, &*snap, &missing, TARGET)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "helm.valueFiles: \"nope.yaml\" is not a file in the repository"
        );
        let escape = source("chart", json!({"helm": {"valueFiles": ["../../x.yaml"]}}));
        let err = r
            .render(URL, &*snap, &escape, TARGET)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "helm.valueFiles: \"../../x.yaml\" leaves the repository"
        );
    }

    /// A stand-in `helm` printing its arguments and the files of the chart it was given.
    fn listing_helm(dir: &Path) -> Renderer {
        let fake = script(
            dir,
            "helm",
            r#"echo "apiVersion: v1
kind: ConfigMap
metadata: {name: $4}
data:
  args: \"$*\"
  files: \"$(cd $2 && find . -type f | sort | tr '\n' ' ')\"""#,
        );
        let tools = Tools {
            kustomize: None,
            helm: Some(fake),
        };
        Renderer::with_tools(dir.join("work"), Limits::default(), tools)
    }

    /// Serves one package for every dependency asked for, and records the requests.
    struct OnePackage {
        package: Arc<dyn RepoSnapshot>,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl super::super::ChartFetcher for OnePackage {
        fn scope(&self) -> &'static str {
            "tenant"
        }

        fn fetch_chart(
            &self,
            repository: &str,
            name: &str,
            version: &str,
            pass_credentials: bool,
        ) -> Result<(String, Arc<dyn RepoSnapshot>), String> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("{repository} {name} {version} {pass_credentials}"));
            Ok(("1.2.3".to_owned(), self.package.clone()))
        }
    }

    #[test]
    fn value_files_of_ref_sources_and_file_parameters_are_files_of_their_trees() {
        let dir = tempfile::tempdir().unwrap();
        let r = listing_helm(dir.path());
        let snap = git_snapshot(
            &dir.path().join("app"),
            &[
                ("chart/Chart.yaml", file("name: c\nversion: 1.0.0\n")),
                ("chart/ca.pem", file("PEM\n")),
            ],
        );
        let values = git_snapshot(
            &dir.path().join("values"),
            &[("customers/acme.yaml", file("replicas: 2\n"))],
        );
        let refs = [("values".to_owned(), values.clone())];
        let inputs = super::super::Inputs {
            refs: &refs,
            dependencies: None,
        };
        let src = source(
            "chart",
            json!({"helm": {
                "valueFiles": ["$values/customers/acme.yaml", "$values/customers/missing.yaml"],
                "ignoreMissingValueFiles": true,
                "fileParameters": [{"name": "tls.ca", "path": "ca.pem"}],
            }}),
        );
        let out = r.render_with(URL, &*snap, &src, TARGET, inputs).unwrap();
        let args = out.objects[0]["data"]["args"].as_str().unwrap().to_owned();
        let trees = dir.path().join("work").join("trees");
        let acme = format!(
            "{}/{}/repo/customers/acme.yaml",
            trees.display(),
            values.commit()
        );
        assert!(args.contains(&format!("--values {acme}")), "{args}");
        assert_eq!(std::fs::read_to_string(&acme).unwrap(), "replicas: 2\n");
        assert!(!args.contains("missing.yaml"), "{args}");
        assert!(args.contains(&format!(
            "--set-file tls.ca={}/{}/repo/chart/ca.pem",
            trees.display(),
            snap.commit()
        )));

        let err = |helm: Value| {
            r.render_with(
                URL,
                &*snap,
                &source("chart", json!({"helm": helm})),
                TARGET,
                inputs,
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            err(json!({"valueFiles": ["$other/a.yaml"]})),
            "helm.valueFiles: \"$other/a.yaml\": no source of this Application has `ref: other`"
        );
        assert_eq!(
            err(json!({"valueFiles": ["$values/../../etc/passwd"]})),
            "helm.valueFiles: \"$values/../../etc/passwd\" leaves the repository"
        );
        assert_eq!(
            err(json!({"fileParameters": [{"name": "x", "path": "/etc/passwd"}]})),
            "helm.fileParameters entry \"/etc/passwd\" (only files of the Application's sources) is not supported"
        );
        assert_eq!(
            err(json!({"valueFiles": ["$values/customers/missing.yaml"]})),
            "helm.valueFiles: \"$values/customers/missing.yaml\" is not a file in the repository"
        );
    }

    #[test]
    fn missing_dependencies_are_placed_in_a_copy_of_the_chart() {
        let dir = tempfile::tempdir().unwrap();
        let r = listing_helm(dir.path());
        let chart_yaml = "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n\
            - {name: redis, version: '>=1.0.0', repository: 'https://charts.example.com/stable'}\n\
            - {name: common, version: 0.1.0, repository: 'file://../common'}\n\
            - {name: vendored, version: 2.0.0, repository: 'https://charts.example.com/stable'}\n";
        let snap = git_snapshot(
            &dir.path().join("app"),
            &[
                ("charts/app/Chart.yaml", file(chart_yaml)),
                (
                    "charts/app/Chart.lock",
                    file(
                        "dependencies:\n- {name: redis, version: 1.0.7, repository: 'https://charts.example.com/stable'}\n",
                    ),
                ),
                ("charts/app/charts/vendored-2.0.0.tgz", file("tgz")),
                ("charts/common/Chart.yaml", file("name: common\n")),
                ("charts/common/templates/_h.tpl", file("{{/* */}}")),
            ],
        );
        let package = crate::charts::PackagedChart::read(
            &crate::charts::archive::tests::tgz(&[
                (
                    "redis/Chart.yaml",
                    "name: redis\nversion: 1.2.3\n",
                    tar::EntryType::Regular,
                ),
                ("redis/values.yaml", "a: 1\n", tar::EntryType::Regular),
            ]),
            1 << 20,
        )
        .unwrap();
        let fetcher = OnePackage {
            package: Arc::new(package),
            asked: std::sync::Mutex::default(),
        };
        let inputs = super::super::Inputs {
            refs: &[],
            dependencies: Some(&fetcher),
        };
        let src = source("charts/app", json!({"helm": {"passCredentials": true}}));
        let out = r.render_with(URL, &*snap, &src, TARGET, inputs).unwrap();
        assert_eq!(
            out.objects[0]["data"]["files"],
            "./Chart.lock ./Chart.yaml ./charts/common/Chart.yaml ./charts/common/templates/_h.tpl \
             ./charts/redis-1.2.3/Chart.yaml ./charts/redis-1.2.3/values.yaml ./charts/vendored-2.0.0.tgz "
        );
        // The lock's version is asked for, not the range; the vendored chart not at all.
        assert_eq!(
            *fetcher.asked.lock().unwrap(),
            ["https://charts.example.com/stable redis 1.0.7 true"]
        );
        // The shared tree was not written to, and the scratch copy is gone.
        let shared = dir
            .path()
            .join("work/trees")
            .join(snap.commit())
            .join("repo/charts/app/charts");
        assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 1);
        assert_eq!(
            std::fs::read_dir(dir.path().join("work/dependencies"))
                .unwrap()
                .count(),
            0
        );

        let escaping = git_snapshot(
            &dir.path().join("escape"),
            &[(
                "app/Chart.yaml",
                file(
                    "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n- {name: x, repository: 'file://../../../etc'}\n",
                ),
            )],
        );
        let err = r
            .render_with(
                URL,
                &*escaping,
                &source("app", json!({"helm": {}})),
                TARGET,
                inputs,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "chart dependencies: x: file://../../../etc leaves the repository"
        );
        let no_fetcher = r.render(URL, &*snap, &src, TARGET).unwrap_err().to_string();
        assert_eq!(
            no_fetcher,
            "chart dependencies: redis: no chart repository access here"
        );
    }

    #[test]
    fn a_chart_package_renders_from_its_top_directory() {
        let dir = tempfile::tempdir().unwrap();
        let r = listing_helm(dir.path());
        let package = crate::charts::PackagedChart::read(
            &crate::charts::archive::tests::tgz(&[
                (
                    "web/Chart.yaml",
                    "name: web\nversion: 1.2.3\n",
                    tar::EntryType::Regular,
                ),
                ("web/values-prod.yaml", "a: 1\n", tar::EntryType::Regular),
            ]),
            1 << 20,
        )
        .unwrap();
        let mut src = source("", json!({"helm": {"valueFiles": ["values-prod.yaml"]}}));
        src.chart = "web".to_owned();
        let out = r.render(URL, &package, &src, TARGET).unwrap();
        assert_eq!(out.source_type, SourceType::Helm);
        assert_eq!(out.commit, package.commit());
        let args = out.objects[0]["data"]["args"].as_str().unwrap();
        assert!(args.contains("/repo/web/values-prod.yaml"), "{args}");
    }

    #[test]
    fn helm_errors_name_repository_paths_not_the_work_directory() {
        let work = std::path::Path::new("/cache/render");
        assert_eq!(
            without_work_paths(
                "failed to parse /cache/render/trees/08e1/repo/customers/broken.yaml: bad; \
                 also /cache/render/trees/ab/repo/x.yaml",
                work
            ),
            "failed to parse customers/broken.yaml: bad; also x.yaml"
        );
        assert_eq!(
            without_work_paths(
                "/cache/render/dependencies/.tmpX1/chart/templates/a.yaml: error",
                work
            ),
            "<chart>/templates/a.yaml: error"
        );
        assert_eq!(without_work_paths("/elsewhere/x", work), "/elsewhere/x");
    }

    #[test]
    fn the_destination_cluster_gives_kube_version_and_api_versions_unless_the_source_does() {
        let cluster_apis = ["apps/v1".to_owned(), "policy/v1beta1".to_owned()];
        let target = RenderTarget {
            kube_version: "1.20.2",
            api_versions: &cluster_apis,
            ..TARGET
        };
        let none = ResolvedFiles {
            value_files: vec![],
            set_files: vec![],
        };
        let args = helm_args("c", &HelmOptions::default(), target, &none, None);
        assert_eq!(
            args[6..],
            [
                "--kube-version",
                "1.20.2",
                "--api-versions",
                "apps/v1",
                "--api-versions",
                "policy/v1beta1",
                "--include-crds"
            ]
        );
        let own: HelmOptions = options(
            "helm",
            Some(&json!({"kubeVersion": "1.31.0", "apiVersions": ["x.io/v1"]})),
        )
        .unwrap();
        let args = helm_args("c", &own, target, &none, None);
        assert_eq!(
            args[6..],
            [
                "--kube-version",
                "1.31.0",
                "--api-versions",
                "x.io/v1",
                "--include-crds"
            ]
        );
    }
}
