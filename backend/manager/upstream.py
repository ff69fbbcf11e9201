"""The link to the Server: the durable upstream queue's pusher, the depsgraph
fetcher, startup/update notifications and worker reports.

Everything the Server must learn goes through the `upstream_item` table in the
Manager's database, in order: task updates (sent in batches), full-log uploads
the Server asked for, and output files workers uploaded (upload mode). An item
leaves the table only once the Server acknowledged it, so a Server outage loses
nothing: the pusher backs off (1 s doubling to 60 s) and drains the queue in
order when the Server is back, while workers keep running what the Manager holds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

from shared import documents, protocol
from shared.version import USER_AGENT, __version__

from shared.statuses import TASK_RUNNABLE, TaskStatus as TS
from shared.timefmt import iso_utc

from .config import ManagerConfig
from .ingest import ingest_tasks
from .persistence import LOG_UPLOAD, OUTPUT, OUTPUTS, TASK_UPDATE, Persistence
from .state_machine import Report, TaskStateMachine
from .task_logs import TaskLogs
from .task_updates import TaskUpdates
from .wakeup import Wakeup
from .worker_actions import WorkerActions
from .workers import Workers

log = logging.getLogger(__name__)

SETTING_LAST_UPDATED = "depsgraph_last_updated"
NEWS_TASKS = "tasks"
"""The kind of news the depsgraph answer itself carries; any other makes the pusher ask at once."""
NO_LOG = (b"This Manager has no log of this task: it never ran here, or its job was forgotten "
          b"(retention.finished_job_days of the Manager's config).\n")


class ServerError(Exception):
    """The Server could not be reached or answered with an error; `status` is None when unreachable."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        """A 4xx other than 408/429: sending the same thing again will not help."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in (408, 429)


@dataclass
class DepsgraphPage:
    """One depsgraph answer: its tasks (None for 304), the cursor to send next, whether another
    page follows at once, the news token and the kinds of news since the one sent."""
    tasks: list[documents.Task] | None
    cursor: str | None
    more: bool = False
    news: str | None = None
    kinds: list[str] = field(default_factory=list)
    held: bool = True
    """False when the Server could not hold the request (no thread free for it): poll instead."""


