// The incident view (map, evidence, actions, history) and the case view (orders, zones, devices, contact persons).
import { ApiError, qs } from "./api.js";
import { $, $$, h, show } from "./dom.js";
import { fmtAgo, fmtDate, fmtDateTime, fmtMetres, fmtTime, t, word } from "./i18n.js";
import { IncidentMap, haversine } from "./map.js";
import { findingsList, scheduleText } from "./setup.js";

// The reason goes into the audit log in one language, whatever the operator reads the page in.
const REASONS = {
  handling_alert: "handling this alert",
  false_alarm_check: "checking for a false alarm",
  police_request: "request from the police",
  supervisor_review: "supervisor review",
};
const BEFORE_MS = 10 * 60 * 1000;
const AFTER_MS = 5 * 60 * 1000;
const MAX_WINDOW_MS = 6 * 3600 * 1000;
const STALE_CONTACT_MS = 5 * 60 * 1000;

/** Fixes from the track endpoint, whatever its exact shape: a list, {items|fixes|positions|features}, or
 *  {offender: [...], victim: [...]}; each with lat/lon (or GeoJSON coordinates), party or role. */
export function normalizeFixes(data) {
  const out = [];
  const push = (f, party) => {
    if (!f || typeof f !== "object") return;
    const p = f.properties ? { ...f, ...f.properties } : f;
    let lat = p.lat ?? p.latitude, lon = p.lon ?? p.lng ?? p.longitude;
    if ((lat === undefined || lon === undefined) && f.geometry && Array.isArray(f.geometry.coordinates)) {
      [lon, lat] = f.geometry.coordinates;
    }
    if (typeof lat !== "number" || typeof lon !== "number") return;
    const role = String(party || p.party || p.role || p.subject || "");
    out.push({
      id: String(p.seq ?? p.fix_id ?? p.id ?? ""),
      party: role.startsWith("victim") ? "victim" : role.startsWith("offender") ? "offender" : "other",
      lat, lon,
      accuracy_m: Number(p.accuracy_m ?? p.accuracy ?? 0) || 0,
      recorded_at: p.recorded_at ?? p.time ?? p.at ?? null,
    });
  };
  const walk = (v, party) => {
    if (Array.isArray(v)) v.forEach((f) => push(f, party));
    else if (v && typeof v === "object") {
      for (const key of ["items", "fixes", "positions", "features"]) if (Array.isArray(v[key])) v[key].forEach((f) => push(f, party));
    }
  };
  if (Array.isArray(data)) walk(data);
  else if (data && typeof data === "object") {
    walk(data);
    for (const party of ["offender", "victim"]) if (data[party]) walk(data[party], party);
    if (data.parties && typeof data.parties === "object") {
      for (const [party, v] of Object.entries(data.parties)) walk(v, party);
    }
  }
  return out;
}

function dd(term, ...value) {
  return [h("dt", {}, term), h("dd", {}, ...value)];
}

export class Incident {
  constructor({ api, config, onChanged, onClose }) {
    this.api = api;
    this.config = config;
    this.features = config.features || {};
    this.onChanged = onChanged;
    this.onClose = onClose;
    this.alertId = null;
    this.alert = null;
    this.caseDetail = null;
    this.assignments = null;
    this.fixes = [];
    this.trackState = "idle";
    this.map = null;
    this.refreshTimer = null;
    this.escalateArmed = false;
    this._wire();
  }

  _wire() {
    $("#incident-close").addEventListener("click", () => this.close());
    $$("#incident .tab").forEach((tab) => tab.addEventListener("click", () => this.tab(tab.dataset.tab)));
    $('[data-action="acknowledge"]').addEventListener("click", () => this.act("acknowledge"));
    $('[data-action="escalate-confirm"]').addEventListener("click", () => this.act("escalate-confirm"));
    for (const form of $$("#incident form[data-form]")) {
      form.addEventListener("submit", (e) => { e.preventDefault(); this.act(form.dataset.form); });
    }
    $("#track-refresh").addEventListener("click", () => this.loadTrack().then(() => this.drawMap()));
    $("#message-template").addEventListener("change", () => {
      $("#message-text").disabled = $("#message-template").value !== "";
    });
  }

