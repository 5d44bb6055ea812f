//! The combination generators: Matrix (`generators/matrix.go`) and Merge (`merge.go`).
//!
//! Matrix runs its first child, then for every parameter set `a` of it interpolates the
//! second child's spec with `a`, runs it and emits `a` combined with each result.
//! Merge runs all children, keys their parameter sets by `mergeKeys` and lets matching
//! sets of later children override the first child's sets.
//!
//! Children run with an empty base template (their `template` is ignored), with their own
//! post-selector, and one level deeper: combination generators nest only once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use argosy_crds::applicationset::{CombinationGenerator, Generator};
use argosy_templates::{StringTemplate, ValueTemplate};
use serde_json::Value;

use crate::context::{Context, Depth};
use crate::error::GeneratorError;
use crate::params::{Combination, CombinedPart, ParamSet, Params, Provenance, go_string};

/// Runs one matrix/merge child entry (at field path `path`, one level below `depth`) to
/// its parameter sets. The dispatch passes its `child_params` in, so that the
/// combination generators do not depend on the dispatch that runs them.
pub(crate) type RunChild =
    fn(&Context<'_>, &Generator, &str, Depth) -> Result<Vec<ParamSet>, GeneratorError>;

/// A matrix generator being read: its first child's parameter sets have been generated,
/// the combinations are produced on demand, one first-child set at a time.
pub(crate) struct Matrix<'g> {
    path: Arc<str>,
    depth: Depth,
    run_child: RunChild,
    second: &'g Generator,
    first: std::vec::IntoIter<ParamSet>,
    interpolation: Option<Interpolation>,
    /// The second child's sets (with their parts in combinations) when it does not depend
    /// on the first child: generated once, on first use.
    shared: Option<Vec<(ParamSet, CombinedPart)>>,
}

impl<'g> Matrix<'g> {
    pub fn new(
        ctx: &Context<'_>,
        m: &'g CombinationGenerator,
        path: &Arc<str>,
        depth: Depth,
        run_child: RunChild,
    ) -> Result<Self, GeneratorError> {
        let [first, second] = m.generators.as_slice() else {
            let message = if m.generators.len() < 2 {
                "found less than two generators, Matrix support only two"
            } else {
                "found more than two generators, Matrix support only two"
            };
            return Err(GeneratorError::spec(path, message));
        };
        let first_sets = run_child(ctx, first, &format!("{path}.generators[0]"), depth)?;
        let interpolation = Interpolation::compile(ctx, second, &format!("{path}.generators[1]"))?;
        Ok(Matrix {
            path: path.clone(),
            depth,
            run_child,
            second,
            first: first_sets.into_iter(),
            interpolation,
            shared: None,
        })
    }

    /// Appends the combinations of the next first-child sets to `out` until at least
    /// `want` were added; false once all are done.
    pub fn next_batch(
        &mut self,
        ctx: &Context<'_>,
        out: &mut Vec<ParamSet>,
        want: usize,
    ) -> Result<bool, GeneratorError> {
        let start = out.len();
        let second_path = format!("{}.generators[1]", self.path);
        while out.len() - start < want {
            let Some(a) = self.first.next() else {
                return Ok(false);
            };
            let interpolated;
            let second_sets: &[(ParamSet, CombinedPart)] = match &self.interpolation {
                Some(interp) if !a.params.is_empty() => {
                    let entry = interp.render(&a.params)?;
                    interpolated =
                        with_parts(1, (self.run_child)(ctx, &entry, &second_path, self.depth)?);
                    &interpolated
                }
                _ => {
                    if self.shared.is_none() {
                        let sets = (self.run_child)(ctx, self.second, &second_path, self.depth)?;
                        self.shared = Some(with_parts(1, sets));
                    }
                    self.shared.as_deref().unwrap_or_default()
                }
            };
            let a_part = CombinedPart::new(0, &a);
            let a_base = if ctx.go_template {
                a.params.clone()
            } else {
                stringify(&a.params)
            };
            for (b, b_part) in second_sets {
                let mut params = a_base.clone();
                combine(&self.path, ctx.go_template, &mut params, &b.params)?;
                let provenance = Provenance::pair(&self.path, Combination::Matrix, &a_part, b_part);
                out.push(ParamSet::new(params, provenance));
            }
        }
        Ok(self.first.len() > 0)
    }

