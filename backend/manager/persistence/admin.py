"""Named operations on the admin's credentials: the password hash, admin tokens and page sessions.

Only hashes are stored (scrypt for the password, SHA-256 for random token and
session secrets); the services in admin_auth.py make and check them.
"""

from __future__ import annotations

from .store import Store

PASSWORD_KEY = "admin_password_hash"


class AdminRecords:
    def __init__(self, store: Store):
        self.store = store
        self.T = store.m.AdminToken
        self.S = store.m.AdminSession

    # --- the password ------------------------------------------------------------

    def password_hash(self) -> str | None:
        return self.store.get_setting(PASSWORD_KEY) or None

    def set_password_hash(self, value: str) -> None:
        """The new password hash; every page session ends with the old password (one transaction)."""
        with self.store.write():
            self.store.m.Setting.insert(key=PASSWORD_KEY, value=value).on_conflict_replace().execute()
            self.S.delete().execute()

    # --- tokens ----------------------------------------------------------------------

    def add_token(self, token_id: str, secret_hash: str, label: str, now: float) -> None:
        with self.store.write():
            self.T.create(id=token_id, secret_hash=secret_hash, label=label, created=now)

    def token(self, token_id: str):
        return self.store.row(self.T, token_id)

    def tokens(self) -> list:
        self.store.ensure_connected()
        return list(self.T.select().order_by(self.T.created))

    def has_tokens(self) -> bool:
        self.store.ensure_connected()
        return self.T.select().exists()

    def token_used(self, token_id: str, now: float) -> None:
        with self.store.write():
            self.store.update_row(self.T, token_id, last_used=now)

    def delete_token(self, token_id: str) -> int:
        with self.store.write():
            return self.T.delete().where(self.T.id == token_id).execute()

    # --- page sessions ------------------------------------------------------------------

    def add_session(self, session_id: str, secret_hash: str, now: float, expires: float) -> None:
        with self.store.write():
            self.S.delete().where(self.S.expires <= now).execute()
            self.S.create(id=session_id, secret_hash=secret_hash, created=now, expires=expires)

    def session(self, session_id: str):
        return self.store.row(self.S, session_id)

    def delete_session(self, session_id: str) -> None:
        with self.store.write():
            self.S.delete().where(self.S.id == session_id).execute()
