"""The outage buffer: an OTLP span or log exporter that keeps, in order, what it could not send
while the collector was unreachable, and sends it when the collector answers again.

It sits between the SDK's batch processor and the OTLP exporter, so everything it does runs on
the SDK's background threads: the application's ``span.end()`` and ``log.info()`` never wait on
it. The first failed export starts the outage: that batch and every later one go to a bounded
queue, counted in records (``capacity``); beyond it the oldest records are dropped and counted.
One background thread checks with a TCP connection (cheap, and answered at once when refused)
whether the collector is back, then sends the queue oldest first, before anything newer. A batch
that still fails while the collector accepts connections is retried with back-off and dropped
after a few attempts (``rejected``), so that one bad batch cannot hold the queue forever.

At exit (``shutdown``) the queue is sent if the collector answers, within the time given;
what is left is written to the spool directory when there is one (and sent by the next process
that starts with it), otherwise counted as lost. The spool files a process takes at start stay on
disk until the collector has accepted them (see :mod:`obslab._spool`).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Sequence

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace.export import SpanExportResult

from obslab import _diagnostics, _spool
from obslab._export import address, exporting, is_otlp, unreachable
from obslab.config import Settings

DEFAULT_CAPACITY = 10_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024  # encoded bytes per signal (OBSLAB_OUTAGE_BUFFER_BYTES)
PROBE_INTERVAL = 1.0  # seconds between reachability checks while the collector is down
MAX_BACKOFF = 30.0  # seconds between attempts at a batch the reachable collector refused
# Retries of one batch while the collector accepts connections (about 2.5 minutes with the back-off):
# a collector starting up, or refusing data under memory pressure, is waited for; only a batch it keeps
# refusing for longer than that is dropped.
REJECTED_AFTER = 8
# At exit, attempts at the refused queue at most this many seconds apart (the time left is short), and
# no batch is dropped as rejected: what the deadline leaves is spooled or counted instead.
EXIT_PAUSE = 1.0
# At exit, how long an attempt still under way at the deadline gets to end once the exporter is shut down
# (which ends it): it is then back in the queue, and counted with it.
EXIT_GRACE = 0.5

_RESULTS = {"traces": SpanExportResult, "logs": LogRecordExportResult}
NOUNS = {"traces": "spans", "logs": "log records"}  # what a record of each signal is called in messages


class _Batch:
    """Records the batch processor handed over, still as SDK objects (sent at once, or encoded
    when kept)."""

    __slots__ = ("records",)

    def __init__(self, records: Sequence[Any]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)


class _Encoded:
    """An OTLP request waiting for the collector: a kept batch, or a file an earlier process left in
    the spool (``claim``: the locked file, removed once the collector has it)."""

    __slots__ = ("message", "size", "nbytes", "signal", "claim", "trimmed")

    def __init__(self, signal: str, message: _spool.Request, nbytes: int | None = None,
                 claim: _spool.Claimed | None = None) -> None:
        self.signal, self.message, self.claim, self.trimmed = signal, message, claim, False
        self.size = _spool.count(signal, message)
        self.nbytes = message.ByteSize() if nbytes is None else nbytes

    def __len__(self) -> int:
        return self.size

    def drop_oldest(self, records: int, nbytes: int) -> int:
        """Drop the oldest ``records`` records, then more until ``nbytes`` bytes are freed; how many."""
        before = self.size
        if records > 0:
            _spool.drop_oldest(self.signal, self.message, records)
        freed = self.nbytes - self.message.ByteSize()
        if nbytes > freed:
            _spool.drop_oldest_bytes(self.signal, self.message, nbytes - freed)
        self.size = _spool.count(self.signal, self.message)
        self.nbytes = self.message.ByteSize()
        self.trimmed = True
        return before - self.size


def buffered(exporter: Any, settings: Settings, signal: str) -> Any:
    """An OTLP ``exporter`` behind an outage buffer sized by the settings; any other exporter, or
    any exporter when ``outage_buffer`` is 0, as it is."""
    where = address(exporter) if is_otlp(exporter) else None
    if settings.outage_buffer == 0 or where is None:
        return exporter
    return OutageBuffer(exporter, signal, where, settings.outage_buffer, max_bytes=settings.outage_buffer_bytes,
                        spool_dir=settings.spool_dir, send_request=_spool.sender(signal, exporter),
                        exit_timeout=settings.shutdown_timeout)


class OutageBuffer:
    """Wraps the OTLP ``exporter`` of ``signal`` ("traces" or "logs") exporting to ``address``.

    ``capacity`` bounds the records kept and ``max_bytes`` their encoded size; ``spool_dir``
    (optional) is where what is unsent at exit goes (within the same bounds), and where earlier
    processes' leftovers are taken from; ``send_request`` sends one encoded request (default:
    :func:`obslab._spool.sender` on the exporter's transport); ``exit_timeout`` bounds the time
    ``shutdown`` spends sending the queue.
    """

    def __init__(self, exporter: Any, signal: str, address: tuple[str, int], capacity: int = DEFAULT_CAPACITY, *,
                 max_bytes: int = DEFAULT_MAX_BYTES, spool_dir: str | None = None,
                 send_request: _spool.Sender | None = None, exit_timeout: float = 2.0) -> None:
        if signal not in _RESULTS:
            raise ValueError(f"signal={signal!r}: the outage buffer holds traces or logs")
        self.exporter = exporter
        self.signal = signal
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.exit_timeout = exit_timeout
        self.dropped = 0  # records dropped beyond the capacity, since the start
        self.rejected = 0  # records of batches the reachable collector kept refusing
        self.spooled = 0  # records written to the spool at exit
        self.lost = 0  # records unsent at exit, with no spool to keep them
        self.queue_dropped = 0  # records the SDK's batch processor in front dropped on its full queue
        self._addresses = {address}
        self._result = _RESULTS[signal]
        self._spool = _spool.Spool(spool_dir, signal, capacity, max_bytes) if spool_dir else None
        self._send_request = send_request if send_request is not None else _spool.sender(signal, exporter)
        self._state = "open"  # then "closing" (sending what is left at exit), then "closed"
        self._down = False  # the last attempt failed: check reachability before the next one
        self._failures = 0  # failed attempts at the oldest batch while the collector was reachable
        self._unreported = 0  # dropped since the last warning
        self._exporter_shut = False
        self._abandoned: Any = None  # the attempt the exit could not wait for (counted then)
        self._reset()
        self._refill()
        if hasattr(os, "register_at_fork"):
            reset = weakref.WeakMethod(self._reset_in_child)

            def reset_in_child() -> None:
                method = reset()
                if method is not None:
                    method()
            os.register_at_fork(after_in_child=reset_in_child)

    def _reset_in_child(self) -> None:
        for item in self._items:  # the parent's spool files: its own to send
            if isinstance(item, _Encoded) and item.claim is not None:
                item.claim.release()
        self._reset()

    def _reset(self) -> None:
        """Fresh queue, locks and thread (at start, and in a forked child: the parent's queue is the
        parent's to send)."""
        self._items: deque[_Encoded] = deque()
        self._inflight: Any = None  # what the background sender is sending, out of the queue
        self._records = 0
        self._bytes = 0
        self._lock = threading.Lock()  # guards the queue and the counters
        self._sending = threading.Lock()  # one send at a time, so that order holds
        self._work = threading.Event()
        self._stop = threading.Event()
        self._nudge = threading.Event()  # ends a pause between attempts (force_flush, shutdown)
        self._halt = threading.Event()  # ends the exit's attempts (a second shutdown call)
        self._thread: threading.Thread | None = None

    @property
    def buffered(self) -> int:
        """Records waiting for the collector."""
        return self._records

    @property
    def buffered_bytes(self) -> int:
        """Encoded bytes waiting for the collector."""
        return self._bytes

    # --- the exporter interface the batch processor calls ----------------------------------

    def export(self, batch: Sequence[Any]) -> Any:
        """Send ``batch`` now if nothing is waiting and the collector takes it; otherwise queue it
        behind what is waiting. Returns at once whenever the collector is known to be down."""
        if not batch:
            return self._result.SUCCESS
        item = _Batch(list(batch))
        if self._state == "closed":
            self._set_aside([item])
            return self._result.FAILURE
        if self._sending.acquire(blocking=False):
            try:
                if not self._items and self._deliver(item):
                    return self._result.SUCCESS
            finally:
                self._sending.release()
        self._keep(item, failed=True)
        return self._result.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Have the background sender send what is waiting now, and wait for it at most
        ``timeout_millis`` (no thread of its own: a call never leaves anything behind); True when
        nothing is left."""
        if not self._items:
            return True
        deadline = time.monotonic() + timeout_millis / 1000
        if unreachable(self._addresses, timeout=min(0.2, max(deadline - time.monotonic(), 0.001))):
            return False
        self._down = False
        self._start_thread()
        self._work.set()
        self._nudge.set()
        while self._items and time.monotonic() < deadline and self._thread is not None:
            time.sleep(min(0.005, max(deadline - time.monotonic(), 0)))
        return not self._items

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Send what is waiting if the collector answers, through its refusals (within ``exit_timeout``
        and ``timeout_millis``), then spool or count what is left. Called again while the first call
        still sends, it stops that at once."""
        deadline = time.monotonic() + min(timeout_millis / 1000, self.exit_timeout)
        first = self._state == "open"
        if first:
            self._state = "closing"
        else:
            self._halt.set()  # ends the first call's pause between attempts
        self._stop.set()
        self._work.set()
        self._nudge.set()
        if first:
            self._await_sender(deadline)
            if self._items and not unreachable(self._addresses, timeout=min(0.2, self.exit_timeout / 4)):
                self._down = False
                self._drain_until(deadline)
        with self._lock:
            self._state = "closed"
            left, self._items, self._records, self._bytes = list(self._items), deque(), 0, 0
        self._set_aside(left)
        self._report_drops()
        self._shut_exporter()  # interrupts a retry back-off still running in the exporter

    def _shut_exporter(self) -> None:
        if not self._exporter_shut:
            self._exporter_shut = True
            self.exporter.shutdown()

    def _await_sender(self, deadline: float) -> None:
        """Wait (until ``deadline``) for the background sender to stop: a batch it has taken from the
        queue to send is delivered or back in the queue before the exit looks at the queue (else a
        queue of one batch looks empty, and that batch is neither sent again nor counted)."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():  # an attempt under way at the deadline (a collector that never answers)
            self._shut_exporter()  # ends it: the batch goes back to the queue, which the exit counts
            thread.join(EXIT_GRACE)
        if thread.is_alive():  # an exporter its shutdown does not interrupt: count the batch it holds
            with self._lock:
                item, self._inflight = self._inflight, None
                self._abandoned = item
            if item is not None:
                if getattr(item, "claim", None) is not None and not item.trimmed:
                    self.spooled += len(item)  # its file stays in the spool (the lock goes with the process)
                else:
                    self.lost += len(item)

    def _drain_until(self, deadline: float) -> None:
        """Send the queue at exit, through refusals (a collector pushing back): attempt after attempt,
        at most :data:`EXIT_PAUSE` apart, until it is empty, the collector stops accepting connections,
        ``deadline`` passes or a second shutdown call halts it."""
        while self._items and self._state == "closing":
            delay = self._drain(deadline)
            left = deadline - time.monotonic()
            if not delay or left <= 0 or (self._down and unreachable(self._addresses, timeout=min(0.2, left))):
                return
            self._down = False
            if self._halt.wait(min(delay, left, EXIT_PAUSE)):
                return

    # --- the queue ------------------------------------------------------------------------

    def _keep(self, item: _Batch | _Encoded, failed: bool) -> None:
        """Queue ``item`` (encoded) behind what waits; drop the oldest records beyond the bounds."""
        if isinstance(item, _Batch):
            item = _Encoded(self.signal, _spool.encode(self.signal, item.records))
        with self._lock:
            if self._state == "closed":
                closed = True
            else:
                closed = False
                starting = not self._items
                self._items.append(item)
                self._records += item.size
                self._bytes += item.nbytes
                self._down = self._down or failed
                self._trim()
        if closed:
            self._set_aside([item])
            return
        if starting and failed:
            where = ", ".join(f"{host}:{port}" for host, port in self._addresses)
            _diagnostics.notice(f"{self.signal} outage",
                                f"export to {where} failed: keeping up to {self.capacity} "
                                f"{NOUNS[self.signal]} (OBSLAB_OUTAGE_BUFFER) until the collector answers")
        self._start_thread()
        self._work.set()

    def _trim(self) -> None:
        """Drop the oldest records beyond the capacity and the byte bound (the lock is held)."""
        dropped = 0
        while self._items and (self._records > self.capacity or self._bytes > self.max_bytes):
            oldest = self._items[0]
            excess_records = self._records - self.capacity
            excess_bytes = self._bytes - self.max_bytes
            if excess_records >= oldest.size or excess_bytes >= oldest.nbytes:
                self._items.popleft()
                self._records -= oldest.size
                self._bytes -= oldest.nbytes
                dropped += oldest.size
                if oldest.claim is not None:
                    oldest.claim.sent()  # dropped: its file goes too
                continue
            before = oldest.nbytes
            removed = oldest.drop_oldest(max(excess_records, 0), max(excess_bytes, 0))
            self._records -= removed
            self._bytes -= before - oldest.nbytes
            dropped += removed
            if not removed or not oldest.size:  # nothing left worth keeping of it
                self._items.popleft()
                self._records -= oldest.size
                self._bytes -= oldest.nbytes
                dropped += oldest.size
                if oldest.claim is not None:
                    oldest.claim.sent()
        self.dropped += dropped
        self._unreported += dropped

    def _refill(self) -> bool:
        """Take spool files left by other processes into the queue, as far as they fit; True if any."""
        if self._spool is None or self._state != "open":
            return False
        with self._lock:
            room_records, room_bytes = self.capacity - self._records, self.max_bytes - self._bytes
        try:
            claimed = self._spool.claim(room_records, room_bytes)
        except Exception as error:  # an unreadable directory must not stop the application
            _diagnostics.report("reading the spool", error)
            return False
        for claim, message, nbytes in claimed:
            self._keep(_Encoded(self.signal, message, nbytes, claim), failed=False)
        return bool(claimed)

    def _start_thread(self) -> None:
        if self._thread is None and self._state == "open":
            self._thread = threading.Thread(target=self._run, name=f"obslab-outage-{self.signal}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        """The background sender: waits for queued work, then drains it, pausing while the
        collector is down or refuses."""
        while not self._stop.is_set():
            self._work.wait()
            self._work.clear()
            while self._items and not self._stop.is_set():
                delay = self._drain()
                if delay:
                    self._nudge.wait(delay)
                    if self._nudge.is_set():
                        self._nudge.clear()
                        self._down = False
                elif not self._items:
                    self._refill()  # more files other processes left in the spool

    def _drain(self, deadline: float | None = None) -> float:
        """Send the queue oldest first until it is empty (0 is returned) or an attempt fails (the
        seconds to wait before the next one are returned), or past ``deadline``. Without a deadline
        (the background sender) it also stops once shutdown begins: the exit sends the rest."""
        with suppress_instrumentation(), exporting():  # the sends must not be traced or logged back to us
            while self._state != "closed" and (time.monotonic() < deadline if deadline is not None
                                               else not self._stop.is_set()):
                with self._sending:
                    if self._down and unreachable(self._addresses):
                        return PROBE_INTERVAL
                    self._down = False
                    with self._lock:
                        if not self._items:
                            break
                        item = self._items.popleft()
                        self._records -= item.size
                        self._bytes -= item.nbytes
                        self._inflight = item
                    if self._deliver(item):
                        self._inflight = None
                        self._failures = 0
                        continue
                    delay = self._failed(item)
                    self._inflight = None
                    if delay:
                        return delay
        if not self._items:
            self._report_drops()
        return 0.0

    def _failed(self, item: Any) -> float:
        """Put back a batch that could not be sent; the delay before the next attempt (0: next)."""
        if unreachable(self._addresses):
            self._down = True
            delay = PROBE_INTERVAL
        else:
            self._failures += 1
            if self._failures >= REJECTED_AFTER and self._state == "open":  # it answers but keeps refusing it
                self._failures = 0
                self.rejected += len(item)
                if isinstance(item, _Encoded) and item.claim is not None:
                    item.claim.sent()
                _diagnostics.notice(f"{self.signal} rejected", f"the collector refused a batch of {len(item)} "
                                    f"{NOUNS[self.signal]} {1 + REJECTED_AFTER} times: dropped")
                return 0.0
            self._down = True  # check again before the next attempt
            # At once the first time (the exporter has just opened a new channel), then 2, 4, 8... s.
            delay = 0.0 if self._failures == 1 else min(2.0 ** (self._failures - 1), MAX_BACKOFF)
        with self._lock:
            if item is self._abandoned:  # the exit counted it already
                return 0.0
            closed = self._state == "closed"
            if not closed:
                self._items.appendleft(item)
                self._records += item.size
                self._bytes += item.nbytes
                self._trim()
        if closed:
            self._set_aside([item])
        return delay

    def _deliver(self, item: _Batch | _Encoded) -> bool:
        try:
            if isinstance(item, _Batch):
                return self.exporter.export(item.records) == self._result.SUCCESS
            if not self._send_request(item.message):
                return False
        except Exception as error:  # an exporter bug must not stop the queue
            _diagnostics.report(f"{self.signal} export", error)
            return False
        if item.claim is not None:
            item.claim.sent()  # accepted: the spool file goes now, not before
        return True

    def _set_aside(self, items: list[Any]) -> None:
        """What is unsent at exit: into the spool if there is one (a file taken from it stays
        there), else counted as lost."""
        for item in items:
            claim = getattr(item, "claim", None)
            if claim is not None and not item.trimmed:
                claim.release()  # still on disk, as it was: the next process sends it
                self.spooled += len(item)
                continue
            if not len(item):
                if claim is not None:
                    claim.sent()
                continue
            if self._spool is not None:
                try:
                    request = item.message if isinstance(item, _Encoded) else _spool.encode(self.signal, item.records)
                    self._spool.write(request, len(item), replacing=claim.path if claim is not None else None)
                    self.spooled += len(item)
                    if claim is not None:
                        claim.sent()  # replaced by its trimmed copy
                    continue
                except Exception as error:  # a full disk, say: the records are lost, not the app
                    _diagnostics.report("writing the spool", error)
            if claim is not None:
                claim.release()
            self.lost += len(item)
        if self._spool is not None and self._spool.dropped:
            dropped, self._spool.dropped = self._spool.dropped, 0
            self.spooled -= min(dropped, self.spooled)
            self.dropped += dropped
            _diagnostics.warn(f"{self.signal}: {dropped} {NOUNS[self.signal]} dropped from the spool {self._spool.directory}"
                              f" (the oldest, beyond OBSLAB_OUTAGE_BUFFER={self.capacity} or "
                              f"OBSLAB_OUTAGE_BUFFER_BYTES={self.max_bytes})")

    def _report_drops(self) -> None:
        """One warning line with the records dropped beyond the capacity since the last one."""
        with self._lock:
            dropped, self._unreported = self._unreported, 0
        if dropped:
            _diagnostics.warn(f"{self.signal}: {dropped} {NOUNS[self.signal]} dropped during the collector outage "
                              f"(the oldest, beyond OBSLAB_OUTAGE_BUFFER={self.capacity}"
                              f"{'' if self.max_bytes == DEFAULT_MAX_BYTES else f' or OBSLAB_OUTAGE_BUFFER_BYTES={self.max_bytes}'}"
                              "); the rest were kept in order")


class QueueDrops:
    """The metrics object of an SDK batch processor, which also counts the records the processor drops
    on its full queue (before they reach ``buffer``) into ``buffer.queue_dropped``, for the exit's report."""

    def __init__(self, metrics: Any, buffer: OutageBuffer) -> None:
        self._metrics, self._buffer, self._lock = metrics, buffer, threading.Lock()

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        if error_type == "queue_full":
            with self._lock:
                self._buffer.queue_dropped += count
        self._metrics.drop_items(count, error_type)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metrics, name)


def observe_drops(buffers: Sequence[OutageBuffer]) -> Callable[[Any], list[Any]]:
    """The callback of the ``obslab.outage.dropped`` counter: records dropped per signal and reason."""
    from opentelemetry.metrics import Observation

    def observe(_options: Any) -> list[Any]:
        observations = []
        for buffer in buffers:
            for reason, value in (("buffer_full", buffer.dropped), ("rejected", buffer.rejected)):
                observations.append(Observation(value, {"signal": buffer.signal, "reason": reason}))
        return observations
    return observe
