/* Inline-SVG charts for the operations page: bars and lines over time buckets, no library.
   Every figure is drawn with SVG attributes and classes from ui.css (the CSP forbids inline styles). */
"use strict";

const GFCharts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 560;
  const HEIGHT = 180;
  const PAD = { left: 56, right: 12, top: 12, bottom: 26 };

  function svgEl(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function timeLabel(iso, minutes) {
    const date = new Date(iso);
    const options = minutes > 1440
      ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
      : { hour: "2-digit", minute: "2-digit" };
    return date.toLocaleString("en-GB", options);
  }

  /** A "nice" upper bound for the y axis (1, 2 or 5 times a power of ten). */
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
    return 10 * power;
  }

  /**
   * Draw a chart into `container`.
   * spec: {label, kind: "bar" | "line", format(value), buckets: [{start, end}], minutes,
   *        series: [{name, cls, values: [number | null]}], empty: "text shown without data"}
   */
  function draw(container, spec) {
    const values = spec.series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
    const hasData = values.some((v) => v > 0);
    const top = niceMax(Math.max(0, ...values));
    const plotW = WIDTH - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const count = spec.buckets.length;
    const step = plotW / Math.max(count, 1);
    const x = (i) => PAD.left + step * i + step / 2;
    const y = (v) => PAD.top + plotH - (v / top) * plotH;

    const legend = spec.series.map((s) => s.name).join(", ");
    const summary = hasData
      ? spec.label + " (" + legend + "), peak " + spec.format(Math.max(...values))
      : spec.label + ": " + spec.empty;
    const svg = svgEl("svg", {
      viewBox: "0 0 " + WIDTH + " " + HEIGHT,
      class: "chart-svg",
      role: "img",
      "aria-label": summary,
      "data-testid": "chart-svg",
    }, svgEl("title", { text: summary }));

    // grid and y axis: 0, half and the top
    for (const fraction of [0, 0.5, 1]) {
      const value = top * fraction;
      svg.append(svgEl("line", {
        x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), class: "grid",
      }));
      svg.append(svgEl("text", {
        x: PAD.left - 6, y: y(value) + 4, class: "axis y-label", "text-anchor": "end",
        text: spec.format(value),
      }));
    }
    // x axis: first, middle and last bucket start
    if (count) {
      const marks = [...new Set([0, Math.floor((count - 1) / 2), count - 1])];
      for (const i of marks) {
        svg.append(svgEl("text", {
          x: x(i), y: HEIGHT - 8, class: "axis x-label", "text-anchor": "middle",
          text: timeLabel(spec.buckets[i].start, spec.minutes),
        }));
      }
    }

    if (spec.kind === "bar") {
      const width = Math.max(1, (step * 0.8) / spec.series.length);
      spec.series.forEach((s, n) => {
        s.values.forEach((v, i) => {
          if (!v) return;
          const left = PAD.left + step * i + step * 0.1 + width * n;
          svg.append(svgEl("rect", {
            x: left.toFixed(2), y: y(v).toFixed(2), width: width.toFixed(2),
            height: Math.max(0.5, PAD.top + plotH - y(v)).toFixed(2),
            class: "bar " + s.cls, "data-value": v, "data-series": s.name,
          }, svgEl("title", { text: s.name + " " + timeLabel(spec.buckets[i].start, spec.minutes) + ": " + spec.format(v) })));
        });
      });
    } else {
      for (const s of spec.series) {
        let path = "";
        let pen = false;
        s.values.forEach((v, i) => {
          if (v === null || v === undefined) { pen = false; return; }
          path += (pen ? " L " : " M ") + x(i).toFixed(2) + " " + y(v).toFixed(2);
          pen = true;
        });
        if (path) svg.append(svgEl("path", { d: path.trim(), class: "line " + s.cls }));
        s.values.forEach((v, i) => {
          if (v === null || v === undefined) return;
          svg.append(svgEl("circle", {
            cx: x(i).toFixed(2), cy: y(v).toFixed(2), r: 3,
            class: "point " + s.cls, "data-value": v, "data-series": s.name,
          }, svgEl("title", { text: s.name + " " + timeLabel(spec.buckets[i].start, spec.minutes) + ": " + spec.format(v) })));
        });
      }
    }
    if (!hasData) {
      svg.append(svgEl("text", {
        x: PAD.left + plotW / 2, y: PAD.top + plotH / 2, class: "chart-empty",
        "text-anchor": "middle", text: spec.empty,
      }));
    }

    const keys = GF.el("ul", { class: "chart-legend" },
      ...spec.series.map((s) => GF.el("li", { class: "legend-" + s.cls, text: s.name })));
    container.replaceChildren(GF.el("h3", { text: spec.label }), keys, svg);
    container.dataset.empty = hasData ? "false" : "true";
  }

  return { draw, niceMax };
})();
