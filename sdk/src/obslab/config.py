"""Settings for :func:`obslab.init_telemetry`, merged from every place a user can give them.

Precedence, highest first: explicit arguments; the process environment; a ``.env`` file
(never overriding the real environment); a YAML file (``config_file`` or ``OBSLAB_CONFIG``);
defaults. Every value remembers where it came from, so a bad one raises a ``ValueError``
that names the setting, the value and its source.

Only standard ``OTEL_*`` variables and obslab's own ``OBSLAB_*`` ones are read (plus
``OTLP_ENDPOINT``, the lab's name), never an application's generic names such as
``ENVIRONMENT`` or ``LOG_LEVEL``. The ``.env`` file is the one given as ``env_file`` (or
``OBSLAB_ENV_FILE``), else ``.env`` in the working directory; no other directory is searched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from dotenv import dotenv_values

from obslab import _parsers as p
from obslab._yaml import read_yaml
from obslab.prices import Price, parse_prices

DEFAULT_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
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
    """The resolved configuration of one telemetry handle."""

    service_name: str = "unknown_service"
    service_version: str = "0.0.0"
    environment: str = "development"  # deployment.environment.name: any name
    otlp_endpoint: str = DEFAULT_ENDPOINT  # all signals, unless a signal has its own below
    enable_console_export: bool = False
    sampling_ratio: float = 1.0
    log_level: str = "INFO"
    json_logs: bool = False
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    metric_export_interval: float = 15.0  # seconds, as in the travel-agent seed
    shutdown_timeout: float = 2.0  # seconds: bounds shutdown() and interpreter exit
    disabled: bool = False
    console_only: bool = False  # zero-infrastructure mode: stdout only, no network
    otlp_protocol: str = "grpc"  # or http/protobuf (needs the obslab[http] extra)
    propagators: tuple[str, ...] = ("tracecontext", "baggage")
    privacy: bool = False  # mask secrets and personal data before export
    privacy_keys: tuple[str, ...] = ()  # attribute keys to mask, on top of the built-in list
    prometheus_port: int | None = None  # in-process /metrics endpoint, next to OTLP
    system_metrics: bool = False  # process CPU, memory and garbage-collector metrics
    instrument: tuple[str, ...] = ()  # library instrumentors to turn on, or ("auto",)
    otlp_traces_endpoint: str | None = None  # a signal's own endpoint, used as given
    otlp_metrics_endpoint: str | None = None
    otlp_logs_endpoint: str | None = None
    # gRPC without TLS for an endpoint without http:// or https://. Unset (None) in Settings made by
    # hand, that is obslab's host:port shorthand: plain text; load_settings() gives False unless
    # OTEL_EXPORTER_OTLP_INSECURE=true, as the specification does for OTEL_EXPORTER_OTLP_ENDPOINT.
    otlp_insecure: bool | None = None
    otlp_timeout: float = 10.0  # seconds per export, retries included
    privacy_secret: str | None = field(default=None, repr=False)  # key of the user-id hash
    # LLM prices (USD per million tokens) over obslab.prices.DEFAULT_PRICES: (provider, model) -> Price
    prices: Mapping[tuple[str, str], Price] = field(default_factory=dict)
    # Spans and log records (each) kept while the collector is unreachable, sent when it answers
    # again; beyond it the oldest are dropped and counted. 0 turns the outage buffer off.
    outage_buffer: int = 10_000
    spool_dir: str | None = None  # where what is unsent at exit is written, and sent from at the next start
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def signal_endpoint(self, signal: str) -> str:
        """The endpoint ``signal`` ("traces", "metrics", "logs") is exported to."""
        return getattr(self, f"otlp_{signal}_endpoint") or self.otlp_endpoint


_PARSERS: dict[str, p.Parser] = {
    "service_name": p.parse_str,
    "service_version": p.parse_str,
    "environment": p.parse_environment,
    "otlp_endpoint": p.parse_endpoint,
    "otlp_traces_endpoint": p.parse_endpoint,
    "otlp_metrics_endpoint": p.parse_endpoint,
    "otlp_logs_endpoint": p.parse_endpoint,
    "otlp_insecure": p.parse_bool,
    "otlp_timeout": p.parse_seconds,
    "enable_console_export": p.parse_bool,
    "sampling_ratio": p.parse_ratio,
    "log_level": p.parse_log_level,
    "json_logs": p.parse_bool,
    "resource_attributes": p.parse_attributes,
    "metric_export_interval": p.parse_seconds,
    "shutdown_timeout": p.parse_seconds,
    "disabled": p.parse_bool,
    "console_only": p.parse_bool,
    "otlp_protocol": p.parse_protocol,
    "propagators": p.parse_names,
    "privacy": p.parse_bool,
    "privacy_keys": p.parse_names,
    "privacy_secret": p.parse_secret,
    "prometheus_port": p.parse_port,
    "system_metrics": p.parse_bool,
    "instrument": p.parse_names,
    "prices": parse_prices,
    "outage_buffer": p.parse_count,
    "spool_dir": p.parse_directory,
}
_NOT_IN_FILES = ("privacy_secret",)  # a secret belongs in the environment, not in a committed file

# Environment (and .env) variables: name -> (setting, parser). For one setting, the first
# variable set wins: standard OTEL_* names first, then obslab's.
_VARIABLES: dict[str, tuple[str, p.Parser]] = {
    "OTEL_SERVICE_NAME": ("service_name", p.parse_str),
    "OBSLAB_SERVICE_VERSION": ("service_version", p.parse_str),
    "OBSLAB_ENVIRONMENT": ("environment", p.parse_environment),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("otlp_endpoint", p.parse_otel_endpoint),
    "OTLP_ENDPOINT": ("otlp_endpoint", p.parse_endpoint),  # the lab's name: host:port is plain text
    **{f"OTEL_EXPORTER_OTLP_{s.upper()}_ENDPOINT": (f"otlp_{s}_endpoint", p.parse_otel_endpoint) for s in SIGNALS},
    "OTEL_EXPORTER_OTLP_INSECURE": ("otlp_insecure", p.parse_otel_bool),
    "OTEL_EXPORTER_OTLP_TIMEOUT": ("otlp_timeout", p.parse_milliseconds),
    "OTEL_EXPORTER_OTLP_PROTOCOL": ("otlp_protocol", p.parse_protocol),
    "OTEL_CONSOLE_EXPORT": ("enable_console_export", p.parse_bool),
    "OBSLAB_LOG_LEVEL": ("log_level", p.parse_log_level),
    "OBSLAB_JSON_LOGS": ("json_logs", p.parse_bool),
    "OBSLAB_METRIC_EXPORT_INTERVAL": ("metric_export_interval", p.parse_seconds),
    "OTEL_METRIC_EXPORT_INTERVAL": ("metric_export_interval", p.parse_milliseconds),
    "OBSLAB_SHUTDOWN_TIMEOUT": ("shutdown_timeout", p.parse_seconds),
    "OTEL_SDK_DISABLED": ("disabled", p.parse_otel_bool),
    "OBSLAB_CONSOLE_ONLY": ("console_only", p.parse_bool),
    "OTEL_PROPAGATORS": ("propagators", p.parse_names),
    "OBSLAB_PRIVACY": ("privacy", p.parse_bool),
    "OBSLAB_PRIVACY_KEYS": ("privacy_keys", p.parse_names),
    "OBSLAB_PRIVACY_SECRET": ("privacy_secret", p.parse_secret),
    "OBSLAB_PROMETHEUS_PORT": ("prometheus_port", p.parse_port),
    "OBSLAB_SYSTEM_METRICS": ("system_metrics", p.parse_bool),
    "OBSLAB_INSTRUMENT": ("instrument", p.parse_names),
    "OBSLAB_PRICES": ("prices", parse_prices),
    "OBSLAB_OUTAGE_BUFFER": ("outage_buffer", p.parse_count),
    "OBSLAB_SPOOL_DIR": ("spool_dir", p.parse_directory),
    "OTEL_RESOURCE_ATTRIBUTES": ("resource_attributes", p.parse_resource_attributes),
}
# Resource attributes that also set a setting when nothing more specific does.
_RESOURCE_SETTINGS = (("service.name", "service_name"), ("service.version", "service_version"),
                      ("deployment.environment.name", "environment"), ("deployment.environment", "environment"))


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
    ``defaults`` (a value, or a function of the other resolved settings), then Settings' defaults."""
    environ = os.environ if environ is None else environ
    real = {name: value for name, value in environ.items() if str(value).strip()}
    dotenv_path, dotenv = _read_dotenv(arguments.get("env_file") or real.get("OBSLAB_ENV_FILE"))
    config_file = arguments.get("config_file") or real.get("OBSLAB_CONFIG") or dotenv.get("OBSLAB_CONFIG")
    computed = {k: v for k, v in (defaults or {}).items() if callable(v)}
    layers = [
        {k: _Given(v, "argument", _PARSERS[k]) for k, v in arguments.items() if v is not None and k in _PARSERS},
        _variable_layer(real, "environment variable"),
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
    settings = Settings(**resolved, sources=sources)
    return _derived(settings, computed)


def _derived(settings: Settings, computed: Mapping[str, Callable[[Settings], Any]]) -> Settings:
    """Defaults that depend on other settings, and checks across settings."""
    unset = {name: value(settings) for name, value in computed.items() if name not in settings.sources}
    if settings.environment.lower() == "production" and "json_logs" not in settings.sources:
        unset["json_logs"] = True
    if settings.console_only:
        unset["enable_console_export"] = True
    if "otlp_insecure" not in settings.sources:
        unset["otlp_insecure"] = False
    if settings.otlp_protocol == "http/protobuf":
        if "otlp_endpoint" not in settings.sources:
            unset["otlp_endpoint"] = DEFAULT_HTTP_ENDPOINT
        for name in ("otlp_endpoint", *(f"otlp_{s}_endpoint" for s in SIGNALS)):
            value = unset.get(name, getattr(settings, name))
            if value is not None and "://" not in value:
                raise p.bad(name, value, settings.sources[name],
                            "OTLP over HTTP needs a URL, http(s)://host[:port][/path]")
    return replace(settings, **unset) if unset else settings


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
            layer[setting] = _Given(variables[name], f"{label} {name}", parse)
    sampling = _sampler(variables, label)
    if sampling is not None:
        layer["sampling_ratio"] = sampling
    if "resource_attributes" in layer:
        given = layer["resource_attributes"]
        attributes = given.parse("resource_attributes", given.value, given.where)
        for key, setting in _RESOURCE_SETTINGS:
            if key in attributes and setting not in layer:
                layer[setting] = _Given(attributes[key], given.where, _PARSERS[setting])
    return layer


def _sampler(variables: Mapping[str, str], label: str) -> _Given | None:
    sampler = variables.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not sampler:
        return None
    where = f"{label} OTEL_TRACES_SAMPLER"
    if sampler in ("always_on", "parentbased_always_on"):
        return _Given(1.0, where, p.parse_ratio)
    if sampler in ("always_off", "parentbased_always_off"):
        return _Given(0.0, where, p.parse_ratio)
    if sampler in ("traceidratio", "parentbased_traceidratio"):
        return _Given(variables.get("OTEL_TRACES_SAMPLER_ARG", "1.0"), f"{label} OTEL_TRACES_SAMPLER_ARG",
                      p.parse_ratio)
    raise ValueError(f"OTEL_TRACES_SAMPLER={sampler!r} ({where}) is not supported: use always_on, "
                     "always_off, traceidratio or their parentbased_ forms")


def _yaml_layer(path: str | os.PathLike[str]) -> _Layer:
    settings = set(_PARSERS) - set(_NOT_IN_FILES)
    return {setting: _Given(value, f"YAML file {path} {key}".rstrip(), _PARSERS[setting])
            for setting, (value, key) in read_yaml(path, settings).items()}
