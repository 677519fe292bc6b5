"""The OpenTelemetry Resource that identifies the service on every signal."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource

from obslab.config import Settings
from obslab.privacy import Redactor


def build_resource(settings: Settings, redactor: Redactor | None = None) -> Resource:
    """What the SDK detects (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``, a
    ``service.instance.id`` renewed in forked children), under obslab's ``service.*`` and
    ``deployment.environment(.name)`` settings and user attributes. Masked when privacy is on."""
    resource = Resource.create({
        **settings.resource_attributes,
        "service.name": settings.service_name,
        "service.version": settings.service_version,
        # Both names: `.name` is current semconv, the bare one is what most dashboards still use.
        "deployment.environment": settings.environment,
        "deployment.environment.name": settings.environment,
    })
    return resource if redactor is None else redactor.resource(resource)
