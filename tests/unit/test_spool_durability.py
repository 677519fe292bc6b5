"""Issue 26, section 3: the spool keeps what it holds until the collector has accepted it, on disk
that only the process's user can read, with damaged files bounded.

The collector is the in-process OTLP gRPC receiver (tests/unit/otlp_receiver.py); each application
is its own Python process, killed with SIGKILL where the scenario says so.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab import free_port, wait_for
from obslab import _spool
from otlp_receiver import OTLPReceiver

SDK = Path(__file__).resolve().parents[2] / "sdk" / "src"
UNIT = Path(__file__).resolve().parent

JOB = textwrap.dedent("""
    import sys, time
    from obslab import init_telemetry
    name, endpoint, spool, count, linger = sys.argv[1:6]
    telemetry = init_telemetry(name, otlp_endpoint=endpoint, spool_dir=spool)
    logger = telemetry.get_otel_logger("job")
    for i in range(int(count)):
        with telemetry.span(f"{name}-{i}"):
            logger.emit(body=f"{name}-line-{i}")
    print("started", flush=True)
    time.sleep(float(linger))
""")


def start_job(name: str, port: int, spool: Path, count: int, linger: float = 0.0) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OBSLAB_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(SDK), str(UNIT)])
    return subprocess.Popen([sys.executable, "-c", JOB, name, f"127.0.0.1:{port}", str(spool), str(count), str(linger)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=spool.parent)


def run_job(name: str, port: int, spool: Path, count: int) -> subprocess.CompletedProcess:
    process = start_job(name, port, spool, count)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_process_killed_before_the_collector_answers_leaves_the_spool_for_the_next_start(tmp_path):
    port, spool = free_port(), tmp_path / "spool"
    run_job("a", port, spool, 20)  # the collector is down: A's records are spooled at exit
    assert list(spool.glob("*.pb"))
    b = start_job("b", port, spool, 0, linger=60)  # claims the spool at start; the collector is still down
    try:
        assert b.stdout.readline().strip() == "started"
    finally:
        b.send_signal(signal.SIGKILL)
        b.wait(30)
    assert list(spool.glob("*.pb")), "the killed process took the spool with it"
    receiver = OTLPReceiver(port).start()
    try:
        run_job("c", port, spool, 1)
        assert [name for name, _ in receiver.spans] == [f"a-{i}" for i in range(20)] + ["c-0"]
        assert receiver.logs == [f"a-line-{i}" for i in range(20)] + ["c-line-0"]
    finally:
        receiver.stop()
    assert not list(spool.glob("*.pb"))


def test_the_spool_directory_and_its_files_are_readable_by_the_user_only(tmp_path):
    port, spool = free_port(), tmp_path / "spool"
    old = os.umask(0o002)  # a permissive umask: obslab's modes must not depend on it
    try:
        run_job("a", port, spool, 3)
    finally:
        os.umask(old)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    files = list(spool.iterdir())
    assert files and {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def test_an_existing_spool_directory_with_a_looser_mode_is_tightened(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    spool.chmod(0o755)
    run_job("a", free_port(), spool, 2)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700


def test_damaged_spool_files_are_set_aside_within_a_count_and_a_byte_bound(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    sizes = [10, 5000, 200, _spool.MAX_BAD_BYTES + 1, 3000] + [100] * (2 * _spool.MAX_BAD_FILES)
    for i, size in enumerate(sizes):
        (spool / f"traces-{i:020d}-1-000000.pb").write_bytes(b"\xff" * size)  # not a protobuf request
        time.sleep(0.001)
        _spool.Spool(spool, "traces").claim(10_000, 1 << 30)
        bad = sorted(spool.glob("*.bad"))
        assert len(bad) <= _spool.MAX_BAD_FILES
        assert sum(p.stat().st_size for p in bad) <= _spool.MAX_BAD_BYTES
    assert not list(spool.glob("*.pb"))
    kept = sorted(spool.glob("*.bad"))
    assert [p.name for p in kept] == [f"traces-{i:020d}-1-000000.pb.bad" for i in
                                      range(len(sizes) - _spool.MAX_BAD_FILES, len(sizes))]  # the newest
