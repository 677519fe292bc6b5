"""Where the lab's files are: the compose file, the services' configs and ``.env.example``.

One source: the repository's top-level files. A built package (wheel) carries a copy of them made
at build time (``sdk/setup.py``, :func:`lab_file_paths` says which); a source checkout (an editable
install) uses the repository's files themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import yaml

COMPOSE_FILE = "docker-compose.observability.yml"
ENV_EXAMPLE = ".env.example"
# Added after the compose file on a Docker Engine older than 25 (API 1.44), where the repository has it.
OLD_ENGINE_COMPOSE_FILE = "docker-compose.engine-before-25.yml"
# Test-only compose file the obslab_lab fixture adds where Tempo or Loki is absent (the ingest witness).
WITNESS_COMPOSE_FILE = "tests/ingest-witness/docker-compose.yml"
_PACKAGED = Path(__file__).resolve().parent.parent / "_lab"  # the copy a wheel carries
_CHECKOUT = Path(__file__).resolve().parents[4]  # sdk/src/obslab/lab -> the repository


def lab_dir() -> Path:
    """The directory holding the lab's compose file: the package's copy, else the source checkout."""
    for directory in (_PACKAGED, _CHECKOUT):
        if (directory / COMPOSE_FILE).is_file():
            return directory
    raise FileNotFoundError(f"obslab's lab files are missing: neither {_PACKAGED} nor {_CHECKOUT} holds "
                            f"{COMPOSE_FILE}; reinstall obslab (pip install ./sdk from a clone)")


def _relative_paths(node: Any) -> Iterator[str]:
    """Every ``./path`` a compose file names (bind mounts, secret and config files, env files)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _relative_paths(value)
    elif isinstance(node, list):
        for value in node:
            yield from _relative_paths(value)
    elif isinstance(node, str) and node.startswith("./"):
        yield node.split(":", 1)[0][2:].rstrip("/")


def lab_file_paths(root: Path) -> list[str]:
    """The files under ``root`` (a repository) the lab needs, relative to it: the compose files, every
    file or folder they name, and ``.env.example``."""
    wanted = {COMPOSE_FILE, ENV_EXAMPLE, WITNESS_COMPOSE_FILE, OLD_ENGINE_COMPOSE_FILE}
    for compose_file in (COMPOSE_FILE, WITNESS_COMPOSE_FILE):
        wanted.update(_relative_paths(yaml.safe_load((root / compose_file).read_text())))
    files = set()
    for name in wanted:
        path = root / name
        if path.is_dir():
            files.update(str(p.relative_to(root)) for p in path.rglob("*")
                         if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file():
            files.add(name)
    return sorted(files)
