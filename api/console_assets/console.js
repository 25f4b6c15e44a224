// Batchline console: a client of the service's own /api/v1, with no dependencies.
//
// The API key is kept in this tab's session storage and sent only as the X-API-Key header.
// Every value from the server is put on the page as text (never as HTML). Numbers in records
// are kept as the text the server sent, so an amount of 100.50 shows as 100.50, not 100.5.

const API = "/api/v1";
const KEY_SLOT = "batchline.apiKey";
const POLL_MS = 1000;
const METRICS_POLL_MS = 2000;
const RESULTS_PAGE = 50;
const FINAL = new Set(["completed", "failed", "cancelled"]);
const STATUSES = ["queued", "processing", "completed", "failed", "cancelled"];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const announcer = document.getElementById("announce");
let stopView = () => {};

// ---- small helpers ---------------------------------------------------------------------

/** Children as nodes: nested lists flattened, null, undefined and false left out, the rest
 * as text. */
function present(children) {
  return children.flat(Infinity)
    .filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : document.createTextNode(String(child))));
}

/** An element with attributes and children; strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...present(children));
  return node;
}

/** Replaces a node's children, leaving out the null, undefined and false ones. */
function fill(node, ...children) {
  node.replaceChildren(...present(children));
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...present(children));
  return node;
}

/** A table in a box that scrolls sideways on narrow screens, reachable with the keyboard. */
function wrapTable(table) {
  const caption = table.querySelector("caption");
  return h("div", {
    class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption ? caption.textContent : "Table",
  }, table);
}

function announce(text) {
  announcer.textContent = "";
  window.setTimeout(() => { announcer.textContent = text; }, 50);
}

/** Runs ``task`` now and every ``ms`` until the returned function is called. */
function poll(task, ms) {
  let stopped = false;
  let timer = 0;
  const run = async () => {
    if (stopped) return;
    try { await task(); } catch (error) { if (!(error instanceof SignedOut)) console.warn(error); }
    if (!stopped) timer = window.setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; window.clearTimeout(timer); };
}

/** A JSON number kept as the digits the server sent. */
class ExactNumber {
  constructor(text) { this.text = text; }
  toString() { return this.text; }
  toJSON() { return this.text; }
}

/** JSON.parse, except that numbers keep their source text (money is never made a float). */
function parseExact(text) {
  return JSON.parse(text, (key, value, context) =>
    typeof value === "number" && context && typeof context.source === "string"
      ? new ExactNumber(context.source) : value);
}

