"""OTLP gRPC exporters that survive forks and never hold the application at shutdown."""

from __future__ import annotations

import os
import weakref
from typing import Any, TypeVar

from obslab.config import Settings

T = TypeVar("T")


def otlp_kwargs(settings: Settings) -> dict[str, Any]:
    """Exporter arguments shared by the three signals."""
    endpoint = settings.otlp_endpoint
    return {"endpoint": endpoint, "insecure": settings.otlp_insecure, "timeout": 10}


def fork_safe(exporter: T) -> T:
    """Give a forked child its own gRPC channel: a channel made before fork is not usable after."""
    if hasattr(os, "register_at_fork") and hasattr(exporter, "_initialize_channel_and_stub"):
        ref = weakref.ref(exporter)

        def _after_in_child() -> None:
            if (live := ref()) is not None:
                live._initialize_channel_and_stub()  # type: ignore[attr-defined]

        os.register_at_fork(after_in_child=_after_in_child)
    return exporter


def abort_retries(exporter: Any) -> None:
    """Stop an exporter's retry back-off now (used when the shutdown deadline has passed)."""
    event = getattr(exporter, "_shutdown_in_progress", None)
    if event is not None:
        event.set()
