"""The Manager's sign-in limiter and page sessions, on a real database."""

from __future__ import annotations

import pytest

from backend.errors import ApiError
from backend.manager.admin_auth import SignInLimiter


def test_the_limiter_counts_per_address_and_in_all_within_its_window():
    limiter = SignInLimiter(per_address=2, overall=3, window=60)
    for _ in range(2):
        limiter.check("a", 0)
        limiter.failed("a", 0)
    with pytest.raises(ApiError) as ex:
        limiter.check("a", 10)
    assert ex.value.status == 429 and ex.value.headers["Retry-After"] == "51"
    limiter.check("b", 10)
    limiter.failed("b", 10)
    with pytest.raises(ApiError):
        limiter.check("c", 10)  # three failures in all
    limiter.check("a", 61)  # the window moved on
    limiter.succeeded("b")
    limiter.check("b", 61)


def test_sessions_end_with_a_new_password_and_expire(core):
    auth = core.admin_auth
    assert not auth.configured()
    with pytest.raises(ApiError) as ex:
        auth.sign_in("whatever password", "127.0.0.1")
    assert ex.value.code == "no_admin_password"
    with pytest.raises(ValueError):
        auth.set_password("short")
    auth.set_password("a good long password")
    assert auth.configured()
    cookie, session = auth.sign_in("a good long password", "127.0.0.1", now=1000.0)
    assert auth.session(cookie, now=1001.0).id == session.id
    assert auth.session(cookie, now=1000.0 + 12 * 3600 + 1) is None, "expired"
    assert auth.session(cookie.split(".")[0] + ".wrong", now=1001.0) is None
    auth.set_password("another long password")
    assert auth.session(cookie, now=1001.0) is None
    assert session.csrf_ok(session.csrf) and not session.csrf_ok("x") and not session.csrf_ok("é" * 64)