function display(value) {
  if (value === null || value === undefined) return "";
  if (value instanceof ExactNumber) return value.text;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** An ISO 8601 time with its zone, as the server gave it (always UTC). */
function when(iso) {
  return iso ? iso.replace(/\.\d+/, "") : "—";
}

function seconds(value) {
  return value === null || value === undefined ? "—" : `${Number(value).toFixed(3)} s`;
}

// ---- the API ---------------------------------------------------------------------------

class SignedOut extends Error {}

class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `The server answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

function apiKey() { return window.sessionStorage.getItem(KEY_SLOT); }

async function call(path, { method = "GET", body, headers = {}, accept } = {}) {
  const sent = { "X-API-Key": apiKey() || "", ...headers };
  if (accept) sent.Accept = accept;
  const response = await fetch(API + path, {
    method, body, headers: sent, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
  });
  if (response.status === 401 && apiKey()) {
    signOut("Your API key was not accepted any more; sign in again.");
    throw new SignedOut();
  }
  if (!response.ok) {
    let detail = null;
    try { detail = await response.json(); } catch { detail = null; }
    throw new ApiFailure(response.status, detail);
  }
  return response;
}

async function getJson(path) { return (await call(path)).json(); }

/** A failure as one sentence: the server's message, and where a record was wrong. */
function describe(error) {
  if (!(error instanceof ApiFailure)) return `The request did not complete: ${error.message}`;
  const details = (error.body && error.body.details) || {};
  const place = [];
  if (details.row !== undefined) place.push(`Row ${details.row}`);
  if (details.field !== undefined) place.push(`field ${details.field}`);
  const reason = details.reason ? `: ${details.reason}` : "";
  return place.length ? `${error.message}. ${place.join(", ")}${reason}.` : error.message;
}

function errorBox(text) { return h("div", { class: "message error", role: "alert" }, text); }

// ---- signing in --------------------------------------------------------------------------

function signOut(reason) {
  window.sessionStorage.removeItem(KEY_SLOT);
  nav.hidden = true;
  signInView(reason);
}

function signInView(reason) {
  stopView();
  stopView = () => {};
  nav.hidden = true;
  const field = h("input", {
    id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "api-key-hint",
  });
  const problem = h("div", { id: "sign-in-problem" });
  const form = h("form", { id: "sign-in", novalidate: true },
    h("label", { for: "api-key" }, "API key"),
    field,
    h("p", { class: "hint", id: "api-key-hint" },
      "Kept in this browser tab only, and sent as the X-API-Key header. `make run` prints one."),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in")),
    problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(problem);
    const key = field.value.trim();
    if (!key) { problem.append(errorBox("Enter an API key.")); field.focus(); return; }
    const response = await fetch(`${API}/transform/batches?limit=1`, {
      headers: { "X-API-Key": key }, cache: "no-store", credentials: "omit",
    });
    if (response.status === 401) {
      problem.append(errorBox("That API key was not accepted. Check it and try again."));
      field.focus();
      return;
    }
    if (!response.ok) {
      problem.append(errorBox(`The service answered ${response.status}; try again shortly.`));
      return;
    }
    window.sessionStorage.setItem(KEY_SLOT, key);
    if (!window.location.hash || window.location.hash === "#/signin") window.location.hash = "#/batches";
    else route();
  });
  fill(main,
    h("h1", {}, "Sign in"),
    reason ? h("div", { class: "message info", role: "status" }, reason) : null,
    form);
  field.focus();
}

// ---- batches -----------------------------------------------------------------------------

function statusCell(status) { return h("span", { class: `status ${status}` }, status); }

function progressBar(batch) {
  return h("progress", {
    max: 100, value: batch.progress, "aria-label": `Progress of batch ${batch.batch_id}`,
  }, `${batch.progress}%`);
}

function batchesView(params) {
  const chosen = STATUSES.includes(params.get("status")) ? params.get("status") : "";
  const filter = h("select", { id: "status-filter" },
    h("option", { value: "" }, "All"),
    STATUSES.map((status) => h("option", { value: status, selected: status === chosen }, status)));
  filter.addEventListener("change", () => {
    window.location.hash = filter.value ? `#/batches?status=${filter.value}` : "#/batches";
  });
  const body = h("tbody");
  const summary = h("p", { class: "hint", id: "batches-summary" });
  const problem = h("div");
  fill(main,
    h("h1", {}, "Batches"),
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "status-filter" }, "Status"), filter),
      h("div", {}, h("a", { class: "button", href: "#/submit" }, "Submit a batch"))),
    problem,
    summary,
    wrapTable(
      h("table", { id: "batches" },
        h("caption", { class: "visually-hidden" }, "Your batches, newest first"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Batch"),
          h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Progress"),
          h("th", { scope: "col", class: "num" }, "Processed"),
          h("th", { scope: "col", class: "hide-narrow" }, "Pipeline"),
          h("th", { scope: "col", class: "hide-narrow" }, "Created"))),
        body)));
  const rows = new Map();
  const query = `/transform/batches?limit=50${chosen ? `&status=${chosen}` : ""}`;
  return poll(async () => {
    let page;
    try { page = await getJson(query); } catch (error) {
      if (!(error instanceof SignedOut)) fill(problem, errorBox(describe(error)));
      throw error;
    }
    fill(problem);
    summary.textContent = `${page.total} batch${page.total === 1 ? "" : "es"}${chosen ? ` ${chosen}` : ""}` +
      (page.total > page.batches.length ? `; the newest ${page.batches.length} are shown` : "");
    const ids = page.batches.map((batch) => batch.batch_id);
    if (ids.join() !== [...rows.keys()].join()) {
      rows.clear();
      fill(body, ...page.batches.map((batch) => {
        const row = h("tr", { "data-batch": batch.batch_id });
        rows.set(batch.batch_id, row);
        return row;
      }));
    }
    for (const batch of page.batches) {
      fill(rows.get(batch.batch_id),
        h("td", {}, h("a", { href: `#/batch/${encodeURIComponent(batch.batch_id)}` }, batch.batch_id)),
        h("td", {}, statusCell(batch.status)),
        h("td", {}, progressBar(batch), ` ${batch.progress}%`),
        h("td", { class: "num" }, `${batch.processed} / ${batch.total}`),
        h("td", { class: "hide-narrow" }, batch.pipeline),
        h("td", { class: "hide-narrow" }, when(batch.created_at)));
    }
    if (!page.batches.length) fill(body, h("tr", {}, h("td", { colspan: 6 }, "No batches yet.")));
  }, POLL_MS);
}

