import pytest
from hypothesis import given, strategies as st

from shared.variables import VariableError, Variables

CONFIG = {
    "blender": {"values": [{"platform": "linux", "value": "/usr/bin/blender"},
                           {"platform": "windows", "value": "C:/Blender/blender.exe"}]},
    "render": {"direction": "twoway", "values": [
        {"platform": "linux", "value": "/mnt/render/"},
        {"platform": "windows", "value": "R:\\"},
        {"platform": "darwin", "value": "/Volumes/render"}]},
    "project": {"direction": "twoway", "values": [
        {"platform": "linux", "value": "/mnt/render/projects"},
        {"platform": "windows", "value": "P:"},
        {"platform": "darwin", "value": "/Volumes/projects"}]},
    "ffmpeg": "/usr/bin/ffmpeg",
}


@pytest.fixture
def variables():
    return Variables.from_dict(CONFIG)


def test_expand_per_platform(variables):
    assert variables.expand("{blender} -b", "linux") == "/usr/bin/blender -b"
    assert variables.expand("{blender} -b", "windows") == "C:/Blender/blender.exe -b"
    assert variables.expand("{ffmpeg}", "darwin") == "/usr/bin/ffmpeg"
    # Unknown placeholders are left for someone else (the worker's {job_files}).
    assert variables.expand("{job_files}/a.blend", "linux") == "{job_files}/a.blend"


def test_expand_all_copies_structures(variables):
    settings = {"cmd": ["{blender}", "-b"], "n": 3, "nested": {"out": "{render}/x"}}
    out = variables.expand_all(settings, "linux")
    assert out == {"cmd": ["/usr/bin/blender", "-b"], "n": 3, "nested": {"out": "/mnt/render/x"}}
    assert settings["cmd"][0] == "{blender}"


def test_longest_prefix_wins(variables):
    assert variables.to_variables("/mnt/render/projects/shot1/a.blend", "linux") == "{project}/shot1/a.blend"
    assert variables.to_variables("/mnt/render/other/b.png", "linux") == "{render}/other/b.png"


def test_prefix_must_end_at_a_path_boundary(variables):
    assert variables.to_variables("/mnt/rendering/x", "linux") == "/mnt/rendering/x"


def test_oneway_values_are_not_found_back(variables):
    assert variables.to_variables("/usr/bin/blender", "linux") == "/usr/bin/blender"


def test_windows_paths(variables):
    assert variables.to_variables("R:\\shot\\f.png", "windows") == "{render}/shot/f.png"
    assert variables.to_variables("r:/shot/f.png", "windows") == "{render}/shot/f.png"
    assert variables.translate("R:\\shot\\f.png", "windows", "linux") == "/mnt/render/shot/f.png"
    assert variables.translate("/mnt/render/shot", "linux", "darwin") == "/Volumes/render/shot"


def test_audience():
    v = Variables.from_dict({"x": {"values": [{"value": "users", "audience": "users"},
                                              {"value": "workers", "audience": "workers"}]}})
    assert v.expand("{x}", "linux", "workers") == "workers"
    assert v.expand("{x}", "linux", "users") == "users"


def test_round_trip_through_dict(variables):
    again = Variables.from_dict(variables.to_dict())
    assert again.to_dict() == variables.to_dict()


@pytest.mark.parametrize("config, message", [
    ({"bad name": "x"}, "not a valid variable name"),
    ({"x": {"direction": "sideways"}}, "direction"),
    ({"x": {"values": [{"value": "a", "platform": "amiga"}]}}, "unknown platform"),
    ({"x": {"values": [{"value": 3}]}}, "'value' must be a string"),
    ({"x": {"values": [{"value": "a", "audience": "everyone"}]}}, "unknown audience"),
    ({"x": 5}, "must be a table"),
])
def test_invalid_definitions(config, message):
    with pytest.raises(VariableError, match=message):
        Variables.from_dict(config)


segment = st.text(alphabet="abcdefgh_-.0123", min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


@given(st.lists(segment, min_size=0, max_size=5))
def test_translate_there_and_back(parts):
    variables = Variables.from_dict(CONFIG)
    linux = "/".join(["/mnt/render", *parts])
    there = variables.translate(linux, "linux", "windows")
    assert variables.translate(there, "windows", "linux") == linux


def test_this_platform_is_one_of_the_platforms(monkeypatch):
    from shared.variables import PLATFORMS, this_platform
    assert this_platform() in PLATFORMS
    for name, expected in (("win32", "windows"), ("darwin", "darwin"), ("linux", "linux"), ("freebsd14", "linux")):
        monkeypatch.setattr("sys.platform", name)
        assert this_platform() == expected
