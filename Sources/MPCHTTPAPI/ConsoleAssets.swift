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
      <section id="view-node" class="view" hidden><h2>Node</h2><div id="node"></div><h3>Peers</h3><div id="peers"></div><h3>Datasets</h3><div id="datasets"></div><h3>Policy in force (read-only)</h3><div id="policy"></div></section>
      <section id="view-jobs" class="view" hidden><h2>Jobs</h2><p class="hint">Refreshed every two seconds.</p><div id="jobs"></div></section>
      <section id="view-submit" class="view" hidden>
        <h2>Submit a job</h2>
        <form id="submit-form" novalidate>
          <label>Kind <select name="kind" id="kind">
            <option value="psi">psi: two-party intersection</option>
            <option value="mpsi">mpsi: n-party intersection</option>
            <option value="watchlist">watchlist: identifiers on several parties' lists</option>
            <option value="union-sum">union-sum: per-identifier totals over the union</option>
            <option value="intersection-stats">intersection-stats: statistics over the intersection</option>
            <option value="secure-sum">secure-sum: grouped sums, robust to dropouts</option>
            <option value="train-lr">train-lr: federated logistic regression</option>
            <option value="predict">predict: score rows with a vertical model</option>
          </select></label>
          <p class="hint" id="kind-help"></p>
          <label class="wide">Parties, one a line, as node:dataset.column (node:dataset for a secure sum or horizontal training)
            <textarea name="parties" rows="3" placeholder="bank-a:customers.phone&#10;bank-b:customers.phone"></textarea></label>
          <fieldset data-kinds="psi mpsi watchlist secure-sum"><legend>Results</legend>
            <label>Deliver to (comma-separated) <input name="deliver" placeholder="bank-a"></label>
            <label data-kinds="psi mpsi"><input type="checkbox" name="count-only"> The size only</label>
          </fieldset>
          <fieldset data-kinds="mpsi watchlist union-sum intersection-stats train-lr"><legend>Roles</legend>
            <label>Aggregator <input name="aggregator" placeholder="regulator"></label>
            <label data-kinds="mpsi watchlist union-sum intersection-stats">Mixer (default: the first party) <input name="mixer"></label>
          </fieldset>
          <fieldset data-kinds="psi mpsi watchlist union-sum intersection-stats"><legend>Set operation</legend>
            <label>Blinding group <select name="group"><option>ristretto255</option><option>x25519</option></select></label>
            <label data-kinds="mpsi intersection-stats">Least intersection <input name="min-intersection" type="number" value="10" min="1"></label>
            <label data-kinds="watchlist">Held by at least <input name="at-least" type="number" value="2" min="2"></label>
            <label data-kinds="union-sum intersection-stats">Value column <input name="value" placeholder="balance"></label>
            <label data-kinds="union-sum intersection-stats">Decimals <input name="set-decimals" type="number" value="2" min="0" max="6"></label>
            <label data-kinds="union-sum">List totals at or above <input name="reporting-threshold" placeholder="1000000"></label>
            <label data-kinds="union-sum">Least parties per listed total <input name="set-min-cell-parties" type="number" value="2" min="1"></label>
            <label data-kinds="intersection-stats">Histogram bin edges <input name="bins" placeholder="0,1000,10000"></label>
          </fieldset>
          <fieldset data-kinds="secure-sum"><legend>Secure sum</legend>
            <label>Group by column <input name="group-by"></label>
            <label>Groups (comma-separated) <input name="groups"></label>
            <label>Measures (comma-separated) <input name="measures" placeholder="sum:balance,count:balance"></label>
            <label>Decimals <input name="sum-decimals" type="number" value="2" min="0" max="6"></label>
            <label>Least records a cell <input name="min-cell-records" type="number" value="10" min="1"></label>
            <label>Least parties a cell <input name="min-cell-parties" type="number" value="2" min="1"></label>
            <label>Survivors needed (default ⌊2n/3⌋+1) <input name="threshold" type="number" min="2"></label>
          </fieldset>
          <fieldset data-kinds="train-lr"><legend>Training</legend>
            <label>Mode <select name="mode"><option>horizontal</option><option>vertical</option></select></label>
            <label>Label column <input name="label" placeholder="y"></label>
            <label data-modes="horizontal">Features <input name="features" placeholder="x0..x29"></label>
            <label data-modes="vertical" class="wide">Each party's features, one a line, as node=columns <textarea name="party-features" rows="2" placeholder="bank=x0..x9&#10;telco=x0..x19"></textarea></label>
            <label>Rounds <input name="rounds" type="number" value="20" min="1"></label>
            <label data-modes="horizontal">Local epochs <input name="local-epochs" type="number" value="1" min="1"></label>
            <label>Learning rate <input name="learning-rate" value="0.1"></label>
            <label>L2 <input name="l2" value="0.001"></label>
            <label>Batch size (default per mode) <input name="batch-size" type="number" min="1"></label>
            <label>Tolerance <input name="tolerance" value="0.00001"></label>
            <label data-modes="horizontal">Evaluation dataset <input name="eval-dataset"></label>
            <label>Held-out share <input name="holdout" value="0.2"></label>
            <label data-modes="vertical">Paillier bits <input name="key-bits" type="number" value="2048"></label>
          </fieldset>
          <fieldset data-kinds="predict"><legend>Model</legend>
            <label>Vertical training job <input name="model"></label>
          </fieldset>
          <button type="submit" id="submit-button">Submit</button>
        </form>
        <div id="submitted"></div>
      </section>
      <section id="view-reports" class="view" hidden><h2>Reports</h2><div id="reports"></div><div id="report"></div></section>
      <section id="view-audit" class="view" hidden><h2>Audit trail</h2><div id="ledger"></div><div id="audit"></div></section>
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
        const days = (x) => x.certificateDaysLeft === undefined || x.certificateDaysLeft === null ? "" : Math.floor(x.certificateDaysLeft) + " days" + (x.certificateDaysLeft < 30 ? " — renew soon" : "");
        fill("peers", table(["peer", "address", "reachable over mutual TLS", "round trip", "its certificate valid for", "error"],
          p.peers.map((x) => ({ cells: [x.node, x.address, x.reachable ? "yes" : "NO", x.milliseconds ? x.milliseconds.toFixed(1) + " ms" : "", days(x), x.error || ""],
            cls: !x.reachable ? "state-failed" : (x.certificateDaysLeft ?? 99) < 30 ? "expiring" : "" }))));
      } catch (e) { failed("peers")(e); }
      try {
        const d = await api("/v1/datasets");
        fill("datasets", table(["dataset", "id column", "columns", "rows", "distinct ids", "imported"],
          d.datasets.map((s) => [s.name, s.idColumn, s.columns.join(", "), s.rowCount, s.distinctIdentifiers, s.importedAt])));
      } catch (e) { failed("datasets")(e); }
      try {
        const pol = await api("/v1/policy"), names = Object.keys(pol.datasets).sort();
        const shown = (v) => v === undefined || v === null ? "—" : Array.isArray(v) ? (v.join(", ") || "none") : typeof v === "object" ? JSON.stringify(v) : String(v);
        const keys = ["columns", "protocols", "result_recipients", "min_set_size", "min_intersection", "min_cell_records", "min_cell_parties", "max_peer_set_size",
          "max_peer_set_ratio", "min_sum_parties", "min_sum_threshold_share", "sum_noise_epsilon", "sum_epsilon_per_day", "min_batch_rows_per_feature",
          "max_holdout", "max_jobs_per_day", "max_coordinators_per_day", "max_jobs_per_peer_per_input", "lookup_lists"];
        fill("policy", el("p", "Coordinators allowed to propose jobs: " + shown(pol.coordinators) + ". Least Paillier modulus: " + pol.min_paillier_bits +
          " bits." + (pol.lookups.subscribe.length ? " Lookup lists subscribed: " + pol.lookups.subscribe.join(", ") + "." : "")),
          names.length ? table(["rule", ...names], keys.map((k) => [k, ...names.map((n) => shown(pol.datasets[n][k]))]))
                       : el("p", "No dataset is open to any job (a dataset without a rule is never used)."));
      } catch (e) { failed("policy")(e); }
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

    const kindHelp = {
      "psi": "Two banks learn the identifiers they have in common (or only how many), nothing else.",
      "mpsi": "The identifiers every party holds, or their number, to the parties named; the aggregator sees only pseudonyms.",
      "watchlist": "How many identifiers at least N parties hold; each party named learns which of its own others hold.",
      "union-sum": "Per-identifier totals of a value column over all parties' identifiers, to the aggregator (e.g. a regulator).",
      "intersection-stats": "Count, sum, mean and histogram of per-identifier totals over the intersection, to the aggregator.",
      "secure-sum": "Grouped sums and counts across parties; the server that receives the report learns totals only.",
      "train-lr": "Logistic regression trained across parties: horizontal (same features, other customers) or vertical (the first party holds the label).",
      "predict": "Scores the parties' common rows with a vertical model; the scores go to the first party only.",
    };
    function showKindFields() {
      const f = $("submit-form").elements, kind = f["kind"].value, mode = f["mode"].value;
      document.querySelectorAll("#submit-form [data-kinds]").forEach((e) => e.hidden = !e.dataset.kinds.split(" ").includes(kind));
      document.querySelectorAll("#submit-form [data-modes]").forEach((e) => e.hidden = e.dataset.modes !== mode);
      $("kind-help").textContent = kindHelp[kind];
    }
    const listOf = (text) => text.split(",").map((s) => s.trim()).filter((s) => s);
    function columnsOf(text) {
      return listOf(text).flatMap((p) => {
        const m = /^([^0-9]*)([0-9]+)\.\.([^0-9]*)([0-9]+)$/.exec(p);
        if (!m) return [p];
        if (m[1] !== m[3] || Number(m[2]) > Number(m[4])) throw new Error("'" + p + "' is not a column range like x0..x29");
        return Array.from({ length: Number(m[4]) - Number(m[2]) + 1 }, (_, i) => m[1] + (Number(m[2]) + i));
      });
    }
    function partyOf(line) {
      const colon = line.indexOf(":");
      if (colon < 1) throw new Error("'" + line + "' is not node:dataset.column");
      const rest = line.slice(colon + 1), dot = rest.indexOf(".");
      return { nodeID: line.slice(0, colon), dataset: dot < 0 ? rest : rest.slice(0, dot), column: dot < 0 ? "" : rest.slice(dot + 1) };
    }
    function number(f, name, fallback) { const v = f[name].value.trim(); if (v === "") return fallback; const n = Number(v); if (!Number.isFinite(n)) throw new Error(name + " is not a number"); return n; }
    /// The submission the API takes (JobSubmission in Docs/api/openapi.yaml), with the CLI's defaults.
    function submissionOf(f) {
      const kind = f["kind"].value, text = (name) => f[name].value.trim();
      const parties = f["parties"].value.split("\n").map((l) => l.trim()).filter((l) => l).map(partyOf);
      if (!parties.length) throw new Error("name the parties, one a line");
      const s = { protocolName: kind, parties, deliverTo: listOf(text("deliver")), cardinalityOnly: false, group: "" };
      if (["psi", "mpsi", "watchlist", "union-sum", "intersection-stats"].includes(kind)) s.group = f["group"].value;
      if (kind === "psi" || kind === "mpsi") s.cardinalityOnly = f["count-only"].checked;
      if (!["psi", "mpsi", "watchlist", "secure-sum"].includes(kind)) s.deliverTo = [];
      if (["mpsi", "watchlist", "union-sum", "intersection-stats"].includes(kind)) {
        if (!text("aggregator")) throw new Error("name the aggregator");
        s.sets = { aggregator: text("aggregator"), atLeast: 2, minIntersection: 10, decimals: 2, bins: [], minCellParties: 2 };
        if (text("mixer")) s.sets.mixer = text("mixer");
        if (kind === "mpsi" || kind === "intersection-stats") s.sets.minIntersection = number(f, "min-intersection", 10);
        if (kind === "watchlist") s.sets.atLeast = number(f, "at-least", 2);
        if (kind === "union-sum" || kind === "intersection-stats") {
          if (!text("value")) throw new Error("name the value column");
          s.sets.valueColumn = text("value"); s.sets.decimals = number(f, "set-decimals", 2);
        }
        if (kind === "union-sum") { s.sets.minCellParties = number(f, "set-min-cell-parties", 2); if (text("reporting-threshold")) s.sets.reportingThreshold = text("reporting-threshold"); }
        if (kind === "intersection-stats") s.sets.bins = listOf(text("bins"));
      }
      if (kind === "secure-sum") {
        s.aggregate = { groups: listOf(text("groups")), measures: listOf(text("measures")), decimals: number(f, "sum-decimals", 2),
                        minCellRecords: number(f, "min-cell-records", 10), minCellParties: number(f, "min-cell-parties", 2) };
        if (text("group-by")) s.aggregate.groupBy = text("group-by");
        if (text("threshold")) s.threshold = number(f, "threshold");
      }
      if (kind === "train-lr") {
        const mode = f["mode"].value, vertical = mode === "vertical", partyFeatures = {};
        if (!text("aggregator") || !text("label")) throw new Error("name the aggregator and the label column");
        f["party-features"].value.split("\n").map((l) => l.trim()).filter((l) => l).forEach((l) => {
          const eq = l.indexOf("="); if (eq < 1) throw new Error("'" + l + "' is not node=columns"); partyFeatures[l.slice(0, eq)] = columnsOf(l.slice(eq + 1));
        });
        const widest = Math.max(0, ...Object.values(partyFeatures).map((c) => c.length));
        const evalDataset = vertical ? "" : text("eval-dataset");
        s.training = { mode, aggregator: text("aggregator"), label: text("label"), features: vertical ? [] : columnsOf(text("features")),
          parameters: { rounds: number(f, "rounds", 20), localEpochs: vertical ? 1 : number(f, "local-epochs", 1), learningRate: number(f, "learning-rate", 0.1),
                        l2: number(f, "l2", 0.001), batchSize: number(f, "batch-size", vertical ? Math.max(64, 8 * (widest + 1)) : 32), tolerance: number(f, "tolerance", 1e-5) },
          holdout: evalDataset ? 0 : number(f, "holdout", 0.2), bins: 1000, partyFeatures: vertical ? partyFeatures : {}, keyBits: number(f, "key-bits", 2048) };
        if (evalDataset) s.training.evalDataset = evalDataset;
        if (!vertical && !s.training.features.length) throw new Error("name the features (horizontal)");
      }
      if (kind === "predict") {
        if (!text("model")) throw new Error("name the vertical training job whose model scores the rows");
        s.training = { mode: "vertical", aggregator: "", label: "", features: [], modelJob: text("model"),
          parameters: { rounds: 20, localEpochs: 1, learningRate: 0.1, l2: 0.001, batchSize: 32, tolerance: 1e-5 }, holdout: 0.2, bins: 1000, partyFeatures: {}, keyBits: 2048 };
      }
      return s;
    }

    async function submitJob(event) {
      event.preventDefault();
      const out = $("submitted");
      let submission;
      try { submission = submissionOf(event.target.elements); } catch (e) { fill("submitted", el("p", "Not submitted: " + e.message, "error")); return; }
      try {
        const r = await api("/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(submission) });
        fill("submitted", el("p", "Submitted " + submission.protocolName + " job " + r.job_id + "."), el("p", "", "job-state"));
        out.dataset.job = r.job_id;
        const follow = async () => {
          const j = await api("/v1/jobs/" + encodeURIComponent(r.job_id));
          const line = out.querySelector(".job-state");
          line.id = "job-state"; line.textContent = j.state + (progressOf(j) ? " — " + progressOf(j) : "") + (j.reason ? " — " + j.reason : "");
          const refusals = (j.parties || []).filter((p) => p.state === "refused");
          if (refusals.length && !out.querySelector("table")) out.appendChild(table(["refused by", "reason"], refusals.map((p) => [p.nodeID, p.reason || ""])));
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
    function receiptLine(r) {
      const c = r.receipt, p = el("p", "", c && !c.invalid && !c.unsigned.length ? "ok" : "error");
      p.id = "report-receipt";
      p.textContent = !c ? "No receipt of this job on this node yet." : c.invalid ? "Receipt INVALID: " + c.invalid
        : "Receipt " + c.sha256.slice(0, 16) + "… signed by " + c.signedBy.join(", ") + (c.unsigned.length ? "; NOT signed by " + c.unsigned.join(", ") : "")
          + " — mpcnode audit verify --job " + r.jobID + " checks that every party's log holds it.";
      const proofs = (c && c.inclusions) || [];
      if (!proofs.length) return p;
      const box = el("div"); box.appendChild(p);
      const t = table(["party", "its log holds the receipt", "proof"], proofs.map((x) => ({ cells: [x.node, x.proven ? "yes" : "NO", x.detail], cls: x.proven ? "" : "state-failed" })));
      t.id = "report-inclusions"; box.appendChild(t);
      return box;
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
          receiptLine(r),
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
    /// An audit record's details, folded: a one-line summary that opens on a click.
    function folded(details) {
      let parsed = details;
      if (typeof details === "string") { try { parsed = JSON.parse(details); } catch (e) { parsed = { text: details }; } }
      const entries = parsed && typeof parsed === "object" ? Object.entries(parsed) : [["value", String(parsed)]];
      if (!entries.length) return "";
      const box = el("details"), summary = el("summary", entries.slice(0, 2).map(([k, v]) => k + ": " + (typeof v === "object" ? JSON.stringify(v) : v)).join("; ").slice(0, 90) + (entries.length > 2 ? " …" : ""));
      box.appendChild(summary);
      box.appendChild(table(["field", "value"], entries.map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v])));
      return box;
    }
    async function loadLedger() {
      try {
        const l = await api("/v1/ledger");
        const alarms = l.alarms.length ? table(["at", "node", "kind", "what was seen"], l.alarms.map((a) => ({ cells: [a.at, a.node, a.kind, a.detail], cls: "state-failed" })))
                                       : el("p", "No ledger alarm: every peer's log seen so far extends the heads held of it.", "ok");
        alarms.id = "ledger-alarms";
        fill("ledger", el("p", "Merkle log: " + l.size + " records" + (l.latestHead ? "; latest signed head " + l.latestHead.size + " leaves at " + l.latestHead.signedAt : "; no head signed yet") + "."),
          l.peers.length ? table(["peer", "its log (latest head held)", "signed at"], l.peers.map((h) => [h.node, h.size + " leaves", h.signedAt])) : el("p", "No peer's head held yet."),
          alarms);
      } catch (e) { failed("ledger")(e); }
    }
    async function loadAudit() {
      loadLedger();
      try {
        const r = await api("/v1/audit?limit=200");
        fill("audit", el("p", r.chain_intact ? "Hash chain verified: intact." : "Hash chain BROKEN at record " + r.broken_at + ".", r.chain_intact ? "ok" : "error"),
          table(["#", "at", "event", "job", "details"], r.records.map((a) => [a.seq, a.at, a.event, a.jobID || "", folded(a.details)])));
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
      $("submit-form").elements["kind"].addEventListener("change", showKindFields);
      $("submit-form").elements["mode"].addEventListener("change", showKindFields);
      showKindFields();
      $("logout").addEventListener("click", () => { sessionStorage.removeItem("mpcnode-token"); location.reload(); });
      document.querySelectorAll("nav button[data-view]").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
      if (sessionStorage.getItem("mpcnode-token")) signIn(sessionStorage.getItem("mpcnode-token"));
    });
    """#

    static let style = #"""
    [hidden] { display: none !important; }
    body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2433; background: #f6f7f9; }
    header { background: #1d2433; color: #fff; padding: 0.6em 1.2em; display: flex; gap: 2em; align-items: center; flex-wrap: wrap; }
    header h1 { font-size: 1.2em; margin: 0; }
    nav button { background: none; border: 1px solid #5c6b8a; color: #fff; padding: 0.3em 0.8em; margin-right: 0.3em; border-radius: 3px; cursor: pointer; }
    main { padding: 1em 1.2em; max-width: 1200px; }
    table { border-collapse: collapse; margin: 0.6em 0; background: #fff; width: 100%; }
    th, td { border: 1px solid #d5d9e0; padding: 0.3em 0.6em; text-align: left; vertical-align: top; font-size: 0.93em; }
    th { background: #eceff3; }
    tr.suppressed td { color: #8a8f99; font-style: italic; }
    tr.state-failed td, tr.state-refused td { background: #fff1f0; } tr.expiring td { background: #fff8e6; }
    label.wide { display: block; } textarea { width: 100%; max-width: 760px; font-family: ui-monospace, monospace; }
    details summary { cursor: pointer; color: #3b4a66; } details table { width: auto; }
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
