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


RICH = """
from rich.logging import RichHandler
logging.getLogger().addHandler(RichHandler(show_time=False, show_path=False))
"""
RICH_STDERR = """
from rich.console import Console
from rich.logging import RichHandler
logging.getLogger("app").addHandler(RichHandler(console=Console(stderr=True), show_time=False, show_path=False))
"""
QUEUE = """
import atexit, logging.handlers, queue
q = queue.SimpleQueue()
listener = logging.handlers.QueueListener(q, logging.StreamHandler(sys.stderr))
listener.start()
atexit.register(listener.stop)
queue_handler = logging.handlers.QueueHandler(q)
queue_handler.listener = listener  # as logging.config.dictConfig sets it up (Python 3.12)
logging.getLogger().addHandler(queue_handler)
"""


@pytest.mark.parametrize("before, after", [(RICH, ""), ("", RICH), (RICH_STDERR, ""), ("", QUEUE)],
                         ids=["rich-root-before", "rich-root-after", "rich-named-stderr", "queue-handler-after"])
def test_a_line_printed_by_a_console_handler_that_is_not_a_stream_handler_is_not_printed_again(tmp_path, before, after):
    assert printed(tmp_path, before, after) == 1


def test_a_file_handler_of_the_application_does_not_stop_obslab_printing(tmp_path):
    to_file = "logging.getLogger().addHandler(logging.FileHandler('app.log'))\n"
    assert printed(tmp_path, "", to_file) == 1
    assert (tmp_path / "app.log").read_text().count("one line please") == 1
