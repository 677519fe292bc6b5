"""Every panel query of the provisioned dashboards, checked without Grafana, Loki or Tempo running.

Loki and Tempo panel targets: the datasource they name is the provisioned one, every $variable they
use is defined on their dashboard, and their syntax is valid:
- LogQL with Grafana's own grammar, @grafana/lezer-logql (Apache-2.0, the one its query editor uses),
  run by Node.js from the npm packages pinned in query_grammars/ (TraceQL likewise, with
  @grafana/lezer-traceql, should a panel run a TraceQL query); without Node.js that test is skipped,
  never passed, and the checks below still run;
- and, with Python alone, balanced quotes, brackets and line_format templates, and the stream
  selector (LogQL's stream selector and the service graph selector are PromQL label matchers, parsed
  by promql-parser, MIT) with at least one matcher that matches no empty value, as Loki requires.
The Tempo panel is the service graph: its query is a PromQL selector that Grafana appends to Tempo's
service graph metrics, parsed as such.

Prometheus panel queries are listed by the generator's prometheus_panel_queries() for a test that
runs them against a real Prometheus; here they are only parsed.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import promql_parser
import pytest

from lab import REPO

DASHBOARDS = REPO / "grafana/dashboards"
GRAMMARS = Path(__file__).parent / "query_grammars"
DATASOURCES = {"prometheus": "prometheus", "loki": "loki", "tempo": "tempo"}  # type: provisioned uid
# Variables Grafana itself defines on every dashboard.
GLOBAL_VARIABLES = {"__range", "__range_s", "__range_ms", "__interval", "__interval_ms", "__rate_interval",
                    "__auto", "__from", "__to", "__dashboard", "__org", "__user", "timeFilter", "__timeFilter"}
# The labels of Tempo's service graph metrics: the two ends, the connection, and each configured
# dimension once per end (client_deployment_environment...).
SERVICE_GRAPH_LABEL = re.compile(r"client|server|connection_type|(client|server)_\w+")


def _generator():
    spec = importlib.util.spec_from_file_location("obslab_dashboards_generate", DASHBOARDS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATE = _generator()
BOARDS = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
TARGETS = [(board, panel, target) for board in BOARDS for panel in board["panels"]
           for target in panel.get("targets", []) if target["datasource"]["type"] in {"loki", "tempo"}]
LOKI_TARGETS = [(b, p, t) for b, p, t in TARGETS if t["datasource"]["type"] == "loki"]


def _id(item) -> str:
    board, panel, target = item
    return f"{board['uid'].removeprefix('obslab-')}:{panel['title']}:{target['refId']}"


def _query(target: dict) -> str:
    if target.get("queryType") == "serviceMap":
        return target["serviceMapQuery"]
    return target.get("expr") or target.get("query", "")


def _variables_used(text: str) -> set[str]:
    """The Grafana variables a query names: $name, ${name} and ${name:format}, and [[name]]."""
    return {a or b or c for a, b, c in re.findall(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)\]\]", text)}


def _substituted(board: dict, text: str) -> str:
    """The query with its variables replaced by the generator's test values, as Grafana writes a
    multi-value variable into a regex matcher, and $__range by a duration."""
    values = GENERATE.TEST_VALUES[board["uid"]]

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return "1h" if name.startswith("__") else GENERATE._regex_value(values[name])
    return re.sub(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)", value, text)


def _scan(query: str) -> tuple[list[str], list[str]]:
    """The query's string literals and, outside them, its brackets, in order; asserts that every
    string is closed and every bracket matched."""
    strings, brackets, stack, i = [], [], [], 0
    pairs = {")": "(", "]": "[", "}": "{"}
    while i < len(query):
        char = query[i]
        if char in "\"`":
            end = i + 1
            while end < len(query) and query[end] != char:
                end += 2 if char == '"' and query[end] == "\\" else 1
            assert end < len(query), f"string opened at {i} is not closed: {query!r}"
            strings.append(query[i + 1:end])
            i = end
        elif char in "([{":
            stack.append(char)
            brackets.append(char)
        elif char in ")]}":
            assert stack and stack.pop() == pairs[char], f"unmatched {char!r} at {i}: {query!r}"
            brackets.append(char)
        i += 1
    assert not stack, f"unclosed {stack}: {query!r}"
    return strings, brackets


def _stream_selector(query: str) -> str:
    """The leading {...} of a LogQL log query."""
    assert query.lstrip().startswith("{"), f"a log query starts with its stream selector: {query!r}"
    depth, in_string = 0, False
    for i, char in enumerate(query):
        if char == '"' and (i == 0 or query[i - 1] != "\\"):
            in_string = not in_string
        elif not in_string and char in "{}":
            depth += 1 if char == "{" else -1
            if depth == 0:
                return query[:i + 1]
    raise AssertionError(f"stream selector not closed: {query!r}")


def _go_template_balanced(template: str) -> bool:
    """A line_format template's actions are closed, and each if/range/with has its end."""
    if template.count("{{") != template.count("}}"):
        return False
    depth = 0
    for action in re.findall(r"\{\{-?\s*(\w+)", template):
        depth += action in {"if", "range", "with", "block", "define"}
        depth -= action == "end"
        if depth < 0:
            return False
    return depth == 0


