/* The Server's pages: jobs, a job, a task, and (for admins) the farm, workers, Managers; the archive.
 *
 * Each page starts from the JSON in <script id="page-data">, fetches what it shows from the JSON API
 * (signed in by the session cookie; changes carry the page's CSRF token) and stays up to date through
 * the Server's event stream (/api/events), polling only when that cannot get through (common.js).
 */
"use strict";

(function () {
  const F = window.Flamenco;
  const {DATA, el, svg, $, $$, enc, api, badge, setBadge, word, timeEl, when, clock, duration, size, ago, pct,
         setBar, progressCell, parseTime, localPath, keepUpdated} = F;

  function showError(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  function events(...topics) {
    return "/api/events?topics=" + enc(topics.join(","));
  }

  /** Run `fn` with the buttons disabled; its error goes into `errorNode`. */
  async function acting(buttons, errorNode, what, fn) {
    if (errorNode) showError(errorNode, "");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      return await fn();
    } catch (err) {
      if (errorNode) showError(errorNode, `Could not ${what}: ${err.message}`);
      return null;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function relabelOptions(select, kind) {
    if (!select) return;
    for (const option of select.options) if (option.value) option.textContent = word(kind, option.value);
  }

  /** "<nickname>" for a worker id, from the names the page knows, or from "id (nickname)". */
  function workerLabel(names, id, identifier) {
    if (!id) return null;
    if (names.has(id)) return names.get(id);
    const m = /\((.+)\)\s*$/.exec(identifier || "");
    return m ? m[1] : id;
  }

  /** The workers' names, asked for again only when a task or run names a worker not known yet. */
  async function namesFor(known, tasks, runs) {
    const ids = [...tasks.flatMap((t) => [t.worker, ...(t.failed_by_workers || []).map((f) => f.id)]),
                 ...runs.map((r) => r.worker)].filter(Boolean);
    if (ids.every((id) => known.has(id))) return known;
    try {
      const result = await api("/api/workers");
      return new Map(result.workers.map((x) => [x.id, x.nickname]));
    } catch (err) {
      return known;  // names are a nicety: the ids show meanwhile
    }
  }

  // --- the jobs list ---------------------------------------------------------------------------

  function jobsPage() {
    const filter = Object.assign({status: "", project: "", page: 1, q: "", sort: ""}, DATA.filter);
    const perPage = DATA.per_page || 50;
    const body = $("#jobs-body");
    const noJobs = [...$("#jobs-empty").childNodes].map((n) => n.cloneNode(true));
    const selected = new Set();
    let shown = [];
    relabelOptions($("#filter-status"), "job");

    function jobRow(job) {
      const check = el("input", {type: "checkbox", class: "select-job", "data-job": job.id,
                                 "aria-label": "select " + job.name, checked: selected.has(job.id)});
      return el("tr", {"data-job": job.id, class: selected.has(job.id) ? "selected" : null},
        el("td", {class: "col-check"}, check),
        el("td", {}, el("a", {class: "job-link", href: localPath(job.web_url, "/jobs/" + enc(job.id))}, job.name)),
        el("td", {}, job.type_label || job.type),
        el("td", {}, badge(job.status), job.status_reason && job.status === "queued"
          ? el("div", {class: "muted small reason"}, job.status_reason) : null),
        el("td", {class: "col-progress"}, progressCell(job.progress)),
        el("td", {class: "num"}, String(job.priority)),
        el("td", {}, job.project_name || job.project),
        el("td", {}, job.user_name || "-"),
        el("td", {}, timeEl(job.created)));
    }

    function renderBulk() {
      $("#bulk-bar").hidden = selected.size === 0;
      $("#bulk-count").textContent = `${selected.size} job${selected.size === 1 ? "" : "s"} selected`;
      const all = $("#select-all");
      all.checked = shown.length > 0 && shown.every((j) => selected.has(j.id));
    }

    function render(result) {
      shown = result.jobs;
      body.replaceChildren(...result.jobs.map(jobRow));
      const empty = $("#jobs-empty");
      empty.hidden = result.jobs.length > 0;
      if (filter.status || filter.project || filter.q) empty.textContent = "No jobs match this filter.";
      else empty.replaceChildren(...noJobs.map((n) => n.cloneNode(true)));
      const first = (filter.page - 1) * perPage;
      $("#page-info").textContent = result.total
        ? `${first + Math.min(1, result.jobs.length)}–${first + result.jobs.length} of ${result.total}` : "";
      $("#page-newer").hidden = filter.page <= 1;
      $("#page-older").hidden = first + result.jobs.length >= result.total;
      for (const b of $$("button.sort")) {
        const key = b.dataset.sort;
        const current = filter.sort || "-created";
        b.classList.toggle("asc", current === key);
        b.classList.toggle("desc", current === "-" + key);
      }
      renderBulk();
    }

    function query() {
      const q = new URLSearchParams();
      for (const key of ["status", "project", "q", "sort"]) if (filter[key]) q.set(key, filter[key]);
      return q;
    }

    const refresher = keepUpdated(async () => {
      const q = query();
      q.set("limit", String(perPage));
      q.set("offset", String((filter.page - 1) * perPage));
      render(await api("/api/jobs?" + q));
    }, events("jobs"));

    function changed() {
      const q = query();
      if (filter.page > 1) q.set("page", String(filter.page));
      history.replaceState(null, "", "/" + (q.toString() ? "?" + q : ""));
      refresher.tick();
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
    let typing = null;
    $("#filter-q").addEventListener("input", (ev) => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        filter.q = ev.target.value.trim();
        filter.page = 1;
        changed();
      }, 250);
    });
    $("#job-filters").addEventListener("submit", (ev) => ev.preventDefault());
    for (const b of $$("button.sort")) {
      b.addEventListener("click", () => {
        const key = b.dataset.sort;
        const current = filter.sort || "-created";
        filter.sort = current === key ? "-" + key : current === "-" + key ? key
          : (key === "created" || key === "priority" ? "-" + key : key);
        filter.page = 1;
        changed();
      });
    }
    $("#page-newer").addEventListener("click", () => { filter.page = Math.max(1, filter.page - 1); changed(); });
    $("#page-older").addEventListener("click", () => { filter.page += 1; changed(); });

    body.addEventListener("change", (ev) => {
      const box = ev.target.closest("input.select-job");
      if (!box) return;
      if (box.checked) selected.add(box.dataset.job);
      else selected.delete(box.dataset.job);
      box.closest("tr").classList.toggle("selected", box.checked);
      renderBulk();
    });
    $("#select-all").addEventListener("change", (ev) => {
      for (const job of shown) {
        if (ev.target.checked) selected.add(job.id);
        else selected.delete(job.id);
      }
      for (const box of $$("input.select-job")) {
        box.checked = ev.target.checked;
        box.closest("tr").classList.toggle("selected", box.checked);
      }
      renderBulk();
    });
    $("#bulk-clear").addEventListener("click", () => {
      selected.clear();
      refresher.tick();
      renderBulk();
    });

    const CONFIRM = {cancel: "Cancel the selected jobs? Their running tasks are stopped.",
                     delete: "Delete the selected jobs with their files and outputs? This cannot be undone.",
                     archive: "Archive the selected jobs? Their record is kept; their files and outputs go.",
                     requeue: "Requeue the selected jobs?"};
    $("#bulk-bar").addEventListener("click", async (ev) => {
      const button = ev.target.closest("button[data-bulk]");
      if (!button) return;
      const action = button.dataset.bulk;
      if (CONFIRM[action] && !window.confirm(CONFIRM[action])) return;
      const request = {action, jobs: [...selected], reason: "from the jobs page"};
      if (action === "priority") request.priority = Number($("#bulk-priority").value);
      const result = await acting($$("#bulk-bar button"), $("#bulk-error"), action,
        () => api("/api/jobs/actions", {method: "POST", body: request}));
      if (!result) return;
      const failed = Object.entries(result.results).filter(([, r]) => !r.ok);
      showError($("#bulk-error"), failed.length
        ? `${failed.length} of ${selected.size} jobs refused: ` + failed.map(([, r]) => r.message).join("; ") : "");
      if (action === "delete" || action === "archive") {
        for (const [id, r] of Object.entries(result.results)) if (r.ok) selected.delete(id);
      }
      refresher.tick();
    });

    render(DATA.initial);
  }

  // --- one job ------------------------------------------------------------------------------------

  const ACTION_LABELS = {pause: "Pause", resume: "Resume", cancel: "Cancel", requeue: "Requeue",
                         "requeue-failed": "Retry failed tasks", delete: "Delete", archive: "Archive"};
  const ACTION_CONFIRM = {cancel: "Cancel this job? Its running tasks are stopped.",
                          requeue: "Requeue this job? Its unfinished tasks (all, if it completed) run again.",
                          delete: "Delete this job with its files and outputs? This cannot be undone.",
                          archive: "Archive this job? Its record is kept; its rows, files and outputs go."};
  const IMAGE = /\.(png|jpe?g|webp|gif|bmp|avif)$/i;
  const RUNNING = new Set(["active", "cancel-requested"]);
  const TASK_LIMIT = 1000;
  const TIMELINE_LANES = 60;

  function jobPage() {
    let job = DATA.job;
    const base = "/api/jobs/" + enc(job.id);
    let tasks = [];
    let runs = [];
    let shownImage = null;
    let workerNames = new Map();
    const expanded = new Set();
    const selected = new Set();
    let taskFilter = "";
    relabelOptions($("#task-filter"), "task");
    const workerName = (id, identifier) => workerLabel(workerNames, id, identifier);

    function renderJob() {
      setBadge($("#job-status"), job.status);
      $("#job-reason").textContent = job.status_reason || "";
      setBar($("#job-progress"), job.progress);
      $("#job-progress-text").textContent = pct(job.progress) + "%";
      $("#job-priority").textContent = String(job.priority);
      const counts = Object.entries(job.task_counts || {}).sort((a, b) => b[1] - a[1]);
      $("#job-counts").replaceChildren(...counts.map(([s, n]) =>
        el("span", {class: "count", "data-status": s}, badge(s, "task"), " " + n)));
      document.title = `${job.name} (${word("job", job.status)}) · Flamenco`;
      renderActions();
    }

    function renderActions() {
      const counts = job.task_counts || {};
      const moves = DATA.requeue_moves[job.status] || {};  // a requeue that would move no task is not offered
      const words = (DATA.actions[job.status] || []).filter((w) =>
        !moves[w] || moves[w].some((s) => (counts[s] || 0) > 0));
      if ((DATA.final || []).includes(job.status)) words.push("delete");
      if (DATA.is_admin && (DATA.archivable || []).includes(job.status)) words.push("archive");
      const box = $("#job-actions");
      if (box.dataset.words === words.join(",")) return;
      box.dataset.words = words.join(",");
      box.replaceChildren(...words.map((w) => el("button", {
        type: "button", class: "action" + (w === "cancel" || w === "delete" ? " danger" : ""), "data-action": w,
        id: "action-" + w}, ACTION_LABELS[w] || w)));
    }

    $("#job-actions").addEventListener("click", async (ev) => {
      const button = ev.target.closest("button[data-action]");
      if (!button) return;
      const action = button.dataset.action;
      if (ACTION_CONFIRM[action] && !window.confirm(ACTION_CONFIRM[action])) return;
      const label = (ACTION_LABELS[action] || action).toLowerCase();
      await acting($$("#job-actions button"), $("#action-error"), label, async () => {
        if (action === "delete") {
          await api(base, {method: "DELETE"});
          location.assign("/");
        } else if (action === "archive") {
          await api(base + "/archive", {method: "POST"});
          location.assign("/archive");
        } else {
          job = await api(base + "/status", {method: "POST", body: {status: action, reason: "from the web page"}});
          renderJob();
          refresher.tick();
        }
      });
    });

    $("#priority-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const priority = Number($("#priority-input").value);
      await acting([$("#priority-set")], $("#action-error"), "set the priority", async () => {
        job = await api(base + "/priority", {method: "POST", body: {priority, reason: "from the web page"}});
        renderJob();
      });
    });

    function runEnd(item, now) {
      const finished = parseTime(item.finished);
      if (finished !== null) return finished;
      return RUNNING.has(item.status) ? now : (parseTime(item.updated) || now);
    }

    function failedOn(t) {
      return (t.failed_by_workers || []).map((f) => workerName(f.id, f.identifier)).join(", ");
    }

    function renderTasks(result) {
      tasks = result.tasks;
      const now = Date.now();
      $("#tasks-info").textContent = result.total > tasks.length
        ? `(the first ${tasks.length} of ${result.total})` : `(${result.total})`;
      const rows = [];
      for (const t of tasks) {
        const start = parseTime(t.started);
        const open = expanded.has(t.id);
        rows.push(el("tr", {"data-task": t.id, class: "task" + (open ? " open" : "") +
                                                       (selected.has(t.id) ? " selected" : ""), title: t.id},
          el("td", {class: "col-check"}, el("input", {type: "checkbox", class: "select-task", "data-task": t.id,
                                                      "aria-label": "select " + t.name, checked: selected.has(t.id)})),
          el("td", {class: "nowrap"}, t.name),
          el("td", {}, badge(t.status, "task")),
          el("td", {class: "col-progress"}, progressCell(t.status === "completed" ? 100 : t.progress, "st-" + t.status)),
          el("td", {title: t.worker || null}, workerName(t.worker) || "-"),
          el("td", {class: "activity"}, t.activity || ""),
          el("td", {}, start === null ? "-" : timeEl(t.started)),
          el("td", {}, start === null ? "-" : duration(runEnd(t, now) - start)),
          el("td", {}, el("a", {href: "/tasks/" + enc(t.id), class: "task-link"}, "Open"))));
        if (open) rows.push(detailRow(t));
      }
      $("#tasks-body").replaceChildren(...rows);
      renderTaskBulk();
    }

    function renderTaskBulk() {
      const visible = new Set(tasks.map((t) => t.id));
      for (const id of [...selected]) if (!visible.has(id)) selected.delete(id);
      $("#task-bulk").hidden = selected.size === 0;
      $("#task-bulk-count").textContent = `${selected.size} selected`;
      $("#select-all-tasks").checked = tasks.length > 0 && selected.size === tasks.length;
    }

    function detailRow(task) {
      const pre = el("pre", {class: "log-tail"}, "Loading…");
      const buttons = el("div", {class: "row-actions"},
        el("button", {type: "button", class: "action", "data-task-action": "requeue", "data-task": task.id},
           "Requeue"),
        el("button", {type: "button", class: "action danger", "data-task-action": "cancel", "data-task": task.id},
           "Cancel"),
        el("a", {href: "/tasks/" + enc(task.id)}, "Attempts, commands and the full log →"));
      api("/api/tasks/" + enc(task.id)).then((t) => {
        const lines = [];
        if (t.failed_by_workers && t.failed_by_workers.length) lines.push("failed on: " + failedOn(t));
        lines.push(t.log_tail || "(no log lines yet)");
        pre.textContent = lines.join("\n");
      }).catch((err) => { pre.textContent = err.message; });
      return el("tr", {class: "detail", "data-detail": task.id}, el("td", {colspan: 9}, buttons, pre));
    }

    async function taskAction(action, ids, buttons) {
      if (action === "cancel" && !window.confirm(`Cancel ${ids.length === 1 ? "this task" : ids.length + " tasks"}? ` +
                                                 "The job goes on without them.")) return;
      const done = await acting(buttons, $("#task-error"), action,
        () => api(base + "/tasks/actions", {method: "POST", body: {action, tasks: ids, reason: "from the web page"}}));
      if (done) {
        selected.clear();
        refresher.tick();
      }
    }

    $("#tasks-body").addEventListener("click", (ev) => {
      if (ev.target.closest("a, input")) return;
      const actionButton = ev.target.closest("button[data-task-action]");
      if (actionButton) {
        taskAction(actionButton.dataset.taskAction, [actionButton.dataset.task], [actionButton]);
        return;
      }
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
        row.after(detailRow(tasks.find((t) => t.id === id)));
      }
    });
    $("#tasks-body").addEventListener("change", (ev) => {
      const box = ev.target.closest("input.select-task");
      if (!box) return;
      if (box.checked) selected.add(box.dataset.task);
      else selected.delete(box.dataset.task);
      box.closest("tr").classList.toggle("selected", box.checked);
      renderTaskBulk();
    });
    $("#select-all-tasks").addEventListener("change", (ev) => {
      for (const t of tasks) {
        if (ev.target.checked) selected.add(t.id);
        else selected.delete(t.id);
      }
      for (const box of $$("input.select-task")) box.checked = ev.target.checked;
      renderTaskBulk();
    });
    $("#task-bulk").addEventListener("click", (ev) => {
      const button = ev.target.closest("button[data-task-bulk]");
      if (button) taskAction(button.dataset.taskBulk, [...selected], $$("#task-bulk button"));
    });
    $("#task-filter").addEventListener("change", (ev) => {
      taskFilter = ev.target.value;
      selected.clear();
      refresher.tick();
    });

    /** Every run of every task; a task that started before runs were recorded draws its latest run. */
    function timelineRuns(now) {
      const byTask = new Map(tasks.map((t) => [t.id, t]));
      const out = runs.map((r) => ({name: r.task_name, task: r.task, worker: r.worker, status: r.status,
                                    start: parseTime(r.started), end: null, finished: r.finished}));
      const drawn = new Set(runs.map((r) => r.task));
      for (const t of tasks) {
        if (!drawn.has(t.id) && parseTime(t.started) !== null) {
          out.push({name: t.name, task: t.id, worker: t.worker, status: t.status, start: parseTime(t.started),
                    finished: t.finished, updated: t.updated});
        }
      }
      for (const r of out) {
        const t = byTask.get(r.task);
        r.end = Math.max(r.start, runEnd({finished: r.finished, status: r.status, updated: r.updated || (t && t.updated)}, now));
      }
      return out.filter((r) => r.start !== null);
    }

    function renderTimeline() {
      const box = $("#timeline");
      const now = Date.now();
      const drawn = timelineRuns(now);
      if (!drawn.length) {
        box.replaceChildren(el("p", {class: "muted", id: "timeline-empty"}, "No task has started yet."));
        return;
      }
      const t0 = Math.min(...drawn.map((r) => r.start));
      const t1 = Math.max(t0 + 1000, ...drawn.map((r) => r.end));
      const laneName = (r) => workerName(r.worker) || "(unknown worker)";
      let lanes = [...new Set(drawn.map(laneName))].sort();
      const hidden = Math.max(0, lanes.length - TIMELINE_LANES);
      lanes = lanes.slice(0, TIMELINE_LANES);
      const laneOf = new Map(lanes.map((w, i) => [w, i]));
      const W = Math.max(560, box.clientWidth || 1000), LABEL = 160, RIGHT = 16, TOP = 22, ROW = 22;
      const H = TOP + lanes.length * ROW + 6;
      const x = (t) => LABEL + (W - LABEL - RIGHT) * (t - t0) / (t1 - t0);
      const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "timeline-svg", role: "img",
        "aria-label": `task timeline: ${drawn.length} task runs on ${lanes.length} workers`});
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
      for (const r of drawn) {
        const lane = laneOf.get(laneName(r));
        if (lane === undefined) continue;
        const x0 = x(r.start);
        const width = Math.max(2, x(r.end) - x0);
        const rect = svg("rect", {x: x0, y: TOP + lane * ROW + 3, width, height: ROW - 6, rx: 2,
          class: `run status-${r.status}`, "data-task": r.task});
        rect.append(svg("title", {}, `${r.name} on ${laneName(r)}: ${word("task", r.status)}, ` +
          `${duration(r.end - r.start)} (${clock(r.start)}–${clock(r.end)})`));
        root.append(rect);
        if (width > 60) {
          const name = r.name.length > width / 7 ? r.name.slice(0, Math.floor(width / 7) - 1) + "…" : r.name;
          root.append(svg("text", {x: x0 + 4, y: TOP + lane * ROW + ROW / 2 + 4, class: "run-label"}, name));
        }
      }
      const workers = new Set(drawn.map((r) => r.worker)).size;
      const summary = el("p", {class: "muted small"},
        `${drawn.length} task run${drawn.length === 1 ? "" : "s"} on ${workers} worker${workers === 1 ? "" : "s"}, ` +
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

    const refresher = keepUpdated(async () => {
      const status = taskFilter ? `&status=${enc(taskFilter)}` : "";
      const [j, t, r, l, o] = await Promise.all([
        api(base), api(`${base}/tasks?limit=${TASK_LIMIT}${status}`), api(base + "/runs"), api(base + "/log"),
        job.files_mode === "upload" ? api(base + "/outputs") : Promise.resolve(null)]);
      job = j;
      runs = r.runs;
      workerNames = await namesFor(workerNames, t.tasks, r.runs);
      renderJob();
      renderTasks(t);
      renderLog(l);
      if (o) renderOutputs(o);
      renderTimeline();
    }, events("job:" + job.id));

    // Running tasks' durations and bars grow between events without asking the Server.
    setInterval(() => {
      if (!document.hidden && tasks.some((t) => RUNNING.has(t.status))) renderTimeline();
    }, 1000);
    renderJob();
  }

  // --- one task -------------------------------------------------------------------------------------

  function taskPage() {
    const taskId = DATA.task.id;
    const url = "/api/tasks/" + enc(taskId);
    let task = DATA.task;
    let workerNames = new Map();
    let logShownFor = null;
    let logAsked = false;

    function render() {
      setBadge($("#task-status"), task.status, "task");
      $("#task-activity").textContent = task.activity || "";
      setBar($("#task-progress"), task.status === "completed" ? 100 : task.progress);
      $("#task-worker").textContent = workerLabel(workerNames, task.worker) || "-";
      $("#task-started").replaceChildren(task.started ? timeEl(task.started) : "-");
      $("#task-finished").replaceChildren(task.finished ? timeEl(task.finished) : "-");
      $("#task-failed-on").textContent = (task.failed_by_workers || [])
        .map((f) => workerLabel(workerNames, f.id, f.identifier)).join(", ") || "-";
      $("#task-requeue").hidden = RUNNING.has(task.status) || ["queued", "claimed-by-manager", "paused",
                                                                 "soft-failed"].includes(task.status);
      $("#task-cancel").hidden = ["completed", "canceled", "failed", "cancel-requested"].includes(task.status);
      const runs = task.runs || [];
      $("#runs-body").replaceChildren(...runs.map((r, i) => el("tr", {"data-run": String(i + 1)},
        el("td", {}, String(i + 1)),
        el("td", {title: r.worker || null}, workerLabel(workerNames, r.worker) || "-"),
        el("td", {}, timeEl(r.started)),
        el("td", {}, r.finished ? timeEl(r.finished) : "running"),
        el("td", {}, duration((parseTime(r.finished) || Date.now()) - parseTime(r.started))),
        el("td", {}, badge(r.status, "task")),
        el("td", {class: "activity", title: r.log_tail || null}, r.activity || ""))));
      $("#runs-empty").hidden = runs.length > 0;
      document.title = `${task.name} (${word("task", task.status)}) · Flamenco`;
    }

    async function showLog() {
      const state = $("#log-state");
      const pre = $("#task-log");
      const stale = task.log_uploaded && task.finished && parseTime(task.log_uploaded) < parseTime(task.finished);
      if (task.log_uploaded && !stale) {
        if (logShownFor === task.log_uploaded) return;
        const resp = await fetch(url + "/log", {credentials: "same-origin"});
        if (resp.ok) {
          // Streamed: lines show as they arrive, however long the log is.
          pre.textContent = "";
          const reader = resp.body.getReader();
          const decoder = new TextDecoder();
          for (;;) {
            const {done, value} = await reader.read();
            if (done) break;
            pre.append(decoder.decode(value, {stream: true}));
          }
          logShownFor = task.log_uploaded;
          state.textContent = `as uploaded ${when(task.log_uploaded)}`;
          $("#log-download").hidden = false;
          return;
        }
      }
      if (!logShownFor) pre.textContent = task.log_tail || "(no log lines yet)";
      if (task.log_requested || logAsked) {
        state.textContent = "the last lines; the full log was asked of its Manager and shows here when it arrives";
      } else {
        state.textContent = "the last lines";
      }
    }

    $("#log-fetch").addEventListener("click", async () => {
      await acting([$("#log-fetch")], $("#action-error"), "ask for the log", async () => {
        await api(url + "/log-request", {method: "POST"});
        logAsked = true;
        logShownFor = null;
        refresher.tick();
      });
    });
    for (const [id, action] of [["#task-requeue", "requeue"], ["#task-cancel", "cancel"]]) {
      $(id).addEventListener("click", async () => {
        if (action === "cancel" && !window.confirm("Cancel this task? The job goes on without it.")) return;
        await acting([$(id)], $("#action-error"), action, async () => {
          await api(`${url}/${action}`, {method: "POST", body: {reason: "from the task page"}});
          refresher.tick();
        });
      });
    }

    const refresher = keepUpdated(async () => {
      task = await api(url);
      workerNames = await namesFor(workerNames, [task], task.runs || []);
      render();
      await showLog();
    }, events("job:" + DATA.job.id));
  }

  // --- workers (admins and manager-admins) --------------------------------------------------------


  const WORKER_ACTIONS = [
    ["sleep-lazy", "Sleep after its task"], ["sleep", "Sleep now"], ["wake", "Wake"],
    ["shutdown-lazy", "Shut down after its task"], ["shutdown", "Shut down now"], ["set-tags", "Tags…"],
    ["sleep-schedule", "Sleep schedule…"], ["clear-blocklist", "Clear blocklist"], ["forget", "Forget"]];
  const ACTION_WORDS = {sleep: "sleep", wake: "wake up", shutdown: "shut down", forget: "forget",
                        "set-tags": "set tags", "clear-blocklist": "clear blocklist",
                        "sleep-schedule": "sleep schedule"};

  function actionNote(a) {
    const what = ACTION_WORDS[a.action] || a.action;
    const lazy = a.params && a.params.lazy ? " after its task" : "";
    if (a.status === "requested") {
      return el("div", {class: "pending small", "data-action-status": "requested", "data-action": a.action,
                        title: `asked by ${a.requested_by} at ${when(a.requested)}; its Manager applies it on its ` +
                               "next contact"}, `${what}${lazy}: requested`);
    }
    return el("div", {class: `small action-${a.status}`, "data-action-status": a.status, "data-action": a.action,
                      title: a.message || null},
              `${what}${lazy}: ${a.status === "done" ? "done" : "failed"}${a.message ? " (" + a.message + ")" : ""}`);
  }

  function runningTasks(w) {
    // A worker with slots runs several tasks; a report from an older Manager names one.
    const tasks = (w.running_tasks || []).length ? w.running_tasks
      : w.current_job ? [{id: w.current_task, job: w.current_job, name: w.current_task_name,
                          job_name: w.current_job_name}] : [];
    if (!tasks.length) return ["-"];
    return tasks.flatMap((t, i) => [i ? ", " : null,
      el("a", {href: "/jobs/" + enc(t.job), title: t.id, "data-task": t.id},
         `${t.job_name || t.job} › ${t.name || t.id}`)]);
  }

  function workersPage() {
    let workers = [];
    const errorNode = $("#worker-error");

    function actionsCell(w) {
      if (!w.may_act) return el("td", {class: "muted small"}, "-");
      const menu = el("details", {class: "menu"}, el("summary", {class: "action"}, "Actions"),
        el("div", {class: "menu-items"}, ...WORKER_ACTIONS.map(([key, label]) => el("button", {
          type: "button", class: "link" + (key === "forget" || key.startsWith("shutdown") ? " danger" : ""),
          "data-worker-action": key, "data-worker": w.id, "data-manager": w.manager}, label))));
      return el("td", {}, menu);
    }

    function render() {
      F.redrawRows($("#workers-body"), workers, () => workers.map((w) => el("tr", {"data-worker": w.id,
                                                                             "data-manager": w.manager,
                                                                             "data-key": `${w.manager}/${w.id}`},
        el("td", {title: w.id}, w.nickname),
        el("td", {}, w.manager_name),
        el("td", {class: "worker-status"}, badge(w.status, "worker"),
           w.status_requested ? el("span", {class: "muted small"}, " → " + word("worker", w.status_requested)) : null,
           ...(w.actions || []).slice(0, 3).map(actionNote)),
        el("td", {}, w.platform || "-"),
        el("td", {class: "small"}, (w.supported_task_types || []).join(", ")),
        el("td", {class: "small worker-tags"}, (w.tags || []).join(", ") || "-"),
        el("td", {}, ...runningTasks(w)),
        el("td", {class: "small"}, F.resources(w.resources)),
        el("td", {}, w.last_seen ? timeEl(w.last_seen) : "-"),
        actionsCell(w))));
      $("#workers-empty").hidden = workers.length > 0;
    }

    async function send(w, body) {
      await acting([], errorNode, ACTION_WORDS[body.action] || body.action, async () => {
        await api(`/api/workers/${enc(w.manager)}/${enc(w.id)}/actions`, {method: "POST", body});
        refresher.tick();
      });
    }

    const {openTags, openSchedule} = F.workerDialogs(
      (w, tags) => send(w, {action: "set-tags", tags}),
      (w, schedule) => send(w, {action: "sleep-schedule", schedule}));

    $("#workers-body").addEventListener("click", (ev) => {
      const button = ev.target.closest("button[data-worker-action]");
      if (!button) return;
      button.closest("details").open = false;
      const w = workers.find((x) => x.id === button.dataset.worker && x.manager === button.dataset.manager);
      if (!w) return;
      const lastSchedule = (w.actions || []).find((a) => a.action === "sleep-schedule");
      if (lastSchedule) w.sleep_schedule = lastSchedule.params.schedule;
      const key = button.dataset.workerAction;
      if (key === "set-tags") return openTags(w);
      if (key === "sleep-schedule") return openSchedule(w);
      if (key === "forget" && !window.confirm(`Forget worker ${w.nickname}? Its task goes back to the queue; ` +
                                              "it registers again when it next starts.")) return;
      if (key.startsWith("shutdown") && !window.confirm(`Shut down worker ${w.nickname}?`)) return;
      const [action, lazy] = key.split("-lazy");
      const body = {action};
      if (["sleep", "wake", "shutdown"].includes(action)) body.lazy = lazy !== undefined;
      send(w, body);
    });

    const refresher = keepUpdated(async () => {
      workers = (await api("/api/workers")).workers;
      render();
    }, events("workers"));
  }

  // --- Managers (admins) --------------------------------------------------------------------------------

  function managersPage() {
    keepUpdated(async () => {
      const result = await api("/api/managers");
      $("#managers-body").replaceChildren(...result.managers.map((m) => el("tr", {"data-manager": m.id},
        el("td", {title: m.id}, m.name),
        el("td", {}, badge(m.link_health, "health")),
        el("td", {}, m.last_seen ? timeEl(m.last_seen) : "never", el("span", {class: "muted small"},
                                                                     " " + ago(m.seconds_since_seen))),
        el("td", {class: "num"}, m.queue_length === null || m.queue_length === undefined ? "-" : String(m.queue_length)),
        el("td", {}, `${m.idle_workers} idle of ${m.nr_of_workers}`),
        el("td", {class: "small"}, (m.worker_task_types || []).join(", ") || "-"),
        el("td", {}, (m.projects || []).map((p) => p.name).join(", ") || "-"),
        el("td", {}, m.version || "-"),
        el("td", {class: "small"}, /^https?:\/\//.test(m.url || "") ? el("a", {href: m.url, rel: "noreferrer"}, m.url) : (m.url || "-")))));
      $("#managers-empty").hidden = result.managers.length > 0;
    }, events("managers"));
  }

  // --- the farm at a glance (admins) -------------------------------------------------------------------

  function tile(label, value, extra) {
    return el("div", {class: "tile"}, el("div", {class: "tile-value"}, String(value)),
              el("div", {class: "tile-label"}, label), extra || null);
  }

  function chart(perMinute) {
    const W = 600, H = 140, PAD = 24;
    const max = Math.max(1, ...perMinute);
    const bw = (W - PAD) / perMinute.length;
    const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", id: "tasks-chart",
                             "aria-label": `tasks completed per minute, the last hour; at most ${max}`});
    root.append(svg("text", {x: 0, y: 12, class: "tick"}, String(max)));
    root.append(svg("line", {x1: PAD, x2: W, y1: H - 16, y2: H - 16, class: "grid"}));
    perMinute.forEach((n, i) => {
      const h = (H - 36) * n / max;
      const r = svg("rect", {x: PAD + i * bw + 1, y: H - 16 - h, width: Math.max(1, bw - 2), height: h,
                             class: "chart-bar", "data-count": String(n)});
      r.append(svg("title", {}, `${n} task${n === 1 ? "" : "s"}, ${60 - i} to ${59 - i} minutes ago`));
      root.append(r);
    });
    root.append(svg("text", {x: PAD, y: H - 2, class: "tick"}, "an hour ago"));
    root.append(svg("text", {x: W, y: H - 2, class: "tick", "text-anchor": "end"}, "now"));
    return root;
  }

  function farmPage() {
    keepUpdated(async () => {
      const farm = await api("/api/farm");
      const w = farm.workers_by_status || {};
      const total = Object.values(w).reduce((a, b) => a + b, 0);
      const done = farm.tasks_per_minute.reduce((a, b) => a + b, 0);
      $("#farm-tiles").replaceChildren(
        tile("workers", total, el("div", {class: "tile-detail"}, ...Object.entries(w).sort().map(([s, n]) =>
          el("span", {class: "count", "data-status": s}, badge(s, "worker"), " " + n)))),
        tile("jobs running", farm.jobs_running.length),
        tile("tasks done in the last hour", done),
        tile("Managers online", farm.managers.filter((m) => m.link_health === "online").length + " of " +
             farm.managers.length));
      $("#farm-managers").replaceChildren(...farm.managers.map((m) => el("div", {class: "manager-card",
                                                                             "data-manager": m.id},
        el("strong", {}, m.name), " ", badge(m.link_health, "health"),
        el("div", {class: "small muted"}, `last contact ${ago(m.seconds_since_seen)}; queue ` +
           `${m.queue_length === null || m.queue_length === undefined ? "unknown" : m.queue_length}; ` +
           `${m.idle_workers} of ${m.nr_of_workers} workers idle`))));
      if (!farm.managers.length) $("#farm-managers").replaceChildren(el("p", {class: "muted"}, "No Managers yet."));
      $("#farm-chart").replaceChildren(chart(farm.tasks_per_minute));
      $("#farm-jobs-body").replaceChildren(...farm.jobs_running.map((j) => el("tr", {"data-job": j.id},
        el("td", {}, el("a", {href: localPath(j.web_url, "/jobs/" + enc(j.id))}, j.name)),
        el("td", {}, badge(j.status), j.status_reason ? el("div", {class: "muted small"}, j.status_reason) : null),
        el("td", {class: "col-progress"}, progressCell(j.progress)),
        el("td", {}, j.project_name || j.project), el("td", {}, j.manager_name || "-"), el("td", {}, j.user_name || "-"))));
      $("#farm-jobs-empty").hidden = farm.jobs_running.length > 0;
    }, events("jobs", "workers", "managers"));
  }

  // --- the archive -------------------------------------------------------------------------------------

  function archivePage() {
    keepUpdated(async () => {
      const result = await api("/api/archives?limit=500");
      $("#archive-body").replaceChildren(...result.archives.map((a) => el("tr", {"data-archive": a.id},
        el("td", {}, a.name), el("td", {}, a.type), el("td", {}, badge(a.status)),
        el("td", {}, a.project_name || a.project), el("td", {}, a.user_name || "-"), el("td", {}, timeEl(a.created)),
        el("td", {}, timeEl(a.archived), el("div", {class: "muted small"}, a.archived_by)),
        el("td", {}, el("a", {href: localPath(a.url, "#"), download: ""}, "Download"),
           el("span", {class: "muted small"}, " " + size(a.size))))));
      $("#archive-empty").hidden = result.archives.length > 0;
    }, events("archives"));
  }

  F.start({jobs: jobsPage, job: jobPage, task: taskPage, workers: workersPage, managers: managersPage,
           farm: farmPage, archive: archivePage});
})();
