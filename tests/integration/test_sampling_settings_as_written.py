"""SAMPLING_PERCENTAGE and SLOW_TRACE_MS as a user may write them: every value the lab's .env check
(obslab.lab.env, run by `obslab lab up` and tools/check_env.py) accepts is read by the real collector
as the check read it. The collector reads them in two ways: inside the filters' OTTL conditions, which
pick the traces pipeline in use, and as whole YAML values (the tail sampler's percentage and latency
threshold). Both read a leading zero as octal ("0100" is 64) and refuse exponents ("1e2"), which
Python's float() reads otherwise. A value accepted by the check and read otherwise by the collector
loses traces silently, or stores them twice; so each accepted value runs config.yaml, with the traces
pipelines' exporters replaced by one file each, and the spans are counted per pipeline.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from lab import REPO, env_example, image
from obslab.lab import env as lab_env

FAST_TRACES = 400
# Each traces pipeline writes to its own file; logs and metrics (the span metrics) go nowhere that matters.
OVERRIDE = """
exporters:
  file/traces: {path: /out/traces.jsonl, flush_interval: 100ms}
  file/tail-sampled: {path: /out/tail-sampled.jsonl, flush_interval: 100ms}
  file/other: {path: /out/other.jsonl}
service:
  pipelines:
    traces: {exporters: [file/traces]}
    traces/tail-sampled: {exporters: [file/tail-sampled]}
    logs: {exporters: [file/other]}
    metrics: {exporters: [file/other]}
