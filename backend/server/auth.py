"""API tokens, manager tokens and passwords.

Tokens are random and only their SHA-256 is stored. A user token is
`<token id>.<secret>`: the id finds the row, the secret's hash is compared in
constant time; a token may expire, and can be revoked. A manager token is a
bare secret checked against the manager named in the request path. Passwords
(for signing in from the add-on and the pages) are hashed with scrypt; setting
one ends every session and token of the user. The web pages' session cookie is
accepted in place of a user token (web/sessions.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets

import bottle

from backend.web import ApiError, unauthorized

from .models import ApiToken, Manager, User, WebSession, utcnow
from .web import sessions

CREDENTIAL_KEY = "flamenco.credential"

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_user_token(user: User, label: str = "", days: float | None = None) -> str:
    """Create an API token for the user, valid for `days` (None or 0: until revoked); the only time its
    secret is seen."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(days=days) if days else None
    ApiToken.create(id=token_id, user=user, secret_hash=sha256_hex(secret), label=label[:100], expires=expires)
    return f"{token_id}.{secret}"


def end_all_sign_ins(user: User) -> int:
    """Revoke every API token and end every web session of the user (in the caller's write transaction)."""
    n = ApiToken.delete().where(ApiToken.user == user.id).execute()
    return n + WebSession.delete().where(WebSession.user == user.id).execute()


def current_credential() -> tuple[str, str] | None:
    """('token', token id) or ('session', session id) that authenticated this request."""
    return bottle.request.environ.get(CREDENTIAL_KEY)


def new_manager_secret() -> tuple[str, str]:
    """(token, stored hash) for a manager."""
    token = secrets.token_urlsafe(32)
    return token, sha256_hex(token)


def bearer_token() -> str | None:
    header = bottle.request.get_header("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def user_for_token(token: str) -> User | None:
    token_id, sep, secret = token.partition(".")
    if not sep or not token_id or not secret:
        return None
    if len(token_id) > 32:
        return None
    row = (ApiToken.select(ApiToken, User).join(User).where(ApiToken.id == token_id).first())
    if row is None:
        sha256_hex(secret)  # same work whether or not the id exists
        return None
    if not hmac.compare_digest(row.secret_hash, sha256_hex(secret)):
        return None
    if row.expires is not None and row.expires <= utcnow():
        return None
    bottle.request.environ[CREDENTIAL_KEY] = ("token", row.id)
    return row.user


def authenticate_user() -> User:
    """The user of the request's bearer token or, failing that, of its web session cookie.

    A cookie-authenticated request that changes something must carry the
    session's CSRF token (see web/sessions.py); a bearer token needs none.
    """
    token = bearer_token()
    if token:
        user = user_for_token(token)
        if user is None:
            raise unauthorized("the API token is not valid", "Bearer")
        return user
    session = sessions.current()
    if session is not None:
        if bottle.request.method not in sessions.SAFE_METHODS and \
                not session.csrf_ok(bottle.request.get_header(sessions.CSRF_HEADER)):
            raise ApiError(403, "csrf_failed", f"a request signed in by the session cookie must carry the "
                                               f"page's CSRF token in the {sessions.CSRF_HEADER} header")
        bottle.request.environ[CREDENTIAL_KEY] = ("session", session.row.id)
        return session.user
    raise unauthorized("an API token is required: 'Authorization: Bearer <token>' (or sign in on the web "
                       "pages)", "Bearer")


def authenticate_manager(manager_id: str) -> Manager:
    token = bearer_token()
    if not token:
        raise unauthorized("a manager token is required: 'Authorization: Bearer <token>'", "Bearer")
    manager = Manager.get_or_none(Manager.id == manager_id)
    given = sha256_hex(token)
    if manager is None or not hmac.compare_digest(manager.token_hash, given):
        raise unauthorized("the manager token is not valid for this manager", "Bearer")
    return manager


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)

