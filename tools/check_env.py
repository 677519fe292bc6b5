#!/usr/bin/env python3
"""Check the lab's .env before anything starts: each bad value is named with the variable.

Usage: python3 tools/check_env.py [ENV_FILE]   (default .env; created from .env.example if missing,
with a random Grafana admin password and secret key; a secret key is added to an existing file that
has none). Exits 1 listing every problem.

The checks live in the SDK (obslab.lab.env), which `obslab lab up` runs too: one set of rules.
"""
from __future__ import annotations

import sys
from pathlib import Path

from obslab.lab.env import (GRAFANA_DEFAULT_SECRET_KEY, PORTS, compose_values, ensure_env_file,  # noqa: F401
                            forwarding_problems, problems, read_env, warnings)

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else REPO / ".env"
    ensure_env_file(path, REPO / ".env.example")
    env = compose_values(path)  # a variable exported in the shell wins over the file, in compose too
    found = problems(env)
    for warning in warnings(env):
        print(f"{path.name}: warning: {warning}", file=sys.stderr)
    for problem in found:
        print(f"{path.name}: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
