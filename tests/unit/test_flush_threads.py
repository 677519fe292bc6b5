"""Issue 19, defect 3: force_flush against a collector that accepts connections and never answers
leaves nothing behind: no thread per call."""

from __future__ import annotations

import socket
import threading
import time

from obslab import init_telemetry


class SilentCollector:
    """Accepts every connection and never answers (one thread, started before the count)."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = self.socket.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for connection in self.held:
            connection.close()
        self.socket.close()


def test_repeated_flushes_against_a_silent_collector_leave_no_thread_behind(fresh, monkeypatch):
    silent = SilentCollector()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")  # seconds, as opentelemetry-python reads it
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
        t = init_telemetry("svc", otlp_endpoint=f"127.0.0.1:{silent.port}")
        with t.span("waiting for a reply that never comes"):
            pass
        assert t.force_flush(0.01) is False  # the span is kept by the outage buffer, not delivered
        # The first export attempt ends with the exporter's timeout (1 s), on the flush worker: then the
        # outage buffer keeps the span and its one sender thread runs. From there on, nothing is added.
        (buffer,) = t._outage_buffers()
        deadline = time.monotonic() + 10
        while buffer.buffered == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = threading.active_count()
        started = time.monotonic()
        for _ in range(200):
            t.force_flush(0.01)
        assert time.monotonic() - started < 10
        assert threading.active_count() <= before, [th.name for th in threading.enumerate()]
        t.shutdown(0.5)
    finally:
        silent.close()
