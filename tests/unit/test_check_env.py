import os
import subprocess
import sys

import pytest

from lab import REPO, env_example

sys.path.insert(0, str(REPO / "tools"))
from check_env import GRAFANA_DEFAULT_SECRET_KEY, problems, warnings  # noqa: E402

KEY = "k" * 40


@pytest.fixture
def good():
    return {**env_example(), "GRAFANA_ADMIN_PASSWORD": "s3cret-enough", "GRAFANA_SECRET_KEY": KEY}


def test_example_env_with_a_password_has_no_problem(good):
    assert problems(good) == []


@pytest.mark.parametrize("name, value, fragment", [
    ("SAMPLING_PERCENTAGE", "150", "SAMPLING_PERCENTAGE='150': must be a number between 0 and 100"),
    ("SLOW_TRACE_MS", "1.5s", "SLOW_TRACE_MS='1.5s': must be a whole number of milliseconds"),
    ("SLOW_TRACE_MS", "0", "SLOW_TRACE_MS='0': must be a whole number of milliseconds, 1 or more"),
    ("SLOW_TRACE_MS", "-5", "SLOW_TRACE_MS='-5'"),
    ("GRAFANA_PORT", "http", "GRAFANA_PORT='http': must be a port number"),
    ("OTLP_GRPC_PORT", "70000", "OTLP_GRPC_PORT='70000'"),
    ("OTLP_GRPC_PORT", "\u00b2", "OTLP_GRPC_PORT='\u00b2': must be a port number"),  # a digit to str.isdigit, not to int()
    ("LOKI_PORT", "3000", "LOKI_PORT='3000': the same port is given to another service"),
    ("OBSLAB_BIND_ADDRESS", "everywhere", "OBSLAB_BIND_ADDRESS='everywhere'"),
    ("TEMPO_RETENTION", "one hour", "TEMPO_RETENTION='one hour'"),
    ("ALERTMANAGER_PORT", "9090", "ALERTMANAGER_PORT='9090': the same port is given to another service"),
    ("OBSLAB_SLO_AVAILABILITY", "100", "OBSLAB_SLO_AVAILABILITY='100': must be a percentage above 0"),
    ("OBSLAB_SLO_AVAILABILITY", "", "OBSLAB_SLO_AVAILABILITY=''"),
    ("OBSLAB_SLO_LATENCY_MS", "fast", "OBSLAB_SLO_LATENCY_MS='fast': must be a number of milliseconds"),
    ("OBSLAB_LLM_BUDGET_USD_PER_DAY", "-3", "OBSLAB_LLM_BUDGET_USD_PER_DAY='-3': must be an amount"),
    ("OBSLAB_ALERT_WEBHOOK_URL", "hooks.example.com", "OBSLAB_ALERT_WEBHOOK_URL='hooks.example.com': must be"),
    ("OBSLAB_ALERT_FOR", "soon", "OBSLAB_ALERT_FOR='soon': must be a duration"),
])
def test_bad_value_is_named_with_its_variable(good, name, value, fragment):
    good[name] = value
    assert any(fragment in p for p in problems(good)), problems(good)


def test_anonymous_grafana_refused_when_not_bound_to_loopback(good):
    good["OBSLAB_BIND_ADDRESS"] = "0.0.0.0"
    assert any("GRAFANA_ANONYMOUS_ENABLED=true" in p for p in problems(good))
    good["GRAFANA_ANONYMOUS_ENABLED"] = "false"
    assert problems(good) == []


def test_check_env_command_fails_before_anything_starts(tmp_path, good):
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {**good, "SAMPLING_PERCENTAGE": "150"}.items()))
    result = subprocess.run([sys.executable, str(REPO / "tools/check_env.py"), str(env_file)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "SAMPLING_PERCENTAGE='150'" in result.stderr


def test_a_bad_value_exported_in_the_shell_is_refused_as_compose_would_use_it(tmp_path, good):
    """docker compose takes a variable of the shell over the file's: the check reads the same value."""
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in good.items()))
    result = subprocess.run([sys.executable, str(REPO / "tools/check_env.py"), str(env_file)], capture_output=True,
                            text=True, env={**os.environ, "SAMPLING_PERCENTAGE": "0100"})
    assert result.returncode == 1 and "SAMPLING_PERCENTAGE='0100'" in result.stderr


