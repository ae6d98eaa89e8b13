// The monitoring-room console: sign-in, the live alert queue, and the incident and case views.
import { Api, ApiError, qs, tokenClaims } from "./api.js";
import { $, $$, h, show } from "./dom.js";
import { chooseLanguage, fmtAgo, fmtDuration, fmtTime, language, setLanguage, t, word } from "./i18n.js";
import { Incident } from "./incident.js";
import { causeText, floodOf, RoomLoad } from "./load.js";
import { CaseSetup } from "./setup.js";
import { WorkLists } from "./worklists.js";

const TOKEN_KEY = "afstand.token";
const DEADLINE_KEY = "afstand.ackDeadlineS";
const MUTE_KEY = "afstand.muted";
const RESOLVED_SHOWN = 50;
const LEVEL_RANK = { violation: 2, warning: 1, none: 0 };
const CONFIDENCE_RANK = { confirmed: 2, probable: 1, possible: 0 };
const STATUS_RANK = { open: 0, acknowledged: 1, resolved: 2 };
const FLOOD_WINDOW_MS = 60000;

const state = {
  api: null,
  token: null,
  config: { tile_url: null, ack_deadline_s: 60, flood_per_min: 20, outcomes: [], message_templates: [], features: {} },
  alerts: new Map(),
  lastSeq: 0,
  baselineSeq: 0,
  ws: null,
  wsAttempts: 0,
  reconnectTimer: null,
  tickTimer: null,
  flashUntil: new Map(),
  deadlineS: 60,
  muted: localStorage.getItem(MUTE_KEY) === "1",
  audio: null,
  alarms: 0,
  incident: null,
  renderPending: false,
  holdUntil: 0,
  floodKey: "",
};

// For the end-to-end tests and for support: a read-only look at the console's state, and a way to drop the stream.
window.afstandConsole = {
  get lastSeq() { return state.lastSeq; },
  get alarms() { return state.alarms; },
  get connected() { return !!state.ws && state.ws.readyState === WebSocket.OPEN; },
  /** Where a place is on the zone drawing map, in page pixels (for the tests' mouse, which draws like a person). */
  zonePoint(lat, lon) {
    const map = state.setup && state.setup.map;
    if (!map) return null;
    const p = map.latLngToContainerPoint([lat, lon]);
    const r = map.getContainer().getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y, zoom: map.getZoom() };
  },
  /** Close the stream as a network failure would, and stay off it for ``holdMs`` before reconnecting. */
  dropStream(holdMs = 0) {
    state.holdUntil = Date.now() + holdMs;
    if (state.ws) state.ws.close(4000, "dropped");
  },
};

// ---------------------------------------------------------------- start

async function boot() {
  await setLanguage(chooseLanguage());
  updateLanguageButton();
  try {
    const r = await fetch("/console/config.json", { cache: "no-store" });
    if (r.ok) state.config = { ...state.config, ...(await r.json()) };
  } catch { /* defaults */ }
  state.deadlineS = Number(localStorage.getItem(DEADLINE_KEY)) || state.config.ack_deadline_s || 60;
  $("#deadline").value = state.deadlineS;
  wireChrome();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    await signIn(token, { silent: true });
  } else {
    showSignIn();
  }
  document.documentElement.dataset.ready = "1";
}

function wireChrome() {
  $("#signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    unlockAudio();
    await signIn($("#token-input").value.trim());
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#lang-toggle").addEventListener("click", async () => {
    await setLanguage(language() === "nl" ? "en" : "nl", true);
    updateLanguageButton();
    updateSoundButton();
    renderQueue();
    if (state.incident) state.incident.rerender();
  });
  $("#deadline").addEventListener("change", () => {
    const v = Math.max(5, Math.min(3600, Number($("#deadline").value) || 60));
    state.deadlineS = v;
    $("#deadline").value = v;
    localStorage.setItem(DEADLINE_KEY, String(v));
    updateTimes();
  });
  $("#sound-toggle").addEventListener("click", () => {
    state.muted = !state.muted;
    localStorage.setItem(MUTE_KEY, state.muted ? "1" : "0");
    updateSoundButton();
    if (!state.muted) unlockAudio();
  });
  $("#show-resolved").addEventListener("change", () => renderQueue());
  for (const b of $$("#views .view-tab")) b.addEventListener("click", () => showView(b.dataset.view));
  document.addEventListener("click", unlockAudio);
  document.addEventListener("keydown", unlockAudio);
}

