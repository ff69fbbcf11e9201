"""Checks every job type must pass, built-in or loaded from a directory: a complete schema and
settings errors that name the setting. Each type's own graph has its own test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.server.compilers import Registry, SettingError
from backend.server.compilers.base import Setting

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "job_types"


def _registry() -> Registry:
    reg = Registry.builtin()
    reg.load_directory(EXAMPLES)
    return reg


REGISTRY = _registry()
TYPES = REGISTRY.names()


def plausible(s: Setting):
    """A value of the right shape for a setting (not necessarily one its job type's check accepts)."""
    if s.choices:
        return s.choices[0]
    return {"string": "x", "path": "/x/y", "frames": "1", "integer": int(s.minimum or 1),
            "number": float(s.minimum or 1), "boolean": False, "list": []}[s.type]


def test_the_example_job_type_is_among_them():
    assert "ffmpeg-thumbnails" in TYPES and "video-encode" in TYPES and "blender-render" in TYPES


@pytest.mark.parametrize("name", TYPES)
def test_schema_is_complete(name):
    desc = REGISTRY.get(name).describe()
    assert desc["name"] == name and desc["label"] and desc["description"]
    keys = [s["key"] for s in desc["settings"]]
    assert len(keys) == len(set(keys))
    for s in desc["settings"]:
        assert s["label"] and s["description"], f"{name}.{s['key']}"
        if s["default"] is not None:  # defaults must pass their own setting's check
            Setting(**{k: (tuple(v) if k == "choices" and v else v) for k, v in s.items()}).check(s["default"],
                                                                                                   1_000_000)


@pytest.mark.parametrize("name", TYPES)
def test_unknown_and_missing_settings_are_named(name):
    jt = REGISTRY.get(name)
    with pytest.raises(SettingError) as info:
        jt.validate({"no_such_setting": 1})
    assert info.value.key in ("no_such_setting", *[s.key for s in jt.settings_schema if s.required])
    required = [s for s in jt.settings_schema if s.required and s.default is None]
    if required:
        with pytest.raises(SettingError) as info:
            jt.validate({})
        assert info.value.key == required[0].key and "required" in str(info.value)
    with pytest.raises(SettingError) as info:
        jt.validate({**{s.key: plausible(s) for s in jt.settings_schema}, "no_such_setting": 1})
    assert info.value.key == "no_such_setting"


@pytest.mark.parametrize("name, key", [(n, s.key) for n in TYPES for s in REGISTRY.get(n).settings_schema])
def test_a_value_of_the_wrong_type_is_refused_naming_the_setting(name, key):
    jt = REGISTRY.get(name)
    raw = {s.key: plausible(s) for s in jt.settings_schema}
    raw[key] = {"not": "a value"}
    with pytest.raises(SettingError) as info:
        jt.validate(raw)
    assert info.value.key == key
    assert str(info.value).startswith(f"setting '{key}': ")


DOCUMENTED = ["sleep", "exec-command", "blender-render", "video-encode", "ffmpeg-thumbnails"]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docs_list_every_setting(name):
    text = (EXAMPLES.parents[1] / "docs" / "job-types.md").read_text()
    assert f"`{name}`" in text
    for s in REGISTRY.get(name).settings_schema:
        assert f"`{s.key}`" in text, f"docs/job-types.md does not mention {name}'s setting '{s.key}'"


def test_a_setting_given_in_a_files_mode_it_does_not_apply_to_is_refused():
    from backend.server.compilers.base import validate_settings
    schema = [Setting("root", "path", modes=("shared",), label="Root", description="d"),
              Setting("n", "integer", default=1, label="N", description="d")]
    assert [s["modes"] for s in (x.to_dict() for x in schema)] == [["shared"], ["shared", "upload"]]
    assert validate_settings(schema, {"root": "/x"}, files_mode="shared") == {"root": "/x", "n": 1}
    assert validate_settings(schema, {"n": 2}, files_mode="upload") == {"n": 2}
    assert validate_settings(schema, {"root": "/x"}) == {"root": "/x", "n": 1}, "mode not known yet: not checked"
    with pytest.raises(SettingError) as info:
        validate_settings(schema, {"root": "/x"}, files_mode="upload")
    assert info.value.key == "root" and "only applies to jobs with shared storage" in str(info.value)
    with pytest.raises(ValueError):
        Setting("x", "string", modes=("nas",))


@pytest.mark.parametrize("name", [n for n in TYPES if n != "ffmpeg-thumbnails"])
def test_every_built_in_type_takes_the_same_settings_in_both_modes(name):
    desc = REGISTRY.get(name).describe()
    assert desc["files_modes"] == ["shared", "upload"]
    assert all(s["modes"] == ["shared", "upload"] for s in desc["settings"])

