// Case set-up for case directors and admins: the case and its contact-ban distances (proposed by the risk screening
// when there is one), orders, zones drawn on the map with their feasibility checked while drawing, the ankle
// monitor, the victim app's enrollment code as a QR code, and contact persons per agency. Only public API routes.
import qrcode from "./vendor/qrcode.mjs";
import { ApiError, qs } from "./api.js";
import { $, h, show } from "./dom.js";
import { fmtDate, fmtDateTime, fmtDuration, fmtMetres, t, word } from "./i18n.js";
import { baseMap, zoneLayers } from "./map.js";

const L = window.L;
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const CHECK_DELAY_MS = 250;
const CIRCLE_SEGMENTS = 64;

/** A circle as a GeoJSON ring (for a zone of several parts, which the API takes as a MultiPolygon). */
function circleRing(lat, lon, radius) {
  const ring = [];
  const dLat = radius / 111320, dLon = radius / (111320 * Math.cos(lat * Math.PI / 180));
  for (let i = 0; i < CIRCLE_SEGMENTS; i++) {
    const a = 2 * Math.PI * i / CIRCLE_SEGMENTS;
    ring.push([lon + dLon * Math.cos(a), lat + dLat * Math.sin(a)]);
  }
  ring.push(ring[0]);
  return ring;
}

function polygonRings(layer) {
  let rings = layer.getLatLngs();
  if (!Array.isArray(rings[0])) rings = [rings];
  return rings.map((ring) => {
    const coords = ring.map((p) => [p.lng, p.lat]);
    if (coords.length) coords.push(coords[0]);
    return coords;
  });
}

/** The drawn shapes as the API's geometry: one circle stays a Circle; one polygon a Polygon; several a MultiPolygon. */
export function geometryOf(layers) {
  if (!layers.length) return null;
  if (layers.length === 1 && layers[0] instanceof L.Circle) {
    const c = layers[0].getLatLng();
    return { type: "Circle", center: [c.lng, c.lat], radius_m: Math.round(layers[0].getRadius() * 10) / 10 };
  }
  const polys = layers.map((l) => (l instanceof L.Circle
    ? [circleRing(l.getLatLng().lat, l.getLatLng().lng, l.getRadius())] : polygonRings(l)));
  return polys.length === 1 ? { type: "Polygon", coordinates: polys[0] } : { type: "MultiPolygon", coordinates: polys };
}

export function findingsList(findings) {
  if (!findings.length) return h("p", { class: "findings-none" }, t("case.no_findings"));
  return h("ul", { class: "findings" }, ...findings.map((f) => h("li", { class: `finding severity-${f.severity}`, dataset: { code: f.code } },
    h("span", { class: `badge severity severity-${f.severity}` }, word("severity", f.severity)), " ",
    h("strong", {}, word("finding", f.code)), f.explanation ? ` — ${f.explanation}` : "")));
}

function dateInput(iso) { return iso ? iso.slice(0, 10) : ""; }
function startOfDay(date) { return new Date(`${date}T00:00:00`).toISOString(); }
function endOfDay(date) { return new Date(`${date}T23:59:00`).toISOString(); }

export class CaseSetup {
  constructor({ api, config, toast }) {
    this.api = api;
    this.config = config;
    this.toast = toast;
    this.caseId = null;
    this.detail = null;
    this.map = null;
    this.drawn = null;
    this.findings = [];
    this.checkTimer = null;
    this.checkSeq = 0;
    this.enrollTimer = null;
    this.listCursor = null;
    this._wire();
  }

