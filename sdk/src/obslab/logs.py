"""The stdlib logging bridge: root logger -> OTLP logs, plus trace-stamped console output.

:class:`LoggingBridge` attaches obslab's handlers to the root logger, keeps them there through
``logging.config.dictConfig`` / ``fileConfig`` / ``basicConfig`` calls, and takes everything back
at ``uninstall()``. It never changes a level the application set: the root logger's level is
lowered to ``log_level`` only while the application has not configured logging at all (the
root logger at the standard library's WARNING with no handler), and put back afterwards. The
console handler is added only when no handler of the application already prints to the terminal.

The handlers work on copies of the records, so the application's other handlers see them as
they were, and a record that cannot be formatted gets the standard library's
"--- Logging error ---" report instead of an exception in the caller.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import logging.config
import sys
from datetime import datetime, timezone
from typing import Any, Callable

from opentelemetry import trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource

from obslab import _components
from obslab._diagnostics import guarded
from obslab._export import build_exporters, is_exporting
from obslab._outage import buffered
from obslab.config import Settings
from obslab.privacy import MaskingLogProcessor, Redactor

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s trace_id=%(trace_id)s span_id=%(span_id)s - %(message)s"

_STDLIB_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_INIT_FIELDS = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))  # how many LogRecord.__init__ sets
# Added to records by formatters and by the upstream logging instrumentation: not user data.
_ADDED_FIELDS = frozenset({"message", "asctime", "trace_id", "span_id", "data",
                           "otelTraceID", "otelSpanID", "otelServiceName", "otelTraceSampled"})
_PLAIN = (str, bytes, bool, int, float)  # exported as they are (bytes as OTLP bytes, as upstream's handler)
_PLAIN_TYPES = frozenset(_PLAIN)
# Libraries an export runs through: their records while the SDK exports are about that export.
_EXPORT_PATH_LOGGERS = ("opentelemetry", "grpc", "urllib3", "requests", "http.client", "httpx", "httpcore", "obslab")


def build_logger_provider(
    settings: Settings, resource: Resource, exporter: LogRecordExporter | None = None,
    redactor: Redactor | None = None, meter_provider: Any = None,
) -> tuple[LoggerProvider, list[LogRecordExporter]]:
    """A provider exporting log records in batches (default: the exporters ``OTEL_LOGS_EXPORTER``
    names, each behind an outage buffer), masked first when privacy is on. Its own metrics go to
    ``meter_provider`` (the pipeline's: upstream's configurator sets the meter provider first)."""
    configurator = _components.logger_configurator()
    provider = _components.tolerant(lambda: LoggerProvider(resource=resource, shutdown_on_exit=False,
                                                           meter_provider=meter_provider,
                                                           _logger_configurator=configurator), "logger provider")
    exporters = [exporter] if exporter is not None else [buffered(e, settings, "logs")
                                                         for e in build_exporters(settings, "logs")]
    if redactor is not None:  # first: every processor after it has the masked record
        provider.add_log_record_processor(MaskingLogProcessor(redactor))
    for each_exporter in exporters:
        provider.add_log_record_processor(_components.tolerant(lambda: BatchLogRecordProcessor(each_exporter),
                                                               "log record batch processor"))
    return provider, exporters


class OTLPHandler(LoggingHandler):
    """The OpenTelemetry logging handler, fed a copy of each record whose ``extra={"data": {...}}``
    is flattened to attributes.

    Records logged while obslab exports (an HTTP client's debug lines about the export request,
    say) are not exported again: that would feed an export loop. Under the SDK's suppression of
    instrumentation (set while it exports, also for exporters obslab did not make), the records of
    the export path's own libraries are left out too; the application's own records are kept.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if is_exporting() or (record.name.startswith(_EXPORT_PATH_LOGGERS) and not is_instrumentation_enabled()):
            return
        try:
            # The record itself when it holds only the standard library's fields (the common case;
            # LogRecord.__init__ sets them first, in order, so only later keys can be extra fields).
            plain = type(record) is logging.LogRecord and len(record.__dict__) <= _INIT_FIELDS
            super().emit(record if plain else _otlp_record(record))
        except Exception:
            self.handleError(record)


