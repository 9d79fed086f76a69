// Switchyard console: signs in with the caller's own API token, draws from the
// JSON API, and fetches again when the daemon's event stream says something
// changed. No framework, no build step.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

const session = {
  token: sessionStorage.getItem("switchyard-token"),
  me: null,
  clockSkew: 0, // daemon's clock minus the browser's, ms
  stream: null,
};

// ---- the API -------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body, contentType) {
  const headers = {};
  if (session.token) headers.authorization = "Bearer " + session.token;
  let payload;
  if (body instanceof ArrayBuffer) { payload = body; headers["content-type"] = contentType || "application/wasm"; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers["content-type"] = "application/json"; }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload });
  } catch (e) {
    throw new ApiError(0, "The daemon did not answer (" + e.message + "). Is it running?");
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!response.ok) {
    const words = json && json.error ? json.error : (text || response.statusText);
    const err = new ApiError(response.status, explain(response.status, words));
    err.body = json;
    throw err;
  }
  return json;
}

function explain(status, words) {
  switch (status) {
    case 401: return "Not signed in, or the token is no longer valid: " + words;
    case 403: return "Not allowed: " + words;
    case 404: return "Not found: " + words;
    case 409: return "Not possible now: " + words;
    case 422: return "Refused: " + words;
    case 503: return "The daemon cannot do this now: " + words;
    default: return "Error " + status + ": " + words;
  }
}

function showError(e) {
  const box = $("#error");
  if (!e) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = e.message || String(e);
  box.hidden = false;
  if (e.status === 401) signOut("Your token was refused; sign in again.");
}

async function act(fn) {
  try { showError(null); await fn(); await refresh(); }
  catch (e) { showError(e); }
}

// Redraw an element only when its markup changed: a control that is redrawn
// loses focus and the click that was on its way to it.
function setHtml(el, html) {
  if (el._html === html) return false;
  el._html = html;
  el.innerHTML = html;
  return true;
}

// ---- formatting ------------------------------------------------------------

const now = () => Date.now() + session.clockSkew;
function duration(ms) {
  if (ms == null) return "–";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + String(s % 60).padStart(2, "0") + " s";
  return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
}
const seconds = (s) => (s == null ? "–" : s.toFixed(1) + " s");
const percent = (x) => (x == null ? "–" : (x * 100).toFixed(1) + " %");
const clock = (ms) => (ms == null ? "–" : new Date(ms).toLocaleString());
function rule(source) {
  if (!source) return "–";
  if (source.kind === "plugin") return "plugin " + esc(source.plugin) + " generation " + esc(source.generation);
  if (source.kind === "fallback") return "built-in rule (fallback from generation " + esc(source.generation) + ": " + esc(source.reason || "") + ")";
  if (source.kind === "built-in") return "built-in rule";
  return esc(source.kind || JSON.stringify(source));
}

// ---- sign-in and navigation -----------------------------------------------

async function signIn(token) {
  session.token = token;
  try {
    session.me = await api("GET", "/v1/me");
  } catch (e) {
    session.token = null;
    throw e;
  }
  sessionStorage.setItem("switchyard-token", token);
  $("#signin").hidden = true;
  $("#signout").hidden = false;
  const who = session.me.agent ? "agent " + session.me.agent : session.me.role;
  $("#whoami").textContent = "Signed in as " + who;
  $("#whoami").hidden = false;
  const views = viewsFor(session.me.role);
  $$("#nav a").forEach((a) => { a.hidden = !views.includes(a.dataset.view); });
  $("#nav").hidden = views.length < 2;
  listen();
  route();
}

function signOut(why) {
  sessionStorage.removeItem("switchyard-token");
  session.token = null; session.me = null;
  if (session.stream) session.stream.abort();
  session.stream = null;
  for (const id of ["desk", "board", "rules", "nothing", "nav", "whoami", "signout", "live"]) $("#" + id).hidden = true;
  $("#signin").hidden = false;
  $("#offers").replaceChildren(); $("#work").replaceChildren(); $("#departments").replaceChildren();
  if (why) { const box = $("#error"); box.textContent = why; box.hidden = false; }
  $("#token").focus();
}