// ---- submitting --------------------------------------------------------------------------

/** RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  const [header, ...lines] = rows.filter((cells) => cells.some((cell) => cell !== ""));
  if (!header) throw new Error("The CSV file has no header line.");
  return lines.map((cells) => Object.fromEntries(header.map((name, at) => [name, cells[at] ?? ""])));
}

/**
 * The records as the text of a JSON array, and how many there are. JSON and NDJSON are passed
 * on as written, so amounts keep every digit; CSV cells are strings, which the pipeline parses.
 */
function recordsText(text, name) {
  const trimmed = text.trim();
  if (!trimmed) throw new Error("There are no records: choose a file or paste some.");
  const lower = (name || "").toLowerCase();
  if (lower.endsWith(".csv") || (!lower && !/^[[{]/.test(trimmed))) {
    const records = parseCsv(text);
    return { json: JSON.stringify(records), count: records.length };
  }
  if (trimmed.startsWith("[")) {
    let parsed;
    try { parsed = JSON.parse(trimmed); } catch { throw new Error("The file is not valid JSON."); }
    if (!Array.isArray(parsed)) throw new Error("A JSON file must hold an array of records.");
    return { json: trimmed, count: parsed.length };
  }
  const lines = text.split(/\r?\n/).filter((line) => line.trim());
  lines.forEach((line, row) => {
    try { JSON.parse(line); } catch { throw new Error(`Row ${row} is not valid JSON.`); }
  });
  return { json: `[${lines.join(",")}]`, count: lines.length };
}

async function pipelineRefs() {
  const listed = await getJson("/pipelines");
  return listed.pipelines.flatMap((pipeline) => pipeline.versions.map((version) => version.ref));
}

function submitView() {
  const file = h("input", { id: "records-file", type: "file", accept: ".json,.ndjson,.jsonl,.csv,application/json" });
  const pasted = h("textarea", { id: "records-text", spellcheck: "false", "aria-describedby": "records-hint" });
  const pipeline = h("select", { id: "pipeline" }, h("option", { value: "default" }, "default"));
  const batchSize = h("input", { id: "batch-size", type: "number", min: 1, max: 10000, value: 100, required: true });
  const onInvalid = h("select", { id: "on-invalid" },
    h("option", { value: "reject" }, "reject: refuse the batch"),
    h("option", { value: "skip" }, "skip: drop invalid records"));
  const problem = h("div", { id: "submit-problem" });
  const form = h("form", { id: "submit-form", novalidate: true },
    h("label", { for: "records-file" }, "Records file (JSON array, NDJSON or CSV)"),
    file,
    h("label", { for: "records-text" }, "Or paste records"),
    pasted,
    h("p", { class: "hint", id: "records-hint" },
      "A JSON array, one JSON record per line, or CSV with a header line. Rows count from 0."),
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "pipeline" }, "Pipeline"), pipeline),
      h("div", {}, h("label", { for: "batch-size" }, "Batch size"), batchSize),
      h("div", {}, h("label", { for: "on-invalid" }, "Invalid records"), onInvalid)),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "submit-button" }, "Submit")),
    problem);
  fill(main, h("h1", {}, "Submit a batch"), form);
  pipelineRefs().then((refs) => {
    fill(pipeline, h("option", { value: "default" }, "default (newest)"),
      ...refs.map((ref) => h("option", { value: ref }, ref)));
  }).catch(() => {});
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(problem);
    const chosen = file.files && file.files[0];
    let records;
    try {
      records = recordsText(chosen ? await chosen.text() : pasted.value, chosen ? chosen.name : "");
    } catch (error) {
      problem.append(errorBox(error.message));
      return;
    }
    const size = Number(batchSize.value);
    if (!Number.isInteger(size) || size < 1 || size > 10000) {
      problem.append(errorBox("Batch size must be a whole number from 1 to 10,000."));
      batchSize.focus();
      return;
    }
    const body = `{"data":${records.json},"batch_size":${size},` +
      `"pipeline":${JSON.stringify(pipeline.value)},"on_invalid":${JSON.stringify(onInvalid.value)}}`;
    const button = document.getElementById("submit-button");
    button.disabled = true;
    try {
      const response = await call("/transform/batch", {
        method: "POST", body, headers: { "Content-Type": "application/json", Prefer: "respond-async" },
      });
      const accepted = await response.json();
      announce(`Batch ${accepted.batch_id} submitted with ${records.count} records.`);
      window.location.hash = `#/batch/${encodeURIComponent(accepted.batch_id)}`;
    } catch (error) {
      if (!(error instanceof SignedOut)) problem.append(errorBox(describe(error)));
    } finally {
      button.disabled = false;
    }
  });
  return () => {};
}

