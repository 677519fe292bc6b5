"""Turn on installed OpenTelemetry instrumentors by name (``instrument=["fastapi", "requests"]``)
or all of them (``"auto"``), found through the ``opentelemetry_instrumentor`` entry points, plus
obslab's own ``pandas`` and ``numpy`` instrumentation."""

from __future__ import annotations

import importlib.util
from importlib.metadata import entry_points
from typing import Any, Iterable

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

# Names with an obslab extra that installs the instrumentor.
EXTRAS = ("fastapi", "flask", "requests", "httpx", "sqlalchemy", "openai", "anthropic", "openai_agents")
# obslab's own instrumentation: name -> the library it needs (mcp: the MCP SDK's own spans, see obslab.mcp_spans).
OWN = {"pandas": "pandas", "numpy": "numpy", "mcp": "mcp"}
_OWN_EXTRAS = {"pandas": "data", "numpy": "data", "mcp": "mcp"}
# Handled by obslab itself: the logging bridge is always on.
_BUILT_IN = ("logging",)


def installed_instrumentors() -> dict[str, Any]:
    """Entry points of the installed upstream instrumentors, by name."""
    return {ep.name: ep for ep in entry_points(group="opentelemetry_instrumentor")}


def check_names(names: Iterable[str], installed: dict[str, Any] | None = None) -> None:
    """Raise ``ValueError`` for a name that is neither installed nor known, before anything starts."""
    installed = installed_instrumentors() if installed is None else installed
    for name in names:
        if name == "auto" or name in _BUILT_IN or name in installed:
            continue
        if name in OWN:
            if importlib.util.find_spec(OWN[name]) is None:
                raise ValueError(f"instrument={name!r}: {OWN[name]} is not installed "
                                 f"(pip install 'obslab[{_OWN_EXTRAS[name]}]')")
            if name == "mcp":
                from obslab.mcp_spans import MINIMUM, mcp_version

                found = mcp_version()
                if found is not None and found < MINIMUM:
                    raise ValueError(f"instrument='mcp': mcp {'.'.join(map(str, found))} does not trace itself; "
                                     "mcp 2.0 or later does (pip install 'obslab[mcp]')")
            continue
        if name in EXTRAS:
            raise ValueError(f"instrument={name!r}: its instrumentor is not installed; pip install 'obslab[{name}]'")
        known = sorted({*installed, *OWN, *EXTRAS} - set(_BUILT_IN))
        raise ValueError(f"instrument={name!r}: unknown instrumentor; expected 'auto' or one of {', '.join(known)}")


# The instrumentors that emit log events (the GenAI ones' messages) and so take a logger provider;
# others may refuse one: FastAPI's hands its arguments to every app made later, whose
# instrument_app() raises TypeError on it.
_EMIT_EVENTS = frozenset({"openai", "anthropic", "openai_agents"})


def instrument(names: Iterable[str], tracer_provider: Any, meter_provider: Any, logger_provider: Any = None,
               options: dict[str, dict[str, Any]] | None = None) -> list[Any]:
    """Instrument each named library; returns the upstream instrumentors turned on (to undo them).
    ``logger_provider`` receives the events of those that emit some (the GenAI ones' message events);
    ``options`` are more arguments of one instrumentor's ``instrument()``, by name.
    Libraries already instrumented (by ``opentelemetry-instrument``, say) are left as they are.
    Every refusal comes before the first library is touched."""
    names = tuple(names)
    installed = installed_instrumentors()
    check_names(names, installed)
    explicit = [n for n in names if n != "auto" and n not in OWN and n not in _BUILT_IN]
    candidates = sorted(set(installed) - set(_BUILT_IN)) if "auto" in names else explicit
    chosen = []
    for name in candidates:
        instrumentor = installed[name].load()()
        if instrumentor.is_instrumented_by_opentelemetry:
            continue
        conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
        if conflict is not None:
            if name in explicit:
                raise ValueError(f"instrument={name!r}: {conflict}")
            continue  # "auto": the library it instruments is not installed
        chosen.append((name, instrumentor))
    done: list[Any] = []
    try:
        for name, instrumentor in chosen:
            providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
            if logger_provider is not None and name in _EMIT_EVENTS:
                providers["logger_provider"] = logger_provider
            instrumentor.instrument(**providers, **(options or {}).get(name, {}))
            done.append(instrumentor)
    except BaseException:
        for instrumentor in reversed(done):
            instrumentor.uninstrument()
        raise
    return done


def own_names(names: Iterable[str]) -> tuple[str, ...]:
    """The obslab data instrumentations asked for (``auto`` means those whose library is installed)."""
    names = tuple(names)
    if "auto" in names:
        return tuple(n for n, lib in OWN.items() if importlib.util.find_spec(lib) is not None)
    return tuple(n for n in names if n in OWN)
