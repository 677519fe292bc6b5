"""Issue 26, section 3: ``shutdown()`` leaves the root logger at the level the application gave it.

Differential property test: a generated sequence of the application's own logging calls (setLevel,
basicConfig, dictConfig), some made before ``init_telemetry()`` and the rest after it, ends with the
root logger at the same level with obslab (installed, then shut down) as without it.
"""

from __future__ import annotations

import logging
import logging.config
import warnings

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from obslab.config import Settings
from obslab.telemetry import Telemetry

LEVELS = st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR])
ACTIONS = st.lists(st.tuples(st.sampled_from(["setLevel", "basicConfig", "dictConfig", "level ="]), LEVELS),
                   max_size=4)


def apply(action: str, level: int) -> None:
    root = logging.getLogger()
    if action == "setLevel":
        root.setLevel(level)
    elif action == "basicConfig":
        logging.basicConfig(level=level)
    elif action == "dictConfig":
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False, "root": {"level": level}})
    else:
        root.level = level  # a plain assignment, as some code does


class CleanRoot:
    """The root logger as in a process that never configured logging, for one run; put back after."""

    def __enter__(self):
        self.root = logging.getLogger()
        self.saved = (self.root.handlers[:], self.root.level)
        self.root.handlers = []
        self.root.setLevel(logging.WARNING)
        return self.root

    def __exit__(self, *exc):
        for handler in self.root.handlers:
            if handler not in self.saved[0]:
                handler.close()
        self.root.handlers = self.saved[0]
        self.root.setLevel(self.saved[1])


def without_obslab(actions) -> int:
    with CleanRoot() as root:
        for action in actions:
            apply(*action)
        return root.level


def with_obslab(before, after, log_level: str) -> int:
    with CleanRoot() as root, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for action in before:
            apply(*action)
        handle = Telemetry(Settings(service_name="svc", console_only=True, log_level=log_level))
        handle._install()
        for action in after:
            apply(*action)
        handle.shutdown(0.5)
        return root.level


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=ACTIONS, after=ACTIONS, log_level=st.sampled_from(["DEBUG", "INFO", "WARNING"]))
def test_after_shutdown_the_root_level_is_what_the_application_set(before, after, log_level):
    # The one case not told apart (documented): after init, the application assigns root.level
    # directly (no setLevel call) the very level obslab had set.
    assume(("level =", logging.getLevelName(log_level)) not in after)
    assert with_obslab(before, after, log_level) == without_obslab(before + after)


def test_an_application_setting_info_after_init_keeps_info():
    assert with_obslab([], [("setLevel", logging.INFO)], "INFO") == logging.INFO
