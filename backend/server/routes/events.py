"""Live updates for the pages: Server-Sent Events saying what changed, never the data itself.

`GET /api/events?topics=jobs,job:<id>,workers,managers` holds the request and
sends `event: change` with the topics that changed (`data: {"topics": [...]}`)
as soon as a write that concerns them committed (changes.py); the page then
fetches what it shows from the JSON API, as it would when polling. Nothing is
sent while nothing changes but a comment every KEEPALIVE seconds. The stream
starts with `event: hello`: a page that does not get it soon (a proxy that
buffers the response) falls back to polling. Streams are limited
(`event_streams`); beyond that the answer is 503 and the page polls.

Topics are filtered by what the user may see: `jobs` means the jobs of the
user's projects, `job:<id>` only a job the user may see.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import bottle

from backend.web import ApiError, bad_request

from .. import jobs as job_service
from ..admin import visible_project_ids
from ..changes import EVERYTHING

log = logging.getLogger(__name__)

KEEPALIVE = 15.0
PLAIN_TOPICS = ("workers", "managers", "archives")


def install(routes, ctx) -> None:
    slots = threading.BoundedSemaphore(max(1, ctx.config.event_stream_slots))

    def matcher(user, requested: list[str]):
        """A function from the topics that changed to those of `requested` they concern, for this user."""
        names: dict[str, str] = {}  # a changed topic -> the requested topic it concerns
        all_projects = False
        for topic in requested:
            if topic in PLAIN_TOPICS:
                names[topic] = topic
            elif topic == "jobs":
                projects = visible_project_ids(user)
                if projects is None:
                    all_projects = True
                else:
                    names.update({f"project:{p}": "jobs" for p in projects})
            elif topic.startswith("job:"):
                job = job_service.get_visible_job(user, topic[4:])  # 404 for a job the user may not see
                names[f"job:{job.id}"] = topic
            else:
                raise bad_request(f"unknown topic '{topic[:100]}'; use jobs, job:<id>, "
                                  f"{', '.join(PLAIN_TOPICS)}", "invalid_topic")

        def matches(changed: set[str]) -> list[str]:
            if EVERYTHING in changed:
                return sorted(set(requested))
            found = {names[t] for t in changed if t in names}
            if all_projects and any(t.startswith("project:") for t in changed):
                found.add("jobs")
            return sorted(found)
        return matches

    @routes.add("GET", "/api/events", summary="Server-Sent Events: which of the given topics changed",
                tag="events", query={"topics": "comma-separated: jobs, job:<id>, workers, managers, archives"},
                responses={200: ("the event stream: 'hello', then 'change' events {topics}",
                                 {"type": "string"}, "text/event-stream"),
                           503: "too many streams are open: poll instead"})
    def events(user):
        requested = [t.strip() for t in (bottle.request.query.getunicode("topics") or "").split(",") if t.strip()]
        if not requested or len(requested) > 20:
            raise bad_request("give 1 to 20 topics: ?topics=jobs,job:<id>,workers,managers", "invalid_topic")
        matches = matcher(user, requested)
        if not ctx.config.event_stream_slots or not slots.acquire(blocking=False):
            raise ApiError(503, "busy", "too many live-update streams are open; the page polls instead",
                           {"Retry-After": "60"})
        feed = ctx.feed
        limit = ctx.config.event_stream_seconds
        resp = bottle.response
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")  # nginx: do not buffer this response

        def stream():
            seq = feed.seq
            started = time.monotonic()
            yield "retry: 2000\nevent: hello\ndata: {}\n\n"
            while time.monotonic() - started < limit and not feed.closed:
                current = feed.wait(seq, KEEPALIVE)
                if current == seq:
                    yield ": keep-alive\n\n"
                    continue
                changed = matches(feed.changed_since(seq))
                seq = current
                if changed:
                    yield f"event: change\ndata: {json.dumps({'topics': changed})}\n\n"
        return _Releasing(stream(), slots.release)


class _Releasing:
    """An event stream that gives its slot back when the server closes it, whether or not it ever ran."""

    def __init__(self, gen, release):
        self._gen, self._release = gen, release

    def __iter__(self):
        return self._gen

    def close(self):
        try:
            self._gen.close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
