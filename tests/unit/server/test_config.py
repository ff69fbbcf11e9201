"""The Server's configuration: a TOML file under the command line's flags, every value type-checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.server.config import ConfigError, ServerConfig
from tests.unit.shared.config_helpers import config_error


def test_file_then_flags(tmp_path):
    path = tmp_path / "server.toml"
    path.write_text('data_dir = "/srv/flamenco"\nthreads = 12\nmanager_online_seconds = 60\n'
                    'job_types_dirs = ["/etc/flamenco/job-types"]\n')
    cfg = ServerConfig.from_toml(path, threads=20, database=None)
    assert cfg.data_dir == Path("/srv/flamenco") and cfg.threads == 20, "a flag wins, a flag not given does not"
    assert cfg.manager_online_seconds == 60.0 and cfg.job_types_dirs == ["/etc/flamenco/job-types"]
    assert ServerConfig.from_dict({}, data_dir=str(tmp_path)).files_dir == tmp_path / "files"


@pytest.mark.parametrize("text, message", [
    ('max_upload_bytes = "5"', "'max_upload_bytes' must be a whole number, not \"5\""),
    ('manager_online_seconds = "x"', "'manager_online_seconds' must be a number, not \"x\""),
    ("web_session_hours = true", "'web_session_hours' must be a number, not true"),
    ("threads = 8.5", "'threads' must be a whole number, not 8.5"),
    ('job_types_dirs = "/etc/x"', "'job_types_dirs' must be a list of strings, not \"/etc/x\""),
    ("data_dir = 3", "'data_dir' must be a path (a string), not 3"),
    ("max_frame = 10", "unknown setting 'max_frame'; did you mean 'max_frames'?"),
    ("threads = 0", "threads must be a positive integer"),
    ("max_upload_bytes = -1", "max_upload_bytes may not be negative"),
    ("threads = [", "is not valid TOML"),
])
def test_a_bad_setting_is_refused_naming_it(tmp_path, text, message):
    assert message in config_error(ServerConfig.from_toml, tmp_path, text)


def test_flags_are_checked_too():
    with pytest.raises(ConfigError, match="'threads' must be a whole number"):
        ServerConfig.from_dict({}, threads="many")
