"""obslab's pytest fixtures as a user runs them: the documented example test (examples/web_api/test_app.py,
docs/testing.md) in its own pytest process, its obslab_lab using the running lab (this suite's, as
`obslab lab up` records it). telemetry_capture is proven by tests/unit/test_testing_plugin.py and the
suite's recording fixture; obslab_lab by every test here (the suite's `lab` is built on it)."""

from __future__ import annotations

import json
import subprocess
import sys

from lab import REPO


def test_the_documented_example_test_passes_against_the_running_lab(lab, tmp_path):
    home = tmp_path / "obslab-home"
    home.mkdir()
    (home / "lab.json").write_text(json.dumps({"project": lab.project, "env_file": str(lab.env_file)}))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(REPO / "examples/web_api/test_app.py")],
                            cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OBSLAB_HOME": str(home)})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout
