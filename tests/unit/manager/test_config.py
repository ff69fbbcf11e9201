import pytest

from backend.manager import config as c
from tests.unit.shared.config_helpers import config_error


def test_defaults_are_sane():
    cfg = c.ManagerConfig()
    cfg.validate()
    assert cfg.timeouts.worker_timeout < cfg.timeouts.task_timeout
    assert cfg.scheduling.long_poll_max < cfg.timeouts.worker_timeout
    assert cfg.failures.blocklist_threshold == 3 and cfg.failures.task_fail_after_softfail_count == 3
    assert cfg.max_long_polls == cfg.scheduling.http_threads - cfg.scheduling.reserved_threads
    values = cfg.variables.values_for("linux")
    assert {"blender", "ffmpeg", "render", "job_storage"} <= set(values)
    assert cfg.variables.values_for("windows")["render"] == "R:"


def test_toml_overrides_and_custom_variables(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('''
[manager]
data_dir = "/var/lib/flamenco"
registration_secret = "psk"
[timeouts]
task_timeout = 900
[failures]
blocklist_threshold = 5
[variables.blender]
direction = "oneway"
values = [{platform = "linux", value = "/opt/blender/blender"}]
[variables.textures]
direction = "twoway"
values = [{platform = "linux", value = "/mnt/tex/"}, {platform = "windows", value = "T:/"}]
''')
    cfg = c.load(path)
    assert str(cfg.data_dir) == "/var/lib/flamenco" and cfg.registration_secret == "psk"
    assert cfg.timeouts.task_timeout == 900.0 and cfg.failures.blocklist_threshold == 5
    assert cfg.variables.expand("{blender} -b", "linux") == "/opt/blender/blender -b"
    assert cfg.variables.expand("{textures}/wood.png", "linux") == "/mnt/tex/wood.png"
    assert cfg.variables.expand("{ffmpeg}", "windows") == "ffmpeg", "defaults kept"
    assert cfg.variables.expand("{job_files}/scene.blend", "linux") == "{job_files}/scene.blend"


@pytest.mark.parametrize("text,message", [
    ("[timeouts]\nbogus = 1", "unknown setting 'timeouts.bogus'"),
    ("[timeouts]\ntask_timeout = 'ten'", "'timeouts.task_timeout' must be a number"),
    ("[nope]\na = 1", "unknown section"),
    ("[variables.job_files]\nvalues = [{value = 'x'}]", "reserved"),
    ("[upstream]\nserver_url = 'http://x'", "needs all of"),
    ("[failures]\nblocklist_threshold = 0", "1 or more"),
    ("[variables.x]\nvalues = [{value = 'x', platform = 'amiga'}]", "unknown platform"),
    ("not toml [", "m.toml"),
])
def test_bad_config_names_the_setting(tmp_path, text, message):
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(c.ConfigError, match=message):
        c.load(path)


def test_example_config_loads():
    from pathlib import Path
    example = Path(__file__).resolve().parents[3] / "docs" / "manager.example.toml"
    if example.exists():
        c.load(example)


@pytest.mark.parametrize("text, message", [
    ('[upstream]\nfetch_interval = "x"', "'upstream.fetch_interval' must be a number, not \"x\""),
    ("[failures]\nblocklist_threshold = 2.5", "'failures.blocklist_threshold' must be a whole number, not 2.5"),
    ("[scheduling]\nhttp_threads = true", "'scheduling.http_threads' must be a whole number, not true"),
    ("[manager]\ndata_dir = 5", "'manager.data_dir' must be a path (a string), not 5"),
    ("[manager]\nlisten = 8083", "'manager.listen' must be a string, not 8083"),
    ("[manager]\ntimeouts = {task_timeout = 5}", "unknown setting 'manager.timeouts'"),
    ("listen = '0.0.0.0:1'", "unknown section 'listen'"),
    ("timeouts = 5", "[timeouts] must be a table, not 5"),
    ("[latest_image]\nwatch_dirr = '/x'",
     "unknown setting 'latest_image.watch_dirr'; did you mean 'latest_image.watch_dir'?"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_it(tmp_path, text, message):
    assert message in config_error(c.load, tmp_path, text)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_registration_secret(host):
    c.ManagerConfig().check_exposure(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.168.1.10", "render-room"])
def test_beyond_loopback_needs_a_registration_secret_or_consent(host):
    with pytest.raises(c.ConfigError, match="FLAMENCO_REGISTRATION_SECRET"):
        c.ManagerConfig().check_exposure(host)
    c.ManagerConfig(registration_secret="psk").check_exposure(host)
    c.ManagerConfig(allow_open_registration=True).check_exposure(host)
