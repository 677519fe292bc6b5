"""The OpenTelemetry Resource that identifies the service on every signal."""

from __future__ import annotations

import os
import socket
import uuid

from opentelemetry.sdk.resources import Resource

from obslab.config import Settings


def build_resource(settings: Settings) -> Resource:
    """``service.*`` and ``deployment.environment(.name)`` from settings, plus user attributes."""
    attributes = {
        "service.instance.id": f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        **settings.resource_attributes,
        "service.name": settings.service_name,
        "service.version": settings.service_version,
        # Both names: `.name` is current semconv, the bare one is what most dashboards still use.
        "deployment.environment": settings.environment,
        "deployment.environment.name": settings.environment,
    }
    return Resource.create(attributes)
