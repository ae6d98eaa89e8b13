// The incident map: plain SVG in Web Mercator (EPSG:3857) drawn by our own code, so zones and fixes show on a plain
// background with no library and no network; an optional XYZ tile layer lies underneath when a tile URL is set.
import { t, fmtTime, fmtMetres } from "./i18n.js";

const NS = "http://www.w3.org/2000/svg";
const R = 6378137;
const HALF = Math.PI * R;
const WORLD = 2 * HALF;
const MAX_TILES = 80;

export function project(lon, lat) {
  const x = (lon * Math.PI / 180) * R;
  const clamped = Math.max(-85.05, Math.min(85.05, lat));
  const y = R * Math.log(Math.tan(Math.PI / 4 + (clamped * Math.PI / 180) / 2));
  return [x, -y]; // SVG's y grows downwards
}

/** Mercator units per metre on the ground at this latitude. */
export function stretch(lat) {
  return 1 / Math.cos(lat * Math.PI / 180);
}

export function haversine(a, b) {
  const rad = Math.PI / 180;
  const dlat = (b.lat - a.lat) * rad, dlon = (b.lon - a.lon) * rad;
  const h = Math.sin(dlat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dlon / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(h));
}

function el(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function ringPath(points) {
  return points.map((p, i) => `${i ? "L" : "M"}${p[0].toFixed(2)} ${p[1].toFixed(2)}`).join(" ") + " Z";
}

function signedArea(pts) {
  let a = 0;
  for (let i = 0; i < pts.length; i++) {
    const [x1, y1] = pts[i], [x2, y2] = pts[(i + 1) % pts.length];
    a += x1 * y2 - x2 * y1;
  }
  return a / 2;
}

/** The outline of a ring grown by ``d``: offset edges, round outer corners, mitred inner ones. */
export function offsetRing(input, d) {
  const pts = input.slice();
  if (pts.length > 1 && pts[0][0] === pts[pts.length - 1][0] && pts[0][1] === pts[pts.length - 1][1]) pts.pop();
  if (pts.length < 3 || d <= 0) return pts;
  const area = signedArea(pts);
  const sign = area > 0 ? 1 : -1;
  const out = [];
  const n = pts.length;
  const normal = (a, b) => {
    const dx = b[0] - a[0], dy = b[1] - a[1];
    const len = Math.hypot(dx, dy) || 1;
    return [sign * dy / len, -sign * dx / len];
  };
  for (let i = 0; i < n; i++) {
    const prev = pts[(i - 1 + n) % n], p = pts[i], next = pts[(i + 1) % n];
    const n1 = normal(prev, p), n2 = normal(p, next);
    const e1 = [p[0] - prev[0], p[1] - prev[1]], e2 = [next[0] - p[0], next[1] - p[1]];
    const cross = e1[0] * e2[1] - e1[1] * e2[0];
    if (cross * sign >= 0) { // convex corner: an arc around it
      const a1 = Math.atan2(n1[1], n1[0]);
      let delta = Math.atan2(n2[1], n2[0]) - a1;
      while (delta <= -Math.PI) delta += 2 * Math.PI;
      while (delta > Math.PI) delta -= 2 * Math.PI;
      const steps = Math.max(1, Math.ceil(Math.abs(delta) / (Math.PI / 12)));
      for (let k = 0; k <= steps; k++) {
        const a = a1 + delta * k / steps;
        out.push([p[0] + d * Math.cos(a), p[1] + d * Math.sin(a)]);
      }
    } else { // concave corner: where the two offset edges meet
      const m = [n1[0] + n2[0], n1[1] + n2[1]];
      const m2 = Math.max(m[0] * m[0] + m[1] * m[1], 0.25);
      out.push([p[0] + m[0] * 2 * d / m2, p[1] + m[1] * 2 * d / m2]);
    }
  }
  return out;
}

function polygonsOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

function tileHost(url) {
  try { return new URL(url.replace(/\{[xyz]\}/g, "0")).host; } catch { return ""; }
}

export class IncidentMap {
  constructor(container, { tileUrl } = {}) {
    this.container = container;
    this.tileUrl = tileUrl || null;
    this.data = { zones: [], fixes: [], evidence: new Set(), alertZoneId: null, rings: null };
    this.view = null;
    container.replaceChildren();
    container.classList.add("map");
    this.svg = el("svg", { class: "map-svg", role: "img", preserveAspectRatio: "xMidYMid meet" }, container);
    this.svg.setAttribute("aria-label", t("map.label"));
    const controls = document.createElement("div");
    controls.className = "map-controls";
    for (const [label, key, fn] of [["+", "map.zoom_in", () => this.zoom(0.5)], ["−", "map.zoom_out", () => this.zoom(2)],
      ["⤢", "map.fit", () => { this.fit(); this.render(); }]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.title = t(key);
      b.setAttribute("aria-label", t(key));
      b.addEventListener("click", fn);
      controls.appendChild(b);
    }
    container.appendChild(controls);
    this.scale = document.createElement("div");
    this.scale.className = "map-scale";
    container.appendChild(this.scale);
    if (this.tileUrl) {
      const attribution = document.createElement("div");
      attribution.className = "map-attribution";
      const host = tileHost(this.tileUrl);
      attribution.textContent = host.includes("pdok") ? t("map.attribution_pdok") : t("map.attribution", { host });
      container.appendChild(attribution);
    }
    this._drag();
    this._resize = new ResizeObserver(() => this.render());
    this._resize.observe(container);
  }

  /** ``focus`` (optional): the fixes and zone ids the first view frames (the incident); "show everything" frames all. */
  setData(data, { keepView = false } = {}) {
    this.data = { zones: [], fixes: [], evidence: new Set(), alertZoneId: null, rings: null, focus: null, ...data };
    if (!keepView || !this.view) this.fit(true);
    this.render();
  }

  _bbox(focused = false) {
    const focus = focused ? this.data.focus : null;
    const fixes = focus ? focus.fixes : this.data.fixes;
    const zones = focus ? this.data.zones.filter((z) => focus.zoneIds.has(String(z.id))) : this.data.zones;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    const add = (x, y, r = 0) => {
      minX = Math.min(minX, x - r); maxX = Math.max(maxX, x + r);
      minY = Math.min(minY, y - r); maxY = Math.max(maxY, y + r);
    };
    for (const f of fixes) {
      const [x, y] = project(f.lon, f.lat);
      add(x, y, Math.min(f.accuracy_m || 0, 300) * stretch(f.lat));
    }
    for (const z of zones) {
      const g = z.geometry || {};
      if (g.type === "Circle") {
        const [x, y] = project(g.center[0], g.center[1]);
        add(x, y, (g.radius_m + (z.buffer_m || 0)) * stretch(g.center[1]));
      } else {
        for (const poly of polygonsOf(g)) for (const [lon, lat] of poly[0] || []) {
          const [x, y] = project(lon, lat);
          add(x, y, (z.buffer_m || 0) * stretch(lat));
        }
      }
    }
    if (this.data.rings) {
      const { center, radii } = this.data.rings;
      const [x, y] = project(center.lon, center.lat);
      add(x, y, Math.max(...radii.map((r) => r.m)) * stretch(center.lat));
    }
    return minX === Infinity ? null : { minX, minY, maxX, maxY };
  }

  fit(focused = false) {
    const b = (focused && this.data.focus && this._bbox(true)) || this._bbox();
    if (!b) { this.view = null; return; }
    const w = Math.max(b.maxX - b.minX, 200), h = Math.max(b.maxY - b.minY, 200);
    this.view = { cx: (b.minX + b.maxX) / 2, cy: (b.minY + b.maxY) / 2, w: w * 1.15, h: h * 1.15 };
  }

  zoom(factor) {
    if (!this.view) return;
    this.view.w *= factor;
    this.view.h *= factor;
    this.render();
  }

  _drag() {
    let start = null;
    this.svg.addEventListener("pointerdown", (e) => {
      if (!this.view) return;
      start = { x: e.clientX, y: e.clientY, cx: this.view.cx, cy: this.view.cy };
      this.svg.setPointerCapture(e.pointerId);
    });
    this.svg.addEventListener("pointermove", (e) => {
      if (!start || !this.view) return;
      const u = this._unitsPerPx();
      this.view.cx = start.cx - (e.clientX - start.x) * u;
      this.view.cy = start.cy - (e.clientY - start.y) * u;
      this.render();
    });
    const end = () => { start = null; };
    this.svg.addEventListener("pointerup", end);
    this.svg.addEventListener("pointercancel", end);
    this.svg.addEventListener("wheel", (e) => {
      if (!this.view) return;
      e.preventDefault();
      this.zoom(e.deltaY > 0 ? 1.25 : 0.8);
    }, { passive: false });
  }

  _size() {
    const r = this.svg.getBoundingClientRect();
    return { w: r.width || 600, h: r.height || 400 };
  }

  _unitsPerPx() {
    const { w, h } = this._size();
    return this.view ? Math.max(this.view.w / w, this.view.h / h) : 1;
  }

  render() {
    const svg = this.svg;
    svg.replaceChildren();
    if (!this.view) {
      const msg = el("text", { x: 10, y: 24, class: "map-empty" }, svg);
      msg.textContent = t("map.nothing");
      svg.setAttribute("viewBox", "0 0 400 100");
      return;
    }
    const { w: pw, h: ph } = this._size();
    const u = this._unitsPerPx();
    const vw = pw * u, vh = ph * u;
    const x0 = this.view.cx - vw / 2, y0 = this.view.cy - vh / 2;
    svg.setAttribute("viewBox", `${x0} ${y0} ${vw} ${vh}`);
    el("rect", { x: x0, y: y0, width: vw, height: vh, class: "map-background" }, svg);
    const layers = {};
    for (const name of ["tiles", "zones", "buffers", "rings", "accuracy", "tracks", "fixes"]) {
      layers[name] = el("g", { class: `layer-${name}` }, svg);
    }
    this._tiles(layers.tiles, x0, y0, vw, vh, u);
    this._zones(layers.zones, layers.buffers);
    this._rings(layers.rings);
    this._fixes(layers, u);
    this._scaleBar(u);
  }

  _tiles(g, x0, y0, vw, vh, u) {
    if (!this.tileUrl) return;
    let z = Math.floor(Math.log2(WORLD / (256 * u)));
    z = Math.max(0, Math.min(19, z));
    const n = 2 ** z, size = WORLD / n;
    const tx0 = Math.floor((x0 + HALF) / size), tx1 = Math.floor((x0 + vw + HALF) / size);
    const ty0 = Math.floor((y0 + HALF) / size), ty1 = Math.floor((y0 + vh + HALF) / size);
    if ((tx1 - tx0 + 1) * (ty1 - ty0 + 1) > MAX_TILES) return;
    for (let tx = tx0; tx <= tx1; tx++) {
      for (let ty = Math.max(0, ty0); ty <= Math.min(n - 1, ty1); ty++) {
        const wx = ((tx % n) + n) % n;
        const href = this.tileUrl.replace("{z}", z).replace("{x}", wx).replace("{y}", ty);
        const img = el("image", {
          href, x: tx * size - HALF, y: ty * size - HALF, width: size, height: size, class: "tile",
          preserveAspectRatio: "none",
        }, g);
        img.addEventListener("error", () => img.remove(), { once: true });
      }
    }
  }

  _zones(zoneLayer, bufferLayer) {
    for (const z of this.data.zones) {
      const g = z.geometry || {};
      const kind = z.kind === "inclusion" ? "inclusion" : "exclusion";
      const alerted = this.data.alertZoneId && String(z.id) === String(this.data.alertZoneId) ? " alerted" : "";
      const title = `${z.name} (${t("zone_kind." + kind)}${z.buffer_m ? `, ${t("map.buffer")} ${fmtMetres(z.buffer_m)}` : ""})`;
      let shape;
      if (g.type === "Circle") {
        const [x, y] = project(g.center[0], g.center[1]);
        const k = stretch(g.center[1]);
        shape = el("circle", { cx: x, cy: y, r: g.radius_m * k, class: `zone ${kind}${alerted}`, "data-zone-id": z.id }, zoneLayer);
        if (z.buffer_m > 0) {
          el("circle", { cx: x, cy: y, r: (g.radius_m + z.buffer_m) * k, class: `buffer ${kind}`, "data-zone-id": z.id }, bufferLayer);
        }
      } else {
        const polys = polygonsOf(g);
        if (!polys.length) continue;
        const d = polys.map((poly) => poly.map((ring) => ringPath(ring.map(([lon, lat]) => project(lon, lat)))).join(" ")).join(" ");
        shape = el("path", { d, class: `zone ${kind}${alerted}`, "fill-rule": "evenodd", "data-zone-id": z.id }, zoneLayer);
        if (z.buffer_m > 0) {
          const bd = polys.map((poly) => {
            const outer = poly[0] || [];
            const k = stretch(outer.length ? outer[0][1] : 52);
            return ringPath(offsetRing(outer.map(([lon, lat]) => project(lon, lat)), z.buffer_m * k));
          }).join(" ");
          el("path", { d: bd, class: `buffer ${kind}`, "data-zone-id": z.id }, bufferLayer);
        }
      }
      el("title", {}, shape).textContent = title;
    }
  }

  _rings(g) {
    const rings = this.data.rings;
    if (!rings) return;
    const [x, y] = project(rings.center.lon, rings.center.lat);
    const k = stretch(rings.center.lat);
    for (const r of rings.radii) {
      const c = el("circle", { cx: x, cy: y, r: r.m * k, class: `ring ${r.kind}` }, g);
      el("title", {}, c).textContent = `${t("map.ring_" + r.kind)}: ${fmtMetres(r.m)}`;
    }
  }

  _fixes(layers, u) {
    const byParty = { offender: [], victim: [] };
    for (const f of this.data.fixes) (byParty[f.party] || (byParty[f.party] = [])).push(f);
    for (const [party, fixes] of Object.entries(byParty)) {
      fixes.sort((a, b) => Date.parse(a.recorded_at) - Date.parse(b.recorded_at));
      if (fixes.length > 1) {
        const d = fixes.map((f, i) => {
          const [x, y] = project(f.lon, f.lat);
          return `${i ? "L" : "M"}${x.toFixed(2)} ${y.toFixed(2)}`;
        }).join(" ");
        el("path", { d, class: `track ${party}` }, layers.tracks);
      }
      fixes.forEach((f, i) => {
        const [x, y] = project(f.lon, f.lat);
        if (f.accuracy_m > 0) {
          el("circle", { cx: x, cy: y, r: f.accuracy_m * stretch(f.lat), class: `accuracy ${party}` }, layers.accuracy);
        }
        const evidence = this.data.evidence.has(String(f.id));
        const last = i === fixes.length - 1;
        const dot = el("circle", {
          cx: x, cy: y, r: (evidence ? 6 : last ? 5 : 3.5) * u,
          class: `fix ${party}${evidence ? " evidence" : ""}${last ? " latest" : ""}`, "data-fix-id": f.id,
        }, layers.fixes);
        el("title", {}, dot).textContent =
          `${t("party." + party)} ${fmtTime(f.recorded_at)} ±${Math.round(f.accuracy_m || 0)} m${evidence ? " · " + t("evidence.proving_fix") : ""}`;
      });
    }
  }

  _scaleBar(u) {
    const lat = this._centerLat();
    const metresPerPx = u / stretch(lat);
    const target = metresPerPx * 120;
    const nice = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
    const m = nice.reduce((best, v) => (v <= target ? v : best), nice[0]);
    this.scale.style.width = `${Math.round(m / metresPerPx)}px`;
    this.scale.textContent = fmtMetres(m);
  }

  _centerLat() {
    const y = -this.view.cy;
    return (2 * Math.atan(Math.exp(y / R)) - Math.PI / 2) * 180 / Math.PI;
  }
}
