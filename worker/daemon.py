"""The Worker's main loop: states, fetching tasks, running them, stopping cleanly.

    startup: register (once) and sign on, retrying while the Manager is away
    loop, by state:
      awake    pre-task checks (failing -> error); while a slot is free:
               POST /task (long-poll) with what is free (worker/slots.py):
               200 start each task on its own thread, 204 ask again, 423
               change state once no task runs; with no slot free, wait for a
               task to end
      asleep   poll GET /status-change; no tasks
      error    retry the pre-task checks every so often
      shutdown leave the loop
    exit: return the running tasks, flush the queue, sign off

Every state change is acknowledged to the Manager, and only once no task runs
and their last reports reached the Manager (acknowledging sleep gives back
whatever the Manager thinks the worker still runs). Each running task has a
monitor thread that asks may-i-run for it every few seconds; when the answer
is no, that task is stopped and returned (a requested sleep does the same to
every task: it returns them, it never reports them canceled) and the
requested state is applied once all have ended.

A request lists the tasks the worker holds: running, or with their last
report still queued. The Manager re-serves only a task it handed out that is
not in that list (an answer that got lost), so a finished task whose
"completed" has not arrived yet is never handed out again.

`step()` does one pass and returns how long to wait before the next; `run()`
repeats it until `stop` is set. `events` records what happened, in order.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, replace

from shared.documents import DocumentError, Task, TaskRequest
from shared.statuses import WORKER_REQUESTABLE, WorkerStatus

from . import resources
from .config import WorkerConfig
from .job_files import JobFiles
from .manager_client import OUTPUTS, FatalManagerError, ManagerClient, ManagerError, Unreachable
from .runner import SubprocessRunner
from .slots import Booking, Slots
from .task_execution import TaskExecution
from .upstream_queue import UpstreamQueue

log = logging.getLogger(__name__)

AWAKE, ASLEEP, ERROR, SHUTDOWN = WorkerStatus.AWAKE, WorkerStatus.ASLEEP, WorkerStatus.ERROR, WorkerStatus.SHUTDOWN
STATES = WORKER_REQUESTABLE | {ERROR}
"""What this worker can be: what the Manager or a signal may ask for, and error (its own checks failed)."""
MONITOR_TICK = 0.25
MONITOR_JOIN_SECONDS = 15.0
SLOTS_FULL_WAIT = 5.0  # no slot free: look again after this long at the latest (a task's end wakes the loop)
FLUSH_SECONDS = 10.0  # at stop: for the queued updates (the task's return among them) to reach the Manager
LATE_TASK_SECONDS = 5.5  # at stop: for a task a held long-poll still hands us, to give it back
QUEUE_JOIN_SECONDS = 5.0


def warm_stop_seconds(config: WorkerConfig) -> float:
    """The longest a warm stop (SIGTERM) can take: stop the tasks' processes (at once), let the
    tasks' threads finish, flush the queue, sign off, give back a late task. A service manager must
    wait at least this long before it kills the worker (deploy/systemd/flamenco-worker.service)."""
    return (config.abort_grace_seconds + MONITOR_JOIN_SECONDS + FLUSH_SECONDS + config.http_timeout_seconds
            + LATE_TASK_SECONDS + QUEUE_JOIN_SECONDS)


@dataclass
class Running:
    """A task this worker runs, on its own thread."""
    execution: TaskExecution
    booking: Booking
    thread: threading.Thread


class Worker:
    def __init__(self, config: WorkerConfig, client: ManagerClient | None = None, single: bool = False):
        config.validate()
        self.config = config
        self.client = client or ManagerClient(
            config.manager_url, config.credentials_path, config.task_types, nickname=config.nickname,
            tags=config.tags, registration_secret=config.registration_secret,
            timeout=config.http_timeout_seconds)
        self.queue = UpstreamQueue(config.queue_path, self.client.send_queued, config.queue_retry_seconds)
        self.slots = Slots(config)
        self.job_files = JobFiles(self.client, config.cache_path, config.jobs_path)
        self.client.cache_path = self.job_files.cache_path
        self.single = single
        self.stop = threading.Event()
        self.state = AWAKE
        self.state_reason = ""
        self.running: dict[str, Running] = {}
        self._held: dict[str, int] = {}
        """Tasks that ended here whose last report is still queued: id -> the queue id it is behind."""
        self.tasks_started = 0
        self.tasks_done = 0
        self.events: list[tuple[str, str]] = []
        self.exit_code = 0
        self._wake = threading.Event()
        self._local_request: str | None = None
        self._pending_state: tuple[str, str] | None = None
        """A state to change to once no task runs: (status, why)."""
        self._hold_off_until = 0.0
        self._signed_on = False
        self._fetch_lock = threading.Lock()
        self._queue_stop = threading.Event()
        self._queue_thread: threading.Thread | None = None
        self._lock = threading.RLock()  # signal handlers take it on the main thread too
        self._inflight_fetch: concurrent.futures.Future | None = None

    @property
    def runner(self) -> SubprocessRunner:
        """The first slot's runner: a worker with one slot runs every subprocess there."""
        return self.slots.runners[0]

    def _event(self, kind: str, detail: str = "") -> None:
        self.events.append((kind, detail))
        log.debug("event %s %s", kind, detail)

    # --- requests from outside (signals, tests) ------------------------------------

    def request_shutdown(self, reason: str = "shutdown requested") -> None:
        """Warm stop: return the running tasks, flush, sign off."""
        log.info("worker: %s", reason)
        self._event("shutdown-requested", reason)
        self.stop.set()
        self._abort_all(f"worker is shutting down ({reason})")
        self._wake.set()

    def request_state(self, status: str) -> None:
        """Go asleep / awake on local request (SIGUSR1 / SIGUSR2); running tasks are returned."""
        with self._lock:
            self._local_request = status
        if status != AWAKE:
            self._abort_all(f"worker is going {status}")
        self._wake.set()

    def force_stop(self) -> None:
        """Second signal: kill the subprocess trees now; the caller exits right after."""
        self.slots.kill_all_now()

    def _abort_all(self, reason: str) -> None:
        with self._lock:
            running = list(self.running.values())
        for r in running:
            r.execution.request_abort(reason)

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        self._queue_thread = threading.Thread(target=self.queue.run, args=(self._queue_stop,),
                                              name="upstream-queue", daemon=True)
        self._queue_thread.start()
        try:
            if self.startup():
                while not self.stop.is_set():
                    try:
                        delay = self.step()
                    except FatalManagerError:
                        raise
                    except Exception:  # noqa: BLE001 - a broken pass is logged; the loop goes on
                        log.exception("worker: loop iteration failed")
                        delay = self.config.connection_retry_seconds
                    if delay > 0:
                        self._wait(delay)
        except FatalManagerError as ex:
            log.error("worker: stopping: %s", ex)
            self._event("fatal", str(ex))
            self.exit_code = 2
        finally:
            self.teardown()
        return self.exit_code

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def startup(self) -> bool:
        """Register if needed and sign on; retry until it works or we are stopped."""
        while not self.stop.is_set():
            try:
                if self.client.credentials is None:
                    self.client.register()
                    self._event("registered", self.client.worker_id or "")
                self.client.sign_on(self._sign_on_resources())
                self._signed_on = True
                self._event("signed-on", self.client.worker_id or "")
                self.queue.retry_now()
                return True
            except FatalManagerError:
                raise
            except ManagerError as ex:
                log.warning("worker: cannot sign on at %s: %s; retrying in %g s", self.config.manager_url,
                            ex, self.config.register_retry_seconds)
                self._wait(self.config.register_retry_seconds)
        return False

    def _sign_on_resources(self) -> dict:
        """The machine's resources, and the slots it offers (shown on the pages)."""
        cfg = self.config
        return {**resources.snapshot(cfg.data_path()), "slots": cfg.slots, "light_slots": cfg.light_slots,
                "gpus": list(cfg.gpus)}

    def step(self) -> float:
        """One pass of the loop; returns the seconds to wait before the next."""
        with self._lock:
            local, self._local_request = self._local_request, None
        if local:
            self._pending_state = (local, "requested locally") if local != self.state else None
        if self._pending_state is not None:
            if self.running:
                return SLOTS_FULL_WAIT  # the state changes once no task runs; a task's end wakes us
            status, reason = self._pending_state
            self._pending_state = None
            if status != self.state:
                self.queue.wait_empty(5.0)  # the tasks' last reports reach the Manager before the acknowledgement
                self.change_state(status, reason)
            return 0
        if self.single and self.tasks_started and not self.running:
            self.request_shutdown("--single: one task done")
            return 0
        if self.state == SHUTDOWN:
            self.stop.set()
            return 0
        if self.state == ASLEEP:
            return self._step_asleep()
        if self.state == ERROR:
            return self._step_error()
        return self._step_awake()

    def change_state(self, status: str, reason: str = "") -> None:
        if status not in STATES:
            log.warning("worker: unknown state '%s' requested; going asleep", status)
            status = ASLEEP
        old, self.state, self.state_reason = self.state, status, reason
        log.info("worker: %s -> %s%s", old, status, f" ({reason})" if reason else "")
        self._event("state", status)
        try:
            self.client.ack_status_change(status)
            self._event("ack", status)
        except FatalManagerError:
            raise
        except ManagerError as ex:
            log.warning("worker: could not acknowledge '%s': %s", status, ex)
        if status == SHUTDOWN:
            self.stop.set()

    def _step_asleep(self) -> float:
        try:
            requested = self.client.status_change()
        except Unreachable as ex:
            log.warning("worker: asleep, Manager unreachable: %s", ex)
            return self.config.connection_retry_seconds
        if requested and requested != ASLEEP:
            self.change_state(requested, "requested by the Manager")
            return 0
        return self.config.asleep_poll_seconds

    def _pre_task_problems(self) -> list[str]:
        return resources.pre_task_problems(self.config.pre_task_check_read, self.config.pre_task_check_write)

    def _step_error(self) -> float:
        try:
            requested = self.client.status_change()
            if requested in (ASLEEP, SHUTDOWN):
                self.change_state(requested, "requested by the Manager")
                return 0
        except Unreachable:
            pass
        problems = self._pre_task_problems()
        if not problems:
            self.change_state(AWAKE, "pre-task checks pass again")
            return 0
        log.warning("worker: still in error: %s", "; ".join(problems))
        return self.config.error_state_retry_seconds

    def _step_awake(self) -> float:
        if self.single and self.tasks_started:
            return SLOTS_FULL_WAIT  # its one task runs; the worker stops after it
        problems = self._pre_task_problems()
        if problems:
            if self.running:
                log.warning("worker: %s; no more tasks until the running ones end", "; ".join(problems))
                return SLOTS_FULL_WAIT
            self.change_state(ERROR, "; ".join(problems))
            return self.config.error_state_retry_seconds
        hold_off = self._hold_off_until - time.monotonic()
        if hold_off > 0:
            return hold_off
        free = self.slots.free()
        if free.empty:
            return SLOTS_FULL_WAIT
        if not self.running:
            queued = len(self.queue)
            if queued > self.config.max_queued_before_fetch:
                if not self.queue.wait_empty(min(5.0, self.config.queue_retry_seconds + 1)):
                    log.info("worker: %d update(s) still queued for the Manager; not fetching a task yet",
                             len(self.queue))
                    return self.config.queue_retry_seconds
        if self.single:
            free = replace(free, slots=1, light_slots=0)
        started = time.monotonic()
        future = self._fetch_in_background(self.config.long_poll_seconds, self._task_request(free))
        self._inflight_fetch = future
        while True:
            try:
                resp = future.result(timeout=0.2)
                break
            except concurrent.futures.TimeoutError:
                if self.stop.is_set() or self._local_request:
                    future.add_done_callback(self._return_abandoned)
                    return 0
            except Unreachable as ex:
                log.warning("worker: cannot fetch a task: %s", ex)
                return self.config.connection_retry_seconds
        elapsed = time.monotonic() - started
        if resp.status_code == 204:
            quick = elapsed < min(0.5, self.config.long_poll_seconds / 2) or not self.config.long_poll_seconds
            return self.config.no_task_retry_seconds if quick else 0
        if resp.status_code == 423:
            try:
                requested = resp.json()["status_requested"]
            except (ValueError, KeyError, TypeError):
                requested = ASLEEP
            self._pending_state = (requested, "requested by the Manager")
            return 0
        if resp.status_code == 406:
            log.error("worker: the Manager has no task types for this worker (406): %s", resp.text[:200])
            return self.config.error_state_retry_seconds
        if resp.status_code != 200:
            log.warning("worker: POST /task answered %d: %s", resp.status_code, resp.text[:200])
            return self.config.connection_retry_seconds
        try:
            tasks = [Task.from_dict(doc) for doc in resp.json()["tasks"]]
        except (ValueError, KeyError, TypeError, DocumentError) as ex:
            log.error("worker: the Manager sent unusable tasks: %s", ex)
            return self.config.connection_retry_seconds
        for task in tasks:
            self.start_task(task)
        return 0

    def _task_request(self, free) -> dict:
        """What this worker has free and the tasks it holds, for POST /task."""
        with self._lock:
            for task_id, queued in list(self._held.items()):
                if self.queue.sent_through(queued):
                    del self._held[task_id]
            held = [*self.running, *self._held]
        return TaskRequest(free_slots=free.slots, free_light_slots=free.light_slots, free_gpus=free.gpus,
                           free_memory_mb=free.memory_mb, running=held).to_dict(omit_none=True)

    def _fetch_in_background(self, long_poll: float, request: dict) -> concurrent.futures.Future:
        """POST /task on a daemon thread, one at a time: a long-poll that is still
        held when the worker stops must not keep the process alive."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            with self._fetch_lock:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    future.set_result(self.client.fetch_task(long_poll, request))
                except BaseException as ex:  # noqa: BLE001 - handed to the waiting loop
                    future.set_exception(ex)

        threading.Thread(target=run, name="fetch", daemon=True).start()
        return future

    def _return_abandoned(self, future: concurrent.futures.Future) -> None:
        """A long-poll we stopped waiting for may still hand us tasks: give them back."""
        try:
            resp = future.result()
            if resp.status_code == 200:
                for doc in resp.json()["tasks"]:
                    log.info("worker: returning task %s that arrived after we stopped waiting", doc["_id"])
                    self.queue.enqueue("POST", f"/tasks/{doc['_id']}/return", None)
                    self._event("task-returned-unstarted", doc["_id"])
        except Exception:  # noqa: BLE001 - nothing more to do about it
            pass

    # --- the tasks -----------------------------------------------------------------------

    def start_task(self, task: Task) -> bool:
        """Book a slot for the task and run it on its own thread; a task that does not fit what
        is free (or that runs here already) goes back to the Manager unstarted."""
        booking = self.slots.book(task) if task.id not in self.running else None
        if booking is None:
            log.warning("worker: task %s (%s) does not fit what is free here; returning it", task.id, task.name)
            self.queue.enqueue("POST", f"/tasks/{task.id}/return", None)
            self._event("task-returned-unstarted", task.id)
            return False
        execution = TaskExecution(task, self.config, self.queue, booking.runner, self.job_files, booking=booking)
        if self.stop.is_set():
            execution.request_abort("worker is shutting down")
        thread = threading.Thread(target=self._run_task, args=(execution, booking), name=f"task-{task.id}",
                                  daemon=True)
        with self._lock:
            self.running[task.id] = Running(execution, booking, thread)
            self.tasks_started += 1
        self._event("task-start", task.id)
        thread.start()
        return True

    def _run_task(self, execution: TaskExecution, booking: Booking) -> None:
        """A task's thread: run it with its monitor, free its slot, then report how it ended."""
        task = execution.task
        done = threading.Event()
        monitor = threading.Thread(target=self._monitor, args=(execution, done), name=f"monitor-{task.id}",
                                   daemon=True)
        monitor.start()
        try:
            outcome = execution.execute()
        finally:
            done.set()
            # Its room is free before the Manager hears the task ended, so that the request the
            # Manager then ends (dispatch.py) is followed by one that offers it.
            self.slots.release(booking)
            self._wake.set()
            monitor.join(timeout=MONITOR_JOIN_SECONDS)
        try:
            execution.finish(outcome)
        finally:
            with self._lock:
                self._held[task.id] = self.queue.last_id()
                self.running.pop(task.id, None)
                self.tasks_done += 1
            self._event(f"task-{outcome.status}", task.id)
            self._keep_cache_in_bounds(task)
            if outcome.status == "returned" and "not enough memory" in outcome.message:
                self._hold_off_until = time.monotonic() + self.config.no_task_retry_seconds
            self._wake.set()

    def _keep_cache_in_bounds(self, task: Task) -> None:
        """Evict from the file cache and job trees, keeping the trees of the jobs whose tasks run here
        (in any slot) and what queued outputs need."""
        if not self.config.cache_max_bytes or task.job_files_mode != "upload":
            return
        pinned = {entry["sha256"] for item in self.queue.pending() if item.method == OUTPUTS and item.json
                  for entry in (item.json.get("files") or {}).values()}
        with self._lock:
            jobs = {task.job} | {r.execution.task.job for r in self.running.values()}
        try:
            self.job_files.evict(self.config.cache_max_bytes, jobs, pinned)
        except OSError as ex:
            log.warning("worker: cache eviction failed: %s", ex)

    def _monitor(self, execution: TaskExecution, done: threading.Event) -> None:
        """While the task runs: flush throttled updates, and ask may-i-run."""
        next_check = time.monotonic() + self.config.may_i_run_interval_seconds
        while not done.wait(MONITOR_TICK):
            try:
                execution.reporter.tick()
                if time.monotonic() < next_check or execution.abort.is_set():
                    continue
                next_check = time.monotonic() + self.config.may_i_run_interval_seconds
                answer = self.client.may_i_run(execution.task.id)
                if not answer.may_keep_running:
                    self._event("may-i-run-no", answer.reason or "")
                    if answer.status_requested:
                        self._pending_state = (answer.status_requested,
                                               "requested by the Manager while a task ran")
                    execution.request_abort(f"the Manager says stop: {answer.reason or 'no reason given'}")
            except Unreachable as ex:
                log.info("worker: may-i-run unreachable (%s); the task keeps running", ex)
            except FatalManagerError as ex:
                execution.request_abort(str(ex))
            except Exception:  # noqa: BLE001 - the monitor must outlive any one failure
                log.exception("worker: task monitor failed")

    # --- the end -----------------------------------------------------------------------

    def teardown(self) -> None:
        self._abort_all("worker is shutting down")
        deadline = time.monotonic() + self.config.abort_grace_seconds + MONITOR_JOIN_SECONDS
        with self._lock:
            threads = [r.thread for r in self.running.values()]
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if not self.queue.wait_empty(FLUSH_SECONDS):
            log.warning("worker: %d update(s) could not be sent; they stay queued in %s for next time",
                        len(self.queue), self.config.queue_path)
        if self._signed_on:
            try:
                self.client.sign_off()
                self._event("signed-off")
            except ManagerError as ex:
                log.warning("worker: sign-off failed: %s", ex)
        fetch = self._inflight_fetch
        if fetch is not None and not fetch.done():
            # A long-poll still held by the Manager may hand us a task after all; wait a
            # moment so that _return_abandoned can give it back while the queue is open.
            concurrent.futures.wait([fetch], timeout=0.5)
            self.queue.wait_empty(LATE_TASK_SECONDS - 0.5)
        self._queue_stop.set()
        self.queue.retry_now()
        if self._queue_thread:
            self._queue_thread.join(timeout=QUEUE_JOIN_SECONDS)
        self.queue.close()
        log.info("worker: stopped")
