/* The trial/result table: one page of GET /v1/results at a time (the server filters,
 * sorts and pages; the browser never holds more than a page), a filter box in the
 * /v1/results query syntax, a filter cell under every typed column and a sort on every
 * sortable header.
 *
 * Column filter cells accept  <0.5  <=0.5  >1e-3  >=2  =3  0.1..0.5  or a bare number;
 * regime cells accept  II  or  II,IV .  They become <column>_<op>= parameters. */
"use strict";

const OPS = [["<=", "le"], [">=", "ge"], ["<", "lt"], [">", "gt"], ["=", "eq"]];

function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? value.toExponential(3) : value.toPrecision(4);
  }
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

function cellFilter(column, text) {
  const value = text.trim();
  if (!value) return [];
  if (column.startsWith("regime_")) return [[column, value.toUpperCase()]];
  const range = value.split("..");
  if (range.length === 2) return [[column + "_ge", range[0].trim()], [column + "_le", range[1].trim()]];
  for (const [symbol, op] of OPS) {
    if (value.startsWith(symbol)) return [[column + "_" + op, value.slice(symbol.length).trim()]];
  }
  return [[column + "_eq", value]];
}

class ResultTable {
  /* root: an element; config: /ui/config.json; options.base: fixed query parameters
   * (e.g. {sweep_id, status: "any"}); options.query: initial filter box text. */
  constructor(root, config, options) {
    this.root = root;
    this.config = config;
    this.base = options.base || {};
    this.pageSize = 50;
    this.sort = "id";
    this.cursors = [null];
    this.filters = {};
    this.loading = null;
    const results = config.page_columns.filter((c) => c.kind !== "datetime" || c.name === "finished_at");
    const params = config.param_columns;
    this.columns = [
      { name: "trial_id", title: "trial", sortKey: "id" },
      { name: "status", title: "status" },
      ...params.map((name) => ({ name, title: name, param: true, sortKey: name, filter: true })),
      ...results.map((c) => ({
        name: c.name, title: c.title, help: c.help,
        sortKey: config.sort_columns.includes(c.name) ? c.name : null,
        filter: config.range_columns.includes(c.name) || c.name.startsWith("regime_"),
      })),
    ];
    this.build(options.query || "");
  }

  build(query) {
    this.root.innerHTML = `
      <div class="toolbar">
        <label class="grow">Filter <input class="query" type="text" spellcheck="false"
          placeholder="e.g. regime_theory=II,IV&amp;lambda_pt_lt=-0.5&amp;status=any"></label>
        <button class="apply" type="button">Apply</button>
        <span class="page-label muted"></span>
        <button class="prev" type="button">‹ Prev</button>
        <button class="next" type="button">Next ›</button>
      </div>
      <div class="error" hidden></div>
      <div class="scroll"><table class="results"><thead><tr class="titles"></tr><tr class="filters"></tr></thead>
      <tbody></tbody></table></div>`;
    this.queryInput = this.root.querySelector(".query");
    this.queryInput.value = query;
    const titles = this.root.querySelector(".titles");
    const filters = this.root.querySelector(".filters");
    for (const column of this.columns) {
      const th = document.createElement("th");
      th.textContent = column.title;
      th.dataset.column = column.name;
      if (column.help) th.title = column.help;
      if (column.sortKey) {
        th.classList.add("sortable");
        th.addEventListener("click", () => this.sortBy(column.sortKey));
      }
      titles.appendChild(th);
      const cell = document.createElement("th");
      if (column.filter) {
        const input = document.createElement("input");
        input.dataset.column = column.name;
        input.placeholder = column.name.startsWith("regime_") ? "II,IV" : "<, >, a..b";
        input.addEventListener("input", () => this.debounce(() => {
          this.filters[column.name] = input.value;
          this.restart();
        }));
        cell.appendChild(input);
      }
      filters.appendChild(cell);
    }
    const apply = () => this.restart();
    this.root.querySelector(".apply").addEventListener("click", apply);
    this.queryInput.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
    this.root.querySelector(".next").addEventListener("click", () => this.turn(1));
    this.root.querySelector(".prev").addEventListener("click", () => this.turn(-1));
  }

  debounce(action) {
    clearTimeout(this.timer);
    this.timer = setTimeout(action, 350);
  }

  params(cursor) {
    const params = new URLSearchParams(this.base);
    for (const [name, value] of new URLSearchParams(this.queryInput.value.replace(/^\?/, ""))) {
      params.set(name, value);
    }
    for (const [column, text] of Object.entries(this.filters)) {
      for (const [name, value] of cellFilter(column, text)) params.set(name, value);
    }
    params.set("sort", this.sort);
    params.set("limit", String(this.pageSize));
    if (cursor) params.set("cursor", cursor);
    return params;
  }

  /* The filters of the current view, without paging: what export downloads. */
  exportParams() {
    const params = this.params(null);
    params.delete("limit");
    return params;
  }

  sortBy(key) {
    this.sort = this.sort === key ? "-" + key : key;
    this.restart();
  }

  restart() {
    this.cursors = [null];
    return this.load();
  }

  turn(step) {
    if (step > 0 && !this.nextCursor) return;
    if (step < 0 && this.cursors.length === 1) return;
    if (step > 0) this.cursors.push(this.nextCursor); else this.cursors.pop();
    this.load();
  }

  refresh() {
    return this.load();
  }

  async load() {
    const cursor = this.cursors[this.cursors.length - 1];
    const query = this.params(cursor).toString();
    const error = this.root.querySelector(".error");
    const ticket = (this.loading = {});
    try {
      const page = await Api.json("/v1/results?" + query);
      if (ticket !== this.loading) return;  // a newer request superseded this one
      error.hidden = true;
      this.nextCursor = page.next_cursor;
      this.render(page.items);
    } catch (failure) {
      if (ticket !== this.loading) return;
      error.hidden = false;
      error.textContent = failure.message;
    }
    this.root.querySelector(".page-label").textContent = "page " + this.cursors.length;
    this.root.querySelector(".next").disabled = !this.nextCursor;
    this.root.querySelector(".prev").disabled = this.cursors.length === 1;
    for (const th of this.root.querySelectorAll(".titles th")) {
      const column = this.columns.find((c) => c.name === th.dataset.column);
      th.classList.toggle("asc", column.sortKey === this.sort);
      th.classList.toggle("desc", "-" + column.sortKey === this.sort);
    }
  }

  render(items) {
    const body = this.root.querySelector("tbody");
    const rows = items.map((item) => {
      const cells = this.columns.map((column) => {
        let value = column.param ? item.params[column.name] : item[column.name];
        if (column.name === "seed") value = item.seed;
        if (column.name === "finished_at" && value) value = value.replace("T", " ").slice(0, 19);
        const css = column.name === "status" ? ` class="status-${value}"` : "";
        return `<td${css}>${escapeHtml(fmt(value))}</td>`;
      });
      return `<tr>${cells.join("")}</tr>`;
    });
    body.innerHTML = rows.join("") || `<tr><td class="muted" colspan="${this.columns.length}">no rows match</td></tr>`;
  }
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
