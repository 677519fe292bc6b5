import uuid
import warnings

import pytest

from obslab._export import otlp_exporter, target
from obslab.config import load_settings
from obslab.resource import build_resource


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def test_defaults(monkeypatch):
    s = load_settings({}, environ={})
    assert (s.otlp_endpoint, s.sampling_ratio, s.metric_export_interval, s.shutdown_timeout, s.otlp_timeout) == (
        "http://localhost:4317", 1.0, 15.0, 2.0, 10.0)


def test_argument_beats_environment_beats_dotenv_beats_yaml(tmp_path):
    (tmp_path / ".env").write_text("OTEL_SERVICE_NAME=from-dotenv\nOBSLAB_SERVICE_VERSION=9.9\n"
                                   "OBSLAB_ENVIRONMENT=staging\n")
    yaml_file = tmp_path / "t.yaml"
    yaml_file.write_text("service:\n  name: from-yaml\n  version: '1'\n  environment: test\n"
                         "exporters:\n  otlp:\n    endpoint: yaml-host:4317\n")
    env = {"OTEL_SERVICE_NAME": "from-env", "OBSLAB_SERVICE_VERSION": ""}
    s = load_settings({"service_name": None, "config_file": str(yaml_file)}, environ=env)
    assert s.service_name == "from-env"
    assert s.service_version == "9.9" and s.environment == "staging"
    assert s.otlp_endpoint == "http://yaml-host:4317"  # host:port, obslab's shorthand for plain text
    assert load_settings({"service_name": "from-arg"}, environ=env).service_name == "from-arg"


def test_dotenv_never_overrides_the_real_environment(tmp_path):
    (tmp_path / ".env").write_text("OTLP_ENDPOINT=dotenv:4317\n")
    assert load_settings({}, environ={"OTLP_ENDPOINT": "real:4317"}).otlp_endpoint == "http://real:4317"


