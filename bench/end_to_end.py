"""The whole path at farm speed: a job POSTed to a real Server, a linked real Manager,
simulated workers speaking the Flamenco 2 protocol, zero-work tasks. Prints each figure
with its target beside it (issue 11).

    .venv/bin/python bench/end_to_end.py [--sizes 10,1000,10000] [--huge] [--runs 5] [--big-runs 3]
        [--workers 200] [--rss-workers 2000] [--idle-seconds 40] [--modes v2,longpoll]

What runs (everything on 127.0.0.1, started and stopped by the bench):

* `flamenco-server serve` and `flamenco-manager serve --server ...` as processes; the
  Manager reaches the Server through a counting proxy (its own process), which counts
  every request the Manager makes and names its route.
* Simulated workers (`sim_workers`): all of a client process's workers on one thread
  with non-blocking sockets, as in bench/dispatch.py; a TCP connection per worker, Basic
  auth, POST /task, POST /tasks/{id}/update completed. Two kinds:
  `v2`: Flamenco Worker 2.x's protocol: no long-poll, a 204 means ask again in 5 s (their
  phases spread evenly over those 5 s at the start; the first wait after work is random
  within them, as real tasks, unlike zero-work ones, end at spread-out times), the next
  task asked for at once after one is done; `longpoll`: our worker: X-Flamenco-Long-Poll:
  25, asked again at once.
* Per job size and kind of worker, runs of: submit a `sleep` job (one zero-second task
  per frame) -> the first task claimed by a worker (p50 over the runs, from the moment
  the POST was sent, and from the moment the Server answered it: the job stored; the
  first includes compiling and storing the job) -> the job `completed` on the Server
  (end-to-end throughput = tasks / that time from the POST). Each run also prints the
  Server's and the Manager's CPU per task and the requests the Manager made.
* The Manager alone (bench/dispatch.py's throughput: tasks put straight into it, same
  number of workers and tasks), in the same run, for the ratio.
* Idle: a Manager with a long-polling worker and a Flamenco 2 worker waiting; requests
  the Manager made to the Server over `--idle-seconds`; then a one-task job reaching the
  long-polling worker; then a completion reported by the worker -> visible on the Server.
* Memory: a Manager holding a 100,000-task job with `--rss-workers` Flamenco 2 workers:
  its peak RSS (VmHWM) until the whole job is held, in a run of its own (that run's first
  claim is printed too: 2,000 workers asking every 5 s keep this Manager about busy).

The 100,000-task rows run with `--huge` (a fresh farm per run; `--huge-runs`; `--workers`
workers, as the other rows).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dispatch import (BIN, _parse_response, _SimWorker, admin_session, bench_throughput,  # noqa: E402
                      free_port, loadavg, median, proc_cpu_seconds, proc_switches, reconnect, remove_all, remove_later,
                      start_manager, wait_http)

V2_RETRY = 5.0
"""A Flamenco 2 worker told 204 asks again after this many seconds."""
LONG_POLL = 25

TARGET_FIRST = {10_000: 0.150, 100_000: 1.0}
TARGET_THROUGHPUT = 500.0
TARGET_RATIO = 0.70
TARGET_IDLE_PER_30S = 1.0
TARGET_SEEN_MS = 50.0
TARGET_VISIBLE_MS = 100.0
TARGET_RSS_MB = 300.0


# --- the counting proxy ------------------------------------------------------------

_REQUEST_LINE = re.compile(rb"(GET|POST|PUT|DELETE|PATCH|HEAD) (/[^ \r\n]*) HTTP/1\.[01]\r\n")


def proxy_proc(listen_port: int, target_port: int, log_path: str) -> None:
    """Forward TCP to the Server; append 'time method route' to log_path for every request."""
    log = open(log_path, "a", buffering=1)
    lock = threading.Lock()

    def pump(src: socket.socket, dst: socket.socket, count: bool) -> None:
        tail = b""
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                if count:  # request lines, also one split between two reads
                    buf, end = tail + data, 0
                    for m in _REQUEST_LINE.finditer(buf):
                        end = m.end()
                        path = m.group(2).decode("latin-1").split("?")[0]
                        route = re.sub(r"^/api/managers/[^/]+", "", path)
                        route = re.sub(r"/tasks/[^/]+/", "/tasks/ID/", route)
                        with lock:
                            log.write(f"{time.time():.6f} {m.group(1).decode()} {route}\n")
                    tail = buf[max(end, len(buf) - 300):]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(64)
    while True:
        client, _ = srv.accept()
        upstream = socket.create_connection(("127.0.0.1", target_port))
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()


def read_requests(log_path: Path, since: float, until: float) -> list[tuple[float, str]]:
    out = []
    try:
        for line in log_path.read_text().splitlines():
            t, method, route = line.split(" ", 2)
            if since <= float(t) < until:
                out.append((float(t), f"{method} {route}"))
    except OSError:
        pass
    return out


def by_route(reqs: list[tuple[float, str]]) -> str:
    counts: dict[str, int] = {}
    for _, r in reqs:
        counts[r] = counts.get(r, 0) + 1
    return ", ".join(f"{r} x{n}" for r, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


# --- simulated workers ---------------------------------------------------------------

class _W(_SimWorker):
    """A simulated worker of `sim_workers`: dispatch.py's, and whether it just worked."""
    __slots__ = ("worked",)

    def __init__(self, wid: str, secret: str):
        super().__init__(wid, secret)
        self.worked = False


