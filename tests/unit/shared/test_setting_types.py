"""shared/setting_types.py: the one vocabulary of setting types, for the Server, the add-on
and the CLI (issue 9)."""

import pytest

from backend.server.compilers import Registry, Setting, SettingError
from blender_addon import job_types as addon_types
from flamenco_cli.main import UsageError, parse_settings
from shared import setting_types as st


def test_the_names_and_their_json_types():
    assert st.NAMES == ("string", "integer", "number", "boolean", "frames", "path", "choice", "list")
    assert {n: st.get(n).json_type for n in st.NAMES} == {
        "string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "frames": "string",
        "path": "string", "choice": "string", "list": "array"}
    assert [st.get(n).empty for n in ("string", "integer", "number", "boolean", "list")] == ["", 0, 0.0, False, []]


@pytest.mark.parametrize("name", ["int", "float", "bool", "text", "", None, "some-future-type"])
def test_an_unknown_type_is_an_error(name):
    with pytest.raises(st.UnknownSettingType, match="unknown setting type"):
        st.get(name)
    with pytest.raises(st.UnknownSettingType):
        st.parse(name, "3")


@pytest.mark.parametrize("name, text, value", [
    ("integer", " 12 ", 12), ("integer", 3.0, 3), ("number", "2.5", 2.5), ("number", 2, 2.0),
    ("boolean", "Yes", True), ("boolean", "off", False), ("boolean", "", False), ("boolean", 1, True),
    ("list", "a\n\nb\n", ["a", "b"]), ("list", '["x", "y"]', ["x", "y"]), ("list", ("x",), ["x"]),
    ("frames", "1-10", "1-10"), ("path", "//x", "//x"), ("string", 5, "5"),
])
def test_parse_what_a_person_typed(name, text, value):
    assert st.parse(name, text) == value


@pytest.mark.parametrize("name, text, message", [
    ("integer", "many", "must be a whole number, not 'many'"), ("integer", 2.5, "must be a whole number"),
    ("number", "x", "must be a number"), ("boolean", "maybe", "must be yes or no, not 'maybe'"),
    ("list", "[1, ", "or a JSON list"), ("list", 5, "must be a list of lines"),
])
def test_parse_errors(name, text, message):
    with pytest.raises(st.SettingValueError, match=message):
        st.parse(name, text)


@pytest.mark.parametrize("name, value, kw, message", [
    ("integer", "3", {}, "must be an integer, not a string"), ("integer", True, {}, "must be an integer"),
    ("number", None, {}, "must be a number, not null"), ("boolean", "yes", {}, "must be true or false"),
    ("list", ["a", 1], {}, "must be a list of strings"), ("string", "  ", {"required": True}, "may not be empty"),
    ("frames", "9-1", {}, "ends before it starts"), ("choice", "c", {"choices": ("a", "b")}, "must be one of a, b"),
    ("integer", 0, {"minimum": 1}, "must be at least 1, not 0"), ("number", 5.5, {"maximum": 5}, "at most 5"),
])
def test_check_is_strict_like_json(name, value, kw, message):
    with pytest.raises(st.SettingValueError, match=message):
        st.check(name, value, **kw)


def test_check_normalises():
    assert st.check("integer", 4.0) == 4 and isinstance(st.check("number", 4), float)
    assert st.check("frames", "1-3,5") == "1-3,5"


def test_server_addon_and_cli_share_it():
    """Every built-in job type parses in the add-on without an error; the Server refuses a type
    outside the vocabulary; the CLI refuses one too."""
    described = Registry.builtin().describe()
    parsed = addon_types.parse_job_types(described)
    assert all(not t.error for t in parsed)
    assert {s.raw_type for t in parsed for s in t.settings} <= set(st.NAMES)
    with pytest.raises(ValueError, match="unknown setting type 'int'"):
        Setting("n", "int")
    with pytest.raises(SettingError, match="setting 'n': must be an integer, not a string"):
        Setting("n", "integer").check("3", 10)
    with pytest.raises(UsageError, match="unknown setting type"):
        parse_settings(["n=3"], [{"key": "n", "type": "int"}])
