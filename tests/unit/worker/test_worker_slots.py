"""A worker's slots: what a task is given (slot, runner, threads, GPU, memory), the Blender
arguments that follow, and the config and command line that declare them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.documents import Task
from shared.slots import Free
from worker import cli
from worker.commands.blender import slot_args
from worker.config import ConfigError, WorkerConfig
from worker.slots import Slots, pid_path


def config(tmp_path, **kw) -> WorkerConfig:
    return WorkerConfig(manager_url="http://127.0.0.1:9", data_dir=str(tmp_path), **kw)


def task(task_id, task_type="blender-render", needs=None, memory=None) -> Task:
    return Task(id=task_id, job="j", name=task_id, status="active", task_type=task_type, commands=[], needs=needs,
                job_memory_mb=memory)


def test_one_slot_is_todays_worker(tmp_path):
    slots = Slots(config(tmp_path))
    assert [r.pid_file for r in slots.runners] == [Path(tmp_path) / "subprocess.pid"]
    booking = slots.book(task("a"))
    assert booking.threads is None and booking.env == {} and booking.cycles_device is None
    assert slots.book(task("b", "file-management")) is None, "a light task needs a slot too"
    slots.release(booking)
    assert slots.book(task("b", "file-management")) is not None


def test_each_slot_has_its_own_runner_and_pid_file(tmp_path):
    slots = Slots(config(tmp_path, slots=2, light_slots=1))
    assert [Path(r.pid_file).name for r in slots.runners] == ["subprocess.pid", "subprocess-1.pid",
                                                              "subprocess-2.pid"]
    assert pid_path(Path("/x/run.pid"), 3) == Path("/x/run-3.pid")
    a, b = slots.book(task("a")), slots.book(task("b"))
    assert a.runner is not b.runner and {a.slot.index, b.slot.index} == {0, 1}


def test_cpu_tasks_share_the_threads_light_tasks_book_none(tmp_path):
    slots = Slots(config(tmp_path, slots=3, light_slots=1, cpu_threads=32))
    assert slots.book(task("render")).threads == 10
    light = slots.book(task("move", "file-management"))
    assert light.threads is None and light.slot.light, "a light task takes the light slot first"
    assert slots.free().slots == 2 and slots.free().light_slots == 0
    assert slots.book(task("move2", "file-management")).slot.light is False, "then a plain slot"


def test_gpus_are_booked_one_each_and_hidden_from_the_other_tasks(tmp_path):
    slots = Slots(config(tmp_path, slots=4, gpus=[1, 3], gpu_device="OPTIX"))
    first, second = slots.book(task("g1", needs="gpu")), slots.book(task("g2", needs="gpu"))
    assert (first.gpu, second.gpu) == (1, 3)
    assert first.env == {"CUDA_VISIBLE_DEVICES": "1", "HIP_VISIBLE_DEVICES": "1"}
    assert first.cycles_device == "OPTIX"
    assert slots.free().gpus == 0
    assert slots.book(task("g3", needs="gpu")) is None, "no GPU left"
    cpu = slots.book(task("c"))
    assert cpu.env["CUDA_VISIBLE_DEVICES"] == "-1" and cpu.cycles_device == "CPU"
    slots.release(first)
    assert slots.book(task("g3", needs="gpu")).gpu == 1


def test_without_gpus_a_gpu_task_takes_a_plain_slot(tmp_path):
    slots = Slots(config(tmp_path, slots=2))
    booking = slots.book(task("g", needs="gpu"))
    assert booking.gpu is None and booking.env == {} and booking.cycles_device is None
    assert slots.free().gpus is None


def test_memory_is_booked_from_the_budget(tmp_path):
    slots = Slots(config(tmp_path, slots=3, memory_mb=5000))
    assert slots.book(task("big", memory=3000)) is not None
    assert slots.book(task("big2", memory=3000)) is None
    assert slots.book(task("small", memory=2000)) is not None
    free = slots.free()
    assert free == Free(slots=1, light_slots=0, gpus=None, memory_mb=0)


def test_blender_gets_threads_before_rendering_and_the_cycles_device_after_dashes(tmp_path):
    slots = Slots(config(tmp_path, slots=2, cpu_threads=8, gpus=[0]))
    argv = ["/usr/bin/blender", "--factory-startup", "--background", "x.blend", "--render-frame", "1"]
    cpu = slots.book(task("c"))
    assert slot_args(argv, 2, cpu) == ["/usr/bin/blender", "--factory-startup", "--threads", "4", "--background",
                                       "x.blend", "--render-frame", "1", "--", "--cycles-device", "CPU"]
    gpu = slots.book(task("g", needs="gpu"))
    assert slot_args(argv, 1, gpu) == ["/usr/bin/blender", "--threads", "4", *argv[1:]], \
        "no gpu_device configured: the device the .blend says"
    assert slot_args(argv, 1, None) == argv


@pytest.mark.parametrize("kw, message", [
    ({"slots": 0}, "slots must be 1 or more"),
    ({"slots": 60, "light_slots": 10}, "64 together at most"),
    ({"gpus": [0, 0]}, "distinct GPU indices"),
    ({"gpus": [-1]}, "distinct GPU indices"),
    ({"gpu_device": "cuda"}, "gpu_device must be one of"),
    ({"cpu_threads": -2}, "may not be negative"),
])
def test_bad_slot_settings_are_refused(tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, **kw).validate()


def test_the_command_line_declares_the_slots(tmp_path):
    args = cli.build_parser().parse_args(["--manager", "http://m:8083", "--data-dir", str(tmp_path), "--slots", "3",
                                          "--light-slots", "1", "--cpu-threads", "12", "--gpus", "0", "2",
                                          "--gpu-device", "CUDA", "--memory-mb", "16000"])
    cfg = cli.config_from_args(args)
    assert (cfg.slots, cfg.light_slots, cfg.cpu_threads, cfg.gpus, cfg.gpu_device, cfg.memory_mb) == \
        (3, 1, 12, [0, 2], "CUDA", 16000)
