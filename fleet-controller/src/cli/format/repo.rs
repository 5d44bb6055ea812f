//! `argosy repo list`: repository Secrets and credential templates as a table (or as the
//! same rows in JSON/YAML). Pure: the rows are built from the Secrets by
//! [`crate::cli::cmd::repo::rows`], and hold no credential, only which kind there is.

use argosy_crds::repository::RepoSecretKind;
use serde::Serialize;

use crate::cli::format::app::table as columns;

/// One repository Secret or credential template, as `repo list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoRow {
    /// `data.url`, user info removed.
    pub url: String,
    /// `repository` or `creds-template`.
    pub kind: &'static str,
    /// `git` or `helm` (empty when the Secret does not parse).
    #[serde(rename = "type")]
    pub repo_type: String,
    pub name: String,
    pub project: String,
    /// `https`, `bearer`, `ssh`, `tls-client-cert`, `github-app`; `inherited` (a template
    /// lends them), `none`, or `invalid` (the Secret does not parse).
    pub credentials: Vec<String>,
    /// TLS verification or SSH host key checking is off (JSON and YAML only).
    pub insecure: bool,
    /// `namespace/name`.
    pub secret: String,
}

/// The KIND column's word for `kind`.
#[must_use]
pub fn kind_name(kind: RepoSecretKind) -> &'static str {
    match kind {
        RepoSecretKind::Repository => "repository",
        RepoSecretKind::RepoCreds => "creds-template",
    }
}

/// URL, KIND, TYPE, NAME, PROJECT, CREDENTIALS, SECRET; `-` for an empty cell, so every
/// row has every column.
#[must_use]
pub fn table(rows: &[RepoRow]) -> String {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                dash(&r.url),
                r.kind.to_owned(),
                dash(&r.repo_type),
                dash(&r.name),
                dash(&r.project),
                r.credentials.join(","),
                r.secret.clone(),
            ]
        })
        .collect();
    columns(
        &[
            "URL",
            "KIND",
            "TYPE",
            "NAME",
            "PROJECT",
            "CREDENTIALS",
            "SECRET",
        ],
        &cells,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_every_column() {
        let rows = [
            RepoRow {
                url: "https://git.example.com/org/app.git".into(),
                kind: "repository",
                repo_type: "git".into(),
                name: String::new(),
                project: "team-a".into(),
                credentials: vec!["https".into(), "tls-client-cert".into()],
                insecure: true,
                secret: "argocd/repo-1".into(),
            },
            RepoRow {
                url: "https://git.example.com/org".into(),
                kind: "creds-template",
                repo_type: "git".into(),
                name: String::new(),
                project: String::new(),
                credentials: vec!["github-app".into()],
                insecure: false,
                secret: "argocd/creds-2".into(),
            },
        ];
        assert_eq!(
            table(&rows),
            "\
URL                                  KIND            TYPE  NAME  PROJECT  CREDENTIALS            SECRET
https://git.example.com/org/app.git  repository      git   -     team-a   https,tls-client-cert  argocd/repo-1
https://git.example.com/org          creds-template  git   -     -        github-app             argocd/creds-2
"
        );
        assert_eq!(
            table(&[]),
            "URL  KIND  TYPE  NAME  PROJECT  CREDENTIALS  SECRET\n"
        );
    }
}
