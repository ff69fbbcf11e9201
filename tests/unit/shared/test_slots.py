"""The slot vocabulary: what fits what a worker has free, and what is left after."""

from __future__ import annotations

import pytest

from shared.slots import CPU, GPU, LIGHT, Free, needs_of


def test_a_task_needs_what_it_says_else_its_types_default():
    assert needs_of("blender-render") == CPU
    assert needs_of("file-management") == LIGHT and needs_of("sleep") == LIGHT
    assert needs_of("blender-render", GPU) == GPU
    assert needs_of("sleep", CPU) == CPU
    assert needs_of("sleep", "bogus") == LIGHT


@pytest.mark.parametrize("free, fitting", [
    (Free(slots=1), (CPU, GPU, LIGHT)),  # a worker without GPUs books none: a gpu task takes a slot
    (Free(slots=1, gpus=0), (CPU, LIGHT)),
    (Free(slots=1, gpus=1), (CPU, GPU, LIGHT)),
    (Free(slots=0, light_slots=1, gpus=1), (LIGHT,)),
    (Free(slots=0), ()),
])
def test_what_fits(free, fitting):
    assert free.fitting() == fitting
    assert free.empty == (not fitting)


def test_light_tasks_take_a_light_slot_first_then_a_slot():
    free = Free(slots=1, light_slots=1)
    after_one = free.after(LIGHT)
    assert after_one == Free(slots=1, light_slots=0)
    assert after_one.after(LIGHT) == Free(slots=0, light_slots=0)
    assert after_one.after(LIGHT).empty


def test_gpu_tasks_take_a_slot_and_a_gpu_cpu_tasks_only_a_slot():
    free = Free(slots=3, gpus=2)
    assert free.after(GPU) == Free(slots=2, gpus=1)
    assert free.after(CPU) == Free(slots=2, gpus=2)
    assert free.after(GPU).after(GPU).fitting() == (CPU, LIGHT)


def test_memory_is_booked_and_checked():
    free = Free(slots=3, memory_mb=5000)
    assert free.fits(CPU, 3000) and not free.fits(CPU, 6000)
    left = free.after(CPU, 3000)
    assert left.memory_mb == 2000 and not left.fits(CPU, 3000) and left.fits(CPU, 2000)
    assert left.fits(CPU, None) and left.fits(CPU, 0)
    assert Free(slots=1).fits(CPU, 10**9)  # no budget: the Manager's other memory rule applies
