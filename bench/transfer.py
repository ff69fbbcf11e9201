"""Upload mode against shared storage: bytes per hop and wall time of a real render job. Prints its figures.

A 200-frame 1920x1080 PNG animation (Cycles, 1 sample: noisy frames of about 3 MB, the
hard case for transfer) is rendered by a farm of a Server, a Manager and two workers,
started as separate processes with the commands of the README, twice, one job after the
other: once on shared storage (the workers write the frames on this machine's disk), once
in upload mode (the .blend uploaded to the Server, the frames sent by each worker to the
Manager and on to the Server, the frames that `move-to-final` needs sent to its worker).
It prints the wall time of each job (submission to 'completed' at the Server) and their
ratio (target <= 1.15), and the bytes that crossed each hop in upload mode, from the
Manager's counters (`GET /api/admin/status` -> files) and the Server's outputs.

    .venv/bin/python bench/transfer.py [--frames 200] [--width 1920 --height 1080] [--samples 1]
        [--chunk 10] [--workers 2] [--multihost] [--keep DIR]

Where each process runs is decided by `place()` alone. By default every role is on
127.0.0.1 with a data directory and a temporary directory of its own, so nothing is shared by
accident (the shared-storage job's folder is the only common path, on purpose). With
`--multihost` (root; the harness of tests/multihost/netns.py) each role is a host of its own
on a real network: the artist's workstation, the Server in the office, the Manager and each
worker on their LANs, every LAN behind one router; the shared-storage folder is then a NAS
that every host mounts (the same directory), and the bench also prints the bytes that
crossed the router between each pair of LANs, as counted on the wire.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "bench"


@dataclass
class Host:
    """Where one role runs: the address its services listen on and others reach it at, its own
    directory (data and TMPDIR), and how a command is started there."""
    name: str
    address: str
    root: Path
    wrap: list[str] = field(default_factory=list)
    netns_host: object | None = None  # tests.multihost.netns.Host, with --multihost

    def command(self, argv: list[str]) -> list[str]:
        return [*self.wrap, *argv]

    def url(self) -> str:
        """Where a service of this host listens: a free port of loopback, or 8080 of its own machine."""
        if self.netns_host is None:
            with socket.socket() as s:
                s.bind((self.address, 0))
                return f"http://{self.address}:{s.getsockname()[1]}"
        return f"http://{self.address}:8080"

    def session(self) -> requests.Session:
        """HTTP from this host."""
        return self.netns_host.session() if self.netns_host is not None else requests.Session()

    def env(self) -> dict[str, str]:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}


# With --multihost: the LAN of each role, and the LANs' address prefixes.
LANS = {"workstation": "10.78.3", "office": "10.78.0", "site": "10.78.1", "render": "10.78.2"}


def lan_of(role: str) -> str:
    return {"artist": "workstation", "server": "office", "manager": "site"}.get(role, "render")


def place(roles: list[str], root: Path, network=None) -> dict[str, Host]:
    """The one decision of where processes run: all on loopback with a directory each, or each
    role a host of its own on `network` (a tests.multihost.netns.Network)."""
    if network is None:
        hosts = {role: Host(role, "127.0.0.1", root / role) for role in roles}
        for host in hosts.values():
            host.root.mkdir(parents=True, exist_ok=True)
        return hosts
    for lan, prefix in LANS.items():
        network.add_segment(lan, prefix)
    hosts = {}
    for n, role in enumerate(roles, start=10):
        nh = network.add_host(role, lan_of(role), f"{LANS[lan_of(role)]}.{n}")
        hosts[role] = Host(role, nh.address, nh.root, nh.argv([]), nh)
    network.start()
    return hosts


def module(name: str) -> list[str]:
    return [sys.executable, "-m", name]


class Farm:
    def __init__(self, hosts: dict[str, Host], workers: int):
        self.hosts, self.workers = hosts, workers
        self.procs: list[subprocess.Popen] = []

    def _run(self, host: Host, argv: list[str]) -> dict:
        out = subprocess.run(host.command(argv + ["--json"]), env=host.env(), capture_output=True, text=True,
                             check=True, cwd=ROOT)
        return json.loads(out.stdout)

    def _spawn(self, host: Host, argv: list[str], extra_env: dict | None = None) -> None:
        log = open(host.root / f"{host.name}.log", "ab")
        self.procs.append(subprocess.Popen(host.command(argv), env={**host.env(), **(extra_env or {})},
                                           stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                           start_new_session=True))
        log.close()

    def _wait(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api.get(url, timeout=1)
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise SystemExit(f"nothing answers at {url}")
                time.sleep(0.2)

    def start(self) -> None:
        s, m = self.hosts["server"], self.hosts["manager"]
        data = str(s.root / "data")
        cli = module("backend.server.cli")
        self._run(s, cli + ["create-project", PROJECT, "--data-dir", data])
        self.token = self._run(s, cli + ["create-user", "artist", "--admin", "--project", PROJECT,
                                         "--data-dir", data])["token"]
        manager = self._run(s, cli + ["create-manager", "site", "--project", PROJECT, "--data-dir", data])
        self.server_url = s.url()
        self._spawn(s, cli + ["serve", "--data-dir", data, "--listen", self.server_url.split("//")[1]])
        self.api = self.hosts["artist"].session()
        self._wait(self.server_url + "/api/version")

        self.manager_url = m.url()
        self.admin_token = "bench-admin-" + os.urandom(16).hex()
        self.registration_secret = "bench-registration-" + os.urandom(16).hex()
        config = m.root / "manager.toml"
        config.write_text("[variables.blender]\nvalues = [{ platforms = [\"linux\"], value = %s }]\n"
                          "[variables.ffmpeg]\nvalues = [{ platforms = [\"linux\"], value = %s }]\n"
                          % (json.dumps(shutil.which("blender") or "blender"),
                             json.dumps(shutil.which("ffmpeg") or "ffmpeg")))
        self._spawn(m, module("backend.manager.cli") + [
            "serve", "--data-dir", str(m.root / "data"), "--listen", self.manager_url.split("//")[1],
            "--server", self.server_url, "--manager-id", manager["id"], "--manager-url", self.manager_url,
            "--config", str(config)],
            {"FLAMENCO_MANAGER_TOKEN": manager["token"], "FLAMENCO_MANAGER_ADMIN_TOKEN": self.admin_token,
             "FLAMENCO_REGISTRATION_SECRET": self.registration_secret})
        self._wait(self.manager_url + "/api/openapi.json")
        for i in range(1, self.workers + 1):
            w = self.hosts[f"worker-{i}"]
            self._spawn(w, module("worker.cli") + ["--manager", self.manager_url, "--data-dir",
                                                  str(w.root / "data"), "--nickname", w.name],
                        {"FLAMENCO_REGISTRATION_SECRET": self.registration_secret})
        self.api.headers["Authorization"] = f"Bearer {self.token}"
        deadline = time.monotonic() + 60
        while sum(w["status"] == "awake" for w in self.get("/api/workers")["workers"]) < self.workers:
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not sign on")
            time.sleep(0.3)

    def get(self, path: str):
        r = self.api.get(self.server_url + path, timeout=30)
        r.raise_for_status()
        return r.json()

    def manager_files(self) -> dict:
        r = self.api.get(self.manager_url + "/api/admin/status", timeout=10,
                         headers={"Authorization": f"Bearer {self.admin_token}"})
        r.raise_for_status()
        return r.json()["files"]

    def run_job(self, body: dict) -> tuple[float, str]:
        """(seconds from submission to 'completed' at the Server, the job's id)."""
        started = time.monotonic()
        r = self.api.post(self.server_url + "/api/jobs", json=body, timeout=60)
        if r.status_code != 201:
            raise SystemExit(f"submission refused: {r.text}")
        job = r.json()
        while True:
            job = self.get(f"/api/jobs/{job['id']}")
            if job["status"] == "completed":
                return time.monotonic() - started, job["id"]
            if job["status"] in ("failed", "canceled"):
                raise SystemExit(f"job {job['name']} {job['status']}: {job.get('status_reason')}")
            time.sleep(0.25)

    def stop(self) -> None:
        for p in reversed(self.procs):  # workers first: they return their tasks
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def upload(farm: Farm, files: dict[str, Path]) -> tuple[dict, int]:
    manifest = {rel: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "size": p.stat().st_size}
                for rel, p in files.items()}
    r = farm.api.post(farm.server_url + "/api/files/check", json={"files": list(manifest.values())}, timeout=30)
    missing, sent = set(r.json()["missing"]), 0
    for rel, entry in manifest.items():
        if entry["sha256"] in missing:
            farm.api.put(f"{farm.server_url}/api/files/{entry['sha256']}", data=files[rel].read_bytes(),
                         timeout=300).raise_for_status()
            missing.discard(entry["sha256"])
            sent += entry["size"]
    return manifest, sent


