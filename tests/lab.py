"""Facts about the lab that tests read from the repo's own files (one source of truth)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import yaml
from dotenv import dotenv_values

from obslab.lab import engine
from obslab.lab.env import PORTS
from obslab.testing.lab import free_port, isolated_values  # noqa: F401 (free_port: the suite imports it from here)

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.observability.yml"
# Added after COMPOSE_FILE where the Docker engine predates healthchecks' start_interval (Engine 25, API 1.44).
ENGINE_BEFORE_25_FILE = REPO / "docker-compose.engine-before-25.yml"
ENV_EXAMPLE = REPO / ".env.example"
PORT_VARIABLES = PORTS  # the lab's host port variables (obslab.lab.env, which checks them)


def repo_module(name: str, path: str) -> ModuleType:
    """The project's script at ``path`` (relative to the repo) imported as module ``name``, once."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def image_tool() -> ModuleType:
    """``tools/images/build_images.py``, which knows which of the lab's images this machine has."""
    return repo_module("build_images", "tools/images/build_images.py")


def engine_compose_files() -> list[Path]:
    """[docker-compose.engine-before-25.yml] where this machine's Docker engine is older than 25 (compose
    refuses the main file's healthcheck start_interval there), else []: added after the main file."""
    return engine.engine_files(REPO)


def env_example() -> dict[str, str]:
    return {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}


def image(service: str) -> str:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"][service]["image"]


def isolated_env(path: Path, **overrides: str) -> dict[str, str]:
    """.env.example with free host ports, a random Grafana password and a network of its own, written
    to ``path`` (obslab's pytest plugin makes the values, as for its own isolated labs)."""
    values = isolated_values(**overrides)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return values


def fake_llm_module() -> ModuleType:
    """``examples/travel_agent/fake_llm.py``, the one fake OpenAI/Anthropic server (the example uses it too)."""
    return repo_module("fake_llm", "examples/travel_agent/fake_llm.py")


def wait_for(predicate, timeout: float = 30.0) -> bool:
    """Poll ``predicate`` every 50 ms until it is true or ``timeout`` seconds passed; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
