"""Signing in and out: API tokens (list, create, revoke), sign out everywhere, changing one's password.

Signing in with a password (here and on the web pages) is limited per user
name and per client address (signin_limits.py): 429 with Retry-After.
"""

from __future__ import annotations

import logging

import bottle

from backend.web import ApiError, bad_request, not_found, read_json, read_object, unauthorized

from .. import admin, auth
from ..database import write
from ..models import ApiToken, User
from ..signin_limits import client_address
from ..views import iso, user_doc
from ..web import sessions
from .common import no_content

log = logging.getLogger(__name__)

MAX_TOKEN_DAYS = 3650


def too_many(wait: float) -> ApiError:
    seconds = max(1, int(wait + 0.999))
    return ApiError(429, "too_many_attempts", f"too many wrong passwords; try again in {seconds} s",
                    {"Retry-After": str(seconds)})


def check_sign_in(ctx, user: User | None, name: str, password: str, check) -> bool:
    """Whether `password` is the user's; 429 while the name or address is over its limit of failures.

    `check(user, password)` does the password work (the same for unknown users).
    """
    address = client_address()
    wait = ctx.signins.retry_after(name, address)
    if wait is not None:
        log.warning("sign-in as '%s' from %s refused: too many wrong passwords", name[:100], address)
        raise too_many(wait)
    if check(user, password):
        ctx.signins.succeeded(name)
        return True
    ctx.signins.failed(name, address)
    return False


def token_doc(row: ApiToken, current: str | None) -> dict:
    return {"id": row.id, "label": row.label, "created": iso(row.created), "expires": iso(row.expires),
            "current": row.id == current}


def _days(body: dict) -> float | None:
    days = body.get("expires_in_days")
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= MAX_TOKEN_DAYS:
        raise bad_request(f"'expires_in_days' must be a number of days from 0 to {MAX_TOKEN_DAYS} (or null: "
                          "until revoked)", "invalid_field")
    return float(days)


def install(routes, ctx) -> None:
    db = ctx.db

    def verify(user, password):
        return user is not None and auth.verify_password(password, user.password_hash)

    @routes.add("POST", "/api/auth/login", summary="Sign in with name and password; a new API token",
                tag="meta", auth_kind="none", body="Login",
                responses={200: ("the token and the user", "LoginResult"), 401: "wrong name or password",
                           429: "too many wrong passwords for this name or address; see Retry-After"},
                description="The token expires after the Server's login_token_days.")
    def login():
        body = read_object()
        name, password = body.get("username"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or len(name) > 100 or len(password) > 1024:
            raise bad_request("'username' and 'password' are required strings (at most 100 and 1024 "
                              "characters)", "invalid_field")
        user = User.get_or_none(User.name == name)
        if not check_sign_in(ctx, user, name, password, verify):
            raise unauthorized("wrong user name or password")
        with write(db):
            token = auth.new_user_token(user, f"login from {client_address()}",
                                        ctx.config.login_token_days or None)
        return {"token": token, "user": user_doc(user, admin.user_projects(user))}

    @routes.add("GET", "/api/auth/tokens", summary="Your API tokens (not their secrets)", tag="meta",
                responses={200: ("the tokens", "Tokens")})
    def tokens(user):
        credential = auth.current_credential()
        current = credential[1] if credential and credential[0] == "token" else None
        rows = ApiToken.select().where(ApiToken.user == user.id).order_by(ApiToken.created)
        return {"tokens": [token_doc(t, current) for t in rows]}

    @routes.add("POST", "/api/auth/tokens", summary="A new API token for yourself", tag="meta", body="NewToken",
                responses={201: ("the token; its secret is shown only now", "TokenCreated")})
    def create_token(user):
        body = read_json(required=False) or {}
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object", "invalid_json")
        label = body.get("label", "")
        if not isinstance(label, str) or len(label) > 100:
            raise bad_request("'label' must be a text of at most 100 characters", "invalid_field")
        with write(db):
            token = auth.new_user_token(user, label, _days(body))
            row = ApiToken.get_by_id(token.partition(".")[0])
        bottle.response.status = 201
        return {"token": token, **token_doc(row, None)}

    @routes.add("DELETE", "/api/auth/tokens/<token_id>", summary="Revoke one of your API tokens (admins: anyone's)",
                tag="meta", responses={204: "revoked", 404: "no such token of yours"})
    def revoke_token(user, token_id):
        with write(db):
            query = ApiToken.delete().where(ApiToken.id == token_id)
            if not user.is_admin:
                query = query.where(ApiToken.user == user.id)
            if not query.execute():
                raise not_found(f"no token '{token_id}' of yours")
        log.info("API token %s revoked by %s", token_id, user.name)
        return no_content()

    @routes.add("POST", "/api/auth/sign-out-everywhere", summary="End all your API tokens and web sessions",
                tag="meta", responses={204: "every token and session ended, this one included"})
    def sign_out_everywhere(user):
        _, n = admin.sign_out_everywhere(db, user.id)
        log.info("user %s signed out everywhere (%d tokens and sessions)", user.name, n)
        resp = no_content()
        sessions.clear_cookie(resp)
        return resp

    @routes.add("POST", "/api/users/<user_ref>/sign-out-everywhere", summary="End all API tokens and web "
                "sessions of a user", tag="admin", auth_kind="admin",
                responses={204: "ended", 404: "no such user"})
    def sign_out_user(user, user_ref):
        target, n = admin.sign_out_everywhere(db, user_ref)
        log.info("admin %s ended all %d tokens and sessions of user %s", user.name, n, target.name)
        return no_content()

    @routes.add("POST", "/api/auth/password", summary="Change your password; ends all your other sign-ins",
                tag="meta", body="PasswordChange",
                responses={200: ("a new API token when you signed in with one (the old one ended too)",
                                 "PasswordChanged"),
                           401: "the current password is wrong", 429: "too many wrong passwords"},
                description="Every API token and web session of yours ends. Signed in with a token, the answer "
                            "holds a new one; signed in on the web pages, a new session cookie is set.")
    def change_password(user):
        body = read_object()
        current, new = body.get("current_password"), body.get("new_password")
        if not isinstance(current, str) or len(current) > 1024 or not isinstance(new, str):
            raise bad_request("'current_password' and 'new_password' are required strings", "invalid_field")
        admin.check_password(new)
        if not check_sign_in(ctx, user, user.name, current, verify):
            raise unauthorized("the current password is wrong")
        credential = auth.current_credential()
        password_hash = auth.hash_password(new)
        with write(db):
            row = User.get_by_id(user.id)
            row.password_hash = password_hash
            row.save()
            auth.end_all_sign_ins(row)
            token = auth.new_user_token(row, "after a password change", ctx.config.login_token_days or None) \
                if credential and credential[0] == "token" else None
            cookie = sessions.create(row, ctx.config.web_session_hours) \
                if credential and credential[0] == "session" else None
        if cookie:
            sessions.set_cookie(bottle.response, cookie, ctx.config.web_session_hours)
        log.info("user %s changed their password; all their tokens and sessions ended", user.name)
        return {"token": token}
