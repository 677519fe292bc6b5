"""Issue 19, defect 2: each log line is printed once, whatever handlers the application has
(on a named logger that propagates, as Django and many dictConfig files set it up, or on the root
logger added after init)."""

from __future__ import annotations

import subprocess
import sys

import pytest

APP = """
import logging, sys
from obslab import init_telemetry
SETUP_BEFORE
init_telemetry("svc", otlp_endpoint="127.0.0.1:1")
SETUP_AFTER
logging.getLogger("app.views").warning("one line please")
"""

NAMED = """
handler = logging.StreamHandler(sys.stderr)
logging.getLogger("app").addHandler(handler)
logging.getLogger("app").setLevel(logging.INFO)
"""
ROOT = """
logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))
"""
DICT_CONFIG = """
import logging.config
logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "loggers": {"app": {"handlers": ["console"], "level": "INFO", "propagate": True}}})
"""


def printed(tmp_path, before: str = "", after: str = "") -> int:
    code = APP.replace("SETUP_BEFORE", before).replace("SETUP_AFTER", after)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    return (out.stdout + out.stderr).count("one line please")


@pytest.mark.parametrize("before, after", [(NAMED, ""), ("", NAMED), ("", ROOT), (DICT_CONFIG, ""), ("", DICT_CONFIG)],
                         ids=["named-before", "named-after", "root-after", "dictconfig-before", "dictconfig-after"])
def test_a_line_the_application_prints_itself_is_not_printed_again(tmp_path, before, after):
    assert printed(tmp_path, before, after) == 1


def test_without_a_handler_of_the_application_obslab_prints_the_line(tmp_path):
    assert printed(tmp_path) == 1
