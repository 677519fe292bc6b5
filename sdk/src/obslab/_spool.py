"""The spool: spans and log records still unsent when a process exits, written to a directory as
OTLP protobuf requests (one file per batch), and sent by the next process that starts with the
same directory.

File names start with the signal and the time they were written, so the next process sends them
oldest first; a file is written under a temporary name and renamed, so no reader sees half of
one, and a process takes the files it sends by renaming them first, so two processes starting at
once never send the same file twice.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

Request = Any  # ExportTraceServiceRequest or ExportLogsServiceRequest
Sender = Callable[[Request], bool]

_REQUESTS = {"traces": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest}
_GRPC_METHODS = {"traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                 "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export"}
_sequence = itertools.count()  # orders the files one process writes within the same nanosecond


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


class Spool:
    """The files of one signal in a spool directory."""

    def __init__(self, directory: str | os.PathLike[str], signal: str) -> None:
        self.directory = Path(directory)
        self.signal = signal

    def write(self, request: Request) -> None:
        """Write one request as a file that the next process will send."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{self.signal}-{time.time_ns():020d}-{os.getpid()}-{next(_sequence):06d}.pb"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(request.SerializeToString())
        temporary.replace(self.directory / name)

    def claim(self) -> list[Request]:
        """Take every file of the signal left by earlier processes, oldest first, as requests
        (the files are gone afterwards; a file that is not a valid request is set aside as
        ``*.bad``)."""
        if not self.directory.is_dir():
            return []
        requests = []
        for path in sorted(self.directory.glob(f"{self.signal}-*.pb")):
            taken = path.with_name(f".{path.name}.{os.getpid()}.taken")
            try:
                path.rename(taken)  # another process starting now gets FileNotFoundError
            except OSError:
                continue
            request = _REQUESTS[self.signal]()
            try:
                request.ParseFromString(taken.read_bytes())
            except Exception:  # noqa: BLE001 - a damaged file must not stop the others
                taken.rename(path.with_suffix(".bad"))
                continue
            taken.unlink()
            requests.append(request)
        return requests


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
        return True


class _HttpSender:
    def __init__(self, exporter: Any) -> None:
        self._exporter = exporter

    def __call__(self, request: Request) -> bool:
        try:
            return bool(self._exporter._client.export(request.SerializePartialToString()).success)
        except Exception:  # noqa: BLE001 - a failed send keeps the request for later
            return False
