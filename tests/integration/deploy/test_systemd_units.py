"""The service units of deploy/systemd/: valid for systemd (`systemd-analyze verify`, which needs no
running systemd), hardened (`systemd-analyze security --offline`), no secret on a command line, and
for the worker a stop that makes it return its task: the unit's own command line and stop signal
used on a real worker process with a task running, against a real Manager."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.deploy.deploy_helpers import DEPLOY, Proc, wait_until
from tests.conftest import missing
from worker.config import WorkerConfig
from worker.daemon import warm_stop_seconds

UNITS = ["flamenco-server", "flamenco-manager", "flamenco-worker"]
BIN = Path(sys.executable).parent
INSTALLED_BIN = "/opt/flamenco/venv/bin/"
SECRET_FLAGS = ("--token", "--registration-secret", "--admin-token", "--database", "--password")
MAX_EXPOSURE = {"flamenco-server": 2.0, "flamenco-manager": 2.0, "flamenco-worker": 4.5}


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if not exe:
        missing("the 'systemd-analyze' executable (package systemd; scripts/bootstrap installs it)")
    return exe


def unit_text(name: str) -> str:
    return (DEPLOY / "systemd" / f"{name}.service").read_text()


def directives(text: str) -> dict[str, list[str]]:
    """Key -> every value given to it (a key may repeat), comments skipped."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def installed_copy(name: str, directory: Path) -> Path:
    """The unit with its ExecStart pointing at this environment's console scripts."""
    if not (BIN / name).exists():
        missing(f"the {name} console script (pip install -e .)")
    path = directory / f"{name}.service"
    path.write_text(unit_text(name).replace(INSTALLED_BIN, f"{BIN}/"))
    return path


@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_accepts_the_unit(name, tmp_path):
    out = subprocess.run([systemd_analyze(), "verify", "--man=no", str(installed_copy(name, tmp_path))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip() and not out.stdout.strip(), out.stdout + out.stderr


def test_verify_would_catch_a_broken_unit(tmp_path):
    path = installed_copy("flamenco-server", tmp_path)
    path.write_text(path.read_text().replace("KillSignal=SIGTERM", "KillSignal=SIGTERM\nProtectSytem=strict"))
    out = subprocess.run([systemd_analyze(), "verify", "--man=no", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert "Unknown key 'ProtectSytem'" in out.stderr


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_is_hardened_and_keeps_secrets_off_the_command_line(name, tmp_path):
    d = directives(unit_text(name))
    assert d["User"] == ["flamenco"] and d["Group"] == ["flamenco"]
    for key, value in (("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"), ("ProtectSystem", "strict"),
                       ("KillSignal", "SIGTERM"), ("Restart", "on-failure")):
        assert d[key] == [value], key
    exec_start = shlex.split(d["ExecStart"][0])
    data_dir = exec_start[exec_start.index("--data-dir") + 1]
    assert d["ReadWritePaths"] == [data_dir] and d["StateDirectory"] == [Path(data_dir).name]
    assert d["EnvironmentFile"][0].startswith("-/etc/flamenco/")
    assert not [a for a in exec_start if a.split("=")[0] in SECRET_FLAGS], "secrets belong in EnvironmentFile"
    example = DEPLOY / "systemd" / f"{name.split('-')[1]}.env.example"
    assert example.is_file(), "an example of the environment file ships beside the unit"

    out = subprocess.run([systemd_analyze(), "security", "--offline=true", "--no-pager",
                          str(installed_copy(name, tmp_path))], capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", out.stdout + out.stderr)
    assert level, out.stdout + out.stderr
    assert float(level.group(1)) <= MAX_EXPOSURE[name], out.stdout


def test_the_worker_unit_waits_long_enough_for_a_warm_stop():
    d = directives(unit_text("flamenco-worker"))
    assert d["KillMode"] == ["mixed"], "SIGTERM to the worker only; Blender is the worker's to stop"
    timeout = float(d["TimeoutStopSec"][0].rstrip("s"))
    assert timeout > warm_stop_seconds(WorkerConfig(manager_url="http://m")), "SIGKILL only after a warm stop"


def test_the_worker_units_stop_returns_the_running_task(tmp_path):
    """What systemd does on `systemctl stop` with this unit, done by hand: the unit's ExecStart
    (paths moved into tmp_path), its EnvironmentFile, KillSignal to the main process only
    (KillMode=mixed), SIGKILL to what is left after TimeoutStopSec."""
    from tests.integration.worker.worker_it_helpers import Manager, task_doc, wait_for

    d = directives(unit_text("flamenco-worker"))
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    (etc / "worker.toml").write_text("may_i_run_interval_seconds = 0.5\nlong_poll_seconds = 5\n"
                                     "abort_grace_seconds = 1\ntask_types = [\"debug\"]\n")
    manager = Manager(tmp_path / "manager").start()
    try:
        env_file = (DEPLOY / "systemd" / "worker.env.example").read_text()
        env = dict(line.split("=", 1) for line in env_file.splitlines() if line and not line.startswith("#"))
        env.update(FLAMENCO_MANAGER_URL=manager.url, FLAMENCO_REGISTRATION_SECRET="")
        env.update(v.split("=", 1) for v in d["Environment"])
        command = (d["ExecStart"][0].replace(INSTALLED_BIN, f"{BIN}/").replace("/etc/flamenco", str(etc))
                   .replace("/var/lib/flamenco-worker", str(state)))
        env["HOME"] = str(state)
        worker = Proc("worker", shlex.split(command), tmp_path, env=env)
        try:
            manager.add_tasks(task_doc("t1", [{"name": "exec", "settings": {
                "cmd": f"{sys.executable} -c \"import time; print('rendering', flush=True); time.sleep(120)\""}}],
                task_type="debug"))
            wait_for(lambda: manager.task("t1")["status"] == "active", what="the task running")
            wait_until("the task's process", lambda: any("rendering" in " ".join(c.cmdline()) for c in
                                                         psutil.Process(worker.p.pid).children(recursive=True)),
                       procs=[worker])
            children = psutil.Process(worker.p.pid).children(recursive=True)
            started = time.monotonic()
            os.kill(worker.p.pid, getattr(signal, d["KillSignal"][0]))
            try:
                worker.p.wait(float(d["TimeoutStopSec"][0].rstrip("s")))
            except subprocess.TimeoutExpired:
                pytest.fail(f"systemd would SIGKILL the worker now:\n{worker.log()}")
            took = time.monotonic() - started
            assert worker.p.returncode == 0, worker.log()
            assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
            assert manager.task("t1")["status"] in ("queued", "claimed-by-manager"), "returned, not failed"
            assert "signed off" in worker.log()
            assert took < 15, f"a warm stop of {took:.1f} s"
        finally:
            worker.stop()
    finally:
        manager.stop()
