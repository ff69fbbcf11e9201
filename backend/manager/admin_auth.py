"""Who may use the Manager's admin API and pages: the admin's password, admin tokens, page sessions.

There is no unauthenticated admin access, not even from this machine:

* **People** sign in on the Manager's pages with the admin password (set by
  `flamenco-manager set-admin-password`, stored as an scrypt hash). They get a
  session cookie (HttpOnly, SameSite=Strict, Secure behind TLS) and a CSRF token
  that every state-changing request carries in `X-Flamenco-CSRF`.
* **Tools** (tests, benches, scripts) send `Authorization: Bearer <token>`: a
  token minted by `flamenco-manager create-admin-token` (only its SHA-256 is
  stored) or the `admin_token` of the config file / FLAMENCO_MANAGER_ADMIN_TOKEN.

With no password and no token at all, admin requests are refused with a message
saying how to set one. Wrong passwords are limited per client address and for
the Manager as a whole (429 with Retry-After).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from backend.errors import ApiError
from backend.passwords import hash_password, sha256_hex, verify_password

from .config import ManagerConfig
from .persistence import Persistence

log = logging.getLogger(__name__)

SESSION_COOKIE = "flamenco_manager_session"
CSRF_HEADER = "X-Flamenco-CSRF"
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
MAX_LABEL_CHARS = 100
HOW_TO_CONFIGURE = ("no admin password or admin token is configured on this Manager: run "
                    "'flamenco-manager set-admin-password' to sign in on its pages, or "
                    "'flamenco-manager create-admin-token' for tools (see docs/manager-api.md)")


class SignInLimiter:
    """Failed sign-ins per client address and in all, in a sliding window: beyond the limit, 429."""

    def __init__(self, per_address: int = 5, overall: int = 30, window: float = 60.0):
        self.per_address, self.overall, self.window = per_address, overall, window
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        cutoff = now - self.window
        while self._all and self._all[0] <= cutoff:
            self._all.popleft()
        for address in list(self._failures):
            times = self._failures[address]
            while times and times[0] <= cutoff:
                times.popleft()
            if not times:
                del self._failures[address]

    def check(self, address: str, now: float) -> None:
        """ApiError 429 (with Retry-After) while this address, or everyone, failed too often."""
        with self._lock:
            self._prune(now)
            times = self._failures.get(address, ())
            for window_times, limit in ((times, self.per_address), (self._all, self.overall)):
                if len(window_times) >= limit:
                    wait = max(1, int(window_times[0] + self.window - now) + 1)
                    raise ApiError(429, "too_many_attempts",
                                   f"too many wrong passwords; try again in {wait} s", {"Retry-After": str(wait)})

    def failed(self, address: str, now: float) -> None:
        with self._lock:
            self._failures.setdefault(address, deque()).append(now)
            self._all.append(now)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


@dataclass
class PageSession:
    id: str
    secret: str

    @property
    def csrf(self) -> str:
        return hmac.new(self.secret.encode(), b"flamenco-manager-csrf", hashlib.sha256).hexdigest()

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and given.isascii() and hmac.compare_digest(self.csrf, given.strip())


class AdminAuth:
    def __init__(self, db: Persistence, config: ManagerConfig):
        self.db, self.config = db, config
        self.limiter = SignInLimiter()
        self._dummy_hash: str | None = None

    # --- is anything configured ----------------------------------------------------

    def has_password(self) -> bool:
        return self.db.admin.password_hash() is not None

    def configured(self) -> bool:
        """Whether anyone can be an admin at all (a password, a config token or a minted token)."""
        return bool(self.config.admin_token) or self.has_password() or self.db.admin.has_tokens()

    # --- tokens -----------------------------------------------------------------------

    def token_ok(self, given: str, now: float | None = None) -> bool:
        """Whether `given` is the configured admin token or a live minted one."""
        configured = self.config.admin_token
        if configured and hmac.compare_digest(sha256_hex(given), sha256_hex(configured)):
            return True
        token_id, sep, secret = given.partition(".")
        if not sep or not token_id or not secret or len(given) > 200:
            return False
        row = self.db.admin.token(token_id)
        if row is None or not hmac.compare_digest(row.secret_hash, sha256_hex(secret)):
            return False
        now = time.time() if now is None else now
        if row.last_used is None or now - row.last_used > 60:
            self.db.admin.token_used(row.id, now)
        return True

    def create_token(self, label: str = "", now: float | None = None) -> tuple[str, str]:
        """(token id, token): the only time the token is seen."""
        if len(label) > MAX_LABEL_CHARS:
            raise ValueError(f"the label may be at most {MAX_LABEL_CHARS} characters")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        self.db.admin.add_token(token_id, sha256_hex(secret), label, time.time() if now is None else now)
        log.info("admin token %s (%s) created", token_id, label or "no label")
        return token_id, f"{token_id}.{secret}"

    def revoke_token(self, token_id: str) -> bool:
        gone = self.db.admin.delete_token(token_id) > 0
        if gone:
            log.info("admin token %s revoked", token_id)
        return gone

    # --- the password and page sessions ---------------------------------------------------

    def set_password(self, password: str) -> None:
        """Store the new password's hash; sessions signed in with the old one end."""
        if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
            raise ValueError(f"the admin password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
        self.db.admin.set_password_hash(hash_password(password))
        log.info("admin password set; page sessions ended")

    def sign_in(self, password: str, address: str, now: float | None = None) -> tuple[str, PageSession]:
        """A new page session for the right password: (cookie value, session). 401/403/429 otherwise."""
        now = time.time() if now is None else now
        self.limiter.check(address, now)
        stored = self.db.admin.password_hash()
        if stored is None:
            raise ApiError(403, "no_admin_password", "no admin password is set on this Manager: run "
                                                     "'flamenco-manager set-admin-password' on its machine")
        if len(password) > MAX_PASSWORD_CHARS or not verify_password(password, stored):
            self.limiter.failed(address, now)
            log.info("admin sign-in from %s refused", address or "?")
            raise ApiError(401, "wrong_password", "wrong password")
        self.limiter.succeeded(address)
        session = PageSession(secrets.token_hex(16), secrets.token_urlsafe(32))
        hours = self.config.admin_session_hours
        self.db.admin.add_session(session.id, sha256_hex(session.secret), now, now + hours * 3600)
        log.info("admin signed in to the pages from %s", address or "?")
        return f"{session.id}.{session.secret}", session

    def session(self, cookie: str | None, now: float | None = None) -> PageSession | None:
        """The live page session a cookie value names, or None."""
        session_id, sep, secret = (cookie or "").partition(".")
        if not sep or not session_id or not secret or len(cookie) > 200:
            return None
        row = self.db.admin.session(session_id)
        if row is None or not hmac.compare_digest(row.secret_hash, sha256_hex(secret)):
            return None
        if row.expires <= (time.time() if now is None else now):
            return None
        return PageSession(session_id, secret)

    def sign_out(self, cookie: str | None) -> None:
        session = self.session(cookie)
        if session is not None:
            self.db.admin.delete_session(session.id)
