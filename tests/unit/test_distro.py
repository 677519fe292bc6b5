"""Issue 19: obslab is an OpenTelemetry distro. ``opentelemetry-instrument python app.py`` runs an
unmodified Flask app through obslab's pipeline: privacy masking, the trace-stamped console line, the
X-Trace-ID header, one OTLP record per log line, and delivery at exit to the collector."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

from lab import free_port
from obslab.distro import ObslabConfigurator, ObslabDistro
from otlp_receiver import OTLPReceiver

# opentelemetry-distro is installed too (the parity harness's reference): name obslab's entry points.
CHOOSE_OBSLAB = {"OTEL_PYTHON_DISTRO": "obslab", "OTEL_PYTHON_CONFIGURATOR": "obslab"}

APP = '''
import logging
from flask import Flask
from opentelemetry import trace

app = Flask(__name__)
log = logging.getLogger("shop")


@app.get("/orders/<order_id>")
def order(order_id):
    trace.get_current_span().set_attribute("password", "hunter2")
    log.warning("order %s paid, password=hunter2", order_id)
    return {"order": order_id}


response = app.test_client().get("/orders/42")
print("X-Trace-ID", response.headers.get("X-Trace-ID"))
'''


def test_the_distro_and_configurator_are_registered_entry_points():
    distros = {ep.name: ep.load() for ep in entry_points(group="opentelemetry_distro")}
    configurators = {ep.name: ep.load() for ep in entry_points(group="opentelemetry_configurator")}
    assert distros["obslab"] is ObslabDistro and configurators["obslab"] is ObslabConfigurator


def test_opentelemetry_instrument_runs_an_unmodified_flask_app_through_obslabs_pipeline(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    receiver = OTLPReceiver(free_port()).start()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OTEL_", "OBSLAB_"))}
    env.update({**CHOOSE_OBSLAB, "OTEL_SERVICE_NAME": "shop", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
                "OBSLAB_PRIVACY": "true", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "requests,httpx,sqlalchemy"})
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    try:
        out = subprocess.run([str(instrument), sys.executable, "app.py"], capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=120)
        deadline = time.monotonic() + 5
        while not (receiver.spans and receiver.logs) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        receiver.stop()
    assert out.returncode == 0, out.stderr
    trace_id = out.stdout.split("X-Trace-ID")[-1].strip()
    assert len(trace_id) == 32, out.stdout  # obslab's response header hook
    (server,) = [(name, attributes) for name, attributes in receiver.spans if "/orders/" in name]
    assert server[1]["password"] == "[REDACTED]"  # obslab's privacy masking, on the Flask instrumentor's span
    assert receiver.logs == ["order 42 paid, password=[REDACTED]"]  # once: no second logging handler
    assert f"trace_id={trace_id}" in out.stderr and "hunter2" not in out.stderr  # obslab's console line


CALLS_INIT = """
import warnings
import obslab
from opentelemetry import trace

warnings.simplefilter("always")
handle = obslab.init_telemetry("named-in-code")
print(handle is obslab.get_telemetry(), handle.settings.service_name, trace.get_tracer_provider() is handle._tracer_provider)
"""


def test_init_telemetry_under_the_launcher_returns_its_handle_and_says_arguments_are_ignored(tmp_path):
    (tmp_path / "app.py").write_text(CALLS_INIT)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OTEL_", "OBSLAB_"))}
    env.update({**CHOOSE_OBSLAB, "OTEL_SERVICE_NAME": "from-env", "OBSLAB_CONSOLE_ONLY": "true",
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "requests,httpx,sqlalchemy,flask,fastapi"})
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    out = subprocess.run([str(instrument), sys.executable, "app.py"], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "True from-env True" in out.stdout.splitlines(), out.stdout
    assert "already set up by opentelemetry-instrument" in out.stderr
