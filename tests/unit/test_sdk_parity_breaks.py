"""Issue 26, section 1: the breaks of "behaves as opentelemetry-sdk 1.45.1 wherever a standard OTEL_*
setting applies" found on main, one test each. The differential harness (tests/parity) proves the
promise over every variable; these name each break that was reproduced."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource

from lab import free_port
from obslab import init_telemetry
from otlp_receiver import OTLPReceiver
from parity.support import clean_environment, instrument_environment, plugins_registered, run_instrumented

VARYING = ("service.instance.id",)  # a new one in every process


def upstream_resource(**extra: str) -> dict:
    """The resource opentelemetry-sdk makes from this process's environment."""
    return {k: v for k, v in Resource.create(extra).attributes.items() if k not in VARYING}


def resource_of(handle) -> dict:
    return {k: v for k, v in handle._tracer_provider.resource.attributes.items() if k not in VARYING}


@pytest.fixture
def plugins():
    """The parity tests' sampler, id generator, propagator, exporter and resource detector, registered
    as entry points."""
    yield from plugins_registered()


# --- the resource ------------------------------------------------------------------------------

@pytest.mark.parametrize("blank", ["service.name=", "service.version=", "deployment.environment=",
                                   "service.name=,service.version=,deployment.environment="])
def test_a_blank_resource_attribute_is_read_as_upstream_reads_it(fresh, monkeypatch, blank):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"team=pay,{blank}")
    t = init_telemetry(console_only=True)  # raised ValueError on main
    assert resource_of(t) == upstream_resource()
    assert t._tracer_provider.resource.attributes["service.name"].startswith("unknown_service:")


def test_with_nothing_set_the_service_is_upstreams_unknown_service(fresh):
    t = init_telemetry(console_only=True)
    assert resource_of(t) == upstream_resource()  # main: unknown_service, 0.0.0, development


