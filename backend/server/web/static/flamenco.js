/* Flamenco Server web pages.
 *
 * Each page starts from the JSON in <script id="page-data"> and refreshes
 * itself from the JSON API, signed in by the session cookie. Everything the
 * Server or an artist wrote is put into the page with textContent or as an
 * attribute value, never as HTML. State-changing calls carry the page's CSRF
 * token in the X-Flamenco-CSRF header.
 */
"use strict";

(function () {
  const dataNode = document.getElementById("page-data");
  const DATA = dataNode ? JSON.parse(dataNode.textContent) : {};
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const REFRESH_MS = Math.max(500, Number(new URLSearchParams(location.search).get("refresh_ms")) ||
    DATA.refresh_ms || 3000);
  const SVG = "http://www.w3.org/2000/svg";

  // --- DOM helpers ----------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of children) {
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

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  const $ = (selector) => document.querySelector(selector);
  const enc = encodeURIComponent;

  function localPath(url, fallback) {
    return typeof url === "string" && url.startsWith("/") && !url.startsWith("//") ? url : fallback;
  }

  // --- formatting -------------------------------------------------------------------

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
    const today = new Date();
    if (d.toDateString() === today.toDateString()) return clock(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
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
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
    if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
    return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    return duration(seconds * 1000) + " ago";
  }

  function timeEl(iso) {
    return el("time", {datetime: iso || null, title: iso || null}, when(iso));
  }

  function badge(status, prefix) {
    return el("span", {class: `badge ${prefix || "status"}-${status}`}, status);
  }

  function pct(value) {
    const v = Math.max(0, Math.min(100, Number(value) || 0));
    return Math.round(v * 10) / 10;
  }

  function bar(value, extra) {
    const node = el("div", {class: "bar" + (extra ? " " + extra : "")}, el("span"));
    setBar(node, value);
    return node;
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

  function progressCell(value, extra) {
    return el("div", {class: "progress-cell"}, bar(value, extra), el("span", {class: "pct"}, pct(value) + "%"));
  }

  // --- the API ------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options) {
    const opts = options || {};
    const init = {method: opts.method || "GET", credentials: "same-origin", headers: {Accept: "application/json"}};
    if (opts.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    if (init.method !== "GET") init.headers["X-Flamenco-CSRF"] = CSRF;
    const resp = await fetch(path, init);
    if (resp.status === 401) {
      location.assign("/login?next=" + enc(location.pathname + location.search));
      throw new ApiError(401, "signed out");
    }
    const type = resp.headers.get("Content-Type") || "";
    const body = type.includes("application/json") ? await resp.json() : null;
    if (!resp.ok) throw new ApiError(resp.status, (body && body.message) || resp.statusText);
    return body;
  }

  /** Run `fn` now and every `ms` while the page is visible; answers a function that refreshes at once. */
  function every(ms, fn) {
    const state = $("#refresh-state");
    let timer = null;
    let running = false;
    let again = false;
    let failures = 0;

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
        if (state) {
          state.textContent = "updated " + clock(Date.now());
          state.classList.remove("stale");
        }
      } catch (err) {
        failures += 1;
        if (state) {
          state.textContent = `not updated: ${err.message}; trying again`;
          state.classList.add("stale");
        }
      } finally {
        running = false;
      }
      if (again) {
        again = false;
        return tick();
      }
      if (!document.hidden) timer = setTimeout(tick, failures ? Math.min(ms * 2 ** failures, 30000) : ms);
    }

    document.addEventListener("visibilitychange", () => {
      if (document.hidden) clearTimeout(timer);
      else tick();
    });
    return tick;
  }

  // --- the jobs list --------------------------------------------------------------------

  function jobsPage() {
    const filter = Object.assign({status: "", project: "", page: 1}, DATA.filter);
    const perPage = DATA.per_page || 50;
    const body = $("#jobs-body");
    const noJobs = [...$("#jobs-empty").childNodes].map((n) => n.cloneNode(true));

    function jobRow(job) {
      return el("tr", {"data-job": job.id},
        el("td", {}, el("a", {class: "job-link", href: localPath(job.web_url, "/jobs/" + enc(job.id))}, job.name)),
        el("td", {}, job.type),
        el("td", {}, badge(job.status)),
        el("td", {class: "col-progress"}, progressCell(job.progress)),
        el("td", {}, job.project_name || job.project),
        el("td", {}, job.user_name || "-"),
        el("td", {}, timeEl(job.created)));
    }

    function render(result) {
      body.replaceChildren(...result.jobs.map(jobRow));
      const empty = $("#jobs-empty");
      empty.hidden = result.jobs.length > 0;
      if (filter.status || filter.project) empty.textContent = "No jobs match this filter.";
      else empty.replaceChildren(...noJobs.map((n) => n.cloneNode(true)));
      const first = (filter.page - 1) * perPage;
      $("#page-info").textContent = result.total
        ? `${first + Math.min(1, result.jobs.length)}–${first + result.jobs.length} of ${result.total}` : "";
      $("#page-newer").hidden = filter.page <= 1;
      $("#page-older").hidden = first + result.jobs.length >= result.total;
    }

    function query() {
      const q = new URLSearchParams();
      if (filter.status) q.set("status", filter.status);
      if (filter.project) q.set("project", filter.project);
      return q;
    }

    const refresh = every(REFRESH_MS, async () => {
      const q = query();
      q.set("limit", String(perPage));
      q.set("offset", String((filter.page - 1) * perPage));
      render(await api("/api/jobs?" + q));
    });

    function changed() {
      const q = query();
      if (filter.page > 1) q.set("page", String(filter.page));
      history.replaceState(null, "", "/" + (q.toString() ? "?" + q : ""));
      refresh();
    }

    for (const [id, key] of [["#filter-status", "status"], ["#filter-project", "project"]]) {
      const select = $(id);
      if (select) {
        select.addEventListener("change", () => {
          filter[key] = select.value;
          filter.page = 1;
          changed();
        });
      }
    }
    $("#page-newer").addEventListener("click", () => { filter.page = Math.max(1, filter.page - 1); changed(); });
    $("#page-older").addEventListener("click", () => { filter.page += 1; changed(); });

    render(DATA.initial);
    setTimeout(refresh, REFRESH_MS);
  }

  // --- one job ------------------------------------------------------------------------

  const ACTION_LABELS = {pause: "Pause", resume: "Resume", cancel: "Cancel", requeue: "Requeue",
                         "requeue-failed": "Retry failed tasks"};
  const ACTION_CONFIRM = {cancel: "Cancel this job? Its running tasks are stopped.",
                          requeue: "Requeue this job? Its unfinished tasks (all, if it completed) run again."};
  const IMAGE = /\.(png|jpe?g|webp|gif|bmp|avif)$/i;
  const RUNNING = new Set(["active", "cancel-requested"]);
  const TASK_LIMIT = 1000;
  const TIMELINE_LANES = 60;

  function jobPage() {
    let job = DATA.job;
    const base = "/api/jobs/" + enc(job.id);
    let tasks = [];
    let lastKey = null;
    let shownImage = null;
    let workerNames = new Map();
    const expanded = new Set();
    const workerName = (id) => (id ? workerNames.get(id) || id : null);

    function renderJob() {
      const status = $("#job-status");
      status.textContent = job.status;
      status.className = "badge status-" + job.status;
      $("#job-reason").textContent = job.status_reason || "";
      setBar($("#job-progress"), job.progress);
      $("#job-progress-text").textContent = pct(job.progress) + "%";
      $("#job-priority").textContent = String(job.priority);
      const counts = Object.entries(job.task_counts || {}).sort((a, b) => b[1] - a[1]);
      $("#job-counts").replaceChildren(...counts.map(([s, n]) =>
        el("span", {class: "count", "data-status": s}, badge(s), " " + n)));
      document.title = `${job.name} (${job.status}) · Flamenco`;
      renderActions();
    }

    function renderActions() {
      const counts = job.task_counts || {};
      const moves = DATA.requeue_moves[job.status] || {};  // a requeue that would move no task is not offered
      const words = (DATA.actions[job.status] || []).filter((w) =>
        !moves[w] || moves[w].some((s) => (counts[s] || 0) > 0));
      const box = $("#job-actions");
      if (box.dataset.words === words.join(",")) return;
      box.dataset.words = words.join(",");
      box.replaceChildren(...words.map((w) => el("button", {
        type: "button", class: "action" + (w === "cancel" ? " danger" : ""), "data-action": w,
        id: "action-" + w}, ACTION_LABELS[w] || w)));
    }

    $("#job-actions").addEventListener("click", async (ev) => {
      const button = ev.target.closest("button[data-action]");
      if (!button) return;
      const word = button.dataset.action;
      if (ACTION_CONFIRM[word] && !window.confirm(ACTION_CONFIRM[word])) return;
      const error = $("#action-error");
      error.hidden = true;
      const buttons = [...document.querySelectorAll("#job-actions button")];
      buttons.forEach((b) => { b.disabled = true; });
      try {
        job = await api(base + "/status", {method: "POST", body: {status: word, reason: "from the web page"}});
        renderJob();
        refresh();
      } catch (err) {
        error.textContent = `Could not ${ACTION_LABELS[word] ? ACTION_LABELS[word].toLowerCase() : word}: ${err.message}`;
        error.hidden = false;
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    });

    function runEnd(task, now) {
      const finished = parseTime(task.finished);
      if (finished !== null) return finished;
      return RUNNING.has(task.status) ? now : (parseTime(task.updated) || now);
    }

    function renderTasks(result) {
      tasks = result.tasks;
      const now = Date.now();
      $("#tasks-info").textContent = result.total > tasks.length
        ? `(the first ${tasks.length} of ${result.total})` : `(${result.total})`;
      const rows = [];
      for (const t of tasks) {
        const start = parseTime(t.started);
        rows.push(el("tr", {"data-task": t.id, class: "task" + (expanded.has(t.id) ? " open" : ""), title: t.id},
          el("td", {class: "nowrap"}, t.name),
          el("td", {}, badge(t.status)),
          el("td", {class: "col-progress"}, progressCell(t.status === "completed" ? 100 : t.progress, "st-" + t.status)),
          el("td", {title: t.worker || null}, workerName(t.worker) || "-"),
          el("td", {class: "activity"}, t.activity || ""),
          el("td", {}, start === null ? "-" : timeEl(t.started)),
          el("td", {}, start === null ? "-" : duration(runEnd(t, now) - start))));
        if (expanded.has(t.id)) rows.push(detailRow(t.id));
      }
      $("#tasks-body").replaceChildren(...rows);
    }

    function detailRow(taskId) {
      const pre = el("pre", {class: "log-tail"}, "Loading…");
      api("/api/tasks/" + enc(taskId)).then((t) => {
        const lines = [];
        if (t.failed_by_workers && t.failed_by_workers.length) {
          lines.push("failed on: " + t.failed_by_workers.map((f) => f.identifier || f.id).join(", "));
        }
        lines.push(t.log_tail || "(no log lines yet)");
        pre.textContent = lines.join("\n");
      }).catch((err) => { pre.textContent = err.message; });
      return el("tr", {class: "detail", "data-detail": taskId}, el("td", {colspan: 7}, pre));
    }

    $("#tasks-body").addEventListener("click", (ev) => {
      const row = ev.target.closest("tr.task");
      if (!row) return;
      const id = row.dataset.task;
      if (expanded.has(id)) {
        expanded.delete(id);
        row.classList.remove("open");
        const next = row.nextElementSibling;
        if (next && next.dataset.detail === id) next.remove();
      } else {
        expanded.add(id);
        row.classList.add("open");
        row.after(detailRow(id));
      }
    });

    function renderTimeline() {
      const box = $("#timeline");
      const now = Date.now();
      const runs = tasks.filter((t) => parseTime(t.started) !== null).map((t) => {
        const start = parseTime(t.started);
        return {task: t, start, end: Math.max(start, runEnd(t, now))};
      });
      if (!runs.length) {
        box.replaceChildren(el("p", {class: "muted", id: "timeline-empty"}, "No task has started yet."));
        return;
      }
      const t0 = Math.min(...runs.map((r) => r.start));
      const t1 = Math.max(t0 + 1000, ...runs.map((r) => r.end));
      const laneName = (task) => workerName(task.worker) || "(unknown worker)";
      let lanes = [...new Set(runs.map((r) => laneName(r.task)))].sort();
      const hidden = Math.max(0, lanes.length - TIMELINE_LANES);
      lanes = lanes.slice(0, TIMELINE_LANES);
      const laneOf = new Map(lanes.map((w, i) => [w, i]));
      const W = Math.max(560, box.clientWidth || 1000), LABEL = 160, RIGHT = 16, TOP = 22, ROW = 22;
      const H = TOP + lanes.length * ROW + 6;
      const x = (t) => LABEL + (W - LABEL - RIGHT) * (t - t0) / (t1 - t0);
      const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "timeline-svg", role: "img",
        "aria-label": `task timeline: ${runs.length} task runs on ${lanes.length} workers`});
      for (let i = 0; i <= 4; i++) {
        const t = t0 + (t1 - t0) * i / 4;
        root.append(svg("line", {x1: x(t), x2: x(t), y1: TOP - 6, y2: H, class: "grid"}));
        root.append(svg("text", {x: x(t), y: 12, class: "tick", "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle"},
          i === 0 ? clock(t) : "+" + duration(t - t0)));
      }
      lanes.forEach((worker, i) => {
        const y = TOP + i * ROW;
        if (i % 2 === 0) root.append(svg("rect", {x: 0, y, width: W, height: ROW, class: "lane"}));
        const label = worker.length > 18 ? worker.slice(0, 17) + "…" : worker;
        root.append(svg("text", {x: LABEL - 8, y: y + ROW / 2 + 4, class: "lane-label", "text-anchor": "end"}, label));
      });
      for (const r of runs) {
        const lane = laneOf.get(laneName(r.task));
        if (lane === undefined) continue;
        const x0 = x(r.start);
        const width = Math.max(2, x(r.end) - x0);
        const rect = svg("rect", {x: x0, y: TOP + lane * ROW + 3, width, height: ROW - 6, rx: 2,
          class: `run status-${r.task.status}`, "data-task": r.task.id});
        rect.append(svg("title", {}, `${r.task.name} on ${laneName(r.task)}: ${r.task.status}, ` +
          `${duration(r.end - r.start)} (${clock(r.start)}–${clock(r.end)})`));
        root.append(rect);
        if (width > 60) {
          const name = r.task.name.length > width / 7 ? r.task.name.slice(0, Math.floor(width / 7) - 1) + "…" : r.task.name;
          root.append(svg("text", {x: x0 + 4, y: TOP + lane * ROW + ROW / 2 + 4, class: "run-label"}, name));
        }
      }
      const workers = new Set(runs.map((r) => r.task.worker)).size;
      const summary = el("p", {class: "muted small"},
        `${runs.length} task run${runs.length === 1 ? "" : "s"} on ${workers} worker${workers === 1 ? "" : "s"}, ` +
        `${clock(t0)} to ${clock(t1)} (${duration(t1 - t0)})` +
        (hidden ? `; ${hidden} more workers not drawn` : ""));
      box.replaceChildren(root, summary);
    }

    function renderLog(result) {
      const rows = result.entries.slice().reverse().map((e) => el("tr", {},
        el("td", {class: "nowrap"}, timeEl(e.created)),
        el("td", {}, e.who),
        el("td", {}, e.what, e.reason ? el("span", {class: "muted"}, " — " + e.reason) : null)));
      $("#log-body").replaceChildren(...rows);
    }

    function renderOutputs(result) {
      const box = $("#frame-body");
      const outputs = result.outputs || [];
      const images = outputs.filter((o) => IMAGE.test(o.relpath) && localPath(o.url, null));
      images.sort((a, b) => (parseTime(a.created) || 0) - (parseTime(b.created) || 0) ||
        (a.relpath < b.relpath ? -1 : a.relpath > b.relpath ? 1 : 0));
      const latest = images[images.length - 1];
      const key = (latest ? latest.url + latest.sha256 : "") + "|" + outputs.length;
      if (key === shownImage) return;
      shownImage = key;
      const parts = [];
      if (latest) {
        parts.push(el("figure", {class: "frame"},
          el("a", {href: latest.url}, el("img", {src: latest.url, alt: latest.relpath, id: "latest-frame-img"})),
          el("figcaption", {}, el("code", {}, latest.relpath), " ", el("span", {class: "muted"},
            `${size(latest.size)}, ${when(latest.created)}`))));
      } else if (outputs.length) {
        parts.push(el("p", {class: "muted"}, "No output is an image a browser can show (EXR and video are " +
          "downloads only)."));
      } else {
        parts.push(el("p", {class: "muted", id: "frame-none"}, "No frames yet."));
      }
      if (outputs.length) {
        const list = el("ul", {class: "outputs"}, ...outputs.slice(0, 500).map((o) =>
          el("li", {}, el("a", {href: localPath(o.url, "#"), download: ""}, o.relpath),
            el("span", {class: "muted"}, " " + size(o.size)))));
        parts.push(el("details", {}, el("summary", {}, `All outputs (${outputs.length})`), list));
      }
      box.replaceChildren(...parts);
    }

    const refresh = every(REFRESH_MS, async () => {
      job = await api(base);
      renderJob();
      const counts = job.task_counts || {};
      const running = (counts.active || 0) + (counts["cancel-requested"] || 0) > 0;
      const key = [job.status, job.updated, job.progress, JSON.stringify(counts)].join("|");
      if (key !== lastKey || running) {
        const [t, l, o, w] = await Promise.all([
          api(`${base}/tasks?limit=${TASK_LIMIT}`), api(base + "/log"),
          job.files_mode === "upload" ? api(base + "/outputs") : Promise.resolve(null),
          api("/api/workers").catch(() => null)]);
        lastKey = key;
        if (w) workerNames = new Map(w.workers.map((x) => [x.id, x.nickname]));
        renderTasks(t);
        renderLog(l);
        if (o) renderOutputs(o);
      }
      renderTimeline();
    });

    renderJob();
    refresh();
  }

  // --- admins: workers and managers ------------------------------------------------------

  function resources(r) {
    if (!r) return "-";
    const parts = [];
    if (r.cpu_count) parts.push(`${r.cpu_count} CPU`);
    if (r.load_avg !== undefined) parts.push(`load ${r.load_avg}`);
    if (r.mem_total_mb) parts.push(`${Math.round((r.mem_free_mb || 0) / 1024)}/${Math.round(r.mem_total_mb / 1024)} GiB free`);
    return parts.join(", ") || "-";
  }

  function runningTasks(w) {
    // A worker with slots runs several tasks; a report from an older Manager names one.
    const tasks = (w.running_tasks || []).length ? w.running_tasks
      : w.current_job ? [{id: w.current_task, job: w.current_job, name: w.current_task || w.current_job}] : [];
    if (!tasks.length) return ["-"];
    return tasks.flatMap((t, i) => [i ? ", " : null,
      el("a", {href: "/jobs/" + enc(t.job), title: t.id, "data-task": t.id}, t.name || t.id)]);
  }

  function workersPage() {
    every(Math.max(REFRESH_MS, 5000), async () => {
      const result = await api("/api/workers");
      $("#workers-body").replaceChildren(...result.workers.map((w) => el("tr", {"data-worker": w.id},
        el("td", {title: w.id}, w.nickname),
        el("td", {}, w.manager_name),
        el("td", {}, badge(w.status, "worker"), w.status_requested ? el("span", {class: "muted"}, " → " + w.status_requested) : null),
        el("td", {}, w.platform || "-"),
        el("td", {class: "small"}, (w.supported_task_types || []).join(", ")),
        el("td", {class: "small"}, (w.tags || []).join(", ") || "-"),
        el("td", {}, ...runningTasks(w)),
        el("td", {class: "small"}, resources(w.resources)),
        el("td", {}, w.last_seen ? timeEl(w.last_seen) : "-"))));
      $("#workers-empty").hidden = result.workers.length > 0;
    })();
  }

  function managersPage() {
    every(Math.max(REFRESH_MS, 5000), async () => {
      const result = await api("/api/managers");
      $("#managers-body").replaceChildren(...result.managers.map((m) => el("tr", {"data-manager": m.id},
        el("td", {title: m.id}, m.name),
        el("td", {}, badge(m.link_health, "health")),
        el("td", {}, ago(m.seconds_since_seen)),
        el("td", {}, `${m.idle_workers} idle of ${m.nr_of_workers}`),
        el("td", {class: "small"}, (m.worker_task_types || []).join(", ") || "-"),
        el("td", {}, (m.projects || []).map((p) => p.name).join(", ") || "-"),
        el("td", {}, m.version || "-"),
        el("td", {class: "small"}, /^https?:\/\//.test(m.url || "") ? el("a", {href: m.url, rel: "noreferrer"}, m.url) : (m.url || "-")))));
      $("#managers-empty").hidden = result.managers.length > 0;
    })();
  }

  // --- start --------------------------------------------------------------------------------

  function localTimes() {
    for (const t of document.querySelectorAll("time[datetime]")) t.textContent = when(t.getAttribute("datetime"));
  }

  const PAGES = {jobs: jobsPage, job: jobPage, workers: workersPage, managers: managersPage};
  function start() {
    localTimes();
    const page = PAGES[document.body.dataset.page];
    if (page) page();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
