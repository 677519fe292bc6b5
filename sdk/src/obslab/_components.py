"""The SDK components that the ``OTEL_*`` variables choose, loaded by opentelemetry-sdk's own loaders
(``opentelemetry.sdk._configuration`` and ``opentelemetry.propagate``), as ``opentelemetry-instrument``
with opentelemetry-distro loads them: the sampler, the id generator, the tracer, meter and logger
configurators, the exporters' entry points and the propagators.

Where opentelemetry-sdk raises at start on a bad value (an unknown id generator, a limit below zero,
an exporter timeout that is not a number...), obslab warns, naming the variable, and keeps that
setting's default: :func:`tolerant` builds the component again without the variable the error names.
The deliberate differences are listed in docs/sdk.md, "Differences from opentelemetry-sdk".
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence, TypeVar

from opentelemetry.propagate import _load_propagators
from opentelemetry.sdk._configuration import (
    _EXPORTER_ENV_BY_SIGNAL_TYPE,
    _EXPORTER_OTLP_PROTO_GRPC,
    _get_exporter_entry_point,
    _get_id_generator,
    _get_logger_configurator,
    _get_meter_configurator,
    _get_sampler,
    _get_tracer_configurator,
    _import_exporters,
    _import_id_generator,
    _import_logger_configurator,
    _import_meter_configurator,
    _import_sampler,
    _import_tracer_configurator,
)

_logger = logging.getLogger("obslab")
_T = TypeVar("_T")
_ENVIRONMENT_LOCK = threading.RLock()
# The API's getters load and set the provider these name when none is set yet (and raise on a name
# they cannot load): while obslab builds its providers, before it sets them, they must not.
PROVIDER_VARIABLES = {"OTEL_PYTHON_TRACER_PROVIDER": "opentelemetry_tracer_provider",
                      "OTEL_PYTHON_METER_PROVIDER": "opentelemetry_meter_provider"}
SIGNALS = ("traces", "metrics", "logs")
DEFAULT_EXPORTER = "otlp"  # opentelemetry-distro's default for every signal (and obslab's)
CONFIG_FILE = "OTEL_CONFIG_FILE"


def sampler() -> Any:
    """The sampler ``OTEL_TRACES_SAMPLER`` (``OTEL_TRACES_SAMPLER_ARG``) names, built-in or an
    entry point; None (the SDK's default, ``parentbased_always_on``) when unset or when it fails to
    load, with the SDK's own warning."""
    return _import_sampler(_get_sampler())


def id_generator() -> Any:
    """The id generator ``OTEL_PYTHON_ID_GENERATOR`` names (an entry point; ``random`` by default).
    Upstream raises at start on a name it cannot load; obslab warns and keeps the random one (None)."""
    name = _get_id_generator()
    try:
        return _import_id_generator(name)
    except Exception as error:
        _logger.warning("OTEL_PYTHON_ID_GENERATOR=%r: %s; using the random id generator", name, error)
        return None


def tracer_configurator() -> Any:
    """``OTEL_PYTHON_TRACER_CONFIGURATOR``'s entry point (None: the SDK's default; it warns itself)."""
    return _import_tracer_configurator(_get_tracer_configurator())


def meter_configurator() -> Any:
    """``OTEL_PYTHON_METER_CONFIGURATOR``'s entry point (None: the SDK's default; it warns itself)."""
    return _import_meter_configurator(_get_meter_configurator())


def logger_configurator() -> Any:
    """``OTEL_PYTHON_LOGGER_CONFIGURATOR``'s entry point (None: the SDK's default; it warns itself)."""
    return _import_logger_configurator(_get_logger_configurator())


def exporter_names(signal: str) -> list[str]:
    """The entry-point names of ``signal``'s exporters, as the SDK reads ``OTEL_<SIGNAL>_EXPORTER``
    (``otlp`` when unset, as opentelemetry-distro sets it; ``none`` or an empty value: no exporter)
    and the OTLP protocol variables. An unknown OTLP protocol, on which upstream raises at start:
    a warning and OTLP over gRPC, the default."""
    given = os.environ.get(_EXPORTER_ENV_BY_SIGNAL_TYPE[signal])
    return exporter_names_of(DEFAULT_EXPORTER if given is None else given, signal)


def exporter_names_of(given: str, signal: str) -> list[str]:
    """The entry-point names of ``signal``'s exporters for ``OTEL_<SIGNAL>_EXPORTER=given``."""
    variable = _EXPORTER_ENV_BY_SIGNAL_TYPE[signal]
    if given.lower().strip() == "none" or not given:
        return []
    names = []
    for name in given.split(","):
        try:
            names.append(_get_exporter_entry_point(name.strip(), signal))
        except Exception as error:
            _logger.warning("%s=%r: %s; using OTLP over gRPC", variable, given, error)
            names.append(_EXPORTER_OTLP_PROTO_GRPC)
    return list(dict.fromkeys(names))  # one exporter per name, as the SDK's loader keys them


def exporter_class(signal: str, name: str) -> type:
    """The exporter (or metric reader) class of entry point ``name`` for ``signal``, checked by the
    SDK's loader; raises as it does when there is none."""
    found = _import_exporters(*(([name] if s == signal else []) for s in SIGNALS))
    (cls,) = found[SIGNALS.index(signal)].values()
    return cls


def propagator_from_environment() -> Any:
    """The propagators ``OTEL_PROPAGATORS`` names, loaded as ``opentelemetry.propagate`` loads them
    when it is imported. Upstream raises on a name it cannot load; obslab warns and keeps the
    default (``tracecontext,baggage``)."""
    try:
        return _load_propagators()
    except Exception as error:
        _logger.warning("OTEL_PROPAGATORS=%r: %s; using tracecontext,baggage", os.environ.get("OTEL_PROPAGATORS"),
                        error)
        with _hidden(["OTEL_PROPAGATORS"]):
            return _load_propagators()


def propagator(names: Sequence[str]) -> Any:
    """The propagators obslab's ``propagators`` setting names, loaded by the same loader as
    ``OTEL_PROPAGATORS``; an unknown name is a ``ValueError`` (obslab's own setting)."""
    from importlib.metadata import entry_points

    available = {ep.name for ep in entry_points(group="opentelemetry_propagator")}
    unknown = [name for name in names if name not in available and name != "none"]
    if unknown:
        raise ValueError(f"propagators={','.join(names)!r}: unknown propagator(s) {', '.join(unknown)}; "
                         f"installed: {', '.join(sorted(available))}")
    with _replaced("OTEL_PROPAGATORS", ",".join(names) or "none"):
        return _load_propagators()


def config_file_refused() -> None:
    """``OTEL_CONFIG_FILE`` (declarative configuration) is not obslab's: one warning, and the
    ``OTEL_*`` variables and obslab's settings configure the pipeline instead."""
    path = os.environ.get(CONFIG_FILE, "")
    if path:  # as the SDK's configurator reads it: any value but an empty one
        _logger.warning("%s=%r is ignored: obslab builds its pipeline (outage buffer, privacy masking, LLM cost) "
                        "from the OTEL_* variables and its own settings, not from a declarative configuration "
                        "file; run with opentelemetry-distro to use the file", CONFIG_FILE, path)


@contextmanager
def building() -> Iterator[None]:
    """The time obslab builds and installs its providers: ``OTEL_PYTHON_{TRACER,METER}_PROVIDER`` are
    set aside, so that a component that looks the global provider up meanwhile (the exporters' and
    batch processors' own metrics do) does not load and set another one, which would refuse obslab's.
    A name no entry point has (upstream raises at start): a warning, once."""
    from importlib.metadata import entry_points

    for name, group in PROVIDER_VARIABLES.items():
        value = os.environ.get(name)
        if value is not None and not entry_points(group=group, name=value):
            _logger.warning("%s=%r: no such provider; the providers obslab builds are used", name, value)
    with _hidden(list(PROVIDER_VARIABLES)):
        yield


def tolerant(make: Callable[[], _T], what: str) -> _T:
    """``make()``, which builds a component as opentelemetry-sdk does from the ``OTEL_*`` variables.
    When a variable's value makes it raise (upstream raises at start), a warning naming the variable,
    and ``make()`` again without it, which gives that setting the SDK's default. The variable is left
    out only for the moment of that call: the application's environment is unchanged."""
    try:
        return make()
    except Exception as error:
        first: Exception = error
    named, others = _suspects(first)
    left_out: list[str] = []
    for name in named:  # those the error names or quotes, one more each time
        left_out.append(name)
        made, failure = _attempt(make, left_out)
        if failure is None:
            return _defaulted(made, what, left_out, first)
    for name in others:  # else each other variable set, alone
        made, failure = _attempt(make, [name])
        if failure is None:
            return _defaulted(made, what, [name], first)
    raise first


def _attempt(make: Callable[[], _T], hidden: Sequence[str]) -> tuple[Any, Exception | None]:
    try:
        with _hidden(hidden):
            return make(), None
    except Exception as error:
        return None, error


def _defaulted(made: _T, what: str, left_out: Sequence[str], error: Exception) -> _T:
    given = ", ".join(f"{name}={os.environ.get(name)!r}" for name in left_out)
    _logger.warning("%s: %s (%s: %s); the SDK's default used instead", what, given, type(error).__name__, error)
    return made


def _suspects(error: Exception) -> tuple[list[str], list[str]]:
    """The ``OTEL_*`` variables set: those the error names or whose value it quotes, and the others."""
    text = str(error)
    variables = sorted(name for name in os.environ if name.startswith("OTEL_"))
    named = [name for name in variables if name in text]
    quoted = [name for name in variables if name not in named and os.environ[name].strip()
              and (repr(os.environ[name]) in text or repr(os.environ[name].strip().lower()) in text
                   or f"got {os.environ[name].strip()}" in text)]
    return named + quoted, [name for name in variables if name not in named and name not in quoted]


@contextmanager
def _hidden(names: Sequence[str]) -> Iterator[None]:
    """The process environment without ``names`` for the time of the block (one block at a time)."""
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.pop(name) for name in names if name in os.environ}
        try:
            yield
        finally:
            os.environ.update(saved)


@contextmanager
def _replaced(name: str, value: str) -> Iterator[None]:
    """The process environment with ``name=value`` for the time of the block (one block at a time)."""
    with _ENVIRONMENT_LOCK:
        saved = os.environ.get(name)
        os.environ[name] = value
        try:
            yield
        finally:
            if saved is None:
                del os.environ[name]
            else:
                os.environ[name] = saved
