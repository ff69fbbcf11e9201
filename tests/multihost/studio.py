"""A studio's farm on several hosts, started with the commands of the README's "Deploying on
several machines" section, read from the README itself, so the two cannot drift apart.

    studio = Studio(base_dir, manager_config=TOML)   # hosts (tests/multihost/netns.py), not started
    studio.start()                                   # README steps 1-3 on their hosts; waits for the workers
    studio.api()                                     # the Server's API as the admin, from the workstation
    studio.artist_api(site)                          # ... as the site's artist (README: alice)
    studio.kill_host("node1"); studio.start_worker(studio.net.host("node1"))
    studio.stop()

The machines (each a host of netns.Network):

    office   10.77.0.0/24   flamenco-server (.10)
    managers 10.77.1.0/24   render-room (.11), annex (.12)
    render   10.77.2.0/24   node1 (.21), node2 (.22) -> render-room; node3 (.23) -> annex
    artists  10.77.3.0/24   workstation (.10): the artists' machine, where the tests' requests come from

Each LAN is a bridge; the router between them forwards (and counts, and impairs) everything
that goes from one host to another: `studio.net.traffic()` is the bytes per hop.

How the README's commands are run (`readme_steps`, `Studio.commands`):
* A step is the text from `**N. Title**` to the next step; its commands are the indented
  code lines (`\\` continues a line, `#` starts a comment). `export A=B` sets the environment
  of the step's later commands.
* Step 1 runs on the Server's host, step 2 on each Manager's, step 3 on each worker's,
  step 4 on the workstation. The last command of steps 1-3 is the service and keeps running;
  the others run to their end.
* The README's example site is the project `shot1`, its artist `alice` and its Manager
  `render-room`. A command that names any of them is run for every site, with that site's
  names (the second site: `shot2`, `bob`, `annex`); the others run once.
* `<placeholders>` are filled in with what earlier commands printed (`<manager id>`,
  `<manager token>`, `<api token>`) or the site's `<worker secret>`; one the harness does
  not know is an error that names it.
* Absolute paths are the host's own: `/var/lib/flamenco` is `<host dir>/var/lib/flamenco`.
  Programs come from the PATH (this Python environment's bin first, as /opt/flamenco/bin
  would be). Host names resolve through the hosts' /etc/hosts.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.farm_api import Api

from .netns import Host, Network

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "## Deploying on several machines"
EXAMPLE_SITE = {"project": "shot1", "artist": "alice", "manager": "render-room"}
SERVER_HOST, WORKSTATION = "flamenco-server", "workstation"
PLACEHOLDERS = ("manager id", "manager token", "worker secret", "api token")
"""What the README's commands may leave for the reader to fill in (see Studio._placeholders)."""


WORKER_TIMEOUT = 12.0
MANAGER_CONFIG = f"""\
# Written by tests/multihost: shorter timeouts, so a dead worker is noticed within the test.
[timeouts]
worker_timeout = {WORKER_TIMEOUT}       # a killed worker's task is requeued after this
task_timeout = 120.0
check_interval = 1.0

[scheduling]
long_poll_max = 5.0            # idle workers are heard from well within worker_timeout
"""
"""The Managers' config in the tests (the README leaves /etc/flamenco/manager.toml to the studio)."""


class DeployError(Exception):
    pass


@dataclass
class Command:
    env: dict[str, str]
    line: str  # as written, continuation lines joined, comment removed

    def program(self) -> str:
        return shlex.split(self.line)[0]


def readme_steps(readme: Path = README) -> dict[int, list[Command]]:
    """The commands of each numbered step of the README's deployment section."""
    text = readme.read_text()
    if SECTION not in text:
        raise DeployError(f"README.md has no '{SECTION}' section")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    steps: dict[int, list[Command]] = {}
    step, env, pending = None, {}, ""
    for raw in section.splitlines():
        heading = re.match(r"\*\*(\d+)\. ", raw)
        if heading:
            step, env = int(heading.group(1)), {}
            steps[step] = []
            continue
        if step is None or not raw.startswith("    "):
            continue
        pending += raw.strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        protected = re.sub(r"<[^<>]+>", lambda m: m.group(0).replace(" ", "\x01"), pending)
        words = [w.replace("\x01", " ") for w in shlex.split(protected, comments=True)]
        line = shlex.join(words) if words else ""
        pending = ""
        if not words:
            continue
        if words[0] == "export":
            env = {**env, **dict(w.split("=", 1) for w in words[1:])}
        else:
            steps[step].append(Command(dict(env), line))
    return steps


@dataclass
class Site:
    """A project, its artist, and the Manager (host name) with its workers (host names)."""
    project: str
    artist: str
    manager: str
    workers: list[str]
    secret: str
    manager_id: str = ""
    manager_token: str = ""
    artist_token: str = ""

    def names(self) -> dict[str, str]:
        return {"project": self.project, "artist": self.artist, "manager": self.manager}


