// Argosy fleet dashboard: renders the JSON API into the shell of index.html and keeps
// it current from the Server-Sent Events stream (no reloads). Built with the DOM API
// only (textContent, never innerHTML), so names from the cluster cannot inject markup.
"use strict";

const state = {
  summary: null,
  rows: localStorage.getItem("argosy.rows") || "apps",
  groupBy: localStorage.getItem("argosy.groupBy") || "customer",
  source: null,
};

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("data-")) el.setAttribute(k, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function badge(kind, value) {
  return h("span", { class: `badge ${kind}-${value}` }, value);
}

async function api(path) {
  const res = await fetch(path, { credentials: "same-origin" });
  // The session expired (or was cleared): the page itself then shows the login form.
  if (res.status === 401) {
    location.assign("/");
    throw new Error("signed out");
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

function view() {
  return document.getElementById("view");
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "app" && parts.length === 3) return { kind: "app", ns: parts[1], name: parts[2] };
  if (parts[0] === "appset" && parts.length === 3) return { kind: "appset", ns: parts[1], name: parts[2] };
  return { kind: "fleet" };
}

function connectionText(c) {
  return c.state === "Unreachable" ? "unreachable" : c.state === "Connected" ? "connected" : "unknown";
}

// --- Fleet view: the matrix, the ApplicationSets and the groups.

function renderFleet() {
  const s = state.summary;
  if (!s) return;
  const byServer = new Map(s.clusters.map((c) => [c.server, c]));
  const rows = state.rows === "groups" ? s.matrix.byGroup : s.matrix.byApp;
  const head = h("tr", {},
    h("th", {}, state.rows === "groups" ? `${s.groupBy || "group"} \\ cluster` : "app \\ cluster"),
    s.matrix.columns.map((server) => {
      const c = byServer.get(server);
      const title = c.connection.message || [c.kubernetesVersion, c.lastContact && `last contact ${c.lastContact}`].filter(Boolean).join(", ");
      return h("th", { class: "cluster", "data-server": server, "data-cluster": c.name, "data-connection": c.connection.state, title },
        c.name, h("span", { class: "state" }, connectionText(c.connection)));
    }));
  const body = rows.map((row) => h("tr", { "data-row": row.key },
    h("th", {}, row.key || "(no label)"),
    s.matrix.columns.map((server) => {
      const c = byServer.get(server);
      const unreachable = c.connection.state === "Unreachable";
      const cells = row.cells[server] || [];
      return h("td", { class: unreachable ? "cell unreachable" : "cell", "data-server": server, "data-cluster": c.name },
        unreachable && cells.length ? h("span", { class: "note" }, "unreachable") : null,
        cells.map((cell) => h("a", {
          class: "app", href: `#/app/${encodeURIComponent(cell.namespace)}/${encodeURIComponent(cell.name)}`,
          "data-app": cell.name, "data-namespace": cell.namespace, "data-sync": cell.sync,
          "data-health": cell.health, "data-revision": cell.revision,
        }, h("code", {}, cell.revision || "-"), badge("sync", cell.sync), badge("health", cell.health),
          state.rows === "groups" ? ` ${cell.name}` : null)));
    })));
  const appsets = h("table", { id: "appsets" },
    h("tr", {}, h("th", {}, "ApplicationSet"), h("th", {}, "apps"), h("th", {}, "sync"), h("th", {}, "health"), h("th", {}, "drifted"), h("th", {}, "")),
    s.appSets.map((a) => h("tr", { "data-appset": a.name },
      h("td", {}, `${a.namespace}/${a.name}`), h("td", {}, a.apps.total),
      h("td", {}, Object.entries(a.apps.bySync).map(([k, v]) => h("span", {}, badge("sync", k), ` ${v} `))),
      h("td", {}, Object.entries(a.apps.byHealth).map(([k, v]) => h("span", {}, badge("health", k), ` ${v} `))),
      h("td", {}, a.drifted.join(", ") || "-"),
      h("td", {}, h("a", { href: `#/appset/${encodeURIComponent(a.namespace)}/${encodeURIComponent(a.name)}` }, "rollout, preview")))));
  const groups = h("table", { id: "groups" },
    h("tr", {}, h("th", {}, s.groupBy || "group"), h("th", {}, "clusters"), h("th", {}, "unreachable"), h("th", {}, "apps"), h("th", {}, "out of sync"), h("th", {}, "degraded")),
    s.groups.map((g) => h("tr", { "data-group": g.value },
      h("td", {}, g.value || "(no label)"), h("td", {}, g.clusters.length), h("td", {}, g.unreachable),
      h("td", {}, g.apps.total), h("td", {}, g.apps.bySync.OutOfSync || 0), h("td", {}, g.apps.byHealth.Degraded || 0))));
  view().replaceChildren(
    h("h2", {}, "Matrix"), h("table", { id: "matrix", "data-rows": state.rows }, head, body),
    h("h2", {}, "ApplicationSets"), appsets,
    h("h2", {}, "Groups"), groups);
}

// --- App view: status, resource tree by kind, conditions, history, diff.

async function renderApp(ns, name) {
  const root = h("div", { id: "app", "data-app": name }, h("p", {}, h("a", { href: "#/" }, "← fleet")));
  let app;
  try {
    app = await api(`/api/v1/apps/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
  } catch (e) {
    view().replaceChildren(root, h("p", { class: "error" }, e.message));
    return;
  }
  const st = app.status || {};
  const sync = (st.sync && st.sync.status) || "Unknown";
  const health = (st.health && st.health.status) || "Unknown";
  root.append(
    h("h2", {}, `${app.namespace}/${app.name}`),
    h("p", {}, badge("sync", sync), badge("health", health), " revision ", h("code", {}, (st.sync && st.sync.revision) || "-"),
      ` → ${app.destination.name || app.destination.server} / ${app.destination.namespace || ""}`),
    st.health && st.health.message ? h("p", {}, st.health.message) : null);
  const conditions = st.conditions || [];
  if (conditions.length) {
    root.append(h("h2", {}, "Conditions"), h("ul", { id: "conditions" },
      conditions.map((c) => h("li", {}, h("strong", {}, c.type), `: ${c.message}`))));
  }
  const byKind = new Map();
  for (const r of st.resources || []) {
    const kind = r.group ? `${r.kind}.${r.group}` : r.kind;
    if (!byKind.has(kind)) byKind.set(kind, []);
    byKind.get(kind).push(r);
  }
  root.append(h("h2", {}, "Resources"), h("ul", { id: "resources" },
    [...byKind.entries()].sort().map(([kind, list]) => h("li", { "data-kind": kind }, h("strong", {}, kind),
      h("ul", {}, list.map((r) => h("li", { "data-resource": r.name },
        r.namespace ? `${r.namespace}/${r.name}` : r.name, badge("sync", r.status || "Unknown"),
        r.health ? badge("health", r.health.status) : null,
        r.health && r.health.message ? ` ${r.health.message}` : null)))))));
  const history = st.history || [];
  if (history.length) {
    root.append(h("h2", {}, "History"), h("table", { id: "history" },
      h("tr", {}, h("th", {}, "id"), h("th", {}, "revision"), h("th", {}, "deployed at")),
      history.slice().reverse().map((e) => h("tr", {}, h("td", {}, e.id), h("td", {}, h("code", {}, e.revision || "")), h("td", {}, e.deployedAt || "")))));
  }
  if (st.operationState) {
    const op = st.operationState;
    root.append(h("h2", {}, "Last operation"), h("p", { id: "operation" }, `${op.phase || ""}: ${op.message || ""}`));
  }
  const diff = h("pre", { class: "diff", id: "diff" }, "computing the diff…");
  root.append(h("h2", {}, "Diff (live → desired)"), diff);
  view().replaceChildren(root);
  try {
    const d = await api(`/api/v1/apps/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/diff`);
    const lines = d.diffs.flatMap((r) => r.text.split("\n"));
    diff.replaceChildren(...(lines.length ? lines.map((l) => h("span", { class: l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : "" }, l + "\n")) : ["no differences"]));
    if (d.warnings.length) diff.after(h("ul", {}, d.warnings.map((w) => h("li", {}, w))));
  } catch (e) {
    diff.replaceChildren(h("span", { class: "error" }, e.message));
  }
}

// --- ApplicationSet view: its rollout (live), then what it would generate now.

function short(revision) {
  return (revision || "").slice(0, 7);
}

function rolloutRow(ns, a) {
  const runs = short(a.runs), targets = a.target.map(short);
  const behind = runs && targets.length && !targets.includes(runs);
  return h("tr", { "data-app": a.application, "data-progress": a.progress, "data-customer": a.customer || "" },
    h("td", {}, h("a", { href: `#/app/${encodeURIComponent(ns)}/${encodeURIComponent(a.application)}` }, a.application)),
    h("td", {}, badge("progress", a.progress)),
    h("td", {}, a.sync ? [badge("sync", a.sync), badge("health", a.health)] : "-"),
    h("td", {}, a.destination || "-"),
    h("td", {}, a.customer || "-"),
    h("td", { class: behind ? "behind" : "" }, h("code", {}, runs || "-")),
    h("td", {}, h("code", {}, targets.join(", ") || "-")),
    h("td", {}, a.message));
}

// The rollout: phase, step N of M, why it waits or stopped, and per step its
// Applications (progress, destination and customer, running vs target revision).
function renderRollout(section, r) {
  if (!r.rollingSync) {
    section.replaceChildren(h("p", { "data-phase": "" }, "Every Application is updated at once (no RollingSync)."));
    return;
  }
  const ro = r.rollout;
  const settings = [r.bakeTime && `bake time ${r.bakeTime}`, r.failureBudget && `failure budget ${r.failureBudget}`,
    r.paused && `paused: ${r.paused}`].filter(Boolean).join(", ");
  const header = h("tr", {}, ["Application", "progress", "sync / health", "destination", state.groupBy || "customer",
    "runs", "target", "why"].map((t) => h("th", {}, t)));
  const steps = [...Array(r.steps).keys()].map((i) => i + 1);
  const groups = [...steps, null].map((step) => {
    const rows = r.applications.filter((a) => (a.step ?? null) === step);
    if (step === null && !rows.length) return null;
    const current = ro && ro.step === step;
    return h("div", { class: current ? "step current" : "step", "data-step": step === null ? "none" : String(step) },
      h("h4", {}, step === null ? "In no step (the rollout never syncs these)" : `Step ${step} of ${r.steps}${current ? " (current)" : ""}`),
      rows.length ? h("table", {}, header.cloneNode(true), rows.map((a) => rolloutRow(r.namespace, a))) : h("p", {}, "no Applications"));
  });
  // (replaceChildren takes nodes only: no nulls, no arrays.)
  section.replaceChildren(...[
    h("p", { class: "rollout-phase", "data-phase": ro ? ro.phase : "", "data-step": ro ? String(ro.step) : "" },
      badge("phase", ro ? ro.phase : "not reconciled yet"),
      ro && ro.step ? ` step ${ro.step} of ${r.steps}` : ` ${r.steps} step(s)`,
      ro && ro.since ? `, since ${ro.since}` : ""),
    ro && ro.message ? h("p", { class: "rollout-why" }, ro.message) : null,
    settings ? h("p", {}, settings) : null,
    ...groups,
  ].filter(Boolean));
}

async function refreshRollout(ns, name) {
  const section = document.getElementById("rollout");
  if (!section) return;
  try {
    const r = await api(`/api/v1/appsets/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/rollout?groupBy=${encodeURIComponent(state.groupBy)}`);
    renderRollout(section, r);
  } catch (e) {
    section.replaceChildren(h("p", { class: "error" }, e.message));
  }
}

async function renderAppSet(ns, name) {
  const rollout = h("section", { id: "rollout", "data-appset": name }, h("p", {}, "loading the rollout…"));
  const preview = h("div", { id: "preview", "data-appset": name }, h("h3", {}, "Preview: what it generates now"), h("p", {}, "generating…"));
  view().replaceChildren(h("div", { id: "appset", "data-appset": name },
    h("p", {}, h("a", { href: "#/" }, "← fleet")),
    h("h2", {}, `ApplicationSet ${ns}/${name}`),
    h("h3", {}, "Rollout"), rollout, preview));
  refreshRollout(ns, name);
  try {
    const p = await api(`/api/v1/appsets/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/preview`);
    preview.replaceChildren(preview.firstChild, h("table", {},
      h("tr", {}, h("th", {}, "Application"), h("th", {}, "destination"), h("th", {}, "source"), h("th", {}, "exists")),
      p.applications.map((a) => h("tr", { "data-app": a.name },
        h("td", {}, a.name), h("td", {}, `${a.destination.name || a.destination.server} / ${a.destination.namespace || ""}`),
        h("td", {}, a.sources.map((s) => `${s.repoURL} ${s.path || s.chart || ""} @ ${s.targetRevision || "HEAD"}`).join("; ")),
        h("td", {}, a.exists ? "yes" : "new")))));
    if (p.validationErrors.length) preview.append(h("ul", { class: "error" }, p.validationErrors.map((e) => h("li", {}, e))));
  } catch (e) {
    preview.replaceChildren(preview.firstChild, h("p", { class: "error" }, e.message));
  }
}

function render() {
  const r = route();
  if (r.kind === "app") renderApp(r.ns, r.name);
  else if (r.kind === "appset") renderAppSet(r.ns, r.name);
  else renderFleet();
}

function renderTotals() {
  const s = state.summary;
  if (!s) return;
  const unreachable = s.clusters.filter((c) => c.connection.state === "Unreachable").length;
  document.getElementById("totals").textContent =
    `${s.apps.total} apps, ${s.clusters.length} clusters` + (unreachable ? `, ${unreachable} unreachable` : "");
}

// --- Live updates.

function subscribe() {
  if (state.source) state.source.close();
  const live = document.getElementById("live");
  const source = new EventSource(`/api/v1/events?groupBy=${encodeURIComponent(state.groupBy)}`);
  state.source = source;
  source.onopen = () => { live.textContent = "live"; live.classList.add("on"); document.body.dataset.live = "true"; };
  source.onerror = () => { live.textContent = "reconnecting"; live.classList.remove("on"); document.body.dataset.live = "false"; };
  source.addEventListener("fleet", (e) => {
    state.summary = JSON.parse(e.data);
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
    renderTotals();
    const r = route();
    if (r.kind === "fleet") renderFleet();
    // A rollout moves with its Applications: read it again on every fleet change.
    else if (r.kind === "appset") refreshRollout(r.ns, r.name);
  });
}

async function load() {
  try {
    state.summary = await api(`/api/v1/fleet?groupBy=${encodeURIComponent(state.groupBy)}`);
    renderTotals();
  } catch (e) {
    view().replaceChildren(h("p", { class: "error" }, e.message));
    return;
  }
  render();
}

document.getElementById("rows").value = state.rows;
document.getElementById("group-by").value = state.groupBy;
document.getElementById("rows").addEventListener("change", (e) => {
  state.rows = e.target.value;
  localStorage.setItem("argosy.rows", state.rows);
  if (route().kind === "fleet") renderFleet();
});
document.getElementById("group-by").addEventListener("change", (e) => {
  state.groupBy = e.target.value.trim();
  localStorage.setItem("argosy.groupBy", state.groupBy);
  load();
  subscribe();
});
window.addEventListener("hashchange", render);
load();
subscribe();
