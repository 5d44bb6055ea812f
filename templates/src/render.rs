//! Field-by-field rendering of JSON documents (spec §2.1, Argo's `deeplyReplace` and
//! `RenderTemplateParams`).
//!
//! Every string value and every object key is its own template; numbers, booleans and null pass
//! through. Subtrees without any template syntax are kept as constants so rendering only clones
//! them. Template syntax errors are kept until render time, like Argo, which parses each field
//! only when it renders with a non-empty parameter set.

use serde_json::{Map, Value as Json};

use crate::error::{RenderError, TemplateError};
use crate::mode::Mode;
use crate::params::Params;
use crate::template::StringTemplate;

/// The finalizer Argo adds to generated Applications unless told to preserve resources.
const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// A JSON document (typically an Application template) compiled leaf by leaf.
#[derive(Debug)]
pub struct ValueTemplate {
    source: Json,
    root: Node,
}

#[derive(Debug)]
enum Node {
    Const(Json),
    Str(Leaf),
    Array(Vec<Node>),
    Object(Vec<(Key, Node)>),
}

#[derive(Debug)]
enum Key {
    Const(String),
    Tpl(Leaf),
}

/// A templated string and the field path used in its errors.
#[derive(Debug)]
struct Leaf {
    path: String,
    template: Result<StringTemplate, TemplateError>,
}

impl Leaf {
    fn render(&self, params: &Params) -> Result<String, RenderError> {
        let err = |source: TemplateError| RenderError {
            path: self.path.clone(),
            source,
        };
        match &self.template {
            Ok(t) => t.render(params).map_err(err),
            Err(e) => Err(err(e.clone())),
        }
    }
}

/// A compiled string, or `None` when it is constant.
fn compile_leaf(s: &str, path: &str, mode: &Mode) -> Option<Leaf> {
    match StringTemplate::compile(s, mode) {
        Ok(t) if t.constant().is_some() => None,
        template => Some(Leaf {
            path: path.to_string(),
            template,
        }),
    }
}

fn child_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", crate::go::strconv::quote(key)),
    }
}

fn compile_node(v: &Json, path: &str, mode: &Mode) -> Node {
    match v {
        Json::String(s) => match compile_leaf(s, path, mode) {
            Some(leaf) => Node::Str(leaf),
            None => Node::Const(v.clone()),
        },
        Json::Array(items) => {
            let nodes: Vec<Node> = items
                .iter()
                .enumerate()
                .map(|(i, item)| compile_node(item, &format!("{path}[{i}]"), mode))
                .collect();
            if nodes.iter().all(|n| matches!(n, Node::Const(_))) {
                Node::Const(v.clone())
            } else {
                Node::Array(nodes)
            }
        }
        Json::Object(map) => {
            let mut all_const = true;
            let entries: Vec<(Key, Node)> = map
                .iter()
                .map(|(k, item)| {
                    let p = child_path(path, k);
                    let key = match compile_leaf(k, &p, mode) {
                        Some(leaf) => Key::Tpl(leaf),
                        None => Key::Const(k.clone()),
                    };
                    let node = compile_node(item, &p, mode);
                    all_const &= matches!(key, Key::Const(_)) && matches!(node, Node::Const(_));
                    (key, node)
                })
                .collect();
            if all_const {
                Node::Const(v.clone())
            } else {
                Node::Object(entries)
            }
        }
        _ => Node::Const(v.clone()),
    }
}

fn render_node(node: &Node, params: &Params) -> Result<Json, RenderError> {
    Ok(match node {
        Node::Const(v) => v.clone(),
        Node::Str(leaf) => Json::String(leaf.render(params)?),
        Node::Array(items) => Json::Array(
            items
                .iter()
                .map(|n| render_node(n, params))
                .collect::<Result<_, _>>()?,
        ),
        Node::Object(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let k = match key {
                    Key::Const(k) => k.clone(),
                    Key::Tpl(leaf) => leaf.render(params)?,
                };
                out.insert(k, render_node(value, params)?);
            }
            Json::Object(out)
        }
    })
}

impl ValueTemplate {
    /// Compiles every string and key of `template`. Syntax errors are reported by
    /// [`ValueTemplate::render`] (naming the field), not here, because Argo only discovers them
    /// when it renders with a non-empty parameter set; compilation itself cannot fail today.
    pub fn compile(template: &Json, mode: &Mode) -> Result<Self, RenderError> {
        Ok(ValueTemplate {
            source: template.clone(),
            root: compile_node(template, "", mode),
        })
    }

    /// Renders every field against `params`.
    pub fn render(&self, params: &Params) -> Result<Json, RenderError> {
        render_node(&self.root, params)
    }

    /// The document as compiled.
    #[must_use]
    pub fn source(&self) -> &Json {
        &self.source
    }
}

/// Renders an Application like Argo's `RenderTemplateParams`: with an empty parameter set the
/// template is returned unchanged (no rendering, no finalizer); otherwise every field is rendered
/// and, when the result has no `metadata.finalizers` and `spec.syncPolicy` is absent or its
/// `preserveResourcesOnDeletion` is not `true`, the finalizer
/// `resources-finalizer.argocd.argoproj.io` is added.
pub fn render_application(template: &ValueTemplate, params: &Params) -> Result<Json, RenderError> {
    render_with(template, params, |app| {
        app.pointer("/spec/syncPolicy/preserveResourcesOnDeletion") == Some(&Json::Bool(true))
    })
}

/// Like [`render_application`], but the finalizer rule reads `preserve_resources_on_deletion`
/// from the caller: in Argo it is the `ApplicationSet`'s `spec.syncPolicy.preserveResourcesOnDeletion`,
/// not a field of the generated Application.
pub fn render_application_with_policy(
    template: &ValueTemplate,
    params: &Params,
    preserve_resources_on_deletion: bool,
) -> Result<Json, RenderError> {
    render_with(template, params, |_| preserve_resources_on_deletion)
}

fn render_with(
    template: &ValueTemplate,
    params: &Params,
    preserve: impl Fn(&Json) -> bool,
) -> Result<Json, RenderError> {
    if params.is_empty() {
        return Ok(template.source.clone());
    }
    let app = template.render(params)?;
    let keep = preserve(&app);
    Ok(with_default_finalizer(app, keep))
}

fn with_default_finalizer(mut app: Json, preserve: bool) -> Json {
    if preserve {
        return app;
    }
    let Some(obj) = app.as_object_mut() else {
        return app;
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Json::Object(Map::new()));
    if meta.is_null() {
        *meta = Json::Object(Map::new());
    }
    if let Some(meta) = meta.as_object_mut() {
        let has_finalizers = meta
            .get("finalizers")
            .and_then(Json::as_array)
            .is_some_and(|f| !f.is_empty());
        if !has_finalizers {
            meta.insert(
                "finalizers".to_string(),
                Json::Array(vec![Json::String(RESOURCES_FINALIZER.to_string())]),
            );
        }
    }
    app
}
