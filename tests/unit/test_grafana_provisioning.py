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
