"""A farm deployed the way docs/operations-*.md says: the services as processes from their command
lines, nginx with the configs of deploy/nginx/ and a certificate made here."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import ROOT, missing

DEPLOY = ROOT / "deploy"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A service process; its output in a log file that failures show."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict | None = None):
        self.name, self.args = name, args
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.p = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env={**os.environ, **(env or {})}, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.alive():
            self.p.send_signal(sig)
            self.p.wait(30)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self._log.close()


def wait_until(what: str, check, timeout: float = 30, interval: float = 0.2, procs: list[Proc] = ()):
    """Poll `check()` until it answers something true; fail with the processes' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise AssertionError(f"{p.name} exited with {p.p.returncode} while waiting for {what}:\n{p.log()}")
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(interval)
    logs = "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in procs)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def server_cli(data_dir: Path, *args: str, database: str | None = None) -> dict:
    where = ["--database", database] if database else []
    out = subprocess.run([PY, "-m", "backend.server.cli", *args, "--data-dir", str(data_dir), *where, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def seed_server(data_dir: Path, database: str | None = None) -> dict:
    """Project 'film', artist 'ann' (with a password) and Manager 'm1' linked to it."""
    server_cli(data_dir, "create-project", "film", database=database)
    ann = server_cli(data_dir, "create-user", "ann", "--project", "film", "--password", "ann-secret-pw",
                     database=database)
    manager = server_cli(data_dir, "create-manager", "m1", "--project", "film", database=database)
    return {"ann_token": ann["token"], "manager_id": manager["id"], "manager_token": manager["token"]}


def start_server(name: str, data_dir: Path, port: int, log_dir: Path, database: str | None = None) -> Proc:
    """`flamenco-server serve` on loopback behind the proxy; the database URL in the environment."""
    env = {"FLAMENCO_DATABASE": database} if database else {}
    return Proc(name, [PY, "-m", "backend.server.cli", "serve", "--data-dir", str(data_dir), "--listen",
                       f"127.0.0.1:{port}", "--trusted-proxy", "127.0.0.1"], log_dir, env=env)


def start_manager(data_dir: Path, port: int, server_url: str, manager_url: str, ids: dict, log_dir: Path,
                  env: dict | None = None, config: str = "") -> Proc:
    """`flamenco-manager serve` linked to the Server at `server_url`; its secrets (manager token, registration
    secret 'psk', admin token 'manager-admin') in the environment, never on its command line."""
    extra = []
    if config:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "manager.toml").write_text(config)
        extra = ["--config", str(data_dir / "manager.toml")]
    return Proc("manager", [PY, "-m", "backend.manager.cli", "serve", "--data-dir", str(data_dir), "--listen",
                            f"127.0.0.1:{port}", "--server", server_url, "--manager-id", ids["manager_id"],
                            "--manager-url", manager_url, *extra],
                log_dir, env={**(env or {}), "FLAMENCO_MANAGER_TOKEN": ids["manager_token"],
                              "FLAMENCO_REGISTRATION_SECRET": "psk", "FLAMENCO_MANAGER_ADMIN_TOKEN": "manager-admin"})


def start_worker(manager_url: str, data_dir: Path, log_dir: Path, env: dict | None = None) -> Proc:
    return Proc("worker", [PY, "-m", "worker.cli", "--manager", manager_url, "--data-dir", str(data_dir),
                           "--nickname", "deploy-worker", "--task-types", "sleep"],
                log_dir, env={**(env or {}), "FLAMENCO_REGISTRATION_SECRET": "psk"})


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (certificate, key). Clients trust it as a CA."""
    if not shutil.which("openssl"):
        missing("the 'openssl' executable")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def render(conf: str, replacements: dict[str, str]) -> str:
    """The shipped config with its example values replaced; each must be there, or the test is stale."""
    for old, new in replacements.items():
        assert old in conf, f"'{old}' is no longer in the shipped nginx config; update the test"
        conf = conf.replace(old, new)
    return conf


def site_config(name: str, port: int, cert: Path, key: Path, upstreams: list[int], default_port: int,
                redirect_port: int | None = None) -> str:
    """deploy/nginx/<name>.conf for loopback: listen on `port`, proxy to `upstreams`."""
    conf = (DEPLOY / "nginx" / f"{name}.conf").read_text()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n" for p in upstreams)
    replacements = {
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "    listen [::]:443 ssl;\n": "",
        "/etc/ssl/flamenco/fullchain.pem": str(cert),
        "/etc/ssl/flamenco/privkey.pem": str(key),
    }
    if name == "flamenco-server":
        replacements.update({
            "    server 127.0.0.1:8080 max_fails=1 fail_timeout=10s;\n"
            "    # server 127.0.0.1:8081 max_fails=1 fail_timeout=10s;\n": servers,
            "listen 80;": f"listen 127.0.0.1:{redirect_port};",
            "    listen [::]:80;\n": "",
        })
    else:
        replacements[f"    server 127.0.0.1:{default_port};\n"] = servers
    return render(conf, replacements)


class Nginx:
    """A real nginx on loopback with the given site configs, its files in `directory`."""

    def __init__(self, directory: Path, sites: dict[str, str]):
        exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if not exe:
            missing("the 'nginx' executable (scripts/bootstrap installs it)")
        self.exe, self.dir = exe, directory
        directory.mkdir(parents=True, exist_ok=True)
        includes = ""
        for name, text in sites.items():
            (directory / f"{name}.conf").write_text(text)
            includes += f"    include {directory / name}.conf;\n"
        temp = "".join(f"    {kind}_temp_path {directory / kind};\n"
                       for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (directory / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
            f"error_log {directory / 'error.log'} info;\nevents {{ worker_connections 512; }}\n"
            f"http {{\n    log_format upstreams '$request $status upstream=$upstream_addr';\n"
            f"    access_log {directory / 'access.log'} upstreams;\n{temp}{includes}}}\n")
        self.proc: Proc | None = None

    def _args(self, *extra: str) -> list[str]:
        return [self.exe, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e",
                str(self.dir / "error.log"), *extra]

    def check(self) -> str:
        out = subprocess.run(self._args("-t"), capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stderr

    def start(self, wait_port: int) -> "Nginx":
        self.check()
        self.proc = Proc("nginx", self._args(), self.dir)

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", wait_port)) == 0
        wait_until("nginx", listening, procs=[self.proc])
        return self

    def access_log(self) -> str:
        return (self.dir / "access.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


def config_value(conf: str, directive: str) -> str:
    """The value of the first `directive` in an nginx config (comments skipped)."""
    for line in conf.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(rf"{re.escape(directive)}\s+(.+?);$", line)
        if m:
            return m.group(1)
    raise AssertionError(f"no {directive} in the config")
