"""The failure rules, as pure verdicts (Flamenco 2's, see docs/protocol.md).

A task that fails on a worker is soft-failed, so another worker retries it,
unless enough distinct workers failed it already (it fails for good) or no
other worker may run it. A worker that failed enough tasks of one job's task
type is blocklisted for that job and type. The state machine applies these.
"""

from __future__ import annotations

from typing import Callable

from shared.statuses import TaskStatus as TS

from .config import Failures


def should_blocklist(worker_failures: int, rules: Failures) -> bool:
    """Whether a worker that failed this many tasks of one job's task type is blocklisted for them."""
    return worker_failures >= rules.blocklist_threshold


def verdict(failed_by: int, anyone_else: Callable[[], bool], rules: Failures) -> tuple[TS, str]:
    """What becomes of a task that `failed_by` distinct workers failed, and why.

    `anyone_else()` tells whether another worker may still run it; it is asked only
    when the count alone does not decide."""
    if failed_by >= rules.task_fail_after_softfail_count:
        return TS.FAILED, f"{failed_by} workers failed it"
    if not anyone_else():
        return TS.FAILED, "no other worker can run it"
    return TS.SOFT_FAILED, "soft-failed, other workers may retry it"