  tab(name) {
    $$("#incident .tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
    show($("#incident-pane"), name === "incident-pane");
    show($("#case-pane"), name === "case-pane");
    if (name === "incident-pane" && this.map) this.map.render();
  }

  async open(alertId, reasonCode) {
    this.alertId = alertId;
    this.reasonCode = reasonCode;
    this.alert = null;
    this.caseDetail = null;
    this.assignments = null;
    this.fixes = [];
    this.trackState = "loading";
    this.escalateArmed = false;
    show($("#incident"), true);
    document.body.classList.add("incident-open");
    this.tab("incident-pane");
    this.error(null);
    $("#action-status").textContent = "";
    for (const id of ["#note-text", "#message-text", "#escalate-reason", "#resolve-note"]) $(id).value = "";
    $("#message-urgent").checked = false;
    this.fillSelects();
    if (!this.map) this.map = new IncidentMap($("#map"), { tileUrl: this.config.tile_url });
    try {
      this.alert = await this.api.get(`/v1/alerts/${alertId}`);
    } catch (e) {
      this.error(t("incident.load_failed", { detail: e.message }));
      return;
    }
    this.renderAlert();
    await Promise.all([this.loadCase(), this.loadTrack(), this.loadAssignments()]);
    this.renderAlert();
    this.renderCase();
    this.drawMap();
    $("#incident").scrollIntoView({ block: "start" });
  }

  close() {
    clearTimeout(this.refreshTimer);
    this.alertId = null;
    show($("#incident"), false);
    document.body.classList.remove("incident-open");
    if (this.onClose) this.onClose();
  }

  error(message) {
    const el = $("#incident-error");
    el.textContent = message || "";
    show(el, !!message);
  }

  rerender() {
    if (!this.alert) return;
    this.fillSelects();
    this.renderAlert();
    this.renderCase();
    if (this.map) this.map.render();
    this.renderTrackState();
  }

  /** A stream item arrived; if it concerns the open alert, reread it (the alert only, not the positions). */
  streamed(item) {
    if (!this.alertId || !item.alert || item.alert.id !== this.alertId) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refreshAlert(), 250);
  }

  async refreshAlert() {
    if (!this.alertId) return;
    try {
      const alert = await this.api.get(`/v1/alerts/${this.alertId}`);
      if (alert.id !== this.alertId) return;
      this.alert = alert;
      this.renderAlert();
      this.drawMap(true);
    } catch { /* the next change retries */ }
  }

  async loadCase() {
    try {
      this.caseDetail = await this.api.get(`/v1/cases/${this.alert.case_id}`);
    } catch (e) {
      this.caseDetail = null;
      this.caseError = e instanceof ApiError && (e.status === 403 || e.status === 404) ? t("case.no_access") : e.message;
    }
  }

  async loadAssignments() {
    if (!this.features.assignments) { this.assignments = null; return; }
    try {
      this.assignments = (await this.api.get(`/v1/cases/${this.alert.case_id}/assignments`)).items || [];
    } catch {
      this.assignments = null;
    }
  }

