import pytest
from hypothesis import given, strategies as st

from shared.frames import (FrameRangeError, blender_frames, chunk_frames, chunk_name, merge_frames,
                           parse_frames)

frame_sets = st.lists(st.integers(min_value=-500, max_value=5000), min_size=1, max_size=300,
                      unique=True).map(sorted)


@pytest.mark.parametrize("spec, frames", [
    ("1-10,12,20-30x2", [*range(1, 11), 12, *range(20, 31, 2)]),
    ("5", [5]),
    ("3,1,2", [1, 2, 3]),
    ("1..4", [1, 2, 3, 4]),
    ("-3--1", [-3, -2, -1]),
    (" 1 - 3 , 7 ", [1, 2, 3, 7]),
    ("1-5,3-7", [1, 2, 3, 4, 5, 6, 7]),
    ("1-10x3", [1, 4, 7, 10]),
])
def test_parse(spec, frames):
    assert parse_frames(spec) == frames


@pytest.mark.parametrize("spec, message", [
    ("5-1", "ends before it starts"),
    ("a", "'a' is not a frame"),
    ("", "empty"),
    ("   ", "empty"),
    ("1,,2", "empty item"),
    ("1-3x0", "step of 0"),
    ("1-", "'1-' is not a frame"),
    ("1-1000001", "more than 1000000 frames"),
])
def test_parse_errors(spec, message):
    with pytest.raises(FrameRangeError, match=message):
        parse_frames(spec)


def test_max_frames_is_configurable():
    assert len(parse_frames("1-100", max_frames=100)) == 100
    with pytest.raises(FrameRangeError, match="more than 99 frames"):
        parse_frames("1-100", max_frames=99)


def test_max_frames_counts_before_expanding():
    with pytest.raises(FrameRangeError):
        parse_frames("1-999999999999")


def test_parse_rejects_non_strings():
    with pytest.raises(FrameRangeError, match="must be a string"):
        parse_frames(12)


@pytest.mark.parametrize("frames, spec", [
    ([1, 2, 3, 5, 7, 9], "1-3,5-9x2"),
    ([3, 4], "3,4"),
    ([1, 3], "1,3"),
    ([1, 2, 4, 6, 8], "1,2-8x2"),
    ([7], "7"),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 20, 22, 24, 26, 28, 30], "1-10,12,20-30x2"),
])
def test_merge(frames, spec):
    assert merge_frames(frames) == spec


def test_blender_form_has_no_steps():
    assert blender_frames([1, 2, 3, 5, 7, 9]) == "1..3,5,7,9"
    assert blender_frames([3, 4]) == "3,4"
    assert blender_frames([1, 2, 3, 4]) == "1..4"


def test_merge_rejects_unsorted():
    with pytest.raises(FrameRangeError):
        merge_frames([2, 1])
    with pytest.raises(FrameRangeError):
        merge_frames([])


@given(frame_sets)
def test_parse_merge_roundtrip(frames):
    assert parse_frames(merge_frames(frames)) == frames


@given(frame_sets)
def test_blender_form_roundtrip(frames):
    assert parse_frames(blender_frames(frames)) == frames


@given(frame_sets)
def test_merge_is_never_longer_than_listing(frames):
    assert len(merge_frames(frames)) <= len(",".join(map(str, frames)))


@given(frame_sets, st.integers(min_value=1, max_value=50))
def test_chunks_cover_frames_in_order(frames, size):
    chunks = list(chunk_frames(frames, size))
    assert [f for c in chunks for f in c] == frames
    assert all(len(c) == size for c in chunks[:-1])
    assert 1 <= len(chunks[-1]) <= size


def test_chunk_name():
    assert chunk_name([1, 2, 3]) == "1-3"
    assert chunk_name([5]) == "5"
    with pytest.raises(FrameRangeError):
        list(chunk_frames([1, 2], 0))