function updateLanguageButton() {
  const b = $("#lang-toggle");
  b.textContent = language() === "nl" ? "EN" : "NL";
  b.title = t("settings.language");
}

function updateSoundButton() {
  const b = $("#sound-toggle");
  b.textContent = t(state.muted ? "settings.sound_label_off" : "settings.sound_label_on");
  b.classList.toggle("muted", state.muted);
  b.title = t(state.muted ? "settings.sound_off" : "settings.sound_on");
  b.setAttribute("aria-pressed", state.muted ? "false" : "true");
}

// ---------------------------------------------------------------- sign-in

function showSignIn(message) {
  show($("#signin"), true);
  show($("#app"), false);
  for (const id of ["#status-area", "#deadline-setting", "#sound-toggle", "#who", "#sign-out", "#views", "#setup", "#worklists",
    "#load", "#flood-banner"]) show($(id), false);
  state.floodKey = "";
  const err = $("#signin-error");
  err.textContent = message || "";
  show(err, !!message);
}

async function signIn(token, { silent = false } = {}) {
  if (!token) return;
  const api = new Api(token, { onUnauthorized: () => signOut(t("signin.expired")) });
  try {
    await api.get("/v1/alerts?" + qs({ limit: 1 }));
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    const msg = e instanceof ApiError && e.status === 403 ? t("signin.forbidden")
      : e instanceof ApiError && e.status === 401 ? t("signin.rejected") : t("signin.failed");
    showSignIn(silent && e.status === 401 ? t("signin.expired") : msg);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.api = api;
  state.token = token;
  const claims = tokenClaims(token);
  $("#who").textContent = `${claims.sub || "?"} · ${word("role", claims.role)}`;
  $("#token-input").value = "";
  show($("#signin"), false);
  show($("#app"), true);
  for (const id of ["#status-area", "#deadline-setting", "#sound-toggle", "#who", "#sign-out", "#views"]) show($(id), true);
  for (const b of $$("#views [data-roles]")) show(b, b.dataset.roles.split(" ").includes(claims.role));
  updateSoundButton();
  state.setup = new CaseSetup({ api, config: state.config, toast });
  // Editors get the case to work on; everyone else on the work lists (contact persons) the same view, read only.
  const mayEdit = ["admin", "case_director"].includes(claims.role);
  $("#setup").classList.toggle("read-only", !mayEdit);
  state.worklists = new WorkLists({ api, onOpenCase: (id) => { showView("setup"); state.setup.open(id); } });
  state.load = new RoomLoad({ api, deadline: () => state.deadlineS });
  showView("room");
  state.incident = new Incident({ api, config: state.config, onChanged: (alert) => { upsert(alert); scheduleRender(); },
    onClose: () => { state.incident = null; renderQueue(); } });
  await loadQueue();
  connectStream();
  clearInterval(state.tickTimer);
  state.tickTimer = setInterval(updateTimes, 1000);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.tickTimer);
  clearTimeout(state.reconnectTimer);
  if (state.ws) { state.ws.onclose = null; state.ws.close(1000); state.ws = null; }
  if (state.incident) state.incident.close();
  if (state.load) state.load.stop();
  state.api = null;
  state.token = null;
  state.alerts.clear();
  state.lastSeq = 0;
  $("#queue-body").replaceChildren();
  showSignIn(message);
}

