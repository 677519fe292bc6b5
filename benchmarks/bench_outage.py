#!/usr/bin/env python3
"""A collector outage under a steady load: obslab's outage buffer vs the raw OpenTelemetry SDK, in one run.

Run: .venv/bin/python benchmarks/bench_outage.py [--outage SECONDS] [--rate N] [--buffer RECORDS]
Two copies of tests/integration/outage_app.py (one on obslab, one on the OpenTelemetry SDK set up
by hand with its OTLP gRPC exporters) emit RATE spans and RATE log records a second, each to its own
in-process OTLP gRPC receiver. Both receivers stop for SECONDS (60 by default) at the same moment,
then start again on the same ports; the apps run 15 s more and exit normally. Printed: records
emitted and received, the apps' peak RSS during the outage (and before it), and the emit latency
(one span with one log record and a counter add) p50/p99 during the outage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from lab import free_port  # noqa: E402
from unit.otlp_receiver import OTLPReceiver  # noqa: E402

APP = ROOT / "tests" / "integration" / "outage_app.py"


def rss_kib(pid: int) -> int:
    try:
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


class App:
    """One outage_app.py process, its receiver, and what was measured around it."""

    def __init__(self, label: str, raw: bool, rate: int, env: dict[str, str]) -> None:
        self.label, self.port = label, free_port()
        self.receiver = OTLPReceiver(self.port).start()
        self.process = subprocess.Popen(
            [sys.executable, str(APP), f"bench-{label.replace(' ', '-')}", str(rate), *(["--raw"] if raw else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "OTLP_ENDPOINT": f"127.0.0.1:{self.port}", "PYTHONPATH": str(ROOT / "sdk" / "src"),
                 **env})
        self.lines: list[tuple[float, dict]] = []
        self.rss_before = self.peak_rss = 0
        self.received: tuple[list, list] = ([], [])
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), json.loads(line)))

    def collector_down(self) -> None:
        self.received = (list(self.receiver.spans), list(self.receiver.logs))
        self.receiver.stop()

    def collector_up(self) -> None:
        self.receiver = OTLPReceiver(self.port).start()

    def stop(self) -> dict:
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        self.process.wait(timeout=120)
        time.sleep(0.5)
        self.receiver.stop()
        spans = self.received[0] + list(self.receiver.spans)
        logs = self.received[1] + list(self.receiver.logs)
        totals = next(line for _, line in self.lines if "emitted" in line)
        return {"emitted": totals["emitted"],
                "spans": len({attrs.get("record.id") for name, attrs in spans if name == "outage.op"}),
                "logs": len({body for body in logs if body.startswith("outage record ")})}


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the collector is down")
    parser.add_argument("--rate", type=int, default=50, help="spans and log records a second")
    parser.add_argument("--buffer", type=int, default=None, help="OBSLAB_OUTAGE_BUFFER (default: obslab's)")
    args = parser.parse_args()
    env = {"OBSLAB_OUTAGE_BUFFER": str(args.buffer)} if args.buffer is not None else {}
    apps = [App("raw SDK", True, args.rate, env), App("obslab", False, args.rate, env)]
    while min(len(app.lines) for app in apps) < 3:
        time.sleep(0.1)
    for app in apps:
        app.rss_before = rss_kib(app.process.pid)
        app.collector_down()
    down = time.monotonic()
    while time.monotonic() < down + args.outage:
        for app in apps:
            app.peak_rss = max(app.peak_rss, rss_kib(app.process.pid))
        time.sleep(0.5)
    up = time.monotonic()
    for app in apps:
        app.collector_up()
    time.sleep(15)
    print(f"collector outage of {args.outage:.0f} s, {args.rate} spans + {args.rate} log records a second"
          f"{f', OBSLAB_OUTAGE_BUFFER={args.buffer}' if args.buffer is not None else ''}")
    print(f"{'':8} {'emitted':>8} {'spans kept':>11} {'logs kept':>10} {'lost':>6} {'RSS before':>11} "
          f"{'peak RSS':>9} {'emit p50':>9} {'emit p99':>9}  (latency and RSS: during the outage)")
    for app in apps:
        got = app.stop()
        during = [us / 1000 for t, line in app.lines if down < t <= up for us in line.get("latency_us", [])]
        lost = 1 - (got["spans"] + got["logs"]) / (2 * got["emitted"])
        print(f"{app.label:8} {got['emitted']:8d} {got['spans']:11d} {got['logs']:10d} {lost:6.1%} "
              f"{app.rss_before / 1024:8.1f} MiB {app.peak_rss / 1024:5.1f} MiB {percentile(during, 0.5):6.3f} ms "
              f"{percentile(during, 0.99):6.3f} ms")


if __name__ == "__main__":
    main()
