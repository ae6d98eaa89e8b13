// The console's maps, on Leaflet (vendored in static/vendor/, loaded as a classic script before the modules): the
// incident map (zones with their buffers, both parties' fixes with accuracy circles, the proving fixes, the
// contact ban's rings) and the shapes the case set-up draws. Tiles only when the server names a tile source.
import { t, fmtTime, fmtMetres } from "./i18n.js";

const L = window.L;
const R = 6378137;

export function haversine(a, b) {
  const rad = Math.PI / 180;
  const dlat = (b.lat - a.lat) * rad, dlon = (b.lon - a.lon) * rad;
  const h = Math.sin(dlat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dlon / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(h));
}

function project(lon, lat) {
  return [(lon * Math.PI / 180) * R, -R * Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI / 180) / 2))]; // y grows southwards
}

function unproject([x, y]) {
  return [(2 * Math.atan(Math.exp(-y / R)) - Math.PI / 2) * 180 / Math.PI, x / R * 180 / Math.PI]; // [lat, lon]
}

function signedArea(pts) {
  let a = 0;
  for (let i = 0; i < pts.length; i++) {
    const [x1, y1] = pts[i], [x2, y2] = pts[(i + 1) % pts.length];
    a += x1 * y2 - x2 * y1;
  }
  return a / 2;
}

