// A small SVG line chart for loss curves: drawn here rather than with a charting library, because the page needs only
// lines over steps with axes, a log scale and a legend (about a hundred lines), and nothing then has to be fetched or vendored.
"use strict";
const LineChart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#455a64"];

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }

  // Round tick values: 1, 2 or 5 times a power of ten.
  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
    return out;
  }

  function fmt(v) {
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(1) : String(+v.toPrecision(4));
  }

  // series: [{name, xs, ys}] (ys may hold null); options: {title, log, width, height, xLabel}
  function draw(container, series, options = {}) {
    const W = options.width || 420, H = options.height || 240, L = 58, R = 10, T = 24, B = 34;
    const log = !!options.log;
    const tf = y => (log ? Math.log10(y) : y);
    const points = series.map(s => s.xs.map((x, i) => [x, s.ys[i]]).filter(([x, y]) => y !== null && isFinite(y) && (!log || y > 0)));
    const all = points.flat();
    const box = document.createElement("div");
    box.className = "chart";
    const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" }, box);
    el("text", { x: L, y: 15, "font-weight": "600" }, svg).textContent = options.title || "";
    container.appendChild(box);
    if (all.length === 0) { el("text", { x: L, y: H / 2 }, svg).textContent = "no data yet"; return box; }
    let x0 = Math.min(...all.map(p => p[0])), x1 = Math.max(...all.map(p => p[0]));
    let y0 = Math.min(...all.map(p => tf(p[1]))), y1 = Math.max(...all.map(p => tf(p[1])));
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R);
    const sy = y => T + (1 - (tf(y) - y0) / (y1 - y0)) * (H - T - B);
    const axes = el("g", { stroke: "#bbb", "stroke-width": 1 }, svg);
    el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B }, axes);
    el("line", { x1: L, y1: T, x2: L, y2: H - B }, axes);
    for (const t of ticks(x0, x1, 5)) {
      el("line", { x1: sx(t), y1: H - B, x2: sx(t), y2: H - B + 4, stroke: "#999" }, svg);
      el("text", { x: sx(t), y: H - B + 16, "text-anchor": "middle" }, svg).textContent = fmt(t);
    }
    // Tick values in data units: powers of ten on a log axis spanning a decade or more, else round values.
    const span = log && y1 - y0 >= 1;
    const yv = span ? ticks(Math.ceil(y0), Math.floor(y1), 4).map(t => Math.pow(10, t))
      : ticks(log ? Math.pow(10, y0) : y0, log ? Math.pow(10, y1) : y1, 4);
    for (const v of yv) {
      const y = sy(v);
      if (!(y >= T - 1 && y <= H - B + 1)) continue;
      el("line", { x1: L, y1: y, x2: W - R, y2: y, stroke: "#eee" }, svg);
      el("text", { x: L - 4, y: y + 4, "text-anchor": "end" }, svg).textContent = fmt(v);
    }
    el("text", { x: W - R, y: H - 4, "text-anchor": "end" }, svg).textContent = options.xLabel || "step";
    points.forEach((pts, i) => {
      if (pts.length === 0) return;
      const color = COLORS[i % COLORS.length];
      const d = pts.map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
      el("path", { d, fill: "none", stroke: color, "stroke-width": 1.5, "data-series": series[i].name }, svg);
      if (series.length > 1) {
        el("rect", { x: W - R - 120, y: T + 4 + i * 14, width: 10, height: 3, fill: color }, svg);
        el("text", { x: W - R - 106, y: T + 9 + i * 14 }, svg).textContent = series[i].name;
      }
    });
    return box;
  }

  return { draw };
})();