def test_standard_otel_variables_are_read():
    env = {"OTEL_SERVICE_NAME": "std", "OTEL_RESOURCE_ATTRIBUTES": "team=core,service.version=2.0",
           "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    s = load_settings({}, environ=env)
    assert (s.service_name, s.service_version, s.sampling_ratio) == ("std", "2.0", 0.25)
    assert s.resource_attributes["team"] == "core" and target(s, "traces").insecure


@pytest.mark.parametrize("arguments, environ, fragment", [
    ({"sampling_ratio": 1.5}, {}, "sampling_ratio=1.5 (from argument): must be between 0 and 1"),
    ({}, {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
     "sampling_ratio='2' (from environment variable OTEL_TRACES_SAMPLER_ARG)"),
    ({"otlp_endpoint": "localhost:notaport"}, {},
     "otlp_endpoint='localhost:notaport' (from argument): port 'notaport'"),
    ({}, {"OTLP_ENDPOINT": "localhost:99999"}, "from environment variable OTLP_ENDPOINT"),
    ({}, {"OBSLAB_LOG_LEVEL": "LOUD"}, "log_level='LOUD' (from environment variable OBSLAB_LOG_LEVEL)"),
    ({"log_level": "LOUD"}, {}, "log_level='LOUD' (from argument): unknown log level"),
    ({"metric_export_interval": -1}, {}, "metric_export_interval=-1 (from argument): must be a finite number"),
])
def test_bad_value_names_setting_value_and_source(arguments, environ, fragment):
    with pytest.raises(ValueError) as err:
        load_settings(arguments, environ=environ)
    assert fragment in str(err.value)


def test_unreadable_or_malformed_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="config_file='.*missing.yaml': cannot read it"):
        load_settings({"config_file": str(tmp_path / "missing.yaml")}, environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("service: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_settings({"config_file": str(bad)}, environ={})


def test_bad_dotenv_value_names_the_file(tmp_path):
    (tmp_path / ".env").write_text("OTEL_CONSOLE_EXPORT=perhaps\n")
    with pytest.raises(ValueError, match=r"enable_console_export='perhaps' \(from .env file .*OTEL_CONSOLE_EXPORT\)"):
        load_settings({}, environ={})


def test_production_forces_json_logs_unless_told_otherwise():
    assert load_settings({"environment": "production"}, environ={}).json_logs is True
    assert load_settings({"environment": "production", "json_logs": False}, environ={}).json_logs is False


def test_otel_metric_export_interval_is_milliseconds():
    assert load_settings({}, environ={"OTEL_METRIC_EXPORT_INTERVAL": "5000"}).metric_export_interval == 5.0


# --- issue 10: OTLP settings as the OpenTelemetry specification defines them --------------


def test_standard_tls_endpoint_with_a_path_is_accepted_and_each_signal_gets_its_url():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com/otlp",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    s = load_settings({}, environ=env)
    assert [target(s, signal).endpoint for signal in ("traces", "metrics", "logs")] == [
        "https://otlp.example.com/otlp/v1/traces", "https://otlp.example.com/otlp/v1/metrics",
        "https://otlp.example.com/otlp/v1/logs"]
    grpc = target(load_settings({}, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com/otlp"}), "traces")
    assert (grpc.insecure, grpc.address) == (False, ("otlp.example.com", 443))


def test_signal_specific_endpoints_are_used_as_given():
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
           "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example.com/custom/path",
           "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:9090/api/v1/otlp/v1/metrics"}
    s = load_settings({}, environ=env)
    assert target(s, "traces").endpoint == "https://traces.example.com/custom/path"
    assert target(s, "metrics").endpoint == "http://metrics:9090/api/v1/otlp/v1/metrics"
    assert target(s, "logs").endpoint == "http://collector:4318/v1/logs"


@pytest.mark.parametrize("env, insecure", [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, False),  # no scheme: TLS unless told otherwise
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
    ({"OTLP_ENDPOINT": "127.0.0.1:4317"}, True),  # the lab's variable: host:port is plain text
])
def test_insecure_follows_the_specification(env, insecure):
    assert target(load_settings({}, environ=env), "traces").insecure is insecure


def test_otlp_timeout_is_read_in_milliseconds_and_reaches_the_exporters(monkeypatch):
    import opentelemetry.exporter.otlp.proto.grpc.trace_exporter as grpc_traces
    given = {}
    monkeypatch.setattr(grpc_traces, "OTLPSpanExporter", lambda **kwargs: given.update(kwargs))
    s = load_settings({}, environ={"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTLP_ENDPOINT": "127.0.0.1:4317"})
    otlp_exporter(s, "traces")
    assert {k: given[k] for k in ("endpoint", "insecure", "timeout")} == {
        "endpoint": "http://127.0.0.1:4317", "insecure": True, "timeout": 2.5}


@pytest.mark.parametrize("env, fragment", [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://collector:21"}, "the scheme must be http or https"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces:99999/v1/traces"}, "otlp_traces_endpoint="),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
     "otlp_timeout='soon' (from environment variable OTEL_EXPORTER_OTLP_TIMEOUT)"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
     "OTLP over HTTP needs a URL"),
])
def test_bad_otlp_settings_name_the_variable_and_value(env, fragment):
    with pytest.raises(ValueError) as err:
        load_settings({}, environ=env)
    assert fragment in str(err.value)


# --- issue 10: the application's own variables and .env files are not obslab's ------------


def test_an_applications_generic_variables_are_not_read():
    s = load_settings({}, environ={"ENVIRONMENT": "prod", "SERVICE_NAME": "web", "LOG_LEVEL": "verbose",
                                   "SERVICE_VERSION": "x"})
    assert (s.environment, s.service_name, s.log_level, s.service_version) == (
        "development", "unknown_service", "INFO", "0.0.0")


@pytest.mark.parametrize("arguments, environ", [
    ({"environment": "prod"}, {}),
    ({}, {"OBSLAB_ENVIRONMENT": "prod"}),
    ({}, {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod"}),
])
def test_any_environment_name_is_accepted_as_deployment_environment_name(arguments, environ):
    s = load_settings(arguments, environ=environ)
    assert build_resource(s).attributes["deployment.environment.name"] == "prod"


def test_a_dotenv_file_of_a_parent_directory_is_not_read(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("OBSLAB_LOG_LEVEL=LOUD\nOTEL_SERVICE_NAME=parent\n")
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    assert load_settings({}, environ={}).service_name == "unknown_service"


def test_a_dotenv_file_is_read_where_the_user_points(tmp_path):
    path = tmp_path / "conf" / "telemetry.env"
    path.parent.mkdir()
    path.write_text("OTEL_SERVICE_NAME=pointed\n")
    assert load_settings({"env_file": str(path)}, environ={}).service_name == "pointed"
    assert load_settings({}, environ={"OBSLAB_ENV_FILE": str(path)}).service_name == "pointed"
    with pytest.raises(ValueError, match="env_file='.*missing.env': no such file"):
        load_settings({"env_file": str(tmp_path / "missing.env")}, environ={})


# --- issue 10: OTEL_* booleans as the specification reads them ------------------------------


@pytest.mark.parametrize("value, disabled, warns", [
    ("true", True, False), ("TRUE", True, False), ("false", False, False),
    ("1", False, True), ("yes", False, True), ("maybe", False, True),
])
def test_sdk_disabled_only_by_the_word_true(value, disabled, warns):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = load_settings({}, environ={"OTEL_SDK_DISABLED": value})
    assert s.disabled is disabled
    assert any("OTEL_SDK_DISABLED" in str(w.message) for w in caught) is warns


def test_service_instance_id_is_the_sdks_uuid():
    """obslab no longer makes its own host-pid-random id: the SDK's detector gives a UUID v4,
    renewed in forked children."""
    instance_id = build_resource(load_settings({}, environ={})).attributes["service.instance.id"]
    assert uuid.UUID(instance_id).version == 4