/** The outline of a ring grown by ``d`` (Mercator units): offset edges, round outer corners, mitred inner ones. */
export function offsetRing(input, d) {
  const pts = input.slice();
  if (pts.length > 1 && pts[0][0] === pts[pts.length - 1][0] && pts[0][1] === pts[pts.length - 1][1]) pts.pop();
  if (pts.length < 3 || d <= 0) return pts;
  const sign = signedArea(pts) > 0 ? 1 : -1;
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

export function polygonsOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

/** A new Leaflet map in ``container`` with the configured tiles (none when the server names no source). */
export function baseMap(container, tileUrl, options = {}) {
  const map = L.map(container, { zoomControl: true, attributionControl: !!tileUrl, keyboard: true, ...options });
  if (tileUrl) {
    let host = "";
    try { host = new URL(tileUrl.replace(/\{[xyz]\}/g, "0")).host; } catch { /* shown without a host */ }
    L.tileLayer(tileUrl, {
      maxZoom: 19, className: "tile",
      attribution: host.includes("pdok") ? t("map.attribution_pdok") : t("map.attribution", { host }),
    }).addTo(map);
  }
  L.control.scale({ imperial: false }).addTo(map);
  map.setView([52.09, 5.12], 13); // Utrecht until there is something to frame
  return map;
}

/** A zone as Leaflet layers: its shape and, with a buffer, the buffer's outline. */
export function zoneLayers(z, { alerted = false, interactive = true } = {}) {
  const g = z.geometry || {};
  const kind = z.kind === "inclusion" ? "inclusion" : "exclusion";
  const shapeClass = `zone ${kind}${alerted ? " alerted" : ""}`;
  const layers = [];
  if (g.type === "Circle") {
    const centre = [g.center[1], g.center[0]];
    layers.push(L.circle(centre, { radius: g.radius_m, className: shapeClass, interactive }));
    if (z.buffer_m > 0) layers.push(L.circle(centre, { radius: g.radius_m + z.buffer_m, className: `buffer ${kind}`, interactive: false, fill: false }));
  } else {
    const polys = polygonsOf(g);
    if (!polys.length) return layers;
    layers.push(L.polygon(polys.map((poly) => poly.map((ring) => ring.map(([lon, lat]) => [lat, lon]))),
      { className: shapeClass, interactive }));
    if (z.buffer_m > 0) {
      const rings = polys.map((poly) => {
        const outer = poly[0] || [];
        const k = outer.length ? 1 / Math.cos(outer[0][1] * Math.PI / 180) : 1;
        return offsetRing(outer.map(([lon, lat]) => project(lon, lat)), z.buffer_m * k).map(unproject);
      });
      layers.push(L.polygon(rings, { className: `buffer ${kind}`, interactive: false, fill: false }));
    }
  }
  const title = `${z.name || ""} (${t("zone_kind." + kind)}${z.buffer_m ? `, ${t("map.buffer")} ${fmtMetres(z.buffer_m)}` : ""})`;
  layers[0].bindTooltip(title);
  return layers;
}

export class IncidentMap {
  constructor(container, { tileUrl } = {}) {
    this.container = container;
    container.replaceChildren();
    container.classList.add("map");
    this.map = baseMap(container, tileUrl || null);
    container.setAttribute("aria-label", t("map.label"));
    this.layer = L.featureGroup().addTo(this.map);
    this.data = null;
    this.framed = false;
    this._resize = new ResizeObserver(() => this.map.invalidateSize());
    this._resize.observe(container);
  }

  /** ``focus`` (optional): the fixes and zone ids the first view frames (the incident). */
  setData(data, { keepView = false } = {}) {
    this.data = { zones: [], fixes: [], evidence: new Set(), alertZoneId: null, rings: null, focus: null, ...data };
    this._draw();
    if (!keepView || !this.framed) this.fit(true);
  }

  render() {
    this.map.invalidateSize();
    if (this.data) this._draw();
  }

  fit(focused = false) {
    const d = this.data;
    let bounds = null;
    const extend = (b) => { if (b && b.isValid()) bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast()); };
    if (focused && d.focus) {
      for (const f of d.focus.fixes) extend(L.latLng(f.lat, f.lon).toBounds(2 * Math.min(f.accuracy_m || 0, 300) + 50));
      for (const z of d.zones) if (d.focus.zoneIds.has(String(z.id))) for (const l of zoneLayers(z)) extend(this._boundsOf(l));
    }
    if (!bounds) {
      for (const f of d.fixes) extend(L.latLng(f.lat, f.lon).toBounds(2 * Math.min(f.accuracy_m || 0, 300) + 50));
      for (const z of d.zones) for (const l of zoneLayers(z)) extend(this._boundsOf(l));
    }
    if (d.rings) extend(L.latLng(d.rings.center.lat, d.rings.center.lon).toBounds(2 * Math.max(...d.rings.radii.map((r) => r.m))));
    if (!bounds) return;
    this.map.fitBounds(bounds, { padding: [20, 20], maxZoom: 18, animate: false });
    this.framed = true;
  }

  _boundsOf(layer) {
    if (layer instanceof L.Circle) return layer.getLatLng().toBounds(2 * layer.getRadius());
    return layer.getBounds();
  }

  _draw() {
    const d = this.data;
    this.layer.clearLayers();
    for (const z of d.zones) {
      const alerted = d.alertZoneId && String(z.id) === String(d.alertZoneId);
      for (const l of zoneLayers(z, { alerted })) this.layer.addLayer(l);
    }
    if (d.rings) {
      for (const r of d.rings.radii) {
        this.layer.addLayer(L.circle([d.rings.center.lat, d.rings.center.lon], { radius: r.m, className: `ring ${r.kind}`, fill: false })
          .bindTooltip(`${t("map.ring_" + r.kind)}: ${fmtMetres(r.m)}`));
      }
    }
    const byParty = {};
    for (const f of d.fixes) (byParty[f.party] || (byParty[f.party] = [])).push(f);
    for (const [party, fixes] of Object.entries(byParty)) {
      fixes.sort((a, b) => Date.parse(a.recorded_at) - Date.parse(b.recorded_at));
      if (fixes.length > 1) this.layer.addLayer(L.polyline(fixes.map((f) => [f.lat, f.lon]), { className: `track ${party}`, interactive: false }));
      for (const f of fixes) {
        if (f.accuracy_m > 0) this.layer.addLayer(L.circle([f.lat, f.lon], { radius: f.accuracy_m, className: `accuracy ${party}`, interactive: false }));
      }
      fixes.forEach((f, i) => {
        const evidence = d.evidence.has(String(f.id));
        const last = i === fixes.length - 1;
        this.layer.addLayer(L.circleMarker([f.lat, f.lon], {
          radius: evidence ? 6 : last ? 5 : 3.5, className: `fix ${party}${evidence ? " evidence" : ""}${last ? " latest" : ""}`,
        }).bindTooltip(`${t("party." + party)} ${fmtTime(f.recorded_at)} ±${Math.round(f.accuracy_m || 0)} m${evidence ? " · " + t("evidence.proving_fix") : ""}`));
      });
    }
  }
}
