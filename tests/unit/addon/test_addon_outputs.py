import os

import pytest

from blender_addon import outputs as out
from shared.variables import Variables


def test_latest_image_prefers_the_newest_then_the_highest_frame():
    outputs = [{"relpath": "shot/000001.png", "created": "2024-01-01T00:00:01Z"},
               {"relpath": "shot/000003.png", "created": "2024-01-01T00:00:02Z"},
               {"relpath": "shot/000002.png", "created": "2024-01-01T00:00:02Z"},
               {"relpath": "shot/log.txt", "created": "2024-01-01T00:00:09Z"}]
    assert out.latest_image(outputs)["relpath"] == "shot/000003.png"
    assert out.latest_image([{"relpath": "a.txt"}]) is None


def test_output_urls():
    assert out.output_url("j1", {"url": "http://x/y"}) == "http://x/y"
    assert out.output_url("j1", {"sha256": "ab" * 32, "relpath": "a.png"}) == f"/api/files/{'ab' * 32}"
    assert out.output_url("j 1", {"relpath": "a b.png"}) == "/api/jobs/j%201/outputs/a%20b.png"


def test_destination_lands_in_the_output_folder_and_never_escapes(tmp_path):
    local = str(tmp_path / "render" / "shot" / "######")
    assert out.destination("shot/000001.png", local) == str(tmp_path / "render" / "shot" / "000001.png")
    assert out.destination("000001.png", local) == str(tmp_path / "render" / "shot" / "000001.png")
    assert out.destination("other/x.png", local) == str(tmp_path / "render" / "shot" / "other" / "x.png")
    for bad in ("../x.png", "shot/../../x.png", ""):
        with pytest.raises(out.OutputError, match="unsafe path"):
            out.destination(bad, local)


def test_shared_output_folder_translates_back_to_this_computer():
    variables = Variables.from_dict({"render": {"direction": "twoway", "values": [
        {"platform": "linux", "value": "/mnt/render"}, {"platform": "windows", "value": "R:"}]}})
    doc = {"settings": {"render_output": "{render}/shot/######"}}
    assert out.shared_output_folder(doc, variables, "linux") == "/mnt/render/shot"
    assert out.shared_output_folder(doc, variables, "windows") == "R:/shot"
    with pytest.raises(out.OutputError, match="no value for"):
        out.shared_output_folder(doc, Variables(), "linux")
    with pytest.raises(out.OutputError, match="no output path"):
        out.shared_output_folder({"settings": {}}, variables, "linux")


def test_is_image():
    assert out.is_image("a/B.PNG") and out.is_image("x.exr") and not out.is_image("x.mkv")
    assert os.path.splitext("a.tar.gz")[1] == ".gz"