  /** The audited read: both parties' fixes around the alert, with the reason the operator picked. */
  async loadTrack() {
    if (!this.features.track) {
      this.trackState = "unavailable";
      this.renderTrackState();
      return;
    }
    const a = this.alert;
    const opened = Date.parse(a.opened_at);
    const end = a.cleared_at ? Date.parse(a.cleared_at) + AFTER_MS : this.api.now() + 60 * 1000;
    const from = new Date(opened - BEFORE_MS).toISOString();
    const to = new Date(Math.min(end, opened + MAX_WINDOW_MS)).toISOString();
    const reason = `${REASONS[this.reasonCode] || this.reasonCode} (alert ${a.id}, monitoring-room console)`;
    this.trackState = "loading";
    this.renderTrackState();
    try {
      const data = await this.api.get(`/v1/cases/${a.case_id}/track?` + qs({ from, to, reason }));
      this.fixes = normalizeFixes(data);
      this.trackState = this.fixes.length ? "loaded" : "empty";
    } catch (e) {
      this.fixes = [];
      this.trackState = e instanceof ApiError && e.status === 403 ? "forbidden"
        : e instanceof ApiError && (e.status === 404 || e.status === 405) && !(e.problem && /case/i.test(e.problem.detail || ""))
          ? "unavailable" : "failed";
      this.trackError = e.message;
    }
    this.renderTrackState();
  }

  renderTrackState() {
    const el = $("#track-status");
    const messages = {
      unavailable: t("track.unavailable"), forbidden: t("track.forbidden"), empty: t("track.empty"),
      failed: t("track.failed", { detail: this.trackError || "" }), loading: t("track.loading"),
    };
    const text = messages[this.trackState];
    el.textContent = text || "";
    el.dataset.state = this.trackState;
    show(el, !!text);
    show($("#track-refresh"), !!this.features.track && this.trackState !== "loading");
  }

  drawMap(keepView = false) {
    if (!this.map || !this.alert) return;
    const zones = (this.caseDetail && this.caseDetail.zones) || [];
    const evidence = new Set((this.alert.evidence || []).map(String));
    let rings = null;
    const prox = this.caseDetail && this.caseDetail.proximity;
    if (this.alert.kind === "proximity" && prox) {
      const victim = this.anchorVictimFix();
      if (victim) rings = { center: victim, radii: [{ kind: "warn", m: prox.warn_m }, { kind: "alert", m: prox.alert_m }] };
    }
    // Frame the incident first: the proving fixes, both parties' fixes around the opening, the zone it concerns.
    const at = Date.parse(this.alert.opened_at);
    const near = this.fixes.filter((f) => evidence.has(f.id) || Math.abs(Date.parse(f.recorded_at) - at) <= 2 * 60 * 1000);
    const focus = near.length || this.alert.zone_id
      ? { fixes: near, zoneIds: new Set(this.alert.zone_id ? [String(this.alert.zone_id)] : []) } : null;
    this.map.setData({ zones, fixes: this.fixes, evidence, alertZoneId: this.alert.zone_id, rings, focus }, { keepView });
  }

  /** The victim's fix the contact ban's rings are drawn around: a proving one, else the one nearest the opening. */
  anchorVictimFix() {
    const evidence = new Set((this.alert.evidence || []).map(String));
    const victims = this.fixes.filter((f) => f.party === "victim");
    const proving = victims.filter((f) => evidence.has(f.id));
    const pool = proving.length ? proving : victims;
    if (!pool.length) return null;
    const at = Date.parse(this.alert.opened_at);
    return pool.reduce((best, f) => (Math.abs(Date.parse(f.recorded_at) - at) < Math.abs(Date.parse(best.recorded_at) - at) ? f : best));
  }

  fillSelects() {
    const outcome = $("#resolve-outcome");
    const keep = outcome.value;
    outcome.replaceChildren(h("option", { value: "" }, t("actions.choose_outcome")),
      ...(this.config.outcomes || []).map((o) => h("option", { value: o }, word("outcome", o))));
    outcome.value = keep;
    const template = $("#message-template");
    const keepT = template.value;
    template.replaceChildren(h("option", { value: "" }, t("actions.free_text")),
      ...(this.config.message_templates || []).map((m) => h("option", { value: m }, word("template", m))));
    template.value = keepT;
    $("#message-text").disabled = template.value !== "";
  }

  // ------------------------------------------------------------ the alert: header, evidence, actions, history

