/* The operations page: GET /v1/admin/stats for the chosen window, as cards and tables. */
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

  async function load() {
    if (loading) return;
    loading = true;
    try {
      const stats = await GF.getJson("/v1/admin/stats?minutes=" + windowSelect.value);
      render(stats);
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
