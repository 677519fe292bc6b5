"""Bounded flushes: the SDK's processors flush in the calling thread and ignore their timeout (a
batch processor waits on an export already under way), so a caller that must return in time hands
the flush to a long-lived worker and waits at most its bound.

One worker thread per signal, started at the first flush and ended by :meth:`Flusher.close`: calls
never leave a thread behind, however many time out. A call made while a flush is waiting to start
joins it; a call made while one runs gets the next one (what it emitted before the call is in it).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Callable


class _Job:
    __slots__ = ("work", "done", "result")

    def __init__(self, work: Callable[[], bool]) -> None:
        self.work, self.done, self.result = work, threading.Event(), False

    def wait(self, deadline: float) -> bool:
        """The job's result, False if it is not done by ``deadline`` (``time.monotonic()``)."""
        return self.done.wait(max(deadline - time.monotonic(), 0.0)) and self.result


class Flusher:
    """Runs one flush at a time on its own thread, named ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._reset()
        if hasattr(os, "register_at_fork"):
            reset = weakref.WeakMethod(self._reset)

            def reset_in_child() -> None:
                method = reset()
                if method is not None:
                    method()
            os.register_at_fork(after_in_child=reset_in_child)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: _Job | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, work: Callable[[], bool]) -> _Job:
        """The flush that will run ``work`` (or an equivalent one already waiting to start)."""
        with self._lock:
            if self._closed:
                job = _Job(work)
                job.done.set()
                return job
            if self._pending is None:
                self._pending = _Job(work)
            job = self._pending
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._wake.set()
        return job

    def close(self) -> None:
        """End the worker once it is idle; later submits are done at once, with False."""
        with self._lock:
            self._closed = True
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                self._wake.clear()
                job, self._pending = self._pending, None
                if job is None:
                    if self._closed:
                        self._thread = None
                        return
                    continue
            try:
                job.result = bool(job.work())
            except Exception:  # noqa: BLE001 - the caller reports a failed flush as False
                job.result = False
            finally:
                job.done.set()
