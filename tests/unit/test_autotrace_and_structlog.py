"""Function auto-tracing with its recursion guards, and the structlog integration."""

import sys
import types

import pytest
import structlog

from obslab import trace_modules, traced
from obslab.autotrace import untrace_modules
from obslab.structlog_bridge import OTLPLogProcessor, add_trace_context


def make_module():
    module = types.ModuleType("shop_pipeline")
    exec("""
import os
def load(n):
    return [i * 2 for i in range(n)]
def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)
def _private():
    return 1
""", module.__dict__)
    sys.modules[module.__name__] = module
    return module


def test_allowed_module_functions_become_spans_and_recursion_gives_one_span(recorded):
    module = make_module()
    try:
        assert sorted(trace_modules(["shop_pipeline"])) == ["shop_pipeline.fact", "shop_pipeline.load"]
        assert module.fact(5) == 120 and module.load(3) == [0, 2, 4]
        assert module.os.path.join is __import__("os").path.join  # imported names are not touched
        names = [s.name for s in recorded.spans()]
        assert names.count("shop_pipeline.fact") == 1 and names.count("shop_pipeline.load") == 1
        assert "shop_pipeline._private" not in names
        untrace_modules([module])
        module.fact(3)
        assert len(recorded.spans()) == 2
    finally:
        del sys.modules["shop_pipeline"]


def test_traced_decorator_works_on_async_functions(recorded):
    import asyncio

    @traced(name="fetch-rates")
    async def fetch():
        return 42

    assert asyncio.run(fetch()) == 42
    assert [s.name for s in recorded.spans()] == ["fetch-rates"]


@pytest.mark.parametrize("module, message", [
    ("logging", "'logging' cannot be traced"),
    ("opentelemetry.sdk.trace", "cannot be traced"),
    ("not_imported_module_xyz", "is not imported"),
])
def test_modules_that_would_loop_or_do_not_exist_are_refused(module, message):
    with pytest.raises(ValueError, match=message):
        trace_modules([module])


def test_structlog_events_carry_trace_ids_and_are_exported_as_otlp_logs(recorded):
    captured = []
    structlog.configure(processors=[add_trace_context, structlog.processors.add_log_level, OTLPLogProcessor(),
                                    lambda _l, _m, event: captured.append(event) or ""],
                        logger_factory=structlog.ReturnLoggerFactory())
    try:
        with recorded.handle.span("checkout") as span:
            structlog.get_logger().warning("payment declined", order_id="o-9", amount=12.5)
        trace_id = f"{span.get_span_context().trace_id:032x}"
        assert captured[0]["trace_id"] == trace_id and captured[0]["span_id"]
        (record,) = [r for r in recorded.logs() if r.body == "payment declined"]
        assert f"{record.trace_id:032x}" == trace_id and record.severity_text == "WARNING"
        assert record.attributes["order_id"] == "o-9" and record.attributes["amount"] == 12.5
    finally:
        structlog.reset_defaults()


def test_structlog_lines_printed_by_configure_structlog_are_masked_with_privacy_on(recording, capsys):
    from obslab.config import Settings
    from obslab.structlog_bridge import configure_structlog

    recorded = recording(Settings(service_name="unit-test", privacy=True))
    for json_output in (True, False):
        configure_structlog(json_output=json_output)
        try:
            structlog.get_logger().warning("login with password=hunter2secret", password="Qpassword77",
                                           nested={"token": "Qnestedtoken7"}, dsn="redis://u:Qdsnpass7@cache:6379")
        finally:
            structlog.reset_defaults()
        printed = capsys.readouterr().out
        assert "login with password=[REDACTED]" in printed and "cache:6379" in printed, printed
        assert not [s for s in ("hunter2secret", "Qpassword77", "Qnestedtoken7", "Qdsnpass7") if s in printed], printed
    exported = repr([(r.body, dict(r.attributes)) for r in recorded.logs()])
    assert "Qpassword77" not in exported and "Qdsnpass7" not in exported and "hunter2secret" not in exported
