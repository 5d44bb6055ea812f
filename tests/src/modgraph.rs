//! Import cycles between the modules of a crate.
//!
//! A node is a source FILE of one crate root's module tree (`src/lib.rs`,
//! `src/main.rs`, `src/bin/*.rs`, `src/bin/*/main.rs` of every workspace member;
//! each root is its own tree, so a binary naming `argosy::...` is a cross-crate
//! reference and ignored). Inline `mod m { ... }` blocks belong to their file.
//!
//! There is an edge A → B when code in file A names a path that resolves into a
//! module of file B (B ≠ A): `use` trees (braces, globs, renames, `pub use`), paths
//! in expressions, types, patterns, attribute arguments (also string paths such as
//! serde's `with = "crate::x"`) and macro arguments (scanned as tokens).
//! A path is resolved to its LONGEST prefix that is a known module, and the edge
//! goes to that module's file:
//!
//! * `crate::`, `$crate::`, `self::`, `super::` (repeatable) are resolved from the
//!   module the code is in (an inline `mod tests` is its own module, so its
//!   `super::` is the enclosing file and makes no edge);
//! * a relative path (2018 edition) of two or more segments resolves when its first
//!   segment is a module visible in the current module: a child module, a `use`
//!   whose target is a module (`use crate::sync;` then `sync::plan::X`), or such a
//!   name brought in by a glob `use` of a module (`use super::*;`);
//! * anything else (`std::`, `argosy_crds::`, `::x`, local items, associated items
//!   of types, generic parameters) is not a module path of this crate and ignored.
//!
//! Declaring `mod x;` alone is no edge, nor are visibilities (`pub(super)`) and doc
//! comments. Code under `#[cfg(test)]` (test modules, test-only items and imports) is
//! left out, as `cargo modules dependencies` leaves it out unless asked: a test of a
//! module's kind that calls its parent's entry point is not a layering problem of the
//! code that ships. Every other `#[cfg]` is ignored: all of that code counts.
//!
//! Cycles are the strongly connected components (Tarjan) of more than one file;
//! each is reported with a shortest cycle inside it and, for every edge of the
//! component, the `file:line` of one path that creates it.
//!
//! Known limits (all of them can only miss an edge or add one the compiler would
//! resolve elsewhere; none of them matter for this workspace today): names brought
//! in by a glob of a non-module item, macro-expanded modules and paths produced by
//! macros, `mod` items inside function bodies (their contents count as the
//! enclosing module), custom `[lib]`/`[[bin]]` paths in a member's Cargo.toml and
//! `tests/`, `benches/`, `examples/` targets (not crate roots here), privacy.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// The result of [`check_workspace`].
#[derive(Debug)]
pub struct Report {
    /// Workspace members checked.
    pub crates: usize,
    /// Distinct source files in all module trees.
    pub files: usize,
    /// Every cycle found, in a stable order (crate root, then first file).
    pub cycles: Vec<Cycle>,
}

/// One strongly connected component of more than one file.
#[derive(Debug)]
pub struct Cycle {
    /// The crate root whose module tree it is in, relative to the workspace root.
    pub crate_root: PathBuf,
    /// Its files, sorted, relative to the workspace root.
    pub files: Vec<PathBuf>,
    /// A shortest cycle through its files: each edge's `to` is the next edge's `from`.
    pub shortest: Vec<Edge>,
    /// Every edge between its files, sorted.
    pub edges: Vec<Edge>,
}

/// File `from` names a path into a module of file `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub from: PathBuf,
    pub to: PathBuf,
    /// The line in `from` of the first such path.
    pub line: usize,
    /// That path, as written (`super::Context`, `crate::{a::b}` leaves spelled out).
    pub path: String,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}   ({}:{} `{}`)",
            self.from.display(),
            self.to.display(),
            self.from.display(),
            self.line,
            self.path
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cycles.is_empty() {
            return writeln!(
                f,
                "no module cycles in {} files of {} crates",
                self.files, self.crates
            );
        }
        for c in &self.cycles {
            writeln!(
                f,
                "module cycle in {} ({} files):",
                c.crate_root.display(),
                c.files.len()
            )?;
            for file in &c.files {
                writeln!(f, "  {}", file.display())?;
            }
            writeln!(f, " shortest cycle ({} edges):", c.shortest.len())?;
            for e in &c.shortest {
                writeln!(f, "  {e}")?;
            }
            if c.edges.len() > c.shortest.len() {
                writeln!(f, " all {} edges between these files:", c.edges.len())?;
                for e in &c.edges {
                    writeln!(f, "  {e}")?;
                }
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "{} module cycle(s) in {} files of {} crates",
            self.cycles.len(),
            self.files,
            self.crates
        )
    }
}

