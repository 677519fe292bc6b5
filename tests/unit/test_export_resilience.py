"""Wire-level behaviour of the OTLP exporters: recovery after an outage, and forked children."""

import os
import time

import pytest

from lab import free_port
from obslab.config import Settings
from obslab.telemetry import Telemetry
from otlp_receiver import TraceReceiver


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def port():
    return free_port()


def test_export_resumes_when_the_collector_comes_back(port):
    handle = Telemetry(Settings(service_name="resume", otlp_endpoint=f"127.0.0.1:{port}"))
    with handle.span("while-down"):
        pass
    handle.force_flush(0.5)  # fails: nothing listens yet
    receiver = TraceReceiver(port).start()
    try:
        with handle.span("after-return"):
            pass
        assert _wait_for(lambda: (handle.force_flush(2) or True) and
                         any(name == "after-return" for name, _ in receiver.spans))
    finally:
        handle.shutdown(1)
        receiver.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_exports_its_own_spans(port):
    receiver = TraceReceiver(port).start()
    handle = Telemetry(Settings(service_name="prefork", otlp_endpoint=f"127.0.0.1:{port}"))
    try:
        with handle.span("parent-before-fork"):
            pass
        handle.force_flush(5)
        pid = os.fork()
        if pid == 0:  # child: a pre-fork worker using the handle made by its parent
            try:
                with handle.span("child-work", child_pid=os.getpid()):
                    pass
                os._exit(0 if handle.force_flush(10) else 3)
            except BaseException:
                os._exit(4)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert _wait_for(lambda: any(name == "child-work" and attrs.get("child_pid") == pid
                                     for name, attrs in receiver.spans))
    finally:
        handle.shutdown(1)
        receiver.stop()
