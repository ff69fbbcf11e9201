"""`flamenco-worker`: the command line around worker.daemon.Worker.

    flamenco-worker --manager URL [--config worker.toml] [--data-dir D] [--nickname N]
                    [--task-types T ...] [--tags T ...] [--slots N] [--light-slots N]
                    [--cpu-threads N] [--gpus I ...] [--gpu-device D] [--memory-mb MB]
                    [--single] [--reregister] [--debug]
    flamenco-worker --check [--manager URL] [--config ...] [--blender EXE] [--ffmpeg EXE] [--json]
    flamenco-worker --test [--blender EXE] [--keep DIR]

Signals: SIGTERM/SIGINT return the running tasks, flush and sign off (a second
one stops at once); SIGUSR1 sends the worker to sleep, SIGUSR2 wakes it.
Exit codes: 0 normal stop, 1 bad configuration or forced stop, 2 refused by the Manager.
--check and --test exit 0 when all is well and 1 when something needs fixing.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from . import config as config_mod
from .daemon import ASLEEP, AWAKE, Worker

log = logging.getLogger("worker")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flamenco-worker", description="Flamenco Worker: runs tasks of a Manager.")
    p.add_argument("--manager", metavar="URL", help="the Manager's URL (or manager_url in the config file)")
    p.add_argument("--config", metavar="FILE", help="TOML config file (see docs/worker.example.toml)")
    p.add_argument("--data-dir", metavar="DIR", help="credentials, queue, PID file and cache (one per worker)")
    p.add_argument("--nickname", help="name shown on the Manager (default: the host name)")
    p.add_argument("--task-types", nargs="+", metavar="TYPE", help="task types this worker runs")
    p.add_argument("--tags", nargs="+", metavar="TAG", help="worker tags for the Manager's scheduling")
    p.add_argument("--registration-secret", metavar="SECRET",
                   help="the Manager's registration secret (default: FLAMENCO_REGISTRATION_SECRET or config)")
    p.add_argument("--long-poll", type=float, metavar="SECONDS", help="how long POST /task may wait for work")
    p.add_argument("--slots", type=int, metavar="N", help="tasks to run at once (default 1)")
    p.add_argument("--light-slots", type=int, metavar="N", help="more tasks at once, light ones only (default 0)")
    p.add_argument("--cpu-threads", type=int, metavar="N",
                   help="CPU threads the slots share (Blender's -t per task; default: all of this machine's)")
    p.add_argument("--gpus", type=int, nargs="+", metavar="INDEX", help="GPUs to give one each to GPU tasks")
    p.add_argument("--gpu-device", choices=config_mod.GPU_DEVICES, help="Cycles device type for GPU tasks")
    p.add_argument("--memory-mb", type=int, metavar="MB",
                   help="memory the running tasks' jobs may declare together (default: free memory only)")
    p.add_argument("--single", action="store_true", help="stop after one task")
    p.add_argument("--reregister", action="store_true", help="forget the stored credentials and register anew")
    p.add_argument("--debug", action="store_true", help="debug logging")
    p.add_argument("--check", action="store_true", help="check Blender, FFmpeg, GPUs, disk, the Manager and "
                                                        "the clock; print what to fix, then exit")
    p.add_argument("--test", action="store_true", help="render a built-in test job here, without a Manager; "
                                                       "report how it went and how long it took, then exit")
    p.add_argument("--blender", metavar="EXE", default="blender", help="the Blender --check and --test use "
                                                                       "(default: blender on PATH)")
    p.add_argument("--ffmpeg", metavar="EXE", default="ffmpeg", help="the FFmpeg --check looks at "
                                                                     "(default: ffmpeg on PATH)")
    p.add_argument("--min-free-gb", type=float, default=5.0, metavar="GB", help="--check: less free disk fails")
    p.add_argument("--keep", metavar="DIR", help="--test: work in DIR and keep the scene and the frame")
    p.add_argument("--json", action="store_true", help="--check: print JSON")
    return p


def config_from_args(args: argparse.Namespace, validate: bool = True) -> config_mod.WorkerConfig:
    overrides = {
        "manager_url": args.manager,
        "data_dir": args.data_dir,
        "nickname": args.nickname,
        "task_types": args.task_types,
        "tags": args.tags,
        "registration_secret": args.registration_secret or os.environ.get("FLAMENCO_REGISTRATION_SECRET") or None,
        "long_poll_seconds": args.long_poll,
        "slots": args.slots,
        "light_slots": args.light_slots,
        "cpu_threads": args.cpu_threads,
        "gpus": args.gpus,
        "gpu_device": args.gpu_device,
        "memory_mb": args.memory_mb,
    }
    cfg = config_mod.load(args.config, overrides)
    if validate:
        cfg.validate()
    return cfg


def run_check(args: argparse.Namespace, cfg: config_mod.WorkerConfig) -> int:
    from .check import report, run_checks
    text, code = report(run_checks(cfg, args.blender, args.ffmpeg, args.min_free_gb), args.json)
    print(text)
    return code


def run_test(args: argparse.Namespace, cfg: config_mod.WorkerConfig) -> int:
    from .selftest import run_test_job
    print(f"flamenco-worker --test: rendering a built-in test job with {args.blender} ...", flush=True)
    result = run_test_job(cfg, args.blender, args.keep)
    if not result.ok:
        print("\n".join(f"  | {line}" for line in result.log[-40:]))
    print(f"test job {'succeeded' if result.ok else 'FAILED'} in {result.seconds:.1f} s: {result.message}"
          + (f"\nthe frame: {result.output}" if result.output else ""))
    return 0 if result.ok else 1


def install_signal_handlers(worker: Worker) -> None:
    stopping = {"count": 0}

    def on_stop(signum, frame):
        stopping["count"] += 1
        if stopping["count"] == 1:
            worker.request_shutdown(f"signal {signal.Signals(signum).name}")
            return
        log.warning("second signal: stopping at once")
        try:
            worker.force_stop()
        finally:
            os._exit(1)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda *_: worker.request_state(ASLEEP))
        signal.signal(signal.SIGUSR2, lambda *_: worker.request_state(AWAKE))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        cfg = config_from_args(args, validate=not (args.check or args.test))
    except config_mod.ConfigError as ex:
        print(f"flamenco-worker: {ex}", file=sys.stderr)
        return 1
    if args.check:
        return run_check(args, cfg)
    if args.test:
        return run_test(args, cfg)
    cfg.data_path().mkdir(parents=True, exist_ok=True)
    worker = Worker(cfg, single=args.single)
    if args.reregister:
        worker.client.forget_credentials()
    install_signal_handlers(worker)
    log.info("worker %s for %s, task types %s, %d slot(s)%s, data in %s", cfg.nickname or "(host name)",
             cfg.manager_url, " ".join(cfg.task_types), cfg.slots,
             f" + {cfg.light_slots} light" if cfg.light_slots else "", cfg.data_path())
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
