//! The pure generate -> render pipeline: from an `ApplicationSet` and its sources to the
//! Applications it wants (Argo CD's `GenerateApplications` plus validation).
//!
//! For each top-level generator entry: run it, compile its merged template once, render
//! every parameter set (`render_application` with the `ApplicationSet`'s finalizer policy,
//! then `templatePatch`), force the Application into the `ApplicationSet`'s namespace and
//! decode it. Any generator or render error fails the whole generation: the caller must
//! then create, update and delete nothing. Validation problems ([`crate::validate`]) only
//! exclude the Applications concerned.
//!
//! Built for 100,000 Applications per `ApplicationSet`: parameter sets are rendered in
//! rounds of a few thousand spread over the cores (a top-level matrix produces its combinations
//! round by round, in place when its second child does not depend on the first), and their
//! maps are dropped once rendered unless [`PipelineOptions::keep_params`] asks for them.

use std::time::Duration;

use argosy_crds::{Application, ApplicationSet};
use argosy_templates::{
    Mode, PatchError, RenderError, TemplateError, ValueTemplate, apply_template_patch,
    render_application_with_policy,
};
use serde_json::Value;

pub use crate::app::GeneratedApp;
use crate::combine::SharedMatrix;
use crate::context::{Context, Depth};
use crate::error::GeneratorError;
use crate::generator::{Output, post_select, requeue_after, transform};
use crate::params::{ParamSet, Params};
use crate::selector::Selector;
use crate::source::Sources;
use crate::validate::{ValidationError, validate};

/// Settings of the pipeline that are not part of the `ApplicationSet`.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Requeue interval of Git generators without `requeueAfterSeconds` (Argo CD's
    /// `ARGOCD_APPLICATIONSET_CONTROLLER_REQUEUE_AFTER`, 3 minutes by default).
    pub default_git_requeue: Duration,
    /// Keep each Application's parameters and their provenance in
    /// [`GeneratedApp::params`] (`argosy generate --explain`). Off by default: at 100,000
    /// Applications they would take about as much memory as the Applications.
    pub keep_params: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            default_git_requeue: Duration::from_secs(180),
            keep_params: false,
        }
    }
}

/// What an `ApplicationSet` generates.
#[derive(Debug)]
pub struct Generated {
    /// The valid Applications, sorted by name.
    pub applications: Vec<GeneratedApp>,
    /// Per-Application validation problems, sorted by Application name.
    pub validation_errors: Vec<ValidationError>,
    /// Names of generated Applications that failed validation (sorted, unique). They are
    /// not created or updated, but still count as present: do not delete them.
    pub invalid_app_names: Vec<String>,
    /// When to regenerate: the minimum non-zero interval over the top-level generators.
    pub requeue_after: Option<Duration>,
}

/// Generation failed; nothing may be created, updated or deleted.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// `spec.goTemplateOptions` has an unknown option.
    #[error("spec.goTemplateOptions: {}", one_line(.0))]
    Options(#[source] TemplateError),
    /// A generator failed.
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    /// A field of `spec.template` failed to render.
    #[error("spec.template.{}: {} (parameters from {generator})", source.path, one_line(&source.source))]
    Render {
        /// Field path of the generator whose parameters were used.
        generator: String,
        /// The field and its template error.
        #[source]
        source: RenderError,
    },
    #[error(
        "spec.templatePatch: {} (parameters from {generator})",
        one_line(source)
    )]
    /// `spec.templatePatch` failed to render or apply.
    TemplatePatch {
        /// Field path of the generator whose parameters were used.
        generator: String,
        /// Why the patch failed.
        #[source]
        source: PatchError,
    },
    #[error(
        "spec.template: the rendered Application is invalid: {message} (parameters from {generator})"
    )]
    /// The rendered document does not decode as an Application.
    InvalidApplication {
        /// Field path of the generator whose parameters were used.
        generator: String,
        /// The offending field and the decoding error.
        message: String,
    },
}