# --- the checks' own checks: they reject what they are there to reject ---

def test_the_python_checks_reject_broken_queries():
    _scan('{a="b"} |= "x" | line_format "{{ .a }}"')
    for broken in ['{a="b"', '{a="b} |= "x"', '{a="b"} |= "x', 'sum(rate({a="b"}[5m])']:
        with pytest.raises(AssertionError):
            _scan(broken)
    with pytest.raises(ValueError):  # no matcher that rules out the empty value
        promql_parser.parse(_stream_selector('{service_name=~".*"} |= "x"'))
    assert _stream_selector('{a="}"} |= "x"') == '{a="}"}'
    assert _go_template_balanced("{{ __line__ }}{{ if .trace_id }} trace_id={{ .trace_id }}{{ end }}")
    assert not _go_template_balanced("{{ if .trace_id }} trace_id={{ .trace_id }}")
    assert _variables_used('{a=~"$service", b="${environment:regex}"} |= "[[x]]" [$__range]') == \
        {"service", "environment", "x", "__range"}


# --- Loki and Tempo panel targets ---

@pytest.mark.parametrize("item", TARGETS, ids=map(_id, TARGETS))
def test_loki_and_tempo_targets_name_the_provisioned_datasource(item):
    board, panel, target = item
    for ref in (panel["datasource"], target["datasource"]):
        assert DATASOURCES.get(ref["type"]) == ref["uid"], ref
    assert panel["datasource"] == target["datasource"]


@pytest.mark.parametrize("item", TARGETS, ids=map(_id, TARGETS))
def test_loki_and_tempo_targets_use_only_variables_their_dashboard_defines(item):
    board, panel, target = item
    defined = {v["name"] for v in board["templating"]["list"]} | GLOBAL_VARIABLES
    used = _variables_used(json.dumps({k: v for k, v in target.items() if k != "datasource"}))
    assert used, "a panel of the user's services filters by the dashboard's variables"
    assert used <= defined, used - defined


@pytest.mark.parametrize("item", LOKI_TARGETS, ids=map(_id, LOKI_TARGETS))
def test_loki_queries_have_balanced_syntax_and_a_valid_stream_selector(item):
    board, panel, target = item
    query = _substituted(board, _query(target))
    strings, _ = _scan(query)
    selector = promql_parser.parse(_stream_selector(query))  # raises on a selector Loki would refuse
    assert isinstance(selector, promql_parser.VectorSelector) and selector.name is None, selector
    assert {m.name for m in selector.matchers.matchers} >= {"service_name"}, selector  # the SDK's resource label
    for template in re.findall(r'\|\s*line_format\s+"((?:[^"\\]|\\.)*)"', query):
        assert _go_template_balanced(template), template
    assert strings  # the selector's values at least


def test_the_service_graph_selector_parses_on_tempos_service_graph_metrics():
    service_maps = [(b, t) for b, p, t in TARGETS if t.get("queryType") == "serviceMap"]
    assert service_maps
    for board, target in service_maps:
        # As Grafana runs it: the selector appended to each service graph metric.
        selector = promql_parser.parse("traces_service_graph_request_total" + _substituted(board, _query(target)))
        assert isinstance(selector, promql_parser.VectorSelector), selector
        labels = {m.name for m in selector.matchers.matchers} - {"__name__"}
        assert labels and all(SERVICE_GRAPH_LABEL.fullmatch(label) for label in labels), labels