  renderAlert() {
    const a = this.alert;
    if (!a) return;
    $("#incident-title").textContent = t("incident.title", { kind: word("kind", a.kind), case: a.case_reference || a.case_id });
    $("#incident").dataset.alertId = a.id;
    $("#incident").dataset.status = a.status;
    this.renderEvidence();
    this.renderActions();
    this.renderHistory();
  }

  zoneName(zoneId) {
    const z = ((this.caseDetail && this.caseDetail.zones) || []).find((x) => String(x.id) === String(zoneId));
    return z ? `${z.name} (${word("zone_kind", z.kind)})` : zoneId;
  }

  renderEvidence() {
    const a = this.alert;
    const items = [
      dd(t("evidence.status"), h("span", { class: `badge status status-${a.status}` }, word("status", a.status)),
        a.outcome ? ` · ${word("outcome", a.outcome)}` : ""),
      dd(t("evidence.kind"), word("kind", a.kind)),
      dd(t("evidence.level"), h("span", { class: `badge level level-${a.level}` }, word("level", a.level)),
        a.max_level && a.max_level !== a.level ? ` (${t("evidence.max_level")}: ${word("level", a.max_level)})` : ""),
      dd(t("evidence.confidence"), h("span", { class: `badge confidence confidence-${a.confidence}` }, word("confidence", a.confidence))),
      dd(t("evidence.min_distance"), h("span", { dataset: { role: "min-distance" } }, fmtMetres(a.min_distance_m))),
      dd(t("evidence.late"), a.late ? h("span", { class: "badge late" }, t("evidence.late_yes")) : t("evidence.late_no"),
        a.late ? h("div", { class: "hint" }, t("evidence.late_help")) : null),
      dd(t("evidence.opened"), `${fmtDateTime(a.opened_at)} (${t("evidence.fix_time")})`),
      dd(t("evidence.raised"), `${fmtDateTime(a.raised_at)} (${t("evidence.server_time")})`),
    ];
    if (a.cleared_at) items.push(dd(t("evidence.cleared"), `${fmtDateTime(a.cleared_at)}${a.clear_reason ? ` · ${word("clear_reason", a.clear_reason)}` : ""}`));
    if (a.zone_id) items.push(dd(t("evidence.zone"), this.zoneName(a.zone_id)));
    if (this.caseDetail && this.caseDetail.proximity && a.kind === "proximity") {
      items.push(dd(t("evidence.rings"), `${fmtMetres(this.caseDetail.proximity.warn_m)} / ${fmtMetres(this.caseDetail.proximity.alert_m)}`));
    }
    if (a.detail && Object.keys(a.detail).length) items.push(dd(t("evidence.detail"), detailText(a.detail)));
    $("#evidence").replaceChildren(...items.flat());

    const byId = new Map(this.fixes.map((f) => [f.id, f]));
    const ids = (a.evidence || []).map(String);
    const victims = ids.map((id) => byId.get(id)).filter((f) => f && f.party === "victim");
    const list = ids.map((id) => {
      const f = byId.get(id);
      if (!f) return h("li", { class: "fix-item", dataset: { fixId: id } }, t("evidence.fix_unknown", { id }));
      let distance = null;
      if (f.party === "offender" && victims.length) {
        const v = victims.reduce((best, x) => (Math.abs(Date.parse(x.recorded_at) - Date.parse(f.recorded_at))
          < Math.abs(Date.parse(best.recorded_at) - Date.parse(f.recorded_at)) ? x : best));
        distance = haversine(f, v);
      }
      return h("li", { class: `fix-item ${f.party}`, dataset: { fixId: id } },
        h("span", { class: `dot ${f.party}` }), ` ${word("party", f.party)} · ${fmtTime(f.recorded_at)} · ±${Math.round(f.accuracy_m)} m`,
        distance !== null ? ` · ${t("evidence.distance_to_victim", { d: fmtMetres(distance) })}` : "");
    });
    if (!list.length) list.push(h("li", { class: "empty" }, t("evidence.no_fixes")));
    $("#evidence-fixes").replaceChildren(...list);
  }