function viewsFor(role) {
  if (role === "agent") return ["desk"];
  if (role === "admin" || role === "supervisor") return ["board", "rules"];
  return [];
}

function currentView() {
  const views = viewsFor(session.me && session.me.role);
  const wanted = location.hash.replace(/^#\//, "");
  return views.includes(wanted) ? wanted : views[0];
}

function route() {
  if (!session.me) return;
  const view = currentView();
  for (const id of ["desk", "board", "rules", "nothing"]) $("#" + id).hidden = id !== (view || "nothing");
  $$("#nav a").forEach((a) => a.setAttribute("aria-current", a.dataset.view === view ? "page" : "false"));
  if (!view) $("#nothing-why").textContent = "The " + session.me.role + " token is for the gateway; the console has no page for it.";
  refresh();
}

// ---- live updates: Server-Sent Events over fetch (it carries the token) ----

async function listen() {
  if (session.stream) session.stream.abort();
  const controller = new AbortController();
  session.stream = controller;
  const live = $("#live");
  live.hidden = false;
  while (session.stream === controller) {
    try {
      const response = await fetch("/v1/events", { headers: { authorization: "Bearer " + session.token }, signal: controller.signal });
      if (response.status === 401) { signOut("Your token was refused; sign in again."); return; }
      if (!response.ok || !response.body) throw new Error("status " + response.status);
      live.textContent = "Live";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (/^event: (change|beat)$/m.test(block)) scheduleRefresh();
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
    }
    live.textContent = "Reconnecting…";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// The stream's changes refresh the page at most twice a second: on a busy
// daemon every page would otherwise fetch on each of its changes. A person's
// own actions refresh at once (`act`).
let scheduled = null, lastScheduled = 0;
function scheduleRefresh() {
  if (scheduled) return;
  const wait = Math.max(0, lastScheduled + 500 - Date.now());
  scheduled = setTimeout(() => { scheduled = null; lastScheduled = Date.now(); refresh(); }, wait);
}

// One refresh at a time; a request for one meanwhile runs once more after.
let refreshing = null, again = false;
async function refresh() {
  if (!session.me) return;
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    do {
      again = false;
      try {
        const view = currentView();
        if (view === "desk") await drawDesk();
        else if (view === "board") await drawBoard();
        else if (view === "rules") await drawRules();
        // For the browser tests' timing: when the page first showed data.
        if (view && performance.getEntriesByName("switchyard-drawn").length === 0) performance.mark("switchyard-drawn");
      } catch (e) { showError(e); }
    } while (again);
  })();
  await refreshing;
  refreshing = null;
}

// ---- agent desktop -------------------------------------------------------

let queues = null;

async function drawDesk() {
  const me = session.me.agent;
  const ws = await api("GET", "/v1/agents/" + encodeURIComponent(me) + "/workspace");
  if (!queues) queues = await api("GET", "/v1/queues").catch(() => []);
  session.clockSkew = ws.now_ms - Date.now();
  $("#agent-state").textContent = ws.state + (ws.presence !== ws.state ? " (presence " + ws.presence + ")" : "");
  $$("[data-presence]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.presence === ws.presence)));
  setHtml($("#capacity tbody"), Object.entries(ws.capacity)
    .map(([channel, c]) => `<tr><th scope="row">${esc(channel)}</th><td>${c.load}</td><td>${c.capacity}</td></tr>`).join(""));
  const offers = ws.items.filter((i) => i.status === "offered");
  const work = ws.items.filter((i) => i.status !== "offered");
  keyed($("#offers"), offers, offerCard);
  keyed($("#work"), work, workCard);
  $("#no-offers").hidden = offers.length > 0;
  $("#no-work").hidden = work.length > 0;
  tickCountdowns();
}

// Keep one card per item: a card is made once (its controls keep focus and
// input) and only its details are redrawn when they change.
function keyed(container, items, make) {
  const seen = new Set();
  for (const item of items) {
    const key = String(item.id);
    seen.add(key);
    let card = container.querySelector(`[data-item="${key}"]`);
    if (!card) { card = make(item); card.dataset.item = key; container.append(card); }
    const details = card.querySelector(".details");
    const json = JSON.stringify(item);
    if (details.dataset.json !== json) { details.dataset.json = json; details.innerHTML = itemDetails(item); }
    card.dataset.expires = item.offer_expires_ms ?? "";
  }
  for (const card of $$("[data-item]", container)) if (!seen.has(card.dataset.item)) card.remove();
}

function offerCard(item) {
  const card = document.createElement("article");
  card.className = "offer card";
  card.setAttribute("aria-labelledby", "offer-title-" + item.id);
  card.innerHTML = `<h4 id="offer-title-${item.id}">Offer: item ${item.id}, ${esc(item.channel)} in ${esc(item.queue)}</h4>
    <p class="countdown" aria-live="off"></p>
    <div class="buttons"><button type="button" class="accept">Accept</button><button type="button" class="reject">Reject</button></div>
    <div class="details"></div>`;
  $(".accept", card).setAttribute("aria-label", "Accept item " + item.id);
  $(".reject", card).setAttribute("aria-label", "Reject item " + item.id);
  // Keyboard users land on what they just took on.
  $(".accept", card).addEventListener("click", () =>
    act(() => api("POST", `/v1/offers/${item.id}/accept`)).then(() => focusOn(`#work [data-item="${item.id}"] h4`)));
  $(".reject", card).addEventListener("click", () => act(() => api("POST", `/v1/offers/${item.id}/reject`)));
  return card;
}

function workCard(item) {
  const card = document.createElement("article");
  card.className = "work-item card";
  card.setAttribute("aria-labelledby", "work-title-" + item.id);
  const options = (queues || []).map((q) => `<option value="${esc(q.department)}|${esc(q.name)}">${esc(q.name)} (${esc(q.department)})</option>`).join("");
  const id = item.id;
  card.innerHTML = `<h4 id="work-title-${id}" tabindex="-1">Item ${id}: ${esc(item.channel)} in ${esc(item.queue)}</h4>
    <div class="details"></div>
    <form class="complete inline">
      <input type="checkbox" id="resolved-${id}" checked><label for="resolved-${id}">Resolved</label>
      <button type="submit">Complete item ${id}</button>
    </form>
    <form class="handoff inline">
      <label for="handoff-queue-${id}">Hand off to queue</label>
      <select id="handoff-queue-${id}" required>${options}</select>
      <label for="handoff-channel-${id}">as</label>
      <select id="handoff-channel-${id}"><option>case</option><option>email</option><option>chat</option><option>voice</option></select>
      <button type="submit">Hand off item ${id}</button>
    </form>`;
  $(".complete", card).addEventListener("submit", (e) => {
    e.preventDefault();
    const resolved = $(`#resolved-${id}`, card).checked;
    act(() => api("POST", `/v1/items/${id}/complete`, { resolved })).then(() => focusOn("#work-title"));
  });
  $(".handoff", card).addEventListener("submit", (e) => {
    e.preventDefault();
    const [department, queue] = $(`#handoff-queue-${id}`, card).value.split("|");
    const channel = $(`#handoff-channel-${id}`, card).value;
    act(() => api("POST", `/v1/items/${id}/complete`, { resolved: false, handoff: { department, queue, channel } }))
      .then(() => focusOn("#work-title"));
  });
  return card;
}

function focusOn(selector) {
  const target = $(selector);
  if (target) target.focus();
}

function itemDetails(item) {
  const why = item.explanation || {};
  const attributes = (item.attributes || []).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  const escalations = (why.escalations || []).map((e) => `<li>${clock(e.at_ms)}: ${esc(e.actions.join(", "))} (${rule(e.source)})</li>`).join("");
  const earlier = (item.earlier_contacts || []).map((c) =>
    `<li>Item ${c.item}, ${esc(c.channel)} in ${esc(c.queue)} (${esc(c.department)}), ${clock(c.at_ms)}: ${esc(c.outcome)}</li>`).join("");
  const cv = item.case_view;
  const timeline = cv ? cv.history.map((s) => `<li>${clock(s.at_ms)} · ${esc(s.department)} · item ${s.item.toString()}: ${esc(s.what)}</li>`).join("") : "";
  return `<dl class="facts">
      <dt>Status</dt><dd>${esc(item.status)}</dd>
      <dt>Channel</dt><dd>${esc(item.channel)}</dd>
      <dt>Department / queue</dt><dd>${esc(item.department)} / ${esc(item.queue)}</dd>
      <dt>Priority</dt><dd>${esc(item.priority)}${why.priority_reason ? ": " + esc(why.priority_reason) : ""} <span class="muted">(set by ${rule(why.prioritised_by)})</span></dd>
      <dt>Waited</dt><dd>${duration(item.wait_ms)}</dd>
      <dt>Due</dt><dd>${item.due_ms ? clock(item.due_ms) : "no due time"}</dd>
    </dl>
    ${attributes ? `<h5>Attributes</h5><dl class="facts">${attributes}</dl>` : ""}
    <section class="why"><h5>Why it came to me</h5>
      <p>Chosen by ${rule(why.matched_by)} from ${why.candidates_qualified ?? 0} qualified of ${why.candidates_considered ?? 0} candidates${why.score != null ? ", score " + Number(why.score).toFixed(2) : ""}.</p>
      ${escalations ? `<p>Escalations:</p><ul>${escalations}</ul>` : ""}
    </section>
    <section class="customer"><h5>Customer ${item.customer ? esc(item.customer) : "(none given)"}</h5>
      ${item.customer ? `<p>Contact ${item.contacts ?? 1} within the first-contact window (${duration(item.fcr_window_ms)}).</p>
      ${earlier ? `<p>Earlier contacts:</p><ul class="earlier-contacts">${earlier}</ul>` : "<p>No earlier contact in the window.</p>"}` : ""}
      ${cv ? `<h5>Case ${esc(cv.case)} (${cv.closed_ms ? "closed" : "open"}; departments ${esc(cv.departments.join(" → "))})</h5><ol class="case-timeline">${timeline}</ol>` : ""}
    </section>`;
}

function tickCountdowns() {
  for (const card of $$("#offers [data-item]")) {
    const expires = Number(card.dataset.expires);
    const p = $(".countdown", card);
    if (!expires) { p.textContent = ""; continue; }
    const left = expires - now();
    p.textContent = left > 0 ? "Expires in " + duration(left) : "Expiring…";
    p.classList.toggle("urgent", left < 10000);
  }
}

// ---- supervisor dashboard -------------------------------------------------

async function drawBoard() {
  const [board, alerts] = await Promise.all([api("GET", "/v1/board"), api("GET", "/v1/alerts")]);
  session.clockSkew = board.now_ms - Date.now();
  setHtml($("#queues tbody"), board.queues.map((q) => {
    const live = q.live || {};
    const sl = q.service_level;
    const missed = sl != null && sl < 0.8 ? ' class="missed"' : "";
    return `<tr data-queue="${esc(q.name)}"><th scope="row">${esc(q.name)}<br><span class="muted">${esc(q.department)}</span></th>
      <td class="waiting">${live.waiting ?? 0}</td><td>${duration(live.oldest_wait_ms)}</td><td class="offered-now">${live.offered ?? 0}</td><td>${live.overdue ?? 0}</td>
      <td class="offered">${q.offered}</td><td class="answered">${q.answered}</td><td class="abandoned">${q.abandoned}</td>
      <td${missed}>${percent(sl)} <span class="muted">in ${q.service_level_threshold_s} s</span></td>
      <td>${seconds(q.asa_s)}</td><td>${seconds(q.aht_s)}</td><td>${percent(q.before_due)}</td><td>${sparkline(q)}</td></tr>`;
  }).join(""));
  setHtml($("#groups tbody"), board.groups.map((g) => {
    const n = (k) => g.states[k] ?? 0;
    return `<tr><th scope="row">${esc(g.group)}</th><td>${n("available")}</td><td>${n("busy")}</td><td>${n("wrap-up")}</td><td>${n("away")}</td><td>${n("offline")}</td><td>${percent(g.occupancy)}</td></tr>`;
  }).join(""));
  setHtml($("#agents tbody"), board.agents.map((a) =>
    `<tr data-agent="${esc(a.name)}"><th scope="row">${esc(a.name)}</th><td>${esc(a.group)}</td><td class="state">${esc(a.state)}</td><td>${percent(a.occupancy)}</td></tr>`).join(""));
  const list = $("#alerts");
  setHtml(list, alerts.slice().reverse().slice(0, 50).map((a) =>
    `<li data-alert="${a.id}">${clock(a.at_ms)} · ${esc(a.department)} · item ${esc(a.item)}: ${esc(a.message)}
      ${a.acknowledged ? `<span class="muted">acknowledged by ${esc(a.acknowledged.by)}</span>` : `<button type="button" data-ack="${a.id}">Acknowledge alert ${a.id}</button>`}</li>`).join(""));
  $("#no-alerts").hidden = alerts.length > 0;
}

// Today's service level per interval as a small line chart.
function sparkline(q) {
  const points = q.today.filter((p) => p.service_level != null);
  if (points.length === 0) return '<span class="muted">no answers today</span>';
  const w = 120, h = 30;
  const xs = points.map((_, i) => (points.length === 1 ? w / 2 : (i * w) / (points.length - 1)));
  const path = points.map((p, i) => `${i ? "L" : "M"}${xs[i].toFixed(1)},${(h - p.service_level * h).toFixed(1)}`).join(" ");
  const last = points[points.length - 1].service_level;
  return `<svg class="spark" width="${w}" height="${h}" role="img" aria-label="Service level today, ${points.length} intervals, latest ${percent(last)}"><path d="${path}"/></svg>`;
}

// ---- rules (ops) -----------------------------------------------------------

const CHECKS = ["load", "contract", "fixtures", "smoke call"];

async function drawRules() {
  const plugins = await api("GET", "/v1/plugins");
  const container = $("#departments");
  const admin = session.me.role === "admin";
  const select = $("#audit-department");
  for (const d of plugins) {
    if (!$$("option", select).some((o) => o.value === d.department)) select.append(new Option(d.department, d.department));
    let card = container.querySelector(`[data-department="${CSS.escape(d.department)}"]`);
    if (!card) { card = departmentCard(d.department, admin); container.append(card); }
    const report = d.shadow ? await api("GET", `/v1/plugins/${encodeURIComponent(d.department)}/shadow`).catch(() => null) : null;
    const status = $(".status", card);
    const json = JSON.stringify([d, report]);
    if (status.dataset.json !== json) { status.dataset.json = json; status.innerHTML = departmentStatus(d, report, admin); }
    const actions = $(".shadow-actions", card);
    if (actions) actions.hidden = !d.shadow;
  }
  await drawBacktest(admin);
  await drawAudit();
}

// The latest backtest (one runs at a time), shown on its department's card;
// while it runs the page looks again every second.
let backtestPoll = null;
async function drawBacktest(admin) {
  const latest = await api("GET", "/v1/backtest").catch(() => null);
  for (const card of $$(".department")) {
    const out = $(".backtest-status", card);
    if (!out) continue;
    const mine = latest && latest.department === card.dataset.department;
    setHtml(out, mine ? backtestStatus(latest, admin) : "");
  }
  if (latest && latest.state === "running" && !backtestPoll) {
    backtestPoll = setTimeout(() => { backtestPoll = null; refresh(); }, 1000);
  }
}

function backtestStatus(b, admin) {
  const head = `Backtest ${b.id}: generation ${b.candidate_generation} against ${b.active_generation ?? "the built-in rules"}, last ${b.hours} h`;
  switch (b.state) {
    case "running":
      return `<p>${esc(head)}: running over ${b.arrivals ?? "…"} arrivals…</p>${admin ? `<button type="button" class="cancel-backtest">Cancel backtest</button>` : ""}`;
    case "done":
      return `<h4>${esc(head)}: done in ${duration(b.elapsed_ms)}</h4><pre class="backtest-table">${esc(b.report.table)}</pre>
        <button type="button" class="show-backtest-report">Show the report</button><iframe class="backtest-report" title="Backtest report" sandbox="allow-same-origin" hidden></iframe>`;
    case "failed":
      return `<p>${esc(head)}: failed: ${esc(b.error)}</p>`;
    default:
      return `<p>${esc(head)}: cancelled</p>`;
  }
}

// The HTML report needs the token, so it is fetched and shown in a frame.
async function showBacktestReport(card) {
  const headers = session.token ? { authorization: "Bearer " + session.token } : {};
  const response = await fetch("/v1/backtest/report", { headers });
  if (!response.ok) throw new ApiError(response.status, explain(response.status, await response.text()));
  const frame = $(".backtest-report", card);
  frame.srcdoc = await response.text();
  frame.hidden = false;
}

function departmentCard(department, admin) {
  const card = document.createElement("section");
  card.className = "card department";
  card.dataset.department = department;
  const id = department.replace(/[^a-zA-Z0-9_-]/g, "_");
  card.innerHTML = `<h3>Department ${esc(department)}</h3><div class="status"></div>
    ${admin ? `<form class="upload">
      <label for="component-${id}">Candidate component (.wasm) for ${esc(department)}</label>
      <input type="file" id="component-${id}" accept=".wasm,application/wasm" required>
      <div class="buttons"><button type="submit" value="activate">Upload and activate</button><button type="submit" value="shadow">Upload as shadow</button></div>
    </form>
    <div class="validation" aria-live="polite"></div>
    <div class="shadow-actions buttons" hidden><button type="button" class="promote">Promote shadow</button><button type="button" class="discard">Discard shadow</button>
      <form class="backtest"><label for="hours-${id}">Backtest the shadow over the last</label>
      <input type="number" id="hours-${id}" min="0.01" step="any" value="24" required> <span>hours of traffic</span>
      <button type="submit">Start backtest</button></form></div>` : ""}
    <div class="backtest-status" aria-live="polite"></div>`;
  card.addEventListener("click", (e) => {
    if (e.target.classList && e.target.classList.contains("show-backtest-report")) act(() => showBacktestReport(card));
  });
  if (!admin) return card;
  $(".backtest", card).addEventListener("submit", (e) => {
    e.preventDefault();
    const hours = Number($("input", e.target).value);
    act(() => api("POST", `/v1/plugins/${encodeURIComponent(department)}/backtest`, { hours }));
  });
  card.addEventListener("click", (e) => {
    if (e.target.classList && e.target.classList.contains("cancel-backtest")) act(() => api("DELETE", "/v1/backtest"));
  });
  const form = $(".upload", card);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = $("input[type=file]", form).files[0];
    if (!file) return;
    const shadow = e.submitter && e.submitter.value === "shadow";
    const path = `/v1/plugins/${encodeURIComponent(department)}` + (shadow ? "/shadow" : "");
    const out = $(".validation", card);
    out.innerHTML = `<p>Validating ${esc(file.name)}…</p>`;
    try {
      showError(null);
      const info = await api("POST", path, await file.arrayBuffer());
      out.innerHTML = validation(file.name, info.validation, null, shadow ? "now runs in shadow as generation " + info.generation : "is now active as generation " + info.generation);
    } catch (err) {
      if (err.body && err.body.check) out.innerHTML = validation(file.name, null, err.body, null);
      else { out.innerHTML = ""; showError(err); }
    }
    await refresh();
  });
  $(".promote", card).addEventListener("click", () => act(() => api("POST", `/v1/plugins/${encodeURIComponent(department)}/shadow/promote`)));
  $(".discard", card).addEventListener("click", () => act(() => api("DELETE", `/v1/plugins/${encodeURIComponent(department)}/shadow`)));
  card.addEventListener("click", (e) => {
    const generation = e.target.dataset && e.target.dataset.rollback;
    if (generation) act(() => api("POST", `/v1/plugins/${encodeURIComponent(department)}/rollback/${generation}`));
  });
  return card;
}

