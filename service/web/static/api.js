/* HTTP helpers shared by the page: JSON and blob fetches with the optional API key, and a
 * Server-Sent Events reader over fetch (EventSource cannot send an Authorization header).
 *
 * Auth hook: when localStorage "sweeps.key" is set, every request sends
 * "Authorization: Bearer <key>"; a 401 shows the key prompt (#key-banner). */
"use strict";

const Api = (() => {
  const KEY = "sweeps.key";

  function headers(extra) {
    const out = Object.assign({}, extra || {});
    const key = localStorage.getItem(KEY);
    if (key) out.Authorization = "Bearer " + key;
    return out;
  }

  function needKey() {
    document.getElementById("key-banner").hidden = false;
  }

  class HttpError extends Error {
    constructor(status, body) {
      super(typeof body === "object" && body && body.detail
        ? (Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail)
        : "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  async function request(path, options) {
    const response = await fetch(path, Object.assign({ headers: headers() }, options || {}));
    if (response.status === 401 || response.status === 403) needKey();
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      throw new HttpError(response.status, body);
    }
    return response;
  }

  async function json(path, options) {
    return (await request(path, options)).json();
  }

  async function blob(path, options) {
    const response = await request(path, options);
    return { blob: await response.blob(), response };
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /* Read an SSE stream; onEvent(kind, data, id) per message.  Reconnects with
   * Last-Event-ID after a dropped connection; returns when the server ends the stream
   * after a "done" event, or when `signal` aborts. */
  async function stream(path, onEvent, signal) {
    let last = null;
    let finished = false;
    while (!signal.aborted && !finished) {
      try {
        const extra = last === null ? {} : { "Last-Event-ID": last };
        const response = await fetch(path, { headers: headers(extra), signal });
        if (response.status === 401 || response.status === 403) { needKey(); return; }
        if (!response.ok) throw new HttpError(response.status, null);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        let message = {};
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, cut).replace(/\r$/, "");
            buffer = buffer.slice(cut + 1);
            if (line === "") {
              if (message.data !== undefined) {
                if (message.id !== undefined) last = message.id;
                if (message.event === "done") finished = true;
                onEvent(message.event || "message", JSON.parse(message.data), message.id);
              }
              message = {};
            } else if (line[0] !== ":") {
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              let value = colon < 0 ? "" : line.slice(colon + 1);
              if (value[0] === " ") value = value.slice(1);
              if (field === "data") message.data = message.data === undefined ? value : message.data + "\n" + value;
              else if (field === "id") message.id = value;
              else if (field === "event") message.event = value;
            }
          }
        }
        if (last === null) return;  // a final sweep with no events at all
        // Ended without "done" (a restart, a proxy): reconnect with Last-Event-ID.
      } catch (error) {
        if (signal.aborted) return;
      }
      if (!finished) await sleep(2000);
    }
  }

  function setupKey() {
    const banner = document.getElementById("key-banner");
    const input = document.getElementById("key-input");
    document.getElementById("key-button").addEventListener("click", () => {
      banner.hidden = !banner.hidden;
      input.value = localStorage.getItem(KEY) || "";
    });
    document.getElementById("key-save").addEventListener("click", () => {
      if (input.value) localStorage.setItem(KEY, input.value); else localStorage.removeItem(KEY);
      banner.hidden = true;
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    });
  }

  return { headers, json, blob, stream, sleep, setupKey, HttpError, hasKey: () => !!localStorage.getItem(KEY) };
})();