  _wire() {
    const options = (sel, values, group) => $(sel).replaceChildren(...values.map((v) => h("option", { value: v }, word(group, v))));
    options("#order-kind", this.config.order_kinds || [], "order_kind");
    options("#assign-agency", this.config.agencies || [], "agency");
    options("#assign-function", this.config.functions || [], "function");
    $("#zone-days").replaceChildren(...DAYS.map((d) => h("label", { class: "inline" },
      h("input", { type: "checkbox", value: d, dataset: { day: d } }), ` ${word("day", d)}`)));
    $("#case-form").addEventListener("submit", (e) => { e.preventDefault(); this.createCase(); });
    $("#case-list-more").addEventListener("click", () => this.loadList(true));
    $("#prox-form").addEventListener("submit", (e) => { e.preventDefault(); this.saveProximity(); });
    $("#order-form").addEventListener("submit", (e) => { e.preventDefault(); this.addOrder(); });
    $("#zone-form").addEventListener("submit", (e) => { e.preventDefault(); this.saveZone(); });
    $("#device-form").addEventListener("submit", (e) => { e.preventDefault(); this.pairDevice(); });
    $("#assign-form").addEventListener("submit", (e) => { e.preventDefault(); this.assign(); });
    $("#enroll-issue").addEventListener("click", () => this.issueEnrollment());
    $("#circle-add").addEventListener("click", () => this.addCircleByNumbers());
    $("#shapes-clear").addEventListener("click", () => { if (this.drawn) this.drawn.clearLayers(); this.shapesChanged(); });
    $("#case-print").addEventListener("click", () => window.print());
    for (const id of ["#zone-kind", "#zone-buffer", "#zone-always", "#zone-start", "#zone-end", "#zone-name", "#zone-order"]) {
      $(id).addEventListener("input", () => this.scheduleCheck());
      $(id).addEventListener("change", () => this.scheduleCheck());
    }
    $("#zone-days").addEventListener("change", () => { $("#zone-always").checked = false; this.scheduleCheck(); });
  }

  // ------------------------------------------------------------ the list and a new case

  async show() {
    await this.loadList(false);
    if (this.map) this.map.invalidateSize();
  }

  async loadList(more) {
    try {
      const page = await this.api.get("/v1/cases?" + qs({ limit: 50, status: "active", cursor: more ? this.listCursor : null }));
      const items = page.items.map((c) => h("li", {}, h("button", {
        type: "button", class: "link", dataset: { caseId: c.id }, onclick: () => this.open(c.id),
      }, c.reference), ` · ${fmtDate(c.created_at)}`));
      if (more) $("#case-list").append(...items); else $("#case-list").replaceChildren(...items);
      this.listCursor = page.next_cursor;
      show($("#case-list-more"), !!page.next_cursor);
    } catch (e) {
      this.toast(t("setup.failed", { detail: e.message }), true);
    }
  }

  async createCase() {
    const status = $("#case-form-status");
    const body = {
      reference: $("#case-reference").value.trim(),
      proximity: { warn_m: Number($("#case-warn").value), alert_m: Number($("#case-alert").value) },
      victim: { display_name: $("#case-victim").value.trim(), language: $("#case-language").value },
      offender: { display_name: $("#case-offender").value.trim() },
    };
    try {
      const c = await this.api.post("/v1/cases", body);
      status.className = "action-status ok";
      status.textContent = t("setup.created", { ref: c.reference });
      $("#case-form").reset();
      await this.loadList(false);
      await this.open(c.id);
    } catch (e) {
      status.className = "action-status error";
      status.textContent = problemText(e);
    }
  }

  // ------------------------------------------------------------ one case

  async open(caseId) {
    this.caseId = caseId;
    clearInterval(this.enrollTimer);
    show($("#enroll-box"), false);
    show($("#case-editor"), true);
    this.ensureMap();
    this.drawn.clearLayers();
    this.shapesChanged();
    await this.reload();
    $("#case-editor").dataset.caseId = caseId;
    $("#editor-title").focus?.();
  }

