"""The configuration loader every service uses: each value checked against its field's type,
unknown keys refused, sections read as nested dataclasses, errors naming the setting."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.config import ConfigError, apply, convert, read_toml


@dataclass
class Inner:
    interval: float = 1.0
    count: int = 3
    name: str = "x"


@dataclass
class Outer:
    flag: bool = False
    threads: int = 8
    seconds: float = 2.5
    label: str = ""
    where: Path = Path("data")
    maybe_dir: Path | None = None
    maybe_text: str | None = None
    tags: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)


def test_values_of_the_right_type_are_taken_and_converted():
    cfg = apply(Outer(), {"flag": True, "threads": 16, "seconds": 3, "label": "a", "where": "/srv/x",
                          "maybe_dir": "/tmp/y", "maybe_text": "t", "tags": ["gpu", "cuda"], "sizes": [1, 2],
                          "inner": {"interval": 5, "name": "n"}})
    assert cfg == Outer(True, 16, 3.0, "a", Path("/srv/x"), Path("/tmp/y"), "t", ["gpu", "cuda"], [1, 2],
                        Inner(5.0, 3, "n"))
    assert isinstance(cfg.seconds, float) and isinstance(cfg.inner.interval, float), "an integer becomes a float"
    assert isinstance(cfg.where, Path) and isinstance(cfg.maybe_dir, Path)


def test_apply_returns_a_copy_on_top_of_the_given_values():
    base = Outer(threads=4, inner=Inner(count=7))
    cfg = apply(base, {"inner": {"interval": 9.5}})
    assert cfg.threads == 4 and cfg.inner == Inner(9.5, 7, "x"), "only what the file says changes"
    assert base.inner == Inner(count=7), "the base is not changed"
    assert apply(Outer(maybe_dir=Path("/a")), {"maybe_dir": None}).maybe_dir is None


@pytest.mark.parametrize("data, message", [
    ({"flag": 1}, "'flag' must be true or false, not 1"),
    ({"flag": "yes"}, "'flag' must be true or false, not \"yes\""),
    ({"threads": 2.5}, "'threads' must be a whole number, not 2.5"),
    ({"threads": True}, "'threads' must be a whole number, not true"),
    ({"threads": "8"}, "'threads' must be a whole number, not \"8\""),
    ({"seconds": "x"}, "'seconds' must be a number, not \"x\""),
    ({"seconds": False}, "'seconds' must be a number, not false"),
    ({"seconds": math.nan}, "'seconds' must be a number, not NaN"),
    ({"label": 5}, "'label' must be a string, not 5"),
    ({"where": 5}, "'where' must be a path (a string), not 5"),
    ({"maybe_dir": ["a"]}, "'maybe_dir' must be a path (a string), not [\"a\"]"),
    ({"maybe_text": 1}, "'maybe_text' must be a string, not 1"),
    ({"tags": "gpu"}, "'tags' must be a list of strings, not \"gpu\""),
    ({"tags": ["gpu", 3]}, "'tags' must be a list of strings, not [\"gpu\", 3]"),
    ({"sizes": [1, 2.5]}, "'sizes' must be a list of whole numbers, not [1, 2.5]"),
    ({"inner": 3}, "[inner] must be a table, not 3"),
    ({"inner": {"interval": "soon"}}, "'inner.interval' must be a number, not \"soon\""),
    ({"inner": {"count": 1.5}}, "'inner.count' must be a whole number, not 1.5"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_setting(data, message):
    with pytest.raises(ConfigError) as err:
        apply(Outer(), data)
    assert str(err.value).startswith(message), str(err.value)


def test_long_values_are_shortened_in_the_message():
    with pytest.raises(ConfigError) as err:
        apply(Outer(), {"threads": "9" * 100})
    assert str(err.value) == f"'threads' must be a whole number, not \"{'9' * 36}..."


@pytest.mark.parametrize("data, message", [
    ({"treads": 8}, "unknown setting 'treads'; did you mean 'threads'?"),
    ({"zzz": 1}, "unknown setting 'zzz'; known: flag, inner, label, maybe_dir, maybe_text, seconds, sizes, tags, "
                 "threads, where"),
    ({"extra": {"a": 1}}, "unknown section 'extra'"),
    ({"inner": {"intervall": 1}}, "unknown setting 'inner.intervall'; did you mean 'inner.interval'?"),
    ({"inner": {"qqq": 1}}, "unknown setting 'inner.qqq'; known: count, interval, name"),
])
def test_unknown_keys_are_refused(data, message):
    with pytest.raises(ConfigError) as err:
        apply(Outer(), data)
    assert str(err.value).startswith(message), str(err.value)


def test_convert_checks_one_value_under_the_name_the_file_uses():
    assert convert("checks.read", ["/a"], list[str]) == ["/a"]
    with pytest.raises(ConfigError, match=r"^'checks.read' must be a list of strings, not 5$"):
        convert("checks.read", 5, list[str])
    assert convert("inner", {"count": 4}, Inner) == Inner(count=4)


def test_a_type_the_loader_does_not_know_is_a_programming_error():
    @dataclass
    class Odd:
        either: int | str = 0
        mapping: dict = field(default_factory=dict)

    with pytest.raises(TypeError, match="either"):
        apply(Odd(), {"either": 1})
    with pytest.raises(TypeError, match="mapping"):
        apply(Odd(), {"mapping": {}})


def test_read_toml(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('threads = 4\n[inner]\nname = "n"\n')
    assert apply(Outer(), read_toml(good)) == Outer(threads=4, inner=Inner(name="n"))
    bad = tmp_path / "bad.toml"
    bad.write_text("threads = [")
    with pytest.raises(ConfigError, match="config file '.*bad.toml' is not valid TOML"):
        read_toml(bad)
    with pytest.raises(ConfigError, match="config file '.*missing.toml' does not exist"):
        read_toml(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_toml(tmp_path)
