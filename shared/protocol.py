"""Routes and headers of the Manager <-> Server protocol, named once for both sides.

All calls go from the Manager up to the Server with
`Authorization: Bearer <manager token>`; the manager id is in the path and
must belong to the token.

    POST {MANAGER_PREFIX}/startup              UpstreamNotification -> 204
    POST {MANAGER_PREFIX}/update               UpstreamNotification -> 204
    POST {MANAGER_PREFIX}/workers              WorkerReport -> 204
    GET  {MANAGER_PREFIX}/depsgraph[?limit=N]  -> 200 ScheduledTasks | 304
         request headers IF_UPDATED_SINCE (the cursor of the last reply), LONG_POLL_HEADER
                         (seconds the Server may hold the request), NEWS_HEADER (the token of
                         the last reply)
         reply headers   LAST_UPDATED (the cursor: send it back next time), MORE_HEADER
                         ("true": another page follows at once), NEWS_HEADER, NEWS_KINDS_HEADER,
                         LONG_POLL_HEADER (as held; "0": not held, poll instead)
    POST {MANAGER_PREFIX}/task-update-batch    TaskUpdateBatch -> 200 TaskUpdateResponse
    POST {MANAGER_PREFIX}/tasks/{tid}/log      gzip body of the full task log -> 204
    GET  {MANAGER_PREFIX}/jobs/{jid}/files     -> 200 {files: {relpath: {sha256, size}}}
    GET  {MANAGER_PREFIX}/files/{sha256}       -> 200 the file's bytes
    GET  {MANAGER_PREFIX}/jobs/{jid}/outputs   -> 200 {files: {relpath: {sha256, size}}}
    POST {MANAGER_PREFIX}/jobs/{jid}/outputs   {task, files, removed} -> 200 {missing: [sha256]}
    PUT  {MANAGER_PREFIX}/jobs/{jid}/outputs/{relpath}?task=TID   file bytes,
         header SHA256_HEADER -> 204 (idempotent)

Workers send outputs to their Manager resumably (docs/protocol.md): PUT
/files/{sha256} with UPLOAD_OFFSET_HEADER (the bytes already there, as
POST /files/check said) and UPLOAD_SIZE_HEADER (the whole file's size).
"""

MANAGER_PREFIX = "/api/managers/{manager_id}"

IF_UPDATED_SINCE = "X-Flamenco-If-Updated-Since"
LAST_UPDATED = "X-Flamenco-Last-Updated"
SHA256_HEADER = "X-Flamenco-SHA256"
UPLOAD_OFFSET_HEADER = "X-Flamenco-Upload-Offset"
UPLOAD_SIZE_HEADER = "X-Flamenco-Upload-Size"

LONG_POLL_HEADER = "X-Flamenco-Long-Poll"
"""Our worker's extension: POST /task with this header (seconds) waits for work. The
Manager's depsgraph request uses it too: the Server holds it until there is news."""
MORE_HEADER = "X-Flamenco-More"
NEWS_HEADER = "X-Flamenco-News"
NEWS_KINDS_HEADER = "X-Flamenco-News-Kinds"

DEFAULT_WORKER_TASK_TYPES = ("sleep", "blender-render", "blender-bake", "file-management", "exr-merge",
                             "video-encoding", "debug")
