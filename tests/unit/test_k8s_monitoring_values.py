"""The k8s-monitoring values say what the lab's collector does: the same span-metric dimensions, the
`service` label the dashboards and Grafana's trace-to-metrics links read among them."""

import yaml

from lab import REPO

VALUES = yaml.safe_load((REPO / "scaling/k8s-monitoring/values.yaml").read_text())
COLLECTOR = yaml.safe_load((REPO / "otel-collector/config.yaml").read_text())


def test_span_metrics_have_the_labs_dimensions_including_service():
    lab = [d["name"] for d in COLLECTOR["connectors"]["span_metrics"]["dimensions"]]
    chart = [d["name"] for d in VALUES["applicationObservability"]["connectors"]["spanMetrics"]["dimensions"]]
    assert "service" in lab and chart == lab


def test_service_is_set_from_service_name_before_the_span_metrics_connector():
    """The lab copies service.name to `service` (processors.resource/spanmetrics); the chart's traces
    transform runs on what the receivers take in, before its connectors."""
    statements = VALUES["applicationObservability"]["traces"]["transforms"]["resource"]
    assert 'set(attributes["service"], attributes["service.name"]) where attributes["service"] == nil' in statements
    copy = next(a for a in COLLECTOR["processors"]["resource/spanmetrics"]["attributes"] if a["key"] == "service")
    assert copy["from_attribute"] == "service.name"