def sim_workers(port: int, creds: list[tuple[str, str]], mode: str, ctl, events) -> None:
    """Simulated workers until told to stop. Per job: first claim, last completion, count.

    `ctl` (a Pipe end) takes ("stats", job) -> {first, last, done} and ("stop",) -> totals;
    `events` gets ("first", job, time) the moment a job's first task is claimed."""
    sel = selectors.DefaultSelector()
    workers = [_W(*c) for c in creds]
    jobs: dict[str, list] = {}
    totals = {"claims": 0, "no_work": 0, "done": 0, "errors": 0, "reconnects": 0}
    lp = f"X-Flamenco-Long-Poll: {LONG_POLL}\r\n" if mode == "longpoll" else ""

    def connect(w: _W) -> None:
        reconnect(sel, w, port)

    def send(w: _W, kind: str) -> None:
        data = w.request(kind, lp)
        try:
            w.sock.setblocking(True)
            w.sock.sendall(data)
            w.sock.setblocking(False)
        except OSError:
            totals["reconnects"] += 1
            connect(w)
            w.sock.setblocking(True)
            w.sock.sendall(data)
            w.sock.setblocking(False)

    waiting: list[_W] = []
    now = time.time()
    for i, w in enumerate(workers):
        connect(w)
        w.retry_at = now + (V2_RETRY * i / len(workers) if mode == "v2" else 0.0)
        waiting.append(w)
    sel.register(ctl, selectors.EVENT_READ, None)
    running = True
    while running:
        now = time.time()
        if waiting:
            due = [w for w in waiting if w.retry_at <= now]
            if due:
                waiting = [w for w in waiting if w.retry_at > now]
                for w in due:
                    send(w, w.kind or "claim")
        timeout = max(0.0, min(w.retry_at for w in waiting) - time.time()) if waiting else 1.0
        for key, _ in sel.select(min(timeout, 1.0)):
            w = key.data
            if w is None:
                msg = ctl.recv()
                if msg[0] == "stats":
                    j = jobs.get(msg[1])
                    ctl.send({"first": j[0], "last": j[1], "done": j[2]} if j else None)
                elif msg[0] == "stop":
                    running = False
                continue
            try:
                data = w.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                totals["reconnects"] += 1
                connect(w)
                send(w, w.kind)
                continue
            w.buf += data
            parsed = _parse_response(w.buf)
            if parsed is None:
                continue
            status, body, w.buf, close = parsed
            if close:
                totals["reconnects"] += 1
                connect(w)
            t = time.time()
            if w.kind == "claim":
                if status == 200:
                    doc = json.loads(body)
                    w.task_id = doc["_id"]
                    w.worked = True
                    totals["claims"] += 1
                    job = jobs.get(doc["job"])
                    if job is None:
                        job = jobs[doc["job"]] = [t, t, 0]
                        events.put(("first", doc["job"], t))
                    send(w, "update")
                elif status == 204:
                    totals["no_work"] += 1
                    if mode == "v2":
                        # Real tasks end at times spread over minutes, so the workers of a farm
                        # poll out of step; zero-work tasks all end together. The first wait after
                        # work is random, so the workers stay spread over the 5 s cycle.
                        w.retry_at = t + (V2_RETRY * random.random() if w.worked else V2_RETRY)
                        w.worked = False
                        w.kind = "claim"
                        waiting.append(w)
                    else:
                        send(w, "claim")
                else:
                    if status != 503:
                        totals["errors"] += 1
                    w.retry_at = t + 0.05
                    waiting.append(w)
            else:
                if status == 204:
                    totals["done"] += 1
                    job = jobs.get(w.task_id.rsplit("-", 1)[0])
                    if job is not None:
                        job[1], job[2] = t, job[2] + 1
                    send(w, "claim")
                elif status == 503:
                    w.retry_at = t + 0.05
                    waiting.append(w)
                else:
                    totals["errors"] += 1
                    send(w, "claim")
    totals["cpu"] = time.process_time()
    ctl.send(totals)