/// Checks every module tree of every member of the workspace at `root`.
pub fn check_workspace(root: &Path) -> anyhow::Result<Report> {
    let members = workspace_members(root)?;
    let mut files = BTreeSet::new();
    let mut cycles = Vec::new();
    for member in &members {
        for crate_root in crate_roots(&root.join(member))? {
            let tree = Tree::load(&crate_root)?;
            files.extend(tree.files.iter().map(|f| f.path.clone()));
            cycles.extend(tree.cycles(root));
        }
    }
    Ok(Report {
        crates: members.len(),
        files: files.len(),
        cycles,
    })
}

/// The `members` of the root `Cargo.toml`'s `[workspace]` (directories relative to
/// `root`; a trailing `/*` is expanded to the subdirectories with a `Cargo.toml`).
/// A manifest without `[workspace]` is a single crate: `["."]`.
pub fn workspace_members(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let manifest = root.join("Cargo.toml");
    let text =
        fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let mut in_workspace = false;
    let mut array: Option<String> = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(acc) = array.as_mut() {
            acc.push_str(line);
        } else if line.starts_with('[') {
            in_workspace = line == "[workspace]";
        } else if in_workspace
            && let Some(rest) = line.strip_prefix("members")
            && let Some(rest) = rest.trim_start().strip_prefix('=')
        {
            array = Some(rest.trim().to_string());
        }
        if array.as_ref().is_some_and(|a| a.contains(']')) {
            break;
        }
    }
    let Some(array) = array else {
        if text.lines().any(|l| l.trim() == "[workspace]") {
            bail!("{}: [workspace] without `members`", manifest.display());
        }
        return Ok(vec![PathBuf::from(".")]);
    };
    let mut members = Vec::new();
    for entry in array.trim_matches(|c| c == '[' || c == ']').split(',') {
        let entry = entry.trim().trim_matches('"');
        if entry.is_empty() {
            continue;
        }
        if let Some(dir) = entry.strip_suffix("/*") {
            let mut subs: Vec<PathBuf> = fs::read_dir(root.join(dir))?
                .filter_map(Result::ok)
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .map(|e| Path::new(dir).join(e.file_name()))
                .collect();
            subs.sort();
            members.extend(subs);
        } else {
            members.push(PathBuf::from(entry));
        }
    }
    Ok(members)
}

/// The crate roots of the package in `dir`, by Cargo's conventions.
pub fn crate_roots(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let src = dir.join("src");
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.is_file())
        .collect();
    let bin = src.join("bin");
    if bin.is_dir() {
        let mut bins = Vec::new();
        for entry in fs::read_dir(&bin)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rs") && path.is_file() {
                bins.push(path);
            } else if path.join("main.rs").is_file() {
                bins.push(path.join("main.rs"));
            }
        }
        bins.sort();
        roots.extend(bins);
    }
    Ok(roots)
}

// ---------------------------------------------------------------------------
// Module tree

struct SourceFile {
    path: PathBuf,
    ast: syn::File,
    /// The module the file is.
    module: usize,
}

#[derive(Default)]
struct Module {
    /// The file the module's items are in.
    file: usize,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
    /// `use` leaves: the name they bind → the path they name (as written).
    imports: Vec<(String, Vec<String>)>,
    /// Glob `use`s: the path before `::*`.
    globs: Vec<Vec<String>>,
}

/// One crate root's module tree.
struct Tree {
    root: PathBuf,
    files: Vec<SourceFile>,
    modules: Vec<Module>,
    lookups: RefCell<HashMap<(usize, String), Option<usize>>>,
    in_progress: RefCell<HashSet<(usize, String)>>,
    /// Lookups cut short by `in_progress` or the depth limit.
    cuts: Cell<usize>,
}

impl Tree {
    fn load(root: &Path) -> anyhow::Result<Tree> {
        let mut tree = Tree {
            root: root.to_path_buf(),
            files: Vec::new(),
            modules: vec![Module::default()],
            lookups: RefCell::default(),
            in_progress: RefCell::default(),
            cuts: Cell::default(),
        };
        let dir = root.parent().unwrap_or(Path::new("")).to_path_buf();
        tree.load_file(root, 0, &dir)?;
        Ok(tree)
    }

