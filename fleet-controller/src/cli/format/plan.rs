//! The text of `argosy plan`: per customer (or cluster) with a change, each Application
//! that appears, disappears, changes or fails, the objects that differ with their diffs;
//! then the destinations where nothing changes on one line, and a summary line. Pure.

use std::fmt::Write as _;

use argosy_sync_engine::fleet_plan::collect::{FleetPlan, Side, label};
use argosy_sync_engine::fleet_plan::{AppPlan, Change, Destination, ObjectPlan};
use argosy_sync_engine::resource::ObjKey;

/// Destinations without a change named on the closing line before the rest is counted.
const UNCHANGED_NAMED: usize = 20;

/// The plan as text.
#[must_use]
pub fn text(plan: &FleetPlan) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "ApplicationSet {}: {} from {} to {}",
        plan.application_set,
        plan.repositories.join(", "),
        side_name(&plan.from),
        side_name(&plan.to)
    );
    for (name, side) in [("from", &plan.from), ("to", &plan.to)] {
        for invalid in &side.invalid {
            let _ = writeln!(out, "! invalid at {name}: {invalid}");
        }
    }
    let mut unchanged = Vec::new();
    for destination in &plan.comparison.destinations {
        if !destination.has_changes() {
            unchanged.push(short_name(&destination.destination));
            continue;
        }
        let _ = writeln!(
            out,
            "\n{}",
            heading(&destination.destination, &plan.group_by)
        );
        let mut same = 0;
        for app in &destination.applications {
            if app.change == Change::Unchanged {
                same += 1;
            } else {
                write_app(&mut out, app);
            }
        }
        if same > 0 {
            let _ = writeln!(out, "  ({same} Applications unchanged)");
        }
    }
    if !unchanged.is_empty() {
        let named = unchanged.len().min(UNCHANGED_NAMED);
        let more = unchanged.len() - named;
        let suffix = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "\nNo change: {}{suffix}",
            unchanged[..named].join(", ")
        );
    }
    let s = &plan.comparison.summary;
    let _ = writeln!(
        out,
        "\nPlan: {} of {} destinations change; Applications: {} added, {} removed, {} changed, {} unchanged, {} failed; objects: {} added, {} removed, {} changed.",
        s.changed_destinations,
        s.destinations,
        s.apps_added,
        s.apps_removed,
        s.apps_changed,
        s.apps_unchanged,
        s.apps_failed + plan.from.invalid.len() + plan.to.invalid.len(),
        s.objects_added,
        s.objects_removed,
        s.objects_changed
    );
    out
}

/// A side by its revision and commit, or `the revisions it names now`.
fn side_name(side: &Side) -> String {
    if side.revision.is_none() {
        "the revisions it names now".to_owned()
    } else {
        label(side)
    }
}

/// `customer acme (cluster acme-prod)`, or `cluster acme-prod` without the label.
fn heading(destination: &Destination, group_by: &str) -> String {
    if destination.group == destination.cluster || destination.cluster.is_empty() {
        format!("cluster {}", destination.group)
    } else {
        format!(
            "{group_by} {} (cluster {})",
            destination.group, destination.cluster
        )
    }
}

/// `acme (acme-prod)`, or `acme-prod`.
fn short_name(destination: &Destination) -> String {
    if destination.group == destination.cluster || destination.cluster.is_empty() {
        destination.group.clone()
    } else {
        format!("{} ({})", destination.group, destination.cluster)
    }
}

fn write_app(out: &mut String, app: &AppPlan) {
    let mark = match app.change {
        Change::Added => "+",
        Change::Removed => "-",
        Change::Changed => "~",
        Change::Unchanged => "=",
        Change::Failed => "!",
    };
    let _ = writeln!(
        out,
        "  {mark} Application {} ({})",
        app.name,
        word(app.change)
    );
    for error in &app.errors {
        let _ = writeln!(out, "      error: {error}");
    }
    if let Some(diff) = &app.application_diff {
        let _ = writeln!(out, "      ~ the Application itself");
        indent(out, diff, "        ");
    }
    for object in &app.objects {
        write_object(out, object);
    }
    if app.unchanged_objects > 0 && app.change == Change::Changed {
        let _ = writeln!(out, "      ({} objects unchanged)", app.unchanged_objects);
    }
}

fn write_object(out: &mut String, object: &ObjectPlan) {
    let mark = match object.change {
        Change::Added => "+",
        Change::Removed => "-",
        _ => "~",
    };
    let key = ObjKey {
        group: object.group.clone(),
        kind: object.kind.clone(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
    };
    let _ = writeln!(out, "      {mark} {key} ({})", word(object.change));
    indent(out, &object.diff, "          ");
}

fn word(change: Change) -> &'static str {
    match change {
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Changed => "changed",
        Change::Unchanged => "unchanged",
        Change::Failed => "failed",
    }
}

fn indent(out: &mut String, text: &str, prefix: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{prefix}{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argosy_sync_engine::fleet_plan::{DiffOptions, PlannedApp, compare};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn planned(name: &str, customer: &str, image: &str) -> PlannedApp {
        PlannedApp {
            name: name.into(),
            destination: Destination {
                group: customer.into(),
                cluster: format!("{customer}-prod"),
                server: format!("https://{customer}:6443"),
            },
            application: json!({"spec": {}}),
            objects: Ok(vec![json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"}, "spec": {"image": image}})]),
        }
    }

    #[test]
    fn only_changed_destinations_are_detailed() {
        let options = DiffOptions {
            max_diff_lines: 50,
            from_label: "v1".into(),
            to_label: "v2".into(),
        };
        let comparison = compare(
            vec![
                planned("web-acme", "acme", "a:1"),
                planned("web-globex", "globex", "a:1"),
            ],
            vec![
                planned("web-acme", "acme", "a:2"),
                planned("web-globex", "globex", "a:1"),
            ],
            &options,
        );
        let side = |r: &str, c: &str| Side {
            revision: Some(r.into()),
            commits: BTreeMap::from([("https://git/fleet".into(), c.into())]),
            invalid: vec![],
        };
        let plan = FleetPlan {
            application_set: "argocd/apps".into(),
            group_by: "customer".into(),
            repositories: vec!["https://git/fleet".into()],
            from: side("v1", "1111111aaaa"),
            to: side("2222222bbbb", "2222222bbbb"),
            comparison,
        };
        let expected = [
            "ApplicationSet argocd/apps: https://git/fleet from v1 (1111111) to 2222222",
            "",
            "customer acme (cluster acme-prod)",
            "  ~ Application web-acme (changed)",
            "      ~ Deployment.apps shop/web (changed)",
            "          --- v1",
            "          +++ v2",
            "          @@ -4,4 +4,4 @@",
            "             name: web",
            "             namespace: shop",
            "           spec:",
            "          -  image: a:1",
            "          +  image: a:2",
            "",
            "No change: globex (globex-prod)",
            "",
            "Plan: 1 of 2 destinations change; Applications: 0 added, 0 removed, 1 changed, 1 unchanged, 0 failed; objects: 0 added, 0 removed, 1 changed.",
        ];
        assert_eq!(text(&plan), expected.map(|l| format!("{l}\n")).concat());
    }
}
