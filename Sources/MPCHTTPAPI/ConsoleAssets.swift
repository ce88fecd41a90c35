/// The console's page, script and stylesheet, compiled into the binary (served by `ConsoleRoutes`).
/// Plain HTML, a small script that builds every element with `textContent` (no HTML from data), and a
/// print stylesheet for reports.
enum ConsoleAssets {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>MPCNode console</title>
    <link rel="stylesheet" href="/console/app.css">
    <script src="/console/app.js" defer></script>
    </head>
    <body>
    <header>
      <h1>MPCNode <span id="node-name"></span></h1>
      <nav id="nav" hidden>
        <button data-view="node">Node</button>
        <button data-view="jobs">Jobs</button>
        <button data-view="submit">Submit a job</button>
        <button data-view="reports">Reports</button>
        <button data-view="audit">Audit</button>
        <button id="logout">Sign out</button>
      </nav>
    </header>
    <main>
      <section id="login">
        <h2>Sign in</h2>
        <p>Paste an API token of this node (<code>mpcnode node token</code> makes one; its roles decide what you see).</p>
        <form id="login-form">
          <label>Token <input id="token" type="password" autocomplete="off" required></label>
          <button type="submit" id="login-button">Sign in</button>
        </form>
        <p id="login-error" class="error" role="alert"></p>
      </section>
      <section id="view-node" class="view" hidden><h2>Node</h2><div id="node"></div><h3>Peers</h3><div id="peers"></div><h3>Datasets</h3><div id="datasets"></div></section>
      <section id="view-jobs" class="view" hidden><h2>Jobs</h2><p class="hint">Refreshed every two seconds.</p><div id="jobs"></div></section>
      <section id="view-submit" class="view" hidden>
        <h2>Submit a PSI</h2>
        <form id="submit-form">
          <fieldset><legend>First party</legend>
            <label>Node <input name="a-node" required></label><label>Dataset <input name="a-dataset" required></label><label>Column <input name="a-column" required></label>
          </fieldset>
          <fieldset><legend>Second party</legend>
            <label>Node <input name="b-node" required></label><label>Dataset <input name="b-dataset" required></label><label>Column <input name="b-column" required></label>
          </fieldset>
          <label>Deliver to <input name="deliver" required placeholder="bank-a"></label>
          <label><input type="checkbox" name="count-only"> The intersection's size only</label>
          <button type="submit" id="submit-button">Submit</button>
        </form>
        <div id="submitted"></div>
      </section>
      <section id="view-reports" class="view" hidden><h2>Reports</h2><div id="reports"></div><div id="report"></div></section>
      <section id="view-audit" class="view" hidden><h2>Audit trail</h2><div id="audit"></div></section>
    </main>
    </body>
    </html>
    """#

    static let script = #"""
    "use strict";
    const $ = (id) => document.getElementById(id);
    let refresh = null;

    function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
    function table(headers, rows) {
      const t = el("table"), head = t.createTHead().insertRow();
      headers.forEach((h) => head.appendChild(el("th", h)));
      const body = t.createTBody();
      rows.forEach((r) => { const tr = body.insertRow(); (r.cells || r).forEach((c) => { const td = tr.insertCell(); if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "" : String(c); }); if (r.cls) tr.className = r.cls; });
      return t;
    }
    function fill(id, ...children) { const e = $(id); e.replaceChildren(...children); return e; }

    async function api(path, options = {}) {
      const headers = Object.assign({ "Authorization": "Bearer " + sessionStorage.getItem("mpcnode-token") }, options.headers || {});
      const response = await fetch(path, Object.assign({}, options, { headers }));
      const text = await response.text();
      let body = null; try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
      if (!response.ok) { const message = body && body.error ? body.error.message : response.status + " " + response.statusText; const err = new Error(message); err.status = response.status; throw err; }
      return body;
    }

