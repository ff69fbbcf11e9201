"""Named operations on upload mode's files: job manifests, job outputs and the blobs the
Manager's file store holds.

A job output is a (job, relpath) -> sha256 row; a blob row is a file in the store,
with the time it was last used, for eviction. What must not be evicted is spelled
once, in `_PINNED_SQL`: blobs that tasks which are not finished may still need
(their job's files and outputs, the outputs of the jobs they depend on) and blobs
still waiting in the upstream queue for the Server.
"""

from __future__ import annotations

from shared.statuses import TASK_FINAL

from .store import Store, sql_in

_UNFINISHED = f"t.status NOT IN {sql_in(TASK_FINAL)}"

_PINNED_SQL = f"""
SELECT o.sha256 FROM job_output o WHERE EXISTS (SELECT 1 FROM task t WHERE t.job = o.job AND {_UNFINISHED})
UNION SELECT f.sha256 FROM job_file f WHERE EXISTS (SELECT 1 FROM task t WHERE t.job = f.job AND {_UNFINISHED})
UNION SELECT o.sha256 FROM job_output o WHERE o.job IN (
    SELECT ij.value FROM task t, json_each(t.io, '$.input_jobs') ij WHERE t.io IS NOT NULL AND {_UNFINISHED})
UNION SELECT json_extract(fl.value, '$.sha256') FROM upstream_item u, json_each(u.payload, '$.files') fl
    WHERE u.kind = 'outputs'
UNION SELECT u.key FROM upstream_item u WHERE u.kind = 'output'
"""

_EVICTABLE_SQL = f"""
SELECT b.sha256, b.size FROM blob b WHERE b.sha256 NOT IN ({_PINNED_SQL})
ORDER BY b.last_used ASC LIMIT ?
"""

_UNDER = "(relpath = ? OR substr(relpath, 1, ?) = ?)"
"""A relpath that is the prefix or lies below it (no LIKE: '_' and '%' are ordinary in paths)."""


def _under(prefix: str) -> tuple[str, tuple]:
    return _UNDER, (prefix, len(prefix) + 1, prefix + "/")