def _check(env_file):
    return subprocess.run([sys.executable, str(REPO / "tools/check_env.py"), str(env_file)],
                          capture_output=True, text=True)


def _values(env_file, name):
    return [line.split("=", 1)[1] for line in env_file.read_text().splitlines() if line.startswith(f"{name}=")]


def test_missing_env_is_created_with_a_random_password_and_secret_key(tmp_path):
    env_file = tmp_path / ".env"
    result = _check(env_file)
    assert result.returncode == 0, result.stderr
    [password], [key] = _values(env_file, "GRAFANA_ADMIN_PASSWORD"), _values(env_file, "GRAFANA_SECRET_KEY")
    assert len(password) >= 24 and len(key) >= 32 and key != GRAFANA_DEFAULT_SECRET_KEY
    assert env_file.stat().st_mode & 0o777 == 0o600
    other = tmp_path / "other.env"
    _check(other)
    assert _values(other, "GRAFANA_SECRET_KEY") != [key]  # random, not a constant


@pytest.mark.parametrize("line", ["GRAFANA_SECRET_KEY=\n", ""])
def test_an_env_made_before_the_secret_key_gets_one_and_keeps_the_rest(tmp_path, good, line):
    env_file = tmp_path / ".env"
    before = "".join(f"{k}={v}\n" for k, v in good.items() if k != "GRAFANA_SECRET_KEY") + line
    env_file.write_text(before)
    result = _check(env_file)
    assert result.returncode == 0, result.stderr
    [key] = _values(env_file, "GRAFANA_SECRET_KEY")
    assert len(key) >= 32 and key not in result.stdout + result.stderr
    assert [l for l in env_file.read_text().splitlines() if not l.startswith("GRAFANA_SECRET_KEY=")] == \
        [l for l in before.splitlines() if not l.startswith("GRAFANA_SECRET_KEY=")]
    _check(env_file)
    assert _values(env_file, "GRAFANA_SECRET_KEY") == [key]  # generated once, then kept


@pytest.mark.parametrize("key, fragment", [
    ("", "GRAFANA_SECRET_KEY is empty"),
    (GRAFANA_DEFAULT_SECRET_KEY, "is Grafana's public default"),
    ("short-but-secret", "has 16 characters"),
])
def test_a_weak_secret_key_is_refused_without_showing_it(good, key, fragment):
    good["GRAFANA_SECRET_KEY"] = key
    found = problems(good)
    assert any(fragment in p for p in found), found
    assert not key or not any(key in p for p in found)


def test_default_retention_keeps_traces_as_long_as_the_logs_and_metrics_linking_to_them(good):
    assert warnings(good) == []


@pytest.mark.parametrize("name, value", [("LOKI_RETENTION", "336h"), ("PROMETHEUS_RETENTION", "15d")])
def test_logs_or_metrics_outliving_traces_are_warned_about_by_name(good, name, value):
    good[name] = value
    assert [w for w in warnings(good) if w.startswith(f"{name}={value!r} outlives TEMPO_RETENTION")]
    assert problems(good) == []  # a warning, not a refusal


@pytest.mark.parametrize("settings, fragment", [
    ({"OBSLAB_FORWARD_OTLP_ENDPOINT": "otlp.example.com:4317"}, "must be an OTLP/HTTP base URL"),
    ({"OBSLAB_FORWARD_OTLP_ENDPOINT": "ftp://otlp.example.com"}, "must be an OTLP/HTTP base URL"),
    ({"OBSLAB_FORWARD_ONLY": "yes"}, "OBSLAB_FORWARD_ONLY='yes': must be true or false"),
    ({"OBSLAB_FORWARD_ONLY": "true"}, "OBSLAB_FORWARD_ONLY=true without OBSLAB_FORWARD_OTLP_ENDPOINT"),
    ({"OBSLAB_FORWARD_OTLP_ENDPOINT": "https://otlp.example.com/otlp",
      "OBSLAB_FORWARD_OTLP_HEADERS": "Authorization=Basic c2VjcmV0"}, "OBSLAB_FORWARD_OTLP_HEADERS (value not shown)"),
    ({"OBSLAB_FORWARD_OTLP_HEADERS": '{"Authorization": "Basic c2VjcmV0"}'}, "OBSLAB_FORWARD_OTLP_ENDPOINT is empty"),
])
def test_bad_forwarding_settings_are_named_and_never_show_a_header(good, settings, fragment):
    good.update(settings)
    found = problems(good)
    assert any(fragment in p for p in found), found
    assert not any("c2VjcmV0" in p for p in found)


