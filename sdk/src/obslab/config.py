"""Settings for :func:`obslab.init_telemetry`, merged from every place a user can give them.

Precedence, highest first: explicit arguments; the process environment; a ``.env`` file
(never overriding the real environment); a YAML file (``config_file`` or ``OBSLAB_CONFIG``);
defaults. Every value remembers where it came from, so a bad one raises a ``ValueError``
that names the setting, the value and its source.

obslab reads its own ``OBSLAB_*`` variables (plus ``OTLP_ENDPOINT``, the lab's name), never an
application's generic names such as ``ENVIRONMENT`` or ``LOG_LEVEL``. Standard ``OTEL_*``
variables are opentelemetry-sdk's to read, as it reads them (a bad value: a warning and the
default); obslab only takes the service name, version and environment from the resource the SDK
reads, and ``OTEL_SDK_DISABLED``. The ``.env`` file is the one given as ``env_file`` (or
``OBSLAB_ENV_FILE``), else ``.env`` in the working directory; no other directory is searched.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from dotenv import dotenv_values

from obslab import _parsers as p
from obslab._yaml import read_yaml
from obslab.prices import Price
from obslab.settings import SETTINGS

SIGNALS = ("traces", "metrics", "logs")


class Environment(str, Enum):
    """Common deployment environments (any other name is accepted too); PRODUCTION turns JSON logs on."""

    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class LogLevel(str, Enum):
    """Levels of what obslab exports and prints."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one telemetry handle (one field per :data:`obslab.settings.SETTINGS`
    record). None means "as opentelemetry-sdk reads it from the ``OTEL_*`` variables"."""

    service_name: str | None = None  # None: the SDK's (OTEL_SERVICE_NAME..., else unknown_service:python)
    service_version: str | None = None  # None: none, unless OTEL_RESOURCE_ATTRIBUTES gives one
    environment: str | None = None  # deployment.environment(.name): any name; None: as for the version
    otlp_endpoint: str | None = None  # None: the exporters read OTEL_EXPORTER_OTLP_*
    enable_console_export: bool = False
    sampling_ratio: float | None = None  # None: the SDK reads OTEL_TRACES_SAMPLER(_ARG)
    log_level: str = "INFO"
    json_logs: bool = False
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    metric_export_interval: float = 15.0  # seconds, as in the travel-agent seed
    shutdown_timeout: float = 2.0  # seconds: bounds shutdown() and interpreter exit
    disabled: bool = False
    console_only: bool = False  # zero-infrastructure mode: stdout only, no network
    otlp_protocol: str | None = None  # None: the SDK reads OTEL_EXPORTER_OTLP_PROTOCOL (grpc by default)
    propagators: tuple[str, ...] | None = None  # None: the SDK reads OTEL_PROPAGATORS
    privacy: bool = False  # mask secrets and personal data before export
    privacy_keys: tuple[str, ...] = ()  # attribute keys to mask, on top of the built-in list
    prometheus_port: int | None = None  # in-process /metrics endpoint, next to OTLP
    system_metrics: bool = False  # process CPU, memory and garbage-collector metrics
    instrument: tuple[str, ...] = ()  # library instrumentors to turn on, or ("auto",)
    openai_agents_trace_export: bool = False  # instrument=openai_agents: also the Agents SDK's export to OpenAI
    privacy_secret: str | None = field(default=None, repr=False)  # key of the user-id hash
    # LLM prices (USD per million tokens) over genai-prices': (provider, model) -> Price
    prices: Mapping[tuple[str, str], Price] = field(default_factory=dict)
    # Spans and log records (each) kept while the collector is unreachable, sent when it answers
    # again; beyond it the oldest are dropped and counted. 0 turns the outage buffer off.
    outage_buffer: int = 10_000
    outage_buffer_bytes: int = 32 * 1024 * 1024  # the same bound in encoded bytes, and the spool's
    spool_dir: str | None = None  # where what is unsent at exit is written, and sent from at the next start
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)


_PARSERS: dict[str, p.Parser] = {setting.name: setting.parse for setting in SETTINGS}
_NOT_IN_FILES = tuple(setting.name for setting in SETTINGS if setting.yaml is None)  # a secret: environment only

# Environment (and .env) variables: name -> (setting, parser), obslab's names first, then the
# renamed ones (read with a warning).
_VARIABLES: dict[str, tuple[str, p.Parser]] = {
    **{setting.env: (setting.name, setting.parse) for setting in SETTINGS if setting.env},
    **{old: (setting.name, setting.parse) for setting in SETTINGS for old in setting.renamed_from},
}
_RENAMED = {old: setting.env for setting in SETTINGS for old in setting.renamed_from}
# The standard variable obslab itself needs to know: whether the SDK is disabled (read as the
# specification says: only "true" is true, anything else false with a warning).
_DISABLED_VARIABLE = "OTEL_SDK_DISABLED"
# Resource attributes (read by the SDK from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES) that
# give a setting when nothing of obslab's does.
_RESOURCE_SETTINGS = (("service.name", "service_name"), ("service.version", "service_version"),
                      ("deployment.environment.name", "environment"), ("deployment.environment", "environment"))
RESOURCE_VARIABLES = ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES")


class _Given(NamedTuple):
    """One raw value, where it came from, and how to read it."""

    value: Any
    where: str
    parse: p.Parser


_Layer = dict  # setting -> _Given
Default = Any  # a value, or a function of the settings resolved without it


def load_settings(arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                  defaults: Mapping[str, Default] | None = None) -> Settings:
    """Merge explicit ``arguments`` (None means unset) over the environment, ``.env``, YAML and
    ``defaults`` (a value, or a function of the other resolved settings), then Settings' defaults.
    What the SDK reads from ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (in ``environ``)
    fills the service name, version and environment that obslab's own sources leave unset.
    ``OTEL_*`` variables found only in the ``.env`` file are handed to the process environment
    (never over a real variable), where the SDK reads them."""
    environ = os.environ if environ is None else environ
    real = {name: value for name, value in environ.items() if str(value).strip()}
    dotenv_path, dotenv = _read_dotenv(arguments.get("env_file") or real.get("OBSLAB_ENV_FILE"))
    exported: list[str] = []
    if environ is os.environ:
        exported = _export_otel_variables(dotenv)
        real = {name: value for name, value in environ.items() if str(value).strip()}
    config_file = arguments.get("config_file") or real.get("OBSLAB_CONFIG") or dotenv.get("OBSLAB_CONFIG")
    computed = {k: v for k, v in (defaults or {}).items() if callable(v)}
    layers = [
        {k: _Given(v, "argument", _PARSERS[k]) for k, v in arguments.items() if v is not None and k in _PARSERS},
        _variable_layer(real, "environment variable"),
        _resource_layer(),
        _variable_layer({k: v for k, v in dotenv.items() if k not in real}, f".env file {dotenv_path}"),
        _yaml_layer(config_file) if config_file else {},
        {k: _Given(v, "default", _PARSERS[k]) for k, v in (defaults or {}).items() if k not in computed},
    ]
    resolved: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in (f.name for f in fields(Settings) if f.name != "sources"):
        given = next((layer[setting] for layer in layers if setting in layer), None)
        if given is not None:
            resolved[setting] = given.parse(setting, given.value, given.where)
            sources[setting] = given.where
    if "disabled" not in resolved and _DISABLED_VARIABLE in real:
        resolved["disabled"] = p.parse_otel_bool(_DISABLED_VARIABLE, real[_DISABLED_VARIABLE],
                                                 f"environment variable {_DISABLED_VARIABLE}")
        sources["disabled"] = f"environment variable {_DISABLED_VARIABLE}"
    sources.update((name, f".env file {dotenv_path}") for name in exported)  # OTEL_* variables read there
    settings = Settings(**resolved, sources=sources)
    return _derived(settings, computed)


def _derived(settings: Settings, computed: Mapping[str, Callable[[Settings], Any]]) -> Settings:
    """Defaults that depend on other settings, and checks across settings."""
    unset = {name: value(settings) for name, value in computed.items() if name not in settings.sources}
    if (settings.environment or "").lower() == "production" and "json_logs" not in settings.sources:
        unset["json_logs"] = True
    if settings.console_only:
        unset["enable_console_export"] = True
    return replace(settings, **unset) if unset else settings


def _export_otel_variables(dotenv: Mapping[str, str]) -> list[str]:
    """``OTEL_*`` variables of the ``.env`` file into the process environment, where the SDK reads
    them; a real variable is never overridden. Returns the names exported."""
    exported = []
    for name, value in dotenv.items():
        if name.startswith("OTEL_") and name not in os.environ:
            os.environ[name] = value
            exported.append(name)
    return exported


def _read_dotenv(path: str | os.PathLike[str] | None) -> tuple[str, dict[str, str]]:
    """The variables of the ``.env`` file at ``path`` (which must exist), else of ``./.env`` if any."""
    if path is None:
        default = Path.cwd() / ".env"
        if not default.is_file():
            return "", {}
        path = default
    elif not Path(path).is_file():
        raise ValueError(f"env_file={str(path)!r}: no such file")
    return str(path), {k: v for k, v in dotenv_values(path).items() if v is not None and v.strip()}


def _variable_layer(variables: Mapping[str, str], label: str) -> _Layer:
    layer: _Layer = {}
    for name, (setting, parse) in _VARIABLES.items():
        if name in variables and setting not in layer:
            if name in _RENAMED:
                warnings.warn(f"{name} ({label}) is renamed {_RENAMED[name]}; the old name still works for now",
                              DeprecationWarning, stacklevel=4)
            layer[setting] = _Given(variables[name], f"{label} {name}", parse)
    return layer


def _resource_layer() -> _Layer:
    """Service name, version and environment as the SDK reads them from ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES`` (a malformed pair is warned about and skipped, as the SDK does; a
    blank value is no value, as the SDK's resource takes it). Settings from here are the SDK's
    reading: the resource is left as the SDK makes it (see :func:`obslab.resource.build_resource`)."""
    environ = os.environ  # the SDK reads the process environment
    if not any(name in environ for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES")):
        return {}
    from opentelemetry.sdk.resources import OTELResourceDetector

    attributes = dict(OTELResourceDetector().detect().attributes)
    layer: _Layer = {}
    for key, setting in _RESOURCE_SETTINGS:
        if str(attributes.get(key, "")).strip() and setting not in layer:
            variable = "OTEL_SERVICE_NAME" if key == "service.name" and "OTEL_SERVICE_NAME" in environ \
                else "OTEL_RESOURCE_ATTRIBUTES"
            layer[setting] = _Given(str(attributes[key]), f"environment variable {variable}", p.parse_str)
    return layer


def _yaml_layer(path: str | os.PathLike[str]) -> _Layer:
    settings = set(_PARSERS) - set(_NOT_IN_FILES)
    return {setting: _Given(value, f"YAML file {path} {key}".rstrip(), _PARSERS[setting])
            for setting, (value, key) in read_yaml(path, settings).items()}