class Workers:
    """Simulated workers in `procs` client processes."""

    def __init__(self, port: int, creds: list, mode: str, procs: int = 2):
        self.events = mp.Queue()
        self.ctls, self.procs = [], []
        for i in range(procs):
            mine, theirs = mp.Pipe()
            p = mp.Process(target=sim_workers, args=(port, creds[i::procs], mode, theirs, self.events), daemon=True)
            p.start()
            self.ctls.append(mine)
            self.procs.append(p)

    def first_claim(self, job: str, timeout: float) -> float | None:
        deadline = time.time() + timeout
        while True:
            try:
                kind, j, t = self.events.get(timeout=max(0.01, deadline - time.time()))
            except Exception:  # noqa: BLE001 - queue.Empty
                return None
            if j == job:
                return t

    def stats(self, job: str) -> dict:
        out = {"first": None, "last": None, "done": 0}
        for c in self.ctls:
            c.send(("stats", job))
        for c in self.ctls:
            s = c.recv()
            if s:
                out["first"] = min(x for x in (out["first"], s["first"]) if x is not None)
                out["last"] = max(x for x in (out["last"], s["last"]) if x is not None)
                out["done"] += s["done"]
        return out

    def stop(self) -> dict:
        totals: dict = {}
        for c in self.ctls:
            c.send(("stop",))
        for c in self.ctls:
            try:
                if c.poll(10):
                    for k, v in c.recv().items():
                        totals[k] = totals.get(k, 0) + v
            except (EOFError, OSError):
                pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        return totals


# --- a farm: Server, proxy, Manager ------------------------------------------------------