/// Error messages quote templates, which may span lines; conditions and events want one.
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().replace('\n', "\\n")
}

impl GenerateError {
    /// A static category for metrics and events: `InvalidSpec`, `GeneratorError`,
    /// `RepoError` or `RenderError`.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Self::Options(_) => "InvalidSpec",
            Self::Generator(e) => e.category(),
            Self::Render { .. } | Self::TemplatePatch { .. } | Self::InvalidApplication { .. } => {
                "RenderError"
            }
        }
    }

    /// Argo CD's `ErrorOccurred` condition reason for this error.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Generator(_) => "ApplicationGenerationFromParamsError",
            _ => "RenderTemplateParamsError",
        }
    }

    /// False only for failures outside the user's control (reading a repository).
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        match self {
            Self::Generator(e) => e.is_user_error(),
            _ => true,
        }
    }
}

/// Runs every generator of `appset`, renders the Applications and validates them.
pub fn generate_applications(
    appset: &ApplicationSet,
    sources: Sources<'_>,
    options: &PipelineOptions,
) -> Result<Generated, GenerateError> {
    let spec = &appset.spec;
    let mode = Mode::from_spec(spec.go_template, &spec.go_template_options)
        .map_err(GenerateError::Options)?;
    let ctx = Context::new(appset, sources, mode);
    let mut apps = Vec::new();
    for (i, entry) in spec.generators.iter().enumerate() {
        let path = format!("spec.generators[{i}]");
        for output in transform(&ctx, entry, &path, Some(&spec.template), Depth::Top)? {
            render_output(&ctx, output, options.keep_params, &mut apps)?;
        }
    }
    let requeue_after = spec
        .generators
        .iter()
        .filter_map(|g| requeue_after(g, Depth::Top, options.default_git_requeue))
        .min();
    let validated = validate(&ctx, apps);
    Ok(Generated {
        applications: validated.valid,
        validation_errors: validated.errors,
        invalid_app_names: validated.invalid_names,
        requeue_after,
    })
}

/// Everything rendering one Application needs, shared by the rendering threads.
struct Renderer<'a> {
    template: ValueTemplate,
    patch: Option<&'a str>,
    mode: &'a Mode,
    namespace: &'a str,
    preserve_resources: bool,
    keep_params: bool,
    generator: &'a str,
}

/// Parameter sets generated and rendered per round: bounds the parameter maps (and
/// per-thread results) alive at once.
const BATCH: usize = 4096;
/// Parameter sets per rendering thread below which one thread is enough.
const MIN_SETS_PER_THREAD: usize = 512;

/// Renders every parameter set of one generator output, in order, into `apps`, round by
/// round, each round split over the available cores. The first error (in generation
/// order) wins.
fn render_output(
    ctx: &Context<'_>,
    mut output: Output<'_>,
    keep_params: bool,
    apps: &mut Vec<GeneratedApp>,
) -> Result<(), GenerateError> {
    let spec = &ctx.appset.spec;
    let path = output.path.clone();
    let generator: &str = &path;
    let renderer = Renderer {
        template: ValueTemplate::compile(&output.template, &ctx.mode).map_err(|source| {
            GenerateError::Render {
                generator: generator.to_owned(),
                source,
            }
        })?,
        patch: spec.template_patch.as_deref(),
        mode: &ctx.mode,
        namespace: ctx.appset.metadata.namespace.as_deref().unwrap_or_default(),
        preserve_resources: spec
            .sync_policy
            .as_ref()
            .is_some_and(|p| p.preserve_resources_on_deletion),
        keep_params,
        generator,
    };
    if let Some(matrix) = output.shared_matrix(ctx)? {
        ctx.release_clusters();
        let selector = output.selector();
        return render_shared_matrix(&renderer, matrix, selector, apps);
    }
    if output.is_ready() {
        ctx.release_clusters();
    }
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let more = output.next_batch(ctx, &mut batch, BATCH)?;
        let chunk = batch.len().div_ceil(threads_for(batch.len())).max(1);
        let parts: Vec<&mut [ParamSet]> = batch.chunks_mut(chunk).collect();
        run_round(parts, apps, chunk, |sets, out| {
            for set in sets {
                let application = renderer.render(&set.params)?;
                let kept = if keep_params {
                    ParamSet::new(std::mem::take(&mut set.params), set.provenance.clone())
                } else {
                    ParamSet::default()
                };
                out.push(renderer.generated(application, kept));
            }
            Ok(())
        })?;
        // Freed here, by the thread that allocated them: cross-thread frees are slow
        // with glibc's allocator.
        batch.clear();
        if !more {
            return Ok(());
        }
    }
}

