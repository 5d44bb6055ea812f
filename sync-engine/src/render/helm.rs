//! Helm: `helm template` of a chart in the tree on disk, with Argo CD's `helm` options;
//! value files must be files of the repository.

use serde::Deserialize;
use serde_json::Value;

use super::error::RenderError;
use super::manifests::tool_output;
use super::paths::{Resolved, Tree, join};
use super::tools::run_tool;
use super::{RenderTarget, Renderer, display_path, options};

/// `spec.source.helm`, the options Argo CD passes to `helm template`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HelmOptions {
    #[serde(default)]
    value_files: Vec<String>,
    #[serde(default)]
    values: String,
    #[serde(default)]
    values_object: Option<Value>,
    #[serde(default)]
    parameters: Vec<HelmParameter>,
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
    kube_version: String,
    #[serde(default)]
    api_versions: Vec<String>,
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

/// The `helm template` arguments for a chart in the working directory's `chart`:
/// `value_files` are paths relative to the working directory, `inline_values` the file
/// holding `values`/`valuesObject`.
fn helm_args(
    chart: &str,
    opts: &HelmOptions,
    target: RenderTarget<'_>,
    value_files: &[String],
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
    if !opts.kube_version.is_empty() {
        args.extend(["--kube-version".to_owned(), opts.kube_version.clone()]);
    }
    for file in value_files.iter().map(String::as_str).chain(inline_values) {
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
    for v in &opts.api_versions {
        args.extend(["--api-versions".to_owned(), v.clone()]);
    }
    if !opts.skip_crds {
        args.push("--include-crds".to_owned());
    }
    if opts.skip_tests {
        args.push("--skip-tests".to_owned());
    }
    args
}

/// Value files must be files of this repository: URLs, `$ref/` paths (another source)
/// and absolute paths are refused before anything is resolved.
fn refuse_foreign_value_file(file: &str) -> Result<(), RenderError> {
    if file.contains("://") || file.starts_with('$') || file.starts_with('/') {
        return Err(RenderError::Unsupported {
            what: format!("helm.valueFiles entry {file:?} (only files of this repository)"),
        });
    }
    Ok(())
}

/// The pure half of a Helm render: the Application's `helm` block parsed, its value files
/// checked as the render checks them (taken as files of the chart directory `app`, without
/// looking at a tree) and turned into `helm template` arguments. Public so the option
/// parsing can be tested on arbitrary blocks without a tree or a binary.
pub fn helm_template_args(
    options_value: Option<&Value>,
    app: &str,
    target: RenderTarget<'_>,
) -> Result<Vec<String>, RenderError> {
    let opts: HelmOptions = options("helm", options_value)?;
    let mut value_files = Vec::new();
    for file in &opts.value_files {
        refuse_foreign_value_file(file)?;
        value_files.push(format!("repo/{}", join(app, file)));
    }
    let inline = (opts.values_object.as_ref().is_some_and(|v| !v.is_null())
        || !opts.values.is_empty())
    .then_some("values.yaml");
    Ok(helm_args(
        &format!("repo/{}", display_path(app)),
        &opts,
        target,
        &value_files,
        inline,
    ))
}

impl Renderer {
    pub(super) fn helm(
        &self,
        tree: &Tree<'_>,
        app: &str,
        options_value: Option<&Value>,
        target: RenderTarget<'_>,
    ) -> Result<Vec<Value>, RenderError> {
        let opts: HelmOptions = options("helm", options_value)?;
        let Some(helm) = &self.tools.helm else {
            return Err(RenderError::HelmUnavailable {
                path: display_path(app),
            });
        };
        // Value files are relative to the chart and must stay in the repository.
        let mut value_files = Vec::new();
        for file in &opts.value_files {
            refuse_foreign_value_file(file)?;
            match tree.resolve(&join(app, file))? {
                Resolved::Inside(f) if tree.is_file(&f) => value_files.push(format!("repo/{f}")),
                Resolved::Outside => {
                    return Err(RenderError::Options {
                        field: "helm.valueFiles".to_owned(),
                        message: format!("{file:?} leaves the repository"),
                    });
                }
                Resolved::Inside(_) if opts.ignore_missing_value_files => {}
                Resolved::Inside(_) => {
                    return Err(RenderError::Options {
                        field: "helm.valueFiles".to_owned(),
                        message: format!("{file:?} is not a file in the repository"),
                    });
                }
            }
        }
        let dir = self.materialize(tree)?;
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
            &format!("repo/{}", display_path(app)),
            &opts,
            target,
            &value_files,
            values_name.as_deref(),
        );
        let out = run_tool("helm", helm, &args, &dir, &self.limits)?;
        tool_output("helm", &out)
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
            })),
        )
        .unwrap();
        let args = helm_args(
            "repo/chart",
            &opts,
            TARGET,
            &["repo/chart/v.yaml".to_owned()],
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
                "--api-versions",
                "v1",
                "--include-crds",
                "--skip-tests",
            ]
        );
        let opts: HelmOptions = options(
            "helm",
            Some(&json!({"releaseName": "r", "namespace": "n2", "skipCrds": true})),
        )
        .unwrap();
        assert_eq!(
            helm_args("repo/c", &opts, TARGET, &[], None),
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
        assert!(data["args"].as_str().unwrap().starts_with("template repo/chart --name-template app --namespace ns --values repo/chart/values-prod.yaml --values values-"));

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
}
