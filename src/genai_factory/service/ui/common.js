/* Shared by the UI pages: the API key kept in this browser, API calls, SSE parsing, DOM helpers.
   Text from the API is only ever set as textContent, never parsed as HTML. */
"use strict";

const GF = (() => {
  const KEY_STORAGE = "genai-factory.api-key";

  function getKey() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch (_) {
      return "";
    }
  }

  function setKey(value) {
    try {
      if (value) localStorage.setItem(KEY_STORAGE, value);
      else localStorage.removeItem(KEY_STORAGE);
    } catch (_) {
      /* storage disabled: the key lives for this page only */
    }
  }

  /** Request headers with the key, when one is set (auth off needs none). */
  function headers(extra) {
    const result = Object.assign({}, extra || {});
    const key = getKey();
    if (key) result["Authorization"] = "Bearer " + key;
    return result;
  }

  class ApiError extends Error {
    constructor(status, code, message, traceId) {
      super(message);
      this.status = status;
      this.code = code;
      this.traceId = traceId;
    }
  }

  /** The error of an HTTP response or SSE error event, from the service's error body. */
  function errorFrom(status, body) {
    const error = (body && body.error) || {};
    const message = error.message || (status ? "HTTP " + status : "request failed");
    return new ApiError(status, error.code || "error", message, error.trace_id || "");
  }

  async function failure(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      /* not JSON */
    }
    return errorFrom(response.status, body);
  }

  /** fetch() with the key; throws ApiError for a non-2xx answer. */
  async function request(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.headers);
    let response;
    try {
      response = await fetch(path, opts);
    } catch (exc) {
      throw new ApiError(0, "network", "the service did not answer: " + exc.message, "");
    }
    if (!response.ok) throw await failure(response);
    return response;
  }

  async function getJson(path) {
    return (await request(path, { headers: { Accept: "application/json" } })).json();
  }

  async function postJson(path, body, extraHeaders) {
    return request(path, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, extraHeaders || {}),
      body: JSON.stringify(body),
    });
  }

  /** The server-sent events of a streaming response, as {event, data} objects. */
  async function* sseEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      buffer = buffer.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) yield { event, data: data.join("\n") };
      }
      if (done) return;
    }
  }

  /** el("div", {class: "x", dataset: {a: "1"}}, "text", child) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function formatMs(ms) {
    if (ms === null || ms === undefined) return "–";
    return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
  }

  function formatUsd(usd) {
    if (!usd) return "$0";
    return usd >= 0.01 ? "$" + usd.toFixed(2) : "$" + usd.toPrecision(2);
  }

  function formatInt(n) {
    return (n || 0).toLocaleString("en-US");
  }

  /** The key bar in the page header: show, save and forget the key kept in this browser. */
  function initKeyBar(onChange) {
    const form = document.getElementById("key-form");
    const input = document.getElementById("api-key");
    const status = document.getElementById("key-status");
    const clear = document.getElementById("key-clear");
    function show() {
      const key = getKey();
      input.value = key;
      status.textContent = key ? "key " + keyId(key) + " saved in this browser" : "no key";
      status.className = "key-status " + (key ? "has-key" : "no-key");
      clear.hidden = !key;
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      setKey(input.value.trim());
      show();
      if (onChange) onChange();
    });
    clear.addEventListener("click", () => {
      setKey("");
      show();
      if (onChange) onChange();
    });
    show();
  }

  /** The public id of a key (gf_<id>_<secret>), never the secret. */
  function keyId(key) {
    const match = /^gf_([0-9a-f]{12})_/.exec(key);
    return match ? match[1] : "(unrecognised format)";
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  return {
    ApiError,
    errorFrom,
    request,
    getJson,
    postJson,
    sseEvents,
    el,
    formatMs,
    formatUsd,
    formatInt,
    initKeyBar,
    randomId,
  };
})();
