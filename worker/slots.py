"""A worker's slots: how many tasks it runs at once, and what each running task is given.

The config says `slots` (tasks at once), `light_slots` (more, for light tasks
only), `cpu_threads`, `gpus` (indices) and `memory_mb`; a task says what it
needs (`Task.needs`, shared/slots.py). Booking a task gives it

* a slot of its own, with its own subprocess runner and PID file (slot 0 uses
  the configured `subprocess.pid`, slot N `subprocess-N.pid`), so the guard
  "one subprocess per PID file" holds per slot and an abort kills only that
  task's process tree;
* threads: cpu and gpu tasks get `cpu_threads // slots` (Blender's `-t`) when
  the worker shares its CPUs among several slots or was given a thread count;
  light tasks get no limit;
* a GPU: a gpu task gets one of `gpus` to itself (`CUDA_VISIBLE_DEVICES` and
  `HIP_VISIBLE_DEVICES` name it; Cycles renders on `gpu_device` when that is
  set); a task that booked no GPU on a worker that has some sees none (`-1`)
  and Cycles renders on the CPU, so it never takes another task's GPU;
* its job's declared memory (`job_memory_mb`) out of `memory_mb`, when set.

What is free goes with every POST /task (documents.TaskRequest); a task the
Manager hands over that does not fit (a re-served one, say) is not booked.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from shared.documents import Task
from shared.slots import GPU, LIGHT, Free, needs_of

from .config import WorkerConfig
from .runner import SubprocessRunner

log = logging.getLogger(__name__)

HIDDEN_GPU = "-1"
"""A device index no GPU has: CUDA and HIP then show a process no GPU at all."""
GPU_ENV = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")


@dataclass
class Booking:
    """What one running task was given."""
    task_id: str
    needs: str
    slot: "Slot"
    gpu: int | None = None
    threads: int | None = None
    memory_mb: int = 0
    env: dict[str, str] = field(default_factory=dict)
    cycles_device: str | None = None
    """Blender's `--cycles-device` for this task, None to leave the .blend's."""

    @property
    def runner(self) -> SubprocessRunner:
        return self.slot.runner


class Slot:
    """One place a task runs, with its own runner (and PID file)."""

    def __init__(self, index: int, light: bool, runner: SubprocessRunner):
        self.index, self.light, self.runner = index, light, runner
        self.booking: Booking | None = None


def pid_path(base: Path, index: int) -> Path:
    """The PID file of slot `index`: the configured one for slot 0, `<stem>-N<suffix>` after it."""
    return base if index == 0 else base.with_name(f"{base.stem}-{index}{base.suffix}")


class Slots:
    def __init__(self, config: WorkerConfig):
        self.config = config
        n = config.slots
        self.slots = [Slot(i, i >= n, SubprocessRunner(pid_path(config.pid_path, i),
                                                       grace_seconds=config.abort_grace_seconds))
                      for i in range(n + config.light_slots)]
        cpus = config.cpu_threads or psutil.cpu_count() or 1
        self.threads_per_slot = max(1, cpus // n) if (n > 1 or config.cpu_threads) else None
        self._lock = threading.Lock()

    @property
    def runners(self) -> list[SubprocessRunner]:
        return [s.runner for s in self.slots]

    def bookings(self) -> list[Booking]:
        with self._lock:
            return [s.booking for s in self.slots if s.booking is not None]

    def free(self) -> Free:
        """What is free now, as the Manager should hear it: the memory is the budget left, and no
        more than this machine has available."""
        available = psutil.virtual_memory().available // 2**20
        with self._lock:
            free = self._free()
        return Free(free.slots, free.light_slots, free.gpus,
                    available if free.memory_mb is None else min(available, free.memory_mb))

    def _free(self) -> Free:
        booked = [s.booking for s in self.slots if s.booking is not None]
        cfg = self.config
        return Free(slots=sum(1 for s in self.slots if not s.light and s.booking is None),
                    light_slots=sum(1 for s in self.slots if s.light and s.booking is None),
                    gpus=len(cfg.gpus) - sum(b.gpu is not None for b in booked) if cfg.gpus else None,
                    memory_mb=cfg.memory_mb - sum(b.memory_mb for b in booked) if cfg.memory_mb else None)

    def book(self, task: Task) -> Booking | None:
        """A slot (and threads, a GPU, memory) for the task, or None when it does not fit."""
        needs = needs_of(task.task_type, task.needs)
        memory = max(task.job_memory_mb or 0, 0)
        cfg = self.config
        with self._lock:
            if not self._free().fits(needs, memory):
                return None
            free_slots = [s for s in self.slots if s.booking is None]
            slot = next((s for s in free_slots if s.light), None) if needs == LIGHT else None
            slot = slot or next(s for s in free_slots if not s.light)
            booking = Booking(task.id, needs, slot, memory_mb=memory,
                              threads=None if needs == LIGHT else self.threads_per_slot)
            if cfg.gpus:
                if needs == GPU:
                    taken = {s.booking.gpu for s in self.slots if s.booking is not None}
                    booking.gpu = next(g for g in cfg.gpus if g not in taken)
                    booking.cycles_device = cfg.gpu_device or None
                elif needs != LIGHT:
                    booking.cycles_device = "CPU"
                booking.env = dict.fromkeys(GPU_ENV, str(booking.gpu) if booking.gpu is not None else HIDDEN_GPU)
            slot.booking = booking
        log.info("task %s (%s) in slot %d%s%s", task.id, needs, slot.index,
                 f", GPU {booking.gpu}" if booking.gpu is not None else "",
                 f", {booking.threads} threads" if booking.threads else "")
        return booking

    def release(self, booking: Booking) -> None:
        with self._lock:
            if booking.slot.booking is booking:
                booking.slot.booking = None

    def kill_all_now(self) -> None:
        for runner in self.runners:
            runner.kill_now()