    /// Parses `path` as module `module`, whose child module files live in `child_dir`.
    fn load_file(&mut self, path: &Path, module: usize, child_dir: &Path) -> anyhow::Result<()> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let ast = syn::parse_file(&text).with_context(|| format!("parsing {}", path.display()))?;
        let file = self.files.len();
        self.modules[module].file = file;
        let items = ast.items.clone();
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            ast,
            module,
        });
        let file_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        self.load_items(&items, module, file, child_dir, &file_dir)
    }

    /// Registers the child modules and `use`s of `items`, the items of `module`.
    /// `path_dir` is where `#[path]` attributes are relative to.
    fn load_items(
        &mut self,
        items: &[syn::Item],
        module: usize,
        file: usize,
        child_dir: &Path,
        path_dir: &Path,
    ) -> anyhow::Result<()> {
        for item in items {
            if is_cfg_test(item_attrs(item)) {
                continue;
            }
            let syn::Item::Mod(m) = item else {
                let mut uses = UseCollector::default();
                uses.visit_item(item);
                let m = &mut self.modules[module];
                for import in uses.imports {
                    if !m.imports.contains(&import) {
                        m.imports.push(import);
                    }
                }
                for glob in uses.globs {
                    if !m.globs.contains(&glob) {
                        m.globs.push(glob);
                    }
                }
                continue;
            };
            let name = m.ident.to_string();
            if self.modules[module].children.contains_key(&name) {
                // `#[cfg(a)] mod x; #[cfg(not(a))] mod x;`: the first one counts.
                continue;
            }
            let child = self.modules.len();
            self.modules.push(Module {
                file,
                parent: Some(module),
                ..Module::default()
            });
            self.modules[module].children.insert(name.clone(), child);
            let path_attr = path_attribute(&m.attrs);
            if let Some((_, content)) = &m.content {
                let dir = child_dir.join(path_attr.as_deref().unwrap_or(&name));
                self.load_items(content, child, file, &dir, &dir)?;
                continue;
            }
            let (path, dir) = match path_attr {
                // A file named by `#[path]` is a "mod-rs" file: its children are next to it.
                Some(p) => {
                    let path = path_dir.join(p);
                    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
                    (path, dir)
                }
                None => {
                    let flat = child_dir.join(format!("{name}.rs"));
                    if flat.is_file() {
                        (flat, child_dir.join(&name))
                    } else {
                        (child_dir.join(&name).join("mod.rs"), child_dir.join(&name))
                    }
                }
            };
            if !path.is_file() {
                bail!(
                    "{}: `mod {name};` but there is no {}",
                    self.files[file].path.display(),
                    path.display()
                );
            }
            if self.files.iter().any(|f| f.path == path) {
                bail!(
                    "{} is loaded twice in the tree of {}",
                    path.display(),
                    self.root.display()
                );
            }
            self.load_file(&path, child, &dir)?;
        }
        Ok(())
    }

    /// The module named by `segs` in full, if every segment is a module.
    fn resolve_module(&self, scope: usize, segs: &[String], depth: usize) -> Option<usize> {
        match self.resolve(scope, segs, depth) {
            Some((m, used)) if used == segs.len() => Some(m),
            _ => None,
        }
    }

    /// The longest prefix of `segs` that names a module seen from `scope`: the module
    /// and the number of segments it took.
    fn resolve(&self, scope: usize, segs: &[String], depth: usize) -> Option<(usize, usize)> {
        let first = segs.first()?;
        let (mut cur, mut used) = match first.as_str() {
            "crate" | "$crate" => (0, 1),
            "self" => (scope, 1),
            "super" => (self.modules[scope].parent?, 1),
            _ => (self.lookup(scope, first, depth)?, 1),
        };
        for seg in &segs[1..] {
            let next = match seg.as_str() {
                "super" if used == 1 && !matches!(first.as_str(), "crate" | "$crate") => {
                    self.modules[cur].parent
                }
                "super" | "self" | "crate" => None,
                _ => self.lookup(cur, seg, depth),
            };
            match next {
                Some(m) => {
                    cur = m;
                    used += 1;
                }
                None => break,
            }
        }
        Some((cur, used))
    }

    /// The module that `name` names inside `module`: a child module, a `use` of a
    /// module, or one of those brought in by a glob `use`. Memoized; a lookup that
    /// needs itself (`use E::*;` where `E` is looked up) finds nothing that way, and a
    /// "nothing" that depended on such a cut is not memoized.
    fn lookup(&self, module: usize, name: &str, depth: usize) -> Option<usize> {
        let key = (module, name.to_string());
        if let Some(&known) = self.lookups.borrow().get(&key) {
            return known;
        }
        if depth > 16 || !self.in_progress.borrow_mut().insert(key.clone()) {
            self.cuts.set(self.cuts.get() + 1);
            return None;
        }
        let cuts = self.cuts.get();
        let found = self.lookup_uncached(module, name, depth);
        self.in_progress.borrow_mut().remove(&key);
        if found.is_some() || self.cuts.get() == cuts {
            self.lookups.borrow_mut().insert(key, found);
        }
        found
    }

    fn lookup_uncached(&self, module: usize, name: &str, depth: usize) -> Option<usize> {
        let m = &self.modules[module];
        if let Some(&child) = m.children.get(name) {
            return Some(child);
        }
        for (bound, target) in &m.imports {
            if bound == name
                && let Some(found) = self.resolve_module(module, target, depth + 1)
            {
                return Some(found);
            }
        }
        for glob in &m.globs {
            if let Some(g) = self.resolve_module(module, glob, depth + 1)
                && g != module
                && let Some(found) = self.lookup(g, name, depth + 1)
            {
                return Some(found);
            }
        }
        None
    }

    /// Edges between files: (from, to) → (line, path) of the first path creating it.
    fn edges(&self) -> BTreeMap<(usize, usize), (usize, String)> {
        let mut edges: BTreeMap<(usize, usize), (usize, String)> = BTreeMap::new();
        for (index, file) in self.files.iter().enumerate() {
            let mut refs = RefCollector {
                scope: file.module,
                tree: self,
                block_depth: 0,
                refs: Vec::new(),
            };
            refs.visit_file(&file.ast);
            for r in refs.refs {
                let Some((module, _)) = self.resolve(r.scope, &r.segs, 0) else {
                    continue;
                };
                let to = self.modules[module].file;
                if to == index {
                    continue;
                }
                let text = r.segs.join("::");
                edges
                    .entry((index, to))
                    .and_modify(|e| {
                        if r.line < e.0 {
                            *e = (r.line, text.clone());
                        }
                    })
                    .or_insert((r.line, text));
            }
        }
        edges
    }

    /// The cycles of this tree, paths relative to `base`.
    fn cycles(&self, base: &Path) -> Vec<Cycle> {
        let edges = self.edges();
        let n = self.files.len();
        let mut adj = vec![Vec::new(); n];
        for &(a, b) in edges.keys() {
            adj[a].push(b);
        }
        let rel = |i: usize| -> PathBuf {
            let p = &self.files[i].path;
            p.strip_prefix(base).unwrap_or(p).to_path_buf()
        };
        let edge = |a: usize, b: usize| -> Edge {
            let (line, path) = edges.get(&(a, b)).cloned().unwrap_or_default();
            Edge {
                from: rel(a),
                to: rel(b),
                line,
                path,
            }
        };
        let mut out = Vec::new();
        for scc in strongly_connected(&adj) {
            if scc.len() < 2 {
                continue;
            }
            let members: BTreeSet<usize> = scc.iter().copied().collect();
            let cycle = shortest_cycle(&adj, &members);
            let mut files: Vec<PathBuf> = members.iter().map(|&i| rel(i)).collect();
            files.sort();
            let mut all: Vec<Edge> = edges
                .keys()
                .filter(|(a, b)| members.contains(a) && members.contains(b))
                .map(|&(a, b)| edge(a, b))
                .collect();
            all.sort();
            out.push(Cycle {
                crate_root: rel_root(&self.root, base),
                files,
                shortest: cycle
                    .windows(2)
                    .map(|w| edge(w[0], w[1]))
                    .chain(cycle.last().zip(cycle.first()).map(|(&a, &b)| edge(a, b)))
                    .collect(),
                edges: all,
            });
        }
        out.sort_by(|a, b| (&a.crate_root, &a.files).cmp(&(&b.crate_root, &b.files)));
        out
    }
}