    /// The rest of the matrix as a [`SharedMatrix`], when the second child does not
    /// depend on the first child's parameters (it has no template).
    pub fn shared(&mut self, ctx: &Context<'_>) -> Result<Option<SharedMatrix>, GeneratorError> {
        if self.interpolation.is_some() {
            return Ok(None);
        }
        let first = with_parts(0, std::mem::take(&mut self.first).collect());
        // Like Argo CD, the second child does not run at all when the first is empty.
        if self.shared.is_none() && !first.is_empty() {
            let path = format!("{}.generators[1]", self.path);
            self.shared = Some(with_parts(
                1,
                (self.run_child)(ctx, self.second, &path, self.depth)?,
            ));
        }
        Ok(Some(SharedMatrix {
            path: self.path.clone(),
            go_template: ctx.go_template,
            first,
            second: self.shared.take().unwrap_or_default(),
        }))
    }
}

/// A matrix whose second child's parameter sets are the same for every first-child set.
/// Its combinations are produced in place: one map per first-child set, onto which each
/// second-child set is laid and then removed again, instead of a fresh map per
/// combination (the 10,000 clusters x 10 elements case).
pub(crate) struct SharedMatrix {
    path: Arc<str>,
    go_template: bool,
    first: Vec<(ParamSet, CombinedPart)>,
    second: Vec<(ParamSet, CombinedPart)>,
}

impl SharedMatrix {
    pub fn first_len(&self) -> usize {
        self.first.len()
    }

    pub fn second_len(&self) -> usize {
        self.second.len()
    }

    /// Frees the parameter maps of the first-child sets in `range` once they are done.
    pub fn release(&mut self, range: std::ops::Range<usize>) {
        for (a, _) in self.first.get_mut(range).unwrap_or_default() {
            a.params = Params::new();
        }
    }

    /// Calls `emit` with every combination of the first-child sets in `range`, in order.
    /// The map passed to `emit` is only valid during the call; the provenance is built
    /// only if `emit` asks for it.
    pub fn for_each<E: From<GeneratorError>>(
        &self,
        range: std::ops::Range<usize>,
        mut emit: impl FnMut(&Params, &dyn Fn() -> Provenance) -> Result<(), E>,
    ) -> Result<(), E> {
        for (a, a_part) in self.first.get(range).unwrap_or_default() {
            let mut scratch = if self.go_template {
                a.params.clone()
            } else {
                stringify(&a.params)
            };
            for (b, b_part) in &self.second {
                let undo = combine(&self.path, self.go_template, &mut scratch, &b.params)?;
                let provenance =
                    || Provenance::pair(&self.path, Combination::Matrix, a_part, b_part);
                let result = emit(&scratch, &provenance);
                undo.revert(&mut scratch);
                result?;
            }
        }
        Ok(())
    }
}

/// Combines second-child set `b` into the (goTemplate: copied, fasttemplate:
/// stringified) first-child map `a`, which becomes the matrix result; what changed is
/// returned so that `a` can be restored.
///
/// goTemplate: `mergo.Merge(b, a, WithOverride)`, a deep merge where the first child wins.
/// fasttemplate: `CombineStringMaps`, where a key in both with different values is an
/// error.
fn combine(
    path: &str,
    go_template: bool,
    a: &mut Params,
    b: &Params,
) -> Result<Undo, GeneratorError> {
    if go_template {
        Ok(overlay(a, b))
    } else {
        overlay_strings(a, b).map_err(|e| GeneratorError::data(path, e))
    }
}

/// What [`overlay`] changed, to put the first-child map back.
#[derive(Default)]
struct Undo {
    inserted: Vec<String>,
    replaced: Vec<(String, Value)>,
}

impl Undo {
    fn revert(self, map: &mut Params) {
        for key in self.inserted {
            map.remove(&key);
        }
        for (key, value) in self.replaced {
            map.insert(key, value);
        }
    }
}

/// Lays `b` under the first-child map `a`: `a`'s values win, `b` fills in missing keys,
/// and non-empty maps in `b` are merged under `a`'s maps of the same key.
fn overlay(a: &mut Params, b: &Params) -> Undo {
    let mut undo = Undo::default();
    for (key, bv) in b {
        match a.get_mut(key) {
            None => {
                a.insert(key.clone(), bv.clone());
                undo.inserted.push(key.clone());
            }
            Some(av) => {
                if let (Value::Object(bm), Value::Object(am)) = (bv, &*av)
                    && !bm.is_empty()
                {
                    let mut merged = am.clone();
                    overlay(&mut merged, bm);
                    let merged = Value::Object(merged);
                    undo.replaced
                        .push((key.clone(), std::mem::replace(av, merged)));
                }
            }
        }
    }
    undo
}

/// `CombineStringMaps` in place on the stringified first-child map `a`.
fn overlay_strings(a: &mut Params, b: &Params) -> Result<Undo, String> {
    let mut undo = Undo::default();
    for (key, value) in b {
        let value = go_string(value);
        match a.get(key) {
            // The map is discarded on error: nothing to revert.
            Some(Value::String(current)) if *current != value => {
                return Err(duplicate_key(key, current, &value));
            }
            Some(_) => {}
            None => {
                a.insert(key.clone(), Value::String(value));
                undo.inserted.push(key.clone());
            }
        }
    }
    Ok(undo)
}