  async reload() {
    const id = this.caseId;
    const [detail, assignments, risk, staff] = await Promise.all([
      this.api.get(`/v1/cases/${id}`),
      this.api.get(`/v1/cases/${id}/assignments`).catch(() => ({ items: [] })),
      this.api.get(`/v1/cases/${id}/risk-screenings`).catch(() => ({ items: [] })),
      this.api.get("/v1/staff?" + qs({ limit: 200 })).catch(() => ({ items: [] })),
    ]);
    if (id !== this.caseId) return;
    this.detail = detail;
    this.assignments = assignments.items || [];
    this.risk = (risk.items || []).slice().sort((a, b) => String(b.screened_on).localeCompare(String(a.screened_on)))[0] || null;
    this.staff = (staff.items || []).filter((s) => s.active);
    this.render();
  }

  render() {
    const c = this.detail;
    $("#editor-title").textContent = t("setup.case_title", { ref: c.reference });
    // Distances: the case's, else the latest risk screening's proposal, else the form's defaults.
    const prox = c.proximity;
    $("#prox-current").textContent = prox ? t("setup.prox_current", { warn: fmtMetres(prox.warn_m), alert: fmtMetres(prox.alert_m) })
      : t("setup.prox_none");
    const proposal = this.risk && this.risk.proposed_proximity;
    show($("#prox-proposal"), !!proposal);
    if (proposal) {
      $("#prox-proposal").textContent = t("setup.prox_proposal", {
        level: word("risk_level", this.risk.level), warn: fmtMetres(proposal.warn_m), alert: fmtMetres(proposal.alert_m),
      });
    }
    const defaults = prox || proposal || { warn_m: 1000, alert_m: 500 };
    $("#prox-warn").value = defaults.warn_m;
    $("#prox-alert").value = defaults.alert_m;

    const orders = c.orders || [];
    $("#editor-orders").replaceChildren(orders.length ? h("table", { class: "case-table orders-table" },
      h("thead", {}, h("tr", {}, ...["case.col.kind", "case.col.reference", "case.col.valid_from", "case.col.valid_until", "case.col.extensions"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, ...orders.map((o) => h("tr", { dataset: { orderId: o.id } },
        h("td", {}, word("order_kind", o.kind)), h("td", {}, o.reference), h("td", {}, fmtDate(o.valid_from)),
        h("td", {}, o.valid_until ? fmtDate(o.valid_until) : t("case.until_further_notice")),
        h("td", {}, o.let_go_at ? t("lists.let_go_at", { date: fmtDate(o.let_go_at) }) : String(o.extension_count ?? 0)))))) : h("p", { class: "empty" }, t("case.no_orders")));
    const current = $("#zone-order").value;
    $("#zone-order").replaceChildren(...orders.map((o) => h("option", { value: o.id }, `${o.reference} (${word("order_kind", o.kind)})`)));
    if (current && orders.some((o) => o.id === current)) $("#zone-order").value = current;
    if (!$("#order-from").value) $("#order-from").value = dateInput(new Date().toISOString());

    const zones = c.zones || [];
    $("#editor-zones").replaceChildren(...(zones.length ? zones.map((z) => h("div", { class: `zone-card ${z.kind}`, dataset: { zoneId: z.id } },
      h("div", { class: "zone-head" }, h("strong", {}, z.name), " ", h("span", { class: `badge zone-kind ${z.kind}` }, word("zone_kind", z.kind)),
        z.buffer_m ? ` · ${t("map.buffer")} ${fmtMetres(z.buffer_m)}` : "", ` · ${scheduleText(z.schedule)}`),
      findingsList(z.findings || []))) : [h("p", { class: "empty" }, t("case.no_zones"))]));
    this.stored.clearLayers();
    for (const z of zones) for (const l of zoneLayers(z, { interactive: false })) this.stored.addLayer(l);
    if (zones.length && !this.drawn.getLayers().length) {
      const b = this.stored.getBounds();
      if (b.isValid()) this.map.fitBounds(b, { padding: [20, 20], maxZoom: 17, animate: false });
    }

    const devices = c.devices || [];
    $("#editor-devices").replaceChildren(devices.length ? h("table", { class: "case-table devices-table" },
      h("thead", {}, h("tr", {}, ...["case.col.role", "case.col.device", "case.col.supplier", "setup.col.since", "case.col.state", "setup.col.action"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, ...devices.map((d) => h("tr", { class: `device${d.revoked_at ? " revoked" : ""}`, dataset: { deviceId: d.id, role: d.role } },
        h("td", {}, word("device_role", d.role)), h("td", {}, d.serial || d.platform || "—"), h("td", {}, d.supplier_name || "—"),
        h("td", { class: "since" }, d.role === "victim_app" ? t("setup.enrolled_at", { at: fmtDateTime(d.created_at) }) : fmtDateTime(d.created_at)),
        h("td", {}, d.revoked_at ? t("case.revoked", { date: fmtDate(d.revoked_at) }) : t("case.active")),
        h("td", {}, d.revoked_at ? "" : h("button", { type: "button", class: "tool", onclick: () => this.revoke(d) }, t("setup.revoke"))))))) : h("p", { class: "empty" }, t("case.no_devices")));

    $("#editor-contacts").replaceChildren(this.assignments.length ? h("table", { class: "case-table contacts-table" },
      h("thead", {}, h("tr", {}, ...["case.col.agency", "case.col.function", "case.col.name", "case.col.how", "case.col.when"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, ...this.assignments.map((x) => h("tr", {},
        h("td", {}, word("agency", x.agency)), h("td", {}, word("function", x.function)), h("td", {}, x.staff_name),
        h("td", {}, x.how_to_reach || "—"), h("td", {}, x.when_to_reach || "—"))))) : h("p", { class: "empty" }, t("case.no_contacts")));
    $("#assign-staff").replaceChildren(...this.staff.map((s) => h("option", { value: s.id }, `${s.display_name} (${word("agency", s.agency)}, ${s.role_title})`)));
  }

  status(text, ok = true) {
    const el = $("#editor-status");
    el.className = `action-status ${ok ? "ok" : "error"}`;
    el.textContent = text;
  }

  async run(fn, done) {
    try {
      await fn();
      this.status(done);
      await this.reload();
      return true;
    } catch (e) {
      this.status(problemText(e), false);
      return false;
    }
  }

  saveProximity() {
    const body = { proximity: { warn_m: Number($("#prox-warn").value), alert_m: Number($("#prox-alert").value) } };
    return this.run(() => this.api.request("PATCH", `/v1/cases/${this.caseId}`, body), t("setup.saved_distances"));
  }

  addOrder() {
    const until = $("#order-until").value;
    const body = {
      kind: $("#order-kind").value, reference: $("#order-reference").value.trim(),
      valid_from: startOfDay($("#order-from").value), valid_until: until ? endOfDay(until) : null,
    };
    return this.run(async () => { await this.api.post(`/v1/cases/${this.caseId}/orders`, body); $("#order-reference").value = ""; $("#order-until").value = ""; },
      t("setup.order_added"));
  }

  pairDevice() {
    const body = { role: "offender_tag", supplier_key_id: $("#device-supplier").value.trim(), serial: $("#device-serial").value.trim() };
    return this.run(async () => { await this.api.post(`/v1/cases/${this.caseId}/devices`, body); $("#device-serial").value = ""; },
      t("setup.paired", { serial: body.serial }));
  }

  revoke(device) {
    if (!window.confirm(t("setup.revoke_confirm"))) return null;
    return this.run(() => this.api.post(`/v1/cases/${this.caseId}/devices/${device.id}/revoke`), t("setup.revoked"));
  }

  assign() {
    const body = {
      agency: $("#assign-agency").value, function: $("#assign-function").value, staff_id: $("#assign-staff").value,
      how_to_reach: $("#assign-how").value.trim() || null, when_to_reach: $("#assign-when").value.trim() || null,
    };
    return this.run(() => this.api.request("PUT", `/v1/cases/${this.caseId}/assignments`, body), t("setup.assigned"));
  }

  // ------------------------------------------------------------ enrollment

  async issueEnrollment() {
    let enrollment;
    try {
      enrollment = await this.api.post(`/v1/cases/${this.caseId}/enrollments`);
    } catch (e) {
      this.status(problemText(e), false);
      return;
    }
    const qr = qrcode(0, "M");
    qr.addData(enrollment.code);
    qr.make();
    $("#enroll-qr").src = qr.createDataURL(6, 4);
    $("#enroll-code").textContent = enrollment.code;
    show($("#enroll-box"), true);
    show($("#enroll-done"), false);
    const known = new Set(((this.detail && this.detail.devices) || []).filter((d) => d.role === "victim_app").map((d) => d.id));
    const expires = Date.parse(enrollment.expires_at);
    let polls = 0;
    const tick = async () => {
      const left = expires - this.api.now();
      $("#enroll-expiry").textContent = left > 0 ? t("setup.enroll_expires", { left: fmtDuration(left), at: fmtDateTime(enrollment.expires_at) })
        : t("setup.enroll_expired");
      if (left <= 0) { clearInterval(this.enrollTimer); return; }
      if (++polls % 3) return; // the case is read every 3 s: has the app enrolled?
      try {
        const detail = await this.api.get(`/v1/cases/${this.caseId}`);
        const app = (detail.devices || []).find((d) => d.role === "victim_app" && !known.has(d.id));
        if (app) {
          clearInterval(this.enrollTimer);
          $("#enroll-done").textContent = t("setup.enrolled_at", { at: fmtDateTime(app.created_at) });
          show($("#enroll-done"), true);
          await this.reload();
        }
      } catch { /* the next tick tries again */ }
    };
    clearInterval(this.enrollTimer);
    this.enrollTimer = setInterval(tick, 1000);
    tick();
  }

  // ------------------------------------------------------------ zones: drawing and the live check

  ensureMap() {
    if (this.map) return;
    this.map = baseMap($("#zone-map"), this.config.tile_url);
    this.stored = L.featureGroup().addTo(this.map);
    this.drawn = L.featureGroup().addTo(this.map);
    this.map.pm.setGlobalOptions({ layerGroup: this.drawn, continueDrawing: false, snappable: false });
    this.map.pm.addControls({
      position: "topleft", drawMarker: false, drawCircleMarker: false, drawPolyline: false, drawText: false,
      drawRectangle: true, drawPolygon: true, drawCircle: true, editMode: true, dragMode: true, cutPolygon: false,
      removalMode: true, rotateMode: false,
    });
    this.map.pm.setLang(document.documentElement.lang === "nl" ? "nl" : "en");
    const changed = () => this.shapesChanged();
    this.map.on("pm:create", (e) => { e.layer.on("pm:edit pm:dragend", changed); changed(); });
    this.map.on("pm:remove", changed);
    this.map.on("pm:drawstart", () => { this.drawing = true; });
    this.map.on("pm:drawend", () => { this.drawing = false; });
  }

  addCircleByNumbers() {
    const lat = Number($("#circle-lat").value), lon = Number($("#circle-lon").value), r = Number($("#circle-radius").value);
    if (!$("#circle-lat").value || !$("#circle-lon").value || !(r > 0)) { $("#circle-lat").focus(); return; }
    const circle = L.circle([lat, lon], { radius: r });
    circle.on("pm:edit pm:dragend", () => this.shapesChanged());
    this.drawn.addLayer(circle);
    this.map.fitBounds(circle.getBounds(), { padding: [20, 20], animate: false });
    this.shapesChanged();
  }

  shapes() {
    return this.drawn ? this.drawn.getLayers().filter((l) => l instanceof L.Circle || l instanceof L.Polygon) : [];
  }

  shapesChanged() {
    const n = this.shapes().length;
    $("#zone-parts").textContent = n ? t("setup.parts", { n }) : t("setup.no_shapes");
    $("#zone-form").dataset.parts = String(n);
    this.scheduleCheck();
  }

  schedule() {
    if ($("#zone-always").checked) return null;
    const days = DAYS.filter((d) => $(`#zone-days input[data-day='${d}']`).checked);
    return { timezone: "Europe/Amsterdam", windows: [{ days, start: $("#zone-start").value, end: $("#zone-end").value }] };
  }

  draft() {
    const geometry = geometryOf(this.shapes());
    if (!geometry) return null;
    return {
      id: "draft", name: $("#zone-name").value.trim() || t("setup.unnamed"), kind: $("#zone-kind").value, geometry,
      buffer_m: Number($("#zone-buffer").value) || 0, schedule: this.schedule(),
    };
  }

  scheduleCheck() {
    clearTimeout(this.checkTimer);
    $("#zone-form").dataset.checked = "pending";
    this.checkTimer = setTimeout(() => this.check(), CHECK_DELAY_MS);
  }

  /** The feasibility of the zone as drawn, together with the case as stored; only the newest answer is shown. */
  async check() {
    const draft = this.draft();
    const seq = ++this.checkSeq;
    if (!draft || !this.caseId) {
      this.findings = [];
      $("#zone-findings").replaceChildren(h("p", { class: "hint" }, t("setup.draw_first")));
      this.updateSave();
      $("#zone-form").dataset.checked = "empty";
      return;
    }
    try {
      const out = await this.api.post(`/v1/cases/${this.caseId}/feasibility`, { zones: [draft] });
      if (seq !== this.checkSeq) return;
      this.findings = (out.findings || []).filter((f) => f.subject === "zone:draft");
    } catch (e) {
      if (seq !== this.checkSeq) return;
      this.findings = [{ severity: "blocking", code: "check_failed", explanation: problemText(e) }];
    }
    $("#zone-findings").replaceChildren(findingsList(this.findings));
    this.updateSave();
    $("#zone-form").dataset.checked = "done";
  }

  updateSave() {
    const blocking = this.findings.some((f) => f.severity === "blocking");
    show($("#override-label"), blocking);
    $("#zone-save").disabled = !this.shapes().length || (blocking && !$("#zone-override").value.trim());
    $("#zone-override").oninput = () => this.updateSave();
  }

  async saveZone() {
    const draft = this.draft();
    if (!draft) { $("#zone-map").focus(); return; }
    if (!$("#zone-name").value.trim()) { $("#zone-name").focus(); return; }
    if (this.findings.some((f) => f.severity === "blocking") && !$("#zone-override").value.trim()) {
      // The server would refuse it too; say why here and take the user to the field that is missing.
      this.status(t("setup.override_needed"), false);
      $("#zone-override").focus();
      return;
    }
    const schedule = draft.schedule;
    if (schedule && !schedule.windows[0].days.length) { $("#zone-days input").focus(); return; }
    const body = { order_id: $("#zone-order").value, name: draft.name, kind: draft.kind, geometry: draft.geometry,
      buffer_m: draft.buffer_m, schedule };
    const reason = $("#zone-override").value.trim();
    if (reason) body.override_reason = reason;
    const ok = await this.run(() => this.api.post(`/v1/cases/${this.caseId}/zones`, body), t("setup.zone_saved", { name: draft.name }));
    if (ok) {
      this.drawn.clearLayers();
      $("#zone-name").value = "";
      $("#zone-override").value = "";
      this.shapesChanged();
    }
  }
}

export function scheduleText(schedule) {
  if (!schedule || !Array.isArray(schedule.windows) || !schedule.windows.length) return t("case.always");
  return schedule.windows.map((w) => `${(w.days || []).map((d) => word("day", d)).join(" ")} ${w.start}–${w.end}`).join("; ");
}

export function problemText(e) {
  if (!(e instanceof ApiError)) return String(e && e.message ? e.message : e);
  const p = e.problem || {};
  const fields = (p.errors || []).map((x) => `${(x.loc || []).filter((s) => s !== "body").join(".")}: ${x.msg}`);
  const findings = (p.findings || []).map((f) => word("finding", f.code));
  return [p.detail || p.title || e.message, ...fields, ...findings].filter(Boolean).join(" · ");
}
