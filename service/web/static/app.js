/* The page's router and its two list views: the sweeps list (live progress from each
 * active sweep's event stream) and the results explorer (the result table over all of
 * /v1/results, with CSV and Parquet export of the current filters). */
"use strict";

let CONFIG = null;
// A browser opens at most 6 HTTP/1.1 connections per host and each stream holds one:
// the list follows this many active sweeps live, the others move with its 5 s refresh.
const MAX_STREAMS = 3;
let current = null;  // AbortController of the view on screen

async function sweepsView(root, signal) {
  root.innerHTML = `<h1>Sweeps</h1><div class="error" hidden></div>
    <table class="sweeps"><thead><tr><th>name</th><th>workload</th><th>submitter</th><th>status</th>
    <th>progress</th><th>trials</th><th>trials / s</th><th>created</th></tr></thead><tbody></tbody></table>`;
  const body = root.querySelector("tbody");
  const watched = new Set();
  function row(sweep) {
    let tr = body.querySelector(`tr[data-id="${sweep.id}"]`);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.id = sweep.id;
      tr.innerHTML = `<td><a></a></td><td></td><td></td><td><span class="badge"></span></td>
        <td><div class="bar small"><div class="fill"></div></div><span class="pct muted"></span></td><td></td><td></td><td></td>`;
      tr.querySelector("a").href = "#/sweeps/" + sweep.id;
      body.appendChild(tr);
    }
    const cells = tr.children;
    cells[0].firstChild.textContent = sweep.name;
    cells[1].textContent = sweep.workload;
    cells[2].textContent = sweep.submitter;
    return tr;
  }
  function update(tr, status, counts, throughput, created) {
    const badge = tr.querySelector(".badge");
    badge.textContent = status;
    badge.className = "badge status-" + status;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const done = total - (counts.pending || 0) - (counts.running || 0);
    const pct = total ? (100 * done) / total : 100;
    tr.querySelector(".fill").style.width = pct.toFixed(1) + "%";
    tr.querySelector(".pct").textContent = pct.toFixed(0) + "%";
    tr.children[5].textContent = `${done} / ${total}` + (counts.failed ? ` (${counts.failed} failed)` : "");
    tr.children[6].textContent = throughput ? throughput.toPrecision(3) : "–";
    if (created) tr.children[7].textContent = created.slice(0, 19).replace("T", " ");
  }
  async function load() {
    try {
      const page = await Api.json("/v1/sweeps?limit=100", { signal });
      root.querySelector(".error").hidden = true;
      for (const sweep of page.items) {
        const tr = row(sweep);
        update(tr, sweep.status, sweep.counts, sweep.throughput_per_s, sweep.created_at);
        if (!FINAL.includes(sweep.status) && !watched.has(sweep.id) && watched.size < MAX_STREAMS) {
          watched.add(sweep.id);
          Api.stream(`/v1/sweeps/${sweep.id}/events`, (kind, data) => {
            update(tr, data.status, data.counts, data.throughput_per_s, null);
          }, signal).then(() => watched.delete(sweep.id));
        }
      }
      if (!page.items.length) body.innerHTML = `<tr><td colspan="8" class="muted">no sweeps yet — submit one with <code>sweeps submit spec.yaml</code> or POST /v1/sweeps</td></tr>`;
    } catch (failure) {
      if (signal.aborted) return;
      const error = root.querySelector(".error");
      error.hidden = false;
      error.textContent = failure.message;
    }
  }
  await load();
  // New sweeps appear within a few seconds; running ones move with their events.
  (async () => { while (!signal.aborted) { await Api.sleep(5000); if (!signal.aborted) await load(); } })();
}

function download(path, name) {
  if (!Api.hasKey()) {  // a plain link streams the file (no size limit in the browser)
    const link = document.createElement("a");
    link.href = path;
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    return;
  }
  Api.blob(path).then(({ blob }) => {  // with a key the request needs its header
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  });
}

function resultsView(root, query) {
  root.innerHTML = `<h1>Results explorer</h1>
    <p class="muted">Every stored result, filtered on the server with the <code>/v1/results</code> syntax
    (<code>regime_theory=II,IV</code>, <code>&lt;column&gt;_&lt;gt|ge|lt|le|eq&gt;=value</code>, <code>status=any</code>,
    <code>sweep_id=…</code>, <code>since=&lt;event seq&gt;</code>) or the cells under the column titles.</p>
    <div class="toolbar exports"><span class="muted">Export the current filters:</span>
      <button type="button" data-format="csv">CSV</button><button type="button" data-format="parquet">Parquet</button></div>
    <div id="explorer"></div>`;
  const table = new ResultTable(root.querySelector("#explorer"), CONFIG, { query });
  table.load();
  for (const button of root.querySelectorAll(".exports button")) {
    button.addEventListener("click", () => {
      const params = table.exportParams();
      params.set("format", button.dataset.format);
      download("/v1/results/export?" + params.toString(), "results." + button.dataset.format);
    });
  }
}

async function route() {
  if (current) current.abort();
  current = new AbortController();
  const signal = current.signal;
  const root = document.getElementById("view");
  const hash = location.hash.replace(/^#/, "") || "/";
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", hash.startsWith("/results") ? link.dataset.nav === "results" : link.dataset.nav === "sweeps");
  }
  try {
    if (!CONFIG) CONFIG = await Api.json("/ui/config.json");
    const sweep = hash.match(/^\/sweeps\/([0-9a-zA-Z_-]+)/);
    if (sweep) await sweepView(root, CONFIG, sweep[1], signal);
    else if (hash.startsWith("/results")) resultsView(root, hash.split("?")[1] || "");
    else await sweepsView(root, signal);
  } catch (failure) {
    if (!signal.aborted) root.innerHTML = `<p class="error">${escapeHtml(failure.message)}</p>`;
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => { Api.setupKey(); route(); });
