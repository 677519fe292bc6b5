"""The image tool on the real Docker engine: saved images in OBSLAB_IMAGES_DIR are loaded, and an image
it can neither load, pull nor build is named in one line, without failing the run."""

from __future__ import annotations

import subprocess
import sys
import uuid

from lab import REPO, image

TOOL = [sys.executable, str(REPO / "tools/images/build_images.py"), "--no-pull"]


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def test_an_image_saved_in_obslab_images_dir_is_loaded_before_anything_else_is_tried(tmp_path):
    name = f"obslab-test/saved-{uuid.uuid4().hex[:8]}:1"
    assert _docker("tag", image("otel-collector"), name).returncode == 0
    try:
        (tmp_path / "images").mkdir(exist_ok=True)
        assert _docker("save", name, "-o", str(tmp_path / "images" / "saved.tar")).returncode == 0
        assert _docker("rmi", name).returncode == 0
        compose = tmp_path / "compose.yml"
        compose.write_text(f"services:\n  saved:\n    image: {name}\n")
        result = subprocess.run([*TOOL, "--compose", str(compose)], capture_output=True, text=True, timeout=300,
                                env={"PATH": "/usr/bin:/bin", "OBSLAB_IMAGES_DIR": str(tmp_path / "images")})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "saved.tar" in result.stdout and f"{name}: present" in result.stdout
        assert _docker("image", "inspect", name).returncode == 0
    finally:
        _docker("rmi", name)


def test_an_image_it_cannot_have_is_named_in_one_line_and_the_run_goes_on(tmp_path):
    name = f"obslab-test/absent-{uuid.uuid4().hex[:8]}:1"
    compose = tmp_path / "compose.yml"
    compose.write_text(f"services:\n  absent:\n    image: {name}\n  collector:\n    image: {image('otel-collector')}\n")
    result = subprocess.run([*TOOL, "--compose", str(compose)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if name in line]
    assert len(lines) == 1 and lines[0].startswith(f"[images] absent: {name} is not on this machine")
    missing = subprocess.run([*TOOL, "--compose", str(compose), "--missing"], capture_output=True, text=True)
    assert missing.stdout.split() == ["absent"]
