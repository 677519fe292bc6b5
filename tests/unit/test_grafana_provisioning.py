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


def test_loki_regex_derived_field_matches_text_and_json_lines():
    fields = yaml.safe_load(DATASOURCES.read_text())["datasources"][2]["jsonData"]["derivedFields"]
    regex = re.compile(next(f["matcherRegex"] for f in fields if f["matcherType"] == "regex"))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert regex.search(f"2026-01-01 INFO app trace_id={trace_id} span_id=00f067aa0ba902b7 - hi").group(1) == trace_id
    assert regex.search(f'{{"message": "hi", "trace_id": "{trace_id}"}}').group(1) == trace_id
    assert regex.search("trace_id=- span_id=- - outside a span") is None


def test_every_dollar_is_escaped_for_provisioning():
    text = DATASOURCES.read_text()
    assert re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")) is None
