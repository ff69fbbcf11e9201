#!/usr/bin/env python3
"""Builds dist/flamenco-addon-<version>.zip, the installable Blender add-on.

One zip serves both ways Blender installs add-ons:

* a legacy add-on (Blender 3.4 and newer): the package folder `flamenco/` with
  `bl_info` in its `__init__.py`; Blender Asset Tracer is vendored in
  `flamenco/_vendor/` and put on sys.path only when BAT is not importable;
* a Blender 4.2+ extension: `flamenco/blender_manifest.toml` next to it, with
  BAT as a wheel in `flamenco/wheels/` (the way the extension platform wants
  third-party modules: Blender installs the wheel itself).

The `shared/` modules the add-on uses are copied into `flamenco/_shared/`.
The zip is reproducible: sorted entries, fixed timestamps.

    python build_addon.py [--out DIR]
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import importlib.metadata
import io
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "blender_addon"
PACKAGE = "flamenco"
SHARED_MODULES = ("frames.py", "setting_types.py", "statuses.py", "user_client.py", "variables.py", "version.py")
BAT_DIST = "blender-asset-tracer"
BAT_PACKAGE = "blender_asset_tracer"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
BLENDER_MIN_EXTENSION = "4.2.0"

sys.path.insert(0, str(ROOT))
from shared.version import __version__  # noqa: E402


class BuildError(Exception):
    pass


def _skip(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo")


def addon_sources() -> dict[str, bytes]:
    """The add-on's own files, as `flamenco/...`, with bl_info's version set to the project's."""
    out = {}
    for path in sorted(SOURCE.rglob("*")):
        if path.is_dir() or _skip(path):
            continue
        data = path.read_bytes()
        if path == SOURCE / "__init__.py":
            data = set_bl_info_version(data.decode("utf-8"), __version__).encode("utf-8")
        out[f"{PACKAGE}/{path.relative_to(SOURCE).as_posix()}"] = data
    return out


def set_bl_info_version(text: str, version: str) -> str:
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:3])
    new, count = re.subn(r'("version":\s*)\([^)]*\)', lambda m: f"{m.group(1)}{numbers}", text, count=1)
    if count != 1:
        raise BuildError("blender_addon/__init__.py: no \"version\" in bl_info")
    return new


def shared_sources() -> dict[str, bytes]:
    out = {f"{PACKAGE}/_shared/__init__.py":
           b'"""Copies of the shared/ modules the add-on uses (made by build_addon.py)."""\n'}
    for name in SHARED_MODULES:
        src = ROOT / "shared" / name
        text = src.read_text("utf-8")
        if re.search(r"^\s*from shared\b|^\s*import shared\b", text, re.M):
            raise BuildError(f"shared/{name} imports 'shared' by its absolute name; the vendored "
                             "copy needs relative imports")
        out[f"{PACKAGE}/_shared/{name}"] = text.encode("utf-8")
    return out


def _bat_distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(BAT_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise BuildError(f"{BAT_DIST} is not installed in this Python ({sys.executable}); "
                         "run `pip install -e .` first") from None


def bat_files() -> list[tuple[str, Path]]:
    """(path relative to site-packages, file) of the installed BAT package and its dist-info."""
    dist = _bat_distribution()
    out = []
    for rel in dist.files or ():
        parts = Path(str(rel)).parts
        if not parts or parts[0] == ".." or _skip(Path(str(rel))):
            continue
        out.append((Path(str(rel)).as_posix(), Path(dist.locate_file(rel))))
    if not any(p.startswith(f"{BAT_PACKAGE}/") for p, _ in out):
        raise BuildError(f"{BAT_DIST}'s files are not where its metadata says")
    return sorted(out)


def vendored_bat() -> dict[str, bytes]:
    return {f"{PACKAGE}/_vendor/{rel}": path.read_bytes()
            for rel, path in bat_files() if rel.startswith(f"{BAT_PACKAGE}/")}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def bat_wheel() -> tuple[str, bytes]:
    """A wheel of the installed BAT (pure Python), rebuilt from its installed files.

    Rebuilding it rather than downloading keeps the build offline and pins the
    BAT the tests ran with.
    """
    dist = _bat_distribution()
    version = dist.version
    files = {}
    info_dir = None
    for rel, path in bat_files():
        top = rel.split("/")[0]
        if top.endswith(".dist-info"):
            info_dir = top
            if rel.split("/")[-1] in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"):
                continue
        files[rel] = path.read_bytes()
    if info_dir is None or f"{info_dir}/WHEEL" not in files:
        raise BuildError(f"{BAT_DIST} has no .dist-info/WHEEL; cannot rebuild its wheel")
    wheel_meta = files[f"{info_dir}/WHEEL"].decode("utf-8")
    tags = re.findall(r"^Tag:\s*(\S+)", wheel_meta, re.M)
    if not tags or not all(t.endswith("-none-any") for t in tags):
        raise BuildError(f"{BAT_DIST} is not a pure-Python wheel (tags {tags})")
    tag = ".".join(sorted({t.split("-")[0] for t in tags})) + "-none-any"
    name = f"{BAT_PACKAGE}-{version}-{tag}.whl"

    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for rel in sorted(files):
        writer.writerow([rel, _record_hash(files[rel]), len(files[rel])])
    writer.writerow([f"{info_dir}/RECORD", "", ""])
    files[f"{info_dir}/RECORD"] = record.getvalue().encode("utf-8")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(files, key=lambda r: (r.startswith(info_dir), r)):
            _write(zf, rel, files[rel])
    return name, buf.getvalue()


def manifest(version: str, wheel_name: str) -> str:
    return f'''schema_version = "1.0.0"

id = "{PACKAGE}"
version = "{version}"
name = "Flamenco"
tagline = "Render on your own Flamenco render farm"
maintainer = "Flamenco (Python) authors"
type = "add-on"
tags = ["Render"]

blender_version_min = "{BLENDER_MIN_EXTENSION}"

license = ["SPDX:GPL-3.0-or-later"]

wheels = ["./wheels/{wheel_name}"]

[permissions]
network = "Talk to the Flamenco Server to submit and follow render jobs"
files = "Save a copy of the blend file and pack it with its dependencies"
'''


def _write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def build(out_dir: Path) -> Path:
    entries: dict[str, bytes] = {}
    entries.update(addon_sources())
    entries.update(shared_sources())
    entries.update(vendored_bat())
    wheel_name, wheel = bat_wheel()
    entries[f"{PACKAGE}/wheels/{wheel_name}"] = wheel
    entries[f"{PACKAGE}/blender_manifest.toml"] = manifest(__version__, wheel_name).encode("utf-8")

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"flamenco-addon-{__version__}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            _write(zf, name, entries[name])
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    args = parser.parse_args(argv)
    try:
        target = build(args.out)
    except BuildError as ex:
        print(f"build_addon.py: {ex}", file=sys.stderr)
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
