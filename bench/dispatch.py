"""Dispatch benchmarks of the Manager. Prints its figures.

1. Throughput: one Manager (`flamenco-manager serve`, SQLite) and N simulated workers
   (real HTTP, the real protocol: Basic auth, POST /task, POST /tasks/{id}/update)
   taking and completing zero-work tasks. Target >= 1,000 tasks/s. Claim latency
   (POST /task round trip) p50 / p99.
2. Idle farm: all workers parked in long-polls; a task added to the Manager reaches one of
   them (wake-up of many waiting threads, one claim).
3. Submit-to-start: a job submitted at the Server reaches an idle long-polling worker
   through a linked Manager. Target p50 <= 200 ms. Needs flamenco-server.

    .venv/bin/python bench/dispatch.py [--workers 200] [--tasks 6000] [--procs 2] [--rounds 30]

Workers are threads in `--procs` client processes (the machine has 2 cores; the
Manager gets the rest). Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
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


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# --- throughput ----------------------------------------------------------------

def client_proc(port: int, creds: list[tuple[str, str]], start_at: float, out_q) -> None:
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
    out_q.put(results)


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


def bench_throughput(n_workers: int, n_tasks: int, procs: int, threads: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-manager-"))
    port = free_port()
    log = open(tmp / "manager.log", "w")
    mgr = subprocess.Popen([str(BIN / "flamenco-manager"), "serve", "--data-dir", str(tmp / "data"),
                            "--listen", f"127.0.0.1:{port}", "--threads", str(threads)],
                           stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/")
        s = requests.Session()
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
        cpu_before = proc_cpu_seconds(mgr.pid)
        q = mp.Queue()
        parts = [creds[i::procs] for i in range(procs)]
        ps = [mp.Process(target=client_proc, args=(port, part, start_at, q)) for part in parts]
        for p in ps:
            p.start()
        results = [r for _ in ps for r in q.get(timeout=600)]
        for p in ps:
            p.join()
        end = max(r[3] for r in results)
        claims = [c for r in results for c in r[0]]
        done = sum(r[1] for r in results)
        errors = sum(r[2] for r in results)
        cpu = proc_cpu_seconds(mgr.pid) - cpu_before
        status = s.get(url + "/api/admin/status").json()
        solo = solo_claims(s, url, creds[0], 500)
        return {"manager_cpu_s": cpu, "solo_p50_ms": pct(solo, 50) * 1000, "solo_p99_ms": pct(solo, 99) * 1000,
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
        shutil.rmtree(tmp, ignore_errors=True)


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


def bench_http_ceiling(n_workers: int, n_tasks: int, procs: int, threads: int) -> dict:
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
        ps = [mp.Process(target=client_proc, args=(port, creds[i::procs], start_at, q)) for i in range(procs)]
        for p in ps:
            p.start()
        results = [r for _ in ps for r in q.get(timeout=600)]
        for p in ps:
            p.join()
        end = max(r[3] for r in results)
        done = sum(r[1] for r in results)
        return {"tasks_per_s": done / (end - start_at),
                "cpu_ms_per_task": (proc_cpu_seconds(server.pid) - cpu_before) / max(1, done) * 1000}
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
    mgr = subprocess.Popen([str(BIN / "flamenco-manager"), "serve", "--data-dir", str(tmp / "data"),
                            "--listen", f"127.0.0.1:{port}", "--threads", str(threads)],
                           stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/")
        s = requests.Session()
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
        shutil.rmtree(tmp, ignore_errors=True)


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
        procs.append(subprocess.Popen(
            [str(BIN / "flamenco-manager"), "serve", "--data-dir", str(tmp / "manager"), "--listen",
             f"127.0.0.1:{mport}", "--server", surl, "--manager-id", mgr["id"], "--token", mgr["token"]],
            stdout=logs[1], stderr=subprocess.STDOUT))
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
            if requests.get(murl + "/api/admin/status").json()["upstream"]["healthy"]:
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
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--tasks", type=int, default=6000)
    ap.add_argument("--procs", type=int, default=2, help="client processes holding the worker threads")
    ap.add_argument("--threads", type=int, default=64, help="the Manager's HTTP threads")
    ap.add_argument("--rounds", type=int, default=30, help="submit-to-start samples")
    ap.add_argument("--skip-s2s", action="store_true")
    ap.add_argument("--ceiling", action="store_true", help="also measure the HTTP stack alone")
    args = ap.parse_args()

    print(f"== dispatch throughput: {args.workers} workers, {args.tasks} zero-work tasks, one Manager on SQLite")
    r = bench_throughput(args.workers, args.tasks, args.procs, args.threads)
    print(f"completed {r['completed']}/{r['tasks']} tasks in {r['seconds']:.2f} s "
          f"({r['errors']} errors, Manager HTTP threads {r['http_threads']})")
    print(f"throughput: {r['tasks_per_s']:.0f} tasks/s (target >= 1000)")
    print(f"claim latency (POST /task round trip) under that load: p50 {r['claim_p50_ms']:.1f} ms, "
          f"p99 {r['claim_p99_ms']:.1f} ms (mostly queueing: 200 workers on one busy core)")
    print(f"claim latency, one worker alone: p50 {r['solo_p50_ms']:.2f} ms, p99 {r['solo_p99_ms']:.2f} ms")
    print(f"manager task statuses at the end: {r['manager_tasks']}")
    print(f"Manager CPU: {r['manager_cpu_s']:.1f} s for {r['completed']} tasks = "
          f"{r['manager_cpu_s'] / max(1, r['completed']) * 1000:.2f} ms per task (2 requests), "
          f"{r['manager_cpu_s'] / r['seconds'] * 100:.0f}% of a core")
    if args.ceiling:
        c = bench_http_ceiling(args.workers, args.tasks, args.procs, args.threads)
        print(f"HTTP stack alone (Bottle on cheroot answering constants, same clients): "
              f"{c['tasks_per_s']:.0f} tasks/s, {c['cpu_ms_per_task']:.2f} ms CPU per task")
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
    sys.exit(main())
