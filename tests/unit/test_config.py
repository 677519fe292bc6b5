import uuid
import warnings

import pytest

import os

from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

from obslab._export import address, build_exporters
from obslab.config import load_settings
from obslab.metrics import build_meter_provider, export_interval_millis
from obslab.resource import build_resource
from obslab.traces import build_tracer_provider


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("OTEL_", "OBSLAB_"))] + ["OTLP_ENDPOINT"]:
        monkeypatch.delenv(name, raising=False)


def test_defaults(monkeypatch):
    s = load_settings({}, environ={})
    assert (s.otlp_endpoint, s.sampling_ratio, s.metric_export_interval, s.shutdown_timeout) == (None, None, 15.0, 2.0)
    (made,) = build_exporters(s, "traces")  # the exporter's own defaults
    assert (made._endpoint, made._insecure, made._timeout) == ("localhost:4317", True, 10.0)


def test_argument_beats_environment_beats_dotenv_beats_yaml(tmp_path):
    (tmp_path / ".env").write_text("OBSLAB_SERVICE_VERSION=9.9\nOBSLAB_ENVIRONMENT=staging\n")
    yaml_file = tmp_path / "t.yaml"
    yaml_file.write_text("service:\n  name: from-yaml\n  version: '1'\n  environment: test\n"
                         "exporters:\n  otlp:\n    endpoint: yaml-host:4317\n")
    env = {"OBSLAB_SERVICE_VERSION": ""}
    s = load_settings({"service_name": None, "config_file": str(yaml_file)}, environ=env)
    assert s.service_name == "from-yaml"
    assert s.service_version == "9.9" and s.environment == "staging"
    assert s.otlp_endpoint == "http://yaml-host:4317"  # host:port, obslab's shorthand for plain text
    assert load_settings({"service_name": "from-arg"}, environ=env).service_name == "from-arg"


def test_dotenv_never_overrides_the_real_environment(tmp_path):
    (tmp_path / ".env").write_text("OTLP_ENDPOINT=dotenv:4317\n")
    assert load_settings({}, environ={"OTLP_ENDPOINT": "real:4317"}).otlp_endpoint == "http://real:4317"


def test_standard_otel_variables_are_read_by_the_sdk(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "std")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=core,service.version=2.0")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    s = load_settings({}, environ=os.environ)
    assert (s.service_name, s.service_version, s.sampling_ratio) == ("std", "2.0", None)
    assert build_resource(s).attributes["team"] == "core"
    provider = build_tracer_provider(s, build_resource(s))[0]
    assert provider.sampler.get_description().startswith("ParentBased{root:TraceIdRatioBased{0.25}")
    (made,) = build_exporters(s, "traces")
    assert (made._endpoint, made._insecure) == ("collector:4317", True)


@pytest.mark.parametrize("arguments, environ, fragment", [
    ({"sampling_ratio": 1.5}, {}, "sampling_ratio=1.5 (from argument): must be between 0 and 1"),
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
    (tmp_path / ".env").write_text("OBSLAB_CONSOLE_EXPORT=perhaps\n")
    with pytest.raises(ValueError, match=r"enable_console_export='perhaps' \(from .env file .*OBSLAB_CONSOLE_EXPORT\)"):
        load_settings({}, environ={})


def test_a_renamed_variable_still_works_with_a_warning():
    with pytest.warns(DeprecationWarning, match="OTEL_CONSOLE_EXPORT .* is renamed OBSLAB_CONSOLE_EXPORT"):
        assert load_settings({}, environ={"OTEL_CONSOLE_EXPORT": "true"}).enable_console_export is True


def test_production_forces_json_logs_unless_told_otherwise():
    assert load_settings({"environment": "production"}, environ={}).json_logs is True
    assert load_settings({"environment": "production", "json_logs": False}, environ={}).json_logs is False


def test_the_standard_metric_interval_wins_over_obslabs_variable_and_the_argument_over_both(monkeypatch):
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "5000")
    from_env = load_settings({}, environ={"OBSLAB_METRIC_EXPORT_INTERVAL": "30"})
    assert export_interval_millis(from_env) is None  # the SDK reads OTEL_METRIC_EXPORT_INTERVAL
    provider, _ = build_meter_provider(from_env, build_resource(from_env), exporter=ConsoleMetricExporter())
    try:
        (reader,) = provider._metric_readers
        assert reader._export_interval_millis == 5000
    finally:
        provider.shutdown()
    assert export_interval_millis(load_settings({"metric_export_interval": 2}, environ={})) == 2000
    monkeypatch.delenv("OTEL_METRIC_EXPORT_INTERVAL")
    assert export_interval_millis(load_settings({}, environ={"OBSLAB_METRIC_EXPORT_INTERVAL": "30"})) == 30_000


# --- issue 19: OTLP settings are the exporters' own reading of OTEL_EXPORTER_OTLP_* ----------


def exporter(monkeypatch, signal="traces", arguments=None, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (made,) = build_exporters(load_settings(arguments or {}, environ=os.environ), signal)
    return made


def test_a_tls_endpoint_with_a_path_gets_each_signals_url_over_http(monkeypatch):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com/otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    assert [exporter(monkeypatch, signal, **env)._endpoint for signal in ("traces", "metrics", "logs")] == [
        "https://otlp.example.com/otlp/v1/traces", "https://otlp.example.com/otlp/v1/metrics",
        "https://otlp.example.com/otlp/v1/logs"]
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL")
    grpc = exporter(monkeypatch)
    assert (grpc._insecure, address(grpc)) == (False, ("otlp.example.com", 443))


def test_signal_specific_endpoints_are_used_as_given(monkeypatch):
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
           "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example.com/custom/path",
           "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:9090/api/v1/otlp/v1/metrics"}
    assert exporter(monkeypatch, "traces", **env)._endpoint == "https://traces.example.com/custom/path"
    assert exporter(monkeypatch, "metrics")._endpoint == "http://metrics:9090/api/v1/otlp/v1/metrics"
    assert exporter(monkeypatch, "logs")._endpoint == "http://collector:4318/v1/logs"


@pytest.mark.parametrize("env, insecure", [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, False),  # no scheme: TLS unless told otherwise
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
    ({"OTLP_ENDPOINT": "127.0.0.1:4317"}, True),  # the lab's variable: host:port is plain text
])
def test_insecure_follows_the_specification_and_the_per_signal_variable(monkeypatch, env, insecure):
    assert exporter(monkeypatch, **env)._insecure is insecure


