"""A process stopped by SIGTERM (docker stop, Kubernetes, systemd, uvicorn's own re-raise of the signal)
still exports what it recorded: obslab's exit flush runs before the process ends as the signal ends it."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from lab import free_port
from otlp_receiver import OTLPReceiver

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not hasattr(signal, "raise_signal") or os.name != "posix", reason="POSIX signals")

# Batches would wait a minute: only an exit flush can export them before the process ends.
SLOW_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BLRP_SCHEDULE_DELAY": "60000",
               "OTEL_METRIC_EXPORT_INTERVAL": "600000"}


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def receiver():
    receiver = OTLPReceiver(free_port()).start()
    yield receiver
    receiver.stop()


def _env(receiver, **more):
    return {**os.environ, **SLOW_EXPORT, "OTLP_ENDPOINT": f"127.0.0.1:{receiver.port}",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "examples" / "web_api"), os.environ.get("PYTHONPATH", "")]),
            **more}


def test_process_ended_by_sigterm_exports_what_it_recorded(receiver, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import logging, os, signal, time
        from obslab import init_telemetry
        telemetry = init_telemetry(service_name="sigterm-job")
        with telemetry.span("work-before-sigterm"):
            logging.getLogger("job").warning("line before sigterm")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        raise SystemExit("SIGTERM did not end the process")
    """))
    result = subprocess.run([sys.executable, str(script)], env=_env(receiver), cwd=tmp_path, timeout=60)
    assert result.returncode == -signal.SIGTERM  # the process still ends as SIGTERM ends it
    assert _wait_for(lambda: "work-before-sigterm" in [name for name, _ in receiver.spans]), receiver.spans
    assert "line before sigterm" in receiver.logs


def test_sigterm_handler_is_given_back_at_shutdown_and_an_apps_own_is_kept():
    from obslab import init_telemetry

    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    handle = init_telemetry(service_name="handler", console_only=True)
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    handle.shutdown(1)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def own(signum, frame):
        pass

    signal.signal(signal.SIGTERM, own)
    try:
        handle = init_telemetry(service_name="handler", console_only=True)
        assert signal.getsignal(signal.SIGTERM) is own  # the app handles SIGTERM: obslab stays out of it
        handle.shutdown(1)
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _serve_and_stop(command, receiver, tmp_path, port):
    process = subprocess.Popen(command, env=_env(receiver), cwd=tmp_path)
    try:
        assert _wait_for(lambda: _get(f"http://127.0.0.1:{port}/quote/paris"), timeout=30)
        process.send_signal(signal.SIGTERM)
        return process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def test_uvicorn_app_run_from_python_and_stopped_by_sigterm_exports_its_requests(receiver, tmp_path):
    port = free_port()
    code = _serve_and_stop([sys.executable, str(ROOT / "examples" / "web_api" / "app.py"), "--port", str(port)],
                           receiver, tmp_path, port)
    assert code == -signal.SIGTERM  # uvicorn re-raises the signal it caught
    assert _wait_for(lambda: "price_lookup" in [name for name, _ in receiver.spans]), receiver.spans
    assert "quote served" in receiver.logs


def test_uvicorn_cli_app_stopped_by_sigterm_exports_its_requests(receiver, tmp_path):
    # `uvicorn module:app` imports the app (and so starts obslab) inside uvicorn's own SIGTERM handling
    (tmp_path / "service.py").write_text("from app import create_app\n\n"
                                         "def make():\n    return create_app('web-api-cli')\n")
    port = free_port()
    code = _serve_and_stop([sys.executable, "-m", "uvicorn", "--factory", "service:make", "--port", str(port)],
                           receiver, tmp_path, port)
    assert code == -signal.SIGTERM
    assert _wait_for(lambda: "price_lookup" in [name for name, _ in receiver.spans]), receiver.spans
    assert "quote served" in receiver.logs


def test_sigterm_flushes_the_current_handle_after_a_shutdown_from_another_thread(receiver, tmp_path):
    script = tmp_path / "cycles.py"
    script.write_text(textwrap.dedent("""
        import os, signal, threading, time
        from obslab import init_telemetry
        first = init_telemetry(service_name="first")
        worker = threading.Thread(target=first.shutdown)  # only the main thread can give a signal handler back
        worker.start()
        worker.join()
        second = init_telemetry(service_name="second")
        with second.span("work-of-the-second-handle"):
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    """))
    result = subprocess.run([sys.executable, str(script)], env=_env(receiver), cwd=tmp_path, timeout=60)
    assert result.returncode == -signal.SIGTERM
    assert _wait_for(lambda: "work-of-the-second-handle" in [name for name, _ in receiver.spans]), receiver.spans