  renderActions() {
    const a = this.alert;
    const escalated = (a.changes || []).some((c) => c.change === "escalated_to_police");
    const active = a.status === "open" || a.status === "acknowledged";
    $('[data-action="acknowledge"]').disabled = a.status !== "open";
    $('[data-action="resolve"]').disabled = !active;
    $("#resolve-outcome").disabled = !active;
    show($("#message-block"), !!this.features.message_victim);
    show($("#message-unavailable"), !this.features.message_victim);
    show($("#escalate-block"), !!this.features.escalate);
    show($("#escalate-unavailable"), !this.features.escalate);
    $('[data-action="escalate"]').disabled = !active || escalated;
    $('[data-action="escalate"]').textContent = escalated ? t("actions.escalated") : t("actions.escalate");
    show($('[data-action="escalate-confirm"]'), this.escalateArmed && active && !escalated);
    show($("[data-form=note]"), this.features.notes !== false);
  }

  renderHistory() {
    const changes = this.alert.changes || [];
    $("#history-body").replaceChildren(...changes.map((c) => h("tr", {
      class: `change change-${c.change}`, dataset: { change: c.change, seq: c.seq },
    },
    h("td", {}, fmtDateTime(c.at), c.fix_at && c.fix_at !== c.at ? h("div", { class: "hint" }, `${t("history.fix_at")} ${fmtTime(c.fix_at)}`) : null),
    h("td", {}, word("change", c.change)),
    h("td", {}, word("level", c.level)),
    h("td", {}, word("confidence", c.confidence)),
    h("td", {}, c.actor || t("history.system")),
    h("td", { class: "detail" }, detailText(c.detail)))));
    const deliveries = this.alert.deliveries || [];
    $("#deliveries-body").replaceChildren(...(deliveries.length ? deliveries.map((d) => h("tr", { class: `delivery status-${d.status}` },
      h("td", {}, word("recipient", d.recipient)), h("td", {}, word("channel", d.channel)), h("td", {}, word("purpose", d.purpose)),
      h("td", {}, word("delivery_status", d.status)), h("td", {}, d.attempts ?? ""), h("td", {}, d.reason || ""),
    )) : [h("tr", {}, h("td", { colspan: 6, class: "empty" }, t("deliveries.none")))]));
  }

  async act(kind) {
    const a = this.alert;
    if (!a) return;
    const status = $("#action-status");
    const base = `/v1/alerts/${a.id}`;
    let path, body, done;
    if (kind === "acknowledge") {
      [path, body, done] = [`${base}/acknowledge`, {}, "acknowledged"];
    } else if (kind === "note") {
      const note = $("#note-text").value.trim();
      if (!note) { $("#note-text").focus(); return; }
      [path, body, done] = [`${base}/notes`, { note }, "note"];
    } else if (kind === "message") {
      const template = $("#message-template").value;
      const text = $("#message-text").value.trim();
      if (!template && !text) { $("#message-text").focus(); return; }
      body = template ? { template } : { text };
      body.urgent = $("#message-urgent").checked;
      [path, done] = [`${base}/message-victim`, "victim_messaged"];
    } else if (kind === "escalate") {
      this.escalateArmed = true;
      this.renderActions();
      $('[data-action="escalate-confirm"]').focus();
      return;
    } else if (kind === "escalate-confirm") {
      const reason = $("#escalate-reason").value.trim();
      [path, body, done] = [`${base}/escalate`, reason ? { reason } : {}, "escalated_to_police"];
    } else if (kind === "resolve") {
      const outcome = $("#resolve-outcome").value;
      if (!outcome) { $("#resolve-outcome").focus(); return; }
      const note = $("#resolve-note").value.trim();
      [path, body, done] = [`${base}/resolve`, { outcome, note: note || null }, "resolved"];
    } else {
      return;
    }
    const buttons = $$("#incident .actions button");
    buttons.forEach((b) => { b.dataset.wasDisabled = b.disabled ? "1" : ""; b.disabled = true; });
    status.className = "action-status";
    status.textContent = t("actions.working");
    try {
      const alert = await this.api.post(path, body);
      this.alert = alert;
      this.escalateArmed = false;
      if (kind === "note") $("#note-text").value = "";
      if (kind === "message") $("#message-text").value = "";
      if (kind === "resolve") $("#resolve-note").value = "";
      status.className = "action-status ok";
      status.textContent = t("actions.done", { change: word("change", done) });
      if (this.onChanged) this.onChanged(alert);
    } catch (e) {
      status.className = "action-status error";
      status.textContent = t("actions.failed", { detail: e.message });
    } finally {
      buttons.forEach((b) => { b.disabled = b.dataset.wasDisabled === "1"; });
      this.renderAlert();
    }
  }

