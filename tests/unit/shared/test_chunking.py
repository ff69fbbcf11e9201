from __future__ import annotations

import pytest

from shared.chunking import SQL_IN_CHUNK, chunks


def test_slices_of_one_size_the_last_shorter():
    assert list(chunks(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 3)) == []
    assert list(chunks((1, 2), 5)) == [[1, 2]]
    ids = [f"id{i}" for i in range(SQL_IN_CHUNK * 2 + 1)]
    assert [len(c) for c in chunks(ids)] == [SQL_IN_CHUNK, SQL_IN_CHUNK, 1]


def test_size_must_be_positive():
    with pytest.raises(ValueError, match="1 or more"):
        list(chunks([1], 0))