// ---- one batch ---------------------------------------------------------------------------

/** A line chart of (seconds, value) points, with its axes' ends written out. */
function lineChart(points, { label, unit }) {
  const width = 480;
  const height = 180;
  const pad = 36;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": label });
  chart.append(svg("title", {}, label));
  const xs = points.map((point) => point[0]);
  const ys = points.map((point) => point[1]);
  const x0 = Math.min(...xs, 0);
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...ys, 1);
  const px = (x) => pad + ((x - x0) / (x1 - x0)) * (width - 2 * pad);
  const py = (y) => height - pad + 10 - (y / y1) * (height - 2 * pad);
  chart.append(
    svg("line", { class: "axis", x1: pad, y1: py(0), x2: width - pad, y2: py(0) }),
    svg("line", { class: "axis", x1: pad, y1: py(0), x2: pad, y2: py(y1) }),
    svg("text", { x: 2, y: py(y1) + 4 }, `${Math.round(y1)}`),
    svg("text", { x: 2, y: py(0) }, "0"),
    svg("text", { x: width - pad - 40, y: height - 4 }, `${(x1 - x0).toFixed(1)} s`),
    svg("text", { x: pad, y: height - 4 }, unit));
  if (points.length) {
    chart.append(svg("polyline", {
      class: "line", points: points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" "),
    }));
  }
  return chart;
}

/** Invalid records as {row, field, reason}: never their values. */
function errorsTable(id, caption, errors) {
  return wrapTable( h("table", { id },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num" }, "Row"),
      h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Reason"))),
    h("tbody", {}, errors.map((error) => h("tr", {},
      h("td", { class: "num" }, String(error.row)), h("td", {}, error.field), h("td", {}, error.reason))))));
}

function fact(name, value, id) {
  return h("div", {}, h("dt", {}, name), h("dd", id ? { id } : {}, value));
}