// The validation checks in order: passed up to the one that refused, that
// one failed with the daemon's words, the rest not run.
function validation(name, passed, refused, outcome) {
  const failedAt = refused ? CHECKS.indexOf(refused.check) : CHECKS.length;
  const items = CHECKS.map((check, i) => {
    let result, words = "";
    if (i < failedAt) { result = "passed"; if (check === "fixtures" && passed && passed.cases != null) words = ` (${passed.cases} cases, slowest ${passed.slowest_case_us} µs)`; }
    else if (i === failedAt) { result = "failed"; words = ": " + esc(refused.error); }
    else result = "not run";
    return `<li data-check="${check}" class="${result.replace(" ", "-")}">${esc(check)}: ${result}${words}</li>`;
  }).join("");
  const head = refused ? `${esc(name)} was refused; the active generation stays.` : `${esc(name)} passed validation and ${esc(outcome)}.`;
  return `<p class="verdict">${head}</p><ol class="checks" aria-label="Validation checks">${items}</ol>`;
}

function quantile(buckets, q) {
  const count = buckets.reduce((a, b) => a + b, 0);
  if (!count) return null;
  const rank = Math.max(1, Math.ceil(q * count));
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) { seen += buckets[i]; if (seen >= rank) return Math.pow(2, Math.min(i + 8, 63)); }
  return Math.pow(2, buckets.length + 7);
}
const micros = (ns) => (ns == null ? "–" : "< " + (ns / 1000).toFixed(ns < 10000 ? 2 : 0) + " µs");

