"""JSON Schemas of the documents the Server's API takes and gives, for the OpenAPI document."""

from __future__ import annotations

from shared.setting_types import NAMES as SETTING_TYPE_NAMES
from shared.slots import NEEDS
from shared.statuses import JobStatus, TaskStatus, WorkerStatus

S, I, N, B = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
NS = {"type": "string", "nullable": True}
OBJ = {"type": "object", "additionalProperties": True}
TS = {"type": "string", "format": "date-time", "nullable": True}


def obj(props: dict, required: list[str] | None = None) -> dict:
    out = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def arr(items) -> dict:
    return {"type": "array", "items": {"$ref": f"#/components/schemas/{items}"} if isinstance(items, str) else items}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


JOB_STATUS = {"type": "string", "enum": list(JobStatus)}
TASK_STATUS = {"type": "string", "enum": list(TaskStatus)}
FILE_ENTRY = obj({"sha256": S, "size": I}, ["sha256", "size"])
FILES_MODE = {"type": "string", "enum": ["shared", "upload"]}

SCHEMAS = {
    "Version": obj({"version": S, "api_version": I}, ["version", "api_version"]),
    "Login": obj({"username": S, "password": S}, ["username", "password"]),
    "LoginResult": obj({"token": S, "user": ref("User")}, ["token", "user"]),
    "Token": obj({"id": S, "label": S, "created": TS, "expires": TS, "current": B}, ["id", "label"]),
    "Tokens": obj({"tokens": arr("Token")}, ["tokens"]),
    "NewToken": obj({"label": S, "expires_in_days": {"type": "number", "nullable": True, "minimum": 0}}),
    "TokenCreated": obj({"token": S, "id": S, "label": S, "created": TS, "expires": TS, "current": B},
                        ["token", "id"]),
    "PasswordChange": obj({"current_password": S, "new_password": S}, ["current_password", "new_password"]),
    "PasswordChanged": obj({"token": NS}, ["token"]),
    "User": obj({"id": S, "name": S, "role": {"type": "string", "enum": ["admin", "artist"]}, "created": TS,
                 "projects": arr(obj({"id": S, "name": S}))}),
    "NewUser": obj({"name": S, "role": S, "password": S, "projects": arr(S)}, ["name"]),
    "UserWithToken": obj({"user": ref("User"), "token": S}, ["user", "token"]),
    "Project": obj({"id": S, "name": S, "description": S, "created": TS,
                    "quota_bytes": {"type": "integer", "nullable": True}, "allow_scripts": B,
                    "managers": arr(obj({"id": S, "name": S}))}),
    "NewProject": obj({"name": S, "description": S}, ["name"]),
    "ProjectChange": obj({"description": S, "quota_bytes": {"type": "integer", "nullable": True, "minimum": 0},
                          "allow_scripts": B}),
    "ProjectUsage": obj({"project": S, "used_bytes": I, "quota_bytes": I}, ["project", "used_bytes", "quota_bytes"]),
    "Manager": obj({"id": S, "name": S, "url": S, "version": NS, "nr_of_workers": I, "idle_workers": I,
                    "worker_task_types": arr(S), "variables": OBJ, "created": TS, "last_seen": TS,
                    "seconds_since_seen": {"type": "number", "nullable": True},
                    "link_health": {"type": "string", "enum": ["online", "offline", "never-seen"]},
                    "last_startup": TS, "last_worker_report": TS, "projects": arr(obj({"id": S, "name": S})),
                    "queue_length": {"type": "integer", "nullable": True}}),
    "NewManager": obj({"name": S}, ["name"]),
    "ManagerWithToken": obj({"manager": ref("Manager"), "token": S}, ["manager", "token"]),
    "Link": obj({"manager": S}, ["manager"]),
    "Member": obj({"user": S, "role": {"type": "string", "enum": ["member", "manager-admin"]}}, ["user"]),
    "Setting": obj({"key": S, "type": {"type": "string", "enum": list(SETTING_TYPE_NAMES)},
                    "default": {}, "required": B, "choices": {"type": "array", "nullable": True, "items": {}},
                    "label": S, "description": S, "minimum": N, "maximum": N, "modes": arr(FILES_MODE)},
                   ["key", "type", "required", "label", "description"]),
    "JobType": obj({"name": S, "label": S, "description": S,
                    "artist_visible": {"type": "boolean",
                                       "description": "false for farm tools (sleep, exec-command) the add-on "
                                                      "does not offer to artists"},
                    "admin_only": {"type": "boolean", "description": "only admins may submit it (exec-command)"},
                    "files_modes": arr(FILES_MODE), "settings": arr("Setting")},
                   ["name", "label", "artist_visible", "settings"]),
    "JobTypes": obj({"job_types": arr("JobType")}, ["job_types"]),
    "JobSubmit": obj({"name": S, "type": S, "settings": OBJ, "priority": {"type": "integer", "minimum": 1,
                                                                          "maximum": 100},
                      "project": S, "manager": S, "depends_on": arr(S), "start_paused": B, "worker_tag": NS,
                      "memory_mb": {"type": "integer", "nullable": True, "minimum": 1},
                      "files": {"type": "object", "additionalProperties": FILE_ENTRY}, "metadata": OBJ},
                     ["name", "type", "settings"]),
    "JobCheck": obj({"name": S, "type": S, "settings": OBJ, "priority": I, "project": S, "manager": S,
                     "depends_on": arr(S), "start_paused": B, "worker_tag": NS, "memory_mb": I,
                     "files": {"type": "object", "additionalProperties": FILE_ENTRY}, "metadata": OBJ,
                     "files_mode": FILES_MODE}, ["name", "type", "settings"]),
    "JobCheckResult": obj({"valid": B, "type": S, "files_mode": FILES_MODE, "project": S, "manager": S,
                           "task_types": arr(S), "tasks": I, "settings": OBJ, "missing_files": arr(S)},
                          ["valid", "files_mode", "manager", "tasks"]),
    "Job": obj({"id": S, "name": S, "type": S, "status": JOB_STATUS, "status_reason": S, "priority": I,
                "settings": OBJ, "metadata": OBJ, "project": S, "project_name": NS, "manager": NS,
                "manager_name": NS, "user": NS, "user_name": NS, "created": TS, "updated": TS,
                "start_paused": B, "worker_tag": NS, "memory_mb": {"type": "integer", "nullable": True},
                "files_mode": {"type": "string", "enum": ["shared", "upload"]}, "depends_on": arr(S),
                "blocked": B, "task_counts": {"type": "object", "additionalProperties": I}, "tasks_total": I,
                "progress": N, "web_url": S}),
    "JobList": obj({"jobs": arr("Job"), "total": I, "limit": I, "offset": I}, ["jobs", "total"]),
    "JobStatusChange": obj({"status": S, "reason": S}, ["status"]),
    "JobPriority": obj({"priority": {"type": "integer", "minimum": 1, "maximum": 100}, "reason": S},
                       ["priority"]),
    "Reason": obj({"reason": S}),
    "Command": obj({"name": S, "settings": OBJ}, ["name", "settings"]),
    "Task": obj({"id": S, "job": S, "name": S, "task_type": S, "status": TASK_STATUS, "priority": I,
                 "job_priority": I, "parents": arr(S), "worker": NS, "activity": S, "progress": N,
                 "current_command_idx": I, "command_progress": N, "failed_by_workers": arr(OBJ),
                 "created": TS, "updated": TS, "started": TS, "finished": TS, "commands": arr("Command"),
                 "log_tail": S, "metrics": OBJ, "needs": S, "log_uploaded": TS, "canceled_by": NS,
                 "runs": arr("Run"),
                 "job_name": S, "job_status": JOB_STATUS}),
    "Run": obj({"task": S, "task_name": S, "worker": NS, "started": TS, "finished": TS, "status": S,
                "activity": S, "log_tail": S}),
    "Runs": obj({"runs": arr("Run"), "total": I}, ["runs"]),
    "TaskActions": obj({"action": {"type": "string", "enum": ["requeue", "cancel"]}, "tasks": arr(S), "reason": S},
                       ["action", "tasks"]),
    "TaskActionResult": obj({"requeued": I, "canceled": I}),
    "JobActions": obj({"action": {"type": "string", "enum": ["pause", "resume", "cancel", "requeue",
                                                              "requeue-failed", "priority", "delete", "archive"]},
                       "jobs": arr(S), "priority": {"type": "integer", "minimum": 1, "maximum": 100},
                       "reason": S}, ["action", "jobs"]),
    "JobActionResults": obj({"results": {"type": "object", "additionalProperties": obj({
        "ok": B, "job": {"allOf": [ref("Job")], "nullable": True}, "code": S, "message": S, "status": I})}},
        ["results"]),
    "Archive": obj({"id": S, "name": S, "type": S, "status": S, "project": S, "project_name": NS, "user_name": NS,
                    "created": TS, "archived": TS, "archived_by": S, "size": I, "sha256": S, "url": S}),
    "Archives": obj({"archives": arr("Archive"), "total": I}, ["archives"]),
    "WorkerActionRequest": obj({"action": {"type": "string", "enum": ["sleep", "wake", "shutdown", "forget",
                                                                       "set-tags", "clear-blocklist",
                                                                       "sleep-schedule"]},
                                "lazy": B, "tags": arr(S),
                                "schedule": obj({"schedule_active": B, "days_of_week": S, "time_start": S,
                                                 "time_end": S})}, ["action"]),
    "WorkerActionDoc": obj({"id": S, "manager": S, "worker": S, "action": S, "params": OBJ,
                            "status": {"type": "string", "enum": ["requested", "done", "failed"]}, "message": S,
                            "requested_by": S, "requested": TS, "done": TS}),
    "Farm": obj({"managers": arr("Manager"), "workers_by_status": {"type": "object", "additionalProperties": I},
                 "jobs_by_status": {"type": "object", "additionalProperties": I}, "jobs_running": arr("Job"),
                 "tasks_per_minute": arr(I), "now": TS}),
    "TaskList": obj({"tasks": arr("Task"), "total": I, "limit": I, "offset": I}, ["tasks"]),
    "Requeued": obj({"requeued": I}, ["requeued"]),
    "LogEntry": obj({"created": TS, "who": S, "what": S, "reason": S}),
    "JobLog": obj({"entries": arr("LogEntry")}, ["entries"]),
    "FileCheck": obj({"files": arr(FILE_ENTRY)}, ["files"]),
    "FileCheckResult": obj({"missing": arr(S)}, ["missing"]),
    "Stored": obj({"sha256": S, "size": I}, ["sha256", "size"]),
    "Output": obj({"relpath": S, "sha256": S, "size": I, "task": NS, "created": TS, "url": S}),
    "Outputs": obj({"outputs": arr("Output")}, ["outputs"]),
    "Worker": obj({"id": S, "manager": S, "manager_name": S, "nickname": S,
                   "status": {"type": "string", "enum": list(WorkerStatus)}, "platform": S,
                   "supported_task_types": arr(S), "tags": arr(S), "current_task": NS, "current_job": NS,
                   "last_seen": NS, "status_requested": NS, "resources": OBJ, "running_tasks": arr("RunningTask"),
                   "reported": TS, "current_task_name": NS, "current_job_name": NS, "actions": arr("WorkerActionDoc"),
                   "may_act": B}),
    "RunningTask": obj({"id": S, "job": S, "name": S, "needs": S, "job_name": NS}, ["id", "job"]),
    "Workers": obj({"workers": arr("Worker")}, ["workers"]),
    "WorkerOffers": obj({"tags": arr(S), "task_types": arr(S)}, ["tags", "task_types"]),
    "Managers": obj({"managers": arr("Manager")}, ["managers"]),
    "Users": obj({"users": arr("User")}, ["users"]),
    "Projects": obj({"projects": arr("Project")}, ["projects"]),
    # Manager <-> Server (docs/protocol.md, shared/documents.py)
    "UpstreamNotification": obj({"_meta": obj({"version": {"type": "integer", "enum": [2]}}), "manager_url": S,
                                 "variables": OBJ, "nr_of_workers": I, "worker_task_types": arr(S),
                                 "version": NS}, ["_meta", "manager_url"]),
    "WorkerInfo": obj({"_id": S, "nickname": S, "status": S, "platform": S, "supported_task_types": arr(S),
                       "tags": arr(S), "current_task": NS, "current_job": NS, "last_seen": NS,
                       "status_requested": NS, "resources": OBJ, "running_tasks": arr("RunningTask")},
                      ["_id", "nickname", "status"]),
    "WorkerReport": obj({"workers": arr("WorkerInfo"), "complete": B}, ["workers"]),
    "ManagerTask": obj({"_id": S, "job": S, "manager": S, "project": S, "user": S, "name": S,
                        "status": TASK_STATUS, "priority": I, "job_priority": I, "job_type": S, "task_type": S,
                        "commands": arr("Command"), "parents": arr(S), "worker": S,
                        "failed_by_workers": arr(obj({"id": S, "identifier": S})), "_updated": S,
                        "job_worker_tag": NS, "job_memory_mb": {"type": "integer", "nullable": True},
                        "job_files_mode": {"type": "string", "enum": ["shared", "upload"]},
                        "io": obj({"inputs": arr(S), "outputs": arr(S), "scratch": B, "input_jobs": arr(S)}),
                        "needs": {"type": "string", "enum": list(NEEDS)}},
                       ["_id", "job", "name", "status", "task_type", "commands"]),
    "ScheduledTasks": obj({"depsgraph": arr("ManagerTask")}, ["depsgraph"]),
    "UpstreamTaskUpdate": obj({"_id": S, "task_id": S, "received_on_manager": S, "worker": S,
                               "task_status": TASK_STATUS, "activity": S, "task_progress_percentage": N,
                               "current_command_idx": I, "command_progress_percentage": N, "log": S,
                               "log_tail": S, "failed_by_workers": arr(obj({"id": S, "identifier": S})),
                               "metrics": OBJ}, ["_id", "task_id", "received_on_manager"]),
    "TaskUpdateBatch": obj({"updates": arr("UpstreamTaskUpdate"),
                            "worker_actions_done": arr(obj({"id": S, "ok": B, "message": S}, ["id", "ok"])),
                            "queue_length": {"type": "integer", "nullable": True}}, ["updates"]),
    "TaskUpdateResponse": obj({"modified_count": I, "handled_update_ids": arr(S), "cancel_task_ids": arr(S),
                               "upload_task_file_queue": arr(obj({"job": S, "task": S})),
                               "worker_actions": arr(obj({"id": S, "worker": S, "action": S, "lazy": B,
                                                          "tags": arr(S), "schedule": OBJ},
                                                         ["id", "worker", "action"]))},
                              ["modified_count", "handled_update_ids", "cancel_task_ids",
                               "upload_task_file_queue"]),
    "JobFiles": obj({"files": {"type": "object", "additionalProperties": FILE_ENTRY}}, ["files"]),
    "OutputRegistration": obj({"task": NS, "files": {"type": "object", "additionalProperties": FILE_ENTRY},
                               "removed": arr(S)}),
    "Missing": obj({"missing": arr(S)}, ["missing"]),
}