fn rel_root(p: &Path, base: &Path) -> PathBuf {
    p.strip_prefix(base).unwrap_or(p).to_path_buf()
}

/// The string of a `#[path = "..."]` attribute.
/// Whether `attrs` hold `#[cfg(test)]` (exactly: test-only code, left out of the graph).
fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

/// The attributes of an item, for the kinds that can carry `#[cfg(test)]`.
fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

fn path_attribute(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// `use` trees and paths

/// The leaves of a `use` tree: (path of the leaf, the name it binds, or None for a glob).
fn use_leaves(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<UseLeaf>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_leaves(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => leaf(prefix, &n.ident, &n.ident, out),
        syn::UseTree::Rename(r) => leaf(prefix, &r.ident, &r.rename, out),
        syn::UseTree::Glob(g) => out.push(UseLeaf {
            segs: prefix.clone(),
            binds: None,
            line: g.star_token.spans[0].start().line,
        }),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_leaves(t, prefix, out);
            }
        }
    }
}

fn leaf(prefix: &[String], ident: &syn::Ident, binds: &syn::Ident, out: &mut Vec<UseLeaf>) {
    let mut segs = prefix.to_vec();
    // `use a::b::{self}` names `a::b` and binds `b`.
    let binds = if ident == "self" {
        if binds == "self" {
            prefix.last().cloned()
        } else {
            Some(binds.to_string())
        }
    } else {
        segs.push(ident.to_string());
        Some(binds.to_string())
    };
    out.push(UseLeaf {
        segs,
        binds,
        line: ident.span().start().line,
    });
}

