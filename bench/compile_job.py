"""Compile and store a 100,000-frame blender-render job (chunk 1) on SQLite; prints the time.

Target: <= 2 s for submit_job (validate, compile, insert 100,001 tasks, flip to
queued), on a fresh SQLite database in a temporary directory: until the last task is
stored (the submission answers with the first 1,000 stored; the storer, here without
its waits for a first task to start and between batches, stores the rest).

    .venv/bin/python bench/compile_job.py [--frames 100000] [--database URL] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.db import open_database  # noqa: E402
from backend.server import admin, manager_sync  # noqa: E402
from backend.server.app import make_context  # noqa: E402
from backend.server.config import ServerConfig  # noqa: E402
from backend.server.jobs import submit_job  # noqa: E402
from backend.server.models import Task  # noqa: E402
from backend.server.task_storing import TaskStorer  # noqa: E402
from shared.documents import UpstreamNotification  # noqa: E402

TARGET_S = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", help="a database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="flamenco-bench-") as tmp:
        url = args.database or f"sqlite:///{tmp}/server.sqlite"
        db = open_database(url)
        ctx = make_context(ServerConfig(data_dir=Path(tmp)), db)
        ctx.storer = TaskStorer(ctx, first_wait=0.0, duty=1.0)
        with db.connection_context():
            admin.create_project(db, "bench")
            user, _ = admin.create_user(db, "bench", "admin")
            manager, _ = admin.create_manager(db, "bench-manager")
            admin.link_manager(db, manager.id, "bench")
            manager_sync.announce(ctx, manager, UpstreamNotification.from_dict({
                "_meta": {"version": 2}, "manager_url": "http://m", "nr_of_workers": 1,
                "worker_task_types": ["blender-render", "file-management", "video-encoding"]}), True)
            times, answers = [], []
            for i in range(args.repeat):
                body = {"name": f"bench {i}", "type": "blender-render", "project": "bench", "settings": {
                    "filepath": "/shared/proj/shot.blend", "frames": f"1-{args.frames}", "chunk_size": 1,
                    "render_output": "/render/proj/shot/######", "format": "PNG"}}
                t0 = time.perf_counter()
                job = submit_job(ctx, user, body)
                answers.append(time.perf_counter() - t0)
                assert ctx.storer.drain(timeout=60)
                times.append(time.perf_counter() - t0)
                n = Task.select().where(Task.job == job.id).count()
                assert n == args.frames + 1, n
    best, worst = min(times), max(times)
    print(f"compile_job: {args.frames} frames -> {args.frames + 1} tasks on "
          f"{'SQLite' if url.startswith('sqlite') else url.split(':')[0]}: "
          f"best {best:.2f} s, worst {worst:.2f} s over {len(times)} runs (target <= {TARGET_S:.1f} s) "
          f"-> {'OK' if worst <= TARGET_S else 'OVER TARGET'}; submit_job answered after "
          f"{min(answers):.2f}-{max(answers):.2f} s (its first tasks stored)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
