"""Packing real .blend files (made by Blender) with BAT: layout, hashes, rewrites, cancel."""

import hashlib
import shutil
import threading

import pytest

from blender_addon import packing

pytestmark = pytest.mark.e2e


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_pack_keeps_the_layout_and_reads_files_in_place(project, tmp_path):
    blend = project / "scenes" / "shot.blend"
    steps = []
    result = packing.pack_in_place(str(blend), str(project), str(tmp_path / "staging"),
                                   progress=lambda *a: steps.append(a))
    packing.hash_files(result.files)
    by_rel = {f.relpath: f for f in result.files}
    assert set(by_rel) == {"scenes/shot.blend", "libs/props.blend", "textures/checker.png"}
    assert result.blend_relpath == "scenes/shot.blend" and result.missing == []
    # Nothing needed rewriting: every file is read where it lies, and hashes are the originals'.
    for rel, f in by_rel.items():
        assert f.path == str(project / rel) and f.sha256 == sha(project / rel) and f.size == (project / rel).stat().st_size
    assert result.manifest()["textures/checker.png"] == {"sha256": sha(project / "textures/checker.png"),
                                                         "size": (project / "textures/checker.png").stat().st_size}
    assert any(stage == "Finding dependencies" for stage, *_ in steps)


def test_the_temporary_copy_is_sent_under_the_original_name(project, tmp_path):
    copy = project / "scenes" / "shot.flamenco.blend"
    shutil.copy(project / "scenes" / "shot.blend", copy)
    result = packing.pack_in_place(str(copy), str(project), str(tmp_path / "staging"), blend_name="shot.blend")
    assert result.blend_relpath == "scenes/shot.blend"
    assert {f.relpath: f.path for f in result.files}["scenes/shot.blend"] == str(copy)


def test_files_outside_the_project_go_under_outside_project_with_rewritten_paths(project, tmp_path):
    scenes = project / "scenes"
    result = packing.pack_in_place(str(scenes / "shot.blend"), str(scenes), str(tmp_path / "staging"))
    packing.hash_files(result.files)
    rels = {f.relpath for f in result.files}
    assert result.blend_relpath == "shot.blend"
    assert any(r.startswith("_outside_project/") and r.endswith("/textures/checker.png") for r in rels)
    assert any(r.startswith("_outside_project/") and r.endswith("/libs/props.blend") for r in rels)
    shot = next(f for f in result.files if f.relpath == "shot.blend")
    # BAT rewrote the .blend's library and image paths; the rewritten copy is kept in staging.
    assert shot.path.startswith(str(tmp_path / "staging")) and shot.sha256 != sha(scenes / "shot.blend")


def test_shared_storage_pack_copies_into_the_target(project, tmp_path):
    target = tmp_path / "shared" / "20240101-000000-anna-shot"
    result = packing.pack_to_folder(str(project / "scenes" / "shot.blend"), str(project), str(target))
    assert result.root == str(target)
    for rel in ("scenes/shot.blend", "libs/props.blend", "textures/checker.png"):
        assert (target / rel).read_bytes() == (project / rel).read_bytes()
    assert {f.relpath for f in result.files} == {"scenes/shot.blend", "libs/props.blend", "textures/checker.png"}


def test_missing_files_are_reported_not_fatal(project, tmp_path):
    (project / "textures" / "checker.png").unlink()
    result = packing.pack_in_place(str(project / "scenes" / "shot.blend"), str(project), str(tmp_path / "s"))
    assert result.missing == [str(project / "textures" / "checker.png")]
    assert "textures/checker.png" not in {f.relpath for f in result.files}


def test_cancel_stops_packing_and_hashing(project, tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(packing.PackCanceled):
        packing.pack_in_place(str(project / "scenes" / "shot.blend"), str(project), str(tmp_path / "s"),
                              cancel=cancel)
    f = packing.PackedFile("a", str(project / "textures" / "checker.png"), 1)
    with pytest.raises(packing.PackCanceled):
        packing.hash_files([f], cancel=cancel)


def test_a_file_that_is_not_a_blend_file_is_a_plain_error(tmp_path):
    bad = tmp_path / "bad.blend"
    bad.write_bytes(b"not a blend file at all")
    with pytest.raises(packing.PackError, match="Cannot read a .blend file"):
        packing.pack_in_place(str(bad), str(tmp_path), str(tmp_path / "s"))


def test_a_file_vanishing_mid_pack_fails_plainly_and_leaves_no_thread(project, tmp_path, monkeypatch):
    """BAT leaves its transfer thread waiting when a file goes missing while it queues copies;
    the add-on stops it, so Blender's Python can still exit."""
    import threading as th

    from blender_asset_tracer.pack import transfer

    real = transfer.FileTransferer.queue_copy

    def vanish(self, src, dst):
        if src.name == "checker.png":
            raise FileNotFoundError(2, "No such file or directory", str(src))
        return real(self, src, dst)

    monkeypatch.setattr(transfer.FileTransferer, "queue_copy", vanish)
    before = set(th.enumerate())
    with pytest.raises(packing.PackError, match="Packing failed: .*checker.png"):
        packing.pack_in_place(str(project / "scenes" / "shot.blend"), str(project), str(tmp_path / "s"))
    leftover = [t for t in set(th.enumerate()) - before if t.is_alive()]
    assert leftover == []