/// [`render_output`] for a [`SharedMatrix`]: each round takes a range of first-child sets.
fn render_shared_matrix(
    renderer: &Renderer<'_>,
    mut matrix: SharedMatrix,
    selector: Option<&Selector>,
    apps: &mut Vec<GeneratedApp>,
) -> Result<(), GenerateError> {
    let per_round = (BATCH / matrix.second_len().max(1)).max(1);
    let mut start = 0;
    while start < matrix.first_len() {
        let end = (start + per_round).min(matrix.first_len());
        let threads = threads_for((end - start) * matrix.second_len());
        let step = (end - start).div_ceil(threads);
        let parts: Vec<_> = (start..end)
            .step_by(step.max(1))
            .map(|s| s..(s + step).min(end))
            .collect();
        let matrix_ref = &matrix;
        run_round(parts, apps, step * matrix.second_len(), |range, out| {
            matrix_ref.for_each(range, |params, provenance| {
                if selector.is_some_and(|s| !post_select(s, params)) {
                    return Ok(());
                }
                let application = renderer.render(params)?;
                let kept = if renderer.keep_params {
                    ParamSet::new(params.clone(), provenance())
                } else {
                    ParamSet::default()
                };
                out.push(renderer.generated(application, kept));
                Ok(())
            })
        })?;
        matrix.release(start..end);
        start = end;
    }
    Ok(())
}

/// How many threads to render `sets` parameter sets with.
fn threads_for(sets: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.min(sets / MIN_SETS_PER_THREAD).max(1)
}

/// Runs `work` on every part and appends the results to `apps` in part order; the error
/// of the first failing part wins. The first part runs on this thread, the others on
/// one thread each: this thread then reuses the memory it freed (with glibc, memory
/// freed by one thread is only reused by threads allocating from the same arena).
/// `part_size` is about how many Applications a part yields.
fn run_round<P: Send>(
    parts: Vec<P>,
    apps: &mut Vec<GeneratedApp>,
    part_size: usize,
    work: impl Fn(P, &mut Vec<GeneratedApp>) -> Result<(), GenerateError> + Sync,
) -> Result<(), GenerateError> {
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Ok(());
    };
    let work = &work;
    std::thread::scope(|scope| {
        let others: Vec<_> = parts
            .map(|part| {
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(part_size);
                    work(part, &mut out).map(|()| out)
                })
            })
            .collect();
        let mine = work(first, apps);
        let mut results = others.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        mine?;
        results.try_for_each(|result| result.map(|out| apps.extend(out)))
    })
}

