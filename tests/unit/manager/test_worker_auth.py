import base64
import time

import pytest

from backend.errors import ApiError
from backend.manager import worker_auth as wa


def test_secret_hash_roundtrip_and_salted():
    h1, h2 = wa.hash_secret("s3cret"), wa.hash_secret("s3cret")
    assert h1 != h2 and "s3cret" not in h1
    assert wa.check_secret("s3cret", h1) and wa.check_secret("s3cret", h2)
    assert not wa.check_secret("other", h1)
    assert not wa.check_secret("s3cret", "garbage")


def test_parse_basic():
    header = "Basic " + base64.b64encode(b"abc:p:w").decode()
    assert wa.parse_basic(header) == ("abc", "p:w")
    assert wa.parse_basic("Basic !!!") is None
    assert wa.parse_basic("Bearer x") is None
    assert wa.parse_basic(None) is None


def test_hs256_verify_with_float_exp():
    now = time.time()
    token = wa.make_hs256_jwt({"exp": now + 900.5, "iat": now}, "psk")
    assert wa.verify_hs256_jwt(token, "psk", now)["iat"] == now


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "signature"),
    (lambda t: "a.b", "not a JWT"),
    (lambda t: "###.###.###", "malformed"),
])
def test_hs256_rejects_tampering(mutate, message):
    token = wa.make_hs256_jwt({"exp": time.time() + 60}, "psk")
    with pytest.raises(ApiError, match=message) as err:
        wa.verify_hs256_jwt(mutate(token), "psk")
    assert (err.value.status, err.value.code) == (403, "forbidden")


def test_hs256_expiry_leeway_and_missing_exp():
    now = 1_000_000.0
    assert wa.verify_hs256_jwt(wa.make_hs256_jwt({"exp": now - 30}, "k"), "k", now)
    with pytest.raises(ApiError, match="expired"):
        wa.verify_hs256_jwt(wa.make_hs256_jwt({"exp": now - 120}, "k"), "k", now)
    with pytest.raises(ApiError, match="exp"):
        wa.verify_hs256_jwt(wa.make_hs256_jwt({"iat": now}, "k"), "k", now)


def test_alg_none_is_refused():
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(b'{"exp":9999999999}').rstrip(b"=").decode()
    with pytest.raises(ApiError, match="HS256"):
        wa.verify_hs256_jwt(f"{header}.{payload}.", "k")


def test_check_registration():
    wa.check_registration(None, "")  # open
    with pytest.raises(ApiError) as err:
        wa.check_registration(None, "psk")
    assert (err.value.status, err.value.code) == (401, "unauthorized")
    assert err.value.headers["WWW-Authenticate"].startswith("Bearer")
    wa.check_registration("Bearer " + wa.make_hs256_jwt({"exp": time.time() + 60}, "psk"), "psk")
