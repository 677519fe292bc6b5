"""The FilAgent telemetry.yaml shape: service, exporters, sampling strategies, propagation, privacy."""

import textwrap

import pytest

from obslab.config import load_settings


def settings_from(tmp_path, text: str, **arguments):
    path = tmp_path / "telemetry.yaml"
    path.write_text(textwrap.dedent(text))
    return load_settings({"config_file": str(path), **arguments}, environ={})


def test_filagent_shaped_file_sets_every_section(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = settings_from(tmp_path, """
        telemetry:
          service: {name: filagent, version: 2.0.0, namespace: agents, environment: staging}
          exporters:
            otlp_http: {enabled: true, endpoint: "http://collector:4318"}
            console: {enabled: true}
          sampling: {strategy: trace_id_ratio, ratio: 0.25}
          propagation: {propagators: [tracecontext, baggage]}
          privacy: {enabled: true, sensitive_keys: [customer_note]}
          instrument: [fastapi]
    """)
    assert (s.service_name, s.service_version, s.environment) == ("filagent", "2.0.0", "staging")
    assert s.resource_attributes == {"service.namespace": "agents"}
    assert (s.otlp_protocol, s.otlp_endpoint) == ("http/protobuf", "http://collector:4318")
    assert s.enable_console_export and not s.console_only
    assert s.sampling_ratio == 0.25 and s.propagators == ("tracecontext", "baggage")
    assert s.privacy and s.privacy_keys == ("customer_note",) and s.instrument == ("fastapi",)


@pytest.mark.parametrize("strategy, ratio", [("always_on", 1.0), ("always_off", 0.0)])
def test_fixed_sampling_strategies(tmp_path, monkeypatch, strategy, ratio):
    monkeypatch.chdir(tmp_path)
    assert settings_from(tmp_path, f"sampling: {{strategy: {strategy}}}").sampling_ratio == ratio


def test_console_as_only_exporter_means_console_only_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = settings_from(tmp_path, "exporters: {console: {enabled: true}, otlp: {enabled: false}}")
    assert s.console_only and s.enable_console_export


def test_jaeger_exporter_is_an_otlp_alias_with_an_explanation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="Jaeger reads OTLP"):
        s = settings_from(tmp_path, "exporters: {jaeger: {endpoint: 'jaeger:4317'}}")
    assert (s.otlp_protocol, s.otlp_endpoint) == ("grpc", "http://jaeger:4317")


def test_arguments_override_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = settings_from(tmp_path, "sampling: {strategy: always_off}", sampling_ratio=0.5)
    assert s.sampling_ratio == 0.5 and s.sources["sampling_ratio"] == "argument"


@pytest.mark.parametrize("text, message", [
    ("sampling: {strategy: sometimes}", "sampling.strategy='sometimes'.*unknown sampling strategy"),
    ("sampling: {strategy: trace_id_ratio}", "needs sampling.ratio"),
    ("sampling: {strategy: trace_id_ratio, ratio: 3}", "sampling_ratio=3 .*sampling.ratio.*between 0 and 1"),
    ("exporters: {zipkin: {endpoint: x}}", "exporters.zipkin.*unknown exporter"),
    ("exporters: {otlp: {}, otlp_http: {}}", "enable one OTLP exporter"),
    ("exporters: {otlp: {endpoint: 'collector'}}", "otlp_endpoint='collector'.*exporters.otlp.endpoint"),
    ("privacy: {enabled: maybe}", "privacy='maybe'.*privacy.enabled.*true or false"),
    ("service: [a, b]", "service=.*expected a mapping"),
    ("servce: {name: x}", "unknown setting.*servce"),
    ("sampling: {strategy: [always_on", "not valid YAML"),
])
def test_bad_yaml_names_the_key_and_value(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        settings_from(tmp_path, text)


@pytest.mark.parametrize("env, message", [
    ({"OBSLAB_PROMETHEUS_PORT": "-1"}, "prometheus_port='-1'.*OBSLAB_PROMETHEUS_PORT.*between 1 and 65535"),
    ({"OBSLAB_PROMETHEUS_PORT": "70000"}, "prometheus_port='70000'"),
    ({"OBSLAB_INSTRUMENT": "fast api"}, "instrument='fast api'"),
])
def test_bad_environment_values_name_the_variable(tmp_path, monkeypatch, env, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        load_settings({}, environ=env)


def test_http_protocol_defaults_to_the_http_port(tmp_path, monkeypatch):
    """The exporter's own default, read by the SDK's OTLP/HTTP exporter from OTEL_EXPORTER_OTLP_PROTOCOL."""
    from obslab._export import build_exporters

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    (made,) = build_exporters(load_settings({}, environ={}), "traces")
    assert made._endpoint == "http://localhost:4318/v1/traces"
