"""Dispatch benchmarks of the Manager. Prints its figures.

1. Throughput: one Manager (`flamenco-manager serve`, SQLite) and N simulated workers
   (real HTTP, the real protocol: Basic auth, POST /task, POST /tasks/{id}/update)
   taking and completing zero-work tasks. Target >= 1,000 tasks/s. Claim latency
   (POST /task round trip) p50 / p99. `--runs` runs; the median is the figure.
2. Idle farm: all workers parked in long-polls; a task added to the Manager reaches one of
   them (one waiter woken, one claim).
3. Submit-to-start: a job submitted at the Server reaches an idle long-polling worker
   through a linked Manager. Target p50 <= 200 ms. Needs flamenco-server.

    .venv/bin/python bench/dispatch.py [--workers 200] [--tasks 6000] [--procs 2] [--runs 3]
        [--client selector|threads] [--threads 64] [--ceiling] [--skip-idle] [--skip-s2s]

The simulated workers live in `--procs` client processes (the machine has 2 cores; the
Manager gets the rest): by default all of a process's workers on one thread with
non-blocking sockets (`client_proc_selector`), still a TCP connection per worker and the
bytes a worker sends; `--client threads` gives each a thread and an http.client connection,
which costs the clients about four times the CPU. `--ceiling` also runs the same clients
against Bottle on cheroot answering constants: what the HTTP stack alone allows here.
Everything runs on 127.0.0.1 and stops by itself; data directories are removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


_TO_REMOVE: list[Path] = []


def remove_later(path: Path) -> None:
    """Data directories are removed when the bench ends, not between runs: deleting a
    run's ~20,000 files makes ext4 skip those inodes (recently deleted) when the next run
    creates its task logs, which cost that run up to a quarter of its throughput."""
    _TO_REMOVE.append(path)


def remove_all() -> None:
    for path in _TO_REMOVE:
        shutil.rmtree(path, ignore_errors=True)
    _TO_REMOVE.clear()


ADMIN_TOKEN = os.urandom(24).hex()
"""The benched Managers' admin token: given by environment (never argv), sent as a bearer token."""


