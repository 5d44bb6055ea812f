//! [`Context`]: what one generation shares, and [`Depth`], how deep a generator entry
//! sits.
//!
//! The cluster list and repository trees are fetched once per generation, however often
//! a matrix re-runs a child. This module sits below the generator kinds and the dispatch
//! in `generator`: it depends only on the sources, the repository [`Tree`] cache and the
//! validation [`Destinations`].

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use argosy_crds::ApplicationSet;
use argosy_templates::Mode;

use crate::destinations::Destinations;
use crate::source::{ClusterEntry, RepoError, Sources};
use crate::tree::Tree;

/// Everything one generation shares: the `ApplicationSet`, the sources, the template mode
/// and the data fetched so far.
pub(crate) struct Context<'a> {
    pub appset: &'a ApplicationSet,
    pub sources: Sources<'a>,
    pub mode: Mode,
    pub go_template: bool,
    /// Dropped once no generator will need it again (see [`Context::release_clusters`]).
    clusters: RefCell<Option<Rc<Vec<ClusterEntry>>>>,
    destinations: OnceCell<Destinations>,
    trees: RefCell<HashMap<(String, String), Arc<Tree>>>,
    strict_mode: OnceCell<Result<Mode, String>>,
}

impl<'a> Context<'a> {
    pub fn new(appset: &'a ApplicationSet, sources: Sources<'a>, mode: Mode) -> Self {
        Self {
            appset,
            sources,
            mode,
            go_template: appset.spec.go_template,
            clusters: RefCell::new(None),
            destinations: OnceCell::new(),
            trees: RefCell::new(HashMap::new()),
            strict_mode: OnceCell::new(),
        }
    }

    /// The cluster Secrets, listed once per generation (again after a release).
    pub fn clusters(&self) -> Rc<Vec<ClusterEntry>> {
        if let Some(clusters) = self.clusters.borrow().as_ref() {
            return clusters.clone();
        }
        let clusters = Rc::new(self.sources.clusters.clusters());
        *self.clusters.borrow_mut() = Some(clusters.clone());
        clusters
    }

    /// The clusters Applications may be sent to, for validation.
    pub fn destinations(&self) -> &Destinations {
        self.destinations
            .get_or_init(|| Destinations::new(&self.clusters()))
    }

    /// Drops the cluster list (keeping what validation needs) when rendering is about to
    /// start and nothing will list clusters again: with 10,000 clusters that memory is
    /// better spent on the Applications.
    pub fn release_clusters(&self) {
        if self.clusters.borrow().is_some() {
            self.destinations();
            *self.clusters.borrow_mut() = None;
        }
    }

    /// A repository tree, resolved once per `(repo, revision)` per generation.
    pub fn tree(&self, repo: &str, revision: &str) -> Result<Arc<Tree>, RepoError> {
        let key = (repo.to_owned(), revision.to_owned());
        if let Some(tree) = self.trees.borrow().get(&key) {
            return Ok(tree.clone());
        }
        let tree = Arc::new(Tree::new(self.sources.repos.snapshot(repo, revision)?));
        self.trees.borrow_mut().insert(key, tree.clone());
        Ok(tree)
    }

    /// The goTemplate mode with `missingkey=error` appended (matrix `values` pre-resolution).
    pub fn strict_mode(&self) -> Result<&Mode, String> {
        self.strict_mode
            .get_or_init(|| {
                let mut options = self.appset.spec.go_template_options.clone();
                options.push("missingkey=error".to_owned());
                Mode::from_spec(true, &options).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// How deep an entry sits: combination generators may be nested only once. At
/// [`Depth::Leaf`] their fields are dropped, as Argo CD's `ApplicationSetTerminalGenerator`
/// has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    Top,
    Nested,
    Leaf,
}

impl Depth {
    pub fn child(self) -> Depth {
        match self {
            Depth::Top => Depth::Nested,
            Depth::Nested | Depth::Leaf => Depth::Leaf,
        }
    }
}
