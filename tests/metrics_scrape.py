"""Scraping a service's /metrics as Prometheus does, parsed with prometheus_client's own parser."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape: sample values by name and labels."""

    def __init__(self, text: str):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                        for f in self.families.values() for s in f.samples}

    def value(self, name: str, **labels) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def labelled(self, name: str, label: str) -> dict[str, float]:
        """{label value: sample value} of a metric with one label."""
        return {dict(key)[label]: v for (n, key), v in self.samples.items() if n == name and label in dict(key)}

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


def scrape(url: str, token: str, **headers) -> Scrape:
    r = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {token}", **headers}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
    return Scrape(r.text)
