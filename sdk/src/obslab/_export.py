"""Shared OTLP gRPC exporter settings, and the escape hatch used at the shutdown deadline."""

from __future__ import annotations

from typing import Any

from obslab.config import Settings


def otlp_kwargs(settings: Settings) -> dict[str, Any]:
    """Exporter arguments shared by the three signals."""
    return {"endpoint": settings.otlp_endpoint, "insecure": settings.otlp_insecure, "timeout": 10}


def abort_retries(exporter: Any) -> None:
    """Stop an exporter's retry back-off now (used when the shutdown deadline has passed)."""
    event = getattr(exporter, "_shutdown_in_progress", None)
    if event is not None:
        event.set()
