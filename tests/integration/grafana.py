"""Grafana's HTTP API as the tests use it: queries through datasources, and the links Grafana's
frontend builds (derived fields, trace to logs, exemplars) rebuilt from the settings Grafana serves."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import requests

from lab import REPO

DASHBOARDS = {json.loads(p.read_text())["uid"]: json.loads(p.read_text())
              for p in sorted((REPO / "grafana/dashboards").glob("*.json"))}


@dataclass
class Frame:
    """One data frame of a /api/ds/query answer: field names and column values."""

    name: str
    fields: list[dict]
    columns: list[list]

    def column(self, name: str) -> list:
        index = next(i for i, f in enumerate(self.fields) if f["name"] == name)
        return self.columns[index]

    def has(self, name: str) -> bool:
        return any(f["name"] == name for f in self.fields)

    @property
    def has_data(self) -> bool:
        return any(len(column) for column in self.columns)


class Grafana:
    """A logged-in client of one Grafana."""

    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.auth = auth

    def get(self, path: str, **params) -> requests.Response:
        return self.session.get(f"{self.url}{path}", params=params, timeout=15)

    def query(self, datasource: str, query: dict, start: str = "now-1h", end: str = "now") -> list[Frame]:
        """Run one query through ``/api/ds/query``; fails on an error answer."""
        body = {"from": start, "to": end, "queries": [{"refId": "A", "datasource": {"uid": datasource},
                                                        "intervalMs": 15000, "maxDataPoints": 240, **query}]}
        response = self.session.post(f"{self.url}/api/ds/query", json=body, timeout=30)
        assert response.status_code == 200, f"{response.status_code} {response.text[:500]} for {query}"
        result = response.json()["results"]["A"]
        assert "error" not in result, f"{result['error']} for {query}"
        return [Frame(f["schema"].get("name", ""), f["schema"]["fields"], f["data"]["values"])
                for f in result.get("frames", [])]

    def datasource(self, uid: str) -> dict:
        response = self.get(f"/api/datasources/uid/{uid}")
        response.raise_for_status()
        return response.json()

    def label_values(self, label: str, metric: str) -> list[str]:
        """What a ``label_values(metric, label)`` dashboard variable lists."""
        response = self.get(f"/api/datasources/uid/prometheus/resources/api/v1/label/{label}/values",
                            **{"match[]": metric})
        response.raise_for_status()
        return response.json()["data"]

    def trace(self, trace_id: str) -> list[dict]:
        """The spans of a trace, asked of Tempo through Grafana, one dict per span row."""
        frames = [f for f in self.query("tempo", {"queryType": "traceql", "query": trace_id}) if f.has("spanID")]
        return [dict(zip((field["name"] for field in f.fields), row)) for f in frames for row in zip(*f.columns)]


def _regex_escape(value: str) -> str:
    """Escape a value for a regex inside a PromQL/LogQL string literal, as Grafana does."""
    return re.sub(r"([\\$^*{}\[\]'+?.()|])", r"\\\\\1", value)


def interpolate(expr: str, variables: dict[str, list[str]]) -> str:
    """Replace dashboard variables as Grafana does for Prometheus and Loki regex matchers:
    one value escaped, several as an escaped alternation."""
    def value(name: str) -> str:
        values = [_regex_escape(v) for v in variables[name]]
        return values[0] if len(values) == 1 else "(" + "|".join(values) + ")"
    return re.sub(r"\$(\w+)", lambda m: value(m.group(1)) if m.group(1) in variables else m.group(0), expr)


def log_rows(frames: list[Frame]) -> list[tuple[str, dict]]:
    """(line, labels) for every log line of a Loki answer (labels include structured metadata)."""
    rows = []
    for frame in frames:
        if frame.has("labels") and frame.has("Line"):
            rows += [(line, labels if isinstance(labels, dict) else json.loads(labels or "{}"))
                     for line, labels in zip(frame.column("Line"), frame.column("labels"))]
    return rows


def derived_trace_ids(line: str, labels: dict, derived_fields: list[dict]) -> dict[str, str]:
    """The value each Loki derived field pointing at Tempo takes on one log line, as Grafana's
    frontend computes it: a regex on the line text, or (newer Grafana) a label's value."""
    found = {}
    for field in derived_fields:
        if field.get("datasourceUid") != "tempo":
            continue
        if field.get("matcherType") == "label":
            value = labels.get(field["matcherRegex"])
        else:
            match = re.search(field["matcherRegex"], line)
            value = match.group(1) if match else None
        if value:
            found[field["name"]] = field["url"].replace("${__value.raw}", value)
    return found