    function show(view) {
      if (refresh) { clearInterval(refresh); refresh = null; }
      document.querySelectorAll(".view").forEach((v) => v.hidden = v.id !== "view-" + view);
      ({ node: loadNode, jobs: loadJobs, submit: () => {}, reports: loadReports, audit: loadAudit })[view]();
      if (view === "jobs") refresh = setInterval(loadJobs, 2000);
    }
    function failed(id) { return (e) => fill(id, el("p", e.status === 403 ? "This token's roles do not cover this view." : "Error: " + e.message, "error")); }

    async function loadNode() {
      try {
        const n = await api("/v1/node");
        $("node-name").textContent = "— " + n.nodeID + " (" + n.role + ")";
        fill("node", table(["node", "role", "listening", "peers", "datasets", "running jobs", "audit chain"],
          [[n.nodeID, n.role, n.listen, Object.keys(n.peers).sort().join(", "), n.datasets, n.runningJobs, n.auditChainIntact ? "intact" : "BROKEN"]]));
        const expiry = el("p", "Certificate: " + (n.certificateDaysLeft ?? "?") + " days left; consortium CA: " + (n.caDaysLeft ?? "?") + " days left.",
          (n.certificateDaysLeft ?? 99) < 30 ? "error" : "ok");
        expiry.id = "certificate-expiry";
        $("node").appendChild(expiry);
      } catch (e) { failed("node")(e); }
      try {
        const p = await api("/v1/peers");
        fill("peers", table(["peer", "address", "reachable over mutual TLS", "round trip", "error"],
          p.peers.map((x) => ({ cells: [x.node, x.address, x.reachable ? "yes" : "NO", x.milliseconds ? x.milliseconds.toFixed(1) + " ms" : "", x.error || ""], cls: x.reachable ? "" : "state-failed" }))));
      } catch (e) { failed("peers")(e); }
      try {
        const d = await api("/v1/datasets");
        fill("datasets", table(["dataset", "id column", "columns", "rows", "distinct ids", "imported"],
          d.datasets.map((s) => [s.name, s.idColumn, s.columns.join(", "), s.rowCount, s.distinctIdentifiers, s.importedAt])));
      } catch (e) { failed("datasets")(e); }
    }

    function progressOf(j) {
      const p = (j.parties || []).map((x) => x.progress).filter((x) => x && x.total > 0);
      if (j.state === "succeeded") return "100 %";
      if (!p.length) return "";
      return Math.floor(100 * p.reduce((a, x) => a + x.done / x.total, 0) / p.length) + " %";
    }
    async function loadJobs() {
      try {
        const r = await api("/v1/jobs?limit=100");
        fill("jobs", r.jobs.length ? table(["job", "kind", "role", "state", "progress", "parties", "reason"],
          r.jobs.map((j) => ({ cells: [j.id, j.protocolName, j.role, j.state, progressOf(j),
            (j.parties || []).map((p) => p.nodeID + (p.state ? " " + p.state : "")).join(", "), j.reason || ""], cls: "state-" + j.state })))
          : el("p", "No job yet."));
      } catch (e) { failed("jobs")(e); }
    }