async function download(batchId, kind) {
  const accept = kind === "csv" ? "text/csv" : "application/x-ndjson";
  const response = await call(`/transform/batch/${encodeURIComponent(batchId)}/results`, { accept });
  const blob = await response.blob();
  const link = h("a", { href: URL.createObjectURL(blob), download: `${batchId}.${kind}` });
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function resultsTable(page) {
  const last = page.offset + page.results.length - 1;
  return recordsTable("results", `Rows ${page.offset}–${last} of ${page.total}`, page.results, page.offset);
}

function batchView(batchId) {
  const path = `/transform/batch/${encodeURIComponent(batchId)}`;
  const heading = h("h1", {}, `Batch ${batchId}`);
  const facts = h("dl", { class: "facts", id: "batch-facts" });
  const chartBox = h("div", { id: "batch-chart" });
  const actions = h("div", { class: "actions", id: "batch-actions" });
  const notice = h("div", { id: "batch-notice" });
  const results = h("section", { "aria-labelledby": "results-heading" },
    h("h2", { id: "results-heading" }, "Results"), h("div", { id: "results-body" }, "Loading…"));
  const errors = h("section", { "aria-labelledby": "errors-heading" },
    h("h2", { id: "errors-heading" }, "Errors"), h("div", { id: "errors-body" }, "Loading…"));
  fill(main, heading, notice, facts,
    h("h2", {}, "Items done over time"), chartBox, actions, results, errors);

  const samples = [];
  let startedAt = null;
  let lastStatus = null;
  let resultsOffset = 0;

  async function loadResults() {
    const box = document.getElementById("results-body");
    if (!box) return;
    const response = await call(`${path}/results?offset=${resultsOffset}&limit=${RESULTS_PAGE}`);
    const page = parseExact(await response.text());
    const previous = h("button", { type: "button", class: "secondary", disabled: resultsOffset === 0 }, "Previous rows");
    const next = h("button", {
      type: "button", class: "secondary", disabled: resultsOffset + RESULTS_PAGE >= Number(String(page.total)),
    }, "Next rows");
    previous.addEventListener("click", () => { resultsOffset = Math.max(0, resultsOffset - RESULTS_PAGE); loadResults(); });
    next.addEventListener("click", () => { resultsOffset += RESULTS_PAGE; loadResults(); });
    page.offset = Number(String(page.offset));
    page.total = Number(String(page.total));
    fill(box,
      page.partial ? h("div", { class: "message warn", id: "partial-notice" },
        "Partial results: this batch has not completed, so rows may be missing.") : null,
      page.results.length ? resultsTable(page) : h("p", {}, "No results."),
      h("div", { class: "actions" }, previous, next));
  }

  async function loadErrors() {
    const box = document.getElementById("errors-body");
    if (!box) return;
    const page = await getJson(`${path}/errors?limit=1000`);
    fill(box, page.errors.length
      ? errorsTable("errors", "Records dropped as invalid", page.errors)
      : h("p", {}, "No records were dropped as invalid."));
  }

  function renderActions(batch, refs) {
    const problem = h("div");
    const buttons = [];
    if (!FINAL.has(batch.status)) {
      const cancel = h("button", { type: "button", class: "danger", id: "cancel" }, "Cancel batch");
      cancel.addEventListener("click", async () => {
        cancel.disabled = true;
        try {
          const answer = await (await call(`${path}/cancel`, { method: "POST" })).json();
          announce(answer.message);
          fill(notice, h("div", { class: "message info", role: "status" }, answer.message));
        } catch (error) {
          if (!(error instanceof SignedOut)) fill(problem, errorBox(describe(error)));
          cancel.disabled = false;
        }
      });
      buttons.push(cancel);
    } else {
      const chosen = h("select", { id: "replay-pipeline" },
        refs.map((ref) => h("option", { value: ref, selected: ref === batch.pipeline }, ref)));
      const replay = h("button", { type: "button", id: "replay" }, "Replay");
      replay.addEventListener("click", async () => {
        replay.disabled = true;
        try {
          const accepted = await (await call(`${path}/replay`, {
            method: "POST", body: JSON.stringify({ pipeline: chosen.value }),
            headers: { "Content-Type": "application/json" },
          })).json();
          window.location.hash = `#/batch/${encodeURIComponent(accepted.batch_id)}`;
        } catch (error) {
          if (!(error instanceof SignedOut)) fill(problem, errorBox(describe(error)));
          replay.disabled = false;
        }
      });
      buttons.push(h("label", { for: "replay-pipeline", class: "inline" }, "Replay with"), chosen, replay);
    }
    for (const kind of ["ndjson", "csv"]) {
      const button = h("button", { type: "button", class: "secondary", id: `download-${kind}` },
        `Download ${kind === "csv" ? "CSV" : "NDJSON"}`);
      button.addEventListener("click", () => download(batchId, kind).catch((error) => {
        if (!(error instanceof SignedOut)) fill(problem, errorBox(describe(error)));
      }));
      buttons.push(button);
    }
    fill(actions, ...buttons, problem);
  }

  let refs = [];
  pipelineRefs().then((found) => { refs = found; if (lastStatus) renderActionsFor(); }).catch(() => {});
  let current = null;
  function renderActionsFor() { if (current) renderActions(current, refs); }

  const stop = poll(async () => {
    let batch;
    try { batch = await getJson(path); } catch (error) {
      if (error instanceof ApiFailure) {
        fill(notice, errorBox(describe(error)));
        results.hidden = true;
        errors.hidden = true;
        stop();
      }
      throw error;
    }
    current = batch;
    const now = Date.now() / 1000;
    if (batch.started_at && startedAt === null) {
      startedAt = Date.parse(batch.started_at) / 1000;
      samples.push([0, 0]);
    }
    if (startedAt !== null) {
      // Live samples use this browser's clock; the last one, the server's completion time.
      const end = batch.completed_at ? Date.parse(batch.completed_at) / 1000 : now;
      const done = batch.processed + batch.filtered + batch.invalid;
      const x = Math.max(0, end - startedAt);
      while (samples.length && samples[samples.length - 1][0] > x) samples.pop();
      samples.push([x, done]);
    }
    fill(facts,
      fact("Status", statusCell(batch.status), "fact-status"),
      fact("Progress", h("span", {}, progressBar(batch), ` ${batch.progress}%`), "fact-progress"),
      fact("Processed", `${batch.processed} of ${batch.total}`, "fact-processed"),
      fact("Filtered", String(batch.filtered)),
      fact("Invalid", String(batch.invalid)),
      fact("Pipeline", batch.pipeline),
      fact("Created", when(batch.created_at)),
      fact("Started", when(batch.started_at)),
      fact("Completed", when(batch.completed_at)),
      fact("Duration", seconds(batch.duration)),
      batch.replay_of ? fact("Replay of", h("a", { href: `#/batch/${encodeURIComponent(batch.replay_of)}`, id: "replay-of" }, batch.replay_of)) : null,
      batch.reason ? fact("Reason", batch.reason) : null,
      Object.entries(batch.metadata || {}).map(([name, value]) => fact(`metadata ${name}`, value)));
    fill(chartBox, lineChart(samples, {
      label: `Items done over time for batch ${batchId}: ${batch.processed + batch.filtered + batch.invalid} of ${batch.total}`,
      unit: "items",
    }));
    if (batch.status !== lastStatus) {
      if (lastStatus !== null) announce(`Batch ${batchId} is ${batch.status}.`);
      lastStatus = batch.status;
      renderActions(batch, refs);
      await Promise.all([loadResults(), loadErrors()]);
    }
    if (FINAL.has(batch.status)) stop();
  }, POLL_MS);
  return stop;
}

// ---- pipelines ---------------------------------------------------------------------------

function pipelinesView() {
  const body = h("div", {}, "Loading…");
  fill(main, h("h1", {}, "Pipelines"),
    h("div", { class: "actions" }, h("a", { class: "button", href: "#/validate" }, "Validate a spec")), body);
  getJson("/pipelines").then((listed) => {
    fill(body, wrapTable( h("table", { id: "pipelines" },
      h("caption", { class: "visually-hidden" }, "Pipelines and their versions"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Pipeline"),
        h("th", { scope: "col" }, "Newest"), h("th", { scope: "col" }, "Versions"))),
      h("tbody", {}, listed.pipelines.map((pipeline) => h("tr", {},
        h("th", { scope: "row" }, pipeline.name),
        h("td", {}, pipeline.newest),
        h("td", {}, pipeline.versions.map((version, at) => [at ? ", " : "",
          h("a", { href: `#/pipelines/${encodeURIComponent(version.ref)}` }, version.ref)]))))))));
  }).catch((error) => { if (!(error instanceof SignedOut)) fill(body, errorBox(describe(error))); });
  return () => {};
}

