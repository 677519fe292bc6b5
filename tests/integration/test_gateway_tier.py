"""The gateway tier (docker-compose.gateway.yml): an agent collector spreading load over 3 gateway
collectors, which sample and export. Exact counts through the gateways, one gateway killed
mid-stream, every sampled trace complete, and sampling decided the same way on every gateway.

Each trace has three spans sent in three requests 200 ms apart, so the agent's batches put the
spans of one trace on different gateways. The probabilistic sampler (mode hash_seed) keeps a trace
when FNV-1a(hash_seed, trace id) & 0x3fff < sampling_percentage * 163.84: the test computes the
expected set of kept traces itself and compares it with what reached Tempo's endpoint, exactly.
"""

from __future__ import annotations

import base64
import os
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from dotenv import dotenv_values
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from conftest import SERVICES, Lab, compose, eventually, settle
from lab import COMPOSE_FILE, REPO, free_port, image, isolated_env
from otlp_stream import _attr, counter_request, logs_request, post, resource_of, stored_counter, stored_logs

GATEWAY_COMPOSE_FILE = REPO / "docker-compose.gateway.yml"
GATEWAYS, SAMPLING_PERCENTAGE, SPANS_PER_TRACE = 3, 50, 3


def kept(trace_id: bytes, percentage: float = SAMPLING_PERCENTAGE, hash_seed: int = 0) -> bool:
    """The probabilistic sampler's decision in hash_seed mode (processor/probabilisticsamplerprocessor:
    fnvhasher.go, sampler_mode.go): 14 bits of FNV-1a over the seed (little endian) and the trace id,
    below the percentage scaled to 16384 buckets in float32 arithmetic."""
    value = 0x811C9DC5
    for byte in struct.pack("<I", hash_seed) + trace_id:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]  # noqa: E731
    return (value & 0x3FFF) < int(f32(f32(percentage) * f32(16384 / 100.0)))


def _hex(span_or_trace_id: str) -> str:
    """Ids as lowercase hex: OTLP JSON (the witness) writes hex, Tempo's API may answer base64."""
    try:
        bytes.fromhex(span_or_trace_id)
        return span_or_trace_id.lower()
    except ValueError:
        return base64.b64decode(span_or_trace_id).hex()


def test_the_sampler_model_matches_known_decisions():
    """Edge cases of the model above: 0 % keeps nothing, 100 % everything, about half at 50 %."""
    ids = [os.urandom(16) for _ in range(4000)]
    assert not any(kept(i, 0) for i in ids) and all(kept(i, 100) for i in ids)
    assert 1800 < sum(kept(i, 50) for i in ids) < 2200


class TraceStream:
    """Traces of three spans, each span in its own request 200 ms after the previous one; a log
    record (unique seq) per trace and a cumulative counter of the log records, all over OTLP/HTTP."""

    def __init__(self, otlp_http: str, service: str, traces_per_tick: int = 10, tick: float = 0.2) -> None:
        self.otlp_http, self.service, self.per_tick, self.tick = otlp_http, service, traces_per_tick, tick
        self.traces: dict[str, list[str]] = {}  # trace id hex -> its span ids hex, for every trace fully sent
        self.logs = 0
        self._pending: list[tuple[bytes, list[bytes]]] = []  # traces still sending their spans
        self._start_ns = time.time_ns()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TraceStream":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=600)

    def _send_spans(self, spans: list[Span]) -> None:
        request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=resource_of(self.service), scope_spans=[ScopeSpans(spans=spans)])])
        assert post(self.otlp_http, "traces", request, retry_for=600)

    def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                self._pending += [(os.urandom(16), []) for _ in range(self.per_tick)]
            if not self._pending:
                break
            now, spans = time.time_ns(), []
            for trace_id, span_ids in self._pending:
                span_ids.append(os.urandom(8))
                spans.append(Span(trace_id=trace_id, span_id=span_ids[-1], name=f"step {len(span_ids)}",
                                  parent_span_id=span_ids[0] if len(span_ids) > 1 else b"",
                                  kind=Span.SPAN_KIND_SERVER if len(span_ids) == 1 else Span.SPAN_KIND_INTERNAL,
                                  start_time_unix_nano=now - 1_000_000, end_time_unix_nano=now,
                                  attributes=[_attr("step", len(span_ids))]))
            self._send_spans(spans)
            done = [(t, s) for t, s in self._pending if len(s) == SPANS_PER_TRACE]
            self._pending = [(t, s) for t, s in self._pending if len(s) < SPANS_PER_TRACE]
            if done:
                assert post(self.otlp_http, "logs", logs_request(self.service, self.logs, len(done)), retry_for=600)
                self.logs += len(done)
                assert post(self.otlp_http, "metrics", counter_request(self.service, self.logs, self._start_ns),
                            retry_for=600)
                self.traces.update({t.hex(): [s.hex() for s in spans_] for t, spans_ in done})
            next_tick += self.tick
            time.sleep(max(0.0, next_tick - time.monotonic()))


