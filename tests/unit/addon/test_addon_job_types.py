import pytest

from blender_addon import job_types as jt
from tests.unit.addon.addon_schemas import ALL, RENDER


def test_parses_the_servers_schema():
    types = jt.parse_job_types({"job_types": ALL})
    assert [t.name for t in types] == ["blender-render", "blender-bake", "sleep"]
    render = types[0]
    assert render.title == "Blender render"
    assert render.spec("chunk_size").type == jt.INT and render.spec("chunk_size").minimum == 1
    assert render.spec("fps").type == jt.FLOAT
    assert render.spec("create_video").type == jt.BOOL
    assert render.spec("rna_overrides").type == jt.LIST
    assert render.spec("format").choices == ("PNG", "JPEG", "OPEN_EXR")
    assert render.spec("filepath").subtype == "FILE_PATH"
    assert render.spec("frames").type == jt.STRING


def test_a_bare_list_and_a_name_table_parse_the_same():
    assert jt.parse_job_types(ALL) == jt.parse_job_types({t["name"]: t for t in ALL})


def test_generic_settings_leave_out_what_the_addon_fills_in():
    render = jt.parse_job_types([RENDER])[0]
    assert [s.key for s in render.generic_settings] == ["rna_overrides", "samples", "quality"]


def test_a_new_job_type_needs_no_new_addon():
    custom = {"name": "studio-denoise", "settings": [
        {"key": "strength", "type": "number", "default": 0.5},
        {"key": "mode", "type": "choice", "choices": ["fast", "good"], "default": "good"},
        {"key": "note", "type": "string"}]}
    t = jt.parse_job_types([custom])[0]
    assert [s.key for s in t.generic_settings] == ["strength", "mode", "note"]
    assert t.spec("note").type == jt.STRING and not t.error
    assert jt.build_settings(t, {"strength": 0.8, "note": "x"}, {}) == \
        {"strength": 0.8, "mode": "good", "note": "x"}


def test_a_setting_type_the_addon_does_not_know_is_an_error_not_text():
    """Issue 9: the vocabulary is shared/setting_types.py; nothing is silently taken as text."""
    custom = {"name": "studio-denoise", "settings": [{"key": "mystery", "type": "some-future-type"}]}
    other = {"name": "fine", "settings": [{"key": "n", "type": "integer"}]}
    t, fine = jt.parse_job_types([custom, other])
    assert "unknown setting type 'some-future-type'" in t.error and "update it" in t.error
    assert t.settings == () and not fine.error and fine.spec("n").type == jt.INT


@pytest.mark.parametrize("bad, message", [
    ("not a list", "not a list"),
    ([{"settings": []}], "no name"),
    ([{"name": "x", "settings": [{"type": "string"}]}], "without a 'key'"),
])
def test_broken_schemas_are_reported(bad, message):
    with pytest.raises(jt.JobTypeError, match=message):
        jt.parse_job_types(bad)


def test_build_settings_layers_defaults_generic_and_computed():
    render = jt.parse_job_types([RENDER])[0]
    out = jt.build_settings(render, {"samples": 64, "quality": "low", "chunk_size": 99},
                            {"filepath": "a.blend", "frames": "1-3", "render_output": "x/######",
                             "chunk_size": 2, "unknown_to_the_type": 1})
    assert out == {"filepath": "a.blend", "frames": "1-3", "chunk_size": 2, "render_output": "x/######",
                   "blender_cmd": "{blender}", "create_video": False, "images_or_video": "images",
                   "samples": 64, "quality": "low"}


def test_a_missing_required_setting_is_named():
    render = jt.parse_job_types([RENDER])[0]
    with pytest.raises(jt.JobTypeError, match="'Render output' is required"):
        jt.build_settings(render, {}, {"filepath": "a.blend", "frames": "1"})


@pytest.mark.parametrize("key, value, message", [
    ("samples", "many", "'Samples' must be a whole number"),
    ("samples", 0, "'Samples' must be at least 1"),
    ("samples", 5000, "at most 4096"),
    ("quality", "ultra", "'Quality' must be one of low, high"),
])
def test_bad_values_are_named(key, value, message):
    render = jt.parse_job_types([RENDER])[0]
    computed = {"filepath": "a.blend", "frames": "1", "render_output": "x/#"}
    with pytest.raises(jt.JobTypeError, match=message):
        jt.build_settings(render, {key: value}, computed)


def test_coerce():
    spec = jt.SettingSpec("x", jt.BOOL)
    assert jt.coerce(spec, "yes") is True and jt.coerce(spec, "off") is False and jt.coerce(spec, 1) is True
    assert jt.coerce(jt.SettingSpec("l", jt.LIST), "a\n\nb\n") == ["a", "b"]
    assert jt.coerce(jt.SettingSpec("f", jt.FLOAT), "2.5") == 2.5
    with pytest.raises(jt.JobTypeError):
        jt.coerce(jt.SettingSpec("i", jt.INT), 2.5)


def test_values_round_trip_as_json():
    values = {"blender-render": {"samples": 4, "quality": "low"}}
    assert jt.load_values(jt.dump_values(values)) == values
    assert jt.load_values("") == {} and jt.load_values("{broken") == {} and jt.load_values("[1]") == {}
