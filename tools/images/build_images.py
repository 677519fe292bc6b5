#!/usr/bin/env python3
"""Make the images of docker-compose.observability.yml available to the Docker engine.

For each image: use it if the engine has it; else load it from a saved archive in
$OBSLAB_IMAGES_DIR; else pull it; else, for permissively licensed components only (the collector,
Prometheus and Alertmanager, Apache-2.0), build a local stand-in of the same upstream version from its
published Go module and tag it with the official name. Tempo, Loki and Grafana are AGPL: they are
never built here, and an absent one is reported in one line saying how to provide it.

A stand-in mimics the official image: binary path, entrypoint, default command and config path,
data directories owned by the same numeric user, volumes, exposed ports, and the tools the compose
healthchecks call (busybox where the official image has one).

Binaries are cached in $OBSLAB_CACHE (default ~/.cache/obslab), keyed by version (and, for the
collector, by its builder manifest): a rebuild happens only when a compose tag or the manifest changes.

Usage: python3 tools/images/build_images.py [--compose FILE] [--only NAME ...] [--no-pull]
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Callable

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("OBSLAB_CACHE", Path.home() / ".cache" / "obslab"))
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: one static binary, no libc needed
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# Every Go module a recipe fetches, by path prefix, with its licence: a recipe may fetch nothing
# else (tests/unit/test_image_recipes.py). Grafana, Loki and Tempo are AGPL and never belong here.
ALLOWED_MODULES = {
    "go.opentelemetry.io/collector": "Apache-2.0",
    "github.com/open-telemetry/opentelemetry-collector-contrib": "Apache-2.0",
    "github.com/prometheus/prometheus": "Apache-2.0",
    "github.com/prometheus/alertmanager": "Apache-2.0",
}


def log(msg: str) -> None:
    print(f"[images] {msg}", flush=True)


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command, streaming nothing; raise with its output tail on failure."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, text=True, capture_output=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def go_env() -> dict[str, str]:
    return {"GOFLAGS": "-mod=mod -buildvcs=false", "GOTOOLCHAIN": "local", "GOWORK": "off"}


def go_module_source(module: str, version: str, dest: Path) -> Path:
    """Download a module with `go mod download` and copy it to a writable build tree."""
    if dest.exists():
        shutil.rmtree(dest)
    info = json.loads(run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=CACHE))
    shutil.copytree(info["Dir"], dest)
    for path in dest.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    dest.chmod(dest.stat().st_mode | 0o200)
    return dest


# ---------------------------------------------------------------------------------------------
# Image layouts: what each official image looks like from the outside.


@dataclass
class Layout:
    """What a stand-in image must contain to behave like the official one."""

    binaries: dict[str, str]  # path in image -> name of a file in the build dir
    user: str  # numeric uid:gid of the official image
    entrypoint: list[str]
    cmd: list[str]
    ports: list[int]
    dirs: list[str] = field(default_factory=list)  # owned by the image user
    files: dict[str, str] = field(default_factory=dict)  # path in image -> file in build dir
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    busybox: str | None = "/bin"  # where the official image has busybox (sh, wget); None: no shell
    volumes: list[str] = field(default_factory=list)  # the official image's VOLUME paths


def _add_dir(tar: tarfile.TarFile, name: str, uid: int, gid: int, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, gid
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _rootfs(layout: Layout, build_dir: Path, out: Path) -> None:
    """Write the image's root filesystem as a tar (ownership is set here, not by Docker)."""
    uid, gid = (int(x) for x in layout.user.split(":"))
    with tarfile.open(out, "w") as tar:
        for d in ("etc", "tmp", "bin", "usr", "usr/bin", "etc/ssl", "etc/ssl/certs"):
            _add_dir(tar, d, 0, 0, 0o1777 if d == "tmp" else 0o755)
        _add_bytes(tar, "etc/passwd", f"root:x:0:0:root:/root:/bin/sh\nobslab:x:{uid}:{gid}::/tmp:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n".encode())
        _add_bytes(tar, "etc/group", f"root:x:0:\nobslab:x:{gid}:\nnogroup:x:65534:\n".encode())
        _add_bytes(tar, "etc/nsswitch.conf", b"hosts: files dns\n")
        tar.add(CA_BUNDLE, "etc/ssl/certs/ca-certificates.crt")
        if layout.busybox:
            where = layout.busybox.strip("/")
            if where != "bin":
                _add_dir(tar, where, 0, 0)
            tar.add(BUSYBOX, f"{where}/busybox")
            for applet in ("sh", "wget", "cat", "ls", "ps", "nc", "sleep", "env"):
                link = tarfile.TarInfo(f"{where}/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        parents = set()
        for target in [*layout.binaries, *layout.files, *layout.dirs]:
            for parent in Path(target).parents:
                if str(parent) not in ("/", ".") and str(parent) not in parents:
                    parents.add(str(parent))
        for parent in sorted(parents, key=len):
            _add_dir(tar, parent, 0, 0)
        for target, name in layout.binaries.items():
            tar.add(build_dir / name, target.lstrip("/"), filter=lambda t: _owned(t, 0, 0, 0o755))
        for target, name in layout.files.items():
            tar.add(build_dir / name, target.lstrip("/"), filter=lambda t: _owned(t, 0, 0, 0o644))
        for d in layout.dirs:
            _add_dir(tar, d, uid, gid, 0o775)


def _owned(info: tarfile.TarInfo, uid: int, gid: int, mode: int | None) -> tarfile.TarInfo:
    info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
    if mode is not None and info.isfile():
        info.mode = mode
    return info


def dockerfile(layout: Layout, version: str, recipe: str) -> str:
    """The stand-in's Dockerfile: its root filesystem, then the official image's configuration."""
    env_lines = "".join(f"ENV {k}={json.dumps(v)}\n" for k, v in layout.env.items())
    return (
        "FROM scratch\n"
        "ADD rootfs.tar /\n"
        f"{env_lines}"
        f"LABEL org.opencontainers.image.version={json.dumps(version)} "
        f"org.opencontainers.image.description={json.dumps(STANDIN_DESCRIPTION)} "
        f"{RECIPE_LABEL}={json.dumps(recipe)}\n"
        f"EXPOSE {' '.join(str(p) for p in layout.ports)}\n"
        f"WORKDIR {layout.workdir}\n"
        f"USER {layout.user}\n"
        f"ENTRYPOINT {json.dumps(layout.entrypoint)}\n"
        f"CMD {json.dumps(layout.cmd)}\n"
        + (f"VOLUME {json.dumps(layout.volumes)}\n" if layout.volumes else "")
    )


def docker_build(image: str, layout: Layout, build_dir: Path, version: str, recipe: str) -> None:
    with tempfile.TemporaryDirectory(prefix="obslab-image-") as ctx:
        ctx_path = Path(ctx)
        _rootfs(layout, build_dir, ctx_path / "rootfs.tar")
        (ctx_path / "Dockerfile").write_text(dockerfile(layout, version, recipe))
        run(["docker", "build", "-q", "-t", image, str(ctx_path)])


# ---------------------------------------------------------------------------------------------
# Builds: one function per component, returning the build dir holding what the Layout names.


def build_collector(version: str, out: Path) -> None:
    minor = int(version.split(".")[1])
    core = f"v0.{minor}.0"
    stable = _stable_core_version(core)
    builder = CACHE / "bin" / f"ocb-{core}"
    if not builder.exists():
        run(["go", "install", f"go.opentelemetry.io/collector/cmd/builder@{core}"],
            env={"GOBIN": str(CACHE / "bin")})
        (CACHE / "bin" / "builder").rename(builder)
    manifest = Template((HERE / "otelcol-builder.yaml").read_text()).substitute(
        CORE=core, STABLE=stable, CONTRIB=f"v{version}", CONTRIB_TAG=version)
    manifest_file = out / "manifest.yaml"
    cfg = yaml.safe_load(manifest)
    cfg["dist"]["output_path"] = str(out / "src")
    manifest_file.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run([str(builder), f"--config={manifest_file}"], env={"CGO_ENABLED": "0", **go_env()})
    shutil.copy(out / "src" / "otelcol-contrib", out / "otelcol-contrib")


def _collector_layout() -> Layout:
    return Layout(
        binaries={"/otelcol-contrib": "otelcol-contrib"},
        user="10001:10001",
        entrypoint=["/otelcol-contrib"],
        cmd=["--config", "/etc/otelcol-contrib/config.yaml"],
        ports=[4317, 4318, 55678, 55679],
        dirs=["/etc/otelcol-contrib"],
        busybox=None,  # the official image is FROM scratch
    )


def _stable_core_version(core: str) -> str:
    """The 1.M.0 modules released together with core 0.N.0 (read from otelcol's go.mod)."""
    mod = run(["go", "mod", "download", "-json", f"go.opentelemetry.io/collector/otelcol@{core}"], cwd=CACHE)
    text = Path(json.loads(mod)["GoMod"]).read_text()
    match = re.search(r"go\.opentelemetry\.io/collector/confmap (v1\.\d+\.\d+)", text)
    if not match:
        raise RuntimeError(f"cannot find the stable core version in otelcol {core}'s go.mod")
    return match.group(1)


def build_prometheus(version: str, out: Path) -> None:
    mod_version = "v0.{}{:02d}.{}".format(*_semver(version))  # 3.16.0 -> v0.316.0
    ldflags = f"-s -w -X github.com/prometheus/common/version.Version={version.lstrip('v')}"
    src = go_module_source("github.com/prometheus/prometheus", mod_version, out / "src")
    for cmd in ("prometheus", "promtool"):
        run(["go", "build", "-ldflags", ldflags, "-o", str(out / cmd), f"./cmd/{cmd}"],
            cwd=src, env={"CGO_ENABLED": "0", **go_env()})
    shutil.copy(src / "documentation/examples/prometheus.yml", out / "prometheus.yml")


def _prometheus_layout() -> Layout:
    return Layout(
        binaries={"/bin/prometheus": "prometheus", "/bin/promtool": "promtool"},
        files={"/etc/prometheus/prometheus.yml": "prometheus.yml"},
        user="65534:65534",
        entrypoint=["/bin/prometheus"],
        cmd=["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
        ports=[9090],
        dirs=["/prometheus"],
        workdir="/prometheus",
        volumes=["/prometheus"],  # as the official image declares (its Dockerfile: VOLUME [ "/prometheus" ])
    )


def build_alertmanager(version: str, out: Path) -> None:
    src = go_module_source("github.com/prometheus/alertmanager", f"v{version.lstrip('v')}", out / "src")
    # The web UI is an Elm/React bundle built with npm, not part of the Go module; ui/web.go embeds
    # ui/app/dist, so a one-page placeholder stands there (the API, amtool and routing are unchanged).
    page = b"<!doctype html><title>Alertmanager</title><p>Web UI not built in this stand-in; the API is at /api/v2/.</p>"
    for ui in ("elm", "mantine"):
        (src / "ui/app/dist" / ui).mkdir(parents=True, exist_ok=True)
        (src / "ui/app/dist" / ui / "index.html").write_bytes(page)
    ldflags = f"-s -w -X github.com/prometheus/common/version.Version={version.lstrip('v')}"
    for cmd in ("alertmanager", "amtool"):
        run(["go", "build", "-tags", "netgo", "-ldflags", ldflags, "-o", str(out / cmd), f"./cmd/{cmd}"],
            cwd=src, env={"CGO_ENABLED": "0", **go_env()})
    shutil.copy(src / "examples/ha/alertmanager.yml", out / "alertmanager.yml")


def _alertmanager_layout() -> Layout:
    return Layout(
        binaries={"/bin/alertmanager": "alertmanager", "/bin/amtool": "amtool"},
        files={"/etc/alertmanager/alertmanager.yml": "alertmanager.yml"},
        user="65534:65534",  # nobody, as upstream's Dockerfile
        entrypoint=["/bin/alertmanager"],
        cmd=["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"],
        ports=[9093],
        dirs=["/etc/alertmanager", "/alertmanager"],  # upstream chowns both to nobody
        volumes=["/alertmanager"],  # upstream declares VOLUME [ "/alertmanager" ]
        workdir="/alertmanager",
    )


def _semver(version: str) -> tuple[int, int, int]:
    major, minor, patch = (int(x) for x in version.lstrip("v").split("."))
    return major, minor, patch


@dataclass(frozen=True)
class Recipe:
    """How a stand-in is made: the build of its binaries, the image around them, the modules fetched."""

    build: Callable[[str, Path], None]
    layout: Callable[[], Layout]
    modules: Callable[[], list[str]]  # every Go module path the build fetches


def _collector_modules() -> list[str]:
    manifest = yaml.safe_load((HERE / "otelcol-builder.yaml").read_text())
    gomods = [entry["gomod"].split()[0] for entries in manifest.values() if isinstance(entries, list)
              for entry in entries if isinstance(entry, dict)]
    replaced = [module for line in manifest.get("replaces", []) for module in line.split("=>")[1].split()[:1]]
    return ["go.opentelemetry.io/collector/cmd/builder", "go.opentelemetry.io/collector/otelcol", *gomods, *replaced]


# Official image name -> its recipe. Only permissively licensed components (ALLOWED_MODULES).
RECIPES: dict[str, Recipe] = {
    "otel/opentelemetry-collector-contrib": Recipe(build_collector, _collector_layout, _collector_modules),
    "prom/prometheus": Recipe(build_prometheus, _prometheus_layout, lambda: ["github.com/prometheus/prometheus"]),
    "prom/alertmanager": Recipe(build_alertmanager, _alertmanager_layout,
                                lambda: ["github.com/prometheus/alertmanager"]),
}

# Stand-ins built from more than their version: a change to this file rebuilds them.
RECIPE_SOURCES = {"otel/opentelemetry-collector-contrib": HERE / "otelcol-builder.yaml"}
RECIPE_LABEL = "org.obslab.recipe"
STANDIN_DESCRIPTION = "obslab local stand-in built from the upstream Go module"


def module_licence(module: str) -> str | None:
    """The licence ALLOWED_MODULES records for ``module`` (by path prefix), None when not allowed."""
    return next((licence for prefix, licence in ALLOWED_MODULES.items()
                 if module == prefix or module.startswith(prefix + "/")), None)


# ---------------------------------------------------------------------------------------------


def compose_images(compose_file: Path) -> dict[str, str]:
    """Service name -> image reference, in the compose file's order."""
    services = yaml.safe_load(compose_file.read_text())["services"]
    return {name: svc["image"] for name, svc in services.items() if "image" in svc}


def one_shot_services(compose_file: Path) -> set[str]:
    """Services that run once before others start (``service_completed_successfully``): not part
    of what ``up --wait`` waits for by name, compose starts them for the services needing them."""
    services = yaml.safe_load(compose_file.read_text())["services"]
    return {dep for svc in services.values() for dep, cond in (svc.get("depends_on") or {}).items()
            if isinstance(cond, dict) and cond.get("condition") == "service_completed_successfully"}


def image_present(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def missing_services(compose_file: Path = REPO / "docker-compose.observability.yml") -> dict[str, str]:
    """Service name -> official image, for the services whose image the engine does not have."""
    return {name: image for name, image in compose_images(compose_file).items() if not image_present(image)}


def how_to_provide(service: str, image: str) -> str:
    """The one line printed for an image that can be neither pulled nor built here."""
    archive = image.rpartition(":")[0].replace("/", "_") + ".tar"
    return (f"{service}: {image} is not on this machine, no registry answers, and it is not built here "
            f"(AGPL); provide it from a reachable registry (docker pull {image}) or a saved image "
            f"(docker save {image} -o {archive} where it is, then docker load -i {archive} here, or put "
            f"the archive in OBSLAB_IMAGES_DIR)")


def load_saved_images(directory: Path) -> list[str]:
    """``docker load -i`` every image archive in ``directory``; returns the archives loaded."""
    loaded = []
    for archive in sorted(directory.glob("*.tar*")):
        proc = subprocess.run(["docker", "load", "-q", "-i", str(archive)], capture_output=True, text=True)
        if proc.returncode == 0:
            log(f"{archive.name}: {proc.stdout.strip()}")
            loaded.append(archive.name)
        else:
            log(f"{archive.name}: docker load failed: {proc.stderr.strip()}")
    return loaded


def build_inputs_of(name: str) -> str:
    """Fingerprint of what a stand-in's binaries are built from beyond its version ("" when only the
    version): it names the cached build, so a change rebuilds the binaries."""
    source = RECIPE_SOURCES.get(name)
    return hashlib.sha256(source.read_bytes()).hexdigest()[:12] if source else ""


def recipe_of(name: str) -> str:
    """Fingerprint of everything a stand-in image is made from beyond its version: the build inputs
    and the image's layout (user, entrypoint, VOLUMEs...). An image whose label differs is stale and
    is made again, from the cached binaries when only the layout changed."""
    layout = json.dumps(dataclasses.asdict(RECIPES[name].layout()), sort_keys=True)
    return hashlib.sha256(f"{build_inputs_of(name)}\n{layout}".encode()).hexdigest()[:12]


def _stale_standin(image: str) -> bool:
    """True for a stand-in built by this tool from an older recipe (an official image never is)."""
    proc = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image],
                          capture_output=True, text=True)
    labels = json.loads(proc.stdout or "null") or {}
    built_here = labels.get("org.opencontainers.image.description") == STANDIN_DESCRIPTION
    name = image.rpartition(":")[0]
    return built_here and name in RECIPES and labels.get(RECIPE_LABEL, "") != recipe_of(name)


def try_pull(image: str) -> bool:
    proc = subprocess.run(["docker", "pull", "-q", image], capture_output=True, text=True, timeout=300)
    return proc.returncode == 0


def ensure_image(image: str, pull: bool) -> str:
    """Make one image available; returns how ('present', 'pulled', 'built', 'cached build', 'missing')."""
    if image_present(image) and not _stale_standin(image):
        return "present"
    if pull and try_pull(image):
        return "pulled"
    name, _, tag = image.rpartition(":")
    if name not in RECIPES:
        return "missing"
    recipe = RECIPES[name]
    version = tag.lstrip("v")
    inputs = build_inputs_of(name)
    out = CACHE / "build" / f"{name.replace('/', '_')}-{version}{'-' + inputs if inputs else ''}"
    done_marker = out / ".done"
    how = "cached build"
    if not done_marker.exists():
        how = "built"
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        log(f"{image}: building from the upstream Go module (this takes minutes the first time)")
        recipe.build(version, out)
        done_marker.write_text(f"{time.monotonic() - started:.0f}\n")
        src = out / "src"
        if src.exists():
            shutil.rmtree(src)  # keep the binary, not the copied source tree
    docker_build(image, recipe.layout(), out, version, recipe_of(name))
    return how


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose", type=Path, default=REPO / "docker-compose.observability.yml")
    parser.add_argument("--only", nargs="*", help="image names (without tag) to handle")
    parser.add_argument("--no-pull", action="store_true", help="do not try the registry first")
    parser.add_argument("--list-present", action="store_true",
                        help="only print the services whose images the engine has, one line")
    parser.add_argument("--missing", action="store_true",
                        help="only print the services whose images the engine lacks, one line")
    args = parser.parse_args(argv)
    images = compose_images(args.compose)
    if args.list_present or args.missing:
        once, absent = one_shot_services(args.compose), missing_services(args.compose)
        print(" ".join(name for name in images if name not in once and (name in absent) == args.missing))
        return 0
    images_dir = os.environ.get("OBSLAB_IMAGES_DIR")
    if images_dir and missing_services(args.compose):
        load_saved_images(Path(images_dir))
    CACHE.mkdir(parents=True, exist_ok=True)
    services_of: dict[str, list[str]] = {}
    for service, image in images.items():
        services_of.setdefault(image, []).append(service)
    for image, services in services_of.items():  # an image two services use (the one-shot's) once
        if args.only and image.rpartition(":")[0] not in args.only:
            continue
        started = time.monotonic()
        how = ensure_image(image, pull=not args.no_pull)
        if how == "missing":
            log(how_to_provide(services[0], image))
        else:
            log(f"{image}: {how} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