def _otlp_record(record: logging.LogRecord) -> logging.LogRecord:
    """``record`` itself when it holds only the standard library's fields (the handler only reads
    it); else a copy whose extra fields are attribute values, ``data`` flattened into them."""
    fields = record.__dict__
    if type(record) is logging.LogRecord:
        # LogRecord.__init__ sets the standard fields first, in order: only the later keys can be extra.
        later = len(fields) - _INIT_FIELDS
        if later <= 0:
            return record
        if later == 1:  # the common case: extra={"data": {...}}, or one field
            last = next(reversed(fields))
            extras = [] if last in _STDLIB_FIELDS else [last]
        else:
            extras = [key for key in itertools.islice(reversed(fields), later) if key not in _STDLIB_FIELDS]
            extras.reverse()  # in the record's order: a later field wins, as it did
    else:  # a record factory's subclass may set its own fields anywhere
        extras = [key for key in fields if key not in _STDLIB_FIELDS]
    if not extras:
        return record
    copied = fields.copy()
    for key in extras:
        del copied[key]
    for key in extras:
        value = fields[key]
        if key == "data" and isinstance(value, dict):
            for k, v in value.items():
                copied[f"data.{k}" if k in _STDLIB_FIELDS else str(k)] = v if type(v) in _PLAIN_TYPES else \
                    _attribute_value(v)
        elif key == "data" or key not in _ADDED_FIELDS:
            copied[key] = value if type(value) in _PLAIN_TYPES else _attribute_value(value)
    copy = object.__new__(logging.LogRecord)  # LogRecord() would read the clock and thread again
    copy.__dict__ = copied
    return copy


def _attribute_value(value: Any) -> Any:
    if isinstance(value, _PLAIN) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    try:
        return json.dumps(value, default=str)
    except (RecursionError, ValueError):  # nested past the encoder's limit, or circular
        return _not_printable(value)


_PLAIN_FORMATTER = logging.Formatter()