function pipelineView(ref) {
  const body = h("div", {}, "Loading…");
  fill(main, h("h1", {}, `Pipeline ${ref}`), body);
  getJson(`/pipelines/${encodeURIComponent(ref)}`).then((pipeline) => {
    fill(body,
      h("dl", { class: "facts" },
        fact("Version", String(pipeline.version)),
        fact("Digest", pipeline.digest),
        fact("Output fields", pipeline.output_fields.join(", ")),
        pipeline.description ? fact("Description", pipeline.description) : null),
      h("h2", {}, "Spec"),
      h("pre", { id: "pipeline-spec", tabindex: 0 }, JSON.stringify(pipeline.spec, null, 2)));
  }).catch((error) => { if (!(error instanceof SignedOut)) fill(body, errorBox(describe(error))); });
  return () => {};
}

const EXAMPLE_SPEC = `name: orders
version: 1
fields:
  - source: amt
    target: amount
    parse: decimal
`;
const EXAMPLE_SAMPLE = '[{"amt": "100.50"}, {"amt": "ten"}]';

/** Records as a table: a column for every field any of them has, rows numbered from ``first``. */
function recordsTable(id, caption, records, first = 0) {
  const names = [];
  for (const record of records) {
    if (record && typeof record === "object") for (const name of Object.keys(record)) if (!names.includes(name)) names.push(name);
  }
  return wrapTable( h("table", { id },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num" }, "Row"),
      names.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, records.map((record, row) => h("tr", {}, h("td", { class: "num" }, String(first + row)),
      names.map((name) => h("td", {}, display(record && record[name]))))))));
}