class GatewayLab:
    def __init__(self, tmp: Path) -> None:
        self.project = f"obslabgw{os.getpid()}"
        self.env_file = tmp / ".env"
        witness_dir = tmp / "witness"
        witness_dir.mkdir()
        witness_dir.chmod(0o777)  # the collector image runs as 10001
        isolated_env(self.env_file, WITNESS_IMAGE=image("otel-collector"), WITNESS_DIR=str(witness_dir),
                     WITNESS_HEALTH_PORT=str(free_port()), SAMPLING_PERCENTAGE=str(SAMPLING_PERCENTAGE))
        self.env = {k: v or "" for k, v in dotenv_values(self.env_file).items()}
        self.lab = Lab(self.env_file, self.env, self.project)

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return compose(self.project, self.env_file, *args, timeout=timeout, extra_files=(GATEWAY_COMPOSE_FILE,))

    def gateways(self) -> list[str]:
        """Ids of the running gateway containers."""
        return self.compose("ps", "-q", "gateway").stdout.split()


@pytest.fixture(scope="module")
def gateway_lab(tmp_path_factory) -> GatewayLab:
    lab = GatewayLab(tmp_path_factory.mktemp("gateway"))
    try:
        lab.compose("up", "-d", "--wait", "--scale", f"gateway={GATEWAYS}", *SERVICES, "gateway")
        for port in ("COLLECTOR_HEALTH_PORT", "WITNESS_HEALTH_PORT"):
            eventually(lambda: requests.get(f"http://127.0.0.1:{lab.env[port]}", timeout=1).ok, timeout=60,
                       interval=0.2)
        yield lab
    finally:
        lab.compose("down", "-v", "--remove-orphans")


def test_the_gateway_runs_the_lab_collector_image():
    gateway = yaml.safe_load(GATEWAY_COMPOSE_FILE.read_text())["services"]["gateway"]
    assert gateway["image"] == yaml.safe_load(COMPOSE_FILE.read_text())["services"]["otel-collector"]["image"]


