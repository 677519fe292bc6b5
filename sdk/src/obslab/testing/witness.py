"""What the ingest witness (the repository's tests/ingest-witness/) received where Tempo and Loki listen.

The witness is the collector's own image writing every request it accepts as OTLP JSON, one request
a line: ``traces.jsonl`` (what Tempo would ingest), ``logs.jsonl`` (what Loki would ingest). A record
here is one span or log record, flattened: its OTLP JSON fields, ``attributes`` as a dict, and its
``resource`` attributes and ``scope`` name beside them.
"""

from __future__ import annotations

import json
from pathlib import Path

_ITEMS = {"traces": ("resourceSpans", "scopeSpans", "spans"), "logs": ("resourceLogs", "scopeLogs", "logRecords")}


def value(any_value: dict):
    """The Python value of an OTLP JSON AnyValue (intValue arrives as a string)."""
    (kind, raw), = any_value.items() if any_value else (("stringValue", None),)
    if kind == "intValue":
        return int(raw)
    if kind == "arrayValue":
        return [value(v) for v in raw.get("values", [])]
    if kind == "kvlistValue":
        return attributes(raw.get("values", []))
    return raw


def attributes(key_values: list[dict]) -> dict:
    return {kv["key"]: value(kv.get("value", {})) for kv in key_values}


class Witness:
    """Reads the witness's files as they grow (a line still being written is read next time)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._offsets = {signal: 0 for signal in _ITEMS}
        self._records: dict[str, list[dict]] = {signal: [] for signal in _ITEMS}
        self.requests = {signal: 0 for signal in _ITEMS}

    def _read(self, signal: str) -> list[dict]:
        path = self.directory / f"{signal}.jsonl"
        if path.exists():
            resources_key, scopes_key, items_key = _ITEMS[signal]
            with path.open("rb") as file:
                file.seek(self._offsets[signal])
                for line in file:
                    if not line.endswith(b"\n"):
                        break
                    self._offsets[signal] += len(line)
                    self.requests[signal] += 1
                    for resource in json.loads(line).get(resources_key, []):
                        resource_attributes = attributes(resource.get("resource", {}).get("attributes", []))
                        for scope in resource.get(scopes_key, []):
                            scope_name = scope.get("scope", {}).get("name", "")
                            for item in scope.get(items_key, []):
                                self._records[signal].append({**item, "attributes": attributes(item.get("attributes", [])),
                                                              "resource": resource_attributes, "scope": scope_name})
        return self._records[signal]

    def spans(self, service: str | None = None) -> list[dict]:
        """Every span delivered to Tempo's endpoint (of ``service``), in arrival order."""
        return [s for s in self._read("traces") if service is None or s["resource"].get("service.name") == service]

    def logs(self, service: str | None = None) -> list[dict]:
        """Every log record delivered to Loki's endpoint (of ``service``), in arrival order."""
        return [r for r in self._read("logs") if service is None or r["resource"].get("service.name") == service]

    def trace(self, trace_id: str) -> list[dict]:
        """The spans of one trace (hex id), empty when none arrived."""
        return [s for s in self._read("traces") if s.get("traceId") == trace_id]
