/* What the Server's and the Manager's pages share: DOM helpers, formatting in the viewer's time zone,
 * status words a person understands, the JSON API with the page's CSRF token, and keeping a page up to
 * date: live through Server-Sent Events, polling only when those cannot get through.
 *
 * Everything a service or a person wrote goes into the page with textContent or as an attribute value,
 * never as HTML. Exposed as window.Flamenco; each service's page script uses it.
 */
"use strict";

window.Flamenco = (function () {
  const dataNode = document.getElementById("page-data");
  const DATA = dataNode ? JSON.parse(dataNode.textContent) : {};
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const QUERY = new URLSearchParams(location.search);
  const REFRESH_MS = Math.max(500, Number(QUERY.get("refresh_ms")) || DATA.refresh_ms || 3000);
  const SVG = "http://www.w3.org/2000/svg";
  const TZ = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "local time";

  // --- DOM ---------------------------------------------------------------------------

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : String(child));
      }
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    setAttrs(node, attrs);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => [...(root || document).querySelectorAll(selector)];
  const enc = encodeURIComponent;

  function localPath(url, fallback) {
    return typeof url === "string" && url.startsWith("/") && !url.startsWith("//") ? url : fallback;
  }

  // --- time and sizes, in the viewer's time zone -----------------------------------------

  const pad = (n) => String(n).padStart(2, "0");

  function parseTime(iso) {
    const t = iso ? Date.parse(iso) : NaN;
    return Number.isNaN(t) ? null : t;
  }

  function clock(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function when(iso) {
    const t = parseTime(iso);
    if (t === null) return "-";
    const d = new Date(t);
    if (d.toDateString() === new Date().toDateString()) return clock(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function fullTime(iso) {
    const t = parseTime(iso);
    return t === null ? "" : new Date(t).toLocaleString(undefined, {dateStyle: "full", timeStyle: "long"});
  }

  function duration(ms) {
    if (ms === null || ms === undefined || ms < 0) return "-";
    const s = ms / 1000;
    if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${pad(Math.round(s % 60))} s`;
    return `${Math.floor(m / 60)} h ${pad(m % 60)} min`;
  }

  function size(bytes) {
    if (bytes === null || bytes === undefined) return "-";
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
    if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
    return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    return duration(seconds * 1000) + " ago";
  }

  /** A <time> showing the local time; its tooltip the full date in the viewer's time zone. */
  function timeEl(iso) {
    return el("time", {datetime: iso || null, title: iso ? fullTime(iso) : null}, when(iso));
  }

  // --- status words ------------------------------------------------------------------------

  const WORDS = {
    job: {"waiting-for-files": "waiting for files", "under-construction": "being set up",
          "construction-failed": "could not be set up", "pause-requested": "pausing", paused: "paused",
          queued: "waiting", requeued: "requeued", active: "running", completed: "completed",
          "cancel-requested": "canceling", canceled: "canceled", "fail-requested": "failing", failed: "failed",
          archiving: "archiving", archived: "archived"},
    task: {"under-construction": "being set up", paused: "paused", queued: "waiting",
           "claimed-by-manager": "waiting at its Manager", active: "running", "cancel-requested": "canceling",
           canceled: "canceled", failed: "failed", "soft-failed": "failed once, will retry", completed: "completed"},
    worker: {starting: "starting", awake: "awake", asleep: "asleep", error: "in error", testing: "testing",
             timeout: "not heard from", shutdown: "shut down", offline: "offline"},
    health: {online: "online", offline: "not heard from", "never-seen": "never seen"},
  };

  function word(kind, status) {
    return (WORDS[kind] || {})[status] || status;
  }

  /** A status badge: the humane word, the status itself in data-status and the tooltip. */
  function badge(status, kind) {
    const k = kind || "job";
    const prefix = k === "job" || k === "task" ? "status" : k;
    return el("span", {class: `badge ${prefix}-${status}`, "data-status": status, title: status}, word(k, status));
  }

  function setBadge(node, status, kind) {
    const k = kind || "job";
    const prefix = k === "job" || k === "task" ? "status" : k;
    node.textContent = word(k, status);
    node.className = `badge ${prefix}-${status}`;
    node.dataset.status = status;
    node.title = status;
  }

  /** A worker's resources as its Manager reported them: "8 CPU, load 1.2, 12/32 GiB free". */
  function resources(r) {
    if (!r) return "-";
    const parts = [];
    if (r.cpu_count) parts.push(`${r.cpu_count} CPU`);
    if (r.load_avg !== undefined) parts.push(`load ${r.load_avg}`);
    if (r.mem_total_mb) parts.push(`${Math.round((r.mem_free_mb || 0) / 1024)}/${Math.round(r.mem_total_mb / 1024)} GiB free`);
    return parts.join(", ") || "-";
  }

  // --- progress bars -------------------------------------------------------------------------

  function pct(value) {
    const v = Math.max(0, Math.min(100, Number(value) || 0));
    return Math.round(v * 10) / 10;
  }

  function setBar(node, value) {
    const v = pct(value);
    node.firstElementChild.style.width = v + "%";
    node.setAttribute("role", "progressbar");
    node.setAttribute("aria-valuenow", String(v));
    node.setAttribute("aria-valuemin", "0");
    node.setAttribute("aria-valuemax", "100");
    node.title = v + "%";
    node.dataset.progress = String(v);
  }

  function bar(value, extra) {
    const node = el("div", {class: "bar" + (extra ? " " + extra : "")}, el("span"));
    setBar(node, value);
    return node;
  }

  function progressCell(value, extra) {
    return el("div", {class: "progress-cell"}, bar(value, extra), el("span", {class: "pct"}, pct(value) + "%"));
  }

  // --- the JSON API ----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, options) {
    const opts = options || {};
    const init = {method: opts.method || "GET", credentials: "same-origin", headers: {Accept: "application/json"}};
    if (init.method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-Flamenco-CSRF"] = CSRF;
      init.body = JSON.stringify(opts.body === undefined ? {} : opts.body);
    }
    const resp = await fetch(path, init);
    if (resp.status === 401) {
      location.assign((DATA.login_path || "/login") + "?next=" + enc(location.pathname + location.search));
      throw new ApiError(401, "signed out");
    }
    const type = resp.headers.get("Content-Type") || "";
    const body = type.includes("application/json") ? await resp.json() : null;
    if (!resp.ok) throw new ApiError(resp.status, (body && body.message) || resp.statusText, body && body.code);
    return body;
  }

  // --- keeping a page up to date ------------------------------------------------------------------

  /**
   * `fn` refreshes the page. refresher(fn, ms).tick() runs it now (once at a time; a tick asked for
   * while one runs runs again after it). In "poll" mode it also runs every `ms` while the tab is
   * visible (backing off while the service cannot be reached); in "live" mode only when told to
   * (an event came) or to retry after a failure.
   */
  function refresher(fn, ms) {
    const state = $("#refresh-state");
    let timer = null;
    let running = false;
    let again = false;
    let failures = 0;
    let mode = "starting";

    function show(text, stale) {
      if (!state) return;
      state.textContent = text;
      state.classList.toggle("stale", !!stale);
      state.dataset.mode = mode;
    }

    function schedule() {
      clearTimeout(timer);
      timer = null;
      if (document.hidden) return;
      if (failures) timer = setTimeout(tick, Math.min(ms * 2 ** failures, 30000));
      else if (mode === "poll") timer = setTimeout(tick, ms);
    }

    async function tick() {
      clearTimeout(timer);
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        await fn();
        failures = 0;
        show((mode === "live" ? "live, updated " : "updated ") + clock(Date.now()), false);
      } catch (err) {
        failures += 1;
        show(`not updated: ${err.message}; trying again`, true);
      } finally {
        running = false;
      }
      if (again) {
        again = false;
        return tick();
      }
      schedule();
    }

    document.addEventListener("visibilitychange", () => {
      if (document.hidden) clearTimeout(timer);
      else tick();
    });
    return {
      tick,
      setMode(next) {
        if (mode === next) return;
        mode = next;
        if (state) state.dataset.mode = mode;
        schedule();
      },
      get mode() { return mode; },
    };
  }

  const HELLO_MS = 4000;

  /**
   * Keep `r` (a refresher) up to date through the service's event stream for `topics`: a refresh when an
   * event says one of them changed, none while nothing does. A stream that does not say hello within
   * HELLO_MS (a proxy buffers it), cannot be opened (too many streams) or breaks, makes the page poll until
   * a stream says hello again.
   */
  function live(url, r) {
    if (!window.EventSource || QUERY.get("live") === "0") {
      r.setMode("poll");
      return null;
    }
    const source = new EventSource(url);
    let fallback = setTimeout(() => r.setMode("poll"), HELLO_MS);
    source.addEventListener("hello", () => {
      clearTimeout(fallback);
      r.setMode("live");
      r.tick();  // whatever happened while there was no stream
    });
    source.addEventListener("change", () => r.tick());
    source.addEventListener("error", () => {
      clearTimeout(fallback);
      r.setMode("poll");
      if (source.readyState === EventSource.CLOSED) {  // refused (503, 401): reopen later
        setTimeout(() => live(url, r), 60000);
      }
    });
    window.addEventListener("pagehide", () => source.close());
    return source;
  }

  /** A refresher for `fn`, live through `url` when given (polling otherwise); runs `fn` once now. */
  function keepUpdated(fn, url, ms) {
    const r = refresher(fn, ms || REFRESH_MS);
    if (url) live(url, r);
    else r.setMode("poll");
    r.tick();
    return r;
  }

  /**
   * The tags and sleep-schedule dialogs of the workers pages (webui/templates/worker_dialogs.tpl):
   * openTags(w) and openSchedule(w) show them filled from the worker; saving calls
   * onTags(w, [tags]) or onSchedule(w, {schedule_active, days_of_week, time_start, time_end}).
   */
  function workerDialogs(onTags, onSchedule) {
    function dialog(id, fill, save) {
      return (w) => {
        const node = $(id);
        fill(node, w);
        node.returnValue = "";
        node.onclose = () => { if (node.returnValue === "ok") save(node, w); };
        node.showModal();
      };
    }
    return {
      openTags: dialog("#tags-dialog", (node, w) => {
        $("#tags-worker", node).textContent = w.nickname;
        $("#tags-input", node).value = (w.tags || []).join(", ");
      }, (node, w) => onTags(w, $("#tags-input", node).value.split(",").map((t) => t.trim()).filter(Boolean))),
      openSchedule: dialog("#schedule-dialog", (node, w) => {
        $("#schedule-worker", node).textContent = w.nickname;
        const s = w.sleep_schedule || {};
        $("#schedule-active", node).checked = !!s.schedule_active;
        const days = new Set((s.days_of_week || "").split(" "));
        for (const box of $$("#schedule-days input", node)) box.checked = days.has(box.value);
        $("#schedule-start", node).value = s.time_start || "";
        $("#schedule-end", node).value = s.time_end || "";
      }, (node, w) => onSchedule(w, {
        schedule_active: $("#schedule-active", node).checked,
        days_of_week: $$("#schedule-days input", node).filter((b) => b.checked).map((b) => b.value).join(" "),
        time_start: $("#schedule-start", node).value, time_end: $("#schedule-end", node).value})),
    };
  }

  /**
   * Replace `body`'s rows with `rows()` when `data` differs from what was drawn last, keeping open the
   * row menu (<details class="menu">) that was open: the pages refresh while the admin picks an action.
   */
  function redrawRows(body, data, rows) {
    const key = JSON.stringify(data);
    if (body.dataset.drawn === key) return;
    body.dataset.drawn = key;
    const open = $("details.menu[open]", body);
    const openKey = open ? open.closest("tr").dataset.key : null;
    body.replaceChildren(...rows());
    if (openKey) {
      const again = $$("tr", body).find((tr) => tr.dataset.key === openKey);
      const menu = again && $("details.menu", again);
      if (menu) menu.open = true;
    }
  }

  function localTimes() {
    for (const t of document.querySelectorAll("time[datetime]")) {
      t.textContent = when(t.getAttribute("datetime"));
      t.title = fullTime(t.getAttribute("datetime"));
    }
    for (const t of document.querySelectorAll("[data-time-zone]")) t.textContent = TZ;
  }

  function start(pages) {
    function run() {
      localTimes();
      const page = pages[document.body.dataset.page];
      if (page) page();
    }
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
    else run();
  }

  return {DATA, CSRF, REFRESH_MS, TZ, el, svg, $, $$, enc, localPath, pad, parseTime, clock, when, fullTime,
          duration, size, ago, timeEl, resources, word, badge, setBadge, pct, bar, setBar, progressCell, ApiError, api,
          refresher, live, keepUpdated, workerDialogs, redrawRows, start};
})();