def proc_status(pid: int, key: str) -> float:
    """A VmRSS / VmHWM line of /proc/PID/status, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Farm:
    def __init__(self, manager_threads: int = 96, server_threads: int | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
        remove_later(self.tmp)
        sdir = self.tmp / "server"

        def cli(*args):
            out = subprocess.run([str(BIN / "flamenco-server"), *args, "--data-dir", str(sdir), "--json"],
                                 capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise SystemExit(f"flamenco-server {args[0]} failed: {out.stderr}")
            return json.loads(out.stdout)

        cli("create-project", "proj")
        self.user = cli("create-user", "bench", "--project", "proj")
        mgr = cli("create-manager", "mgr", "--project", "proj")
        sport, pport, mport = free_port(), free_port(), free_port()
        self.logs = [open(self.tmp / "server.log", "w"), open(self.tmp / "manager.log", "w")]
        self.requests_log = self.tmp / "requests.log"
        sargs = [str(BIN / "flamenco-server"), "serve", "--data-dir", str(sdir), "--listen", f"127.0.0.1:{sport}"]
        if server_threads:
            sargs += ["--threads", str(server_threads)]
        self.server = subprocess.Popen(sargs, stdout=self.logs[0], stderr=subprocess.STDOUT)
        self.surl, self.murl = f"http://127.0.0.1:{sport}", f"http://127.0.0.1:{mport}"
        self.manager = None
        self.proxy = None
        try:
            wait_http(self.surl + "/api/version", 90)
            self.proxy = mp.Process(target=proxy_proc, args=(pport, sport, str(self.requests_log)), daemon=True)
            self.proxy.start()
            self.manager = start_manager(self.tmp / "manager", mport, "--server", f"http://127.0.0.1:{pport}",
                                         "--manager-id", mgr["id"], "--threads", str(manager_threads),
                                         log=self.logs[1], env={"FLAMENCO_MANAGER_TOKEN": mgr["token"]})
            wait_http(self.murl + "/", 90)
        except BaseException:
            self.stop()
            for name in ("server.log", "manager.log"):
                tail = (self.tmp / name).read_text(errors="replace").splitlines()[-5:]
                print(f"  {name}: " + "\n    ".join(tail), file=sys.stderr)
            raise
        self.user_s = requests.Session()
        self.user_s.headers["Authorization"] = f"Bearer {self.user['token']}"

    def register(self, n: int) -> list[tuple[str, str]]:
        s = requests.Session()
        creds = []
        for i in range(n):
            secret = os.urandom(16).hex()
            r = s.post(self.murl + "/register-worker", json={"secret": secret, "platform": "linux",
                                                            "supported_task_types": ["sleep"], "nickname": f"w{i}"})
            r.raise_for_status()
            creds.append((r.json()["_id"], secret))
        return creds

    def wait_linked(self, timeout: float = 30) -> None:
        """Until the Server knows the Manager's task types (a job can be submitted)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            managers = self.user_s.get(self.surl + "/api/managers").json().get("managers", [])
            if any("sleep" in (m.get("worker_task_types") or []) for m in managers):
                return
            time.sleep(0.1)
        raise SystemExit("the Manager's task types did not reach the Server")

    def submit(self, n_tasks: int, name: str = "e2e") -> tuple[str, float, float]:
        """(job id, time the POST was sent, time the Server answered it: the job is stored)."""
        job = {"name": name, "type": "sleep", "project": "proj",
               "settings": {"frames": f"1-{n_tasks}", "chunk_size": 1, "time_in_seconds": 0}}
        t0 = time.time()
        r = self.user_s.post(self.surl + "/api/jobs", json=job, timeout=600)
        if r.status_code not in (200, 201):
            raise SystemExit(f"submit failed: {r.status_code} {r.text[:300]}")
        return r.json()["id"], t0, time.time()

    def job_status(self, job_id: str) -> str:
        return self.user_s.get(f"{self.surl}/api/jobs/{job_id}", timeout=30).json()["status"]

    def wait_completed(self, job_id: str, timeout: float, period: float = 0.05) -> float | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.job_status(job_id) == "completed":
                return time.time()
            time.sleep(period)
        return None

    def manager_status(self) -> dict:
        return admin_session().get(self.murl + "/api/admin/status", timeout=30).json()

    def stop(self) -> None:
        for p in (self.manager, self.server):
            if p is None:
                continue
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.proxy is not None:
            self.proxy.kill()
        for f in self.logs:
            f.close()


def start_farm(**kw) -> Farm:
    """A farm; started again on other ports if a service did not come up (a port taken meanwhile
    by another process on this machine)."""
    for attempt in range(3):
        try:
            return Farm(**kw)
        except SystemExit as ex:
            print(f"  farm did not start ({ex}); {'trying again' if attempt < 2 else 'giving up'}", file=sys.stderr)
    raise SystemExit("no farm")


# --- the measurements ---------------------------------------------------------------------

