// The monitoring room's load: alerts per hour over the last 24 h, what waits past the acknowledgement deadline, each
// operator's acknowledgements and the last minute by cause, from GET /v1/alerts/load (counts only), drawn as plain
// SVG by the page itself. The flood banner (alerts arriving faster than the set rate, grouped by cause) is worked
// out from the queue's own live data, so it shows in every view the moment the stream brings the flood.
import { $, h } from "./dom.js";
import { fmtDuration, fmtTime, t, word } from "./i18n.js";
import { problemText } from "./setup.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const REFRESH_MS = 30000;
// The kinds that mean a person may be in danger now: never folded into a flood, always listed above it.
export const SAFETY_KINDS = new Set(["proximity", "zone_exclusion", "zone_inclusion", "panic"]);

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** What caused an alert, as the server groups it: a device event by its event type, anything else by its kind. */
export function causeOf(alert) {
  return alert.kind === "device_event" ? `device_event:${(alert.detail && alert.detail.event) || "other"}` : alert.kind;
}

export function causeText(cause) {
  const [kind, event] = cause.split(":");
  return event ? `${word("kind", kind)}: ${word("event", event)}` : word("kind", kind);
}

/** The flood, if alerts raised in the last ``windowMs`` reach ``threshold``: the count, the causes it is made of
 *  (most first) and the open safety alerts that must not drown in it. */
export function floodOf(alerts, now, windowMs, threshold) {
  const recent = alerts.filter((a) => a.raised_at && now - Date.parse(a.raised_at) <= windowMs);
  if (!threshold || recent.length < threshold) return null;
  const causes = new Map();
  for (const a of recent) if (!SAFETY_KINDS.has(a.kind)) causes.set(causeOf(a), (causes.get(causeOf(a)) || 0) + 1);
  const real = alerts.filter((a) => SAFETY_KINDS.has(a.kind) && a.status !== "resolved");
  return { count: recent.length, causes: Array.from(causes.entries()).sort((x, y) => y[1] - x[1]), real };
}

/** A bar chart: ``bars`` of {label, value, part?}; ``part`` (e.g. the violations) is drawn darker inside its bar. */
export function barChart(bars, { title, tick = 1, horizontal = false } = {}) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const width = 640, height = horizontal ? 28 * Math.max(1, bars.length) + 20 : 220;
  const left = horizontal ? 220 : 34, bottom = horizontal ? 4 : 24, top = 8, right = horizontal ? 48 : 12;
  const plotW = width - left - right, plotH = height - top - bottom;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "bar-chart" },
    svg("title", {}, title));
  if (!horizontal) {
    root.appendChild(svg("text", { x: left - 6, y: top + 10, class: "axis", "text-anchor": "end" }, String(max)));
    root.appendChild(svg("text", { x: left - 6, y: top + plotH, class: "axis", "text-anchor": "end" }, "0"));
    root.appendChild(svg("line", { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: "axis-line" }));
  }
  bars.forEach((b, i) => {
    const g = svg("g", { class: "bar", "data-value": b.value }, svg("title", {}, `${b.label}: ${b.value}`));
    if (horizontal) {
      const y = top + i * 28, w = (plotW * b.value) / max;
      g.appendChild(svg("text", { x: left - 8, y: y + 16, class: "label", "text-anchor": "end" }, b.label));
      g.appendChild(svg("rect", { x: left, y, width: Math.max(1, w), height: 20, class: "value" }));
      if (b.part) g.appendChild(svg("rect", { x: left, y, width: Math.max(1, (plotW * b.part) / max), height: 20, class: "part" }));
      g.appendChild(svg("text", { x: left + w + 6, y: y + 16, class: "label" }, String(b.value)));
    } else {
      const slot = plotW / bars.length, x = left + i * slot + 2, hgt = (plotH * b.value) / max;
      g.appendChild(svg("rect", { x, y: top + plotH - hgt, width: slot - 4, height: hgt, class: "value" }));
      if (b.part) {
        const ph = (plotH * b.part) / max;
        g.appendChild(svg("rect", { x, y: top + plotH - ph, width: slot - 4, height: ph, class: "part" }));
      }
      if (i % tick === 0) g.appendChild(svg("text", { x: x + (slot - 4) / 2, y: height - 6, class: "axis", "text-anchor": "middle" }, b.label));
    }
    root.appendChild(g);
  });
  return root;
}

export class RoomLoad {
  constructor({ api, deadline }) {
    this.api = api;
    this.deadline = deadline;
    this.timer = null;
    $("#load-refresh").onclick = () => this.load();  // by property: a later sign-in's view replaces it
  }

  stop() { clearInterval(this.timer); }

  async show() {
    clearInterval(this.timer);
    this.timer = setInterval(() => { if (!$("#load").hidden) this.load(); }, REFRESH_MS);
    await this.load();
  }

  async load() {
    const status = $("#load-status");
    try {
      const data = await this.api.get(`/v1/alerts/load?deadline_s=${this.deadline()}`);
      status.className = "action-status";
      status.textContent = t("load.as_of", { at: fmtTime(data.at) });
      this.render(data);
    } catch (e) {
      status.className = "action-status error";
      status.textContent = problemText(e);
    }
  }

  render(data) {
    const hours = data.hours.map((x) => ({ label: fmtTime(x.start).slice(0, 5), value: x.alerts, part: x.violations }));
    $("#hours-chart").replaceChildren(barChart(hours, { title: t("load.per_hour"), tick: 3 }),
      h("figcaption", { class: "legend" }, h("span", { class: "key key-alerts" }, t("load.col.alerts")),
        h("span", { class: "key key-violations" }, t("load.col.violations"))));
    $("#hours-body").replaceChildren(...data.hours.map((x) => h("tr", {},
      h("td", {}, fmtTime(x.start).slice(0, 5)), h("td", {}, String(x.alerts)), h("td", {}, String(x.violations)))));
    $("#load-open").textContent = t("load.open", { open: data.open, overdue: data.open_overdue, s: data.deadline_s });
    $("#load-open").classList.toggle("alarm", data.open_overdue > 0);
    $("#causes-chart").replaceChildren(data.open_by_cause.length
      ? barChart(data.open_by_cause.map((c) => ({ label: causeText(c.cause), value: c.open, part: c.overdue })),
        { title: t("load.waiting"), horizontal: true })
      : h("p", { class: "empty" }, t("load.none_open")));
    $("#operators-body").replaceChildren(...(data.operators.length ? data.operators.map((o) => h("tr", {},
      h("td", {}, o.actor.replace(/^operator:/, "")), h("td", {}, String(o.acknowledged)),
      h("td", { class: o.late ? "late" : "" }, String(o.late)), h("td", {}, fmtDuration(o.median_s * 1000))))
      : [h("tr", {}, h("td", { colspan: 4, class: "empty" }, t("load.none_acknowledged")))]));
    $("#recent-chart").replaceChildren(data.recent_by_cause.length
      ? barChart(data.recent_by_cause.map((c) => ({ label: causeText(c.cause), value: c.alerts, part: c.violations })),
        { title: t("load.recent"), horizontal: true })
      : h("p", { class: "empty" }, t("load.none_recent")));
    $("#load").dataset.loaded = String(Date.now());
  }
}
