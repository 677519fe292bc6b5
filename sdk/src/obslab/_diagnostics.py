"""Telemetry's own trouble, reported without hurting the application.

Everything obslab puts on the application's path (logging handlers and formatters, patched
functions, the response-header hook, structlog processors) runs its own work through
:func:`guarded`: an exception there is reported here and the application goes on as if obslab
were not installed.

The OpenTelemetry SDK logs every failed export with a stack trace, through the root logger:
with no collector that is a flood, and the OTLP log handler would try to export those very
records (an export loop). While a handle is installed, the ``opentelemetry`` and ``grpc``
loggers stop propagating to the root logger and, like obslab's own reports, print at most one
short line per signal (or per place) per interval on stderr.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from typing import Any, Callable, TypeVar

_SIGNALS = ("traces", "metrics", "logs")
_QUIET_LOGGERS = ("opentelemetry", "grpc")
_TROUBLE = logging.getLogger("obslab.trouble")
_TROUBLE.propagate = False  # never through the root logger: its handlers may be the failing code

T = TypeVar("T")


class RateLimitFilter(logging.Filter):
    """Let through one record per signal (or per logger) per ``interval`` seconds, shortened."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record of a library: show its format string
            message = str(record.msg)
        key = getattr(record, "obslab_key", None) or next((s for s in _SIGNALS if s in message), record.name)
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self.interval) < self.interval:
                return False
            self._last[key] = now
        first_line = message.splitlines()[0] if message else ""
        record.msg, record.args = f"obslab: {key}: {first_line[:200]} (repeats muted for {self.interval:.0f}s)", ()
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def _stderr_handler(interval: float) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(RateLimitFilter(interval))
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._obslab = True  # type: ignore[attr-defined]
    return handler


_TROUBLE.addHandler(_stderr_handler(60.0))


def report(where: str, error: BaseException) -> None:
    """One short stderr line about telemetry code that failed at ``where`` (rate-limited)."""
    try:
        _TROUBLE.warning("%s failed (%s: %s); the application is not affected", where, type(error).__name__, error,
                         extra={"obslab_key": where})
    except Exception:  # noqa: S110 - reporting must not fail either
        pass


def notice(topic: str, message: str) -> None:
    """One short stderr line about telemetry that could not be delivered (rate-limited)."""
    try:
        _TROUBLE.warning("%s", message, extra={"obslab_key": topic})
    except Exception:  # noqa: S110
        pass


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test's capture, a redirected stream)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_WARNINGS = logging.getLogger("obslab.warnings")
_WARNINGS.propagate = False  # like obslab.trouble: never through the root logger (and OTLP)
_warnings_handler = _CurrentStderr()
_warnings_handler.setFormatter(logging.Formatter("obslab: %(message)s"))
_WARNINGS.addHandler(_warnings_handler)


def warn(message: str) -> None:
    """One stderr line that must not be muted (it names a count the user needs once)."""
    try:
        _WARNINGS.warning("%s", message)
    except Exception:  # noqa: S110
        pass


def guarded(where: str, default: Any = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate telemetry code on the application's path: an exception is reported, not raised,
    and ``default`` is returned instead."""
    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(function)
        def guard(*args: Any, **kwargs: Any) -> T:
            try:
                return function(*args, **kwargs)
            except Exception as error:
                report(where, error)
                return default
        return guard
    return decorate


class QuietSdkLoggers:
    """Routes the SDK's and gRPC's own log records to one rate-limited stderr handler, and puts
    those loggers back as they were on ``restore()``."""

    def __init__(self, interval: float = 60.0) -> None:
        self._handler = _stderr_handler(interval)
        self._saved: dict[str, bool] = {}

    def install(self) -> None:
        for name in _QUIET_LOGGERS:
            logger = logging.getLogger(name)
            self._saved[name] = logger.propagate
            logger.propagate = False
            logger.addHandler(self._handler)

    def mute(self) -> None:
        """Drop the SDK's records from now on (obslab has said what matters in one line)."""
        self._handler.setLevel(logging.CRITICAL + 1)

    def restore(self) -> None:
        for name, propagate in self._saved.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self._handler)
            logger.propagate = propagate
        self._saved.clear()
