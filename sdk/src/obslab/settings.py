"""One record per obslab setting: its ``init_telemetry`` argument, ``OBSLAB_*`` environment variable,
YAML key, type, default and one-line doc. The loader (:mod:`obslab.config`), the settings page's
table and the SDK part of ``.env.example`` all come from :data:`SETTINGS`.

Standard ``OTEL_*`` variables are not here: opentelemetry-sdk and its exporters read them (see
:mod:`obslab._export`), with the SDK's behaviour on a bad value (a warning, then the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from obslab import _parsers as p
from obslab.prices import parse_prices


@dataclass(frozen=True)
class Setting:
    """One obslab setting and every name it goes by."""

    name: str  # init_telemetry's argument and the Settings field
    env: str | None  # environment (and .env) variable
    yaml: str | None  # flat YAML key (the FilAgent sections are read by obslab._yaml)
    type: str  # as documented
    default: str  # as documented ("" for none)
    doc: str  # one line
    parse: p.Parser
    renamed_from: tuple[str, ...] = ()  # old variable names, still read with a warning
    example: str = ""  # the value shown in .env.example
    auto_default: str = ""  # the default of obslab.auto_instrument(), when it differs


SETTINGS: tuple[Setting, ...] = (
    Setting("service_name", None, "service_name", "str", "OTEL_SERVICE_NAME, else unknown_service:python",
            "service.name of the instrumented app (over OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES)", p.parse_str),
    Setting("service_version", "OBSLAB_SERVICE_VERSION", "service_version", "str", "OTEL_RESOURCE_ATTRIBUTES",
            "service.version of the instrumented app", p.parse_str, example="1.0.0"),
    Setting("environment", "OBSLAB_ENVIRONMENT", "environment", "str", "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name and deployment.environment, any name; production turns JSON logs on",
            p.parse_environment,
            auto_default="production"),
    Setting("otlp_endpoint", "OTLP_ENDPOINT", "otlp_endpoint", "URL or host:port",
            "OTEL_EXPORTER_OTLP_* (http://localhost:4317)",
            "collector endpoint of every signal; host:port means plain text (over the OTEL_EXPORTER_OTLP_* "
            "endpoints)", p.parse_endpoint, example="localhost:4317"),
    Setting("otlp_protocol", None, "otlp_protocol", "grpc | http/protobuf",
            "OTEL_EXPORTER_OTLP_PROTOCOL (grpc)", "OTLP protocol; http/protobuf needs obslab[http]", p.parse_protocol),
    Setting("enable_console_export", "OBSLAB_CONSOLE_EXPORT", "enable_console_export", "bool", "false",
            "also print spans and metrics on the console", p.parse_bool, renamed_from=("OTEL_CONSOLE_EXPORT",),
            auto_default="true in development"),
    Setting("console_only", "OBSLAB_CONSOLE_ONLY", "console_only", "bool", "false",
            "no network at all: every signal printed as JSON on stdout", p.parse_bool, example="false"),
    Setting("sampling_ratio", None, "sampling_ratio", "float 0..1",
            "OTEL_TRACES_SAMPLER (parentbased_always_on)",
            "share of new traces kept, parent-based (over OTEL_TRACES_SAMPLER)", p.parse_ratio),
    Setting("propagators", None, "propagators", "names",
            "OTEL_PROPAGATORS (tracecontext,baggage)", "context propagators (over OTEL_PROPAGATORS)", p.parse_names),
    Setting("log_level", "OBSLAB_LOG_LEVEL", "log_level", "DEBUG..CRITICAL", "INFO",
            "level of what obslab exports and prints", p.parse_log_level, example="INFO"),
    Setting("json_logs", "OBSLAB_JSON_LOGS", "json_logs", "bool", "true in production",
            "console log lines as JSON objects", p.parse_bool),
    Setting("resource_attributes", None, "resource_attributes", "mapping", "",
            "extra resource attributes (over OTEL_RESOURCE_ATTRIBUTES)", p.parse_attributes),
    Setting("metric_export_interval", "OBSLAB_METRIC_EXPORT_INTERVAL", "metric_export_interval", "seconds",
            "15", "metric export interval (OTEL_METRIC_EXPORT_INTERVAL, in ms, wins)", p.parse_seconds),
    Setting("shutdown_timeout", "OBSLAB_SHUTDOWN_TIMEOUT", "shutdown_timeout", "seconds", "2",
            "longest time shutdown() and interpreter exit spend flushing", p.parse_seconds, example="2"),
    Setting("disabled", None, "disabled", "bool", "OTEL_SDK_DISABLED (false)",
            "record nothing: a no-op handle", p.parse_bool),
    Setting("privacy", "OBSLAB_PRIVACY", "privacy", "bool", "false",
            "mask secrets and personal data before export", p.parse_bool, example="false"),
    Setting("privacy_keys", "OBSLAB_PRIVACY_KEYS", "privacy_keys", "names", "",
            "extra attribute keys to mask, on top of password, token...", p.parse_names),
    Setting("privacy_secret", "OBSLAB_PRIVACY_SECRET", None, "str (32+ chars)", "",
            "key of the user-id hash (environment only); unset: user ids exported as [REDACTED]", p.parse_secret),
    Setting("prometheus_port", "OBSLAB_PROMETHEUS_PORT", "prometheus_port", "port", "",
            "serve /metrics on 127.0.0.1 (needs obslab[prometheus])", p.parse_port),
    Setting("system_metrics", "OBSLAB_SYSTEM_METRICS", "system_metrics", "bool", "false",
            "process.* CPU, memory, thread and GC metrics, and the host's system.* CPU and memory", p.parse_bool, auto_default="true"),
    Setting("instrument", "OBSLAB_INSTRUMENT", "instrument", "names | auto", "",
            "library instrumentors to turn on (fastapi,requests,pandas...), or auto", p.parse_names, auto_default="auto"),
    Setting("openai_agents_trace_export", "OBSLAB_OPENAI_AGENTS_TRACE_EXPORT", "openai_agents_trace_export", "bool",
            "false", "with instrument=openai_agents, keep the Agents SDK's own export of its traces to OpenAI too",
            p.parse_bool),
    Setting("prices", "OBSLAB_PRICES", "prices", "provider/model=in:out[:cache_read[:cache_write[:reasoning]]]", "",
            "LLM prices over genai-prices' (obslab[genai]), US dollars per million tokens", parse_prices),
    Setting("outage_buffer", "OBSLAB_OUTAGE_BUFFER", "outage_buffer", "records", "10000",
            "spans and log records kept while the collector is unreachable; 0 for none", p.parse_count),
    Setting("outage_buffer_bytes", "OBSLAB_OUTAGE_BUFFER_BYTES", "outage_buffer_bytes", "bytes (or 32MiB, 500kB)",
            "32MiB", "bound in encoded bytes of the outage buffer and of the spool, per signal (the oldest dropped "
            "beyond)", p.parse_bytes, example="32MiB"),
    Setting("spool_dir", "OBSLAB_SPOOL_DIR", "spool_dir", "directory", "",
            "where what is unsent at exit is written, and sent by the next start", p.parse_directory),
)

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
# The loader's own variables: where the other settings are read from.
SOURCES = (
    ("env_file", "OBSLAB_ENV_FILE", "the .env file to read (default: ./.env); from the process environment only"),
    ("config_file", "OBSLAB_CONFIG", "a YAML file of settings"),
)

_BEGIN_TABLE = "<!-- settings table: generated from sdk/src/obslab/settings.py, do not edit -->"
_END_TABLE = "<!-- end of settings table -->"
_BEGIN_ENV = "# --- SDK settings: generated from sdk/src/obslab/settings.py, do not edit ---"
_END_ENV = "# --- end of SDK settings ---"


def readme_table() -> str:
    """The settings table of ``docs/settings.md``, between its marker comments."""
    rows = ["| Argument | Environment | YAML | Type | Default | `auto_instrument` default | What it does |",
            "|---|---|---|---|---|---|---|"]
    for setting in SETTINGS:
        env = f"`{setting.env}`" if setting.env else ""
        if setting.renamed_from:
            env += " (was " + ", ".join(f"`{old}`" for old in setting.renamed_from) + ")"
        yaml = f"`{setting.yaml}`" if setting.yaml else ""
        rows.append(f"| `{setting.name}` | {env} | {yaml} | {setting.type} | {setting.default} | "
                    f"{setting.auto_default} | {setting.doc} |")
    for argument, env, doc in SOURCES:
        rows.append(f"| `{argument}` | `{env}` | | path | | | {doc} |")
    return "\n".join([_BEGIN_TABLE, *rows, _END_TABLE])


def env_example() -> str:
    """The SDK block of ``.env.example``, between its marker comments."""
    lines = [_BEGIN_ENV]
    for setting in SETTINGS:
        if setting.env is None:
            continue
        auto = f"; auto_instrument: {setting.auto_default}" if setting.auto_default else ""
        lines.append(f"# {setting.doc} ({setting.type}; default {setting.default or 'unset'}{auto})")
        lines.append(f"{setting.env}={setting.example}")
    lines.append("# a YAML file of settings")
    lines.append("OBSLAB_CONFIG=")
    lines.append(_END_ENV)
    return "\n".join(lines)


def write(readme: str | Path, env_file: str | Path) -> None:
    """Regenerate the settings table (``docs/settings.md``) and the SDK block of ``.env.example`` in place."""
    for path, fresh in ((Path(readme), readme_table()), (Path(env_file), env_example())):
        path.write_text(replace_generated(path.read_text(encoding="utf-8"), fresh), encoding="utf-8")


def generated_part(text: str, begin: str, end: str) -> str | None:
    """The part of ``text`` from the line ``begin`` to the line ``end``, both included."""
    start = text.find(begin)
    stop = text.find(end, start)
    return None if start < 0 or stop < 0 else text[start:stop + len(end)]


def replace_generated(text: str, fresh: str) -> str:
    """``text`` with its generated part (found by ``fresh``'s markers) replaced by ``fresh``."""
    begin, end = fresh.splitlines()[0], fresh.splitlines()[-1]
    old = generated_part(text, begin, end)
    if old is None:
        raise ValueError(f"no generated part marked {begin!r}")
    return text.replace(old, fresh)