def test_no_version_or_environment_appears_that_nobody_set(fresh, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop")
    attributes = resource_of(init_telemetry(console_only=True))
    assert attributes["service.name"] == "shop"
    assert not {"service.version", "deployment.environment", "deployment.environment.name"} & attributes.keys()


def test_both_environment_attributes_keep_the_values_given(fresh, monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod,deployment.environment=legacy")
    attributes = resource_of(init_telemetry(console_only=True))
    assert (attributes["deployment.environment.name"], attributes["deployment.environment"]) == ("prod", "legacy")
    assert attributes == upstream_resource()


def test_obslabs_own_settings_still_name_the_service(fresh):
    attributes = resource_of(init_telemetry("shop", service_version="1.2.3", environment="staging",
                                            console_only=True))
    assert attributes == upstream_resource(**{"service.name": "shop", "service.version": "1.2.3",
                                              "deployment.environment.name": "staging",
                                              "deployment.environment": "staging"})


PRINT_RESOURCE = """
import json
from opentelemetry import trace
from opentelemetry.instrumentation.version import __version__
from opentelemetry.sdk.resources import Resource

provider = trace.get_tracer_provider()
print(json.dumps({"provider": type(provider).__module__,
                  "resource": dict(getattr(provider, "resource", Resource({})).attributes),
                  "upstream": dict(Resource.create({"telemetry.auto.version": __version__}).attributes)}))
"""


@pytest.mark.parametrize("resource_attributes", ["", "service.name=,service.version=,deployment.environment="])
def test_under_opentelemetry_instrument_the_resource_is_upstreams(tmp_path, resource_attributes):
    """telemetry.auto.version is there, and blank attributes leave telemetry on (main: no telemetry)."""
    env = instrument_environment("obslab", OTEL_RESOURCE_ATTRIBUTES=resource_attributes,
                                 OBSLAB_CONSOLE_ONLY="true")
    out = run_instrumented(PRINT_RESOURCE, env, tmp_path)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["provider"] == "opentelemetry.sdk.trace", out.stderr
    drop = lambda attributes: {k: v for k, v in attributes.items() if k not in VARYING}  # noqa: E731
    assert drop(seen["resource"]) == drop(seen["upstream"])
    assert "telemetry.auto.version" in seen["resource"]


# --- samplers, id generators and propagators named by entry point ----------------------------------

def test_an_entry_point_sampler_is_the_sampler_used(fresh, monkeypatch, plugins):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parity_sampler")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "some-arg")
    t = init_telemetry(console_only=True)
    assert t._tracer_provider.sampler.get_description() == "ParitySampler{some-arg}"  # main: ParentBased{AlwaysOn}
    with t.tracer.start_as_current_span("keep me") as kept, t.tracer.start_as_current_span("drop me") as dropped:
        assert kept.is_recording() and not dropped.is_recording()


def test_an_entry_point_id_generator_makes_the_ids(fresh, monkeypatch, plugins):
    from parity_plugins import TRACE_ID_BASE, ParityIdGenerator

    monkeypatch.setenv("OTEL_PYTHON_ID_GENERATOR", "parity_ids")
    t = init_telemetry(console_only=True)
    assert isinstance(t._tracer_provider.id_generator, ParityIdGenerator)  # main: RandomIdGenerator
    with t.span("x") as span:
        assert span.get_span_context().trace_id > TRACE_ID_BASE


def test_an_unknown_id_generator_warns_and_keeps_the_random_one(fresh, monkeypatch, caplog):
    """Upstream raises at start here; obslab warns and keeps the default (docs/sdk.md, differences)."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    monkeypatch.setenv("OTEL_PYTHON_ID_GENERATOR", "no_such_generator")
    t = init_telemetry(console_only=True)
    assert type(t._tracer_provider.id_generator) is RandomIdGenerator
    assert "no_such_generator" in caplog.text


def test_propagators_given_only_in_the_env_file_are_used(fresh, tmp_path):
    (tmp_path / ".env").write_text("OTEL_PROPAGATORS=baggage\n")
    previous = propagate.get_global_textmap()
    t = init_telemetry(console_only=True)
    carrier: dict[str, str] = {}
    with t.span("outgoing"):
        propagate.inject(carrier)
    assert "traceparent" not in carrier  # main: tracecontext,baggage, the default
    t.shutdown()
    assert propagate.get_global_textmap() is previous


# --- exporters and limits ------------------------------------------------------------------------

def test_an_exporter_timeout_that_is_not_a_number_keeps_every_exporter(fresh, monkeypatch, caplog):
    """Upstream raises at start; obslab warns and keeps the exporters with their default timeout."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "abc")
    t = init_telemetry(otlp_endpoint="127.0.0.1:1")
    exporters = {buffer_or_exporter_signal(e): e for e in t._network_exporters}
    assert exporters.keys() == {"traces", "metrics", "logs"}  # main: none at all
    assert {unwrap(e)._timeout for e in exporters.values()} == {10.0}
    assert "OTEL_EXPORTER_OTLP_TIMEOUT" in caplog.text


def log_limits(handle):
    return handle._logger_provider._log_record_limits


def buffer_or_exporter_signal(exporter) -> str:
    return getattr(exporter, "signal", "metrics")  # outage buffers know their signal; metrics have none


def unwrap(exporter):
    return getattr(exporter, "exporter", exporter)


@pytest.mark.parametrize("variable", ["OTEL_ATTRIBUTE_COUNT_LIMIT", "OTEL_SPAN_EVENT_COUNT_LIMIT",
                                      "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT"])
def test_a_negative_limit_warns_and_keeps_the_default(fresh, monkeypatch, caplog, variable):
    """Upstream raises at start; obslab warns and keeps the default limit."""
    monkeypatch.setenv(variable, "-1")
    t = init_telemetry(console_only=True)  # main: ValueError into the application
    limits = t._tracer_provider._span_limits
    assert (limits.max_attributes, limits.max_events, limits.max_span_attributes) == (128, 128, 128)
    assert log_limits(t).max_attributes == 128
    assert variable in caplog.text


# --- logging under opentelemetry-instrument ----------------------------------------------------------

LOGS = """
import logging
logging.getLogger("shop").warning("paid")
"""


@pytest.fixture
def receiver():
    receiver = OTLPReceiver(free_port()).start()
    yield receiver
    receiver.stop()


def instrumented_log_records(tmp_path, receiver, **variables: str) -> list[dict]:
    env = instrument_environment("obslab", OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
                                 OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", **variables)
    out = run_instrumented(LOGS, env, tmp_path)
    assert out.returncode == 0, out.stderr
    time.sleep(0.2)  # the application flushed at exit: the receiver has had it
    return [r for r in receiver.log_records if r["body"] == "paid"]


def test_logs_are_exported_under_opentelemetry_instrument(tmp_path, receiver):
    (record,) = instrumented_log_records(tmp_path, receiver)
    assert not any(key.startswith("code.") for key in record["attributes"])  # off unless asked for


@pytest.mark.parametrize("variables", [{"OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION": "false"},
                                       {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "logging"}])
def test_logging_instrumentation_turned_off_exports_no_log_record(tmp_path, receiver, variables):
    assert instrumented_log_records(tmp_path, receiver, **variables) == []  # main: exported all the same


def test_log_code_attributes_asked_for_are_exported(tmp_path, receiver):
    (record,) = instrumented_log_records(tmp_path, receiver, OTEL_PYTHON_LOG_CODE_ATTRIBUTES="true")
    assert record["attributes"]["code.file.path"].endswith("app.py")
    assert record["attributes"]["code.line.number"] == 3


def test_a_warning_logged_during_set_up_does_not_stop_it(fresh, monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "abc")
    monkeypatch.setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "-5")
    t = init_telemetry(console_only=True)
    with t.span("still traced") as span:
        assert span.is_recording() and trace.get_current_span() is span


# --- found by the parity harness ---------------------------------------------------------------------

def test_a_declarative_configuration_file_is_refused_with_one_warning(fresh, monkeypatch, caplog, tmp_path):
    """OTEL_CONFIG_FILE: upstream hands the file to opentelemetry-configuration (and raises at start
    without it); obslab warns once and builds its pipeline from the variables."""
    (tmp_path / "otel.yaml").write_text('file_format: "1.0"\n')
    monkeypatch.setenv("OTEL_CONFIG_FILE", str(tmp_path / "otel.yaml"))
    t = init_telemetry(otlp_endpoint="127.0.0.1:1")
    assert [r.getMessage() for r in caplog.records].count(next(
        r.getMessage() for r in caplog.records if "OTEL_CONFIG_FILE" in r.getMessage())) == 1
    assert {buffer_or_exporter_signal(e) for e in t._network_exporters} == {"traces", "metrics", "logs"}


GLOBALS_ARE_OBSLABS = """
from opentelemetry import metrics, trace
import obslab
t = obslab.init_telemetry(console_only=True)
print(trace.get_tracer_provider() is t._tracer_provider, metrics.get_meter_provider() is t._meter_provider)
"""


@pytest.mark.parametrize("variable, value", [("OTEL_PYTHON_TRACER_PROVIDER", "no_such_provider"),
                                             ("OTEL_PYTHON_METER_PROVIDER", "no_such_provider"),
                                             ("OTEL_PYTHON_METER_PROVIDER", "sdk_meter_provider")])
def test_a_provider_named_in_the_environment_never_replaces_obslabs(tmp_path, variable, value):
    """main: StopIteration into the application for an unknown name; a known one was loaded by the
    first component that looked the global provider up, and obslab's own was refused. (A fresh
    process: the global providers can be set once.)"""
    out = subprocess.run([sys.executable, "-c", GLOBALS_ARE_OBSLABS], capture_output=True, text=True, cwd=tmp_path,
                         env=clean_environment(**{variable: value}), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"], out.stderr
