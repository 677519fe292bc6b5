"""obslab's pytest plugin (registered through the ``pytest11`` entry point): two fixtures, and
nothing else happens unless a test asks for one.

``telemetry_capture`` (one test): the code under test runs through obslab's real pipeline, exported
in memory; see :class:`obslab.testing.capture.TelemetryCapture`::

    def test_quote_logs_inside_its_span(telemetry_capture):
        client.get("/quote/paris")
        span = telemetry_capture.span("price_lookup", city="paris")
        assert [r.body for r in telemetry_capture.logs(span)] == ["looking up paris"]

``obslab_lab`` (the session): the lab, running already or started for the session, with its
endpoints and helpers that wait until data arrives; see :class:`obslab.testing.lab.ObslabLab`.
Override ``obslab_lab_config`` to choose which lab (:func:`obslab.testing.lab.isolated_config`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:  # imported by the fixtures only: the plugin costs nothing to a session not using them
    from obslab.testing.capture import TelemetryCapture
    from obslab.testing.lab import LabConfig, ObslabLab


@pytest.fixture
def telemetry_capture() -> Iterator[TelemetryCapture]:
    """obslab's pipeline for one test, exporting in memory (default settings: every span sampled,
    level INFO; ``telemetry_capture.configure(privacy=True, ...)`` or ``configure(deterministic=True)``
    to change them). The process handle and OpenTelemetry's global providers are its own during the
    test and restored after it."""
    from obslab.testing.capture import TelemetryCapture

    capture = TelemetryCapture()
    capture.configure()
    try:
        yield capture
    finally:
        capture.close()


@pytest.fixture(scope="session")
def obslab_lab_config(tmp_path_factory) -> LabConfig:
    """Which lab ``obslab_lab`` uses: the running one (``obslab lab up``), else a new one of its own
    (free ports, its own compose project and network, removed after the session)."""
    from obslab.testing.lab import isolated_config, running_config

    return running_config() or isolated_config(tmp_path_factory.mktemp("obslab-lab"))


@pytest.fixture(scope="session")
def obslab_lab(obslab_lab_config) -> Iterator[ObslabLab]:
    """The lab for this session: endpoints (``otlp``, ``prometheus``, ``tempo``, ``loki``...) and
    helpers that wait until data arrives (``query(promql)``, ``spans(service)``, ``logs(service)``)."""
    from obslab.testing.lab import running_lab

    with running_lab(obslab_lab_config) as lab:
        yield lab
