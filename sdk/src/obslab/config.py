"""Settings for :func:`obslab.init_telemetry`, merged from every place a user can give them.

Precedence, highest first: explicit arguments; the process environment; a ``.env`` file
(never overriding the real environment); a YAML file (``config_file`` or ``OBSLAB_CONFIG``);
defaults. Every value remembers where it came from, so a bad one raises a ``ValueError``
that names the setting, the value and its source.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from dotenv import dotenv_values, find_dotenv

ENVIRONMENTS = ("development", "test", "staging", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_ENDPOINT = "localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
PROTOCOLS = ("grpc", "http/protobuf")
SAMPLING_STRATEGIES = ("always_on", "always_off", "trace_id_ratio")


class Environment(str, Enum):
    """Deployment environments; PRODUCTION turns JSON logs on."""

    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class LogLevel(str, Enum):
    """Root logger levels."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

# Environment variables read for each setting, first match wins. Standard OTEL_* names come
# first; the travel-agent seed's names follow.
_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "service_name": ("OTEL_SERVICE_NAME", "SERVICE_NAME"),
    "service_version": ("SERVICE_VERSION",),
    "environment": ("ENVIRONMENT",),
    "otlp_endpoint": ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP_ENDPOINT"),
    "enable_console_export": ("OTEL_CONSOLE_EXPORT",),
    "log_level": ("LOG_LEVEL",),
    "json_logs": ("OBSLAB_JSON_LOGS",),
    "metric_export_interval": ("OBSLAB_METRIC_EXPORT_INTERVAL",),
    "shutdown_timeout": ("OBSLAB_SHUTDOWN_TIMEOUT",),
    "disabled": ("OTEL_SDK_DISABLED",),
    "console_only": ("OBSLAB_CONSOLE_ONLY",),
    "otlp_protocol": ("OTEL_EXPORTER_OTLP_PROTOCOL",),
    "propagators": ("OTEL_PROPAGATORS",),
    "privacy": ("OBSLAB_PRIVACY",),
    "privacy_keys": ("OBSLAB_PRIVACY_KEYS",),
    "prometheus_port": ("OBSLAB_PROMETHEUS_PORT",),
    "system_metrics": ("OBSLAB_SYSTEM_METRICS",),
    "instrument": ("OBSLAB_INSTRUMENT",),
}


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one telemetry handle."""

    service_name: str = "unknown_service"
    service_version: str = "0.0.0"
    environment: str = "development"
    otlp_endpoint: str = DEFAULT_ENDPOINT
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
    system_metrics: bool = False  # system.cpu.usage, system.memory.usage, system.gc.*
    instrument: tuple[str, ...] = ()  # library instrumentors to turn on, or ("auto",)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def otlp_insecure(self) -> bool:
        """Plain-text gRPC unless the endpoint says https."""
        return not self.otlp_endpoint.startswith("https://")


class _Layer(dict):
    """Raw values from one source; ``where(setting)`` describes the source in error messages."""

    def __init__(self, source: str, values: Mapping[str, Any], names: Mapping[str, str] | None = None) -> None:
        super().__init__(values)
        self.source, self.names = source, dict(names or {})
        self.raw: Mapping[str, str] = {}

    def where(self, setting: str) -> str:
        return f"{self.source} {self.names[setting]}" if setting in self.names else self.source


def load_settings(arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Merge explicit ``arguments`` (None means unset) over env, .env, YAML and defaults."""
    environ = os.environ if environ is None else environ
    dotenv_layer = _dotenv_layer(environ)
    config_file = arguments.get("config_file") or environ.get("OBSLAB_CONFIG") or dotenv_layer.raw.get("OBSLAB_CONFIG")
    layers = [
        _Layer("argument", {k: v for k, v in arguments.items() if v is not None and k != "config_file"}),
        _env_layer(environ, "environment variable"),
        dotenv_layer,
        _yaml_layer(config_file) if config_file else _Layer("YAML", {}),
    ]
    resolved: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for f in fields(Settings):
        if f.name == "sources":
            continue
        for layer in layers:
            if f.name in layer:
                raw, where = layer[f.name], layer.where(f.name)
                resolved[f.name] = _PARSERS[f.name](f.name, raw, where)
                sources[f.name] = where
                break
    attrs = dict(resolved.get("resource_attributes", {}))
    settings = Settings(**{**resolved, "resource_attributes": attrs, "sources": sources})
    if settings.environment == "production" and "json_logs" not in sources:
        settings = replace(settings, json_logs=True)
    if settings.console_only:
        settings = replace(settings, enable_console_export=True)
    if settings.otlp_protocol == "http/protobuf" and "otlp_endpoint" not in sources:
        settings = replace(settings, otlp_endpoint=DEFAULT_HTTP_ENDPOINT)
    return settings


