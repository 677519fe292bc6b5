"""The image tool builds stand-ins only from permissively licensed Go modules, and says in one line
how to provide an image it can neither pull nor build."""

from __future__ import annotations

import re

import pytest

from lab import COMPOSE_FILE, REPO, image_tool

tool = image_tool()

# Modules marked not-to-use (AGPL): no recipe may fetch them (paths composed, so that a search of the
# project for those module paths finds only code that would fetch them).
AGPL = tuple(f"github.com/grafana/{name}" for name in ("grafana", "loki/v3", "tempo"))


@pytest.mark.parametrize("name", sorted(tool.RECIPES))
def test_every_module_a_recipe_fetches_is_in_the_licence_allow_list(name):
    modules = tool.RECIPES[name].modules()
    assert modules
    for module in modules:
        assert tool.module_licence(module) in ("Apache-2.0", "MIT", "BSD-3-Clause"), module


def test_the_allow_list_refuses_a_module_outside_it():
    assert all(tool.module_licence(module) is None for module in AGPL)
    assert tool.module_licence("go.opentelemetry.io/collectorx/evil") is None  # a prefix is a path, not a string
    assert tool.module_licence("go.opentelemetry.io/collector/otelcol") == "Apache-2.0"


def test_no_recipe_and_no_allowed_module_names_tempo_loki_or_grafana():
    assert not {"grafana/tempo", "grafana/loki", "grafana/grafana"} & set(tool.RECIPES)
    for prefix in tool.ALLOWED_MODULES:
        assert not any(module == prefix or module.startswith(prefix + "/") or prefix.startswith(module)
                       for module in AGPL), prefix


def test_no_project_file_fetches_or_builds_an_agpl_module():
    pattern = re.compile(r"github\.com/grafana/(grafana|loki|tempo)([^-a-z_.]|$)")
    for folder in ("tools", "sdk", "benchmarks", ".ci", "otel-collector", "prometheus"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".sh", ".yaml", ".yml", ".toml", "") and ".venv" not in path.parts:
                assert not pattern.search(path.read_text(errors="ignore")), path


def test_the_collector_recipe_lists_the_builder_manifest_components():
    modules = tool.RECIPES["otel/opentelemetry-collector-contrib"].modules()
    assert "github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector" in modules
    assert "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter" in modules


def test_an_image_that_can_be_neither_pulled_nor_built_gets_one_line_naming_service_image_and_ways():
    line = tool.how_to_provide("tempo", "grafana/tempo:2.9.0")
    assert "\n" not in line
    assert line.startswith("tempo: grafana/tempo:2.9.0")
    assert "docker pull grafana/tempo:2.9.0" in line and "docker load -i" in line and "OBSLAB_IMAGES_DIR" in line


def test_only_permissive_components_have_recipes_among_the_compose_images():
    images = {image.rpartition(":")[0] for image in tool.compose_images(COMPOSE_FILE).values()}
    assert set(tool.RECIPES) == images & {"otel/opentelemetry-collector-contrib", "prom/prometheus",
                                          "prom/alertmanager"}


def test_the_prometheus_stand_in_declares_the_official_images_volume():
    """The official image declares VOLUME [ "/prometheus" ] (prometheus/prometheus Dockerfile); the
    stand-in does too, so what runs here makes the same anonymous volumes a user's engine would."""
    layout = tool.RECIPES["prom/prometheus"].layout()
    assert layout.volumes == ["/prometheus"]
    lines = tool.dockerfile(layout, "3.16.0", "abc").splitlines()
    assert 'VOLUME ["/prometheus"]' in lines
    assert not any(line.startswith("VOLUME") for line in
                   tool.dockerfile(tool.RECIPES["otel/opentelemetry-collector-contrib"].layout(), "0.162.0",
                                   "abc").splitlines())  # the collector image declares none


def test_a_layout_change_makes_the_image_stale_but_reuses_the_cached_binaries(monkeypatch):
    name = "prom/prometheus"
    recipe, inputs = tool.recipe_of(name), tool.build_inputs_of(name)
    original = tool.RECIPES[name]
    changed = tool.Recipe(original.build, lambda: tool.dataclasses.replace(original.layout(), volumes=[]),
                          original.modules)
    monkeypatch.setitem(tool.RECIPES, name, changed)
    assert tool.recipe_of(name) != recipe  # the image label differs: the image is made again
    assert tool.build_inputs_of(name) == inputs  # from the same cached build


def test_the_alertmanager_stand_in_is_laid_out_as_the_official_image():
    layout = tool.RECIPES["prom/alertmanager"].layout()
    assert tool.RECIPES["prom/alertmanager"].modules() == ["github.com/prometheus/alertmanager"]
    assert tool.module_licence("github.com/prometheus/alertmanager") == "Apache-2.0"
    assert set(layout.binaries) == {"/bin/alertmanager", "/bin/amtool"}
    assert layout.files == {"/etc/alertmanager/alertmanager.yml": "alertmanager.yml"}
    assert layout.entrypoint == ["/bin/alertmanager"]
    assert layout.cmd == ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
    assert (layout.user, layout.ports, layout.workdir, layout.busybox) == ("65534:65534", [9093], "/alertmanager", "/bin")
    assert "/alertmanager" in layout.dirs
