"""The spool: spans and log records still unsent when a process exits, written to a directory as
OTLP protobuf requests (one file per batch), and sent by the next process that starts with the
same directory.

File names start with the signal, the time they were written and end with the record count, so
the next process sends them oldest first and can bound the directory without reading it; a file
is written under a temporary name and renamed, so no reader sees half of one.

A file leaves the directory only once the collector has accepted it. A process claims a file by
holding an exclusive lock on it (``flock``) for as long as it keeps it in memory: two processes
starting at once never send the same file, and a process that dies (even by SIGKILL) drops its
locks with it, so its files are there for the next start. Sending is at least once: a process
killed between the collector's answer and the file's removal sends that file again next time.

The directory is the user's alone (0700, a looser existing one owned by the user is tightened) and
its files are 0600: spans may carry LLM messages. Only regular files owned by the user are sent.
It holds at most as much as one outage buffer per signal, in records and in bytes (the oldest
files are deleted beyond it). A file that is not a valid request is renamed ``*.bad``; at most
:data:`MAX_BAD_FILES` of them and :data:`MAX_BAD_BYTES` in all are kept, the newest.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from obslab import _diagnostics

try:
    import fcntl
except ImportError:  # Windows: no cross-process claim; two processes starting at once may both send a file
    fcntl = None  # type: ignore[assignment]

Request = Any  # ExportTraceServiceRequest or ExportLogsServiceRequest
Sender = Callable[[Request], bool]

MAX_BAD_FILES = 10  # damaged files kept for a look, the newest
MAX_BAD_BYTES = 8 * 1024 * 1024  # and at most this many bytes of them in all
_REQUESTS = {"traces": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest}
_NAME = re.compile(r"^(traces|logs)-(\d+)-\d+-\d+(?:-(\d+))?\.pb$")  # signal, written (ns), records
_sequence = itertools.count()  # orders the files one process writes within the same nanosecond
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def encode(signal: str, batch: Sequence[Any]) -> Request:
    """The OTLP request of a batch of spans or log records."""
    return encode_spans(batch) if signal == "traces" else encode_logs(batch)


def _record_lists(signal: str, request: Request) -> list[Any]:
    """The repeated fields holding the records of ``request``, in order."""
    if signal == "traces":
        return [scope.spans for resource in request.resource_spans for scope in resource.scope_spans]
    return [scope.log_records for resource in request.resource_logs for scope in resource.scope_logs]


def count(signal: str, request: Request) -> int:
    """How many spans or log records ``request`` holds."""
    return sum(len(records) for records in _record_lists(signal, request))


def drop_oldest(signal: str, request: Request, number: int) -> None:
    """Remove the first ``number`` records of ``request`` (in place)."""
    for records in _record_lists(signal, request):
        if number <= 0:
            return
        removed = min(number, len(records))
        del records[:removed]
        number -= removed


def drop_oldest_bytes(signal: str, request: Request, nbytes: int) -> int:
    """Remove the fewest first records of ``request`` (in place) that make it at least ``nbytes``
    smaller; the number removed."""
    target = request.ByteSize() - nbytes
    removed = 0
    for records in _record_lists(signal, request):
        while len(records) and request.ByteSize() > target:
            first = 0
            freed = 0
            while first < len(records) and request.ByteSize() - freed > target:
                freed += records[first].ByteSize() + 2  # a record, its tag and (at least) one length byte
                first += 1
            del records[:first]
            removed += first
        if request.ByteSize() <= target:
            break
    return removed


class Claimed:
    """A spool file this process holds (locked) until it is sent or the process exits."""

    __slots__ = ("path", "_fd")

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    def sent(self) -> None:
        """The collector has it: the file goes."""
        try:
            self.path.unlink()
        except OSError:
            pass
        self.release()

    def release(self) -> None:
        """Let the next process have the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Spool:
    """The files of one signal in a spool directory, bounded to ``max_records`` records and
    ``max_bytes`` bytes (the oldest files are deleted beyond)."""

    def __init__(self, directory: str | os.PathLike[str], signal: str, max_records: int | None = None,
                 max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.signal = signal
        self.max_records, self.max_bytes = max_records, max_bytes
        self.dropped = 0  # records of files deleted beyond the bound
        self._checked = False

    def _prepare(self, create: bool) -> bool:
        """The directory, made or tightened to 0700 once; False when it is not there."""
        if not self._checked:
            try:
                if create:
                    self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                info = self.directory.stat()
            except FileNotFoundError:
                return False
            self._checked = True
            if _mode(info.st_mode) & 0o077 and info.st_uid == _uid():
                os.chmod(self.directory, 0o700)
                _diagnostics.notice("spool", f"{self.directory} was readable by others (mode "
                                    f"{_mode(info.st_mode):o}): now 0700, the spool's mode")
        return self.directory.is_dir()

    def write(self, request: Request, records: int | None = None, replacing: Path | None = None) -> None:
        """Write one request as a file (0600) that the next process will send; then delete the
        oldest files beyond the bound. A trimmed copy of a spool file (``replacing``) takes that
        file's time, so that it keeps its place in the order."""
        self._prepare(create=True)
        records = count(self.signal, request) if records is None else records
        written = int(_NAME.match(replacing.name).group(2)) if replacing is not None else time.time_ns()
        name = f"{self.signal}-{written:020d}-{os.getpid()}-{next(_sequence):06d}-{records}.pb"
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(request.SerializeToString())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        temporary.replace(self.directory / name)
        if replacing is not None:
            replacing.unlink(missing_ok=True)  # replaced: not counted against the bound with its copy
        self._bound()

    def _files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob(f"{self.signal}-*.pb") if _NAME.match(p.name))

    def _bound(self) -> None:
        """Delete the oldest files (not held by a running process) beyond the records and bytes bound."""
        if self.max_records is None and self.max_bytes is None:
            return
        sizes = []
        for path in self._files():
            try:
                sizes.append((path, path.stat().st_size, _records_of(self.signal, path)))
            except OSError:
                continue
        total_bytes = sum(size for _, size, _ in sizes)
        total_records = sum(records for _, _, records in sizes)
        for path, size, records in sizes:
            if not self._over(total_records, total_bytes):
                break
            claim = _lock(path)
            if claim is None:
                continue  # in a running process's buffer: it sends or drops it
            claim.sent()
            total_bytes -= size
            total_records -= records
            self.dropped += records

    def _over(self, records: int, nbytes: int) -> bool:
        return ((self.max_records is not None and records > self.max_records)
                or (self.max_bytes is not None and nbytes > self.max_bytes))

    def claim(self, records_room: int, bytes_room: int) -> list[tuple[Claimed, Request, int]]:
        """Lock and read the files of the signal left by earlier processes, oldest first, as long as
        they fit in ``records_room`` records and ``bytes_room`` bytes (at least one file);
        ``(claim, request, bytes)`` each. The files stay until :meth:`Claimed.sent`. A file that is
        not a valid request is set aside as ``*.bad``."""
        if not self._prepare(create=False):
            return []
        taken: list[tuple[Claimed, Request, int]] = []
        for path in self._files():
            claim = _lock(path)
            if claim is None:
                continue  # another process holds it, or it is gone
            try:
                data = _read(claim)
                request = _REQUESTS[self.signal].FromString(data)
            except _Foreign:
                claim.release()
                continue
            except Exception:  # noqa: BLE001 - a damaged file must not stop the others
                self._set_aside_bad(claim)
                continue
            records = count(self.signal, request)
            if taken and (records > records_room or len(data) > bytes_room):
                claim.release()
                break
            records_room -= records
            bytes_room -= len(data)
            taken.append((claim, request, len(data)))
        return taken

    def _set_aside_bad(self, claim: Claimed) -> None:
        """Rename a damaged file ``*.bad``, keeping the newest within the bound."""
        try:
            claim.path.rename(claim.path.with_name(claim.path.name + ".bad"))
        except OSError:
            pass
        claim.release()
        bad = sorted(self.directory.glob(f"{self.signal}-*.bad"), reverse=True)  # the newest first
        kept_bytes = 0
        for number, path in enumerate(bad):
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if number < MAX_BAD_FILES and kept_bytes + size <= MAX_BAD_BYTES:
                kept_bytes += size
                continue
            path.unlink(missing_ok=True)


