"""What a task needs of a worker, and what a worker with slots has free: one vocabulary for the
Server's compilers, the Manager's scheduler and the worker.

A task needs one of three things (`Task.needs`, chosen by the job type's compiler; a task that
does not say gets its task type's default):

    cpu    a slot, and a share of the worker's CPU threads (renders, bakes, merges, encodes)
    gpu    a slot and one of the worker's GPUs (a render the job asked to run on a GPU)
    light  a slot that books no threads: file management, sleeps; it may use a light slot

A worker has `slots` (tasks at once), `light_slots` (more tasks at once, light ones only), GPUs
by index and a memory budget. What it has free when it asks for work is a `Free`; the Manager
hands it tasks while one fits. A worker that declares no GPUs books none: a gpu task takes a
plain slot there and renders as its .blend says (which workers get a job is the job's worker
tag's business, not this).

The vocabulary is deliberately three words, not counts of cores and gigabytes per task: the
worker turns a slot into threads (`cpu_threads // slots`) and a GPU index itself, so a job
never has to know the machines it lands on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

CPU, GPU, LIGHT = "cpu", "gpu", "light"
NEEDS = (CPU, GPU, LIGHT)

LIGHT_TASK_TYPES = frozenset({"file-management", "sleep"})
"""Task types that need a light slot unless their task says otherwise; every other type needs cpu."""

MAX_SLOTS = 64
"""At most this many tasks at once per worker (and per POST /task)."""


def needs_of(task_type: str, declared: str | None = None) -> str:
    """What a task needs: what its document says, else its type's default."""
    if declared in NEEDS:
        return declared
    return LIGHT if task_type in LIGHT_TASK_TYPES else CPU


@dataclass(frozen=True)
class Free:
    """What a worker has free. `gpus` None: it books no GPUs; `memory_mb` None: no memory budget."""
    slots: int
    light_slots: int = 0
    gpus: int | None = None
    memory_mb: int | None = None

    def fits(self, needs: str, memory_mb: int | None = None) -> bool:
        if memory_mb and memory_mb > 0 and self.memory_mb is not None and memory_mb > self.memory_mb:
            return False
        if needs == LIGHT:
            return self.slots > 0 or self.light_slots > 0
        if needs == GPU and self.gpus is not None and self.gpus < 1:
            return False
        return self.slots > 0

    def fitting(self) -> tuple[str, ...]:
        """The needs a task may have and still fit (its memory aside)."""
        return tuple(n for n in NEEDS if self.fits(n))

    def after(self, needs: str, memory_mb: int | None = None) -> "Free":
        """What is left once a task with these needs took its share (a light one a light slot first)."""
        left = replace(self, memory_mb=self.memory_mb - memory_mb
                       if self.memory_mb is not None and memory_mb and memory_mb > 0 else self.memory_mb)
        if needs == LIGHT and self.light_slots > 0:
            return replace(left, light_slots=self.light_slots - 1)
        if needs == GPU and self.gpus is not None:
            left = replace(left, gpus=self.gpus - 1)
        return replace(left, slots=self.slots - 1)

    @property
    def empty(self) -> bool:
        return not self.fitting()
