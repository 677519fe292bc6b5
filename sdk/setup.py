"""The wheel carries the lab's files (compose file, service configs, .env.example) copied from the
repository's top level at build time: one source, never maintained twice (obslab.lab.files says which
files; tests/unit/test_lab_package.py checks the copy equals the source)."""

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _lab_files_module():
    spec = importlib.util.spec_from_file_location("_obslab_lab_files", HERE / "src/obslab/lab/files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithLab(build_py):
    """build_py, plus the lab's files into obslab/_lab/ (not for editable installs: those use the
    repository's files in place)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        files = _lab_files_module()
        if not (REPO / files.COMPOSE_FILE).is_file():
            raise SystemExit(f"{REPO / files.COMPOSE_FILE} is missing: build obslab from a clone of the repository")
        target = Path(self.build_lib) / "obslab" / "_lab"
        if target.exists():
            shutil.rmtree(target)
        for name in files.lab_file_paths(REPO):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)


setup(cmdclass={"build_py": BuildPyWithLab})
