// The page of `evolve ui` and of report.html: the same views, data fetched from the server's JSON
// endpoints (polled, so a running campaign's charts follow it) or embedded in the report.
"use strict";

const EMBEDDED = window.EVOLVE_EMBEDDED || null;
const POLL_MS = 3000;
const state = {run: 0, version: null, showAll: false, data: null, selected: null, polls: 0, runs: 0,
               table: {sort: "score", order: "desc", status: "", reason: "", island: "", page: 0, size: 50},
               genealogy: null, tableAsked: 0};
const CONFIG = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"]};

async function getJSON(path) {
  const response = await fetch(path, {cache: "no-store"});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// The report's table: the rows it holds, sorted, filtered and paged here as the server does it.
function localTable(table, q) {
  const sign = q.order === "asc" ? 1 : -1, better = table.direction === "minimize" ? -1 : 1;
  const byScore = (a, b) => (a.score === null) - (b.score === null) ||
    (a.score === null ? 0 : better * (b.score - a.score));
  const key = {time: "id", island: "island", iteration: "iteration", generation: "generation"}[q.sort];
  const status = q.reason ? q.reason.split(":")[0] : q.status;
  const rows = table.rows.filter((r) => (!status || r.status === status) && (!q.reason || r.reason === q.reason) &&
                                        (q.island === "" || r.island === Number(q.island)));
  rows.sort(q.sort === "score" ?
    (a, b) => (a.score === null) - (b.score === null) || (a.score === null ? 0 : sign * (a.score - b.score)) ||
              sign * (a.id - b.id) :
    (a, b) => sign * (a[key] - b[key]) || byScore(a, b) || a.id - b.id);
  const reasons = new Map();
  for (const r of table.rows) if (r.reason) reasons.set(r.reason, (reasons.get(r.reason) || 0) + 1);
  return {total: rows.length, page: q.page, size: q.size, pages: Math.max(1, Math.ceil(rows.length / q.size)),
          statuses: table.statuses, reasons: [...reasons.entries()].sort((a, b) => b[1] - a[1]),
          rows: rows.slice(q.page * q.size, (q.page + 1) * q.size), note: table.note};
}

const source = EMBEDDED ? {
  campaigns: async () => EMBEDDED.campaigns,
  campaign: async (run) => EMBEDDED.data[run],
  state: async (run) => (EMBEDDED.state || [])[run] || null,
  programs: async (run, q) => localTable(EMBEDDED.tables[run], q),
  genealogy: async (run) => EMBEDDED.genealogy[run],
  costs: async (run) => EMBEDDED.costs[run],
  sweep: async (run) => EMBEDDED.sweep[run],
  program: async (run, id) => {
    const found = (EMBEDDED.programs[run] || {})[id];
    if (!found) throw new Error(`program ${id} is not in this report (it holds the lineage's and the maps' programs); ` +
                                "`evolve ui RUN_DIR` shows every program");
    return found;
  },
} : {
  campaigns: () => getJSON("api/campaigns"),
  campaign: (run) => getJSON(`api/campaign?run=${run}`),
  state: (run) => getJSON(`api/state?run=${run}`),
  programs: (run, q) => getJSON(`api/programs?run=${run}&${new URLSearchParams(q)}`),
  genealogy: (run, limit) => getJSON(`api/genealogy?run=${run}&limit=${limit}`),
  costs: (run) => getJSON(`api/costs?run=${run}`),
  sweep: (run) => getJSON(`api/sweep?run=${run}`),
  program: (run, id) => getJSON(`api/program?run=${run}&id=${id}`),
};

function fmt(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(6)));
}