def test_forwarding_settings_that_work(good):
    good.update(OBSLAB_FORWARD_OTLP_ENDPOINT="https://otlp-gateway-prod-eu-west-2.grafana.net/otlp",
                OBSLAB_FORWARD_OTLP_HEADERS='{"Authorization": "Basic c2VjcmV0"}', OBSLAB_FORWARD_ONLY="true")
    assert problems(good) == [] and warnings(good) == []
    good["OBSLAB_FORWARD_OTLP_ENDPOINT"] = "http://otlp.example.com:4318"
    assert any("plain http" in w and "c2VjcmV0" not in w for w in warnings(good))


@pytest.mark.parametrize("value", ["", "1", "250", "1000", "60000"])
def test_slow_trace_ms_takes_whole_milliseconds_or_the_default(good, value):
    good["SLOW_TRACE_MS"] = value
    assert problems(good) == []


@pytest.mark.parametrize("name, value", [
    ("SAMPLING_PERCENTAGE", "0100"), ("SAMPLING_PERCENTAGE", "010"), ("SAMPLING_PERCENTAGE", "1e2"),
    ("SAMPLING_PERCENTAGE", "1_00"), ("SAMPLING_PERCENTAGE", "+100"), ("SAMPLING_PERCENTAGE", " 50"),
    ("SAMPLING_PERCENTAGE", "nan"), ("SAMPLING_PERCENTAGE", "100.5"), ("SAMPLING_PERCENTAGE", "\u0661\u0660"),
    ("SLOW_TRACE_MS", "01000"), ("SLOW_TRACE_MS", "1_000"), ("SLOW_TRACE_MS", "\u00b2"),
    ("SLOW_TRACE_MS", "\u0661\u0660\u0660\u0660")])
def test_a_sampling_value_the_collector_reads_otherwise_is_refused(good, name, value):
    """The collector reads a leading zero as octal (SAMPLING_PERCENTAGE=0100 samples 64 %) and refuses
    exponents and underscores: what Python reads otherwise is refused, named, never raised. The
    collector's own reading of each value: tests/integration/test_sampling_settings_as_written.py."""
    good[name] = value
    assert any(p.startswith(f"{name}={value!r}: must be") for p in problems(good)), problems(good)


@pytest.mark.parametrize("value", ["0", "0.5", "2.5", "10", "50.5", "99.999", "100", "100.0"])
def test_sampling_percentage_takes_plain_decimals_from_0_to_100(good, value):
    good["SAMPLING_PERCENTAGE"] = value
    assert problems(good) == []


def test_an_env_file_without_slow_trace_ms_still_passes(good):
    """.env files made before the setting existed: the compose file's default (1000) applies."""
    del good["SLOW_TRACE_MS"]
    assert problems(good) == []


@pytest.mark.parametrize("name", ["GRAFANA_ADMIN_PASSWORD", "GRAFANA_SECRET_KEY", "OBSLAB_ALERT_WEBHOOK_URL"])
def test_a_secret_with_a_dollar_is_refused_because_compose_would_expand_it(good, name):
    """docker compose expands $NAME in an env file's values (`ab$cd#x` reaches Grafana as `ab#x`) where the
    checks, the doctor's login and the user read the text as written: a $ is refused, its value not shown."""
    value = "https://hooks.example.com/a$cd-T0KEN" if name.endswith("URL") else "pa$sw0rd-long-enough-for-any-check-x"
    found = [p for p in problems({**good, name: value}) if p.startswith(name)]
    assert found and "$" in found[0] and "docker compose" in found[0] and value not in found[0]


def test_a_secret_key_written_into_a_copied_env_leaves_it_readable_by_its_owner_alone(tmp_path, good):
    """`cp .env.example .env` makes a 0644 file; the key generated into it (beside the password) must not be
    readable by every user of the machine."""
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in good.items() if k != "GRAFANA_SECRET_KEY"))
    env_file.chmod(0o644)
    assert _check(env_file).returncode == 0
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
