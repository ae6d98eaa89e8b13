// Work lists for case staff: contact agreements overdue or due today and the cases where an agency has no contact
// person for them (GET /v1/contact/overdue), orders ending within 14 days with what is decided about each
// (GET /v1/orders/ending; the decision recorded from here), and devices silent, low on battery or tampered
// (GET /v1/devices/attention). The server filters each by need-to-know and pages it.
import { qs } from "./api.js";
import { $, $$, h, show } from "./dom.js";
import { fmtDate, fmtDateTime, t, word } from "./i18n.js";
import { problemText } from "./setup.js";

const DAY_MS = 86400000;

/** One paged list: its rows so far and where the next page starts; ``more`` appends the next page. */
class Paged {
  constructor(path, moreButton, onChange) {
    this.path = path;
    this.moreButton = moreButton;
    this.onChange = onChange;
    this.items = [];
    this.cursor = null;
    moreButton.onclick = () => this.load(true);
  }

  async load(more, api) {
    this.api = api || this.api;
    const page = await this.api.get(`${this.path}?` + qs({ limit: 50, cursor: more ? this.cursor : null }));
    this.items = more ? this.items.concat(page.items) : page.items;
    this.cursor = page.next_cursor;
    show(this.moreButton, !!page.next_cursor);
    this.onChange();
  }
}

export class WorkLists {
  constructor({ api, onOpenCase }) {
    this.api = api;
    this.onOpenCase = onOpenCase;
    this.cursor = null;
    this.items = [];
    this.deciding = null;
    // Handlers by property: the lists of a later sign-in replace these instead of adding to them.
    $("#overdue-more").onclick = () => this.load(true);
    this.ending = new Paged("/v1/orders/ending", $("#ending-more"), () => this.renderEnding());
    this.attention = new Paged("/v1/devices/attention", $("#attention-more"), () => this.renderAttention());
    $("#decision-form").onsubmit = (e) => { e.preventDefault(); this.saveDecision(); };
    $("#decision-cancel").onclick = () => this.closeDecision();
    for (const r of $$("#decision-form input[name=decision]")) r.onchange = () => this.decisionKind();
    // Nothing of a previous sign-in stays on screen.
    for (const id of ["#overdue-body", "#orphan-body", "#ending-body", "#attention-body"]) $(id).replaceChildren();
    $("#worklist-status").textContent = "";
    show($("#decision-form"), false);
  }

  async show() {
    await Promise.all([this.load(false), this.loadOther(this.ending), this.loadOther(this.attention)]);
  }

  async loadOther(list) {
    try {
      await list.load(false, this.api);
    } catch (e) {
      $("#worklist-status").className = "action-status error";
      $("#worklist-status").textContent = problemText(e);
    }
  }

  async load(more) {
    try {
      const page = await this.api.get("/v1/contact/overdue?" + qs({ limit: 50, cursor: more ? this.cursor : null }));
      const rows = page.items.flatMap((g) => g.items.map((x) => ({ ...x, staff_id: g.staff_id, staff_name: g.staff_name })));
      this.items = more ? this.items.concat(rows) : rows;
      this.cursor = page.next_cursor;
      show($("#overdue-more"), !!page.next_cursor);
      this.render();
    } catch (e) {
      $("#worklist-status").textContent = problemText(e);
    }
  }

  caseLink(x) {
    return this.onOpenCase ? h("button", { type: "button", class: "link", onclick: () => this.onOpenCase(x.case_id) }, x.case_reference)
      : x.case_reference;
  }

  renderEnding() {
    const now = this.api.now();
    $("#ending-body").replaceChildren(...(this.ending.items.length ? this.ending.items.map((o) => {
      const days = Math.ceil((Date.parse(o.due_at) - now) / DAY_MS);
      return h("tr", { class: `decision-${o.decision || "none"}`, dataset: { orderId: o.id, caseReference: o.case_reference } },
        h("td", {}, this.caseLink(o)),
        h("td", {}, `${word("order_kind", o.kind)} · ${o.reference}`),
        h("td", {}, fmtDate(o.due_at), " ", h("span", { class: days <= 7 ? "badge overdue" : "badge" }, t("lists.in_days", { n: Math.max(0, days) }))),
        h("td", { class: "decision" }, this.decisionText(o)),
        h("td", {}, o.decision === "extended" ? "" : h("button", { type: "button", class: "tool", onclick: () => this.openDecision(o) },
          t(o.decision ? "lists.change_decision" : "lists.record_decision"))));
    }) : [h("tr", {}, h("td", { colspan: 5, class: "empty" }, t("lists.none_ending")))]));
  }

  decisionText(o) {
    if (o.decision === "extended") return t("lists.decided_extended", { date: fmtDate(o.valid_until), ref: o.extension_reference || "" });
    if (o.decision === "let_go") return t("lists.decided_let_go", { reason: o.let_go_reason || "" });
    return h("span", { class: "badge overdue" }, t("lists.undecided"));
  }

