from datetime import datetime

import pytest

from backend.manager.sleep_scheduler import desired_status, next_check

MON = datetime(2024, 1, 1)  # a Monday


@pytest.mark.parametrize("days,start,end,when,want", [
    ("mo tu", "09:00", "18:00", MON.replace(hour=10), "asleep"),
    ("mo tu", "09:00", "18:00", MON.replace(hour=18), "awake"),
    ("tu", "09:00", "18:00", MON.replace(hour=10), "awake"),
    ("", "09:00", "18:00", MON.replace(hour=10), "asleep"),
    ("mo", "22:00", "06:00", MON.replace(hour=23), "asleep"),
    ("mo", "22:00", "06:00", MON.replace(day=2, hour=5), "asleep"),   # Tuesday morning, window started Monday
    ("mo", "22:00", "06:00", MON.replace(hour=5), "awake"),           # Monday morning: Sunday not listed
    ("mo", "22:00", "06:00", MON.replace(hour=12), "awake"),
])
def test_desired_status(days, start, end, when, want):
    assert desired_status(days, start, end, when) == want


def test_next_check_is_earliest_boundary():
    assert next_check("09:00", "18:00", MON.replace(hour=8)) == MON.replace(hour=9)
    assert next_check("09:00", "18:00", MON.replace(hour=10)) == MON.replace(hour=18)
    assert next_check("09:00", "18:00", MON.replace(hour=19)) == MON.replace(day=2)
    assert next_check("22:00", "06:00", MON.replace(hour=23)) == MON.replace(day=2)
