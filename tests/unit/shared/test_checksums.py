"""Files written while hashed: renamed into place only when whole and right, gone otherwise."""

from __future__ import annotations

import hashlib
import io
import os
import stat

import pytest

from shared.checksums import HashingFile, HashMismatch, TooLarge, is_sha256

DATA = bytes(range(256)) * 5000  # more than one CHUNK
SHA = hashlib.sha256(DATA).hexdigest()


def test_is_sha256():
    assert is_sha256(SHA) and is_sha256("0" * 64)
    assert not any(is_sha256(v) for v in (SHA.upper(), SHA[:-1], SHA + "0", "g" * 64, None, 5, ""))


@pytest.mark.parametrize("source", [lambda: io.BytesIO(DATA), lambda: [DATA[:1000], DATA[1000:]]],
                         ids=["stream", "chunks"])
def test_a_good_transfer_is_renamed_into_place(tmp_path, source):
    target = tmp_path / "blobs" / SHA
    target.parent.mkdir()
    with HashingFile(tmp_path, ".part-") as f:
        f.copy(source())
        f.check(SHA, len(DATA))
        assert f.move_to(target, mode=0o444) == target
    assert target.read_bytes() == DATA and stat.S_IMODE(os.stat(target).st_mode) == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs"], "no temporary file left"


def test_a_stream_is_read_up_to_its_length(tmp_path):
    with HashingFile(tmp_path) as f:
        f.copy(io.BytesIO(DATA + b"trailing bytes"), len(DATA))
        assert (f.sha256, f.size) == (SHA, len(DATA))


def test_a_wrong_transfer_leaves_nothing_behind(tmp_path):
    with pytest.raises(HashMismatch, match=f"the bytes have SHA-256 {SHA}, not {'0' * 64}"):
        with HashingFile(tmp_path) as f:
            f.copy(io.BytesIO(DATA))
            f.check("0" * 64)
    with pytest.raises(HashMismatch, match=f"{len(DATA)} bytes arrived instead of 5"):
        with HashingFile(tmp_path) as f:
            f.copy(io.BytesIO(DATA))
            f.check(SHA, 5)
    assert list(tmp_path.iterdir()) == []


def test_over_the_size_limit(tmp_path):
    with pytest.raises(TooLarge, match="over the limit of 1000 bytes"):
        with HashingFile(tmp_path, max_size=1000) as f:
            f.copy(io.BytesIO(DATA))
    assert list(tmp_path.iterdir()) == []


def test_a_writer_for_code_that_pushes_bytes(tmp_path):
    def download(dest):
        for i in range(0, len(DATA), 4096):
            dest.write(DATA[i:i + 4096])

    with HashingFile(tmp_path) as f:
        download(f)
        f.check(SHA)
        f.move_to(tmp_path / "file")
    assert (tmp_path / "file").read_bytes() == DATA
