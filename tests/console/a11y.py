"""Accessibility checks a browser test can run on a view: WCAG 2.1 contrast of visible text against the background
it is drawn on, and that every form control has a label."""

from __future__ import annotations

from typing import Any

# Runs in the page through the DevTools protocol (page.evaluate), not eval: the console's CSP allows no eval.
_CONTRAST_JS = """
(root) => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const over = (top, under) => { const a = top[3]; return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat(1); };
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    return layers.reverse().reduce((acc, c) => over(c, acc), [255, 255, 255, 1]); };
  const failures = []; let checked = 0;
  for (const el of document.querySelector(root).querySelectorAll("*")) {
    if (el.closest("svg") || !el.getClientRects().length) continue;
    const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const st = getComputedStyle(el); if (st.visibility === "hidden" || Number(st.opacity) === 0) continue;
    const disabled = el.disabled || el.closest("button:disabled");
    if (disabled) continue;  // WCAG 1.4.3 exempts inactive controls
    const fg = parse(st.color); const bg = background(el); const text = over(fg, bg);
    const l1 = lum(text), l2 = lum(bg); const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked++;
    if (ratio < need) failures.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 40)}": ${ratio.toFixed(2)} < ${need}`);
  }
  return { checked, failures };
}
"""

_LABELS_JS = """
(root) => Array.from(document.querySelector(root).querySelectorAll("input, select, textarea"))
  .filter((el) => el.type !== "hidden" && !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
  .map((el) => el.id || el.name || el.outerHTML.slice(0, 60))
"""


def assert_contrast(page: Any, root: str, at_least: int = 5) -> None:
    """Every visible text of ``root`` meets WCAG AA contrast (4.5:1; 3:1 for large text)."""
    result = page.evaluate(_CONTRAST_JS, root)
    assert result["checked"] >= at_least, f"only {result['checked']} texts checked in {root}"
    assert not result["failures"], result["failures"]


def assert_labelled(page: Any, root: str) -> None:
    """Every form control of ``root`` has a label (or an aria-label)."""
    unlabelled = page.evaluate(_LABELS_JS, root)
    assert not unlabelled, unlabelled
