"""Where the CLI finds the Server and its token: flags, then environment, then files.

Order: `--server`/`--token`; FLAMENCO_SERVER / FLAMENCO_TOKEN; the farm.json of
`--farm DIR` or FLAMENCO_FARM (what `flamenco farm` wrote); ~/.config/flamenco/cli.toml:

    server_url = "http://render-server:8080"
    token = "..."
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from shared.config import ConfigError

__all__ = ["CliConfig", "ConfigError", "config_path", "resolve"]


@dataclass
class CliConfig:
    server_url: str
    token: str


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "flamenco" / "cli.toml"


def _from_farm(farm_dir: str) -> dict:
    path = Path(farm_dir) / "farm.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; is a farm running there (`flamenco farm --data-dir {farm_dir}`)?") from None
    except ValueError as ex:
        raise ConfigError(f"{path} is not valid JSON: {ex}") from None
    return {"server_url": data.get("server_url"), "token": data.get("admin_token")}


def _from_file(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as ex:
        raise ConfigError(f"{path}: {ex}") from None
    return {"server_url": data.get("server_url"), "token": data.get("token")}


def resolve(server: str | None, token: str | None, farm: str | None) -> CliConfig:
    layers = [{"server_url": server, "token": token},
              {"server_url": os.environ.get("FLAMENCO_SERVER"), "token": os.environ.get("FLAMENCO_TOKEN")}]
    farm = farm or os.environ.get("FLAMENCO_FARM")
    if farm:
        layers.append(_from_farm(farm))
    layers.append(_from_file(config_path()))
    found = {}
    for key in ("server_url", "token"):
        found[key] = next((layer[key] for layer in layers if layer.get(key)), None)
    if not found["server_url"]:
        raise ConfigError("no Server URL: give --server, set FLAMENCO_SERVER, or write "
                          f"server_url in {config_path()}")
    if not found["token"]:
        raise ConfigError("no API token: give --token, set FLAMENCO_TOKEN, or write "
                          f"token in {config_path()} (`flamenco-server create-user` prints one)")
    return CliConfig(found["server_url"].rstrip("/"), found["token"])
