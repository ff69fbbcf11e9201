"""Several clients at once: submissions, depsgraph polls and update batches in parallel."""

from __future__ import annotations

import threading

from shared.protocol import IF_UPDATED_SINCE, LAST_UPDATED
from tests.integration.server.server_it_helpers import sleep_job


def test_parallel_submissions_and_manager_sync(studio):
    errors: list[str] = []
    submitted: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()
    base = f"/api/managers/{studio.manager_id}"

    def artist(n: int) -> None:
        for i in range(6):
            r = studio.ann.post("/api/jobs", json=sleep_job(name=f"a{n}-{i}", settings={"frames": "1-3"}))
            if r.status_code != 201:
                errors.append(f"submit: {r.status_code} {r.text}")
            else:
                submitted.append(r.json()["id"])

    def manager() -> None:
        stamp = None
        n = 0
        while True:
            done = stop.is_set()
            headers = {IF_UPDATED_SINCE: stamp} if stamp else {}
            r = studio.manager.get(f"{base}/depsgraph", headers=headers)
            if r.status_code not in (200, 304):
                errors.append(f"depsgraph: {r.status_code} {r.text}")
                return
            stamp = r.headers[LAST_UPDATED]
            if r.status_code == 200:
                updates = []
                for t in r.json()["depsgraph"]:
                    if t["status"] == "claimed-by-manager" and t["_id"] not in seen:
                        seen.add(t["_id"])
                        n += 1
                        updates.append({"_id": f"u{n}", "task_id": t["_id"], "received_on_manager": "t",
                                        "task_status": "completed"})
                b = studio.manager.post(f"{base}/task-update-batch", json={"updates": updates})
                if b.status_code != 200:
                    errors.append(f"batch: {b.status_code} {b.text}")
            if done:
                return

    threads = [threading.Thread(target=artist, args=(n,)) for n in range(3)]
    poller = threading.Thread(target=manager)
    poller.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stop.set()
    poller.join(timeout=60)
    assert not errors, errors[:3]
    assert len(submitted) == 18
    assert len(seen) == 18 * 3, "every task reached the manager through the incremental depsgraph"
    jobs = studio.ann.get("/api/jobs?limit=100").json()["jobs"]
    assert {j["status"] for j in jobs} == {"completed"}