/// Each set with its part in combinations, as child `child`.
fn with_parts(child: usize, sets: Vec<ParamSet>) -> Vec<(ParamSet, CombinedPart)> {
    sets.into_iter()
        .map(|set| {
            let part = CombinedPart::new(child, &set);
            (set, part)
        })
        .collect()
}

pub(crate) fn merge(
    ctx: &Context<'_>,
    m: &CombinationGenerator,
    path: &Arc<str>,
    depth: Depth,
    run_child: RunChild,
) -> Result<Vec<ParamSet>, GeneratorError> {
    if m.generators.len() < 2 {
        return Err(GeneratorError::spec(
            path,
            "found less than two generators, Merge requires two or more",
        ));
    }
    let mut children = Vec::with_capacity(m.generators.len());
    for (i, entry) in m.generators.iter().enumerate() {
        children.push(run_child(
            ctx,
            entry,
            &format!("{path}.generators[{i}]"),
            depth,
        )?);
    }
    if m.merge_keys.is_empty() {
        return Err(GeneratorError::spec(
            path,
            "no merge keys were specified, Merge requires at least one",
        ));
    }
    let keys: BTreeSet<&str> = m.merge_keys.iter().map(String::as_str).collect();
    let mut children = children.into_iter().enumerate();
    let Some((_, base_sets)) = children.next() else {
        return Ok(Vec::new());
    };
    let base_index = index_by_keys(&keys, &base_sets).map_err(|e| GeneratorError::data(path, e))?;
    // Each base set with the parts merged into it so far, highest precedence last.
    let mut merged: Vec<(Params, Vec<CombinedPart>)> = base_sets
        .into_iter()
        .map(|set| {
            let part = CombinedPart::new(0, &set);
            (set.params, vec![part])
        })
        .collect();
    for (child, sets) in children {
        let index = index_by_keys(&keys, &sets).map_err(|e| GeneratorError::data(path, e))?;
        for (key, &i) in &index {
            let Some(((params, parts), over)) = base_index
                .get(key)
                .and_then(|&b| merged.get_mut(b))
                .zip(sets.get(i))
            else {
                continue;
            };
            if ctx.go_template {
                merge_override(params, &over.params);
            } else {
                let mut strings = stringify(params);
                strings.extend(stringify(&over.params));
                *params = strings;
            }
            parts.push(CombinedPart::new(child, over));
        }
    }
    Ok(merged
        .into_iter()
        .map(|(params, parts)| {
            let provenance =
                Provenance::combined(path, Combination::Merge, parts.into_iter().rev());
            ParamSet::new(params, provenance)
        })
        .collect())
}

/// Merge keys of every set of one child, which must be unique: `{key: value}` as JSON,
/// a missing key counting as `null`.
fn index_by_keys(
    keys: &BTreeSet<&str>,
    sets: &[ParamSet],
) -> Result<HashMap<String, usize>, String> {
    let mut index = HashMap::with_capacity(sets.len());
    for (i, set) in sets.iter().enumerate() {
        let key: BTreeMap<&str, &Value> = keys
            .iter()
            .map(|k| (*k, set.params.get(*k).unwrap_or(&Value::Null)))
            .collect();
        let key = serde_json::to_string(&key).map_err(|e| e.to_string())?;
        if index.contains_key(&key) {
            return Err(format!(
                "the parameters from a generator were not unique by the given mergeKeys, Merge requires all param sets to be unique. Duplicate key was {key}"
            ));
        }
        index.insert(key, i);
    }
    Ok(index)
}

/// `mergo.Merge(dst, src, WithOverride)` on parameter maps: `src` wins, including empty
/// values; nested non-empty maps merge recursively; lists are replaced.
pub(crate) fn merge_override(dst: &mut Params, src: &Params) {
    for (key, value) in src {
        if let (Some(Value::Object(d)), Value::Object(s)) = (dst.get_mut(key), value)
            && !d.is_empty()
        {
            merge_override(d, s);
            continue;
        }
        dst.insert(key.clone(), value.clone());
    }
}

/// Every value as Go's `%v` string.
fn stringify(params: &Params) -> Params {
    params
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(go_string(v))))
        .collect()
}

fn duplicate_key(key: &str, a: &str, b: &str) -> String {
    format!("found duplicate key {key} with different value, a: {a} ,b: {b}")
}