struct UseLeaf {
    segs: Vec<String>,
    /// None: a glob.
    binds: Option<String>,
    line: usize,
}

/// The `use`s of an item (and of the function bodies in it), for name lookup.
#[derive(Default)]
struct UseCollector {
    imports: Vec<(String, Vec<String>)>,
    globs: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for UseCollector {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if u.leading_colon.is_some() {
            return;
        }
        let mut leaves = Vec::new();
        use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
        for l in leaves {
            match l.binds {
                Some(name) if name != "_" => self.imports.push((name, l.segs)),
                Some(_) => {}
                None => self.globs.push(l.segs),
            }
        }
    }
}

/// A path named in a module.
struct Ref {
    scope: usize,
    segs: Vec<String>,
    line: usize,
}

/// Collects every path of a file with the module it is in.
struct RefCollector<'t> {
    scope: usize,
    tree: &'t Tree,
    /// Inside a function body: a `mod` there is not one of the module tree's.
    block_depth: usize,
    refs: Vec<Ref>,
}

impl RefCollector<'_> {
    /// Records `segs` unless it is a one-segment relative path, which names a value,
    /// a type or a macro, not a module (a glob's `writer::*` passes `single: true`).
    fn push(&mut self, segs: Vec<String>, line: usize) {
        self.push_path(segs, line, false);
    }

    fn push_path(&mut self, segs: Vec<String>, line: usize, single: bool) {
        let Some(first) = segs.first() else { return };
        let anchored = matches!(first.as_str(), "crate" | "$crate" | "self" | "super");
        if anchored || single || segs.len() > 1 {
            self.refs.push(Ref {
                scope: self.scope,
                segs,
                line,
            });
        }
    }

    /// Paths in a macro's or attribute's tokens: `a::b::c` runs (and `$crate::x`),
    /// plus string literals that parse as a path when `strings` is set.
    fn scan_tokens(&mut self, tokens: TokenStream, strings: bool) {
        let tts: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tts.len() {
            match &tts[i] {
                TokenTree::Group(g) => {
                    self.scan_tokens(g.stream(), strings);
                    i += 1;
                }
                TokenTree::Literal(lit) if strings => {
                    if let Ok(s) = syn::parse_str::<syn::LitStr>(&lit.to_string())
                        && let Ok(path) = syn::parse_str::<syn::Path>(&s.value())
                        && path.leading_colon.is_none()
                    {
                        let segs = path.segments.iter().map(|s| s.ident.to_string()).collect();
                        self.push(segs, lit.span().start().line);
                    }
                    i += 1;
                }
                TokenTree::Ident(ident) => {
                    let after_colons = i >= 2 && is_colon_pair(&tts[i - 2], &tts[i - 1]);
                    let dollar =
                        i >= 1 && matches!(&tts[i - 1], TokenTree::Punct(p) if p.as_char() == '$');
                    let mut segs = vec![ident.to_string()];
                    if dollar {
                        if ident == "crate" {
                            segs[0] = "$crate".to_string();
                        } else {
                            segs.clear(); // a macro_rules metavariable
                        }
                    }
                    let mut j = i + 1;
                    while j + 2 < tts.len() && is_colon_pair(&tts[j], &tts[j + 1]) {
                        let TokenTree::Ident(next) = &tts[j + 2] else {
                            break;
                        };
                        segs.push(next.to_string());
                        j += 3;
                    }
                    if !after_colons && !segs.is_empty() && j > i + 1 {
                        self.push(segs, ident.span().start().line);
                    }
                    i = j;
                }
                TokenTree::Punct(_) | TokenTree::Literal(_) => i += 1,
            }
        }
    }
}

