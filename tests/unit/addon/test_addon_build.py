"""build_addon.py: the zip is a legacy add-on and a 4.2+ extension, and the logic is bpy-free."""

import ast
import base64
import csv
import hashlib
import io
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import build_addon
from shared.version import __version__

ROOT = Path(build_addon.__file__).resolve().parent
ADDON = ROOT / "blender_addon"
UI_MODULES = {"props", "prefs", "operators_submit", "operators_jobs", "panels", "runtime", "scene_data"}
LOGIC_MODULES = {"client", "connection", "job_types", "job_builder", "packing", "submission", "joblist",
                 "outputs", "background", "batimport", "sharedcode", "ui_record", "__init__"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    path = build_addon.build(out)
    return path, zipfile.ZipFile(path)


def test_zip_name_and_single_package_folder(built):
    path, zf = built
    assert path.name == f"flamenco-addon-{__version__}.zip"
    assert {n.split("/")[0] for n in zf.namelist()} == {"flamenco"}
    names = set(zf.namelist())
    for must in ("flamenco/__init__.py", "flamenco/blender_manifest.toml", "flamenco/_shared/frames.py",
                 "flamenco/_shared/variables.py", "flamenco/_vendor/blender_asset_tracer/pack/__init__.py"):
        assert must in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_bl_info_for_a_legacy_addon(built):
    _, zf = built
    tree = ast.parse(zf.read("flamenco/__init__.py"))
    bl_info = next(ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign) and node.targets[0].id == "bl_info")
    assert bl_info["name"] == "Flamenco"
    assert bl_info["blender"] == (3, 4, 0)
    assert bl_info["version"] == tuple(int(x) for x in __version__.split(".")[:3])
    assert bl_info["category"] == "Render"


def _terse(value: str) -> bool:
    return 0 < len(value) <= 64 and value == value.strip() and (value[-1].isalnum() or value[-1] in ")]}")


def test_manifest_follows_the_extension_rules(built):
    """The checks of Blender's own `extension validate` (cli/blender_ext.py), strict mode."""
    _, zf = built
    m = tomllib.loads(zf.read("flamenco/blender_manifest.toml").decode())
    semver = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
    for key in ("schema_version", "id", "name", "tagline", "version", "type", "maintainer", "license",
                "blender_version_min"):
        assert key in m, key
    assert semver.match(m["schema_version"]) and semver.match(m["version"])
    assert m["version"] == __version__
    assert m["id"] == "flamenco" and m["id"].isidentifier()
    assert m["type"] == "add-on"
    assert _terse(m["tagline"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", m["blender_version_min"]) and m["blender_version_min"] >= "4.2.0"
    assert m["license"] and all(x.startswith("SPDX:") for x in m["license"])
    assert set(m["permissions"]) <= {"files", "network", "clipboard", "camera", "microphone"}
    assert all(_terse(v) for v in m["permissions"].values())
    for wheel in m["wheels"]:
        assert "\\" not in wheel and wheel.endswith(".whl") and 5 <= len(Path(wheel).name.split("-")) <= 6
        assert "flamenco/" + wheel.removeprefix("./") in zf.namelist()
    # Blender finds the manifest in the zip's one sub-folder; exactly one may exist.
    assert [n for n in zf.namelist() if n.endswith("/blender_manifest.toml")] == ["flamenco/blender_manifest.toml"]


def test_bundled_wheel_is_a_valid_pure_python_wheel(built):
    _, zf = built
    [name] = [n for n in zf.namelist() if n.endswith(".whl")]
    wheel = zipfile.ZipFile(io.BytesIO(zf.read(name)))
    names = wheel.namelist()
    info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/WHEEL"))
    assert "Tag: py3-none-any" in wheel.read(f"{info}/WHEEL").decode()
    assert "blender_asset_tracer/pack/__init__.py" in names
    rows = list(csv.reader(io.StringIO(wheel.read(f"{info}/RECORD").decode())))
    recorded = {r[0] for r in rows}
    assert recorded == set(names)
    for path, digest, size in rows:
        if path.endswith("RECORD"):
            continue
        data = wheel.read(path)
        expected = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert digest == expected and int(size) == len(data), path


def test_the_build_is_reproducible(built, tmp_path):
    path, _ = built
    again = build_addon.build(tmp_path)
    assert again.read_bytes() == path.read_bytes()


def test_the_built_package_imports_without_bpy_or_site_packages(built, tmp_path):
    """Vendored BAT and shared modules are found inside the package, as in Blender."""
    _, zf = built
    zf.extractall(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]);"
            "import flamenco.packing, flamenco.submission, flamenco.sharedcode as s, blender_asset_tracer as b;"
            "assert '_vendor' in b.__file__, b.__file__;"
            "assert s.frames.__name__ == 'flamenco._shared.frames', s.frames.__name__;"
            "print('ok')")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_only_ui_modules_import_bpy_and_nothing_imports_backend_or_worker():
    modules = {p.stem for p in ADDON.glob("*.py")}
    assert modules == UI_MODULES | LOGIC_MODULES, "classify new add-on modules here"
    for path in ADDON.glob("*.py"):
        imports = _imports(path)
        assert not imports & {"backend", "worker", "requests", "bottle", "peewee"}, path.name
        if path.stem in LOGIC_MODULES:
            assert "bpy" not in imports, f"{path.name} is a logic module and may not import bpy"


def test_logic_modules_import_in_plain_python():
    code = "; ".join(f"import blender_addon.{m}" for m in sorted(LOGIC_MODULES - {"__init__"}))
    code += "; import sys; assert 'bpy' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_bl_info_version_rewrite():
    text = 'bl_info = {\n    "version": (0, 0, 1),\n}\n'
    assert '"version": (2, 3, 4)' in build_addon.set_bl_info_version(text, "2.3.4.dev1")
    with pytest.raises(build_addon.BuildError):
        build_addon.set_bl_info_version("nothing", "1.0.0")


def test_the_package_imports_in_python_3_10(built, tmp_path):
    """Official Blender 3.4-3.6 builds run Python 3.10 (Debian's 3.4 runs 3.11)."""
    import shutil
    python = shutil.which("python3.10")
    if not python or subprocess.run([python, "-c", "1"], capture_output=True).returncode != 0:
        pytest.skip("no python3.10 on this machine")
    _, zf = built
    zf.extractall(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]);"
            "import flamenco.packing, flamenco.submission, flamenco.background, flamenco.connection;"
            "print('ok')")
    result = subprocess.run([python, "-I", "-S", "-c", code, str(tmp_path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