"""


def _span(name: str, ms: float, error: bool = False) -> dict:
    start = time.time_ns() - 5_000_000_000
    return {"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": name, "kind": 2,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + int(ms * 1e6)),
            **({"status": {"code": 2}} if error else {})}


def _post(port: int, spans: list[dict]) -> None:
    body = json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "as-written"}}]}, "scopeSpans": [{"spans": spans}]}]})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/traces", body.encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _spans_per_pipeline(percentage: str, slow_ms: str, exports: list[list[dict]], tmp_path: Path,
                        override: str = "", pause: float = 0) -> dict[str, list[str]]:
    """Run otel-collector/config.yaml with these settings (and ``override`` merged over it), send each
    of ``exports`` in one request, ``pause`` seconds apart; the names of the spans each traces pipeline
    passed on."""
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    (tmp_path / "override.yaml").write_text(OVERRIDE + override)
    override = tmp_path / "override.yaml"
    cid = subprocess.run(
        ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::4318", "--tmpfs", "/var/lib/otelcol:uid=10001,gid=10001",
         "-v", f"{out}:/out", "-v", f"{REPO}/otel-collector/config.yaml:/c/0.yaml:ro", "-v", f"{override}:/c/1.yaml:ro",
         "-e", f"SAMPLING_PERCENTAGE={percentage}", "-e", f"SLOW_TRACE_MS={slow_ms}", "-e", "DEFAULT_ENVIRONMENT=dev",
         image("otel-collector"), "--config=/c/0.yaml", "--config=/c/1.yaml"],
        capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    try:
        port = int(subprocess.run(["docker", "port", cid, "4318"], capture_output=True, text=True, timeout=30,
                                  check=True).stdout.split(":")[-1].split()[0])
        deadline = time.monotonic() + 30
        while True:
            try:
                _post(port, [])
                break
            except OSError:
                assert time.monotonic() < deadline, subprocess.run(["docker", "logs", cid], capture_output=True,
                                                                   text=True).stderr[-2000:]
                time.sleep(0.2)
        for index, spans in enumerate(exports):
            time.sleep(pause if index else 0)
            _post(port, spans)
        time.sleep(2)  # span-ingest: kept spans leave the sampler at once; the file exporters flush every 100 ms
    finally:
        subprocess.run(["docker", "stop", "-t", "5", cid], capture_output=True, timeout=60)
    found = {}
    for pipeline in ("traces", "tail-sampled"):
        path = out / f"{pipeline}.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        found[pipeline] = [span["name"] for line in lines for rs in json.loads(line)["resourceSpans"]
                           for ss in rs["scopeSpans"] for span in ss["spans"]]
    return found


# (SAMPLING_PERCENTAGE, SLOW_TRACE_MS) as written in .env: plain values, and forms Python and the
# collector read differently (leading zeros, exponents, underscores, spaces, signs).
WRITTEN = [("100", "1000"), ("100.0", "1000"), ("50.5", "1000"), ("0", "1000"), ("0", "400"),
           ("0100", "1000"), ("010", "1000"), ("007", "1000"), ("1e2", "1000"), ("1_00", "1000"), ("+100", "1000"),
           ("100 ", "1000"), ("0", "01000"), ("0", "1_000")]


@pytest.mark.parametrize(("percentage", "slow_ms"), WRITTEN)
def test_every_sampling_value_the_check_accepts_is_read_alike_by_the_collector(percentage, slow_ms, tmp_path):
    settings = {**env_example(), "SAMPLING_PERCENTAGE": percentage, "SLOW_TRACE_MS": slow_ms}
    refused = [p for p in lab_env.problems(settings) if p.startswith(("SAMPLING_PERCENTAGE", "SLOW_TRACE_MS"))]
    if refused:  # the lab never starts with it: the message names the setting and the value
        assert all(any(repr(value) in problem for value in (percentage, slow_ms)) for problem in refused), refused
        return
    share, threshold = float(percentage), int(slow_ms)
    spans = [_span("error", 1, error=True), _span("slow", threshold * 1.5), _span("not-slow", threshold * 0.6),
             *[_span("fast", 1) for _ in range(FAST_TRACES)]]
    found = _spans_per_pipeline(percentage, slow_ms, [spans], tmp_path)
    in_use = "traces" if share == 100 else "tail-sampled"
    assert found["traces" if in_use == "tail-sampled" else "tail-sampled"] == [], "both traces pipelines passed spans"
    kept = found[in_use]
    assert kept.count("error") == 1 and kept.count("slow") == 1, kept  # kept whole whatever the share, once
    if share in (0, 100):
        assert kept.count("not-slow") == (share == 100) and kept.count("fast") == FAST_TRACES * (share == 100)
    else:  # the rest within 6 standard deviations of the share the check read
        p = share / 100
        sd = (FAST_TRACES * p * (1 - p)) ** 0.5
        assert abs(kept.count("fast") - FAST_TRACES * p) <= 6 * sd, (kept.count("fast"), share)


def test_an_error_or_slow_span_arriving_after_decision_wait_is_still_kept(tmp_path):
    """A request's first spans often reach the collector seconds before its root (the SDK exports every
    few seconds; an LLM call or a job's step can take longer than decision_wait). Its early spans are
    held decision_wait, then dropped as not kept; the error or slow root that arrives later is kept
    all the same (the spans before it are lost: docs/lab.md). decision_wait is shortened to 2 s here
    to keep the test short; the config's 10 s changes nothing else."""
    def child_and_root(name: str, root_ms: float, error: bool) -> tuple[dict, dict]:
        root = _span(f"{name}/root", root_ms, error=error)
        child = {**_span(f"{name}/child", 5), "traceId": root["traceId"], "parentSpanId": root["spanId"]}
        return child, root
    late_error, late_slow, late_fast = (child_and_root("error", 5, True), child_and_root("slow", 3000, False),
                                        child_and_root("fast", 5, False))
    found = _spans_per_pipeline("0", "1000", [[late_error[0], late_slow[0], late_fast[0]],
                                              [late_error[1], late_slow[1], late_fast[1]]], tmp_path,
                                override="processors: {tail_sampling: {decision_wait: 2s}}\n", pause=4)
    assert found["traces"] == [] and sorted(found["tail-sampled"]) == ["error/root", "slow/root"]
