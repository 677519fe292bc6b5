"""Telemetry's own trouble, reported without hurting the application.

The OpenTelemetry SDK logs every failed export with a stack trace, through the root logger:
with no collector that is a flood, and the OTLP log handler would try to export those very
records (an export loop). Here the ``opentelemetry`` and ``grpc`` loggers stop propagating to
the root logger and print at most one short line per signal per interval on stderr.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

_SIGNALS = ("traces", "metrics", "logs")
_QUIET_LOGGERS = ("opentelemetry", "grpc")


class RateLimitFilter(logging.Filter):
    """Let through one record per signal (or per logger) per ``interval`` seconds, shortened."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        key = next((s for s in _SIGNALS if s in message), record.name)
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self.interval) < self.interval:
                return False
            self._last[key] = now
        first_line = message.splitlines()[0] if message else ""
        record.msg, record.args = f"obslab: {key}: {first_line[:200]} (repeats muted for {self.interval:.0f}s)", ()
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def quiet_sdk_loggers(interval: float = 60.0) -> logging.Handler:
    """Route the SDK's and gRPC's own log records to one rate-limited stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(RateLimitFilter(interval))
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.propagate = False
        for old in [h for h in logger.handlers if getattr(h, "_obslab", False)]:
            logger.removeHandler(old)
        handler._obslab = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    return handler