impl Renderer<'_> {
    /// Renders the Application of one parameter set.
    fn render(&self, params: &Params) -> Result<Application, GenerateError> {
        let app = self.render_value(params)?;
        // Decoding consumes the document (no copies); on failure it is rendered again to
        // name the offending field.
        serde_json::from_value(app).map_err(|_| self.invalid_application(params))
    }

    /// The rendered, patched Application document, in the `ApplicationSet`'s namespace.
    fn render_value(&self, params: &Params) -> Result<Value, GenerateError> {
        let generator = || self.generator.to_owned();
        let mut app =
            render_application_with_policy(&self.template, params, self.preserve_resources)
                .map_err(|source| GenerateError::Render {
                    generator: generator(),
                    source,
                })?;
        if let Some(patch) = self.patch {
            app = apply_template_patch(&app, patch, params, self.mode).map_err(|source| {
                GenerateError::TemplatePatch {
                    generator: generator(),
                    source,
                }
            })?;
        }
        set_namespace(&mut app, self.namespace);
        Ok(app)
    }

    /// Why the rendered document of `params` is not an Application, naming the field.
    fn invalid_application(&self, params: &Params) -> GenerateError {
        let message = match self.render_value(params) {
            Err(e) => return e,
            Ok(app) => match serde_path_to_error::deserialize::<_, Application>(app) {
                Ok(_) => "cannot be decoded".to_owned(),
                Err(e) => format!("{}: {}", e.path(), e.inner()),
            },
        };
        GenerateError::InvalidApplication {
            generator: self.generator.to_owned(),
            message,
        }
    }

    fn generated(&self, application: Application, params: ParamSet) -> GeneratedApp {
        GeneratedApp {
            application,
            generator_path: self.generator.to_owned(),
            params,
        }
    }
}