  openDecision(o) {
    this.deciding = o;
    $("#decision-title").textContent = t("lists.decide_title", { order: o.reference, ref: o.case_reference });
    $("#decision-until").value = "";
    $("#decision-reference").value = "";
    $("#decision-reason").value = "";
    $("#decision-status").textContent = "";
    $("#decision-extend").checked = true;
    this.decisionKind();
    show($("#decision-form"), true);
    $("#decision-extend").focus();
  }

  closeDecision() {
    const o = this.deciding;
    this.deciding = null;
    show($("#decision-form"), false);
    // Back to the row the decision was for, so keyboard users keep their place.
    const button = o && $(`#ending-body tr[data-order-id="${o.id}"] button.tool`);
    if (button) button.focus();
  }

  decisionKind() {
    const extend = $("#decision-extend").checked;
    show($("#decision-extend-fields"), extend);
    show($("#decision-let-go-fields"), !extend);
    $("#decision-until").required = extend;
    $("#decision-reference").required = extend;
    $("#decision-reason").required = !extend;
  }

  async saveDecision() {
    const o = this.deciding;
    if (!o) return;
    const status = $("#decision-status");
    const base = `/v1/cases/${o.case_id}/orders/${o.id}`;
    try {
      if ($("#decision-extend").checked) {
        await this.api.post(`${base}/extensions`, {
          valid_until: new Date(`${$("#decision-until").value}T23:59:00`).toISOString(),
          reference: $("#decision-reference").value.trim(),
        });
      } else {
        await this.api.post(`${base}/let-go`, { reason: $("#decision-reason").value.trim() });
      }
      $("#worklist-status").className = "action-status ok";
      $("#worklist-status").textContent = t("lists.decision_recorded", { order: o.reference, ref: o.case_reference });
      await this.ending.load(false, this.api);
      this.closeDecision();
    } catch (e) {
      status.className = "action-status error";
      status.textContent = problemText(e);
    }
  }

  renderAttention() {
    $("#attention-body").replaceChildren(...(this.attention.items.length ? this.attention.items.map((d) => h("tr", {
      dataset: { deviceId: d.id, caseReference: d.case_reference },
    },
    h("td", {}, this.caseLink(d)),
    h("td", {}, `${word("device_role", d.role)} · ${d.serial || d.platform || "—"}`),
    h("td", { class: d.silent ? "stale" : "" }, d.last_seen_at ? fmtDateTime(d.last_seen_at) : t("lists.never")),
    h("td", { class: d.battery_low ? "battery low" : "battery" }, d.last_battery_pct === null ? "—" : `${Math.round(d.last_battery_pct)} %`),
    h("td", {}, ...[d.silent ? "silent" : null, d.battery_low ? "battery_low" : null, ...d.open_alerts.map((f) => `alert_${f}`)]
      .filter(Boolean).map((why) => h("span", { class: `badge why why-${why}` }, word("why", why))))))
      : [h("tr", {}, h("td", { colspan: 5, class: "empty" }, t("lists.none_attention")))]));
  }

  render() {
    $("#overdue-body").replaceChildren(...(this.items.length ? this.items.map((x) => h("tr", {
      class: x.overdue_days >= 1 ? "overdue" : "due-today", dataset: { agreementId: x.agreement_id, caseReference: x.case_reference },
    },
    h("td", {}, this.caseLink(x)), h("td", {}, word("agency", x.agency)), h("td", {}, word("channel", x.channel)),
    h("td", {}, fmtDateTime(x.next_due_at)),
    h("td", {}, x.overdue_days >= 1 ? t("lists.days_overdue", { n: Math.floor(x.overdue_days) }) : t("lists.due_today")),
    h("td", {}, x.staff_name || h("span", { class: "badge overdue" }, t("lists.nobody"))),
    h("td", {}, h("button", { type: "button", class: "tool", onclick: () => this.record(x) }, t("lists.record_contact")))))
      : [h("tr", {}, h("td", { colspan: 7, class: "empty" }, t("lists.none_overdue")))]));
    const orphans = new Map();
    for (const x of this.items) if (!x.staff_id) orphans.set(`${x.case_id}|${x.agency}`, x);
    $("#orphan-body").replaceChildren(...(orphans.size ? Array.from(orphans.values()).map((x) => h("tr", { dataset: { caseReference: x.case_reference } },
      h("td", {}, this.caseLink(x)), h("td", {}, word("agency", x.agency))))
      : [h("tr", {}, h("td", { colspan: 2, class: "empty" }, t("lists.none_orphaned")))]));
  }

  async record(x) {
    const status = $("#worklist-status");
    try {
      await this.api.post(`/v1/cases/${x.case_id}/contact-agreements/${x.agreement_id}/contacts`,
        { contacted_at: new Date(this.api.now()).toISOString(), channel: x.channel });
      status.className = "action-status ok";
      status.textContent = t("lists.recorded", { ref: x.case_reference });
      await this.load(false);
    } catch (e) {
      status.className = "action-status error";
      status.textContent = problemText(e);
    }
  }
}
