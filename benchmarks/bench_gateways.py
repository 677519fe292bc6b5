"""The gateway tier under load: throughput through 1 and 2 gateway collectors, and their CPU per 10k spans/s.

.venv/bin/python benchmarks/bench_gateways.py [--gateways 1 2] [--seconds 20] [--workers 2]

For each gateway count, an isolated lab with the gateway tier (docker-compose.gateway.yml: the agent
in the otel-collector service, N gateways running the lab's collector config), the ingest witness
at Tempo's endpoint where Tempo is absent (as the tests and benchmarks/bench_lab.py choose), and
OpenTelemetry's telemetrygen (built and cached as bench_lab.py does) sending spans as fast as it can
to the agent for --seconds. It prints the spans the agent accepted against those delivered (exact,
distinct span ids), the rates, and the CPU of the gateways and the agent from docker stats over the
load: cores used, and cores per 10k spans/s delivered. On a small machine the generator shares the
cores with the collectors: read the CPU per 10k spans/s more than the rates.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_lab", REPO / "benchmarks/bench_lab.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_lab"] = bench
_spec.loader.exec_module(bench)

GATEWAY_COMPOSE_FILE = REPO / "docker-compose.gateway.yml"
# As bench_lab.py's traces phase: 4,000 spans a request (telemetrygen's exporter is the first limit otherwise).
TRACE_ARGS = ["--batch-size", "4000"]


class GatewayMode(bench.Mode):
    @property
    def files(self) -> list[Path]:
        return [*super().files, GATEWAY_COMPOSE_FILE]


def container_cpu(project: str) -> dict[str, float]:
    """Container name -> % of one core, for every running container of ``project``."""
    names = subprocess.run(["docker", "ps", "--filter", f"label=com.docker.compose.project={project}",
                            "--format", "{{.Names}}"], capture_output=True, text=True, timeout=30).stdout.split()
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.CPUPerc}}", *names],
                         capture_output=True, text=True, timeout=60).stdout
    return {name: float(cpu.rstrip("%") or 0) for name, cpu in (line.split("\t") for line in out.splitlines())}


class CpuMonitor(threading.Thread):
    def __init__(self, project: str) -> None:
        super().__init__(daemon=True)
        self.project, self.stop, self.samples = project, threading.Event(), []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append((time.time(), container_cpu(self.project)))
            except (subprocess.SubprocessError, ValueError):
                time.sleep(1)

    def cores(self, start: float, end: float, part: str) -> float:
        """Average cores used over [start, end] by the containers whose name contains ``part``."""
        window = [sum(v for k, v in cpu.items() if part in k) / 100 for t, cpu in self.samples if start <= t <= end]
        return statistics.mean(window) if window else float("nan")


def run(gateways: int, seconds: int, workers: int, binary: Path) -> dict:
    mode = bench.lab_mode()
    mode = GatewayMode(mode.witnessed, mode.missing, mode.services)
    with tempfile.TemporaryDirectory(prefix="obslab-bench-gw-") as tmp:
        lab = bench.isolated_lab(Path(tmp), mode)
        lab.project = f"obslabbenchgw{gateways}x{uuid.uuid4().hex[:6]}"
        try:
            bench.say(f"{gateways} gateway(s): starting (project {lab.project})")
            result = lab.compose("up", "-d", "--wait", "--scale", f"gateway={gateways}", *mode.services, "gateway")
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-2000:])
            bench.wait_for(lambda: requests.get(lab.url("COLLECTOR_HEALTH_PORT"), timeout=1).ok, 60, "agent health")
            if mode.witnessed:
                bench.wait_for(lambda: requests.get(lab.url("WITNESS_HEALTH_PORT"), timeout=1).ok, 60, "witness")
            time.sleep(3)  # the agent's balancer connects to every gateway
            service = f"benchgw{gateways}-{uuid.uuid4().hex[:6]}"
            monitor = CpuMonitor(lab.project)
            monitor.start()
            started = time.time()
            process = bench.start_telemetrygen(binary, "traces", lab, service, seconds, workers, service,
                                               TRACE_ARGS)
            generated = bench.telemetrygen_generated(process, "traces")
            load_end = time.time()
            accepted = int(bench.metric_sum(bench.collector_metrics(lab), "otelcol_receiver_accepted_spans"))

            def delivered() -> int:
                if lab.witness:
                    return lab.witness.count("traces", service)[0]
                return bench.stored_count(lab, "traces", service, started, {})[0]

            done = bench.wait_for(lambda: (n := delivered()) >= accepted and n, 300, "delivery")
            drained = time.time()
            monitor.stop.set()
            figures = {
                "gateways": gateways, "generated": generated, "accepted": accepted, "delivered": done,
                "accepted_per_s": accepted / (load_end - started), "delivered_per_s": done / (drained - started),
                "gateway_cores": monitor.cores(started, drained, "-gateway-"),
                "agent_cores": monitor.cores(started, drained, "-otel-collector-"),
                "seconds": drained - started,
            }
            figures["gateway_cores_per_10k"] = figures["gateway_cores"] / (figures["delivered_per_s"] / 10_000)
            figures["agent_cores_per_10k"] = figures["agent_cores"] / (figures["delivered_per_s"] / 10_000)
            return figures
        finally:
            lab.compose("down", "-v", "--remove-orphans")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    binary, version = bench.telemetrygen(bench.image("otel-collector").rsplit(":", 1)[1])
    rows = [run(n, args.seconds, args.workers, binary) for n in args.gateways]
    print(f"\ntelemetrygen v{version} traces, {args.workers} workers, {args.seconds} s, unthrottled, to the agent; "
          "spans delivered counted as distinct span ids at Tempo's endpoint")
    print("| gateways | accepted by the agent | delivered | equal | reaching the agent /s | delivered /s "
          "| gateways' CPU (cores) | gateways' cores per 10k spans/s | agent's cores per 10k spans/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['gateways']} | {r['accepted']:,} | {r['delivered']:,} | {'yes' if r['accepted'] == r['delivered'] else 'NO'} "
              f"| {r['accepted_per_s']:,.0f} | {r['delivered_per_s']:,.0f} | {r['gateway_cores']:.2f} "
              f"| {r['gateway_cores_per_10k']:.3f} | {r['agent_cores_per_10k']:.3f} |")
    return 0 if all(r["accepted"] == r["delivered"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