def _console_record(record: logging.LogRecord, redactor: Redactor | None) -> logging.LogRecord:
    """A copy of ``record`` stamped with the current trace ids (hex, ``-`` outside a span), masked
    when privacy is on."""
    copy = logging.makeLogRecord(vars(record))
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        copy.trace_id, copy.span_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"
    else:
        copy.trace_id = copy.span_id = "-"
    if redactor is not None:
        copy.msg, copy.args = redactor.text(record.getMessage()), None
        if record.exc_info or record.exc_text:  # the traceback's text (another handler's, if it made one), masked
            text = record.exc_text or _PLAIN_FORMATTER.formatException(record.exc_info)  # type: ignore[arg-type]
            copy.exc_info, copy.exc_text = None, redactor.text(text)
        if record.stack_info:
            copy.stack_info = redactor.text(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STDLIB_FIELDS:
                setattr(copy, key, redactor.scrub(value) if key == "data" else redactor.value(key, value))
    return copy


class TextFormatter(logging.Formatter):
    """The mini-telemetry seed's text line: ``... trace_id=<hex> span_id=<hex> - message``."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return super().format(_console_record(record, self._redactor))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace ids, extra attributes."""

    def __init__(self, service_name: str, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.service_name = service_name
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        record = _console_record(record, self._redactor)
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service_name,
        }
        if record.trace_id != "-":  # type: ignore[attr-defined]
            entry["trace_id"], entry["span_id"] = record.trace_id, record.span_id  # type: ignore[attr-defined]
        entry.update((k, v) for k, v in vars(record).items() if k not in _STDLIB_FIELDS and k not in _ADDED_FIELDS)
        if isinstance(getattr(record, "data", None), dict):
            entry.update(record.data)  # type: ignore[attr-defined]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(entry, default=str)
        except (RecursionError, ValueError):  # a value nested past the encoder's limit, or circular
            return json.dumps({key: _printable(value) for key, value in entry.items()}, default=str)


def _printable(value: Any) -> Any:
    """``value``, or a note saying it cannot be encoded as JSON (logging re-raises a RecursionError
    into the logging call)."""
    try:
        json.dumps(value, default=str)
    except (RecursionError, ValueError):
        return _not_printable(value)
    return value


def _not_printable(value: Any) -> str:
    return f"<{type(value).__name__} not printable as JSON: nested too deeply or circular>"


def console_handler(settings: Settings, stream: Any = None, redactor: Redactor | None = None) -> logging.Handler:
    """Console handler in the text format of the mini-telemetry seed, or JSON lines: on stderr,
    or on stdout with the other signals in console-only mode."""
    handler = logging.StreamHandler(stream or (sys.stdout if settings.console_only else sys.stderr))
    handler.setFormatter(JsonFormatter(settings.service_name, redactor) if settings.json_logs
                         else TextFormatter(redactor))
    handler.addFilter(_NotPrintedByTheApplication())
    return handler


def _prints_to_terminal(handler: logging.Handler, depth: int = 0) -> bool:
    """Whether ``handler`` writes log lines to the terminal (stdout or stderr): a handler writing to
    a terminal stream (a ``StreamHandler``, or any handler with such a ``stream``), rich's
    ``RichHandler`` (its console's file), or a ``QueueHandler`` whose listener has one of these."""
    if isinstance(handler, logging.FileHandler) or depth > 3:
        return False
    stream = getattr(handler, "stream", None)
    if stream is None:
        console = getattr(handler, "console", None)  # rich.logging.RichHandler
        stream = getattr(console, "file", None) if console is not None else None
    if stream is not None:
        return _is_terminal(stream)
    listener = getattr(handler, "listener", None)  # logging.handlers.QueueHandler (dictConfig sets it)
    return any(_prints_to_terminal(h, depth + 1) for h in getattr(listener, "handlers", ()) or ())


def _is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is the process's stdout or stderr (or a wrapper of them)."""
    for _ in range(4):  # colorama-style wrappers keep the real stream as .wrapped
        if any(stream is s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)):
            return True
        inner = getattr(stream, "wrapped", None)
        if inner is None or inner is stream:
            break
        stream = inner
    try:
        return stream.fileno() in (1, 2)
    except Exception:  # noqa: BLE001 - no file number (StringIO, pytest's capture): not the terminal
        return False


class _NotPrintedByTheApplication(logging.Filter):
    """Lets a record through obslab's console handler only when no handler of the application on
    the record's way up the logger tree (its own logger, its parents while they propagate, the
    root) prints it to the terminal already; checked for each record, so handlers the application
    adds after init count too."""

    @guarded("console log filter")
    def _printed_elsewhere(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name) if record.name != "root" else logging.getLogger()
        while logger is not None:
            for handler in logger.handlers:
                if (record.levelno >= handler.level and _prints_to_terminal(handler)
                        and not any(isinstance(f, _NotPrintedByTheApplication) for f in handler.filters)):
                    return True
            logger = logger.parent if logger.propagate else None
        return False

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._printed_elsewhere(record)


def find_installed_bridge() -> logging.Handler | None:
    """An OpenTelemetry log handler already on the root logger (opentelemetry-instrument's, say)."""
    return next((h for h in logging.getLogger().handlers
                 if type(h).__name__ == "LoggingHandler" and type(h).__module__.startswith("opentelemetry")
                 or isinstance(h, LoggingHandler)), None)


_CONFIG_FUNCTIONS = ((logging, "basicConfig"), (logging.config, "dictConfig"), (logging.config, "fileConfig"))