def mb(n: int) -> str:
    return f"{n / 1e6:10.1f} MB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--multihost", action="store_true",
                    help="each role a host of its own on a network of namespaces (root; tests/multihost/netns.py)")
    ap.add_argument("--keep", type=Path, help="use this directory and keep it (default: a temporary one)")
    args = ap.parse_args()
    blender = shutil.which("blender")
    if not blender:
        raise SystemExit("bench/transfer.py needs Blender on the PATH")
    root = args.keep or Path(tempfile.mkdtemp(prefix="flamenco-transfer-"))
    root.mkdir(parents=True, exist_ok=True)
    network = None
    if args.multihost:
        sys.path.insert(0, str(ROOT))
        from tests.multihost import netns
        if why := netns.unavailable():
            raise SystemExit(f"--multihost: {why}")
        network = netns.Network(root / "network")
    hosts = place(["artist", "server", "manager", *[f"worker-{i}" for i in range(1, args.workers + 1)]], root,
                  network)
    artist = hosts["artist"]
    blend = artist.root / "shot" / "shot.blend"
    subprocess.run(artist.command([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1",
                                   "--python", str(ROOT / "scripts" / "scenes" / "animation.py"), "--", str(blend),
                                   str(args.frames), str(args.width), str(args.height), str(args.samples)]),
                   env=artist.env(), check=True, capture_output=True, timeout=300)
    shared_dir = root / "shared-storage"
    shutil.copytree(blend.parent, shared_dir / "shot")
    farm = Farm(hosts, args.workers)
    try:
        farm.start()
        common = {"frames": f"1-{args.frames}", "chunk_size": args.chunk, "format": "PNG"}
        print(f"transfer bench: {args.frames} frames {args.width}x{args.height} PNG (Cycles, {args.samples} "
              f"sample(s)), chunks of {args.chunk}, {args.workers} workers; " + (
                  "each role a host of its own (network namespaces), LANs workstation/office/site/render "
                  "joined by a router" if network else
                  "one machine, every process on loopback with its own data and temp directory"), flush=True)
        shared, _ = farm.run_job({"name": "shared", "type": "blender-render", "project": PROJECT, "settings": {
            **common, "filepath": str(shared_dir / "shot" / "shot.blend"),
            "render_output": str(shared_dir / "render" / "frames" / "######")}})
        print(f"shared storage: {shared:8.1f} s", flush=True)

        before = farm.manager_files()
        if network:
            network.reset_traffic()
        started = time.monotonic()
        files, sent = upload(farm, {"shot.blend": blend})
        up_job, job_id = farm.run_job({"name": "upload", "type": "blender-render", "project": PROJECT, "files": files,
                               "settings": {**common, "filepath": "shot.blend", "render_output": "frames/######"}})
        upload_wall = time.monotonic() - started
        after = farm.manager_files()
        d = {k: after[k] - before[k] for k in after if k.startswith("bytes_")}
        outputs = farm.get(f"/api/jobs/{job_id}/outputs")["outputs"]
        out_bytes = sum(o["size"] for o in outputs)
        job_files = sum(e["size"] for e in files.values())
        print(f"upload mode:    {upload_wall:8.1f} s (the job alone {up_job:.1f} s; with the upload of its "
              f"files) -> ratio {upload_wall / shared:.3f} (target <= 1.15)")
        print("bytes per hop, upload mode:")
        print(f"  artist  -> Server   {mb(sent)}   the packed .blend")
        print(f"  Server  -> Manager  {mb(d['bytes_from_server'])}   job files, once per Manager")
        print(f"  Manager -> workers  {mb(d['bytes_to_workers'])}   job files once per worker (at most "
              f"{mb(job_files * args.workers).strip()}), the rest frames for move-to-final")
        print(f"  workers -> Manager  {mb(d['bytes_from_workers'])}   every frame once")
        print(f"  Manager -> Server   {mb(d['bytes_to_server'])}   every frame once; the move cost no bytes")
        print(f"  outputs at the Server: {len(outputs)} files, {mb(out_bytes).strip()}")
        if network:
            print("bytes across the router, upload mode (IP packets, headers included):")
            for (src, dst), n in sorted(network.traffic().items()):
                if n > 100_000:
                    print(f"  {src:11} -> {dst:11} {mb(n)}")
    finally:
        farm.stop()
        if network:
            network.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
