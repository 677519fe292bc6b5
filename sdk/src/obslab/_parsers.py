"""Parsers of setting values: each turns what a user gave into the typed value, or raises a
``ValueError`` naming the setting, the value and where it came from."""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, Callable, Mapping
from urllib.parse import SplitResult, urlsplit

Parser = Callable[[str, Any, str], Any]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PROTOCOLS = ("grpc", "http/protobuf")
SECRET_MIN_LENGTH, SECRET_MIN_DISTINCT = 32, 10


def bad(name: str, value: Any, where: str, why: str) -> ValueError:
    """The error for a bad value: ``name=value (from where): why``."""
    return ValueError(f"{name}={value!r} (from {where}): {why}")


def parse_str(name: str, value: Any, where: str) -> str:
    text = str(value).strip()
    if not text:
        raise bad(name, value, where, "must not be empty")
    return text


def parse_bool(name: str, value: Any, where: str) -> bool:
    """obslab's own switches: true/false, 1/0, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise bad(name, value, where, "expected true or false")


def parse_otel_bool(name: str, value: Any, where: str) -> bool:
    """An ``OTEL_*`` boolean, as the specification reads it: only ``true`` (any case) is true; any
    other value is false, with a warning unless it is ``false``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", ""):
        warnings.warn(f"{name}={value!r} (from {where}): not 'true' or 'false', so read as false "
                      "(OpenTelemetry specification)", UserWarning, stacklevel=2)
    return text == "true"


def parse_ratio(name: str, value: Any, where: str) -> float:
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise bad(name, value, where, "expected a number between 0 and 1") from None
    if not 0.0 <= ratio <= 1.0:
        raise bad(name, value, where, "must be between 0 and 1")
    return ratio


def parse_seconds(name: str, value: Any, where: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise bad(name, value, where, "expected a number of seconds") from None
    if not seconds > 0 or seconds == float("inf"):
        raise bad(name, value, where, "must be a finite number greater than 0")
    return seconds


def parse_environment(name: str, value: Any, where: str) -> str:
    """Any deployment environment name (``production`` turns JSON logs on)."""
    return parse_str(name, getattr(value, "value", value), where)


def parse_log_level(name: str, value: Any, where: str) -> str:
    text = str(getattr(value, "value", value)).strip().upper()
    text = "WARNING" if text == "WARN" else text
    if text not in LOG_LEVELS:
        raise bad(name, value, where, f"unknown log level; expected one of {', '.join(LOG_LEVELS)}")
    return text


def parse_endpoint(name: str, value: Any, where: str) -> str:
    """obslab's endpoint: ``http(s)://host[:port][/path]``, or the ``host:port`` shorthand, which
    means plain text (``http://host:port``) as in the lab."""
    text = str(value).strip()
    if "://" not in text:
        _check_address(name, value, where, text, port_required=True)
        return f"http://{text}"
    return parse_otel_endpoint(name, value, where)


def parse_otel_endpoint(name: str, value: Any, where: str) -> str:
    """An ``OTEL_EXPORTER_OTLP_*ENDPOINT`` as the specification allows it: a URL with scheme
    http or https, host, optional port and path; or, for gRPC, ``host:port`` (TLS unless
    ``OTEL_EXPORTER_OTLP_INSECURE=true``). Kept verbatim."""
    text = str(value).strip()
    if "://" not in text:
        _check_address(name, value, where, text, port_required=True)
        return text
    parts = _split(name, value, where, text)
    if parts.scheme not in ("http", "https"):
        raise bad(name, value, where, "the scheme must be http or https")
    _check_address(name, value, where, parts.netloc, port_required=False)
    return text


def _split(name: str, value: Any, where: str, url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as error:  # a malformed IPv6 address, say
        raise bad(name, value, where, f"not a valid URL ({error})") from None


def _check_address(name: str, value: Any, where: str, address: str, port_required: bool) -> None:
    parts = _split(name, value, where, f"//{address}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or "@" in address or (parts.path and parts.path != "/"):
        raise bad(name, value, where, "expected host:port or http(s)://host[:port][/path]")
    if port is None and port_required:
        raise bad(name, value, where, "expected host:port (the port is missing)")
    if port == -1 or port == 0:
        raise bad(name, value, where, f"port {address.rpartition(':')[2]!r} is not a number between 1 and 65535")


def parse_attributes(name: str, value: Any, where: str) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    raise bad(name, value, where, "expected a mapping of attribute names to values")


def parse_protocol(name: str, value: Any, where: str) -> str:
    text = str(value).strip().lower()
    text = {"http": "http/protobuf"}.get(text, text)
    if text not in PROTOCOLS:
        raise bad(name, value, where, f"expected one of {', '.join(PROTOCOLS)}")
    return text


def parse_names(name: str, value: Any, where: str) -> tuple[str, ...]:
    """A comma-separated string or a list of names, lower-cased."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise bad(name, value, where, "expected a list of names or a comma-separated string")
    names = tuple(str(item).strip().lower() for item in items if str(item).strip())
    if any(not re.fullmatch(r"[a-z0-9_.\-]+", n) for n in names):
        raise bad(name, value, where, "names may hold only letters, digits, '_', '.' and '-'")
    return names


def parse_port(name: str, value: Any, where: str) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise bad(name, value, where, "expected a port number between 1 and 65535")
    return int(text)


def parse_count(name: str, value: Any, where: str) -> int:
    """A whole number of records, 0 or more."""
    text = str(value).strip().replace("_", "")
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()):
        raise bad(name, value, where, "expected a whole number of records, 0 or more")
    return int(text)


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
               "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_bytes(name: str, value: Any, where: str) -> int:
    """A size in bytes, more than 0: a whole number, or one with a unit (``64MiB``, ``500kB``)."""
    text = str(value).strip().replace("_", "").replace(" ", "")
    number = text.rstrip("KMGkmgiBb")
    unit = text[len(number):].lower()
    if isinstance(value, bool) or not number.isdigit() or unit not in _BYTE_UNITS or int(number) * _BYTE_UNITS[unit] < 1:
        raise bad(name, value, where, "expected a size in bytes greater than 0, such as 33554432 or 32MiB")
    return int(number) * _BYTE_UNITS[unit]


def parse_directory(name: str, value: Any, where: str) -> str:
    """An absolute path of a directory obslab may write to: it exists and is writable, or it can be
    created (nothing is created here)."""
    text = str(value).strip()
    if not text:
        raise bad(name, value, where, "must not be empty")
    path = os.path.abspath(os.path.expanduser(text))
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise bad(name, value, where, f"{existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise bad(name, value, where, f"{existing} is not writable")
    return path


def parse_secret(name: str, value: Any, where: str) -> str:
    """The key of the user-id hash: long and varied enough that a dictionary cannot reverse it.
    Errors show its length, never the secret."""
    text = str(value).strip()
    if len(text) < SECRET_MIN_LENGTH or len(set(text)) < SECRET_MIN_DISTINCT:
        raise ValueError(
            f"{name}=<hidden, {len(text)} characters> (from {where}): too weak for a keyed hash; use at least "
            f"{SECRET_MIN_LENGTH} characters drawn from at least {SECRET_MIN_DISTINCT} different ones, e.g. "
            "python -c 'import secrets; print(secrets.token_hex(32))'")
    return text