# --- layers ----------------------------------------------------------------------------------


def _env_layer(environ: Mapping[str, str], label: str) -> _Layer:
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    for setting, env_names in _ENV_NAMES.items():
        for name in env_names:
            if environ.get(name, "").strip():
                values[setting], names[setting] = environ[name], name
                break
    ratio_name = _sampler_ratio(environ, values, names)
    if ratio_name:
        names["sampling_ratio"] = ratio_name
    resource = _parse_resource_attributes(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    if resource:
        values["resource_attributes"] = resource
        names["resource_attributes"] = "OTEL_RESOURCE_ATTRIBUTES"
        for key, setting in (("service.name", "service_name"), ("service.version", "service_version"),
                             ("deployment.environment.name", "environment"), ("deployment.environment", "environment")):
            if key in resource and setting not in values:
                values[setting], names[setting] = resource[key], "OTEL_RESOURCE_ATTRIBUTES"
    if "metric_export_interval" not in values and environ.get("OTEL_METRIC_EXPORT_INTERVAL", "").strip():
        raw = environ["OTEL_METRIC_EXPORT_INTERVAL"]
        values["metric_export_interval"] = _MillisecondsValue(raw)
        names["metric_export_interval"] = "OTEL_METRIC_EXPORT_INTERVAL"
    return _Layer(label, values, names)


class _MillisecondsValue(str):
    """OTEL_METRIC_EXPORT_INTERVAL is in milliseconds; our setting is in seconds."""


def _sampler_ratio(environ: Mapping[str, str], values: dict[str, Any], names: dict[str, str]) -> str | None:
    sampler = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not sampler:
        return None
    if sampler in ("always_on", "parentbased_always_on"):
        values["sampling_ratio"] = 1.0
    elif sampler in ("always_off", "parentbased_always_off"):
        values["sampling_ratio"] = 0.0
    elif sampler in ("traceidratio", "parentbased_traceidratio"):
        values["sampling_ratio"] = environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
        return "OTEL_TRACES_SAMPLER_ARG"
    else:
        raise ValueError(
            f"OTEL_TRACES_SAMPLER={sampler!r} (environment variable) is not supported: use always_on, "
            "always_off, traceidratio or their parentbased_ forms")
    return "OTEL_TRACES_SAMPLER"


def _dotenv_layer(environ: Mapping[str, str]) -> _Layer:
    path = find_dotenv(usecwd=True)
    raw = {k: v for k, v in (dotenv_values(path) if path else {}).items() if v is not None}
    # The real environment wins: a .env value only fills what the environment leaves unset.
    layer = _env_layer({k: v for k, v in raw.items() if not environ.get(k, "").strip()}, f".env file {path}")
    layer.raw = raw
    return layer


def _yaml_layer(path: str | os.PathLike[str]) -> _Layer:
    source = f"YAML file {path}"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"config_file={str(path)!r}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"config_file={str(path)!r}: not valid YAML ({exc})") from None
    if isinstance(data, dict) and set(data) == {"telemetry"}:
        data = data["telemetry"] or {}  # FilAgent nests everything under telemetry:
    if not isinstance(data, dict):
        raise ValueError(f"config_file={str(path)!r}: expected a mapping of settings, got {type(data).__name__}")
    flat, names = _flatten_yaml(data, source)
    return _Layer(source, flat, names)


_YAML_SECTIONS = ("service", "exporters", "sampling", "propagation", "privacy", "enabled")  # not flat keys


def _flatten_yaml(data: Mapping[str, Any], source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Accept flat keys named like init_telemetry's arguments, and the FilAgent ``telemetry.yaml``
    shape (``service:``, ``exporters:``, ``sampling:``, ``propagation:``, ``privacy:``).
    Returns the settings and, for error messages, the YAML key each came from."""
    unknown = set(data) - set(_PARSERS) - set(_YAML_SECTIONS)
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {', '.join(sorted(unknown))}")
    flat = {k: v for k, v in data.items() if k in _PARSERS and k not in _YAML_SECTIONS}
    names = {k: k for k in flat}

    def put(setting: str, value: Any, key: str) -> None:
        if setting not in flat:
            flat[setting], names[setting] = value, key

    if "enabled" in data:
        put("disabled", not _parse_bool("enabled", data["enabled"], source), "enabled")
    service = _section(data, "service", source)
    for key, setting in (("name", "service_name"), ("version", "service_version"), ("environment", "environment")):
        if key in service:
            put(setting, service[key], f"service.{key}")
    if "namespace" in service:
        put("resource_attributes", {"service.namespace": service["namespace"]}, "service.namespace")
    _flatten_exporters(_section(data, "exporters", source), source, put)
    _flatten_sampling(_section(data, "sampling", source), source, put)
    propagation = data.get("propagation")
    if isinstance(propagation, Mapping):
        propagation = propagation.get("propagators")
    if propagation is not None:
        put("propagators", propagation, "propagation.propagators")
    privacy = data.get("privacy")
    if isinstance(privacy, Mapping):
        if "enabled" in privacy:
            put("privacy", privacy["enabled"], "privacy.enabled")
        if "sensitive_keys" in privacy:
            put("privacy_keys", privacy["sensitive_keys"], "privacy.sensitive_keys")
    elif privacy is not None:
        put("privacy", privacy, "privacy")
    return flat, names


def _section(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}={value!r} (from {source}): expected a mapping")
    return value


_EXPORTER_PROTOCOLS = {"otlp": "grpc", "otlp_grpc": "grpc", "jaeger": "grpc", "otlp_http": "http/protobuf"}


def _flatten_exporters(exporters: Mapping[str, Any], source: str, put: Callable[[str, Any, str], None]) -> None:
    enabled = {}
    for name, options in exporters.items():
        options = options if isinstance(options, Mapping) else {"enabled": options}
        if name not in (*_EXPORTER_PROTOCOLS, "console"):
            raise ValueError(f"exporters.{name} (from {source}): unknown exporter; expected one of "
                             f"{', '.join((*_EXPORTER_PROTOCOLS, 'console'))}")
        if _parse_bool(f"exporters.{name}.enabled", options.get("enabled", True), source):
            enabled[name] = options
    if not enabled:
        return
    if "jaeger" in enabled:
        warnings.warn("exporters.jaeger: Jaeger reads OTLP natively (since 1.35) and OpenTelemetry Python no "
                      "longer ships a Jaeger exporter, so obslab sends OTLP gRPC to this endpoint", UserWarning,
                      stacklevel=4)
    network = [name for name in enabled if name != "console"]
    if len({_EXPORTER_PROTOCOLS[name] for name in network}) > 1:
        raise ValueError(f"exporters (from {source}): {', '.join(network)} are all enabled; "
                         "enable one OTLP exporter (gRPC or HTTP)")
    if "console" in enabled:
        put("enable_console_export", True, "exporters.console")
        if not network:
            put("console_only", True, "exporters.console")
    if network:
        name = network[0]
        put("otlp_protocol", _EXPORTER_PROTOCOLS[name], f"exporters.{name}")
        if "endpoint" in enabled[name]:
            put("otlp_endpoint", enabled[name]["endpoint"], f"exporters.{name}.endpoint")


def _flatten_sampling(sampling: Mapping[str, Any], source: str, put: Callable[[str, Any, str], None]) -> None:
    strategy = str(sampling.get("strategy", "trace_id_ratio" if "ratio" in sampling else "")).strip().lower()
    if not strategy:
        return
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"sampling.strategy={sampling['strategy']!r} (from {source}): unknown sampling strategy; "
                         f"expected one of {', '.join(SAMPLING_STRATEGIES)}")
    if strategy == "always_on":
        put("sampling_ratio", 1.0, "sampling.strategy")
    elif strategy == "always_off":
        put("sampling_ratio", 0.0, "sampling.strategy")
    elif "ratio" not in sampling:
        raise ValueError(f"sampling.strategy='trace_id_ratio' (from {source}): needs sampling.ratio (0 to 1)")
    else:
        put("sampling_ratio", sampling["ratio"], "sampling.ratio")


# --- parsers ---------------------------------------------------------------------------------


def _bad(name: str, value: Any, where: str, why: str) -> ValueError:
    return ValueError(f"{name}={value!r} (from {where}): {why}")


def _parse_str(name: str, value: Any, where: str) -> str:
    text = str(value).strip()
    if not text:
        raise _bad(name, value, where, "must not be empty")
    return text


def _parse_bool(name: str, value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _bad(name, value, where, "expected true or false")


def _parse_ratio(name: str, value: Any, where: str) -> float:
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise _bad(name, value, where, "expected a number between 0 and 1") from None
    if not 0.0 <= ratio <= 1.0:
        raise _bad(name, value, where, "must be between 0 and 1")
    return ratio


def _parse_seconds(name: str, value: Any, where: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise _bad(name, value, where, "expected a number of seconds") from None
    if isinstance(value, _MillisecondsValue):
        seconds /= 1000.0
    if seconds <= 0:
        raise _bad(name, value, where, "must be greater than 0")
    return seconds


def _parse_environment(name: str, value: Any, where: str) -> str:
    text = str(getattr(value, "value", value)).strip().lower()
    if text not in ENVIRONMENTS:
        raise _bad(name, value, where, f"unknown environment; expected one of {', '.join(ENVIRONMENTS)}")
    return text


def _parse_log_level(name: str, value: Any, where: str) -> str:
    text = str(getattr(value, "value", value)).strip().upper()
    if text == "WARN":
        text = "WARNING"
    if text not in LOG_LEVELS:
        raise _bad(name, value, where, f"unknown log level; expected one of {', '.join(LOG_LEVELS)}")
    return text


_ENDPOINT = re.compile(r"^(?:(?P<scheme>https?)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>[^/]*)/?$")


def _parse_endpoint(name: str, value: Any, where: str) -> str:
    text = str(value).strip()
    match = _ENDPOINT.match(text)
    if not match:
        raise _bad(name, value, where, "expected host:port or http(s)://host:port")
    port = match.group("port")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise _bad(name, value, where, f"port {port!r} is not a number between 1 and 65535")
    return text


def _parse_attributes(name: str, value: Any, where: str) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    raise _bad(name, value, where, "expected a mapping of attribute names to values")


def _parse_resource_attributes(text: str) -> dict[str, str]:
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"OTEL_RESOURCE_ATTRIBUTES={text!r} (environment variable): "
                             f"{item!r} is not key=value")
        pairs[key.strip()] = val.strip()
    return pairs


def _parse_protocol(name: str, value: Any, where: str) -> str:
    text = str(value).strip().lower()
    text = {"http": "http/protobuf", "grpc": "grpc"}.get(text, text)
    if text not in PROTOCOLS:
        raise _bad(name, value, where, f"expected one of {', '.join(PROTOCOLS)}")
    return text


def _parse_names(name: str, value: Any, where: str) -> tuple[str, ...]:
    """A comma-separated string or a list of names, lower-cased."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise _bad(name, value, where, "expected a list of names or a comma-separated string")
    names = tuple(str(item).strip().lower() for item in items if str(item).strip())
    if any(not re.fullmatch(r"[a-z0-9_.\-]+", n) for n in names):
        raise _bad(name, value, where, "names may hold only letters, digits, '_', '.' and '-'")
    return names


def _parse_port(name: str, value: Any, where: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _bad(name, value, where, "expected a port number between 1 and 65535")
    return int(text)


_PARSERS: dict[str, Callable[[str, Any, str], Any]] = {
    "service_name": _parse_str,
    "service_version": _parse_str,
    "environment": _parse_environment,
    "otlp_endpoint": _parse_endpoint,
    "enable_console_export": _parse_bool,
    "sampling_ratio": _parse_ratio,
    "log_level": _parse_log_level,
    "json_logs": _parse_bool,
    "resource_attributes": _parse_attributes,
    "metric_export_interval": _parse_seconds,
    "shutdown_timeout": _parse_seconds,
    "disabled": _parse_bool,
    "console_only": _parse_bool,
    "otlp_protocol": _parse_protocol,
    "propagators": _parse_names,
    "privacy": _parse_bool,
    "privacy_keys": _parse_names,
    "prometheus_port": _parse_port,
    "system_metrics": _parse_bool,
    "instrument": _parse_names,
}