function departmentStatus(d, report, admin) {
  const c = d.current;
  const active = d.kept.find((k) => k.active);
  const stats = c && c.stats;
  const calls = stats ? stats.calls.prioritise + stats.calls.escalate + stats.calls.match_agents : 0;
  const failures = stats ? Object.values(stats.failures).reduce((a, b) => a + b, 0) : 0;
  const breaker = stats ? stats.breaker.state + (stats.breaker.consecutive_failures ? ` (${stats.breaker.consecutive_failures} failures in a row)` : "") : "–";
  const hooks = c ? Object.entries(c.hooks).filter(([, on]) => on).map(([h]) => h).join(", ") : "";
  const kept = d.kept.map((k) => `<tr data-generation="${k.generation}"><td>${k.generation}</td><td><code>${esc(k.sha256.slice(0, 12))}</code></td>
      <td>${k.active ? "active" : k.shadow ? "shadow" : "kept"}</td><td>${esc(k.trigger.who)} (${esc(k.trigger.kind)})</td><td>${esc(k.loaded_at)}</td>
      <td>${admin && !k.active && !k.shadow ? `<button type="button" data-rollback="${k.generation}">Roll back to generation ${k.generation}</button>` : ""}</td></tr>`).join("");
  const hookReport = (name, h) => `<tr><th scope="row">${name}</th><td>${h.decisions}</td><td>${h.agreed}</td><td>${h.disagreed}</td><td>${h.failures}</td></tr>`;
  return `<dl class="facts">
      <dt>Rules</dt><dd class="rules-kind">${esc(d.rules)}${d.built_in_because ? ": " + esc(d.built_in_because) : ""}</dd>
      <dt>Active generation</dt><dd class="active-generation">${c ? c.generation : "none"}</dd>
      ${c ? `<dt>Plugin</dt><dd>${esc(c.plugin)} <code>${esc(c.sha256.slice(0, 16))}</code></dd><dt>Hooks</dt><dd>${esc(hooks)}</dd>` : ""}
      ${active ? `<dt>Loaded by</dt><dd>${esc(active.trigger.who)} at ${esc(active.loaded_at)}</dd>` : ""}
      <dt>Breaker</dt><dd>${esc(breaker)}</dd>
      <dt>Calls / failures</dt><dd>${calls} / ${failures}</dd>
      <dt>Latency p50 / p99</dt><dd>${stats ? micros(quantile(stats.latency.buckets, 0.5)) + " / " + micros(quantile(stats.latency.buckets, 0.99)) : "–"}</dd>
      <dt>Budget</dt><dd>${d.budget.budget_ms_per_s} ms/s, ${d.budget.fallback_decisions} fallback decisions</dd>
      <dt>Fixtures</dt><dd>${d.fixtures ? d.fixtures.cases + " cases" : "none"}</dd>
    </dl>
    ${report ? `<section class="shadow-report"><h4>Shadow: generation ${report.generation}, running ${duration(report.running_ms)}</h4>
      <table><thead><tr><th scope="col">Hook</th><th scope="col">Decisions</th><th scope="col">Agreed</th><th scope="col">Disagreed</th><th scope="col">Failures</th></tr></thead>
      <tbody>${hookReport("prioritise", report.prioritise)}${hookReport("escalate", report.escalate)}${hookReport("match-agents", report.match_agents)}</tbody></table>
      ${report.samples.length ? `<ul>${report.samples.slice(0, 5).map((s) => `<li>${esc(s)}</li>`).join("")}</ul>` : ""}</section>` : ""}
    <div class="scroll"><table class="kept"><caption>Kept generations</caption><thead><tr><th scope="col">Generation</th><th scope="col">SHA-256</th><th scope="col">Role</th><th scope="col">By</th><th scope="col">Loaded</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
      <tbody>${kept}</tbody></table></div>`;
}

