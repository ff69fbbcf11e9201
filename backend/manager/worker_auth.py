"""Worker credentials: per-worker secrets stored hashed, and the registration PSK.

A worker's secret is 64 random characters chosen by the worker (Flamenco 2
sends `secret` at registration), so a salted SHA-256 is enough: slow password
hashes exist for guessable passwords and would cost every request milliseconds.

With a registration secret configured, /register-worker needs
`Authorization: Bearer <JWT>`: HS256, signed with the secret, with an `exp`
claim in the future, which is what Flamenco Worker 2.x sends (PyJWT; `exp`
and `iat` as float timestamps).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time

from backend.errors import forbidden, unauthorized

JWT_LEEWAY = 60.0
"""Seconds of clock difference tolerated on `exp`."""


REGISTRATION_CHALLENGE = 'Bearer realm="Flamenco Manager"'


def new_worker_id() -> str:
    """24 hex digits, the shape of the Mongo ObjectIds Flamenco 2 workers stored."""
    return secrets.token_hex(12)


def hash_secret(secret: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.sha256((salt + "$" + secret).encode()).hexdigest()
    return f"sha256${salt}${digest}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$", 2)
    except ValueError:
        return False
    if scheme != "sha256":
        return False
    return hmac.compare_digest(hash_secret(secret, salt), stored)


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic Authorization header, or None (also for non-ASCII or non-UTF-8)."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        raw = base64.b64decode(header[6:].strip().encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError):
        return None
    user, sep, password = raw.partition(":")
    if not sep:
        return None
    return user, password


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_hs256_jwt(claims: dict, secret: str) -> str:
    """An HS256 JWT as PyJWT 1.x writes it; used by tests and our own tools."""
    header = _b64url_encode(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    payload = _b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url_encode(sig)}"


def verify_hs256_jwt(token: str, secret: str, now: float | None = None) -> dict:
    """The claims of a valid token; ApiError 403 for a bad signature, algorithm or expiry."""
    now = time.time() if now is None else now
    if not token.isascii():
        raise unauthorized("the registration token is not a JWT (it has non-ASCII characters)", REGISTRATION_CHALLENGE)
    parts = token.split(".")
    if len(parts) != 3:
        raise forbidden("the registration token is not a JWT")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (binascii.Error, ValueError, RecursionError):
        raise forbidden("the registration token is malformed") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise forbidden("the registration token must be signed with HS256")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise forbidden("the registration token's signature does not match the registration secret")
    if not isinstance(claims, dict):
        raise forbidden("the registration token's claims are not an object")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise forbidden("the registration token has no 'exp' claim")
    if exp + JWT_LEEWAY < now:
        raise forbidden("the registration token has expired")
    return claims


def check_registration(authorization: str | None, registration_secret: str, now: float | None = None) -> None:
    """Raise ApiError (401 without a token, 403 with a bad one) unless registration is open or the bearer token is valid."""
    if not registration_secret:
        return
    if not authorization or not authorization[:7].lower() == "bearer ":
        raise unauthorized("registration needs 'Authorization: Bearer <JWT signed with the registration secret>'",
                           REGISTRATION_CHALLENGE)
    verify_hs256_jwt(authorization[7:].strip(), registration_secret, now)