function validateView() {
  const spec = h("textarea", { id: "spec", spellcheck: "false" }, EXAMPLE_SPEC);
  const sample = h("textarea", { id: "sample", spellcheck: "false", "aria-describedby": "sample-hint" }, EXAMPLE_SAMPLE);
  const outcome = h("div", { id: "validate-outcome" });
  const form = h("form", { id: "validate-form", novalidate: true },
    h("label", { for: "spec" }, "Spec (YAML or JSON)"), spec,
    h("label", { for: "sample" }, "Sample records (a JSON array; optional)"), sample,
    h("p", { class: "hint", id: "sample-hint" }, "Nothing is stored or sent to Kafka: this is a dry run."),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Validate")),
    outcome);
  fill(main, h("h1", {}, "Validate a pipeline spec"), form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(outcome);
    const sampleText = sample.value.trim();
    let before = null;
    if (sampleText) {
      try { before = parseExact(sampleText); } catch {
        outcome.append(errorBox("The sample is not valid JSON."));
        return;
      }
      if (!Array.isArray(before)) { outcome.append(errorBox("The sample must be a JSON array of records.")); return; }
    }
    const body = `{"spec":${JSON.stringify(spec.value)}${sampleText ? `,"sample":${sampleText}` : ""}}`;
    try {
      const response = await call("/pipelines/validate", {
        method: "POST", body, headers: { "Content-Type": "application/json" },
      });
      const checked = parseExact(await response.text());
      if (!checked.valid) {
        outcome.append(h("div", { class: "message error", role: "alert", id: "spec-errors" },
          h("p", {}, "The spec is not valid:"), h("ul", {}, checked.errors.map((line) => h("li", {}, line)))));
        return;
      }
      outcome.append(h("div", { class: "message info", role: "status" },
        `Valid: ${checked.ref}, digest ${checked.digest}. Output fields: ${checked.output_fields.join(", ")}.`));
      if (checked.dry_run) {
        outcome.append(h("h2", {}, "Before and after"), h("div", { class: "side-by-side" },
          recordsTable("before", "Before: the sample", before),
          recordsTable("after", "After: the results", checked.dry_run.results)));
        if (checked.dry_run.errors.length) {
          outcome.append(h("h2", {}, "Invalid records"), errorsTable("dry-run-errors", "Records the spec found invalid", checked.dry_run.errors));
        }
      }
    } catch (error) {
      if (!(error instanceof SignedOut)) outcome.append(errorBox(describe(error)));
    }
  });
  return () => {};
}

// ---- operations --------------------------------------------------------------------------

/** Prometheus text format: [{name, labels, value}] (comments and types skipped). */
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

