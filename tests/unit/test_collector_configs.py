"""The project's collector configs, read as files: batching where upstream's batching-migration RFC
puts it (in each exporter's sending queue, never the deprecated `batch` processor), disk queues that
keep their guarantee, and requests bounded under the backends' gRPC limit. ``otelcol validate`` of the
same files runs in tests/integration/test_configs_validate.py and test_tail_sampling_config.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab import REPO

CONFIGS = sorted([*REPO.glob("otel-collector/**/*.yaml"), *REPO.glob("scaling/tail-sampling/*.yaml"),
                  *REPO.glob("scaling/mimir/*.yaml"), REPO / "tests/ingest-witness/config.yaml"])
CONFIGS = [path for path in CONFIGS if "docker-compose" not in path.name]
GRPC_LIMIT = 4 * 1024 * 1024  # the OTLP gRPC receivers' default max_recv_msg_size_mib (Tempo's, a gateway's)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _exporters() -> list[tuple[str, str, dict]]:
    return [(path.relative_to(REPO).as_posix(), name, config or {}) for path in CONFIGS
            for name, config in (_load(path).get("exporters") or {}).items()]


def test_the_configs_are_found():
    names = {path.relative_to(REPO).as_posix() for path in CONFIGS}
    assert {"otel-collector/config.yaml", "otel-collector/agent.yaml", "otel-collector/gateway.yaml",
            "scaling/tail-sampling/gateway.yaml", "tests/ingest-witness/config.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_config_defines_or_runs_the_batch_processor(path):
    config = _load(path)
    defined = [name for name in (config.get("processors") or {}) if name.split("/")[0] == "batch"]
    used = [name for pipeline in ((config.get("service") or {}).get("pipelines") or {}).values()
            for name in (pipeline or {}).get("processors", []) if name.split("/")[0] == "batch"]
    assert defined == [] and used == []


@pytest.mark.parametrize("where, name, exporter", [e for e in _exporters() if "sending_queue" in e[2]],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_a_disk_queue_never_waits_for_the_result(where, name, exporter):
    """exporterhelper refuses `wait_for_result` with `storage` (queuebatch/config.go): the sender is
    answered once its request is on disk, and the batch is made as the queue is read."""
    queue = exporter["sending_queue"]
    assert not (queue.get("storage") and queue.get("wait_for_result"))


def test_every_queued_exporter_of_the_lab_batches_from_its_queue():
    """Without the batch processor, an exporter whose queue has no `batch` would send each request as
    it came: the lab's queued exporters all batch (the gateway tier's agent does not: agent.yaml says why)."""
    for path in ("otel-collector/config.yaml", "otel-collector/forward/remote-only-false.yaml",
                 "otel-collector/forward/remote-only-true.yaml", "scaling/mimir/collector-metrics-to-mimir.yaml"):
        for name, exporter in _load(REPO / path)["exporters"].items():
            queue = exporter.get("sending_queue") or {}
            if queue.get("enabled", True) and "endpoint" in exporter:
                assert queue.get("batch"), f"{path}: {name} sends unbatched"



def test_the_lab_s_disk_queues_are_bounded_in_bytes():
    """A queue counted in requests (the default) fills the disk under a long outage, and a full disk loses
    what the collector had accepted (docs/outages.md; test_collector_faults.py proves both on a 16 MiB
    volume): every queue on the collector-data volume refuses (503) once it holds 256 MiB of requests."""
    for path in ("otel-collector/config.yaml", "otel-collector/forward/remote-only-false.yaml",
                 "otel-collector/forward/remote-only-true.yaml"):
        for name, exporter in _load(REPO / path)["exporters"].items():
            queue = exporter.get("sending_queue") or {}
            if queue.get("storage"):
                assert (queue.get("sizer"), queue.get("queue_size")) == ("bytes", 256 * 2**20), (path, name)

def test_grpc_batches_stay_under_the_receivers_4_mib_limit():
    """A batch bounded by bytes (not items: spans vary in size) under 4 MiB on every gRPC hop."""
    for where, name, exporter in _exporters():
        batch = (exporter.get("sending_queue") or {}).get("batch")
        if name.split("/")[0] in ("otlp", "otlp_grpc") and batch:
            assert batch.get("sizer") == "bytes" and 0 < batch["max_size"] < GRPC_LIMIT, (where, name, batch)


def test_local_hops_are_not_compressed_and_the_remote_one_is():
    """The compose network's hops skip gzip (the collector's largest CPU cost in the lab benchmark);
    the forward to a remote endpoint keeps the exporter's default, gzip."""
    for path in ("otel-collector/config.yaml", "otel-collector/agent.yaml", "otel-collector/gateway.yaml"):
        for name, exporter in _load(REPO / path)["exporters"].items():
            assert exporter.get("compression") == "none", (path, name)
    for path in REPO.glob("otel-collector/forward/remote-*.yaml"):
        assert "compression" not in _load(path)["exporters"]["otlp_http/forward"]


