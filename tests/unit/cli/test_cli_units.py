import json

import pytest

from flamenco_cli.config import ConfigError, resolve
from flamenco_cli.main import UsageError, parse_settings

# The Server's type names (shared/setting_types.py); the CLI no longer takes 'int', 'float', 'bool'.
SCHEMA = [{"key": "frames", "type": "frames"}, {"key": "chunk_size", "type": "integer"},
          {"key": "fps", "type": "number"}, {"key": "video", "type": "boolean"},
          {"key": "rna_overrides", "type": "list"}]


def test_settings_are_typed_by_the_schema():
    out = parse_settings(["frames=1-10", "chunk_size=3", "fps=24", "video=yes",
                          'rna_overrides=["a = 1"]'], SCHEMA)
    assert out == {"frames": "1-10", "chunk_size": 3, "fps": 24.0, "video": True, "rna_overrides": ["a = 1"]}


@pytest.mark.parametrize("pair, message", [
    ("chunk_size=three", "must be a whole number"),
    ("video=maybe", "must be yes or no"),
    ("nope=1", "unknown setting 'nope'"),
    ("frames", "KEY=VALUE"),
])
def test_setting_errors(pair, message):
    with pytest.raises(UsageError, match=message):
        parse_settings([pair], SCHEMA)


def test_a_type_the_cli_does_not_know_is_an_error_not_text():
    with pytest.raises(UsageError, match="unknown setting type 'int'"):
        parse_settings(["n=3"], [{"key": "n", "type": "int"}])


def test_lists_take_json_or_one_item():
    assert parse_settings(['l=["a", "b"]', "m=x"], [{"key": "l", "type": "list"}, {"key": "m", "type": "list"}]) \
        == {"l": ["a", "b"], "m": ["x"]}


def test_config_order(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("FLAMENCO_SERVER", raising=False)
    monkeypatch.delenv("FLAMENCO_TOKEN", raising=False)
    monkeypatch.delenv("FLAMENCO_FARM", raising=False)
    with pytest.raises(ConfigError, match="no Server URL"):
        resolve(None, None, None)

    cfg_file = tmp_path / "cfg" / "flamenco" / "cli.toml"
    cfg_file.parent.mkdir(parents=True)
    cfg_file.write_text('server_url = "http://file:1"\ntoken = "file-token"\n')
    assert resolve(None, None, None).server_url == "http://file:1"

    farm = tmp_path / "farm"
    farm.mkdir()
    (farm / "farm.json").write_text(json.dumps({"server_url": "http://farm:2/", "admin_token": "farm-token"}))
    got = resolve(None, None, str(farm))
    assert (got.server_url, got.token) == ("http://farm:2", "farm-token")

    monkeypatch.setenv("FLAMENCO_SERVER", "http://env:3")
    assert resolve(None, None, str(farm)).server_url == "http://env:3"
    assert resolve("http://flag:4", "flag-token", str(farm)).token == "flag-token"

    with pytest.raises(ConfigError, match="farm.json does not exist"):
        resolve(None, None, str(tmp_path / "nofarm"))