fn is_colon_pair(a: &TokenTree, b: &TokenTree) -> bool {
    matches!((a, b), (TokenTree::Punct(x), TokenTree::Punct(y))
        if x.as_char() == ':' && x.spacing() == Spacing::Joint && y.as_char() == ':')
}

impl<'ast> Visit<'ast> for RefCollector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_cfg_test(item_attrs(item)) {
            visit::visit_item(self, item);
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let test_only = match item {
            syn::ImplItem::Fn(f) => is_cfg_test(&f.attrs),
            syn::ImplItem::Const(c) => is_cfg_test(&c.attrs),
            _ => false,
        };
        if !test_only {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        for attr in &m.attrs {
            self.visit_attribute(attr);
        }
        let Some((_, items)) = &m.content else {
            return; // `mod x;` declares; its file is visited on its own
        };
        let child = if self.block_depth == 0 {
            self.tree.modules[self.scope]
                .children
                .get(&m.ident.to_string())
                .copied()
        } else {
            None
        };
        let (scope, depth) = (self.scope, self.block_depth);
        if let Some(child) = child {
            self.scope = child;
            self.block_depth = 0;
        }
        for item in items {
            self.visit_item(item);
        }
        (self.scope, self.block_depth) = (scope, depth);
    }

    fn visit_block(&mut self, b: &'ast syn::Block) {
        self.block_depth += 1;
        visit::visit_block(self, b);
        self.block_depth -= 1;
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        for attr in &u.attrs {
            self.visit_attribute(attr);
        }
        if u.leading_colon.is_some() {
            return;
        }
        let mut leaves = Vec::new();
        use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
        for l in leaves {
            self.push_path(l.segs, l.line, l.binds.is_none());
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none()
            && let Some(first) = p.segments.first()
        {
            let segs = p.segments.iter().map(|s| s.ident.to_string()).collect();
            self.push(segs, first.ident.span().start().line);
        }
        visit::visit_path(self, p);
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(super)`, `pub(in crate::x)`: not a use of that module.
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        let path = attr.path();
        if path.is_ident("doc") || path.is_ident("path") {
            return;
        }
        self.visit_path(path);
        match &attr.meta {
            syn::Meta::List(list) => self.scan_tokens(list.tokens.clone(), true),
            syn::Meta::NameValue(nv) => self.visit_expr(&nv.value),
            syn::Meta::Path(_) => {}
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.scan_tokens(mac.tokens.clone(), false);
    }
}

// ---------------------------------------------------------------------------
// Graph algorithms

/// Tarjan's strongly connected components of the graph `adj`.
fn strongly_connected(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn connect(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.adj[v] {
            match s.index[w] {
                None => {
                    connect(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(scc);
        }
    }
    let n = adj.len();
    let mut s = State {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            connect(&mut s, v);
        }
    }
    s.out
}

/// A shortest cycle inside `members` (a strongly connected set of nodes), as the
/// list of its nodes in order; the first found from the lowest-numbered node wins ties.
fn shortest_cycle(adj: &[Vec<usize>], members: &BTreeSet<usize>) -> Vec<usize> {
    let mut best: Vec<usize> = Vec::new();
    for &start in members {
        let mut prev: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut found = None;
        'bfs: while let Some(v) = queue.pop_front() {
            for &w in &adj[v] {
                if !members.contains(&w) {
                    continue;
                }
                if w == start {
                    found = Some(v);
                    break 'bfs;
                }
                if w != start && !prev.contains_key(&w) {
                    prev.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        let Some(mut v) = found else { continue };
        let mut cycle = vec![v];
        while v != start {
            v = prev[&v];
            cycle.push(v);
        }
        cycle.reverse();
        if best.is_empty() || cycle.len() < best.len() {
            best = cycle;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (path, contents) under a fresh directory and checks it as a
    /// one-crate workspace.
    fn check(files: &[(&str, &str)]) -> Report {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\n  \"a\", # the one crate\n]\n",
        )
        .expect("write Cargo.toml");
        for (path, text) in files {
            let path = dir.path().join("a").join(path);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, text).expect("write");
        }
        check_workspace(dir.path()).expect("check")
    }

    fn cycle_files(report: &Report) -> Vec<Vec<String>> {
        report
            .cycles
            .iter()
            .map(|c| c.files.iter().map(|f| f.display().to_string()).collect())
            .collect()
    }

    #[test]
    fn a_dag_has_no_cycle() {
        let report = check(&[
            ("src/lib.rs", "mod a; mod b; mod c;\nuse crate::a::A;\n"),
            (
                "src/a.rs",
                "use crate::b::B;\npub struct A(B, crate::c::C);\n",
            ),
            ("src/b.rs", "use crate::c::C;\npub struct B(C);\n"),
            ("src/c.rs", "pub struct C;\n"),
        ]);
        assert!(report.cycles.is_empty(), "{report}");
        assert_eq!(
            report.to_string(),
            "no module cycles in 4 files of 1 crates\n"
        );
    }

    #[test]
    fn parent_and_child_through_super() {
        let report = check(&[
            ("src/lib.rs", "mod app;\n"),
            (
                "src/app/mod.rs",
                "mod writer;\n\npub struct Context;\n\nfn f() { writer::apply(); }\n",
            ),
            (
                "src/app/writer.rs",
                "use super::Context;\npub fn apply() {}\n",
            ),
        ]);
        assert_eq!(
            cycle_files(&report),
            [["a/src/app/mod.rs", "a/src/app/writer.rs"]]
        );
        let c = &report.cycles[0];
        assert_eq!(c.shortest.len(), 2);
        let text = report.to_string();
        assert!(
            text.contains("a/src/app/writer.rs:1 `super::Context`"),
            "{text}"
        );
        assert!(
            text.contains("a/src/app/mod.rs:5 `writer::apply`"),
            "{text}"
        );
    }

    #[test]
    fn cycle_through_braces_and_glob() {
        let report = check(&[
            ("src/lib.rs", "mod a; mod c; mod d;\n"),
            ("src/a.rs", "pub mod b;\n"),
            ("src/a/b.rs", "use crate::{d::D as E, c::*};\n"),
            ("src/c.rs", "pub struct C;\n"),
            ("src/d.rs", "pub struct D;\nuse crate::a::b;\n"),
        ]);
        assert_eq!(cycle_files(&report), [["a/src/a/b.rs", "a/src/d.rs"]]);
        // The glob into c is an edge too, but not part of the cycle.
        let text = report.to_string();
        assert!(text.contains("a/src/a/b.rs:1 `crate::d::D`"), "{text}");

        // Only the glob closes this one.
        let report = check(&[
            ("src/lib.rs", "mod a; mod c;\n"),
            ("src/a.rs", "pub mod b;\n"),
            ("src/a/b.rs", "use crate::{a, c::*};\n"),
            ("src/c.rs", "pub struct C(crate::a::b::B);\n"),
        ]);
        assert_eq!(cycle_files(&report), [["a/src/a/b.rs", "a/src/c.rs"]]);
        let text = report.to_string();
        assert!(text.contains("a/src/a/b.rs:1 `crate::c`"), "{text}");
    }

    #[test]
    fn path_in_an_expression_body() {
        let report = check(&[
            ("src/lib.rs", "mod metrics; mod run;\n"),
            (
                "src/metrics.rs",
                "pub struct Metrics;\nimpl Metrics { pub fn new() -> Self { Metrics } }\n\
                 fn g() -> Vec<crate::run::Mode> { vec![] }\n",
            ),
            (
                "src/run.rs",
                "pub enum Mode {}\nfn f() {\n    let m = crate::metrics::Metrics::new();\n}\n",
            ),
        ]);
        assert_eq!(cycle_files(&report), [["a/src/metrics.rs", "a/src/run.rs"]]);
        let text = report.to_string();
        assert!(
            text.contains("a/src/run.rs:3 `crate::metrics::Metrics::new`"),
            "{text}"
        );
        assert!(
            text.contains("a/src/metrics.rs:3 `crate::run::Mode`"),
            "{text}"
        );
    }

    #[test]
    fn inline_test_module_using_super_is_no_cycle() {
        let report = check(&[
            // Were `super::` in `tests` resolved to lib.rs, this re-export would close a cycle.
            ("src/lib.rs", "mod a;\npub use a::f;\n"),
            (
                "src/a.rs",
                "pub fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n    \
                 #[test] fn t() { super::f(); self::super::f(); }\n}\n",
            ),
        ]);
        assert!(report.cycles.is_empty(), "{report}");
    }

    /// A kind's tests that go through its parent's dispatcher (and a shared test-only
    /// helper module) are test code: no edge, no cycle. The same reference outside
    /// `#[cfg(test)]` is one.
    #[test]
    fn test_only_code_makes_no_edge() {
        let report = check(&[
            (
                "src/lib.rs",
                "mod kind;
#[cfg(test)]
mod testing;
pub fn assess() { kind::check(); }
",
            ),
            (
                "src/kind.rs",
                "pub fn check() {}
#[cfg(test)]
mod tests {
                     #[test] fn t() { crate::testing::run(); crate::assess(); }
}
",
            ),
            (
                "src/testing.rs",
                "pub fn run() { crate::assess(); }
",
            ),
        ]);
        assert!(report.cycles.is_empty(), "{report}");
        let report = check(&[
            (
                "src/lib.rs",
                "mod kind;
pub fn assess() { kind::check(); }
",
            ),
            (
                "src/kind.rs",
                "pub fn check() {}
pub fn again() { crate::assess(); }
",
            ),
        ]);
        assert_eq!(report.cycles.len(), 1, "{report}");
    }

    #[test]
    fn path_attribute_module() {
        let report = check(&[
            (
                "src/lib.rs",
                "#[path = \"other/impl_.rs\"]\nmod imp;\npub struct Top;\n",
            ),
            ("src/other/impl_.rs", "mod helper;\nuse crate::Top;\n"),
            ("src/other/helper.rs", "pub fn h() {}\n"),
        ]);
        // lib.rs does not name `imp`: declaring it is no edge.
        assert!(report.cycles.is_empty(), "{report}");
        assert_eq!(report.files, 3);

        let report = check(&[
            (
                "src/lib.rs",
                "#[path = \"other/impl_.rs\"]\nmod imp;\npub use imp::X;\n",
            ),
            ("src/other/impl_.rs", "pub struct X;\nuse crate::Top;\n"),
        ]);
        assert_eq!(
            cycle_files(&report),
            [["a/src/lib.rs", "a/src/other/impl_.rs"]]
        );
    }

    #[test]
    fn child_module_named_by_a_relative_path() {
        let report = check(&[
            ("src/lib.rs", "pub mod appset;\n"),
            (
                "src/appset/mod.rs",
                "mod writer;\nuse writer::apply;\npub struct Context;\n",
            ),
            (
                "src/appset/writer.rs",
                "pub fn apply(_: &super::Context) {}\n",
            ),
        ]);
        assert_eq!(
            cycle_files(&report),
            [["a/src/appset/mod.rs", "a/src/appset/writer.rs"]]
        );
    }

    #[test]
    fn edges_of_aliases_globs_macros_and_attributes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("s")).expect("mkdir");
        for (path, text) in [
            ("lib.rs", "mod s; mod t;\n"),
            ("s/mod.rs", "pub mod p; pub mod q;\n"),
            ("s/p.rs", "use super::*;\npub fn f() { q::g(); }\n"),
            ("s/q.rs", "pub fn g() {}\n"),
            (
                "t.rs",
                "use crate::s;\nfn h() { s::p::f(); }\n\
                 struct W { #[serde(with = \"crate::s::q\")] x: u8 }\n\
                 fn m() { assert!(matches!(1, crate::s::q::K)); }\n\
                 pub(super) fn n() {}\n",
            ),
        ] {
            fs::write(src.join(path), text).expect("write");
        }
        let tree = Tree::load(&src.join("lib.rs")).expect("load");
        let edges: Vec<(String, String, usize)> = tree
            .edges()
            .into_iter()
            .map(|((a, b), (line, _))| {
                let name = |i: usize| {
                    let p = &tree.files[i].path;
                    p.strip_prefix(&src).unwrap_or(p).display().to_string()
                };
                (name(a), name(b), line)
            })
            .collect();
        let e = |a: &str, b: &str, l: usize| (a.to_string(), b.to_string(), l);
        assert_eq!(
            edges,
            [
                e("s/p.rs", "s/mod.rs", 1),
                e("s/p.rs", "s/q.rs", 2),
                e("t.rs", "s/mod.rs", 1),
                e("t.rs", "s/p.rs", 2),
                e("t.rs", "s/q.rs", 3),
            ]
        );
    }

    #[test]
    fn binaries_are_separate_trees() {
        let report = check(&[
            ("src/lib.rs", "pub mod x;\n"),
            ("src/x.rs", "pub fn f() {}\n"),
            (
                "src/main.rs",
                "mod cli;\nfn main() { a::x::f(); cli::run(); }\n",
            ),
            ("src/cli.rs", "pub fn run() { crate::main(); }\n"),
            ("src/bin/tool.rs", "fn main() {}\n"),
        ]);
        assert_eq!(cycle_files(&report), [["a/src/cli.rs", "a/src/main.rs"]]);
        assert_eq!(report.cycles[0].crate_root, PathBuf::from("a/src/main.rs"));
        assert_eq!(report.files, 5);
    }
}
