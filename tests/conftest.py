"""Shared fixtures: a Telemetry handle wired to in-memory exporters (obslab's own telemetry_capture)."""

from __future__ import annotations

import logging
import os

import pytest
from hypothesis import HealthCheck, settings

# The property tests prove what holds for every generated case, not how fast it runs: on a busy 2-core
# machine Hypothesis's timing checks (a 200 ms deadline per example, "data generation too slow") fail
# for load alone, so they are off; the number of examples stays Hypothesis's default.
settings.register_profile("obslab", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("obslab")

from obslab import telemetry as telemetry_module
from obslab.config import Settings
from obslab.testing.capture import TelemetryCapture


class Recorded:
    """What a handle exported, after a flush (the plugin's TelemetryCapture, as these tests read it)."""

    def __init__(self, capture: TelemetryCapture) -> None:
        self.capture, self.handle, self._reader = capture, capture.telemetry, capture.reader

    def spans(self):
        return tuple(self.capture.spans())

    def logs(self):
        return self.capture.logs()

    def metrics(self) -> dict:
        """{metric name: [(attributes, value)]} from the in-memory reader."""
        return self.capture.metrics()


@pytest.fixture
def root_level():
    """``root_level(level)`` sets the root logger's level for one test (through setLevel, which
    also clears logging's cached levels); the level is put back afterwards."""
    root = logging.getLogger()
    saved = root.level
    yield root.setLevel
    root.setLevel(saved)


@pytest.fixture
def app_logging_at_info(root_level):
    """The root logger at INFO, as an application that configured logging has it (pytest's own
    capture handlers are on the root logger, so obslab leaves its level alone)."""
    root_level(logging.INFO)


@pytest.fixture
def recording(app_logging_at_info):
    """``recording(settings)`` installs a handle built from ``settings`` on the root logger,
    exporting in memory (obslab's telemetry_capture, one per call), and returns its ``Recorded``;
    afterwards each is shut down and the process is put back as it was."""
    captures: list[TelemetryCapture] = []

    def install(settings: Settings) -> Recorded:
        capture = TelemetryCapture().configure(settings)
        logging.getLogger().setLevel(logging.INFO)  # as the application configured it
        captures.append(capture)
        return Recorded(capture)

    yield install
    for capture in reversed(captures):
        capture.close()


@pytest.fixture
def recorded(recording):
    """A handle built from default settings, installed on the root logger, exporting in memory."""
    return recording(Settings(service_name="unit-test"))


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No process handle and no stray .env or OTEL_* settings; the handle is reset afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(telemetry_module, "_handle", None)
    for name in [n for n in os.environ if n.startswith(("OTEL_", "OBSLAB_"))] + ["OTLP_ENDPOINT"]:
        monkeypatch.delenv(name, raising=False)
    yield
    telemetry_module._reset_for_tests()
