// The console's words in Dutch and English: catalogues in api/console/messages/, chosen by a toggle or the browser.
const LANGS = ["nl", "en"];
const FALLBACK = "en";
let current = FALLBACK;
let messages = {};
let fallback = {};

async function fetchCatalogue(lang) {
  const r = await fetch(`/console/messages/${lang}.json`, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`catalogue ${lang}: ${r.status}`);
  return r.json();
}

export function chooseLanguage() {
  const stored = localStorage.getItem("afstand.lang");
  if (LANGS.includes(stored)) return stored;
  for (const l of navigator.languages || [navigator.language || ""]) {
    const base = String(l).split("-")[0].toLowerCase();
    if (LANGS.includes(base)) return base;
  }
  return FALLBACK;
}

export async function setLanguage(lang, remember = false) {
  if (!LANGS.includes(lang)) lang = FALLBACK;
  if (!Object.keys(fallback).length) fallback = await fetchCatalogue(FALLBACK);
  messages = lang === FALLBACK ? fallback : await fetchCatalogue(lang);
  current = lang;
  if (remember) localStorage.setItem("afstand.lang", lang);
  document.documentElement.lang = lang;
  applyTranslations(document);
}

export function language() {
  return current;
}

export function locale() {
  return current === "nl" ? "nl-NL" : "en-GB";
}

export function t(key, params) {
  let s = messages[key] ?? fallback[key];
  if (s === undefined) return key;
  if (params) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
  return s;
}

/** A word from a vocabulary (kind, level, outcome …): its translation, or the raw value when none exists. */
export function word(group, value) {
  if (value === null || value === undefined || value === "") return "—";
  const key = `${group}.${value}`;
  return (messages[key] ?? fallback[key]) || String(value).replace(/_/g, " ");
}

export function applyTranslations(root) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  root.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  root.querySelectorAll("[data-i18n-aria]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nAria)); });
}

const TZ = "Europe/Amsterdam";

export function fmtTime(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale(), { timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit" })
    .format(new Date(iso));
}

export function fmtDateTime(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale(), {
    timeZone: TZ, year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  }).format(new Date(iso));
}

export function fmtDate(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale(), { timeZone: TZ, year: "numeric", month: "short", day: "numeric" })
    .format(new Date(iso));
}

/** "4:07" or "1:02:09": a running timer. */
export function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function fmtAgo(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return t("ago.seconds", { n: s });
  if (s < 3600) return t("ago.minutes", { n: Math.floor(s / 60) });
  if (s < 86400) return t("ago.hours", { n: Math.floor(s / 3600) });
  return t("ago.days", { n: Math.floor(s / 86400) });
}

export function fmtMetres(m) {
  if (m === null || m === undefined) return "—";
  return m >= 1000 ? `${(m / 1000).toFixed(2)} km` : `${Math.round(m)} m`;
}