DEFAULT_SITES = (("shot1", "alice", "render-room", ("node1", "node2")), ("shot2", "bob", "annex", ("node3",)))


@dataclass
class Studio:
    base: Path
    manager_config: str = ""
    """The Managers' /etc/flamenco/manager.toml (tests shorten timeouts with it)."""
    sites: list[Site] = field(default_factory=list)
    admin_token: str = ""
    services: dict[str, list[str]] = field(default_factory=dict)
    """The command line of the service last started on each host."""

    def __post_init__(self):
        if not self.sites:
            self.sites = [Site(p, a, m, list(w), f"secret-of-{m}") for p, a, m, w in DEFAULT_SITES]
        self.steps = readme_steps()
        self.net = Network(self.base)
        try:
            self._build_network()
        except Exception:
            self.net.close()
            raise

    def _build_network(self) -> None:
        net = self.net
        net.add_segment("office", "10.77.0")
        net.add_segment("managers", "10.77.1")
        net.add_segment("render", "10.77.2")
        net.add_segment("artists", "10.77.3")
        net.add_host(SERVER_HOST, "office", "10.77.0.10")
        net.add_host(WORKSTATION, "artists", "10.77.3.10")
        n = 0
        for i, site in enumerate(self.sites):
            net.add_host(site.manager, "managers", f"10.77.1.{11 + i}")
            for worker in site.workers:
                net.add_host(worker, "render", f"10.77.2.{21 + n}")
                n += 1
        net.start()

    # --- hosts and URLs ---------------------------------------------------------------

    @property
    def server(self) -> Host:
        return self.net.host(SERVER_HOST)

    @property
    def workstation(self) -> Host:
        return self.net.host(WORKSTATION)

    @property
    def server_url(self) -> str:
        return f"http://{self.server.address}:8080"

    def manager_url(self, site: Site) -> str:
        return f"http://{self.net.host(site.manager).address}:8083"

    @property
    def nas(self) -> Path:
        """Shared storage: a directory every host sees at the same path, as a NAS mounted
        everywhere would be (jobs that name absolute paths use it)."""
        path = self.base / "nas"
        path.mkdir(exist_ok=True)
        return path

    def site_of(self, host_name: str) -> Site:
        return next(s for s in self.sites if host_name == s.manager or host_name in s.workers)

    def api(self, token: str | None = None) -> Api:
        """The Server's user API as the admin (or `token`), from the workstation."""
        api = Api({"server_url": self.server_url, "admin_token": token or self.admin_token})
        api.s = self.workstation.session()
        api.s.headers["Authorization"] = f"Bearer {token or self.admin_token}"
        return api

    def artist_api(self, site: Site) -> Api:
        return self.api(site.artist_token)

    # --- the README's commands ----------------------------------------------------------

    def commands(self, step: int) -> list[Command]:
        if step not in self.steps or not self.steps[step]:
            raise DeployError(f"README.md's '{SECTION}' has no commands in step {step}")
        return self.steps[step]

    @staticmethod
    def names_a_site(cmd: Command) -> bool:
        return any(re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", cmd.line) for v in EXAMPLE_SITE.values())

    def argv(self, cmd: Command, host: Host, site: Site | None,
             filled: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """The command as run on `host`: the site's names, placeholders filled, paths the host's."""
        def fill(text: str) -> str:
            if site is not None:
                for key, example in EXAMPLE_SITE.items():
                    text = re.sub(rf"(?<![\w-]){re.escape(example)}(?![\w-])", site.names()[key], text)

            def placeholder(m: re.Match) -> str:
                if m.group(1) not in filled:
                    raise DeployError(f"README command '{cmd.line}' has placeholder <{m.group(1)}>, which "
                                      f"tests/multihost/studio.py does not know (it knows: {sorted(filled)})")
                return filled[m.group(1)]
            return re.sub(r"<([^<>]+)>", placeholder, text)

        argv = [str(host.path(w)) if w.startswith("/") else w for w in shlex.split(fill(cmd.line))]
        env = {k: fill(v) for k, v in cmd.env.items()}
        return argv, env

    def _placeholders(self, site: Site | None) -> dict[str, str]:
        if site is None:
            return {"api token": self.admin_token}
        return {"manager id": site.manager_id, "manager token": site.manager_token, "worker secret": site.secret,
                "api token": site.artist_token or self.admin_token}

    def _run_setup(self, host: Host, cmd: Command, site: Site | None) -> str:
        argv, env = self.argv(cmd, host, site, self._placeholders(site))
        out = host.run(argv, env=env).stdout
        if argv[:2] == ["flamenco-server", "create-user"]:
            token = out.strip().splitlines()[-1]
            if "--admin" in argv:
                self.admin_token = token
            elif site is not None:
                site.artist_token = token
        elif argv[:2] == ["flamenco-server", "create-manager"] and site is not None:
            site.manager_id = re.search(r"manager id:\s*(\S+)", out).group(1)
            site.manager_token = re.search(r"manager token:\s*(\S+)", out).group(1)
        return out

    def _run_step(self, step: int, host: Host, sites: list[Site | None], service: str | None) -> None:
        """Run the step's commands on `host`, each for every site if it names one; the last
        one is the service (spawned as `service`) unless service is None."""
        cmds = self.commands(step)
        setup, last = (cmds[:-1], cmds[-1]) if service else (cmds, None)
        for cmd in setup:
            for site in (sites if self.names_a_site(cmd) else [None]):
                self._run_setup(host, cmd, site)
        if last is not None:
            site = sites[0]
            argv, env = self.argv(last, host, site, self._placeholders(site))
            host.spawn(argv, env=env, log=service)
            self.services[host.name] = argv

    # --- starting and stopping ------------------------------------------------------------

    def start(self, workers_timeout: float = 90) -> None:
        self.start_server()
        for site in self.sites:
            self.start_manager(site)
        for site in self.sites:
            for worker in site.workers:
                self.start_worker(self.net.host(worker))
        self.wait_workers_awake(timeout=workers_timeout)

    def start_server(self) -> None:
        self._run_step(1, self.server, list(self.sites), "flamenco-server")
        self._wait_http(self.server, "flamenco-server", f"{self.server_url}/api/version")

    def start_manager(self, site: Site) -> None:
        host = self.net.host(site.manager)
        config = host.path("/etc/flamenco/manager.toml")
        config.parent.mkdir(parents=True, exist_ok=True)
        if not config.exists():
            config.write_text(self.manager_config)
        self._run_step(2, host, [site], "flamenco-manager")
        self._wait_http(host, "flamenco-manager", f"{self.manager_url(site)}/api/openapi.json")

    def start_worker(self, host: Host) -> None:
        self._run_step(3, host, [self.site_of(host.name)], "flamenco-worker")

    def run_artist_cli(self, site: Site) -> str:
        """README step 4 on the workstation as the site's artist; what its commands printed."""
        return "".join(self.workstation.run(*self.argv(cmd, self.workstation, site, self._placeholders(site))).stdout
                       for cmd in self.commands(4))

    def _wait_http(self, host: Host, name: str, url: str, timeout: float = 60) -> None:
        with self.workstation.session() as session:
            self._poll_http(session, host, name, url, timeout)

    def _poll_http(self, session, host: Host, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = host.procs[name]
        while True:
            if proc.poll() is not None:
                raise DeployError(f"{name} on {host.name} exited with {proc.returncode}: {self.log_tail(host, name)}")
            try:
                session.get(url, timeout=2, headers={"Connection": "close"})  # leaves no connection behind
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise DeployError(f"{name} on {host.name} did not answer on {url} within {timeout:g} s: "
                                      f"{self.log_tail(host, name)}") from None
                time.sleep(0.2)

    def wait_workers_awake(self, names: list[str] | None = None, timeout: float = 90) -> dict[str, dict]:
        """Until every worker host's worker is awake, as the Server reports it (by nickname,
        which is the worker's host name)."""
        names = names or [w for s in self.sites for w in s.workers]
        api = self.api()
        deadline = time.monotonic() + timeout
        while True:
            seen = {w["nickname"]: w for w in api.workers()}
            if all(seen.get(n, {}).get("status") == "awake" for n in names):
                return seen
            dead = [f"{h.name}/{p}" for h in self.net.hosts.values() for p, proc in h.procs.items()
                    if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise DeployError(f"workers not awake after {timeout:g} s (exited: {dead}); the Server sees "
                                  f"{ {n: w['status'] for n, w in seen.items()} }")
            time.sleep(0.3)

    def kill_host(self, name: str) -> list[int]:
        """SIGKILL every process on a host at once (a crash or power loss)."""
        return self.net.host(name).kill_all()

    def log_tail(self, host: Host, name: str, lines: int = 30) -> str:
        path = host.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def stop(self) -> None:
        """Workers first (they return their tasks), then the Managers, then the Server; then
        the network goes, with whatever still runs on it."""
        try:
            order = [self.net.host(w) for s in self.sites for w in s.workers]
            order += [self.net.host(s.manager) for s in self.sites] + [self.server]
            for host in order:
                for name in list(host.procs):
                    host.stop(name, timeout=15)
        finally:
            self.net.close()

    # --- what the services keep (read-only) ---------------------------------------------------

    def data_dir(self, host: Host) -> Path:
        """The --data-dir of the service the README starts on the host."""
        argv = self.services[host.name]
        return Path(argv[argv.index("--data-dir") + 1])

    def server_db(self):
        return _read_only(self.data_dir(self.server) / "server.sqlite")

    def manager_db(self, site: Site):
        return _read_only(self.data_dir(self.net.host(site.manager)) / "flamenco-manager.sqlite")

    def manager_task_logs(self, site: Site) -> Path:
        return self.data_dir(self.net.host(site.manager)) / "task-logs"


@contextlib.contextmanager
def _read_only(path: Path):
    """A read-only connection to a service's SQLite database, closed after the block."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        yield db
    finally:
        db.close()