/// Generated Applications always live in the `ApplicationSet`'s namespace, whatever the
/// template says: that is the tenancy boundary.
fn set_namespace(app: &mut Value, namespace: &str) {
    if let Value::Object(obj) = app {
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(serde_json::Map::default()));
        if !meta.is_object() {
            *meta = Value::Object(serde_json::Map::default());
        }
        if let Value::Object(meta) = meta {
            meta.insert("namespace".to_owned(), Value::String(namespace.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, appset};
    use serde_json::json;

    fn list_appset(extra: &Value) -> ApplicationSet {
        let mut spec = json!({
            "goTemplate": true,
            "generators": [{"list": {"elements": [
                {"name": "b", "ns": "x"}, {"name": "a", "ns": "y"}, {"name": "b", "ns": "z"}
            ]}}],
            "template": {
                "metadata": {"name": "{{.name}}", "namespace": "elsewhere"},
                "spec": {"project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": "{{.ns}}"}}
            }
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        appset(spec)
    }

    fn run(set: &ApplicationSet, options: &PipelineOptions) -> Result<Generated, GenerateError> {
        let f = Fixture::default();
        generate_applications(set, f.sources(), options)
    }

    #[test]
    fn unknown_undecodable_and_empty_generators_are_errors() {
        let list = json!({"list": {"elements": [{"name": "a"}]}});
        let cases = [
            (
                json!([{"foo": {}}]),
                r#"spec.generators[0]: unknown generator "foo""#,
            ),
            (json!([{}]), "spec.generators[0]: no generator is set"),
            (
                json!([{"matrix": {"generators": [{"foo": {}}, list]}}]),
                r#"spec.generators[0].matrix.generators[0]: unknown generator "foo""#,
            ),
            (
                json!([{"matrix": {"generators": [{"list": {"elements": "x"}}, list]}}]),
                "spec.generators[0].matrix.generators[0]: invalid generator: list.elements: invalid type",
            ),
        ];
        for (generators, expected) in cases {
            let set = appset(json!({"generators": generators}));
            let err = run(&set, &PipelineOptions::default()).unwrap_err();
            assert_eq!(err.category(), "InvalidSpec");
            let err = err.to_string();
            assert!(err.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn renders_sorts_validates_and_keeps_the_first_duplicate() {
        let generated = run(&list_appset(&json!({})), &PipelineOptions::default()).unwrap();
        let apps: Vec<_> = generated
            .applications
            .iter()
            .map(|a| {
                let m = &a.application.metadata;
                (
                    m.name.clone().unwrap(),
                    m.namespace.clone().unwrap(),
                    a.application.spec.destination.namespace.clone(),
                )
            })
            .collect();
        assert_eq!(
            apps,
            [
                ("a".into(), "argocd".into(), "y".into()),
                ("b".into(), "argocd".into(), "x".into())
            ]
        );
        assert_eq!(generated.invalid_app_names, ["b"]);
        assert_eq!(
            generated.validation_errors,
            [ValidationError {
                application: "b".into(),
                message: "ApplicationSet test contains applications with duplicate name: b".into()
            }]
        );
        let first = &generated.applications[0];
        assert_eq!(first.generator_path, "spec.generators[0].list");
        assert!(
            first.params.params.is_empty(),
            "params are dropped by default"
        );
        assert_eq!(
            first.application.metadata.finalizers.as_deref(),
            Some(&["resources-finalizer.argocd.argoproj.io".to_owned()][..])
        );
        assert_eq!(generated.requeue_after, None);
    }

    #[test]
    fn keep_params_keeps_them_with_origins() {
        let options = PipelineOptions {
            keep_params: true,
            ..PipelineOptions::default()
        };
        let generated = run(&list_appset(&json!({})), &options).unwrap();
        let app = &generated.applications[0];
        assert_eq!(app.params.params["name"], "a");
        assert_eq!(
            app.params.origin("ns").map(|o| o.to_string()).as_deref(),
            Some("spec.generators[0].list element 1")
        );
    }

    #[test]
    fn errors_are_one_line_and_categorised() {
        let set = list_appset(&json!({"templatePatch": "spec:\n  project: {{ .nope\n"}));
        let err = run(&set, &PipelineOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("spec.templatePatch: "), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert_eq!(err.category(), "RenderError");
        assert_eq!(err.reason(), "RenderTemplateParamsError");

        let set = list_appset(&json!({"goTemplateOptions": ["missingkey=nope"]}));
        let err = run(&set, &PipelineOptions::default()).unwrap_err();
        assert_eq!(err.category(), "InvalidSpec");

        let set = list_appset(&json!({"generators": [{"pullRequest": {}}]}));
        let err = run(&set, &PipelineOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.generators[0].pullRequest: pullRequest generator is not supported by this version of Argosy"
        );
        assert!(err.is_user_error());
    }

    #[test]
    fn invalid_destination_and_project_are_validation_errors() {
        let set = list_appset(&json!({"template": {
            "metadata": {"name": "{{.name}}-{{.ns}}"},
            "spec": {"project": "{{ if eq .ns \"x\" }}missing{{ else }}default{{ end }}",
                     "destination": {"server": "https://unknown", "namespace": "n"}}
        }}));
        let generated = run(&set, &PipelineOptions::default()).unwrap();
        assert!(generated.applications.is_empty());
        let messages: Vec<_> = generated
            .validation_errors
            .iter()
            .map(|e| e.message.as_str())
            .collect();
        assert_eq!(
            messages[0],
            "application destination spec is invalid: error getting cluster by server \"https://unknown\": cluster \"https://unknown\" not found"
        );
        assert_eq!(
            messages[1],
            "application references project missing which does not exist"
        );
        assert_eq!(generated.invalid_app_names, ["a-y", "b-x", "b-z"]);
    }

    #[test]
    fn shared_matrix_matches_the_general_path() {
        let matrix = json!({"matrix": {"generators": [
            {"list": {"elements": [
                {"k": "1", "a": {"x": "1", "y": "1"}, "l": ["a"]},
                {"k": "2", "a": {}, "e": ""}
            ]}},
            {"list": {"elements": [
                {"m": "p", "k": "ignored", "a": {"y": "2", "z": "2"}, "l": ["b", "c"]},
                {"m": "q", "e": "from-b"}
            ]}}
        ]}});
        let set = appset(json!({
            "goTemplate": true,
            "generators": [matrix.clone()],
            "template": {"metadata": {"name": "{{.k}}-{{.m}}"},
                         "spec": {"project": "default", "destination": {"name": "in-cluster"}}}
        }));
        let options = PipelineOptions {
            keep_params: true,
            ..PipelineOptions::default()
        };
        let generated = run(&set, &options).unwrap();
        let mut shared: Vec<Value> = generated
            .applications
            .iter()
            .map(|a| Value::Object(a.params.params.clone()))
            .collect();
        let mut general = Fixture::default().run(&set, matrix).unwrap();
        let key = |v: &Value| format!("{}-{}", v["k"], v["m"]);
        shared.sort_by_key(key);
        general.sort_by_key(key);
        assert_eq!(shared, general);
        assert_eq!(shared[0]["a"], json!({"x": "1", "y": "1", "z": "2"}));
        let origin = generated.applications[0].params.origin("m").unwrap();
        assert_eq!(
            origin.to_string(),
            "spec.generators[0].matrix.generators[1].list element 0"
        );
    }

    #[test]
    fn shared_matrix_post_selector_and_fasttemplate_conflicts() {
        let set = appset(json!({
            "generators": [{"matrix": {"generators": [
                {"list": {"elements": [{"a": "1"}, {"a": "2"}]}},
                {"list": {"elements": [{"b": "x"}, {"b": "y"}]}}
            ]}, "selector": {"matchLabels": {"b": "y"}}}],
            "template": {"metadata": {"name": "{{a}}-{{b}}"},
                         "spec": {"project": "default", "destination": {"name": "in-cluster"}}}
        }));
        let generated = run(&set, &PipelineOptions::default()).unwrap();
        let names: Vec<_> = generated
            .applications
            .iter()
            .map(|a| a.application.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["1-y", "2-y"]);

        let set = appset(json!({
            "generators": [{"matrix": {"generators": [
                {"list": {"elements": [{"a": "1"}]}},
                {"list": {"elements": [{"a": "2"}]}}
            ]}}]
        }));
        let err = run(&set, &PipelineOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("found duplicate key a with different value, a: 1 ,b: 2"),
            "{err}"
        );
    }

    #[test]
    fn an_undecodable_application_names_the_field() {
        let set = list_appset(&json!({"template": {
            "metadata": {"name": "{{.name}}-{{.ns}}"},
            "spec": {"project": "default", "destination": "{{.ns}}"}
        }}));
        let err = run(&set, &PipelineOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "spec.template: the rendered Application is invalid: spec.destination: invalid type"
            ),
            "{msg}"
        );
        assert_eq!(err.category(), "RenderError");
    }

    #[test]
    fn requeue_and_git_provenance() {
        let repo = "https://git.example/r.git";
        let f = Fixture::default().repo(
            repo,
            "main",
            &[("apps/a/k.yaml", ""), ("apps/b/k.yaml", "")],
        );
        let set = appset(json!({
            "goTemplate": true,
            "generators": [{"git": {"repoURL": repo, "revision": "main", "directories": [{"path": "apps/*"}]}}],
            "template": {"metadata": {"name": "{{.path.basename}}"},
                         "spec": {"project": "default", "destination": {"name": "in-cluster"}}}
        }));
        let options = PipelineOptions {
            keep_params: true,
            ..PipelineOptions::default()
        };
        let generated = generate_applications(&set, f.sources(), &options).unwrap();
        assert_eq!(generated.requeue_after, Some(Duration::from_secs(180)));
        let origin = generated.applications[1].params.origin("path").unwrap();
        assert!(
            origin.to_string().starts_with(
                "spec.generators[0].git: directory apps/b of https://git.example/r.git at main ("
            ),
            "{origin}"
        );

        let mut set = set;
        if let Some(git) = set.spec.generators[0].git.as_mut() {
            git.requeue_after_seconds = Some(0);
        }
        let generated = generate_applications(&set, f.sources(), &options).unwrap();
        assert_eq!(generated.requeue_after, None);
    }
}