class _Foreign(Exception):
    """A file that is not the user's own regular file: left alone, never sent."""


def _mode(mode: int) -> int:
    return mode & 0o7777


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else -1


def _lock(path: Path) -> Claimed | None:
    """The file at ``path``, locked by this process; None if another holds it or it is gone."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Still the file of that name: not sent and removed by the process that held it before.
        if os.fstat(fd).st_ino != os.stat(path, follow_symlinks=False).st_ino:
            raise OSError("replaced")
    except OSError:
        os.close(fd)
        return None
    return Claimed(path, fd)


def _read(claim: Claimed) -> bytes:
    info = os.fstat(claim._fd)
    if not (info.st_mode & 0o170000 == 0o100000) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise _Foreign(claim.path)
    chunks = []
    while chunk := os.read(claim._fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _records_of(signal: str, path: Path) -> int:
    """The records of a spool file, from its name (files of older versions: from their content)."""
    match = _NAME.match(path.name)
    if match and match.group(3) is not None:
        return int(match.group(3))
    try:
        return count(signal, _REQUESTS[signal].FromString(path.read_bytes()))
    except Exception:  # noqa: BLE001 - damaged: claim() sets it aside
        return 0


def sender(signal: str, exporter: Any) -> Sender:
    """A function sending one encoded request to the collector through ``exporter``'s own transport
    (its channel or HTTP session, so its endpoint, TLS certificates, client key, compression and
    headers apply), True when it was accepted."""
    if hasattr(exporter, "_stub"):  # the gRPC exporters: their stub on their channel
        return _GrpcSender(exporter)
    return _HttpSender(exporter)


class _GrpcSender:
    def __init__(self, exporter: Any) -> None:
        self._exporter = exporter

    def __call__(self, request: Request) -> bool:
        import grpc

        exporter = self._exporter
        if exporter._client is None:
            return False
        try:
            exporter._client.Export(request=request, metadata=exporter._headers, timeout=exporter._timeout)
        except grpc.RpcError:
            return False
        except ValueError:  # the channel was closed under the call (the exporter shut down)
            return False
        return True


class _HttpSender:
    def __init__(self, exporter: Any) -> None:
        self._exporter = exporter

    def __call__(self, request: Request) -> bool:
        try:
            return bool(self._exporter._client.export(request.SerializePartialToString()).success)
        except Exception:  # noqa: BLE001 - a failed send keeps the request for later
            return False