class Profiles:
    """py-spy flame graphs of the Server and the Manager while one run goes (--profile DIR)."""

    def __init__(self, directory: str | None, fmt: str = "flamegraph", gil: bool = False):
        self.dir = Path(directory) if directory else None
        self.fmt = fmt
        self.gil = gil
        self.procs: list[subprocess.Popen] = []

    def start(self, farm: Farm, label: str) -> None:
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        spy = BIN / "py-spy"
        for name, proc in (("server", farm.server), ("manager", farm.manager)):
            out = self.dir / f"{label}-{name}.{'svg' if self.fmt == 'flamegraph' else 'txt'}"
            self.procs.append(subprocess.Popen([str(spy), "record", "--nonblocking", "--rate", "200", "-o", str(out),
                                                "--format", self.fmt, *(["--gil"] if self.gil else []),
                                                "--pid", str(proc.pid)], stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # py-spy attached

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(2)  # SIGINT: py-spy writes the flame graph
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()


def run_sizes(mode: str, sizes: list[int], runs: dict[int, int], n_workers: int, timeout: float,
              profiles: Profiles) -> dict:
    """Per size: first-claim latencies and end-to-end throughputs."""
    threads = n_workers + 32 if mode == "longpoll" else 96
    farm = start_farm(manager_threads=threads)
    out: dict[int, dict] = {}
    workers = None
    try:
        creds = farm.register(n_workers)
        workers = Workers(int(farm.murl.rsplit(":", 1)[1]), creds, mode)
        farm.wait_linked()
        warm, _, _ = farm.submit(10, "warm-up")
        farm.wait_completed(warm, 60)
        for size in sizes:
            firsts, after_stored, rates, worker_rates, reqs = [], [], [], [], []
            for n in range(runs[size]):
                time.sleep(1.0 + random.random())  # idle between runs, out of phase with any period
                load = loadavg()
                if n == 0:
                    profiles.start(farm, f"{mode}-{size}")
                cpu0 = (proc_cpu_seconds(farm.server.pid), proc_cpu_seconds(farm.manager.pid))
                switches0 = proc_switches(farm.manager.pid)
                job, t0, t_stored = farm.submit(size)
                t_first = workers.first_claim(job, timeout)
                if t_first is None:
                    print(f"  {mode} {size}: no task claimed within {timeout:.0f} s")
                    firsts.append(float("inf"))
                    break
                done_at = farm.wait_completed(job, timeout, 0.02 if size <= 1000 else 0.1)
                if n == 0:
                    profiles.stop()
                st = workers.stats(job)
                firsts.append(t_first - t0)
                after_stored.append(t_first - t_stored)
                if done_at is None:
                    print(f"  {mode} {size}: not completed within {timeout:.0f} s ({st['done']} tasks done)")
                    break
                rates.append(size / (done_at - t0))
                worker_rates.append(st["done"] / max(1e-6, st["last"] - st["first"]))
                run_reqs = read_requests(farm.requests_log, t0, done_at)
                reqs.append(len(run_reqs))
                cpu = [(proc_cpu_seconds(p.pid) - c) * 1000 / size for p, c in zip((farm.server, farm.manager), cpu0)]
                switches = (proc_switches(farm.manager.pid) - switches0) / size
                print(f"  {mode:8} {size:>7} tasks run {n + 1}: first claimed {(t_first - t0) * 1000:7.1f} ms "
                      f"(the submit answered after {(t_stored - t0) * 1000:.0f} ms), "
                      f"completed on the Server after {done_at - t0:7.2f} s ({rates[-1]:6.0f} tasks/s; workers "
                      f"{worker_rates[-1]:.0f} tasks/s), {reqs[-1]} requests to the Server; CPU per task: Server "
                      f"{cpu[0]:.2f} ms, Manager {cpu[1]:.2f} ms ({switches:.1f} thread switches); load {load}\n{'':27}requests: {by_route(run_reqs)}",
                      flush=True)
            out[size] = {"first": firsts, "stored": after_stored, "rate": rates, "worker_rate": worker_rates}
    finally:
        profiles.stop()
        if workers is not None:
            workers.stop()
        farm.stop()
    return out


def run_huge(mode: str, n_workers: int, size: int, timeout: float, measure_rss: bool,
             profiles: Profiles) -> dict:
    """A fresh farm, one job of `size` tasks: first claim, and the Manager's RSS until it holds them all."""
    threads = n_workers + 32 if mode == "longpoll" else 96
    farm = start_farm(manager_threads=threads)
    workers = None
    try:
        creds = farm.register(n_workers)
        workers = Workers(int(farm.murl.rsplit(":", 1)[1]), creds, mode)
        farm.wait_linked()
        time.sleep(V2_RETRY + 1)  # every worker asked once and waits
        rss_idle = proc_status(farm.manager.pid, "VmRSS")
        profiles.start(farm, f"{mode}-{size}")
        job, t0, t_stored = farm.submit(size)
        t_first = workers.first_claim(job, timeout)
        res = {"first": (t_first - t0) if t_first else float("inf"), "submit_s": t_stored - t0,
               "stored": (t_first - t_stored) if t_first else float("inf"), "rss_idle": rss_idle}
        if measure_rss:
            deadline = time.time() + timeout
            held = 0
            while time.time() < deadline:
                st = farm.manager_status()["tasks"]
                held = st["total"]
                if held >= size:
                    break
                time.sleep(0.5)
            res["held_after_s"] = time.time() - t0
            res["held"] = held
            time.sleep(2)
            res["rss"] = proc_status(farm.manager.pid, "VmRSS")
            res["rss_peak"] = proc_status(farm.manager.pid, "VmHWM")
        return res
    finally:
        profiles.stop()
        if workers is not None:
            workers.stop()
        farm.stop()


def _worker_session(murl: str, creds: tuple[str, str]) -> requests.Session:
    s = requests.Session()
    s.auth = creds
    return s


def run_idle(idle_seconds: float, rounds: int) -> dict:
    """A long-polling worker and a Flamenco 2 worker waiting: the Manager's requests to the
    Server; then one-task jobs reaching the long-polling worker, and their completions
    reaching the Server."""
    farm = start_farm()
    stop = threading.Event()
    try:
        lp_creds, v2_creds = farm.register(2)
        lp, v2 = _worker_session(farm.murl, lp_creds), _worker_session(farm.murl, v2_creds)
        farm.wait_linked()
        warm, _, _ = farm.submit(1, "warm-up")
        tid = lp.post(farm.murl + "/task", headers={"X-Flamenco-Long-Poll": "20"}, timeout=30).json()["_id"]
        lp.post(f"{farm.murl}/tasks/{tid}/update", json={"task_status": "completed"}, timeout=30)
        farm.wait_completed(warm, 30)

        def v2_loop():
            while not stop.is_set():
                r = v2.post(farm.murl + "/task", timeout=30)
                if r.status_code == 200:  # not expected: the long-polling worker takes the jobs
                    v2.post(f"{farm.murl}/tasks/{r.json()['_id']}/update", json={"task_status": "completed"})
                stop.wait(V2_RETRY)

        got: list = []
        wanted = threading.Event()

        def lp_loop():
            while not stop.is_set():
                r = lp.post(farm.murl + "/task", headers={"X-Flamenco-Long-Poll": str(LONG_POLL)}, timeout=60)
                if r.status_code == 200:
                    got.append((time.time(), r.json()))
                    wanted.set()

        threads = [threading.Thread(target=v2_loop, daemon=True), threading.Thread(target=lp_loop, daemon=True)]
        for t in threads:
            t.start()
        time.sleep(3)  # both asked; whatever the warm-up left settles
        t_idle = time.time()
        time.sleep(idle_seconds)
        reqs = read_requests(farm.requests_log, t_idle, time.time())
        seen, visible = [], []
        for _ in range(rounds):
            time.sleep(1.0 + random.random())
            wanted.clear()
            job, t0, _ = farm.submit(1, "idle")
            if not wanted.wait(30):
                seen.append(float("inf"))
                continue
            t_claim, doc = got[-1]
            seen.append(t_claim - t0)
            time.sleep(0.5 + random.random() * 0.3)  # the claim's 'active' went up; the link is idle
            t1 = time.time()
            lp.post(f"{farm.murl}/tasks/{doc['_id']}/update", json={"task_status": "completed"}, timeout=30)
            while farm.user_s.get(f"{farm.surl}/api/tasks/{doc['_id']}", timeout=30).json()["status"] != "completed":
                if time.time() - t1 > 30:
                    break
                time.sleep(0.002)
            visible.append(time.time() - t1)
        return {"idle_requests": len(reqs), "idle_seconds": idle_seconds, "idle_routes": by_route(reqs),
                "seen": seen, "visible": visible}
    finally:
        stop.set()
        farm.stop()


# --- printing -------------------------------------------------------------------------------

def fmt_s(seconds: float) -> str:
    if seconds == float("inf"):
        return "timed out"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,1000,10000", help="job sizes run to completion (comma-separated)")
    ap.add_argument("--huge", action="store_true", help="also the 100,000-task rows and the Manager's RSS")
    ap.add_argument("--huge-size", type=int, default=100_000)
    ap.add_argument("--huge-runs", type=int, default=1, help="fresh farms per 100,000-task row")
    ap.add_argument("--runs", type=int, default=5, help="runs per size below 10,000")
    ap.add_argument("--big-runs", type=int, default=3, help="runs of the sizes from 10,000")
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--rss-workers", type=int, default=2000)
    ap.add_argument("--modes", default="v2,longpoll")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=10, help="idle rounds: new job seen, completion visible")
    ap.add_argument("--timeout", type=float, default=600.0, help="per job, seconds")
    ap.add_argument("--skip-alone", action="store_true")
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--profile", metavar="DIR", help="py-spy flame graphs of the Server and the Manager during the "
                                                     "first run of each size (py-spy in the venv, as root)")
    ap.add_argument("--profile-format", default="flamegraph", choices=("flamegraph", "raw", "speedscope"),
                    help="py-spy's output: flame graph (.svg) or collapsed stacks (raw, .txt)")
    ap.add_argument("--profile-gil", action="store_true",
                    help="sample only the thread holding the GIL: where the CPU goes, not the waits")
    args = ap.parse_args()
    profiles = Profiles(args.profile, args.profile_format, args.profile_gil)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    runs = {s: (args.big_runs if s >= 10_000 else args.runs) for s in sizes}

    print(f"== end to end: Server + Manager + {args.workers} simulated workers, zero-work tasks; "
          f"{os.cpu_count()} CPUs, load {loadavg()}", flush=True)
    results = {m: run_sizes(m, sizes, runs, args.workers, args.timeout, profiles) for m in modes}
    alone = None
    if not args.skip_alone:
        n = max(sizes)
        alone = bench_throughput(args.workers, n, 2, 64, "selector")
        print(f"  Manager alone: {alone['tasks_per_s']:.0f} tasks/s ({alone['completed']}/{n} tasks, "
              f"{args.workers} workers); Manager CPU per task {alone['manager_cpu_s'] / max(1, alone['completed']) * 1000:.2f} ms "
              f"({alone['manager_switches'] / max(1, alone['completed']):.1f} thread switches); "
              f"load {loadavg()}", flush=True)
    huge = {}
    rss_run = None
    if args.huge:
        for m in modes:
            rs = []
            for n in range(args.huge_runs):
                try:
                    r = run_huge(m, args.workers, args.huge_size, args.timeout, measure_rss=False,
                                 profiles=profiles if n == 0 else Profiles(None))
                except SystemExit as ex:
                    print(f"  {m:8} {args.huge_size:>7} tasks run {n + 1}: failed: {ex}", flush=True)
                    continue
                print(f"  {m:8} {args.huge_size:>7} tasks run {n + 1}: first claimed {fmt_s(r['first'])} "
                      f"(submit answered after {r['submit_s']:.2f} s); load {loadavg()}", flush=True)
                rs.append(r)
            huge[m] = rs
        # Memory with many more Flamenco 2 workers, in a run of its own: 2,000 of them ask 400
        # times a second, which is about what the Manager answers on these two shared cores, so
        # its answers wait in line (the first claim of this run is printed, not held to a target).
        try:
            rss_run = run_huge("v2", args.rss_workers, args.huge_size, args.timeout, measure_rss=True,
                               profiles=Profiles(None))
            r = rss_run
            print(f"  v2 x {args.rss_workers} {args.huge_size:>7} tasks: first claimed {fmt_s(r['first'])} "
                  f"(submit answered after {r['submit_s']:.2f} s); all held after {r['held_after_s']:.1f} s "
                  f"({r['held']}), Manager RSS {r['rss']:.0f} MB, peak {r['rss_peak']:.0f} MB "
                  f"(idle {r['rss_idle']:.0f} MB); load {loadavg()}", flush=True)
        except SystemExit as ex:
            print(f"  v2 x {args.rss_workers}: failed: {ex}", flush=True)
    idle = None
    if not args.skip_idle:
        idle = run_idle(args.idle_seconds, args.rounds)

    print()
    print("| figure | measured | target | |")
    print("|---|---|---|---|")
    for m in modes:
        for size in sizes:
            r = results[m].get(size)
            if not r or not r["first"]:
                continue
            first = median(r["first"])
            target = TARGET_FIRST.get(size)
            print(f"| {m} workers, {size:,} tasks: submit sent -> first claimed (p50 of {len(r['first'])}) | "
                  f"{fmt_s(first)} | {f'<= {target * 1000:.0f} ms' if target else '-'} | "
                  f"{verdict(first <= target) if target else ''} |")
            if r["stored"]:
                stored = median(r["stored"])
                print(f"| {m} workers, {size:,} tasks: job stored (submit answered) -> first claimed | "
                      f"{fmt_s(stored)} | {f'<= {target * 1000:.0f} ms' if target else '-'} | "
                      f"{verdict(stored <= target) if target else ''} |")
        for size in sizes:
            r = results[m].get(size)
            if not r or not r["rate"]:
                continue
            rate = median(r["rate"])
            big = size >= 10_000
            print(f"| {m} workers, {size:,} tasks: end-to-end throughput, {args.workers} workers (median) | "
                  f"{rate:.0f} tasks/s | {f'>= {TARGET_THROUGHPUT:.0f}' if big else '-'} | "
                  f"{verdict(rate >= TARGET_THROUGHPUT) if big else ''} |")
    if alone:
        print(f"| Manager alone, {max(sizes):,} tasks, {args.workers} workers | {alone['tasks_per_s']:.0f} tasks/s | - | |")
        for m in modes:
            r = results[m].get(max(sizes))
            if r and r["rate"]:
                ratio = median(r["rate"]) / alone["tasks_per_s"]
                print(f"| {m}: end-to-end / Manager alone | {ratio * 100:.0f} % | >= {TARGET_RATIO * 100:.0f} % | "
                      f"{verdict(ratio >= TARGET_RATIO)} |")
    for m, rs in huge.items():
        if not rs:
            continue
        first = median([r["first"] for r in rs])
        print(f"| {m} workers, {args.huge_size:,} tasks, {args.workers} workers: submit sent -> first claimed "
              f"(p50 of {len(rs)}) | {fmt_s(first)} | <= 1 s | {verdict(first <= 1.0)} |")
        stored = median([r["stored"] for r in rs])
        print(f"| {m} workers, {args.huge_size:,} tasks: job stored (submit answered after "
              f"{fmt_s(median([r['submit_s'] for r in rs]))}) -> first claimed | {fmt_s(stored)} | <= 1 s | "
              f"{verdict(stored <= 1.0)} |")
    if rss_run:
        r = rss_run
        print(f"| v2 workers, {args.huge_size:,} tasks, {args.rss_workers} workers: submit sent -> first claimed "
              f"(one run; stored -> claimed {fmt_s(r['stored'])}) | {fmt_s(r['first'])} | - | |")
        peak = max(r["rss"], r["rss_peak"])
        print(f"| Manager peak RSS, {args.huge_size:,}-task job held, {args.rss_workers} workers | "
              f"{peak:.0f} MB | <= {TARGET_RSS_MB:.0f} MB | {verdict(peak <= TARGET_RSS_MB)} |")
    if idle:
        per30 = idle["idle_requests"] / idle["idle_seconds"] * 30
        print(f"| idle Manager: requests to the Server per 30 s ({idle['idle_requests']} in "
              f"{idle['idle_seconds']:.0f} s) | {per30:.1f} | <= {TARGET_IDLE_PER_30S:.0f} | "
              f"{verdict(per30 <= TARGET_IDLE_PER_30S)} |")
        seen = median(idle["seen"]) * 1000
        print(f"| idle farm: one-task job submitted -> claimed by a long-polling worker (p50 of {len(idle['seen'])}) | "
              f"{seen:.0f} ms | <= {TARGET_SEEN_MS:.0f} ms | {verdict(seen <= TARGET_SEEN_MS)} |")
        vis = median(idle["visible"]) * 1000 if idle["visible"] else float("inf")
        print(f"| idle link: worker reports completed -> visible on the Server (p50 of {len(idle['visible'])}) | "
              f"{vis:.0f} ms | <= {TARGET_VISIBLE_MS:.0f} ms | {verdict(vis <= TARGET_VISIBLE_MS)} |")
        print(f"\nidle requests: {idle['idle_routes']}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        remove_all()