def test_three_gateways_one_killed_mid_stream_lose_nothing_and_sample_whole_traces(gateway_lab):
    lab: Lab = gateway_lab.lab
    service = f"gateway-{uuid.uuid4().hex[:8]}"
    assert len(gateway_lab.gateways()) == GATEWAYS
    with TraceStream(lab.otlp_http, service) as stream:
        time.sleep(10)
        killed = gateway_lab.gateways()[1]
        subprocess.run(["docker", "kill", killed], check=True, capture_output=True, timeout=60)
        time.sleep(15)
    sent_traces, logs = stream.traces, stream.logs
    expected_kept = {t for t in sent_traces if kept(bytes.fromhex(t))}

    def spans_stored() -> list[dict]:
        if lab.witness:
            return lab.witness.spans(service)
        return [span for trace_id in sent_traces for span in lab.stored_spans(trace_id)]  # Tempo, by id

    def stored() -> dict:
        spans = spans_stored()
        by_trace: dict[str, set[str]] = {}
        gateways_of: dict[str, set[str]] = {}
        for span in spans:
            trace_id, span_id = _hex(span["traceId"]), _hex(span["spanId"])
            by_trace.setdefault(trace_id, set()).add(span_id)
            gateways_of.setdefault(trace_id, set()).add(span["resource"].get("obslab.gateway"))
        return {"traces": by_trace, "logs": stored_logs(lab, service), "counter": stored_counter(lab, service),
                "gateways": set().union(*gateways_of.values()),
                "mixed": sum(len(g) > 1 for g in gateways_of.values())}

    found = settle(stored, lambda f: set(f["traces"]) == expected_kept and f["logs"] == logs and f["counter"] == logs
                   and all(len(s) == SPANS_PER_TRACE for s in f["traces"].values()), timeout=180)
    complete = {t for t, spans in found["traces"].items() if spans == set(sent_traces.get(t, []))}
    state = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", killed], capture_output=True, text=True)
    print(f"{service}: {GATEWAYS} gateways, one killed after 10 s (now {state.stdout.strip()}); sent {len(sent_traces)} traces "
          f"({len(sent_traces) * SPANS_PER_TRACE} spans), {logs} log records, counter {logs}; "
          f"at {SAMPLING_PERCENTAGE} % the sampler model keeps {len(expected_kept)} traces; received "
          f"{len(found['traces'])} traces, {len(complete)} complete ({sum(map(len, found['traces'].values()))} spans), "
          f"{found['logs']} log records, counter {found['counter']}; spans came through {len(found['gateways'])} "
          f"gateways; {found['mixed']} kept traces had spans through more than one gateway")
    assert set(found["traces"]) == expected_kept          # the same decision on every gateway, the model's
    assert complete == expected_kept                      # every sampled trace complete, nothing else
    assert found["logs"] == logs and found["counter"] == logs
    assert len(found["gateways"]) == GATEWAYS             # the load was spread over all three
    assert found["mixed"] > 0                             # traces really were split across gateways


def test_gateways_added_by_scaling_up_take_load_within_a_minute(gateway_lab):
    """`--scale gateway=4` while the agent runs: the gateways close each connection after 30 s
    (max_connection_age), the agent's client re-resolves the name, and the new gateways get requests;
    nothing is lost meanwhile."""
    lab: Lab = gateway_lab.lab
    before = set(gateway_lab.gateways())
    gateway_lab.compose("up", "-d", "--no-recreate", "--scale", "gateway=4", "gateway")
    added = {cid[:12] for cid in set(gateway_lab.gateways()) - before}
    assert added, "scaling up started no new gateway"
    service = f"scale-{uuid.uuid4().hex[:8]}"
    with TraceStream(lab.otlp_http, service) as stream:
        time.sleep(50)
    expected_kept = {t for t in stream.traces if kept(bytes.fromhex(t))}

    def stored() -> dict:
        spans = lab.witness.spans(service) if lab.witness else [
            s for t in stream.traces for s in lab.stored_spans(t)]
        by_trace: dict[str, set[str]] = {}
        for span in spans:
            by_trace.setdefault(_hex(span["traceId"]), set()).add(_hex(span["spanId"]))
        return {"traces": by_trace, "logs": stored_logs(lab, service), "counter": stored_counter(lab, service),
                "gateways": {span["resource"].get("obslab.gateway") for span in spans}}

    found = settle(stored, lambda f: set(f["traces"]) == expected_kept and f["logs"] == stream.logs
                   and f["counter"] == stream.logs, timeout=180)
    complete = {t for t, spans in found["traces"].items() if spans == set(stream.traces.get(t, []))}
    print(f"{service}: scaled to 4 gateways ({len(added)} started: {sorted(added)}); sent {len(stream.traces)} traces, "
          f"{stream.logs} log records; kept {len(expected_kept)} by the model, received {len(found['traces'])} traces "
          f"({len(complete)} complete), {found['logs']} log records, counter {found['counter']}; spans came through "
          f"{len(found['gateways'])} gateways, {len(found['gateways'] & added)} of them just started")
    assert complete == expected_kept == set(found["traces"])
    assert found["logs"] == stream.logs and found["counter"] == stream.logs
    assert found["gateways"] & added
