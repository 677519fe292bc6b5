"""What the parity tests share: the entry points they register, and a clean environment to run an
application under ``opentelemetry-instrument`` with one distro or the other."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

PLUGINS = Path(__file__).parent / "plugins"  # parity_plugins-1.0.dist-info: see plugins/parity_plugins.py
INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")
DISTROS = {"upstream": ("distro", "configurator"), "obslab": ("obslab", "obslab")}


def clear_entry_point_cache() -> None:
    """opentelemetry caches ``entry_points()``: forget it, so that newly importable ones are found."""
    from opentelemetry.util import _importlib_metadata

    _importlib_metadata._original_entry_points_cached.cache_clear()


def plugins_registered():
    """Register the test's entry points in this process until the end of the test (a generator for
    a fixture: ``yield from plugins_registered()``)."""
    sys.path.insert(0, str(PLUGINS))
    clear_entry_point_cache()
    try:
        yield
    finally:
        sys.path.remove(str(PLUGINS))
        clear_entry_point_cache()


def other_instrumentors() -> str:
    """Every installed instrumentor but ``logging``, for OTEL_PYTHON_DISABLED_INSTRUMENTATIONS: the
    tests need only the logging one, and loading the others costs seconds per launch."""
    return ",".join(sorted(ep.name for ep in entry_points(group="opentelemetry_instrumentor") if ep.name != "logging"))


def clean_environment(**variables: str) -> dict[str, str]:
    """The test process's environment without any OTEL_*/OBSLAB_* variable, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OBSLAB_")) and k != "OTLP_ENDPOINT"}
    env.update(variables)
    return env


def instrument_environment(distro: str, **variables: str) -> dict[str, str]:
    """A clean environment for ``opentelemetry-instrument`` with ``distro`` ("upstream" or "obslab"),
    the test's entry points importable, and only the logging instrumentation (unless ``variables`` say)."""
    name, configurator = DISTROS[distro]
    env = clean_environment(OTEL_PYTHON_DISTRO=name, OTEL_PYTHON_CONFIGURATOR=configurator,
                            OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=other_instrumentors())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGINS), env.get("PYTHONPATH", "")) if p)
    env.update(variables)
    return env


def run_instrumented(script: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``opentelemetry-instrument python app.py`` with ``script`` as app.py, in ``cwd``."""
    (cwd / "app.py").write_text(script)
    return subprocess.run([str(INSTRUMENT), sys.executable, "app.py"], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)