/** The monitoring room (queue and incident) or another workspace; the stream keeps running behind either. */
function showView(name) {
  for (const b of $$("#views .view-tab")) {
    const on = b.dataset.view === name;
    b.classList.toggle("active", on);
    b.setAttribute("aria-pressed", on ? "true" : "false");
  }
  show($("#app"), name === "room");
  show($("#setup"), name === "setup");
  show($("#worklists"), name === "worklists");
  show($("#load"), name === "load");
  document.documentElement.dataset.view = name;
  if (name === "setup" && state.setup) state.setup.show();
  if (name === "worklists" && state.worklists) state.worklists.show();
  if (name === "load" && state.load) state.load.show();
}

// ---------------------------------------------------------------- queue data

function upsert(alert) {
  if (!alert || !alert.id) return;
  const known = state.alerts.get(alert.id);
  if (!known || (alert.seq ?? 0) >= (known.seq ?? 0)) state.alerts.set(alert.id, { ...known, ...alert });
}

async function loadAll(status) {
  let cursor = null;
  for (let page = 0; page < 10; page++) {
    const data = await state.api.get("/v1/alerts?" + qs({ status, limit: 500, cursor }));
    data.items.forEach(upsert);
    if (!data.next_cursor) return;
    cursor = data.next_cursor;
  }
}

/** The newest alerts in one read (the first carries the newest seq: the stream resumes after it), then every
 *  open and acknowledged alert, which may be older. Later reads only replace older states. */
async function loadQueue() {
  try {
    const recent = await state.api.get("/v1/alerts?" + qs({ limit: 500 }));
    recent.items.forEach(upsert);
    state.baselineSeq = recent.items.length ? recent.items[0].seq : 0;
    state.lastSeq = Math.max(state.lastSeq, state.baselineSeq);
    await loadAll("open");
    await loadAll("acknowledged");
  } catch (e) {
    toast(t("queue.load_failed", { detail: e.message }), true);
  }
  renderQueue();
}

// ---------------------------------------------------------------- the stream

function setConn(stateName) {
  const c = $("#conn");
  c.dataset.state = stateName;
  c.className = `conn conn-${stateName}`;
  c.textContent = t(`conn.${stateName}`);
}

function connectStream() {
  clearTimeout(state.reconnectTimer);
  if (!state.token) return;
  setConn(state.wsAttempts ? "reconnecting" : "connecting");
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${proto}//${location.host}/v1/alerts/stream?${qs({ after: state.lastSeq, token: state.token })}`;
  let ws;
  try {
    ws = new WebSocket(url);
  } catch {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  ws.onopen = () => { state.wsAttempts = 0; setConn("live"); };
  ws.onmessage = (m) => {
    try { handleItem(JSON.parse(m.data)); } catch (e) { console.error("stream item", e); }
  };
  ws.onclose = (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (e.code === 4401) { signOut(t("signin.expired")); return; }
    if (e.code === 4403) { setConn("forbidden"); return; }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  setConn("reconnecting");
  state.wsAttempts += 1;
  const delay = Math.max(Math.min(1000 * 2 ** (state.wsAttempts - 1), 15000), (state.holdUntil || 0) - Date.now());
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(connectStream, delay);
}

function handleItem(item) {
  if (!item || typeof item.seq !== "number" || item.seq <= state.lastSeq) return; // seen already
  state.lastSeq = item.seq;
  upsert(item.alert);
  const ch = item.change || {};
  if (ch.level === "violation" && (ch.change === "opened" || ch.change === "escalated") && !ch.late
      && item.alert && item.alert.status !== "resolved") {
    alarm(item.alert.id);
  }
  if (state.incident) state.incident.streamed(item);
  scheduleRender();
}

// ---------------------------------------------------------------- sound and flash

function unlockAudio() {
  if (!state.audio) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try { state.audio = new Ctx(); } catch { return; }
  }
  if (state.audio.state === "suspended") state.audio.resume().catch(() => {});
  show($("#sound-blocked"), false);
}

function beep() {
  if (state.muted) return;
  if (!state.audio) unlockAudio();
  const ctx = state.audio;
  if (!ctx) return;
  if (ctx.state !== "running") {
    ctx.resume().catch(() => {});
    if (ctx.state === "suspended") show($("#sound-blocked"), true);
  }
  const t0 = ctx.currentTime + 0.01;
  for (let i = 0; i < 3; i++) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "square";
    osc.frequency.value = i % 2 ? 660 : 880;
    gain.gain.setValueAtTime(0.0001, t0 + i * 0.25);
    gain.gain.exponentialRampToValueAtTime(0.2, t0 + i * 0.25 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.25 + 0.2);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t0 + i * 0.25);
    osc.stop(t0 + i * 0.25 + 0.22);
  }
}

