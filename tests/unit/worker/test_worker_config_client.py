import base64
import hashlib
import hmac
import json
import time

import pytest

from tests.unit.shared.config_helpers import config_error
from worker import config as config_mod
from worker.manager_client import Credentials, make_registration_jwt, random_secret
from worker.output_watcher import OutputWatcher


def test_config_file_and_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("FLAMENCO_MANAGER_URL", raising=False)
    path = tmp_path / "w.toml"
    path.write_text('manager_url = "http://m:8083/"\ntags = ["gpu"]\nlong_poll_seconds = 10\n'
                    '[pre_task_check]\nwrite = ["/render"]\n')
    cfg = config_mod.load(path, {"nickname": "n1", "data_dir": str(tmp_path / "d"), "tags": None})
    cfg.validate()
    assert cfg.manager_url == "http://m:8083"
    assert cfg.tags == ["gpu"] and cfg.nickname == "n1" and cfg.long_poll_seconds == 10.0
    assert cfg.pre_task_check_write == ["/render"]
    assert cfg.task_types[:2] == ["sleep", "blender-render"]
    assert cfg.credentials_path == tmp_path / "d" / "credentials.json"
    assert cfg.pid_path.parent == tmp_path / "d"


@pytest.mark.parametrize("text, message", [
    ('manager_urll = "x"', "unknown setting 'manager_urll'"),
    ('long_poll_seconds = "soon"', "'long_poll_seconds' must be a number"),
    ('tags = 3', "'tags' must be a list of strings"),
    ('[pre_task_check]\nexecute = []', "pre_task_check.execute"),
])
def test_config_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "w.toml"
    path.write_text(text)
    with pytest.raises(config_mod.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_mod.load(path)


@pytest.mark.parametrize("text, message", [
    ("output_watch = 1", "'output_watch' must be true or false, not 1"),
    ("push_log_max_entries = 2.5", "'push_log_max_entries' must be a whole number, not 2.5"),
    ("nickname = 7", "'nickname' must be a string, not 7"),
    ("[pre_task_check]\nread = 5", "'pre_task_check.read' must be a list of strings, not 5"),
    ("pre_task_check = 5", "'pre_task_check' must be a table"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_it(tmp_path, text, message):
    assert message in config_error(config_mod.load, tmp_path, text)


def test_a_string_for_a_list_is_split_at_white_space():
    cfg = config_mod.from_dict({"tags": "gpu  cuda", "pre_task_check": {"write": "/render /tmp"}})
    assert cfg.tags == ["gpu", "cuda"] and cfg.pre_task_check_write == ["/render", "/tmp"]


def test_manager_url_is_required(monkeypatch):
    monkeypatch.delenv("FLAMENCO_MANAGER_URL", raising=False)
    with pytest.raises(config_mod.ConfigError, match="manager_url is required"):
        config_mod.load(None).validate()
    monkeypatch.setenv("FLAMENCO_MANAGER_URL", "http://env:1")
    assert config_mod.load(None).manager_url == "http://env:1"


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_registration_jwt_is_hs256_with_15_minutes():
    now = time.time()
    token = make_registration_jwt("psk", now)
    header, claims, sig = token.split(".")
    assert json.loads(_b64d(header)) == {"typ": "JWT", "alg": "HS256"}
    body = json.loads(_b64d(claims))
    assert body["exp"] - body["iat"] == 900 and abs(body["iat"] - now) < 2
    expected = hmac.new(b"psk", f"{header}.{claims}".encode(), hashlib.sha256).digest()
    assert _b64d(sig) == expected


def test_secret_and_credentials_file(tmp_path):
    secret = random_secret()
    assert len(secret) == 64 and secret.isalnum()
    assert random_secret() != secret
    path = tmp_path / "c" / "credentials.json"
    Credentials("http://m", "w1", secret).save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Credentials.load(path) == Credentials("http://m", "w1", secret)
    path.write_text("{broken")
    assert Credentials.load(path) is None


def test_output_watcher_reports_written_files(tmp_path):
    reported = []
    watcher = OutputWatcher(reported.extend, debounce=0.1).start([tmp_path / "out"])
    try:
        (tmp_path / "out" / "video.mkv").write_bytes(b"x" * 1000)
        (tmp_path / "out" / ".hidden").write_text("no")
        (tmp_path / "out" / "partial.tmp").write_text("no")
        (tmp_path / "elsewhere.txt").write_text("no")
        deadline = time.monotonic() + 5
        while not reported and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
    assert reported == [str(tmp_path / "out" / "video.mkv")]
