// Work lists for case staff: contact agreements overdue or due today, and the cases where an agency has no contact
// person for them; read from GET /v1/contact/overdue, which filters by need-to-know and pages by agreement.
import { qs } from "./api.js";
import { $, h, show } from "./dom.js";
import { fmtDateTime, t, word } from "./i18n.js";
import { problemText } from "./setup.js";

export class WorkLists {
  constructor({ api, onOpenCase }) {
    this.api = api;
    this.onOpenCase = onOpenCase;
    this.cursor = null;
    this.items = [];
    $("#overdue-more").addEventListener("click", () => this.load(true));
  }

  async show() { await this.load(false); }

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
