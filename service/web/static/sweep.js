/* The sweep page: progress header, progress and batch-timeline charts, the trial table,
 * a figure and the theory-vs-simulation report, all kept current by the sweep's event
 * stream (GET /v1/sweeps/{id}/events).  Redraws are throttled: a replay of hundreds of
 * events costs one chart update. */
"use strict";

const FINAL = ["succeeded", "failed", "partial", "cancelled"];
const STATES = ["pending", "running", "succeeded", "failed", "cancelled"];

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
  if (seconds < 3600) return (seconds / 60).toFixed(1) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

function throttle(action, ms) {
  let last = 0;
  let timer = null;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) { last = Date.now(); action(); return; }
    if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); action(); }, wait);
  };
}

/* A figure that can be drawn from a partial sweep (the maps need both of their axes to
 * have landed; the user can pick them).  Figures exist for the diagonal-network workloads. */
const FIGURE_WORKLOADS = { dln_finetune: "scatter", dln_theory: "gen_error" };
/* At most one call of `action` in flight; a call meanwhile runs once after it. */
function single(action) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) { again = true; return running; }
    running = (async () => {
      try { await action(); } finally { running = null; }
      if (again) { again = false; await run(); }
    })();
    return running;
  };
  return run;
}

function defaultFigure(sweep) {
  return FIGURE_WORKLOADS[sweep.workload] || null;
}

