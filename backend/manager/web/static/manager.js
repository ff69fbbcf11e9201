/* The Manager's pages for the site admin: the Manager at a glance, and its workers with actions.
 *
 * They call the admin API signed in by the page cookie, with the page's CSRF token (common.js). The
 * overview refreshes every few seconds; the latest image comes live through /imagewatch (SSE).
 */
"use strict";

(function () {
  const F = window.Flamenco;
  const {el, $, $$, enc, api, badge, word, timeEl, when, duration, size, parseTime, keepUpdated} = F;

  function pairs(node, rows) {
    node.replaceChildren(...rows.flatMap(([label, value, id]) => [
      el("dt", {}, label), el("dd", {id: id || null}, value === null || value === undefined ? "-" : value)]));
  }

  function tile(label, value, id) {
    return el("div", {class: "tile"}, el("div", {class: "tile-value", id: id || null}, String(value)),
              el("div", {class: "tile-label"}, label));
  }

  function usage(u) {
    return u ? `${size(u.bytes)} in ${u.files} file${u.files === 1 ? "" : "s"}` : "-";
  }

  // --- the overview ------------------------------------------------------------------------------

  function statusPage() {
    keepUpdated(async () => {
      const s = await api("/api/admin/status");
      const up = s.upstream || {};
      const workers = s.workers.by_status || {};
      const tasks = s.tasks.by_status || {};
      $("#status-tiles").replaceChildren(
        tile("workers", s.workers.total, "tile-workers"),
        tile("awake", workers.awake || 0),
        tile("tasks running", tasks.active || 0),
        tile("waiting for the Server", up.queue_length, "tile-queue"));
      const health = !up.linked ? el("span", {class: "badge", id: "link-health"}, "not linked")
        : el("span", {class: "badge " + (up.healthy ? "health-online" : "health-offline"), id: "link-health",
                      "data-status": up.healthy ? "healthy" : "failing"}, up.healthy ? "healthy" : "failing");
      pairs($("#link"), [
        ["Link", health], ["Server", up.server_url || "-"], ["Manager id", up.manager_id || "-"],
        ["Last success", up.last_ok ? timeEl(up.last_ok) : "never"],
        ["Last error", up.last_error ? el("span", {class: "error"}, up.last_error, " ",
                                          up.last_error_at ? timeEl(up.last_error_at) : "") : "none"],
        ["Failures in a row", String(up.consecutive_failures || 0)]]);
      const queue = up.queue || {by_kind: {}, oldest: null};
      pairs($("#queue"), [
        ["Items", String(up.queue_length), "queue-length"],
        ["Task updates", String(queue.by_kind["task-update"] || 0)],
        ["Logs to upload", String(queue.by_kind["log-upload"] || 0)],
        ["Outputs to upload", String(queue.by_kind.output || 0)],
        ["Oldest", queue.oldest ? timeEl(queue.oldest) : "-"]]);
      const st = s.storage || {};
      pairs($("#storage"), [
        ["Output spool", usage(st.spool), "storage-spool"], ["Job-file cache", usage(st.file_cache), "storage-cache"],
        ["Task logs", usage(st.task_logs)],
        ["Free on the disk", st.disk ? `${size(st.disk.free_bytes)} of ${size(st.disk.total_bytes)}` : "-"]]);
      $("#task-counts").replaceChildren(...Object.entries(tasks).sort().map(([st2, n]) =>
        el("span", {class: "count", "data-status": st2}, badge(st2, "task"), " " + n)));
      if (!Object.keys(tasks).length) $("#task-counts").replaceChildren(el("p", {class: "muted"}, "None."));
      showImage(s.latest_image);
    });
    if (window.EventSource) {
      const source = new EventSource("/imagewatch");
      source.addEventListener("image", (ev) => showImage(JSON.parse(ev.data)));
      window.addEventListener("pagehide", () => source.close());
    }
  }

  let shownImage = null;

  function showImage(info) {
    if (!info || !info.updated || info.updated === shownImage) return;
    shownImage = info.updated;
    $("#latest-image").replaceChildren(el("figure", {class: "latest"},
      el("img", {src: "/latest-image.jpg?t=" + enc(info.updated), alt: "the latest rendered image",
                 id: "latest-image-img"}),
      el("figcaption", {class: "small muted"}, info.source || "", " ", info.updated ? timeEl(info.updated) : "")));
  }

  // --- workers --------------------------------------------------------------------------------------

  const ACTIONS = [
    ["sleep-lazy", "Sleep after its task"], ["sleep", "Sleep now"], ["wake", "Wake"],
    ["shutdown-lazy", "Shut down after its task"], ["shutdown", "Shut down now"], ["set-tags", "Tags…"],
    ["sleep-schedule", "Sleep schedule…"], ["clear-blocklist", "Clear blocklist"], ["ack-timeout", "Mark offline"],
    ["forget", "Forget"]];
  const STATUS = {sleep: "asleep", wake: "awake", shutdown: "shutdown"};


  function schedule(s) {
    if (!s || !s.schedule_active) return "-";
    return `asleep ${s.time_start}–${s.time_end}` + (s.days_of_week ? ` (${s.days_of_week})` : "");
  }

  function workersPage() {
    let workers = [];
    const errorNode = $("#worker-error");
    const path = (w) => "/api/admin/workers/" + enc(w._id);

    async function act(w, what, call) {
      errorNode.hidden = true;
      try {
        await call();
      } catch (err) {
        errorNode.textContent = `Could not ${what} ${w.nickname}: ${err.message}`;
        errorNode.hidden = false;
      }
      refresher.tick();
    }

    const {openTags, openSchedule} = F.workerDialogs(
      (w, tags) => act(w, "set the tags of", () => api(path(w) + "/tags", {method: "PUT", body: {tags}})),
      (w, s) => act(w, "set the schedule of", () => api(path(w) + "/sleep-schedule", {method: "PUT", body: s})));

    // Every task the worker runs (a worker with slots runs several), as `job › task`: the
    // Manager knows a job by its id only, so the id's start stands for it (whole in the tooltip).
    function runningTasks(w) {
      const tasks = w.running_tasks || [];
      if (!tasks.length) return ["-"];
      return tasks.map((t) => el("div", {"data-task": t.id, title: `job ${t.job || "?"}, task ${t.id}`},
                                 `${(t.job || "").slice(0, 8)} › ${t.name || t.id}`));
    }

    function render() {
      F.redrawRows($("#workers-body"), workers, () => workers.map((w) => el("tr", {"data-worker": w._id,
                                                                             "data-key": w._id},
        el("td", {title: w._id}, w.nickname, el("div", {class: "muted small"}, w.address || "")),
        el("td", {}, badge(w.status, "worker"), w.status_requested
          ? el("div", {class: "pending small", "data-requested": w.status_requested},
               `${word("worker", w.status_requested)} requested${w.lazy_status_request ? " (after its task)" : ""}`)
          : null),
        el("td", {}, w.platform || "-"),
        el("td", {class: "small worker-tags"}, (w.tags || []).join(", ") || "-"),
        el("td", {class: "small running-tasks"}, ...runningTasks(w)),
        el("td", {class: "small"}, F.resources(w.resources)),
        el("td", {class: "small"}, schedule(w.sleep_schedule)),
        el("td", {class: "small"}, (w.blocklist || []).length
          ? `${w.blocklist.length} entr${w.blocklist.length === 1 ? "y" : "ies"}` : "-"),
        el("td", {}, w.last_seen ? timeEl(w.last_seen) : "-"),
        el("td", {}, el("details", {class: "menu"}, el("summary", {class: "action"}, "Actions"),
          el("div", {class: "menu-items"}, ...ACTIONS.map(([key, label]) => el("button", {
            type: "button", class: "link" + (key === "forget" || key.startsWith("shutdown") ? " danger" : ""),
            "data-worker-action": key, "data-worker": w._id}, label))))))));
      $("#workers-empty").hidden = workers.length > 0;
    }

    $("#workers-body").addEventListener("click", (ev) => {
      const button = ev.target.closest("button[data-worker-action]");
      if (!button) return;
      button.closest("details").open = false;
      const w = workers.find((x) => x._id === button.dataset.worker);
      if (!w) return;
      const key = button.dataset.workerAction;
      const [action, lazy] = key.split("-lazy");
      if (key === "set-tags") return openTags(w);
      if (key === "sleep-schedule") return openSchedule(w);
      if (action === "forget") {
        if (!window.confirm(`Forget worker ${w.nickname}? Its task goes back to the queue.`)) return;
        return act(w, "forget", () => api(path(w), {method: "DELETE"}));
      }
      if (action === "shutdown" && !window.confirm(`Shut down worker ${w.nickname}?`)) return;
      if (action === "clear-blocklist") {
        return act(w, "clear the blocklist of", () => api(path(w) + "/blocklist", {method: "DELETE"}));
      }
      if (action === "ack-timeout") return act(w, "mark offline", () => api(path(w) + "/ack-timeout", {method: "POST"}));
      return act(w, action, () => api(path(w) + "/set-status",
                                       {method: "POST", body: {status: STATUS[action], lazy: lazy !== undefined}}));
    });

    const refresher = keepUpdated(async () => {
      workers = (await api("/api/admin/workers")).workers;
      render();
    });
  }

  F.start({status: statusPage, workers: workersPage});
})();
