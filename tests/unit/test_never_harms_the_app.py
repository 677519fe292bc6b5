"""The rule of issue 10, as properties: nothing obslab puts on the application's path (logging
handlers and formatters, span helpers, patched functions, configuration) lets an exception
escape that the same call without obslab would not raise, or changes what the call returns.

Hypothesis drives each path with generated input; every property compares obslab with the same
call made without it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from obslab import config, telemetry as telemetry_module
from obslab.config import Settings, load_settings
from obslab.data import DataInstrumentor
from obslab.structlog_bridge import OTLPLogProcessor, add_trace_context
from obslab.telemetry import Telemetry
from obslab.web import TraceIdResponsePropagator

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
PROPERTY = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Values an application may hand to telemetry: plain and odd ones.
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
                    st.binary(max_size=8))
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=8), scalars, max_size=3),
                   st.builds(object))
keys = st.one_of(st.text(max_size=20), st.sampled_from(["password", "user.id", "data", "message", "msg", "args",
                                                        "name", "asctime", "trace_id", "token", "levelname"]))
formats = st.one_of(st.text(max_size=40), st.sampled_from(["value %d", "%s and %s", "%(key)s", "%", "%z", "{}"]))


@pytest.fixture
def private_handle(monkeypatch):
    """A handle with privacy on, exporting in memory; its console writes to a string."""
    settings_ = Settings(service_name="property", privacy=True, privacy_secret="k" * 16 + "0123456789abcdef")
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    handle = Telemetry(settings_, span_exporter=spans, log_exporter=logs, metric_readers=(InMemoryMetricReader(),))
    handle.exported_spans, handle.exported_logs = spans, logs
    handle._install()
    monkeypatch.setattr(telemetry_module, "_handle", handle)
    monkeypatch.setattr(logging, "raiseExceptions", False)  # both sides: a bad record is reported, not raised
    for handler in handle._log_handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(io.StringIO())
    yield handle
    handle.shutdown(1)


def outcome(call) -> type[BaseException] | None:
    """The exception type ``call()`` raises, or None."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the property compares any exception
        return type(error)
    return None


def isolated_logger(name: str, handlers: list[logging.Handler]) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate, logger.handlers, logger.level = False, list(handlers), logging.DEBUG
    return logger


@PROPERTY
@given(level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]), message=formats,
       args=st.lists(values, max_size=3), extra=st.dictionaries(keys, values, max_size=4),
       exc_info=st.booleans())
def test_log_calls_raise_nothing_plain_logging_would_not(private_handle, level, message, args, extra, exc_info):
    plain = isolated_logger("property.plain", [logging.StreamHandler(io.StringIO())])
    observed = isolated_logger("property.observed", private_handle._log_handlers)
    for logger in (plain, observed):
        logger.handlers[0].setLevel(logging.DEBUG)

    def log(logger: logging.Logger):
        return lambda: logger.log(level, message, *args, extra=extra, exc_info=exc_info)

    assert outcome(log(observed)) is outcome(log(plain))


@PROPERTY
@given(name=st.text(max_size=30), attributes=st.dictionaries(keys, values, max_size=5),
       event=st.dictionaries(keys, values, max_size=3))
def test_span_attributes_raise_nothing_the_plain_sdk_would_not(private_handle, name, attributes, event):
    plain = TracerProvider().get_tracer("plain")

    def spans(start):
        def run():
            with start(name, attributes=attributes) as span:
                span.set_attributes(attributes)
                span.add_event(name, event)
        return run

    assert outcome(spans(private_handle.tracer.start_as_current_span)) is outcome(
        spans(plain.start_as_current_span))
    assert private_handle.force_flush(5)  # the export thread masked and exported whatever it got


@PROPERTY
@given(model=values, provider=values, tokens=st.tuples(values, values), cost=values, duration=values,
       tool_attributes=st.dictionaries(st.text(max_size=10), values, max_size=3))
def test_agent_helpers_never_raise(private_handle, model, provider, tokens, cost, duration, tool_attributes):
    """Without obslab these calls go to the no-op handle, which raises nothing."""
    def helpers(handle):
        def run():
            with handle.trace_agent(model, model), handle.trace_agent_iteration(model), \
                    handle.trace_llm_call(model, provider):
                handle.record_llm_usage(model, provider, *tokens, cost_usd=cost)
                with handle.trace_tool_call(str(model), **tool_attributes):
                    pass
            handle.record_request(model, duration, ok=bool(cost))
            handle.record_error(model, provider)
        return run

    assert outcome(helpers(private_handle)) is outcome(helpers(telemetry_module._NOOP)) is None
    private_handle.force_flush(5)
    assert "agent.iteration" in {span.name for span in private_handle.exported_spans.get_finished_spans()}
    private_handle.exported_spans.clear()


genai_keys = st.sampled_from(["gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
                              "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.input.messages"])


@PROPERTY
@given(attributes=st.dictionaries(genai_keys, values, max_size=6))
def test_llm_call_spans_with_any_usage_attributes_end_without_raising(private_handle, attributes):
    """The LLM cost processor runs in span.end(), on the application's path."""
    plain = TracerProvider().get_tracer("plain")

    def chat(start):
        def run():
            with start("chat x", attributes={"gen_ai.operation.name": "chat"}) as span:
                for key, value in attributes.items():
                    span.set_attribute(key, value)
        return run

    assert outcome(chat(private_handle.tracer.start_as_current_span)) is outcome(chat(plain.start_as_current_span))
    private_handle.force_flush(5)
    assert [span.name for span in private_handle.exported_spans.get_finished_spans()] == ["chat x"]
    private_handle.exported_spans.clear()