async function sweepView(root, config, sweepId, signal) {
  const sweep = await Api.json(`/v1/sweeps/${encodeURIComponent(sweepId)}`);
  root.innerHTML = `
    <section class="sweep-head">
      <h1><span class="name"></span> <span class="badge status"></span></h1>
      <div class="meta muted"></div>
      <div class="stats">
        ${STATES.map((s) => `<div class="stat status-${s}"><b data-count="${s}">0</b><span>${s}</span></div>`).join("")}
        <div class="stat"><b data-field="throughput">–</b><span>trials / s</span></div>
        <div class="stat"><b data-field="eta">–</b><span>ETA</span></div>
        <div class="stat"><b data-field="seq">–</b><span>last event</span></div>
      </div>
      <div class="bar"><div class="fill"></div></div>
    </section>
    <section class="charts">
      <div class="chart" id="progress-chart"></div>
      <div class="chart" id="timeline-chart"></div>
    </section>
    <section><h2>Trials</h2><div id="trial-table"></div></section>
    <section class="two">
      <div><h2>Figure <select id="figure-kind"></select></h2><div class="figure"><img id="figure" alt="figure"><p class="figure-note muted"></p></div></div>
      <div><h2>Theory vs simulation</h2><div id="report" class="muted">waiting for results…</div>
        <h2>Latest results <small class="muted">(?since=)</small></h2><ul id="feed" class="feed"></ul></div>
    </section>`;
  const $ = (selector) => root.querySelector(selector);
  $(".name").textContent = sweep.name;
  $(".meta").textContent = `${sweep.id} · ${sweep.workload} · by ${sweep.submitter} · ${sweep.trial_count} trials (${sweep.cached_count} cached) · created ${sweep.created_at.slice(0, 19).replace("T", " ")}`;
  const table = new ResultTable($("#trial-table"), config, { base: { sweep_id: sweep.id, status: "any" } });
  table.load();

  const state = { counts: sweep.counts, status: sweep.status, throughput: sweep.throughput_per_s,
    eta: sweep.eta_s, seq: null, progress: [], claims: new Map(), batches: [], lastResultsSeq: null };

  function header() {
    const status = $(".status");
    status.textContent = state.status;
    status.className = "badge status status-" + state.status;
    let total = 0;
    for (const s of STATES) { total += state.counts[s] || 0; $(`[data-count="${s}"]`).textContent = state.counts[s] || 0; }
    const done = total - (state.counts.pending || 0) - (state.counts.running || 0);
    $(".fill").style.width = (total ? (100 * done) / total : 100).toFixed(1) + "%";
    $('[data-field="throughput"]').textContent = state.throughput ? state.throughput.toPrecision(3) : "–";
    $('[data-field="eta"]').textContent = FINAL.includes(state.status) ? "done" : duration(state.eta);
    $('[data-field="seq"]').textContent = state.seq === null ? "–" : "#" + state.seq;
  }
  header();

  const layout = (title, extra) => Object.assign({ title: { text: title, font: { size: 13 } },
    margin: { l: 50, r: 10, t: 30, b: 35 }, height: 230, showlegend: false,
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)" }, extra);
  const drawCharts = throttle(() => {
    const xs = state.progress.map((p) => p.at);
    Plotly.react("progress-chart", [
      { x: xs, y: state.progress.map((p) => p.done), name: "finished", mode: "lines", line: { shape: "hv", color: "#2a7" } },
      { x: xs, y: state.progress.map((p) => p.running), name: "running", mode: "lines", line: { shape: "hv", color: "#d80" } },
    ], layout("trials finished / running", { showlegend: true, legend: { orientation: "h", y: -0.25 } }), { displayModeBar: false, responsive: true });
    const bars = state.batches;
    Plotly.react("timeline-chart", [{
      type: "bar", orientation: "h", base: bars.map((b) => b.start), x: bars.map((b) => b.end - b.start),
      y: bars.map((b) => "slot " + b.lane), marker: { color: bars.map((b) => (b.failed ? "#c33" : "#38c")) },
      hovertext: bars.map((b) => `${b.size} trials, ${((b.end - b.start) / 1000).toFixed(2)} s`),
      hoverinfo: "text", textposition: "none",
    }], layout("batches over time (claim → results written; one row per concurrent slot)",
      { xaxis: { type: "date" }, yaxis: { autorange: "reversed" }, bargap: 0.3 }), { displayModeBar: false, responsive: true });
  }, 500);

  const lanes = [];
  function addBatch(ids, at, failed) {
    const starts = ids.map((id) => state.claims.get(id)).filter((t) => t !== undefined);
    const start = starts.length ? Math.min(...starts) : at;
    let lane = lanes.findIndex((free) => free <= start);
    if (lane < 0) { lanes.push(0); lane = lanes.length - 1; }
    lanes[lane] = at;
    state.batches.push({ start, end: Math.max(at, start + 1), lane: lane + 1, size: ids.length, failed });
  }

  const refreshTable = throttle(() => table.refresh(), 2000);
  const figureSelect = $("#figure-kind");
  for (const kind of Object.keys(config.figures)) figureSelect.add(new Option(kind, kind));
  figureSelect.value = defaultFigure(sweep) || "scatter";
  if (!defaultFigure(sweep)) $(".figure-note").textContent = `no figures for ${sweep.workload} sweeps`;
  let figureUrl = null;
  const drawFigure = single(async () => {
    if (!(state.counts.succeeded > 0) || !defaultFigure(sweep)) return;
    const note = $(".figure-note");
    try {
      const { blob } = await Api.blob(`/v1/sweeps/${sweep.id}/figures/${figureSelect.value}.png`, { signal });
      if (figureUrl) URL.revokeObjectURL(figureUrl);
      figureUrl = URL.createObjectURL(blob);
      $("#figure").src = figureUrl;
      note.textContent = `as of event #${state.seq ?? "–"}`;
    } catch (failure) { if (!signal.aborted) note.textContent = failure.message; }
  });
  const refreshFigure = throttle(drawFigure, 5000);
  figureSelect.addEventListener("change", drawFigure);
  const drawReport = single(async () => {
    if (!(state.counts.succeeded > 0) || sweep.workload !== "dln_finetune") return;
    try { renderReport($("#report"), await Api.json(`/v1/sweeps/${sweep.id}/report?worst=5`, { signal })); }
    catch (failure) { if (!signal.aborted) $("#report").textContent = failure.message; }
  });
  const refreshReport = throttle(drawReport, 5000);
  const feed = async (since) => {
    try {
      const page = await Api.json(`/v1/results?sweep_id=${sweep.id}&status=any&sort=-id&limit=10&since=${since}`, { signal });
      const list = $("#feed");
      for (const item of page.items.reverse()) {
        const old = list.querySelector(`li[data-id="${item.trial_id}"]`);
        if (old) old.remove();  // changed again (e.g. its replica value landed)
        const li = document.createElement("li");
        li.dataset.id = item.trial_id;
        li.textContent = `#${item.trial_id} ${item.status} E_gen=${fmt(item.gen_error_sim)} theory=${fmt(item.gen_error_asymptotic)} regime=${item.regime_theory || "–"}`;
        list.prepend(li);
      }
      while (list.children.length > 10) list.lastChild.remove();
    } catch (_) { /* the next results event fetches again */ }
  };

  // A sweep final at load is drawn once; a live one is redrawn as its results land (the
  // replay of its earlier events must not queue redraws: figures cost seconds on big sweeps).
  const live = !FINAL.includes(sweep.status);
  drawFigure();
  drawReport();
  feed(0);
  const onEvent = (kind, data) => {
    state.counts = data.counts;
    state.status = data.status;
    state.throughput = data.throughput_per_s;
    state.eta = data.eta_s;
    const previous = state.seq;
    state.seq = data.seq;
    const at = Date.parse(data.at);
    state.progress.push({ at: data.at, done: data.total - data.counts.pending - data.counts.running, running: data.counts.running });
    for (const change of data.changes || []) {
      const ids = change.trial_ids || [];
      if (change.to === "running") for (const id of ids) state.claims.set(id, at);
      if (change.from === "running" && (change.to === "succeeded" || change.to === "failed")) addBatch(ids, at, change.to === "failed");
    }
    header();
    drawCharts();
    if ((kind === "results" || kind === "done") && live) {
      refreshTable();
      refreshFigure();
      refreshReport();
    }
    if (kind === "results" && previous !== null && live) feed(previous);
  };
  Api.stream(`/v1/sweeps/${sweep.id}/events`, onEvent, signal).then(() => {
    if (!signal.aborted && live) { table.refresh(); drawFigure(); drawReport(); }
  });
}

function renderReport(root, report) {
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
  const rows = report.per_regime.map((r) => `<tr><td>${r.regime}</td><td>${r.configs}</td><td>${r.compared}</td><td>${pct(r.fraction_inside)}</td><td>${pct(r.regime_agreement_rate)}</td></tr>`);
  root.classList.remove("muted");
  root.innerHTML = `
    <p><b>${pct(report.fraction_inside)}</b> of ${report.compared} compared configs have the theory inside the
    simulation's 95% interval (target ${pct(report.target_fraction)}: ${report.meets_target === null ? "–" : report.meets_target ? "met" : "not met"});
    regime labels agree on ${pct(report.regime_agreement_rate)}.</p>
    <table class="small"><thead><tr><th>regime</th><th>configs</th><th>compared</th><th>inside 95%</th><th>labels agree</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table>
    ${report.notes.length ? `<p class="muted">${report.notes.map(escapeHtml).join("<br>")}</p>` : ""}`;
}
