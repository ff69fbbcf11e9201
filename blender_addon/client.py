"""The add-on's client of the Server's user API: the shared one (shared/user_client.py,
bundled into the add-on as `_shared`), named as the add-on."""

from __future__ import annotations

from .sharedcode import user_client

ClientError, Unreachable, AuthError, Forbidden, NotFound, VersionMismatch, Canceled = (
    user_client.ClientError, user_client.Unreachable, user_client.AuthError, user_client.Forbidden,
    user_client.NotFound, user_client.VersionMismatch, user_client.Canceled)
ProgressFn, Response, items, normalize_url = (user_client.ProgressFn, user_client.Response, user_client.items,
                                              user_client.normalize_url)


class Client(user_client.Client):
    USER_AGENT = "flamenco-blender-addon"
    WHO = "this add-on"
