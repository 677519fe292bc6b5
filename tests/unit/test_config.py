import pytest

from obslab.config import load_settings


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def test_defaults(monkeypatch):
    s = load_settings({}, environ={})
    assert (s.otlp_endpoint, s.sampling_ratio, s.metric_export_interval, s.shutdown_timeout) == (
        "localhost:4317", 1.0, 15.0, 2.0)


def test_argument_beats_environment_beats_dotenv_beats_yaml(tmp_path):
    (tmp_path / ".env").write_text("SERVICE_NAME=from-dotenv\nSERVICE_VERSION=9.9\nENVIRONMENT=staging\n")
    yaml_file = tmp_path / "t.yaml"
    yaml_file.write_text("service:\n  name: from-yaml\n  version: '1'\n  environment: test\n"
                         "exporters:\n  otlp:\n    endpoint: yaml-host:4317\n")
    env = {"SERVICE_NAME": "from-env", "SERVICE_VERSION": ""}
    s = load_settings({"service_name": None, "config_file": str(yaml_file)}, environ=env)
    assert s.service_name == "from-env"
    assert s.service_version == "9.9" and s.environment == "staging"
    assert s.otlp_endpoint == "yaml-host:4317"
    assert load_settings({"service_name": "from-arg"}, environ=env).service_name == "from-arg"


def test_dotenv_never_overrides_the_real_environment(tmp_path):
    (tmp_path / ".env").write_text("OTLP_ENDPOINT=dotenv:4317\n")
    assert load_settings({}, environ={"OTLP_ENDPOINT": "real:4317"}).otlp_endpoint == "real:4317"


def test_standard_otel_variables_are_read():
    env = {"OTEL_SERVICE_NAME": "std", "OTEL_RESOURCE_ATTRIBUTES": "team=core,service.version=2.0",
           "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    s = load_settings({}, environ=env)
    assert (s.service_name, s.service_version, s.sampling_ratio) == ("std", "2.0", 0.25)
    assert s.resource_attributes["team"] == "core" and s.otlp_insecure


@pytest.mark.parametrize("arguments, environ, fragment", [
    ({"sampling_ratio": 1.5}, {}, "sampling_ratio=1.5 (from argument): must be between 0 and 1"),
    ({}, {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
     "sampling_ratio='2' (from environment variable OTEL_TRACES_SAMPLER_ARG)"),
    ({"otlp_endpoint": "localhost:notaport"}, {}, "otlp_endpoint='localhost:notaport' (from argument): port 'notaport'"),
    ({}, {"OTLP_ENDPOINT": "localhost:99999"}, "from environment variable OTLP_ENDPOINT"),
    ({"environment": "prod-ish"}, {}, "environment='prod-ish' (from argument): unknown environment"),
    ({}, {"OTEL_SDK_DISABLED": "maybe"}, "disabled='maybe' (from environment variable OTEL_SDK_DISABLED)"),
    ({"log_level": "LOUD"}, {}, "log_level='LOUD' (from argument): unknown log level"),
    ({"metric_export_interval": -1}, {}, "metric_export_interval=-1 (from argument): must be greater than 0"),
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