class ServerClient:
    """HTTP calls to the Server's manager API (docs/protocol.md)."""

    def __init__(self, server_url: str, manager_id: str, token: str, timeout: float = 15.0):
        self.base = server_url.rstrip("/") + protocol.MANAGER_PREFIX.format(manager_id=quote(manager_id, safe=""))
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT})

    def _call(self, method: str, path: str, ok=(200, 204), **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            resp = self.session.request(method, self.base + path, **kwargs)
        except requests.RequestException as ex:
            raise ServerError(f"{method} {path}: {ex}") from None
        if resp.status_code not in ok:
            raise ServerError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}", resp.status_code)
        return resp

    def startup(self, doc: dict) -> None:
        self._call("POST", "/startup", json=doc)

    def update(self, doc: dict) -> None:
        self._call("POST", "/update", json=doc)

    def report_workers(self, report: dict) -> None:
        self._call("POST", "/workers", json=report)

    def depsgraph(self, cursor: str | None, limit: int | None = None, long_poll: float = 0.0,
                  news: str | None = None) -> "DepsgraphPage":
        """One page of the depsgraph after `cursor`; with `long_poll`, held by the Server until
        there is news for this Manager after `news` (the token of the last answer)."""
        headers = {protocol.IF_UPDATED_SINCE: cursor} if cursor else {}
        if long_poll > 0:
            headers[protocol.LONG_POLL_HEADER] = f"{long_poll:g}"
        if news:
            headers[protocol.NEWS_HEADER] = news
        resp = self._call("GET", "/depsgraph", ok=(200, 204, 304), headers=headers,
                          params={"limit": limit} if limit else None, timeout=(self.timeout, self.timeout + long_poll))
        h = resp.headers
        page = DepsgraphPage(tasks=None, cursor=h.get(protocol.LAST_UPDATED),
                             more=h.get(protocol.MORE_HEADER, "").lower() == "true",
                             news=h.get(protocol.NEWS_HEADER),
                             kinds=[k for k in h.get(protocol.NEWS_KINDS_HEADER, "").split(",") if k],
                             held=long_poll <= 0 or h.get(protocol.LONG_POLL_HEADER) not in (None, "0"))
        if resp.status_code in (204, 304):
            return page
        try:
            page.tasks = documents.ScheduledTasks.from_dict(resp.json()).depsgraph
        except (ValueError, documents.DocumentError) as ex:
            raise ServerError(f"depsgraph: unusable answer: {ex}", resp.status_code) from None
        return page

    def push_batch(self, updates: list[str], extra: dict | None = None) -> documents.TaskUpdateResponse:
        """Task updates, each already JSON text (as queued), in one TaskUpdateBatch, plus `extra`
        (worker_actions_done, queue_length) for the Server."""
        more = json.dumps(extra or {}, separators=(",", ":"))[1:-1]
        body = '{"updates":[' + ",".join(updates) + "]" + ("," + more if more else "") + "}"
        resp = self._call("POST", "/task-update-batch", ok=(200,), data=body.encode(),
                          headers={"Content-Type": "application/json"})
        try:
            return documents.TaskUpdateResponse.from_dict(resp.json())
        except (ValueError, documents.DocumentError) as ex:
            raise ServerError(f"task-update-batch: unusable answer: {ex}", resp.status_code) from None

    def upload_log(self, task_id: str, gz: bytes) -> None:
        self._call("POST", f"/tasks/{quote(task_id, safe='')}/log", data=gz,
                   headers={"Content-Type": "application/gzip"})

    def job_files(self, job_id: str) -> dict:
        resp = self._call("GET", f"/jobs/{quote(job_id, safe='')}/files", ok=(200,))
        return resp.json()

    def fetch_file(self, sha256: str) -> requests.Response:
        """A streaming response with the file's bytes; the caller closes it."""
        return self._call("GET", f"/files/{quote(sha256, safe='')}", ok=(200,), stream=True,
                          timeout=(self.timeout, 300))

    def job_outputs(self, job_id: str) -> dict:
        return self._call("GET", f"/jobs/{quote(job_id, safe='')}/outputs", ok=(200,)).json()

    def register_outputs(self, job_id: str, body: dict) -> list[str]:
        """Outputs by checksum; the checksums whose bytes the Server still needs."""
        resp = self._call("POST", f"/jobs/{quote(job_id, safe='')}/outputs", ok=(200,), json=body)
        try:
            missing = resp.json()["missing"]
        except (ValueError, KeyError, TypeError):
            raise ServerError(f"outputs of job {job_id}: unusable answer {resp.text[:200]!r}", resp.status_code) \
                from None
        return [m for m in missing if isinstance(m, str)]

    def put_output(self, job_id: str, relpath: str, task_id: str, path: Path, sha256: str) -> None:
        with open(path, "rb") as f:
            self._call("PUT", f"/jobs/{quote(job_id, safe='')}/outputs/{quote(relpath, safe='/')}",
                       ok=(200, 201, 204), params={"task": task_id}, data=f,
                       headers={protocol.SHA256_HEADER: sha256, "Content-Type": "application/octet-stream"},
                       timeout=(self.timeout, 600))


class LinkHealth:
    def __init__(self):
        self.last_ok: float | None = None
        self.last_error: str = ""
        self.last_error_at: float | None = None
        self.failures = 0

    def ok(self, now: float) -> None:
        self.last_ok, self.failures = now, 0

    def failed(self, ex: Exception, now: float) -> None:
        self.last_error, self.last_error_at = str(ex)[:500], now
        self.failures += 1

    def to_dict(self, linked: bool) -> dict:
        return {"linked": linked, "healthy": linked and self.failures == 0 and self.last_ok is not None,
                "last_ok": iso_utc(self.last_ok) if self.last_ok else None,
                "last_error": self.last_error or None,
                "last_error_at": iso_utc(self.last_error_at) if self.last_error_at else None,
                "consecutive_failures": self.failures}


