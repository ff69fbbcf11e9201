"""Worker actions the Server relays from its pages: applied here, confirmed in the next update batch.

The Server sends every action it has not seen confirmed with each
task-update-batch answer (docs/protocol.md), so an action may arrive again
(after a failed push, or a restart of this Manager before it confirmed): each
one is applied so that twice is the same as once (a forgotten worker is already
gone, a status already requested is requested again). The results wait in
memory until a batch carrying them was answered.
"""

from __future__ import annotations

import logging
import threading

from backend.errors import ApiError
from shared import documents
from shared.statuses import WorkerStatus as WS

from .workers import Workers

log = logging.getLogger(__name__)

STATUS_ACTIONS = {"sleep": WS.ASLEEP, "wake": WS.AWAKE, "shutdown": WS.SHUTDOWN}


class WorkerActions:
    def __init__(self, workers: Workers, sleep_scheduler):
        self.workers, self.sleep_scheduler = workers, sleep_scheduler
        self._results: dict[str, documents.WorkerActionResult] = {}
        self._lock = threading.Lock()

    def apply(self, actions: list[documents.WorkerAction]) -> int:
        """Apply the Server's actions in order; the number applied now (not confirmed before)."""
        applied = 0
        for action in actions:
            with self._lock:
                if action.id in self._results:
                    continue  # applied, its confirmation not yet through
            ok, message = self._apply_one(action)
            log.info("worker action %s (%s of worker %s): %s%s", action.id, action.action, action.worker,
                     "applied" if ok else "failed", f": {message}" if message else "")
            with self._lock:
                self._results[action.id] = documents.WorkerActionResult(action.id, ok, message)
            applied += 1
        return applied

    def _apply_one(self, action: documents.WorkerAction) -> tuple[bool, str]:
        workers = self.workers
        try:
            if action.action in STATUS_ACTIONS:
                workers.request_status(action.worker, STATUS_ACTIONS[action.action], action.lazy)
            elif action.action == "forget":
                try:
                    workers.forget(action.worker)
                except ApiError as ex:
                    if ex.status != 404:
                        raise
                    return True, "already forgotten"
            elif action.action == "set-tags":
                workers.set_tags(action.worker, action.tags or [])
            elif action.action == "clear-blocklist":
                removed = workers.clear_blocklist(action.worker)
                return True, f"{removed} blocklist entr{'y' if removed == 1 else 'ies'} removed"
            elif action.action == "sleep-schedule":
                s = action.schedule or {}
                workers.set_sleep_schedule(action.worker, bool(s.get("schedule_active")), s.get("days_of_week", ""),
                                           s.get("time_start", ""), s.get("time_end", ""))
                self.sleep_scheduler.tick()
            else:
                return False, f"this Manager does not know the action '{action.action}'"
        except ApiError as ex:
            return False, ex.message
        return True, ""

    def results(self) -> list[documents.WorkerActionResult]:
        """What to confirm with the next batch."""
        with self._lock:
            return list(self._results.values())

    def confirmed(self, ids: list[str]) -> None:
        """A batch carrying these results was answered: the Server has them."""
        with self._lock:
            for action_id in ids:
                self._results.pop(action_id, None)