function total(samples, name, where = () => true) {
  return samples.filter((sample) => sample.name === name && where(sample.labels))
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** The q-quantile of the requests between two scrapes, from histogram buckets (upper bound). */
function quantile(before, after, q) {
  const buckets = new Map();
  for (const [samples, sign] of [[after, 1], [before, -1]]) {
    for (const sample of samples) {
      if (sample.name !== "http_request_duration_seconds_bucket") continue;
      const bound = sample.labels.le === "+Inf" ? Infinity : Number(sample.labels.le);
      buckets.set(bound, (buckets.get(bound) || 0) + sign * sample.value);
    }
  }
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const count = buckets.get(Infinity) || 0;
  if (count <= 0) return null;
  for (const bound of bounds) if (buckets.get(bound) >= q * count) return bound;
  return null;
}

function operationsView() {
  const history = [];
  const charts = h("div", { class: "charts", id: "operations-charts" });
  const lag = h("div", { id: "lag" });
  const problem = h("div");
  fill(main, h("h1", {}, "Operations"),
    h("p", { class: "hint" }, "From the service's own metrics (the API's /metrics and its workers'), read every 2 seconds while this page is open."),
    problem, charts, h("h2", {}, "Consumer lag by partition"), lag);
  let previous = null;
  return poll(async () => {
    // The API's own metrics, and its workers' (which it gathers: a page asks only its server).
    const answers = await Promise.all(["/metrics", "/metrics/workers"].map((path) =>
      fetch(path, { cache: "no-store", credentials: "omit" })));
    const failed = answers.find((answer) => !answer.ok);
    if (failed) { fill(problem, errorBox(`${new URL(failed.url).pathname} answered ${failed.status}`)); return; }
    fill(problem);
    const samples = parseMetrics((await Promise.all(answers.map((answer) => answer.text()))).join("\n"));
    const at = Date.now() / 1000;
    if (previous) {
      const span = at - previous.at;
      const items = total(samples, "batch_processed_total", (l) => l.stage === "transformed") -
        total(previous.samples, "batch_processed_total", (l) => l.stage === "transformed");
      const failures = total(samples, "batch_processing_errors_total") - total(previous.samples, "batch_processing_errors_total");
      const p99 = quantile(previous.samples, samples, 0.99);
      history.push({
        t: at, items: Math.max(0, items) / span, errors: Math.max(0, failures) / span,
        lag: total(samples, "batch_consumer_lag_messages"), p99: p99 === null || p99 === Infinity ? 0 : p99 * 1000,
      });
      if (history.length > 150) history.shift();
    }
    previous = { at, samples };
    const start = history.length ? history[0].t : at;
    const series = (field) => history.map((point) => [point.t - start, point[field]]);
    const last = history[history.length - 1];
    const figure = (title, field, unit) => h("figure", {},
      lineChart(series(field), { label: `${title}: ${last ? last[field].toFixed(1) : "—"} ${unit}`, unit }),
      h("figcaption", {}, `${title}: ${last ? last[field].toFixed(1) : "—"} ${unit}`));
    fill(charts,
      figure("Throughput", "items", "items/s"),
      figure("Error rate", "errors", "errors/s"),
      figure("Consumer lag", "lag", "messages"),
      figure("HTTP latency p99", "p99", "ms"));
    const partitions = samples.filter((sample) => sample.name === "batch_consumer_lag_messages")
      .sort((a, b) => a.labels.topic.localeCompare(b.labels.topic) ||
        Number(a.labels.partition) - Number(b.labels.partition));
    fill(lag, partitions.length
      ? wrapTable( h("table", { id: "lag-table" },
        h("caption", { class: "visually-hidden" }, "Messages not yet consumed, by partition"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Topic"),
          h("th", { scope: "col", class: "num" }, "Partition"), h("th", { scope: "col", class: "num" }, "Lag"))),
        h("tbody", {}, partitions.map((sample) => h("tr", {}, h("td", {}, sample.labels.topic),
          h("td", { class: "num" }, sample.labels.partition), h("td", { class: "num" }, String(sample.value)))))))
      : h("p", {}, "No worker has reported lag yet."));
  }, METRICS_POLL_MS);
}

// ---- routing -----------------------------------------------------------------------------

function markCurrent(hash) {
  for (const link of nav.querySelectorAll("a")) {
    const target = link.getAttribute("href");
    if (hash.startsWith(target)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  stopView();
  stopView = () => {};
  if (!apiKey()) { signInView(); return; }
  nav.hidden = false;
  const hash = window.location.hash || "#/batches";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  markCurrent(hash);
  let stop;
  if (parts[0] === "batch" && parts[1]) stop = batchView(parts[1]);
  else if (parts[0] === "submit") stop = submitView();
  else if (parts[0] === "pipelines" && parts[1]) stop = pipelineView(parts[1]);
  else if (parts[0] === "pipelines") stop = pipelinesView();
  else if (parts[0] === "validate") stop = validateView();
  else if (parts[0] === "operations") stop = operationsView();
  else stop = batchesView(params);
  stopView = stop || (() => {});
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · Batchline console`;
  main.focus({ preventScroll: true });
}

document.getElementById("sign-out").addEventListener("click", () => signOut("You are signed out."));
window.addEventListener("hashchange", route);
route();