def test_the_per_signal_timeout_reaches_the_exporter(monkeypatch):
    made = exporter(monkeypatch, OTEL_EXPORTER_OTLP_TIMEOUT="7", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="2.5",
                    OTLP_ENDPOINT="127.0.0.1:4317")
    assert (made._endpoint, made._insecure, made._timeout) == ("127.0.0.1:4317", True, 2.5)


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_an_exporter_set_to_none_is_not_made(monkeypatch, signal):
    monkeypatch.setenv(f"OTEL_{signal.upper()}_EXPORTER", "none")
    assert build_exporters(load_settings({}, environ=os.environ), signal) == []


@pytest.mark.parametrize("env", [
    {"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
    {"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd-please"},
    {"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
    {"OTEL_TRACES_EXPORTER": "no-such-exporter"},
])
def test_a_bad_otlp_variable_is_warned_about_never_raised(monkeypatch, caplog, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    build_exporters(load_settings({}, environ=os.environ), "traces")
    assert any(record.levelname == "WARNING" for record in caplog.records)


def test_obslab_host_port_shorthand_means_plain_http_over_otlp_http_too(monkeypatch):
    made = exporter(monkeypatch, arguments={"otlp_protocol": "http/protobuf", "otlp_endpoint": "collector:4318"})
    assert made._endpoint == "http://collector:4318/v1/traces"


# --- issue 10: the application's own variables and .env files are not obslab's ------------


def test_an_applications_generic_variables_are_not_read():
    s = load_settings({}, environ={"ENVIRONMENT": "prod", "SERVICE_NAME": "web", "LOG_LEVEL": "verbose",
                                   "SERVICE_VERSION": "x"})
    assert (s.environment, s.service_name, s.log_level, s.service_version) == (None, None, "INFO", None)


@pytest.mark.parametrize("arguments, environ", [
    ({"environment": "prod"}, {}),
    ({}, {"OBSLAB_ENVIRONMENT": "prod"}),
    ({}, {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod"}),
])
def test_any_environment_name_is_accepted_as_deployment_environment_name(arguments, environ, monkeypatch):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    s = load_settings(arguments, environ=dict(os.environ))
    assert build_resource(s).attributes["deployment.environment.name"] == "prod"


def test_a_dotenv_file_of_a_parent_directory_is_not_read(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("OBSLAB_LOG_LEVEL=LOUD\nOBSLAB_SERVICE_VERSION=parent\n")
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    assert load_settings({}, environ={}).service_version is None


def test_a_dotenv_file_is_read_where_the_user_points(tmp_path):
    path = tmp_path / "conf" / "telemetry.env"
    path.parent.mkdir()
    path.write_text("OBSLAB_SERVICE_VERSION=pointed\n")
    assert load_settings({"env_file": str(path)}, environ={}).service_version == "pointed"
    assert load_settings({}, environ={"OBSLAB_ENV_FILE": str(path)}).service_version == "pointed"


def test_otel_variables_of_a_dotenv_file_reach_the_sdk_but_never_override_the_real_ones(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("OTEL_SERVICE_NAME=from-dotenv\nOTEL_EXPORTER_OTLP_TRACES_TIMEOUT=3\n")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "4")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "unset below")  # so that what the .env adds goes away after the test
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    s = load_settings({})
    assert s.service_name == "from-dotenv" and os.environ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"] == "4"
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
