/* The chat page: ask with "stream": true, show the answer as it streams, its sources, and rate it. */
"use strict";

(() => {
  const { el } = GF;
  const conversation = document.getElementById("conversation");
  const form = document.getElementById("ask-form");
  const query = document.getElementById("query");
  const mode = document.getElementById("mode");
  const askButton = document.getElementById("ask");
  let sessionId = GF.randomId();

  function scrollDown() {
    conversation.scrollTop = conversation.scrollHeight;
  }

  function renderCitations(list, citations, final) {
    list.replaceChildren();
    for (const c of citations) {
      const head = el(
        "summary",
        {},
        el("span", { class: "cite-index", text: "[" + c.index + "]" }),
        el("span", { class: "cite-title", text: c.title || c.source }),
        el("span", { class: "cite-source", text: c.source }),
        el("span", { class: "cite-score", text: "score " + Number(c.score).toFixed(2) }),
        final && c.cited ? el("span", { class: "badge ok", text: "cited" }) : null,
      );
      list.append(
        el("li", { class: "citation", dataset: { testid: "citation" } },
          el("details", {}, head, el("p", { class: "excerpt", text: c.excerpt }))),
      );
    }
    list.parentElement.hidden = citations.length === 0;
  }

  function metaLine(answer) {
    const usage = answer.usage || {};
    const parts = [
      answer.model,
      "route " + answer.route,
      GF.formatInt(usage.prompt_tokens) + " + " + GF.formatInt(usage.completion_tokens) + " tokens",
      GF.formatUsd(usage.cost_usd),
      GF.formatMs(answer.latency_ms),
      "trace " + answer.trace_id,
    ];
    return parts.filter(Boolean).join(" · ");
  }

  /** A thumb icon drawn inline (no icon font or emoji font needed); CSS turns it down. */
  function thumbIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "thumb-icon");
    for (const d of [
      "M2 10h4v11H2z",
      "M8 10l4-8c1.7 0 3 1.3 3 3v4h5.5c1.2 0 2.2 1.1 2 2.3l-1.4 8c-.2 1-1 1.7-2 1.7H8z",
    ]) {
      const path = document.createElementNS(ns, "path");
      path.setAttribute("d", d);
      svg.append(path);
    }
    return svg;
  }

  function feedbackBar(turn) {
    const note = el("span", { class: "feedback-note", role: "status" });
    const buttons = [];
    async function rate(rating, button) {
      buttons.forEach((b) => (b.disabled = true));
      note.textContent = "saving…";
      try {
        await GF.postJson("/v1/feedback", { trace_id: turn.traceId, rating });
        button.classList.add("chosen");
        note.textContent = "Thanks, feedback saved.";
        note.dataset.state = "saved";
      } catch (exc) {
        buttons.forEach((b) => (b.disabled = false));
        note.textContent = "Feedback not saved: " + exc.message;
        note.dataset.state = "error";
      }
    }
    const up = el("button", { type: "button", class: "thumb", title: "Good answer",
      "aria-label": "Good answer", dataset: { testid: "thumbs-up" } }, thumbIcon(), "Good");
    const down = el("button", { type: "button", class: "thumb down", title: "Bad answer",
      "aria-label": "Bad answer", dataset: { testid: "thumbs-down" } }, thumbIcon(), "Bad");
    up.addEventListener("click", () => rate(1, up));
    down.addEventListener("click", () => rate(-1, down));
    buttons.push(up, down);
    return el("div", { class: "feedback", hidden: true }, up, down, note);
  }

  function newTurn(question) {
    document.getElementById("empty-state")?.remove();
    const turn = { traceId: "" };
    turn.answer = el("div", { class: "answer streaming", dataset: { testid: "answer" } });
    turn.citations = el("ol", { class: "citations" });
    turn.meta = el("div", { class: "meta", dataset: { testid: "answer-meta" } });
    turn.error = el("div", { class: "error", role: "alert", hidden: true });
    turn.feedback = feedbackBar(turn);
    const sources = el("div", { class: "sources", hidden: true },
      el("h3", { text: "Sources" }), turn.citations);
    conversation.append(
      el("div", { class: "turn" },
        el("div", { class: "question", text: question }),
        el("div", { class: "bubble" }, turn.answer, turn.error, sources, turn.meta, turn.feedback)),
    );
    scrollDown();
    return turn;
  }

  function showError(turn, exc) {
    turn.answer.classList.remove("streaming");
    if (!turn.answer.textContent) turn.answer.hidden = true;
    let message = exc.message;
    if (exc.status === 401) message += " — enter an API key at the top of the page.";
    turn.error.textContent = message;
    turn.error.hidden = false;
  }

  async function ask(turn, text) {
    const body = { query: text, mode: mode.value, stream: true, session_id: sessionId };
    const response = await GF.postJson("/v1/assistant/generate", body, {
      Accept: "text/event-stream",
    });
    for await (const { event, data } of GF.sseEvents(response)) {
      const payload = JSON.parse(data);
      if (event === "start") {
        turn.traceId = payload.trace_id;
        renderCitations(turn.citations, payload.citations || [], false);
      } else if (event === "delta") {
        turn.answer.textContent += payload.text;
        scrollDown();
      } else if (event === "end") {
        turn.traceId = payload.trace_id;
        turn.answer.textContent = payload.answer;
        turn.answer.classList.remove("streaming");
        renderCitations(turn.citations, payload.citations || [], true);
        turn.meta.textContent = metaLine(payload);
        turn.feedback.hidden = false;
        scrollDown();
      } else if (event === "error") {
        throw GF.errorFrom(200, payload);
      }
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = query.value.trim();
    if (!text) return;
    askButton.disabled = true;
    query.value = "";
    const turn = newTurn(text);
    try {
      await ask(turn, text);
    } catch (exc) {
      showError(turn, exc);
    } finally {
      askButton.disabled = false;
      query.focus();
    }
  });

  query.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  document.getElementById("new-conversation").addEventListener("click", () => {
    sessionId = GF.randomId();
    conversation.replaceChildren(
      el("div", { id: "empty-state", class: "empty-state" },
        el("h1", { text: "New conversation" }),
        el("p", { text: "Earlier questions are no longer part of the context." })),
    );
    query.focus();
  });

  GF.initKeyBar();
  query.focus();
})();
