"""For the services' configuration tests."""

from __future__ import annotations

import pytest

from shared.config import ConfigError


def config_error(load, tmp_path, text: str) -> str:
    """The message of the ConfigError `load(path)` raises for a file holding `text`."""
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path)
    return str(err.value)