class LoggingBridge:
    """obslab's handlers on the root logger, from ``install()`` to ``uninstall()``."""

    def __init__(self, otlp: logging.Handler | None, console: logging.Handler | None, level: str) -> None:
        self.otlp, self.console = otlp, console
        self.level = logging.getLevelName(level)
        self._root_level: tuple[int, int] | None = None  # (the app's level, the one obslab set)
        self._app_set_level = False  # the application set the root level while obslab's was on
        self._level_hook: Callable[[Any], None] | None = None
        self._level_previous: Callable[[Any], None] | None = None
        self._hooks: list[tuple[Any, str, Callable[..., Any], Callable[..., Any]]] = []
        self._active = False

    @property
    def handlers(self) -> list[logging.Handler]:
        return [h for h in (self.otlp, self.console) if h is not None]

    def install(self) -> None:
        """Attach the handlers and keep them through logging reconfiguration."""
        root = logging.getLogger()
        if root.level == logging.WARNING and not root.handlers:  # logging never configured by the app
            self._root_level = (root.level, self.level)
            root.setLevel(self.level)
            self._watch_root_level(root)
        for handler in self.handlers:
            handler.setLevel(self.level)
        self._attach(otlp=True)
        self._active = True
        for owner, name in _CONFIG_FUNCTIONS:
            original = getattr(owner, name)
            hook = self._keep_handlers(original)
            setattr(owner, name, hook)
            self._hooks.append((owner, name, original, hook))

    def add_otlp(self, handler: logging.Handler, level: int | None = None) -> None:
        """Send the records to OTLP through ``handler`` from now on (at ``level``, else obslab's)."""
        self.otlp = handler
        handler.setLevel(self.level if level is None else level)
        if self._active:
            self._attach(otlp=True)

    def uninstall(self) -> None:
        """Detach the handlers, undo the hooks and put back the root level obslab set."""
        self._active = False
        for owner, name, original, hook in reversed(self._hooks):
            if getattr(owner, name) is hook:  # else wrapped again since: the inactive hook passes through
                setattr(owner, name, original)
        self._hooks.clear()
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
        if self._level_hook is not None and root.__dict__.get("setLevel") is self._level_hook:
            if self._level_previous is None:
                del root.setLevel
            else:
                root.setLevel = self._level_previous  # type: ignore[method-assign]
        if self._root_level is not None and not self._app_set_level and root.level == self._root_level[1]:
            root.setLevel(self._root_level[0])
        self._root_level = None
        self._level_hook = None

    def _watch_root_level(self, root: logging.Logger) -> None:
        """Note when the application sets the root level itself (``setLevel``, ``basicConfig``,
        ``dictConfig``, ``fileConfig`` all call it): that level is the application's, kept at
        ``uninstall()`` even when it equals the one obslab set."""
        original = root.setLevel
        self._level_previous = root.__dict__.get("setLevel")  # another wrapper's, if any

        def set_level(level: Any) -> None:
            self._app_set_level = True
            original(level)

        self._level_hook = set_level
        root.setLevel = set_level  # type: ignore[method-assign]

    def _attach(self, otlp: bool) -> None:
        root = logging.getLogger()
        if otlp and self.otlp is not None and self.otlp not in root.handlers:
            root.addHandler(self.otlp)
        if self.console is not None and self.console not in root.handlers and not self._app_prints():
            root.addHandler(self.console)

    def _app_prints(self) -> bool:
        """Whether a handler of the application on the root logger already prints to the terminal."""
        return any(_prints_to_terminal(h) and h not in self.handlers for h in logging.getLogger().handlers)

    def _keep_handlers(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def reconfigure(*args: Any, **kwargs: Any) -> Any:
            if not self._active:
                return original(*args, **kwargs)
            root = logging.getLogger()
            had_otlp = self.otlp in root.handlers
            self._detach()
            try:
                return original(*args, **kwargs)
            finally:
                self._reattach(had_otlp)
        return reconfigure

    @guarded("logging reconfiguration hook")
    def _detach(self) -> None:
        for handler in self.handlers:
            logging.getLogger().removeHandler(handler)

    @guarded("logging reconfiguration hook")
    def _reattach(self, otlp: bool) -> None:
        self._attach(otlp)