    async function submitJob(event) {
      event.preventDefault();
      const f = event.target.elements, out = $("submitted");
      const submission = {
        protocolName: "psi", group: "ristretto255", cardinalityOnly: f["count-only"].checked,
        parties: [{ nodeID: f["a-node"].value.trim(), dataset: f["a-dataset"].value.trim(), column: f["a-column"].value.trim() },
                  { nodeID: f["b-node"].value.trim(), dataset: f["b-dataset"].value.trim(), column: f["b-column"].value.trim() }],
        deliverTo: f["deliver"].value.split(",").map((s) => s.trim()).filter((s) => s),
      };
      try {
        const r = await api("/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(submission) });
        fill("submitted", el("p", "Submitted job " + r.job_id + "."), el("p", "", "job-state"));
        out.dataset.job = r.job_id;
        const follow = async () => {
          const j = await api("/v1/jobs/" + encodeURIComponent(r.job_id));
          const line = out.querySelector(".job-state");
          line.id = "job-state"; line.textContent = j.state + (progressOf(j) ? " — " + progressOf(j) : "") + (j.reason ? " — " + j.reason : "");
          const refusals = (j.parties || []).filter((p) => p.state === "refused");
          if (refusals.length) out.appendChild(table(["refused by", "reason"], refusals.map((p) => [p.nodeID, p.reason || ""])));
          if (!["succeeded", "failed", "refused"].includes(j.state)) setTimeout(follow, 1000);
        };
        follow();
      } catch (e) { fill("submitted", el("p", "Not submitted: " + e.message, "error")); }
    }

    function download(name, type, text) {
      const a = el("a"); a.href = URL.createObjectURL(new Blob([text], { type })); a.download = name; document.body.appendChild(a); a.click(); a.remove();
    }
    function csvField(v) { const s = v === null || v === undefined ? "" : String(v); return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; }
    function chart(report) {
      const measure = report.measures[0], cells = report.cells.filter((c) => !c.suppressed && c.values[measure] !== undefined);
      if (!measure || !cells.length) return el("p", "");
      const max = Math.max(...cells.map((c) => Math.abs(Number(c.values[measure])) || 0), 1), ns = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(ns, "svg"); svg.setAttribute("viewBox", "0 0 760 " + (cells.length * 22 + 10)); svg.setAttribute("class", "chart"); svg.setAttribute("role", "img");
      cells.forEach((c, i) => {
        const w = 380 * Math.abs(Number(c.values[measure])) / max, y = 5 + i * 22;
        const label = document.createElementNS(ns, "text"); label.setAttribute("x", 0); label.setAttribute("y", y + 14); label.textContent = c.group || "(all)"; svg.appendChild(label);
        const bar = document.createElementNS(ns, "rect"); bar.setAttribute("x", 150); bar.setAttribute("y", y); bar.setAttribute("width", w); bar.setAttribute("height", 16); svg.appendChild(bar);
        const value = document.createElementNS(ns, "text"); value.setAttribute("x", 155 + w); value.setAttribute("y", y + 14); value.textContent = c.values[measure]; svg.appendChild(value);
      });
      const figure = el("figure"); figure.appendChild(svg); figure.appendChild(el("figcaption", measure + " per " + (report.groupBy || "cell") + " (suppressed cells left out)"));
      return figure;
    }
    async function openReport(id) {
      try {
        const r = await api("/v1/reports/" + encodeURIComponent(id));
        const rows = r.cells.map((c) => ({ cells: [c.group || "(all)", c.suppressed ? "suppressed" : c.records, c.suppressed ? "" : c.parties,
          ...r.measures.map((m) => c.suppressed ? "" : c.values[m]), c.suppressed ? (c.suppressionReason || "below the policy's minimum") : ""], cls: c.suppressed ? "suppressed" : "" }));
        const csv = () => [["group", "records", "parties", ...r.measures, "suppressed"].map(csvField).join(","),
          ...r.cells.map((c) => [c.group, c.records, c.parties, ...r.measures.map((m) => c.values[m]), c.suppressed].map(csvField).join(","))].join("\n") + "\n";
        const tools = el("p", "", "no-print");
        const exportCSV = el("button", "Export CSV"); exportCSV.id = "export-csv"; exportCSV.onclick = () => download("report-" + r.id + ".csv", "text/csv", csv());
        const exportJSON = el("button", "Export JSON"); exportJSON.onclick = () => download("report-" + r.id + ".json", "application/json", JSON.stringify(r, null, 2));
        const print = el("button", "Print"); print.onclick = () => window.print();
        tools.append(exportCSV, " ", exportJSON, " ", print);
        fill("report", el("h3", "Report " + r.id + " (" + (r.kind || "secure sum") + ")"), tools,
          table(["group", "records", "parties", ...r.measures, "note"], rows), chart(r),
          el("h4", "Provenance"),
          table(["job", "spec hash", "coordinator", "started", "created", "included", "dropped", "min records / parties a cell"],
            [[r.jobID, r.specHash, r.coordinator, r.startedAt, r.createdAt, r.included.join(", "), r.dropped.join(", ") || "none", r.minCellRecords + " / " + r.minCellParties]]),
          ...(r.notes || []).map((n) => el("p", n, "note")));
        $("report").dataset.loaded = r.id;
      } catch (e) { failed("report")(e); }
    }
    async function loadReports() {
      try {
        const r = await api("/v1/reports");
        fill("reports", r.reports.length ? table(["report", "kind", "cells", "created", ""], r.reports.map((x) => {
          const open = el("button", "Open"); open.className = "open-report"; open.onclick = () => openReport(x.id);
          return [x.id, x.kind || "", x.cells.length, x.createdAt, open];
        })) : el("p", "No report on this node."));
      } catch (e) { failed("reports")(e); }
    }
    async function loadAudit() {
      try {
        const r = await api("/v1/audit?limit=200");
        fill("audit", el("p", r.chain_intact ? "Hash chain verified: intact." : "Hash chain BROKEN at record " + r.broken_at + ".", r.chain_intact ? "ok" : "error"),
          table(["#", "at", "event", "job", "details"], r.records.map((a) => [a.seq, a.at, a.event, a.jobID || "", JSON.stringify(a.details)])));
      } catch (e) { failed("audit")(e); }
    }

    async function signIn(token) {
      sessionStorage.setItem("mpcnode-token", token);
      try {
        await api("/v1/node");
        $("login").hidden = true; $("nav").hidden = false; $("login-error").textContent = "";
        show("node");
      } catch (e) {
        sessionStorage.removeItem("mpcnode-token");
        $("login-error").textContent = e.status === 401 ? "This node does not know that token." : e.status === 403 ? "This token has none of the console's roles (operator, coordinator, regulator)." : "Error: " + e.message;
      }
    }

    document.addEventListener("DOMContentLoaded", () => {
      $("login-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
      $("submit-form").addEventListener("submit", submitJob);
      $("logout").addEventListener("click", () => { sessionStorage.removeItem("mpcnode-token"); location.reload(); });
      document.querySelectorAll("nav button[data-view]").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
      if (sessionStorage.getItem("mpcnode-token")) signIn(sessionStorage.getItem("mpcnode-token"));
    });
    """#

    static let style = #"""
    body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2433; background: #f6f7f9; }
    header { background: #1d2433; color: #fff; padding: 0.6em 1.2em; display: flex; gap: 2em; align-items: center; flex-wrap: wrap; }
    header h1 { font-size: 1.2em; margin: 0; }
    nav button { background: none; border: 1px solid #5c6b8a; color: #fff; padding: 0.3em 0.8em; margin-right: 0.3em; border-radius: 3px; cursor: pointer; }
    main { padding: 1em 1.2em; max-width: 1200px; }
    table { border-collapse: collapse; margin: 0.6em 0; background: #fff; width: 100%; }
    th, td { border: 1px solid #d5d9e0; padding: 0.3em 0.6em; text-align: left; vertical-align: top; font-size: 0.93em; }
    th { background: #eceff3; }
    tr.suppressed td { color: #8a8f99; font-style: italic; }
    tr.state-failed td, tr.state-refused td { background: #fff1f0; }
    tr.state-succeeded td:nth-child(4) { color: #1a7f37; }
    .error { color: #b42318; } .ok { color: #1a7f37; } .hint, .note { color: #5b6475; }
    fieldset { border: 1px solid #d5d9e0; margin: 0.5em 0; } label { margin-right: 1em; display: inline-block; }
    input { padding: 0.25em; } button { padding: 0.35em 0.9em; }
    svg.chart { width: 100%; max-width: 760px; font-size: 12px; } svg.chart rect { fill: #3b6fd4; }
    @media print {
      header nav, .no-print, #login, #view-node, #view-jobs, #view-submit, #view-audit, #reports { display: none !important; }
      body { background: #fff; } header { background: none; color: #000; padding: 0; }
      table { page-break-inside: auto; } tr { page-break-inside: avoid; }
    }
    """#
}