def test_tail_sampling_keeps_errors_and_slow_traces_and_samples_the_rest_by_the_settings():
    config = _load(REPO / "otel-collector/config.yaml")
    tail = config["processors"]["tail_sampling"]
    policies = {p["name"]: p for p in tail["policies"]}
    assert policies["errors"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["slow"]["latency"] == {"threshold_ms": "${env:SLOW_TRACE_MS}"}
    assert policies["the-rest"]["probabilistic"] == {"sampling_percentage": "${env:SAMPLING_PERCENTAGE}"}
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces/tail-sampled"]["processors"][-1] == "tail_sampling"
    for unsampled in ("traces", "traces/spanmetrics"):
        assert not {"tail_sampling", "probabilistic_sampler"} & set(pipelines[unsampled]["processors"])
    # The burst test's 40,000 one-span traces arrive within one decision_wait: all held at once.
    assert tail["num_traces"] >= 2 * 40_000


@pytest.mark.parametrize("percentage", [0, 0.5, 10, 99, 99.99, 100])
def test_exactly_one_traces_pipeline_passes_spans_on_at_each_sampling_percentage(percentage):
    """The filters are complements: at 100 the spans skip the tail sampler (traces), below it they go
    through it (traces/tail-sampled); never both (twice stored) and never neither (lost). The conditions
    are read here with float(), as the lab's .env check reads the setting; the real collector's reading of
    each form a user may write: tests/integration/test_sampling_settings_as_written.py."""
    config = _load(REPO / "otel-collector/config.yaml")
    pipelines = config["service"]["pipelines"]
    passing = []
    for name in ("traces", "traces/tail-sampled"):
        filters = [p for p in pipelines[name]["processors"] if p.startswith("filter/")]
        assert len(filters) == 1 and pipelines[name]["exporters"] == ["otlp_grpc/tempo"]
        (condition,) = config["processors"][filters[0]]["traces"]["resource"]
        left, op, right = condition.replace("${env:SAMPLING_PERCENTAGE}", str(percentage)).split()
        drops = {"<": float(left) < float(right), ">=": float(left) >= float(right)}[op]
        passing += [] if drops else [name]
    assert passing == (["traces"] if percentage == 100 else ["traces/tail-sampled"])


def _merged(*paths: str) -> dict:
    """Configs merged as the collector merges repeated --config files: maps merge, anything else is replaced."""
    def merge(base, over):
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{key: merge(base.get(key), value) for key, value in over.items()}}
        return over
    merged: dict = {}
    for path in paths:
        merged = merge(merged, _load(REPO / path))
    return merged


OVERLAYS = [("otel-collector/config.yaml",), *[("otel-collector/config.yaml", f"otel-collector/forward/{p.name}")
                                              for p in sorted((REPO / "otel-collector/forward").glob("*.yaml"))],
            ("otel-collector/config.yaml", "otel-collector/gateway.yaml"),
            ("otel-collector/config.yaml", "otel-collector/gateway.yaml", "scaling/tail-sampling/gateway.yaml")]


@pytest.mark.parametrize("paths", OVERLAYS, ids=lambda paths: "+".join(Path(p).stem for p in paths))
def test_both_traces_pipelines_deliver_alike_in_every_overlay_and_only_one_samples(paths):
    """Whichever of the two traces pipelines SAMPLING_PERCENTAGE puts in use, the spans reach the same
    exporters (the local backends, the remote when forwarding) from the same receivers, behind its filter;
    only traces/tail-sampled samples. An overlay that names one pipeline and forgets the other would
    send spans elsewhere (or nowhere) at one setting only."""
    pipelines = _merged(*paths)["service"]["pipelines"]
    full, sampled = pipelines["traces"], pipelines["traces/tail-sampled"]
    assert full["receivers"] == sampled["receivers"] and full["exporters"] == sampled["exporters"]
    assert [p for p in full["processors"] if p.startswith("filter/")] == ["filter/off-below-100"]
    assert [p for p in sampled["processors"] if p.startswith("filter/")] == ["filter/off-at-100"]
    assert full["processors"][:2] == ["memory_limiter", "filter/off-below-100"]  # dropped before any work
    assert sampled["processors"][:2] == ["memory_limiter", "filter/off-at-100"]
    samplers = {"tail_sampling", "probabilistic_sampler"}
    assert not samplers & set(full["processors"]) and sampled["processors"][-1] in samplers