function alarm(alertId) {
  state.alarms += 1;
  document.documentElement.dataset.alarms = String(state.alarms);
  state.flashUntil.set(alertId, Date.now() + 6000);
  beep();
  const bar = $(".topbar");
  bar.classList.remove("flash");
  void bar.offsetWidth; // restart the animation
  bar.classList.add("flash");
  setTimeout(() => bar.classList.remove("flash"), 6000);
}

// ---------------------------------------------------------------- rendering the queue

function compareAlerts(a, b) {
  return (STATUS_RANK[a.status] ?? 3) - (STATUS_RANK[b.status] ?? 3)
    || (LEVEL_RANK[b.level] ?? 0) - (LEVEL_RANK[a.level] ?? 0)
    || (CONFIDENCE_RANK[b.confidence] ?? 0) - (CONFIDENCE_RANK[a.confidence] ?? 0)
    || Date.parse(a.opened_at) - Date.parse(b.opened_at) // the one waiting longest first
    || String(a.id).localeCompare(String(b.id));
}

function isOverdue(a, now) {
  if (a.status !== "open") return false;
  const since = Date.parse(a.raised_at || a.opened_at);
  return now - since > state.deadlineS * 1000;
}

function scheduleRender() {
  if (state.renderPending) return;
  state.renderPending = true;
  requestAnimationFrame(() => { state.renderPending = false; renderQueue(); });
}

function renderQueue() {
  if (!state.api) return;
  const all = Array.from(state.alerts.values()).sort(compareAlerts);
  const active = all.filter((a) => a.status !== "resolved");
  const resolved = $("#show-resolved").checked
    ? all.filter((a) => a.status === "resolved")
      .sort((a, b) => (b.seq ?? 0) - (a.seq ?? 0)).slice(0, RESOLVED_SHOWN)
    : [];
  const rows = active.concat(resolved).map(row);
  $("#queue-body").replaceChildren(...rows);
  show($("#queue-empty"), rows.length === 0);
  updateTimes();
}

function row(a) {
  const selected = state.incident && state.incident.alertId === a.id;
  const tr = h("tr", {
    class: `alert-row status-${a.status} level-${a.level}${selected ? " selected" : ""}`,
    tabindex: 0,
    dataset: { alertId: a.id, status: a.status, level: a.level, kind: a.kind, caseReference: a.case_reference || "" },
    onclick: () => openIncident(a.id),
    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openIncident(a.id); } },
  },
  h("td", {}, h("span", { class: `badge status status-${a.status}` }, word("status", a.status)),
    h("span", { class: "badge overdue", hidden: true, dataset: { role: "overdue" } }, t("queue.overdue")),
    a.cleared_at ? h("span", { class: "badge cleared", title: t("queue.cleared_title") }, t("queue.cleared")) : null,
    a.late ? h("span", { class: "badge late", title: t("evidence.late_help") }, t("queue.late")) : null,
    !a.late && a.late_fix_at && a.max_level === "violation"
      ? h("span", { class: "badge late", title: t("queue.late_violation_help") }, t("queue.late_violation")) : null),
  h("td", { class: "case-ref" }, a.case_reference || a.case_id),
  h("td", {}, word("kind", a.kind)),
  h("td", {}, h("span", { class: `badge level level-${a.level}` }, word("level", a.level))),
  h("td", {}, h("span", { class: `badge confidence confidence-${a.confidence}` }, word("confidence", a.confidence))),
  h("td", { class: "opened" }, h("span", {}, fmtTime(a.opened_at)), " ",
    h("span", { class: "age", dataset: { role: "age" } })),
  h("td", { class: "timer", dataset: { role: "timer" } }));
  return tr;
}