async function drawAudit() {
  const params = new URLSearchParams({ limit: "50" });
  if ($("#audit-department").value) params.set("department", $("#audit-department").value);
  if ($("#audit-action").value) params.set("action", $("#audit-action").value);
  const entries = await api("GET", "/v1/audit?" + params);
  setHtml($("#audit tbody"), entries.slice().reverse().map((e) =>
    `<tr><td>${esc(e.at)}</td><td>${esc(e.department)}</td><td>${esc(e.action)}</td><td>${e.generation ?? "–"}</td><td>${esc(typeof e.result === "string" ? e.result : JSON.stringify(e.result))}</td><td>${esc(e.trigger.who)}</td><td>${esc(e.reason || "")}</td></tr>`).join(""));
}

// ---- wiring ----------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try { showError(null); await signIn($("#token").value.trim()); $("#token").value = ""; $("#main").focus(); }
    catch (err) { showError(err.status === 401 ? new Error("That token was not accepted.") : err); }
  });
  $("#signout").addEventListener("click", () => signOut());
  $$("[data-presence]").forEach((b) => b.addEventListener("click", () =>
    act(() => api("POST", `/v1/agents/${encodeURIComponent(session.me.agent)}/state`, { state: b.dataset.presence }))));
  // One listener for every alert's button, however often the list is redrawn.
  $("#alerts").addEventListener("click", (e) => {
    const id = e.target.dataset && e.target.dataset.ack;
    if (id) act(() => api("POST", `/v1/alerts/${id}/ack`));
  });
  $("#audit-filter").addEventListener("submit", (e) => { e.preventDefault(); act(drawAudit); });
  window.addEventListener("hashchange", route);
  setInterval(tickCountdowns, 1000);
  if (session.token) signIn(session.token).catch((e) => signOut(e.message));
});