@PROPERTY
@given(event=st.dictionaries(keys, values, max_size=5), method=st.text(max_size=10), in_span=st.booleans())
def test_structlog_processors_hand_every_event_on(private_handle, event, method, in_span):
    """Without obslab the processors are not in the chain: the event dict goes on as it was."""
    private_handle.exported_logs.clear()
    with private_handle.span("structlog") if in_span else contextlib.nullcontext() as span:
        for processor in (add_trace_context, OTLPLogProcessor()):
            given_event = dict(event)
            returned = processor(None, method, given_event)
            assert returned is given_event and {k: v for k, v in returned.items() if k in event} == event
    private_handle.force_flush(5)
    (record,) = [r.log_record for r in private_handle.exported_logs.get_finished_logs()]  # emitted, not swallowed
    assert record.body == private_handle._redactor.scrub(str(event.get("event", "")))
    if in_span:
        assert record.trace_id == span.get_span_context().trace_id


@PROPERTY
@given(carrier=st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.text(max_size=5)), st.lists(values),
                         st.builds(object), st.text(max_size=5)))
def test_trace_id_response_hook_never_raises(private_handle, carrier):
    with private_handle.span("request"):
        TraceIdResponsePropagator().inject(carrier)


variables = st.sampled_from(sorted(config._VARIABLES))


@PROPERTY
@given(environ=st.dictionaries(variables, st.text(max_size=40), max_size=5),
       arguments=st.dictionaries(st.sampled_from(sorted(config._PARSERS)), values, max_size=3))
def test_obslab_configuration_is_accepted_or_refused_with_a_value_error_naming_the_setting(environ, arguments,
                                                                                          tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_settings(arguments, environ=environ)
        except ValueError as error:
            named = [*config._PARSERS, *environ, "config_file", "env_file"]
            assert any(name in str(error) for name in named), error


STANDARD = ["OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME",
            "OTEL_SDK_DISABLED", "OTEL_PROPAGATORS", "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_TRACES_EXPORTER",
            "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_INSECURE",
            "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"]
env_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@PROPERTY
@given(environ=st.dictionaries(st.sampled_from(STANDARD), env_text, max_size=5))
def test_standard_variables_never_stop_the_application(environ, tmp_path, monkeypatch):
    """As in opentelemetry-sdk: a value it cannot use is warned about and replaced by the default."""
    from obslab._export import build_exporters
    from obslab.genai import content_capture_mode
    from obslab.resource import build_resource
    from obslab.traces import build_tracer_provider

    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as env, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, value in environ.items():
            env.setenv(name, value)
        settings_ = load_settings({"otlp_endpoint": "127.0.0.1:1"})
        provider, exporters = build_tracer_provider(settings_, build_resource(settings_))
        for signal in ("metrics", "logs"):
            exporters += build_exporters(settings_, signal)
        content_capture_mode()
        for exporter in exporters:
            exporter.shutdown()
        provider.shutdown()


def same(left, right) -> bool:
    """Equal values of the same type (NaN equal to NaN)."""
    if isinstance(left, pd.DataFrame):
        return left.equals(right) and left.dtypes.equals(right.dtypes)
    if isinstance(left, np.ndarray):
        return left.dtype == right.dtype and np.array_equal(left, right, equal_nan=True)
    if isinstance(left, float) and math.isnan(left):
        return isinstance(right, float) and math.isnan(right)
    return type(left) is type(right) and repr(left) == repr(right)


@pytest.fixture
def patched(private_handle):
    """pandas and NumPy patched by obslab, with their original functions to compare with."""
    originals = {"mean": np.mean, "median": np.median, "getitem": pd.DataFrame.__getitem__}
    instrumentor = DataInstrumentor(private_handle.get_tracer("data"), private_handle.get_meter("data"))
    instrumentor.instrument(("pandas", "numpy"))
    yield originals
    instrumentor.uninstrument()


numbers = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6)
numpy_inputs = st.one_of(numbers, st.lists(numbers, min_size=1, max_size=3), st.text(max_size=5), st.none(),
                         st.builds(object))


@PROPERTY
@given(function=st.sampled_from(["mean", "median"]), data=numpy_inputs, keyword=st.booleans(),
       options=st.dictionaries(st.sampled_from(["axis", "keepdims", "dtype"]), st.one_of(
           st.integers(-3, 3), st.booleans(), st.none(), st.sampled_from(["float32", "x"])), max_size=2))
def test_patched_numpy_returns_and_raises_what_numpy_does(patched, function, data, keyword, options):
    def call(fn):
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(a=data, **options) if keyword else fn(data, **options)
        return run

    expected_error, got_error = outcome(call(patched[function])), outcome(call(getattr(np, function)))
    assert got_error is expected_error
    if expected_error is None:
        assert same(call(getattr(np, function))(), call(patched[function])())


@PROPERTY
@given(values_=st.lists(st.floats(allow_nan=True), max_size=6), mask=st.lists(st.booleans(), max_size=7),
       as_array=st.booleans())
def test_patched_dataframe_filter_returns_and_raises_what_pandas_does(patched, values_, mask, as_array):
    frame = pd.DataFrame({"value": values_, "category": ["a", "b"] * (len(values_) // 2) + ["c"] * (len(values_) % 2)})
    key = np.array(mask, dtype=bool) if as_array else pd.Series(mask, dtype=bool)
    expected_error = outcome(lambda: patched["getitem"](frame, key))
    assert outcome(lambda: frame[key]) is expected_error
    if expected_error is None:
        assert same(frame[key], patched["getitem"](frame, key))