function updateTimes() {
  if (!state.api) return;
  const now = state.api.now();
  let open = 0, overdue = 0;
  for (const a of state.alerts.values()) {
    if (a.status === "open") open += 1;
    if (isOverdue(a, now)) overdue += 1;
  }
  renderFlood(now);
  $("#count-open").textContent = String(open);
  $("#count-overdue").textContent = String(overdue);
  $(".overdue-counter").classList.toggle("alarm", overdue > 0);
  const wall = Date.now();
  for (const tr of $$("#queue-body tr")) {
    const a = state.alerts.get(tr.dataset.alertId);
    if (!a) continue;
    const opened = Date.parse(a.opened_at);
    tr.querySelector('[data-role="age"]').textContent = fmtAgo(now - opened);
    tr.querySelector('[data-role="timer"]').textContent = a.status === "resolved" ? "—" : fmtDuration(now - opened);
    const late = isOverdue(a, now);
    tr.classList.toggle("overdue", late);
    tr.querySelector('[data-role="overdue"]').hidden = !late;
    const until = state.flashUntil.get(a.id);
    tr.classList.toggle("flash", !!until && until > wall);
    if (until && until <= wall) state.flashUntil.delete(a.id);
  }
}

// ---------------------------------------------------------------- flood

/** The banner when alerts arrive faster than the set rate: the flood by cause, and above it the open alerts that
 *  may mean someone is in danger, each one click from its incident. Redrawn only when its content changes. */
function renderFlood(now) {
  const flood = floodOf(Array.from(state.alerts.values()), now, FLOOD_WINDOW_MS, state.config.flood_per_min);
  const key = flood ? JSON.stringify([flood.count, flood.causes, flood.real.map((a) => a.id + a.status)]) : "";
  if (key === state.floodKey) return;
  state.floodKey = key;
  show($("#flood-banner"), !!flood);
  document.documentElement.dataset.flood = flood ? String(flood.count) : "";
  if (!flood) return;
  $("#flood-title").textContent = t("flood.title", { n: flood.count });
  $("#flood-causes").replaceChildren(...flood.causes.map(([cause, n]) => h("li", { dataset: { cause } },
    h("strong", {}, `${n} ×`), ` ${causeText(cause)}`)));
  show($("#flood-real-block"), flood.real.length > 0);
  $("#flood-real").replaceChildren(...flood.real.sort(compareAlerts).slice(0, 8).map((a) => h("li", {},
    h("button", { type: "button", class: "link", dataset: { alertId: a.id }, onclick: () => { showView("room"); openIncident(a.id); } },
      `${word("kind", a.kind)} · ${word("level", a.level)} · ${a.case_reference || ""}`))));
}

// ---------------------------------------------------------------- incident

function openIncident(alertId) {
  const dialog = $("#reason-dialog");
  $("#reason-select").value = "";
  const onClose = async () => {
    dialog.removeEventListener("close", onClose);
    const reason = $("#reason-select").value;
    if (dialog.returnValue !== "open" || !reason) return;
    await state.incident.open(alertId, reason);
    renderQueue();
  };
  dialog.returnValue = "";
  dialog.addEventListener("close", onClose);
  dialog.showModal();
}

function wireReasonDialog() {
  const dialog = $("#reason-dialog");
  $("#reason-cancel").addEventListener("click", () => dialog.close("cancel"));
  $("#reason-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (!$("#reason-select").value) { $("#reason-select").focus(); return; }
    dialog.close("open");
  });
}

// ---------------------------------------------------------------- toast

export function toast(message, isError = false) {
  const el = $("#toast");
  el.textContent = message;
  el.classList.toggle("error", isError);
  show(el, true);
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => show(el, false), 5000);
}

wireReasonDialog();
boot().catch((e) => {
  console.error(e);
  document.documentElement.dataset.ready = "error";
});
