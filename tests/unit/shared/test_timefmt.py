"""ISO 8601 timestamps in UTC, as the services write and read them."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.timefmt import iso_utc, parse_iso_utc

NAIVE = dt.datetime(2024, 3, 5, 14, 7, 9, 123456)
EPOCH = NAIVE.replace(tzinfo=dt.timezone.utc).timestamp()


def test_the_forms_the_services_use():
    assert iso_utc(NAIVE, "microseconds", zulu=True) == "2024-03-05T14:07:09.123456Z"  # the Server's API documents
    assert iso_utc(EPOCH, "milliseconds", zulu=True) == "2024-03-05T14:07:09.123Z"  # worker log lines
    assert iso_utc(EPOCH) == "2024-03-05T14:07:09.123456+00:00"  # the Manager
    assert iso_utc(EPOCH.__floor__()) == "2024-03-05T14:07:09+00:00"
    assert iso_utc(NAIVE.replace(microsecond=0), "microseconds", zulu=True) == "2024-03-05T14:07:09.000000Z"


def test_an_aware_moment_is_converted_to_utc():
    cet = dt.timezone(dt.timedelta(hours=1))
    assert iso_utc(dt.datetime(2024, 3, 5, 15, 7, 9, tzinfo=cet), zulu=True) == "2024-03-05T14:07:09Z"


def test_now():
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    text = iso_utc(timespec="microseconds", zulu=True)
    assert text.endswith("Z") and before <= parse_iso_utc(text) <= dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@pytest.mark.parametrize("text", ["2024-03-05T14:07:09.123456Z", "2024-03-05T15:07:09.123456+01:00",
                                  " 2024-03-05T14:07:09.123456 ", "2024-03-05 14:07:09.123456+00:00"])
def test_parse_gives_naive_utc(text):
    assert parse_iso_utc(text) == NAIVE


def test_parse_refuses_what_is_no_timestamp():
    with pytest.raises(ValueError):
        parse_iso_utc("yesterday")
