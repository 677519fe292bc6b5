"""The OpenTelemetry Resource that identifies the service on every signal."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource

from obslab.config import RESOURCE_VARIABLES, Settings
from obslab.privacy import Redactor


def build_resource(settings: Settings, redactor: Redactor | None = None, extra: dict[str, Any] | None = None
                   ) -> Resource:
    """The resource the SDK makes (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``, the detectors
    of ``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS``, ``unknown_service:python`` when nothing names the
    service) with ``extra`` (``telemetry.auto.version`` under ``opentelemetry-instrument``), under what
    obslab's own settings give: ``resource_attributes``, the service name and version, and the
    environment as both ``deployment.environment.name`` (current conventions) and
    ``deployment.environment`` (what most dashboards still read). Nothing is added that nobody set.
    Masked when privacy is on."""
    attributes: dict[str, Any] = {**(extra or {}), **settings.resource_attributes}
    for key, setting in (("service.name", "service_name"), ("service.version", "service_version"),
                         ("deployment.environment.name", "environment"), ("deployment.environment", "environment")):
        if _given_by_obslab(settings, setting):
            attributes[key] = getattr(settings, setting)
    resource = Resource.create(attributes)
    return resource if redactor is None else redactor.resource(resource)


def _given_by_obslab(settings: Settings, setting: str) -> bool:
    """Whether ``setting`` has a value of obslab's own (not the SDK's reading of the resource variables)."""
    return getattr(settings, setting) is not None and not settings.sources.get(setting, "").endswith(RESOURCE_VARIABLES)
