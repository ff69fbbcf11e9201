"""`flamenco farm`: a whole farm on one machine — a Server, a Manager linked to it
and N workers, each its own process, with SQLite in one data directory.

First start creates an admin, a project, a Manager and links them, and keeps
what it made in the data directory, so a restart brings back the same farm.
`D/farm.json` tells clients where things are:
{server_url, manager_url, admin_token, registration_secret}.
Secrets reach the processes through their environment, never their command
lines (which every user of the machine sees with `ps`). The Manager's admin
API and pages stay closed until the admin runs `flamenco-manager
set-admin-password` or `create-admin-token` with `--data-dir D/manager`.
Ctrl-C (or SIGTERM) stops the workers first (they return their tasks and sign
off), then the Manager, then the Server.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

log = logging.getLogger(__name__)

PROJECT = "default"
MANAGER_NAME = "local"


class FarmError(Exception):
    pass


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _module_cmd(module: str) -> list[str]:
    return [sys.executable, "-m", module]


@dataclass
class Farm:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    registration_secret: str = ""
    worker_args: list[str] = field(default_factory=list)
    manager_extra_config: str = ""
    """TOML appended to the Manager config written on first start (tests shorten timeouts with it)."""
    server_url: str = ""
    manager_url: str = ""
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def server_dir(self) -> Path:
        return self.data_dir / "server"

    @property
    def manager_dir(self) -> Path:
        return self.data_dir / "manager"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "farm-state.json"

    def _run_server_cli(self, *args: str) -> dict:
        cmd = [*_module_cmd("backend.server.cli"), *args, "--data-dir", str(self.server_dir), "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise FarmError(f"{' '.join(args[:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return json.loads(proc.stdout)

    def setup(self) -> dict:
        """Create the admin, project and Manager once; later starts reuse them."""
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._run_server_cli("create-project", PROJECT)
        admin = self._run_server_cli("create-user", "admin", "--admin", "--project", PROJECT)
        manager = self._run_server_cli("create-manager", MANAGER_NAME, "--project", PROJECT)
        state = {"admin_token": admin["token"], "manager_id": manager["id"], "manager_token": manager["token"]}
        self.state_file.write_text(json.dumps(state, indent=2))
        os.chmod(self.state_file, 0o600)
        return state

    def _spawn(self, name: str, cmd: list[str], secrets_env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a process; `secrets_env` goes into its environment (readable only by its user), never argv."""
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{name}.log", "ab")
        env = {**os.environ, **{k: v for k, v in (secrets_env or {}).items() if v}}
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
        out.close()
        self.procs[name] = proc
        log.info("started %s (pid %d)", name, proc.pid)
        return proc

    def _wait_http(self, name: str, url: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise FarmError(f"{name} exited with code {proc.returncode}; see {self.data_dir}/logs/{name}.log")
            try:
                requests.get(url, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise FarmError(f"{name} did not answer on {url} within {timeout:g} s")

    def manager_config(self) -> Path:
        """A Manager config with this machine's Blender and FFmpeg as variables."""
        path = self.manager_dir / "manager.toml"
        if path.exists():
            return path
        extra = f"\n{self.manager_extra_config}\n" if self.manager_extra_config else ""
        self.manager_dir.mkdir(parents=True, exist_ok=True)
        blender = shutil.which("blender") or "blender"
        ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
        path.write_text(
            "# Written by `flamenco farm`; edit freely, it is not overwritten.\n"
            "[variables.blender]\n"
            f"values = [{{ platforms = [\"linux\", \"darwin\", \"windows\"], value = {json.dumps(blender)} }}]\n"
            "[variables.ffmpeg]\n"
            f"values = [{{ platforms = [\"linux\", \"darwin\", \"windows\"], value = {json.dumps(ffmpeg)} }}]\n"
            + extra)
        return path

    def start(self) -> dict:
        """Start everything; returns what farm.json holds."""
        if not self.registration_secret and not is_loopback(self.host):
            raise FarmError(f"listening on {self.host} lets anyone on the network register workers: set "
                            "FLAMENCO_REGISTRATION_SECRET (the farm's workers get it too) or use --host 127.0.0.1")
        state = self.setup()
        port = self.port or free_port(self.host)
        manager_port = free_port(self.host) if not self.port else self.port + 1
        self.server_url = f"http://{self.host}:{port}"
        self.manager_url = f"http://{self.host}:{manager_port}"
        self.start_server()
        self.start_manager()
        for i in range(self.workers):
            self.start_worker(i)
        info = {"server_url": self.server_url, "manager_url": self.manager_url,
                "admin_token": state["admin_token"], "registration_secret": self.registration_secret}
        farm_json = self.data_dir / "farm.json"
        farm_json.write_text(json.dumps(info, indent=2))
        os.chmod(farm_json, 0o600)
        return info

    def start_server(self) -> None:
        listen = self.server_url.split("//", 1)[1]
        self._spawn("server", [*_module_cmd("backend.server.cli"), "serve", "--data-dir", str(self.server_dir),
                               "--listen", listen])
        self._wait_http("server", f"{self.server_url}/api/version")

    def start_manager(self) -> None:
        state = self.setup()
        listen = self.manager_url.split("//", 1)[1]
        cmd = [*_module_cmd("backend.manager.cli"), "serve", "--data-dir", str(self.manager_dir),
               "--listen", listen, "--server", self.server_url, f"--manager-id={state['manager_id']}",
               "--config", str(self.manager_config()), "--manager-url", self.manager_url]
        self._spawn("manager", cmd, {"FLAMENCO_MANAGER_TOKEN": state["manager_token"],
                                     "FLAMENCO_REGISTRATION_SECRET": self.registration_secret})
        self._wait_http("manager", f"{self.manager_url}/api/openapi.json")

    def manager_cli(self, *args: str, stdin: str | None = None) -> str:
        """`flamenco-manager ARGS --data-dir <the farm's Manager>`: set-admin-password, create-admin-token, ..."""
        cmd = [*_module_cmd("backend.manager.cli"), *args, "--data-dir", str(self.manager_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True, input=stdin)
        if proc.returncode != 0:
            raise FarmError(f"flamenco-manager {args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def start_worker(self, index: int) -> subprocess.Popen:
        worker_dir = self.data_dir / f"worker-{index + 1}"
        cmd = [*_module_cmd("worker.cli"), "--manager", self.manager_url, "--data-dir", str(worker_dir),
               "--nickname", f"{socket.gethostname()}-{index + 1}", *self.worker_args]
        return self._spawn(f"worker-{index + 1}", cmd, {"FLAMENCO_REGISTRATION_SECRET": self.registration_secret})

    def stop_process(self, name: str, timeout: float = 20) -> None:
        """SIGTERM, and SIGKILL to its whole process group if it does not stop in time."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %g s; killing it", name, timeout)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self, timeout: float = 20) -> None:
        """Workers first, so they can return their tasks to a Manager that still listens."""
        order = [n for n in self.procs if n.startswith("worker")] + ["manager", "server"]
        for name in order:
            self.stop_process(name, timeout)

    def dead(self) -> list[str]:
        return [name for name, p in self.procs.items() if p.poll() is not None]


def cmd_farm(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    farm = Farm(Path(args.data_dir).absolute(), args.host, args.port, args.workers,
                os.environ.get("FLAMENCO_REGISTRATION_SECRET", ""))
    stop = {"asked": False}

    def on_signal(signum, frame):
        stop["asked"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        info = farm.start()
        print(f"Server:  {info['server_url']}\nManager: {info['manager_url']}\n"
              f"Workers: {args.workers}\nfarm.json: {farm.data_dir / 'farm.json'}\n"
              f"Try:     flamenco --farm {farm.data_dir} jobs\nStop with Ctrl-C.", flush=True)
        while not stop["asked"]:
            dead = farm.dead()
            if dead:
                print(f"flamenco farm: {', '.join(dead)} exited; see {farm.data_dir}/logs/", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    except FarmError as ex:
        print(f"flamenco farm: {ex}", file=sys.stderr)
        return 1
    finally:
        farm.stop()


def add_parser(sub) -> None:
    p = sub.add_parser("farm", help="run a Server, a Manager and workers on this machine",
                       description="A registration secret for the workers comes from FLAMENCO_REGISTRATION_SECRET "
                                   "(needed to listen beyond 127.0.0.1); it reaches the processes by environment.")
    p.add_argument("--data-dir", required=True, help="where the farm keeps its databases, files and logs")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080,
                   help="Server port; the Manager takes the next one (0: pick free ports)")
    p.add_argument("--workers", type=int, default=1, help="workers to start (0 for none)")
    p.set_defaults(func=cmd_farm, local=True)