  // ------------------------------------------------------------ the case

  renderCase() {
    const c = this.caseDetail;
    const targets = ["#case-orders", "#case-zones", "#case-devices"];
    if (!c) {
      for (const id of targets) $(id).replaceChildren(h("p", { class: "empty" }, this.caseError || t("case.no_access")));
      $("#next-expiry").textContent = "";
      this.renderContacts();
      return;
    }
    const now = this.api.now();
    const orders = c.orders || [];
    const running = orders.filter((o) => !o.let_go_at && o.valid_until && Date.parse(o.valid_until) > now
      && Date.parse(o.valid_from) <= now);
    const next = running.sort((x, y) => Date.parse(x.valid_until) - Date.parse(y.valid_until))[0];
    const ne = $("#next-expiry");
    if (next) {
      const days = Math.ceil((Date.parse(next.valid_until) - now) / 86400000);
      ne.textContent = t("case.next_expiry", { date: fmtDateTime(next.valid_until), ref: next.reference, kind: word("order_kind", next.kind), days });
      ne.classList.toggle("soon", days <= 14);
    } else {
      ne.textContent = t("case.no_expiry");
      ne.classList.remove("soon");
    }
    $("#case-orders").replaceChildren(orders.length ? h("table", { class: "case-table orders-table" },
      h("thead", {}, h("tr", {}, ...["case.col.kind", "case.col.reference", "case.col.valid_from", "case.col.valid_until", "case.col.state", "case.col.extensions"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, ...orders.map((o) => {
        const state = o.let_go_at ? "let_go" : Date.parse(o.valid_from) > now ? "future"
          : o.valid_until && Date.parse(o.valid_until) <= now ? "expired" : "in_force";
        return h("tr", { class: `order state-${state}`, dataset: { orderId: o.id } },
          h("td", {}, word("order_kind", o.kind)), h("td", {}, o.reference), h("td", {}, fmtDate(o.valid_from)),
          h("td", {}, o.valid_until ? fmtDate(o.valid_until) : t("case.until_further_notice")),
          h("td", {}, h("span", { class: `badge order-state state-${state}` }, word("order_state", state))),
          h("td", {}, String(o.extension_count ?? 0)));
      }))) : h("p", { class: "empty" }, t("case.no_orders")));

    const zones = c.zones || [];
    $("#case-zones").replaceChildren(...(zones.length ? zones.map((z) => h("div", { class: `zone-card ${z.kind}`, dataset: { zoneId: z.id } },
      h("div", { class: "zone-head" }, h("strong", {}, z.name), " ", h("span", { class: `badge zone-kind ${z.kind}` }, word("zone_kind", z.kind)),
        z.buffer_m ? ` · ${t("map.buffer")} ${fmtMetres(z.buffer_m)}` : "", ` · ${scheduleText(z.schedule)}`),
      findingsList(z.findings))) : [h("p", { class: "empty" }, t("case.no_zones"))]));

    const devices = c.devices || [];
    $("#case-devices").replaceChildren(devices.length ? h("table", { class: "case-table devices-table" },
      h("thead", {}, h("tr", {}, ...["case.col.role", "case.col.device", "case.col.supplier", "case.col.last_contact", "case.col.battery", "case.col.state"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, ...devices.map((d) => {
        const seen = d.last_seen_at ? Date.parse(d.last_seen_at) : null;
        const stale = !d.revoked_at && (!seen || now - seen > STALE_CONTACT_MS);
        const battery = d.last_battery_pct;
        return h("tr", { class: `device${stale ? " stale" : ""}${d.revoked_at ? " revoked" : ""}`, dataset: { deviceId: d.id } },
          h("td", {}, word("device_role", d.role)), h("td", {}, d.serial || d.platform || "—"), h("td", {}, d.supplier_name || "—"),
          h("td", { class: "last-contact" }, seen ? `${fmtDateTime(d.last_seen_at)} (${fmtAgo(now - seen)})` : t("case.never")),
          h("td", { class: battery !== null && battery !== undefined && battery < 20 ? "battery low" : "battery" },
            battery === null || battery === undefined ? "—" : `${Math.round(battery)}%`),
          h("td", {}, d.revoked_at ? t("case.revoked", { date: fmtDate(d.revoked_at) }) : t("case.active")));
      }))) : h("p", { class: "empty" }, t("case.no_devices")));
    this.renderContacts();
  }

  renderContacts() {
    const el = $("#case-contacts");
    if (!this.features.assignments || this.assignments === null) {
      el.replaceChildren(h("p", { class: "notice" }, t("case.contacts_unavailable")));
      return;
    }
    if (!this.assignments.length) {
      el.replaceChildren(h("p", { class: "empty" }, t("case.no_contacts")));
      return;
    }
    el.replaceChildren(h("table", { class: "case-table contacts-table" },
      h("thead", {}, h("tr", {}, ...["case.col.agency", "case.col.function", "case.col.name", "case.col.how", "case.col.when"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, ...this.assignments.map((x) => h("tr", { class: x.staff_active ? "" : "inactive" },
        h("td", {}, word("agency", x.agency)), h("td", {}, word("function", x.function)),
        h("td", {}, x.staff_name, x.staff_active ? "" : ` (${t("case.inactive")})`),
        h("td", {}, x.how_to_reach || "—"), h("td", {}, x.when_to_reach || "—"))))));
  }
}

function detailText(detail) {
  if (!detail || typeof detail !== "object") return "";
  const parts = [];
  for (const [k, v] of Object.entries(detail)) {
    if (v === null || v === undefined || v === "" || (k === "late" && v === false)) continue;
    if (k === "evidence") { if (Array.isArray(v) && v.length) parts.push(t("detail.evidence", { n: v.length })); continue; }
    if (k === "outcome") { parts.push(word("outcome", v)); continue; }
    if (k === "note" || k === "text") { parts.push(`“${v}”`); continue; }
    if (k === "template") { parts.push(`${t("detail.template")}: ${word("template", v)}`); continue; }
    if (k === "min_distance_m") { parts.push(`${t("detail.min_distance")} ${fmtMetres(v)}`); continue; }
    if (k === "reason") { parts.push(`${t("detail.reason")}: ${word("clear_reason", v)}`); continue; }
    if (k === "trigger") { parts.push(word("trigger", v)); continue; }
    if (k === "rssi") { parts.push(t("detail.rssi", { v })); continue; }
    if (k === "closing_speed_mps" || k === "eta_uncertainty_s") continue;  // told with the time to contact
    if (k === "eta_contact_s") {
      parts.push(t("detail.approach", { speed: Math.round(detail.closing_speed_mps), minutes: Math.max(1, Math.round(v / 60)) }));
      continue;
    }
    if (typeof v === "boolean") { parts.push(v ? word("detail", k) : ""); continue; }
    parts.push(`${word("detail", k)}: ${typeof v === "object" ? JSON.stringify(v) : v}`);
  }
  return parts.filter(Boolean).join(" · ");
}
