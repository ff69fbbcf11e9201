"""The clock arithmetic of `flamenco-worker --check` and its report (worker/check.py)."""

from __future__ import annotations

import email.utils
import json

import pytest

from worker.check import FAIL, OK, Check, clock_skew, report

NOW = 1_800_000_000.0


@pytest.mark.parametrize("offset", [-3600, -10, 0, 7, 86400])
def test_the_skew_is_the_managers_clock_minus_ours_to_within_its_uncertainty(offset):
    sent, received = NOW, NOW + 0.4
    date = email.utils.formatdate(NOW + 0.2 + offset, usegmt=True)  # written halfway, whole seconds
    skew, error = clock_skew(date, sent, received)
    assert error == pytest.approx(0.7)
    assert abs(skew - offset) <= error


def test_the_report_lists_fixes_and_fails_when_a_check_failed():
    text, code = report([Check("Blender", OK, "Blender 3.4.1"), Check("FFmpeg", FAIL, "not found", "install it")])
    assert code == 1 and "fix: install it" in text and "1 check(s) failed" in text
    text, code = report([Check("Blender", OK, "Blender 3.4.1", "never shown")])
    assert code == 0 and "never shown" not in text and text.endswith("all checks passed")
    doc, code = report([Check("disk", FAIL, "1.0 GB free", "free some")], as_json=True)
    assert json.loads(doc) == {"ok": False, "checks": [{"name": "disk", "status": "FAIL", "detail": "1.0 GB free",
                                                         "fix": "free some"}]} and code == 1
