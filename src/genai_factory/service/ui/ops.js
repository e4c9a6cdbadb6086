/* The operations page: GET /v1/admin/stats and /v1/admin/stats/series for the chosen window, as
   cards, tables and charts; GET /v1/admin/mlops as the MLOps panel. */
"use strict";

(() => {
  const { el } = GF;
  const windowSelect = document.getElementById("window");
  const autoRefresh = document.getElementById("auto-refresh");
  const errorBox = document.getElementById("ops-error");
  const REFRESH_MS = 10000;
  let timer = null;
  let loading = false;

  function setText(id, value) {
    document.getElementById(id).textContent = value;
  }

  function fillTable(id, rows, columns, emptyText) {
    const body = document.getElementById(id);
    if (!rows.length) {
      body.replaceChildren(
        el("tr", { class: "empty" }, el("td", { colspan: columns, text: emptyText })),
      );
      return;
    }
    body.replaceChildren(...rows);
  }

  function cell(value, numeric) {
    return el("td", { class: numeric ? "num" : null, text: value });
  }

  const STATE_CLASS = { closed: "ok", half_open: "warn", open: "bad" };

  function render(stats) {
    setText("stat-requests", GF.formatInt(stats.requests));
    setText("stat-errors", GF.formatInt(stats.errors));
    document.getElementById("stat-errors").classList.toggle("bad-text", stats.errors > 0);
    setText("stat-p50", GF.formatMs(stats.p50_latency_ms));
    setText("stat-p95", GF.formatMs(stats.p95_latency_ms));
    setText("stat-tokens", GF.formatInt(stats.prompt_tokens + stats.completion_tokens));
    setText("stat-cost", GF.formatUsd(stats.cost_usd));

    fillTable(
      "keys-body",
      stats.keys.map((k) =>
        el("tr", { dataset: { key: k.key_id } },
          cell(k.key_id), cell(GF.formatInt(k.requests), true), cell(GF.formatInt(k.errors), true),
          cell(GF.formatInt(k.prompt_tokens), true), cell(GF.formatInt(k.completion_tokens), true),
          cell(GF.formatUsd(k.cost_usd), true)),
      ),
      6,
      "No requests in this window.",
    );
    fillTable(
      "breakers-body",
      stats.breakers.map((b) =>
        el("tr", { dataset: { backend: b.backend } },
          cell(b.backend),
          el("td", {}, el("span", {
            class: "badge " + (STATE_CLASS[b.state] || "bad"),
            dataset: { testid: "breaker-state" },
            text: b.state.replace("_", "-"),
          }))),
      ),
      2,
      "No circuit breaker in the model chain.",
    );
    fillTable(
      "guards-body",
      stats.guard_events.map((g) =>
        el("tr", {}, cell(g.guard), cell(g.action), cell(g.stage), cell(GF.formatInt(g.count), true)),
      ),
      4,
      "No guard blocked, redacted or flagged anything.",
    );
    fillTable(
      "status-body",
      Object.entries(stats.by_status).map(([status, count]) =>
        el("tr", {}, cell(status), cell(GF.formatInt(count), true)),
      ),
      2,
      "No requests in this window.",
    );
    const truncated = document.getElementById("truncated");
    truncated.hidden = !stats.truncated;
    truncated.textContent = stats.truncated
      ? "The window holds more requests than were read: the figures cover the newest " +
        GF.formatInt(stats.rows) + "."
      : "";
  }

  const BUCKETS = 30;
  const COST_FORMAT = (v) => GF.formatUsd(v);
  const COUNT_FORMAT = (v) => (Math.round(v) === v ? GF.formatInt(v) : v.toFixed(1));

  function renderSeries(series) {
    const minutes = series.window_minutes;
    const buckets = series.buckets;
    const base = { buckets, minutes, empty: "No requests in this window." };
    const emptyNote = document.getElementById("charts-empty");
    emptyNote.hidden = series.rows > 0;
    GFCharts.draw(document.getElementById("chart-requests"), Object.assign({}, base, {
      label: "Requests and errors", kind: "bar", format: COUNT_FORMAT,
      series: [
        { name: "requests", cls: "requests", values: buckets.map((b) => b.requests) },
        { name: "errors", cls: "errors", values: buckets.map((b) => b.errors) },
      ],
    }));
    GFCharts.draw(document.getElementById("chart-cost"), Object.assign({}, base, {
      label: "Cost (USD)", kind: "bar", format: COST_FORMAT,
      series: [{ name: "cost", cls: "cost", values: buckets.map((b) => b.cost_usd) }],
    }));
    GFCharts.draw(document.getElementById("chart-latency"), Object.assign({}, base, {
      label: "Latency, end to end", kind: "line", format: GF.formatMs,
      empty: "No served requests in this window.",
      series: [
        { name: "p50", cls: "p50", values: buckets.map((b) => b.p50_latency_ms) },
        { name: "p95", cls: "p95", values: buckets.map((b) => b.p95_latency_ms) },
      ],
    }));
    const stageBox = document.getElementById("stage-charts");
    if (!series.stages.length) {
      stageBox.replaceChildren(el("p", { class: "muted", text: "No stage timings in this window." }));
      return;
    }
    stageBox.replaceChildren(...series.stages.map((stage) => {
      const figure = el("figure", { class: "chart", dataset: { stage, testid: "stage-chart" } });
      const pick = (b, key) => {
        const found = b.stages.find((s) => s.stage === stage);
        return found ? found[key] : null;
      };
      GFCharts.draw(figure, Object.assign({}, base, {
        label: "Stage " + stage, kind: "line", format: GF.formatMs,
        empty: "Not timed in this window.",
        series: [
          { name: "p50", cls: "p50", values: buckets.map((b) => pick(b, "p50_ms")) },
          { name: "p95", cls: "p95", values: buckets.map((b) => pick(b, "p95_ms")) },
        ],
      }));
      return figure;
    }));
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString("en-GB") : "–";
  }

  const RUN_CLASS = { FINISHED: "ok", RUNNING: "warn", SCHEDULED: "warn" };
  const GATE_CLASS = { passed: "ok", skipped: "warn", failed: "bad" };

  function renderDrift(drift) {
    const box = document.getElementById("drift-state");
    if (!drift) {
      box.replaceChildren(el("dd", { class: "muted", text: "No drift check has run yet." }));
      return;
    }
    const verdict = drift.drift === null ? "unknown" : drift.drift ? "drift" : "no drift";
    const verdictClass = drift.drift === null ? "warn" : drift.drift ? "bad" : "ok";
    let report = el("span", { class: "muted", text: "no report logged" });
    if (drift.run_url) {
      report = el("a", { href: drift.run_url, target: "_blank", rel: "noopener noreferrer",
        text: "run " + drift.run_id + " in MLflow" });
    } else if (drift.report) {
      report = el("code", { text: drift.report, dataset: { testid: "drift-report" } });
    }
    box.replaceChildren(
      el("dt", { text: "verdict" }),
      el("dd", {}, el("span", { class: "badge " + verdictClass, dataset: { testid: "drift-verdict" }, text: verdict })),
      el("dt", { text: "drifted tests" }),
      el("dd", { text: drift.drifted_tests.length ? drift.drifted_tests.join(", ") : "none" }),
      el("dt", { text: "checked" }),
      el("dd", { text: when(drift.at) }),
      el("dt", { text: "report" }),
      el("dd", {}, report),
    );
  }

  function renderMlops(state) {
    const note = document.getElementById("mlops-note");
    note.textContent = state.error
      ? state.error
      : state.registry ? "" : "No model registry yet: nothing has been registered or tracked.";
    note.classList.toggle("bad-text", Boolean(state.error));
    const version = (v) => (v === null || v === undefined ? "–" : "v" + v);
    fillTable(
      "models-body",
      state.models.map((m) =>
        el("tr", { dataset: { model: m.name } },
          cell(m.name), cell(version(m.champion), true), cell(version(m.challenger), true),
          cell(version(m.latest_version), true),
          cell(m.previous_champions.length ? m.previous_champions.map((v) => "v" + v).join(", ") : "–")),
      ),
      5,
      "No registered model.",
    );
    renderDrift(state.drift);
    fillTable(
      "runs-body",
      state.runs.map((r) =>
        el("tr", { dataset: { job: r.job, run: r.run_id } },
          cell(when(r.started_at)), cell(r.job), cell(r.name),
          el("td", {}, el("span", { class: "badge " + (RUN_CLASS[r.status] || "bad"), text: r.status.toLowerCase() })),
          cell(r.outcome || "–"),
          el("td", {}, r.gate_results.length
            ? el("ul", { class: "gate-list" }, ...r.gate_results.map((g) =>
              el("li", { dataset: { testid: "gate" } },
                el("span", { class: "badge " + (GATE_CLASS[g.status] || "warn"), text: g.status }), " ", g.text)))
            : "–")),
      ),
      6,
      "No job has run yet.",
    );
  }

  async function loadMlops() {
    try {
      renderMlops(await GF.getJson("/v1/admin/mlops"));
    } catch (exc) {
      const note = document.getElementById("mlops-note");
      note.textContent = "MLOps state unavailable: " + exc.message;
      note.classList.add("bad-text");
    }
  }

  async function load() {
    if (loading) return;
    loading = true;
    try {
      const minutes = windowSelect.value;
      const [stats, series] = await Promise.all([
        GF.getJson("/v1/admin/stats?minutes=" + minutes),
        GF.getJson("/v1/admin/stats/series?minutes=" + minutes + "&buckets=" + BUCKETS),
      ]);
      render(stats);
      renderSeries(series);
      await loadMlops();
      errorBox.hidden = true;
      setText("updated", "updated " + new Date().toLocaleTimeString());
    } catch (exc) {
      let message = exc.message;
      if (exc.status === 401 || exc.status === 403) {
        message += " — the operations page needs an admin key (genai-factory keys create --admin).";
      }
      errorBox.textContent = message;
      errorBox.hidden = false;
    } finally {
      loading = false;
    }
  }

  function schedule() {
    if (timer) clearInterval(timer);
    timer = autoRefresh.checked ? setInterval(load, REFRESH_MS) : null;
  }

  windowSelect.addEventListener("change", load);
  autoRefresh.addEventListener("change", schedule);
  document.getElementById("refresh").addEventListener("click", load);
  GF.initKeyBar(load);
  schedule();
  load();
})();
