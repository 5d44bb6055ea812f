//! The pure generate -> render pipeline: from an ApplicationSet and its sources to the
//! Applications it wants (Argo CD's `GenerateApplications` plus validation).
//!
//! For each top-level generator entry: run it ([`crate::generator`]), compile its merged
//! template once, render every parameter set (`render_application` with the
//! ApplicationSet's finalizer policy, then `templatePatch`), force the Application into the
//! ApplicationSet's namespace and decode it. Any generator or render error fails the whole
//! generation: the caller must then create, update and delete nothing. Validation
//! problems ([`crate::validate`]) only exclude the Applications concerned.

use std::time::Duration;

use argosy_crds::{Application, ApplicationSet};
use argosy_templates::{
    Mode, PatchError, RenderError, TemplateError, ValueTemplate, apply_template_patch,
    render_application_with_policy,
};
use serde_json::Value;

use crate::generator::{Context, Depth, GeneratorError, Output, requeue_after, transform};
use crate::params::{ParamSet, Params};
use crate::source::Sources;
use crate::validate::{ValidationError, validate};

/// Settings of the pipeline that are not part of the ApplicationSet.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Requeue interval of Git generators without `requeueAfterSeconds` (Argo CD's
    /// `ARGOCD_APPLICATIONSET_CONTROLLER_REQUEUE_AFTER`, 3 minutes by default).
    pub default_git_requeue: Duration,
    /// Keep each Application's parameters in [`GeneratedApp::params`] (`argosy generate
    /// --explain`). Off by default: at 100,000 Applications the parameter maps would take
    /// more memory than the Applications; the provenance is always kept.
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

/// What an ApplicationSet generates.
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

/// One generated Application and how it came about.
#[derive(Debug)]
pub struct GeneratedApp {
    pub application: Application,
    /// Field path of the generator kind, e.g. `spec.generators[0].matrix`.
    pub generator_path: String,
    /// The parameters it was rendered with: always the provenance, the parameter map
    /// itself only with [`PipelineOptions::keep_params`].
    pub params: ParamSet,
}

/// Generation failed; nothing may be created, updated or deleted.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("spec.goTemplateOptions: {}", one_line(.0))]
    Options(#[source] TemplateError),
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    #[error("spec.template.{}: {} (parameters from {generator})", source.path, one_line(&source.source))]
    Render {
        generator: String,
        #[source]
        source: RenderError,
    },
    #[error(
        "spec.templatePatch: {} (parameters from {generator})",
        one_line(source)
    )]
    TemplatePatch {
        generator: String,
        #[source]
        source: PatchError,
    },
    #[error(
        "spec.template: the rendered Application is invalid: {message} (parameters from {generator})"
    )]
    InvalidApplication { generator: String, message: String },
}

/// Error messages quote templates, which may span lines; conditions and events want one.
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().replace('\n', "\\n")
}

impl GenerateError {
    /// A static category for metrics and events: `InvalidSpec`, `GeneratorError`,
    /// `RepoError` or `RenderError`.
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
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Generator(_) => "ApplicationGenerationFromParamsError",
            _ => "RenderTemplateParamsError",
        }
    }

    /// False only for failures outside the user's control (reading a repository).
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

/// Parameter sets generated and rendered per round: bounds the parameter maps alive at
/// once (a top-level matrix produces its combinations round by round).
const BATCH: usize = 4096;
/// Parameter sets per rendering thread below which one thread is enough.
const MIN_SETS_PER_THREAD: usize = 512;

/// Renders every parameter set of one generator output, in order, into `apps`. Batches
/// are split over the available cores; the first error (in generation order) wins.
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
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let more = output.next_batch(ctx, &mut batch, BATCH)?;
        apps.reserve(batch.len());
        let threads = cores.min(batch.len() / MIN_SETS_PER_THREAD).max(1);
        if threads == 1 {
            for set in &mut batch {
                apps.push(renderer.render(set)?);
            }
        } else {
            render_parallel(&renderer, &mut batch, threads, apps)?;
        }
        batch.clear();
        if !more {
            return Ok(());
        }
    }
}

fn render_parallel(
    renderer: &Renderer<'_>,
    batch: &mut [ParamSet],
    threads: usize,
    apps: &mut Vec<GeneratedApp>,
) -> Result<(), GenerateError> {
    let chunk = batch.len().div_ceil(threads);
    let results: Vec<Result<Vec<GeneratedApp>, GenerateError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = batch
            .chunks_mut(chunk)
            .map(|sets| {
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(sets.len());
                    for set in sets {
                        out.push(renderer.render(set)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    for result in results {
        apps.extend(result?);
    }
    Ok(())
}

impl Renderer<'_> {
    /// Renders one parameter set. Its parameter map is taken only with `keep_params`:
    /// otherwise it is left to be freed with the batch, by the thread that allocated it
    /// (cross-thread frees are slow with glibc's allocator).
    fn render(&self, set: &mut ParamSet) -> Result<GeneratedApp, GenerateError> {
        let generator = || self.generator.to_owned();
        let params = &set.params;
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
        let application: Application =
            serde_json::from_value(app).map_err(|e| GenerateError::InvalidApplication {
                generator: generator(),
                message: e.to_string(),
            })?;
        let params = if self.keep_params {
            std::mem::take(&mut set.params)
        } else {
            Params::new()
        };
        Ok(GeneratedApp {
            application,
            generator_path: generator(),
            params: ParamSet::new(params, set.provenance.clone()),
        })
    }
}

/// Generated Applications always live in the ApplicationSet's namespace, whatever the
/// template says: that is the tenancy boundary.
fn set_namespace(app: &mut Value, namespace: &str) {
    if let Value::Object(obj) = app {
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        if !meta.is_object() {
            *meta = Value::Object(Default::default());
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

    fn list_appset(extra: Value) -> ApplicationSet {
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
    fn renders_sorts_validates_and_keeps_the_first_duplicate() {
        let generated = run(&list_appset(json!({})), &PipelineOptions::default()).unwrap();
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
        let generated = run(&list_appset(json!({})), &options).unwrap();
        let app = &generated.applications[0];
        assert_eq!(app.params.params["name"], "a");
        assert_eq!(
            app.params.origin("ns").map(|o| o.to_string()).as_deref(),
            Some("spec.generators[0].list element 1")
        );
    }

    #[test]
    fn errors_are_one_line_and_categorised() {
        let set = list_appset(json!({"templatePatch": "spec:\n  project: {{ .nope\n"}));
        let err = run(&set, &PipelineOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("spec.templatePatch: "), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert_eq!(err.category(), "RenderError");
        assert_eq!(err.reason(), "RenderTemplateParamsError");

        let set = list_appset(json!({"goTemplateOptions": ["missingkey=nope"]}));
        let err = run(&set, &PipelineOptions::default()).unwrap_err();
        assert_eq!(err.category(), "InvalidSpec");

        let set = list_appset(json!({"generators": [{"pullRequest": {}}]}));
        let err = run(&set, &PipelineOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.generators[0].pullRequest: pullRequest generator is not supported by this version of Argosy"
        );
        assert!(err.is_user_error());
    }

    #[test]
    fn invalid_destination_and_project_are_validation_errors() {
        let set = list_appset(json!({"template": {
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
}
