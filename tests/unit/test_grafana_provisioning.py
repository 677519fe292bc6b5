import json
import re

import yaml

from lab import REPO

DATASOURCES = REPO / "grafana/provisioning/datasources/datasources.yaml"


def test_datasources_have_fixed_uids_and_links_between_them():
    sources = {d["uid"]: d for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    assert set(sources) == {"prometheus", "tempo", "loki", "alertmanager"}
    assert sources["alertmanager"]["type"] == "alertmanager" and sources["alertmanager"]["url"] == "http://alertmanager:9093"
    assert sources["alertmanager"]["jsonData"]["implementation"] == "prometheus"
    assert sources["prometheus"]["jsonData"]["alertmanagerUid"] == "alertmanager"
    tempo = sources["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus" and tempo["nodeGraph"]["enabled"]
    # lokiSearch has done nothing since Grafana 11 (logs search moved to tracesToLogsV2 and Loki itself)
    assert "lokiSearch" not in tempo
    destinations = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {(d["name"], d["datasourceUid"]) for d in destinations} == {("traceID", "tempo"), ("trace_id", "tempo")}
    fields = {f["matcherType"]: f for f in sources["loki"]["jsonData"]["derivedFields"]}
    assert fields["label"]["matcherRegex"] == "trace_id" and fields["label"]["datasourceUid"] == "tempo"


def test_one_trace_link_per_log_line():
    """Grafana's Loki datasource makes one field with its own link per derived field (fields of one
    name share a field, each config adding a link), so one link per line means one derived field to
    Tempo. It matches the trace_id label: OTLP logs keep trace_id as structured metadata."""
    loki = next(d for d in yaml.safe_load(DATASOURCES.read_text())["datasources"] if d["uid"] == "loki")
    to_tempo = [f for f in loki["jsonData"]["derivedFields"] if f.get("datasourceUid") == "tempo"]
    assert len(to_tempo) == 1, to_tempo
    field = to_tempo[0]
    assert (field["matcherType"], field["matcherRegex"], field["url"]) == ("label", "trace_id", "$${__value.raw}")
    # The label matcher is a regex tested against each label name: it must pick trace_id, not span_id.
    names = ["service_name", "span_id", "trace_id", "severity_text"]
    assert [n for n in names if re.search(field["matcherRegex"], n)] == ["trace_id"]


def test_logs_panels_show_the_line_as_logged():
    """No panel appends the trace id to the line: the label-matched field is the line's one link."""
    for board in (REPO / "grafana/dashboards").glob("*.json"):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel.get("targets", []):
                assert "line_format" not in target.get("expr", ""), (board.name, panel["title"])


def test_provisioning_mounts_only_what_the_lab_provides():
    """Each provisioning folder the lab has is mounted on its own (the image keeps its plugins/ and
    access-control/ folders), and the obsolete notifiers/ folder is gone (removed in Grafana 11)."""
    provided = {p.name for p in (REPO / "grafana/provisioning").iterdir() if p.is_dir()}
    assert "notifiers" not in provided
    grafana = yaml.safe_load((REPO / "docker-compose.observability.yml").read_text())["services"]["grafana"]
    mounted = {v.split(":")[1] for v in grafana["volumes"] if v.startswith("./grafana/provisioning")}
    assert mounted == {f"/etc/grafana/provisioning/{name}" for name in provided}


def test_every_dollar_is_escaped_for_provisioning():
    text = DATASOURCES.read_text()
    assert re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")) is None


COMPOSE = yaml.safe_load((REPO / "docker-compose.observability.yml").read_text())
# Grafana environment variables of the compose file that are not about outside hosts.
NOT_OUTBOUND = {"GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD__FILE", "GF_SECURITY_SECRET_KEY__FILE",
                "GF_AUTH_ANONYMOUS_ENABLED", "GF_AUTH_ANONYMOUS_ORG_ROLE"}


def _calls_nobody_table() -> dict[str, tuple[str, str]]:
    """docs/lab.md "Grafana calls nobody": environment variable -> (its value, the `[section] key` row)."""
    text = (REPO / "docs/lab.md").read_text()
    section = text.split("### Grafana calls nobody", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `\[(\w+)\] (\w+)` \| `(GF_\w+)=([^`]+)` \| [^|]+ \|$", section, flags=re.M)
    assert len(rows) >= 12, section
    return {var: (value, f"[{sec}] {key}") for sec, key, var, value in rows}


def test_every_outbound_setting_the_docs_list_is_off_in_the_compose_file_and_no_other():
    table = _calls_nobody_table()
    env = {k: str(v) for k, v in COMPOSE["services"]["grafana"]["environment"].items()}
    for var, (value, setting) in table.items():
        section, key = setting.strip("[").split("] ")
        assert var == f"GF_{section.upper()}_{key.upper()}", f"{setting} is set by GF_{section.upper()}_{key.upper()}, not {var}"
        assert env.get(var) == value, f"{setting}: the compose file sets {var}={env.get(var)!r}, the docs say {value!r}"
    unlisted = {var for var in env if var.startswith("GF_")} - NOT_OUTBOUND - table.keys()
    assert not unlisted, f"Grafana settings in the compose file that docs/lab.md 'Grafana calls nobody' does not list: {unlisted}"


def test_the_settings_the_issue_named_are_among_those_turned_off():
    table = _calls_nobody_table()
    named = {"GF_SECURITY_DISABLE_GRAVATAR": "true", "GF_SNAPSHOTS_EXTERNAL_ENABLED": "false",
             "GF_PLUGINS_PLUGIN_ADMIN_ENABLED": "false", "GF_ANALYTICS_FEEDBACK_LINKS_ENABLED": "false",
             "GF_PLUGINS_DISABLE_PLUGINS": "grafana-advisor-app", "GF_ANALYTICS_REPORTING_ENABLED": "false",
             "GF_PLUGINS_PREINSTALL_DISABLED": "true"}
    assert {var: table[var][0] for var in named if var in table} == named


def test_grafana_keeps_its_bundled_datasource_plugins():
    """Grafana 13.2 ships the Prometheus, Loki and Tempo datasources as plugins under
    data/plugins-bundled: a -slim tag has none, and a mount over that folder hides them."""
    grafana = COMPOSE["services"]["grafana"]
    assert not grafana["image"].split(":")[1].endswith("-slim") and "slim" not in grafana["image"]
    targets = [v.split(":")[1] for v in grafana["volumes"]]
    bundled = "/usr/share/grafana/data/plugins-bundled"
    assert not [t for t in targets if bundled.startswith(t.rstrip("/") + "/") or t.rstrip("/") == bundled
                or t.startswith(bundled + "/") or t in ("/usr/share/grafana", "/usr/share/grafana/data")], targets
    assert "GF_PATHS_BUNDLED_PLUGINS" not in grafana["environment"]  # would move where Grafana looks for them
