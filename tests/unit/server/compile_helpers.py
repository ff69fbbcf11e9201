"""Compiling a job type the way the Server does, without a database: what the job-type tests share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from backend.server.compilers import CompileContext, JobType, Registry

CREATED = dt.datetime(2024, 3, 5, 14, 7, 9)
JOB_ID = "0190aa00job0abc123"


def compile_job(jt: JobType, raw: dict, context: CompileContext) -> list:
    """validate -> check -> compile, as jobs.submit_job runs them."""
    values = jt.validate(raw)
    jt.check(values, context)
    return jt.compile(values, context)


def by_name(tasks) -> dict:
    return {t.name: t for t in tasks}


class JobTypeCase:
    """A test module's view of one built-in job type: the job's name, the Manager's task types
    and the settings most of the module's tests start from."""

    def __init__(self, type_name: str, job_name: str, task_types: Iterable[str], base_settings: dict | None = None):
        self.type_name, self.job_name, self.task_types = type_name, job_name, frozenset(task_types)
        self.base_settings = base_settings or {}

    def job_type(self) -> JobType:
        return Registry.builtin().get(self.type_name)

    def ctx(self, mode: str = "shared", files: dict | None = None) -> CompileContext:
        """The context of job JOB_ID, created at CREATED."""
        return CompileContext(JOB_ID, self.job_name, CREATED, mode, files or {}, self.task_types)

    def settings(self, **changes) -> dict:
        """The base settings with `changes` on top; a change to None leaves that setting out."""
        return {k: v for k, v in {**self.base_settings, **changes}.items() if v is not None}

    def compile(self, jt: JobType, raw: dict, context: CompileContext | None = None) -> list:
        return compile_job(jt, raw, context or self.ctx())