class FileRecords:
    def __init__(self, store: Store):
        self.store = store
        self.m = store.m

    # --- job files ----------------------------------------------------------------

    def set_job_files(self, job: str, files: dict[str, tuple[str, int]]) -> None:
        """The job's manifest as the Server gave it (inside a write transaction); kept once, as a
        job's files never change after it was submitted."""
        F = self.m.JobFile
        if self.store.execute("SELECT 1 FROM job_file WHERE job = ? LIMIT 1", (job,)).fetchone():
            return
        rows = [{"job": job, "relpath": rel, "sha256": sha, "size": size} for rel, (sha, size) in files.items()]
        for i in range(0, len(rows), 200):
            F.insert_many(rows[i:i + 200]).execute()

    # --- outputs --------------------------------------------------------------------

    def outputs(self, job: str, prefixes: list[str] | None = None) -> dict[str, tuple[str, int]]:
        """{relpath: (sha256, size)} of the job's outputs, all or those under `prefixes` ('' = all)."""
        self.store.ensure_connected()
        sql, params = "SELECT relpath, sha256, size FROM job_output WHERE job = ?", [job]
        if prefixes is not None and "" not in prefixes:
            if not prefixes:
                return {}
            conds = []
            for p in prefixes:
                cond, args = _under(p)
                conds.append(cond)
                params.extend(args)
            sql += " AND (" + " OR ".join(conds) + ")"
        return {rel: (sha, size) for rel, sha, size in self.store.execute(sql, params).fetchall()}

    def output(self, job: str, relpath: str) -> tuple[str, int] | None:
        self.store.ensure_connected()
        row = self.store.execute("SELECT sha256, size FROM job_output WHERE job = ? AND relpath = ?",
                                 (job, relpath)).fetchone()
        return (row[0], row[1]) if row else None

    def has_outputs(self, job: str) -> bool:
        self.store.ensure_connected()
        return self.store.execute("SELECT 1 FROM job_output WHERE job = ? LIMIT 1", (job,)).fetchone() is not None

    def register_outputs(self, job: str, task: str | None, files: dict[str, tuple[str, int]], removed: list[str],
                         scratch: bool, now: float) -> tuple[dict[str, tuple[str, int]], list[str]]:
        """Apply one task's outputs (inside a write transaction): removals first, then the files.

        Returns what the Server must learn: the files that are new or changed and not scratch,
        and the removed paths under which it had something."""
        forward_removed = []
        for prefix in removed:
            cond, args = _under(prefix)
            published = self.store.execute(f"SELECT 1 FROM job_output WHERE job = ? AND scratch = 0 AND {cond} "
                                           "LIMIT 1", (job, *args)).fetchone()
            if published:
                forward_removed.append(prefix)
            self.store.execute(f"DELETE FROM job_output WHERE job = ? AND {cond}", (job, *args))
        forward: dict[str, tuple[str, int]] = {}
        for rel, (sha, size) in files.items():
            old = self.store.execute("SELECT sha256, scratch FROM job_output WHERE job = ? AND relpath = ?",
                                     (job, rel)).fetchone()
            self.store.execute("INSERT OR REPLACE INTO job_output (job, relpath, sha256, size, task, scratch, created) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)", (job, rel, sha, size, task, int(scratch), now))
            if not scratch and (old is None or old[0] != sha or old[1]):
                forward[rel] = (sha, size)
        return forward, forward_removed

    def import_outputs(self, job: str, files: dict[str, tuple[str, int]], now: float) -> None:
        """Outputs the Server listed for a job made elsewhere (inside a write transaction)."""
        for rel, (sha, size) in files.items():
            self.store.execute("INSERT OR IGNORE INTO job_output (job, relpath, sha256, size, task, scratch, created) "
                               "VALUES (?, ?, ?, ?, NULL, 0, ?)", (job, rel, sha, size, now))

    # --- blobs ------------------------------------------------------------------------

    def add_blob(self, sha256: str, size: int, now: float) -> None:
        with self.store.write():
            self.store.execute("INSERT INTO blob (sha256, size, last_used) VALUES (?, ?, ?) "
                               "ON CONFLICT (sha256) DO UPDATE SET size = excluded.size, last_used = excluded.last_used",
                               (sha256, size, now))

    def touch_blob(self, sha256: str, now: float, older_than: float) -> None:
        """Mark a blob used, at most once per `older_than` seconds (a write per download would be waste)."""
        self.store.ensure_connected()
        row = self.store.execute("SELECT last_used FROM blob WHERE sha256 = ?", (sha256,)).fetchone()
        if row is not None and now - row[0] >= older_than:
            with self.store.write():
                self.store.execute("UPDATE blob SET last_used = ? WHERE sha256 = ?", (now, sha256))

    def blob_shas(self) -> set[str]:
        self.store.ensure_connected()
        return {sha for (sha,) in self.store.execute("SELECT sha256 FROM blob").fetchall()}

    def blob_bytes(self) -> int:
        self.store.ensure_connected()
        return self.store.execute("SELECT coalesce(sum(size), 0) FROM blob").fetchone()[0]

    def pinned_bytes(self) -> int:
        self.store.ensure_connected()
        return self.store.execute(f"SELECT coalesce(sum(size), 0) FROM blob WHERE sha256 IN ({_PINNED_SQL})"
                                  ).fetchone()[0]

    def evictable(self, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` (sha256, size) that nothing unfinished needs, least recently used first."""
        self.store.ensure_connected()
        return self.store.execute(_EVICTABLE_SQL, (limit,)).fetchall()

    def forget_blobs(self, shas: list[str]) -> None:
        with self.store.write():
            for i in range(0, len(shas), 500):
                chunk = shas[i:i + 500]
                self.store.execute(f"DELETE FROM blob WHERE sha256 IN ({','.join('?' * len(chunk))})", chunk)