def start_manager(data_dir: Path, port: int, *args: str, log=None, env: dict | None = None) -> subprocess.Popen:
    """`flamenco-manager serve` on loopback with ADMIN_TOKEN (and `env`'s secrets) in its environment."""
    return subprocess.Popen([str(BIN / "flamenco-manager"), "serve", "--data-dir", str(data_dir),
                             "--listen", f"127.0.0.1:{port}", *args], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "FLAMENCO_MANAGER_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})})


def admin_session() -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    return s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def thread_switches(pid: int) -> dict[int, tuple[int, int]]:
    """Each of a process's threads' (voluntary, involuntary) context switches so far (Linux
    /proc): a thread going to sleep (a lock, the GIL, a socket) or being pre-empted."""
    out = {}
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            out[int(status.parent.name)] = (int(fields["voluntary_ctxt_switches"]),
                                            int(fields["nonvoluntary_ctxt_switches"]))
        except (OSError, KeyError, ValueError):
            continue  # a thread that ended meanwhile
    return out


def proc_switches(pid: int) -> int:
    """Context switches of all of a process's threads so far; in this VM the kernel time around
    them was a third of the Manager's CPU."""
    return sum(v + n for v, n in thread_switches(pid).values())


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# --- throughput ----------------------------------------------------------------

def client_proc(port: int, creds: list[tuple[str, str]], start_at: float, out_q) -> None:
    """Simulated workers as threads, one http.client connection each (the first harness).

    Each request costs the client a few hundred microseconds of CPU plus thread switches,
    so on a 2-core machine the clients take much of the CPU the Manager needs; kept to
    measure that (`--client threads`)."""
    results = []
    lock = threading.Lock()

    def run(wid: str, secret: str):
        auth = "Basic " + base64.b64encode(f"{wid}:{secret}".encode()).decode()
        headers = {"Authorization": auth, "Content-Type": "application/json", "Content-Length": "0"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        claims, done, errors = [], 0, 0
        while time.time() < start_at:
            time.sleep(0.001)
        while True:
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/task", headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as ex:
                errors += 1
                print(f"claim error after {time.perf_counter() - t0:.1f} s: {ex!r}", file=sys.stderr)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                if errors > 50:
                    break
                continue
            claims.append(time.perf_counter() - t0)
            if resp.status == 204:
                break
            if resp.status == 503:
                time.sleep(0.05)
                continue
            if resp.status != 200:
                errors += 1
                continue
            task_id = json.loads(body)["_id"]
            payload = json.dumps({"task_status": "completed", "activity": "done", "current_command_idx": 0,
                                  "task_progress_percentage": 100, "command_progress_percentage": 100}).encode()
            h = dict(headers, **{"Content-Length": str(len(payload))})
            for _ in range(20):
                try:
                    conn.request("POST", f"/tasks/{task_id}/update", body=payload, headers=h)
                    r = conn.getresponse()
                    r.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    continue
                if r.status == 503:
                    time.sleep(0.05)
                    continue
                if r.status == 204:
                    done += 1
                else:
                    errors += 1
                break
        with lock:
            results.append((claims, done, errors, time.time()))

    threads = [threading.Thread(target=run, args=c) for c in creds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out_q.put({"workers": results, "cpu": time.process_time()})


UPDATE_DONE = json.dumps({"task_status": "completed", "activity": "done", "current_command_idx": 0,
                          "task_progress_percentage": 100, "command_progress_percentage": 100}).encode()


class _SimWorker:
    """One simulated worker of `client_proc_selector`: its socket, its request in flight, its counts."""
    __slots__ = ("wid", "auth", "sock", "buf", "kind", "task_id", "sent", "claims", "done", "errors",
                 "finished", "retry_at")

    def __init__(self, wid: str, secret: str):
        self.wid = wid
        self.auth = "Basic " + base64.b64encode(f"{wid}:{secret}".encode()).decode()
        self.sock = None
        self.buf = b""
        self.kind = ""
        self.task_id = ""
        self.sent = 0.0
        self.claims: list[float] = []
        self.done = self.errors = 0
        self.finished = False
        self.retry_at = 0.0

    def request(self, kind: str, claim_headers: str = "") -> bytes:
        """The bytes of the next request: exactly what a worker sends (Basic auth, JSON);
        `claim_headers` ("Name: value\\r\\n" lines) go with a claim."""
        self.kind = kind
        if kind == "claim":
            return (f"POST /task HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {self.auth}\r\n{claim_headers}"
                    f"Content-Type: application/json\r\nContent-Length: 0\r\n\r\n").encode()
        return (f"POST /tasks/{self.task_id}/update HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {self.auth}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(UPDATE_DONE)}\r\n\r\n").encode() + UPDATE_DONE


def _parse_response(buf: bytes):
    """(status, body, rest, close) of the first complete HTTP/1.1 response in buf, or None if incomplete."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = buf[:head_end].decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.strip().lower() == "close"
        elif name == "transfer-encoding" and "chunked" in value.lower():
            raise RuntimeError("chunked responses are not expected from the Manager")
    end = head_end + 4 + length
    if len(buf) < end:
        return None
    return status, buf[head_end + 4:end], buf[end:], close


def reconnect(sel: selectors.BaseSelector, w, port: int) -> None:
    """(Re)open a simulated worker's keep-alive connection (`w.sock`, `w.buf`), non-blocking and
    registered with `sel` for reading, with `w` as its data."""
    if w.sock is not None:
        try:
            sel.unregister(w.sock)
        except (KeyError, ValueError):
            pass
        w.sock.close()
    w.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    w.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    w.sock.setblocking(False)
    w.buf = b""
    sel.register(w.sock, selectors.EVENT_READ, w)


def client_proc_selector(port: int, creds: list[tuple[str, str]], start_at: float, out_q) -> None:
    """Simulated workers on one thread: non-blocking sockets and a selector (the default harness).

    Still the real protocol over real HTTP/1.1: one keep-alive TCP connection per worker,
    Basic auth on every request, POST /task, the Task document parsed as JSON for its
    `_id`, POST /tasks/{id}/update with a completed TaskUpdate. What it leaves out is a
    thread per worker: the bytes of a request are formatted directly and the response is
    parsed by hand (status line, Content-Length, body), which costs the client tens of
    microseconds per request instead of hundreds."""
    sel = selectors.DefaultSelector()
    workers = [_SimWorker(*c) for c in creds]

    def connect(w: _SimWorker) -> None:
        reconnect(sel, w, port)

    def send(w: _SimWorker, kind: str) -> None:
        data = w.request(kind)
        w.sent = time.perf_counter()
        w.sock.setblocking(True)  # a few hundred bytes: never blocks in practice
        w.sock.sendall(data)
        w.sock.setblocking(False)

    waiting: list[_SimWorker] = []  # told 503: retry later
    reconnects = 0
    for w in workers:
        connect(w)
    while time.time() < start_at:
        time.sleep(0.001)
    for w in workers:
        send(w, "claim")
    active = len(workers)
    while active:
        now = time.perf_counter()
        if waiting:
            for w in [w for w in waiting if w.retry_at <= now]:
                waiting.remove(w)
                send(w, w.kind)
        for key, _ in sel.select(0.01 if waiting else 60):
            w = key.data
            try:
                data = w.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as ex:
                data = b""
                print(f"worker {w.wid}: {ex!r}", file=sys.stderr)
            if not data:  # the Manager closed the connection: send the request again
                w.errors += 1
                if w.errors > 50:
                    w.finished = True
                    active -= 1
                    sel.unregister(w.sock)
                    continue
                connect(w)
                send(w, w.kind)
                continue
            w.buf += data
            parsed = _parse_response(w.buf)
            if parsed is None:
                continue
            status, body, w.buf, close = parsed
            if close:  # the server will not keep this connection: open a new one, as http.client does
                reconnects += 1
                connect(w)
            if w.kind == "claim":
                w.claims.append(time.perf_counter() - w.sent)
                if status == 200:
                    w.task_id = json.loads(body)["_id"]
                    send(w, "update")
                elif status == 204:
                    w.finished = True
                    active -= 1
                    sel.unregister(w.sock)
                    w.sock.close()
                elif status == 503:
                    w.retry_at = time.perf_counter() + 0.05
                    waiting.append(w)
                else:
                    w.errors += 1
                    send(w, "claim")
            else:
                if status == 503:
                    w.retry_at = time.perf_counter() + 0.05
                    waiting.append(w)
                    continue
                if status == 204:
                    w.done += 1
                else:
                    w.errors += 1
                send(w, "claim")
    end = time.time()
    out_q.put({"workers": [(w.claims, w.done, w.errors, end) for w in workers], "cpu": time.process_time(),
               "reconnects": reconnects})


CLIENTS = {"selector": client_proc_selector, "threads": client_proc}


def solo_claims(s: requests.Session, url: str, cred: tuple[str, str], n: int) -> list[float]:
    """Claim latency without contention: one worker, one task at a time."""
    docs = [{"_id": f"solo{i:05d}", "job": "solo", "name": f"s{i}", "status": "queued", "task_type": "sleep",
             "commands": []} for i in range(n)]
    s.post(url + "/api/admin/local-tasks", json={"tasks": docs}, timeout=60).raise_for_status()
    auth = "Basic " + base64.b64encode(f"{cred[0]}:{cred[1]}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
    out = []
    body = json.dumps({"task_status": "completed"}).encode()
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/task", headers={"Authorization": auth, "Content-Length": "0"})
        resp = conn.getresponse()
        data = resp.read()
        out.append(time.perf_counter() - t0)
        conn.request("POST", f"/tasks/{json.loads(data)['_id']}/update", body=body,
                     headers={"Authorization": auth, "Content-Type": "application/json"})
        conn.getresponse().read()
    return out


def bench_throughput(n_workers: int, n_tasks: int, procs: int, threads: int, client: str = "selector") -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-manager-"))
    port = free_port()
    log = open(tmp / "manager.log", "w")
    mgr = start_manager(tmp / "data", port, "--threads", str(threads), log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/")
        s = admin_session()
        creds = []
        for i in range(n_workers):
            secret = os.urandom(16).hex()
            r = s.post(url + "/register-worker", json={"secret": secret, "platform": "linux",
                                                       "supported_task_types": ["sleep"], "nickname": f"b{i}"})
            creds.append((r.json()["_id"], secret))
        for start in range(0, n_tasks, 1000):
            docs = [{"_id": f"t{i:06d}", "job": f"job{i // 500}", "name": f"t{i}", "status": "queued",
                     "task_type": "sleep", "commands": [{"name": "sleep", "settings": {"time_in_seconds": 0}}]}
                    for i in range(start, min(n_tasks, start + 1000))]
            r = s.post(url + "/api/admin/local-tasks", json={"tasks": docs}, timeout=60)
            assert r.status_code == 200, r.text
        start_at = time.time() + 1.0
        cpu_before, switches_before = proc_cpu_seconds(mgr.pid), proc_switches(mgr.pid)
        q = mp.Queue()
        parts = [creds[i::procs] for i in range(procs)]
        ps = [mp.Process(target=CLIENTS[client], args=(port, part, start_at, q)) for part in parts]
        for p in ps:
            p.start()
        outs = [q.get(timeout=600) for _ in ps]
        for p in ps:
            p.join()
        results = [r for out in outs for r in out["workers"]]
        client_cpu = sum(out["cpu"] for out in outs)
        reconnects = sum(out.get("reconnects", 0) for out in outs)
        end = max(r[3] for r in results)
        claims = [c for r in results for c in r[0]]
        done = sum(r[1] for r in results)
        errors = sum(r[2] for r in results)
        cpu = proc_cpu_seconds(mgr.pid) - cpu_before
        switches = proc_switches(mgr.pid) - switches_before
        status = s.get(url + "/api/admin/status").json()
        solo = solo_claims(s, url, creds[0], 500)
        return {"manager_cpu_s": cpu, "manager_switches": switches, "client_cpu_s": client_cpu, "reconnects": reconnects, "solo_p50_ms": pct(solo, 50) * 1000, "solo_p99_ms": pct(solo, 99) * 1000,
                "workers": n_workers, "tasks": n_tasks, "completed": done, "errors": errors,
                "seconds": end - start_at, "tasks_per_s": done / (end - start_at),
                "claim_p50_ms": pct(claims, 50) * 1000, "claim_p99_ms": pct(claims, 99) * 1000,
                "manager_tasks": status["tasks"]["by_status"], "http_threads": threads}
    finally:
        mgr.terminate()
        try:
            mgr.wait(10)
        except subprocess.TimeoutExpired:
            mgr.kill()
        log.close()
        remove_later(tmp)


# --- the HTTP stack alone ---------------------------------------------------------

def _constant_server(port: int, n_tasks: int, threads: int) -> None:
    import itertools

    import bottle

    from shared.serving import ServiceThread
    app = bottle.Bottle()
    counter = itertools.count()

    @app.post("/task")
    def task():
        if next(counter) >= n_tasks:
            return bottle.HTTPResponse(status=204)
        bottle.response.content_type = "application/json"
        return '{"_id": "t"}'

    @app.post("/tasks/<tid>/update")
    def update(tid):
        bottle.request.body.read()
        return bottle.HTTPResponse(status=204)

    ServiceThread(app, "127.0.0.1", port, threads=threads).start()
    time.sleep(3600)


def bench_http_ceiling(n_workers: int, n_tasks: int, procs: int, threads: int, client: str = "selector") -> dict:
    """The same clients against a Bottle app on cheroot that answers with constants:
    what the HTTP stack alone allows on this machine."""
    port = free_port()
    server = mp.Process(target=_constant_server, args=(port, n_tasks, threads), daemon=True)
    server.start()
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        creds = [(f"w{i}", "s") for i in range(n_workers)]
        start_at = time.time() + 0.5
        cpu_before = proc_cpu_seconds(server.pid)
        q = mp.Queue()
        ps = [mp.Process(target=CLIENTS[client], args=(port, creds[i::procs], start_at, q)) for i in range(procs)]
        for p in ps:
            p.start()
        outs = [q.get(timeout=600) for _ in ps]
        cpu = proc_cpu_seconds(server.pid) - cpu_before
        for p in ps:
            p.join()
        results = [r for out in outs for r in out["workers"]]
        end = max(r[3] for r in results)
        done = sum(r[1] for r in results)
        return {"tasks_per_s": done / (end - start_at), "cpu_ms_per_task": cpu / max(1, done) * 1000,
                "client_cpu_ms_per_task": sum(out["cpu"] for out in outs) / max(1, done) * 1000}
    finally:
        server.terminate()


# --- idle farm: many parked long-polls ------------------------------------------

def longpoll_proc(port: int, creds: list[tuple[str, str]], stop_at: float, out_q) -> None:
    got = []
    lock = threading.Lock()

    def run(wid, secret):
        auth = "Basic " + base64.b64encode(f"{wid}:{secret}".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.time() < stop_at:
            try:
                conn.request("POST", "/task", headers={"Authorization": auth, "Content-Length": "0",
                                                       "X-Flamenco-Long-Poll": "5"})
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            if resp.status != 200:
                continue
            task_id = json.loads(body)["_id"]
            with lock:
                got.append((task_id, time.time()))
            payload = json.dumps({"task_status": "completed"}).encode()
            conn.request("POST", f"/tasks/{task_id}/update", body=payload,
                         headers={"Authorization": auth, "Content-Type": "application/json"})
            conn.getresponse().read()

    threads = [threading.Thread(target=run, args=c) for c in creds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out_q.put(got)


def bench_idle_wakeup(n_workers: int, n_tasks: int, procs: int) -> dict:
    """All workers park a long-poll; tasks arrive one at a time; time until one is running."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    port = free_port()
    log = open(tmp / "manager.log", "w")
    threads = n_workers + 24
    mgr = start_manager(tmp / "data", port, "--threads", str(threads), log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/")
        s = admin_session()
        creds = []
        for i in range(n_workers):
            secret = os.urandom(16).hex()
            r = s.post(url + "/register-worker", json={"secret": secret, "platform": "linux",
                                                       "supported_task_types": ["sleep"], "nickname": f"i{i}"})
            creds.append((r.json()["_id"], secret))
        stop_at = time.time() + 3 + n_tasks * 0.2 + 3
        q = mp.Queue()
        ps = [mp.Process(target=longpoll_proc, args=(port, creds[i::procs], stop_at, q)) for i in range(procs)]
        for p in ps:
            p.start()
        time.sleep(3)
        sent = {}
        for i in range(n_tasks):
            doc = {"_id": f"idle{i:04d}", "job": "idle", "name": f"i{i}", "status": "queued",
                   "task_type": "sleep", "commands": []}
            sent[doc["_id"]] = time.time()
            s.post(url + "/api/admin/local-tasks", json={"tasks": [doc]}, timeout=30).raise_for_status()
            time.sleep(0.2)
        got = [g for _ in ps for g in q.get(timeout=120)]
        for p in ps:
            p.join()
        lat = [t - sent[tid] for tid, t in got if tid in sent]
        return {"workers": n_workers, "tasks": n_tasks, "received": len(lat), "threads": threads,
                "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000}
    finally:
        mgr.terminate()
        try:
            mgr.wait(10)
        except subprocess.TimeoutExpired:
            mgr.kill()
        log.close()
        remove_later(tmp)


# --- submit to start -------------------------------------------------------------

def bench_submit_to_start(rounds: int) -> dict | None:
    if not (BIN / "flamenco-server").exists():
        return None
    tmp = Path(tempfile.mkdtemp(prefix="bench-s2s-"))
    sdir = tmp / "server"

    def cli(*args):
        out = subprocess.run([str(BIN / "flamenco-server"), *args, "--data-dir", str(sdir), "--json"],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise SystemExit(f"flamenco-server {args[0]} failed: {out.stderr}")
        return json.loads(out.stdout)

    cli("create-project", "proj")
    user = cli("create-user", "bench", "--project", "proj")
    mgr = cli("create-manager", "mgr", "--project", "proj")
    sport, mport = free_port(), free_port()
    logs = [open(tmp / "server.log", "w"), open(tmp / "manager.log", "w")]
    procs = [subprocess.Popen([str(BIN / "flamenco-server"), "serve", "--data-dir", str(sdir), "--listen",
                               f"127.0.0.1:{sport}"], stdout=logs[0], stderr=subprocess.STDOUT)]
    surl, murl = f"http://127.0.0.1:{sport}", f"http://127.0.0.1:{mport}"
    try:
        wait_http(surl + "/api/version")
        procs.append(start_manager(tmp / "manager", mport, "--server", surl, "--manager-id", mgr["id"],
                                   log=logs[1], env={"FLAMENCO_MANAGER_TOKEN": mgr["token"]}))
        wait_http(murl + "/")
        w = requests.Session()
        secret = os.urandom(16).hex()
        wid = w.post(murl + "/register-worker", json={"secret": secret, "platform": "linux",
                                                      "supported_task_types": ["sleep"], "nickname": "s2s"}).json()["_id"]
        w.auth = (wid, secret)
        u = requests.Session()
        u.headers["Authorization"] = f"Bearer {user['token']}"
        job = {"name": "s2s", "type": "sleep", "project": "proj",
               "settings": {"frames": "1", "chunk_size": 1, "time_in_seconds": 0}}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait for the Manager's task types to reach the Server
            if admin_session().get(murl + "/api/admin/status").json()["upstream"]["healthy"]:
                r = u.post(surl + "/api/jobs", json=job)
                if r.status_code in (200, 201):
                    break
            time.sleep(0.2)
        else:
            raise SystemExit("could not submit a job")
        r = w.post(murl + "/task", headers={"X-Flamenco-Long-Poll": "20"}, timeout=30)
        w.post(murl + f"/tasks/{r.json()['_id']}/update", json={"task_status": "completed"})
        latencies = []
        for _ in range(rounds):
            got = {}

            def poll():
                resp = w.post(murl + "/task", headers={"X-Flamenco-Long-Poll": "20"}, timeout=30)
                got["t"], got["r"] = time.perf_counter(), resp

            t = threading.Thread(target=poll)
            t.start()
            time.sleep(0.5 + (len(latencies) % 5) * 0.073)  # idle, and out of phase with the fetch period
            t0 = time.perf_counter()
            r = u.post(surl + "/api/jobs", json=job)
            assert r.status_code in (200, 201), r.text
            t.join(30)
            assert got["r"].status_code == 200, got["r"].text
            latencies.append(got["t"] - t0)
            w.post(murl + f"/tasks/{got['r'].json()['_id']}/update", json={"task_status": "completed"})
        return {"rounds": rounds, "p50_ms": pct(latencies, 50) * 1000, "p99_ms": pct(latencies, 99) * 1000,
                "max_ms": max(latencies) * 1000}
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
        remove_later(tmp)


def median(values: list[float]) -> float:
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--tasks", type=int, default=6000)
    ap.add_argument("--procs", type=int, default=2, help="client processes holding the simulated workers")
    ap.add_argument("--client", choices=sorted(CLIENTS), default="selector",
                    help="selector: all of a process's workers on one thread (default); threads: a thread each")
    ap.add_argument("--threads", type=int, default=64, help="the Manager's HTTP threads")
    ap.add_argument("--runs", type=int, default=3, help="throughput runs (the median is the figure)")
    ap.add_argument("--rounds", type=int, default=30, help="submit-to-start samples")
    ap.add_argument("--skip-s2s", action="store_true")
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--ceiling", action="store_true", help="also measure the HTTP stack alone")
    args = ap.parse_args()

    print(f"== dispatch throughput: {args.workers} workers ({args.client} client, {args.procs} processes), "
          f"{args.tasks} zero-work tasks, one Manager on SQLite, {args.runs} runs; {os.cpu_count()} CPUs")
    runs = []
    for n in range(args.runs):
        load = loadavg()
        r = bench_throughput(args.workers, args.tasks, args.procs, args.threads, args.client)
        runs.append(r)
        done = max(1, r["completed"])
        print(f"run {n + 1}: {r['tasks_per_s']:.0f} tasks/s, {r['completed']}/{r['tasks']} completed in "
              f"{r['seconds']:.2f} s, {r['errors']} errors, {r['reconnects']} reconnects; claim p50 {r['claim_p50_ms']:.1f} ms, "
              f"p99 {r['claim_p99_ms']:.1f} ms; Manager CPU {r['manager_cpu_s'] / done * 1000:.2f} ms/task "
              f"({r['manager_cpu_s'] / r['seconds'] * 100:.0f}% of a core), clients "
              f"{r['client_cpu_s'] / done * 1000:.2f} ms/task; load before {load}")
        if r["manager_tasks"] != {"completed": r["tasks"]}:
            print(f"  manager task statuses at the end: {r['manager_tasks']}")
    print(f"throughput: median {median([r['tasks_per_s'] for r in runs]):.0f} tasks/s (target >= 1000)")
    print(f"claim latency (POST /task round trip) under that load: median p50 "
          f"{median([r['claim_p50_ms'] for r in runs]):.1f} ms, p99 {median([r['claim_p99_ms'] for r in runs]):.1f} ms")
    print(f"claim latency, one worker alone: p50 {median([r['solo_p50_ms'] for r in runs]):.2f} ms, "
          f"p99 {median([r['solo_p99_ms'] for r in runs]):.2f} ms")
    print(f"Manager CPU: median {median([r['manager_cpu_s'] / max(1, r['completed']) * 1000 for r in runs]):.2f} ms "
          f"per task (2 requests); clients {median([r['client_cpu_s'] / max(1, r['completed']) * 1000 for r in runs]):.2f} ms")
    if args.ceiling:
        cs = [bench_http_ceiling(args.workers, args.tasks, args.procs, args.threads, args.client)
              for _ in range(args.runs)]
        print(f"HTTP stack alone (Bottle on cheroot answering constants, same clients): median "
              f"{median([c['tasks_per_s'] for c in cs]):.0f} tasks/s, server "
              f"{median([c['cpu_ms_per_task'] for c in cs]):.2f} ms CPU per task, clients "
              f"{median([c['client_cpu_ms_per_task'] for c in cs]):.2f} ms")
    if not args.skip_idle:
        print(f"== idle farm: {args.workers} workers parked in long-polls, tasks arrive one at a time")
        i = bench_idle_wakeup(args.workers, 40, args.procs)
        print(f"{i['received']}/{i['tasks']} tasks picked up; task added -> running on a worker: "
              f"p50 {i['p50_ms']:.1f} ms, p99 {i['p99_ms']:.1f} ms (Manager HTTP threads {i['threads']})")
    if not args.skip_s2s:
        print(f"== submit-to-start: job at the Server -> idle long-polling worker, {args.rounds} rounds")
        s = bench_submit_to_start(args.rounds)
        if s is None:
            print("skipped: flamenco-server is not installed")
        else:
            print(f"submit-to-start: p50 {s['p50_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms, "
                  f"max {s['max_ms']:.0f} ms (target p50 <= 200 ms)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        remove_all()
