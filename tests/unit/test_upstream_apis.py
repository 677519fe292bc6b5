"""obslab stands on OpenTelemetry's public API only, and on the contrib release that matches its SDK."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

import obslab
from lab import REPO

SOURCES = sorted(Path(obslab.__file__).parent.rglob("*.py"))  # obslab.genai's modules too
# OpenTelemetry Python publishes its Logs API and SDK, and the OTLP encoder of logs (as it does the OTLP
# log exporters), under these names while logs are in development.
LOGS_PACKAGES = ("opentelemetry._logs", "opentelemetry.sdk._logs", "opentelemetry.exporter.otlp.proto.common._log_encoder")
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields"}  # public, underscored so as not to clash with fields
# The SDK's configuration module is where a distro plugs in (opentelemetry-distro itself subclasses
# its configurator): obslab asks it which exporters OTEL_*_EXPORTER names and has it load them.
CONFIGURATION_PACKAGE = "opentelemetry.sdk._configuration"
# Upstream's own loaders where they have no public name (issue 26: use them, keep no copy): the
# propagators OTEL_PROPAGATORS names, and the logging instrumentation's reading of
# OTEL_PYTHON_LOG_HANDLER_LEVEL, applied to obslab's handler under opentelemetry-instrument.
PRIVATE_LOADERS = {"opentelemetry.propagate._load_propagators", "opentelemetry.instrumentation.logging._get_log_level"}
# What the OTLP exporters read from OTEL_EXPORTER_OTLP_* and keep: where they send (for the
# reachability check) and their transport, on which the spool sends with the same endpoint, TLS
# credentials, compression and headers. No public accessor exists for them.
# The OTLP/HTTP exporter's requests session (its client's transport's) is where obslab's exit ends the
# requests under way, as closing the channel does over gRPC (_export.interruptible); without it (another
# SDK release) an exit waits for the exporter's own timeout, as before.
EXPORTER_STATE = {"_endpoint", "_client", "_headers", "_stub", "_timeout", "_transport", "_session"}
# What an SDK batch processor holds and drops: its queue (records still unsent at exit) and its inner
# processor, whose self-metrics object is where "queue full" drops are counted; obslab counts both in the
# exit report so that nothing is lost silently (pipeline.py). No public accessor exists for them; without
# them (another SDK release) the count degrades to what the outage buffer saw. The providers' lists of
# processors are where those batch processors are found.
BATCH_PROCESSOR_STATE = {"_batch_processor", "_queue", "_active_span_processor", "_span_processors",
                         "_multi_log_record_processor", "_log_record_processors"}
# The API's set-once guards of the global providers, reset (obslab._globals) only to replace providers
# obslab itself built and shut down, when init_telemetry() is called again after shutdown().
GLOBAL_GUARDS = ("opentelemetry.metrics._internal", "opentelemetry._logs._internal")


def private(name: str) -> bool:
    """``_name``: not ``__dunder__``, nor an Enum's ``_sunder_`` hook."""
    return name.startswith("_") and not name.startswith("__") and not name.endswith("_")


def named_attribute(node: ast.AST) -> tuple[str, bool] | None:
    """(name, stored) of ``getattr/hasattr/setattr(obj, "name", ...)``."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)):
        return str(node.args[1].value), node.func.id == "setattr"
    return None


def test_no_private_opentelemetry_module_or_name_is_imported():
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("opentelemetry"):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.startswith("opentelemetry")]
            else:
                continue
            for name in names:
                if name.startswith(CONFIGURATION_PACKAGE + ".") or name in PRIVATE_LOADERS:
                    continue
                public = name.removeprefix(next((p for p in LOGS_PACKAGES if name.startswith(p)), ""))
                if any(private(part) for part in public.split(".")):
                    found.append(f"{path.name}: {name}")
    assert found == []


def test_obslab_touches_only_the_private_attributes_it_defines():
    defined, used = set(NAMEDTUPLE_API) | EXPORTER_STATE | BATCH_PROCESSOR_STATE, {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif isinstance(node, ast.Attribute) and private(node.attr):
                used.setdefault(node.attr, path.name)
            elif (call := named_attribute(node)) is not None:
                name, stored = call
                if stored:
                    defined.add(name)
                elif private(name):
                    used.setdefault(name, path.name)
    assert {name: where for name, where in used.items() if name not in defined} == {}


def test_no_obslab_class_overrides_a_private_method_of_an_upstream_class():
    found = []
    for module_info in pkgutil.walk_packages(obslab.__path__, "obslab."):
        module = importlib.import_module(module_info.name)
        for cls in (c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__):
            upstream = [base for base in cls.__mro__[1:] if not base.__module__.startswith("obslab")]
            found += [f"{cls.__name__}.{name}" for name, value in vars(cls).items()
                      if private(name) and inspect.isfunction(value) and any(name in vars(b) for b in upstream)]
    # BaseDistro's abstract _configure is the one place a distro is meant to fill in (opentelemetry-distro does).
    assert found == ["ObslabDistro._configure"]


def test_beta_contrib_packages_are_pinned_to_the_sdk_release_they_match():
    """The SDK, its exporters and every contrib beta, in the core dependencies and in every extra,
    come from one OpenTelemetry Python release (1.45.1 <-> 0.66b1): contrib packages pin
    opentelemetry-instrumentation exactly, so a looser range lets pip mix releases it cannot resolve."""
    project = tomllib.loads((REPO / "sdk/pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [l for extra in project["optional-dependencies"].values() for l in extra]
    requirements = [Requirement(line) for line in lines if line.startswith("opentelemetry-")]
    sdk = Version(next(str(s.version) for r in requirements if r.name == "opentelemetry-sdk" for s in r.specifier))
    beta = f"0.{sdk.minor + 21}b{sdk.micro}"  # the contrib beta released with SDK 1.45.1: 0.66b1
    genai = ("opentelemetry-util-genai", "opentelemetry-instrumentation-genai-")  # their own release train
    pins = {r.name: str(r.specifier) for r in requirements if not r.name.startswith(genai)}
    expected = {name: f"=={beta}" if spec.startswith("==0.") else f"=={sdk}" for name, spec in pins.items()}
    assert pins == expected
    assert {"opentelemetry-instrumentation", "opentelemetry-semantic-conventions"} <= pins.keys()


def test_the_only_private_api_modules_reached_are_the_documented_global_guards():
    from obslab import _globals

    assert {module for module, *_ in _globals._GLOBALS.values()} - {"opentelemetry.trace"} == set(GLOBAL_GUARDS)
