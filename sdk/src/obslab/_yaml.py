"""The YAML configuration file: flat keys named like ``init_telemetry``'s arguments, or the
FilAgent ``telemetry.yaml`` shape (``service:``, ``exporters:``, ``sampling:``, ``propagation:``,
``privacy:``), optionally under a ``telemetry:`` key."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, Collection, Mapping

import yaml

from obslab._parsers import parse_bool

SAMPLING_STRATEGIES = ("always_on", "always_off", "trace_id_ratio")
_SECTIONS = ("service", "exporters", "sampling", "propagation", "privacy", "enabled")  # not flat keys
_EXPORTER_PROTOCOLS = {"otlp": "grpc", "otlp_grpc": "grpc", "jaeger": "grpc", "otlp_http": "http/protobuf"}

Put = Callable[[str, Any, str], None]


def read_yaml(path: str | os.PathLike[str], settings: Collection[str]) -> dict[str, tuple[Any, str]]:
    """``{setting: (value, YAML key)}`` from the file at ``path``; ``settings`` are the flat keys
    it may hold."""
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
    return _flatten(data, f"YAML file {path}", settings)


def _flatten(data: Mapping[str, Any], source: str, settings: Collection[str]) -> dict[str, tuple[Any, str]]:
    unknown = set(data) - set(settings) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {', '.join(sorted(unknown))}")
    flat = {k: (v, k) for k, v in data.items() if k in settings and k not in _SECTIONS}

    def put(setting: str, value: Any, key: str) -> None:
        flat.setdefault(setting, (value, key))

    if "enabled" in data:
        put("disabled", not parse_bool("enabled", data["enabled"], source), "enabled")
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
    return flat


def _section(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}={value!r} (from {source}): expected a mapping")
    return value


def _flatten_exporters(exporters: Mapping[str, Any], source: str, put: Put) -> None:
    enabled = {}
    for name, options in exporters.items():
        options = options if isinstance(options, Mapping) else {"enabled": options}
        if name not in (*_EXPORTER_PROTOCOLS, "console"):
            raise ValueError(f"exporters.{name} (from {source}): unknown exporter; expected one of "
                             f"{', '.join((*_EXPORTER_PROTOCOLS, 'console'))}")
        if parse_bool(f"exporters.{name}.enabled", options.get("enabled", True), source):
            enabled[name] = options
    if not enabled:
        return
    if "jaeger" in enabled:
        warnings.warn("exporters.jaeger: Jaeger reads OTLP natively (since 1.35) and OpenTelemetry Python no "
                      "longer ships a Jaeger exporter, so obslab sends OTLP gRPC to this endpoint", UserWarning,
                      stacklevel=5)
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


def _flatten_sampling(sampling: Mapping[str, Any], source: str, put: Put) -> None:
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
