"""What the Docker engine has and runs for the lab: its images, its running services, the host ports
the lab would publish, and ``docker compose`` on the lab's files."""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from obslab.lab.files import COMPOSE_FILE, OLD_ENGINE_COMPOSE_FILE, lab_dir

DEFAULT_PROJECT = "obslab"
_PORT_VARIABLE = re.compile(r"\$\{(\w+_PORT)\b")


def url_host(address: str | None) -> str:
    """The host to reach the lab bound to ``address`` (OBSLAB_BIND_ADDRESS) at, as a URL or ``host:port``
    writes it: loopback for every interface (0.0.0.0, ::, unset), an IPv6 address in brackets."""
    if not address or address in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{address}]" if ":" in address else address


def project_name() -> str:
    """The lab's compose project: ``COMPOSE_PROJECT_NAME`` (compose's own variable), else ``obslab``."""
    return os.environ.get("COMPOSE_PROJECT_NAME") or DEFAULT_PROJECT


def _services(compose_file: Path) -> dict:
    return yaml.safe_load(compose_file.read_text())["services"]


def compose_images(compose_file: Path) -> dict[str, str]:
    """Service name -> image reference, in the compose file's order."""
    return {name: svc["image"] for name, svc in _services(compose_file).items() if "image" in svc}


def one_shot_services(compose_file: Path) -> set[str]:
    """Services that run once before others start (``service_completed_successfully``)."""
    return {dep for svc in _services(compose_file).values() for dep, cond in (svc.get("depends_on") or {}).items()
            if isinstance(cond, dict) and cond.get("condition") == "service_completed_successfully"}


def port_variables(compose_file: Path) -> dict[str, str]:
    """Port variable (``GRAFANA_PORT``...) -> the service publishing it, from the compose file's ports."""
    return {match: name for name, svc in _services(compose_file).items() for port in svc.get("ports") or []
            for match in _PORT_VARIABLE.findall(str(port))}


def image_present(image: str) -> bool:
    """Whether the engine has ``image``."""
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def missing_services(compose_file: Path) -> dict[str, str]:
    """Service name -> official image, for the services whose image the engine does not have (or
    whose one-shot set-up service's image it does not have: they cannot start either)."""
    images = compose_images(compose_file)
    present = {image: image_present(image) for image in set(images.values())}
    missing = {name: image for name, image in images.items() if not present[image]}
    for name, svc in _services(compose_file).items():
        for dependency in svc.get("depends_on") or {}:
            if dependency in missing and name not in missing and dependency in one_shot_services(compose_file):
                missing[name] = missing[dependency]
    return missing


def engine_files(directory: Path) -> list[Path]:
    """The compose files the engine needs after the lab's own: the old-engine file (where the lab has
    one) on a Docker Engine older than 25 (API 1.44)."""
    path = directory / OLD_ENGINE_COMPOSE_FILE
    if not path.is_file():
        return []
    try:
        version = subprocess.run(["docker", "version", "--format", "{{.Server.APIVersion}}"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
        old = tuple(int(part) for part in version.split(".")[:2]) < (1, 44)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        old = False
    return [path] if old else []


def running_services(project: str) -> set[str] | None:
    """The services of compose project ``project`` running now; None when the engine cannot be asked."""
    try:
        result = subprocess.run(["docker", "ps", "--filter", f"label=com.docker.compose.project={project}",
                                 "--format", '{{.Label "com.docker.compose.service"}}'],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(result.stdout.split()) if result.returncode == 0 else None


def network_project(network: str) -> str | None:
    """The compose project that made Docker network ``network`` (its label); None where there is no such
    network, it was made outside compose, or the engine cannot be asked."""
    try:
        result = subprocess.run(["docker", "network", "inspect", network, "--format",
                                 '{{index .Labels "com.docker.compose.project"}}'], capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (result.stdout.strip() or None) if result.returncode == 0 else None


def busy_ports(env: dict[str, str], variables: list[str]) -> list[tuple[str, str]]:
    """Of the port ``variables``, the ones whose port something listens on already, at the lab's bind
    address: (variable, port)."""
    address = env.get("OBSLAB_BIND_ADDRESS") or "127.0.0.1"
    busy = []
    for name in variables:
        port = env.get(name, "")
        if not port.isdigit():
            continue
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
            try:
                probe.bind((address, int(port)))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    busy.append((name, port))
    return busy


@dataclass
class Compose:
    """``docker compose`` on the lab's files for one project and env file."""

    env_file: Path
    project: str = field(default_factory=project_name)
    directory: Path = field(default_factory=lab_dir)
    extra_files: tuple[Path, ...] = ()

    @property
    def compose_file(self) -> Path:
        return self.directory / COMPOSE_FILE

    def command(self, *args: str) -> list[str]:
        paths = (self.compose_file, *engine_files(self.directory), *self.extra_files)
        files = [arg for path in paths for arg in ("-f", str(path))]
        return ["docker", "compose", *files, "--project-directory", str(self.directory), "-p", self.project,
                "--env-file", str(self.env_file), *args]

    def run(self, *args: str, capture: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), capture_output=capture, text=True, timeout=timeout)