// Text for a chart: plotly reads tags (<b>, <br>, <a>) and entities in labels, titles and hover text, so a
// failure reason or a name that quotes a candidate is escaped to show as written. The page's own markup
// (el, textContent) never parses HTML.
function label(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function notice(text) { document.getElementById("notice").textContent = text || ""; }

function duration(seconds) {
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// -- the charts ------------------------------------------------------------------------------------
function scoreRange(data) {
  const view = data.view;
  if (state.showAll || !view.off) return null;
  let lo = view.lo, hi = view.hi;
  for (const ref of data.references) { lo = Math.min(lo, ref.value); hi = Math.max(hi, ref.value); }
  const pad = 0.02 * ((hi - lo) || 1);
  return [lo - pad, hi + pad];
}

function scoreTraces(data, axis) {
  const s = data.scores, traces = [];
  traces.push({type: "scatter", mode: "markers", name: "valid programs", x: s[axis], y: s.score,
               customdata: s.id, marker: {size: 4, color: "rgba(110,125,140,0.55)"},
               hovertemplate: "program %{customdata}<br>score %{y}<extra></extra>"});
  const islands = Object.keys(data.steps).filter((k) => k !== "all");
  for (const key of islands) {
    const st = data.steps[key];
    if (!st.score.length || islands.length < 2) continue;
    traces.push({type: "scatter", mode: "lines", name: `best on island ${key}`, x: st[axis], y: st.score,
                 line: {shape: "hv", width: 1.5}, opacity: 0.8});
  }
  const all = data.steps.all;
  traces.push({type: "scatter", mode: "lines", name: "best", x: all[axis], y: all.score,
               line: {shape: "hv", width: 3, color: "#c33"}});
  const end = axis === "evaluation" ? Math.max(1, data.evaluated) : Math.max(1, ...s.time, ...all.time);
  for (const ref of data.references) {
    traces.push({type: "scatter", mode: "lines", name: label(ref.name), x: [0, end], y: [ref.value, ref.value],
                 line: {dash: "dash", color: "#2a7", width: 2}, hovertemplate: `${label(ref.name)}: %{y}<extra></extra>`});
  }
  return traces;
}

function scoreLayout(data, axis) {
  const range = scoreRange(data);
  const title = axis === "evaluation" ? "evaluations (programs through the evaluator)" : "seconds since the first program";
  const layout = {margin: {t: 10, r: 10, b: 45, l: 70}, uirevision: `${state.run}-${state.showAll}`,
                  xaxis: {title: {text: title}, rangemode: "tozero"},
                  yaxis: {title: {text: `score (${data.direction})`}, autorange: range ? false : true},
                  legend: {orientation: "h", y: 1.12}, hovermode: "closest"};
  if (range) layout.yaxis.range = range;
  return layout;
}

function drawScores(data) {
  Plotly.react("chart-scores", scoreTraces(data, "evaluation"), scoreLayout(data, "evaluation"), CONFIG);
  Plotly.react("chart-time", scoreTraces(data, "time"), scoreLayout(data, "time"), CONFIG);
  const view = data.view, button = document.getElementById("view-all"), range = scoreRange(data);
  const outside = range ? data.scores.score.filter((v) => v < range[0] || v > range[1]) : [];
  button.hidden = !view.off;
  button.textContent = state.showAll ? "focus on the climb" : "show every program";
  const text = !outside.length ? `every one of the ${data.scores.score.length} valid programs is in view` :
    `${outside.length} of ${data.scores.score.length} valid programs lie ${view.side} this view ` +
    `(the worst at ${fmt(view.worst)}); they are not drawn on the axis`;
  for (const off of document.querySelectorAll(".offview")) off.textContent = text;
}

function drawShare(data) {
  const v = data.valid_share;
  Plotly.react("chart-share", [{type: "scatter", mode: "lines", name: "valid share", x: v.time, y: v.share,
                                line: {color: "#36c"}, hovertemplate: "%{y:.0%} valid<extra></extra>"}],
               {margin: {t: 10, r: 10, b: 45, l: 55}, uirevision: state.run,
                xaxis: {title: {text: "seconds since the first program"}},
                yaxis: {title: {text: `valid, last ${v.window} evaluated`}, range: [0, 1.02], tickformat: ".0%"}}, CONFIG);
}

function cut(text, most) { return text.length > most ? text.slice(0, most - 1) + "…" : text; }

function drawFailures(data) {
  const reasons = data.failures.reasons.slice().reverse();
  Plotly.react("chart-failures", [{type: "bar", orientation: "h", x: reasons.map((r) => r[1]),
                                   y: reasons.map((r) => label(cut(r[0], 70))), customdata: reasons.map((r) => r[0]),
                                   text: reasons.map((r) => label(r[0])), textposition: "none",
                                   marker: {color: "#c96"}, hovertemplate: "%{text}: %{x}<extra></extra>"}],
               {margin: {t: 10, r: 10, b: 40, l: 10}, uirevision: state.run,
                xaxis: {title: {text: "programs"}}, yaxis: {automargin: true}}, CONFIG);
  const div = document.getElementById("chart-failures");
  if (!div.dataset.clicks) {  // a bar filters the table of programs by its reason
    div.dataset.clicks = "on";
    div.on("plotly_click", (event) => {
      const reason = event.points[0].customdata;
      if (!reason || / other reasons$/.test(reason)) return;
      Object.assign(state.table, {reason, status: "", page: 0});
      drawTable().then(() => document.getElementById("programs-section").scrollIntoView());
    });
  }
}

function drawMaps(data) {
  const holder = document.getElementById("maps");
  if (!data.maps.length) { holder.textContent = "The problem declares no feature dimensions."; return; }
  while (holder.children.length > data.maps.length) holder.lastChild.remove();
  data.maps.forEach((map, n) => {
    let div = holder.children[n];
    if (!div) {
      div = el("div", {id: `map-${n}`});
      holder.append(div);
      Plotly.newPlot(div, [], {}, {...CONFIG, displayModeBar: false}).then(() => div.on("plotly_click", (event) => {
        const id = event.points[0].customdata;
        if (id !== null && id !== undefined) showProgram(id);
      }));
    }
    const y = map.y ? map.y.centres : [""];
    Plotly.react(div, [{type: "heatmap", z: map.z, x: map.x.centres, y, customdata: map.ids, colorscale: "Viridis",
                        reversescale: data.direction === "minimize",
                        hoverongaps: false, colorbar: {title: {text: "score"}},
                        hovertemplate: "program %{customdata}<br>score %{z}<extra></extra>"}],
                 {title: {text: `island ${map.island}: ${map.filled} of ${map.cells} cells`, font: {size: 13}},
                  margin: {t: 35, r: 10, b: 45, l: 55}, uirevision: state.run,
                  xaxis: {title: {text: label(map.x.name)}}, yaxis: {title: {text: map.y ? label(map.y.name) : ""}}},
                 {...CONFIG, displayModeBar: false});
  });
}

function drawLineage(data) {
  const nodes = data.lineage.nodes, at = new Map(nodes.map((n) => [n.id, n]));
  const ex = [], ey = [];
  for (const n of nodes) {
    const p = at.get(n.parent);
    if (p) { ex.push(p.generation, n.generation, null); ey.push(p.y, n.y, null); }
  }
  const traces = [
    {type: "scatter", mode: "lines", x: ex, y: ey, line: {color: "#bbb", width: 1}, hoverinfo: "skip", showlegend: false},
    {type: "scatter", mode: "markers", name: "programs", x: nodes.map((n) => n.generation), y: nodes.map((n) => n.y),
     customdata: nodes.map((n) => n.id), showlegend: false,
     text: nodes.map((n) => `program ${n.id} (iteration ${n.iteration}, island ${n.island}, ${label(n.proposer || "-")})` +
                            `<br>score ${fmt(n.score)}${n.best ? "<br>the best" : ""}`),
     hovertemplate: "%{text}<extra></extra>",
     marker: {size: nodes.map((n) => (n.best ? 18 : 12)), symbol: nodes.map((n) => (n.best ? "star" : "circle")),
              color: nodes.map((n) => n.score), colorscale: "Viridis", showscale: true,
              reversescale: data.direction === "minimize",
              cmin: data.view.lo === null ? undefined : data.view.lo,  // far worse programs would wash out the rest
              cmax: data.view.hi === null ? undefined : data.view.hi,
              colorbar: {title: {text: "score"}}, line: {width: 1, color: "#333"}}},
  ];
  Plotly.react("chart-lineage", traces, {margin: {t: 10, r: 10, b: 45, l: 40}, uirevision: state.run,
                                         hovermode: "closest",
                                         xaxis: {title: {text: "generation"}, dtick: 1, zeroline: false},
                                         yaxis: {visible: false}}, CONFIG);
  const div = document.getElementById("chart-lineage");
  if (!div.dataset.clicks) {
    div.dataset.clicks = "on";
    div.on("plotly_click", (event) => {
      const point = event.points.find((p) => p.customdata !== undefined);
      if (point) showProgram(point.customdata);
    });
  }
}

function drawSpend(data) {
  const holder = document.getElementById("spend");
  holder.replaceChildren();
  if (!data.spend.length) { holder.textContent = "No proposer call yet."; return; }
  const columns = [["model", "model"], ["calls", "calls"], ["failed", "failed"], ["tokens in", "prompt_tokens"],
                   ["tokens out", "completion_tokens"], ["cost $", "cost"], ["proposals", "proposals"],
                   ["applied", "applied"], ["edit failed", "edit_failed"], ["why not applied", "why_not_applied"],
                   ["transport failed", "transport_failed"], ["prompt too large", "prompt_too_large"],
                   ["valid / evaluated", null], ["improved parent", "improvements"], ["new bests", "new_bests"]];
  const table = el("table", {id: "spend-table"}, el("tr", {}, ...columns.map(([name]) => el("th", {}, name))));
  for (const row of data.spend) {
    table.append(el("tr", {}, ...columns.map(([, key]) => el("td", {},
      key === null ? `${row.valid} / ${row.evaluated}` : key === "cost" ? row.cost.toFixed(4) : fmt(row[key])))));
  }
  holder.append(table);
}

function drawSummary(data) {
  const counts = Object.entries(data.counts).sort().map(([k, v]) => `${k} ${v}`).join(", ");
  const best = data.best, initial = data.initial;
  document.getElementById("title").textContent = `evolve: ${data.name}`;
  document.title = `evolve: ${data.name}`;
  document.getElementById("summary").textContent =
    `${data.problem} (${data.direction}): ${data.iterations} of ${data.budget} iterations; programs by status: ` +
    `${counts || "none yet"}. Initial ${fmt(initial && initial.score)}, best ${fmt(best && best.score)}` +
    (best ? ` (program ${best.id}, iteration ${best.iteration}, by ${best.proposer || "-"}` +
            (best.validation !== null ? `; validation ${fmt(best.validation)}` : "") + ")" : "") +
    (data.references.length ? `; ${data.references.map((r) => `${r.name} ${fmt(r.value)}`).join(", ")}` : "") + ".";
}

// -- the campaign's state, the table of programs, the genealogy, a sweep, cost over time ------------------
function drawState(s) {
  const line = document.getElementById("state");
  if (!s) { line.textContent = ""; return; }
  line.className = s.label.replace(/ /g, "-");
  let text = `${s.label}: ${s.reason}`;
  if (s.state === "running") {
    text = `running: ${s.iterations} of ${s.budget} iterations` +
      (s.rate_per_minute ? `, ${fmt(s.rate_per_minute)} per minute` : "") +
      (s.eta_seconds !== null ? `, ETA ${duration(s.eta_seconds)}` +
                                (s.eta_by === "wall_seconds" ? " (budget.wall_seconds)" : "") : "") + ` (${s.reason})`;
  } else if (s.stopped_at) {
    text += ` (at ${s.stopped_at.replace("T", " ")})`;
  }
  line.textContent = text;
}

function options(select, entries, chosen) {
  select.replaceChildren(el("option", {value: ""}, "all"),
                         ...entries.map(([value, text]) => el("option", {value: String(value)}, text)));
  if (chosen !== "" && !entries.some(([value]) => String(value) === String(chosen))) {
    select.append(el("option", {value: String(chosen)}, `${chosen} (none)`));
  }
  select.value = String(chosen);
}

const TABLE_COLUMNS = [["id", "id"], ["iteration", "iteration"], ["status", "status"], ["score", "score"],
                       ["island", "island"], ["generation", "generation"], ["parent", "parent"],
                       ["proposer", "proposer"], ["time (s)", "seconds"], ["failure reason", "reason"]];

async function drawTable() {
  const asked = ++state.tableAsked, q = state.table;
  let page;
  try {
    page = await source.programs(state.run, q);
  } catch (error) {
    document.getElementById("table-holder").replaceChildren(el("p", {}, String(error.message || error)));
    return;
  }
  if (asked !== state.tableAsked) return;  // a newer request was made meanwhile
  for (const key of ["sort", "order"]) document.getElementById(`table-${key}`).value = q[key];
  options(document.getElementById("table-status"),
          Object.entries(page.statuses).map(([k, n]) => [k, `${k} (${n})`]), q.status);
  options(document.getElementById("table-reason"), page.reasons.map(([k, n]) => [k, `${cut(k, 80)} (${n})`]), q.reason);
  const islands = state.data ? state.data.islands : 1;
  options(document.getElementById("table-island"), Array.from({length: islands}, (_, k) => [k, String(k)]), q.island);
  const table = el("table", {id: "programs-table"},
                   el("tr", {}, ...TABLE_COLUMNS.map(([name]) => el("th", {}, name))));
  for (const row of page.rows) {
    const tr = el("tr", {class: "row", "data-id": row.id}, ...TABLE_COLUMNS.map(([, key]) =>
      el("td", key === "reason" ? {class: "reason", title: row.reason} : {}, key === "parent" && row.parent === null ? "–" :
         key === "reason" ? row.reason : fmt(row[key]))));
    tr.addEventListener("click", () => {
      showProgram(row.id);
      document.getElementById("detail").scrollIntoView({block: "nearest"});
    });
    table.append(tr);
  }
  const holder = document.getElementById("table-holder");
  holder.replaceChildren(table);
  if (page.note) holder.append(el("p", {class: "hint"}, page.note));
  if (!page.rows.length) holder.append(el("p", {}, "No program matches."));
  document.getElementById("table-page").textContent =
    `page ${page.page + 1} of ${page.pages} (${page.total} programs)`;
  document.getElementById("table-prev").disabled = page.page <= 0;
  document.getElementById("table-next").disabled = page.page + 1 >= page.pages;
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];

function drawGenealogy(g) {
  state.genealogy = g;
  const data = state.data, byIsland = document.getElementById("genealogy-colour").value === "island";
  const nodes = g.nodes, at = new Map(nodes.map((n) => [n.id, n]));
  const ex = [], ey = [];
  for (const n of nodes) {
    const p = at.get(n.parent);
    if (p) { ex.push(p.generation, n.generation, null); ey.push(p.y, n.y, null); }
  }
  const valid = nodes.filter((n) => n.status === "valid"), failed = nodes.filter((n) => n.status !== "valid");
  const hover = (n) => `program ${n.id}: ${n.status}, score ${fmt(n.score)}<br>iteration ${n.iteration}, island ` +
                       `${n.island}, generation ${n.generation}, ${label(n.proposer || "-")}${n.best ? "<br>the best" : ""}`;
  const view = data && data.view ? data.view : {lo: null, hi: null};
  const traces = [
    {type: "scatter", mode: "lines", x: ex, y: ey, line: {color: "#ccc", width: 0.8}, hoverinfo: "skip",
     showlegend: false},
    {type: "scatter", mode: "markers", name: "failed", x: failed.map((n) => n.generation), y: failed.map((n) => n.y),
     customdata: failed.map((n) => n.id), text: failed.map(hover), hovertemplate: "%{text}<extra></extra>",
     marker: {symbol: "x-thin", size: 6, line: {width: 1, color: "#999"}}},
    {type: "scatter", mode: "markers", name: "valid", showlegend: !byIsland,  // by island: an entry per island
     x: valid.map((n) => n.generation), y: valid.map((n) => n.y),
     customdata: valid.map((n) => n.id), text: valid.map(hover), hovertemplate: "%{text}<extra></extra>",
     marker: byIsland ?
       {size: valid.map((n) => (n.best ? 16 : 8)), symbol: valid.map((n) => (n.best ? "star" : "circle")),
        color: valid.map((n) => PALETTE[n.island % PALETTE.length]), line: {width: 0.5, color: "#333"}} :
       {size: valid.map((n) => (n.best ? 16 : 8)), symbol: valid.map((n) => (n.best ? "star" : "circle")),
        color: valid.map((n) => n.score), colorscale: "Viridis", showscale: true,
        reversescale: data && data.direction === "minimize",
        cmin: view.lo === null ? undefined : view.lo, cmax: view.hi === null ? undefined : view.hi,
        colorbar: {title: {text: "score"}}, line: {width: 0.5, color: "#333"}}},
  ];
  if (byIsland) {  // a legend entry per island
    const islands = [...new Set(valid.map((n) => n.island))].sort((a, b) => a - b);
    for (const k of islands) {
      traces.push({type: "scatter", mode: "markers", name: `island ${k}`, x: [null], y: [null],
                   marker: {color: PALETTE[k % PALETTE.length], size: 8}, hoverinfo: "skip"});
    }
  }
  const rows = nodes.reduce((most, n) => Math.max(most, n.y), 0) + 1;  // a taller chart for a wider tree
  document.getElementById("chart-genealogy").style.height = `${Math.min(1400, Math.max(460, 100 + 4 * rows))}px`;
  Plotly.react("chart-genealogy", traces, {margin: {t: 10, r: 10, b: 45, l: 40}, hovermode: "closest",
                                           uirevision: `${state.run}-${g.limit}`, dragmode: "zoom",
                                           legend: {orientation: "h", y: 1.08},
                                           xaxis: {title: {text: "generation"}, zeroline: false},
                                           yaxis: {visible: false}}, {...CONFIG, scrollZoom: true});
  document.getElementById("genealogy-note").textContent = g.note ||
    `every one of the ${g.total} programs`;
  const div = document.getElementById("chart-genealogy");
  if (!div.dataset.clicks) {
    div.dataset.clicks = "on";
    div.on("plotly_click", (event) => {
      const point = event.points.find((p) => p.customdata !== undefined && p.customdata !== null);
      if (point) showProgram(point.customdata);
    });
  }
}

function drawSweep(sweep) {
  const section = document.getElementById("sweep-section");
  const runs = sweep ? sweep.runs.filter((r) => r.evaluation) : [];
  section.hidden = runs.length < 2;
  if (section.hidden) return;
  const traces = runs.map((r) => ({type: "scatter", mode: "lines", name: label(r.label) + (r.current ? " (this run)" : ""),
                                   x: r.evaluation, y: r.score, line: {shape: "hv", width: r.current ? 3 : 1.5},
                                   hovertemplate: `${label(r.name)}: %{y} after %{x} evaluations<extra></extra>`}));
  Plotly.react("chart-sweep", traces, {margin: {t: 10, r: 10, b: 45, l: 70}, uirevision: sweep.sweep,
                                       hovermode: "closest", legend: {orientation: "h", y: 1.12},
                                       xaxis: {title: {text: "evaluations"}, rangemode: "tozero"},
                                       yaxis: {title: {text: `best score (${runs[0].direction})`}}}, CONFIG);
  const broken = sweep.runs.filter((r) => r.error).map((r) => `${r.name}: ${r.error}`);
  document.getElementById("sweep-note").textContent =
    `${runs.length} runs of the sweep ${sweep.sweep}, best score so far against evaluations` +
    (broken.length ? `; not drawn: ${broken.join("; ")}` : "");
}

function drawCosts(costs) {
  const free = !(costs.total_cost > 0), key = free ? "proposals" : "cost";
  const traces = costs.models.map((m) => ({type: "scatter", mode: "lines", name: label(m.model), x: m.time, y: m[key],
                                           line: {shape: "hv"}}));
  Plotly.react("chart-cost", traces, {margin: {t: 10, r: 10, b: 45, l: 70}, uirevision: state.run,
                                      showlegend: true, legend: {orientation: "h", y: 1.12}, hovermode: "closest",
                                      xaxis: {title: {text: "seconds since the first program"}, rangemode: "tozero"},
                                      yaxis: {title: {text: free ? "proposals (no cost recorded)" : "cost so far, $"},
                                              rangemode: "tozero"}}, CONFIG);
}

async function drawExtras() {  // the views with endpoints of their own; one failing leaves the others drawn
  const limit = document.getElementById("genealogy-limit").value;
  await Promise.all([
    drawTable(),
    source.genealogy(state.run, limit).then(drawGenealogy),
    source.costs(state.run).then(drawCosts),
    source.sweep(state.run).then(drawSweep),
  ].map((p) => p.catch((error) => notice(`cannot read a view: ${error.message || error}`))));
}

function draw(data) {
  state.data = data;
  drawSummary(data);
  drawScores(data);
  drawShare(data);
  drawFailures(data);
  drawMaps(data);
  drawLineage(data);
  drawSpend(data);
}

// -- one program -------------------------------------------------------------------------------------
function diffBlock(diff) {
  const pre = el("pre", {class: "diff"});
  if (!diff) { pre.textContent = "(no parent, or the same code as its parent)"; return pre; }
  for (const line of diff.split("\n")) {
    const kind = line.startsWith("@@") ? "hunk" : line.startsWith("+") && !line.startsWith("+++") ? "add" :
      line.startsWith("-") && !line.startsWith("---") ? "del" : "";
    pre.append(kind ? el("span", {class: kind}, line + "\n") : document.createTextNode(line + "\n"));
  }
  return pre;
}

async function showProgram(id) {
  const holder = document.getElementById("detail");
  state.selected = id;
  let p;
  try {
    p = await source.program(state.run, id);
  } catch (error) {
    holder.replaceChildren(el("p", {}, String(error.message || error)));
    return;
  }
  if (state.selected !== id) return;
  const prompt = el("details", {}, el("summary", {}, `Prompt (${p.prompt.length} messages)`));
  for (const m of p.prompt) prompt.append(el("h4", {}, m.role), el("pre", {}, m.content));
  if (!p.prompt.length) prompt.append(el("p", {}, "No recorded prompt (the initial program, or a call before prompts were kept)."));
  const validation = p.validation ? `; validation ${fmt(p.validation.score)}` : "";
  const spread = p.spread ? ` (mean of ${p.spread.n} scorings, ${fmt(p.spread.min)} to ${fmt(p.spread.max)}, ` +
                            `std ${fmt(p.spread.std)})` : "";
  holder.replaceChildren(
    el("h3", {id: "detail-title"}, `Program ${p.id}: ${p.status}, score ${fmt(p.score)}${spread}${validation}`),
    el("p", {}, `iteration ${p.iteration}, island ${p.island}, generation ${p.generation}, parent ` +
                `${p.parent === null ? "none" : p.parent}, by ${p.proposer || "-"}${p.mode ? ` (${p.mode})` : ""}`),
    el("h4", {}, "Diff against its parent"), diffBlock(p.diff),
    el("h4", {}, "The evaluator's feedback"), el("pre", {id: "detail-feedback"}, p.feedback || p.error || "(none)"),
    el("details", {}, el("summary", {}, "Code"), el("pre", {id: "detail-code"}, p.code)),
    prompt,
    el("details", {}, el("summary", {}, "Reply"), el("pre", {}, p.reply || "(none)")));
}

// -- loading and polling -------------------------------------------------------------------------------
async function refresh() {
  let data;
  try {
    data = await source.campaign(state.run);
    notice("");
  } catch (error) {
    notice(`cannot read the campaign: ${error.message || error}`);
    return;
  }
  const live = document.getElementById("live");
  if (EMBEDDED) {
    live.textContent = `report written ${EMBEDDED.written}`;
  } else {
    live.textContent = `updated ${new Date().toLocaleTimeString()}` + (data.last ? `; last program ${data.last.slice(0, 19).replace("T", " ")}` : "");
  }
  source.state(state.run).then(drawState).catch((error) => notice(`cannot read the campaign's state: ${error.message || error}`));
  state.polls += 1;
  if (!EMBEDDED && state.polls % 5 === 0) source.sweep(state.run).then(drawSweep).catch(() => {});  // its other runs go on
  if (data.version !== undefined && data.version === state.version) return;
  state.version = data.version;
  draw(data);
  await drawExtras();
  document.body.dataset.ready = "yes";
}

function listRuns(runs) {
  const select = document.getElementById("runs");
  for (const r of runs.slice(select.options.length)) {  // runs keep their numbers: new ones come last
    select.append(el("option", {value: r.run}, r.error ? `${r.run_dir} (${r.error})` : `${r.name} (${r.problem})`));
  }
  document.getElementById("runs-label").hidden = runs.length < 2;
  state.runs = runs.length;
}

async function poll() {
  await refresh();
  if (state.polls % 2 === 0) {  // run dirs made since appear in the list
    try { listRuns(await source.campaigns()); } catch (error) { /* the next poll tries again */ }
  }
  setTimeout(poll, POLL_MS);
}

async function start() {
  const params = new URLSearchParams(window.location.search);
  if (!EMBEDDED && params.has("token")) {  // the browser keeps it as a cookie: out of the address bar and history
    params.delete("token");
    window.history.replaceState(null, "", window.location.pathname + (params.toString() ? `?${params}` : ""));
  }
  if (typeof Plotly === "undefined") { notice("the chart library did not load"); return; }
  let runs;
  try {
    runs = await source.campaigns();
  } catch (error) {
    notice(`cannot list the campaigns: ${error.message || error}`);
    return;
  }
  const select = document.getElementById("runs");
  listRuns(runs);
  const asked = new URLSearchParams(window.location.search).get("run");
  const readable = runs.filter((r) => !r.error).sort((a, b) => String(b.last).localeCompare(String(a.last)));
  state.run = asked !== null ? Number(asked) : readable.length ? readable[0].run || 0 : 0;
  select.value = String(state.run);
  select.addEventListener("change", () => {
    state.run = Number(select.value); state.version = null; state.showAll = false;
    if (!EMBEDDED) window.history.replaceState(null, "", `?run=${state.run}`);
    document.getElementById("detail").replaceChildren();
    Object.assign(state.table, {status: "", reason: "", island: "", page: 0});
    refresh();
  });
  const table = state.table;
  for (const key of ["sort", "order", "status", "reason", "island"]) {
    document.getElementById(`table-${key}`).addEventListener("change", (event) => {
      table[key] = event.target.value;
      table.page = 0;
      if (key === "status" && table.reason && !table.reason.startsWith(`${table.status}:`)) table.reason = "";
      drawTable();
    });
  }
  document.getElementById("table-prev").addEventListener("click", () => { table.page -= 1; drawTable(); });
  document.getElementById("table-next").addEventListener("click", () => { table.page += 1; drawTable(); });
  document.getElementById("genealogy-colour").addEventListener("change", () => {
    if (state.genealogy) drawGenealogy(state.genealogy);
  });
  document.getElementById("genealogy-limit").parentElement.hidden = Boolean(EMBEDDED);  // a report holds one sample
  document.getElementById("genealogy-limit").addEventListener("change", (event) => {
    source.genealogy(state.run, event.target.value).then(drawGenealogy)
      .catch((error) => notice(`cannot read the genealogy: ${error.message || error}`));
  });
  document.getElementById("view-all").addEventListener("click", () => {
    state.showAll = !state.showAll;
    if (state.data) drawScores(state.data);
  });
  if (EMBEDDED) await refresh(); else await poll();
}

start();