class Upstream:
    def __init__(self, db: Persistence, config: ManagerConfig, client: ServerClient, state: TaskStateMachine,
                 updates: TaskUpdates, workers: Workers, logs: TaskLogs, wakeup: Wakeup, actions: WorkerActions,
                 store=None):
        self.db, self.config, self.client = db, config, client
        self.store = store  # upload mode's BlobStore, where 'outputs' items find their bytes
        self.state, self.updates, self.workers, self.logs, self.wakeup = state, updates, workers, logs, wakeup
        self.actions = actions
        self.health = LinkHealth()
        self._kick = threading.Event()
        self._push_now = threading.Event()
        self._push_backoff = 0.0
        self._push_not_before = 0.0
        self._last_push = 0.0
        self._fetch_backoff = 0.0
        self._fetch_not_before = 0.0
        self._last_fetch = 0.0
        self._last_resync = time.time()
        """A clean slate when there is no cursor (a new or lost database), then every resync_interval;
        a restart goes on from its cursor."""
        self._listed: set[str] | None = None
        """Ids seen so far while a clean-slate depsgraph comes in pages; None between them."""
        self.more = False
        """The last depsgraph answer said another page follows."""
        self.held = True
        """The Server holds our depsgraph requests (False: it had no thread for it; we poll)."""
        self._news: str | None = None
        self._news_pending = False
        """News other than tasks came (cancels, log requests, ...): the next push asks at once."""
        self._busy = threading.Lock()
        """Held while the fetcher handles an answer; `quiesce` takes it to stop the fetcher."""
        self._stopping = False
        self._startup_done = False
        self._notified_signature = None
        self._notify_not_before = 0.0
        self._last_report = 0.0

    # --- helpers ---------------------------------------------------------------

    def _backoff(self, current: float) -> float:
        up = self.config.upstream
        return min(up.backoff_max, max(up.backoff_initial, current * 2))

    def queue_length(self) -> int:
        return self.db.upstream.length()

    def kick(self) -> None:
        """Fetch from the Server now (when it does not hold our requests, we poll; a waiting
        worker or the admin shortens the wait)."""
        self._kick.set()

    def quiesce(self) -> None:
        """The Manager stops: after this the fetcher touches nothing, even if a held request
        answers later (it is not waited for: the Server may hold it for a while)."""
        with self._busy:
            self._stopping = True
        self._kick.set()

    def push_soon(self) -> None:
        self._push_now.set()

    # --- pushing the queue -----------------------------------------------------

    def push_tick(self, now: float | None = None) -> int:
        """Send what is queued now, in order, until it is sent or the Server fails; returns items
        sent. (What is queued meanwhile waits for the next tick: while updates keep coming,
        batches carry what gathered between ticks.)"""
        now = time.time() if now is None else now
        up = self.config.upstream
        if now < self._push_not_before:
            return 0
        sent = 0
        last = self.db.upstream.last_seq()
        try:
            while True:
                head = self.db.upstream.head()
                if head is not None and head.seq > last:
                    break
                results = self.actions.results()
                if head is None:
                    if results or self._news_pending or now - self._last_push >= up.cancel_poll_interval:
                        # Nothing to send, but the answer says what to cancel, which logs to upload and
                        # what to do with workers.
                        self._news_pending = False
                        try:
                            self._handle_response(self.client.push_batch([], self._extra(results)), [], now)
                        except ServerError:
                            self._news_pending = True
                            raise
                        self.actions.confirmed([r.id for r in results])
                        self._last_push = now
                    break
                if head.kind == TASK_UPDATE:
                    run = self.db.upstream.task_updates_from(head.seq, up.push_max_batch, last)
                    resp = self.client.push_batch([payload for _, payload in run], self._extra(results))
                    self.actions.confirmed([r.id for r in results])
                    batch = [(seq, json.loads(payload).get("_id")) for seq, payload in run]
                    self._handle_response(resp, batch, now)
                    self._last_push = now
                    sent += len(batch)
                    handled = set(resp.handled_update_ids)
                    if not any(update_id in handled for _, update_id in batch):
                        log.warning("the Server handled none of %d updates; retrying later", len(batch))
                        raise ServerError("no update of the batch was handled")
                elif head.kind == LOG_UPLOAD:
                    self._upload_log(head)
                    sent += 1
                elif head.kind == OUTPUTS:
                    self._push_outputs(head)
                    sent += 1
                elif head.kind == OUTPUT:
                    self._upload_output(head)
                    sent += 1
                else:
                    log.error("dropping upstream item %d of unknown kind %s", head.seq, head.kind)
                    with self.db.write():
                        self.db.upstream.remove([head.seq])
        except ServerError as ex:
            self.health.failed(ex, now)
            self._push_backoff = self._backoff(self._push_backoff)
            self._push_not_before = now + self._push_backoff
            log.warning("upstream push failed (retry in %.0f s, %d queued): %s", self._push_backoff,
                        self.queue_length(), ex)
            return sent
        self.health.ok(now)
        self._push_backoff = 0.0
        return sent

    def _extra(self, results: list[documents.WorkerActionResult]) -> dict:
        return {"worker_actions_done": [r.to_dict() for r in results], "queue_length": self.queue_length()}

    def _handle_response(self, resp: documents.TaskUpdateResponse, batch: list[tuple[int, str]],
                         now: float) -> None:
        """The Server's answer to a batch of (queue seq, update id): what it handled leaves the queue."""
        handled = set(resp.handled_update_ids)
        with self.db.write():
            self.db.upstream.remove([seq for seq, update_id in batch if update_id in handled])
            for req in resp.upload_task_file_queue:
                self.db.upstream.enqueue(LOG_UPLOAD, req.task, {"job": req.job, "task": req.task}, now)
        if resp.cancel_task_ids:
            log.info("the Server asks to cancel %d task(s)", len(resp.cancel_task_ids))
            self.updates.cancel(list(resp.cancel_task_ids), now=now)
        if resp.worker_actions and self.actions.apply(resp.worker_actions):
            self.push_soon()  # confirm them (and report the workers) without waiting for the next round

    def _upload_log(self, item) -> None:
        job, task = item.payload.get("job", ""), item.payload.get("task", "")
        try:
            gz = self.logs.gzipped(job, task, missing=NO_LOG)
        except ValueError:
            gz = None
        if gz is not None:
            try:
                self.client.upload_log(task, gz)
            except ServerError as ex:
                if not ex.permanent:
                    raise
                log.warning("the Server refused the log of task %s, dropping the upload: %s", task, ex)
        with self.db.write():
            self.db.upstream.remove([item.seq])

    def _push_outputs(self, item) -> None:
        """A task's outputs: registered by checksum, then the bytes of those the Server lacks
        (each checksum once), then registered again for the paths that shared them."""
        p = item.payload
        job, task, files = p.get("job", ""), p.get("task") or None, p.get("files") or {}
        body = {"task": task, "files": files, "removed": p.get("removed") or []}
        try:
            missing = self.client.register_outputs(job, body)
            first_path = {}
            for rel, entry in files.items():
                first_path.setdefault(entry.get("sha256"), rel)
            for sha in missing:
                path = self.store.path(sha) if self.store is not None else None
                if sha not in first_path or path is None or not path.exists():
                    log.error("job %s: output %s is not in the file store; the Server will lack it", job, sha)
                    continue
                self.client.put_output(job, first_path[sha], task or "", path, sha)
                self.store.stats.add(to_server=path.stat().st_size)
            if missing:
                again = {rel: e for rel, e in files.items() if e.get("sha256") in set(missing)}
                self.client.register_outputs(job, {"task": task, "files": again, "removed": []})
        except ServerError as ex:
            if not ex.permanent:
                raise
            log.warning("the Server refused the outputs of job %s, dropping them: %s", job, ex)
        with self.db.write():
            self.db.upstream.remove([item.seq])

    def _upload_output(self, item) -> None:
        p = item.payload
        spool = Path(p["spool"])
        if spool.exists():
            try:
                self.client.put_output(p["job"], p["relpath"], p.get("task", ""), spool, p["sha256"])
            except ServerError as ex:
                if not ex.permanent:
                    raise
                log.warning("the Server refused output %s of job %s, dropping it: %s", p["relpath"], p["job"], ex)
        else:
            log.warning("spooled output %s is gone, dropping the upload of %s", spool, p["relpath"])
        with self.db.write():
            self.db.upstream.remove([item.seq])
            still_used = self.db.upstream.has_output(p["sha256"])
        if not still_used:
            try:
                os.unlink(spool)
            except OSError:
                pass

    # --- fetching tasks --------------------------------------------------------

    def fetch_tick(self, now: float | None = None, long_poll: float = 0.0) -> dict | None:
        """One depsgraph request (held by the Server up to `long_poll` s while there is no news);
        the ingest counts, or None when no task came.

        The depsgraph comes in pages: the answer's cursor is stored with the page's tasks in
        one transaction, so a Manager that stops between pages goes on where it was. A
        clean slate (no cursor yet, or every `resync_interval`) is paged too; after its last
        page, held tasks it did not list are dropped."""
        now = time.time() if now is None else now
        up = self.config.upstream
        if now < self._fetch_not_before:
            return None
        cursor = self.db.get_setting(SETTING_LAST_UPDATED)
        if self._listed is None and (cursor is None or now - self._last_resync >= up.resync_interval):
            self._listed, cursor = set(), None
        try:
            # The first page of a burst is small: its tasks run while the rest comes.
            limit = up.depsgraph_page if self.more else max(1, up.depsgraph_page // 10)
            page = self.client.depsgraph(cursor, limit, long_poll, self._news)
        except ServerError as ex:
            self.health.failed(ex, time.time())
            self._fetch_backoff = self._backoff(self._fetch_backoff)
            self._fetch_not_before = time.time() + self._fetch_backoff
            self._listed, self.more = None, False  # a clean slate starts again
            log.warning("depsgraph fetch failed (retry in %.0f s): %s", self._fetch_backoff, ex)
            return None
        with self._busy:
            if self._stopping:
                return None
            return self._handle_page(page, cursor, now)

    def _handle_page(self, page: DepsgraphPage, cursor: str | None, now: float) -> dict | None:
        self.health.ok(now)
        self._fetch_backoff = 0.0
        self._last_fetch = now
        self.more, self.held, self._news = page.more, page.held, page.news
        if any(kind != NEWS_TASKS for kind in page.kinds):
            self._news_pending = True
            self.push_soon()
        new_cursor = page.cursor if page.cursor and page.cursor != cursor else None
        counts = None
        if page.tasks or new_cursor:
            with self.db.write():  # the tasks and the cursor after them, together
                if page.tasks:
                    counts = ingest_tasks(self.db, self.state, page.tasks, now=now)
                if new_cursor:
                    self.db.set_setting(SETTING_LAST_UPDATED, new_cursor)
        if counts:
            log.info("depsgraph: %d new, %d updated task(s)%s", counts["new"], counts["updated"],
                     "; more follow" if page.more else "")
        if self._listed is not None:
            self._listed.update(t.id for t in page.tasks or ())
            if not page.more:
                listed, self._listed = self._listed, None
                self._last_resync = now
                dropped = self.drop_unlisted(listed, now)
                counts = dict(counts or {"new": 0, "updated": 0, "skipped": 0}, dropped=dropped)
        return counts

    def drop_unlisted(self, listed: set[str], now: float) -> int:
        """After a clean-slate depsgraph: held tasks the Server no longer hands out (job deleted,
        paused, ...) are not run; they come back through the depsgraph if the Server wants them."""
        dropped = 0
        with self.db.write():
            for task in self.db.tasks.held_from_server(TASK_RUNNABLE):
                if task.id not in listed:
                    self.state.change_status(task, TS.CANCELED, Report("the Server no longer lists this task",
                                                                       from_server=True), now)
                    dropped += 1
        if dropped:
            log.info("clean-slate depsgraph: dropped %d held task(s) the Server no longer lists", dropped)
        return dropped

    # --- notifications and worker reports --------------------------------------

    def notification(self) -> dict:
        doc = documents.UpstreamNotification(
            meta={"version": 2}, manager_url=self.config.manager_url, variables=self.config.variables.to_dict(),
            nr_of_workers=self.db.workers.count(), worker_task_types=self.db.workers.task_types(),
            version=__version__)
        return doc.to_dict()

    def notify_tick(self, now: float | None = None) -> bool:
        """Send startup (until it went through) or update (when something changed); True if sent."""
        now = time.time() if now is None else now
        if now < self._notify_not_before or (self._startup_done and not self.workers.types_changed.is_set()):
            return False
        self.workers.types_changed.clear()  # before reading: a change from now on is sent next time
        doc = self.notification()
        signature = (doc["nr_of_workers"], tuple(doc["worker_task_types"]), doc["manager_url"])
        if self._startup_done and signature == self._notified_signature:
            return False
        try:
            if self._startup_done:
                self.client.update(doc)
            else:
                self.client.startup(doc)
        except ServerError as ex:
            self.workers.types_changed.set()
            self.health.failed(ex, now)
            self._notify_not_before = now + self.config.upstream.notification_retry
            log.warning("%s notification failed: %s", "update" if self._startup_done else "startup", ex)
            return False
        log.info("sent %s notification to the Server", "update" if self._startup_done else "startup")
        self._startup_done = True
        self._notified_signature = signature
        return True

    def report_tick(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        due = now - self._last_report >= self.config.upstream.worker_report_interval
        if not (due or self.workers.changed.is_set()):
            return False
        self.workers.changed.clear()
        report = documents.WorkerReport(workers=[], complete=True).to_dict()
        report["workers"] = self.workers.infos()
        try:
            self.client.report_workers(report)
        except ServerError as ex:
            self.workers.changed.set()
            self.health.failed(ex, now)
            log.warning("worker report failed: %s", ex)
            self._last_report = now - self.config.upstream.worker_report_interval + self.config.upstream.notification_retry
            return False
        self._last_report = now
        return True

    # --- loops -----------------------------------------------------------------

    def run_pusher(self, stop: threading.Event) -> None:
        """Updates go up the moment they are queued while the link is idle; while they keep
        coming, a batch at most every `push_busy_interval`, so each carries what gathered."""
        up = self.config.upstream
        while not stop.is_set():
            now = time.time()
            sent = 0
            for step in (self.notify_tick, self.push_tick, self.report_tick):
                try:
                    result = step(now)
                except Exception:  # noqa: BLE001 - a loop logs and goes on
                    log.exception("upstream %s failed", step.__name__)
                else:
                    if step == self.push_tick:
                        sent = result
            self._push_now.wait(up.push_interval)
            self._push_now.clear()
            busy_for = up.push_busy_interval - (time.time() - now)
            if sent and busy_for > 0:
                stop.wait(busy_for)

    def run_fetcher(self, stop: threading.Event) -> None:
        """The depsgraph, page after page while more follow, then held at the Server until there
        is news for this Manager; polled every `fetch_interval` if the Server cannot hold it."""
        up = self.config.upstream
        while not (stop.is_set() or self._stopping):
            try:
                self.fetch_tick(long_poll=0.0 if self.more else up.long_poll)
            except Exception:  # noqa: BLE001
                log.exception("depsgraph fetch failed")
                stop.wait(up.backoff_initial)
            if self.more:
                continue
            wait = max(self._fetch_not_before - time.time(), 0.0)
            if not self.held or up.long_poll <= 0:
                wait = max(wait, up.fetch_interval)
            if wait > 0 and self._kick.wait(wait):
                self._kick.clear()
                # A kicked fetch still waits out the idle interval and any backoff.
                rest = max(up.idle_fetch_interval - (time.time() - self._last_fetch),
                           self._fetch_not_before - time.time())
                if rest > 0 and stop.wait(rest):
                    return
            self._kick.clear()

    def threads(self, stop: threading.Event) -> list[threading.Thread]:
        return [threading.Thread(target=self.run_pusher, args=(stop,), name="upstream-pusher", daemon=True),
                threading.Thread(target=self.run_fetcher, args=(stop,), name="depsgraph-fetcher", daemon=True)]
