"""Sign-ins on the web pages: a session cookie, which the JSON API accepts as well.

The cookie holds `<session id>.<secret>`. Like an API token, only the secret's
SHA-256 is stored, next to an expiry; signing out deletes the row. The cookie is
HttpOnly (scripts cannot read it), SameSite=Lax (other sites' forms and
scripts do not send it) and Secure when the request came over HTTPS.

Against cross-site request forgery, a cookie-authenticated request that changes
something must also carry the session's CSRF token (header `X-Flamenco-CSRF`,
or the `csrf` field of a form). The token is an HMAC of the session secret: the
Server stores nothing for it, the pages get it in a <meta> tag, and another site
can neither read the cookie nor the page to learn it. Bearer-token clients never
send the cookie and are not affected.

The sign-in form itself carries a random token that must equal the one in a
short-lived SameSite=Strict cookie set with the form (a double submit), so
another site cannot sign a browser in under its own account. Unlike an Origin
check, this works behind any proxy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

import bottle

from ..models import User, WebSession, utcnow

log = logging.getLogger(__name__)

COOKIE = "flamenco_session"
LOGIN_COOKIE = "flamenco_login"
LOGIN_FIELD = "login_csrf"
LOGIN_FORM_SECONDS = 3600
CSRF_HEADER = "X-Flamenco-CSRF"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two texts, whatever characters they hold (compare_digest wants ASCII str)."""
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    return hmac.new(secret.encode(), b"flamenco-csrf", hashlib.sha256).hexdigest()


@dataclass
class Session:
    row: WebSession
    user: User
    secret: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.secret)

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and _same(self.csrf, given.strip())


def create(user: User, hours: float, now: dt.datetime | None = None) -> str:
    """A new session for the user; the cookie value (the only time the secret is seen)."""
    now = now or utcnow()
    session_id, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
    WebSession.create(id=session_id, user=user, secret_hash=_sha256(secret), created=now,
                      expires=now + dt.timedelta(hours=hours))
    return f"{session_id}.{secret}"


def lookup(value: str | None, now: dt.datetime | None = None) -> Session | None:
    """The live session a cookie value names, or None (unknown, wrong secret or expired)."""
    session_id, sep, secret = (value or "").partition(".")
    if not sep or not session_id or not secret or len(value) > 200:
        return None
    row = WebSession.select(WebSession, User).join(User).where(WebSession.id == session_id).first()
    if row is None:
        _sha256(secret)  # the same work whether or not the id exists
        return None
    if not hmac.compare_digest(row.secret_hash, _sha256(secret)) or row.expires <= (now or utcnow()):
        return None
    return Session(row=row, user=row.user, secret=secret)


def current() -> Session | None:
    """The session of the request's cookie, if it is live."""
    return lookup(bottle.request.get_cookie(COOKIE))


def end(value: str | None) -> bool:
    """Sign out: forget the session the cookie value names (when its secret matches)."""
    session = lookup(value)
    if session is None:
        return False
    WebSession.delete().where(WebSession.id == session.row.id).execute()
    log.info("user %s signed out of the web pages (session %s)", session.user.name, session.row.id)
    return True


def purge_expired(now: dt.datetime) -> int:
    return WebSession.delete().where(WebSession.expires <= now).execute()


def _secure() -> bool:
    return bottle.request.urlparts.scheme == "https"


def set_cookie(response: bottle.BaseResponse, value: str, hours: float) -> None:
    response.set_cookie(COOKIE, value, path="/", httponly=True, samesite="lax", secure=_secure(),
                        max_age=int(hours * 3600))


def clear_cookie(response: bottle.BaseResponse) -> None:
    response.set_cookie(COOKIE, "", path="/", httponly=True, samesite="lax", secure=_secure(), max_age=0,
                        expires=0)


def new_login_token(response: bottle.BaseResponse) -> str:
    """A token for one sign-in form, also set as its cookie."""
    token = secrets.token_urlsafe(24)
    response.set_cookie(LOGIN_COOKIE, token, path="/login", httponly=True, samesite="strict", secure=_secure(),
                        max_age=LOGIN_FORM_SECONDS)
    return token


def login_token_ok(given: str | None) -> bool:
    cookie = bottle.request.get_cookie(LOGIN_COOKIE)
    return bool(cookie) and bool(given) and _same(cookie, given)


def clear_login_cookie(response: bottle.BaseResponse) -> None:
    response.set_cookie(LOGIN_COOKIE, "", path="/login", httponly=True, samesite="strict", secure=_secure(),
                        max_age=0, expires=0)