def test_every_tempo_target_is_a_query_this_module_checks():
    for board, panel, target in TARGETS:
        if target["datasource"]["type"] == "tempo":
            assert target.get("queryType") in {"serviceMap", "traceql"}, _id((board, panel, target))


# --- Grafana's own LogQL and TraceQL grammars, on Node.js ---

def _grammar_dir() -> tuple[str, Path]:
    """Node.js, and the pinned npm packages of query_grammars/ installed once per version of its lock
    file in the user's cache (npm ci from the registry the first time)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("Grafana's LogQL/TraceQL grammars run on Node.js, and node or npm is not installed: "
                    "NOT checked here (Debian: apt-get install nodejs npm)")
    files = ["package.json", "package-lock.json", "parse.mjs"]
    digest = hashlib.sha256(b"".join((GRAMMARS / f).read_bytes() for f in files)).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "obslab"
    target = cache / f"query-grammars-{digest}"
    if not (target / "node_modules").is_dir():
        staging = cache / f"query-grammars-{digest}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for f in files:
            shutil.copy(GRAMMARS / f, staging / f)
        installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=staging,
                                   capture_output=True, text=True, timeout=300)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        if not (target / "node_modules").is_dir():
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        else:
            shutil.rmtree(staging, ignore_errors=True)
    return node, target


@pytest.fixture(scope="module")
def parse():
    node, directory = _grammar_dir()

    def run(queries: list[tuple[str, str]]) -> list[dict]:
        done = subprocess.run([node, "parse.mjs"], cwd=directory, capture_output=True, text=True, timeout=60,
                              input=json.dumps([{"language": lang, "query": q} for lang, q in queries]))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    return run


def test_the_grammars_reject_broken_queries(parse):
    results = parse([("logql", '{a="b"} |= "x"'), ("logql", '{a="b" |= "x"'), ("logql", '{a="b"} | line_format'),
                     ("traceql", '{ resource.service.name = "x" && status = error }'), ("traceql", "{ span.a = }")])
    assert [bool(r["errors"]) for r in results] == [False, True, True, False, True]


def test_loki_and_tempo_queries_parse_with_grafanas_grammars(parse):
    checked = [(_id((b, p, t)), "logql" if t["datasource"]["type"] == "loki" else "traceql",
                _substituted(b, _query(t)), p["type"])
               for b, p, t in TARGETS if t["datasource"]["type"] == "loki" or t.get("queryType") == "traceql"]
    assert checked
    for (name, language, query, panel_type), result in zip(checked, parse([(c[1], c[2]) for c in checked])):
        assert not result["errors"], (name, query, result)
        if panel_type == "logs":  # a logs panel shows lines: a log query, not a metric one
            assert result["tree"].startswith("LogQL(Expr(LogExpr("), (name, result["tree"])


# --- Prometheus panel queries, for the test that runs them against a real Prometheus ---

def test_prometheus_panel_queries_cover_every_prometheus_target_and_parse():
    queries = GENERATE.prometheus_panel_queries()
    expected = [(b["uid"], p["title"]) for b in BOARDS for p in b["panels"] for t in p.get("targets", [])
                if t["datasource"]["type"] == "prometheus"]
    assert sorted((q.uid, q.title) for q in queries) == sorted(expected)
    for query in queries:
        assert "$" not in query.expr, query
        promql_parser.parse(query.expr)  # raises on a syntax error


def test_prometheus_panel_queries_fill_in_the_values_they_are_given():
    queries = GENERATE.prometheus_panel_queries({"obslab-data-pipeline": {"service": ["a.b", "c"]}}, "30m")
    rows_read = next(q for q in queries if q.title == "Rows read")
    assert 'service_name=~"(a\\\\.b|c)"' in rows_read.expr and 'deployment_environment=~"development"' in rows_read.expr
    cost = next(q for q in queries if q.uid == "obslab-llm-cost" and "cost_total" in q.expr)
    assert "[30m]" in cost.expr


def test_a_variable_the_dashboard_does_not_define_is_an_error(monkeypatch):
    board = GENERATE.as_json(GENERATE.DASHBOARDS["lab-health.json"])
    board["panels"][0]["targets"][0]["expr"] = 'sum(rate(x{service_name=~"$service"}[5m]))'
    monkeypatch.setattr(GENERATE, "as_json", lambda _: board)
    with pytest.raises(KeyError, match=r"\$service"):
        GENERATE.prometheus_panel_queries()
