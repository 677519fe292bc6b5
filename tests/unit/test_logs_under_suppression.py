"""Issue 19: application logs emitted inside suppress_instrumentation() are exported; the records
the exporters themselves cause are still not (no export loop)."""

from __future__ import annotations

import logging

from opentelemetry.instrumentation.utils import suppress_instrumentation

from obslab import _export


def test_an_application_log_inside_suppress_instrumentation_is_exported(recorded):
    with suppress_instrumentation():
        logging.getLogger("app").warning("said while instrumentation is suppressed")
    assert [r.body for r in recorded.logs()] == ["said while instrumentation is suppressed"]


def test_records_logged_while_obslab_exports_are_not_exported(recorded):
    with _export.exporting():
        logging.getLogger("app.client").warning("logged by the export path")
    assert recorded.logs() == []


def test_export_library_records_under_the_sdks_suppression_are_not_exported(recorded):
    with suppress_instrumentation():
        logging.getLogger("urllib3.connectionpool").warning("POST /v1/logs")
    assert recorded.logs() == []