/// The second matrix child, compiled once and rendered with each parameter set of the
/// first (Argo CD's `RenderGeneratorParams`): every string and map key of the child spec
/// is a template. In goTemplate mode `values` are pre-resolved with `missingkey=error`,
/// keeping the original text when that fails, so that they can still refer to the
/// child's own parameters.
struct Interpolation {
    path: String,
    template: ValueTemplate,
    /// Post-selectors are not interpolated.
    selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    values: Vec<ValuesSlot>,
}

struct ValuesSlot {
    location: Vec<Step>,
    entries: Vec<(String, String, Option<StringTemplate>)>,
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

impl Interpolation {
    /// None when the child has no template at all (it then runs once, uninterpolated).
    fn compile(
        ctx: &Context<'_>,
        entry: &Generator,
        path: &str,
    ) -> Result<Option<Interpolation>, GeneratorError> {
        let mut bare = entry.clone();
        let selector = bare.selector.take();
        let mut value = serde_json::to_value(&bare)
            .map_err(|e| GeneratorError::spec(path, format!("cannot serialize generator: {e}")))?;
        if !has_template(&value) {
            return Ok(None);
        }
        let mut values = Vec::new();
        if ctx.go_template {
            let strict = ctx
                .strict_mode()
                .map_err(|e| GeneratorError::spec("spec.goTemplateOptions", e))?;
            let mut extracted = Vec::new();
            extract_values(&mut value, &mut Vec::new(), &mut extracted);
            for (location, map) in extracted {
                let entries = map
                    .into_iter()
                    .map(|(k, v)| {
                        let text = v.as_str().unwrap_or_default().to_owned();
                        let compiled = StringTemplate::compile(&text, strict).ok();
                        (k, text, compiled)
                    })
                    .collect();
                values.push(ValuesSlot { location, entries });
            }
        }
        let template = ValueTemplate::compile(&value, &ctx.mode)
            .map_err(|e| GeneratorError::render(path, e.to_string()))?;
        Ok(Some(Interpolation {
            path: path.to_owned(),
            template,
            selector,
            values,
        }))
    }

    fn render(&self, params: &Params) -> Result<Generator, GeneratorError> {
        let mut value = self.template.render(params).map_err(|e| {
            GeneratorError::render(
                &self.path,
                format!("failed to replace parameters in generator: {e}"),
            )
        })?;
        for slot in &self.values {
            let map = slot
                .entries
                .iter()
                .map(|(k, text, compiled)| {
                    let rendered = compiled
                        .as_ref()
                        .and_then(|t| t.render(params).ok())
                        .unwrap_or_else(|| text.clone());
                    (k.clone(), Value::String(rendered))
                })
                .collect();
            insert_at(&mut value, &slot.location, Value::Object(map));
        }
        let mut entry: Generator = serde_json::from_value(value).map_err(|e| {
            GeneratorError::spec(
                &self.path,
                format!("the interpolated generator is invalid: {e}"),
            )
        })?;
        entry.selector.clone_from(&self.selector);
        Ok(entry)
    }
}

fn has_template(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("{{"),
        Value::Array(items) => items.iter().any(has_template),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains("{{") || has_template(v)),
        _ => false,
    }
}

/// Removes the `values` maps of the cluster/git generators in `entry` (recursing into
/// nested combination children), recording where they were.
fn extract_values(entry: &mut Value, at: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, Params)>) {
    let Value::Object(obj) = entry else {
        return;
    };
    for kind in ["clusters", "git"] {
        if let Some(Value::Object(g)) = obj.get_mut(kind)
            && let Some(Value::Object(values)) = g.remove("values")
        {
            let mut location = at.clone();
            location.extend([Step::Key(kind.to_owned()), Step::Key("values".to_owned())]);
            out.push((location, values));
        }
    }
    for kind in ["matrix", "merge"] {
        if let Some(Value::Object(c)) = obj.get_mut(kind)
            && let Some(Value::Array(children)) = c.get_mut("generators")
        {
            for (i, child) in children.iter_mut().enumerate() {
                at.extend([
                    Step::Key(kind.to_owned()),
                    Step::Key("generators".to_owned()),
                    Step::Index(i),
                ]);
                extract_values(child, at, out);
                at.truncate(at.len() - 3);
            }
        }
    }
}

fn insert_at(root: &mut Value, location: &[Step], value: Value) {
    let Some((last, parents)) = location.split_last() else {
        return;
    };
    let mut node = root;
    for step in parents {
        let next = match (step, node) {
            (Step::Key(k), Value::Object(map)) => map.get_mut(k),
            (Step::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        node = next;
    }
    if let (Step::Key(k), Value::Object(map)) = (last, node) {
        map.insert(k.clone(), value);
    }
}

#[cfg(test)]
mod tests;
